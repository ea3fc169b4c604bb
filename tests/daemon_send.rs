//! End-to-end tests of the daemon that send: they go through the real dispatch runner
//! (`dispatch::runner`) and the modem actors to the simulated network, and check what the
//! simulated phones received. Same harness as `daemon_e2e.rs`.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::time::Duration;

use daemon_util::*;
use gsmgate::admin::protocol::{ConversationItem, Direction, SendArgs};
use gsmgate::sim::{Fault, MsRange};

const WAIT: Duration = Duration::from_secs(30);

fn out_status(items: &[ConversationItem], id: i64) -> Option<String> {
    items
        .iter()
        .find(|i| i.direction == Direction::Out && i.id == id)
        .and_then(|i| i.status.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_the_phone_and_the_conversation_shows_it_sent() {
    let gw = Gateway::start().await;
    let accepted = gw
        .client()
        .await
        .send(SendArgs {
            to: BOB.into(),
            text: "Meeting at 7 tonight".into(),
            modem: None,
        })
        .await
        .unwrap();
    poll("Bob receives the text", WAIT, || async {
        gw.received_texts(BOB)
            .iter()
            .any(|t| t == "Meeting at 7 tonight")
            .then_some(())
    })
    .await;
    let status = poll("conversation shows it sent", WAIT, || async {
        let s = out_status(&gw.conversation(BOB).await, accepted.id)?;
        (s == "sent" || s == "delivered").then_some(s)
    })
    .await;
    assert!(status == "sent" || status == "delivered", "{status}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_report_marks_the_message_delivered() {
    let gw = Gateway::start().await;
    let accepted = gw
        .client()
        .await
        .send(SendArgs {
            to: ALICE.into(),
            text: "Did you get this?".into(),
            modem: Some("sim0".into()),
        })
        .await
        .unwrap();
    poll("conversation shows it delivered", WAIT, || async {
        (out_status(&gw.conversation(ALICE).await, accepted.id)? == "delivered").then_some(())
    })
    .await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_receives_welcome_compliance_and_card_in_that_order() {
    let gw = Gateway::start().await;
    gw.text_in(ALICE, 0, "Hello!");
    let got = poll("Alice receives three texts", WAIT, || async {
        let t = gw.received_texts(ALICE);
        (t.len() >= 3).then_some(t)
    })
    .await;
    assert!(
        got[0].starts_with("OK, I've got your number saved"),
        "{got:?}"
    );
    assert!(got[1].starts_with("Msg frequency will vary"), "{got:?}");
    assert!(
        got[2].starts_with("Save this number as Test Leader"),
        "{got:?}"
    );

    gw.text_in(ALICE, 0, "Thanks");
    poll("second text in the inbox", WAIT, || async {
        gw.inbox()
            .await
            .iter()
            .any(|m| m.text == "Thanks")
            .then_some(())
    })
    .await;
    // Nothing new is queued for Alice, so nothing more can arrive.
    let convo = gw.conversation(ALICE).await;
    let out = convo
        .iter()
        .filter(|i| i.direction == Direction::Out)
        .count();
    assert_eq!(out, 3, "{convo:?}");
    assert_eq!(gw.received_texts(ALICE).len(), 3);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_gets_exactly_one_confirmation_on_the_phone() {
    let gw = Gateway::start().await;
    gw.text_in(CAROL, 1, "STOP");
    let got = poll("Carol receives the confirmation", WAIT, || async {
        let t = gw.received_texts(CAROL);
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("unsubscribed"), "{got:?}");
    // Every outbox row to Carol becomes final (sent/delivered), so no second text can follow.
    poll("every row to Carol final", WAIT, || async {
        let convo = gw.conversation(CAROL).await;
        convo
            .iter()
            .filter(|i| i.direction == Direction::Out)
            .all(|i| matches!(i.status.as_deref(), Some("sent" | "delivered")))
            .then_some(())
    })
    .await;
    let convo = gw.conversation(CAROL).await;
    let out = convo
        .iter()
        .filter(|i| i.direction == Direction::Out)
        .count();
    assert_eq!(out, 1, "{convo:?}");
    assert_eq!(gw.received_texts(CAROL).len(), 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_still_works_after_garbage_bytes() {
    let gw = Gateway::start().await;
    gw.sim()
        .fault(
            0,
            &Fault::Garbage {
                hex: None,
                count: Some(200),
            },
        )
        .unwrap();
    gw.client()
        .await
        .send(SendArgs {
            to: BOB.into(),
            text: "after the noise".into(),
            modem: Some("sim0".into()),
        })
        .await
        .unwrap();
    poll("Bob receives it", WAIT, || async {
        gw.received_texts(BOB)
            .iter()
            .any(|t| t == "after the noise")
            .then_some(())
    })
    .await;
    gw.shutdown().await;
}

/// An unplug while the modem holds a PDU: the message must end up delivered or visible as
/// in_doubt/queued/failed with a reason — never gone. What happens: the send is interrupted
/// after the PDU was submitted, so the runner cannot know whether the network has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplug_mid_send_loses_nothing() {
    let dir = short_tempdir();
    let cfg = config(dir.path());
    let mut opts = options(&cfg);
    if let Some(sim) = opts.sim.as_mut() {
        sim.modems[0].latency.send = MsRange(1500, 1500);
    }
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let accepted = gw
        .client()
        .await
        .send(SendArgs {
            to: BOB.into(),
            text: "through the unplug".into(),
            modem: Some("sim0".into()),
        })
        .await
        .unwrap();
    poll("the send is in flight", WAIT, || async {
        (out_status(&gw.conversation(BOB).await, accepted.id)? == "sending").then_some(())
    })
    .await;
    gw.sim().fault(0, &Fault::Unplug).unwrap();
    poll("sim0 is gone", WAIT, || async {
        let m = gw.client().await.modems().await.ok()?;
        (m[0].state != "ready").then_some(())
    })
    .await;
    gw.sim().fault(0, &Fault::Replug).unwrap();
    gw.wait_modems_ready().await;
    let status = poll("the message has a visible outcome", WAIT, || async {
        let s = out_status(&gw.conversation(BOB).await, accepted.id)?;
        matches!(
            s.as_str(),
            "sent" | "delivered" | "in_doubt" | "queued" | "failed"
        )
        .then_some(s)
    })
    .await;
    let row = gw.daemon.store().outbox_row(accepted.id).unwrap();
    eprintln!(
        "unplug mid-send: outbox row {} is {status} (last_error {:?}); phone got {:?}",
        accepted.id,
        row.last_error,
        gw.received_texts(BOB)
    );
    if status == "failed" {
        assert!(row.last_error.is_some(), "a failure carries its reason");
    }
    gw.shutdown().await;
}

/// A message stored just before a crash, whose community step never ran (no `processed_at`), is
/// answered at the next start: the newcomer gets the welcome, compliance line and card exactly
/// once, and the message counts as processed afterwards (a second start sends nothing more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_stored_before_a_crash_is_answered_once_at_the_next_start() {
    let dir = short_tempdir();
    let cfg = config(dir.path());
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    {
        // What the pipeline had committed when the daemon died: the message, nothing else.
        let store =
            gsmgate::store::Store::open(state.join(gsmgate::daemon::DATABASE_FILE)).unwrap();
        store
            .store_single(&gsmgate::store::NewSingle {
                modem: "sim0".into(),
                sender: ALICE.into(),
                text: "Hello!".into(),
                scts: "2026-11-25T10:00:00+00:00".into(),
                pdu_hex: None,
                received_at: 1_764_064_800_000,
            })
            .unwrap();
        assert_eq!(store.unprocessed_messages().unwrap().len(), 1);
    }
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg.clone(), opts.clone()).await;
    let got = poll("Alice receives three texts", WAIT, || async {
        let t = gw.received_texts(ALICE);
        (t.len() >= 3).then_some(t)
    })
    .await;
    assert!(
        got[0].starts_with("OK, I've got your number saved"),
        "{got:?}"
    );
    assert!(got[1].starts_with("Msg frequency will vary"), "{got:?}");
    let dir = gw.shutdown().await;

    let store = gsmgate::store::Store::open(state_path(&dir)).unwrap();
    assert!(store.unprocessed_messages().unwrap().is_empty());
    assert_eq!(
        store.state_counts().unwrap().total(),
        3,
        "three replies, queued once"
    );
    drop(store);
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let convo = gw.conversation(ALICE).await;
    let out = convo
        .iter()
        .filter(|i| i.direction == Direction::Out)
        .count();
    assert_eq!(out, 3, "nothing replayed on the second start: {convo:?}");
    gw.shutdown().await;
}

fn state_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path()
        .join("state")
        .join(gsmgate::daemon::DATABASE_FILE)
}
