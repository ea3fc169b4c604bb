//! The HTTP face of a refusal: one JSON body for every error, `{"error": {"code", "message"}}`
//! with the admin protocol's codes, and the status code each code maps to. Also the JSON body
//! extractor, because axum's own answers a bad body in plain text.
//!
//! The codes are the protocol's `ErrorCode` (docs/admin-protocol.md), so a script that handles
//! `opted_out` on the socket handles it over HTTP too; the status is only a summary for HTTP
//! tooling. Errors from the command layer arrive as `ErrorBody` through the one mapping in
//! `commands::error`, so a database failure is logged there and reads "internal" here.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::commands::CommandError;
use crate::protocol::{ErrorBody, ErrorCode};

/// The HTTP status for a protocol error code.
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::MalformedJson | ErrorCode::InvalidRequest | ErrorCode::InvalidNumber => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::UnsupportedVersion => StatusCode::BAD_REQUEST,
        ErrorCode::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnknownCommand | ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        // The number refused messages: the request is understood but consent forbids it.
        ErrorCode::OptedOut => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal | ErrorCode::Other => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error answer: the body and, for 429, how long to wait.
#[derive(Debug)]
pub struct ApiError {
    pub body: ErrorBody,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            body: ErrorBody::new(code, message),
            retry_after_secs: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        status_for(self.body.code)
    }

    /// The JSON text of the body (what an idempotent replay stores).
    pub fn json(&self) -> serde_json::Value {
        json!({ "error": self.body })
    }
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> ApiError {
        ApiError {
            body,
            retry_after_secs: None,
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> ApiError {
        ApiError::from(ErrorBody::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status(), Json(self.json())).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.body.code == ErrorCode::Unauthorized {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gsmgate\""),
            );
        }
        r
    }
}

/// A JSON request body of type `T`, refused with the protocol's codes: `malformed_json` for
/// bad syntax, `invalid_request` naming the field for a wrong shape or an unknown field,
/// `request_too_large` past `[http] max_body_bytes`.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::RequestTooLarge,
                    "the request body is larger than [http] max_body_bytes allows",
                )
            } else {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("cannot read the request body: {e}"),
                )
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body with the protocol's error codes.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::new(ErrorCode::InvalidRequest, e.to_string()),
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                ErrorCode::MalformedJson,
                format!("the request body is not valid JSON: {e}"),
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_status() {
        for code in [
            ErrorCode::MalformedJson,
            ErrorCode::RequestTooLarge,
            ErrorCode::UnknownCommand,
            ErrorCode::InvalidRequest,
            ErrorCode::UnsupportedVersion,
            ErrorCode::PermissionDenied,
            ErrorCode::InvalidNumber,
            ErrorCode::OptedOut,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::Unauthorized,
            ErrorCode::RateLimited,
        ] {
            assert!(status_for(code).is_client_error(), "{code}");
        }
        for code in [
            ErrorCode::Unavailable,
            ErrorCode::Internal,
            ErrorCode::Other,
        ] {
            assert!(status_for(code).is_server_error(), "{code}");
        }
    }

    #[test]
    fn bodies_are_refused_with_codes() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct A {
            to: String,
        }
        let e = parse_json::<A>(b"{not json").unwrap_err();
        assert_eq!(e.body.code, ErrorCode::MalformedJson);
        let e = parse_json::<A>(br#"{"to": 5}"#).unwrap_err();
        assert_eq!(e.body.code, ErrorCode::InvalidRequest);
        let e = parse_json::<A>(br#"{"to": "x", "too": 1}"#).unwrap_err();
        assert!(e.body.message.contains("too"), "{}", e.body.message);
        assert!(parse_json::<A>(br#"{"to": "x"}"#).is_ok());
    }
}
