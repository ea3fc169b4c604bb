//! Write health of the state disk, and the size of the write-ahead log.
//!
//! Owns: the one place every write transaction passes through ([`Store::guarded`]), which
//! classifies a failed write (disk full, read-only, other I/O error) into a [`WriteHealth`] that
//! the daemon's `status`, `modems`, `doctor` and alert events read and watch, and which the next
//! successful write clears; the WAL limits (`journal_size_limit`, `wal_autocheckpoint`, a
//! `TRUNCATE` checkpoint after a commit that left the WAL large); a probe write for a paused
//! sender; and a test hook that makes writes fail as a full or read-only disk would.
//! Must not touch: what a caller does about a failed write (the dispatch runner pauses and keeps
//! its unrecorded outcomes in memory; the daemon raises the alert). docs/store.md, "Write
//! health and the WAL", and docs/daemon.md, "A full or read-only disk", have the long form.
//!
//! Why these choices:
//! - The classification reads SQLite's result code first: the unix VFS reports `ENOSPC` as
//!   `SQLITE_FULL`, and a database it could only open read-only (or a read-only directory for
//!   the WAL) as `SQLITE_READONLY*`. A write to a file on a file system remounted read-only
//!   comes back as `SQLITE_IOERR_WRITE`; only the OS error (`sqlite3_system_errno`) tells
//!   `EROFS`/`EACCES` apart from a dying SD card (`EIO`), so an I/O error asks for it.
//! - `since` is the first failure's wall-clock instant. Unlike the rows' stamps it is read here
//!   (`time::now_ms`): it is a diagnostic of when the store saw the failure, not state a caller
//!   decides, and no caller is in a position to pass it.
//! - A `tokio::sync::watch` carries the state: writers set it synchronously, the daemon awaits
//!   changes without polling, and `status` reads the latest value without the connection lock.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, ErrorCode, ffi};

use super::db::{Conn, params};
use tokio::sync::watch;

use super::{Result, SqlContext, Store, StoreError};

/// `PRAGMA wal_autocheckpoint`, in pages (4 KiB each): SQLite checkpoints at the commit that
/// takes the WAL past 1 MiB. SQLite's default of 1,000 pages (~4 MiB) filled a 2 MB state disk
/// after ~40 sends (issue 14). More frequent checkpoints cost little here: the hot pages (the
/// outbox index, the send log) are few, and a checkpoint of 1 MiB is one short fsync'd write.
pub const WAL_AUTOCHECKPOINT_PAGES: i64 = 256;

/// `PRAGMA journal_size_limit`, in bytes: when a checkpoint lets the WAL restart from its
/// beginning, SQLite truncates the file to this size instead of keeping its high-water mark.
pub const JOURNAL_SIZE_LIMIT: i64 = 1 << 20;

/// After a commit that leaves the WAL file larger than this (a large broadcast, a member
/// import: one transaction can add tens of MiB), the store runs `wal_checkpoint(TRUNCATE)` at
/// once, so the space comes back now rather than at the next write.
pub const WAL_TRUNCATE_ABOVE: u64 = 4 << 20;

/// Whether the last write to the database succeeded, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteHealth {
    Healthy,
    /// The disk (or the database's page limit) is full: `SQLITE_FULL`, `ENOSPC`.
    Full {
        since: i64,
        detail: String,
    },
    /// The file, its directory or the file system is read-only: `SQLITE_READONLY*`, `EROFS`,
    /// `EACCES`/`EPERM` on a write.
    ReadOnly {
        since: i64,
        detail: String,
    },
    /// Another I/O error on a write (`EIO` and the like: a failing SD card).
    IoError {
        since: i64,
        detail: String,
    },
}

impl WriteHealth {
    pub fn is_healthy(&self) -> bool {
        matches!(self, WriteHealth::Healthy)
    }

