//! The admin wire protocol: every type that crosses the Unix socket, shared by the daemon's server
//! and the CLI client so the two cannot drift apart (the pueue/greetd pattern).
//!
//! This file owns the JSON shapes only: request envelope and commands, response envelope, typed
//! response data, watch events, error codes, and the one decoder that turns a JSON line into a
//! [`Request`]. It does no I/O and knows nothing of the daemon: what a command *does* is the
//! [`Handler`](super::server::Handler)'s business.
//!
//! Why the request decoder is hand-written instead of `#[derive(Deserialize)]` with
//! `#[serde(tag = "cmd")]`: serde's internally tagged enums buffer the arguments first and then
//! report type errors without the field name ("invalid type: string, expected u32"). The protocol
//! promises errors that name the field, so [`decode_request`] dispatches on `cmd` itself and
//! deserializes each command's argument struct through [`FieldNamingMap`], which prefixes every
//! error with the field it came from. Serialization (used by the client) is derived.
//!
//! Unknown fields are rejected (`deny_unknown_fields`): a misspelt `unread-only` must not silently
//! become "all messages", and a newer client using a field an older daemon lacks gets an error that
//! names it instead of a silently different result.
//!
//! How to add a command (say `calls {limit?}`):
//! 1. an argument struct `CallsArgs` (Serialize, Deserialize, `deny_unknown_fields`) and a
//!    variant `Request::Calls(CallsArgs)`;
//! 2. its name in [`Request::name`] and in [`COMMANDS`], and one arm in [`decode_request`];
//! 3. a data type (`CallItem`) and a variant `Reply::Calls(Vec<CallItem>)` with its arm in
//!    [`Reply::command`];
//! 4. an example in `Request::examples` (the round-trip test then covers it), a typed helper in
//!    the client, the daemon's arm in its `Handler`, and a section in docs/admin-protocol.md.
//!
//! The compiler points at every `match` that needs the new arm except `decode_request` and
//! `COMMANDS`, which the round-trip test over `Request::examples()` checks.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

// The community commands' argument and reply types live beside the functions that implement them
// (`community::service`), so the daemon's handler only forwards; they are part of this protocol.
pub use crate::community::csv::RowError;
pub use crate::community::service::{
    BroadcastArgs, BroadcastIdArgs, BroadcastItem, BroadcastResult, BroadcastsArgs,
    EncodingSummary, Exclusions, ExportData, ImportResult, InDoubtItem, InDoubtResolution,
    InDoubtResolveArgs, InDoubtResolved, MemberAddArgs, MemberItem, MemberRemoveArgs,
    MemberRemoved, MemberTagArgs, MembersExportArgs, MembersImportArgs, MembersListArgs,
    MembersPage,
};

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
}

