//! The daemon's footprint while it works: peak resident memory and CPU per SMS of the release
//! binary (`gsmgate daemon --config …`) on two simulated modems during a 1,000-member broadcast,
//! the figures of issue 13 ("a leaner daemon for a Pi Zero 2 W": ≤ 12 MB peak RSS, ≤ 0.5 ms of
//! daemon CPU per SMS).
//!
//! The simulator runs in its own process (`gsmgate sim --modems 2`), so the daemon's figures are
//! its own, as on a real pool; the simulator's are printed beside them. Both run with zero
//! simulated latency and the daemon with `per_minute = 600`, `jitter_ms = 0`, quiet hours off
//! (the set-up of tests/compare/gammu-smsd.sh): the broadcast is then paced by the daemon's own
//! work, and "CPU per SMS" is that work (claim, PDU, AT round trip, the fsynced outcome), not
//! idle time spread over a slow network. The idle rate is printed separately (CPU ms per second
//! with both modems ready and nothing to send), since on a real pool it is what a Pi pays most.
//!
//! Each round is a fresh daemon, simulator and state directory: start, wait until both modems
//! are ready, measure idle CPU for 3 s, import 1,000 members (CSV over the admin socket), then
//! `gsmgate broadcast --wait` and, until it returns, sample VmRSS every 20 ms. Figures:
//! - peak RSS: VmHWM of the daemon at the end (the whole life of the process, start-up included),
//!   and the highest VmRSS sampled during the broadcast;
//! - CPU per SMS: utime + stime of the daemon (`/proc/PID/stat`) from just before the broadcast
//!   request until every copy's status report is in (`--wait` returns when the last is sent;
//!   the bench then polls the progress until all are delivered), divided by the SMS sent. The
//!   polls (`--wait` once a second, then every 50 ms) are included.
//!
//! `cargo bench --bench footprint` (release build): 3 rounds, then min and median of each figure.
//! `FOOTPRINT_ROUNDS=N` changes the number of rounds; `FOOTPRINT_BIN=PATH` measures another binary
//! (see [`bin`]). A missed target is reported, not a failure:
//! this is a measurement.

// Test code: a failed setup may panic with unwrap/expect; that is the bench failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The binary measured: `FOOTPRINT_BIN` when set (e.g. an installed or cross-checked build),
/// else the one cargo built for this bench.
fn bin() -> String {
    std::env::var("FOOTPRINT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gsmgate").to_string())
}
const MEMBERS: usize = 1_000;
const MODEMS: usize = 2;

/// A child process killed (and reaped) on drop, so a failed round leaves nothing behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn status_kib(pid: u32, key: &str) -> u64 {
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

/// utime + stime of a process in milliseconds (fields 14 and 15 of /proc/PID/stat, in clock
/// ticks; the fields are counted after the `)` that ends the command name).
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> f64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
    // After ")": state is index 0, so utime (field 14) is index 11 and stime index 12.
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (ticks(11) + ticks(12)) * 1000.0 / hz
}

fn poll<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn config_text(d: &Path) -> String {
    let d = d.display();
    let mut modems = String::new();
    for i in 0..MODEMS {
        modems.push_str(&format!(
            "[[modem]]\nname = \"sim{i}\"\nport = \"{d}/sim/modem{i}\"\nper_minute = 600\n\
             per_hour = 36000\nper_day = 864000\n\n"
        ));
    }
    format!(
        "[daemon]\nstate_dir = \"{d}/state\"\nadmin_socket = \"{d}/a.sock\"\nlog = \"warn\"\n\n\
         [simulator]\nenabled = false\n\n{modems}\
         [dispatch]\njitter_ms = 0\n\n[dispatch.quiet_hours]\nenabled = false\n\n\
         [community]\norg_name = \"Footprint\"\n"
    )
}

fn gsm(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("run gsmgate")
}

struct Round {
    hwm_kib: u64,
    max_rss_kib: u64,
    rss_before_kib: u64,
    cpu_per_sms_ms: f64,
    idle_ms_per_s: f64,
    sent: u64,
    secs: f64,
    sim_cpu_per_sms_ms: f64,
    sim_hwm_kib: u64,
}

