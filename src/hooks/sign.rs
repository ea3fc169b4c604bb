//! The wire form of one event as a webhook receives it: the JSON body and the signature headers
//! (docs/http-api.md, "Webhooks", is the contract; change both together).
//!
//! The signature is `HMAC-SHA256(secret, "<timestamp>.<body>")` in lower-case hex, the Stripe /
//! Standard Webhooks shape: signing the timestamp with the body lets a receiver refuse a replayed
//! request (an old timestamp) without keeping state, and the event id in the body lets it drop a
//! duplicate of a retried delivery. [`verify`] is the same check a receiver in Rust can call.

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::store::JournalEvent;

/// The event id (also in the body), for logs and de-duplication without parsing.
pub const EVENT_ID_HEADER: &str = "X-Gsmgate-Event-Id";
/// The event type (also in the body).
pub const EVENT_TYPE_HEADER: &str = "X-Gsmgate-Event";
/// Unix seconds when this request was signed (each attempt is signed afresh).
pub const TIMESTAMP_HEADER: &str = "X-Gsmgate-Timestamp";
/// `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Gsmgate-Signature";
/// How old a timestamp the documented receiver accepts.
pub const TOLERANCE_SECS: i64 = 300;

/// The JSON body of an event: `{"id", "type", "at", "data"}`. `data` is the journal's object (an
/// unreadable one, which the store never writes, becomes `null` rather than an error).
pub fn body(ev: &JournalEvent) -> Vec<u8> {
    let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
    json!({
        "id": ev.id,
        "type": ev.kind,
        "at": crate::time::rfc3339(ev.at),
        "data": data,
    })
    .to_string()
    .into_bytes()
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so `new_from_slice` cannot fail here; an error would
    // yield an empty tag that no receiver accepts, never a panic.
    match <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(timestamp.to_string().as_bytes());
            m.update(b".");
            m.update(body);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The value of [`SIGNATURE_HEADER`] for `body` signed at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("sha256={}", hex(&mac(secret.as_bytes(), timestamp, body)))
}

/// Why [`verify`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing or malformed timestamp")]
    BadTimestamp,
    #[error("timestamp outside the {TOLERANCE_SECS} s tolerance (a replay or a wrong clock)")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// The receiver's check, as docs/http-api.md describes it: the timestamp is within
/// [`TOLERANCE_SECS`] of `now_secs`, and the signature matches, compared in constant time.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now_secs - ts).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Stale);
    }
    let expected = signature(secret, ts, body);
    if bool::from(
        expected
            .as_bytes()
            .ct_eq(signature_header.trim().as_bytes()),
    ) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (key "Jefe"), with the message split as "<timestamp>.<body>".
    #[test]
    fn hmac_matches_rfc_4231() {
        // "what do ya want for nothing?" = "what do ya want " + "for nothing?" is not of the
        // form "<ts>.<body>"; check the primitive on the RFC's own message instead.
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_its_own_signature_and_refuses_tampering() {
        let body = br#"{"id":1}"#;
        let sig = signature("s3cret-s3cret-s3cret", 1_000, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_eq!(
            verify("s3cret-s3cret-s3cret", "1000", &sig, body, 1_100),
            Ok(())
        );
        assert_eq!(
            verify("another-secret-value", "1000", &sig, body, 1_100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("s3cret-s3cret-s3cret", "1000", &sig, br#"{"id":2}"#, 1_100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("s3cret-s3cret-s3cret", "1001", &sig, body, 1_100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("s3cret-s3cret-s3cret", "1000", &sig, body, 1_000 + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify("s3cret-s3cret-s3cret", "soon", &sig, body, 1_000),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn body_has_id_type_time_and_data() {
        let ev = JournalEvent {
            id: 7,
            kind: "modem_up".into(),
            at: 1_700_000_000_123,
            data: r#"{"modem":"sim0"}"#.into(),
        };
        let v: Value = serde_json::from_slice(&body(&ev)).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["type"], "modem_up");
        assert_eq!(v["data"]["modem"], "sim0");
        assert!(v["at"].as_str().unwrap().starts_with("2023-11-14T22:13:20"));
    }
}
