//! The wire types of `activity`: per-day figures (members joined and opted out, messages received
//! and SMS sent) over the last days, and the latest alerts — what the web console's dashboard
//! draws, also open to the CLI and API clients with the `read` scope.
//!
//! Types only; the command (`commands::activity`) reads the store and words the alerts. Days are
//! UTC dates (`YYYY-MM-DD`) so every client draws the same bars whatever its time zone.

use serde::{Deserialize, Serialize};

/// `activity`: the figures of the last `days` UTC days (today included) and the latest `alerts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityArgs {
    /// Days, 1–92; absent means 14.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Alerts, 0–100; absent means 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<u32>,
}

/// One UTC day of `activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityDay {
    /// The UTC date, `YYYY-MM-DD`.
    pub day: String,
    /// Members whose join time falls on the day (who are still members).
    pub joined: u64,
    /// Opt-outs recorded that day (STOP, or a person's decision).
    pub opted_out: u64,
    /// Messages received (a long text counts once; one whose parts timed out counts too).
    pub received: u64,
    /// SMS parts handed to the network (the unit of `status.sent_today` and the limits).
    pub sent: u64,
}

/// One alert of `activity`: an `alert`, `low_balance`, `sim_changed` or `modem_down` event of
/// the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertItem {
    /// The journal event's id.
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// The event type (`alert`, `low_balance`, `sim_changed`, `modem_down`).
    pub kind: String,
    /// One line for a person.
    pub message: String,
}

/// The answer of `activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityData {
    /// Oldest first, one entry per day, days without activity as zeros.
    pub days: Vec<ActivityDay>,
    /// Newest first.
    pub alerts: Vec<AlertItem>,
}
