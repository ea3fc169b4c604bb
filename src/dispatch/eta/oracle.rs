//! The test oracle of [`super::estimate`]: the step-by-step simulation as it stood before the
//! per-modem batching (one heap event per SMS part, every group scanned at every step), kept
//! verbatim so a property test can demand identical `Eta`s on random requests. Test-only: it is
//! compiled under `cfg(test)` and must not be "improved" — its value is being the old behaviour.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Eta, EtaRequest, GroupState, refresh};
use crate::dispatch::Millis;
use crate::dispatch::limits::{CountAt, RateLimiter};

/// The step-by-step simulation as it was before the jump: one heap event per part.
pub(super) fn estimate_stepwise(req: &EtaRequest) -> Eta {
    let n = req.modems.len();
    let mut limiters: Vec<RateLimiter> = req.modems.iter().map(|m| m.limiter.clone()).collect();
    let mut pool = req.pool_limiter.clone();
    let mut groups: Vec<GroupState> = req
        .groups
        .iter()
        .map(|g| GroupState {
            remaining_parts: g.count.saturating_mul(u64::from(g.parts.max(1))),
            open_from: Millis::MIN,
            open_until: Millis::MIN,
        })
        .collect();
    // Which groups each modem serves: its own, then the home-less ones.
    let serves: Vec<Vec<usize>> = (0..n)
        .map(|m| {
            let own = req
                .groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.modem == Some(m));
            let any = req
                .groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.modem.is_none());
            own.chain(any).map(|(i, _)| i).collect()
        })
        .collect();
    let end = req.now.saturating_add(req.horizon_ms);
    let mut heap: BinaryHeap<Reverse<(Millis, usize)>> = (0..n)
        .filter(|&m| req.modems.get(m).is_some_and(|x| x.ready))
        .map(|m| Reverse((req.now, m)))
        .collect();
    let mut modem_finish: Vec<Option<Millis>> = vec![None; n];
    while let Some(Reverse((t, m))) = heap.pop() {
        if t > end {
            break;
        }
        let (Some(lim), Some(modem), Some(mine)) =
            (limiters.get_mut(m), req.modems.get(m), serves.get(m))
        else {
            continue;
        };
        let mut at = match lim.next_allowed(t) {
            Some(a) => a,
            None => continue, // a zero cap: this modem never sends
        };
        if let Some(p) = &pool {
            match p.next_allowed(at) {
                Some(a) => at = a,
                None => break,
            }
        }
        if at > t {
            heap.push(Reverse((at, m)));
            continue;
        }
        // A group of this modem's that is open now, else the earliest opening.
        let mut pick = None;
        let mut next_open = Millis::MAX;
        let mut any_left = false;
        for &gi in mine {
            let (Some(g), Some(spec)) = (groups.get_mut(gi), req.groups.get(gi)) else {
                continue;
            };
            if g.remaining_parts == 0 {
                continue;
            }
            any_left = true;
            refresh(g, &spec.tz, req.quiet.as_ref(), t);
            // Not due yet: wait for its start; `refresh` then finds the stretch around it.
            let from = g.open_from.max(spec.not_before);
            if from <= t {
                pick = Some(gi);
                break;
            }
            next_open = next_open.min(from);
        }
        let Some(gi) = pick else {
            if any_left && next_open < Millis::MAX {
                heap.push(Reverse((next_open, m)));
            }
            continue;
        };
        if let Some(g) = groups.get_mut(gi) {
            g.remaining_parts -= 1;
        }
        let done = t.saturating_add(modem.latency_ms.max(0));
        match req.count_at {
            CountAt::Start => {
                lim.record(t);
                lim.jitter_after(done);
            }
            CountAt::Completion => lim.record(done),
        }
        if let Some(p) = &mut pool {
            p.record(t);
        }
        modem_finish[m] = Some(done);
        heap.push(Reverse((done, m)));
    }
    let mut messages = 0;
    let mut unsent = 0;
    for (g, spec) in groups.iter().zip(&req.groups) {
        let parts = u64::from(spec.parts.max(1));
        let left = g.remaining_parts.div_ceil(parts);
        unsent += left;
        messages += spec.count - left.min(spec.count);
    }
    Eta {
        finish: if unsent == 0 {
            Some(
                modem_finish
                    .iter()
                    .flatten()
                    .copied()
                    .max()
                    .unwrap_or(req.now),
            )
        } else {
            None
        },
        messages,
        unsent,
        modem_finish,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{EtaGroup, EtaModem, EtaRequest, estimate};
    use super::estimate_stepwise;
    use crate::dispatch::limits::{CountAt, RateLimiter, Window};
    use crate::dispatch::settings::QuietHours;
    use crate::dispatch::{DAY, HOUR, MINUTE, Millis, XorShift64, time_zone};

    const ZONES: [&str; 4] = ["UTC", "Europe/Berlin", "America/Chicago", "Asia/Kolkata"];

    fn modem() -> impl Strategy<Value = EtaModem> {
        (
            (1u32..8, 0u32..40, 0u32..120),
            0i64..4_000,
            prop::bool::weighted(0.85),
            (0u64..3_000, any::<u64>()),
            prop::collection::vec(0i64..DAY, 0..30),
        )
            .prop_map(
                |((min, hour, day), latency_ms, ready, (jitter, seed), hist)| {
                    // Caps that bind within a test's few hundred parts: a minute's, an hour's, a day's.
                    let hour = min + hour;
                    let day = hour + day;
                    let limiter = RateLimiter::with_windows(&[
                        Window::per_minute(min),
                        Window::per_hour(hour),
                        Window::per_day(day),
                    ]);
                    let mut limiter = if jitter > 0 {
                        limiter.with_jitter(jitter, XorShift64::new(seed | 1))
                    } else {
                        limiter
                    };
                    // History from the day before "now" (now = DAY below).
                    limiter.restore(hist);
                    EtaModem {
                        limiter,
                        latency_ms,
                        ready,
                    }
                },
            )
    }

    fn request() -> impl Strategy<Value = EtaRequest> {
        (
            prop::collection::vec(modem(), 1..4),
            prop::collection::vec(
                (
                    prop::option::weighted(0.7, 0usize..3),
                    0usize..ZONES.len(),
                    0u64..150,
                    1u32..4,
                    prop::option::weighted(0.3, 0i64..2 * DAY),
                ),
                1..6,
            ),
            prop::option::weighted(0.5, ((0u8..24, 0u8..60), (0u8..24, 0u8..60))),
            prop::option::weighted(0.3, 1u32..30),
            prop::option::weighted(0.3, 0i64..3 * DAY),
            any::<bool>(),
            0i64..DAY,
        )
            .prop_map(
                |(modems, groups, quiet, pool, horizon, completion, offset)| {
                    let n = modems.len();
                    EtaRequest {
                        now: DAY + offset,
                        groups: groups
                            .into_iter()
                            .map(|(modem, zone, count, parts, nb)| EtaGroup {
                                // Sometimes a home that is not a modem: the group is never served.
                                modem: modem.map(|m| m % (n + 1)),
                                tz: time_zone(ZONES[zone]).unwrap(),
                                count,
                                parts,
                                not_before: nb.map_or(Millis::MIN, |x| DAY + x),
                            })
                            .collect(),
                        modems,
                        quiet: quiet.map(|(start, end)| QuietHours { start, end }),
                        pool_limiter: pool
                            .map(|cap| RateLimiter::with_windows(&[Window::per_minute(cap)])),
                        horizon_ms: horizon.unwrap_or(EtaRequest::DEFAULT_HORIZON_MS),
                        count_at: if completion {
                            CountAt::Completion
                        } else {
                            CountAt::Start
                        },
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The batched simulation answers exactly what the step-by-step one did, on random
        /// limits, histories, jitter, latencies, quiet hours, zones, homes, start times, pool caps
        /// and horizons.
        #[test]
        fn batched_estimate_equals_the_step_by_step_one(req in request()) {
            prop_assert_eq!(estimate(&req), estimate_stepwise(&req));
        }
    }

    /// The case the batching is for (two modems, each with its own recipients, the default
    /// limits, long enough for day caps to bind), compared at a size random cases do not reach.
    #[test]
    fn a_large_two_modem_broadcast_is_unchanged() {
        let limits = crate::dispatch::settings::Limits {
            per_minute: 6,
            per_hour: 200,
            per_day: 1000,
        };
        let modems = (0..2)
            .map(|_| EtaModem {
                limiter: RateLimiter::new(&limits),
                latency_ms: 3_000,
                ready: true,
            })
            .collect();
        let groups = (0..2)
            .flat_map(|m| {
                ZONES.iter().map(move |z| EtaGroup {
                    modem: Some(m),
                    tz: time_zone(z).unwrap(),
                    count: 2_500,
                    parts: 1 + m as u32,
                    not_before: Millis::MIN,
                })
            })
            .collect();
        let mut req = EtaRequest {
            now: 5 * HOUR + 7 * MINUTE,
            modems,
            groups,
            quiet: Some(QuietHours::DEFAULT),
            pool_limiter: None,
            horizon_ms: EtaRequest::DEFAULT_HORIZON_MS,
            count_at: CountAt::Start,
        };
        let e = estimate(&req);
        assert_eq!(e, estimate_stepwise(&req));
        assert_eq!(e.unsent, 0);
        req.quiet = None;
        assert_eq!(estimate(&req), estimate_stepwise(&req));
    }
}
