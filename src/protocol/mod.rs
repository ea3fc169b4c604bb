//! The wire protocol of the admin commands: every type that crosses a transport (today the Unix
//! admin socket; the HTTP API uses the same shapes), shared by the daemon and the CLI client so the
//! two cannot drift apart.
//!
//! This module owns the JSON shapes only — request envelope and commands, response envelope,
//! typed reply data, watch events, error codes — and the one decoder that turns a JSON line into a
//! [`Request`] ([`decode`]). It does no I/O and decides nothing: what a command *does* is
//! `commands`, how bytes travel is `admin::server`. The argument and reply types are split by
//! topic (`messages`, `members`, `broadcasts`, `voice`, `ussd`, `status`, `events`) and re-exported here,
//! so `protocol::SendArgs` names a type whatever file holds it.
//!
//! Unknown fields are rejected (`deny_unknown_fields`): a misspelt `unread-only` must not silently
//! become "all messages", and a newer client using a field an older daemon lacks gets an error that
//! names it instead of a silently different result.
//!
//! How to add a command (say `calls {limit?}`):
//! 1. an argument struct `CallsArgs` (Serialize, Deserialize, `deny_unknown_fields`) in its topic
//!    file and a variant `Request::Calls(CallsArgs)`;
//! 2. its name in [`Request::name`] and in [`COMMANDS`], and one arm in [`decode_request`];
//! 3. a data type (`CallItem`) and a variant `Reply::Calls(Vec<CallItem>)` with its arm in
//!    [`Reply::command`];
//! 4. an example in `Request::examples` (the round-trip test then covers it), a typed helper in
//!    the client, the command function in `commands` with its arm in `commands::execute`, and a
//!    section in docs/admin-protocol.md.
//!
//! The compiler points at every `match` that needs the new arm except `decode_request` and
//! `COMMANDS`, which the round-trip test over `Request::examples()` checks.

pub mod activity;
pub mod broadcasts;
mod decode;
pub mod events;
mod examples;
pub mod hooks;
pub mod members;
pub mod messages;
mod serde_helpers;
pub mod status;
pub mod tokens;
pub mod ussd;
pub mod voice;
pub mod web;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use activity::*;
pub use broadcasts::*;
pub use decode::{DecodeError, Decoded, decode_request};
pub use events::*;
pub use hooks::*;
pub use members::*;
pub use messages::*;
pub use status::*;
pub use tokens::*;
pub use ussd::*;
pub use voice::*;
pub use web::*;

/// The protocol's major version. Every response carries it as `"v"`; a request may carry it and is
/// refused with [`ErrorCode::UnsupportedVersion`] when it names another major version. Additions
/// (new commands, new optional request fields, new response fields, new event types) keep the
/// version; removals or changes of meaning bump it.
pub const PROTOCOL_VERSION: u64 = 1;

/// Longest request line the server accepts, in bytes, not counting the newline.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Every command name the daemon core understands, in documentation order.
pub const COMMANDS: &[&str] = &[
    "ping",
    "version",
    "status",
    "modems",
    "send",
    "inbox",
    "conversation",
    "watch",
    "members_list",
    "members_add",
    "members_remove",
    "members_tag",
    "members_import",
    "members_export",
    "members_review",
    "members_review_resolve",
    "broadcast",
    "broadcasts",
    "broadcast_progress",
    "broadcast_pause",
    "broadcast_resume",
    "broadcast_cancel",
    "in_doubt",
    "in_doubt_resolve",
    "calls",
    "voicemail_list",
    "voicemail_export",
    "voicemail_delete",
    "greeting_set",
    "message_get",
    "conversations",
    "members_get",
    "members_update",
    "tokens_create",
    "tokens_list",
    "tokens_revoke",
    "ussd",
    "webhooks",
    "webhook_replay",
    "greeting_get",
    "web_users_add",
    "web_users_list",
    "web_users_passwd",
    "web_users_remove",
    "activity",
];

/// A request id chosen by the client and echoed back unchanged: a non-negative integer or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Num(u64),
    Str(String),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Num(n) => write!(f, "{n}"),
            RequestId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One request as the client writes it: `{"id": 7, "v": 1, "cmd": "send", "to": "...", ...}`.
/// The arguments sit beside `cmd` at the top level, not in a nested object. `id` is required.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    pub id: RequestId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<u64>,
    #[serde(flatten)]
    pub request: Request,
}

