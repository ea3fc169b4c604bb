//! The database is never silently lost: the state directory's marker, the start-up check and the
//! integrity checks (docs/daemon.md, "The database is never silently lost").
//!
//! SQLite happily creates a fresh, empty database wherever a file is missing or 0 bytes long, so
//! `Store::open` alone cannot tell a first start from a lost database. The marker tells them
//! apart: `gsmgate.db.initialised` (the database's file name plus `.initialised`, next to it) is
//! written once the database has been created and migrated, and from then on a missing, empty or
//! unusable database is a start-up error naming the file and `gsmgate restore FILE`, never a new
//! empty database. An installation from before the marker (database present, no marker) gets the
//! marker at its next start. A 0-byte database is refused even without the marker: SQLite writes
//! the header during the very first open, so 0 bytes is either a crash inside the first second of
//! a first start (nothing to lose: delete it) or a truncated database of an installation older
//! than the marker (the 300 lost members); only a person can tell which.
//!
//! `PRAGMA quick_check` runs at every start (it reads every page but skips the index-content
//! comparison, so it costs about one sequential read of the file); the full `integrity_check` is
//! the daemon's scheduled job, run on a connection of its own ([`check_file`]) so that a long
//! check never holds the store's one connection, and with it every send, for seconds.
//!
//! What this file must not do: decide when checks run (the daemon schedules them) or publish
//! anything (the daemon turns a failure into an alert).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{Store, StoreError};

/// Appended to the database's file name to name its marker (`gsmgate.db.initialised`).
pub const MARKER_SUFFIX: &str = ".initialised";

/// The one restore hint every "the database is gone or damaged" message ends with.
pub const RESTORE_HINT: &str = "restore a backup with `gsmgate restore FILE` (docs/daemon.md)";

/// The marker file of the database at `db`.
pub fn marker_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(MARKER_SUFFIX);
    db.with_file_name(name)
}

/// Why the daemon refuses to start on its database. Each message is one line that names the
/// file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartCheckError {
    #[error(
        "database {path} is missing but this state directory was initialised ({marker} exists); \
         {RESTORE_HINT}, or delete the marker to start with an empty database"
    )]
    Missing { path: PathBuf, marker: PathBuf },
    #[error(
        "database {path} is empty (0 bytes); {RESTORE_HINT}, or delete the empty file if this is \
         a new installation"
    )]
    Empty { path: PathBuf },
    #[error("database {path} cannot be read ({cause}); {RESTORE_HINT}")]
    Unreadable { path: PathBuf, cause: String },
    #[error("database {path} is corrupt: it failed its integrity check ({detail}); {RESTORE_HINT}")]
    Corrupt { path: PathBuf, detail: String },
    /// A refusal of `Store::open` that names the file itself: a newer schema (with its remedy),
    /// or a file SQLite cannot open or migrate (its cause chain tells a full or read-only disk
    /// from a damaged file).
    #[error(transparent)]
    Store(StoreError),
    #[error("cannot write the marker {path}: {cause}")]
    Marker { path: PathBuf, cause: String },
}

impl StartCheckError {
    /// The database file (or marker) the refusal is about.
    pub fn path(&self) -> Option<&Path> {
        match self {
            StartCheckError::Missing { path, .. }
            | StartCheckError::Empty { path }
            | StartCheckError::Unreadable { path, .. }
            | StartCheckError::Corrupt { path, .. }
            | StartCheckError::Marker { path, .. } => Some(path),
            StartCheckError::Store(
                StoreError::Open { path, .. }
                | StoreError::Migration { path, .. }
                | StoreError::TooNew { path, .. }
                | StoreError::NotADatabase { path, .. },
            ) => Some(path),
            StartCheckError::Store(_) => None,
        }
    }
}

/// Opens the daemon's database the safe way: refuses a missing or empty database of an
/// initialised state directory, opens and migrates it, runs `PRAGMA quick_check`, and writes
/// the marker when it is not there yet.
pub fn open_checked(path: &Path) -> Result<Store, StartCheckError> {
    let marker = marker_path(path);
    let marked = marker.exists();
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if marked {
                return Err(StartCheckError::Missing {
                    path: path.to_path_buf(),
                    marker,
                });
            }
            // First start: Store::open creates it below.
        }
        Err(e) => {
            return Err(StartCheckError::Unreadable {
                path: path.to_path_buf(),
                cause: e.to_string(),
            });
        }
        Ok(m) if m.len() == 0 => {
            return Err(StartCheckError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => {}
    }
    let store = Store::open(path).map_err(|e| match e {
        StoreError::TooNew { .. } => StartCheckError::Store(e),
        StoreError::NotADatabase { detail, .. } => StartCheckError::Corrupt {
            path: path.to_path_buf(),
            detail,
        },
        // Open and migration errors name the file themselves and keep SQLite's error as their
        // source: what a full or read-only disk looks like.
        StoreError::Open { .. } | StoreError::Migration { .. } => StartCheckError::Store(e),
        other => StartCheckError::Unreadable {
            path: path.to_path_buf(),
            cause: other.to_string(),
        },
    })?;
    if let Err(detail) = store.check(CheckKind::Quick) {
        return Err(StartCheckError::Corrupt {
            path: path.to_path_buf(),
            detail,
        });
    }
    if !marked {
        write_marker(path).map_err(|cause| StartCheckError::Marker {
            path: marker,
            cause,
        })?;
    }
    Ok(store)
}

