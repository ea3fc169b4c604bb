//! `doctor`'s checks of the state disk: free space on the file system that holds the state
//! directory (statvfs), and whether the running daemon's writes succeed (its `status.storage`).
//!
//! Owns the threshold and the wording; must not touch the store (the daemon's own view of its
//! writes comes over the admin socket, like every other fact doctor asks the daemon for).
//!
//! Why [`FREE_SPACE_WARN_BYTES`] is 64 MiB: one transaction can need its whole size free twice
//! over (the pages go to the WAL, then into the database at the checkpoint): a 100,000-row
//! broadcast writes ~22 MiB of pages (docs/benchmarks.md), so 64 MiB is room for the largest
//! broadcast a Pi-sized pool sends plus the journal's growth, with a margin. Below it doctor warns
//! (the gateway still works); at the point where writes fail, the daemon's own report fails the
//! check.

use std::path::Path;

use super::{Check, Status};
use crate::admin::protocol::StorageStatus;

/// Free space below which `doctor` warns about the state directory's file system.
pub const FREE_SPACE_WARN_BYTES: u64 = 64 << 20;

const SUBJECT: &str = "state dir";

/// Free bytes (for an unprivileged writer) on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    // 32-bit fields on some targets (armv7), 64-bit on others.
    #[allow(clippy::useless_conversion)]
    let (avail, frag) = (
        u64::from(st.blocks_available()),
        u64::from(st.fragment_size()),
    );
    Some(avail.saturating_mul(frag))
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
}

/// The free-space check for `free` bytes on `dir`'s file system.
pub(super) fn free_space_verdict(dir: &Path, free: u64) -> Check {
    let shown = dir.display();
    if free < FREE_SPACE_WARN_BYTES {
        Check::warn(
            SUBJECT,
            "free space",
            format!(
                "only {} free on the file system of {shown} (warns below {}); when it fills, \
                 writes fail and sending pauses",
                mib(free),
                mib(FREE_SPACE_WARN_BYTES)
            ),
            "free space there (`sudo journalctl --vacuum-size=50M`, old backups, `du -xh / | \
             sort -h | tail`) or move [daemon] state_dir to a larger disk",
        )
    } else {
        Check::ok(
            SUBJECT,
            "free space",
            format!("{} free on the file system of {shown}", mib(free)),
        )
    }
}

/// The free-space check of `dir`, `None` when it cannot be measured (the directory check
/// already said why).
pub(super) fn free_space_check(dir: &Path) -> Option<Check> {
    free_bytes(dir).map(|free| free_space_verdict(dir, free))
}

/// What the running daemon says about its own writes.
pub(super) fn daemon_writes_check(s: Option<&StorageStatus>) -> Check {
    let aspect = "daemon writes";
    let Some(s) = s else {
        return Check::skip(
            SUBJECT,
            aspect,
            "the daemon does not report its writes (not running, or older than this doctor)",
        );
    };
    let what = match s.state.as_str() {
        "ok" => {
            return Check::ok(SUBJECT, aspect, "the daemon's database writes succeed");
        }
        "full" => "state disk full",
        "read_only" => "state disk read-only",
        _ => "state disk write error",
    };
    let detail = s.detail.as_deref().unwrap_or("no detail");
    let owed = match s.unrecorded {
        0 => String::new(),
        n => format!("; {n} outcome(s) held in memory until writes work"),
    };
    let fix = match s.state.as_str() {
        "full" => "free space on the state disk; sending resumes by itself within seconds",
        "read_only" => {
            "make the state dir writable for the gsmgate user (`sudo chown -R gsmgate:gsmgate \
             /var/lib/gsmgate`) or remount the file system read-write (`dmesg` says why the \
             kernel made it read-only); sending resumes by itself"
        }
        _ => "check the disk (`dmesg`): an SD card that fails writes needs replacing",
    };
    Check::with_fix(
        Status::Fail,
        SUBJECT,
        aspect,
        format!("{what}: writes fail ({detail}); sending is paused{owed}"),
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_warns_below_the_threshold() {
        let d = Path::new("/var/lib/gsmgate");
        assert_eq!(free_space_verdict(d, 10 << 20).status, Status::Warn);
        assert_eq!(
            free_space_verdict(d, FREE_SPACE_WARN_BYTES).status,
            Status::Ok
        );
        assert!(free_space_check(Path::new("/")).is_some());
    }

    #[test]
    fn a_full_disk_reported_by_the_daemon_fails() {
        let s = StorageStatus {
            state: "full".into(),
            since: Some(1),
            detail: Some("database or disk is full".into()),
            unrecorded: 2,
            free_bytes: Some(0),
        };
        let c = daemon_writes_check(Some(&s));
        assert_eq!(c.status, Status::Fail);
        assert!(c.line().contains("state disk full"), "{}", c.line());
        assert!(c.line().contains("2 outcome(s)"), "{}", c.line());
        let ok = StorageStatus {
            state: "ok".into(),
            ..s
        };
        assert_eq!(daemon_writes_check(Some(&ok)).status, Status::Ok);
    }
}
