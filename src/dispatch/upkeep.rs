//! The upkeep of a prepaid SIM (docs/modems.md, "Balance" and "Keep-alive"): per-modem settings
//! for the balance check and the keep-alive, and the pure rules saying when each is due.
//!
//! Pure like the rest of `dispatch`'s rules: times come in as arguments (unix ms), and the unit a
//! "day" or an "hour" stands for is an argument too, so the daemon's task can be driven on a short
//! scale in end-to-end tests while these rules stay exact. It must not touch the store, the modem
//! or the clock; the daemon's upkeep task (`daemon/upkeep.rs`) applies them.

use super::Millis;

/// What keeps a SIM alive when it has sent nothing for `keepalive_days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// A USSD code (e.g. the balance code: on many prepaid plans any chargeable or USSD
    /// activity counts; check the operator's terms).
    Ussd(String),
    /// One SMS to `to` with `text`, through the outbox like any other direct message.
    Sms { to: String, text: String },
}

/// The upkeep settings of one `[[modem]]`; everything off by default.
#[derive(Debug, Clone, PartialEq)]
pub struct SimUpkeep {
    /// The USSD code that answers the balance, e.g. `*100#`; `None` = no balance check.
    pub balance_ussd: Option<String>,
    /// Hours between balance checks.
    pub balance_every_hours: u32,
    /// A balance below this raises `low_balance` (once per crossing).
    pub low_balance: Option<f64>,
    /// Send the keep-alive after this many days without a sent SMS; `None` = never.
    pub keepalive_days: Option<u32>,
    pub keepalive: Option<KeepaliveAction>,
}

/// The default of `balance_every_hours`.
pub const DEFAULT_BALANCE_EVERY_HOURS: u32 = 12;

impl Default for SimUpkeep {
    fn default() -> Self {
        SimUpkeep {
            balance_ussd: None,
            balance_every_hours: DEFAULT_BALANCE_EVERY_HOURS,
            low_balance: None,
            keepalive_days: None,
            keepalive: None,
        }
    }
}

impl SimUpkeep {
    /// Whether anything is configured at all (the task skips other modems).
    pub fn active(&self) -> bool {
        self.balance_ussd.is_some() || (self.keepalive_days.is_some() && self.keepalive.is_some())
    }
}

/// Whether a balance check is due: never read, or the last reading *and* the last attempt (a
/// failed one included, so a network that never answers is not asked every tick) are at least
/// `every` old.
pub fn balance_due(
    last_read: Option<Millis>,
    last_attempt: Option<Millis>,
    every: Millis,
    now: Millis,
) -> bool {
    let last = last_read.max(last_attempt);
    last.is_none_or(|t| now.saturating_sub(t) >= every)
}

/// Whether the keep-alive is due: the newest of the SIM's last send, its last keep-alive and when
/// it was first seen (a SIM new to the gateway gets the whole period before one) is at least
/// `period` old.
pub fn keepalive_due(
    first_seen: Millis,
    last_sent: Option<Millis>,
    last_keepalive: Option<Millis>,
    period: Millis,
    now: Millis,
) -> bool {
    let reference = [Some(first_seen), last_sent, last_keepalive]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(first_seen);
    now.saturating_sub(reference) >= period
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 86_400_000;

    #[test]
    fn balance_is_due_when_never_read_or_old_enough() {
        let every = 12 * 3_600_000;
        assert!(balance_due(None, None, every, 0));
        assert!(!balance_due(Some(1_000), None, every, 1_000 + every - 1));
        assert!(balance_due(Some(1_000), None, every, 1_000 + every));
        // A failed attempt waits a whole interval too.
        assert!(!balance_due(None, Some(5_000), every, 5_000 + every - 1));
        assert!(!balance_due(Some(0), Some(5_000), every, every + 1));
        assert!(balance_due(Some(0), Some(5_000), every, 5_000 + every));
    }

    #[test]
    fn keepalive_counts_from_the_newest_activity() {
        let p = 30 * DAY;
        // New SIM: the whole period first.
        assert!(!keepalive_due(0, None, None, p, p - 1));
        assert!(keepalive_due(0, None, None, p, p));
        // A send resets it.
        assert!(!keepalive_due(0, Some(10 * DAY), None, p, 39 * DAY));
        assert!(keepalive_due(0, Some(10 * DAY), None, p, 40 * DAY));
        // So does the keep-alive itself: once per period, not every tick after it is due.
        assert!(!keepalive_due(0, None, Some(p), p, p + 1));
        assert!(!keepalive_due(0, Some(DAY), Some(p), p, 2 * p - 1));
        assert!(keepalive_due(0, Some(DAY), Some(p), p, 2 * p));
        // A clock that went back never makes it due.
        assert!(!keepalive_due(10 * DAY, None, None, p, 0));
    }

    #[test]
    fn active_only_with_something_to_do() {
        assert!(!SimUpkeep::default().active());
        let only_days = SimUpkeep {
            keepalive_days: Some(30),
            ..SimUpkeep::default()
        };
        assert!(!only_days.active());
        let balance = SimUpkeep {
            balance_ussd: Some("*100#".into()),
            ..SimUpkeep::default()
        };
        assert!(balance.active());
    }
}
