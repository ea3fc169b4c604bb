//! Several gateways ("sites") sharing one PostgreSQL database (docs/scale-out.md), end to end,
//! against a real PostgreSQL server (tests/pg_util) and one simulated network with four modems:
//! site `a` drives modems 0 and 1 (`a0`, `a1`), site `b` modems 2 and 3 (`b0`, `b1`).
//!
//! Each site is a whole daemon on a tokio runtime of its own, on its own thread. "kill -9" of a
//! site is that runtime shut down in the background without the daemon's shutdown: every task
//! stops at its next `.await` and nothing of the daemon runs again (no shutdown path, no final
//! write), while a store call already on the blocking pool finishes or fails as a killed
//! process's last transaction would. The simulated network lives in the test's own runtime, so,
//! as with real phones, what it received survives the site.
//!
//! What is asserted (issue 17, "Guarantees across sites"):
//! - `site_killed_mid_broadcast_…`: a 5,000-member broadcast split by home modem; site `b` is
//!   killed when half of it is sent; after the failover time site `a` takes over b's members and
//!   finishes. No phone gets the broadcast twice; every member's row ends sent or delivered and
//!   its phone got it exactly once, except the rows `b` had in flight at the kill (at most one per
//!   modem), which the in-doubt policy leaves in doubt (received at most once), swept once.
//! - `stops_at_either_site_…`: 50 STOPs texted to random modems of both sites mid-broadcast:
//!   each number gets the one confirmation and nothing else afterwards; its broadcast row is
//!   cancelled, or was claimed before the STOP was stored.
//! - `the_database_restarting_mid_broadcast_…`: the server restarts mid-broadcast; both sites
//!   reconnect and finish; every member gets the broadcast exactly once.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;
mod pg_util;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gsmgate::admin::Client;
use gsmgate::admin::protocol::{BroadcastArgs, BroadcastItem};
use gsmgate::config::Config;
use gsmgate::daemon::{Daemon, DaemonOptions};
use gsmgate::model::MemberStatus;
use gsmgate::sim::{PhoneSms, SimConfig, SimHandle, Simulator};
use gsmgate::store::pg::{Password, PgConfig};
use gsmgate::store::{NewMember, Store};
use tokio_util::sync::CancellationToken;

use daemon_util::{poll, short_tempdir};
use pg_util::PgServer;

/// The failover time between sites in these tests (production: minutes). It must exceed the
/// longest stall of a live site's heartbeat, or the other site sweeps that live site's rows in
/// flight: 4 s did not, once, on the 2-core CI machine with a release build and other test
/// binaries beside this one (a row claimed by `a0` was swept while `a` was alive).
const FAILOVER: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_millis(250);
/// How long a whole broadcast may take on a loaded 2-core machine.
const FINISH: Duration = Duration::from_secs(300);

const SITES: [(&str, [&str; 2]); 2] = [("a", ["a0", "a1"]), ("b", ["b0", "b1"])];

fn member_number(i: usize) -> String {
    format!("+1415556{i:04}")
}

/// The site's configuration: its two modems on the shared simulator, PostgreSQL as the store.
fn site_config(dir: &Path, server: &PgServer, site: usize) -> Config {
    let (name, modems) = SITES[site];
    let d = dir.display();
    let mut text = format!(
        r#"
[daemon]
state_dir = "{d}/{name}"
admin_socket = "{d}/{name}.sock"
log = "info"

[dispatch]
jitter_ms = 0
failover_after_minutes = 1

[dispatch.quiet_hours]
enabled = false

[community]
org_name = "Testorg"

[store]
backend = "postgres"
url = "{url}"
password_file = "{d}/pg-password"
site = "{name}"
"#,
        url = server.url("disable"),
    );
    for (k, modem) in modems.iter().enumerate() {
        text.push_str(&format!(
            "\n[[modem]]\nname = \"{modem}\"\nport = \"{d}/sim/modem{}\"\n\
             per_minute = 600\nper_hour = 36000\nper_day = 864000\n",
            site * 2 + k
        ));
    }
    Config::from_str(&text, "site.toml").expect("site config validates")
}

fn site_options() -> DaemonOptions {
    DaemonOptions {
        modem_timeouts: gsmgate::modem::Timeouts::fast(),
        status_interval: Duration::from_millis(500),
        // The limits above are far from reached within a second-long "minute".
        limit_minute: Some(Duration::from_secs(1)),
        site_heartbeat: Some(HEARTBEAT),
        failover_after: Some(FAILOVER),
        ..DaemonOptions::default()
    }
}

