//! The database is never silently lost (docs/daemon.md, "The database is never silently lost"
//! and "Backups"): a truncated, deleted or garbled database is refused at start with a message
//! naming the file and `gsmgate restore FILE`; `gsmgate backup` copies it while the daemon runs;
//! `gsmgate restore` refuses while the daemon answers and round-trips a backup; scheduled backups
//! keep `backup_keep` files. The daemon runs in-process on a temp dir; `backup` and `restore` run
//! as the real binary, as an operator would run them.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::collections::BTreeSet;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use daemon_util::*;
use gsmgate::config::Config;
use gsmgate::daemon::{DATABASE_FILE, Daemon, DaemonOptions};
use gsmgate::store::{NewMember, Segment, Store};
use tokio_util::sync::CancellationToken;

const MEMBERS: usize = 2_000;

fn members(n: usize) -> Vec<NewMember> {
    (0..n)
        .map(|i| NewMember {
            number: format!("+1415555{i:04}"),
            name: Some(format!("Member number {i}")),
            ..NewMember::default()
        })
        .collect()
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("state").join(DATABASE_FILE)
}

/// Starts a gateway, stores [`MEMBERS`] members, stops it cleanly; returns the temp dir.
async fn initialised_state() -> tempfile::TempDir {
    let gw = Gateway::start().await;
    let store = gw.daemon.store();
    let report = store.import_members(&members(MEMBERS), 1_000).unwrap();
    assert_eq!(report.inserted, MEMBERS);
    gw.shutdown().await
}

/// Starting on `dir` fails; returns the error line.
async fn start_error(dir: &Path) -> String {
    let cfg = config(dir);
    let opts = options(&cfg);
    match Daemon::start_with(cfg, opts, CancellationToken::new()).await {
        Ok(d) => {
            d.shutdown().await;
            panic!("the daemon started on a lost database");
        }
        Err(e) => e.to_string(),
    }
}

