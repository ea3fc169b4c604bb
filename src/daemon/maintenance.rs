//! The daemon's scheduled care of its database: the full `PRAGMA integrity_check` (daily) and the
//! scheduled backups into `[daemon] backup_dir` with retention (docs/daemon.md, "Backups").
//!
//! Both run on the blocking pool on connections of their own (`store::integrity::check_file`,
//! `store::backup::scheduled_backup`), never on the store's one connection, so a check or a copy
//! that takes seconds on an SD card does not hold up a send. A failure is an alert: an error log
//! line and an `error`-level `log` event on the bus, which `gsmgate watch` shows (the same path a
//! modem alert takes, as a `modem_state` event with its reason).
//!
//! The next backup is due `every` after the newest file already in `backup_dir` (its modification
//! time), so a daemon that restarts often neither skips backups nor writes one per start.
//!
//! What it must not do: SQL (the store does it) or read the config file (it gets [`Schedule`]).

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::admin::Event;
use crate::store::backup;
use crate::store::integrity::{self, CheckKind};
use crate::time::now_ms;

use super::EventBus;

/// The full integrity check runs this often by default: daily, because it reads every page and
/// compares every index with its table (seconds for a large database on a Pi), while the
/// start-up `quick_check` already covers each restart.
pub const DEFAULT_INTEGRITY_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Scheduled backups.
#[derive(Debug, Clone)]
pub struct BackupSchedule {
    pub dir: PathBuf,
    pub every: Duration,
    pub keep: usize,
}

/// What the maintenance task does, and how often.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The database file.
    pub db: PathBuf,
    pub integrity_every: Duration,
    pub backups: Option<BackupSchedule>,
}

/// Runs the schedule until shutdown.
pub async fn run(schedule: Schedule, bus: EventBus, shutdown: CancellationToken) {
    let start = now_ms();
    let mut next_check = start.saturating_add(ms(schedule.integrity_every));
    let mut next_backup = schedule.backups.as_ref().map(|b| {
        // Read once at start: afterwards this task is the only writer of the directory.
        let newest = backup::newest_backup_ms(&b.dir);
        newest.map_or(start, |t| t.saturating_add(ms(b.every)))
    });
    loop {
        let due = next_backup.map_or(next_check, |b| b.min(next_check));
        let wait = Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let now = now_ms();
        if now >= next_check {
            integrity_check(&schedule, &bus).await;
            next_check = now_ms().saturating_add(ms(schedule.integrity_every));
        }
        if let (Some(b), Some(at)) = (&schedule.backups, next_backup)
            && now >= at
        {
            scheduled_backup(&schedule, b, &bus).await;
            next_backup = Some(now_ms().saturating_add(ms(b.every)));
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Logs and publishes an `alert` event (`alert` is the stable word for scripts and webhooks);
/// the log line goes to the alert target so the log tap does not publish it a second time.
fn alert(bus: &EventBus, alert: &str, message: String) {
    error!(target: super::logging::ALERT_TARGET, alert, "{message}");
    bus.publish(Event::Alert {
        alert: alert.into(),
        message,
    });
}

async fn integrity_check(schedule: &Schedule, bus: &EventBus) {
    let db = schedule.db.clone();
    let result = tokio::task::spawn_blocking(move || integrity::check_file(&db, CheckKind::Full))
        .await
        .unwrap_or_else(|e| Err(format!("the check did not finish: {e}")));
    match result {
        Ok(()) => info!(db = %schedule.db.display(), "integrity check passed"),
        Err(detail) => alert(
            bus,
            "database_integrity_failed",
            format!(
                "database {} failed its integrity check ({detail}); back up what is there, stop \
                 the daemon and {}",
                schedule.db.display(),
                integrity::RESTORE_HINT
            ),
        ),
    }
}

async fn scheduled_backup(schedule: &Schedule, b: &BackupSchedule, bus: &EventBus) {
    let (db, dir, keep) = (schedule.db.clone(), b.dir.clone(), b.keep);
    let result = tokio::task::spawn_blocking(move || {
        backup::scheduled_backup(&db, &dir, keep, now_ms()).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(format!("the backup did not finish: {e}")));
    match result {
        Ok((written, removed)) => info!(
            file = %written.path.display(),
            bytes = written.bytes,
            members = written.members,
            removed = removed.len(),
            "scheduled backup written"
        ),
        Err(e) => alert(
            bus,
            "backup_failed",
            format!(
                "scheduled backup into {} failed: {e}; older backups were kept",
                b.dir.display()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;
    use crate::store::{NewMember, Store};

    /// A database with enough members to have a middle, then 8 KiB of garbage written into it.
    fn damaged_db(dir: &std::path::Path) -> PathBuf {
        let db = dir.join("gsmgate.db");
        {
            let store = Store::open(&db).unwrap();
            let rows: Vec<NewMember> = (0..2_000)
                .map(|i| NewMember {
                    number: format!("+1415555{i:04}"),
                    name: Some(format!("Member number {i}")),
                    ..NewMember::default()
                })
                .collect();
            store.import_members(&rows, 1).unwrap();
        }
        let len = std::fs::metadata(&db).unwrap().len();
        let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
        f.write_all(&[0x5Au8; 8192]).unwrap();
        db
    }

    async fn next_error(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> String {
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("an alert within 20 s")
                .unwrap();
            if let Event::Alert { message, .. } = ev {
                return message;
            }
        }
    }

    #[tokio::test]
    async fn a_failed_integrity_check_or_backup_is_an_alert_and_keeps_old_backups() {
        let dir = tempfile::tempdir().unwrap();
        let db = damaged_db(dir.path());
        let backups = dir.path().join("backups");
        std::fs::create_dir_all(&backups).unwrap();
        let good = backups.join("gsmgate-20260101T000000.000Z.db");
        std::fs::write(&good, b"an older, good backup").unwrap();
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        let token = CancellationToken::new();
        let schedule = Schedule {
            db: db.clone(),
            integrity_every: Duration::from_millis(20),
            backups: Some(BackupSchedule {
                dir: backups.clone(),
                every: Duration::from_millis(20),
                keep: 1,
            }),
        };
        let task = tokio::spawn(run(schedule, bus.clone(), token.clone()));
        let mut saw_check = false;
        let mut saw_backup = false;
        while !(saw_check && saw_backup) {
            let msg = next_error(&mut rx).await;
            assert!(msg.contains(&db.display().to_string()) || msg.contains("backup"));
            saw_check |=
                msg.contains("failed its integrity check") && msg.contains("gsmgate restore FILE");
            saw_backup |=
                msg.contains("scheduled backup") && msg.contains("older backups were kept");
        }
        token.cancel();
        task.await.unwrap();
        // The damaged copy never replaced the good backup, and no temporary file is left.
        let names: Vec<_> = std::fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![good.file_name().unwrap().to_os_string()]);
    }
}
