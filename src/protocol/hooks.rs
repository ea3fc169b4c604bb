//! Wire types of `webhooks` (each configured endpoint with its delivery state) and
//! `webhook_replay` (send one journal event to one webhook again). Shapes only; the commands
//! are `commands::hooks`, the delivery is the `hooks` layer.

use serde::{Deserialize, Serialize};

/// `webhook_replay`: send event `event` to webhook `name` once more, out of band, signed as
/// usual. The cursor does not move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookReplayArgs {
    pub name: String,
    pub event: i64,
}

/// One configured webhook as `webhooks` lists it. The secret is never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookItem {
    pub name: String,
    pub url: String,
    /// Subscribed event types; empty means every type.
    pub events: Vec<String>,
    /// Journal events of its types not yet delivered (or given up).
    pub backlog: i64,
    /// The id of the last event delivered, given up or stepped over.
    pub last_event: i64,
    /// Failed attempts at the next event (0 when none is failing).
    pub attempts: i64,
    /// RFC 3339 of the next retry, while one is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<String>,
    pub delivered_total: i64,
    /// Events given up after retrying for the whole retry period.
    pub failed_total: i64,
}

/// `webhook_replay` → what the replay came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReplayed {
    pub name: String,
    pub event: i64,
    /// True once the webhook's worker has sent it (`result` says how it went); false when the
    /// daemon did not get to it within the command's wait (it is still queued and will be sent).
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}
