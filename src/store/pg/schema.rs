//! PostgreSQL schema migrations: one SQL file per SQLite migration, with the same number and
//! name, applied in order and recorded in the table `schema_migrations`.
//!
//! Version N means the first N files of [`MIGRATIONS`] have been applied, exactly as
//! `PRAGMA user_version` = N does for SQLite ([`crate::store::schema`]), so "the same version" is
//! one number on both backends. Each file runs in its own transaction together with its row in
//! `schema_migrations` (PostgreSQL's DDL is transactional), so a failure leaves the previous
//! version intact.
//!
//! Several daemons share one database and may start at the same moment: every step takes
//! `pg_advisory_xact_lock` first and reads the version under it, so a second migrator waits
//! for the first one's step, then sees it applied and moves on; no file is applied twice and
//! nobody fails. The lock is released by the step's commit or rollback, never left behind by a
//! crashed daemon. It must not touch the SQLite schema; a released file is never edited.

use postgres::Client;

use super::{PgContext, PgError};

/// The migrations, in order; names and count match [`crate::store::schema::MIGRATIONS`].
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_initial", include_str!("migrations/0001_initial.sql")),
    (
        "0002_outbox_payload",
        include_str!("migrations/0002_outbox_payload.sql"),
    ),
    (
        "0003_inbound_processed",
        include_str!("migrations/0003_inbound_processed.sql"),
    ),
    (
        "0004_inbound_reviewed",
        include_str!("migrations/0004_inbound_reviewed.sql"),
    ),
    (
        "0005_submit_evidence",
        include_str!("migrations/0005_submit_evidence.sql"),
    ),
    (
        "0006_api_tokens",
        include_str!("migrations/0006_api_tokens.sql"),
    ),
    (
        "0007_broadcast_queue_index",
        include_str!("migrations/0007_broadcast_queue_index.sql"),
    ),
    ("0008_events", include_str!("migrations/0008_events.sql")),
    (
        "0009_member_fields",
        include_str!("migrations/0009_member_fields.sql"),
    ),
    (
        "0010_broadcast_progress",
        include_str!("migrations/0010_broadcast_progress.sql"),
    ),
    (
        "0011_owner_refs",
        include_str!("migrations/0011_owner_refs.sql"),
    ),
    (
        "0012_sim_identity",
        include_str!("migrations/0012_sim_identity.sql"),
    ),
    (
        "0013_web_console",
        include_str!("migrations/0013_web_console.sql"),
    ),
    (
        "0014_broadcast_counts",
        include_str!("migrations/0014_broadcast_counts.sql"),
    ),
    ("0015_sites", include_str!("migrations/0015_sites.sql")),
    (
        "0016_queued_broadcast_index",
        include_str!("migrations/0016_queued_broadcast_index.sql"),
    ),
];

/// The advisory lock every migration step holds: "gsmgate" in ASCII, so it cannot collide with a
/// small number some other program on a shared server might pick.
const MIGRATION_LOCK: i64 = 0x0067_736d_6761_7465;

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// Brings the database up to the newest schema this build knows; returns how many files this
/// call applied (0 when another daemon had already done it).
pub fn migrate(client: &mut Client) -> Result<usize, PgError> {
    migrate_to(client, MIGRATIONS.len())
}

/// Applies the migrations up to version `target` (at most [`MIGRATIONS`]`.len()`), for tests
/// that upgrade a database holding rows of an older version, as the SQLite upgrade tests do.
pub fn migrate_to(client: &mut Client, target: usize) -> Result<usize, PgError> {
    let known = MIGRATIONS.len() as i64;
    let target = target.min(MIGRATIONS.len());
    let mut applied = 0;
    loop {
        let mut tx = client.transaction().ctx("starting a migration step")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .ctx("taking the migration lock")?;
        tx.batch_execute(VERSION_TABLE)
            .ctx("creating schema_migrations")?;
        let found: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )
            .ctx("reading the schema version")?
            .get(0);
        if found > known {
            return Err(PgError::TooNew { found, known });
        }
        // `found` is in 0..known here; a negative version (never written by us) reads as 0.
        let Some((name, sql)) = usize::try_from(found)
            .ok()
            .filter(|index| *index < target)
            .and_then(|index| MIGRATIONS.get(index))
        else {
            tx.commit().ctx("closing the migration check")?;
            return Ok(applied);
        };
        let version = found as usize + 1;
        let fail = |source| PgError::Migration {
            version,
            name,
            source,
        };
        tx.batch_execute(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&(version as i64), name],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        applied += 1;
        tracing::info!(version, name, "applied PostgreSQL schema migration");
    }
}

/// The schema version: the number of migrations applied, 0 for an empty database.
pub fn schema_version(client: &mut Client) -> Result<i64, PgError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .ctx("looking for schema_migrations")?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .ctx("reading the schema version")?
        .get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two backends are versioned as one: the same files, in the same order, by name.
    #[test]
    fn every_sqlite_migration_has_its_postgres_twin() {
        let sqlite: Vec<&str> = crate::store::schema::MIGRATIONS
            .iter()
            .map(|(name, _)| *name)
            .collect();
        let pg: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
        assert_eq!(pg, sqlite);
    }

    /// SQLite-only words would fail on the server at the first start; caught here without one.
    #[test]
    fn no_sqlite_only_syntax_in_the_postgres_files() {
        for (name, sql) in MIGRATIONS {
            // Comments may name SQLite's words; the code may not.
            let code: String = sql
                .to_uppercase()
                .lines()
                .map(|l| l.split("--").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            for word in [
                " STRICT",
                "WITHOUT ROWID",
                "AUTOINCREMENT",
                "RAISE(ABORT",
                " GLOB ",
                "JSON_OBJECT(",
                "PRAGMA",
                " INTEGER",
                " REAL",
                " BLOB",
            ] {
                assert!(!code.contains(word), "{name} contains {word:?}");
            }
        }
    }
}