impl Request {
    /// The `cmd` string of this request.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping(_) => "ping",
            Request::Version(_) => "version",
            Request::Status(_) => "status",
            Request::Modems(_) => "modems",
            Request::Send(_) => "send",
            Request::Inbox(_) => "inbox",
            Request::Conversation(_) => "conversation",
            Request::Watch(_) => "watch",
            Request::MembersList(_) => "members_list",
            Request::MembersAdd(_) => "members_add",
            Request::MembersRemove(_) => "members_remove",
            Request::MembersTag(_) => "members_tag",
            Request::MembersImport(_) => "members_import",
            Request::MembersExport(_) => "members_export",
            Request::Broadcast(_) => "broadcast",
            Request::Broadcasts(_) => "broadcasts",
            Request::BroadcastProgress(_) => "broadcast_progress",
            Request::BroadcastPause(_) => "broadcast_pause",
            Request::BroadcastResume(_) => "broadcast_resume",
            Request::BroadcastCancel(_) => "broadcast_cancel",
            Request::InDoubt(_) => "in_doubt",
            Request::InDoubtResolve(_) => "in_doubt_resolve",
            Request::Calls(_) => "calls",
            Request::VoicemailList(_) => "voicemail_list",
            Request::VoicemailExport(_) => "voicemail_export",
            Request::VoicemailDelete(_) => "voicemail_delete",
            Request::GreetingSet(_) => "greeting_set",
        }
    }

    /// One example of every command, used by tests to prove that what the client serializes the
    /// server decodes to the same value. Add the example of a new command here.
    pub fn examples() -> Vec<Request> {
        vec![
            Request::Ping(NoArgs {}),
            Request::Version(NoArgs {}),
            Request::Status(NoArgs {}),
            Request::Modems(NoArgs {}),
            Request::Send(SendArgs {
                to: "+15551234567".into(),
                text: "hi there".into(),
                modem: Some("modem0".into()),
            }),
            Request::Send(SendArgs {
                to: "+15551234567".into(),
                text: "no modem chosen".into(),
                modem: None,
            }),
            Request::Inbox(InboxArgs {
                unread_only: true,
                limit: Some(20),
            }),
            Request::Inbox(InboxArgs::default()),
            Request::Conversation(ConversationArgs {
                number: "+15551234567".into(),
                limit: Some(5),
            }),
            Request::Watch(WatchArgs {
                events: Some(vec![EventKind::MessageIn, EventKind::ModemState]),
            }),
            Request::Watch(WatchArgs::default()),
            Request::MembersList(MembersListArgs {
                segment: Some("city=Chicago,tag=volunteer,joined>=2026-01-01".into()),
                limit: Some(50),
                offset: Some(100),
            }),
            Request::MembersList(MembersListArgs::default()),
            Request::MembersAdd(MemberAddArgs {
                number: "(312) 555-0101".into(),
                name: Some("Ana Lopez".into()),
                city: Some("Chicago".into()),
                region: Some("60601".into()),
                tags: vec!["volunteer".into(), "block-captain".into()],
                time_zone: Some("America/Chicago".into()),
            }),
            Request::MembersAdd(MemberAddArgs {
                number: "+13125550102".into(),
                ..MemberAddArgs::default()
            }),
            Request::MembersRemove(MemberRemoveArgs {
                number: "+13125550101".into(),
            }),
            Request::MembersTag(MemberTagArgs {
                number: "+13125550101".into(),
                tags: vec!["driver".into()],
                remove: true,
            }),
            Request::MembersTag(MemberTagArgs {
                number: "+13125550101".into(),
                tags: vec!["driver".into(), "cook".into()],
                remove: false,
            }),
            Request::MembersImport(MembersImportArgs {
                csv: "number,name\r\n+13125550101,\"Lopez, Ana\"\r\n".into(),
                dry_run: true,
            }),
            Request::MembersExport(MembersExportArgs {
                segment: Some("tag=volunteer".into()),
            }),
            Request::MembersExport(MembersExportArgs::default()),
            Request::Broadcast(BroadcastArgs {
                text: "Hi {first_name}, meeting at 7 \u{1F600}".into(),
                segment: Some("city=\"Washington, DC\"".into()),
                at: Some("2026-03-01T18:00:00Z".into()),
                dry_run: true,
            }),
            Request::Broadcast(BroadcastArgs {
                text: "Rally tomorrow".into(),
                segment: None,
                at: None,
                dry_run: false,
            }),
            Request::Broadcasts(BroadcastsArgs { limit: Some(5) }),
            Request::Broadcasts(BroadcastsArgs::default()),
            Request::BroadcastProgress(BroadcastIdArgs { broadcast: 3 }),
            Request::BroadcastPause(BroadcastIdArgs { broadcast: 3 }),
            Request::BroadcastResume(BroadcastIdArgs { broadcast: 3 }),
            Request::BroadcastCancel(BroadcastIdArgs { broadcast: 3 }),
            Request::InDoubt(NoArgs {}),
            Request::InDoubtResolve(InDoubtResolveArgs {
                message: 42,
                action: InDoubtResolution::Resend,
            }),
            Request::InDoubtResolve(InDoubtResolveArgs {
                message: 43,
                action: InDoubtResolution::Drop,
            }),
            Request::Calls(CallsArgs { limit: Some(10) }),
            Request::Calls(CallsArgs::default()),
            Request::VoicemailList(VoicemailListArgs { unheard_only: true }),
            Request::VoicemailList(VoicemailListArgs::default()),
            Request::VoicemailExport(VoicemailIdArgs { voicemail: 4 }),
            Request::VoicemailDelete(VoicemailIdArgs { voicemail: 4 }),
            Request::GreetingSet(GreetingSetArgs {
                wav_base64: base64::encode(b"RIFF....WAVE"),
                offset: None,
                total_bytes: None,
            }),
            Request::GreetingSet(GreetingSetArgs {
                wav_base64: base64::encode(b"more"),
                offset: Some(46080),
                total_bytes: Some(160_044),
            }),
        ]
    }
}

