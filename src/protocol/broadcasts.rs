//! Wire types of the broadcast commands: preview or queue a broadcast, list them, one's progress,
//! pause, resume, cancel; and the in-doubt messages a crash left behind with their resolution.
//!
//! Shapes only; what the commands do is `commands::broadcasts`.

use serde::{Deserialize, Serialize};

use super::serde_helpers::{is_false, null_as_false};

/// `broadcast`: preview (`dry_run`) or queue a text to a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastArgs {
    /// The template; may use `{name}`, `{first_name}`, `{city}`, `{org}`, `{contact}` and the
    /// configured custom fields (`{shirt_size}`).
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Start time, RFC 3339 (`2026-03-01T18:00:00Z`); absent = now. With `local`, a time of
    /// day (`19:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub dry_run: bool,
    /// `at` is a time of day in each member's own zone (their `time_zone`, else
    /// `[dispatch] default_time_zone`): every copy goes out at the next such time there (today,
    /// or tomorrow when it has passed there).
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub local: bool,
    /// `false`: quiet hours do not hold this broadcast (this one only). Absent or `true`: the
    /// configured quiet hours apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<bool>,
}

/// `broadcasts`: the latest broadcasts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastsArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `broadcast_progress`, `broadcast_pause`, `broadcast_resume`, `broadcast_cancel`. The member
/// is `broadcast`, not `id`: `id` is the request envelope's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastIdArgs {
    pub broadcast: i64,
}

/// Why members of the segment do not get a broadcast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Exclusions {
    /// Texted STOP (status `opted_out` or on the suppression list).
    pub opted_out: usize,
    /// Not confirmed yet (`pending_confirmation`).
    pub not_confirmed: usize,
}

/// The SMS cost of a broadcast, counted with the modems' own segmentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EncodingSummary {
    /// `gsm7`, `ucs2`, or `mixed` when names make some copies UCS-2.
    pub encoding: String,
    pub gsm7: usize,
    pub ucs2: usize,
    /// Fewest and most parts of one copy.
    pub min_parts: usize,
    pub max_parts: usize,
    /// SMS over all recipients.
    pub total_sms: usize,
}

/// `broadcast` → what was (or, on a dry run, would be) queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BroadcastResult {
    /// The new broadcast; `null` on a dry run.
    pub id: Option<i64>,
    pub dry_run: bool,
    /// Canonical segment (`*` = everyone).
    pub segment: String,
    /// RFC 3339 UTC start, when scheduled.
    pub scheduled_at: Option<String>,
    /// Members in the segment.
    pub matched: usize,
    /// Members who get a copy.
    pub recipients: usize,
    pub excluded: Exclusions,
    /// Recipients inside quiet hours in their own zone right now; queued all the same, their
    /// copies wait until quiet hours end there.
    pub quiet_now: usize,
    pub sms: EncodingSummary,
    /// The first recipient's text (or the template with the fallback name).
    pub example: String,
    /// Dry run only: RFC 3339 UTC, when the first copy can go out (its member's start time,
    /// after quiet hours in their zone); `null` without recipients or on a real broadcast.
    #[serde(default)]
    pub first_at: Option<String>,
    /// Dry run only: RFC 3339 UTC estimate of the last copy (the rate limits' ETA over the
    /// per-member start times, a lower bound like `eta`); `null` when it cannot finish (no
    /// modem ready for some recipients) or on a real broadcast.
    #[serde(default)]
    pub last_at: Option<String>,
}

/// One broadcast and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BroadcastItem {
    pub id: i64,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub scheduled_at: Option<String>,
    /// `scheduled`, `running`, `paused`, `cancelled`, `done`.
    pub state: String,
    pub segment: String,
    pub template: String,
    /// Recipient rows.
    pub total: u64,
    pub queued: u64,
    /// Claimed by a modem, being sent.
    pub sending: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub expired: u64,
    pub cancelled: u64,
    /// In flight at a crash; see `in_doubt`.
    pub in_doubt: u64,
    /// RFC 3339 UTC estimate of the last send (lower bound); `null` when nothing is left, the
    /// broadcast is paused, or it cannot finish (no modem ready for some recipients).
    pub eta: Option<String>,
    /// What holds queued copies right now, one entry per reason (and modem or zone); empty when
    /// nothing does. Additive: older daemons leave it out.
    #[serde(default)]
    pub held: Vec<Held>,
}

/// Queued copies of a broadcast that cannot go out now, and why (docs/admin-protocol.md,
/// "`broadcasts`, `broadcast_progress`").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Held {
    /// `quiet_hours`, `rate_limit`, `modem_down`, `no_modem_ready`, `scheduled`, `retry` or
    /// `paused`.
    pub reason: String,
    /// Copies held for this reason.
    pub count: u64,
    /// RFC 3339 UTC: when the hold ends (quiet hours end in that zone, the modem's or the pool's
    /// next send slot, the scheduled start, the next retry); `null` when nobody can say (a modem
    /// down, a pause).
    pub until: Option<String>,
    /// The modem concerned (`rate_limit`, `modem_down`; `null` for the pool-wide cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modem: Option<String>,
    /// The recipients' time zone (`quiet_hours`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The same in words, for a terminal.
    pub detail: String,
}

/// What to do with a message whose send was in flight at a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InDoubtResolution {
    /// Queue it again (the recipient may get it twice).
    Resend,
    /// Cancel it (the recipient may not have got it).
    Drop,
}

/// `in_doubt_resolve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InDoubtResolveArgs {
    /// The message's outbox id (`id` in `in_doubt`).
    pub message: i64,
    pub action: InDoubtResolution,
}

/// One outbox row left in doubt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InDoubtItem {
    pub id: i64,
    pub to: String,
    /// `reply`, `compliance`, `direct`, `bulk`.
    pub kind: String,
    pub broadcast_id: Option<i64>,
    pub text: String,
    /// Modem it was in flight on.
    pub modem: Option<String>,
    /// RFC 3339 UTC, when it was claimed.
    pub claimed_at: Option<String>,
    pub reason: Option<String>,
    /// RFC 3339 UTC, when `AT+CMGS` for the interrupted part was started (`null` when the build
    /// that sent it did not record it).
    #[serde(default)]
    pub submit_started_at: Option<String>,
    /// The interrupted part and the message's part count (1-based).
    #[serde(default)]
    pub submit_part: Option<u8>,
    #[serde(default)]
    pub parts: Option<u8>,
    /// Parts whose reference the modem gave back before the crash (or a report proved).
    #[serde(default)]
    pub parts_accepted: u32,
    /// The TP-MR the modem was expected to give the interrupted part (its last one plus one);
    /// a status report with it, for this recipient, on this modem resolves the row by itself.
    #[serde(default)]
    pub expected_reference: Option<u8>,
    /// What is known, in one line: "submit started at T on modem m1, expected reference 17, no
    /// report yet".
    #[serde(default)]
    pub known: String,
}

/// `in_doubt_resolve` → the row's new state (`queued` or `cancelled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InDoubtResolved {
    pub id: i64,
    pub state: String,
}