    /// The word `status --json` shows: `ok`, `full`, `read_only`, `io_error`.
    pub fn word(&self) -> &'static str {
        match self {
            WriteHealth::Healthy => "ok",
            WriteHealth::Full { .. } => "full",
            WriteHealth::ReadOnly { .. } => "read_only",
            WriteHealth::IoError { .. } => "io_error",
        }
    }

    /// When writes started failing.
    pub fn since(&self) -> Option<i64> {
        match self {
            WriteHealth::Healthy => None,
            WriteHealth::Full { since, .. }
            | WriteHealth::ReadOnly { since, .. }
            | WriteHealth::IoError { since, .. } => Some(*since),
        }
    }

    /// SQLite's (or the OS's) own words for the first failure.
    pub fn detail(&self) -> Option<&str> {
        match self {
            WriteHealth::Healthy => None,
            WriteHealth::Full { detail, .. }
            | WriteHealth::ReadOnly { detail, .. }
            | WriteHealth::IoError { detail, .. } => Some(detail),
        }
    }

    /// One line for people: "state disk full", "state disk read-only", ...
    pub fn headline(&self) -> &'static str {
        match self {
            WriteHealth::Healthy => "state disk writable",
            WriteHealth::Full { .. } => "state disk full",
            WriteHealth::ReadOnly { .. } => "state disk read-only",
            WriteHealth::IoError { .. } => "state disk write error",
        }
    }
}

/// What [`Store::inject_write_error`] makes every write fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// `SQLITE_FULL`, as SQLite reports `ENOSPC`.
    Full,
    /// `SQLITE_READONLY`, as for a database file the process may only read.
    ReadOnly,
}

/// The store's shared health state (one per database handle, shared by its clones).
pub(super) struct Health {
    tx: watch::Sender<WriteHealth>,
    injected: Mutex<Option<WriteFault>>,
}

impl Health {
    pub(super) fn new() -> Health {
        Health {
            tx: watch::Sender::new(WriteHealth::Healthy),
            injected: Mutex::new(None),
        }
    }

    fn injected(&self) -> Option<WriteFault> {
        *self.injected.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the outcome of one write. Only write failures change the state to unhealthy;
    /// an error that says nothing about the disk (a row in the wrong state) leaves it as is.
    fn observe(&self, conn: &Conn, ok: bool, err: Option<&StoreError>) {
        if ok {
            self.tx.send_if_modified(|h| {
                let was = !h.is_healthy();
                *h = WriteHealth::Healthy;
                was
            });
            return;
        }
        let Some(kind) = err.and_then(|e| classify(conn, e)) else {
            return;
        };
        self.tx.send_if_modified(|h| match (&*h, &kind) {
            // Same kind as before: keep the first instant and detail.
            (WriteHealth::Full { .. }, WriteHealth::Full { .. })
            | (WriteHealth::ReadOnly { .. }, WriteHealth::ReadOnly { .. })
            | (WriteHealth::IoError { .. }, WriteHealth::IoError { .. }) => false,
            _ => {
                *h = kind.clone();
                true
            }
        });
    }
}

/// The write-health kind of a failed write, if the error is one (`None` for logic errors).
fn classify(conn: &Conn, err: &StoreError) -> Option<WriteHealth> {
    let since = crate::time::now_ms();
    if let StoreError::Sql { source, .. } = err
        && source.is_unavailable()
    {
        return Some(WriteHealth::IoError {
            since,
            detail: source.to_string(),
        });
    }
    let source = sqlite_source(err)?;
    let detail = source.to_string();
    match source.sqlite_error_code()? {
        // Also on PostgreSQL: an injected fault is shaped as SQLite's error whatever the backend.
        ErrorCode::DiskFull => Some(WriteHealth::Full { since, detail }),
        ErrorCode::ReadOnly => Some(WriteHealth::ReadOnly { since, detail }),
        ErrorCode::SystemIoFailure | ErrorCode::CannotOpen => {
            let Some(conn) = conn.lite() else {
                return Some(WriteHealth::IoError { since, detail });
            };
            // SAFETY: `conn` is borrowed, so its handle is open; sqlite3_system_errno only reads
            // the errno SQLite saved for the last failed OS call on this connection.
            let errno = unsafe { ffi::sqlite3_system_errno(conn.handle()) };
            let os = std::io::Error::from_raw_os_error(errno);
            let detail = format!("{detail} ({os})");
            match nix::errno::Errno::from_raw(errno) {
                nix::errno::Errno::ENOSPC | nix::errno::Errno::EDQUOT => {
                    Some(WriteHealth::Full { since, detail })
                }
                nix::errno::Errno::EROFS | nix::errno::Errno::EACCES | nix::errno::Errno::EPERM => {
                    Some(WriteHealth::ReadOnly { since, detail })
                }
                _ => Some(WriteHealth::IoError { since, detail }),
            }
        }
        _ => None,
    }
}

impl StoreError {
    /// Whether this error is a failed write to the disk (full, read-only, I/O), as opposed to a
    /// refusal about the data. A caller may keep such a write and try it again later.
    pub fn is_write_failure(&self) -> bool {
        if let StoreError::Sql { source, .. } = self
            && source.is_unavailable()
        {
            return true;
        }
        let Some(source) = sqlite_source(self) else {
            return false;
        };
        matches!(
            source.sqlite_error_code(),
            Some(
                ErrorCode::DiskFull
                    | ErrorCode::ReadOnly
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
            )
        )
    }
}

/// The SQLite error inside a store error, if it is one.
fn sqlite_source(err: &StoreError) -> Option<&rusqlite::Error> {
    match err {
        StoreError::Sql { source, .. } => source.as_sqlite(),
        StoreError::Migration { source, .. } => Some(source),
        _ => None,
    }
}

/// The error an injected fault produces, shaped as SQLite's own.
fn injected_error(op: &'static str, fault: WriteFault) -> StoreError {
    let (code, msg) = match fault {
        WriteFault::Full => (ffi::SQLITE_FULL, "database or disk is full (injected)"),
        WriteFault::ReadOnly => (
            ffi::SQLITE_READONLY,
            "attempt to write a readonly database (injected)",
        ),
    };
    StoreError::Sql {
        op,
        source: rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(msg.to_string())).into(),
    }
}

