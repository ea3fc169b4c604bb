//! `gsmgate phone call`: a simulated subscriber calls the gateway and reports what they
//! experienced — answered after how many rings, how much of the greeting they heard, whether a
//! voicemail was left, who hung up, and the text that came back after the call — and saves what
//! they heard as a WAV (8 kHz mono 16-bit), so the demo's call can be listened to.
//!
//! It owns only the caller's side: the phone is the simulator's (control socket, docs/simulator.md:
//! `call`, `calls`, `save_audio`, `received`), and the gateway's own view of the call (its outcome
//! and the voicemail's length) is asked of the daemon over the admin socket when one answers
//! (`calls`, `voicemail_list`); without a daemon those lines say so instead of guessing.
//!
//! Choices, and why:
//! - The caller stays on the line for `--seconds` after the answer (default 30): long enough that
//!   with the embedded default the gateway hangs up first (greeting, beep, then
//!   `silence_seconds` of silence end the recording), which is what a real caller would live.
//! - `--say FILE` speaks a WAV into the call after `--say-after` seconds of silence (default 6,
//!   past the built-in greeting and the beep): what the caller says during the greeting is not
//!   part of a voicemail (docs/voice.md), so the speech has to start after it.
//! - "Sound" is the 20 ms frames whose RMS is above the voice layer's silence threshold (200,
//!   docs/voice.md): the line carries paced silence around the greeting, which is not the greeting.
//! - The saved file goes next to the control socket by default (`DIR/call-ID.wav`, inside the
//!   embedded default's state folder), not into the working directory, and the path is made
//!   absolute: the simulator writes it, and it may run in another directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::client::Connection;
use super::phone::Control;
use crate::admin::protocol::{CallsArgs, VoicemailListArgs};
use crate::admin::{Client, resolve_socket_path};

/// The voice layer's silence threshold (RMS of a 20 ms frame), docs/voice.md.
const SILENCE_RMS: f64 = 200.0;
/// Samples in a 20 ms frame at 8 kHz.
const FRAME: usize = 160;
/// How long the phone lets it ring before giving up.
const GIVE_UP_MS: u64 = 30_000;

/// What `phone call` was asked to do.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub from: String,
    pub modem: usize,
    pub seconds: u64,
    pub save: Option<PathBuf>,
    pub say: Option<PathBuf>,
    pub say_after: f64,
    pub text_timeout: u64,
}

/// What the caller experienced (printed as lines, or as this object with `--json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallReport {
    pub call_id: u64,
    pub modem: usize,
    pub from: String,
    pub answered: bool,
    /// Rings before the answer (or before the caller gave up).
    pub rings: u32,
    /// Audio on the line, and the part of it that was sound (the greeting, the beep).
    pub heard_ms: u64,
    pub sound_ms: u64,
    /// `gateway`, `caller`, or `dropped` (the modem went away).
    pub hung_up_by: Option<String>,
    /// Seconds from the first ring to the end.
    pub duration_s: Option<i64>,
    /// The gateway's outcome (`greeted`, `voicemail`, `missed`, `rejected`, `failed`); `null`
    /// when no daemon answered on the admin socket.
    pub outcome: Option<String>,
    pub voicemail_ms: Option<i64>,
    /// The first text the phone received after the call, if one came within `--text-timeout`.
    pub text_after: Option<String>,
    /// The absolute path of the WAV with what the caller heard.
    pub saved: Option<PathBuf>,
}

