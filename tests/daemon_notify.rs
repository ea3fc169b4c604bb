//! systemd notification with a real `NOTIFY_SOCKET` (docs/daemon.md, "systemd"): the REAL binary
//! runs as a child process with `NOTIFY_SOCKET` and `WATCHDOG_USEC` set on the child only, and
//! the test reads the datagrams on a Unix socket it bound in a temp dir, as systemd would.
//!
//! Asserted: `READY=1` arrives, and when it does the admin socket answers (the daemon sends it
//! only after a ping over its own socket succeeded); `STATUS=` lines with the modem summary
//! arrive; `WATCHDOG=1` arrives, the gap between two pings never exceeding `WATCHDOG_USEC`.
//!
//! Not asserted here: that the pings stop when the store is wedged. The liveness check is a store
//! query (`src/daemon/mod.rs`, `supervise`), and nothing outside the process can wedge it: the
//! database runs in WAL mode, where no lock another process can take through SQLite blocks a
//! reader, and the daemon has no switch to wedge its store (adding one to the production binary
//! only for this test was ruled out). SIGSTOP would stop the pings too, but proves nothing about
//! the store check.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gsmgate::admin::Client;
use tokio::net::UnixDatagram;

use daemon_util::short_tempdir;

/// The watchdog interval given to the child: the daemon pings at half of it.
const WATCHDOG: Duration = Duration::from_secs(6);

/// The daemon child, killed and reaped when dropped so a failed assertion leaves nothing behind.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn config_text(d: &Path) -> String {
    let d = d.display();
    format!(
        r#"
[daemon]
state_dir = "{d}/state"
admin_socket = "{d}/a.sock"
log = "info"

[simulator]
enabled = true
modems = 1
dir = "{d}/sim"

[community]
org_name = "Notifyorg"

[community.contact_card]
name = "Test Leader"
numbers = ["+14155550199"]
mode = "text"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_status_and_watchdog_reach_a_real_notify_socket() {
    let dir = short_tempdir();
    let notify_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&notify_path).unwrap();
    let cfg = dir.path().join("gsmgate.toml");
    std::fs::write(&cfg, config_text(dir.path())).unwrap();
    let log = dir.path().join("daemon.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gsmgate"))
        .args(["daemon", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string())
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut daemon = Daemon(child);
    let admin = dir.path().join("a.sock");
    let fail = |what: &str| -> ! {
        panic!(
            "{what}; daemon log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    };

    let mut buf = vec![0u8; 4096];
    let mut ready_at = None;
    let mut statuses = Vec::new();
    let mut pings: Vec<Instant> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while pings.len() < 4 || statuses.is_empty() {
        if Instant::now() > deadline {
            fail(&format!(
                "notifications incomplete: ready {ready_at:?}, status {statuses:?}, {} pings",
                pings.len()
            ));
        }
        if let Ok(Some(status)) = daemon.0.try_wait() {
            fail(&format!("daemon exited with {status}"));
        }
        let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await
        else {
            continue;
        };
        let now = Instant::now();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        for line in text.lines() {
            if line == "READY=1" {
                assert!(ready_at.is_none(), "READY=1 sent twice");
                // The admin socket answers the moment READY arrives.
                let mut c = Client::connect(&admin)
                    .await
                    .unwrap_or_else(|e| fail(&format!("READY=1 before the admin socket: {e}")));
                c.ping()
                    .await
                    .unwrap_or_else(|e| fail(&format!("READY=1 before a ping answers: {e}")));
                ready_at = Some(now);
            } else if let Some(s) = line.strip_prefix("STATUS=") {
                statuses.push(s.to_string());
            } else if line == "WATCHDOG=1" {
                assert!(ready_at.is_some(), "WATCHDOG=1 before READY=1");
                pings.push(now);
            }
        }
    }
    let ready_at = ready_at.expect("READY=1");
    assert!(
        statuses.iter().any(|s| s.contains("modems ready")),
        "{statuses:?}"
    );
    // The first ping within the interval after READY, and never a gap longer than the interval.
    assert!(
        pings[0] - ready_at <= WATCHDOG,
        "first ping {:?} after READY",
        pings[0] - ready_at
    );
    for w in pings.windows(2) {
        assert!(
            w[1] - w[0] <= WATCHDOG,
            "watchdog gap {:?} > {WATCHDOG:?}",
            w[1] - w[0]
        );
    }
    drop(daemon);
}
