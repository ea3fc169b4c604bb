//! A 100,000-member broadcast: how long `commands::broadcasts::broadcast` takes to enqueue it (read
//! every member, check consent and quiet hours, render, insert one outbox row each in one
//! transaction, fsync) and how much memory the process doing it needs. Targets: under 2 s and
//! under 40 MB RSS on the build machine (a Raspberry Pi is slower: see docs/benchmarks.md).
//!
//! The members are imported straight into a SQLite file with `Store::import_members` (the import
//! itself is not what is measured here, its time is printed for information). Each measurement
//! then runs in a fresh child process (this binary re-executed with `GSMGATE_SCALE_DB=FILE`) on
//! its own copy of that database, so the RSS figures (VmHWM = peak, VmRSS = at the end) are those
//! of a process that did nothing but open the store and enqueue the broadcast, and one run's
//! 100,000 rows do not slow the next. The child prints one `key=value` line; the parent prints
//! each run and a summary with both figures against their targets. `cargo bench --bench scale`
//! (release build). A missed target is reported, not a failure: this is a measurement.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::Arc;

use gsmgate::commands::{Context, broadcasts};
use gsmgate::config::Config;
use gsmgate::protocol::{BroadcastArgs, BroadcastIdArgs};
use gsmgate::store::{MemberStatus, NewMember, Store};

const MEMBERS: usize = 100_000;
const RUNS: usize = 3;
const CHILD_ENV: &str = "GSMGATE_SCALE_DB";

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The measured process: open the store, enqueue one broadcast to everyone, print one line.
fn child(db: &Path) {
    let before_kib = status_kib("VmHWM:");
    // The embedded default: quiet hours on (each member's zone is checked), 2 modems, the TTL.
    let cfg = Config::embedded_default();
    let t0 = Instant::now();
    let store = Store::open(db).expect("open store");
    let opened = t0.elapsed();
    let t1 = Instant::now();
    let ctx = Context::new(store.clone(), Arc::new(cfg.command_settings()));
    let r = broadcasts::broadcast(
        &ctx,
        &BroadcastArgs {
            text: "Hi {first_name}, the community meeting is on Thursday at 7pm at the library."
                .into(),
            segment: None,
            at: None,
            dry_run: false,
            ..BroadcastArgs::default()
        },
    )
    .expect("broadcast");
    let enqueue = t1.elapsed();
    assert_eq!(r.recipients, MEMBERS, "every member gets a copy");
    let progress = store
        .broadcast_progress(r.id.expect("id"))
        .expect("progress");
    assert_eq!(progress.queued as usize, MEMBERS, "rows are in the outbox");
    let wal = std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len());
    let (hwm, rss) = (status_kib("VmHWM:"), status_kib("VmRSS:"));
    // What one poll of `broadcast --wait` costs on this broadcast: progress plus the ETA (one
    // GROUP BY over the covering index since migration 0010, then the simulation over the
    // groups), measured after the enqueue figures so they stay apart. The first poll is the
    // figure (a cold statement cache, as a CLI's first look); the median of 5 more is printed too.
    let poll = || {
        let t = Instant::now();
        let p = broadcasts::progress(
            &ctx,
            &BroadcastIdArgs {
                broadcast: r.id.expect("id"),
            },
        )
        .expect("broadcast_progress");
        (t.elapsed(), p)
    };
    let (progress, p) = poll();
    // The GROUP BY alone (the rest of a poll is the ETA's simulation over the groups).
    let t3 = Instant::now();
    let groups = store.broadcast_groups(r.id.expect("id")).expect("groups");
    let groups_ms = t3.elapsed().as_secs_f64() * 1e3;
    // Where a poll's time goes: each store step of `commands::broadcasts::progress` alone, after
    // the first poll (warm), median of 5; the ETA's simulation is the rest of a poll.
    let id = r.id.expect("id");
    let step = |f: &dyn Fn()| {
        let mut v: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let now = now_ms();
    let refresh_ms = step(&|| {
        store.refresh_broadcasts(now).expect("refresh");
    });
    let row_ms = step(&|| drop(store.broadcast(id).expect("broadcast")));
    let groups_warm_ms = step(&|| drop(store.broadcast_groups(id).expect("groups")));
    let b = store.broadcast(id).expect("broadcast");
    let start = b.scheduled_at.unwrap_or(b.created_at);
    let held_ms = step(&|| {
        drop(
            store
                .broadcast_queue_groups(id, now, start, false)
                .expect("queue groups"),
        )
    });
    let mut more: Vec<f64> = (0..5).map(|_| poll().0.as_secs_f64() * 1e3).collect();
    more.sort_by(f64::total_cmp);
    let progress_median = more[more.len() / 2];
    assert_eq!(p.queued as usize, MEMBERS);
    let hwm_after_polls = status_kib("VmHWM:");
    // What the verbs that change every row of the broadcast cost (each one transaction, fsync
    // included): pause and resume flip the pause flag of 100,000 rows, cancel their state.
    let timed = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    };
    let now = now_ms();
    let pause_ms = timed(&|| store.pause_broadcast(id, now).expect("pause"));
    let resume_ms = timed(&|| store.resume_broadcast(id, now).expect("resume"));
    let cancel_ms = timed(&|| {
        store.cancel_broadcast(id, now).expect("cancel");
    });
    println!(
        "enqueue_ms={:.0} open_ms={:.0} vmhwm_kib={hwm} vmrss_kib={rss} start_hwm_kib={before_kib} \
         wal_kib={} progress_ms={:.1} progress_median_ms={progress_median:.1} groups_ms={groups_ms:.1} \
         groups={} eta={} refresh_ms={refresh_ms:.2} row_ms={row_ms:.2} \
         groups_warm_ms={groups_warm_ms:.2} held_ms={held_ms:.2} progress_hwm_kib={} \
         pause_ms={pause_ms:.0} resume_ms={resume_ms:.0} cancel_ms={cancel_ms:.0}",
        enqueue.as_secs_f64() * 1e3,
        opened.as_secs_f64() * 1e3,
        wal / 1024,
        progress.as_secs_f64() * 1e3,
        groups.len(),
        p.eta.is_some(),
        hwm_after_polls,
    );
}