/// Arguments of a command that takes none. Extra fields are still refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `send`: queue `text` to `to`. The daemon stores it before it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendArgs {
    /// Recipient; E.164 preferred (`+15551234567`). Validation is the daemon's.
    pub to: String,
    /// Message text, any Unicode; the daemon picks the encoding and splits it.
    pub text: String,
    /// Name of the modem to send from; absent lets the scheduler choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modem: Option<String>,
}

/// `inbox`: received messages, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxArgs {
    /// Only messages not yet marked read.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub unread_only: bool,
    /// At most this many items; absent means the daemon's default page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `conversation`: messages to and from one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationArgs {
    pub number: String,
    /// The last `limit` messages; absent means the daemon's default page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `watch`: subscribe to events, optionally only some kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchArgs {
    /// Kinds to receive; absent means every kind. `lagged` is always delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventKind>>,
}

/// `calls`: the call log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsArgs {
    /// At most this many calls; absent means the daemon's default page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `voicemail_list`: recorded voicemails, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreetingSetArgs {
    pub wav_base64: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Optional members may be `null` as well as absent; for a boolean flag that means `false`.
fn null_as_false<'de, D: de::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
            ErrorCode::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Response data
// ---------------------------------------------------------------------------------------------

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

/// `status` → one-screen summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusData {
    pub version: String,
    pub uptime_secs: u64,
    pub modems_total: u32,
    pub modems_ready: u32,
    /// Messages waiting in the outbox.
    pub outbox_queued: u64,
    /// Messages whose send was in flight at a crash, awaiting the configured policy.
    pub outbox_in_doubt: u64,
    pub sent_today: u64,
    pub received_today: u64,
    pub members: u64,
    /// Broadcasts still being sent.
    pub broadcasts_active: u32,
}

/// `modems` → one per configured modem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModemInfo {
    pub name: String,
    /// Config profile: generic, huawei, simcom, quectel, sim800.
    pub profile: String,
    pub port: String,
    /// Actor state, e.g. `ready`, `initializing`, `resetting`, `gone`, `disabled`.
    pub state: String,
    /// Network registration, e.g. `home`, `roaming`, `searching`, `denied`, `unknown`.
    pub registration: String,
    pub signal_dbm: Option<i32>,
    pub operator: Option<String>,
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub imei: Option<String>,
    pub last_error: Option<String>,
    pub sent_today: u64,
    pub received_today: u64,
    /// The configured daily limit, if any.
    pub per_day: Option<u32>,
}

/// `send` → the message is stored and queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendAccepted {
    /// Outbox id; events about this message carry it.
    pub id: i64,
    /// Number of SMS segments.
    pub parts: u32,
    /// `gsm7`, `ucs2` or `8bit`.
    pub encoding: String,
}

/// One received message in `inbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    pub id: i64,
    pub from: String,
    pub text: String,
    /// RFC 3339 UTC timestamp of reception by the modem.
    pub received_at: String,
    pub modem: String,
    pub read: bool,
}

/// One message of a `conversation`, either direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationItem {
    pub id: i64,
    pub direction: Direction,
    pub text: String,
    /// RFC 3339 UTC timestamp: received, or queued for outgoing.
    pub at: String,
    /// Outgoing only: `queued`, `sending`, `sent`, `delivered`, `failed`, `in_doubt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub modem: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

/// One call of `calls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoicemailFile {
    pub id: i64,
    pub number: Option<String>,
    pub created_at: String,
    pub duration_ms: i64,
    /// The WAV file (8 kHz mono 16-bit), base64 (RFC 4648, padded).
    pub wav_base64: String,
}

/// `voicemail_delete` → what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoicemailDeleted {
    pub id: i64,
    /// Whether a file was removed (false when it was already gone).
    pub file_removed: bool,
}

