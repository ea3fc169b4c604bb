//! Deterministic pool simulation: the dispatch planner and limiters driven by a virtual clock, as
//! the async pool runner will drive them, with 8 modems, a per-minute cap each, a simulated
//! `AT+CMGS` latency, a 2,000-recipient broadcast and replies arriving meanwhile.
//!
//! It checks the guarantees end to end: no limit is exceeded over any window on any modem; a reply
//! takes the first slot that opens after it arrives, however large the bulk backlog; sticky sender
//! and failover; and throughput close to the theoretical maximum (printed).

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use gsmgate::config::Limits;
use gsmgate::dispatch::{
    CountAt, HomeCandidate, MINUTE, MessageKind, Millis, ModemSlot, Outgoing, Pool, PoolConfig,
    RateLimiter, SECOND, XorShift64, assign_homes, pick_next,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A message is queued (index into `Scenario::arrivals`).
    Arrive(usize),
    /// A modem's part completes.
    Done(usize),
    /// Wake a modem to plan (stale generations are ignored).
    Wake(usize, u64),
    /// A modem goes down.
    Down(usize),
}

struct Scenario {
    modems: usize,
    per_minute: u32,
    /// Base latency of each modem.
    latency: Vec<Millis>,
    /// Extra random latency per part, up to this.
    latency_spread: Millis,
    jitter_ms: u64,
    count_at: CountAt,
    failover_after: Option<Millis>,
    move_home: bool,
    recipients: usize,
    /// (arrival time, member index) of replies during the broadcast.
    replies: Vec<(Millis, usize)>,
    /// (time, modem) modems going down.
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
    sent: Vec<Sent>,
    homes: Vec<usize>,
    limits: Limits,
    latency: Vec<Millis>,
    /// Arrival time of each reply id.
    reply_arrivals: HashMap<i64, Millis>,
    decisions: u64,
    /// Messages still queued when nothing more could happen.
    unsent: usize,
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

fn run(s: &Scenario) -> Report {
    let lim = limits(s.per_minute);
    let slots = (0..s.modems)
        .map(|m| {
            ModemSlot::new(
                format!("m{m}"),
                RateLimiter::new(&lim).with_jitter(s.jitter_ms, XorShift64::new(m as u64 + 1)),
            )
        })
        .collect();
    let mut pool = Pool::new(
        slots,
        PoolConfig {
            failover_after_ms: s.failover_after,
            move_home_on_failover: s.move_home,
            bulk_reserve: 0,
            count_at: s.count_at,
        },
    );
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
        .map(|h| h.expect("every member gets a home"))
        .collect();
    let member_of: HashMap<String, usize> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();

    // The broadcast is queued at 0; replies arrive later.
    let mut queue: Vec<Outgoing> = (0..s.recipients)
        .map(|i| Outgoing {
            home: Some(homes[i]),
            ..Outgoing::new(i as i64, numbers[i].clone(), MessageKind::Bulk, 0)
        })
        .collect();
    let mut heap: BinaryHeap<Reverse<(Millis, u64, Event)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<_>, t: Millis, e: Event| {
        seq += 1;
        heap.push(Reverse((t, seq, e)));
    };
    let mut reply_arrivals = HashMap::new();
    for (i, &(t, _)) in s.replies.iter().enumerate() {
        push(&mut heap, t, Event::Arrive(i));
    }
    for &(t, m) in &s.downs {
        push(&mut heap, t, Event::Down(m));
    }
    let mut generation = vec![0u64; s.modems];
    let mut busy: Vec<Option<(Outgoing, Millis)>> = vec![None; s.modems];
    for m in 0..s.modems {
        push(&mut heap, 0, Event::Wake(m, 0));
    }
    let mut rng = XorShift64::new(99);
    let mut sent = vec![];
    let mut decisions = 0u64;
    while let Some(Reverse((t, _, e))) = heap.pop() {
        match e {
            Event::Arrive(i) => {
                let (_, member) = s.replies[i];
                let id = 100_000 + i as i64;
                reply_arrivals.insert(id, t);
                queue.push(Outgoing {
                    home: Some(homes[member]),
                    ..Outgoing::new(id, numbers[member].clone(), MessageKind::Reply, t)
                });
                for m in 0..s.modems {
                    if busy[m].is_none() {
                        generation[m] += 1;
                        push(&mut heap, t, Event::Wake(m, generation[m]));
                    }
                }
            }
            Event::Down(m) => {
                pool.set_ready(m, false, t).unwrap();
                // Others may now take over (after the failover delay): wake them then.
                if let Some(after) = s.failover_after {
                    for (o, &g) in generation.iter().enumerate() {
                        push(&mut heap, t + after, Event::Wake(o, g));
                    }
                }
            }
            Event::Done(m) => {
                let (msg, start) = busy[m].take().expect("a part was in flight");
                pool.end_part(m, t).unwrap();
                sent.push(Sent {
                    id: msg.id,
                    kind: msg.kind,
                    member: member_of[&msg.to],
                    modem: m,
                    start,
                    done: t,
                });
                generation[m] += 1;
                push(&mut heap, t, Event::Wake(m, generation[m]));
            }
            Event::Wake(m, g) => {
                if g != generation[m] || busy[m].is_some() || !pool.modems[m].ready {
                    continue;
                }
                decisions += 1;
                let Some((i, at)) = pick_next(&pool, m, &queue, t) else {
                    continue;
                };
                if at > t {
                    push(&mut heap, at, Event::Wake(m, g));
                    continue;
                }
                let msg = queue.swap_remove(i);
                if let Some(h) = msg.home.filter(|&h| h != m) {
                    // A failover: with move_home the member's home follows.
                    if s.move_home {
                        let member = member_of[&msg.to];
                        assert_eq!(homes[member], h);
                        homes[member] = m;
                        for q in queue.iter_mut().filter(|q| q.to == msg.to) {
                            q.home = Some(m);
                        }
                    }
                }
                pool.begin_message(&msg.to, t);
                pool.begin_part(m, t).unwrap();
                let lat = s.latency[m] + (rng.up_to(s.latency_spread as u64) as Millis);
                busy[m] = Some((msg, t));
                push(&mut heap, t + lat, Event::Done(m));
            }
        }
    }
    Report {
        unsent: queue.len(),
        sent,
        homes,
        limits: lim,
        latency: s.latency.clone(),
        reply_arrivals,
        decisions,
    }
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

fn all_violations(r: &Report, modems: usize, include_done: bool) -> usize {
    let mut total = 0;
    for m in 0..modems {
        let starts: Vec<Millis> = r
            .sent
            .iter()
            .filter(|s| s.modem == m)
            .map(|s| s.start)
            .collect();
        let dones: Vec<Millis> = r
            .sent
            .iter()
            .filter(|s| s.modem == m)
            .map(|s| s.done)
            .collect();
        for (len, cap) in [
            (MINUTE, r.limits.per_minute),
            (60 * MINUTE, r.limits.per_hour),
            (24 * 60 * MINUTE, r.limits.per_day),
        ] {
            total += violations(&starts, len, cap);
            if include_done {
                total += violations(&dones, len, cap);
            }
        }
    }
    total
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
        count_at: CountAt::Start,
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
        "dispatch simulation [{label}]: {} parts in {:.1} min on {} modems, {} planner decisions; \
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
    assert_eq!(all_violations(&r, 8, false), 0);
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
    assert_eq!(all_violations(&r, 8, false), 0);
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
    assert_eq!(all_violations(&r, 8, false), 0);
    let t_end = r.sent.iter().map(|x| x.done).max().unwrap();
    println!(
        "with 2 s jitter and 0–3 s extra latency: {} parts in {:.1} min",
        r.sent.len(),
        t_end as f64 / 60_000.0
    );
}

#[test]
fn counting_completions_holds_limits_over_every_instant_of_every_exchange() {
    let mut s = eight_modems(vec![]);
    s.count_at = CountAt::Completion;
    s.latency_spread = 3_000;
    let r = run(&s);
    assert_eq!(r.unsent, 0);
    assert_eq!(all_violations(&r, 8, true), 0);
    let t_end = r.sent.iter().map(|x| x.done).max().unwrap();
    let rate_limit = 8.0 * f64::from(s.per_minute) / 60.0;
    println!(
        "counting completions: {:.1} min, rate ratio {:.3} (one latency per window is the price)",
        t_end as f64 / 60_000.0,
        r.sent.len() as f64 / (t_end as f64 / 1000.0) / rate_limit
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
    assert_eq!(all_violations(&r, 8, false), 0);
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
