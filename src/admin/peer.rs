//! Who is on the other end of an admin connection, and whether they may use the gateway.
//!
//! The socket's file mode and group are the first gate (see `server::bind`); this is the second,
//! decided per connection from the kernel's SO_PEERCRED credentials (tokio's
//! `UnixStream::peer_cred`), which the peer cannot forge. Rules, in order: root and the daemon's
//! own uid are always allowed; otherwise the peer's uid must be in `allow_uids`, or its primary
//! gid or one of its supplementary groups in `allow_gids`.
//!
//! SO_PEERCRED carries uid, gid and pid but not the supplementary groups. Those are read from the
//! `Groups:` line of `/proc/<pid>/status` (proc(5)). The pid is the one that called `connect`;
//! if that process has already exited (or its pid was reused) the file is gone or describes
//! another process, so a group grant through supplementary groups is only as good as that read:
//! when the file cannot be read, or its `Uid:` line does not match the credential's uid, the
//! supplementary groups count as empty (fail closed) and only uid and primary gid decide.
//!
//! This module does not touch the socket: the server calls [`decide`] and writes the refusal.

use std::fmt;

use nix::unistd::{Group, User};

/// The credentials of a connected peer, passed to the handler with every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    /// Supplementary groups read from `/proc/<pid>/status`; empty when unreadable.
    pub groups: Vec<u32>,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid {} gid {}", self.uid, self.gid)?;
        if let Some(pid) = self.pid {
            write!(f, " pid {pid}")?;
        }
        Ok(())
    }
}

/// Who besides root and the daemon's own user may use the admin socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    pub allow_uids: Vec<u32>,
    pub allow_gids: Vec<u32>,
}

/// Resolving a configured user or group name failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("admin access: no user named {name:?} on this system")]
    UnknownUser { name: String },
    #[error("admin access: no group named {name:?} on this system")]
    UnknownGroup { name: String },
    #[error("admin access: looking up {what} {name:?} failed: {source}")]
    Lookup {
        what: &'static str,
        name: String,
        #[source]
        source: nix::Error,
    },
}

impl AccessPolicy {
    /// Build a policy from configured names. Each entry is a user/group name or a numeric id
    /// (so ids without a passwd entry, common in containers, still work).
    pub fn from_names(users: &[String], groups: &[String]) -> Result<Self, PeerError> {
        let allow_uids = users
            .iter()
            .map(|u| resolve_user(u))
            .collect::<Result<_, _>>()?;
        let allow_gids = groups
            .iter()
            .map(|g| resolve_group(g))
            .collect::<Result<_, _>>()?;
        Ok(AccessPolicy {
            allow_uids,
            allow_gids,
        })
    }
}

/// A user name or numeric uid to a uid.
pub fn resolve_user(name: &str) -> Result<u32, PeerError> {
    if let Ok(uid) = name.parse::<u32>() {
        return Ok(uid);
    }
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        Ok(None) => Err(PeerError::UnknownUser { name: name.into() }),
        Err(source) => Err(PeerError::Lookup {
            what: "user",
            name: name.into(),
            source,
        }),
    }
}

/// A group name or numeric gid to a gid.
pub fn resolve_group(name: &str) -> Result<u32, PeerError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(PeerError::UnknownGroup { name: name.into() }),
        Err(source) => Err(PeerError::Lookup {
            what: "group",
            name: name.into(),
            source,
        }),
    }
}

/// The outcome of the access check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed(Reason),
    Refused,
}

/// Why a peer was let in (logged at debug level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Root,
    DaemonUser,
    ListedUser,
    PrimaryGroup,
    SupplementaryGroup,
}

/// The two users the access rule always lets in. [`Trusted::system`] is the real pair (uid 0 and
/// the daemon's effective uid); a test names other uids so that its own user, root or not, can be
/// an ordinary peer (refused, or held to the limits of users other than root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trusted {
    /// Root: always allowed, and the only user who may take the connections held back for root.
    pub root: u32,
    /// The daemon's own user: always allowed.
    pub daemon: u32,
}

impl Trusted {
    /// uid 0 and the daemon's effective uid.
    pub fn system() -> Self {
        Trusted {
            root: 0,
            daemon: daemon_uid(),
        }
    }
}

/// The pure access rule.
pub fn decide(policy: &AccessPolicy, trusted: Trusted, peer: &Peer) -> Decision {
    let reason = if peer.uid == trusted.root {
        Reason::Root
    } else if peer.uid == trusted.daemon {
        Reason::DaemonUser
    } else if policy.allow_uids.contains(&peer.uid) {
        Reason::ListedUser
    } else if policy.allow_gids.contains(&peer.gid) {
        Reason::PrimaryGroup
    } else if peer.groups.iter().any(|g| policy.allow_gids.contains(g)) {
        Reason::SupplementaryGroup
    } else {
        return Decision::Refused;
    };
    Decision::Allowed(reason)
}

/// The one-line refusal the peer receives.
pub fn refusal_message(peer: &Peer) -> String {
    format!(
        "uid {} is not allowed to use this gateway; ask the administrator to add it to \
         [daemon] admin_allow_users or admin_allow_groups",
        peer.uid
    )
}

