//! `gsmgate migrate --from sqlite:PATH --to postgres://USER@HOST/DB`: a local tool that moves a
//! single-Pi gateway's database into an empty PostgreSQL database (docs/store.md, "Moving a
//! gateway to PostgreSQL"). Wiring only: the copy and its checks are `store::migrate`.
//!
//! Why it is a local tool and not an admin request: the daemon must be stopped while its data
//! moves (the copy holds the SQLite file exclusively and is refused while a daemon has it open),
//! so there is no daemon to ask. The password comes from a file or an environment variable,
//! never the command line (process lists) or the URL (`PgConfig` refuses one there).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::client::Connection;
use crate::store::migrate::{self, MigrateReport, TableCount};
use crate::store::pg::{Password, PgConfig};

/// Flags of `gsmgate migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The gateway's SQLite database: sqlite:/var/lib/gsmgate/gsmgate.db (the daemon stopped).
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: String,
    /// The empty PostgreSQL database:
    /// postgres://USER@HOST[:PORT]/DATABASE[?sslmode=verify-full] (no password in it).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Read the PostgreSQL password from the first line of FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
    pub password_file: Option<PathBuf>,
    /// Read the PostgreSQL password from the environment variable NAME.
    #[arg(long, value_name = "NAME")]
    pub password_env: Option<String>,
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(super::EXIT_FAILURE)
}

/// `sqlite:PATH` (or `sqlite://PATH`) → PATH.
fn source_path(from: &str) -> Result<PathBuf, String> {
    let path = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            "--from must be sqlite:PATH, e.g. sqlite:/var/lib/gsmgate/gsmgate.db".to_owned()
        })?;
    if path.is_empty() {
        return Err("--from sqlite: needs the database's path".into());
    }
    Ok(PathBuf::from(path))
}

fn destination(args: &MigrateArgs) -> Result<PgConfig, String> {
    let mut config = PgConfig::from_url(&args.to).map_err(|e| format!("--to: {e}"))?;
    let password = match (&args.password_file, &args.password_env) {
        (Some(file), _) => Some(Password::from_file(file)),
        (None, Some(name)) => Some(Password::from_env(name)),
        (None, None) => None,
    };
    if let Some(password) = password {
        config = config.with_password(password.map_err(|e| e.to_string())?);
    }
    Ok(config)
}

fn print_summary(report: &MigrateReport) {
    println!(
        "migrated {} rows in {} tables from {} to {} (schema version {}) in {:.1} s; the row \
         counts of every table are equal on both sides",
        report.total_rows,
        report.tables.len(),
        report.source.display(),
        report.destination,
        report.schema_version,
        report.elapsed_ms as f64 / 1000.0
    );
    println!(
        "next: set [store] backend = \"postgres\", url, password_file and site in the gateway's \
         configuration (docs/scale-out.md), then start the daemon; keep the SQLite file as a \
         backup"
    );
}

/// Runs `gsmgate migrate`.
pub fn run(args: MigrateArgs, conn: Connection) -> ExitCode {
    let source = match source_path(&args.from) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let config = match destination(&args) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let json = conn.json;
    let mut progress = |count: &TableCount| {
        if !json {
            println!("{:<24} {:>10}", count.table, count.rows);
        }
    };
    match migrate::migrate(&source, &config, &mut progress) {
        Ok(report) if json => match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
        Ok(report) => {
            print_summary(&report);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("{e}; nothing was committed to PostgreSQL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_must_be_a_sqlite_path() {
        assert_eq!(
            source_path("sqlite:/var/lib/gsmgate/gsmgate.db").unwrap(),
            PathBuf::from("/var/lib/gsmgate/gsmgate.db")
        );
        assert_eq!(
            source_path("sqlite://rel/g.db").unwrap(),
            PathBuf::from("rel/g.db")
        );
        assert!(source_path("/var/lib/gsmgate/gsmgate.db").is_err());
        assert!(source_path("postgres://u@h/db").is_err());
        assert!(source_path("sqlite:").is_err());
    }
}