/// Places the call, waits for its end and the text after it, and reports.
pub fn call(control: &mut Control, req: &CallRequest, conn: &Connection) -> Result<(), String> {
    let before_texts = received(control, &req.from)?.len();
    let before_call = last_gateway_call(conn, &req.from);
    let speech = req
        .say
        .as_deref()
        .map(|p| speech_file(p, req.say_after))
        .transpose()?;
    let mut call = json!({
        "cmd": "call", "from": req.from, "modem": req.modem,
        "give_up_after_ms": GIVE_UP_MS, "hangup_after_ms": req.seconds.saturating_mul(1000),
    });
    if let Some(p) = &speech {
        call["speak_wav"] = json!(p);
    }
    if !conn.json {
        println!("calling modem {} from {} …", req.modem, req.from);
    }
    let placed = control.request(call);
    if let Some(p) = &speech {
        // The simulator read the file when it accepted the call.
        let _ = std::fs::remove_file(p);
    }
    let data = placed?;
    let id = data.get("call_id").and_then(Value::as_u64).unwrap_or(0);
    let record = wait_for_end(control, &req.from, id, req.seconds)?;
    let mut report = CallReport {
        call_id: id,
        modem: req.modem,
        from: req.from.clone(),
        answered: record.get("answered_at").is_some_and(|v| !v.is_null()),
        rings: u32::try_from(record.get("rings").and_then(Value::as_u64).unwrap_or(0))
            .unwrap_or(u32::MAX),
        heard_ms: record.get("heard_ms").and_then(Value::as_u64).unwrap_or(0),
        hung_up_by: record
            .get("ended_by")
            .and_then(Value::as_str)
            .map(|by| match by {
                "modem" => "gateway".to_string(),
                "phone" => "caller".to_string(),
                other => other.to_string(),
            }),
        duration_s: match (
            record.get("started_at").and_then(Value::as_i64),
            record.get("ended_at").and_then(Value::as_i64),
        ) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        ..CallReport::default()
    };
    if report.answered {
        let path = save_path(req.save.as_deref(), &control.path, id)?;
        control.request(json!({"cmd": "save_audio", "call_id": id, "path": path}))?;
        report.sound_ms = sound_ms(&path);
        report.saved = Some(path);
    }
    if let Some((outcome, voicemail_ms)) = gateway_outcome(conn, &req.from, before_call) {
        report.outcome = Some(outcome);
        report.voicemail_ms = voicemail_ms;
    }
    report.text_after = text_after(control, &req.from, before_texts, req.text_timeout)?;
    if conn.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_report(&report, req);
    }
    Ok(())
}

