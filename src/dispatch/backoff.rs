//! Retry back-off and message time-to-live.
//!
//! Back-off is exponential, as `[dispatch.retry]` documents: after the `n`-th failed attempt the
//! next waits `base_delay_secs · 2^(n-1)`, capped (at an hour by default: past that a retry is no
//! longer a retry but a stale replay; moezbhatti/qksms#652, old failed SMS auto-retried later
//! flooded contacts), and nothing is tried after `max_attempts`
//! attempts. Jitter shortens each delay by up to a fifth, drawn from a seeded [`XorShift64`]: so
//! the documented figure stays an upper bound and many messages failing together (a network
//! outage) do not come back in lock-step.
//!
//! TTL: bulk messages carry `expires_at = created_at + ttl_hours`; one that would start at or after
//! it expires instead of going out late (a broadcast about tonight's meeting is worthless
//! tomorrow, and "100–200 stale SMS resent after a crash" is a known failure, Uninett/nav#1276).
//! Replies, compliance and direct messages have no TTL: the config key is documented for bulk.

use super::{HOUR, Millis, SECOND, XorShift64};
use crate::dispatch::settings::{DispatchConfig, RetryConfig};
use crate::model::MessageKind;

/// Exponential back-off with jitter and a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: Millis,
    pub cap_ms: Millis,
    /// Total send attempts allowed, the first included.
    pub max_attempts: u32,
    /// Up to this percentage is taken off each delay at random (0 = none).
    pub jitter_pct: u8,
}

impl Backoff {
    /// No config key sets the cap yet: one hour.
    pub const DEFAULT_CAP_MS: Millis = HOUR;
    pub const DEFAULT_JITTER_PCT: u8 = 20;

    pub fn from_config(r: &RetryConfig) -> Self {
        let base_ms = Millis::try_from(r.base_delay_secs)
            .unwrap_or(Millis::MAX)
            .saturating_mul(SECOND);
        Backoff {
            base_ms,
            cap_ms: Self::DEFAULT_CAP_MS.max(base_ms),
            max_attempts: r.max_attempts,
            jitter_pct: Self::DEFAULT_JITTER_PCT,
        }
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    pub fn may_retry(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }

    /// The documented delay after `attempts` failed attempts (`attempts >= 1`), without jitter.
    pub fn nominal_delay(&self, attempts: u32) -> Millis {
        let doublings = attempts.saturating_sub(1).min(62);
        self.base_ms
            .saturating_mul(1i64 << doublings)
            .min(self.cap_ms)
            .max(0)
    }

    /// The jittered delay, or `None` when attempts are used up.
    pub fn delay(&self, attempts: u32, rng: &mut XorShift64) -> Option<Millis> {
        if !self.may_retry(attempts) {
            return None;
        }
        let nominal = self.nominal_delay(attempts);
        let spread = nominal / 100 * Millis::from(self.jitter_pct.min(100));
        let off = Millis::try_from(rng.up_to(spread.unsigned_abs())).unwrap_or(0);
        Some(nominal - off)
    }

    /// When to try again after `attempts` failed attempts at `now`, or `None` to give up.
    pub fn retry_at(&self, now: Millis, attempts: u32, rng: &mut XorShift64) -> Option<Millis> {
        self.delay(attempts, rng).map(|d| now.saturating_add(d))
    }
}

/// Time-to-live per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    /// TTL of bulk messages; `None` = never expire.
    pub bulk_ms: Option<Millis>,
}

impl Ttl {
    pub fn from_config(cfg: &DispatchConfig) -> Self {
        Ttl {
            bulk_ms: Some(Millis::from(cfg.ttl_hours).saturating_mul(HOUR)),
        }
    }

    /// `expires_at` for a message of `kind` created at `created_at`.
    pub fn deadline(&self, kind: MessageKind, created_at: Millis) -> Option<Millis> {
        match kind {
            MessageKind::Bulk => self.bulk_ms.map(|t| created_at.saturating_add(t)),
            MessageKind::Reply | MessageKind::Compliance | MessageKind::Direct => None,
        }
    }
}

/// Whether a message with `expires_at` must expire rather than start at `start`. Same rule as the
/// store's claim (`expires_at <= now` expires).
pub fn expired(expires_at: Option<Millis>, start: Millis) -> bool {
    expires_at.is_some_and(|e| e <= start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::MINUTE;
    use proptest::prelude::*;

    fn cfg(max_attempts: u32, base_delay_secs: u64) -> Backoff {
        Backoff::from_config(&RetryConfig {
            max_attempts,
            base_delay_secs,
        })
    }

    #[test]
    fn doubles_from_the_base_and_stops_at_max_attempts() {
        let b = cfg(5, 60);
        let d: Vec<Millis> = (1..=4).map(|n| b.nominal_delay(n)).collect();
        assert_eq!(d, vec![MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE]);
        let mut rng = XorShift64::new(3);
        assert!(b.delay(4, &mut rng).is_some());
        assert_eq!(b.delay(5, &mut rng), None);
        assert_eq!(b.retry_at(1_000, 5, &mut rng), None);
        assert!(!b.may_retry(5));
    }

    #[test]
    fn capped_at_an_hour_unless_the_base_is_larger() {
        let b = cfg(100, 60);
        assert_eq!(b.nominal_delay(30), HOUR);
        assert_eq!(b.nominal_delay(u32::MAX), HOUR);
        let big = cfg(3, 2 * 3600);
        assert_eq!(big.nominal_delay(2), 2 * HOUR);
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let mut rng = XorShift64::new(1);
        assert_eq!(cfg(1, 60).delay(1, &mut rng), None);
    }

    #[test]
    fn ttl_applies_to_bulk_only() {
        let t = Ttl::from_config(&DispatchConfig::default());
        assert_eq!(t.deadline(MessageKind::Bulk, 0), Some(48 * HOUR));
        for k in [
            MessageKind::Reply,
            MessageKind::Compliance,
            MessageKind::Direct,
        ] {
            assert_eq!(t.deadline(k, 0), None);
        }
        assert!(expired(Some(10), 10));
        assert!(!expired(Some(10), 9));
        assert!(!expired(None, Millis::MAX));
    }

    proptest! {
        #[test]
        fn jittered_delay_is_within_a_fifth_below_nominal_and_grows(
            base in 1u64..600, attempts in 1u32..20, seed in any::<u64>(),
        ) {
            let b = cfg(50, base);
            let mut rng = XorShift64::new(seed);
            let nominal = b.nominal_delay(attempts);
            let d = b.delay(attempts, &mut rng).unwrap();
            prop_assert!(d <= nominal && d >= nominal - nominal / 5 - 1);
            prop_assert!(b.nominal_delay(attempts + 1) >= nominal);
            prop_assert!(nominal <= b.cap_ms);
        }
    }
}
