//! Webhook delivery across kill -9 (docs/http-api.md, "Webhooks": at least once, no gap, de-
//! duplicate by id). The REAL binary runs as a child process with the simulator as its own
//! process (as tests/daemon_crash.rs), and is killed with SIGKILL twice:
//!
//! 1. while the receiver holds a delivery unanswered — the event was received but the daemon
//!    never learnt it, so it must come again after the restart (a duplicate the receiver drops);
//! 2. while the receiver is down (its port closed) and events keep being journaled — nothing
//!    was delivered, and everything must arrive once the receiver is back.
//!
//! At the end the receiver, which verifies every request as the docs say, has seen every event
//! id from 1 to the journal's last, with no gap, and its de-duplicated set is exactly that range.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;
mod webhook_receiver;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gsmgate::admin::Client;
use gsmgate::admin::protocol::MemberAddArgs;
use gsmgate::config::Config;
use gsmgate::store::Store;

use daemon_util::{poll, short_tempdir};
use webhook_receiver::Receiver;

const SECRET: &str = "crash-secret-0123456789abcdef";
const MODEMS: usize = 2;

/// A child process that is killed (SIGKILL) and reaped when dropped.
struct Proc {
    child: Child,
    what: &'static str,
}

impl Proc {
    fn spawn(what: &'static str, args: &[&str], log: &Path) -> Proc {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_gsmgate"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Proc { child, what }
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        assert!(!status.success(), "{} was killed", self.what);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn config_text(d: &Path, url: &str) -> String {
    let d = d.display();
    let mut modems = String::new();
    for i in 0..MODEMS {
        modems.push_str(&format!(
            "[[modem]]\nname = \"sim{i}\"\nport = \"{d}/sim/modem{i}\"\n\n"
        ));
    }
    format!(
        r#"
[daemon]
state_dir = "{d}/state"
admin_socket = "{d}/a.sock"
log = "info"

[simulator]
enabled = false

{modems}
[dispatch]
jitter_ms = 0

[dispatch.quiet_hours]
enabled = false

[[webhook]]
name = "crm"
url = "{url}"
secret = "{SECRET}"
"#
    )
}

async fn wait_answering(socket: &Path, daemon: &mut Proc, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = daemon.child.try_wait().expect("try_wait") {
            panic!(
                "daemon exited with {status} before answering:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(mut c) = Client::connect(socket).await
            && c.ping().await.is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "daemon not answering in 30 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn add_members(socket: &Path, from: usize, to: usize) {
    let mut c = Client::connect(socket).await.expect("admin");
    for i in from..to {
        c.members_add(MemberAddArgs {
            number: format!("+1415555{:04}", 100 + i),
            ..MemberAddArgs::default()
        })
        .await
        .expect("members_add");
    }
}

fn last_event_id(db: &Path) -> i64 {
    Store::open(db)
        .expect("store")
        .last_event_id()
        .expect("last id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_with_no_gap_across_two_kill_9s_and_dedupes_to_exactly_once() {
    let rx = Receiver::start(SECRET).await;
    let dir = short_tempdir();
    let d = dir.path();
    let sim_dir = d.join("sim");
    let _sim = Proc::spawn(
        "gsmgate sim",
        &[
            "sim",
            "--modems",
            &MODEMS.to_string(),
            "--dir",
            sim_dir.to_str().unwrap(),
            "--latency-ms",
            "1-5",
        ],
        &d.join("sim.log"),
    );
    poll("simulator ports", Duration::from_secs(20), || {
        let ok = (0..MODEMS).all(|i| sim_dir.join(format!("modem{i}")).exists());
        async move { ok.then_some(()) }
    })
    .await;
    let config = d.join("gsmgate.toml");
    std::fs::write(&config, config_text(d, &rx.url())).unwrap();
    Config::from_file(&config).expect("test config validates");
    let socket = d.join("a.sock");
    let db = d.join("state").join(gsmgate::daemon::DATABASE_FILE);
    let args = ["daemon", "--config", config.to_str().unwrap()];

    // Run 1: deliveries flow; then the receiver holds one answer and the daemon dies waiting.
    let log1 = d.join("daemon1.log");
    let mut daemon = Proc::spawn("gsmgate daemon", &args, &log1);
    wait_answering(&socket, &mut daemon, &log1).await;
    add_members(&socket, 0, 10).await;
    poll("ten members delivered", Duration::from_secs(60), || async {
        (rx.ids().len() >= 10).then_some(())
    })
    .await;
    rx.set_delay(60_000);
    let before = rx.deliveries().len();
    add_members(&socket, 10, 15).await;
    poll(
        "a delivery held unanswered",
        Duration::from_secs(60),
        || async { (rx.deliveries().len() > before).then_some(()) },
    )
    .await;
    daemon.kill9();
    let held = rx.deliveries().last().unwrap().id;
    rx.set_delay(0);

    // Run 2: the receiver goes down, events keep coming, and the daemon dies again.
    let log2 = d.join("daemon2.log");
    let mut daemon = Proc::spawn("gsmgate daemon", &args, &log2);
    wait_answering(&socket, &mut daemon, &log2).await;
    poll(
        "the held event delivered again",
        Duration::from_secs(60),
        || async { (rx.deliveries().iter().filter(|x| x.id == held).count() >= 2).then_some(()) },
    )
    .await;
    rx.down();
    add_members(&socket, 15, 25).await;
    daemon.kill9();
    let after_second_kill = last_event_id(&db);

    // Run 3: the receiver comes back; everything journaled arrives.
    let log3 = d.join("daemon3.log");
    let mut daemon = Proc::spawn("gsmgate daemon", &args, &log3);
    wait_answering(&socket, &mut daemon, &log3).await;
    add_members(&socket, 25, 30).await;
    rx.up().await;
    let last = poll(
        "every journal event delivered",
        Duration::from_secs(120),
        || async {
            let last = last_event_id(&db);
            (last > after_second_kill && rx.ids().len() as i64 >= last).then_some(last)
        },
    )
    .await;

    let all: BTreeSet<i64> = (1..=last).collect();
    let deliveries = rx.deliveries();
    assert!(
        deliveries.iter().all(|x| x.verified),
        "every delivery verifies"
    );
    let seen: BTreeSet<i64> = deliveries.iter().map(|x| x.id).collect();
    assert!(
        all.is_subset(&seen),
        "a gap: missing {:?}",
        all.difference(&seen).collect::<Vec<_>>()
    );
    assert_eq!(rx.ids(), all, "de-duplicated by id: exactly once each");
    let duplicates = deliveries.iter().filter(|x| x.duplicate).count();
    assert!(duplicates >= 1, "the held event came twice");
    let joined = deliveries
        .iter()
        .filter(|x| !x.duplicate && x.kind == "member_joined")
        .count();
    assert_eq!(joined, 30, "one member_joined per member");
    println!(
        "{} events, {} deliveries, {duplicates} duplicates dropped by id",
        all.len(),
        deliveries.len()
    );
    drop(daemon);
}
