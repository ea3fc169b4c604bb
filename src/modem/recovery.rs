//! Back-off maths and the recovery escalation ladder, as pure functions of counters.
//!
//! The actor owns the clock and the port; this file only decides *what to try next* and *how long to
//! wait*, so the policy is testable without a pty. The ladder is the one existing modem daemons
//! climb: ESC + Ctrl-Z then `AT` (smstools3, Gammu); `AT+CFUN=1,1` and re-init (chan_dongle's
//! "reset"); reopen a vanished port; finally out of the pool. USB re-bind and VBUS power cycling
//! (uhubctl) would come between the last two, but they need root and specific hubs and are left to
//! the operator's udev/systemd setup.

use std::time::Duration;

/// One rung of the recovery ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryStep {
    /// Write ESC and Ctrl-Z (closes a stuck `> ` prompt), then probe with `AT`, then re-init.
    Resync,
    /// `AT+CFUN=1,1`, wait for the reboot, re-run init.
    Reset,
    /// Drop and reopen the port (also when it vanished), then re-init.
    Reopen,
    /// Give up: out of the pool, alert.
    GiveUp,
}

/// The step for the `attempt`-th consecutive failed recovery (0-based) given the configured limit of
/// failed cycles. A cycle is resync → reset → reopen; after `max_cycles` full cycles we give up.
pub fn step_for(attempt: u32, max_cycles: u32) -> RecoveryStep {
    let cycle = attempt / 3;
    if cycle >= max_cycles {
        return RecoveryStep::GiveUp;
    }
    match attempt % 3 {
        0 => RecoveryStep::Resync,
        1 => RecoveryStep::Reset,
        _ => RecoveryStep::Reopen,
    }
}

/// Exponential back-off: `base · 2^attempt`, capped at `max`; never overflows.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).map_or(max, |d| d.min(max))
}

/// Linear "busy" back-off (CMS 314 / CME 14 / CME 515), python-gsmmodem's: 0.2 s more per hit.
pub fn busy_delay(step: Duration, hits: u32) -> Duration {
    step.saturating_mul(hits.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ladder_escalates_then_gives_up() {
        let steps: Vec<_> = (0..7).map(|a| step_for(a, 2)).collect();
        assert_eq!(
            steps,
            vec![
                RecoveryStep::Resync,
                RecoveryStep::Reset,
                RecoveryStep::Reopen,
                RecoveryStep::Resync,
                RecoveryStep::Reset,
                RecoveryStep::Reopen,
                RecoveryStep::GiveUp
            ]
        );
        assert_eq!(step_for(0, 0), RecoveryStep::GiveUp);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(100);
        let m = Duration::from_secs(5);
        assert_eq!(backoff(b, m, 0), b);
        assert_eq!(backoff(b, m, 1), Duration::from_millis(200));
        assert_eq!(backoff(b, m, 3), Duration::from_millis(800));
        assert_eq!(backoff(b, m, 10), m);
        assert_eq!(backoff(b, m, u32::MAX), m);
    }

    #[test]
    fn busy_delay_grows_by_step() {
        let s = Duration::from_millis(200);
        assert_eq!(busy_delay(s, 0), Duration::from_millis(200));
        assert_eq!(busy_delay(s, 2), Duration::from_millis(600));
    }

    proptest! {
        #[test]
        fn backoff_is_monotonic_and_bounded(base in 1u64..10_000, max in 1u64..1_000_000, a in 0u32..100) {
            let base = Duration::from_millis(base);
            let max = Duration::from_millis(max);
            let x = backoff(base, max, a);
            let y = backoff(base, max, a + 1);
            prop_assert!(x <= max);
            prop_assert!(y >= x || y == max);
        }
    }
}
