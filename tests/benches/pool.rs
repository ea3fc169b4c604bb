//! Pool efficiency of the real daemon (in-process, `Daemon::start_with`) driving 8 simulated
//! modems, each limited to `per_minute = 10`, with a simulated network latency of 300–800 ms from
//! Ctrl-Z to `+CMGS`, through one 2,000-recipient broadcast.
//!
//! Time is scaled: a 10/min cap at 60 s per minute would make this a 25-minute run, so the
//! limiter's minute is shortened to `MINUTE` with `DaemonOptions::limit_minute` (the knob the
//! runner tests use, `RunnerConfig::minute`). The network latency is scaled by the same factor
//! (a real 300–800 ms becomes 30–80 ms), so the simulated pool keeps a real pool's proportions:
//! at 10 a minute a modem is idle for most of each minute. The daemon's own costs (fsyncs, the
//! `AT+CMGS` prompt round trip, scheduling) are NOT scaled, which makes the ratio conservative.
//! `POOL_LATENCY_MS=300-800` runs the harsher variant of session 1 (real latency against a 6 s
//! minute, where the latency itself nearly binds; see docs/benchmarks.md). CPU time, RSS and
//! elapsed seconds are wall-clock figures.
//!
//! The simulator runs as its own process (`gsmgate sim`, the binary of this build), so the CPU
//! time and peak RSS of this process are the daemon's (plus this harness's 200 ms progress poll),
//! not the simulated modems'. The simulator's CPU is printed beside it.
//!
//! Printed: throughput ÷ theoretical limit (Σ per modem of min(limit / minute, 1 / mean send
//! latency)); limit violations counted from the store's `send_log` over every sliding window
//! (`i`-th and `i + L`-th send closer than the window: must be 0); daemon CPU (utime + stime from
//! /proc/self/stat) and peak RSS (VmHWM). `cargo bench --bench pool`; no criterion: one run.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gsmgate::admin::Client;
use gsmgate::admin::protocol::{BroadcastArgs, MembersImportArgs};
use gsmgate::config::Config;
use gsmgate::daemon::{Daemon, DaemonOptions};
use gsmgate::store::OutboxState;
use tokio_util::sync::CancellationToken;

const MODEMS: usize = 8;
const PER_MINUTE: usize = 10;
const MINUTE: Duration = Duration::from_secs(6);
/// 300–800 ms of real network latency, scaled like the minute.
const LATENCY_MS: (u64, u64) = (30, 80);

/// The simulated `+CMGS` latency: `POOL_LATENCY_MS=LO-HI` or [`LATENCY_MS`].
fn latency_ms() -> (u64, u64) {
    std::env::var("POOL_LATENCY_MS")
        .ok()
        .and_then(|v| {
            let (lo, hi) = v.split_once('-')?;
            Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?))
        })
        .filter(|(lo, hi)| lo <= hi)
        .unwrap_or(LATENCY_MS)
}
const RECIPIENTS: usize = 2_000;

/// Kills and reaps the simulator when the bench ends or panics.
struct SimProc(Child);

impl Drop for SimProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_kib(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process in seconds (/proc/PID/stat fields 14 and 15, after the `)`).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm field: state is index 0, utime index 11, stime index 12.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / clk_tck()
}

/// Sends `i` and `i + limit` closer than `window_ms`: each is one window holding limit + 1.
fn violations(times: &mut [i64], limit: usize, window_ms: i64) -> usize {
    times.sort_unstable();
    times
        .windows(limit + 1)
        .filter(|w| w[limit] - w[0] < window_ms)
        .count()
}

fn config_text(d: &Path) -> String {
    let d = d.display();
    let mut modems = String::new();
    for i in 0..MODEMS {
        modems.push_str(&format!(
            "[[modem]]\nname = \"sim{i}\"\nport = \"{d}/sim/modem{i}\"\nper_minute = {PER_MINUTE}\n\
             per_hour = 1000\nper_day = 10000\n\n"
        ));
    }
    format!(
        r#"
[daemon]
state_dir = "{d}/state"
admin_socket = "{d}/a.sock"
log = "warn"

[simulator]
enabled = false

{modems}
[dispatch]
jitter_ms = 0

[dispatch.quiet_hours]
enabled = false

[community]
org_name = "Benchorg"

[community.contact_card]
name = "Bench Leader"
numbers = ["+14155550199"]
mode = "text"
"#
    )
}

