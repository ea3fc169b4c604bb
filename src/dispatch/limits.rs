//! Sliding-window send limits: per modem/SIM (`per_minute`, `per_hour`, `per_day`), for the whole
//! pool (`pool_per_minute`) and per recipient (`per_recipient_per_day`).
//!
//! The guarantee ("rate limits are never exceeded, on any modem, over any window, also across
//! restarts"; docs/dispatch.md, "Rate limits") is about *every* window of the given length, not aligned buckets: a bucketed
//! limiter lets 2L sends straddle a bucket edge. So the limiter keeps the recent send times
//! themselves and answers "earliest instant a send may start" exactly: with sends sorted and a cap
//! of `L` per `W`, a new send at `t` keeps every window legal iff the `L`-th most recent send is at
//! or before `t - W`. Only the last `max(L)` times (and none older than the longest window) can
//! ever decide that, which bounds memory: a per-day cap of 1,000 is 1,000 `i64`s.
//!
//! Which instant counts ([`CountAt`]): a part's exchange runs from `AT+CMGS` (start) to `+CMGS:`
//! (completion, 2–5 s later on real modems). The default counts *starts*: the runner records each
//! part's start in the store's `send_log` (`record_part_sent(.., now = start)`) and in the
//! limiter, so the live limiter and the one restored from `Store::send_times_since` at start-up
//! see the same instants, and a modem reaches its full `L` per `W`. [`CountAt::Completion`] counts
//! completions and requires each start to be `W` after the completion `L` sends back, which holds
//! the limit over every instant of every exchange whatever the latency, at the price of one
//! latency per window (about 5 % at 3 s per part and a per-minute cap). Each SMS *part* is one
//! send: a 3-part message uses three slots. Records are expected in time order (a late one is
//! inserted in place, but then the guarantee only holds for starts after it).
//!
//! Jitter (`dispatch.jitter_ms`) is drawn from a seeded [`XorShift64`] after each send (at the
//! record, or when the runner calls [`RateLimiter::jitter_after`] at a part's completion) and only
//! ever delays the next start, so it cannot break a limit. A governor-style GCRA (the `governor` crate)
//! was not used: it is a smooth-rate approximation keyed on the process clock, and cannot be seeded
//! with the exact history from the database.

use std::collections::{HashMap, VecDeque};

use super::{DAY, HOUR, MINUTE, Millis, XorShift64};
use crate::dispatch::settings::Limits;

/// Which instant of a part's `AT+CMGS` exchange the limits count (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CountAt {
    /// The start (the default; what the runner writes to `send_log`).
    #[default]
    Start,
    /// The completion: stricter, one latency per window slower.
    Completion,
}

/// At most `cap` sends in any window of `len_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub len_ms: Millis,
    pub cap: u32,
}

impl Window {
    pub fn per_minute(cap: u32) -> Window {
        Window {
            len_ms: MINUTE,
            cap,
        }
    }
    pub fn per_hour(cap: u32) -> Window {
        Window { len_ms: HOUR, cap }
    }
    pub fn per_day(cap: u32) -> Window {
        Window { len_ms: DAY, cap }
    }
}

/// Earliest `t >= base` at which one more send keeps `sends` (sorted, all `<= base`) within
/// `w.cap` per `w.len_ms`, or `None` if the cap is zero.
fn window_allows(sends: &VecDeque<Millis>, w: &Window, base: Millis) -> Option<Millis> {
    if w.cap == 0 {
        return None;
    }
    // After the new send, the window ending at t may hold at most cap - 1 old sends, so the
    // cap-th most recent must be at or before t - len.
    let k = w.cap as usize;
    match sends.len().checked_sub(k).and_then(|i| sends.get(i)) {
        Some(&s) => Some(base.max(s.saturating_add(w.len_ms))),
        None => Some(base),
    }
}

/// A limiter over one or more sliding windows, for one modem (or the pool).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    windows: Vec<Window>,
    /// Recent send times, ascending.
    sends: VecDeque<Millis>,
    /// How many times can matter: the largest cap.
    keep: usize,
    /// The longest window: older times can never matter.
    longest: Millis,
    jitter_ms: u64,
    rng: XorShift64,
    /// Jitter drawn at the last record: no start before this.
    jitter_until: Millis,
}

