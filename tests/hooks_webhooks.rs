//! Webhooks end to end (docs/http-api.md, "Webhooks"): the daemon runs in-process on simulated
//! modems and POSTs to a receiver in this test (tests/webhook_receiver) that verifies every
//! delivery exactly as the docs tell a user to and de-duplicates by event id.
//!
//! - every event type the gateway produces is caused by a real flow (a phone texts in, STOP,
//!   START, a send whose status report says failed, a broadcast, a call that leaves a voicemail,
//!   an unplugged and replugged modem, a failing scheduled backup) and reaches the receiver,
//!   verified, in journal order, each journal event exactly once after de-duplication;
//! - a receiver that answers 500 is retried, in order, until it answers 200;
//! - an event still failing after the retry period is given up, and the next one follows;
//! - `webhooks` shows backlog, attempts and errors; `webhooks replay` re-sends one event;
//! - a webhook configured with the wrong secret fails verification at the receiver (401), and
//!   the verifier itself refuses a wrong secret, a tampered body and an old timestamp.
//!
//! Deliveries across a kill -9 are tests/hooks_crash.rs.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;
mod webhook_receiver;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use gsmgate::admin::ClientError;
use gsmgate::admin::ErrorCode;
use gsmgate::config::Config;
use gsmgate::hooks::RetryPolicy;
use gsmgate::sim::{Fault, PhoneCall};
use gsmgate::store::{EVENT_TYPES, Store};

use daemon_util::{ALICE, BOB, CAROL, Gateway, config_text, options, poll, short_tempdir};
use webhook_receiver::{Receiver, Refused, verify};

const SECRET: &str = "test-secret-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(60);

/// Retries in tens of milliseconds so a test sees several attempts quickly.
fn fast_retry(give_up: Duration) -> RetryPolicy {
    RetryPolicy {
        first: Duration::from_millis(50),
        cap: Duration::from_millis(200),
        give_up,
        request_timeout: Duration::from_secs(10),
    }
}

fn webhook_table(url: &str, secret: &str, extra: &str) -> String {
    format!("\n[[webhook]]\nname = \"test\"\nurl = \"{url}\"\nsecret = \"{secret}\"\n{extra}\n")
}

async fn start(text: String, dir: tempfile::TempDir, retry: RetryPolicy) -> Gateway {
    let cfg = Config::from_str(&text, "webhook-test.toml").expect("test config validates");
    let mut opts = options(&cfg);
    opts.hooks_retry = Some(retry);
    Gateway::start_in(dir, cfg, opts).await
}

/// Every journal event of the daemon's database, as (id, type), ascending.
fn journal(store: &Store) -> Vec<(i64, String)> {
    store
        .events_after(0, &[], 100_000)
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.kind))
        .collect()
}

async fn wait_types(rx: &Receiver, types: &[&str]) {
    poll(
        &format!("the receiver has seen {types:?}"),
        WAIT,
        || async {
            let seen: BTreeSet<String> = rx
                .deliveries()
                .into_iter()
                .filter(|d| d.verified)
                .map(|d| d.kind)
                .collect();
            types.iter().all(|t| seen.contains(*t)).then_some(())
        },
    )
    .await
}

// ---- the verifier as the docs give it ------------------------------------------------------

fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
    gsmgate::hooks::sign::signature(secret, ts.parse().unwrap(), body)
}

#[test]
fn the_documented_verifier_refuses_a_wrong_secret_tampering_and_replays() {
    let body = br#"{"id":5,"type":"message_received","at":"2026-01-01T00:00:00Z","data":{}}"#;
    let now = 1_800_000_000;
    let ts = now.to_string();
    let sig = sign(SECRET, &ts, body);
    let headers = |ts: String, sig: String| {
        move |name: &str| match name {
            "X-Gsmgate-Timestamp" => Some(ts.clone()),
            "X-Gsmgate-Signature" => Some(sig.clone()),
            _ => None,
        }
    };
    assert_eq!(
        verify(SECRET, headers(ts.clone(), sig.clone()), body, now),
        Ok(())
    );
    assert_eq!(
        verify(
            "a-different-secret-value",
            headers(ts.clone(), sig.clone()),
            body,
            now
        ),
        Err(Refused::BadSignature)
    );
    let mut tampered = body.to_vec();
    tampered[7] = b'6';
    assert_eq!(
        verify(SECRET, headers(ts.clone(), sig.clone()), &tampered, now),
        Err(Refused::BadSignature)
    );
    // A captured request replayed six minutes later is refused by its timestamp.
    assert_eq!(
        verify(SECRET, headers(ts.clone(), sig.clone()), body, now + 360),
        Err(Refused::TooOld)
    );
    // Moving the timestamp forward breaks the signature.
    let later = (now + 360).to_string();
    assert_eq!(
        verify(SECRET, headers(later, sig.clone()), body, now + 360),
        Err(Refused::BadSignature)
    );
    assert_eq!(
        verify(SECRET, |_: &str| None, body, now),
        Err(Refused::MissingHeader("X-Gsmgate-Timestamp"))
    );
}