fn round() -> Round {
    let dir = tempfile::Builder::new()
        .prefix("gf")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path();
    let sim_dir = d.join("sim");
    let sim = Proc(
        Command::new(bin())
            .args(["sim", "--modems", &MODEMS.to_string(), "--dir"])
            .arg(&sim_dir)
            .args(["--send-latency-ms", "0-0", "--latency-ms", "0-0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    poll("simulator ports", Duration::from_secs(30), || {
        (0..MODEMS)
            .all(|i| sim_dir.join(format!("modem{i}")).exists())
            .then_some(())
    });
    let config = d.join("gsmgate.toml");
    std::fs::write(&config, config_text(d)).unwrap();
    let daemon = Proc(
        Command::new(bin())
            .args(["daemon", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (pid, sim_pid) = (daemon.0.id(), sim.0.id());
    let socket = d.join("a.sock");
    poll("both modems ready", Duration::from_secs(90), || {
        let out = gsm(&socket, &["--json", "modems"]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let ms = v.as_array()?;
        (ms.len() == MODEMS && ms.iter().all(|m| m["state"] == "ready")).then_some(())
    });

    // Idle: both modems ready, nothing queued.
    let (c0, t0) = (cpu_ms(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let idle_ms_per_s = (cpu_ms(pid) - c0) / t0.elapsed().as_secs_f64();

    let csv = d.join("members.csv");
    let mut text = String::from("number,name\n");
    for i in 0..MEMBERS {
        text.push_str(&format!(
            "+13122{:02}{:04},Member {i}\n",
            i / 10_000,
            i % 10_000
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let out = gsm(&socket, &["members", "import", csv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rss_before_kib = status_kib(pid, "VmRSS:");
    let done = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(rss_before_kib));
    let sampler = {
        let (done, max_rss) = (done.clone(), max_rss.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                max_rss.fetch_max(status_kib(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let (cpu0, sim_cpu0, t) = (cpu_ms(pid), cpu_ms(sim_pid), Instant::now());
    let out = gsm(
        &socket,
        &[
            "--json",
            "broadcast",
            "--wait",
            "Hi {first_name}, the community meeting is on Thursday at 7pm at the library.",
        ],
    );
    assert!(
        out.status.success(),
        "broadcast failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("broadcast JSON");
    let sent = v["sent"].as_u64().unwrap_or(0) + v["delivered"].as_u64().unwrap_or(0);
    assert_eq!(sent, MEMBERS as u64, "every copy sent: {v}");
    // `--wait` returns once every copy is sent; the status reports of the last ones are still
    // on their way, and their commits are part of each SMS's cost.
    let id = v["id"].as_i64().expect("broadcast id").to_string();
    poll("every status report", Duration::from_secs(60), || {
        let out = gsm(&socket, &["--json", "broadcasts", "progress", &id]);
        let p: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (p["delivered"].as_u64()? == MEMBERS as u64).then_some(())
    });
    let (cpu1, sim_cpu1, secs) = (cpu_ms(pid), cpu_ms(sim_pid), t.elapsed().as_secs_f64());
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let r = Round {
        hwm_kib: status_kib(pid, "VmHWM:"),
        max_rss_kib: max_rss.load(Ordering::Relaxed),
        rss_before_kib,
        cpu_per_sms_ms: (cpu1 - cpu0) / sent as f64,
        idle_ms_per_s,
        sent,
        secs,
        sim_cpu_per_sms_ms: (sim_cpu1 - sim_cpu0) / sent as f64,
        sim_hwm_kib: status_kib(sim_pid, "VmHWM:"),
    };
    // SIGTERM for a clean stop (the Drop's SIGKILL is the fallback for a failed round).
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    drop(daemon);
    drop(sim);
    r
}

fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

fn min_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn main() {
    let rounds: usize = std::env::var("FOOTPRINT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!(
        "footprint: release daemon, {MODEMS} simulated modems in a separate `gsmgate sim` (0 ms \
         latency), {MEMBERS}-member broadcast, per_minute 600, jitter 0, quiet hours off; \
         binary {}",
        bin()
    );
    let mut all = Vec::new();
    for i in 0..rounds {
        let r = round();
        println!(
            "  round {i}: {} SMS in {:.1} s; daemon peak RSS (VmHWM) {:.1} MB, max VmRSS during \
             the broadcast {:.1} MB (before {:.1} MB); daemon CPU {:.3} ms per SMS; idle {:.2} ms \
             CPU per s; simulator {:.3} ms CPU per SMS, VmHWM {:.1} MB",
            r.sent,
            r.secs,
            mb(r.hwm_kib),
            mb(r.max_rss_kib),
            mb(r.rss_before_kib),
            r.cpu_per_sms_ms,
            r.idle_ms_per_s,
            r.sim_cpu_per_sms_ms,
            mb(r.sim_hwm_kib),
        );
        all.push(r);
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let (hwm_min, hwm_med) = min_median(all.iter().map(|r| mb(r.hwm_kib)).collect());
    let (rss_min, rss_med) = min_median(all.iter().map(|r| mb(r.max_rss_kib)).collect());
    let (cpu_min, cpu_med) = min_median(all.iter().map(|r| r.cpu_per_sms_ms).collect());
    let (idle_min, idle_med) = min_median(all.iter().map(|r| r.idle_ms_per_s).collect());
    let (sim_min, sim_med) = min_median(all.iter().map(|r| r.sim_cpu_per_sms_ms).collect());
    println!(
        "footprint: PEAK RSS (daemon VmHWM) min {hwm_min:.1} MB, median {hwm_med:.1} MB; max \
         VmRSS sampled during the broadcast min {rss_min:.1} MB, median {rss_med:.1} MB (target \
         <= 12 MB: {})",
        verdict(hwm_med <= 12.0)
    );
    println!(
        "footprint: DAEMON CPU per SMS min {cpu_min:.3} ms, median {cpu_med:.3} ms (target <= 0.5 \
         ms: {}); idle min {idle_min:.2}, median {idle_med:.2} ms CPU per s",
        verdict(cpu_med <= 0.5)
    );
    println!(
        "footprint: simulator (separate process, not in the daemon's figures) min {sim_min:.3}, \
         median {sim_med:.3} ms CPU per SMS"
    );
}
