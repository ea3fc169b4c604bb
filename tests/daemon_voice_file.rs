//! End-to-end test of the file-playback voice path (docs/voice.md; the commands are in
//! docs/at-protocol.md, "Files on the modem"): a simulator
//! started by the test (so its flash survives daemon restarts) with a Quectel, a SIMCom and a
//! SIM800 modem, all configured `voice_audio = "file"` (SIM800's default). Checked through the
//! simulator handle and the admin socket: the greeting is uploaded at start-up, each caller hears
//! exactly the converted greeting (the simulator plays the stored WAV in real time), the upload is
//! skipped after a daemon restart when nothing changed, and redone after `greeting set`.
//! Conditions are polled with deadlines, never slept for.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::path::Path;
use std::time::Duration;

use daemon_util::{ALICE, BOB, CAROL, poll, short_tempdir};
use gsmgate::admin::Client;
use gsmgate::admin::protocol::CallsArgs;
use gsmgate::config::Config;
use gsmgate::daemon::{Daemon, DaemonOptions, RunningDaemon};
use gsmgate::sim::{ModemSpec, PhoneCall, Profile, SimConfig, SimHandle, Simulator};
use gsmgate::voice::Greeting;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(40);
const PROFILES: [Profile; 3] = [Profile::Quectel, Profile::Simcom, Profile::Sim800];
const CALLERS: [&str; 3] = [ALICE, BOB, CAROL];

/// A WAV of a warbling tone, at `rate` Hz with `channels` channels, `secs` long.
fn tone_wav(rate: u32, channels: u16, secs: f64, base: f64) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).expect("wav");
    let n = (f64::from(rate) * secs) as usize;
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let v = (6000.0 * (2.0 * std::f64::consts::PI * (base + 150.0 * (t * 3.0).sin()) * t).sin())
            .round() as i16;
        for _ in 0..channels {
            w.write_sample(v).expect("sample");
        }
    }
    w.finalize().expect("finalize");
    out.into_inner()
}

fn config(dir: &Path, sim_dir: &Path) -> Config {
    let d = dir.display();
    let s = sim_dir.display();
    let text = format!(
        r#"
[daemon]
state_dir = "{d}/state"
admin_socket = "{d}/a.sock"
log = "debug"

[[modem]]
name = "q0"
port = "{s}/modem0"
profile = "quectel"
voice_audio = "file"

[[modem]]
name = "s1"
port = "{s}/modem1"
profile = "simcom"
voice_audio = "file"

[[modem]]
name = "m2"
port = "{s}/modem2"
profile = "sim800"

[dispatch]
jitter_ms = 0

[dispatch.quiet_hours]
enabled = false

[community]
org_name = "Testorg"

[voice]
enabled = true
answer_after_rings = 1
greeting = "{d}/greeting.wav"
voicemail = true
max_seconds = 30
reply_text = ""
"#
    );
    Config::from_str(&text, "voice-file-test.toml").expect("test config validates")
}

async fn start_daemon(cfg: &Config) -> RunningDaemon {
    let opts = DaemonOptions {
        modem_timeouts: gsmgate::modem::Timeouts::fast(),
        status_interval: Duration::from_millis(500),
        ..DaemonOptions::default()
    };
    let daemon = Daemon::start_with(cfg.clone(), opts, CancellationToken::new())
        .await
        .expect("daemon starts");
    let socket = daemon.socket_path().to_path_buf();
    poll("every modem ready", Duration::from_secs(20), || {
        let socket = socket.clone();
        async move {
            let mut c = Client::connect(&socket).await.ok()?;
            let modems = c.modems().await.ok()?;
            modems.iter().all(|m| m.state == "ready").then_some(())
        }
    })
    .await;
    daemon
}

/// (size, uploads) of the greeting file on each simulated modem, once every modem has one of
/// `size` bytes uploaded `uploads` times.
async fn wait_files(sim: &SimHandle, size: usize, uploads: u32) {
    poll(
        &format!("greeting of {size} bytes uploaded {uploads}x on every modem"),
        WAIT,
        || async {
            (0..PROFILES.len())
                .all(|m| {
                    let files = sim.files(m).expect("modem");
                    files.len() == 1 && files[0].size == size && files[0].uploads == uploads
                })
                .then_some(())
        },
    )
    .await
}