/// `greeting_set` → how far the upload is, and the greeting once installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreetingUpload {
    /// Bytes of the file the daemon holds so far.
    pub received_bytes: u64,
    pub total_bytes: u64,
    /// Present once the whole file arrived and was installed.
    pub greeting: Option<GreetingInstalled>,
}

/// The greeting now in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreetingInstalled {
    pub duration_ms: u64,
    /// The uploaded file's format, e.g. `44100 Hz, 2 ch, 16-bit`.
    pub source: String,
    /// Whether it was converted (not already 8 kHz mono 16-bit).
    pub converted: bool,
    /// Where the daemon stored the converted file.
    pub path: String,
}

/// `watch` → acknowledged, then event lines follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchStarted {
    /// The kinds this subscription receives (`lagged` is always delivered too).
    pub events: Vec<EventKind>,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// One event line of a watch stream: `{"event": {"type": "message_in", ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    pub event: Event,
}

/// What the daemon publishes on its event channel, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A modem changed state (or registration).
    ModemState {
        modem: String,
        state: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// An SMS was received and stored.
    MessageIn {
        id: i64,
        from: String,
        text: String,
        modem: String,
    },
    /// An outgoing message was accepted by the network.
    MessageSent {
        id: i64,
        to: String,
        modem: String,
        parts: u32,
    },
    /// An outgoing message failed for good (after retries).
    MessageFailed { id: i64, to: String, reason: String },
    /// A status report arrived for an outgoing message.
    DeliveryReport {
        id: i64,
        to: String,
        /// `delivered`, `pending` or `failed`.
        status: String,
    },
    /// A voice call changed state (`ringing`, `answered`, `voicemail`, `ended`).
    Call {
        modem: String,
        from: Option<String>,
        state: String,
    },
    /// A log record at warn level or above.
    Log {
        level: String,
        target: String,
        message: String,
    },
    /// This subscriber fell behind and `missed` events were dropped for it. Always delivered.
    Lagged { missed: u64 },
}

/// The `type` of an [`Event`], for `watch` filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    ModemState,
    MessageIn,
    MessageSent,
    MessageFailed,
    DeliveryReport,
    Call,
    Log,
    Lagged,
}

impl EventKind {
    /// Every kind a subscriber can ask for.
    pub const ALL: &[EventKind] = &[
        EventKind::ModemState,
        EventKind::MessageIn,
        EventKind::MessageSent,
        EventKind::MessageFailed,
        EventKind::DeliveryReport,
        EventKind::Call,
        EventKind::Log,
        EventKind::Lagged,
    ];
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::ModemState { .. } => EventKind::ModemState,
            Event::MessageIn { .. } => EventKind::MessageIn,
            Event::MessageSent { .. } => EventKind::MessageSent,
            Event::MessageFailed { .. } => EventKind::MessageFailed,
            Event::DeliveryReport { .. } => EventKind::DeliveryReport,
            Event::Call { .. } => EventKind::Call,
            Event::Log { .. } => EventKind::Log,
            Event::Lagged { .. } => EventKind::Lagged,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// A request line that could not be turned into a [`Request`]: the error to answer with, and the
/// id to echo when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub id: Option<RequestId>,
    pub error: ErrorBody,
}

/// A decoded request line.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub id: RequestId,
    pub request: Request,
}

