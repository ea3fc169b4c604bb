//! End-to-end tests of voice in the daemon: the gateway runs in-process on a temp dir with a
//! simulated pool (modem 0 Huawei, modem 1 SIMCom, both with their PCM audio port mapped
//! automatically), simulated phones call it, and everything is checked through the admin socket
//! and the simulator handle: the greeting the phone heard, the voicemail (`voicemail_list`,
//! `voicemail_export`), the call log (`calls`), the watch stream's call events, the text back
//! (and none to a number that texted STOP), `greeting_set` taking effect on the next call, and
//! voice disabled (calls rejected and texted back, `greeting_set` unavailable). Conditions are
//! polled with deadlines, never slept for.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::path::Path;
use std::time::Duration;

use daemon_util::*;
use gsmgate::admin::protocol::{CallItem, CallsArgs, GreetingSetArgs, VoicemailListArgs, base64};
use gsmgate::admin::{ClientError, ErrorCode, Event, EventKind};
use gsmgate::config::Config;
use gsmgate::sim::PhoneCall;

const WAIT: Duration = Duration::from_secs(30);
const REPLY: &str = "Send me a text";

fn voice_config(dir: &Path, enabled: bool) -> Config {
    let d = dir.display();
    let text = config_text(dir).replace(
        "[simulator]\nenabled = true\nmodems = 2\n",
        "[simulator]\nenabled = true\nmodems = 2\nprofiles = [\"huawei\", \"simcom\"]\n",
    );
    let text = text
        .replace("/sim/modem0\"\n", "/sim/modem0\"\nprofile = \"huawei\"\n")
        .replace("/sim/modem1\"\n", "/sim/modem1\"\nprofile = \"simcom\"\n");
    assert!(
        text.contains("profiles") && text.contains("\"simcom\"\n"),
        "the test config changed shape"
    );
    let text = format!(
        r#"{text}
[voice]
enabled = {enabled}
answer_after_rings = 2
greeting = "{d}/greeting.wav"
voicemail = true
max_seconds = 30
silence_seconds = 1
reply_text = "{REPLY}"
"#
    );
    Config::from_str(&text, "voice-test.toml").expect("voice test config validates")
}

async fn start(enabled: bool) -> Gateway {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = short_tempdir();
    write_wav(&dir.path().join("greeting.wav"), &tone(8000, 300.0));
    let cfg = voice_config(dir.path(), enabled);
    let mut opts = options(&cfg);
    if let Some(sim) = opts.sim.as_mut() {
        for spec in &mut sim.modems {
            // Quick rings and PCM registration so a call takes a few seconds, not tens.
            spec.ring_interval_ms = 300;
            spec.cpcmreg_delay_ms = 400;
            spec.noise_interval_ms = 0;
        }
    }
    Gateway::start_in(dir, cfg, opts).await
}

/// A never-silent warbling tone around `base` Hz, `n` samples at 8 kHz.
fn tone(n: usize, base: f64) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (6000.0 * (2.0 * std::f64::consts::PI * (base + 200.0 * (t * 3.0).sin()) * t).sin()
                + 1000.0)
                .round() as i16
        })
        .collect()
}

fn write_wav(path: &Path, samples: &[i16]) {
    std::fs::write(path, wav_bytes(samples)).expect("write wav");
}

fn wav_bytes(samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).expect("wav");
    for s in samples {
        w.write_sample(*s).expect("sample");
    }
    w.finalize().expect("finalize");
    out.into_inner()
}

fn samples_of(wav: &[u8]) -> Vec<i16> {
    hound::WavReader::new(std::io::Cursor::new(wav))
        .expect("a WAV")
        .into_samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect()
}

/// Whether `needle` occurs whole in `hay`.
/// Whether `needle` was heard in `hay`, sample for sample and in order, ignoring silence (zero
/// samples) on both sides. The simulated modem, like a real one, plays silence for a 20 ms frame
/// the daemon delivered late (an underrun, counted in its audio stats), which splits a greeting
/// with a run of zeros on a heavily loaded machine; what these tests check is which greeting the
/// caller heard, and tests/voice_sim.rs checks the pacing itself (no underruns after 100 ms).
fn contains(hay: &[i16], needle: &[i16]) -> bool {
    let hay: Vec<i16> = hay.iter().copied().filter(|&s| s != 0).collect();
    let needle: Vec<i16> = needle.iter().copied().filter(|&s| s != 0).collect();
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_slice())
}

