//! The pure scheduling core of the modem pool (DESIGN.md layer 6): every decision the pool runner
//! makes about *when* and *where* an SMS goes out, as plain functions of `(now, state)`.
//!
//! What it owns: sliding-window rate limits per modem/SIM, per recipient and for the whole pool
//! ([`limits`]); quiet hours in the recipient's zone ([`quiet`]); retry back-off and TTL expiry
//! ([`backoff`]); the table that turns a modem error code into a retry decision, and the in-doubt
//! policy at restart ([`policy`]); priorities, sticky sender, failover and home-modem assignment
//! ([`plan`]); and a broadcast's ETA ([`eta`]).
//!
//! What it must not touch: no SQL, no serial ports, no tokio, no clocks. Time comes in as an
//! argument (STYLE.md convention 10) so pacing, quiet hours and back-off are tested exactly, and the
//! async runner the integrator builds around the modem actors and the store outbox only has to
//! sleep until the instants these functions return. Randomness (jitter) comes from a seeded
//! [`XorShift64`] passed in, so a test run is repeatable bit for bit.
//!
//! Times are `i64` milliseconds since the Unix epoch ([`Millis`]), the unit the store keeps in
//! `send_log.at` and `outbox.not_before`; only quiet hours speak `jiff::Timestamp`, because they
//! need civil time in a zone.

pub mod backoff;
pub mod eta;
pub mod limits;
pub mod plan;
pub mod policy;
pub mod quiet;
mod rng;
pub mod runner;

use std::fmt;
use std::str::FromStr;

pub use backoff::{Backoff, Ttl};
pub use eta::{Eta, EtaGroup, EtaModem, EtaRequest, estimate};
pub use limits::{CountAt, RateLimiter, RecipientLimiter, Window};
pub use plan::{
    HomeCandidate, ModemSlot, Outgoing, Placement, Pool, PoolConfig, Route, assign_home,
    assign_homes, pick_next,
};
pub use policy::{
    ErrorClass, InDoubtAction, RetryDecision, action_for, classify_cme, classify_cms,
    in_doubt_action,
};
pub use quiet::{QuietOverride, QuietPolicy, next_sendable, next_sendable_ms, quiet_starts_after};
pub use rng::XorShift64;
pub use runner::{
    DispatchEvent, DispatchHandle, ModemSendStats, PoolModem, RunnerConfig, RunnerError, spawn,
};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;

/// Why a message is sent. Mirrors the store's `outbox.kind` (same names in [`MessageKind::as_str`]
/// and [`FromStr`]) so the runner converts by name without this layer depending on the store's
/// types; the order of the variants is the strict priority order, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// STOP/HELP/START confirmations and the compliance line.
    Compliance,
    /// An automatic answer to a member's text (welcome, onboarding).
    Reply,
    /// A one-to-one message from the leader.
    Direct,
    /// One recipient's copy of a broadcast.
    Bulk,
}

impl MessageKind {
    pub const ALL: [MessageKind; 4] = [
        MessageKind::Compliance,
        MessageKind::Reply,
        MessageKind::Direct,
        MessageKind::Bulk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Compliance => "compliance",
            MessageKind::Reply => "reply",
            MessageKind::Direct => "direct",
            MessageKind::Bulk => "bulk",
        }
    }

    /// The default priority, equal to the store's `OutboxKind::default_priority` (compliance 300,
    /// reply 200, direct 150, bulk 100): higher goes first.
    pub fn default_priority(self) -> i64 {
        match self {
            MessageKind::Compliance => 300,
            MessageKind::Reply => 200,
            MessageKind::Direct => 150,
            MessageKind::Bulk => 100,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageKind {
    type Err = DispatchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| DispatchError::UnknownKind(s.to_string()))
    }
}

/// Errors of the dispatch core. Few: the decisions themselves are total functions; only inputs
/// that name things (a kind, a time zone, a modem) can be wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("unknown message kind {0:?} (expected compliance, reply, direct or bulk)")]
    UnknownKind(String),
    #[error("unknown time zone {zone:?}: {reason}")]
    TimeZone { zone: String, reason: String },
    #[error("modem index {index} out of range (pool has {len} modems)")]
    NoSuchModem { index: usize, len: usize },
}

/// Looks up an IANA zone name in the system tz database (jiff), with the name in the error.
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, DispatchError> {
    jiff::tz::TimeZone::get(name).map_err(|e| DispatchError::TimeZone {
        zone: name.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_store_name_and_order_by_priority() {
        for k in MessageKind::ALL {
            assert_eq!(k.as_str().parse::<MessageKind>(), Ok(k));
        }
        assert!("urgent".parse::<MessageKind>().is_err());
        let mut by_prio = MessageKind::ALL;
        by_prio.sort_by_key(|k| std::cmp::Reverse(k.default_priority()));
        assert_eq!(by_prio, MessageKind::ALL);
    }

    #[test]
    fn time_zone_errors_name_the_zone() {
        assert!(time_zone("Europe/Berlin").is_ok());
        let e = time_zone("Mars/Olympus").unwrap_err();
        assert!(e.to_string().contains("Mars/Olympus"));
    }
}