impl RateLimiter {
    /// A per-modem limiter from the modem's `[[modem]]` limits.
    pub fn new(limits: &Limits) -> Self {
        Self::with_windows(&[
            Window::per_minute(limits.per_minute),
            Window::per_hour(limits.per_hour),
            Window::per_day(limits.per_day),
        ])
    }

    /// A limiter over arbitrary windows (the pool cap is one per-minute window). Windows with a
    /// non-positive length are ignored.
    pub fn with_windows(windows: &[Window]) -> Self {
        let windows: Vec<Window> = windows.iter().copied().filter(|w| w.len_ms > 0).collect();
        RateLimiter {
            keep: windows.iter().map(|w| w.cap as usize).max().unwrap_or(0),
            longest: windows.iter().map(|w| w.len_ms).max().unwrap_or(0),
            windows,
            sends: VecDeque::new(),
            jitter_ms: 0,
            rng: XorShift64::new(1),
            jitter_until: Millis::MIN,
        }
    }

    /// Adds up to `jitter_ms` of random delay after each recorded send.
    pub fn with_jitter(mut self, jitter_ms: u64, rng: XorShift64) -> Self {
        self.jitter_ms = jitter_ms;
        self.rng = rng;
        self
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Seeds the history, e.g. from `Store::send_times_since(modem, now - DAY)` at start-up, so a
    /// restart cannot reset a budget. Order does not matter.
    pub fn restore(&mut self, times: impl IntoIterator<Item = Millis>) {
        let mut all: Vec<Millis> = self.sends.drain(..).chain(times).collect();
        all.sort_unstable();
        self.sends = all.into();
        self.prune();
    }

    /// Replaces the history with `times` (the SIM behind the limiter changed: its own history
    /// counts from now on, not the one of the SIM that was there before).
    pub fn replace_history(&mut self, times: impl IntoIterator<Item = Millis>) {
        self.sends.clear();
        self.restore(times);
    }

    /// The time of the latest recorded send.
    pub fn last(&self) -> Option<Millis> {
        self.sends.back().copied()
    }

    /// Earliest instant `>= now` at which one send (one SMS part) may start; `None` if a cap of
    /// zero forbids sending at all. The runner sends one part per claim, so one part is all it
    /// ever asks for.
    pub fn next_allowed(&self, now: Millis) -> Option<Millis> {
        let mut t = now.max(self.jitter_until);
        if let Some(last) = self.last() {
            t = t.max(last);
        }
        for w in &self.windows {
            t = t.max(window_allows(&self.sends, w, t)?);
        }
        Some(t)
    }

    /// Counts a send (one part) at `at` and draws the jitter before the next one.
    pub fn record(&mut self, at: Millis) {
        match self.sends.back() {
            Some(&last) if at < last => {
                let i = self.sends.partition_point(|&s| s <= at);
                self.sends.insert(i, at);
            }
            _ => self.sends.push_back(at),
        }
        self.jitter_after(at);
        self.prune();
    }

    /// Draws the random pause that must follow `at` before the next start (no-op without
    /// jitter). [`RateLimiter::record`] calls it; a runner counting starts calls it again at the
    /// part's completion so the pause follows the exchange rather than overlapping it.
    pub fn jitter_after(&mut self, at: Millis) {
        if self.jitter_ms > 0 {
            let j = Millis::try_from(self.rng.up_to(self.jitter_ms)).unwrap_or(Millis::MAX);
            self.jitter_until = self.jitter_until.max(at.saturating_add(j));
        }
    }

    /// Sends recorded in `(now - len_ms, now]`.
    pub fn count_in(&self, now: Millis, len_ms: Millis) -> usize {
        let from = now.saturating_sub(len_ms);
        let lo = self.sends.partition_point(|&s| s <= from);
        let hi = self.sends.partition_point(|&s| s <= now);
        hi.saturating_sub(lo)
    }

    /// Sends remembered (bounded by the largest cap).
    pub fn remembered(&self) -> usize {
        self.sends.len()
    }

    fn prune(&mut self) {
        let Some(last) = self.last() else { return };
        let horizon = last.saturating_sub(self.longest);
        while self.sends.front().is_some_and(|&s| s <= horizon) || self.sends.len() > self.keep {
            self.sends.pop_front();
        }
    }
}

/// At most `cap` messages to one number in any 24 hours (`dispatch.per_recipient_per_day`).
///
/// Counts *messages*, not parts, like the store's `messages_to_since`. Memory holds only numbers
/// texted in the last day, at most `cap` times each; call [`RecipientLimiter::prune`] now and then.
#[derive(Debug, Clone)]
pub struct RecipientLimiter {
    cap: u32,
    sends: HashMap<String, VecDeque<Millis>>,
}

impl RecipientLimiter {
    pub fn new(cap: u32) -> Self {
        RecipientLimiter {
            cap,
            sends: HashMap::new(),
        }
    }

