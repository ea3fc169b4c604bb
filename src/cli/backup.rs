//! `gsmgate backup FILE` and `gsmgate restore FILE`: local tools on the database file
//! (docs/daemon.md, "Backups"), wiring only — the copying and checking is `store::backup`.
//!
//! Why `backup` opens the database itself instead of asking the daemon over the admin socket: the
//! owner of a Pi runs `sudo gsmgate backup /media/usb/gsmgate.db`, and the daemon could not write
//! there — it runs as user gsmgate under `ProtectSystem=strict`, where only /var/lib/gsmgate and
//! /run/gsmgate are writable, and a USB stick is typically mounted for the desktop user. Root
//! reads the state directory and writes the stick; SQLite's online backup API gives the same
//! consistent copy from a second process as it would inside the daemon (one read transaction;
//! WAL readers never block the daemon's writers). It also works while the daemon is stopped.
//!
//! `restore` refuses while anything answers on the admin socket: replacing the file under a
//! running daemon would have it keep writing into the renamed-away database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::client::Connection;
use super::doctor::PACKAGED_CONFIG;
use super::runtime::run_current_thread;
use crate::config::Config;
use crate::daemon::DATABASE_FILE;
use crate::store::backup::{self, BackupInfo};

/// Flags of `gsmgate backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (replaced atomically if it exists), e.g. /media/usb/gsmgate.db.
    pub file: PathBuf,
    /// The configuration naming the state directory (default: $GSMGATE_CONFIG, else
    /// /etc/gsmgate/gsmgate.toml if it exists, else the embedded default's ./gsmgate-state).
    #[arg(long, short = 'c', value_name = "FILE", env = "GSMGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Flags of `gsmgate restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore (checked before anything is replaced).
    pub file: PathBuf,
    /// The configuration naming the state directory (as for `backup`).
    #[arg(long, short = 'c', value_name = "FILE", env = "GSMGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

fn load(config: Option<&Path>) -> anyhow::Result<Config> {
    match config {
        Some(path) => Ok(Config::from_file(path)?),
        None if Path::new(PACKAGED_CONFIG).exists() => Ok(Config::from_file(PACKAGED_CONFIG)?),
        None => Ok(Config::embedded_default()),
    }
}

/// The database file the configuration's daemon uses.
pub fn database_of(cfg: &Config) -> PathBuf {
    cfg.daemon.state_dir.join(DATABASE_FILE)
}

fn describe(info: &BackupInfo) -> String {
    format!(
        "{} members, {} KiB, schema version {}",
        info.members,
        info.bytes.div_ceil(1024),
        info.schema_version
    )
}

fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    serde_json::to_string_pretty(value)
        .map(|s| println!("{s}"))
        .map_err(|e| e.to_string())
}

/// Why `backup`/`restore` do not apply: they copy the SQLite file, and a PostgreSQL store is
/// backed up with the server's own tools.
fn postgres_store(cfg: &crate::config::Config) -> Option<String> {
    matches!(cfg.store, crate::config::StoreSettings::Postgres { .. }).then(|| {
        "this gateway's store is PostgreSQL ([store] backend = \"postgres\"): back it up with \
         the server's tools (pg_dump, or the service's snapshots), docs/scale-out.md, \"Backups\""
            .to_string()
    })
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(super::EXIT_FAILURE)
}

/// Runs `gsmgate backup`.
pub fn run_backup(args: BackupArgs, conn: Connection) -> ExitCode {
    let cfg = match load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&format!("{e:#}")),
    };
    if let Some(msg) = postgres_store(&cfg) {
        return fail(&msg);
    }
    match backup::backup_database(&database_of(&cfg), &args.file) {
        Ok(info) if conn.json => match print_json(&info) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Ok(info) => {
            println!(
                "backup written to {} ({})",
                info.path.display(),
                describe(&info)
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Whether a daemon answers on `socket`: `Ok(())` when nothing listens there.
pub async fn ensure_stopped(socket: &Path) -> Result<(), String> {
    let attempt = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::UnixStream::connect(socket),
    )
    .await;
    match attempt {
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(())
        }
        Ok(Ok(_)) | Err(_) => Err(format!(
            "the daemon is running (it answers on {}); stop it first (`sudo systemctl stop \
             gsmgate`), restore, then start it again",
            socket.display()
        )),
        Ok(Err(e)) => Err(format!(
            "cannot tell whether the daemon is running ({}: {e}); run as root",
            socket.display()
        )),
    }
}

/// Runs `gsmgate restore`.
pub fn run_restore(args: RestoreArgs, conn: Connection) -> ExitCode {
    let cfg = match load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&format!("{e:#}")),
    };
    if let Some(msg) = postgres_store(&cfg) {
        return fail(&msg);
    }
    let socket = conn
        .socket
        .clone()
        .unwrap_or_else(|| cfg.daemon.admin_socket.clone());
    match run_current_thread(ensure_stopped(&socket)) {
        Err(code) => return code,
        Ok(Err(e)) => return fail(&e),
        Ok(Ok(())) => {}
    }
    let db = database_of(&cfg);
    match backup::restore_database(&args.file, &db) {
        Ok(report) if conn.json => match print_json(&report) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Ok(report) => {
            println!(
                "restored {} into {} ({})",
                args.file.display(),
                db.display(),
                describe(&report.restored)
            );
            if let Some(previous) = report.previous {
                println!("the replaced database is kept as {}", previous.display());
            }
            println!("start the daemon again: sudo systemctl start gsmgate");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}
