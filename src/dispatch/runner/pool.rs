//! The runner's in-memory pool state shared by the send loops: each modem's sliding-window limiter
//! and up/down state, and the pool-wide limiter.
//!
//! One `std::sync::Mutex` guards it all; every critical section is a few comparisons (never held
//! across an `.await` or a store call). The pool cap needs that: checking the pool limiter and
//! recording a part start must be one step, or two modems could both take the last slot of a
//! window ([`PoolState::try_start`]).
//!
//! "Down" (for failover) means not usable: the modem is not `Ready`/registered, or the runner holds
//! it after a modem-level error. `down_since` is when that began; another modem may take its
//! members' messages once `failover_after` has passed since then (never when unset). A modem that
//! turned *suspect* (a send went unanswered past the modem's bound, docs/modems.md "Stalls") has
//! already kept a member waiting that long: its members' messages may move at once, until it is
//! usable again.

use super::super::{Millis, RateLimiter};

#[derive(Debug)]
pub(crate) struct ModemRt {
    pub name: String,
    pub limiter: RateLimiter,
    /// The modem actor reports Ready and registered.
    pub ready: bool,
    /// The runner holds the modem (no claims) until then, after a modem-level error.
    pub held_until: Option<Millis>,
    pub hold_reason: Option<String>,
    /// When the modem last stopped being usable; `None` while usable.
    pub down_since: Option<Millis>,
    /// The actor reported it suspect during this down period (cleared when usable again).
    pub suspect: bool,
    /// The modem init (`ModemStatus::inits`) whose SIM the daemon has recorded, rows moved and
    /// limits reloaded (`DispatchHandle::sim_recorded`). With `RunnerConfig::wait_for_sim` a
    /// loop claims only while this is the init its modem is `Ready` from.
    pub sim_recorded: Option<u64>,
}

impl ModemRt {
    pub fn new(name: String, limiter: RateLimiter) -> Self {
        ModemRt {
            name,
            limiter,
            // Not ready until its loop has read the actor's status (at once, at spawn): a modem
            // that never comes up starts its failover clock then.
            ready: false,
            held_until: None,
            hold_reason: None,
            down_since: None,
            suspect: false,
            sim_recorded: None,
        }
    }

    fn held(&self, now: Millis) -> bool {
        self.held_until.is_some_and(|t| t > now)
    }

    pub(super) fn usable(&self, now: Millis) -> bool {
        self.ready && !self.held(now)
    }

    fn refresh_down(&mut self, now: Millis) {
        if self.usable(now) {
            self.down_since = None;
            self.suspect = false;
        } else if self.down_since.is_none() {
            self.down_since = Some(now);
        }
    }
}

#[derive(Debug)]
pub(crate) struct PoolState {
    pub modems: Vec<ModemRt>,
    pub pool_limiter: Option<RateLimiter>,
}

impl PoolState {
    /// Records the actor's readiness; returns whether the modem's usability changed.
    pub fn set_ready(&mut self, i: usize, ready: bool, now: Millis) -> bool {
        let Some(m) = self.modems.get_mut(i) else {
            return false;
        };
        // Usable as of the last refresh (a hold that just ran out counts as a change).
        let before = m.down_since.is_none();
        m.ready = ready;
        if m.held_until.is_some_and(|t| t <= now) {
            m.held_until = None;
            m.hold_reason = None;
        }
        m.refresh_down(now);
        before != m.down_since.is_none()
    }

    /// Whether the SIM of modem `i`'s init number `init` has been recorded (see `sim_recorded`).
    pub fn sim_recorded(&self, i: usize, init: u64) -> bool {
        self.modems
            .get(i)
            .is_some_and(|m| m.sim_recorded == Some(init))
    }

    /// Records that modem `i` is suspect (not usable, its members may fail over at once); returns
    /// whether that is news.
    pub fn set_suspect(&mut self, i: usize, now: Millis) -> bool {
        let Some(m) = self.modems.get_mut(i) else {
            return false;
        };
        m.ready = false;
        m.refresh_down(now);
        !std::mem::replace(&mut m.suspect, true)
    }

    /// Holds modem `i` until `until` (a modem-level error).
    pub fn hold(&mut self, i: usize, until: Millis, reason: &str, now: Millis) {
        if let Some(m) = self.modems.get_mut(i) {
            m.held_until = Some(m.held_until.map_or(until, |t| t.max(until)));
            m.hold_reason = Some(reason.to_string());
            m.refresh_down(now);
        }
    }

    pub fn held_until(&self, i: usize, now: Millis) -> Option<Millis> {
        self.modems
            .get(i)
            .and_then(|m| m.held_until.filter(|&t| t > now))
    }

    /// Earliest instant `>= now` modem `i` may start a part (its own windows and the pool cap);
    /// `None` if a cap of zero forbids it.
    pub fn next_allowed(&self, i: usize, now: Millis) -> Option<Millis> {
        let t = self.modems.get(i)?.limiter.next_allowed(now)?;
        match &self.pool_limiter {
            None => Some(t),
            // The two limiters' allowed sets are each upward closed, so alternating until a
            // fixed point finds the earliest instant both allow (two rounds in practice).
            Some(p) => {
                let mut t = t;
                for _ in 0..16 {
                    let tp = p.next_allowed(t)?;
                    let tm = self.modems.get(i)?.limiter.next_allowed(tp)?;
                    if tm == t {
                        return Some(t);
                    }
                    t = tm;
                }
                Some(t)
            }
        }
    }

