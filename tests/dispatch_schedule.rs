//! Deterministic pool simulation of the production scheduling model on a virtual clock: each
//! modem's limiter (`dispatch::RateLimiter`, built and driven as the runner's send loop does:
//! wait for the next allowed instant, count the part at its start, draw the jitter after the
//! exchange) and the one claim query (`Store::claim_next_routed` on a real SQLite store) that picks
//! the next row, with 8 modems, a per-minute cap each, a simulated `AT+CMGS` latency, a
//! 2,000-recipient broadcast and replies arriving meanwhile. Homes come from
//! `dispatch::assign_homes`, as for imported members.
//!
//! It checks the guarantees end to end, from the store's own `send_log`: no limit is exceeded over
//! any window on any modem; a reply takes the first slot that opens on its modem after it arrives,
//! however large the bulk backlog; sticky sender and failover (the takeover list is computed as
//! the runner's pool state does, which `dispatch/runner/pool.rs` tests on its own); and
//! throughput close to the theoretical maximum (printed). The async loops themselves, on real
//! modem actors, are `tests/dispatch_runner.rs`.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use gsmgate::config::Limits;
use gsmgate::dispatch::{
    HomeCandidate, MINUTE, Millis, RateLimiter, SECOND, XorShift64, assign_homes,
};
use gsmgate::model::MessageKind;
use gsmgate::store::{ClaimRoute, NewOutbox, Store};

struct Scenario {
    modems: usize,
    per_minute: u32,
    /// Base latency of each modem.
    latency: Vec<Millis>,
    /// Extra random latency per part, up to this.
    latency_spread: Millis,
    jitter_ms: u64,
    failover_after: Option<Millis>,
    move_home: bool,
    recipients: usize,
    /// (arrival time, member index) of replies during the broadcast.
    replies: Vec<(Millis, usize)>,
    /// (time, modem) modems going down for good.
    downs: Vec<(Millis, usize)>,
}

#[derive(Debug, Clone)]
struct Sent {
    id: i64,
    kind: MessageKind,
    member: usize,
    modem: usize,
    start: Millis,
    done: Millis,
}

struct Report {
    store: Store,
    sent: Vec<Sent>,
    homes: Vec<usize>,
    limits: Limits,
    latency: Vec<Millis>,
    /// Arrival time of each reply id.
    reply_arrivals: HashMap<i64, Millis>,
    decisions: u64,
    /// Rows still queued when nothing more could happen.
    unsent: u64,
}

fn limits(per_minute: u32) -> Limits {
    Limits {
        per_minute,
        per_hour: per_minute * 60,
        per_day: per_minute * 60 * 24,
    }
}

fn number(i: usize) -> String {
    format!("+1312555{i:04}")
}

fn name(m: usize) -> String {
    format!("m{m}")
}

/// One modem as its send loop sees it.
struct Loop {
    limiter: RateLimiter,
    /// No claim before this: a part in flight, or idle until something new may be due.
    free_at: Millis,
    down_at: Option<Millis>,
}

impl Loop {
    /// When this loop would claim next (after its limiter), or `None` if it never will.
    fn next_claim(&self) -> Option<Millis> {
        if self.free_at == Millis::MAX {
            return None;
        }
        let t = self.limiter.next_allowed(self.free_at)?;
        match self.down_at {
            Some(d) if t >= d => None,
            _ => Some(t),
        }
    }
}

