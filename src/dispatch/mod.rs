//! When and where an SMS goes out: the pure rules of the modem pool, and the async runner that
//! applies them ([`runner`]), one send loop per modem.
//!
//! Scheduling has one model, the production one: each modem's loop waits for its limiter, then
//! claims the best due row it may carry with `Store::claim_next_routed` (priority, then due time,
//! then age; sticky sender by the row's `modem_pref`; failover once the home modem has been down
//! long enough), so *which* message goes next is decided by that one SQL query and *when* by the
//! pure functions here. The pure parts are: sliding-window rate limits per modem/SIM, per
//! recipient and for the whole pool ([`limits`]); quiet hours in the recipient's zone ([`quiet`]);
//! retry back-off and TTL expiry ([`backoff`]); the table that turns a modem error code into a
//! retry decision, and the in-doubt policy at restart ([`policy`]); the home-modem balancing of
//! new members ([`homes`]); and a broadcast's ETA ([`eta`]).
//!
//! What the pure parts must not touch: no SQL, no serial ports, no tokio, no clocks. Time comes in
//! as an argument, so pacing, quiet hours and back-off are tested exactly, and the runner only
//! has to sleep until the instants these functions return. Randomness (jitter) comes from a
//! seeded [`XorShift64`] passed in, so a test run is repeatable bit for bit. The runner is the
//! one part that reads the clock and calls the store and the modem actors.
//!
//! Times are `i64` milliseconds since the Unix epoch ([`Millis`]), the unit the store keeps in
//! `send_log.at` and `outbox.not_before`; only quiet hours speak `jiff::Timestamp`, because they
//! need civil time in a zone. Message kinds are the crate's one [`crate::model::MessageKind`].

pub mod backoff;
pub mod eta;
pub mod homes;
pub mod limits;
pub mod policy;
pub mod quiet;
mod rng;
pub mod runner;
pub mod settings;
pub mod upkeep;

pub use backoff::{Backoff, Ttl};
pub use eta::{Eta, EtaGroup, EtaModem, EtaRequest, estimate};
pub use homes::{HomeCandidate, HomeChoice, HomeReason, assign_home, assign_homes, choose_home};
pub use limits::{CountAt, RateLimiter, RecipientLimiter, Window};
pub use policy::{
    ErrorClass, InDoubtAction, RetryDecision, action_for, classify_cme, classify_cms,
    in_doubt_action,
};
pub use quiet::{QuietOverride, QuietPolicy, next_sendable, next_sendable_ms, quiet_starts_after};
pub use rng::XorShift64;
pub use runner::{
    DispatchEvent, DispatchHandle, ModemSendStats, PoolModem, RunnerConfig, RunnerError, spawn,
};
pub use settings::{DispatchConfig, InDoubtPolicy, Limits, QuietHours, RetryConfig};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;

/// Errors of the dispatch core. Few: the decisions themselves are total functions; only inputs
/// that name things (a time zone) can be wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("unknown time zone {zone:?}: {reason}")]
    TimeZone { zone: String, reason: String },
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
    fn time_zone_errors_name_the_zone() {
        assert!(time_zone("Europe/Berlin").is_ok());
        let e = time_zone("Mars/Olympus").unwrap_err();
        assert!(e.to_string().contains("Mars/Olympus"));
    }
}
