//! Wire types of the voice commands: the call log, voicemails (listed, exported as base64 WAV,
//! deleted) and the greeting upload.
//!
//! Shapes only; what the commands do is `commands::voice`. A greeting bigger than one request
//! travels in chunks of [`GREETING_CHUNK_BYTES`] (docs/admin-protocol.md, `greeting_set`).

use serde::{Deserialize, Serialize};

use super::serde_helpers::{is_false, null_as_false};

/// `calls`: the call log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallsArgs {
    /// At most this many calls; absent means the daemon's default page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `voicemail_list`: recorded voicemails, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoicemailListArgs {
    /// Only voicemails not yet exported (heard).
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub unheard_only: bool,
}

/// `voicemail_export` / `voicemail_delete`: one voicemail by its id. Named `voicemail`, not `id`:
/// `id` is the request's own id, beside the arguments at the top level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoicemailIdArgs {
    pub voicemail: i64,
}

/// Most raw bytes of a greeting file the client puts in one `greeting_set` chunk: base64 makes
/// them 61,440 characters, which with the envelope stays under [`MAX_REQUEST_BYTES`].
pub const GREETING_CHUNK_BYTES: usize = 45 * 1024;

/// `greeting_set`: a WAV file, base64 (RFC 4648, padded). A file that fits one request is sent
/// whole, without `offset`/`total_bytes`; a bigger one in chunks, each carrying the byte `offset`
/// of its first byte in the file and the file's `total_bytes`. The daemon keeps one upload at a
/// time: `offset: 0` starts a new one, every next chunk must continue exactly where the last one
/// ended, and the greeting is checked and installed when `total_bytes` have arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GreetingSetArgs {
    pub wav_base64: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}

/// One call of `calls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallItem {
    pub id: i64,
    pub modem: String,
    /// The caller's number; `null` when withheld or unavailable.
    pub number: Option<String>,
    /// RFC 3339 UTC: when it started ringing.
    pub started_at: String,
    pub answered_at: Option<String>,
    pub ended_at: Option<String>,
    /// Talk time (answer to end), or ring time for an unanswered call.
    pub duration_ms: Option<i64>,
    /// `missed`, `greeted`, `voicemail`, `rejected`, `failed`; `null` while the call goes on.
    pub outcome: Option<String>,
}

/// One voicemail of `voicemail_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoicemailItem {
    pub id: i64,
    pub call_id: i64,
    pub number: Option<String>,
    /// RFC 3339 UTC: when the recording was stored.
    pub created_at: String,
    pub duration_ms: i64,
    /// Exported at least once.
    pub heard: bool,
    /// The file, relative to the daemon's `state_dir`.
    pub path: String,
}

/// `voicemail_export` → the file itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoicemailFile {
    pub id: i64,
    pub number: Option<String>,
    pub created_at: String,
    pub duration_ms: i64,
    /// The WAV file (8 kHz mono 16-bit), base64 (RFC 4648, padded).
    pub wav_base64: String,
}

/// `voicemail_delete` → what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoicemailDeleted {
    pub id: i64,
    /// Whether a file was removed (false when it was already gone).
    pub file_removed: bool,
}

/// `greeting_set` → how far the upload is, and the greeting once installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GreetingUpload {
    /// Bytes of the file the daemon holds so far.
    pub received_bytes: u64,
    pub total_bytes: u64,
    /// Present once the whole file arrived and was installed.
    pub greeting: Option<GreetingInstalled>,
}

/// `greeting_get` → the greeting callers hear now, as a WAV (8 kHz mono 16-bit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GreetingFile {
    pub duration_ms: u64,
    /// The WAV file, base64.
    pub wav_base64: String,
}

/// The greeting now in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GreetingInstalled {
    pub duration_ms: u64,
    /// The uploaded file's format, e.g. `44100 Hz, 2 ch, 16-bit`.
    pub source: String,
    /// Whether it was converted (not already 8 kHz mono 16-bit).
    pub converted: bool,
    /// Where the daemon stored the converted file.
    pub path: String,
}