    /// Starts a part on modem `i` at `now` if every limit allows it (and counts it at once);
    /// otherwise says when to ask again (`None`: never).
    pub fn try_start(&mut self, i: usize, now: Millis) -> Result<(), Option<Millis>> {
        match self.next_allowed(i, now) {
            Some(t) if t <= now => {
                if let Some(m) = self.modems.get_mut(i) {
                    m.limiter.record(now);
                }
                if let Some(p) = &mut self.pool_limiter {
                    p.record(now);
                }
                Ok(())
            }
            other => Err(other),
        }
    }

    /// A part on modem `i` ended at `done`: the jitter pause follows the exchange.
    pub fn end_part(&mut self, i: usize, done: Millis) {
        if let Some(m) = self.modems.get_mut(i) {
            m.limiter.jitter_after(done);
        }
    }

    /// Pool modems other than `i` that have been down for at least `after` (their members'
    /// messages may fail over to `i`), and the earliest instant another one will qualify.
    pub fn takeovers(
        &self,
        i: usize,
        now: Millis,
        after: Option<Millis>,
    ) -> (Vec<String>, Option<Millis>) {
        let Some(after) = after else {
            return (Vec::new(), None);
        };
        let mut names = Vec::new();
        let mut next: Option<Millis> = None;
        for (j, m) in self.modems.iter().enumerate() {
            if j == i || m.usable(now) {
                continue;
            }
            let since = m.down_since.unwrap_or(now);
            let at = since.saturating_add(after);
            if at <= now || m.suspect {
                names.push(m.name.clone());
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        (names, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Window;

    fn pool(caps: &[u32], pool_cap: Option<u32>) -> PoolState {
        PoolState {
            modems: caps
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    ModemRt::new(
                        format!("m{i}"),
                        RateLimiter::with_windows(&[Window {
                            len_ms: 1000,
                            cap: c,
                        }]),
                    )
                })
                .collect(),
            pool_limiter: pool_cap.map(|c| {
                RateLimiter::with_windows(&[Window {
                    len_ms: 1000,
                    cap: c,
                }])
            }),
        }
    }

    #[test]
    fn pool_cap_is_shared_and_checked_with_the_record() {
        let mut p = pool(&[2, 2], Some(3));
        assert_eq!(p.try_start(0, 0), Ok(()));
        assert_eq!(p.try_start(0, 1), Ok(()));
        assert_eq!(p.try_start(0, 2), Err(Some(1000)));
        assert_eq!(p.try_start(1, 2), Ok(()));
        // Modem 1 has room of its own but the pool is full until the first start leaves.
        assert_eq!(p.try_start(1, 3), Err(Some(1000)));
        assert_eq!(p.next_allowed(1, 3), Some(1000));
        assert_eq!(p.try_start(1, 1000), Ok(()));
    }

    #[test]
    fn zero_cap_means_never() {
        let mut p = pool(&[0], None);
        assert_eq!(p.next_allowed(0, 5), None);
        assert_eq!(p.try_start(0, 5), Err(None));
    }

    #[test]
    fn failover_only_after_the_delay_and_never_when_unset() {
        let mut p = pool(&[5, 5], None);
        p.set_ready(0, true, 0);
        p.set_ready(1, true, 0);
        assert!(p.set_ready(0, false, 100));
        assert_eq!(p.takeovers(1, 150, None), (vec![], None));
        assert_eq!(p.takeovers(1, 150, Some(300)), (vec![], Some(400)));
        assert_eq!(
            p.takeovers(1, 400, Some(300)),
            (vec!["m0".to_string()], None)
        );
        assert!(p.set_ready(0, true, 500));
        assert_eq!(p.takeovers(1, 900, Some(300)), (vec![], None));
    }

    #[test]
    fn a_suspect_modem_fails_over_at_once_until_usable_again() {
        let mut p = pool(&[5, 5], None);
        p.set_ready(0, true, 0);
        p.set_ready(1, true, 0);
        assert!(p.set_suspect(0, 100));
        assert!(!p.set_suspect(0, 120));
        assert_eq!(p.takeovers(1, 150, None), (vec![], None));
        assert_eq!(
            p.takeovers(1, 150, Some(60_000)),
            (vec!["m0".to_string()], None)
        );
        // The probe failed: still down, still suspect.
        p.set_ready(0, false, 200);
        assert_eq!(p.takeovers(1, 250, Some(60_000)).0, vec!["m0".to_string()]);
        assert!(p.set_ready(0, true, 300));
        assert_eq!(p.takeovers(1, 400, Some(60_000)), (vec![], None));
    }

    #[test]
    fn a_hold_counts_as_down_and_ends_by_itself() {
        let mut p = pool(&[5, 5], None);
        p.set_ready(0, true, 0);
        p.hold(0, 1_000, "no service", 10);
        assert_eq!(p.held_until(0, 10), Some(1_000));
        assert_eq!(
            p.takeovers(1, 600, Some(500)),
            (vec!["m0".to_string()], None)
        );
        assert!(p.set_ready(0, true, 1_000));
        assert_eq!(p.held_until(0, 1_000), None);
        assert_eq!(p.modems[0].down_since, None);
    }
}
