//! `[store]`: which database holds the gateway's state (docs/configuration.md, "[store]";
//! docs/scale-out.md). SQLite in the state dir is the default and the right choice for one Pi;
//! `backend = "postgres"` shares one PostgreSQL database between several gateways ("sites").
//!
//! Rules worth knowing: the URL never carries the password (the store's URL parser refuses it,
//! because URLs end up in logs and process lists); the password comes from `password_file` or
//! `password_env`, and is read when the daemon starts, not here, so `check-config` can run as an
//! unprivileged `ExecStartPre` without reading a secret. A PostgreSQL store needs a `site` name:
//! it is how the sites tell which modems are whose, and a default (the host name) would let two
//! cloned Pi images claim the same site. The failover time between sites is
//! `[dispatch] failover_after_minutes`, the same setting as between one Pi's modems.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::validate::Checker;
use crate::store::pg::PgConfig;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawBackend {
    #[default]
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    pub backend: Option<RawBackend>,
    pub url: Option<String>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    pub site: Option<String>,
}

/// Where the PostgreSQL password is read from when the daemon starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    File(PathBuf),
    Env(String),
    /// No password (a `trust` or certificate login).
    None,
}

/// `[store]`, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StoreSettings {
    /// `<state_dir>/gsmgate.db`.
    #[default]
    Sqlite,
    /// One PostgreSQL database shared by several sites.
    Postgres {
        /// The connection, without its password (boxed: it is most of the enum's size).
        pg: Box<PgConfig>,
        password: PasswordSource,
        /// This gateway's name among the sites.
        site: String,
    },
}

/// A site name: what `status` shows and the other sites refer to.
fn valid_site(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Checker<'_> {
    pub(super) fn store(&mut self, raw: RawStore) -> StoreSettings {
        let backend = raw.backend.unwrap_or_default();
        if backend == RawBackend::Sqlite {
            for (key, given) in [
                ("store.url", raw.url.is_some()),
                ("store.password_file", raw.password_file.is_some()),
                ("store.password_env", raw.password_env.is_some()),
                ("store.site", raw.site.is_some()),
            ] {
                if given {
                    self.fail(key, "applies only with backend = \"postgres\"");
                }
            }
            return StoreSettings::Sqlite;
        }
        let pg = match raw.url.as_deref() {
            None => {
                self.fail(
                    "store.url",
                    "backend = \"postgres\" needs url = \"postgres://user@host:5432/db\"",
                );
                None
            }
            Some(url) => match PgConfig::from_url(url) {
                Ok(pg) => Some(pg),
                Err(e) => {
                    // The parser's messages never repeat the URL (it may hold a password).
                    self.fail("store.url", e.to_string());
                    None
                }
            },
        };
        let password = match (raw.password_file, raw.password_env) {
            (Some(_), Some(_)) => {
                self.fail(
                    "store.password_env",
                    "give password_file or password_env, not both",
                );
                PasswordSource::None
            }
            (Some(file), None) => PasswordSource::File(self.path("store.password_file", &file)),
            (None, Some(name)) => {
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    self.fail(
                        "store.password_env",
                        "must be an environment variable's name",
                    );
                }
                PasswordSource::Env(name)
            }
            (None, None) => PasswordSource::None,
        };
        let site = match raw.site {
            Some(site) if valid_site(&site) => site,
            Some(site) => {
                self.fail(
                    "store.site",
                    format!("must be 1-32 lower-case letters, digits, - or _, got {site:?}"),
                );
                String::new()
            }
            None => {
                self.fail(
                    "store.site",
                    "backend = \"postgres\" needs this gateway's site name (e.g. site = \"paris\")",
                );
                String::new()
            }
        };
        match pg {
            Some(pg) => StoreSettings::Postgres {
                pg: Box::new(pg),
                password,
                site,
            },
            None => StoreSettings::Sqlite,
        }
    }
}