/// Writes (or rewrites) the marker of the database at `db`, durably: the marker's whole point is
/// to survive the next power cut, so it is fsynced and so is its directory entry.
pub fn write_marker(db: &Path) -> Result<(), String> {
    let marker = marker_path(db);
    let text = format!(
        "gsmgate: {} holds this gateway's database. If it is ever missing or empty, the daemon \
         refuses to start instead of creating an empty one; restore a backup with \
         `gsmgate restore FILE`, or delete this file to start over with an empty database.\n",
        db.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut f = fs::File::create(&marker).map_err(|e| e.to_string())?;
    f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    sync_dir(&marker);
    Ok(())
}

/// Fsyncs the directory holding `path`, so a create or rename in it survives a power cut. Best
/// effort: some file systems (vfat on a USB stick) refuse to open a directory for syncing.
pub(crate) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Which SQLite check to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// `PRAGMA quick_check`: page structure, no index-content comparison. At start-up.
    Quick,
    /// `PRAGMA integrity_check`: everything. Scheduled.
    Full,
}

impl CheckKind {
    fn pragma(self) -> &'static str {
        match self {
            CheckKind::Quick => "quick_check",
            CheckKind::Full => "integrity_check",
        }
    }
}

/// Runs a check on `conn`: `Ok` when SQLite says "ok", else the first problems it reported.
fn run_check(conn: &Connection, kind: CheckKind) -> Result<(), String> {
    // At most 5 problems: enough to say what is wrong, short enough for one log line.
    let sql = format!("PRAGMA {}(5)", kind.pragma());
    let rows: rusqlite::Result<Vec<String>> = conn.prepare(&sql).and_then(|mut stmt| {
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()
    });
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(()),
        Ok(rows) if rows.is_empty() => Err(format!("{} returned nothing", kind.pragma())),
        // SQLite puts several problems in one row, on lines of their own, under a heading.
        Ok(rows) => Err(format!(
            "{}: {}",
            kind.pragma(),
            rows.iter()
                .flat_map(|r| r.lines())
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("***"))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(e) => Err(format!("{}: {e}", kind.pragma())),
    }
}

impl Store {
    /// Runs `kind` on the store's own connection (start-up, before anything else uses it).
    pub fn check(&self, kind: CheckKind) -> Result<(), String> {
        match self.conn().lite() {
            Some(conn) => run_check(conn, kind),
            // PostgreSQL checks its own pages (checksums, WAL replay); there is no file here to
            // look at, and a broken server fails every query with its own error instead.
            None => Ok(()),
        }
    }
}

/// Runs `kind` on a connection of its own to the database file at `path` (read-only, so it
/// neither blocks the daemon's writers in WAL mode nor creates files). `Err` carries the
/// problems, or why the file could not be read.
pub fn check_file(path: &Path, kind: CheckKind) -> Result<(), String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open: {e}"))?;
    conn.busy_timeout(super::BUSY_TIMEOUT)
        .map_err(|e| e.to_string())?;
    run_check(&conn, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_database_and_marker() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gsmgate.db");
        drop(open_checked(&db).unwrap());
        assert!(db.exists());
        assert!(marker_path(&db).exists());
        assert_eq!(
            marker_path(&db).file_name().unwrap(),
            "gsmgate.db.initialised"
        );
        // A second start is a normal start.
        drop(open_checked(&db).unwrap());
    }

    #[test]
    fn an_installation_from_before_the_marker_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gsmgate.db");
        drop(Store::open(&db).unwrap());
        assert!(!marker_path(&db).exists());
        drop(open_checked(&db).unwrap());
        assert!(marker_path(&db).exists());
    }

    #[test]
    fn a_marked_dir_without_its_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gsmgate.db");
        drop(open_checked(&db).unwrap());
        fs::remove_file(&db).unwrap();
        let err = open_checked(&db).unwrap_err();
        assert!(matches!(err, StartCheckError::Missing { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&db.display().to_string()), "{msg}");
        assert!(msg.contains("gsmgate restore FILE"), "{msg}");
        assert!(!db.exists(), "no fresh database was created");
    }

    #[test]
    fn an_empty_file_is_refused_with_or_without_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gsmgate.db");
        fs::write(&db, b"").unwrap();
        let err = open_checked(&db).unwrap_err();
        assert!(matches!(err, StartCheckError::Empty { .. }), "{err}");
        assert_eq!(fs::metadata(&db).unwrap().len(), 0, "left untouched");
    }

    #[test]
    fn quick_and_full_checks_pass_on_a_healthy_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gsmgate.db");
        let store = open_checked(&db).unwrap();
        assert_eq!(store.check(CheckKind::Full), Ok(()));
        assert_eq!(check_file(&db, CheckKind::Full), Ok(()));
        assert_eq!(check_file(&db, CheckKind::Quick), Ok(()));
    }
}