fn run(s: &Scenario) -> Report {
    let lim = limits(s.per_minute);
    let store = Store::open_in_memory().expect("store");
    let names: Vec<String> = (0..s.modems).map(name).collect();
    let mut loops: Vec<Loop> = (0..s.modems)
        .map(|m| Loop {
            limiter: RateLimiter::new(&lim).with_jitter(s.jitter_ms, XorShift64::new(m as u64 + 1)),
            free_at: 0,
            down_at: s.downs.iter().find(|d| d.1 == m).map(|d| d.0),
        })
        .collect();
    let numbers: Vec<String> = (0..s.recipients).map(number).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let mut cands: Vec<HomeCandidate> = (0..s.modems)
        .map(|_| HomeCandidate {
            number: None,
            eligible: true,
            members: 0,
        })
        .collect();
    let mut homes: Vec<usize> = assign_homes(&refs, &mut cands, false)
        .into_iter()
        .map(|h| h.expect("every member gets a home").index)
        .collect();
    let member_of: HashMap<String, usize> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();

    // The broadcast is queued at 0; replies arrive later.
    let rows: Vec<NewOutbox> = (0..s.recipients)
        .map(|i| NewOutbox {
            modem_pref: Some(name(homes[i])),
            ..NewOutbox::new(numbers[i].clone(), "news", MessageKind::Bulk, 0)
        })
        .collect();
    store.enqueue_many(&rows).expect("enqueue");
    let mut next_reply = 0;
    let mut reply_arrivals = HashMap::new();
    let mut rng = XorShift64::new(99);
    let mut sent = vec![];
    let mut decisions = 0u64;
    // The instants at which a takeover becomes allowed.
    let failover_at: Vec<Millis> = match s.failover_after {
        None => vec![],
        Some(after) => s.downs.iter().map(|d| d.0 + after).collect(),
    };
    // The loop that claims next, ties to the lowest index.
    while let Some((t, m)) = (0..s.modems)
        .filter_map(|m| loops[m].next_claim().map(|t| (t, m)))
        .min()
    {
        while let Some(&(at, member)) = s.replies.get(next_reply)
            && at <= t
        {
            let id = store
                .enqueue(&NewOutbox {
                    modem_pref: Some(name(homes[member])),
                    ..NewOutbox::new(numbers[member].clone(), "re", MessageKind::Reply, at)
                })
                .expect("enqueue a reply");
            reply_arrivals.insert(id, at);
            next_reply += 1;
        }
        // Pool modems down for at least `failover_after` (runner/pool.rs `takeovers`).
        let takeover: Vec<String> = match s.failover_after {
            None => vec![],
            Some(after) => s
                .downs
                .iter()
                .filter(|&&(d, o)| o != m && d + after <= t)
                .map(|&(_, o)| name(o))
                .collect(),
        };
        let route = ClaimRoute {
            pool: names.clone(),
            takeover,
        };
        decisions += 1;
        let Some(row) = store
            .claim_next_routed(&names[m], t, &route)
            .expect("claim")
        else {
            // Idle until the next arrival (the enqueue wakes the loops) or takeover instant.
            let next_arrival = s.replies.get(next_reply).map(|r| r.0);
            let next_failover = failover_at.iter().copied().filter(|&f| f > t).min();
            loops[m].free_at = [next_arrival, next_failover]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(Millis::MAX);
            continue;
        };
        let member = member_of[&row.to_number];
        if let Some(home) = row.modem_pref.as_deref()
            && home != names[m]
            && s.move_home
        {
            store
                .move_home(&row.to_number, home, &names[m], t)
                .expect("move home");
            homes[member] = m;
        }
        let l = &mut loops[m];
        assert_eq!(
            l.limiter.next_allowed(t),
            Some(t),
            "the claim waited for the limiter"
        );
        l.limiter.record(t);
        let done = t + s.latency[m] + rng.up_to(s.latency_spread as u64) as Millis;
        store
            .record_part_sent(row.id, 1, 1, (row.id % 256) as u8, t)
            .expect("record");
        store.mark_sent(row.id, done).expect("mark sent");
        l.limiter.jitter_after(done);
        l.free_at = done;
        sent.push(Sent {
            id: row.id,
            kind: row.kind,
            member,
            modem: m,
            start: t,
            done,
        });
    }
    Report {
        unsent: store.state_counts().expect("counts").queued,
        store,
        sent,
        homes,
        limits: lim,
        latency: s.latency.clone(),
        reply_arrivals,
        decisions,
    }
}

/// Limit violations over every window of every modem, counted from the store's `send_log` (the
/// record a restarted runner rebuilds its limiters from).
fn violations_in_send_log(r: &Report) -> usize {
    let mut total = 0;
    for m in 0..r.latency.len() {
        let starts = r.store.send_times_since(&name(m), 0).expect("send log");
        for (len, cap) in [
            (MINUTE, r.limits.per_minute),
            (60 * MINUTE, r.limits.per_hour),
            (24 * 60 * MINUTE, r.limits.per_day),
        ] {
            total += violations(&starts, len, cap);
        }
    }
    total
}

