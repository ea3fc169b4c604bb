//! Dispatch planner benchmark (`cargo bench --bench dispatch_plan`): planner decisions per second
//! on an 8-modem pool with a 2,000-message queue, and the time to estimate the ETA of a
//! 100,000-recipient broadcast across zones with quiet hours.
//!
//! Plain `Instant` timing, median of several runs: the machine is a noisy 2-core box, and these
//! figures are read as orders of magnitude, not compared to the nanosecond.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use gsmgate::config::{Limits, QuietHours};
use gsmgate::dispatch::eta::{EtaModem, EtaRequest, estimate, group_recipients};
use gsmgate::dispatch::{
    CountAt, MessageKind, Millis, ModemSlot, Outgoing, Pool, PoolConfig, RateLimiter, pick_next,
};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn pool() -> Pool {
    Pool::new(
        (0..8)
            .map(|m| ModemSlot::new(format!("m{m}"), RateLimiter::new(&Limits::DEFAULT)))
            .collect(),
        PoolConfig::default(),
    )
}

fn queue(n: usize) -> Vec<Outgoing> {
    (0..n)
        .map(|i| {
            let kind = if i % 50 == 0 {
                MessageKind::Reply
            } else {
                MessageKind::Bulk
            };
            Outgoing {
                home: Some(i % 8),
                ..Outgoing::new(i as i64, format!("+1312555{i:04}"), kind, 0)
            }
        })
        .collect()
}

fn bench_place() {
    let mut p = pool();
    let q = queue(2000);
    let mut now: Millis = 1_700_000_000_000;
    // Some history so the windows have work to do.
    for m in 0..8 {
        for k in 0..5 {
            p.begin_part(m, now - 50_000 + k * 1_000).ok();
            p.end_part(m, now - 49_000 + k * 1_000).ok();
        }
    }
    let runs: Vec<(Duration, usize)> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0;
            for msg in &q {
                std::hint::black_box(p.place(msg, now));
                n += 1;
            }
            now += 1;
            (start.elapsed(), n)
        })
        .collect();
    let n = runs[0].1;
    let t = median(runs.into_iter().map(|r| r.0).collect());
    println!(
        "place(): {:.0} decisions/s ({n} messages in {:?}, median of 5)",
        n as f64 / t.as_secs_f64(),
        t
    );
}

fn bench_pick_next() {
    let mut p = pool();
    let mut q = queue(2000);
    let mut now: Millis = 1_700_000_000_000;
    let start = Instant::now();
    let mut decisions = 0u64;
    // Drive a whole broadcast: each decision scans the remaining queue for the modem.
    while !q.is_empty() {
        let mut progressed = false;
        for m in 0..8 {
            decisions += 1;
            if let Some((i, at)) = pick_next(&p, m, &q, now) {
                let msg = q.swap_remove(i);
                p.begin_message(&msg.to, at);
                p.begin_part(m, at).ok();
                p.end_part(m, at + 3_000).ok();
                progressed = true;
            }
        }
        if !progressed {
            now += 60_000;
        }
    }
    let t = start.elapsed();
    println!(
        "pick_next(): {:.0} decisions/s over a 2,000-message broadcast ({decisions} decisions in {t:?})",
        decisions as f64 / t.as_secs_f64()
    );
}

fn bench_eta() {
    let zones = [
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Los_Angeles",
        "Europe/Berlin",
        "Europe/London",
    ];
    let recipients: Vec<(Option<usize>, &str)> = (0..100_000)
        .map(|i| (Some(i % 8), zones[i % zones.len()]))
        .collect();
    let runs: Vec<(Duration, Option<Millis>)> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let groups = group_recipients(recipients.iter().copied(), "UTC", 1).expect("zones");
            let req = EtaRequest {
                now: 1_717_600_000_000,
                modems: (0..8)
                    .map(|_| EtaModem {
                        limiter: RateLimiter::new(&Limits::DEFAULT),
                        latency_ms: 3_000,
                        ready: true,
                    })
                    .collect(),
                groups,
                quiet: Some(QuietHours::DEFAULT),
                pool_limiter: None,
                horizon_ms: EtaRequest::DEFAULT_HORIZON_MS,
                count_at: CountAt::Start,
            };
            let eta = estimate(&req);
            (start.elapsed(), eta.finish)
        })
        .collect();
    let finish = runs[0].1;
    let t = median(runs.into_iter().map(|r| r.0).collect());
    let days = finish.map(|f| (f - 1_717_600_000_000) as f64 / 86_400_000.0);
    println!(
        "ETA of a 100,000-recipient broadcast (8 modems at 6/min, 200/h, 1000/day; 6 zones; quiet \
         hours): computed in {t:?} (median of 3); broadcast would take {days:.2?} days"
    );
    assert!(t < Duration::from_secs(1), "ETA took {t:?}");
}

fn main() {
    bench_place();
    bench_pick_next();
    bench_eta();
}