/// Decode one request line (without its newline). The order of checks fixes which error wins:
/// JSON syntax, then `id` (required, so later errors can echo it), then `v`, then `cmd`, then the
/// arguments.
pub fn decode_request(line: &[u8]) -> Result<Decoded, DecodeError> {
    let fail = |id: Option<RequestId>, code, message: String| DecodeError {
        id,
        error: ErrorBody::new(code, message),
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        fail(
            None,
            ErrorCode::MalformedJson,
            format!("request is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(mut map) = value else {
        return Err(fail(
            None,
            ErrorCode::MalformedJson,
            "request must be a JSON object like {\"id\": 1, \"cmd\": \"ping\"}".into(),
        ));
    };

    let id = match map.remove("id") {
        None | Some(Value::Null) => {
            return Err(fail(
                None,
                ErrorCode::InvalidRequest,
                "missing field `id`: every request needs an id (an integer or a string) that its \
                 response echoes"
                    .into(),
            ));
        }
        Some(raw) => match RequestId::deserialize(&raw) {
            Ok(id) => id,
            Err(_) => {
                return Err(fail(
                    None,
                    ErrorCode::InvalidRequest,
                    format!(
                        "field `id`: must be a non-negative integer or a string, got {}",
                        describe(&raw)
                    ),
                ));
            }
        },
    };

    match map.remove("v") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(PROTOCOL_VERSION) => {}
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {n} is not supported; this daemon speaks version {PROTOCOL_VERSION}"
                ),
            ));
        }
        Some(raw) => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::InvalidRequest,
                format!(
                    "field `v`: must be a protocol version number like {PROTOCOL_VERSION}, got {}",
                    describe(&raw)
                ),
            ));
        }
    }

    let cmd = match map.remove("cmd") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::UnknownCommand,
                format!(
                    "missing field `cmd`; known commands: {}",
                    COMMANDS.join(", ")
                ),
            ));
        }
        Some(raw) => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::InvalidRequest,
                format!("field `cmd`: must be a string, got {}", describe(&raw)),
            ));
        }
    };

    let request = match cmd.as_str() {
        "ping" => Request::Ping(args_from_map(map, &id, &cmd)?),
        "version" => Request::Version(args_from_map(map, &id, &cmd)?),
        "status" => Request::Status(args_from_map(map, &id, &cmd)?),
        "modems" => Request::Modems(args_from_map(map, &id, &cmd)?),
        "send" => Request::Send(args_from_map(map, &id, &cmd)?),
        "inbox" => Request::Inbox(args_from_map(map, &id, &cmd)?),
        "conversation" => Request::Conversation(args_from_map(map, &id, &cmd)?),
        "watch" => Request::Watch(args_from_map(map, &id, &cmd)?),
        "members_list" => Request::MembersList(args_from_map(map, &id, &cmd)?),
        "members_add" => Request::MembersAdd(args_from_map(map, &id, &cmd)?),
        "members_remove" => Request::MembersRemove(args_from_map(map, &id, &cmd)?),
        "members_tag" => Request::MembersTag(args_from_map(map, &id, &cmd)?),
        "members_import" => Request::MembersImport(args_from_map(map, &id, &cmd)?),
        "members_export" => Request::MembersExport(args_from_map(map, &id, &cmd)?),
        "broadcast" => Request::Broadcast(args_from_map(map, &id, &cmd)?),
        "broadcasts" => Request::Broadcasts(args_from_map(map, &id, &cmd)?),
        "broadcast_progress" => Request::BroadcastProgress(args_from_map(map, &id, &cmd)?),
        "broadcast_pause" => Request::BroadcastPause(args_from_map(map, &id, &cmd)?),
        "broadcast_resume" => Request::BroadcastResume(args_from_map(map, &id, &cmd)?),
        "broadcast_cancel" => Request::BroadcastCancel(args_from_map(map, &id, &cmd)?),
        "in_doubt" => Request::InDoubt(args_from_map(map, &id, &cmd)?),
        "in_doubt_resolve" => Request::InDoubtResolve(args_from_map(map, &id, &cmd)?),
        "calls" => Request::Calls(args_from_map(map, &id, &cmd)?),
        "voicemail_list" => Request::VoicemailList(args_from_map(map, &id, &cmd)?),
        "voicemail_export" => Request::VoicemailExport(args_from_map(map, &id, &cmd)?),
        "voicemail_delete" => Request::VoicemailDelete(args_from_map(map, &id, &cmd)?),
        "greeting_set" => Request::GreetingSet(args_from_map(map, &id, &cmd)?),
        _ => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::UnknownCommand,
                format!(
                    "unknown command {:?}; known commands: {}",
                    truncate(&cmd, 64),
                    COMMANDS.join(", ")
                ),
            ));
        }
    };
    Ok(Decoded { id, request })
}

/// Short description of a JSON value's type for error messages (never echoes large input).
fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Deserialize a command's argument struct from the remaining top-level members, naming the field
/// in every error.
fn args_from_map<T: DeserializeOwned>(
    map: Map<String, Value>,
    id: &RequestId,
    cmd: &str,
) -> Result<T, DecodeError> {
    T::deserialize(FieldNamingMap(map)).map_err(|e| DecodeError {
        id: Some(id.clone()),
        error: ErrorBody::new(ErrorCode::InvalidRequest, format!("{cmd}: {e}")),
    })
}

