//! The dispatch layer's settings: the `[dispatch]` table of the configuration file, the per-SIM
//! limits of each `[[modem]]`, and the in-doubt policy at restart, as the layer uses them.
//!
//! The layer owns these types so its rules can be read and tested without the configuration
//! module; `config` parses and validates the file, fills them and supplies the file's defaults
//! (docs/architecture.md, "Settings"). Values here are already validated: limits ordered
//! (`per_minute <= per_hour <= per_day`), the time zone known, quiet hours well-formed.

use serde::{Deserialize, Serialize};

/// Policy for messages whose send was in flight when the daemon stopped uncleanly: the modem may
/// or may not have passed them to the network, so resending risks a duplicate and not resending
/// risks a loss. Replies (STOP/HELP confirmations, conversation replies) matter more than a
/// duplicate broadcast, hence the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InDoubtPolicy {
    /// Resend replies and compliance confirmations; direct sends and bulk stay `in_doubt` for a
    /// person (or a status report) to resolve.
    #[default]
    ResendReplies,
    /// Resend nothing; everything stays `in_doubt`.
    ResendNone,
    /// Resend everything (accepting possible duplicates).
    ResendAll,
}

impl InDoubtPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            InDoubtPolicy::ResendReplies => "resend_replies",
            InDoubtPolicy::ResendNone => "resend_none",
            InDoubtPolicy::ResendAll => "resend_all",
        }
    }
}

/// Per-SIM send limits; always `per_minute <= per_hour <= per_day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_minute: u32,
    pub per_hour: u32,
    pub per_day: u32,
}

impl Limits {
    /// Defaults well inside the CTIA consumer envelope (15–60/min, ~1,000/day: docs/dispatch.md, "Rate limits"): a
    /// consumer SIM that sends like an application gets filtered or blocked.
    pub const DEFAULT: Limits = Limits {
        per_minute: 6,
        per_hour: 200,
        per_day: 1000,
    };
}

/// `[dispatch]`: pool-wide scheduling.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchConfig {
    /// At most this many messages to one recipient per day (replies included); `None` = no cap.
    pub per_recipient_per_day: Option<u32>,
    /// Cap on the whole pool per minute; `None` = only the per-modem limits apply.
    pub pool_per_minute: Option<u32>,
    /// Up to this many milliseconds of random delay added between sends on one modem.
    pub jitter_ms: u64,
    /// Bulk messages are held during these local hours of the recipient; `None` = disabled.
    pub quiet_hours: Option<QuietHours>,
    /// IANA zone for recipients whose zone is not known from their number or profile.
    pub default_time_zone: String,
    /// Move a member's messages to another modem after their home modem has been down this long;
    /// `None` = never fail over.
    pub failover_after_minutes: Option<u32>,
    /// After a failover, make the new modem the member's home (sticky sender moves with them).
    pub move_home_on_failover: bool,
    /// New members added by command or import get a home modem whose own number shares their
    /// country and area code where one does (`homes`); off = balance only.
    pub geomatch: bool,
    pub retry: RetryConfig,
    /// Bulk messages not sent within this many hours are dropped as expired.
    pub ttl_hours: u32,
}

/// Quiet hours as local wall-clock times; `start > end` wraps over midnight (21:00–08:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: (u8, u8),
    pub end: (u8, u8),
}

impl QuietHours {
    /// Whether local time `hour:minute` falls inside the quiet window `[start, end)`.
    pub fn contains(&self, hour: u8, minute: u8) -> bool {
        let now = u16::from(hour) * 60 + u16::from(minute);
        let start = u16::from(self.start.0) * 60 + u16::from(self.start.1);
        let end = u16::from(self.end.0) * 60 + u16::from(self.end.1);
        if start <= end {
            start <= now && now < end
        } else {
            now >= start || now < end
        }
    }
}

/// Retries with exponential back-off: attempt `n` waits `base_delay_secs * 2^(n-1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub base_delay_secs: u64,
}