/// The commands of the daemon core, tagged by `"cmd"`. Each carries its own argument struct so a
/// command's fields are one type that the server, the client and the docs share.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Liveness check; answered by the server machinery itself.
    Ping(NoArgs),
    /// Protocol and daemon versions; answered by the server machinery itself.
    Version(NoArgs),
    /// One-screen summary of the gateway.
    Status(NoArgs),
    /// Every configured modem and its health.
    Modems(NoArgs),
    /// Queue one text to one number.
    Send(SendArgs),
    /// Received messages, newest first.
    Inbox(InboxArgs),
    /// Both directions of one conversation, oldest first.
    Conversation(ConversationArgs),
    /// Turn the connection into a stream of events; answered by the server machinery itself.
    Watch(WatchArgs),
    /// Members matching a segment, a page at a time.
    MembersList(MembersListArgs),
    /// Add one member (active).
    MembersAdd(MemberAddArgs),
    /// Remove one member (an opt-out stays on the suppression list).
    MembersRemove(MemberRemoveArgs),
    /// Add or remove tags of one member.
    MembersTag(MemberTagArgs),
    /// Import members from CSV text, all rows or none.
    MembersImport(MembersImportArgs),
    /// Members of a segment as CSV.
    MembersExport(MembersExportArgs),
    /// Numbers whose texts read like an opt-out and wait for a person's decision.
    MembersReview(NoArgs),
    /// Opt out or keep one number from `members_review`.
    MembersReviewResolve(ReviewResolveArgs),
    /// Preview (`dry_run`) or queue a broadcast.
    Broadcast(BroadcastArgs),
    /// The latest broadcasts with their progress.
    Broadcasts(BroadcastsArgs),
    /// One broadcast's progress.
    BroadcastProgress(BroadcastIdArgs),
    /// Hold a broadcast's queued messages.
    BroadcastPause(BroadcastIdArgs),
    /// Release a paused broadcast.
    BroadcastResume(BroadcastIdArgs),
    /// Cancel a broadcast's queued messages.
    BroadcastCancel(BroadcastIdArgs),
    /// Messages whose send was in flight at a crash, waiting for a person's decision.
    InDoubt(NoArgs),
    /// Resend or drop one in-doubt message.
    InDoubtResolve(InDoubtResolveArgs),
    /// The call log, newest first.
    Calls(CallsArgs),
    /// Recorded voicemails, newest first.
    VoicemailList(VoicemailListArgs),
    /// One voicemail's WAV file (base64), marked heard.
    VoicemailExport(VoicemailIdArgs),
    /// Delete one voicemail: its row and its file.
    VoicemailDelete(VoicemailIdArgs),
    /// Install a new call greeting (a WAV, base64, whole or in chunks) without a restart.
    GreetingSet(GreetingSetArgs),
    /// Where one outgoing message stands.
    MessageGet(MessageIdArgs),
    /// The latest conversation threads, newest first.
    Conversations(ConversationsArgs),
    /// One member by number.
    MembersGet(MemberGetArgs),
    /// Change some fields of one member.
    MembersUpdate(MemberUpdateArgs),
    /// Create an HTTP API token (local transports only).
    TokensCreate(TokensCreateArgs),
    /// Every HTTP API token, never their secrets (local transports only).
    TokensList(NoArgs),
    /// Revoke an HTTP API token (local transports only).
    TokensRevoke(TokensRevokeArgs),
    /// A USSD code, menu reply or cancel through one modem, and the network's answer.
    Ussd(UssdArgs),
    Webhooks(NoArgs),
    WebhookReplay(WebhookReplayArgs),
    /// The greeting in use, as a WAV (base64); `null` when none is installed.
    GreetingGet(NoArgs),
    /// Add a web console account (local transports only).
    WebUsersAdd(WebUserAddArgs),
    /// Every web console account (local transports only).
    WebUsersList(NoArgs),
    /// Set a web console account's password, ending its sessions (local transports only).
    WebUsersPasswd(WebUserPasswdArgs),
    /// Remove a web console account and its sessions (local transports only).
    WebUsersRemove(WebUserNameArgs),
    /// Members joined and opted out, messages received and sent per UTC day; the latest alerts.
    Activity(ActivityArgs),
}

/// Arguments of a command that takes none. Extra fields are still refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// One response line. Exactly one of `data` (when `ok`) or `error` (when not) is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub v: u64,
    /// The request's id, or `null` when it could not be read (malformed JSON, oversized line,
    /// connection-level refusal).
    pub id: Option<RequestId>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    pub fn success(id: Option<RequestId>, data: Value) -> Self {
        Response {
            v: PROTOCOL_VERSION,
            id,
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn failure(id: Option<RequestId>, error: ErrorBody) -> Self {
        Response {
            v: PROTOCOL_VERSION,
            id,
            ok: false,
            data: None,
            error: Some(error),
        }
    }
}

/// The `error` object of a failed response.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, utoipa::ToSchema,
)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// One human sentence saying what was wrong and, where it helps, what to do.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

