//! A broadcast's ETA: when would the last recipient get it, given the pool's limits, what the
//! modems already sent (their limiters), each modem's send latency and quiet hours in each
//! recipient's zone?
//!
//! It simulates the schedule instead of dividing by a rate, because the answer is dominated by
//! things a division misses: sliding windows already partly used, a per-day cap that stops a modem
//! for the rest of the day, and nights that differ per zone. To stay fast at 100,000 recipients
//! (well under a second, measured in `tests/benches/dispatch.rs`), recipients are grouped by
//! (home modem, zone): the simulation steps once per SMS part, but looks only at a handful of
//! groups per step and calls into the tz database only when a group's sendable stretch ends.
//! A poll of `broadcast --wait` runs it once a second, so the steps a modem takes on its own
//! groups skip the event heap ([`run_own`]); that is only a reordering of steps that share no
//! state, and `eta/oracle.rs` keeps the plain step-by-step version so a property test can
//! demand identical answers (no closed form of the sliding windows was attempted: jitter,
//! histories and per-zone nights make one easy to get subtly wrong).
//!
//! Simplifications, on purpose: sticky sender is modelled (a group homed on a modem waits for it;
//! home-less groups go to whichever modem is free first); failover, retries and replies competing
//! for slots are not; jitter is drawn as the runner would if the limiters carry it. So the ETA is a
//! lower bound under normal operation, which is what a "broadcast will take about …" line needs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::limits::{CountAt, RateLimiter};
use super::quiet::{next_sendable, quiet_starts_after, ts};
use super::{DAY, DispatchError, Millis, time_zone};
use crate::dispatch::settings::QuietHours;

#[cfg(test)]
mod oracle;

/// One modem for the estimate.
#[derive(Debug, Clone)]
pub struct EtaModem {
    /// Its limiter as it is now (history included); cloned, never changed.
    pub limiter: RateLimiter,
    /// Time one SMS part takes (`AT+CMGS` to `+CMGS:`).
    pub latency_ms: Millis,
    pub ready: bool,
}

/// Recipients sharing a home modem and a zone.
#[derive(Debug, Clone)]
pub struct EtaGroup {
    /// Home modem; `None` = any.
    pub modem: Option<usize>,
    pub tz: TimeZone,
    pub count: u64,
    /// SMS parts per message (≥ 1).
    pub parts: u32,
    /// None of the group goes out before this (ms; a broadcast sent at 19:00 in each member's
    /// zone has one group per zone, each due at its own 19:00). `Millis::MIN` = no constraint.
    pub not_before: Millis,
}

/// What the estimate needs.
#[derive(Debug, Clone)]
pub struct EtaRequest {
    pub now: Millis,
    pub modems: Vec<EtaModem>,
    pub groups: Vec<EtaGroup>,
    /// Quiet hours for this broadcast (after overrides); `None` = none.
    pub quiet: Option<QuietHours>,
    pub pool_limiter: Option<RateLimiter>,
    /// Give up simulating this far ahead (default [`EtaRequest::DEFAULT_HORIZON_MS`]).
    pub horizon_ms: Millis,
    /// Which instant of a part the limits count; the runner counts starts ([`CountAt::Start`]).
    pub count_at: CountAt,
}

impl EtaRequest {
    pub const DEFAULT_HORIZON_MS: Millis = 366 * DAY;
}

/// The estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eta {
    /// When the last part would be accepted; `None` if not everything can be sent (see below).
    pub finish: Option<Millis>,
    /// Messages the simulation sent.
    pub messages: u64,
    /// Messages that cannot go: their home modem is not ready, no modem is, or the horizon ran out.
    pub unsent: u64,
    /// Per modem, when its last part would be accepted.
    pub modem_finish: Vec<Option<Millis>>,
}

/// Builds groups from `(home modem, zone name)` per recipient; unknown zones fall back to
/// `default_zone`, as the daemon does for members whose zone is not known.
pub fn group_recipients<'a>(
    recipients: impl IntoIterator<Item = (Option<usize>, &'a str)>,
    default_zone: &str,
    parts: u32,
) -> Result<Vec<EtaGroup>, DispatchError> {
    let fallback = time_zone(default_zone)?;
    let mut zones: HashMap<&str, TimeZone> = HashMap::new();
    let mut counts: HashMap<(Option<usize>, &str), u64> = HashMap::new();
    for (modem, zone) in recipients {
        *counts.entry((modem, zone)).or_default() += 1;
    }
    let mut keys: Vec<_> = counts.into_iter().collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0)); // deterministic order
    let mut groups = Vec::with_capacity(keys.len());
    for ((modem, zone), count) in keys {
        let tz = zones
            .entry(zone)
            .or_insert_with(|| time_zone(zone).unwrap_or_else(|_| fallback.clone()))
            .clone();
        groups.push(EtaGroup {
            modem,
            tz,
            count,
            parts: parts.max(1),
            not_before: Millis::MIN,
        });
    }
    Ok(groups)
}

