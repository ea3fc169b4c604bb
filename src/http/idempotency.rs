//! `Idempotency-Key` on the POSTs that create something (a message, a member, an import, a
//! broadcast): a client that retries after a timeout or a dropped connection gets the first
//! answer again instead of a second send (docs/http-api.md, "Retries and Idempotency-Key").
//!
//! The key is reserved in the store before the command runs and the response saved after it
//! (`store::tokens`), per token, for 24 hours. The same key with a different request (another
//! path or body) is refused 422, so a client bug that reuses keys cannot silently drop a
//! message. A refusal (the command changed nothing) frees the key. If the daemon died between
//! running the command and saving its response, the key stays reserved and a retry is told
//! `409 conflict` with the advice to look the outcome up: an honest "unknown" is better than a
//! possible duplicate text.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::warn;

use super::error::ApiError;
use crate::commands::{self, Caller, Context};
use crate::protocol::{ErrorCode, Reply, Request};
use crate::store::IdempotencyBegin;
use crate::time::rfc3339;

/// How long a key is remembered.
const KEEP_MS: i64 = 24 * 3600 * 1000;
/// Longest key accepted.
const MAX_KEY_LEN: usize = 255;

fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or("");
    let ok =
        !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is ideal)",
        ));
    }
    Ok(Some(key.to_string()))
}

fn hash_of(path: &str, request: &Request) -> String {
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(request).unwrap_or_default());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn reply_json(reply: &Reply) -> Value {
    serde_json::to_value(reply).unwrap_or(Value::Null)
}

/// A creating request's answer: its status, its JSON, and whether it is a saved first answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if self.replayed {
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        r
    }
}

fn respond(status: StatusCode, body: Value, replayed: bool) -> Answer {
    Answer {
        status,
        body,
        replayed,
    }
}

/// Runs a creating command once per `Idempotency-Key` (when the request has one), answering
/// `status` with the reply's JSON, or the saved answer of the first request with the key.
pub async fn run_once(
    ctx: &Arc<Context>,
    caller: &Caller,
    headers: &HeaderMap,
    path: &str,
    request: Request,
    status: impl Fn(&Reply) -> StatusCode,
) -> Result<Answer, ApiError> {
    let Some(key) = key_of(headers)? else {
        let reply = commands::run_as(ctx, caller, request).await?;
        return Ok(respond(status(&reply), reply_json(&reply), false));
    };
    // Scope first: an under-scoped token must not learn whether a key was used.
    commands::access::authorize(caller, &request)?;
    let hash = hash_of(path, &request);
    let (token, now) = (caller.name.clone(), ctx.now());
    let (t, k) = (token.clone(), key.clone());
    let begun = ctx
        .store
        .call(move |s| s.idempotency_begin(&t, &k, &hash, now, now - KEEP_MS))
        .await
        .map_err(|e| ApiError::from(commands::CommandError::from(e)))?;
    match begun {
        IdempotencyBegin::Done { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let body = serde_json::from_str(&body).unwrap_or(Value::Null);
            Ok(respond(status, body, true))
        }
        IdempotencyBegin::Mismatch => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "this Idempotency-Key was used for a different request; use a new key per request",
        )),
        IdempotencyBegin::Pending { since } => Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "a request with this Idempotency-Key started at {} has not finished (or the \
                 gateway restarted while it ran, so its outcome is unknown): look it up before \
                 retrying with a new key",
                rfc3339(since)
            ),
        )),
        IdempotencyBegin::Reserved => {
            let (t, k) = (token.clone(), key.clone());
            match commands::run_as(ctx, caller, request).await {
                Ok(reply) => {
                    let code = status(&reply);
                    let body = reply_json(&reply);
                    let text = body.to_string();
                    if let Err(e) = ctx
                        .store
                        .call(move |s| s.idempotency_finish(&t, &k, code.as_u16(), &text))
                        .await
                    {
                        warn!(error = %e, "cannot save an idempotent response; a retry will get 409");
                    }
                    Ok(respond(code, body, false))
                }
                Err(e) => {
                    if let Err(e) = ctx.store.call(move |s| s.idempotency_release(&t, &k)).await {
                        warn!(error = %e, "cannot release an idempotency key");
                    }
                    Err(e.into())
                }
            }
        }
    }
}