/// A site's daemon on a runtime of its own (module doc), with its admin socket.
struct Site {
    socket: PathBuf,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Site {
    fn start(cfg: Config) -> Site {
        let socket = cfg.daemon.admin_socket.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let daemon = rt.block_on(Daemon::start_with(
                cfg,
                site_options(),
                CancellationToken::new(),
            ));
            let daemon = match daemon {
                Ok(d) => d,
                Err(e) => {
                    ready_tx.send(Err(e.to_string())).unwrap();
                    return;
                }
            };
            ready_tx.send(Ok(())).unwrap();
            // Either a kill or the test's end (the sender dropped).
            let killed = kill_rx.recv().is_ok();
            if killed {
                // No shutdown path runs: the daemon's tasks are dropped where they wait.
                std::mem::forget(daemon);
                rt.shutdown_background();
            } else {
                rt.block_on(daemon.shutdown());
            }
        });
        ready_rx
            .recv()
            .unwrap()
            .unwrap_or_else(|e| panic!("site starts: {e}"));
        Site {
            socket,
            kill: Some(kill_tx),
            thread: Some(thread),
        }
    }

    async fn client(&self) -> Client {
        Client::connect(&self.socket).await.expect("admin connects")
    }

    /// kill -9, as far as one process can do it to a part of itself (module doc).
    fn kill9(&mut self) {
        if let Some(tx) = self.kill.take() {
            tx.send(()).unwrap();
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    async fn wait_own_modems_ready(&self) {
        poll(
            "the site's modems ready",
            Duration::from_secs(60),
            || async {
                let modems = self.client().await.modems().await.ok()?;
                let own: Vec<_> = modems
                    .iter()
                    .filter(|m| !m.state.starts_with("remote"))
                    .collect();
                (!own.is_empty() && own.iter().all(|m| m.state == "ready")).then_some(())
            },
        )
        .await
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Dropping the kill sender ends the thread with a clean shutdown.
        self.kill.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The shared world: one PostgreSQL and one simulated network.
struct World {
    dir: tempfile::TempDir,
    server: PgServer,
    sim: SimHandle,
}

impl World {
    async fn start(members: usize) -> World {
        let dir = short_tempdir();
        // The synchronous client runs its own runtime: never directly on this one's threads.
        let server = tokio::task::block_in_place(PgServer::start);
        std::fs::write(
            dir.path().join("pg-password"),
            format!("{}\n", server.password),
        )
        .unwrap();
        let pg = PgConfig::from_url(&server.url("disable"))
            .unwrap()
            .with_password(Password::new(server.password.clone()));
        let store = tokio::task::spawn_blocking(move || Store::open_postgres(pg))
            .await
            .unwrap()
            .expect("the test's own store on the server");
        // Members split evenly by home modem over the four modems of the two sites.
        let homes = ["a0", "a1", "b0", "b1"];
        let rows: Vec<NewMember> = (0..members)
            .map(|i| NewMember {
                number: member_number(i),
                status: Some(MemberStatus::Active),
                home_modem: Some(homes[i % homes.len()].to_string()),
                joined_at: 1_000,
                ..NewMember::default()
            })
            .collect();
        tokio::task::spawn_blocking(move || store.import_members(&rows, 1_000))
            .await
            .unwrap()
            .expect("members imported");
        let mut sc = SimConfig::new(dir.path().join("sim"), 4, gsmgate::sim::Profile::Generic);
        sc.control_socket = false;
        for spec in &mut sc.modems {
            spec.latency.send = gsmgate::sim::MsRange(5, 15);
            spec.status_report_delay_ms = 100;
        }
        let sim = Simulator::start(sc).await.expect("simulator starts");
        World { dir, server, sim }
    }

    fn site(&self, i: usize) -> Site {
        Site::start(site_config(self.dir.path(), &self.server, i))
    }

    /// How many times each phone received `text`.
    fn received(&self, text: &str) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for r in self.sim.received(None) {
            if r.text == text {
                *out.entry(r.phone).or_default() += 1;
            }
        }
        out
    }

    /// Runs `f` on a superuser connection to the database (off the async threads).
    fn sql<T>(&self, f: impl FnOnce(&mut postgres::Client) -> T) -> T {
        tokio::task::block_in_place(|| f(&mut self.server.superuser(&self.server.db)))
    }

    /// Rows of broadcast `id` per state, straight from the database.
    fn states(&self, id: i64) -> HashMap<String, i64> {
        self.sql(|c| {
            c.query(
                "SELECT state, count(*) FROM outbox WHERE broadcast_id = $1 GROUP BY state",
                &[&id],
            )
            .unwrap()
            .into_iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect()
        })
    }
}

async fn broadcast(site: &Site, text: &str) -> i64 {
    let r = site
        .client()
        .await
        .broadcast(BroadcastArgs {
            text: text.into(),
            ..BroadcastArgs::default()
        })
        .await
        .expect("broadcast");
    r.id.expect("a real broadcast has an id")
}

async fn progress(site: &Site, id: i64) -> Option<BroadcastItem> {
    site.client().await.broadcast_progress(id).await.ok()
}

/// Nothing of broadcast `id` is queued or being sent any more.
async fn wait_settled(site: &Site, id: i64) -> BroadcastItem {
    poll(&format!("broadcast {id} settled"), FINISH, || async {
        let b = progress(site, id).await?;
        (b.queued == 0 && b.sending == 0).then_some(b)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_killed_mid_broadcast_is_taken_over_and_every_member_gets_it_once() {
    const MEMBERS: usize = 5_000;
    let world = World::start(MEMBERS).await;
    let a = world.site(0);
    let mut b = world.site(1);
    a.wait_own_modems_ready().await;
    b.wait_own_modems_ready().await;

    // Both sites see each other (status and modems on any site show all sites).
    let status = a.client().await.status().await.unwrap();
    let names: Vec<(&str, bool)> = status
        .sites
        .iter()
        .map(|s| (s.name.as_str(), s.this_site))
        .collect();
    assert_eq!(names, [("a", true), ("b", false)]);
    let modems = b.client().await.modems().await.unwrap();
    let seen: Vec<(&str, Option<&str>)> = modems
        .iter()
        .map(|m| (m.name.as_str(), m.site.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("b0", Some("b")),
            ("b1", Some("b")),
            ("a0", Some("a")),
            ("a1", Some("a"))
        ]
    );

    let text = "Site test: the market opens at 9 tomorrow";
    let id = broadcast(&a, text).await;
    poll("half of the broadcast sent", FINISH, || async {
        let b = progress(&a, id).await?;
        (b.sent + b.delivered >= (MEMBERS / 2) as u64).then_some(())
    })
    .await;
    // Rows site b holds in flight at this instant can only be these.
    b.kill9();
    let killed_at = std::time::Instant::now();

    let done = wait_settled(&a, id).await;
    assert!(
        killed_at.elapsed() >= FAILOVER,
        "b's members were sent before the failover time"
    );
    let states = world.states(id);
    let total: i64 = states.values().sum();
    assert_eq!(total, MEMBERS as i64, "{states:?}");
    let in_doubt = states.get("in_doubt").copied().unwrap_or(0);
    let settled =
        states.get("sent").copied().unwrap_or(0) + states.get("delivered").copied().unwrap_or(0);
    assert_eq!(settled + in_doubt, MEMBERS as i64, "{states:?} {done:?}");

    // Site a took over b's members after b fell silent.
    let taken: i64 = world.sql(|c| {
        c.query_one(
            "SELECT count(*) FROM outbox WHERE broadcast_id = $1 AND modem_pref LIKE 'b%'
               AND claimed_by LIKE 'a%' AND state IN ('sent', 'delivered')",
            &[&id],
        )
        .unwrap()
        .get(0)
    });
    assert!(taken > 0, "site a sent none of b's members: {states:?}");

    // Exactly once on the wire: nobody twice, everyone settled once.
    let got = world.received(text);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "received twice: {twice:?}");
    let doubtful: Vec<String> = world.sql(|c| {
        c.query(
            "SELECT to_number FROM outbox WHERE broadcast_id = $1 AND state = 'in_doubt'",
            &[&id],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect()
    });
    for i in 0..MEMBERS {
        let number = member_number(i);
        let n = got.get(&number).copied().unwrap_or(0);
        if !doubtful.contains(&number) {
            assert_eq!(n, 1, "{number} received the broadcast {n} times");
        }
    }
    // What is in doubt, and why: the rows b had in flight when it died (at most one per b
    // modem), swept by a with that reason; and, on a loaded machine, possibly a row a live
    // modem of a itself gave up on (an unanswered submit past the modem's bound is in doubt by
    // design, docs/dispatch.md), which a's own loop records. Either way each such phone got
    // the text at most once (checked above), and nothing else may be in doubt.
    let doubts: Vec<(String, Option<String>)> = world.sql(|c| {
        c.query(
            "SELECT coalesce(last_error, ''), claimed_by FROM outbox
             WHERE broadcast_id = $1 AND state = 'in_doubt'",
            &[&id],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    });
    let swept = doubts
        .iter()
        .filter(|(why, _)| why == "in flight on a site that went silent")
        .count();
    assert!(swept <= 2, "at most one swept row per b modem: {doubts:?}");
    for (why, by) in &doubts {
        let by = by.as_deref().unwrap_or("");
        if why == "in flight on a site that went silent" {
            assert!(by.starts_with('b'), "a swept row was not b's: {doubts:?}");
        } else {
            assert!(
                by.starts_with('a'),
                "a row in doubt for another reason: {doubts:?}"
            );
        }
    }
    assert_eq!(in_doubt as usize, doubts.len());
    // Site a says b is silent once b has missed its heartbeats for `status`'s 30 s.
    poll("a reports b silent", Duration::from_secs(90), || async {
        let status = a.client().await.status().await.ok()?;
        let b = status.sites.iter().find(|s| s.name == "b")?;
        (!b.alive && b.heartbeat_age_secs >= 30).then_some(())
    })
    .await;
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_at_either_site_mid_broadcast_stop_every_send_from_both() {
    const MEMBERS: usize = 1_200;
    const STOPS: usize = 50;
    let world = World::start(MEMBERS).await;
    let a = world.site(0);
    let b = world.site(1);
    a.wait_own_modems_ready().await;
    b.wait_own_modems_ready().await;

    let text = "Site test: bring a friend on Saturday";
    let id = broadcast(&b, text).await;
    poll("the broadcast under way", FINISH, || async {
        let p = progress(&a, id).await?;
        (p.sent + p.delivered >= 100).then_some(())
    })
    .await;
    // STOPs from members spread over the list, each to a pseudo-random modem of either site.
    let stoppers: Vec<String> = (0..STOPS).map(|k| member_number(k * 23 + 7)).collect();
    for (k, number) in stoppers.iter().enumerate() {
        world
            .sim
            .phone_sms(&PhoneSms {
                from: number.clone(),
                modem: (k * 7 + 3) % 4,
                text: "STOP".into(),
                ..PhoneSms::default()
            })
            .unwrap();
    }
    wait_settled(&a, id).await;
    poll("every STOP stored", FINISH, || async {
        let n: i64 = world.sql(|c| {
            c.query_one(
                "SELECT count(*) FROM members WHERE status = 'opted_out'",
                &[],
            )
            .unwrap()
            .get(0)
        });
        (n == STOPS as i64).then_some(())
    })
    .await;
    for number in &stoppers {
        let (since, state, claimed_at): (i64, String, Option<i64>) = world.sql(|c| {
            let since = c
                .query_one("SELECT since FROM opt_outs WHERE number = $1", &[number])
                .unwrap()
                .get(0);
            let row = c
                .query_one(
                    "SELECT state, claimed_at FROM outbox
                     WHERE broadcast_id = $1 AND to_number = $2",
                    &[&id, number],
                )
                .unwrap();
            (since, row.get(0), row.get(1))
        });
        match state.as_str() {
            "cancelled" => {}
            "sent" | "delivered" => assert!(
                claimed_at.is_some_and(|t| t <= since),
                "{number}: broadcast claimed at {claimed_at:?}, after its STOP at {since}"
            ),
            other => panic!("{number}: broadcast row {other}"),
        }
        // The one confirmation and nothing else but (at most) the broadcast claimed before.
        let texts: Vec<String> = world
            .sim
            .received(Some(number))
            .into_iter()
            .map(|r| r.text)
            .filter(|t| t != text)
            .collect();
        assert_eq!(texts.len(), 1, "{number} received {texts:?}");
        assert!(world.received(text).get(number).copied().unwrap_or(0) <= 1);
    }
    // The STOPs landed mid-broadcast: some rows were still queued and were cancelled.
    let cancelled = world.states(id).get("cancelled").copied().unwrap_or(0);
    assert!(
        cancelled > 0,
        "no STOP arrived before its member's row was sent"
    );
    // Everyone else got the broadcast exactly once.
    let got = world.received(text);
    for i in 0..MEMBERS {
        let number = member_number(i);
        if !stoppers.contains(&number) {
            assert_eq!(got.get(&number).copied(), Some(1), "{number}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_restarting_mid_broadcast_loses_and_doubles_nothing() {
    const MEMBERS: usize = 1_200;
    let mut world = World::start(MEMBERS).await;
    let a = world.site(0);
    let b = world.site(1);
    a.wait_own_modems_ready().await;
    b.wait_own_modems_ready().await;

    let text = "Site test: the hall is booked";
    let id = broadcast(&a, text).await;
    poll("a third of the broadcast sent", FINISH, || async {
        let p = progress(&a, id).await?;
        (p.sent + p.delivered >= (MEMBERS / 3) as u64).then_some(())
    })
    .await;
    // The restart must land mid-broadcast, or this test would prove nothing.
    let before = progress(&a, id).await.expect("progress before the restart");
    assert!(
        before.queued > 0,
        "the broadcast finished before the restart: {before:?}"
    );
    tokio::task::block_in_place(|| world.server.restart());
    let done = wait_settled(&b, id).await;
    let states = world.states(id);
    assert_eq!(
        states.get("sent").copied().unwrap_or(0) + states.get("delivered").copied().unwrap_or(0),
        MEMBERS as i64,
        "{states:?} {done:?}"
    );
    let got = world.received(text);
    for i in 0..MEMBERS {
        let number = member_number(i);
        assert_eq!(got.get(&number).copied(), Some(1), "{number}");
    }
    drop((a, b));
}