fn print_report(r: &CallReport, req: &CallRequest) {
    let rings = format!(
        "{} ring{}",
        r.rings,
        super::output::plural(u64::from(r.rings))
    );
    if r.answered {
        println!("answered after {rings}");
        println!(
            "heard the greeting: {:.1} s of sound ({:.1} s on the line)",
            secs(r.sound_ms),
            secs(r.heard_ms)
        );
    } else {
        match r.outcome.as_deref() {
            Some("rejected") => println!("not answered: the gateway hung up after {rings}"),
            _ => println!("not answered after {rings}"),
        }
    }
    match (r.outcome.as_deref(), r.voicemail_ms) {
        (Some("voicemail"), Some(ms)) => {
            println!("voicemail left: {:.1} s", secs(ms.max(0) as u64))
        }
        (Some("voicemail"), None) => println!("voicemail left"),
        (Some(_), _) if r.answered && req.say.is_none() => {
            println!("no voicemail left (the caller said nothing; --say FILE speaks)")
        }
        (Some(_), _) => println!("no voicemail left"),
        (None, _) => println!("voicemail: unknown (no daemon on the admin socket)"),
    }
    let after = r
        .duration_s
        .map(|s| format!(" after {s} s"))
        .unwrap_or_default();
    match r.hung_up_by.as_deref() {
        Some(by) => println!("hung up by the {by}{after}"),
        None => println!("the call had not ended"),
    }
    match &r.text_after {
        Some(t) => println!("text received after the call: {t}"),
        None => println!(
            "no text received after the call (waited {} s)",
            req.text_timeout
        ),
    }
    if let Some(p) = &r.saved {
        println!("what the caller heard: {}", p.display());
    }
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The texts the phone has received so far.
fn received(control: &mut Control, phone: &str) -> Result<Vec<Value>, String> {
    let data = control.request(json!({"cmd": "received", "phone": phone}))?;
    Ok(data.as_array().cloned().unwrap_or_default())
}

/// Polls the simulator's call record until the call has ended.
fn wait_for_end(
    control: &mut Control,
    phone: &str,
    id: u64,
    seconds: u64,
) -> Result<Value, String> {
    let deadline = Instant::now() + Duration::from_millis(GIVE_UP_MS + seconds * 1000 + 15_000);
    loop {
        let calls = control.request(json!({"cmd": "calls", "phone": phone}))?;
        let record = calls
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|c| c.get("id").and_then(Value::as_u64) == Some(id))
            })
            .cloned()
            .ok_or_else(|| format!("the simulator has no record of call {id}"))?;
        if record.get("ended_at").is_some_and(|v| !v.is_null()) {
            return Ok(record);
        }
        if Instant::now() > deadline {
            return Err(format!("call {id} did not end in time"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits for a text newer than the first `before` ones.
fn text_after(
    control: &mut Control,
    phone: &str,
    before: usize,
    timeout: u64,
) -> Result<Option<String>, String> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let texts = received(control, phone)?;
        if let Some(t) = texts.get(before) {
            return Ok(t.get("text").and_then(Value::as_str).map(str::to_string));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `--save`, or `call-ID.wav` next to the control socket; absolute either way.
fn save_path(save: Option<&Path>, control: &Path, id: u64) -> Result<PathBuf, String> {
    let p = match save {
        Some(p) => p.to_path_buf(),
        None => control
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("call-{id}.wav")),
    };
    if p.is_absolute() {
        return Ok(p);
    }
    std::env::current_dir()
        .map(|d| d.join(p))
        .map_err(|e| format!("current directory: {e}"))
}

/// Milliseconds of 20 ms frames above the silence threshold in the saved WAV.
fn sound_ms(path: &Path) -> u64 {
    let Ok(samples) = crate::sim::wav::read(path) else {
        return 0;
    };
    let loud = samples
        .chunks(FRAME)
        .filter(|f| {
            let sum: f64 = f.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            (sum / f.len().max(1) as f64).sqrt() > SILENCE_RMS
        })
        .count();
    loud as u64 * 20
}

/// The caller's speech: FILE after `after` seconds of silence, as a temporary 8 kHz WAV.
fn speech_file(file: &Path, after: f64) -> Result<PathBuf, String> {
    let speech = crate::sim::wav::read(file).map_err(|e| format!("--say: {e}"))?;
    let lead = (after.clamp(0.0, 600.0) * 8000.0) as usize;
    let mut samples = vec![0i16; lead];
    samples.extend_from_slice(&speech);
    let path = std::env::temp_dir().join(format!("gsmgate-say-{}.wav", std::process::id()));
    crate::sim::wav::write(&path, &samples).map_err(|e| format!("--say: {e}"))?;
    Ok(path)
}

/// Runs one admin request on a fresh current-thread runtime; `None` when no daemon answers.
fn admin<T>(
    conn: &Connection,
    f: impl AsyncFnOnce(&mut Client) -> Result<T, crate::admin::ClientError>,
) -> Option<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let mut c = Client::connect(resolve_socket_path(conn.socket.as_deref()))
            .await
            .ok()?;
        f(&mut c).await.ok()
    })
}

/// The id of the gateway's latest call from `number` (0 when none), before ours.
fn last_gateway_call(conn: &Connection, number: &str) -> Option<i64> {
    let calls = admin(conn, async |c| {
        c.calls(CallsArgs { limit: Some(200) }).await
    })?;
    Some(
        calls
            .iter()
            .filter(|c| c.number.as_deref() == Some(number))
            .map(|c| c.id)
            .max()
            .unwrap_or(0),
    )
}

/// The gateway's outcome of our call (the first call from `number` after `before` with an
/// outcome), and the voicemail's length when one was kept. Waits a little: the daemon writes
/// the outcome when its side of the call has ended.
fn gateway_outcome(
    conn: &Connection,
    number: &str,
    before: Option<i64>,
) -> Option<(String, Option<i64>)> {
    let before = before?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let calls = admin(conn, async |c| {
            c.calls(CallsArgs { limit: Some(200) }).await
        })?;
        let ours = calls
            .iter()
            .filter(|c| c.number.as_deref() == Some(number) && c.id > before)
            .min_by_key(|c| c.id);
        if let Some(call) = ours
            && let Some(outcome) = &call.outcome
        {
            let vm = if outcome == "voicemail" {
                admin(conn, async |c| {
                    c.voicemail_list(VoicemailListArgs::default()).await
                })
                .and_then(|v| v.into_iter().find(|m| m.call_id == call.id))
                .map(|m| m.duration_ms)
            } else {
                None
            };
            return Some((outcome.clone(), vm));
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