/// Sets the WAL limits on a new connection (called from `configure`).
pub(super) fn configure_wal(conn: &Connection) -> rusqlite::Result<()> {
    let _limit: i64 =
        conn.pragma_update_and_check(None, "journal_size_limit", JOURNAL_SIZE_LIMIT, |r| r.get(0))?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
}

/// Size of the WAL file next to `db` (0 when there is none, e.g. in memory).
pub fn wal_size(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(Path::new(&wal)).map_or(0, |m| m.len())
}

/// The smallest real write: the database header's `application_id`, rewritten with its own
/// value (one page, in the caller's transaction). A probe of the disk, and the way to fsync
/// commits made without it (`Store::write_sync_later`).
pub(super) fn rewrite_header(tx: &Conn) -> Result<()> {
    const OP: &str = "rewriting the database header";
    match tx.lite() {
        Some(tx) => {
            let id: i32 = tx
                .pragma_query_value(None, "application_id", |r| r.get(0))
                .ctx(OP)?;
            tx.pragma_update(None, "application_id", id).ctx(OP)
        }
        // A transaction id makes the commit a real one: it writes a commit record and waits
        // for the server's log to be flushed up to it (a transaction without one does not).
        None => tx
            .query_row("SELECT pg_current_xact_id()::text", params![], |r| {
                r.get::<String>(0)
            })
            .map(drop)
            .ctx(OP),
    }
}

