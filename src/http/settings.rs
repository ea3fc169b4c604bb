//! `[http]`: where the HTTP API listens and its limits (docs/configuration.md, `[http]`). The
//! http layer owns the type; `config` fills it from the file and checks the cross-field rule
//! that a non-loopback address needs TLS or an explicit `allow_plaintext = true`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Largest request body by default: a members CSV import of ~10,000 rows fits.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests per minute one token may make by default (a burst of this many, then this rate).
pub const DEFAULT_RATE_PER_MINUTE: u32 = 600;
/// Longest a request may take before it is answered 503 (not the event stream).
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

/// The HTTP server's settings; `None` in the daemon's configuration means no server.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Permit plain HTTP on a non-loopback address (behind a TLS-terminating proxy on the same
    /// host, or on a trusted network). Validated by `config`; recorded for the start-up log.
    pub allow_plaintext: bool,
    pub max_body_bytes: usize,
    pub rate_per_minute: u32,
    pub request_timeout_secs: u64,
}

impl HttpSettings {
    /// Settings for `listen` with every other key at its default.
    pub fn new(listen: SocketAddr) -> HttpSettings {
        HttpSettings {
            listen,
            tls: None,
            allow_plaintext: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            rate_per_minute: DEFAULT_RATE_PER_MINUTE,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
        }
    }
}

/// PEM files of the server's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}