/// Why a request failed. Serialized snake_case; clients must treat a code they do not know as
/// [`ErrorCode::Other`] (new codes are additions within a protocol version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not valid JSON, or not a JSON object. The id is `null`.
    MalformedJson,
    /// The line is longer than [`MAX_REQUEST_BYTES`]; it was discarded up to its newline. The id
    /// is `null`.
    RequestTooLarge,
    /// `cmd` is missing or names no command this daemon knows.
    UnknownCommand,
    /// A field is missing, has the wrong type, or is not a field of this command; the message
    /// names the field.
    InvalidRequest,
    /// The request's `v` names a protocol major version this daemon does not speak.
    UnsupportedVersion,
    /// The connecting user may not use the gateway (peer credential check).
    PermissionDenied,
    /// A phone number could not be understood or is not allowed as a destination.
    InvalidNumber,
    /// The number refused messages (texted STOP); only START lifts it.
    OptedOut,
    /// A named thing (modem, member, message) does not exist.
    NotFound,
    /// The daemon cannot serve this now: shutting down, too many connections, no modem ready.
    /// Retrying later may succeed.
    Unavailable,
    /// A bug or an unexpected failure inside the daemon (database error, ...); it is logged.
    Internal,
    /// The thing exists but its state does not allow this: a member that already exists, a
    /// broadcast already done or cancelled, a message that is not in doubt.
    Conflict,
    /// HTTP only: no bearer token, or one that matches no active token.
    Unauthorized,
    /// HTTP only: too many requests from this token (or, before authentication, this address);
    /// retry after the `Retry-After` seconds.
    RateLimited,
    /// A code this client does not know (sent by a newer daemon).
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// The wire name, e.g. `invalid_number`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::InvalidNumber => "invalid_number",
            ErrorCode::OptedOut => "opted_out",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a [`Handler`](super::server::Handler) answers. Serialized untagged: the `data` member is
/// the inner value, and the client knows which type to expect from the command it sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Pong(Pong),
    Version(VersionData),
    Status(StatusData),
    Modems(Vec<ModemInfo>),
    SendAccepted(SendAccepted),
    Inbox(Vec<InboxItem>),
    Conversation(Vec<ConversationItem>),
    Watching(WatchStarted),
    MembersList(MembersPage),
    MembersAdd(MemberItem),
    MembersRemove(MemberRemoved),
    MembersTag(MemberItem),
    MembersImport(ImportResult),
    MembersExport(ExportData),
    MembersReview(Vec<ReviewItem>),
    MembersReviewResolve(ReviewResolved),
    Broadcast(BroadcastResult),
    Broadcasts(Vec<BroadcastItem>),
    BroadcastProgress(BroadcastItem),
    BroadcastPause(BroadcastItem),
    BroadcastResume(BroadcastItem),
    BroadcastCancel(BroadcastItem),
    InDoubt(Vec<InDoubtItem>),
    InDoubtResolve(InDoubtResolved),
    Calls(Vec<CallItem>),
    VoicemailList(Vec<VoicemailItem>),
    VoicemailExport(VoicemailFile),
    VoicemailDelete(VoicemailDeleted),
    GreetingSet(GreetingUpload),
    MessageGet(MessageStatus),
    Conversations(Vec<ThreadItem>),
    MembersGet(MemberItem),
    MembersUpdate(MemberItem),
    TokensCreate(TokenCreated),
    TokensList(Vec<TokenItem>),
    TokensRevoke(TokenItem),
    Ussd(UssdResult),
    Webhooks(Vec<WebhookItem>),
    WebhookReplay(WebhookReplayed),
    GreetingGet(Option<GreetingFile>),
    WebUsersAdd(WebUserItem),
    WebUsersList(Vec<WebUserItem>),
    WebUsersPasswd(WebUserChanged),
    WebUsersRemove(WebUserChanged),
    Activity(ActivityData),
}