    fn window(&self) -> Window {
        Window::per_day(self.cap)
    }

    /// Earliest instant `>= now` a message to `to` may start; `None` if the cap is zero.
    pub fn next_allowed(&self, to: &str, now: Millis) -> Option<Millis> {
        match self.sends.get(to) {
            None => window_allows(&VecDeque::new(), &self.window(), now),
            Some(q) => {
                let base = q.back().map_or(now, |&l| now.max(l));
                window_allows(q, &self.window(), base)
            }
        }
    }

    pub fn record(&mut self, to: &str, at: Millis) {
        let keep = self.cap as usize;
        let q = self.sends.entry(to.to_string()).or_default();
        let i = q.partition_point(|&s| s <= at);
        q.insert(i, at);
        while q.len() > keep {
            q.pop_front();
        }
    }

    /// Seeds a number's history after a restart when only a count is known (the store's
    /// `messages_to_since(number, now - DAY)`): the sends are assumed to have happened at `at`,
    /// which can only make the limiter stricter than the truth, never looser.
    pub fn restore_count(&mut self, to: &str, count: u32, at: Millis) {
        for _ in 0..count.min(self.cap) {
            self.record(to, at);
        }
    }

    /// Forgets numbers with no send in the day before `now`.
    pub fn prune(&mut self, now: Millis) {
        let horizon = now.saturating_sub(DAY);
        self.sends
            .retain(|_, q| q.back().is_some_and(|&last| last > horizon));
    }

