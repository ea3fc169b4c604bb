//! What a start-up failure means for the operator: the lines `gsmgate daemon` prints for an error
//! chain, each cause once, and — when the chain shows it — the file concerned and whether its
//! disk is read-only or full or the file is corrupt.
//!
//! Why this exists: the daemon's and the store's errors name their thing *and* keep their cause
//! as `source()` (so a log line with `%e` is complete), and printing such a chain with anyhow's
//! `{:#}` repeats every cause once per level: "cannot open the database: X is corrupt: file is not
//! a database: X is corrupt: file is not a database". [`explain`] gives each level only its own
//! words (its text minus the text of its source) and drops what an earlier line already says.
//!
//! Why the disk is probed here: SQLite reports a read-only or unwritable directory only as
//! "unable to open database file" (SQLITE_CANTOPEN: it cannot create the `-wal`/`-shm` files),
//! which does not tell the operator what to fix. `access(2)` on the directory answers it
//! (`EROFS` even for root, `EACCES` for a missing permission) without writing anything.
//!
//! What it must not touch: the errors themselves (their `Display` stays complete for logs), and
//! anything that writes.

use std::error::Error;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{AccessFlags, access};

use super::DaemonError;
use crate::store::StoreError;

/// What is wrong with the disk or the file, as far as the error chain shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskProblem {
    /// The file system is mounted read-only.
    ReadOnly,
    /// The file system (or the user's quota) is full.
    Full,
    /// The file is not a gsmgate database, or SQLite found it damaged.
    Corrupt,
    /// The daemon's user may not write there (permissions).
    NotWritable,
}

impl DiskProblem {
    /// The sentence after the path; starts with the word the operator searches for.
    fn sentence(self) -> &'static str {
        match self {
            DiskProblem::ReadOnly => {
                "read-only file system: remount it read-write or set [daemon] state_dir elsewhere"
            }
            DiskProblem::Full => "disk full: free space on it, then start again",
            DiskProblem::Corrupt => {
                "corrupt or not a gsmgate database: restore a backup (docs/daemon.md)"
            }
            DiskProblem::NotWritable => {
                "not writable by this user: fix its owner or mode (the daemon's user must write there)"
            }
        }
    }

    /// A word that, found in a line already printed, means the problem was stated.
    fn keyword(self) -> &'static str {
        match self {
            DiskProblem::ReadOnly => "read-only",
            DiskProblem::Full => "full",
            DiskProblem::Corrupt => "corrupt",
            DiskProblem::NotWritable => "not writable",
        }
    }
}

/// The file a chain is about and what is wrong with its disk, when it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub path: Option<PathBuf>,
    pub problem: DiskProblem,
}