/// Build a [`Peer`] from SO_PEERCRED values, reading supplementary groups from /proc.
pub fn peer_from_cred(uid: u32, gid: u32, pid: Option<i32>) -> Peer {
    let groups = pid
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .map(|status| supplementary_groups(&status, uid))
        .unwrap_or_default();
    Peer {
        uid,
        gid,
        pid,
        groups,
    }
}

/// Parse the `Groups:` line of a /proc/<pid>/status text (proc(5): "Groups: Supplementary group
/// list", whitespace-separated decimal gids). Returns no groups unless the `Uid:` line's real uid
/// (its first field) equals `expected_uid`, guarding against a reused pid.
pub fn supplementary_groups(status: &str, expected_uid: u32) -> Vec<u32> {
    let mut uid_ok = false;
    let mut groups = Vec::new();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Uid:") {
            uid_ok = rest
                .split_whitespace()
                .next()
                .and_then(|u| u.parse::<u32>().ok())
                == Some(expected_uid);
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            groups = rest
                .split_whitespace()
                .filter_map(|g| g.parse::<u32>().ok())
                .collect();
        }
    }
    if uid_ok { groups } else { Vec::new() }
}

/// The daemon's effective uid.
pub fn daemon_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            uid,
            gid,
            pid: Some(1),
            groups: groups.to_vec(),
        }
    }

    const T: Trusted = Trusted {
        root: 0,
        daemon: 999,
    };

    #[test]
    fn who_counts_as_root_is_the_callers_choice() {
        let tests = Trusted {
            root: 4242,
            daemon: 4243,
        };
        let empty = AccessPolicy::default();
        assert_eq!(decide(&empty, tests, &peer(0, 0, &[])), Decision::Refused);
        assert_eq!(
            decide(&empty, tests, &peer(4242, 1, &[])),
            Decision::Allowed(Reason::Root)
        );
        assert_eq!(
            decide(&empty, tests, &peer(4243, 1, &[])),
            Decision::Allowed(Reason::DaemonUser)
        );
    }

    #[test]
    fn root_and_daemon_user_are_always_allowed() {
        let empty = AccessPolicy::default();
        assert_eq!(
            decide(&empty, T, &peer(0, 0, &[])),
            Decision::Allowed(Reason::Root)
        );
        assert_eq!(
            decide(&empty, T, &peer(999, 5, &[])),
            Decision::Allowed(Reason::DaemonUser)
        );
        assert_eq!(decide(&empty, T, &peer(1000, 1000, &[])), Decision::Refused);
    }

    #[test]
    fn listed_uid_primary_and_supplementary_groups() {
        let p = AccessPolicy {
            allow_uids: vec![1001],
            allow_gids: vec![50],
        };
        assert_eq!(
            decide(&p, T, &peer(1001, 1001, &[])),
            Decision::Allowed(Reason::ListedUser)
        );
        assert_eq!(
            decide(&p, T, &peer(1002, 50, &[])),
            Decision::Allowed(Reason::PrimaryGroup)
        );
        assert_eq!(
            decide(&p, T, &peer(1003, 1003, &[7, 50])),
            Decision::Allowed(Reason::SupplementaryGroup)
        );
        assert_eq!(decide(&p, T, &peer(1004, 1004, &[7, 8])), Decision::Refused);
    }

    const STATUS: &str = "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n\
                          FDSize:\t256\nGroups:\t4 24 27 1000 \nNStgid:\t1\n";

    #[test]
    fn groups_line_is_parsed() {
        assert_eq!(supplementary_groups(STATUS, 1000), vec![4, 24, 27, 1000]);
    }

    #[test]
    fn groups_of_another_uid_are_ignored() {
        assert_eq!(supplementary_groups(STATUS, 1001), Vec::<u32>::new());
        assert_eq!(
            supplementary_groups("Groups:\t4\n", 1000),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn empty_groups_line() {
        assert_eq!(
            supplementary_groups("Uid:\t5\t5\t5\t5\nGroups:\t\n", 5),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn own_process_groups_are_read() {
        let me = std::process::id() as i32;
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let p = peer_from_cred(uid, gid, Some(me));
        let expected: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        assert_eq!(p.groups, expected);
    }

    #[test]
    fn numeric_and_named_ids_resolve() {
        assert_eq!(resolve_user("4242").unwrap(), 4242);
        assert_eq!(resolve_user("root").unwrap(), 0);
        assert_eq!(resolve_group("root").unwrap(), 0);
        assert!(matches!(
            resolve_user("no-such-user-gsmgate-test"),
            Err(PeerError::UnknownUser { .. })
        ));
        assert!(matches!(
            resolve_group("no-such-group-gsmgate-test"),
            Err(PeerError::UnknownGroup { .. })
        ));
        let p = AccessPolicy::from_names(&["root".into(), "7".into()], &["0".into()]).unwrap();
        assert_eq!(p.allow_uids, vec![0, 7]);
        assert_eq!(p.allow_gids, vec![0]);
    }

    #[test]
    fn refusal_names_the_uid_and_the_config_keys() {
        let m = refusal_message(&peer(65534, 65534, &[]));
        assert!(m.starts_with("uid 65534 is not allowed"));
        assert!(m.contains("admin_allow_users"));
    }

    proptest! {
        #[test]
        fn status_parser_never_panics(s in ".{0,300}", uid in any::<u32>()) {
            let _ = supplementary_groups(&s, uid);
        }
    }
}