/// Windows where `times` holds more than `cap` in some half-open window of `len`.
fn violations(times: &[Millis], len: Millis, cap: u32) -> usize {
    let mut t = times.to_vec();
    t.sort_unstable();
    let cap = cap as usize;
    (0..t.len())
        .filter(|&i| t.get(i + cap).is_some_and(|&later| later - t[i] < len))
        .count()
}

/// The most parts one modem (cap `cap` per `W` counted at starts, fixed latency `d`) can complete
/// within `horizon`: bursts of `cap` every `W`, the last burst cut by latency.
fn max_parts(horizon: Millis, cap: u32, d: Millis) -> u64 {
    let span = horizon - d; // last possible start
    if span < 0 {
        return 0;
    }
    let w = MINUTE;
    let full = (span / w) as u64 * u64::from(cap);
    let tail = ((span % w) / d + 1).min(i64::from(cap)) as u64;
    full + tail
}

fn eight_modems(replies: Vec<(Millis, usize)>) -> Scenario {
    Scenario {
        modems: 8,
        per_minute: 10,
        latency: vec![2000, 2500, 3000, 3500, 4000, 4500, 3000, 2000],
        latency_spread: 0,
        jitter_ms: 0,
        failover_after: None,
        move_home: false,
        recipients: 2000,
        replies,
        downs: vec![],
    }
}

fn replies(n: usize, seed: u64, until: Millis) -> Vec<(Millis, usize)> {
    let mut rng = XorShift64::new(seed);
    let mut v: Vec<(Millis, usize)> = (0..n)
        .map(|_| (rng.up_to(until as u64) as Millis, rng.up_to(1999) as usize))
        .collect();
    v.sort_unstable();
    v
}

/// Throughput figures of a run: (rate ratio, parts ÷ most possible in the pool's time, parts ÷
/// most possible in each modem's own busy time).
fn throughput(r: &Report, s: &Scenario, label: &str) -> (f64, f64, f64) {
    let t_end = r.sent.iter().map(|x| x.done).max().unwrap();
    let pool_max: u64 = (0..s.modems)
        .map(|m| max_parts(t_end, s.per_minute, r.latency[m]))
        .sum();
    let own_max: u64 = (0..s.modems)
        .map(|m| {
            let end = r
                .sent
                .iter()
                .filter(|x| x.modem == m)
                .map(|x| x.done)
                .max()
                .unwrap_or(0);
            max_parts(end, s.per_minute, r.latency[m])
        })
        .sum();
    // Σ min(cap/W, 1/latency): the sum of modem limits, bounded by latency.
    let rate_limit: f64 = r
        .latency
        .iter()
        .map(|&d| (f64::from(s.per_minute) / 60.0).min(1000.0 / d as f64))
        .sum();
    let achieved = r.sent.len() as f64 / (t_end as f64 / 1000.0);
    let n = r.sent.len() as f64;
    let out = (
        achieved / rate_limit,
        n / pool_max as f64,
        n / own_max as f64,
    );
    println!(
        "dispatch simulation [{label}]: {} parts in {:.1} min on {} modems, {} claims; \
         throughput {achieved:.3}/s vs limit {rate_limit:.3}/s = {:.4}; \
         parts/most-possible-in-that-time: pool {:.4}, per modem {:.4}",
        r.sent.len(),
        t_end as f64 / 60_000.0,
        s.modems,
        r.decisions,
        out.0,
        out.1,
        out.2
    );
    out
}

#[test]
fn broadcast_2000_on_8_modems_no_violations_and_full_throughput() {
    let s = eight_modems(vec![]);
    let r = run(&s);
    assert_eq!(r.unsent, 0);
    assert_eq!(r.sent.len(), 2000);
    assert_eq!(violations_in_send_log(&r), 0);
    // Sticky sender: every text to a member went through their home modem.
    for x in &r.sent {
        assert_eq!(x.modem, r.homes[x.member], "{x:?}");
    }
    let (rate, pool, own) = throughput(&r, &s, "broadcast only");
    assert!(rate >= 0.99, "rate ratio {rate}");
    assert!(pool >= 0.99, "pool ratio {pool}");
    assert!(own >= 0.99, "per-modem ratio {own}");
}