/// A deserializer over a JSON object that prefixes each member's error with "field `name`: ".
/// Only one level deep on purpose: command arguments are flat.
struct FieldNamingMap(Map<String, Value>);

impl<'de> de::Deserializer<'de> for FieldNamingMap {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(FieldNamingAccess {
            iter: self.0.into_iter(),
            pending: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct FieldNamingAccess {
    iter: serde_json::map::IntoIter,
    pending: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for FieldNamingAccess {
    type Error = serde_json::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        let k = seed.deserialize(key.clone().into_deserializer())?;
        self.pending = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("value requested before its key"));
        };
        seed.deserialize(value)
            .map_err(|e| de::Error::custom(format!("field `{key}`: {e}")))
    }
}

/// Base64 (RFC 4648 §4, standard alphabet, `=` padding) for the file-carrying fields
/// (`greeting_set`, `voicemail_export`). Hand-written because the crate has no base64 dependency
/// and this is 60 lines; decoding is strict (no whitespace, padding required, no bits left over,
/// §3.5) so a damaged upload is refused instead of installed.
pub mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Why a string is not base64.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum Base64Error {
        #[error("length {0} is not a multiple of 4 (padding with `=` is required)")]
        Length(usize),
        #[error("invalid character at position {0}")]
        Character(usize),
        #[error("padding in the wrong place or non-zero bits before it")]
        Padding,
    }

