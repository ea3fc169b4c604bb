//! Balance check and keep-alive end to end (docs/modems.md, "Balance" and "Keep-alive"): the
//! daemon's upkeep task against simulated modems, with its hour shortened through
//! `DaemonOptions::upkeep` the way benchmarks shorten the rate limits' minute. The balance is read
//! through the real USSD path (Huawei's packed GSM 7-bit and SIMCom's UCS-2 answers), stored per
//! SIM, shown in `modems` and as `gsmgate_modem_balance`; falling below `low_balance` journals
//! `low_balance` once per crossing. The keep-alive fires once when a SIM has been idle for
//! `keepalive_days`, and not before (the SIM's first sighting is moved back in the database to
//! make it due, so no test waits a day).

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::path::Path;
use std::time::Duration;

use daemon_util::*;
use gsmgate::admin::protocol::{ModemInfo, SimInfo};
use gsmgate::config::Config;
use gsmgate::daemon::upkeep::UpkeepTiming;

const WAIT: Duration = Duration::from_secs(30);

fn config_text(dir: &Path, modems: &str) -> String {
    let d = dir.display();
    format!(
        r#"
[daemon]
state_dir = "{d}/state"
admin_socket = "{d}/a.sock"
log = "debug"

[simulator]
enabled = true
modems = 2
dir = "{d}/sim"
profiles = ["huawei", "simcom"]

{modems}
[dispatch]
jitter_ms = 0

[dispatch.quiet_hours]
enabled = false

[community]
org_name = "Testorg"
"#
    )
}

async fn sim_of(gw: &Gateway, modem: &str) -> Option<SimInfo> {
    let ms: Vec<ModemInfo> = gw.client().await.modems().await.ok()?;
    ms.into_iter().find(|m| m.name == modem)?.sim
}

/// Waits until `modem`'s stored balance reads `want`; returns the SIM then.
async fn balance_reads(gw: &Gateway, modem: &str, want: f64) -> SimInfo {
    poll(&format!("{modem} balance {want}"), WAIT, || async {
        let s = sim_of(gw, modem).await?;
        (s.balance == Some(want)).then_some(s)
    })
    .await
}