/// A group's progress and its current sendable stretch `[open_from, open_until)`.
struct GroupState {
    remaining_parts: u64,
    open_from: Millis,
    open_until: Millis,
}

fn to_ms(t: Timestamp) -> Millis {
    if t == Timestamp::MAX {
        Millis::MAX
    } else {
        t.as_millisecond()
    }
}

/// Moves the group's stretch forward so it ends after `t`.
fn refresh(g: &mut GroupState, tz: &TimeZone, quiet: Option<&QuietHours>, t: Millis) {
    if t < g.open_until {
        return;
    }
    match quiet {
        None => {
            g.open_from = Millis::MIN;
            g.open_until = Millis::MAX;
        }
        Some(q) => {
            let from = next_sendable(ts(t), tz, q);
            let until = quiet_starts_after(from, tz, q).unwrap_or(Timestamp::MAX);
            g.open_from = to_ms(from);
            g.open_until = to_ms(until).max(g.open_from.saturating_add(1));
        }
    }
}

/// What one modem's pass over its groups found at `t` (see [`scan`]).
struct Scan {
    pick: Option<usize>,
    any_left: bool,
    next_open: Millis,
}

/// Looks through `list` (in order) for a group with parts left that is open at `t`; else notes
/// the earliest opening. Refreshing a group's stretch for the same `t` twice changes nothing, so
/// a scan may be repeated when a batch hands an event back to the heap.
fn scan(list: &[usize], groups: &mut [GroupState], req: &EtaRequest, t: Millis) -> Scan {
    let mut s = Scan {
        pick: None,
        any_left: false,
        next_open: Millis::MAX,
    };
    for &gi in list {
        let (Some(g), Some(spec)) = (groups.get_mut(gi), req.groups.get(gi)) else {
            continue;
        };
        if g.remaining_parts == 0 {
            continue;
        }
        s.any_left = true;
        refresh(g, &spec.tz, req.quiet.as_ref(), t);
        // Not due yet: wait for its start; `refresh` then finds the stretch around it.
        let from = g.open_from.max(spec.not_before);
        if from <= t {
            s.pick = Some(gi);
            return s;
        }
        s.next_open = s.next_open.min(from);
    }
    s
}

/// Counts one part of group `gi` started by a modem at `t`; returns when it is done.
fn send_part(
    lim: &mut RateLimiter,
    pool: Option<&mut RateLimiter>,
    g: &mut GroupState,
    latency_ms: Millis,
    count_at: CountAt,
    t: Millis,
) -> Millis {
    g.remaining_parts -= 1;
    let done = t.saturating_add(latency_ms.max(0));
    match count_at {
        CountAt::Start => {
            lim.record(t);
            lim.jitter_after(done);
        }
        CountAt::Completion => lim.record(done),
    }
    if let Some(p) = pool {
        p.record(t);
    }
    done
}

/// Where a modem's run of sends on its own groups stopped (see [`estimate`]).
enum Batch {
    /// Its next event, to go back on the heap.
    Next(Millis),
    /// It never sends again (a zero cap, or nothing of its own left and no home-less groups).
    Stop,
}

/// Runs modem `m` alone from `t` for as long as every step picks one of its *own* groups (homed
/// on it), with no pool limiter: such steps read and change only this modem's limiter and its
/// own groups, which no other modem's step reads, so running them ahead of the other modems'
/// events gives the same result as interleaving them in time order. The first step that would
/// need shared state (no own group open, so the home-less ones would be looked at) or lies past
/// `end` is handed back to the heap unprocessed; [`scan`] tolerates the repeat.
#[allow(clippy::too_many_arguments)] // the simulation's state, split to borrow it apart
fn run_own(
    lim: &mut RateLimiter,
    groups: &mut [GroupState],
    own: &[usize],
    req: &EtaRequest,
    latency_ms: Millis,
    end: Millis,
    mut t: Millis,
    finish: &mut Option<Millis>,
) -> Batch {
    loop {
        if t > end {
            return Batch::Next(t);
        }
        let Some(at) = lim.next_allowed(t) else {
            return Batch::Stop;
        };
        if at > t {
            t = at;
            continue;
        }
        let s = scan(own, groups, req, t);
        let Some(g) = s.pick.and_then(|gi| groups.get_mut(gi)) else {
            return Batch::Next(t);
        };
        let done = send_part(lim, None, g, latency_ms, req.count_at, t);
        *finish = Some(done);
        t = done;
    }
}