// ---- every event type ----------------------------------------------------------------------

/// The voice-enabled test config (as tests/daemon_voice.rs): profiles with a voice path, a
/// greeting, voicemail on; plus a backup dir that is a file, so the scheduled backup fails and
/// raises the `backup_failed` alert.
fn all_events_config(dir: &Path, rx: &Receiver) -> String {
    let d = dir.display();
    let text = config_text(dir)
        .replace(
            "[simulator]\nenabled = true\nmodems = 2\n",
            "[simulator]\nenabled = true\nmodems = 2\nprofiles = [\"huawei\", \"simcom\"]\n",
        )
        // One balance reading at start, below the threshold: `low_balance`.
        .replace(
            "/sim/modem0\"\n",
            "/sim/modem0\"\nprofile = \"huawei\"\nbalance_ussd = \"*100#\"\n\
             balance_every_hours = 744\nlow_balance = 100.0\n",
        )
        .replace("/sim/modem1\"\n", "/sim/modem1\"\nprofile = \"simcom\"\n")
        .replace(
            "log = \"debug\"\n",
            &format!("log = \"debug\"\nbackup_dir = \"{d}/not-a-dir\"\n"),
        );
    assert!(
        text.contains("backup_dir") && text.contains("\"simcom\"\n"),
        "config changed shape"
    );
    format!(
        "{text}\n[voice]\nenabled = true\nanswer_after_rings = 2\ngreeting = \"{d}/greeting.wav\"\n\
         voicemail = true\nmax_seconds = 30\nsilence_seconds = 1\nreply_text = \"Thanks for calling\"\n{}",
        webhook_table(&rx.url(), SECRET, "")
    )
}

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
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_reaches_a_verifying_receiver_in_journal_order() {
    let rx = Receiver::start(SECRET).await;
    let dir = short_tempdir();
    std::fs::write(
        dir.path().join("not-a-dir"),
        b"a file where the backups should go",
    )
    .unwrap();
    write_wav(&dir.path().join("greeting.wav"), &tone(8000, 300.0));
    let text = all_events_config(dir.path(), &rx);
    let cfg = Config::from_str(&text, "webhook-test.toml").unwrap();
    let mut opts = options(&cfg);
    opts.hooks_retry = Some(fast_retry(Duration::from_secs(3600)));
    opts.backup_interval = Some(Duration::from_millis(500));
    opts.upkeep = gsmgate::daemon::upkeep::UpkeepTiming {
        tick: Duration::from_millis(100),
        hour: Duration::from_secs(1),
    };
    if let Some(sim) = opts.sim.as_mut() {
        for spec in &mut sim.modems {
            spec.ring_interval_ms = 300;
            spec.cpcmreg_delay_ms = 400;
            spec.noise_interval_ms = 0;
        }
    }
    let gw = Gateway::start_in(dir, cfg, opts).await;
    wait_types(&rx, &["modem_up", "alert"]).await;

    // A member joins, texts in, opts out and back in.
    gw.add_member(ALICE).await;
    gw.text_in(ALICE, 0, "Hello from Alice");
    gw.text_in(ALICE, 0, "STOP");
    wait_types(
        &rx,
        &["member_joined", "message_received", "member_opted_out"],
    )
    .await;
    gw.text_in(ALICE, 0, "START");
    wait_types(
        &rx,
        &["member_opted_in", "message_sent", "message_delivered"],
    )
    .await;

    // A broadcast finishes.
    gw.add_member(BOB).await;
    gw.broadcast_and_wait("Rally at noon", &[ALICE, BOB]).await;
    wait_types(&rx, &["broadcast_finished"]).await;

    // A send whose status report says "failed" (TP-ST 0x41: permanent error).
    gw.sim().set_report_status(0x41);
    gw.client()
        .await
        .send(gsmgate::admin::protocol::SendArgs {
            to: CAROL.into(),
            text: "this one fails".into(),
            modem: None,
        })
        .await
        .expect("send accepted");
    wait_types(&rx, &["message_failed"]).await;
    gw.sim().set_report_status(0x00);

    // A call that leaves a voicemail.
    let mut speech = vec![0i16; 8000 * 2];
    speech.extend(tone(8000 * 3 / 2, 523.0));
    let speak = gw.dir.path().join("speech.wav");
    write_wav(&speak, &speech);
    gw.sim()
        .phone_call(&PhoneCall {
            from: BOB.into(),
            modem: 0,
            speak_wav: Some(speak),
            ..PhoneCall::default()
        })
        .expect("call placed");
    wait_types(&rx, &["call_ended", "voicemail_left"]).await;

    // The balance read at start was below the threshold.
    wait_types(&rx, &["low_balance"]).await;

    // A start is no outage: the modems were not yet open, not down.
    assert!(
        !rx.deliveries().iter().any(|d| d.kind == "modem_down"),
        "a start raised modem_down"
    );
    // A modem unplugged, then back with another SIM in it.
    gw.sim().fault(1, &Fault::Unplug).unwrap();
    wait_types(&rx, &["modem_down"]).await;
    // The SIM goes in only once the daemon saw the stick gone (a replug it never noticed would
    // not re-read the SIM, as with a real stick).
    poll("sim1 seen unplugged", WAIT, || async {
        let ms = gw.client().await.modems().await.ok()?;
        ms.iter()
            .any(|m| m.name == "sim1" && m.state != "ready")
            .then_some(())
    })
    .await;
    gw.sim()
        .insert_sim(1, gsmgate::sim::Identity::for_index(9))
        .unwrap();
    gw.sim().fault(1, &Fault::Replug).unwrap();
    wait_types(&rx, &["sim_changed"]).await;
    poll("modem_up after the replug", WAIT, || async {
        let d = rx.deliveries();
        let down = d.iter().position(|d| d.kind == "modem_down")?;
        d[down..].iter().any(|d| d.kind == "modem_up").then_some(())
    })
    .await;

    // Everything the journal holds has arrived: every produced type, each id once after
    // de-duplication, all verified, and in journal order.
    let store = gw.daemon.store();
    poll("the receiver has every journal event", WAIT, || async {
        let ids: BTreeSet<i64> = journal(&store).iter().map(|(id, _)| *id).collect();
        (rx.ids() == ids).then_some(())
    })
    .await;
    let expected: BTreeSet<&str> = EVENT_TYPES
        .iter()
        .copied()
        // owner_command: an owner texting the gateway, tested in tests/daemon_owners.rs.
        .filter(|t| *t != "owner_command")
        .collect();
    let got: BTreeSet<String> = rx.deliveries().into_iter().map(|d| d.kind).collect();
    for t in &expected {
        assert!(got.contains(*t), "no {t} event arrived; got {got:?}");
    }
    let deliveries = rx.deliveries();
    assert!(
        deliveries.iter().all(|d| d.verified),
        "every delivery verifies"
    );
    let first_seen: Vec<i64> = deliveries
        .iter()
        .filter(|d| !d.duplicate)
        .map(|d| d.id)
        .collect();
    assert!(
        first_seen.windows(2).all(|w| w[0] < w[1]),
        "in order: {first_seen:?}"
    );
    // The body has what the docs promise.
    let received = deliveries
        .iter()
        .find(|d| d.kind == "message_received" && d.body["data"]["text"] == "Hello from Alice")
        .expect("Alice's text");
    assert_eq!(received.body["data"]["from"], ALICE);
    assert!(received.body["at"].as_str().unwrap().ends_with('Z'));
    let opted_out = deliveries
        .iter()
        .find(|d| d.kind == "member_opted_out")
        .unwrap();
    assert_eq!(opted_out.body["data"]["number"], ALICE);

    // `webhooks` shows the endpoint caught up (polled: the failing backup raises a new alert
    // every half second, so the backlog is 0 only between two of them).
    let list = poll("webhooks shows no backlog", WAIT, || async {
        let list = gw.client().await.webhooks().await.ok()?;
        (list.len() == 1 && list[0].backlog == 0).then_some(list)
    })
    .await;
    assert_eq!(list[0].name, "test");
    assert!(list[0].delivered_total as usize >= expected.len());
    assert!(list[0].last_success_at.is_some());
    gw.shutdown().await;
}

