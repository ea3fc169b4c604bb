//! What holds a broadcast, end to end through the REAL binary: `gsmgate daemon --config FILE` as a
//! child process on a simulated modem limited to one SMS a minute and one an hour, quiet hours
//! configured around the current hour in UTC, and `gsmgate broadcasts --json` read as a script
//! would. One member lives in UTC (inside quiet hours), two in Pacific/Kiritimati (UTC+14, outside
//! them): the first of those goes out at once, the second waits for the next slot (an hour away,
//! so a slow machine cannot see it sent before the checks). The JSON must say both:
//! `quiet_hours` for 1 until the window's end, `rate_limit` for 1 on sim0 with the slot, and an
//! ETA; once the modem is unplugged, `modem_down` for the copy that waited for it. Issue 18:
//! before `held`, `broadcasts` said nothing about why copies waited.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The daemon, killed by its PID and reaped when dropped (also on a failed assertion).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gsmgate(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gsmgate"));
    c.current_dir(dir)
        .env("HOME", dir)
        .env_remove("GSMGATE_SOCKET")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null());
    c
}

fn admin(dir: &Path, args: &[&str]) -> Output {
    gsmgate(dir)
        .arg("--socket")
        .arg(dir.join("state/admin.sock"))
        .args(args)
        .output()
        .expect("gsmgate runs")
}

fn json(dir: &Path, args: &[&str]) -> Option<Value> {
    let out = admin(dir, args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Polls `f` every 250 ms until it gives `Some`, for up to `secs` seconds.
fn poll<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn broadcasts_json_names_quiet_hours_and_a_rate_limit_with_counts_until_and_eta() {
    let tmp = tempfile::Builder::new()
        .prefix("dh")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = tmp.path();
    // Quiet from an hour ago to two hours ahead, in UTC, whatever the hour the test runs.
    let hour = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .hour();
    let (start, end) = ((hour + 23) % 24, (hour + 2) % 24);
    std::fs::write(
        dir.join("gsmgate.toml"),
        format!(
            r#"[daemon]
state_dir = "state"

[simulator]
enabled = true
modems = 1
dir = "state/sim"

[[modem]]
name = "sim0"
port = "state/sim/modem0"
per_minute = 1
per_hour = 1

[dispatch]
default_time_zone = "UTC"
jitter_ms = 0

[dispatch.quiet_hours]
start = "{start:02}:00"
end = "{end:02}:00"
"#
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let _daemon = Daemon(
        gsmgate(dir)
            .args(["daemon", "--config", "gsmgate.toml"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("gsmgate daemon starts"),
    );
    poll("the modem to be ready", 120, || {
        json(dir, &["status", "--json"])
            .filter(|s| s["modems_ready"] == 1)
            .map(|_| ())
    });
    for (number, zone) in [
        ("+15557654401", "UTC"),
        ("+15557654402", "Pacific/Kiritimati"),
        ("+15557654403", "Pacific/Kiritimati"),
    ] {
        let out = admin(dir, &["members", "add", number, "--timezone", zone]);
        assert!(out.status.success(), "{out:?}");
    }
    let out = admin(dir, &["broadcast", "--json", "Hi {name}"]);
    assert!(out.status.success(), "{out:?}");

    // One Kiritimati copy goes at once; then the other waits for sim0's next slot.
    let item = poll("the quiet-hours and rate-limit holds", 120, || {
        let list = json(dir, &["broadcasts", "--json"])?;
        let b = list.as_array()?.first()?.clone();
        let reasons: Vec<&str> = b["held"]
            .as_array()?
            .iter()
            .filter_map(|h| h["reason"].as_str())
            .collect();
        (reasons == ["quiet_hours", "rate_limit"]).then_some(b)
    });
    let held = item["held"].as_array().unwrap();
    let quiet = &held[0];
    assert_eq!(quiet["count"], 1, "{item:#}");
    assert_eq!(quiet["zone"], "UTC");
    let until = quiet["until"].as_str().unwrap();
    assert!(
        until.ends_with(&format!("T{end:02}:00:00Z")),
        "quiet hours end at {end:02}:00 UTC: {until}"
    );
    let limit = &held[1];
    assert_eq!(limit["count"], 1, "{item:#}");
    assert_eq!(limit["modem"], "sim0");
    assert!(limit["until"].is_string(), "the next slot: {limit}");
    assert!(
        limit["detail"]
            .as_str()
            .unwrap()
            .contains("the limits of sim0"),
        "{limit}"
    );
    assert!(
        item["eta"].is_string(),
        "an ETA while rate limited: {item:#}"
    );

    // On a terminal-less run the table says the same in words.
    let out = admin(dir, &["broadcasts"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 held: quiet hours in UTC until"), "{text}");
    assert!(
        text.contains("1 held: waiting for the limits of sim0"),
        "{text}"
    );
    assert!(text.contains("all sent by about"), "{text}");

    // The modem is unplugged: the copy waiting for it now waits for a modem that is down.
    fault_unplug(&dir.join("state/sim/control.sock"));
    let item = poll("the modem-down hold", 120, || {
        let list = json(dir, &["broadcasts", "--json"])?;
        let b = list.as_array()?.first()?.clone();
        b["held"]
            .as_array()?
            .iter()
            .any(|h| h["reason"] == "modem_down")
            .then_some(b)
    });
    let down = item["held"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["reason"] == "modem_down")
        .unwrap();
    assert_eq!(down["count"], 1, "{item:#}");
    assert_eq!(down["modem"], "sim0");
    assert_eq!(down["until"], Value::Null);
}

/// Unplugs simulated modem 0 through the simulator's control socket (docs/simulator.md).
fn fault_unplug(control: &Path) {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(control).expect("control socket");
    s.write_all(b"{\"id\":1,\"cmd\":\"fault\",\"modem\":0,\"kind\":\"unplug\"}\n")
        .unwrap();
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    assert!(answer.contains("\"ok\":true"), "{answer}");
}
