//! Wire types of `watch`: the subscription, its acknowledgement and the events the daemon
//! publishes (modem state, messages in and out, delivery reports, calls, warnings, lag).
//!
//! Shapes only; the event bus that fills them is the daemon's. A subscriber that falls behind gets
//! [`Event::Lagged`] with the number it missed, whatever its filter.

use serde::{Deserialize, Serialize};

/// `watch`: subscribe to events, optionally only some kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchArgs {
    /// Kinds to receive; absent means every kind. `lagged` is always delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventKind>>,
}

/// `watch` → acknowledged, then event lines follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WatchStarted {
    /// The kinds this subscription receives (`lagged` is always delivered too).
    pub events: Vec<EventKind>,
}

/// One event line of a watch stream: `{"event": {"type": "message_in", ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventLine {
    pub event: Event,
}

/// What the daemon publishes on its event channel, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// An inbound text reads like an opt-out but is no keyword ("Stop please"): nothing was
    /// changed, a person must decide (`members_review`). An alert of its own, not a `log`
    /// record, so a subscriber (or a webhook) can select it by type and act on `from` and `id`
    /// without parsing a sentence, and so it is published whatever the log tap does.
    PossibleOptOut {
        /// The inbox id of the message.
        id: i64,
        from: String,
        text: String,
        modem: String,
    },
    /// Something needs a person now (e.g. `state_disk_full`, `state_disk_read_only`), or no
    /// longer does (`state_disk_writable`). `alert` is a stable word for scripts and webhooks;
    /// `message` says it for people.
    Alert { alert: String, message: String },
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    ModemState,
    MessageIn,
    MessageSent,
    MessageFailed,
    DeliveryReport,
    Call,
    PossibleOptOut,
    Alert,
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
        EventKind::PossibleOptOut,
        EventKind::Alert,
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
            Event::PossibleOptOut { .. } => EventKind::PossibleOptOut,
            Event::Alert { .. } => EventKind::Alert,
            Event::Log { .. } => EventKind::Log,
            Event::Lagged { .. } => EventKind::Lagged,
        }
    }
}