    /// Numbers remembered.
    pub fn len(&self) -> usize {
        self.sends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Millis = 1_000;

    /// Sorted `times` never put more than `cap` into any half-open window of `len`.
    fn violations(times: &[Millis], w: &Window) -> usize {
        let cap = w.cap as usize;
        let mut sorted = times.to_vec();
        sorted.sort_unstable();
        (0..sorted.len())
            .filter(|&i| {
                sorted
                    .get(i + cap)
                    .is_some_and(|&later| later - sorted[i] < w.len_ms)
            })
            .count()
    }

    #[test]
    fn burst_then_waits_for_the_oldest_to_leave_the_window() {
        let mut l = RateLimiter::with_windows(&[Window::per_minute(3)]);
        for t in [0, S, 2 * S] {
            assert_eq!(l.next_allowed(t), Some(t));
            l.record(t);
        }
        assert_eq!(l.next_allowed(3 * S), Some(60 * S));
        l.record(60 * S);
        assert_eq!(l.next_allowed(60 * S), Some(61 * S));
        assert_ne!(l.next_allowed(60 * S + 999), Some(60 * S + 999));
        assert_eq!(l.next_allowed(61 * S), Some(61 * S));
    }

    #[test]
    fn not_aligned_buckets_a_window_straddling_the_minute_counts() {
        // Bucketed limiters allow 3 at 0:59 and 3 more at 1:00. We must not.
        let mut l = RateLimiter::with_windows(&[Window::per_minute(3)]);
        for t in [57 * S, 58 * S, 59 * S] {
            l.record(t);
        }
        assert_eq!(l.next_allowed(60 * S), Some(117 * S));
    }

    #[test]
    fn every_window_of_the_config_applies() {
        let limits = Limits {
            per_minute: 2,
            per_hour: 3,
            per_day: 4,
        };
        let mut l = RateLimiter::new(&limits);
        let mut t = 0;
        let mut starts = vec![];
        for _ in 0..6 {
            t = l.next_allowed(t).unwrap();
            starts.push(t);
            l.record(t);
        }
        assert_eq!(
            starts,
            vec![0, 0, MINUTE, HOUR, DAY, DAY],
            "2/min, then the hour cap 3, then the day cap 4 (both sends at 0 leave the day at DAY)"
        );
    }

    #[test]
    fn restore_gives_the_same_answers_as_the_live_limiter() {
        let limits = Limits::DEFAULT;
        let mut live = RateLimiter::new(&limits);
        let mut t = 5 * S;
        let mut log = vec![];
        for i in 0..300 {
            t = live.next_allowed(t + (i % 7) * S).unwrap() + 1_500;
            live.record(t);
            log.push(t);
        }
        let mut restarted = RateLimiter::new(&limits);
        log.reverse(); // order from the database does not matter
        restarted.restore(log);
        for probe in [t, t + MINUTE, t + HOUR, t + 3 * HOUR] {
            assert_eq!(restarted.next_allowed(probe), live.next_allowed(probe));
        }
        assert!(restarted.remembered() <= limits.per_day as usize);
    }

    #[test]
    fn memory_is_bounded_by_the_largest_cap_and_the_longest_window() {
        let mut l = RateLimiter::new(&Limits {
            per_minute: 600,
            per_hour: 10_000,
            per_day: 1_000,
        });
        let mut t = 0;
        for _ in 0..5_000 {
            t = l.next_allowed(t).unwrap();
            l.record(t);
        }
        assert!(l.remembered() <= 10_000);
        l.record(t + 2 * DAY);
        assert_eq!(l.remembered(), 1);
    }

    #[test]
    fn zero_cap_never_allows() {
        let l = RateLimiter::with_windows(&[Window::per_minute(0)]);
        assert_eq!(l.next_allowed(0), None);
        let l = RateLimiter::with_windows(&[Window::per_minute(1)]);
        assert_eq!(l.next_allowed(0), Some(0));
    }

    #[test]
    fn jitter_only_delays_and_is_reproducible() {
        let make = || {
            RateLimiter::with_windows(&[Window::per_minute(100)])
                .with_jitter(2_000, XorShift64::new(9))
        };
        let (mut a, mut b) = (make(), make());
        let (mut ta, mut tb) = (0, 0);
        let mut gaps = vec![];
        for _ in 0..50 {
            let na = a.next_allowed(ta).unwrap();
            let nb = b.next_allowed(tb).unwrap();
            assert_eq!(na, nb);
            assert!(na >= ta && na <= ta + 2_000);
            gaps.push(na - ta);
            a.record(na);
            b.record(nb);
            ta = na;
            tb = nb;
        }
        assert!(gaps.iter().any(|&g| g > 0) && gaps.iter().any(|&g| g < 1_000));
    }

    #[test]
    fn count_in_counts_the_half_open_window() {
        let mut l = RateLimiter::with_windows(&[Window::per_hour(100)]);
        for t in [0, 10, 20, 30] {
            l.record(t);
        }
        assert_eq!(l.count_in(30, 20), 2); // (10, 30]
        assert_eq!(l.count_in(30, 31), 4);
        assert_eq!(l.count_in(5, 100), 1);
    }

    #[test]
    fn late_records_are_kept_in_order() {
        let mut l = RateLimiter::with_windows(&[Window::per_minute(2)]);
        l.record(30 * S);
        l.record(10 * S);
        assert_eq!(l.last(), Some(30 * S));
        assert_eq!(l.next_allowed(31 * S), Some(70 * S));
    }

    #[test]
    fn recipient_cap_per_day_and_pruning() {
        let mut r = RecipientLimiter::new(2);
        assert_eq!(r.next_allowed("+1", 0), Some(0));
        r.record("+1", 0);
        r.record("+1", HOUR);
        assert_eq!(r.next_allowed("+1", 2 * HOUR), Some(DAY));
        assert_eq!(r.next_allowed("+2", 2 * HOUR), Some(2 * HOUR));
        r.prune(DAY + HOUR);
        assert_eq!(r.len(), 0);
        assert!(r.is_empty());
        let mut z = RecipientLimiter::new(0);
        assert_eq!(z.next_allowed("+1", 0), None);
        z.restore_count("+1", 5, 0);
        assert_eq!(z.len(), 0);
    }

    #[test]
    fn recipient_restore_from_a_count_is_conservative() {
        let mut r = RecipientLimiter::new(3);
        r.restore_count("+1", 3, 10 * HOUR);
        assert_eq!(r.next_allowed("+1", 10 * HOUR), Some(34 * HOUR));
        let mut r = RecipientLimiter::new(3);
        r.restore_count("+1", 2, 10 * HOUR);
        assert_eq!(r.next_allowed("+1", 10 * HOUR), Some(10 * HOUR));
    }

    fn arb_windows() -> impl Strategy<Value = Vec<Window>> {
        prop::collection::vec(
            (1i64..20_000, 0u32..12).prop_map(|(len_ms, cap)| Window { len_ms, cap }),
            1..4,
        )
    }

    proptest! {
        /// The headline guarantee: whatever the limits, request times, send latencies, part counts
        /// and jitter, the produced schedule never has more than L sends in ANY window of length W
        /// (checked on start times and on the recorded completion times).
        #[test]
        fn never_more_than_cap_in_any_window(
            windows in arb_windows(),
            requests in prop::collection::vec((0i64..5_000, 0i64..800, 1u32..4), 1..150),
            jitter in 0u64..500,
            seed in any::<u64>(),
        ) {
            let mut l = RateLimiter::with_windows(&windows).with_jitter(jitter, XorShift64::new(seed));
            let mut clock = 0;
            let mut starts = vec![];
            let mut ends = vec![];
            for (gap, latency, parts) in requests {
                clock += gap;
                for _ in 0..parts {
                    let Some(t) = l.next_allowed(clock) else { break };
                    prop_assert!(t >= clock);
                    starts.push(t);
                    clock = t + latency;
                    ends.push(clock);
                    l.record(clock);
                }
            }
            for w in &windows {
                prop_assert_eq!(violations(&starts, w), 0, "starts {:?} {:?}", w, starts);
                prop_assert_eq!(violations(&ends, w), 0, "ends {:?} {:?}", w, ends);
            }
        }

        /// Whenever a send would be allowed, the history really has room (the limiter is not
        /// needlessly strict): one millisecond earlier than the answer is refused unless the answer
        /// is `now` itself.
        #[test]
        fn next_allowed_is_the_earliest(
            windows in arb_windows(),
            gaps in prop::collection::vec(0i64..3_000, 1..60),
        ) {
            let mut l = RateLimiter::with_windows(&windows);
            let mut clock = 0;
            for gap in gaps {
                clock += gap;
                let Some(t) = l.next_allowed(clock) else { break };
                if t > clock {
                    // Earlier by 1 ms would break some window.
                    let mut trial: Vec<Millis> = l.sends.iter().copied().collect();
                    trial.push(t - 1);
                    prop_assert!(windows.iter().any(|w| violations(&trial, w) > 0));
                }
                l.record(t);
                clock = t;
            }
        }

        #[test]
        fn recipient_cap_holds_in_any_day(
            cap in 1u32..5,
            requests in prop::collection::vec((0i64..(6 * HOUR), 0usize..3), 1..80),
        ) {
            let mut r = RecipientLimiter::new(cap);
            let numbers = ["+1", "+2", "+3"];
            let mut clock = 0;
            let mut times: HashMap<&str, Vec<Millis>> = HashMap::new();
            for (gap, who) in requests {
                clock += gap;
                let to = numbers[who];
                let t = r.next_allowed(to, clock).unwrap();
                r.record(to, t);
                times.entry(to).or_default().push(t);
                r.prune(clock);
            }
            for ts in times.values() {
                prop_assert_eq!(violations(ts, &Window::per_day(cap)), 0);
            }
        }
    }
}
