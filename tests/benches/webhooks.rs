//! Webhook delivery latency: from an event's time (the `at` of the journal row, stamped when the
//! fact was committed) to its arrival at a receiver on loopback that verifies the signature, as
//! docs/http-api.md describes. Two loads, a few hundred events each:
//!
//! - paced: one member added at a time over the admin socket, each `member_joined` waited for —
//!   the latency of one event on a quiet gateway (commit → wake → read → sign → POST → arrive);
//! - burst: a CSV import of the same size in one transaction — every event journaled at once and
//!   delivered in order, one at a time, so the p99 is the time to drain the burst.
//!
//! `cargo bench --bench webhooks` prints p50/p99 (ms) for both; no criterion: the figure is a
//! distribution of one-shot latencies, not a throughput loop.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../daemon_util/mod.rs"]
mod daemon_util;
#[path = "../webhook_receiver/mod.rs"]
mod webhook_receiver;

use std::time::Duration;

use gsmgate::admin::protocol::{MemberAddArgs, MembersImportArgs};
use gsmgate::config::Config;

use daemon_util::{Gateway, config_text, options, poll, short_tempdir};
use webhook_receiver::Receiver;

const SECRET: &str = "bench-secret-0123456789abcdef";
const EVENTS: usize = 300;

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latencies (ms) of the receiver's first arrivals of events with an id above `after`.
fn latencies(rx: &Receiver, after: i64) -> Vec<i64> {
    let mut v: Vec<i64> = rx
        .deliveries()
        .iter()
        .filter(|d| d.verified && !d.duplicate && d.id > after)
        .map(|d| {
            let at: jiff::Timestamp = d.body["at"].as_str().unwrap().parse().unwrap();
            d.received_ms - at.as_millisecond()
        })
        .collect();
    v.sort_unstable();
    v
}

fn report(what: &str, v: &[i64]) {
    println!(
        "webhook latency, {what}: n={} p50={} ms p99={} ms max={} ms",
        v.len(),
        percentile(v, 0.50),
        percentile(v, 0.99),
        v.last().copied().unwrap_or(0)
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let rx = Receiver::start(SECRET).await;
        let dir = short_tempdir();
        let text = format!(
            "{}\n[[webhook]]\nname = \"bench\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\nevents = [\"member_joined\"]\n",
            config_text(dir.path()),
            rx.url()
        );
        let cfg = Config::from_str(&text, "bench.toml").unwrap();
        let opts = options(&cfg);
        let gw = Gateway::start_in(dir, cfg, opts).await;
        let mut client = gw.client().await;

        for i in 0..EVENTS {
            client
                .members_add(MemberAddArgs {
                    number: format!("+1415555{:04}", 1000 + i),
                    ..MemberAddArgs::default()
                })
                .await
                .unwrap();
            poll("the event arrived", Duration::from_secs(30), || async {
                (rx.ids().len() > i).then_some(())
            })
            .await;
        }
        let paced = latencies(&rx, 0);
        let last_paced = *rx.ids().iter().next_back().unwrap();

        let mut csv = String::from("number,name\n");
        for i in 0..EVENTS {
            csv.push_str(&format!("+1415556{:04},Burst {i}\n", 1000 + i));
        }
        let r = client
            .members_import(MembersImportArgs { csv, dry_run: false })
            .await
            .unwrap();
        assert_eq!(r.imported, EVENTS);
        poll("the burst arrived", Duration::from_secs(120), || async {
            (rx.ids().len() >= 2 * EVENTS).then_some(())
        })
        .await;
        let burst = latencies(&rx, last_paced);

        report("paced, one event at a time", &paced);
        report(&format!("burst of {EVENTS} in one transaction"), &burst);
        gw.shutdown().await;
    });
}