impl Reply {
    /// The command this reply answers; the server refuses (as `internal`) a handler reply that
    /// does not answer the request it was given.
    pub fn command(&self) -> &'static str {
        match self {
            Reply::Pong(_) => "ping",
            Reply::Version(_) => "version",
            Reply::Status(_) => "status",
            Reply::Modems(_) => "modems",
            Reply::SendAccepted(_) => "send",
            Reply::Inbox(_) => "inbox",
            Reply::Conversation(_) => "conversation",
            Reply::Watching(_) => "watch",
            Reply::MembersList(_) => "members_list",
            Reply::MembersAdd(_) => "members_add",
            Reply::MembersRemove(_) => "members_remove",
            Reply::MembersTag(_) => "members_tag",
            Reply::MembersImport(_) => "members_import",
            Reply::MembersExport(_) => "members_export",
            Reply::MembersReview(_) => "members_review",
            Reply::MembersReviewResolve(_) => "members_review_resolve",
            Reply::Broadcast(_) => "broadcast",
            Reply::Broadcasts(_) => "broadcasts",
            Reply::BroadcastProgress(_) => "broadcast_progress",
            Reply::BroadcastPause(_) => "broadcast_pause",
            Reply::BroadcastResume(_) => "broadcast_resume",
            Reply::BroadcastCancel(_) => "broadcast_cancel",
            Reply::InDoubt(_) => "in_doubt",
            Reply::InDoubtResolve(_) => "in_doubt_resolve",
            Reply::Calls(_) => "calls",
            Reply::VoicemailList(_) => "voicemail_list",
            Reply::VoicemailExport(_) => "voicemail_export",
            Reply::VoicemailDelete(_) => "voicemail_delete",
            Reply::GreetingSet(_) => "greeting_set",
            Reply::MessageGet(_) => "message_get",
            Reply::Conversations(_) => "conversations",
            Reply::MembersGet(_) => "members_get",
            Reply::MembersUpdate(_) => "members_update",
            Reply::TokensCreate(_) => "tokens_create",
            Reply::TokensList(_) => "tokens_list",
            Reply::TokensRevoke(_) => "tokens_revoke",
            Reply::Ussd(_) => "ussd",
            Reply::Webhooks(_) => "webhooks",
            Reply::WebhookReplay(_) => "webhook_replay",
            Reply::GreetingGet(_) => "greeting_get",
            Reply::WebUsersAdd(_) => "web_users_add",
            Reply::WebUsersList(_) => "web_users_list",
            Reply::WebUsersPasswd(_) => "web_users_passwd",
            Reply::WebUsersRemove(_) => "web_users_remove",
            Reply::Activity(_) => "activity",
        }
    }
}

/// `ping` → `{"pong": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub pong: bool,
}

/// `version` → what the daemon speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionData {
    /// Protocol major version, [`PROTOCOL_VERSION`].
    pub protocol: u64,
    /// The daemon's crate version, e.g. `0.1.0`.
    pub daemon: String,
    /// Every command this daemon understands.
    pub commands: Vec<String>,
}

/// Base64 (RFC 4648 §4, standard alphabet, padded) for the binary fields of the protocol
/// (`greeting_set`, `voicemail_export`). Decoding is strict — padding required, no whitespace, no
/// bits left over after the last byte — so a damaged upload is refused instead of installed.
pub mod base64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub use base64::DecodeError as Base64Error;

    pub fn encode(data: &[u8]) -> String {
        STANDARD.encode(data)
    }

    pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
        STANDARD.decode(text)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use proptest::prelude::*;

        /// RFC 4648 §10 test vectors.
        #[test]
        fn rfc_4648_vectors() {
            for (plain, coded) in [
                ("", ""),
                ("f", "Zg=="),
                ("fo", "Zm8="),
                ("foo", "Zm9v"),
                ("foob", "Zm9vYg=="),
                ("fooba", "Zm9vYmE="),
                ("foobar", "Zm9vYmFy"),
            ] {
                assert_eq!(encode(plain.as_bytes()), coded);
                assert_eq!(decode(coded).unwrap(), plain.as_bytes());
            }
        }

        #[test]
        fn bad_input_is_refused() {
            for bad in ["Zg=", "Z g=", "Zg==Zg==", "Z===", "Zm9vYmFy\n", "Zm9vYmF"] {
                assert!(decode(bad).is_err(), "{bad:?}");
            }
            // "Zh==" has bits set after the single byte it carries (RFC 4648 §3.5).
            assert!(decode("Zh==").is_err());
        }

        proptest! {
            #[test]
            fn round_trips(data in proptest::collection::vec(any::<u8>(), 0..200)) {
                prop_assert_eq!(decode(&encode(&data)).unwrap(), data);
            }

            #[test]
            fn decode_never_panics(s in ".{0,64}") {
                let _ = decode(&s);
            }
        }
    }
}

#[cfg(test)]
mod tests;
