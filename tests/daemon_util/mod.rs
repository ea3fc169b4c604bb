//! Shared helpers of the daemon end-to-end tests (pueue/greetd style): start the gateway
//! in-process on a temp dir with the simulator on real pseudo-terminals, talk to it only through
//! the admin client and the simulator handle, and poll for conditions with deadlines.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gsmgate::admin::Client;
use gsmgate::admin::protocol::{
    BroadcastArgs, ConversationArgs, ConversationItem, InboxArgs, InboxItem, MemberAddArgs,
};
use gsmgate::config::Config;
use gsmgate::daemon::{Daemon, DaemonOptions, RunningDaemon};
use gsmgate::sim::{PhoneSms, SimHandle};
use tokio_util::sync::CancellationToken;

/// Phones of the simulated network (valid NANP numbers, so they normalise to E.164).
pub const ALICE: &str = "+14155550101";
pub const BOB: &str = "+14155550102";
pub const CAROL: &str = "+14155550103";

/// The test configuration: two simulated modems, state, sim and socket in `dir`; no quiet hours
/// and no jitter so sends are immediate; a text contact card.
pub fn config_text(dir: &Path) -> String {
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

[[modem]]
name = "sim0"
port = "{d}/sim/modem0"

[[modem]]
name = "sim1"
port = "{d}/sim/modem1"

[dispatch]
jitter_ms = 0

[dispatch.quiet_hours]
enabled = false

[community]
org_name = "Testorg"

[community.contact_card]
name = "Test Leader"
numbers = ["+14155550199"]
mode = "text"
"#
    )
}

pub fn config(dir: &Path) -> Config {
    Config::from_str(&config_text(dir), "test.toml").expect("test config validates")
}

/// Options for tests: fast modem timeouts, fast sim latencies.
pub fn options(cfg: &Config) -> DaemonOptions {
    let mut sim = cfg.simulator.sim_config();
    sim.control_socket = false;
    for spec in &mut sim.modems {
        spec.latency.send = gsmgate::sim::MsRange(20, 40);
        spec.status_report_delay_ms = 100;
    }
    DaemonOptions {
        modem_timeouts: gsmgate::modem::Timeouts::fast(),
        sim: Some(sim),
        status_interval: Duration::from_millis(500),
        reassembly_timeout: Duration::from_secs(600),
        announce: false,
        limit_minute: None,
        ..DaemonOptions::default()
    }
}

pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub daemon: RunningDaemon,
}

/// How long the end-to-end helpers wait for an outcome.
const WAIT: Duration = Duration::from_secs(30);

impl Gateway {
    /// A gateway on a fresh temp dir, with every modem ready.
    pub async fn start() -> Gateway {
        let dir = short_tempdir();
        let cfg = config(dir.path());
        let opts = options(&cfg);
        Gateway::start_in(dir, cfg, opts).await
    }

    pub async fn start_in(dir: tempfile::TempDir, cfg: Config, opts: DaemonOptions) -> Gateway {
        let daemon = Daemon::start_with(cfg, opts, CancellationToken::new())
            .await
            .expect("daemon starts");
        let gw = Gateway { dir, daemon };
        gw.wait_modems_ready().await;
        gw
    }

    pub fn sim(&self) -> SimHandle {
        self.daemon.sim().expect("simulator enabled")
    }

    pub fn socket(&self) -> PathBuf {
        self.daemon.socket_path().to_path_buf()
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.socket())
            .await
            .expect("admin connects")
    }

    pub async fn wait_modems_ready(&self) {
        let socket = self.socket();
        poll("every modem ready", Duration::from_secs(20), || {
            let socket = socket.clone();
            async move {
                let mut c = Client::connect(&socket).await.ok()?;
                let modems = c.modems().await.ok()?;
                modems.iter().all(|m| m.state == "ready").then_some(())
            }
        })
        .await
    }

    /// A phone texts modem `modem`.
    pub fn text_in(&self, from: &str, modem: usize, text: &str) {
        self.sim()
            .phone_sms(&PhoneSms {
                from: from.into(),
                modem,
                text: text.into(),
                ..PhoneSms::default()
            })
            .expect("phone_sms");
    }

    pub async fn inbox(&self) -> Vec<InboxItem> {
        self.client()
            .await
            .inbox(InboxArgs {
                unread_only: false,
                limit: Some(100),
                since: None,
            })
            .await
            .expect("inbox")
    }

    pub async fn conversation(&self, number: &str) -> Vec<ConversationItem> {
        self.client()
            .await
            .conversation(ConversationArgs {
                number: number.into(),
                limit: Some(100),
            })
            .await
            .expect("conversation")
    }

    /// Texts phone `phone` has received, in order.
    pub fn received_texts(&self, phone: &str) -> Vec<String> {
        self.sim()
            .received(Some(phone))
            .into_iter()
            .map(|r| r.text)
            .collect()
    }

    /// Adds `number` as an active member (the CLI's `members add`).
    pub async fn add_member(&self, number: &str) {
        self.client()
            .await
            .members_add(MemberAddArgs {
                number: number.into(),
                ..MemberAddArgs::default()
            })
            .await
            .unwrap_or_else(|e| panic!("members_add {number}: {e}"));
    }

    /// Broadcasts `text` to everyone, waits until every copy went out and the phones in `reach`
    /// have it; returns the number of recipients and of opted-out exclusions.
    pub async fn broadcast_and_wait(&self, text: &str, reach: &[&str]) -> (usize, usize) {
        let result = self
            .client()
            .await
            .broadcast(BroadcastArgs {
                text: text.into(),
                segment: None,
                at: None,
                dry_run: false,
                ..BroadcastArgs::default()
            })
            .await
            .unwrap_or_else(|e| panic!("broadcast {text:?}: {e}"));
        let id = result.id.expect("a real broadcast has an id");
        poll(&format!("broadcast {id} finished"), WAIT, || async {
            let b = self.client().await.broadcast_progress(id).await.ok()?;
            (b.queued == 0 && b.sending == 0 && b.sent + b.delivered == b.total).then_some(())
        })
        .await;
        for phone in reach {
            poll(&format!("{phone} receives {text:?}"), WAIT, || async {
                self.received_texts(phone)
                    .iter()
                    .any(|t| t == text)
                    .then_some(())
            })
            .await;
        }
        (result.recipients, result.excluded.opted_out)
    }

    pub async fn shutdown(self) -> tempfile::TempDir {
        self.daemon.shutdown().await;
        self.dir
    }
}

/// A temp dir with a short path (Unix socket paths must stay under ~100 bytes).
pub fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gd")
        .tempdir_in("/tmp")
        .expect("tempdir")
}

/// Polls `f` until it returns `Some`, failing the test after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One HTTP answer as curl saw it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Runs curl with `args` (plus -sS -i) and splits its answer (the HTTP API, console and docs
/// tests drive the daemon with the real client the docs' examples use).
pub fn curl(args: &[&str]) -> Resp {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-i", "--max-time", "60"])
        .args(args)
        .output()
        .expect("curl runs (apt-get install curl)");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    // Interim answers (`100 Continue` to a large upload) come first; the final one follows.
    while text.starts_with("HTTP/1.1 100") {
        text = text
            .split_once("\r\n\r\n")
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default();
    }
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Resp {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
    }
}