fn assert_names_file_and_restore(msg: &str, db: &Path) {
    assert!(msg.contains(&db.display().to_string()), "{msg}");
    assert!(msg.contains("gsmgate restore FILE"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_truncated_to_zero_bytes_is_refused_at_start() {
    let dir = initialised_state().await;
    let db = db_path(dir.path());
    std::fs::File::create(&db).unwrap(); // truncates
    let msg = start_error(dir.path()).await;
    assert_names_file_and_restore(&msg, &db);
    assert!(msg.contains("empty"), "{msg}");
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        0,
        "no fresh database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_is_refused_at_start() {
    let dir = initialised_state().await;
    let db = db_path(dir.path());
    std::fs::remove_file(&db).unwrap();
    let msg = start_error(dir.path()).await;
    assert_names_file_and_restore(&msg, &db);
    assert!(msg.contains("missing"), "{msg}");
    assert!(!db.exists(), "no fresh database was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_garbage_in_its_middle_is_refused_at_start() {
    let dir = initialised_state().await;
    let db = db_path(dir.path());
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len >= 64 * 1024, "a database of {len} bytes has no middle");
    let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 13) as u8).collect();
    f.write_all(&garbage).unwrap();
    drop(f);
    let msg = start_error(dir.path()).await;
    assert_names_file_and_restore(&msg, &db);
    assert!(msg.contains("integrity check"), "{msg}");
}

/// Writes the test configuration to `dir/gsmgate.toml` for the binary.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("gsmgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn gsmgate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gsmgate"))
        .args(args)
        .env_remove("GSMGATE_CONFIG")
        .env_remove("GSMGATE_SOCKET")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn count_members(db: &Path) -> u64 {
    Store::open(db)
        .unwrap()
        .count_members(&Segment::default())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_running_then_restore_round_trips() {
    let gw = Gateway::start().await;
    let store = gw.daemon.store();
    store.import_members(&members(300), 1_000).unwrap();
    let cfg_file = config_file(gw.dir.path(), &config_text(gw.dir.path()));
    let cfg = cfg_file.to_str().unwrap();
    let backup = gw.dir.path().join("usb").join("gsmgate-backup.db");
    std::fs::create_dir_all(backup.parent().unwrap()).unwrap();

    // Writes go on while the copy is taken: the copy is one commit's state, whole.
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            let more: Vec<NewMember> = (0..200)
                .map(|i| NewMember {
                    number: format!("+1415556{i:04}"),
                    ..NewMember::default()
                })
                .collect();
            for m in more.chunks(10) {
                store.import_members(m, 2_000).unwrap();
            }
        })
    };
    let (ok, out, err) = gsmgate(&["backup", "--config", cfg, backup.to_str().unwrap()]);
    writer.join().unwrap();
    assert!(ok, "backup failed: {err}");
    assert!(out.contains("backup written to"), "{out}");
    let copied = count_members(&backup);
    assert!(
        (300..=500).contains(&copied) && copied.is_multiple_of(10),
        "a consistent copy holds whole imports: {copied}"
    );

    // Refused while the daemon answers on its socket; nothing is touched.
    let (ok, _, err) = gsmgate(&["restore", "--config", cfg, backup.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("the daemon is running"), "{err}");

    store
        .import_members(&members(MEMBERS)[300..400], 3_000)
        .unwrap();
    let dir = gw.shutdown().await;
    let db = db_path(dir.path());
    assert_eq!(count_members(&db), 600);

    // A file that is not a backup is refused before anything is replaced.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let (ok, _, err) = gsmgate(&["restore", "--config", cfg, junk.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("junk.db"), "{err}");
    assert_eq!(count_members(&db), 600);

    let (ok, out, err) = gsmgate(&["restore", "--config", cfg, backup.to_str().unwrap()]);
    assert!(ok, "restore failed: {err}");
    assert!(out.contains("kept as"), "{out}");
    assert!(!Path::new(&format!("{}-shm", db.display())).exists());
    let aside: Vec<PathBuf> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("gsmgate.db.before-restore-") && !name.ends_with("-wal")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(count_members(&aside[0]), 600, "the old database is kept");

    // The daemon starts on the restored database and sees the backup's members.
    let cfg = config(dir.path());
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;
    assert_eq!(
        gw.daemon
            .store()
            .count_members(&Segment::default())
            .unwrap(),
        copied
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_keep_the_newest_backup_keep() {
    let dir = short_tempdir();
    let backups = dir.path().join("backups");
    let text = config_text(dir.path()).replace(
        "log = \"debug\"\n",
        &format!(
            "log = \"debug\"\nbackup_dir = \"{}\"\nbackup_keep = 2\n",
            backups.display()
        ),
    );
    let cfg = Config::from_str(&text, "test.toml").unwrap();
    let opts = DaemonOptions {
        backup_interval: Some(Duration::from_millis(150)),
        ..options(&cfg)
    };
    let gw = Gateway::start_in(dir, cfg, opts).await;
    gw.daemon
        .store()
        .import_members(&members(50), 1_000)
        .unwrap();

    let listing = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&backups)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.retain(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("gsmgate-") && n.ends_with(".db")
        });
        v.sort();
        v
    };
    // A backup's name is the time it started (UTC, ms). Only one that started after the import
    // committed must hold the members: one already running when the import began finishes after
    // it and is newer on disk, yet holds the database as it was before.
    let cutoff = {
        let now = jiff::Timestamp::now();
        format!(
            "gsmgate-{}.{:03}Z.db",
            now.strftime("%Y%m%dT%H%M%S"),
            now.as_millisecond().rem_euclid(1000)
        )
    };
    let after_import =
        |p: &PathBuf| p.file_name().unwrap().to_string_lossy().as_ref() > cutoff.as_str();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    poll(
        "two backups started after the import kept, four written in all",
        Duration::from_secs(30),
        || {
            let now = listing();
            seen.extend(now.iter().cloned());
            let fresh = now.iter().filter(|p| after_import(p)).count();
            let done = seen.len() >= 4 && now.len() == 2 && fresh == 2;
            async move { done.then_some(()) }
        },
    )
    .await;
    let _dir = gw.shutdown().await;
    // Retention deleted the oldest: exactly the two newest ever written remain, each a whole
    // database with the members.
    let kept = listing();
    let newest: Vec<PathBuf> = seen.iter().rev().take(2).rev().cloned().collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept[0] >= newest[0], "{kept:?} vs {newest:?}");
    for k in &kept {
        assert_eq!(count_members(k), 50, "{}", k.display());
    }
}
