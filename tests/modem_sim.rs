//! End-to-end tests of the modem actor against the simulator over real pseudo-terminals.
//!
//! Each test starts its own simulator in a temp dir and one actor on the simulator's `modem0`
//! symlink, exactly as the daemon would open a USB tty. Conditions are polled with deadlines, never
//! slept for; timeouts are shortened with `Timeouts::fast()`.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use gsmgate::modem::ussd::{UssdError, UssdOp, UssdState};
use gsmgate::modem::{
    self, ModemConfig, ModemEvent, ModemHandle, ModemState, OutgoingPart, Profile, SendError,
    Timeouts,
};
use gsmgate::pdu::{self, Address, Direction, Pdu, SubmitOptions, Tpdu, Validity};
use gsmgate::sim::{self, Fault, ModemSpec, MsRange, PhoneSms, SimConfig, SimHandle, Simulator};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

const PHONE: &str = "+15551230001";

struct Rig {
    sim: SimHandle,
    _dir: tempfile::TempDir,
    handle: ModemHandle,
    events: mpsc::Receiver<ModemEvent>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

fn sim_profile(p: Profile) -> sim::Profile {
    match p {
        Profile::Generic => sim::Profile::Generic,
        Profile::Huawei => sim::Profile::Huawei,
        Profile::Simcom => sim::Profile::Simcom,
        Profile::Quectel => sim::Profile::Quectel,
        Profile::Sim800 => sim::Profile::Sim800,
        Profile::Wavecom => sim::Profile::Wavecom,
        Profile::Zte => sim::Profile::Zte,
    }
}

fn test_timeouts() -> Timeouts {
    Timeouts {
        health_interval: Duration::from_millis(400),
        ..Timeouts::fast()
    }
}

async fn start_sim(spec: ModemSpec) -> (SimHandle, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = SimConfig {
        dir: dir.path().to_path_buf(),
        modems: vec![spec],
        seed: 7,
        control_socket: false,
    };
    let sim = Simulator::start(cfg).await.expect("simulator starts");
    let port = sim.paths().modems[0].at.clone();
    (sim, dir, port)
}

fn start_actor(
    port: PathBuf,
    profile: Profile,
    tweak: impl FnOnce(&mut ModemConfig),
) -> (
    ModemHandle,
    mpsc::Receiver<ModemEvent>,
    CancellationToken,
    JoinHandle<()>,
) {
    let mut cfg = ModemConfig::new("m0", port);
    cfg.profile = profile;
    cfg.timeouts = test_timeouts();
    tweak(&mut cfg);
    let (tx, rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let (handle, actor) = modem::spawn(cfg, tx, cancel.clone());
    let task = tokio::spawn(actor.run());
    (handle, rx, cancel, task)
}

async fn rig_with(spec: ModemSpec, profile: Profile, tweak: impl FnOnce(&mut ModemConfig)) -> Rig {
    let (sim, dir, port) = start_sim(spec).await;
    let (handle, events, cancel, task) = start_actor(port, profile, tweak);
    Rig {
        sim,
        _dir: dir,
        handle,
        events,
        cancel,
        task,
    }
}

async fn rig(profile: Profile) -> Rig {
    let spec = ModemSpec {
        profile: sim_profile(profile),
        ..ModemSpec::default()
    };
    rig_with(spec, profile, |_| {}).await
}

impl Rig {
    async fn stop(self) {
        self.cancel.cancel();
        let _ = timeout(Duration::from_secs(10), self.task).await;
        self.sim.shutdown().await;
    }
}

/// Polls `f` until it holds or `within` passes.
async fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_state(
    h: &ModemHandle,
    within: Duration,
    pred: impl Fn(&ModemState) -> bool,
) -> ModemState {
    let mut rx = h.watch_status();
    let res = timeout(within, async {
        loop {
            let s = rx.borrow_and_update().state.clone();
            if pred(&s) {
                return s;
            }
            if rx.changed().await.is_err() {
                return rx.borrow().state.clone();
            }
        }
    })
    .await;
    match res {
        Ok(s) => s,
        Err(_) => panic!("state not reached; status is {:?}", h.status()),
    }
}

async fn wait_ready(h: &ModemHandle) {
    let s = wait_state(h, Duration::from_secs(20), |s| {
        matches!(s, ModemState::Ready | ModemState::OutOfPool { .. })
    })
    .await;
    assert_eq!(s, ModemState::Ready, "status: {:?}", h.status());
}

/// Next inbound message or status report (other events skipped).
async fn next_message(rx: &mut mpsc::Receiver<ModemEvent>, within: Duration) -> ModemEvent {
    timeout(within, async {
        loop {
            match rx.recv().await {
                Some(ev @ (ModemEvent::Sms { .. } | ModemEvent::StatusReport { .. })) => return ev,
                Some(_) => continue,
                None => panic!("event channel closed"),
            }
        }
    })
    .await
    .expect("an inbound message event")
}

fn parts_for(to: &str, text: &str, status_report: bool) -> Vec<OutgoingPart> {
    let to = Address::parse(to).expect("number");
    let opts = SubmitOptions {
        status_report,
        validity: Validity::None,
        concat_reference: 42,
        sixteen_bit_reference: false,
    };
    pdu::submits_for_text(&to, text, &opts)
        .expect("encodable text")
        .iter()
        .map(|p| OutgoingPart {
            hex: p.to_hex(),
            tpdu_len: p.tpdu_len(),
        })
        .collect()
}

fn deliver_text(bytes: &[u8]) -> String {
    match Pdu::decode(bytes, Direction::ToMobile)
        .expect("decodes")
        .tpdu
    {
        Tpdu::Deliver(d) => d.text().unwrap_or_default().to_owned(),
        other => panic!("not a deliver: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_reaches_ready_on_every_profile() {
    for profile in Profile::ALL {
        let r = rig(profile).await;
        wait_ready(&r.handle).await;
        let st = r.handle.status();
        let ids = &r.sim.paths().modems[0];
        assert_eq!(
            st.identity.imei.as_deref(),
            Some(ids.imei.as_str()),
            "{profile:?}"
        );
        assert_eq!(
            st.identity.imsi.as_deref(),
            Some(ids.imsi.as_str()),
            "{profile:?}"
        );
        assert!(st.identity.manufacturer.is_some(), "{profile:?}");
        assert!(
            st.registration.is_some_and(|r| r.registered()),
            "{profile:?}: {st:?}"
        );
        assert!(st.smsc.is_some(), "{profile:?}");
        let sim_state = &r.sim.status()[0];
        assert_eq!(sim_state.cmgf, 0, "{profile:?}: PDU mode");
        assert_eq!(sim_state.cnmi, [2, 1, 0, 2, 0], "{profile:?}");
        assert!(!sim_state.echo, "{profile:?}: echo off");
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iccid_is_read_per_profile() {
    for profile in [
        Profile::Generic,
        Profile::Quectel,
        Profile::Huawei,
        Profile::Simcom,
        Profile::Sim800,
    ] {
        let r = rig(profile).await;
        wait_ready(&r.handle).await;
        let ids = &r.sim.paths().modems[0];
        assert_eq!(
            r.handle.status().identity.iccid.as_deref(),
            Some(ids.iccid.as_str()),
            "{profile:?}"
        );
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_single_and_multipart_and_the_phone_receives_them() {
    let r = rig(Profile::Generic).await;
    wait_ready(&r.handle).await;

    let mrs = r
        .handle
        .send(parts_for(PHONE, "Hello from gsmgate", false))
        .await
        .expect("sent");
    assert_eq!(mrs.len(), 1);
    eventually(Duration::from_secs(5), "single text at the phone", || {
        r.sim
            .received(Some(PHONE))
            .iter()
            .any(|t| t.text == "Hello from gsmgate" && t.complete)
    })
    .await;

    let long: String = (0..40).map(|i| format!("part{i:02} ")).collect();
    let parts = parts_for(PHONE, &long, false);
    assert!(parts.len() > 1);
    let mrs = r.handle.send(parts.clone()).await.expect("multipart sent");
    assert_eq!(mrs.len(), parts.len());
    eventually(
        Duration::from_secs(5),
        "multipart text at the phone",
        || {
            r.sim
                .received(Some(PHONE))
                .iter()
                .any(|t| t.text == long && t.complete)
        },
    )
    .await;
    let got = r.sim.received(Some(PHONE));
    let multi = got.iter().find(|t| t.text == long).expect("received");
    assert_eq!(
        multi.message_references, mrs,
        "TP-MRs returned are the modem's"
    );
    assert_eq!(r.handle.status().sent, 1 + parts.len() as u64);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_refused_by_network_is_classified() {
    let r = rig(Profile::Generic).await;
    wait_ready(&r.handle).await;
    r.sim
        .fault(
            0,
            &Fault::CmsError {
                code: 331,
                count: Some(1),
                rate: None,
            },
        )
        .expect("fault");
    let err = r
        .handle
        .send(parts_for(PHONE, "no network", false))
        .await
        .expect_err("refused");
    match &err {
        SendError::Refused {
            class, confirmed, ..
        } => {
            assert_eq!(*class, modem::ErrorClass::NoService);
            assert!(confirmed.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.in_doubt());
    // The modem stays usable.
    r.handle
        .send(parts_for(PHONE, "now it works", false))
        .await
        .expect("sent");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_sms_is_deleted_only_after_the_ack() {
    let mut r = rig(Profile::Generic).await;
    wait_ready(&r.handle).await;
    r.sim
        .phone_sms(&PhoneSms {
            from: PHONE.into(),
            modem: 0,
            text: "hi there".into(),
            ..Default::default()
        })
        .expect("phone texts");
    let ev = next_message(&mut r.events, Duration::from_secs(5)).await;
    let ModemEvent::Sms {
        storage,
        index,
        pdu,
        ack,
        ..
    } = ev
    else {
        panic!("not an sms")
    };
    assert_eq!(storage, "SM");
    let index = index.expect("stored");
    assert_eq!(deliver_text(&pdu), "hi there");
    // Not deleted before the ack.
    assert!(
        r.sim
            .stored(0, "SM")
            .expect("stored")
            .iter()
            .any(|m| m.index == index as usize)
    );
    ack.send(()).expect("actor waits for the ack");
    eventually(Duration::from_secs(5), "message deleted after ack", || {
        r.sim.stored(0, "SM").expect("stored").is_empty()
    })
    .await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_sms_without_ack_stays_on_the_sim() {
    let mut r = rig(Profile::Generic).await;
    wait_ready(&r.handle).await;
    r.sim
        .phone_sms(&PhoneSms {
            from: PHONE.into(),
            modem: 0,
            text: "first".into(),
            ..Default::default()
        })
        .expect("phone texts");
    let ModemEvent::Sms {
        index: first, ack, ..
    } = next_message(&mut r.events, Duration::from_secs(5)).await
    else {
        panic!("not an sms")
    };
    drop(ack); // storage failed above
    r.sim
        .phone_sms(&PhoneSms {
            from: PHONE.into(),
            modem: 0,
            text: "second".into(),
            ..Default::default()
        })
        .expect("phone texts");
    let ModemEvent::Sms {
        index: second,
        pdu,
        ack,
        ..
    } = next_message(&mut r.events, Duration::from_secs(5)).await
    else {
        panic!("not an sms")
    };
    assert_eq!(deliver_text(&pdu), "second");
    ack.send(()).expect("ack");
    eventually(Duration::from_secs(5), "second message deleted", || {
        let s = r.sim.stored(0, "SM").expect("stored");
        !s.iter().any(|m| Some(m.index as u32) == second)
    })
    .await;
    let s = r.sim.stored(0, "SM").expect("stored");
    assert!(
        s.iter().any(|m| Some(m.index as u32) == first),
        "unacked message must stay: {s:?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_drain_at_start_publishes_stored_messages() {
    let spec = ModemSpec::default();
    let (sim, dir, port) = start_sim(spec).await;
    sim.phone_sms(&PhoneSms {
        from: PHONE.into(),
        modem: 0,
        text: "while you were away".into(),
        ..Default::default()
    })
    .expect("phone texts");
    eventually(
        Duration::from_secs(5),
        "message stored before the actor starts",
        || sim.stored(0, "SM").map(|s| s.len() == 1).unwrap_or(false),
    )
    .await;
    let (handle, mut events, cancel, task) = start_actor(port, Profile::Generic, |_| {});
    let ModemEvent::Sms {
        pdu, ack, index, ..
    } = next_message(&mut events, Duration::from_secs(10)).await
    else {
        panic!("not an sms")
    };
    assert!(index.is_some());
    assert_eq!(deliver_text(&pdu), "while you were away");
    // Ready only after the drain.
    wait_ready(&handle).await;
    ack.send(()).expect("ack");
    eventually(Duration::from_secs(5), "drained message deleted", || {
        sim.stored(0, "SM").map(|s| s.is_empty()).unwrap_or(false)
    })
    .await;
    let r = Rig {
        sim,
        _dir: dir,
        handle,
        events,
        cancel,
        task,
    };
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_report_event_matches_the_send() {
    let mut r = rig(Profile::Generic).await;
    wait_ready(&r.handle).await;
    let mrs = r
        .handle
        .send(parts_for(PHONE, "report please", true))
        .await
        .expect("sent");
    let ev = next_message(&mut r.events, Duration::from_secs(5)).await;
    let ModemEvent::StatusReport {
        mr,
        recipient,
        status,
        ack,
        ..
    } = ev
    else {
        panic!("not a report: {ev:?}")
    };
    assert_eq!(mr, mrs.first().copied());
    assert_eq!(recipient.as_deref(), Some(PHONE));
    assert_eq!(status, Some(0));
    if let Some(ack) = ack {
        ack.send(()).expect("ack");
        eventually(Duration::from_secs(5), "report deleted", || {
            r.sim.stored(0, "SR").map(|s| s.is_empty()).unwrap_or(true)
        })
        .await;
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_line_does_not_break_the_modem() {
    let r = rig(Profile::Generic).await;
    wait_ready(&r.handle).await;
    for _ in 0..5 {
        r.sim
            .fault(
                0,
                &Fault::Garbage {
                    hex: None,
                    count: Some(64),
                },
            )
            .expect("garbage");
    }
    r.sim
        .fault(
            0,
            &Fault::Garbage {
                hex: Some("FF00FE0D0A3E20".into()),
                count: None,
            },
        )
        .expect("garbage");
    r.handle
        .send(parts_for(PHONE, "still fine", false))
        .await
        .expect("sent");
    eventually(Duration::from_secs(5), "text at the phone", || {
        r.sim
            .received(Some(PHONE))
            .iter()
            .any(|t| t.text == "still fine")
    })
    .await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_modem_recovers_to_ready() {
    let r = rig(Profile::Generic).await;
    wait_ready(&r.handle).await;
    r.sim.fault(0, &Fault::Stall { on: true }).expect("stall");
    wait_state(&r.handle, Duration::from_secs(10), |s| {
        *s != ModemState::Ready
    })
    .await;
    let err = r
        .handle
        .send(parts_for(PHONE, "during the stall", false))
        .await
        .expect_err("unavailable");
    assert!(!err.in_doubt(), "{err:?}");
    r.sim
        .fault(0, &Fault::Stall { on: false })
        .expect("unstall");
    wait_ready(&r.handle).await;
    let st = r.handle.status();
    assert!(st.recoveries >= 1);
    // The ladder starts at its first rung (ESC + Ctrl-Z, then AT), whatever it climbed after.
    assert!(st.rungs.resync >= 1, "{:?}", st.rungs);
    r.handle
        .send(parts_for(PHONE, "after the stall", false))
        .await
        .expect("sent");
    r.stop().await;
}

/// docs/modems.md, "Stalls": a modem that answers nothing climbs every rung of the ladder once per
/// cycle — ESC + Ctrl-Z then `AT` (state `recovering`), `AT+CFUN=1,1`, the port closed and opened
/// again (state `vanished` while it is closed) — and then leaves the pool with the reason. Each
/// rung is seen in the status counters, the states in the order of the published events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_modem_climbs_every_rung_then_leaves_the_pool() {
    let spec = ModemSpec::default();
    let mut r = rig_with(spec, Profile::Generic, |c| {
        c.timeouts.recovery_cycles = 1;
        c.timeouts.reboot_wait = Duration::from_secs(1);
    })
    .await;
    wait_ready(&r.handle).await;
    assert_eq!(r.handle.status().rungs, modem::RecoveryRungs::default());
    r.sim.fault(0, &Fault::Stall { on: true }).expect("stall");
    let state = wait_state(&r.handle, Duration::from_secs(60), |s| {
        matches!(s, ModemState::OutOfPool { .. })
    })
    .await;
    let ModemState::OutOfPool { reason } = state else {
        unreachable!()
    };
    assert!(reason.contains("recovery attempts failed"), "{reason}");
    let rungs = r.handle.status().rungs;
    assert_eq!(
        (rungs.resync, rungs.reset, rungs.reopen),
        (1, 1, 1),
        "one cycle: each rung once"
    );
    let mut states = Vec::new();
    while states.last() != Some(&"out_of_pool") {
        let ev = timeout(Duration::from_secs(20), r.events.recv())
            .await
            .expect("the out_of_pool event")
            .expect("events");
        if let ModemEvent::State { state, .. } = ev {
            states.push(state.name());
        }
    }
    let after_ready = states
        .iter()
        .rposition(|s| *s == "ready")
        .map_or(&states[..], |i| &states[i + 1..]);
    let order: Vec<&str> = after_ready
        .iter()
        .copied()
        .filter(|s| ["recovering", "vanished", "out_of_pool"].contains(s))
        .collect();
    let first = |name: &str| order.iter().position(|s| *s == name);
    assert!(
        first("recovering") < first("vanished") && first("vanished") < first("out_of_pool"),
        "states after ready: {states:?}"
    );
    assert!(first("recovering").is_some(), "{states:?}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_after_submit_is_in_doubt_and_replug_comes_back() {
    let spec = ModemSpec {
        latency: sim::Latency {
            send: MsRange(2000, 2000),
            ..sim::Latency::default()
        },
        ..ModemSpec::default()
    };
    let r = rig_with(spec, Profile::Generic, |c| {
        c.timeouts.sms_result = Duration::from_secs(10)
    })
    .await;
    wait_ready(&r.handle).await;
    let h = r.handle.clone();
    let send = tokio::spawn(async move { h.send(parts_for(PHONE, "in doubt", false)).await });
    eventually(Duration::from_secs(5), "the network has the PDU", || {
        !r.sim.submitted().is_empty()
    })
    .await;
    r.sim.fault(0, &Fault::Unplug).expect("unplug");
    let err = send.await.expect("join").expect_err("interrupted");
    assert!(err.in_doubt(), "submitted PDU must be in doubt: {err:?}");
    wait_state(&r.handle, Duration::from_secs(5), |s| {
        *s == ModemState::Vanished
    })
    .await;
    r.sim.fault(0, &Fault::Replug).expect("replug");
    wait_ready(&r.handle).await;
    r.handle
        .send(parts_for(PHONE, "back again", false))
        .await
        .expect("sent after replug");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_before_submit_is_safe_to_retry() {
    let r = rig(Profile::Generic).await;
    wait_ready(&r.handle).await;
    // A stalled modem never gives the prompt: the PDU cannot have left.
    r.sim.fault(0, &Fault::Stall { on: true }).expect("stall");
    let h = r.handle.clone();
    let send = tokio::spawn(async move { h.send(parts_for(PHONE, "never sent", false)).await });
    r.sim.fault(0, &Fault::Unplug).expect("unplug");
    let err = send.await.expect("join").expect_err("interrupted");
    assert!(!err.in_doubt(), "{err:?}");
    assert!(r.sim.submitted().is_empty());
    r.sim
        .fault(0, &Fault::Stall { on: false })
        .expect("unstall");
    r.sim.fault(0, &Fault::Replug).expect("replug");
    wait_ready(&r.handle).await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_pin_is_entered_once() {
    let spec = ModemSpec {
        pin: Some("4321".into()),
        ..ModemSpec::default()
    };
    let r = rig_with(spec, Profile::Generic, |c| c.pin = Some("4321".into())).await;
    wait_ready(&r.handle).await;
    let s = &r.sim.status()[0];
    assert_eq!(s.pin_attempts, 3, "a correct PIN does not use up attempts");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_takes_the_modem_out_of_the_pool_without_retrying() {
    let spec = ModemSpec {
        pin: Some("4321".into()),
        ..ModemSpec::default()
    };
    let r = rig_with(spec, Profile::Generic, |c| c.pin = Some("0000".into())).await;
    let s = wait_state(&r.handle, Duration::from_secs(20), |s| {
        matches!(s, ModemState::Ready | ModemState::OutOfPool { .. })
    })
    .await;
    assert!(matches!(s, ModemState::OutOfPool { .. }), "{s:?}");
    // Give a retry every chance to happen: a health-interval's worth of further polling.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(
            r.sim.status()[0].pin_attempts,
            2,
            "exactly one wrong PIN entry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = r
        .handle
        .send(parts_for(PHONE, "x", false))
        .await
        .expect_err("out of pool");
    assert!(matches!(err, SendError::ModemUnavailable { .. }));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_pin_config_goes_out_of_the_pool() {
    let spec = ModemSpec {
        pin: Some("4321".into()),
        ..ModemSpec::default()
    };
    let r = rig_with(spec, Profile::Generic, |_| {}).await;
    let s = wait_state(&r.handle, Duration::from_secs(20), |s| {
        matches!(s, ModemState::OutOfPool { .. })
    })
    .await;
    assert!(matches!(s, ModemState::OutOfPool { reason } if reason.contains("PIN")));
    assert_eq!(r.sim.status()[0].pin_attempts, 3);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quectel_refuses_pin_with_one_attempt_left() {
    let spec = ModemSpec {
        profile: sim::Profile::Quectel,
        pin: Some("4321".into()),
        pin_attempts: 1,
        ..ModemSpec::default()
    };
    let r = rig_with(spec, Profile::Quectel, |c| c.pin = Some("4321".into())).await;
    let s = wait_state(&r.handle, Duration::from_secs(20), |s| {
        matches!(s, ModemState::OutOfPool { .. })
    })
    .await;
    assert!(matches!(s, ModemState::OutOfPool { reason } if reason.contains("attempt")));
    assert_eq!(r.sim.status()[0].pin_attempts, 1, "the PIN was not tried");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_actor_and_disables_it() {
    let r = rig(Profile::Generic).await;
    wait_ready(&r.handle).await;
    r.cancel.cancel();
    timeout(Duration::from_secs(10), r.task)
        .await
        .expect("actor stops")
        .expect("no panic");
    assert_eq!(r.handle.status().state, ModemState::Disabled);
    let err = r
        .handle
        .send(parts_for(PHONE, "late", false))
        .await
        .expect_err("stopped");
    assert!(matches!(err, SendError::ModemUnavailable { .. }));
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_control_overtakes_queued_sends() {
    let spec = ModemSpec {
        latency: sim::Latency {
            send: MsRange(300, 300),
            ..sim::Latency::default()
        },
        ..ModemSpec::default()
    };
    let r = rig_with(spec, Profile::Generic, |_| {}).await;
    wait_ready(&r.handle).await;
    let mut sends = Vec::new();
    for i in 0..5 {
        let h = r.handle.clone();
        sends.push(tokio::spawn(async move {
            h.send(parts_for(PHONE, &format!("bulk {i}"), false)).await
        }));
    }
    eventually(Duration::from_secs(5), "first bulk send in flight", || {
        !r.sim.submitted().is_empty()
    })
    .await;
    r.handle.clcc().await.expect("AT+CLCC answered");
    let done = r.sim.submitted().len();
    assert!(done < 5, "call request waited behind {done} queued sends");
    for s in sends {
        s.await.expect("join").expect("bulk send");
    }
    assert_eq!(r.sim.submitted().len(), 5);
    r.stop().await;
}

/// What an acking consumer of the actor's events saw.
#[derive(Debug, Default)]
struct Inbox {
    /// TP-MR of every status report, in arrival order.
    report_mrs: Vec<Option<u8>>,
    texts: Vec<String>,
}

/// Consumes every event, acks every stored message and report at once (as the daemon does once
/// stored), and records what arrived.
fn ack_everything(
    mut events: mpsc::Receiver<ModemEvent>,
) -> std::sync::Arc<std::sync::Mutex<Inbox>> {
    let inbox = std::sync::Arc::new(std::sync::Mutex::new(Inbox::default()));
    let sink = inbox.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                ModemEvent::StatusReport { mr, ack, .. } => {
                    sink.lock().expect("inbox").report_mrs.push(mr);
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                }
                ModemEvent::Sms { pdu, ack, .. } => {
                    sink.lock().expect("inbox").texts.push(deliver_text(&pdu));
                    let _ = ack.send(());
                }
                _ => {}
            }
        }
    });
    inbox
}

/// Regression (tests/compare/gammu-smsd.sh, session 1): 40 sends with status reports gave only 30
/// `AT+CMGR`/`AT+CMGD` of `SR` reports. A report stored in a slot that an `AT+CMGD` had just freed
/// is announced with the same index (`+CDSI: "SR",<i>`), often in the same read as the delete's
/// `OK`; the actor still counted that index as "pending" and dropped the announcement, so the
/// report was never read, `SR` filled up and the simulator held inbound texts behind it. More sends
/// than `SR` holds must each bring back exactly one report, all deleted, and a text sent after them
/// must still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_beyond_sr_capacity_are_all_read_and_deleted() {
    const SENDS: usize = 45;
    let spec = ModemSpec {
        capacity: 30,
        // Fast sends, late reports: all 45 reports fall due together after the sends, 30 fill SR
        // and 15 wait in the network; each `AT+CMGD` frees a slot that the next report takes at
        // once, announced right behind the delete's `OK`.
        latency: sim::Latency {
            send: MsRange(0, 2),
            default: MsRange(0, 1),
            read: MsRange(0, 1),
        },
        status_report_delay_ms: 2_000,
        ..ModemSpec::default()
    };
    let (sim, dir, port) = start_sim(spec).await;
    let (handle, events, cancel, task) = start_actor(port, Profile::Generic, |_| {});
    wait_ready(&handle).await;
    let inbox = ack_everything(events);
    let mut mrs = Vec::new();
    for i in 0..SENDS {
        let sent = handle
            .send(parts_for(PHONE, &format!("report me {i}"), true))
            .await
            .expect("sent");
        mrs.extend(sent);
    }
    assert_eq!(mrs.len(), SENDS);
    eventually(
        Duration::from_secs(20),
        "a status report for every send",
        || inbox.lock().expect("inbox").report_mrs.len() >= SENDS,
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "every report deleted from SR",
        || sim.stored(0, "SR").map(|s| s.is_empty()).unwrap_or(false),
    )
    .await;
    {
        let got = inbox.lock().expect("inbox");
        let mut seen: Vec<u8> = got.report_mrs.iter().filter_map(|m| *m).collect();
        seen.sort_unstable();
        let mut want = mrs.clone();
        want.sort_unstable();
        assert_eq!(seen, want, "one report per send, none twice");
    }
    sim.phone_sms(&PhoneSms {
        from: PHONE.into(),
        modem: 0,
        text: "after the reports".into(),
        ..Default::default()
    })
    .expect("phone texts");
    eventually(
        Duration::from_secs(10),
        "the inbound text after the reports",
        || {
            inbox
                .lock()
                .expect("inbox")
                .texts
                .iter()
                .any(|t| t == "after the reports")
        },
    )
    .await;
    assert_eq!(sim.status()[0].stored_sr, 0);
    cancel.cancel();
    let _ = timeout(Duration::from_secs(10), task).await;
    sim.shutdown().await;
    drop(dir);
}

/// A status report whose ack never came stays in `SR`; the periodic storage drain must find it
/// there and publish it again (before, the drain listed `SM` only, so such a report sat in `SR`
/// for ever and every one like it shrank the storage left for the next reports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_drain_finds_an_unacked_report_in_sr() {
    let mut r = rig(Profile::Generic).await;
    // rig() already started the actor with the default drain interval; use a fresh one instead.
    r.cancel.cancel();
    let _ = timeout(Duration::from_secs(10), &mut r.task).await;
    let port = r.sim.paths().modems[0].at.clone();
    let (handle, mut events, cancel, task) = start_actor(port, Profile::Generic, |c| {
        c.timeouts.drain_interval = Duration::from_millis(300);
    });
    r.handle = handle;
    r.cancel = cancel;
    r.task = task;
    wait_ready(&r.handle).await;
    let mrs = r
        .handle
        .send(parts_for(PHONE, "report, then lose the ack", true))
        .await
        .expect("sent");
    let first = next_message(&mut events, Duration::from_secs(5)).await;
    let ModemEvent::StatusReport { mr, index, ack, .. } = first else {
        panic!("not a report: {first:?}")
    };
    assert_eq!(mr, mrs.first().copied());
    // The layer above failed to store it: the ack is dropped, the report stays in SR.
    drop(ack);
    let again = next_message(&mut events, Duration::from_secs(5)).await;
    let ModemEvent::StatusReport {
        mr: mr2,
        storage,
        index: index2,
        ack,
        ..
    } = again
    else {
        panic!("not a report: {again:?}")
    };
    assert_eq!((mr2, index2, storage.as_str()), (mr, index, "SR"));
    ack.expect("stored report carries an ack")
        .send(())
        .expect("ack");
    eventually(Duration::from_secs(5), "report deleted from SR", || {
        r.sim.stored(0, "SR").map(|s| s.is_empty()).unwrap_or(false)
    })
    .await;
    r.events = events;
    r.stop().await;
}

/// The AT port opened the way the killed process had it (non-blocking, no controlling tty), so the
/// test can leave the simulated modem in the state a SIGKILL leaves a real one in.
fn open_raw(sim: &SimHandle, port: &std::path::Path) -> std::fs::File {
    assert!(
        !sim.status()[0].booting,
        "the modem ignores input while booting"
    );
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(port)
        .expect("open the modem port")
}

/// Reads from a non-blocking port until `needle` has arrived (polled, with a deadline).
async fn read_until(f: &mut std::fs::File, needle: &[u8], within: Duration) -> Vec<u8> {
    use std::io::Read;
    let until = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(needle.len()).any(|w| w == needle) {
        assert!(
            Instant::now() < until,
            "no {:?} from the modem; got {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&got)
        );
        match f.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    got
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// After the actor came up over stale output, its answers must be its own: a raw `AT+CGSN` gives
/// the IMEI, `AT+CSQ` a `+CSQ:` line, a send is accepted once (no junk PDU was submitted by a
/// prompt left open), and no init attempt failed on the way.
async fn assert_in_step(sim: &SimHandle, handle: &ModemHandle) {
    let st = handle.status();
    assert_eq!(st.errors, 0, "init failed on the way: {st:?}");
    let imei = sim.paths().modems[0].imei.clone();
    assert_eq!(st.identity.imei.as_deref(), Some(imei.as_str()), "{st:?}");
    let lines = handle.command("AT+CGSN", None).await.expect("AT+CGSN");
    assert!(
        lines.iter().any(|l| l.contains(&imei)),
        "AT+CGSN: {lines:?}"
    );
    let lines = handle.command("AT+CSQ", None).await.expect("AT+CSQ");
    assert!(
        lines.iter().any(|l| l.starts_with("+CSQ:")),
        "AT+CSQ: {lines:?}"
    );
    let before = sim.submitted().len();
    handle
        .send(parts_for(PHONE, "in step again", false))
        .await
        .expect("sent");
    assert_eq!(sim.submitted().len(), before + 1, "exactly our one SUBMIT");
}

/// Regression (tests/daemon_crash.rs, session 1): a process driving the modem was killed with a
/// `> ` prompt open, and the modem's earlier answers (`OK`, a `+CMGS: 12` with its `OK`) still sit
/// unread in the tty. The actor's sync used to take the first stale `OK` as the answer to its `AT`
/// and stayed one answer behind for ever (`AT+CPIN?: no +CPIN line`, on every retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_after_a_crash_with_stale_output_and_an_open_prompt() {
    let (sim, dir, port) = start_sim(ModemSpec::default()).await;
    eventually(Duration::from_secs(5), "modem booted", || {
        !sim.status()[0].booting
    })
    .await;
    {
        let mut f = open_raw(&sim, &port);
        use std::io::Write;
        f.write_all(b"AT+CMGS=23\r").expect("write");
        read_until(&mut f, b"> ", Duration::from_secs(5)).await;
        // The process dies here, the prompt still open; the modem's earlier output is unread.
    }
    let mut stale = Vec::new();
    stale.extend_from_slice(b"OK\r\n");
    stale.extend_from_slice(b"\r\n+CMGS: 12\r\n\r\nOK\r\n");
    stale.extend_from_slice(b"\r\n> ");
    sim.fault(
        0,
        &Fault::Garbage {
            hex: Some(hex_of(&stale)),
            count: None,
        },
    )
    .expect("stale bytes");
    let (handle, events, cancel, task) = start_actor(port, Profile::Generic, |_| {});
    wait_ready(&handle).await;
    assert_in_step(&sim, &handle).await;
    let r = Rig {
        sim,
        _dir: dir,
        handle,
        events,
        cancel,
        task,
    };
    r.stop().await;
}

/// The same after a kill just after the PDU went out: the `+CMGS: <mr>` and `OK` arrive only
/// after the new actor has opened the port and started its sync (send latency 400 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_after_a_crash_with_a_late_cmgs_answer() {
    let spec = ModemSpec {
        latency: sim::Latency {
            send: MsRange(400, 400),
            ..sim::Latency::default()
        },
        ..ModemSpec::default()
    };
    let (sim, dir, port) = start_sim(spec).await;
    eventually(Duration::from_secs(5), "modem booted", || {
        !sim.status()[0].booting
    })
    .await;
    {
        let mut f = open_raw(&sim, &port);
        use std::io::Write;
        // The process had sent AT and got OK, and left that OK unread, too.
        f.write_all(b"AT\r").expect("write");
        read_until(&mut f, b"AT\r", Duration::from_secs(5)).await;
        f.write_all(b"AT+CMGS=23\r").expect("write");
        read_until(&mut f, b"> ", Duration::from_secs(5)).await;
        f.write_all(b"0011000B916407281553F80000AA0AE8329BFD4697D9EC37\x1a")
            .expect("write the PDU");
    }
    let (handle, events, cancel, task) = start_actor(port, Profile::Generic, |_| {});
    wait_ready(&handle).await;
    assert_eq!(sim.submitted().len(), 1, "the killed process's SUBMIT");
    assert_in_step(&sim, &handle).await;
    let r = Rig {
        sim,
        _dir: dir,
        handle,
        events,
        cancel,
        task,
    };
    r.stop().await;
}

/// A `+CMGS: <mr>` with its `OK` that arrives while another command is in flight (the end of a
/// send given up on before, e.g. by a killed process) is not that command's answer: the actor
/// skips it and waits for the real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_cmgs_answer_during_a_command_is_not_taken_for_its_answer() {
    let spec = ModemSpec {
        latency: sim::Latency {
            default: MsRange(60, 60),
            ..sim::Latency::default()
        },
        ..ModemSpec::default()
    };
    let r = rig_with(spec, Profile::Generic, |_| {}).await;
    wait_ready(&r.handle).await;
    let seen = r.sim.status()[0].ussd_requests;
    let h = r.handle.clone();
    let csq = tokio::spawn(async move { h.command("AT+CSQ", None).await });
    eventually(Duration::from_secs(5), "AT+CSQ at the modem", || {
        r.sim.status()[0].commands_seen > seen
    })
    .await;
    // The modem answers AT+CSQ 60 ms after it read it; the late send answer is already out.
    r.sim
        .fault(
            0,
            &Fault::Garbage {
                hex: Some(hex_of(b"\r\n+CMGS: 77\r\n\r\nOK\r\n")),
                count: None,
            },
        )
        .expect("late answer");
    let lines = csq.await.expect("join").expect("AT+CSQ");
    assert!(
        lines.iter().any(|l| l.starts_with("+CSQ:")),
        "AT+CSQ answered with {lines:?}"
    );
    assert_eq!(r.handle.status().errors, 0);
    r.stop().await;
}

/// Sends queued back to back go before status-report housekeeping (read, delete), which then
/// runs in the gaps or after its longest wait: every report still arrives once and `SR` ends
/// empty, even with more sends queued than `SR` holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_sends_overtake_report_housekeeping_without_losing_reports() {
    const SENDS: usize = 40;
    let spec = ModemSpec {
        capacity: 30,
        latency: sim::Latency {
            send: MsRange(20, 40),
            default: MsRange(1, 3),
            read: MsRange(2, 5),
        },
        status_report_delay_ms: 0,
        ..ModemSpec::default()
    };
    let (sim, dir, port) = start_sim(spec).await;
    let (handle, events, cancel, task) = start_actor(port, Profile::Generic, |c| {
        c.queue_depth = 64;
    });
    wait_ready(&handle).await;
    let inbox = ack_everything(events);
    let sends: Vec<_> = (0..SENDS)
        .map(|i| {
            let h = handle.clone();
            tokio::spawn(
                async move { h.send(parts_for(PHONE, &format!("queued {i}"), true)).await },
            )
        })
        .collect();
    let mut mrs = Vec::new();
    for s in sends {
        mrs.extend(s.await.expect("join").expect("sent"));
    }
    eventually(Duration::from_secs(20), "a report for every send", || {
        inbox.lock().expect("inbox").report_mrs.len() >= SENDS
    })
    .await;
    eventually(Duration::from_secs(10), "SR empty", || {
        sim.stored(0, "SR").map(|s| s.is_empty()).unwrap_or(false)
    })
    .await;
    let mut seen: Vec<u8> = inbox
        .lock()
        .expect("inbox")
        .report_mrs
        .iter()
        .filter_map(|m| *m)
        .collect();
    seen.sort_unstable();
    mrs.sort_unstable();
    assert_eq!(seen, mrs, "one report per send");
    cancel.cancel();
    let _ = timeout(Duration::from_secs(10), task).await;
    sim.shutdown().await;
    drop(dir);
}

/// A port missing when the actor starts (a modem plugged in late) and still missing after every
/// reopen attempt takes the modem out of the pool with an alert; when the port appears, even
/// then, the modem initialises and sends. (The daemon starts with such a modem; docs/daemon.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_appears_after_the_modem_went_out_of_the_pool_brings_it_back() {
    let (sim, dir, port) = start_sim(ModemSpec::default()).await;
    sim.fault(0, &Fault::Unplug).expect("unplug");
    eventually(
        Duration::from_secs(5),
        "the unplugged port path is gone",
        || !port.exists(),
    )
    .await;
    let (handle, mut events, cancel, task) = start_actor(port, Profile::Generic, |c| {
        c.timeouts.reboot_wait = Duration::from_millis(200);
        c.timeouts.recovery_cycles = 1;
        c.timeouts.recovery_base = Duration::from_millis(20);
        c.timeouts.recovery_max = Duration::from_millis(50);
    });
    let state = wait_state(&handle, Duration::from_secs(20), |s| {
        matches!(s, ModemState::OutOfPool { .. })
    })
    .await;
    assert!(matches!(state, ModemState::OutOfPool { .. }), "{state:?}");
    let alerted = timeout(Duration::from_secs(5), async {
        while let Some(ev) = events.recv().await {
            if matches!(ev, ModemEvent::Alert { .. }) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(alerted, "going out of the pool raises an alert");
    assert!(
        handle
            .send(parts_for(PHONE, "refused", false))
            .await
            .is_err()
    );

    sim.fault(0, &Fault::Replug).expect("replug");
    wait_state(&handle, Duration::from_secs(20), |s| {
        *s == ModemState::Ready
    })
    .await;
    handle
        .send(parts_for(PHONE, "plugged in late", false))
        .await
        .expect("sent once the port appeared");
    assert!(sim.submitted().len() == 1);
    let r = Rig {
        sim,
        _dir: dir,
        handle,
        events,
        cancel,
        task,
    };
    r.stop().await;
}

/// docs/modems.md, "Foreign records in received storage": a record that is neither an
/// SMS-DELIVER nor a status report (here an SMS-SUBMIT a phone left with stat REC READ) is left on
/// the SIM, raised once as an alert, and skipped by every later drain, while the messages around it
/// flow. The same record announced with `+CMTI` is read once, raised once, never published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_record_in_storage_is_left_raised_once_and_skipped() {
    let (sim, dir, port) = start_sim(ModemSpec::default()).await;
    // docs/pdu.md vector 2 (an SMS-SUBMIT) and a DELIVER left behind, both without a URC.
    let submit = pdu::hex_to_bytes("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").unwrap();
    let foreign_at = sim.store_pdu(0, submit.clone(), 1, false).unwrap().unwrap();
    let from = Address::parse(PHONE).unwrap();
    let deliver = pdu::delivers_for_text(
        &from,
        "left behind",
        pdu::Timestamp::from_unix(1.7e9 as i64, 0),
        0,
    )
    .unwrap()[0]
        .encode();
    let deliver_at = sim.store_pdu(0, deliver, 1, false).unwrap().unwrap();
    let (handle, mut events, cancel, task) = start_actor(port, Profile::Generic, |c| {
        c.timeouts.drain_interval = Duration::from_millis(300);
    });
    let mut alerts = Vec::new();
    let next = async |events: &mut mpsc::Receiver<ModemEvent>, alerts: &mut Vec<String>| {
        timeout(Duration::from_secs(20), async {
            loop {
                match events.recv().await.expect("events") {
                    ModemEvent::Alert { reason, .. } => alerts.push(reason),
                    ev @ (ModemEvent::Sms { .. } | ModemEvent::StatusReport { .. }) => return ev,
                    _ => {}
                }
            }
        })
        .await
        .expect("an inbound message event")
    };
    // The DELIVER is published by the drain; its ack is dropped three times, so three drains run
    // past the foreign record. Every publication is the DELIVER, never the SUBMIT.
    for round in 0..4 {
        let ev = next(&mut events, &mut alerts).await;
        let ModemEvent::Sms {
            pdu, index, ack, ..
        } = ev
        else {
            panic!("not an sms: {ev:?}")
        };
        assert_eq!(index, Some(deliver_at as u32));
        assert_eq!(deliver_text(&pdu), "left behind");
        if round == 3 {
            ack.send(()).expect("ack");
        } else {
            drop(ack);
        }
    }
    eventually(
        Duration::from_secs(10),
        "only the foreign record left",
        || {
            sim.stored(0, "SM")
                .map(|s| s.len() == 1 && s[0].index == foreign_at)
                .unwrap_or(false)
        },
    )
    .await;
    let foreign: Vec<&String> = alerts
        .iter()
        .filter(|a| a.contains(&format!("SM {foreign_at} ")))
        .collect();
    assert_eq!(foreign.len(), 1, "raised once: {alerts:?}");
    assert!(foreign[0].contains("SMS-SUBMIT"), "{foreign:?}");

    // Announced: read once, raised once, not published; a text after it still arrives.
    sim.store_pdu(0, submit, 0, true).unwrap();
    sim.phone_sms(&PhoneSms {
        from: PHONE.into(),
        modem: 0,
        text: "after the foreign one".into(),
        ..Default::default()
    })
    .unwrap();
    let ev = next(&mut events, &mut alerts).await;
    let ModemEvent::Sms { pdu, ack, .. } = ev else {
        panic!("not an sms: {ev:?}")
    };
    assert_eq!(deliver_text(&pdu), "after the foreign one");
    ack.send(()).expect("ack");
    eventually(
        Duration::from_secs(10),
        "the text deleted, two foreign records kept",
        || sim.stored(0, "SM").map(|s| s.len() == 2).unwrap_or(false),
    )
    .await;
    let raised = alerts.iter().filter(|a| a.contains("SMS-SUBMIT")).count();
    assert_eq!(raised, 2, "{alerts:?}");
    let r = Rig {
        sim,
        _dir: dir,
        handle,
        events,
        cancel,
        task,
    };
    r.stop().await;
}

/// docs/modems.md, "USSD": `*100#` answers the balance on every profile, in the profile's form on
/// the wire (Huawei: packed GSM 7-bit hex both ways; SIMCom: UCS-2 hex, DCS 72; the others plain
/// text), decoded to the same text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ussd_balance_decodes_on_every_profile() {
    for profile in Profile::ALL {
        let r = rig(profile).await;
        wait_ready(&r.handle).await;
        let a = r
            .handle
            .ussd(UssdOp::Send("*100#".into()), Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        assert_eq!(a.state, UssdState::Done, "{profile:?}");
        assert_eq!(a.text, sim::USSD_BALANCE, "{profile:?}");
        let dcs = if profile == Profile::Simcom { 72 } else { 15 };
        assert_eq!(a.dcs, Some(dcs), "{profile:?}");
        r.stop().await;
    }
}

/// A menu (`+CUSD: 1`) answered with a reply, a menu cancelled (`AT+CUSD=2`), the network ending
/// the session (`+CUSD: 2`), an unknown code (`+CUSD: 4`) and no answer at all are each a clear
/// outcome, and the modem serves a send afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ussd_menu_reply_cancel_errors_and_timeout() {
    let r = rig(Profile::Huawei).await;
    wait_ready(&r.handle).await;
    let t = Duration::from_secs(20);
    let h = &r.handle;
    let menu = h.ussd(UssdOp::Send("*101#".into()), t).await.unwrap();
    assert_eq!(
        (menu.state, menu.text.as_str()),
        (UssdState::Menu, sim::USSD_MENU)
    );
    let data = h.ussd(UssdOp::Reply("2".into()), t).await.unwrap();
    assert_eq!(
        (data.state, data.text.as_str()),
        (UssdState::Done, sim::USSD_DATA)
    );

    h.ussd(UssdOp::Send("*101#".into()), t).await.unwrap();
    let c = h.ussd(UssdOp::Cancel, t).await.unwrap();
    assert_eq!(c.state, UssdState::Cancelled);
    let after = h.ussd(UssdOp::Reply("1".into()), t).await.unwrap_err();
    assert!(matches!(after, UssdError::NotSupported { .. }), "{after}");

    let e = h.ussd(UssdOp::Send("*102#".into()), t).await.unwrap_err();
    assert!(matches!(e, UssdError::Terminated { .. }), "{e}");
    assert!(e.to_string().contains("+CUSD: 2"), "{e}");
    let e = h.ussd(UssdOp::Send("*555#".into()), t).await.unwrap_err();
    assert!(matches!(e, UssdError::NotSupported { .. }), "{e}");
    let e = h
        .ussd(UssdOp::Send("*199#".into()), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(e, UssdError::Timeout { .. }), "{e}");
    let e = h.ussd(UssdOp::Send("*1\"#".into()), t).await.unwrap_err();
    assert!(matches!(e, UssdError::Invalid(_)), "{e}");

    // One session per modem: a second request ends the wait of the first.
    let seen = r.sim.status()[0].ussd_requests;
    let first = tokio::spawn({
        let h = h.clone();
        async move { h.ussd(UssdOp::Send("*199#".into()), t).await }
    });
    eventually(Duration::from_secs(10), "the first AT+CUSD written", || {
        r.sim.status()[0].ussd_requests > seen
    })
    .await;
    let second = h.ussd(UssdOp::Send("*100#".into()), t).await.unwrap();
    assert_eq!(second.text, sim::USSD_BALANCE);
    let e = first.await.unwrap().unwrap_err();
    assert!(matches!(e, UssdError::Superseded), "{e}");

    // Still in service: the balance, then a send.
    let a = h.ussd(UssdOp::Send("*100#".into()), t).await.unwrap();
    assert_eq!(a.text, sim::USSD_BALANCE);
    h.send(parts_for(PHONE, "after USSD", false))
        .await
        .expect("sent");
    assert_eq!(h.status().state, ModemState::Ready);
    r.stop().await;
}
