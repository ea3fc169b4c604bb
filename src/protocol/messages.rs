//! Wire types of the messaging commands: `send` (queue one text), `inbox` (what members wrote)
//! and `conversation` (one thread, both directions).
//!
//! Shapes only; what the commands do is `commands::messages`. Times are RFC 3339 UTC strings.

use serde::{Deserialize, Serialize};

use super::serde_helpers::{is_false, null_as_false};

/// `send`: queue `text` to `to`. The daemon stores it before it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Only messages with an id greater than this, oldest first (for a client that polls for
    /// what is new); absent = the newest messages, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

/// `conversation`: messages to and from one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationArgs {
    pub number: String,
    /// The last `limit` messages; absent means the daemon's default page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `send` → the message is stored and queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SendAccepted {
    /// Outbox id; events about this message carry it.
    pub id: i64,
    /// Number of SMS segments.
    pub parts: u32,
    /// `gsm7`, `ucs2` or `8bit`.
    pub encoding: String,
}

/// One received message in `inbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboxItem {
    pub id: i64,
    pub from: String,
    pub text: String,
    /// RFC 3339 UTC timestamp of reception by the modem.
    pub received_at: String,
    pub modem: String,
    pub read: bool,
    /// Why the owner should look at it: `possible_opt_out` (reads like an opt-out but is no
    /// keyword; `members_review` lists them), `from_opted_out`, `undecodable`, `binary`; `null`
    /// for none. Absent from an older daemon's reply.
    #[serde(default)]
    pub flag: Option<String>,
}

/// One message of a `conversation`, either direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

/// `message_get`: one outgoing message by its outbox id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageIdArgs {
    pub message: i64,
}

/// `message_get` → where one outgoing message stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageStatus {
    pub id: i64,
    pub to: String,
    pub text: String,
    /// `direct`, `reply`, `broadcast`, ...
    pub kind: String,
    /// `queued`, `sending`, `sent`, `delivered`, `failed`, `expired`, `cancelled`, `in_doubt`.
    pub status: String,
    pub broadcast_id: Option<i64>,
    /// The modem that sent it (or is sending it); `null` before a modem took it.
    pub modem: Option<String>,
    pub attempts: i64,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub delivered_at: Option<String>,
    /// Why it failed or was last retried.
    pub error: Option<String>,
}

/// `conversations`: the latest threads, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationsArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One thread in `conversations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThreadItem {
    pub number: String,
    /// The member's name, when the number is a member with one.
    pub name: Option<String>,
    pub last_at: String,
    pub unread: u64,
}
