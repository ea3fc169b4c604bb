//! Voice pacing figures over a long call: the simulator's frame jitter (deviation of arrival from
//! the ideal 20 ms grid, p99) and underruns/overruns for each pacing loop of `voice::Pacing`.
//!
//! Why a bench and not a timed test: the ≤ 2 ms p99 of issue #7 depends on how busy the machine
//! is (docs/voice.md, "Measured"); on a shared 2-core machine it is not met reliably, so the
//! default test suite bounds p99 at 20 ms over 10 s and this bench prints the 60-second figures.
//! `cargo bench --bench voice_jitter` (release); `VOICE_JITTER_SECONDS=N` changes the length,
//! `VOICE_JITTER_PACING=interval|deadline|thread` runs one loop only. It exits non-zero when a
//! run has an underrun after the first 100 ms or an overrun (those are defects at any load) and
//! prints, without failing, whether p99 ≤ 2 ms held.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gsmgate::modem::{self, ModemConfig, ModemEvent, ModemState, Profile, Timeouts};
use gsmgate::sim::{self, ModemSpec, PhoneCall, SimConfig, Simulator};
use gsmgate::store::{CallOutcome, Store};
use gsmgate::voice::{
    self, AudioOptions, CallEvent, CallEventKind, ModemUrc, Pacing, VoiceModem, VoiceSettings,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn greeting_wav(seconds: usize) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).expect("wav");
    for i in 0..8000 * seconds {
        let t = i as f64 / 8000.0;
        let v = (6000.0 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()).round() as i16;
        w.write_sample(v).expect("sample");
    }
    w.finalize().expect("wav");
    out.into_inner()
}

/// One greeting call of `seconds` on a simulated Huawei modem; the simulator's figures.
async fn run(pacing: Pacing, seconds: usize) -> sim::AudioStats {
    let dir = tempfile::tempdir().expect("dir");
    let sim = Simulator::start(SimConfig {
        dir: dir.path().join("sim"),
        modems: vec![ModemSpec {
            profile: sim::Profile::Huawei,
            ring_interval_ms: 300,
            noise_interval_ms: 0,
            ..ModemSpec::default()
        }],
        seed: 7,
        control_socket: false,
    })
    .await
    .expect("simulator");
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let paths = sim.paths().modems[0].clone();
    let mut cfg = ModemConfig::new("m0", paths.at.clone());
    cfg.profile = Profile::Huawei;
    cfg.timeouts = Timeouts::fast();
    let (tx, mut rx) = mpsc::channel(64);
    let (handle, actor) = modem::spawn(cfg, tx, cancel.clone());
    tracker.spawn(actor.run());
    let (urc_tx, urc_rx) = mpsc::channel(256);
    tracker.spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let ModemEvent::Urc { modem, urc } = ev
                && voice::is_call_urc(&urc)
            {
                let _ = urc_tx.send(ModemUrc { modem, urc }).await;
            }
        }
    });
    let greeting = dir.path().join("greeting.wav");
    std::fs::write(&greeting, greeting_wav(seconds)).expect("greeting");
    let settings = VoiceSettings {
        enabled: true,
        answer_after_rings: 1,
        greeting: Some(greeting),
        voicemail: false,
        max_seconds: seconds as u32 + 30,
        audio: AudioOptions {
            pacing,
            ..AudioOptions::default()
        },
        ..VoiceSettings::default()
    };
    let store = Store::open(dir.path().join("db.sqlite")).expect("store");
    let (cb_tx, _cb_rx) = mpsc::channel(16);
    let voice = voice::spawn(
        vec![VoiceModem {
            handle: handle.clone(),
            profile: Profile::Huawei,
            audio_port: paths.audio.clone(),
            audio_mode: None,
        }],
        urc_rx,
        settings,
        store,
        dir.path(),
        cb_tx,
        &tracker,
        cancel.clone(),
    )
    .expect("voice");
    let mut events = voice.subscribe();
    let mut status = handle.watch_status();
    tokio::time::timeout(
        Duration::from_secs(20),
        status.wait_for(|s| s.state == ModemState::Ready),
    )
    .await
    .expect("modem ready in time")
    .expect("status");
    sim.phone_call(&PhoneCall {
        from: "+15550006000".into(),
        modem: 0,
        ..PhoneCall::default()
    })
    .expect("call");
    let outcome = tokio::time::timeout(Duration::from_secs(seconds as u64 + 40), async {
        loop {
            if let Ok(CallEvent {
                kind: CallEventKind::Ended { outcome, .. },
                ..
            }) = events.recv().await
            {
                return outcome;
            }
        }
    })
    .await
    .expect("call ended in time");
    assert_eq!(outcome, CallOutcome::Greeted);
    let st = sim.audio_stats(0).expect("stats").expect("audio port");
    cancel.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
    sim.shutdown().await;
    st
}

fn main() {
    let seconds: usize = std::env::var("VOICE_JITTER_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let only = std::env::var("VOICE_JITTER_PACING").ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut defects = 0;
    for (name, pacing) in [
        ("interval", Pacing::Interval),
        ("deadline", Pacing::Deadline),
        ("thread", Pacing::Thread),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let st = rt.block_on(run(pacing, seconds));
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "voice_jitter {name} {seconds}s: frames {} grid p99 {:.2} ms mean {:.2} ms max {:.1} ms \
             (over {} frames), inter-arrival p99 {:.2} ms, underruns after 100 ms {}, overruns {}, \
             p99 <= 2 ms: {}, loadavg {}",
            st.frames_in,
            st.jitter_p99_ms,
            st.jitter_mean_ms,
            st.jitter_max_ms,
            st.jitter_frames,
            st.interarrival_p99_ms,
            st.underruns_after_100ms,
            st.overruns,
            st.jitter_p99_ms <= 2.0,
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        if st.underruns_after_100ms > 0 || st.overruns > 0 {
            defects += 1;
        }
    }
    if defects > 0 {
        eprintln!("voice_jitter: {defects} run(s) with underruns after 100 ms or overruns");
        std::process::exit(1);
    }
}
