//! Sites benchmark (`cargo bench --bench sites`): how fast 1, 2 and 4 sites sharing ONE real
//! PostgreSQL server (docs/scale-out.md) drain a broadcast through the send path's two store calls
//! (`Store::claim_next_with_parts`, then `Store::mark_sent_and_claim_next` for every further row),
//! and how long the call that claims takes; the same loop on SQLite (one site, a file in a temp
//! dir, the daemon's settings) for comparison. Figures and their reading: docs/benchmarks.md,
//! "Sites".
//!
//! What it models, and why:
//! - A site is one `Store` (one connection, as one daemon has) shared by 2 modem threads, as a
//!   daemon's 2 send loops share it. Modems are simulated at no limit and with no submit delay at
//!   all: between its claim and the `sent` mark a thread does nothing, so the database (and the
//!   writers' one advisory lock, store/db.rs) is all that is measured. Real SIMs send a few SMS a
//!   minute; this is the ceiling the store puts above them.
//! - Each member has a home modem, spread round-robin over every modem of every site, as a
//!   broadcast enqueues rows (sticky sender). The claim route is the runner's: the pool is every
//!   site's modems, no takeover. Each row therefore has one modem that may take it, the split is
//!   exact at any site count, and what is measured is the contention of the shared write lock,
//!   not work stealing (which only happens after a failover).
//! - Each site count gets a fresh database on the same server, so no run sees another's rows.
//! - The server is tests/pg_util's throw-away PostgreSQL on loopback. Its default is
//!   `fsync = off` (fine for correctness tests); here it is switched on (`ALTER SYSTEM`, reloaded)
//!   so a commit costs what it costs in production, as SQLite's `synchronous = FULL` does.
//!   `SITES_PG_FSYNC=off` keeps it off, to see the database's CPU cost alone.
//! - Every claimed id is collected per thread: the bench fails if any row was claimed twice, or
//!   if the store's own count of sent rows differs from the broadcast's size.
//!
//! Knobs: `SITES_ROWS` (rows per broadcast, default 5,000, the broadcast), `SITES_COUNTS` (site counts, default
//! `1,2,4`), `SITES_PG_FSYNC` (`on`/`off`), `SITES_SQLITE=0` skips SQLite, `SITES_PG=0` skips
//! PostgreSQL. Plain `Instant` timing of one run per configuration: the machine is a noisy
//! 2-core box shared with builds, so read the figures as ±20 %.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../pg_util/mod.rs"]
mod pg_util;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use gsmgate::model::MessageKind;
use gsmgate::store::pg::{Password, PgConfig};
use gsmgate::store::{ClaimRoute, NewOutbox, SentMark, Store};

/// Modems (send loops) per site, as a daemon with two USB modems has.
const MODEMS_PER_SITE: usize = 2;

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn modem_name(site: usize, k: usize) -> String {
    format!("s{site}m{k}")
}

/// What one modem thread saw: the id of every row it claimed, and the time of every call.
#[derive(Default)]
struct Thread {
    ids: Vec<i64>,
    calls: Vec<Duration>,
}

/// One configuration's figures.
struct Figures {
    label: String,
    sites: usize,
    modems: usize,
    rows: usize,
    fill: Duration,
    wall: Duration,
    calls: Vec<Duration>,
    claimed: usize,
    duplicates: usize,
    sent_by_store: u64,
    per_modem: (usize, usize),
}

impl Figures {
    /// Every row claimed by exactly one thread, and the store counts each one sent.
    fn exactly_once(&self) -> bool {
        self.duplicates == 0 && self.claimed == self.rows && self.sent_by_store == self.rows as u64
    }
}

/// The loop of one send loop: claim, (no submit), mark sent with the next claim, until nothing
/// is left for this modem. Every call is timed; a store error ends the thread with its text.
fn send_loop(store: &Store, modem: &str, route: &ClaimRoute) -> Result<Thread, String> {
    let mut out = Thread::default();
    let t = Instant::now();
    let mut next = store
        .claim_next_with_parts(modem, now_ms(), route)
        .map_err(|e| format!("claim_next_with_parts on {modem}: {e}"))?;
    out.calls.push(t.elapsed());
    let mut mr: u8 = 0;
    while let Some(gsmgate::store::Claimed { row, .. }) = next {
        out.ids.push(row.id);
        mr = mr.wrapping_add(1);
        let now = now_ms();
        let mark = SentMark {
            id: row.id,
            last_part: Some((1, 1, mr, now)),
            now,
        };
        let t = Instant::now();
        let (_state, claimed) = store
            .mark_sent_and_claim_next(&mark, modem, now, route)
            .map_err(|e| format!("mark_sent_and_claim_next on {modem}: {e}"))?;
        out.calls.push(t.elapsed());
        next = claimed;
    }
    Ok(out)
}