#[test]
fn broadcast_with_replies_keeps_throughput() {
    // Replies land on random members' home modems, so the modems' loads differ by a few parts:
    // the pool-wide figure then also measures that (sticky-sender) imbalance, the per-modem one
    // the scheduler alone.
    let s = eight_modems(replies(40, 7, 20 * MINUTE));
    let r = run(&s);
    assert_eq!(r.unsent, 0);
    assert_eq!(r.sent.len(), 2040);
    assert_eq!(violations_in_send_log(&r), 0);
    for x in &r.sent {
        assert_eq!(x.modem, r.homes[x.member], "{x:?}");
    }
    let (rate, pool, own) = throughput(&r, &s, "broadcast + 40 replies");
    assert!(rate >= 0.99, "rate ratio {rate}");
    assert!(own >= 0.99, "per-modem ratio {own}");
    assert!(pool >= 0.97, "pool ratio {pool}");
}

#[test]
fn replies_take_the_first_slot_after_they_arrive_despite_the_backlog() {
    let s = eight_modems(replies(60, 11, 20 * MINUTE));
    let r = run(&s);
    assert_eq!(r.unsent, 0);
    let mut checked = 0;
    for reply in r.sent.iter().filter(|x| x.kind == MessageKind::Reply) {
        let arrived = r.reply_arrivals[&reply.id];
        // No bulk message started on that modem between the reply's arrival and its start.
        let overtaken = r.sent.iter().any(|x| {
            x.modem == reply.modem
                && x.kind == MessageKind::Bulk
                && x.start >= arrived
                && x.start < reply.start
        });
        assert!(
            !overtaken,
            "bulk overtook reply {reply:?} (arrived {arrived})"
        );
        // And it waited at most for one window (the per-minute cap) plus a part in flight.
        assert!(
            reply.start - arrived <= MINUTE + 5 * SECOND,
            "{reply:?} arrived {arrived}"
        );
        checked += 1;
    }
    assert_eq!(checked, 60);
    // The bulk backlog was continuous while replies arrived.
    let last_bulk = r
        .sent
        .iter()
        .filter(|x| x.kind == MessageKind::Bulk)
        .map(|x| x.start)
        .max();
    assert!(last_bulk.unwrap() > 20 * MINUTE);
}

#[test]
fn jitter_and_variable_latency_never_break_a_limit() {
    let mut s = eight_modems(replies(30, 3, 15 * MINUTE));
    s.jitter_ms = 2_000;
    s.latency_spread = 3_000;
    let r = run(&s);
    assert_eq!(r.unsent, 0);
    assert_eq!(r.sent.len(), 2030);
    assert_eq!(violations_in_send_log(&r), 0);
    let t_end = r.sent.iter().map(|x| x.done).max().unwrap();
    println!(
        "with 2 s jitter and 0–3 s extra latency: {} parts in {:.1} min",
        r.sent.len(),
        t_end as f64 / 60_000.0
    );
}

#[test]
fn failover_after_the_delay_and_never_without_it() {
    // Modem 3 goes down at 5 min for good.
    let down_at = 5 * MINUTE;
    let mut s = eight_modems(vec![]);
    s.downs = vec![(down_at, 3)];
    s.failover_after = Some(10 * MINUTE);
    s.move_home = true;
    let r = run(&s);
    assert_eq!(r.unsent, 0);
    assert_eq!(r.sent.len(), 2000);
    assert_eq!(violations_in_send_log(&r), 0);
    let moved: Vec<&Sent> = r
        .sent
        .iter()
        .filter(|x| x.start >= down_at && x.modem != 3 && r.homes[x.member] == x.modem)
        .filter(|x| (x.member % 8) == 3) // balanced assignment put these on modem 3
        .collect();
    assert!(!moved.is_empty());
    for x in &moved {
        assert!(
            x.start >= down_at + 10 * MINUTE,
            "failed over too early: {x:?}"
        );
    }
    assert!(r.sent.iter().all(|x| x.modem != 3 || x.start < down_at));

    // Without failover, modem 3's members wait for it (here: forever) and nothing else moves.
    let mut never = eight_modems(vec![]);
    never.recipients = 80;
    never.downs = vec![(0, 3)];
    let r = run(&never);
    assert_eq!(r.unsent, 10);
    assert_eq!(r.sent.len(), 70);
    assert!(
        r.sent
            .iter()
            .all(|x| x.modem == r.homes[x.member] && x.modem != 3)
    );
}
