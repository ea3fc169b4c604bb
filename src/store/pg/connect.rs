//! The connection to PostgreSQL: a URL `postgres://user@host:port/db?sslmode=…&sslrootcert=…`,
//! the password given separately (a file or an environment variable), and TLS through rustls.
//!
//! It owns parsing and connecting; it must not run queries (that is [`super::schema`] and, later,
//! the store's methods).
//!
//! Choices worth knowing:
//! - The password is never part of the URL: a URL with one is refused (without repeating it),
//!   because URLs end up in config files, process lists and logs. [`Password`] has no `Display`
//!   and a `Debug` that prints `<redacted>`, so neither `{:?}` of a [`PgConfig`] nor any error
//!   of this module can show it. The server's own error for a wrong password names the user only.
//! - `sslmode` follows libpq's meanings for the modes it supports: `disable` (plain TCP),
//!   `prefer` (TLS when the server offers it, else plain; the default, as in libpq), `require`
//!   (TLS, certificate not checked: protects against passive listening only) and `verify-full`
//!   (TLS, the chain checked against `sslrootcert` or else the system's roots, and the host name
//!   checked against the certificate). `verify-ca` (chain without name) is refused rather than
//!   quietly treated as one of the others.
//! - rustls with the ring provider, passed explicitly (never the process default), so the arm64
//!   cross-build needs no cmake (Cargo.toml) and the webhook client's choice cannot change ours.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::PgError;

/// How long a connection attempt may take before it fails (a site must notice an unreachable
/// database instead of hanging).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// libpq's `sslmode` values this backend supports (see the module doc for their meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, PgError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-full" => SslMode::VerifyFull,
            "verify-ca" => {
                return Err(PgError::Url(
                    "sslmode=verify-ca is not supported: use verify-full (which also checks the \
                     host name) or require"
                        .into(),
                ));
            }
            other => {
                return Err(PgError::Url(format!(
                    "unknown sslmode {other:?} (disable, prefer, require or verify-full)"
                )));
            }
        })
    }
}

/// A PostgreSQL password. Never printed: no `Display`, and `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Password {
        Password(secret.into())
    }

    /// The first line of a file (a trailing newline is not part of the password, as with
    /// systemd credentials and `echo secret > file`).
    pub fn from_file(path: &Path) -> Result<Password, PgError> {
        let text = std::fs::read_to_string(path).map_err(|source| PgError::PasswordFile {
            path: path.to_path_buf(),
            source,
        })?;
        let line = text.lines().next().unwrap_or_default();
        Ok(Password(line.to_owned()))
    }

    /// The value of an environment variable.
    pub fn from_env(name: &str) -> Result<Password, PgError> {
        std::env::var(name)
            .map(Password)
            .map_err(|_| PgError::PasswordEnv { name: name.into() })
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Where and how to connect: parsed from the URL, plus the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub sslmode: SslMode,
    /// PEM file of the CA(s) to trust for `verify-full` instead of the system's roots.
    pub sslrootcert: Option<PathBuf>,
    /// The schema gsmgate's tables live in (`?schema=`); `None` is the role's `search_path`
    /// (normally `public`). Lets several gateways' groups, or the tests, share one database.
    pub schema: Option<String>,
    pub password: Option<Password>,
}

impl PgConfig {
    /// Parses `postgres://user@host[:port]/dbname[?sslmode=…&sslrootcert=…]` (`postgresql://`
    /// too). Errors never repeat the URL: a mistyped one may hold a password.
    pub fn from_url(text: &str) -> Result<PgConfig, PgError> {
        let url = url::Url::parse(text)
            .map_err(|e| PgError::Url(format!("not a URL ({e}); expected {FORM}")))?;
        if url.scheme() != "postgres" && url.scheme() != "postgresql" {
            return Err(PgError::Url(format!(
                "the scheme must be postgres:// or postgresql://; expected {FORM}"
            )));
        }
        if url.password().is_some() {
            return Err(PgError::Url(
                "the URL carries a password: give the password separately (a file or an \
                 environment variable), never in the URL"
                    .into(),
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(PgError::Url(format!("no host; expected {FORM}"))),
        };
        let user = percent_decode(url.username());
        if user.is_empty() {
            return Err(PgError::Url(format!("no user; expected {FORM}")));
        }
        let dbname = percent_decode(url.path().trim_start_matches('/'));
        if dbname.is_empty() || dbname.contains('/') {
            return Err(PgError::Url(format!("no database name; expected {FORM}")));
        }
        let mut config = PgConfig {
            host,
            port: url.port().unwrap_or(5432),
            user,
            dbname,
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            schema: None,
            password: None,
        };
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => config.sslmode = SslMode::parse(&value)?,
                "sslrootcert" => config.sslrootcert = Some(PathBuf::from(value.as_ref())),
                "schema" => {
                    let ok = !value.is_empty()
                        && value.len() <= 63
                        && value
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                        && !value.starts_with(|c: char| c.is_ascii_digit());
                    if !ok {
                        return Err(PgError::Url(
                            "schema must be 1-63 lower-case letters, digits or _, not starting \
                             with a digit"
                                .into(),
                        ));
                    }
                    config.schema = Some(value.into_owned());
                }
                other => {
                    return Err(PgError::Url(format!(
                        "unknown parameter {other:?} (sslmode, sslrootcert and schema are \
                         understood)"
                    )));
                }
            }
        }
        Ok(config)
    }

    pub fn with_password(mut self, password: Password) -> PgConfig {
        self.password = Some(password);
        self
    }