async fn run() {
    let dir = tempfile::Builder::new()
        .prefix("gp")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let d = dir.path();
    let sim_dir = d.join("sim");
    let latency = latency_ms();
    let sim = SimProc(
        Command::new(env!("CARGO_BIN_EXE_gsmgate"))
            .args([
                "sim",
                "--modems",
                &MODEMS.to_string(),
                "--dir",
                sim_dir.to_str().expect("utf-8 path"),
                "--send-latency-ms",
                &format!("{}-{}", latency.0, latency.1),
                "--latency-ms",
                "1-5",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gsmgate sim"),
    );
    let sim_pid = sim.0.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(0..MODEMS).all(|i| sim_dir.join(format!("modem{i}")).exists()) {
        assert!(Instant::now() < deadline, "simulator ports did not appear");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let cfg = Config::from_str(&config_text(d), "pool.toml").expect("config");
    let opts = DaemonOptions {
        limit_minute: Some(MINUTE),
        ..DaemonOptions::default()
    };
    let daemon = Daemon::start_with(cfg, opts, CancellationToken::new())
        .await
        .expect("daemon starts");
    let socket = daemon.socket_path().to_path_buf();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = Client::connect(&socket).await.expect("admin");
        let ms = c.modems().await.expect("modems");
        if ms.len() == MODEMS && ms.iter().all(|m| m.state == "ready") {
            break;
        }
        assert!(Instant::now() < deadline, "modems never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut c = Client::connect(&socket).await.expect("admin");
    let mut csv = String::from("number,name\n");
    for i in 0..RECIPIENTS {
        // 312-2xx-xxxx: well-formed Chicago numbers (the import checks them like any list).
        csv.push_str(&format!("+13122{:02}{:04},M{i}\n", i / 10_000, i % 10_000));
    }
    let r = c
        .members_import(MembersImportArgs {
            csv,
            dry_run: false,
        })
        .await
        .expect("import");
    assert_eq!(r.imported, RECIPIENTS, "{:?}", r.errors.first());

    let me = "self";
    let cpu0 = cpu_secs(me);
    let sim_cpu0 = cpu_secs(&sim_pid);
    let t0 = Instant::now();
    let b = c
        .broadcast(BroadcastArgs {
            text: "Pool bench: the community meeting is on Thursday at 7pm.".into(),
            segment: None,
            at: None,
            dry_run: false,
            ..BroadcastArgs::default()
        })
        .await
        .expect("broadcast");
    let enqueue = t0.elapsed();
    let bid = b.id.expect("id");
    let store = daemon.store();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let p = store.broadcast_progress(bid).expect("progress");
        if p.queued + p.claimed == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "broadcast did not finish: {p:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = t0.elapsed();
    let cpu = cpu_secs(me) - cpu0;
    let sim_cpu = cpu_secs(&sim_pid) - sim_cpu0;
    let hwm = status_kib(me, "VmHWM:");
    let rss = status_kib(me, "VmRSS:");

    let rows = store.list_outbox(None, Some(bid), 10_000).expect("rows");
    let sent = rows
        .iter()
        .filter(|r| matches!(r.state, OutboxState::Sent | OutboxState::Delivered))
        .count();
    let created = rows.iter().map(|r| r.created_at).min().unwrap_or(0);
    let last = rows
        .iter()
        .filter_map(|r| r.sent_at)
        .max()
        .unwrap_or(created);
    let span_s = (last - created) as f64 / 1e3;

    let window_ms = i64::try_from(MINUTE.as_millis()).expect("fits");
    let mut total_violations = 0;
    let mut per_modem = Vec::new();
    for i in 0..MODEMS {
        let mut times = store
            .send_times_since(&format!("sim{i}"), 0)
            .expect("send log");
        per_modem.push(times.len());
        total_violations += violations(&mut times, PER_MINUTE, window_ms);
    }
    let mean_latency_s = (latency.0 + latency.1) as f64 / 2.0 / 1e3;
    let per_modem_bound = (PER_MINUTE as f64 / MINUTE.as_secs_f64()).min(1.0 / mean_latency_s);
    let theoretical = per_modem_bound * MODEMS as f64;
    let achieved = sent as f64 / span_s;

    println!(
        "pool: {MODEMS} modems, per_minute = {PER_MINUTE}, sim send latency {}-{} ms (mean {:.0} \
         ms, {}), {RECIPIENTS} recipients",
        latency.0,
        latency.1,
        mean_latency_s * 1e3,
        if latency == LATENCY_MS {
            "a real 300-800 ms scaled like the minute"
        } else {
            "as given, not scaled"
        }
    );
    println!(
        "  TIME SCALED: the limiter's minute is {:.0} s instead of 60 s ({}x faster); \
         wall-clock figures: elapsed, CPU, RSS",
        MINUTE.as_secs_f64(),
        60 / MINUTE.as_secs()
    );
    println!(
        "  broadcast enqueue (admin round trip, {RECIPIENTS} rows) {:.0} ms",
        enqueue.as_secs_f64() * 1e3
    );
    println!(
        "  sent {sent}/{RECIPIENTS} in {span_s:.1} s (enqueue to last +CMGS; wall {:.1} s to \
         settled); per modem {per_modem:?}",
        wall.as_secs_f64()
    );
    println!(
        "  throughput {achieved:.2}/s; theoretical {theoretical:.2}/s = {MODEMS} x min({PER_MINUTE}/{:.0} s, \
         1/{mean_latency_s:.2} s); ratio {:.3}",
        MINUTE.as_secs_f64(),
        achieved / theoretical
    );
    println!(
        "  limit violations over every sliding {:.0} s window of send_log: {total_violations}",
        MINUTE.as_secs_f64()
    );
    println!(
        "  daemon CPU {cpu:.2} s over {:.1} s wall ({:.1} % of one core, {:.2} ms per message); \
         peak RSS (VmHWM) {:.1} MiB, RSS at the end {:.1} MiB",
        wall.as_secs_f64(),
        100.0 * cpu / wall.as_secs_f64(),
        1e3 * cpu / sent.max(1) as f64,
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    println!("  simulator process CPU (8 modems, not in the figures above) {sim_cpu:.2} s");
    assert_eq!(sent, RECIPIENTS, "every recipient sent");
    assert_eq!(total_violations, 0, "rate limit violated");
    daemon.shutdown().await;
    drop(sim);
}

fn main() {
    // `cargo bench` passes `--bench`; the harness-less bench always runs its one measurement.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}
