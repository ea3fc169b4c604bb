//! The web console (docs/web.md): server-rendered pages for the people who run the number, on
//! the HTTP API's listener, as a third transport over the command layer. Every page action is
//! one `commands::run_as` call with the account's caller (owner → `admin` scope, volunteer →
//! `send` scope), so the console can do nothing the rules of `commands::access` do not allow,
//! and a page hides what a role cannot do only as a courtesy: the command layer refuses it.
//!
//! What it owns: accounts' sessions and cookies, CSRF tokens and login throttling (`session`,
//! `throttle`), the pages (one file per page group, HTML written with `maud`, which escapes
//! every interpolated value at compile time, so a member named `<img src=x onerror=…>` is text),
//! the console's event stream and its two static files (embedded in the binary: the Pi serves
//! nothing from outside). What it must not touch: rules and scopes (`commands`), SQL beyond the
//! account/session/audit methods of `store`, the JSON API (`http`, which merges this router).
//!
//! Choices: no JavaScript framework and no inline script or style, so the Content-Security-
//! Policy can forbid both; pages work without JavaScript (forms post and redirect), and
//! `console.js` only refreshes the marked parts of a page when the event stream says something
//! changed. Every response carries the security headers, including errors and the login page.

mod broadcast;
mod calls;
mod conversations;
mod dashboard;
mod events;
mod layout;
mod login;
mod members;
mod modems;
mod session;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::broadcast as bus;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::commands::{self, CommandError, Context};
use crate::protocol::{Event, Reply, Request};
pub use session::Session;

/// The Content-Security-Policy of every console response (docs/web.md, "Security").
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' \
                       data:; media-src 'self'; connect-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// The largest console request body: a greeting WAV (the voice layer caps it lower) or a
/// members CSV, as multipart or form data.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What every console handler can reach.
pub struct WebState {
    pub ctx: Arc<Context>,
    pub events: Option<bus::Sender<Event>>,
    pub shutdown: CancellationToken,
    /// The listener is TLS: cookies get `Secure`.
    pub secure: bool,
    /// `[http] request_timeout_secs`: pages answer 503 after it (not the event stream).
    pub timeout: Duration,
    throttle: throttle::LoginThrottle,
}

/// Shared console state.
pub type Web = Arc<WebState>;

impl WebState {
    pub fn new(
        ctx: Arc<Context>,
        events: Option<bus::Sender<Event>>,
        shutdown: CancellationToken,
        secure: bool,
        timeout: Duration,
    ) -> WebState {
        WebState {
            ctx,
            events,
            shutdown,
            secure,
            timeout,
            throttle: throttle::LoginThrottle::default(),
        }
    }

    /// Runs `request` as the session's account (the one door into the command layer).
    async fn run(&self, s: &Session, request: Request) -> Result<Reply, WebError> {
        Ok(commands::run_as(&self.ctx, &s.caller(), request).await?)
    }

    /// Records a change made in the console with who made it. Bookkeeping: the change itself
    /// has happened, so a failure is logged and not shown as the change failing.
    async fn audit(&self, s: &Session, action: &'static str, detail: String) {
        let (store, user, now) = (self.ctx.store.clone(), s.user.clone(), self.ctx.now());
        let done =
            tokio::task::spawn_blocking(move || store.web_audit(now, &user, action, &detail)).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, action, "cannot record a console change"),
            Err(e) => warn!(error = %e, action, "cannot record a console change"),
        }
    }
}

/// Unwraps the reply of one command into its typed data, or answers 500 for a reply of another
/// command (a bug, never user input).
macro_rules! expect_reply {
    ($reply:expr, $variant:path) => {
        match $reply {
            $variant(data) => data,
            other => {
                return Err($crate::web::WebError::Internal(format!(
                    "unexpected reply to {}",
                    other.command()
                )));
            }
        }
    };
}
pub(crate) use expect_reply;

/// Why a console request failed, and how it is shown.
#[derive(Debug)]
pub enum WebError {
    /// No session: pages redirect to the login page.
    Login,
    /// No session on the event stream or a JSON endpoint: 401.
    Unauthorized,
    /// The role may not do this, or the CSRF token is missing or wrong: 403.
    Forbidden(String),
    NotFound(String),
    /// Input the command layer refused: 400 with its sentence.
    Invalid(String),
    /// Too many failed logins: 429.
    Throttled(u64),
    Internal(String),
}