impl Store {
    /// Runs one write (`f` opens and commits its own transaction) under the health watch: an
    /// injected fault fails it before it starts; its outcome updates [`Store::write_health`];
    /// a commit that left the WAL above [`WAL_TRUNCATE_ABOVE`] is followed by a `TRUNCATE`
    /// checkpoint.
    pub(super) fn guarded<T>(
        &self,
        op: &'static str,
        conn: &Conn,
        f: impl FnOnce(&Conn) -> Result<T>,
    ) -> Result<T> {
        let out = match self.health.injected() {
            Some(fault) => Err(injected_error(op, fault)),
            None => f(conn),
        };
        self.health.observe(conn, out.is_ok(), out.as_ref().err());
        if let Some(conn) = conn.lite()
            && out.is_ok()
            && wal_size(&self.path) > WAL_TRUNCATE_ABOVE
        {
            // Best effort: a checkpoint that cannot finish now (disk full) leaves the WAL as
            // it is and the next large commit tries again.
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "checkpointing the write-ahead log failed");
            }
        }
        out
    }

    /// Whether the last write succeeded; the next successful write clears a failure.
    pub fn write_health(&self) -> WriteHealth {
        self.health.tx.borrow().clone()
    }

    /// A receiver that sees every change of [`Store::write_health`] (for alerts).
    pub fn watch_write_health(&self) -> watch::Receiver<WriteHealth> {
        self.health.tx.subscribe()
    }

    /// A minimal real write (the database header's `application_id`, rewritten with its own
    /// value): a paused sender calls it to learn whether the disk takes writes again.
    pub fn probe_write(&self) -> Result<()> {
        self.write("probing the state disk", rewrite_header)
    }

    /// Free bytes (for an unprivileged writer) on the file system that holds the database;
    /// `None` in memory or when the file system cannot say.
    pub fn free_bytes(&self) -> Option<u64> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty())?;
        let st = nix::sys::statvfs::statvfs(dir).ok()?;
        // The field types are 32-bit on some targets (armv7), 64-bit on others.
        #[allow(clippy::useless_conversion)]
        let (avail, frag) = (
            u64::from(st.blocks_available()),
            u64::from(st.fragment_size()),
        );
        Some(avail.saturating_mul(frag))
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)`: copies the WAL into the database and empties it.
    pub fn checkpoint(&self) -> Result<()> {
        let conn = self.conn();
        let Some(conn) = conn.lite() else {
            return Ok(());
        };
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .ctx("checkpointing the write-ahead log")
    }

    /// Test hook: from now on every write fails as on a full (or read-only) disk, until called
    /// with `None`. Reads keep working, as they do on a real full disk. Tests use it where a
    /// small tmpfs is not available to an unprivileged user.
    #[doc(hidden)]
    pub fn inject_write_error(&self, fault: Option<WriteFault>) {
        *self
            .health
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = fault;
    }
}

/// A one-part direct message to the `n`th number (the tests' unit of write).
#[cfg(test)]
fn msg(n: u32) -> crate::store::NewOutbox {
    crate::store::NewOutbox::new(
        format!("+1555000{n:04}"),
        "hello",
        crate::store::MessageKind::Direct,
        1_000,
    )
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Inside as well: clippy exempts test helpers only in a module that carries it.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_full_disk_is_reported_and_the_next_good_write_clears_it() {
        let store = fresh();
        let mut seen = store.watch_write_health();
        assert!(store.write_health().is_healthy());
        store.inject_write_error(Some(WriteFault::Full));
        let err = store.enqueue(&msg(1)).unwrap_err();
        assert!(err.is_write_failure(), "{err}");
        let h = store.write_health();
        assert_eq!(h.word(), "full");
        assert_eq!(h.headline(), "state disk full");
        assert!(seen.has_changed().unwrap());
        seen.borrow_and_update();
        // Reads still work, and a second failure keeps the first instant.
        assert_eq!(store.state_counts().unwrap().queued, 0);
        assert!(store.probe_write().is_err());
        assert_eq!(store.write_health(), h);
        assert!(!seen.has_changed().unwrap());
        store.inject_write_error(None);
        store.probe_write().unwrap();
        assert!(store.write_health().is_healthy());
        assert!(seen.has_changed().unwrap());
    }

    #[test]
    fn a_logic_error_does_not_change_the_health() {
        let store = fresh();
        let err = store.mark_sent(12345, 1).unwrap_err();
        assert!(!err.is_write_failure());
        assert!(store.write_health().is_healthy());
    }
}
}

/// What only SQLite has: a database file, its page cap, its read-only mode and its WAL.
#[cfg(test)]
mod sqlite_only_tests {
    use super::*;

    /// A real `SQLITE_FULL` from SQLite itself: `max_page_count` caps the database file, the
    /// way a full disk caps it, without needing a tmpfs (unprivileged tests cannot mount one).
    #[test]
    fn a_real_sqlite_full_is_classified_as_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("g.db")).unwrap();
        let pages: i64 = store.pragma("page_count").unwrap().parse().unwrap();
        store
            .conn()
            .lite()
            .unwrap()
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let big = "x".repeat(3_000);
        let mut failed = None;
        for n in 0..200 {
            let mut m = msg(n);
            m.text = big.clone();
            if let Err(e) = store.enqueue(&m) {
                failed = Some(e);
                break;
            }
        }
        let err = failed.expect("the page cap was never reached");
        assert!(err.is_write_failure(), "{err}");
        assert_eq!(store.write_health().word(), "full");
        store
            .conn()
            .lite()
            .unwrap()
            .pragma_update(None, "max_page_count", 1_000_000)
            .unwrap();
        store.enqueue(&msg(999)).unwrap();
        assert!(store.write_health().is_healthy());
    }

    /// A real `SQLITE_READONLY`: the same file through a read-only connection.
    #[test]
    fn a_real_read_only_database_is_classified_as_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        drop(Store::open(&path).unwrap());
        let conn =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let store = Store::wrap(Conn::Lite(conn), path);
        let err = store.enqueue(&msg(1)).unwrap_err();
        assert!(err.is_write_failure(), "{err}");
        assert_eq!(store.write_health().word(), "read_only");
    }

    #[test]
    fn the_wal_limits_are_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("g.db")).unwrap();
        assert_eq!(
            store.pragma("journal_size_limit").unwrap(),
            JOURNAL_SIZE_LIMIT.to_string()
        );
        assert_eq!(
            store.pragma("wal_autocheckpoint").unwrap(),
            WAL_AUTOCHECKPOINT_PAGES.to_string()
        );
    }

    /// N one-part sends the way the runner records them (enqueue, claim, part, sent: four
    /// commits), returning the largest WAL size seen after any send.
    fn max_wal_over_sends(store: &Store, n: u32) -> u64 {
        let route = crate::store::ClaimRoute::default();
        let mut max = 0;
        for k in 0..n {
            let now = 1_000 + i64::from(k);
            let id = store.enqueue(&msg(k)).unwrap();
            let row = store.claim_next_routed("m0", now, &route).unwrap().unwrap();
            assert_eq!(row.id, id);
            store
                .record_part_sent(id, 1, 1, (k % 256) as u8, now)
                .unwrap();
            store.mark_sent(id, now).unwrap();
            max = max.max(wal_size(store.path()));
        }
        max
    }

    /// The WAL stays bounded over many sends. Figures (docs/store.md): 300 sends with SQLite's
    /// defaults (autocheckpoint 1,000 pages, no size limit) grew the WAL to ~4 MiB and kept it
    /// there; with these settings it never passes ~1.1 MiB, and a TRUNCATE checkpoint empties it.
    #[test]
    fn the_wal_stays_small_over_many_sends() {
        const SENDS: u32 = 300;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("new.db")).unwrap();
        // No fsync in this measurement (it does not change what goes into the WAL, only time).
        store
            .conn()
            .lite()
            .unwrap()
            .pragma_update(None, "synchronous", "OFF")
            .unwrap();
        let bounded = max_wal_over_sends(&store, SENDS);
        let old = Store::open(dir.path().join("old.db")).unwrap();
        old.conn()
            .execute_batch(
                "PRAGMA journal_size_limit = -1; PRAGMA wal_autocheckpoint = 1000; \
                 PRAGMA synchronous = OFF;",
            )
            .unwrap();
        let unbounded = max_wal_over_sends(&old, SENDS);
        eprintln!("max WAL over {SENDS} sends: defaults {unbounded} B, gsmgate {bounded} B");
        let limit = (WAL_AUTOCHECKPOINT_PAGES as u64 + 64) * 4_200;
        assert!(
            bounded <= limit,
            "WAL grew to {bounded} B (limit {limit} B)"
        );
        assert!(unbounded > bounded, "{unbounded} vs {bounded}");
        store.checkpoint().unwrap();
        assert_eq!(wal_size(store.path()), 0);
    }

    /// A transaction far larger than the WAL limits (a big broadcast) is followed by a TRUNCATE
    /// checkpoint: the space comes back at once, not at the next write.
    #[test]
    fn a_large_transaction_is_checkpointed_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("g.db")).unwrap();
        let text = "y".repeat(1_000);
        store
            .write("filling", |tx| {
                for k in 0..6_000 {
                    let mut m = msg(k);
                    m.text = text.clone();
                    crate::store::outbox::enqueue_in(tx, &m)?;
                }
                Ok(())
            })
            .unwrap();
        assert!(
            wal_size(store.path()) <= WAL_TRUNCATE_ABOVE,
            "{}",
            wal_size(store.path())
        );
    }
}
