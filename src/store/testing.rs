//! Test support: a fresh, empty store on either backend, so that the store's unit tests run
//! twice, once on SQLite and once on PostgreSQL, from one body ([`backend_tests`]).
//!
//! The PostgreSQL twin of a test gets a schema of its own (`t_<pid>_<n>`) in the server that
//! tests/pg-server.sh starts once per `cargo nextest run` (named by `GSMGATE_TEST_PG_URL` and
//! `GSMGATE_TEST_PG_PASSWORD`). A schema costs a few milliseconds where a server costs seconds,
//! and twins running side by side in separate processes never see each other's rows. Without
//! the variables a PostgreSQL twin fails with the way to run it: a twin that quietly used
//! SQLite would prove nothing about the second backend.

use std::sync::atomic::{AtomicU32, Ordering};

use super::pg::{Password, PgConfig};
use super::{Backend, Store};

/// A fresh, migrated store on `backend`.
pub(crate) fn fresh(backend: Backend) -> Store {
    match backend {
        Backend::Sqlite => Store::open_in_memory().expect("an in-memory SQLite store"),
        Backend::Postgres => Store::open_postgres(pg_config()).expect("a PostgreSQL test store"),
    }
}

/// A way to open one database of `backend` again and again, as a restarted daemon, a second
/// process or a second site does: a file on SQLite, one schema of its own on PostgreSQL.
pub(crate) fn reopener(backend: Backend) -> Box<dyn Fn() -> Store> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temp dir");
            let path = dir.path().join("g.db");
            Box::new(move || {
                let _keep = &dir;
                Store::open(&path).expect("the SQLite test file opens")
            })
        }
        Backend::Postgres => {
            let config = pg_config();
            Box::new(move || Store::open_postgres(config.clone()).expect("the test schema opens"))
        }
    }
}

/// The test server's connection, in a new schema of its own.
pub(crate) fn pg_config() -> PgConfig {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (Ok(url), Ok(password)) = (
        std::env::var("GSMGATE_TEST_PG_URL"),
        std::env::var("GSMGATE_TEST_PG_PASSWORD"),
    ) else {
        panic!(
            "GSMGATE_TEST_PG_URL and GSMGATE_TEST_PG_PASSWORD are not set: the PostgreSQL twins \
             of the store tests run under `cargo nextest run`, whose setup script \
             (tests/pg-server.sh, .config/nextest.toml) starts the server"
        )
    };
    let schema = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut config = PgConfig::from_url(&url)
        .expect("GSMGATE_TEST_PG_URL")
        .with_password(Password::new(password));
    config.schema = Some(schema);
    config
}

/// Wraps a test module so that its tests run on both backends: `mod tests { … }` becomes
/// `tests::sqlite::…` and `tests::postgres::…`. In the body, `fresh()` is a new empty store of
/// the module's backend and `BACKEND` says which one it is (for the few SQLite-only checks).
/// The body starts with `use super::*;` as any test module does.
macro_rules! backend_tests {
    ($(#[$m:meta])* mod $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[cfg(test)]
            mod sqlite {
                #[allow(dead_code)]
                const BACKEND: $crate::store::Backend = $crate::store::Backend::Sqlite;
                #[allow(dead_code)]
                fn fresh() -> $crate::store::Store {
                    $crate::store::testing::fresh(BACKEND)
                }
                $($body)*
            }

            #[cfg(test)]
            mod postgres {
                #[allow(dead_code)]
                const BACKEND: $crate::store::Backend = $crate::store::Backend::Postgres;
                #[allow(dead_code)]
                fn fresh() -> $crate::store::Store {
                    $crate::store::testing::fresh(BACKEND)
                }
                $($body)*
            }
        }
    };
}
pub(crate) use backend_tests;
