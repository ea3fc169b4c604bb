//! Backups and restores of the database file with SQLite's online backup API
//! (<https://www.sqlite.org/backup.html>): `gsmgate backup FILE`, the daemon's scheduled backups
//! into `[daemon] backup_dir` with retention, and `gsmgate restore FILE` (docs/daemon.md).
//!
//! Choices worth knowing:
//! - The source is read on a connection of its own, and the whole copy is one `step(-1)`: one
//!   read transaction, so the copy is the database as of one commit even while the daemon keeps
//!   writing (WAL readers never block writers, and the daemon's connection is never held).
//! - That connection is opened read-write, never read-only: when the daemon is stopped it is the
//!   last connection, and only a read-write last connection checkpoints and deletes `-wal` and
//!   `-shm` on close. A read-only one run by root would leave root-owned `-wal`/`-shm` behind, and
//!   the daemon (user gsmgate) could not open its own database afterwards. For the same reason any
//!   `-wal`/`-shm` the open created are given the database's owner at once ([`match_owner`]).
//! - Every file is written as a temporary file in the destination directory, fsynced, renamed
//!   over the destination and the directory fsynced: a backup is either complete or absent.
//! - A backup copy is switched to `journal_mode=DELETE` and verified with `quick_check`: it is one
//!   self-contained file (nothing to forget beside it on a USB stick), and a copy of a database
//!   that was already damaged is refused instead of rotating the good backups out.
//!
//! What this file must not do: decide when backups run (the daemon), talk to the daemon (the CLI
//! checks that it is stopped before a restore), or read configuration.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::integrity::{self, CheckKind, sync_dir};
use super::{APPLICATION_ID, BUSY_TIMEOUT, schema};

/// Scheduled backups are named `gsmgate-<UTC time>.db`, so that names sort by age.
const SCHEDULED_PREFIX: &str = "gsmgate-";
const SCHEDULED_SUFFIX: &str = ".db";
/// How often a busy or locked source is retried before the backup gives up (50 ms apart).
const BUSY_RETRIES: u32 = 200;

/// Errors of a backup or a restore; each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot open {path}: {cause}")]
    Open { path: PathBuf, cause: String },
    #[error("{path} is not a usable gsmgate backup: {reason}")]
    NotABackup { path: PathBuf, reason: String },
    #[error("copying {from} to {to} failed: {cause}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        cause: String,
    },
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Io {
        path: path.to_path_buf(),
        cause: e.to_string(),
    }
}

/// What a verified database file holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
    pub members: u64,
}

/// What `restore_database` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RestoreReport {
    pub restored: BackupInfo,
    /// Where the database that was replaced now is (none when there was none).
    pub previous: Option<PathBuf>,
}

