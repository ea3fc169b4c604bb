//! Figures of the daemon at rest: time from start to READY (the admin socket answering a ping)
//! with the embedded default (two simulated modems), time until both modems are ready, and the
//! idle resident memory (VmRSS) with 2 and 4 simulated modems.
//!
//! Each measurement runs in a fresh child process (this binary re-executed with
//! `GSMGATE_BENCH_CHILD=N`), so one run's allocations do not inflate the next one's RSS. The
//! simulator runs inside the measured process (as with the embedded default), so the RSS figure
//! includes it; the baseline (runtime only, before the daemon starts) is printed beside it.
//! `cargo bench --bench daemon_idle` prints the table; no criterion: these are one-shot figures.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use gsmgate::admin::Client;
use gsmgate::config::Config;
use gsmgate::daemon::{Daemon, DaemonOptions};
use tokio_util::sync::CancellationToken;

const CHILD_ENV: &str = "GSMGATE_BENCH_CHILD";

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One measurement with `modems` simulated modems; prints one line of `key=value`.
fn child(modems: u32) {
    let dir = tempfile::Builder::new()
        .prefix("gb")
        .tempdir_in("/tmp")
        .expect("tempdir");
    // The embedded default, run from the temp dir as `gsmgate daemon` would be from a folder.
    std::env::set_current_dir(dir.path()).expect("chdir");
    let mut cfg = Config::embedded_default();
    if modems != 2 {
        cfg.simulator.modems = modems;
        let template = cfg.modems[0].clone();
        cfg.modems = (0..modems as usize)
            .map(|i| {
                let mut m = template.clone();
                m.name = format!("sim{i}");
                m.port = cfg.simulator.port_of(i);
                m
            })
            .collect();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let baseline = vm_rss_kib();
        let mut opts = DaemonOptions::default();
        let mut sim = cfg.simulator.sim_config();
        sim.control_socket = true;
        opts.sim = Some(sim);
        let t0 = Instant::now();
        let d = Daemon::start_with(cfg, opts, CancellationToken::new())
            .await
            .expect("daemon starts");
        let ready = t0.elapsed();
        let socket = d.socket_path().to_path_buf();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut c = Client::connect(&socket).await.expect("connect");
            let ms = c.modems().await.expect("modems");
            if ms.iter().all(|m| m.state == "ready") {
                break;
            }
            assert!(Instant::now() < deadline, "modems never became ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let all_ready = t0.elapsed();
        // Idle: let the health polls and the status loop run a few rounds.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss = vm_rss_kib();
        println!(
            "modems={modems} ready_ms={:.1} modems_ready_ms={:.1} baseline_kib={baseline} idle_rss_kib={rss}",
            ready.as_secs_f64() * 1e3,
            all_ready.as_secs_f64() * 1e3
        );
        d.shutdown().await;
    });
}

fn main() {
    if let Ok(n) = std::env::var(CHILD_ENV) {
        child(n.parse().expect("modem count"));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special: either way,
    // run the measurements.
    let exe = std::env::current_exe().expect("current exe");
    println!("daemon_idle: embedded default, simulator in-process (RSS includes it)");
    for modems in [2u32, 2, 2, 4] {
        let out = std::process::Command::new(&exe)
            .env(CHILD_ENV, modems.to_string())
            .env("RUST_LOG", "off")
            .output()
            .expect("run child");
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            panic!("measurement with {modems} modems failed");
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