impl From<CommandError> for WebError {
    fn from(e: CommandError) -> WebError {
        match e {
            CommandError::Forbidden(m) => WebError::Forbidden(m),
            CommandError::NotFound(m) => WebError::NotFound(m),
            CommandError::Store(e) => {
                warn!(error = %e, "console request failed in the database");
                WebError::Internal("the database failed; see the daemon log".into())
            }
            CommandError::Internal(m) => {
                warn!(error = %m, "console request failed");
                WebError::Internal("an internal error; see the daemon log".into())
            }
            other => WebError::Invalid(other.to_string()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            WebError::Login => {
                return (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, HeaderValue::from_static("/login"))],
                )
                    .into_response();
            }
            WebError::Unauthorized => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "log in to the console first\n",
                )
                    .into_response();
            }
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            WebError::Invalid(m) => (StatusCode::BAD_REQUEST, "Not accepted", m),
            WebError::Throttled(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                format!("too many failed logins; try again in {secs} s"),
            ),
            WebError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "Something failed", m),
        };
        (status, layout::html(layout::error_page(title, &message))).into_response()
    }
}

/// Adds the security headers to every console response.
async fn security_headers(mut r: Response) -> Response {
    set_security_headers(r.headers_mut());
    r
}

/// The headers every console response carries (docs/web.md, "Security").
fn set_security_headers(h: &mut axum::http::HeaderMap) {
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // Pages hold members' numbers and texts: no shared or disk cache keeps them.
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// The page a browser gets for a path that is neither a console page nor the API: it needs no
/// session and shows nothing but a way back (the path is not echoed, so nothing a link put in
/// it reaches the page).
pub fn not_found_page() -> Response {
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Not found · gsmgate" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                main id="not-found" {
                    h1 { "Not found" }
                    p { "There is no page at this address." }
                    p { a href="/" { "Back to the console" } }
                }
            }
        }
    };
    let mut r = (
        StatusCode::NOT_FOUND,
        axum::response::Html(page.into_string()),
    )
        .into_response();
    set_security_headers(r.headers_mut());
    r
}

const CONSOLE_JS: &str = include_str!("static/console.js");
const CONSOLE_CSS: &str = include_str!("static/console.css");

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The console's routes (merged into the HTTP router by `http::router`).
pub fn router(state: WebState) -> Router {
    let state: Web = Arc::new(state);
    let bounded = tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::SERVICE_UNAVAILABLE,
        state.timeout.max(Duration::from_secs(1)),
    );
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/logout-everywhere", post(login::logout_everywhere))
        .route("/", get(dashboard::dashboard))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{number}", get(conversations::thread))
        .route("/conversations/{number}/reply", post(conversations::reply))
        .route("/broadcast", get(broadcast::form).post(broadcast::submit))
        .route("/console/broadcast/count", get(broadcast::count))
        .route("/broadcasts/{id}", get(broadcast::progress))
        .route("/broadcasts/{id}/{action}", post(broadcast::control))
        .route("/members", get(members::list))
        .route("/members/export", get(members::export))
        .route(
            "/members/import",
            get(members::import_form).post(members::import),
        )
        .route(
            "/members/{number}",
            get(members::edit).post(members::update),
        )
        .route("/calls", get(calls::page_route))
        .route("/calls/voicemail/{id}", get(calls::voicemail_audio))
        .route("/calls/greeting", post(calls::greeting_upload))
        .route("/calls/greeting.wav", get(calls::greeting_audio))
        .route("/modems", get(modems::page_route))
        .route(
            "/static/console.js",
            get(|| async { static_file("text/javascript; charset=utf-8", CONSOLE_JS) }),
        )
        .route(
            "/static/console.css",
            get(|| async { static_file("text/css; charset=utf-8", CONSOLE_CSS) }),
        )
        .layer(bounded)
        // The event stream is meant to stay open: outside the timeout.
        .route("/console/events", get(events::stream))
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The paths of every console page and endpoint that needs a session, with their method (the
/// tests loop over them).
pub const PROTECTED_ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/conversations"),
    ("GET", "/conversations/%2B15550001111"),
    ("POST", "/conversations/%2B15550001111/reply"),
    ("GET", "/broadcast"),
    ("POST", "/broadcast"),
    ("GET", "/console/broadcast/count?segment="),
    ("GET", "/broadcasts/1"),
    ("POST", "/broadcasts/1/pause"),
    ("GET", "/members"),
    ("GET", "/members/export"),
    ("GET", "/members/import"),
    ("POST", "/members/import"),
    ("GET", "/members/%2B15550001111"),
    ("POST", "/members/%2B15550001111"),
    ("GET", "/calls"),
    ("GET", "/calls/voicemail/1"),
    ("POST", "/calls/greeting"),
    ("GET", "/calls/greeting.wav"),
    ("GET", "/modems"),
    ("GET", "/console/events"),
    ("POST", "/logout"),
    ("POST", "/logout-everywhere"),
];