/// Simulates the broadcast and returns its ETA.
///
/// An event-driven simulation (a heap of "modem m is free at t"), equal event for event to the
/// step-by-step one kept as the test oracle (`eta/oracle.rs`); runs of sends a modem makes on its
/// own groups are taken without the heap ([`run_own`]), which at 100,000 parts on two modems is
/// most of the work.
pub fn estimate(req: &EtaRequest) -> Eta {
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
    // Which groups each modem serves: its own (the first `own_len[m]`), then the home-less ones.
    let mut own_len = vec![0; n];
    let serves: Vec<Vec<usize>> = (0..n)
        .map(|m| {
            let own: Vec<usize> = (0..req.groups.len())
                .filter(|&i| req.groups.get(i).is_some_and(|g| g.modem == Some(m)))
                .collect();
            if let Some(l) = own_len.get_mut(m) {
                *l = own.len();
            }
            let any = (0..req.groups.len())
                .filter(|&i| req.groups.get(i).is_some_and(|g| g.modem.is_none()));
            own.into_iter().chain(any).collect()
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
        let (Some(lim), Some(modem), Some(mine), Some(finish)) = (
            limiters.get_mut(m),
            req.modems.get(m),
            serves.get(m),
            modem_finish.get_mut(m),
        ) else {
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
        let s = scan(mine, &mut groups, req, t);
        let Some(gi) = s.pick else {
            if s.any_left && s.next_open < Millis::MAX {
                heap.push(Reverse((s.next_open, m)));
            }
            continue;
        };
        let Some(g) = groups.get_mut(gi) else {
            continue;
        };
        let done = send_part(lim, pool.as_mut(), g, modem.latency_ms, req.count_at, t);
        *finish = Some(done);
        let own = mine
            .get(..own_len.get(m).copied().unwrap_or(0))
            .unwrap_or(&[]);
        let next = if pool.is_none() {
            run_own(
                lim,
                &mut groups,
                own,
                req,
                modem.latency_ms,
                end,
                done,
                finish,
            )
        } else {
            Batch::Next(done)
        };
        if let Batch::Next(at) = next {
            heap.push(Reverse((at, m)));
        }
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
    use super::*;
    use crate::dispatch::limits::Window;
    use crate::dispatch::settings::Limits;
    use crate::dispatch::{HOUR, MINUTE, SECOND};

    fn modem(per_minute: u32, latency_ms: Millis) -> EtaModem {
        EtaModem {
            limiter: RateLimiter::with_windows(&[Window::per_minute(per_minute)]),
            latency_ms,
            ready: true,
        }
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    fn req(
        modems: Vec<EtaModem>,
        groups: Vec<EtaGroup>,
        quiet: Option<QuietHours>,
        now: Millis,
    ) -> EtaRequest {
        EtaRequest {
            now,
            modems,
            groups,
            quiet,
            pool_limiter: None,
            horizon_ms: EtaRequest::DEFAULT_HORIZON_MS,
            count_at: CountAt::Start,
        }
    }

    fn group(modem: Option<usize>, tz: TimeZone, count: u64) -> EtaGroup {
        EtaGroup {
            modem,
            tz,
            count,
            parts: 1,
            not_before: Millis::MIN,
        }
    }

    #[test]
    fn rate_bound_without_quiet_hours() {
        // 10/min, 1 s latency, 100 messages: bursts of 10 each minute, last burst starts at 9 min.
        let r = req(
            vec![modem(10, SECOND)],
            vec![group(Some(0), utc(), 100)],
            None,
            0,
        );
        let e = estimate(&r);
        assert_eq!(e.messages, 100);
        assert_eq!(e.unsent, 0);
        // Bursts of 10 start every 60 s: the last part starts at 9·60 + 9 s, done a second later.
        assert_eq!(e.finish, Some((9 * 60 + 10) * SECOND));
        // Counting completions, a burst starts 60 s after the previous burst's first completion.
        let strict = EtaRequest {
            count_at: CountAt::Completion,
            ..r.clone()
        };
        assert_eq!(estimate(&strict).finish, Some((9 * 61 + 10) * SECOND));
    }

    /// A group due later (a broadcast at 19:00 in each member's zone) starts then, not now.
    #[test]
    fn a_group_waits_for_its_own_start() {
        let early = group(Some(0), utc(), 2);
        let late = EtaGroup {
            not_before: HOUR,
            ..group(Some(0), utc(), 2)
        };
        let r = req(vec![modem(600, SECOND)], vec![early, late], None, 0);
        let e = estimate(&r);
        assert_eq!(e.unsent, 0);
        // Two sends from 0, then two from the hour: the last ends one latency after HOUR + 1 s.
        assert_eq!(e.finish, Some(HOUR + 2 * SECOND));
    }

    #[test]
    fn latency_bound_when_the_limit_is_generous() {
        let r = req(
            vec![modem(600, 5 * SECOND)],
            vec![group(None, utc(), 120)],
            None,
            0,
        );
        assert_eq!(estimate(&r).finish, Some(600 * SECOND));
    }

    #[test]
    fn modems_share_home_less_recipients_and_keep_their_own() {
        let r = req(
            vec![modem(600, SECOND), modem(600, SECOND)],
            vec![group(None, utc(), 100), group(Some(1), utc(), 10)],
            None,
            0,
        );
        let e = estimate(&r);
        assert_eq!(e.messages, 110);
        assert_eq!(e.finish, Some(55 * SECOND));
    }

    #[test]
    fn quiet_hours_push_the_night_out() {
        // Start at 20:59:00 UTC with 10 msgs at 1/min: 1 before 21:00, the rest from 08:00.
        let now = "2024-06-05T20:59:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond();
        let r = req(
            vec![modem(1, SECOND)],
            vec![group(Some(0), utc(), 10)],
            Some(QuietHours::DEFAULT),
            now,
        );
        let e = estimate(&r);
        let eight = "2024-06-06T08:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond();
        // Then 1/min: starts at 08:00 + k·60 s, k = 0..8.
        assert_eq!(e.finish, Some(eight + (8 * 60 + 1) * SECOND));
    }

    #[test]
    fn zones_in_daylight_go_first() {
        // At 22:00 Berlin (20:00 UTC) Chicago is at 15:00: Chicago recipients go now, Berlin waits.
        let now = "2024-06-05T20:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond();
        let r = req(
            vec![modem(60, SECOND)],
            vec![
                group(
                    Some(0),
                    crate::dispatch::time_zone("Europe/Berlin").unwrap(),
                    5,
                ),
                group(
                    Some(0),
                    crate::dispatch::time_zone("America/Chicago").unwrap(),
                    5,
                ),
            ],
            Some(QuietHours::DEFAULT),
            now,
        );
        let e = estimate(&r);
        let berlin_eight = "2024-06-06T06:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond();
        assert_eq!(e.finish, Some(berlin_eight + 5 * SECOND));
        assert_eq!(e.messages, 10);
    }

    #[test]
    fn history_and_daily_caps_count() {
        let limits = Limits {
            per_minute: 10,
            per_hour: 100,
            per_day: 100,
        };
        let mut lim = RateLimiter::new(&limits);
        lim.restore((0..100).map(|i| i * SECOND)); // the day's budget is spent
        let r = req(
            vec![EtaModem {
                limiter: lim,
                latency_ms: SECOND,
                ready: true,
            }],
            vec![group(Some(0), utc(), 1)],
            None,
            100 * SECOND,
        );
        assert_eq!(estimate(&r).finish, Some(DAY + SECOND));
    }

    #[test]
    fn blocked_groups_are_reported_not_hidden() {
        let mut down = modem(10, SECOND);
        down.ready = false;
        let r = req(
            vec![down, modem(10, SECOND)],
            vec![group(Some(0), utc(), 7), group(Some(1), utc(), 3)],
            None,
            0,
        );
        let e = estimate(&r);
        assert_eq!(e.finish, None);
        assert_eq!(e.unsent, 7);
        assert_eq!(e.messages, 3);
        let mut short = req(
            vec![modem(1, SECOND)],
            vec![group(Some(0), utc(), 100)],
            None,
            0,
        );
        short.horizon_ms = 10 * MINUTE;
        assert!(estimate(&short).unsent > 80);
    }

    #[test]
    fn multipart_counts_parts_and_pool_cap_binds() {
        let mut g = group(None, utc(), 10);
        g.parts = 3;
        let mut r = req(
            vec![modem(600, SECOND), modem(600, SECOND)],
            vec![g],
            None,
            0,
        );
        assert_eq!(estimate(&r).finish, Some(15 * SECOND));
        r.pool_limiter = Some(RateLimiter::with_windows(&[Window::per_minute(10)]));
        let e = estimate(&r);
        assert_eq!(e.messages, 10);
        assert!(e.finish.unwrap() >= 2 * MINUTE, "{:?}", e.finish);
        let _ = HOUR;
    }

    #[test]
    fn grouping_by_zone_and_unknown_zones() {
        let recips = vec![
            (Some(0), "Europe/Berlin"),
            (Some(0), "Europe/Berlin"),
            (None, "Nowhere/Land"),
            (Some(1), "UTC"),
        ];
        let g = group_recipients(recips, "America/Chicago", 1).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g.iter().map(|x| x.count).sum::<u64>(), 4);
        let unknown = g.iter().find(|x| x.modem.is_none()).unwrap();
        assert_eq!(unknown.tz.iana_name(), Some("America/Chicago"));
        assert!(group_recipients(Vec::<(Option<usize>, &str)>::new(), "Bad/Zone", 1).is_err());
    }
}
