//! The HTTP transport (docs/http-api.md): the versioned JSON API under `/api/v1`, its OpenAPI
//! document, the live event stream (Server-Sent Events) and, where the daemon gives one, the
//! Prometheus metrics at `/metrics`. A second transport over the command layer beside the Unix
//! admin socket: every route is one `commands::run_as` call, so HTTP cannot drift from the CLI.
//!
//! What it owns: routing, bearer-token authentication and rate limits (`auth`), the JSON error
//! shape and status codes (`error`), `Idempotency-Key` (`idempotency`), TLS, and the size and
//! time limits of a request. What it must not touch: business rules and scopes (`commands`),
//! SQL (`store`, reached only through `commands` and the token/idempotency methods), or the
//! configuration file (`config` fills [`HttpSettings`]).
//!
//! Choices: axum on hyper (HTTP/1.1 only: the clients are scripts, CRMs and Prometheus, and the
//! Pi saves the HTTP/2 code); TLS with rustls and its `ring` provider, built into a
//! `ServerConfig` here rather than installed process-wide; every route, `/metrics` and the
//! OpenAPI document included, needs a token — there is no anonymous API route, because the
//! gateway's data is members' phone numbers and texts. The web console (`crate::web`) is merged
//! in beside the API with its own authentication (session cookies; only its login page and two
//! static files answer without one). Bodies are capped at `[http]
//! max_body_bytes` and requests at `[http] request_timeout_secs` (503 after), except the event
//! stream, which is meant to stay open. Plain HTTP and HTTPS are both served by `axum_server`,
//! one code path, so both get the header-read timeout against clients that trickle headers.

pub mod auth;
pub mod error;
mod idempotency;
pub mod openapi;
pub mod routes;
mod settings;
mod sse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tracing::{info, warn};

pub use settings::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE_PER_MINUTE, DEFAULT_REQUEST_TIMEOUT_SECS, HttpSettings,
    TlsFiles,
};

use crate::commands::{Context, access};
use crate::metrics::{Format, Metrics};
use crate::protocol::{ErrorCode, Event, NoArgs, Request};
use auth::{Auth, AuthState};
use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub ctx: Arc<Context>,
    /// The daemon's event channel, for `/api/v1/events`.
    pub events: Option<broadcast::Sender<Event>>,
    pub metrics: Option<Metrics>,
    pub auth: Arc<AuthState>,
    pub shutdown: CancellationToken,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("[http] TLS: {0}")]
    Tls(String),
}

/// The whole router over `state` (also used by tests without a socket).
pub fn router(state: AppState, settings: &HttpSettings) -> Router {
    let timeout = Duration::from_secs(settings.request_timeout_secs.max(1));
    let bounded = Router::new()
        .nest(
            "/api/v1",
            routes::api().route("/openapi.json", get(openapi_json)),
        )
        .route("/metrics", get(metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ));
    let console = crate::web::WebState::new(
        state.ctx.clone(),
        state.events.clone(),
        state.shutdown.clone(),
        settings.tls.is_some(),
        timeout,
    );
    Router::new()
        .route("/api/v1/events", get(sse::events))
        .merge(bounded)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .with_state(state)
        .merge(crate::web::router(console))
}

/// No route: a browser asking for a page (outside `/api/`) gets the console's HTML 404, every
/// other client the API's JSON error.
async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        return crate::web::not_found_page();
    }
    ApiError::new(
        ErrorCode::NotFound,
        format!(
            "no route {}; the API lives under /api/v1 (see /api/v1/openapi.json)",
            uri.path()
        ),
    )
    .into_response()
}

async fn openapi_json(Auth(c): Auth) -> Result<Response, ApiError> {
    access::authorize(&c, &Request::Version(NoArgs {}))?;
    Ok(axum::Json(openapi::document()).into_response())
}

/// `GET /metrics`: the Prometheus text format, or OpenMetrics when the scraper asks for it.
async fn metrics(
    State(s): State<AppState>,
    Auth(c): Auth,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    access::authorize(&c, &Request::Status(NoArgs {}))?;
    let Some(m) = s.metrics.clone() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this gateway exports no metrics",
        ));
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = Format::from_accept(accept);
    let text = m.render_as(format).await;
    Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
}

/// Loads the PEM certificate chain and key into a rustls server configuration (ring provider,
/// TLS 1.2 and 1.3, HTTP/1.1 by ALPN).
fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, HttpError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| HttpError::Tls(format!("tls_cert {}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(HttpError::Tls(format!(
            "tls_cert {}: no certificate in the file",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| HttpError::Tls(format!("tls_key {}: {e}", files.key.display())))?;
    // ring rather than aws-lc-rs: aws-lc-rs needs cmake and a C toolchain per target, which the
    // arm64 cross-build of the Pi package does not carry. rustls marks ring's provider
    // deprecated for lacking post-quantum key exchange; the classical suites stay secure.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| HttpError::Tls(format!("certificate and key do not fit: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A running server: its bound address and the task serving it.
pub struct Server {
    pub local_addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// How long a client may take to send a request's headers (a new connection's first request, or
/// the next one on a kept-alive connection) before it is disconnected: the request timeout, at
/// most 10 s. Without it, a client that trickles header bytes (slowloris) holds a connection and
/// its task forever; hyper only enforces this with a timer, which `axum_server` installs.
fn header_timeout(settings: &HttpSettings) -> Duration {
    Duration::from_secs(settings.request_timeout_secs.clamp(1, 10))
}

/// Binds `[http] listen` and serves until `shutdown` fires. Binding happens before this returns,
/// so a port in use is a start-up error, not a log line later.
pub async fn start(
    settings: &HttpSettings,
    ctx: Arc<Context>,
    events: Option<broadcast::Sender<Event>>,
    metrics: Option<Metrics>,
    shutdown: CancellationToken,
) -> Result<Server, HttpError> {
    let tls = settings.tls.as_ref().map(tls_config).transpose()?;
    let state = AppState {
        ctx,
        events,
        metrics,
        auth: Arc::new(AuthState::new(settings.rate_per_minute)),
        shutdown: shutdown.clone(),
    };
    let app = router(state, settings).into_make_service_with_connect_info::<SocketAddr>();
    let addr = settings.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(url = %format!("{scheme}://{local_addr}/api/v1/"), "HTTP API listening");
    let std_listener = listener
        .into_std()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        h.graceful_shutdown(Some(Duration::from_secs(3)));
    });
    let header_timeout = header_timeout(settings);
    let task = match tls {
        None => {
            let mut server = axum_server::from_tcp(std_listener)
                .map_err(|source| HttpError::Bind { addr, source })?
                .handle(handle);
            server
                .http_builder()
                .http1()
                .header_read_timeout(Some(header_timeout));
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    warn!(error = %e, "HTTP server stopped");
                }
            })
        }
        Some(cfg) => {
            let mut server = axum_server::from_tcp_rustls(
                std_listener,
                axum_server::tls_rustls::RustlsConfig::from_config(cfg),
            )
            .map_err(|source| HttpError::Bind { addr, source })?
            .handle(handle);
            server
                .http_builder()
                .http1()
                .header_read_timeout(Some(header_timeout));
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    warn!(error = %e, "HTTPS server stopped");
                }
            })
        }
    };
    Ok(Server { local_addr, task })
}
