//! Who gets one of the admin socket's connection slots: the per-uid cap and the slots held back
//! for root, as one pure ledger that the server consults in its accept loop (issue 14, item 3: a
//! script holding 64 idle connections locked every `gsmgate` command out).
//!
//! Rules, checked in this order when a peer that passed the access check connects:
//! 1. no uid holds more than `max_per_uid` connections at once (root included: a leaking root
//!    script must not starve the other users either);
//! 2. users other than root share `max_connections - reserved_for_root` slots;
//! 3. root may also take the last `reserved_for_root` slots, so `sudo gsmgate status` and
//!    `sudo gsmgate doctor` get through however many connections the other users hold.
//!
//! Users other than root are counted apart from root: between them they hold at most
//! `max_connections - reserved_for_root`, however many root holds, and root may take any slot that
//! is free. So root can always open `reserved_for_root` connections beyond its own, and root's
//! use never narrows the other users' share. A slot is a [`Slot`] guard: dropping it (the
//! connection's task ending, however it ends) gives the slot back, so the counts cannot leak.
//!
//! This file knows nothing of sockets, peers or time; the server decides who counts as root and
//! writes the refusal line built from [`Refusal`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// The numbers the ledger enforces (copied from `ServeOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub reserved_for_root: usize,
    pub max_per_uid: usize,
}

/// Why a connection got no slot; its `Display` is the message the peer receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This uid already holds `max` connections.
    PerUid { uid: u32, max: usize },
    /// Every slot this peer may use is taken.
    Full {
        max: usize,
        reserved_for_root: usize,
        root: bool,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::PerUid { uid, max } => write!(
                f,
                "too many admin connections from uid {uid} (at most {max} per user); close \
                 some (is a script holding connections open?) and try again"
            ),
            Refusal::Full {
                max, root: true, ..
            } => write!(
                f,
                "too many admin connections (all {max} in use, root's included); try again later"
            ),
            Refusal::Full {
                max,
                reserved_for_root,
                root: false,
            } => write!(
                f,
                "too many admin connections (at most {max}, {reserved_for_root} of them kept for \
                 root); try again later, or as root"
            ),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Of `total`, the connections of users other than root.
    others: usize,
    per_uid: HashMap<u32, usize>,
}

/// The ledger of open connections. Shared by the accept loop and the connection tasks (through
/// their [`Slot`]s).
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    counts: Mutex<Counts>,
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    uid: u32,
    root: bool,
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Admission {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Take a slot for a connection from `uid`; `root` says whether that uid is root (the server
    /// decides, so tests can let another uid play root).
    pub fn admit(self: &Arc<Self>, uid: u32, root: bool) -> Result<Slot, Refusal> {
        let Limits {
            max_connections: max,
            reserved_for_root,
            max_per_uid,
        } = self.limits;
        // The counts stay consistent under a poisoned lock: every update is a single step.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = counts.per_uid.get(&uid).copied().unwrap_or(0);
        if mine >= max_per_uid {
            return Err(Refusal::PerUid {
                uid,
                max: max_per_uid,
            });
        }
        let shared = max.saturating_sub(reserved_for_root);
        if counts.total >= max || (!root && counts.others >= shared) {
            return Err(Refusal::Full {
                max,
                reserved_for_root,
                root,
            });
        }
        counts.total += 1;
        if !root {
            counts.others += 1;
        }
        *counts.per_uid.entry(uid).or_insert(0) += 1;
        Ok(Slot {
            admission: self.clone(),
            uid,
            root,
        })
    }

    /// Connections open now, in all and from `uid`.
    pub fn open(&self, uid: u32) -> (usize, usize) {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        (counts.total, counts.per_uid.get(&uid).copied().unwrap_or(0))
    }

    fn release(&self, uid: u32, root: bool) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if !root {
            counts.others = counts.others.saturating_sub(1);
        }
        if let Some(n) = counts.per_uid.get_mut(&uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_uid.remove(&uid);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.release(self.uid, self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: u32 = 0;

    fn ledger(
        max_connections: usize,
        reserved_for_root: usize,
        max_per_uid: usize,
    ) -> Arc<Admission> {
        Admission::new(Limits {
            max_connections,
            reserved_for_root,
            max_per_uid,
        })
    }

    fn admit(a: &Arc<Admission>, uid: u32) -> Result<Slot, Refusal> {
        a.admit(uid, uid == ROOT)
    }

    #[test]
    fn one_uid_is_capped_and_others_still_get_in() {
        let a = ledger(64, 4, 16);
        let held: Vec<Slot> = (0..16).map(|_| admit(&a, 1000).unwrap()).collect();
        assert_eq!(
            admit(&a, 1000).unwrap_err(),
            Refusal::PerUid { uid: 1000, max: 16 }
        );
        assert!(admit(&a, 1001).is_ok());
        assert!(admit(&a, ROOT).is_ok());
        assert_eq!(a.open(1000), (16, 16));
        drop(held);
        assert_eq!(a.open(1000), (0, 0));
    }

    #[test]
    fn the_reserve_is_roots_alone() {
        let a = ledger(64, 4, 16);
        // Four users fill the 60 shared slots between them.
        let mut held = Vec::new();
        for uid in 1000..1004 {
            for _ in 0..15 {
                held.push(admit(&a, uid).unwrap());
            }
        }
        assert_eq!(a.open(1004), (60, 0));
        let full = admit(&a, 1004).unwrap_err();
        assert_eq!(
            full,
            Refusal::Full {
                max: 64,
                reserved_for_root: 4,
                root: false
            }
        );
        assert!(full.to_string().contains("kept for root"), "{full}");
        // Root gets the four held back, then no more.
        let roots: Vec<Slot> = (0..4).map(|_| admit(&a, ROOT).unwrap()).collect();
        assert!(matches!(
            admit(&a, ROOT),
            Err(Refusal::Full { root: true, .. })
        ));
        // A freed shared slot goes to whoever asks first, user or root.
        held.pop();
        drop(admit(&a, 1004).unwrap());
        drop(roots);
        assert_eq!(a.open(ROOT), (59, 0));
    }

    #[test]
    fn root_never_narrows_the_other_users_share() {
        let a = ledger(4, 2, 4);
        let r1 = admit(&a, ROOT).unwrap();
        let _r2 = admit(&a, ROOT).unwrap();
        // Root holds two, yet the users still get their two.
        let _u1 = admit(&a, 1000).unwrap();
        let _u2 = admit(&a, 1001).unwrap();
        assert!(matches!(
            admit(&a, 1002),
            Err(Refusal::Full { root: false, .. })
        ));
        assert!(matches!(
            admit(&a, ROOT),
            Err(Refusal::Full { root: true, .. })
        ));
        // A slot root frees is root's again, not the users'.
        drop(r1);
        assert!(admit(&a, 1002).is_err());
        assert!(admit(&a, ROOT).is_ok());
    }

    #[test]
    fn root_is_capped_per_uid_too() {
        let a = ledger(64, 4, 2);
        let _held: Vec<Slot> = (0..2).map(|_| admit(&a, ROOT).unwrap()).collect();
        assert_eq!(
            admit(&a, ROOT).unwrap_err(),
            Refusal::PerUid { uid: ROOT, max: 2 }
        );
        assert!(admit(&a, 1000).is_ok());
    }

    #[test]
    fn a_reserve_larger_than_the_total_leaves_users_nothing_and_does_not_panic() {
        let a = ledger(2, 5, 8);
        assert!(admit(&a, 1000).is_err());
        assert!(admit(&a, ROOT).is_ok());
    }
}