/// Each phone calls its modem; each hears exactly `expected`; the calls end as `greeted`. A modem
/// still checking or uploading its greeting file lets a call ring (docs/voice.md), so a call that
/// was not answered within 2.5 s is given up and placed again.
async fn calls_hear(sim: &SimHandle, socket: &Path, expected: &[i16], round: usize) {
    let deadline = std::time::Instant::now() + WAIT;
    let mut answered: Vec<Option<u64>> = vec![None; CALLERS.len()];
    while answered.iter().any(Option::is_none) {
        assert!(
            std::time::Instant::now() < deadline,
            "calls not answered: {answered:?}"
        );
        let mut ids = Vec::new();
        for (m, from) in CALLERS.iter().enumerate() {
            if answered[m].is_some() {
                continue;
            }
            let id = sim
                .phone_call(&PhoneCall {
                    from: (*from).into(),
                    modem: m,
                    give_up_after_ms: Some(2500),
                    ..PhoneCall::default()
                })
                .expect("call placed");
            ids.push((m, id));
        }
        for (m, id) in ids {
            let rec = poll(&format!("call {id} on modem {m} ended"), WAIT, || async {
                sim.calls(None)
                    .into_iter()
                    .find(|c| c.id == id && c.ended_at.is_some())
            })
            .await;
            if rec.answered_at.is_some() {
                answered[m] = Some(id);
            }
        }
    }
    for (m, id) in answered.iter().enumerate() {
        let id = id.expect("answered");
        let heard = sim.heard(id).expect("call record");
        assert_eq!(
            heard.len(),
            expected.len(),
            "modem {m} ({:?}): heard {} samples, the greeting has {}",
            PROFILES[m],
            heard.len(),
            expected.len()
        );
        assert!(heard == expected, "modem {m}: greeting not heard bit-exact");
        let rec = sim.calls(None).into_iter().find(|c| c.id == id).unwrap();
        assert_eq!(rec.files_played.len(), 1, "{rec:?}");
        assert_eq!(rec.ended_by.as_deref(), Some("modem"), "{rec:?}");
    }
    let socket = socket.to_path_buf();
    let rows = poll("the calls logged", WAIT, || {
        let socket = socket.clone();
        async move {
            let mut c = Client::connect(&socket).await.ok()?;
            let rows = c.calls(CallsArgs { limit: Some(50) }).await.ok()?;
            (rows
                .iter()
                .filter(|r| r.outcome.as_deref() == Some("greeted"))
                .count()
                >= 3 * round)
                .then_some(rows)
        }
    })
    .await;
    // No voicemail on the file path (docs/voice.md), even with `voicemail = true`: every
    // answered call is `greeted`, the others `missed`.
    for r in &rows {
        let o = r.outcome.as_deref();
        assert!(o == Some("greeted") || o == Some("missed"), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_is_uploaded_once_played_bit_exact_and_replaced_by_greeting_set() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = short_tempdir();
    let sim_dir = dir.path().join("sim");
    let mut sim_cfg = SimConfig::new(&sim_dir, PROFILES.len(), Profile::Generic);
    sim_cfg.control_socket = false;
    sim_cfg.modems = PROFILES
        .iter()
        .map(|p| ModemSpec {
            profile: *p,
            ring_interval_ms: 300,
            noise_interval_ms: 0,
            ..ModemSpec::default()
        })
        .collect();
    let sim = Simulator::start(sim_cfg).await.expect("simulator");

    // A 16 kHz stereo greeting: what the caller hears is the documented conversion of it.
    let source = tone_wav(16_000, 2, 0.8, 400.0);
    std::fs::write(dir.path().join("greeting.wav"), &source).expect("greeting file");
    let first = Greeting::from_wav(&source).expect("valid greeting");
    let cfg = config(dir.path(), &sim_dir);

    let daemon = start_daemon(&cfg).await;
    wait_files(&sim, first.to_wav().len(), 1).await;
    calls_hear(&sim, daemon.socket_path(), first.samples(), 1).await;
    let record = dir.path().join("state/voice/uploads.json");
    let text = std::fs::read_to_string(&record).expect("upload record");
    for name in ["q0", "s1", "m2"] {
        assert!(text.contains(&format!("\"{name}\"")), "{text}");
    }
    daemon.shutdown().await;

    // Restart: same greeting, same flash — nothing is uploaded again, and calls still play it.
    let daemon = start_daemon(&cfg).await;
    calls_hear(&sim, daemon.socket_path(), first.samples(), 2).await;
    wait_files(&sim, first.to_wav().len(), 1).await;

    // greeting set: the new greeting is uploaded to every modem and played from then on.
    let second_src = tone_wav(8000, 1, 0.5, 700.0);
    let second = Greeting::from_wav(&second_src).expect("valid greeting");
    let mut c = Client::connect(daemon.socket_path()).await.expect("admin");
    c.greeting_set(&second_src).await.expect("greeting_set");
    wait_files(&sim, second.to_wav().len(), 2).await;
    calls_hear(&sim, daemon.socket_path(), second.samples(), 3).await;
    daemon.shutdown().await;
    sim.shutdown().await;
}