fn journal(gw: &Gateway, kind: &str) -> Vec<serde_json::Value> {
    gw.daemon
        .store()
        .events_after(0, &[kind.to_string()], 100)
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_is_read_shown_and_low_balance_is_raised_once_per_crossing() {
    let modems = |dir: &Path| {
        let d = dir.display();
        format!(
            "[[modem]]\nname = \"sim0\"\nport = \"{d}/sim/modem0\"\nprofile = \"huawei\"\n\
             balance_ussd = \"*100#\"\nbalance_every_hours = 1\nlow_balance = 5.0\n\n\
             [[modem]]\nname = \"sim1\"\nport = \"{d}/sim/modem1\"\nprofile = \"simcom\"\n\
             balance_ussd = \"*100#\"\nbalance_every_hours = 1\n\n"
        )
    };
    // The port paths depend on the temp dir, so build the config inside it.
    let dir = short_tempdir();
    let text = config_text(dir.path(), &modems(dir.path()));
    let cfg = Config::from_str(&text, "test.toml").unwrap();
    let mut opts = options(&cfg);
    opts.upkeep = UpkeepTiming {
        tick: Duration::from_millis(50),
        hour: Duration::from_millis(300),
    };
    let gw = Gateway::start_in(dir, cfg, opts).await;

    // The simulator's answer: "Balance: 12.34 EUR, valid until 31.12.2026", in both forms.
    for m in ["sim0", "sim1"] {
        let s = balance_reads(&gw, m, 12.34).await;
        assert!(!s.low_balance && s.balance_at.is_some(), "{m}: {s:?}");
        assert!(s.balance_text.unwrap().starts_with("Balance: 12.34 EUR"));
    }
    let metrics = gw.daemon.metrics().render().await;
    assert!(
        metrics.contains("gsmgate_modem_balance{modem=\"sim0\"} 12.34"),
        "{metrics}"
    );

    // Down below the threshold, lower still, back up, and below again: two crossings.
    let sim = gw.sim();
    sim.set_ussd_balance(0, "Balance: 3.10 EUR").unwrap();
    assert!(balance_reads(&gw, "sim0", 3.1).await.low_balance);
    sim.set_ussd_balance(0, "Balance: 2.00 EUR").unwrap();
    assert!(balance_reads(&gw, "sim0", 2.0).await.low_balance);
    assert_eq!(journal(&gw, "low_balance").len(), 1);
    sim.set_ussd_balance(0, "Balance: 9.00 EUR").unwrap();
    assert!(!balance_reads(&gw, "sim0", 9.0).await.low_balance);
    sim.set_ussd_balance(0, "Balance: 1.00 EUR").unwrap();
    balance_reads(&gw, "sim0", 1.0).await;
    // sim1 has no threshold: never low, whatever it reads.
    sim.set_ussd_balance(1, "Balance: 0.10 EUR").unwrap();
    assert!(!balance_reads(&gw, "sim1", 0.1).await.low_balance);

    let events = journal(&gw, "low_balance");
    assert_eq!(events.len(), 2, "{events:?}");
    for (e, want) in events.iter().zip([3.1, 1.0]) {
        assert_eq!(e["modem"], "sim0");
        assert_eq!(e["balance"], want);
        assert_eq!(e["threshold"], 5.0);
    }
    gw.shutdown().await;
}

/// Moves every SIM's first sighting `by_ms` into the past (as if the gateway had known it that
/// long), through a second connection to the daemon's database.
fn age_sims(dir: &Path, by_ms: i64) {
    let conn = rusqlite::Connection::open(dir.join("state/gsmgate.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute(
        "UPDATE sims SET first_seen_at = first_seen_at - ?1",
        [by_ms],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_fires_once_when_due_and_not_before() {
    // An "hour" of 2 s makes keepalive_days = 1 a 48 s day; sim0's hourly balance check counts
    // the upkeep task's rounds for the "not before" part.
    let hour = Duration::from_secs(2);
    let dir = short_tempdir();
    let d = dir.path().display();
    let modems = format!(
        "[[modem]]\nname = \"sim0\"\nport = \"{d}/sim/modem0\"\nprofile = \"huawei\"\n\
         balance_ussd = \"*100#\"\nbalance_every_hours = 1\n\
         keepalive_days = 1\nkeepalive_sms = {{ to = \"{CAROL}\", text = \"keep-alive\" }}\n\n\
         [[modem]]\nname = \"sim1\"\nport = \"{d}/sim/modem1\"\nprofile = \"simcom\"\n\
         keepalive_days = 1\nkeepalive_ussd = \"*100#\"\n\n"
    );
    let cfg = Config::from_str(&config_text(dir.path(), &modems), "test.toml").unwrap();
    let mut opts = options(&cfg);
    opts.upkeep = UpkeepTiming {
        tick: Duration::from_millis(50),
        hour,
    };
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let ussd_on_sim1 = |gw: &Gateway| gw.sim().status()[1].ussd_requests;

    // Not due: balance rounds pass, and neither SIM has sent a keep-alive.
    let first = balance_reads(&gw, "sim0", 12.34).await.balance_at.unwrap();
    poll("another balance round", WAIT, || async {
        let s = sim_of(&gw, "sim0").await?;
        (s.balance_at.as_deref() != Some(first.as_str())).then_some(())
    })
    .await;
    assert!(gw.received_texts(CAROL).is_empty());
    assert_eq!(ussd_on_sim1(&gw), 0);
    assert!(
        sim_of(&gw, "sim1")
            .await
            .and_then(|s| s.keepalive_at)
            .is_none()
    );

    // Idle for longer than a "day": each SIM sends exactly one keep-alive.
    age_sims(gw.dir.path(), 50_000);
    poll("the keep-alive SMS arrives", WAIT, || async {
        (gw.received_texts(CAROL) == ["keep-alive"]).then_some(())
    })
    .await;
    poll("the keep-alive USSD is sent", WAIT, || async {
        (ussd_on_sim1(&gw) == 1).then_some(())
    })
    .await;
    let from_sim0 = gw.sim().received(Some(CAROL));
    assert_eq!(from_sim0[0].modem, Some(0), "{from_sim0:?}");
    // Further rounds send nothing more: the keep-alive itself restarted the idle clock.
    for _ in 0..2 {
        let before = sim_of(&gw, "sim0").await.unwrap().balance_at.unwrap();
        poll("another balance round", WAIT, || async {
            let s = sim_of(&gw, "sim0").await?;
            (s.balance_at.as_deref() != Some(before.as_str())).then_some(())
        })
        .await;
    }
    assert_eq!(gw.received_texts(CAROL), ["keep-alive"]);
    assert_eq!(ussd_on_sim1(&gw), 1);
    let s0 = sim_of(&gw, "sim0").await.unwrap();
    assert!(
        s0.keepalive_at.is_some() && s0.last_sent_at.is_some(),
        "{s0:?}"
    );
    gw.shutdown().await;
}