/// Copies the database at `src` to `dst` (consistent while the daemon writes), verifies the copy
/// and replaces `dst` atomically.
pub fn backup_database(src: &Path, dst: &Path) -> Result<BackupInfo, BackupError> {
    if !src.is_file() {
        return Err(BackupError::Open {
            path: src.to_path_buf(),
            cause: "no such file".into(),
        });
    }
    if same_file(src, dst) {
        return Err(BackupError::Io {
            path: dst.to_path_buf(),
            cause: "is the database itself; write the backup somewhere else".into(),
        });
    }
    let source = open(src, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let _ = source.busy_timeout(BUSY_TIMEOUT);
    match_owner(src);
    let tmp = temp_beside(dst, "backup");
    let result = copy_into(&source, src, &tmp).and_then(|()| {
        let info = verify(&tmp)?;
        finish(&tmp, dst)?;
        Ok(BackupInfo {
            path: dst.to_path_buf(),
            ..info
        })
    });
    drop(source);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Opens `path` with `flags` (never shared between threads), naming the file in the error.
fn open(path: &Path, flags: OpenFlags) -> Result<Connection, BackupError> {
    Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(|e| {
        BackupError::Open {
            path: path.to_path_buf(),
            cause: e.to_string(),
        }
    })
}

/// Opens `file` read-only and checks that it is a gsmgate database this build can use:
/// application id, `quick_check`, a known schema version.
pub fn verify(file: &Path) -> Result<BackupInfo, BackupError> {
    let not_backup = |reason: String| BackupError::NotABackup {
        path: file.to_path_buf(),
        reason,
    };
    let bytes = fs::metadata(file).map_err(io(file))?.len();
    if bytes == 0 {
        return Err(not_backup("the file is empty".into()));
    }
    let conn = open(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| not_backup(e.to_string()))?;
    if app_id != APPLICATION_ID {
        return Err(not_backup(format!(
            "application_id {app_id:#x} is not gsmgate's"
        )));
    }
    let schema_version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| not_backup(e.to_string()))?;
    let known = schema::MIGRATIONS.len() as i64;
    if schema_version < 1 || schema_version > known {
        return Err(not_backup(format!(
            "schema version {schema_version}, this gsmgate knows 1 to {known}"
        )));
    }
    integrity::check_file(file, CheckKind::Quick).map_err(not_backup)?;
    let members: i64 = conn
        .query_row("SELECT count(*) FROM members", [], |r| r.get(0))
        .map_err(|e| not_backup(e.to_string()))?;
    Ok(BackupInfo {
        path: file.to_path_buf(),
        bytes,
        schema_version,
        members: u64::try_from(members).unwrap_or(0),
    })
}

/// Replaces the database at `db` with the verified copy of `file`. The caller makes sure the
/// daemon is stopped. The replaced database is kept as `<db>.before-restore-<UTC time>` (with its
/// `-wal`, which may hold its last commits); its `-shm` is removed; the marker is written.
pub fn restore_database(file: &Path, db: &Path) -> Result<RestoreReport, BackupError> {
    verify(file)?;
    let source = open(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let tmp = temp_beside(db, "restore");
    if let Err(e) = copy_into(&source, file, &tmp) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    drop(source);
    // The daemon must own what it opens: give the new file the old database's owner and mode
    // (or the state directory's owner), since `sudo gsmgate restore` runs as root.
    let like = if db.exists() {
        db.to_path_buf()
    } else {
        db.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    if let Ok(m) = fs::metadata(&like) {
        let _ = std::os::unix::fs::chown(&tmp, Some(m.uid()), Some(m.gid()));
        let mode = if m.is_dir() { 0o600 } else { m.mode() & 0o777 };
        let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(mode));
    }
    let previous = if db.exists() {
        let aside = with_suffix(
            db,
            &format!(".before-restore-{}", stamp(crate::time::now_ms())),
        );
        fs::rename(db, &aside).map_err(io(db))?;
        let wal = with_suffix(db, "-wal");
        if wal.exists() {
            fs::rename(&wal, with_suffix(&aside, "-wal")).map_err(io(&wal))?;
        }
        Some(aside)
    } else {
        None
    };
    let shm = with_suffix(db, "-shm");
    if shm.exists() {
        fs::remove_file(&shm).map_err(io(&shm))?;
    }
    fs::rename(&tmp, db).map_err(io(db))?;
    sync_dir(db);
    integrity::write_marker(db).map_err(|cause| BackupError::Io {
        path: integrity::marker_path(db),
        cause,
    })?;
    let restored = BackupInfo {
        path: db.to_path_buf(),
        ..verify(db)?
    };
    Ok(RestoreReport { restored, previous })
}

/// One scheduled backup: writes `gsmgate-<UTC time>.db` into `dir` (created if missing) and then
/// deletes the oldest scheduled backups beyond `keep`. A copy that fails verification is not kept
/// and nothing is deleted, so a damaged database never rotates the good backups out.
pub fn scheduled_backup(
    db: &Path,
    dir: &Path,
    keep: usize,
    now_ms: i64,
) -> Result<(BackupInfo, Vec<PathBuf>), BackupError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let dst = dir.join(format!(
        "{SCHEDULED_PREFIX}{}{SCHEDULED_SUFFIX}",
        stamp(now_ms)
    ));
    let info = backup_database(db, &dst)?;
    let mut all = scheduled_backups(dir)?;
    let mut removed = Vec::new();
    if all.len() > keep {
        let excess = all.len() - keep;
        for old in all.drain(..excess) {
            fs::remove_file(&old).map_err(io(&old))?;
            removed.push(old);
        }
        sync_dir(&dst);
    }
    Ok((info, removed))
}

/// The scheduled backups in `dir`, oldest first (their names sort by time).
pub fn scheduled_backups(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SCHEDULED_PREFIX) && name.ends_with(SCHEDULED_SUFFIX) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Unix ms of the newest scheduled backup in `dir` (its modification time), if any.
pub fn newest_backup_ms(dir: &Path) -> Option<i64> {
    let newest = scheduled_backups(dir).ok()?.pop()?;
    let modified = fs::metadata(newest).ok()?.modified().ok()?;
    let d = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// Copies the whole database behind `source` into a new file at `tmp`, in one step.
fn copy_into(source: &Connection, from: &Path, tmp: &Path) -> Result<(), BackupError> {
    let fail = |cause: String| BackupError::Copy {
        from: from.to_path_buf(),
        to: tmp.to_path_buf(),
        cause,
    };
    let _ = fs::remove_file(tmp);
    let mut dest = Connection::open(tmp).map_err(|e| fail(e.to_string()))?;
    {
        let backup = Backup::new(source, &mut dest).map_err(|e| fail(e.to_string()))?;
        let mut tries = 0;
        loop {
            // -1: every page in one step, i.e. within one read transaction on the source.
            match backup.step(-1).map_err(|e| fail(e.to_string()))? {
                StepResult::Done => break,
                StepResult::More => {}
                // Busy, Locked (and any result a newer rusqlite adds): wait and retry.
                _ => {
                    tries += 1;
                    if tries > BUSY_RETRIES {
                        return Err(fail("the database stayed locked".into()));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    let _: String = dest
        .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))
        .map_err(|e| fail(e.to_string()))?;
    dest.close().map_err(|(_, e)| fail(e.to_string()))?;
    fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(tmp))?;
    Ok(())
}

/// Renames the finished `tmp` over `dst` and makes the rename durable.
fn finish(tmp: &Path, dst: &Path) -> Result<(), BackupError> {
    fs::rename(tmp, dst).map_err(io(dst))?;
    sync_dir(dst);
    Ok(())
}

/// Gives the `-wal` and `-shm` of `db` the database's own owner when they differ (they do when
/// root's connection has just created them while the daemon was stopped). Only root can chown;
/// for anyone else the files already are theirs.
fn match_owner(db: &Path) {
    let Ok(m) = fs::metadata(db) else { return };
    for suffix in ["-wal", "-shm"] {
        let f = with_suffix(db, suffix);
        if let Ok(fm) = fs::metadata(&f)
            && (fm.uid() != m.uid() || fm.gid() != m.gid())
        {
            let _ = std::os::unix::fs::chown(&f, Some(m.uid()), Some(m.gid()));
        }
    }
}

/// Whether `dst` names the file `src` (through links or `..`); `dst` need not exist.
fn same_file(src: &Path, dst: &Path) -> bool {
    let resolve = |p: &Path| -> Option<PathBuf> {
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(fs::canonicalize(parent).ok()?.join(p.file_name()?))
    };
    match (fs::canonicalize(src).ok(), resolve(dst)) {
        (Some(a), Some(b)) => a == b || fs::canonicalize(&b).is_ok_and(|b| b == a),
        _ => false,
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// `.<name>.<what>-<pid>.tmp` in the directory of `path`: same file system, so the rename is
/// atomic; hidden and never matching the scheduled-backup pattern.
fn temp_beside(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gsmgate.db".into());
    path.with_file_name(format!(".{name}.{what}-{}.tmp", std::process::id()))
}

/// A UTC time that sorts as text and is safe in a file name: `20261206T185505.123Z`.
fn stamp(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => format!(
            "{}.{:03}Z",
            t.strftime("%Y%m%dT%H%M%S"),
            ms.rem_euclid(1000)
        ),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ConsentSource, NewMember, Store};

    fn with_members(path: &Path, n: usize) -> Store {
        let store = Store::open(path).unwrap();
        for i in 0..n {
            let m = NewMember {
                number: format!("+1555000{i:04}"),
                ..NewMember::default()
            };
            store.add_member(&m, ConsentSource::Cli, 1_000).unwrap();
        }
        store
    }

    #[test]
    fn backup_of_an_open_database_has_its_rows_and_is_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gsmgate.db");
        let store = with_members(&db, 25);
        let dst = dir.path().join("copy.db");
        let info = backup_database(&db, &dst).unwrap();
        assert_eq!(info.members, 25);
        assert!(!with_suffix(&dst, "-wal").exists());
        let copy = Store::open(&dst).unwrap();
        assert_eq!(copy.count_members(&Default::default()).unwrap(), 25);
        drop(store);
    }

    #[test]
    fn restore_keeps_the_old_database_aside() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gsmgate.db");
        drop(with_members(&db, 3));
        let dst = dir.path().join("b.db");
        backup_database(&db, &dst).unwrap();
        drop(with_members(&dir.path().join("other.db"), 0));
        fs::copy(dir.path().join("other.db"), &db).unwrap();
        let report = restore_database(&dst, &db).unwrap();
        assert_eq!(report.restored.members, 3);
        assert!(report.previous.unwrap().exists());
        assert!(integrity::marker_path(&db).exists());
    }

    #[test]
    fn garbage_and_foreign_files_are_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gsmgate.db");
        drop(with_members(&db, 1));
        let junk = dir.path().join("junk.db");
        fs::write(&junk, vec![7u8; 4096]).unwrap();
        assert!(restore_database(&junk, &db).is_err());
        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t(x)")
            .unwrap();
        let err = restore_database(&foreign, &db).unwrap_err();
        assert!(err.to_string().contains("application_id"), "{err}");
        // The database was left alone.
        assert_eq!(verify(&db).unwrap().members, 1);
    }

    #[test]
    fn a_backup_onto_the_database_itself_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gsmgate.db");
        drop(with_members(&db, 2));
        let same = dir.path().join(".").join("gsmgate.db");
        assert!(backup_database(&db, &same).is_err());
        assert_eq!(verify(&db).unwrap().members, 2);
    }

    #[test]
    fn stamps_sort_as_time() {
        assert_eq!(stamp(1_700_000_000_123), "20231114T221320.123Z");
        assert!(stamp(1_700_000_000_123) < stamp(1_700_000_001_000));
    }
}