/// One child's figures, from its `key=value` line.
struct Run {
    enqueue_ms: f64,
    vmhwm_kib: u64,
    vmrss_kib: u64,
    wal_kib: u64,
    progress_ms: f64,
    progress_median_ms: f64,
    progress_hwm_kib: u64,
}

fn parse_run(line: &str) -> Run {
    let get = |key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in child output {line:?}"))
    };
    Run {
        enqueue_ms: get("enqueue_ms"),
        vmhwm_kib: get("vmhwm_kib") as u64,
        vmrss_kib: get("vmrss_kib") as u64,
        wal_kib: get("wal_kib") as u64,
        progress_ms: get("progress_ms"),
        progress_median_ms: get("progress_median_ms"),
        progress_hwm_kib: get("progress_hwm_kib") as u64,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn copy_db(from: &Path, to_dir: &Path) -> PathBuf {
    let name = from
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    for suffix in ["", "-wal", "-shm"] {
        let src = from.with_file_name(format!("{name}{suffix}"));
        if src.exists() {
            std::fs::copy(&src, to_dir.join(format!("{name}{suffix}"))).expect("copy db");
        }
    }
    to_dir.join(name)
}

fn main() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        child(Path::new(&db));
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("gs")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let db = dir.path().join("seed").join("gsmgate.db");
    std::fs::create_dir_all(db.parent().expect("parent")).expect("mkdir");
    {
        let store = Store::open(&db).expect("store");
        let now = now_ms();
        let rows: Vec<NewMember> = (0..MEMBERS)
            .map(|i| NewMember {
                number: format!("+13122{:02}{:04}", i / 10_000, i % 10_000),
                name: Some(format!("Member {i}")),
                city: None,
                region: None,
                time_zone: None,
                tags: Vec::new(),
                status: Some(MemberStatus::Active),
                home_modem: Some(format!("sim{}", i % 2)),
                onboarding_step: None,
                joined_at: now,
                ..NewMember::default()
            })
            .collect();
        let t = Instant::now();
        let report = store.import_members(&rows, now).expect("import");
        assert_eq!(report.inserted, MEMBERS);
        println!(
            "scale: {MEMBERS} members imported with Store::import_members in {:.2} s (not the \
             measured figure)",
            t.elapsed().as_secs_f64()
        );
    }
    let exe = std::env::current_exe().expect("current exe");
    println!(
        "scale: broadcast enqueue through commands::broadcasts::broadcast, each run in a fresh \
         process on a fresh copy of the database (targets: < 2000 ms, < 40 MB RSS)"
    );
    let mut runs = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let run_dir = dir.path().join(format!("run{run}"));
        std::fs::create_dir_all(&run_dir).expect("mkdir");
        let copy = copy_db(&db, &run_dir);
        let out = std::process::Command::new(&exe)
            .env(CHILD_ENV, &copy)
            .env("RUST_LOG", "off")
            .output()
            .expect("run child");
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            panic!("run {run} failed");
        }
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let r = parse_run(&line);
        println!(
            "  run {run}: enqueue {:.0} ms, peak RSS (VmHWM) {:.1} MiB, RSS after {:.1} MiB, \
             WAL {:.1} MiB; one progress poll with ETA {:.1} ms (median of 5 more {:.1} ms; VmHWM \
             after it {:.1} MiB)   [{line}]",
            r.enqueue_ms,
            mib(r.vmhwm_kib),
            mib(r.vmrss_kib),
            mib(r.wal_kib),
            r.progress_ms,
            r.progress_median_ms,
            mib(r.progress_hwm_kib),
        );
        // Free the copy (~60 MiB with its WAL) before the next run.
        std::fs::remove_dir_all(&run_dir).expect("rm run dir");
        runs.push(r);
    }
    let mut times: Vec<f64> = runs.iter().map(|r| r.enqueue_ms).collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let worst_ms = times[times.len() - 1];
    let peak_kib = runs.iter().map(|r| r.vmhwm_kib).max().unwrap_or(0);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "scale: ENQUEUE {MEMBERS} rows: median {median:.0} ms, min {:.0} ms, max {worst_ms:.0} ms \
         (target < 2000 ms: {} by the median, {} by the slowest run)",
        times[0],
        verdict(median < 2000.0),
        verdict(worst_ms < 2000.0),
    );
    let mut polls: Vec<f64> = runs.iter().map(|r| r.progress_ms).collect();
    polls.sort_by(f64::total_cmp);
    let mut warm: Vec<f64> = runs.iter().map(|r| r.progress_median_ms).collect();
    warm.sort_by(f64::total_cmp);
    println!(
        "scale: PROGRESS POLL on {MEMBERS} queued rows (first poll of each run): min {:.1} ms, \
         median {:.1} ms, max {:.1} ms (target < 20 ms: {}); later polls (median of 5 per run): \
         min {:.1} ms, median {:.1} ms, max {:.1} ms",
        polls[0],
        polls[polls.len() / 2],
        polls[polls.len() - 1],
        verdict(polls[polls.len() / 2] < 20.0),
        warm[0],
        warm[warm.len() / 2],
        warm[warm.len() - 1],
    );
    println!(
        "scale: PEAK RSS (VmHWM, highest of {RUNS} runs): {:.1} MiB = {:.1} MB (target < 40 MB: {})",
        mib(peak_kib),
        peak_kib as f64 * 1024.0 / 1e6,
        verdict((peak_kib as f64) * 1024.0 < 40e6),
    );
}