fn call(from: &str, modem: usize, speak: Option<&Path>) -> PhoneCall {
    PhoneCall {
        from: from.into(),
        modem,
        speak_wav: speak.map(Path::to_path_buf),
        ..PhoneCall::default()
    }
}

/// The ended call from `from` in the call log.
async fn ended_call(gw: &Gateway, from: &str) -> CallItem {
    poll(&format!("the call from {from} ended"), WAIT, || async {
        let calls = gw
            .client()
            .await
            .calls(CallsArgs { limit: Some(50) })
            .await
            .ok()?;
        calls
            .into_iter()
            .find(|c| c.number.as_deref() == Some(from) && c.outcome.is_some())
    })
    .await
}

async fn wait_text(gw: &Gateway, phone: &str, text: &str) {
    poll(&format!("{phone} receives {text:?}"), WAIT, || async {
        gw.received_texts(phone)
            .iter()
            .any(|t| t == text)
            .then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_hears_the_greeting_leaves_a_voicemail_and_is_texted_back() {
    let gw = start(true).await;
    let greeting = tone(8000, 300.0);
    let mut watch = gw
        .client()
        .await
        .watch(gsmgate::admin::protocol::WatchArgs {
            events: Some(vec![EventKind::Call]),
        })
        .await
        .expect("watch");

    // The caller speaks 2 s after the answer: after the 1 s greeting and the beep.
    let voice = tone(8000 * 3 / 2, 523.0);
    let mut speech = vec![0i16; 8000 * 2];
    speech.extend(&voice);
    let speak = gw.dir.path().join("speech.wav");
    write_wav(&speak, &speech);
    let sim_call = gw
        .sim()
        .phone_call(&call(ALICE, 0, Some(&speak)))
        .expect("call placed");

    let row = ended_call(&gw, ALICE).await;
    assert_eq!(row.outcome.as_deref(), Some("voicemail"), "{row:?}");
    assert_eq!(row.modem, "sim0");
    assert!(row.answered_at.is_some() && row.duration_ms.is_some_and(|d| d > 0));
    let heard = gw.sim().heard(sim_call).expect("call record");
    assert!(
        contains(&heard, &greeting),
        "greeting not heard bit-exact ({} samples heard)",
        heard.len()
    );

    // The watch stream saw the call from ringing to ended, with the caller.
    let mut states = Vec::new();
    while !states.contains(&"ended".to_string()) {
        let ev = tokio::time::timeout(WAIT, watch.next())
            .await
            .expect("call events in time")
            .expect("watch stream")
            .expect("stream open");
        match ev {
            Event::Call { modem, from, state } => {
                assert_eq!(modem, "sim0");
                assert_eq!(from.as_deref(), Some(ALICE), "{state}");
                states.push(state);
            }
            other => panic!("a call-only watch got {other:?}"),
        }
    }
    assert_eq!(states, ["ringing", "answered", "voicemail", "ended"]);

    // The voicemail is listed and exported bit-exact; exporting marks it heard.
    let mut c = gw.client().await;
    let vms = c
        .voicemail_list(VoicemailListArgs { unheard_only: true })
        .await
        .expect("voicemail_list");
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert_eq!(vms[0].number.as_deref(), Some(ALICE));
    assert_eq!(vms[0].call_id, row.id);
    assert!(vms[0].duration_ms > 0);
    let file = c.voicemail_export(vms[0].id).await.expect("export");
    let wav = base64::decode(&file.wav_base64).expect("base64");
    assert!(
        contains(&samples_of(&wav), &voice),
        "exported voicemail holds what was said"
    );
    let unheard = c
        .voicemail_list(VoicemailListArgs { unheard_only: true })
        .await
        .expect("voicemail_list");
    assert!(unheard.is_empty(), "{unheard:?}");

    // The text back, as a reply from the modem that was called.
    wait_text(&gw, ALICE, REPLY).await;

    // Delete: row and file go; a second delete is not_found.
    let stored = gw.dir.path().join("state").join(&vms[0].path);
    assert!(stored.exists(), "{}", stored.display());
    let del = c.voicemail_delete(vms[0].id).await.expect("delete");
    assert!(del.file_removed);
    assert!(!stored.exists());
    match c.voicemail_delete(vms[0].id).await {
        Err(ClientError::Server(e)) => assert_eq!(e.code, ErrorCode::NotFound, "{e:?}"),
        other => panic!("expected not_found, got {other:?}"),
    }
    assert!(
        c.voicemail_list(VoicemailListArgs::default())
            .await
            .expect("list")
            .is_empty()
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_out_caller_gets_no_text_and_a_new_greeting_plays_on_the_next_call() {
    let gw = start(true).await;

    // BOB texts STOP and gets the one confirmation.
    gw.text_in(BOB, 1, "STOP");
    poll("the STOP confirmation", WAIT, || async {
        (!gw.received_texts(BOB).is_empty()).then_some(())
    })
    .await;
    let before = gw.received_texts(BOB);

    // A new greeting, 3 s: bigger than one request, so it goes up in chunks.
    let new_greeting = tone(8000 * 3, 700.0);
    let bytes = wav_bytes(&new_greeting);
    assert!(bytes.len() > gsmgate::admin::protocol::GREETING_CHUNK_BYTES);
    let installed = gw
        .client()
        .await
        .greeting_set(&bytes)
        .await
        .expect("greeting_set");
    assert_eq!(installed.duration_ms, 3000);
    assert!(!installed.converted);

    // BOB calls the SIMCom modem: greeted with the new greeting, but no text back.
    let bob_call = gw
        .sim()
        .phone_call(&call(BOB, 1, None))
        .expect("call placed");
    let row = ended_call(&gw, BOB).await;
    assert_eq!(row.modem, "sim1");
    assert_eq!(row.outcome.as_deref(), Some("greeted"), "{row:?}");
    let heard = gw.sim().heard(bob_call).expect("call record");
    assert!(
        contains(&heard, &new_greeting),
        "the new greeting was not heard ({} samples)",
        heard.len()
    );
    assert!(!contains(&heard, &tone(8000, 300.0)), "old greeting heard");

    // CAROL calls after BOB; the text backs are queued in call order, so once CAROL has hers,
    // BOB's would have been queued too.
    gw.sim()
        .phone_call(&call(CAROL, 0, None))
        .expect("call placed");
    ended_call(&gw, CAROL).await;
    wait_text(&gw, CAROL, REPLY).await;
    let bob_out: Vec<String> = gw
        .conversation(BOB)
        .await
        .into_iter()
        .filter(|i| i.direction == gsmgate::admin::protocol::Direction::Out)
        .map(|i| i.text)
        .collect();
    assert_eq!(bob_out.len(), 1, "only the STOP confirmation: {bob_out:?}");
    assert_eq!(gw.received_texts(BOB), before, "STOP is absolute");

    // A bad file is refused with a message naming the problem; the greeting stays.
    let err = gw
        .client()
        .await
        .greeting_set_chunk(GreetingSetArgs {
            wav_base64: base64::encode(b"definitely not a wav"),
            offset: None,
            total_bytes: None,
        })
        .await
        .unwrap_err();
    match err {
        ClientError::Server(e) => assert_eq!(e.code, ErrorCode::InvalidRequest, "{e:?}"),
        other => panic!("expected invalid_request, got {other:?}"),
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_voice_disabled_calls_are_rejected_and_texted_back_and_greeting_set_is_unavailable() {
    let gw = start(false).await;
    let mut c = gw.client().await;
    assert!(
        c.calls(CallsArgs::default())
            .await
            .expect("calls")
            .is_empty()
    );
    assert!(
        c.voicemail_list(VoicemailListArgs::default())
            .await
            .expect("voicemail_list")
            .is_empty()
    );
    match c.greeting_set(&wav_bytes(&tone(800, 300.0))).await {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}");
            assert!(
                e.message.contains("voice is disabled in [voice]"),
                "{}",
                e.message
            );
        }
        other => panic!("expected unavailable, got {other:?}"),
    }

    // config/gsmgate.toml: "When false, calls are hung up unanswered and reply_text is still
    // sent."
    let sim_call = gw
        .sim()
        .phone_call(&call(ALICE, 0, None))
        .expect("call placed");
    let row = ended_call(&gw, ALICE).await;
    assert_eq!(row.outcome.as_deref(), Some("rejected"), "{row:?}");
    assert!(row.answered_at.is_none());
    assert!(gw.sim().heard(sim_call).expect("record").is_empty());
    wait_text(&gw, ALICE, REPLY).await;
    gw.shutdown().await;
}
