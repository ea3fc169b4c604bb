//! PostgreSQL, the store's second backend, for several gateways sharing one database (issue 17,
//! docs/store.md "PostgreSQL", docs/scale-out.md): the connection (URL, separate password, TLS)
//! and the schema with its migrations, versioned like the SQLite ones. The queries themselves
//! are the store's own, run through `store::db`, which translates them.
//!
//! What it owns: [`connect`] (parsing `postgres://user@host:port/db?sslmode=…`, the password kept
//! out of every log and error, rustls with the ring provider) and [`schema`] (the migrations in
//! `pg/migrations/`, one per SQLite migration with the same number and the same table, column,
//! index and trigger names, applied under an advisory lock). It must not touch the SQLite side:
//! the two schemas are held together by a parity test (tests/store_pg_schema.rs) instead of by
//! shared code.
//!
//! Why the synchronous `postgres` client: the store's API is synchronous and the daemon already
//! calls it on tokio's blocking pool. The client runs its own small runtime inside, which panics
//! on a tokio worker thread: `store::db` runs it on a scoped plain thread when a store call is
//! made from async code anyway.

pub mod connect;
pub mod schema;

pub use connect::{Password, PgConfig, SslMode};
pub use schema::{MIGRATIONS, migrate, migrate_to, schema_version};

/// Errors of the PostgreSQL backend. None of them carries the password: connection errors name
/// `user@host:port/db`, and the server's own messages never repeat a password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("bad PostgreSQL URL: {0}")]
    Url(String),
    #[error("cannot read the PostgreSQL password file {path}: {source}")]
    PasswordFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the environment variable {name} (the PostgreSQL password) is not set or not UTF-8")]
    PasswordEnv { name: String },
    #[error("TLS set-up for PostgreSQL {target}: {detail}")]
    Tls { target: String, detail: String },
    #[error("cannot connect to PostgreSQL {target}: {}", describe(.source))]
    Connect {
        target: String,
        source: postgres::Error,
    },
    #[error("PostgreSQL: {context}: {}", describe(.source))]
    Sql {
        context: &'static str,
        source: postgres::Error,
    },
    #[error("PostgreSQL schema migration {version} ({name}) failed: {}", describe(.source))]
    Migration {
        version: usize,
        name: &'static str,
        source: postgres::Error,
    },
    #[error(
        "the PostgreSQL database has schema version {found}, newer than this build knows \
         ({known}); run the newer gsmgate or restore a matching backup"
    )]
    TooNew { found: i64, known: i64 },
}

/// A driver error with its causes: the driver's own text is only the kind ("db error", "error
/// connecting to server"); what the server said ("password authentication failed for user …")
/// is in the source chain, and an operator needs it in the one line they see.
pub(crate) fn describe(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Adds a short context to a driver error (the store's `SqlContext`, for this backend).
pub(crate) trait PgContext<T> {
    fn ctx(self, context: &'static str) -> Result<T, PgError>;
}

impl<T> PgContext<T> for Result<T, postgres::Error> {
    fn ctx(self, context: &'static str) -> Result<T, PgError> {
        self.map_err(|source| PgError::Sql { context, source })
    }
}