/// The lines to print for `err`: its own text first, then each cause once. When the chain shows
/// what is wrong with the disk and no line of gsmgate's own says so, the system's and SQLite's
/// wording of it ("Read-only file system (os error 30)", "unable to open database file") is
/// replaced by one line naming the file and the problem.
pub fn explain(err: &(dyn Error + 'static)) -> Vec<String> {
    let levels: Vec<(&(dyn Error + 'static), String)> =
        chain(err).map(|e| (e, e.to_string())).collect();
    let mut own: Vec<(bool, String)> = Vec::with_capacity(levels.len());
    for (i, (e, text)) in levels.iter().enumerate() {
        let mine = match levels.get(i + 1) {
            Some((_, next)) => text
                .strip_suffix(next.as_str())
                .and_then(|t| t.strip_suffix(": "))
                .unwrap_or(text),
            None => text,
        };
        let low =
            e.is::<std::io::Error>() || e.is::<rusqlite::Error>() || e.is::<rusqlite::ffi::Error>();
        own.push((low, mine.trim().to_string()));
    }
    let diagnosis = diagnose(err).filter(|d| {
        !own.iter()
            .any(|(low, l)| !low && l.to_lowercase().contains(d.problem.keyword()))
    });
    // A level that only announces the next one ("cannot open the database" above "cannot open
    // database ./st/gsmgate.db") says nothing the next line does not.
    let own: Vec<(bool, String)> = own
        .iter()
        .enumerate()
        .filter(|(i, (_, text))| {
            own.get(i + 1)
                .is_none_or(|(_, next)| !announces(text, next))
        })
        .map(|(_, l)| l.clone())
        .collect();
    let mut lines: Vec<String> = Vec::with_capacity(own.len() + 1);
    for (low, text) in own {
        // SQLite's own error ("Error code 14: unable to open database file") repeats rusqlite's
        // message with a number; compare without that prefix.
        let bare = strip_error_code(&text).trim().to_string();
        if (low && diagnosis.is_some())
            || bare.is_empty()
            || lines.iter().any(|l| l.contains(&bare))
        {
            continue;
        }
        lines.push(text);
    }
    if let Some(d) = diagnosis {
        lines.push(match &d.path {
            Some(p) => format!("{}: {}", p.display(), d.problem.sentence()),
            None => d.problem.sentence().to_string(),
        });
    }
    lines
}

/// What the chain shows about the disk: the deepest file named, and the problem.
pub fn diagnose(err: &(dyn Error + 'static)) -> Option<Diagnosis> {
    let mut path: Option<PathBuf> = None;
    let mut problem = None;
    for e in chain(err) {
        if let Some(d) = e.downcast_ref::<DaemonError>() {
            match d {
                DaemonError::StateDir { path: p, .. } => path = Some(p.clone()),
                // Transparent over the start-up check: its own level is not in the chain.
                DaemonError::Database(c) => {
                    if let Some(p) = c.path() {
                        path = Some(p.to_path_buf());
                    }
                }
                _ => {}
            }
        } else if let Some(s) = e
            .downcast_ref::<StoreError>()
            .or_else(|| e.downcast_ref::<Box<StoreError>>().map(|b| &**b))
        {
            match s {
                StoreError::Open { path: p, .. } | StoreError::Migration { path: p, .. } => {
                    path = Some(p.clone());
                }
                StoreError::NotADatabase { path: p, .. } => {
                    path = Some(p.clone());
                    problem = Some(DiskProblem::Corrupt);
                }
                _ => {}
            }
        } else if let Some(r) = e.downcast_ref::<rusqlite::Error>() {
            problem = sqlite_problem(r, path.as_deref()).or(problem);
        } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
            problem = io
                .raw_os_error()
                .and_then(|n| errno_problem(Errno::from_raw(n)))
                .or(problem);
        }
    }
    problem.map(|problem| Diagnosis { path, problem })
}

fn chain<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn Error + 'static)| (*e).source())
}

/// Whether `line`'s words, ignoring "the", begin `next`'s.
fn announces(line: &str, next: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .filter(|w| !w.eq_ignore_ascii_case("the"))
            .map(str::to_lowercase)
            .collect()
    };
    let (a, b) = (words(line), words(next));
    !a.is_empty() && b.len() > a.len() && b.starts_with(&a)
}

fn strip_error_code(text: &str) -> &str {
    text.strip_prefix("Error code ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(code, _)| code.chars().all(|c| c.is_ascii_digit()))
        .map_or(text, |(_, message)| message)
}

fn sqlite_problem(e: &rusqlite::Error, path: Option<&Path>) -> Option<DiskProblem> {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code()? {
        ErrorCode::ReadOnly => Some(probe(path).unwrap_or(DiskProblem::ReadOnly)),
        ErrorCode::DiskFull => Some(DiskProblem::Full),
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => Some(DiskProblem::Corrupt),
        ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::SystemIoFailure => {
            probe(path)
        }
        _ => None,
    }
}

fn errno_problem(errno: Errno) -> Option<DiskProblem> {
    match errno {
        Errno::EROFS => Some(DiskProblem::ReadOnly),
        Errno::ENOSPC | Errno::EDQUOT => Some(DiskProblem::Full),
        Errno::EACCES | Errno::EPERM => Some(DiskProblem::NotWritable),
        _ => None,
    }
}

/// Asks the kernel whether the database file, or the directory it lives in, may be written, and
/// whether its file system has a free block left (SQLite reports a full disk while creating the
/// `-shm` file only as "disk I/O error").
fn probe(path: Option<&Path>) -> Option<DiskProblem> {
    let path = path?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let writable = |p: &Path| match access(p, AccessFlags::W_OK) {
        Ok(()) | Err(Errno::ENOENT) => None,
        Err(e) => errno_problem(e),
    };
    let full = || {
        nix::sys::statvfs::statvfs(dir)
            .ok()
            .filter(|s| s.blocks_available() == 0)
            .map(|_| DiskProblem::Full)
    };
    writable(dir).or_else(|| writable(path)).or_else(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_once_and_the_corruption_named() {
        let e = DaemonError::OpenStore(Box::new(StoreError::NotADatabase {
            path: "/s/gsmgate.db".into(),
            detail: "file is not a database".into(),
        }));
        let lines = explain(&e);
        assert_eq!(
            lines,
            [
                "cannot open the database",
                "/s/gsmgate.db is not a gsmgate database or is corrupt: file is not a database"
            ]
        );
    }

    #[test]
    fn a_full_disk_is_named_with_its_path() {
        let e = DaemonError::StateDir {
            path: "/s".into(),
            source: std::io::Error::from_raw_os_error(nix::libc::ENOSPC),
        };
        let lines = explain(&e);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], "cannot create state directory /s");
        assert!(lines[1].starts_with("/s: disk full"), "{lines:?}");
        let ro = DaemonError::StateDir {
            path: "/s".into(),
            source: std::io::Error::from_raw_os_error(nix::libc::EROFS),
        };
        assert_eq!(
            diagnose(&ro).map(|d| d.problem),
            Some(DiskProblem::ReadOnly)
        );
    }

    #[test]
    fn a_line_that_only_announces_the_next_is_left_out() {
        assert!(announces(
            "cannot open the database",
            "cannot open database /s/gsmgate.db"
        ));
        assert!(!announces(
            "cannot open the database",
            "cannot open the database"
        ));
        assert!(!announces("g.toml: cannot read", "not UTF-8 text"));
    }

    #[test]
    fn sqlite_error_codes_lose_their_prefix() {
        assert_eq!(
            strip_error_code("Error code 14: unable to open database file"),
            "unable to open database file"
        );
        assert_eq!(strip_error_code("Error codes: x"), "Error codes: x");
    }
}