    pub fn encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk.first().copied().unwrap_or(0),
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> shift) & 0x3F) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }

    pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
        let bytes = text.as_bytes();
        if !bytes.len().is_multiple_of(4) {
            return Err(Base64Error::Length(bytes.len()));
        }
        let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
        let quads = bytes.len() / 4;
        for (q, quad) in bytes.chunks_exact(4).enumerate() {
            let last = q + 1 == quads;
            let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && !last) {
                return Err(Base64Error::Padding);
            }
            let mut n = 0u32;
            for (i, &c) in quad.iter().enumerate() {
                let v = if i >= 4 - pad {
                    0
                } else {
                    value(c).ok_or(Base64Error::Character(q * 4 + i))?
                };
                n = n << 6 | v;
            }
            let [_, b0, b1, b2] = n.to_be_bytes();
            match pad {
                0 => out.extend_from_slice(&[b0, b1, b2]),
                1 if b2 == 0 => out.extend_from_slice(&[b0, b1]),
                2 if b1 == 0 && b2 == 0 => out.push(b0),
                _ => return Err(Base64Error::Padding),
            }
        }
        Ok(out)
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
            assert_eq!(decode("Zg="), Err(Base64Error::Length(3)));
            assert_eq!(decode("Z g="), Err(Base64Error::Character(1)));
            assert_eq!(decode("Zg==Zg=="), Err(Base64Error::Padding));
            assert_eq!(decode("Z==="), Err(Base64Error::Padding));
            // "Zh==" has bits set after the single byte it carries (§3.5).
            assert_eq!(decode("Zh=="), Err(Base64Error::Padding));
            assert_eq!(decode("Zm9vYmFy\n").unwrap_err(), Base64Error::Length(9));
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn decode(v: Value) -> Result<Decoded, DecodeError> {
        decode_request(v.to_string().as_bytes())
    }

    #[test]
    fn every_example_round_trips_through_the_envelope() {
        for (i, req) in Request::examples().into_iter().enumerate() {
            let env = Envelope {
                id: RequestId::Num(i as u64),
                v: Some(PROTOCOL_VERSION),
                request: req.clone(),
            };
            let line = serde_json::to_string(&env).unwrap();
            let back = decode_request(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e:?}"));
            assert_eq!(back.request, req, "{line}");
            assert_eq!(back.id, RequestId::Num(i as u64));
            assert!(
                COMMANDS.contains(&req.name()),
                "{} not in COMMANDS",
                req.name()
            );
        }
    }

    /// Regression: `voicemail_export {id}` collided with the envelope's `id`, so the request id
    /// became the voicemail id and the argument went missing.
    #[test]
    fn no_argument_is_named_like_an_envelope_member() {
        for req in Request::examples() {
            let v = serde_json::to_value(&req).unwrap();
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            for reserved in ["id", "v"] {
                assert!(
                    !keys.iter().any(|k| *k == reserved),
                    "{} has an argument named `{reserved}`",
                    req.name()
                );
            }
        }
    }

    #[test]
    fn every_command_has_an_example() {
        let names: Vec<_> = Request::examples().iter().map(Request::name).collect();
        for cmd in COMMANDS {
            assert!(names.contains(cmd), "no example for {cmd}");
        }
    }

    #[test]
    fn arguments_sit_beside_cmd_at_top_level() {
        let env = Envelope {
            id: RequestId::Num(7),
            v: None,
            request: Request::Send(SendArgs {
                to: "+15551234567".into(),
                text: "hi".into(),
                modem: None,
            }),
        };
        assert_eq!(
            serde_json::to_value(&env).unwrap(),
            json!({"id": 7, "cmd": "send", "to": "+15551234567", "text": "hi"})
        );
    }

    #[test]
    fn string_ids_are_echoed() {
        let d = decode(json!({"id": "abc", "cmd": "ping"})).unwrap();
        assert_eq!(d.id, RequestId::Str("abc".into()));
    }

    #[test]
    fn missing_or_null_id_is_invalid_request() {
        for req in [
            json!({"cmd": "status"}),
            json!({"id": null, "cmd": "status"}),
        ] {
            let e = decode(req).unwrap_err();
            assert_eq!(e.id, None);
            assert_eq!(e.error.code, ErrorCode::InvalidRequest);
            assert!(e.error.message.contains("`id`"), "{}", e.error.message);
        }
    }

    #[test]
    fn malformed_json_has_no_id() {
        let e = decode_request(br#"{"id": 3, "cmd": "#).unwrap_err();
        assert_eq!(e.id, None);
        assert_eq!(e.error.code, ErrorCode::MalformedJson);
        let e = decode_request(b"[1,2]").unwrap_err();
        assert_eq!(e.error.code, ErrorCode::MalformedJson);
    }

    #[test]
    fn bad_id_is_invalid_request_naming_id() {
        for id in [
            json!(-1),
            json!(1.5),
            json!([1]),
            json!({"a": 1}),
            json!(true),
        ] {
            let e = decode(json!({"id": id, "cmd": "ping"})).unwrap_err();
            assert_eq!(e.error.code, ErrorCode::InvalidRequest);
            assert!(e.error.message.contains("`id`"), "{}", e.error.message);
        }
    }

    #[test]
    fn version_is_checked() {
        assert!(decode(json!({"id": 1, "v": 1, "cmd": "ping"})).is_ok());
        let e = decode(json!({"id": 1, "v": 2, "cmd": "ping"})).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::UnsupportedVersion);
        assert_eq!(e.id, Some(RequestId::Num(1)));
        let e = decode(json!({"id": 1, "v": "1", "cmd": "ping"})).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert!(e.error.message.contains("`v`"));
    }

    #[test]
    fn unknown_and_missing_commands() {
        let e = decode(json!({"id": 4, "cmd": "launch"})).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::UnknownCommand);
        assert_eq!(e.id, Some(RequestId::Num(4)));
        assert!(e.error.message.contains("launch"));
        assert!(e.error.message.contains("send"));
        let e = decode(json!({"id": 4})).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::UnknownCommand);
        let e = decode(json!({"id": 4, "cmd": 12})).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert!(e.error.message.contains("`cmd`"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            (
                json!({"id": 1, "cmd": "send", "to": 15551234567u64, "text": "x"}),
                "`to`",
            ),
            (
                json!({"id": 1, "cmd": "send", "to": "+1", "text": ["x"]}),
                "`text`",
            ),
            (json!({"id": 1, "cmd": "inbox", "limit": "ten"}), "`limit`"),
            (json!({"id": 1, "cmd": "inbox", "limit": -3}), "`limit`"),
            (
                json!({"id": 1, "cmd": "inbox", "unread_only": "yes"}),
                "`unread_only`",
            ),
            (
                json!({"id": 1, "cmd": "conversation", "number": null}),
                "`number`",
            ),
            (
                json!({"id": 1, "cmd": "watch", "events": ["message_in", "bogus"]}),
                "`events`",
            ),
            (
                json!({"id": 1, "cmd": "watch", "events": "message_in"}),
                "`events`",
            ),
        ];
        for (req, field) in cases {
            let e = decode(req.clone()).unwrap_err();
            assert_eq!(e.error.code, ErrorCode::InvalidRequest, "{req}");
            assert_eq!(e.id, Some(RequestId::Num(1)));
            assert!(
                e.error.message.contains(field),
                "{req}: {}",
                e.error.message
            );
        }
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let e = decode(json!({"id": 1, "cmd": "send", "text": "x"})).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert!(e.error.message.contains("`to`"), "{}", e.error.message);
        let e = decode(json!({"id": 1, "cmd": "inbox", "unread-only": true})).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert!(
            e.error.message.contains("unread-only"),
            "{}",
            e.error.message
        );
        let e = decode(json!({"id": 1, "cmd": "ping", "extra": 1})).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert!(e.error.message.contains("extra"), "{}", e.error.message);
    }

    #[test]
    fn optional_fields_default() {
        let d = decode(json!({"id": 1, "cmd": "inbox"})).unwrap();
        assert_eq!(d.request, Request::Inbox(InboxArgs::default()));
        let d =
            decode(json!({"id": 1, "cmd": "inbox", "unread_only": null, "limit": null})).unwrap();
        assert_eq!(d.request, Request::Inbox(InboxArgs::default()));
        let d = decode(json!({"id": 1, "cmd": "send", "to": "+1", "text": "t", "modem": null}))
            .unwrap();
        assert!(matches!(
            d.request,
            Request::Send(SendArgs { modem: None, .. })
        ));
    }

    #[test]
    fn unknown_error_codes_deserialize_as_other() {
        let b: ErrorBody =
            serde_json::from_value(json!({"code": "quota_exceeded", "message": "m"})).unwrap();
        assert_eq!(b.code, ErrorCode::Other);
        let b: ErrorBody =
            serde_json::from_value(json!({"code": "invalid_number", "message": "m"})).unwrap();
        assert_eq!(b.code, ErrorCode::InvalidNumber);
    }

    #[test]
    fn error_code_wire_names_match_as_str() {
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
            ErrorCode::Unavailable,
            ErrorCode::Internal,
            ErrorCode::Conflict,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
    }

    #[test]
    fn response_shapes() {
        let ok = Response::success(Some(RequestId::Num(7)), json!({"pong": true}));
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"v": 1, "id": 7, "ok": true, "data": {"pong": true}})
        );
        let err = Response::failure(None, ErrorBody::new(ErrorCode::MalformedJson, "bad"));
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"v": 1, "id": null, "ok": false, "error": {"code": "malformed_json", "message": "bad"}})
        );
    }

    #[test]
    fn events_are_tagged_by_type() {
        let line = EventLine {
            event: Event::Lagged { missed: 3 },
        };
        assert_eq!(
            serde_json::to_value(&line).unwrap(),
            json!({"event": {"type": "lagged", "missed": 3}})
        );
        let ev = Event::MessageIn {
            id: 1,
            from: "+1".into(),
            text: "t".into(),
            modem: "m".into(),
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "message_in");
        assert_eq!(serde_json::to_value(ev.kind()).unwrap(), v["type"]);
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), ev);
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(&bytes);
        }

        #[test]
        fn decode_never_panics_on_objects(
            cmd in prop_oneof![Just("send".to_string()), Just("inbox".to_string()), Just("watch".to_string()), ".{0,12}"],
            key in "[a-z_]{0,12}",
            val in prop_oneof![
                Just(json!(null)), any::<i64>().prop_map(|n| json!(n)), ".{0,8}".prop_map(|s| json!(s)),
                Just(json!([1, "a"])), Just(json!({"x": 1})), any::<bool>().prop_map(|b| json!(b)),
            ],
        ) {
            let mut m = Map::new();
            m.insert("id".into(), json!(1));
            m.insert("cmd".into(), json!(cmd));
            m.insert(key, val);
            let r = decode_request(Value::Object(m).to_string().as_bytes());
            if let Err(e) = r {
                prop_assert!(!e.error.message.is_empty());
            }
        }
    }
}