// ---- retries, give-up, replay, wrong secret --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_500_is_retried_in_order_then_delivered_and_replay_resends() {
    let rx = Receiver::start(SECRET).await;
    let dir = short_tempdir();
    let text =
        config_text(dir.path()) + &webhook_table(&rx.url(), SECRET, "events = [\"member_joined\"]");
    let gw = start(text, dir, fast_retry(Duration::from_secs(3600))).await;

    rx.script(&[500, 500, 500]);
    for n in [ALICE, BOB, CAROL] {
        gw.add_member(n).await;
    }
    poll("three members delivered", WAIT, || async {
        (rx.ids().len() == 3).then_some(())
    })
    .await;
    let d = rx.deliveries();
    // The first event was refused three times and only then did the second one go out.
    assert_eq!(
        d.iter().map(|d| d.status).collect::<Vec<_>>(),
        [500, 500, 500, 200, 200, 200]
    );
    assert!(d[..4].iter().all(|x| x.id == d[0].id), "{d:?}");
    let ids: Vec<i64> = d[3..].iter().map(|x| x.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    let numbers: Vec<&str> = d[3..]
        .iter()
        .map(|x| x.body["data"]["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, [ALICE, BOB, CAROL]);

    let mut client = gw.client().await;
    // The receiver records a delivery before the daemon records its answer: poll.
    let w = &poll("the three deliveries recorded", WAIT, || async {
        let w = gw.client().await.webhooks().await.ok()?.remove(0);
        (w.delivered_total == 3).then_some(w)
    })
    .await;
    assert_eq!(
        (w.backlog, w.attempts, w.delivered_total),
        (0, 0, 3),
        "{w:?}"
    );
    assert!(
        w.last_error.as_deref().unwrap_or("").contains("500"),
        "{w:?}"
    );
    assert_eq!(w.events, ["member_joined"]);

    // Replay: the second event once more, signed as usual; the receiver sees a duplicate.
    let again = client.webhook_replay("test", ids[1]).await.expect("replay");
    assert!(again.done, "{again:?}");
    assert_eq!(again.result.as_deref(), Some("delivered (HTTP 200)"));
    let last = rx.deliveries().last().cloned().unwrap();
    assert_eq!(
        (last.id, last.verified, last.duplicate),
        (ids[1], true, true)
    );
    match client.webhook_replay("nope", ids[1]).await {
        Err(ClientError::Server(e)) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("unknown webhook: {other:?}"),
    }
    match client.webhook_replay("test", 999_999).await {
        Err(ClientError::Server(e)) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("unknown event: {other:?}"),
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_failing_past_the_retry_period_is_given_up_and_the_next_follows() {
    let rx = Receiver::start(SECRET).await;
    let dir = short_tempdir();
    let text =
        config_text(dir.path()) + &webhook_table(&rx.url(), SECRET, "events = [\"member_joined\"]");
    let gw = start(text, dir, fast_retry(Duration::from_secs(1))).await;

    rx.script(&[503; 1000]);
    gw.add_member(ALICE).await;
    let w = poll("the first event given up", WAIT, || async {
        let w = gw.client().await.webhooks().await.ok()?.remove(0);
        (w.failed_total == 1).then_some(w)
    })
    .await;
    assert!(
        w.last_error.as_deref().unwrap().contains("gave up"),
        "{w:?}"
    );
    assert_eq!(w.backlog, 0);
    // At least the one attempt the give-up follows (how many fit in the retry period depends on
    // the machine's load, so the test does not count them).
    let refused = rx.deliveries().len();
    assert!(
        refused >= 1 && rx.deliveries().iter().all(|d| d.status == 503),
        "{refused}"
    );

    rx.clear_script();
    gw.add_member(BOB).await;
    poll("Bob's event delivered", WAIT, || async {
        rx.deliveries()
            .iter()
            .any(|d| d.status == 200 && d.body["data"]["number"] == BOB)
            .then_some(())
    })
    .await;
    // The receiver records a delivery before the daemon records its answer: poll.
    let w = poll("Bob's delivery recorded", WAIT, || async {
        let w = gw.client().await.webhooks().await.ok()?.remove(0);
        (w.delivered_total == 1).then_some(w)
    })
    .await;
    assert_eq!(
        (w.failed_total, w.delivered_total, w.backlog),
        (1, 1, 0),
        "{w:?}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_with_the_wrong_secret_is_refused_by_the_receiver_and_retried() {
    let rx = Receiver::start(SECRET).await;
    let dir = short_tempdir();
    let text = config_text(dir.path())
        + &webhook_table(
            &rx.url(),
            "not-the-receivers-secret",
            "events = [\"member_joined\"]",
        );
    let gw = start(text, dir, fast_retry(Duration::from_secs(3600))).await;
    gw.add_member(ALICE).await;
    let w = poll("a refused delivery recorded", WAIT, || async {
        let w = gw.client().await.webhooks().await.ok()?.remove(0);
        (w.attempts >= 2).then_some(w)
    })
    .await;
    assert!(w.last_error.as_deref().unwrap().contains("401"), "{w:?}");
    assert_eq!((w.backlog, w.delivered_total), (1, 0));
    assert!(
        rx.deliveries()
            .iter()
            .all(|d| !d.verified && d.status == 401)
    );
    assert!(rx.ids().is_empty(), "nothing accepted");
    gw.shutdown().await;
}
