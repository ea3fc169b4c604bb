//! Dispatch benchmark (`cargo bench --bench dispatch`): how fast the production claim query
//! (`Store::claim_next_routed`, the one place that decides which row goes next) drives a
//! 2,000-row broadcast over an 8-modem pool, and the time to estimate the ETA of a
//! 100,000-recipient broadcast across zones with quiet hours.
//!
//! The claims run on an in-memory store, so they measure the query and its transaction, not the
//! fsync a file-backed store adds per commit (that cost is in the `pool` and `scale` benches).
//! Plain `Instant` timing, median of several runs: the machine is a noisy 2-core box, and these
//! figures are read as orders of magnitude, not compared to the nanosecond.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use gsmgate::config::{Limits, QuietHours};
use gsmgate::dispatch::eta::{EtaModem, EtaRequest, estimate, group_recipients};
use gsmgate::dispatch::{CountAt, Millis, RateLimiter};
use gsmgate::model::MessageKind;
use gsmgate::store::{ClaimRoute, NewOutbox, Store};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// 2,000 rows homed round-robin on 8 modems, one reply in 50.
fn queue(n: usize, now: Millis) -> Vec<NewOutbox> {
    (0..n)
        .map(|i| {
            let kind = if i % 50 == 0 {
                MessageKind::Reply
            } else {
                MessageKind::Bulk
            };
            NewOutbox {
                modem_pref: Some(format!("m{}", i % 8)),
                ..NewOutbox::new(format!("+1312555{i:04}"), "news", kind, now)
            }
        })
        .collect()
}

fn bench_claim() {
    let now: Millis = 1_700_000_000_000;
    let route = ClaimRoute {
        pool: (0..8).map(|m| format!("m{m}")).collect(),
        takeover: vec![],
    };
    let runs: Vec<(Duration, u64)> = (0..3)
        .map(|_| {
            let store = Store::open_in_memory().expect("store");
            store.enqueue_many(&queue(2000, now)).expect("enqueue");
            let start = Instant::now();
            let mut claims = 0u64;
            // Each modem in turn claims its next row until every queue is empty; the last round
            // of empty claims counts too (an idle loop asks once before it sleeps).
            let mut progressed = true;
            while progressed {
                progressed = false;
                for m in &route.pool {
                    claims += 1;
                    if let Some(row) = store.claim_next_routed(m, now, &route).expect("claim") {
                        std::hint::black_box(row);
                        progressed = true;
                    }
                }
            }
            (start.elapsed(), claims)
        })
        .collect();
    let claims = runs[0].1;
    let t = median(runs.into_iter().map(|r| r.0).collect());
    println!(
        "claim_next_routed(): {:.0} claims/s over a 2,000-row broadcast on 8 modems ({claims} \
         claims in {t:?}, median of 3)",
        claims as f64 / t.as_secs_f64()
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
    bench_claim();
    bench_eta();
}
