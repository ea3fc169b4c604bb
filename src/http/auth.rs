//! Who is calling: the bearer token of every request (docs/http-api.md, "Tokens"), checked
//! before any handler runs, and the per-caller rate limits.
//!
//! [`Auth`] is an extractor, so a handler cannot exist without it: the router has no route
//! that skips authentication. A missing, malformed, unknown or revoked token is `401
//! unauthorized`; what the token may do is decided later, in the command layer
//! (`commands::access`), so the HTTP layer never holds a second copy of the scope rules.
//!
//! Rate limits are token buckets in memory: one per token (`[http] rate_per_minute`, a burst of
//! one minute's worth), and one per client address for failed authentications (10 a minute),
//! so a script with a wrong token cannot fill the log or guess at leisure. "Last used" is
//! written at most once a minute per token: it is for people, not an audit trail, and a write
//! per request would cost an fsync per request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use tracing::{debug, warn};

use super::AppState;
use super::error::ApiError;
use crate::commands::{Caller, tokens};
use crate::protocol::ErrorCode;

/// Failed authentications one address may make per minute before it gets 429.
const FAILED_AUTH_PER_MINUTE: u32 = 10;
/// How often "last used" is written per token.
const TOUCH_EVERY_MS: i64 = 60_000;
/// Buckets kept before idle ones are dropped (bounds memory under a flood of addresses).
const MAX_BUCKETS: usize = 10_000;

/// One token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key, each holding `per_minute` and refilling at `per_minute` a minute.
#[derive(Debug)]
pub struct Limiter<K> {
    per_minute: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    pub fn new(per_minute: u32) -> Limiter<K> {
        Limiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; `Err(seconds)` to wait when it is empty.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), u64> {
        let cap = f64::from(self.per_minute);
        let per_sec = cap / 60.0;
        let mut map = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= MAX_BUCKETS && !map.contains_key(key) {
            // Full buckets have been idle for a minute at least: forgetting them changes nothing.
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < cap);
        }
        let b = map.entry(key.clone()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let refilled = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec).min(cap);
        b.at = now;
        if refilled >= 1.0 {
            b.tokens = refilled - 1.0;
            Ok(())
        } else {
            b.tokens = refilled;
            Err(((1.0 - refilled) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// The authenticated caller of a request.
pub struct Auth(pub Caller);

/// Per-server authentication state: the limiters and the "last used" throttle.
#[derive(Debug)]
pub struct AuthState {
    per_token: Limiter<String>,
    failures: Limiter<IpAddr>,
    touched: Mutex<HashMap<i64, i64>>,
}

impl AuthState {
    pub fn new(rate_per_minute: u32) -> AuthState {
        AuthState {
            per_token: Limiter::new(rate_per_minute),
            failures: Limiter::new(FAILED_AUTH_PER_MINUTE),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// True when token `id` was not marked used within the last minute (and marks it now).
    fn should_touch(&self, id: i64, now_ms: i64) -> bool {
        let mut t = self
            .touched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match t.get(&id) {
            Some(&at) if now_ms - at < TOUCH_EVERY_MS => false,
            _ => {
                t.insert(id, now_ms);
                true
            }
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = client_ip(parts);
        let refuse = |message: &str| {
            if let Some(ip) = ip
                && let Err(wait) = state.auth.failures.take(&ip, Instant::now())
            {
                let mut e = ApiError::new(
                    ErrorCode::RateLimited,
                    "too many failed authentications from this address; wait and retry",
                );
                e.retry_after_secs = Some(wait);
                return e;
            }
            ApiError::new(ErrorCode::Unauthorized, message)
        };
        let Some(secret) = bearer(parts).map(str::to_owned) else {
            debug!(path = %parts.uri.path(), "HTTP request without a bearer token");
            return Err(refuse(
                "this API needs `Authorization: Bearer <token>`; create a token with \
                 `gsmgate tokens create NAME --scope read|send|admin`",
            ));
        };
        let store = state.ctx.store.clone();
        let found = tokio::task::spawn_blocking(move || tokens::authenticate(&store, &secret))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("authentication failed: {e}")))?
            .map_err(ApiError::from)?;
        let Some((id, caller)) = found else {
            warn!(path = %parts.uri.path(), client = ?ip, "HTTP request with an unknown or revoked token");
            return Err(refuse("the bearer token is unknown or revoked"));
        };
        if let Err(wait) = state.auth.per_token.take(&caller.name, Instant::now()) {
            let mut e = ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "token {:?} made more than [http] rate_per_minute requests; retry in {wait} s",
                    caller.name
                ),
            );
            e.retry_after_secs = Some(wait);
            return Err(e);
        }
        let now = state.ctx.now();
        if state.auth.should_touch(id, now) {
            let store = state.ctx.store.clone();
            // Bookkeeping: a failure is logged and does not fail the request.
            if let Err(e) = store.call(move |s| s.touch_token(id, now)).await {
                warn!(error = %e, "cannot record a token's last use");
            }
        }
        Ok(Auth(caller))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let l: Limiter<&str> = Limiter::new(60);
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(l.take(&"a", t0).is_ok());
        }
        assert_eq!(l.take(&"a", t0), Err(1));
        assert!(l.take(&"b", t0).is_ok(), "buckets are per key");
        assert!(l.take(&"a", t0 + Duration::from_millis(1_100)).is_ok());
        assert!(l.take(&"a", t0 + Duration::from_millis(1_200)).is_err());
    }
}