    /// `user@host:port/db`: what errors and logs name (never the password).
    pub fn target(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    /// Opens one connection. Must run outside an async task (the client blocks on its own
    /// runtime): on the blocking pool or a plain thread.
    pub fn connect(&self) -> Result<postgres::Client, PgError> {
        let mut config = postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("gsmgate")
            .connect_timeout(CONNECT_TIMEOUT);
        if let Some(schema) = &self.schema {
            // Checked in from_url: a plain identifier, safe inside the option string.
            config.options(&format!("-c search_path={schema}"));
        }
        if let Some(password) = &self.password {
            config.password(password.0.as_bytes());
        }
        let fail = |source| PgError::Connect {
            target: self.target(),
            source,
        };
        if self.sslmode == SslMode::Disable {
            config.ssl_mode(postgres::config::SslMode::Disable);
            return config.connect(postgres::NoTls).map_err(fail);
        }
        config.ssl_mode(match self.sslmode {
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls_config()?);
        config.connect(tls).map_err(fail)
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, PgError> {
        let fail = |detail: String| PgError::Tls {
            target: self.target(),
            detail,
        };
        // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange, which only
        // aws-lc-rs offers (it needs cmake, which the arm64 cross-build must not); the classical
        // suites stay secure, as for the webhooks and the HTTP listener.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?;
        if self.sslmode != SslMode::VerifyFull {
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth());
        }
        let mut roots = rustls::RootCertStore::empty();
        match &self.sslrootcert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| fail(format!("sslrootcert {}: {e}", path.display())))?;
                for cert in certs {
                    let cert =
                        cert.map_err(|e| fail(format!("sslrootcert {}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| fail(format!("sslrootcert {}: {e}", path.display())))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        if roots.is_empty() {
            return Err(fail(
                "sslmode=verify-full has no trusted root certificate (set sslrootcert or install \
                 the system's CA certificates)"
                    .into(),
            ));
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    }
}

const FORM: &str = "postgres://USER@HOST[:PORT]/DATABASE[?sslmode=MODE]";

/// `%XX` to its byte; anything else (also '+', which stays a plus in a user name) as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `sslmode=require`/`prefer`: the channel is encrypted and the handshake's signatures are
/// checked, but the certificate is not (libpq's meaning of these modes). Only `verify-full`
/// authenticates the server.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_parses() {
        let c = PgConfig::from_url(
            "postgres://gw@db.example.org:6432/gsm?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str(), c.dbname.as_str()),
            ("db.example.org", 6432, "gw", "gsm")
        );
        assert_eq!(c.sslmode, SslMode::VerifyFull);
        assert_eq!(c.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.password, None);
        assert_eq!(c.target(), "gw@db.example.org:6432/gsm");
    }

    #[test]
    fn defaults_are_port_5432_and_sslmode_prefer() {
        let c = PgConfig::from_url("postgresql://gw@10.0.0.5/gsm").unwrap();
        assert_eq!((c.port, c.sslmode), (5432, SslMode::Prefer));
        let c = PgConfig::from_url("postgres://gw@[::1]:5433/gsm").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 5433));
    }

    #[test]
    fn percent_encoded_names_are_decoded_and_plus_is_kept() {
        let c = PgConfig::from_url("postgres://gw%40site+a@h/my%20db").unwrap();
        assert_eq!((c.user.as_str(), c.dbname.as_str()), ("gw@site+a", "my db"));
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_repeating_it() {
        let err = PgConfig::from_url("postgres://gw:hunter2secret@h/gsm").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("password"), "{text}");
        assert!(!text.contains("hunter2secret"), "{text}");
    }

    #[test]
    fn bad_urls_get_errors_that_do_not_echo_them() {
        for (url, expect) in [
            ("mysql://gw@h/gsm", "scheme"),
            ("postgres://h/gsm", "no user"),
            ("postgres://gw@h/", "no database"),
            ("postgres://gw@h/gsm?sslmode=verify-ca", "verify-full"),
            ("postgres://gw@h/gsm?sslmode=allow", "unknown sslmode"),
            (
                "postgres://gw@h/gsm?password=zzsecretzz",
                "unknown parameter",
            ),
            ("not a url zzsecretzz", "not a URL"),
        ] {
            let err = PgConfig::from_url(url).unwrap_err().to_string();
            assert!(err.contains(expect), "{url}: {err}");
            assert!(!err.contains("zzsecretzz"), "{url}: {err}");
        }
    }

    #[test]
    fn debug_of_a_config_redacts_the_password() {
        let c = PgConfig::from_url("postgres://gw@h/gsm")
            .unwrap()
            .with_password(Password::new("hunter2secret"));
        let text = format!("{c:?}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(!text.contains("hunter2secret"), "{text}");
    }

    #[test]
    fn a_password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret with space\n").unwrap();
        assert_eq!(
            Password::from_file(&path).unwrap(),
            Password::new("s3cret with space")
        );
        let missing = Password::from_file(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }

    #[test]
    fn a_missing_password_variable_is_named() {
        let err = Password::from_env("GSMGATE_TEST_NO_SUCH_VARIABLE_17").unwrap_err();
        assert!(err.to_string().contains("GSMGATE_TEST_NO_SUCH_VARIABLE_17"));
    }

    #[test]
    fn verify_full_with_an_unreadable_root_file_is_a_tls_error() {
        let c = PgConfig::from_url(
            "postgres://gw@127.0.0.1:1/gsm?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap();
        let Err(err) = c.connect() else {
            panic!("connected without a root certificate")
        };
        assert!(matches!(err, PgError::Tls { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