/// The broadcast: `rows` members homed round-robin on `modems`.
fn fill(store: &Store, modems: &[String], rows: usize) -> Result<(i64, Duration), String> {
    let now = now_ms();
    let rows: Vec<NewOutbox> = (0..rows)
        .map(|i| NewOutbox {
            modem_pref: Some(modems[i % modems.len()].clone()),
            parts: Some(1),
            ..NewOutbox::new(
                format!("+1312{i:07}"),
                "Hi, the community meeting is on Thursday at 7pm at the library.",
                MessageKind::Bulk,
                now - 1_000,
            )
        })
        .collect();
    let t = Instant::now();
    let (id, inserted) = store
        .create_broadcast("bench", "all", None, &rows, now)
        .map_err(|e| format!("create_broadcast: {e}"))?;
    if inserted != rows.len() {
        return Err(format!(
            "create_broadcast inserted {inserted} of {}",
            rows.len()
        ));
    }
    Ok((id, t.elapsed()))
}

/// Fills the broadcast through the first site's store, then runs every site's modem threads at
/// once (a barrier starts them together) until all are done.
fn drive(label: String, sites: Vec<Store>, rows: usize) -> Result<Figures, String> {
    let n_sites = sites.len();
    let all: Vec<String> = (0..n_sites)
        .flat_map(|s| (0..MODEMS_PER_SITE).map(move |k| modem_name(s, k)))
        .collect();
    let (broadcast, fill_time) = fill(&sites[0], &all, rows)?;
    let route = Arc::new(ClaimRoute {
        pool: all.clone(),
        takeover: vec![],
    });
    let barrier = Arc::new(Barrier::new(all.len() + 1));
    let mut handles = Vec::new();
    for (s, store) in sites.iter().enumerate() {
        for k in 0..MODEMS_PER_SITE {
            let (store, route, barrier) = (store.clone(), route.clone(), barrier.clone());
            let modem = modem_name(s, k);
            handles.push(std::thread::spawn(move || {
                barrier.wait();
                send_loop(&store, &modem, &route)
            }));
        }
    }
    barrier.wait();
    let start = Instant::now();
    let threads: Vec<Result<Thread, String>> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
        .collect();
    let wall = start.elapsed();
    let mut calls = Vec::new();
    let mut seen = HashSet::new();
    let (mut duplicates, mut claimed) = (0, 0);
    let mut per_modem = (usize::MAX, 0);
    for t in threads {
        let t = t?;
        per_modem = (per_modem.0.min(t.ids.len()), per_modem.1.max(t.ids.len()));
        claimed += t.ids.len();
        duplicates += t.ids.iter().filter(|id| !seen.insert(**id)).count();
        calls.extend(t.calls);
    }
    let progress = sites[0]
        .broadcast_progress(broadcast)
        .map_err(|e| format!("broadcast_progress: {e}"))?;
    calls.sort_unstable();
    Ok(Figures {
        label,
        sites: n_sites,
        modems: all.len(),
        rows,
        fill: fill_time,
        wall,
        calls,
        claimed,
        duplicates,
        sent_by_store: progress.sent + progress.delivered,
        per_modem,
    })
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print(f: &Figures) {
    let exact = f.exactly_once();
    println!(
        "sites: {:<10} sites={} modems={} rows={} wall={:.2} s throughput={:.0} rows/s claim \
         latency p50={:.2} ms p99={:.2} ms max={:.1} ms ({} calls); claimed={} sent(store)={} \
         twice=0? {} rows/modem {}..{}; exactly once: {} (fill {:.2} s)",
        f.label,
        f.sites,
        f.modems,
        f.rows,
        f.wall.as_secs_f64(),
        f.rows as f64 / f.wall.as_secs_f64(),
        ms(pct(&f.calls, 0.50)),
        ms(pct(&f.calls, 0.99)),
        ms(pct(&f.calls, 1.0)),
        f.calls.len(),
        f.claimed,
        f.sent_by_store,
        f.duplicates == 0,
        f.per_modem.0,
        f.per_modem.1,
        if exact { "yes" } else { "NO" },
        f.fill.as_secs_f64(),
    );
}

fn pg_config(server: &pg_util::PgServer, db: &str) -> PgConfig {
    let url = format!(
        "postgres://{}@127.0.0.1:{}/{db}?sslmode=disable",
        server.user,
        server.port()
    );
    PgConfig::from_url(&url)
        .expect("url")
        .with_password(Password::new(server.password.clone()))
}

/// One fresh database and `n` sites on it, each registered with its modems and a heartbeat.
fn pg_sites(server: &pg_util::PgServer, n: usize) -> Result<Vec<Store>, String> {
    let db = format!("sites{n}");
    server.create_database(&db);
    let now = now_ms();
    (0..n)
        .map(|s| {
            let store = Store::open_postgres(pg_config(server, &db))
                .map_err(|e| format!("open_postgres: {e}"))?;
            let site = format!("site{s}");
            let modems: Vec<String> = (0..MODEMS_PER_SITE).map(|k| modem_name(s, k)).collect();
            store
                .register_site(&site, &modems, now, now - 60_000, "bench")
                .map_err(|e| format!("register_site: {e}"))?;
            store
                .site_heartbeat(&site, &modems, now)
                .map_err(|e| format!("site_heartbeat: {e}"))?;
            Ok(store)
        })
        .collect()
}

fn run_pg(rows: usize, counts: &[usize], fsync: bool) -> Vec<Figures> {
    let server = pg_util::PgServer::start();
    let mut admin = server.superuser("postgres");
    let fsync_value = if fsync { "on" } else { "off" };
    admin
        .batch_execute(&format!("ALTER SYSTEM SET fsync = {fsync_value}"))
        .expect("set fsync");
    // A reload takes effect on the server's next look at its config: read it back until it has.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        admin
            .batch_execute("SELECT pg_reload_conf()")
            .expect("reload");
        let now: String = admin.query_one("SHOW fsync", &[]).expect("show").get(0);
        if now == fsync_value {
            break;
        }
        assert!(Instant::now() < deadline, "fsync stayed {now}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let settings: Vec<String> = [
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_sync_method",
        "shared_buffers",
    ]
    .iter()
    .map(|name| {
        let value: String = admin
            .query_one(&format!("SHOW {name}"), &[])
            .expect("show")
            .get(0);
        format!("{name}={value}")
    })
    .collect();
    println!(
        "sites: PostgreSQL on 127.0.0.1 (tests/pg_util): {}",
        settings.join(" ")
    );
    let mut out = Vec::new();
    for &n in counts {
        match pg_sites(&server, n).and_then(|s| drive("postgres".into(), s, rows)) {
            Ok(f) => {
                print(&f);
                out.push(f);
            }
            Err(e) => println!("sites: postgres {n} site(s) FAILED: {e}"),
        }
    }
    out
}

fn run_sqlite(rows: usize) -> Option<Figures> {
    let dir = tempfile::Builder::new()
        .prefix("gsmgate-sites-")
        .tempdir()
        .expect("temp dir");
    // Store::open applies the daemon's settings: WAL, synchronous = FULL, its cache size.
    let store = Store::open(dir.path().join("gsmgate.db")).expect("open");
    println!(
        "sites: SQLite file in {} (journal_mode={} synchronous={})",
        dir.path().display(),
        store.pragma("journal_mode").unwrap_or_default(),
        store.pragma("synchronous").unwrap_or_default(),
    );
    match drive("sqlite".into(), vec![store], rows) {
        Ok(f) => {
            print(&f);
            Some(f)
        }
        Err(e) => {
            println!("sites: sqlite FAILED: {e}");
            None
        }
    }
}

fn main() {
    let rows: usize = env_or("SITES_ROWS", 5_000);
    let counts: Vec<usize> = std::env::var("SITES_COUNTS")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect();
    let fsync = std::env::var("SITES_PG_FSYNC").map_or(true, |v| v.trim() != "off");
    println!(
        "sites: {rows}-row broadcast, {MODEMS_PER_SITE} modem threads per site sharing the \
         site's one store connection, no submit delay; claim latency = each \
         claim_next_with_parts / mark_sent_and_claim_next call"
    );
    let mut all = Vec::new();
    if env_or("SITES_PG", 1) != 0 {
        all.extend(run_pg(rows, &counts, fsync));
    }
    if env_or("SITES_SQLITE", 1) != 0 {
        all.extend(run_sqlite(rows));
    }
    println!(
        "\n| backend | sites | modems | rows | wall s | rows/s | p50 ms | p99 ms | max ms | exactly once |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for f in &all {
        let exact = f.exactly_once();
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1} | {} |",
            f.label,
            f.sites,
            f.modems,
            f.rows,
            f.wall.as_secs_f64(),
            f.rows as f64 / f.wall.as_secs_f64(),
            ms(pct(&f.calls, 0.50)),
            ms(pct(&f.calls, 0.99)),
            ms(pct(&f.calls, 1.0)),
            if exact { "yes" } else { "NO" },
        );
    }
    let broken: Vec<&Figures> = all.iter().filter(|f| !f.exactly_once()).collect();
    assert!(
        broken.is_empty(),
        "rows not claimed exactly once in: {:?}",
        broken
            .iter()
            .map(|f| (&f.label, f.sites))
            .collect::<Vec<_>>()
    );
}
