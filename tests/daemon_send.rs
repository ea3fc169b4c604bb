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

/// An unplug while the modem holds a PDU: the message is never lost and never doubled. The unplug
/// lands either before the modem took the PDU (nothing reached the network: the runner retries
/// after the replug and the row ends `sent`/`delivered` with exactly one copy at the phone) or
/// after (the network may have it: the row ends `in_doubt` with its reason, a direct send is not
/// resent under the default `resend_replies` policy, and the phone has at most the one copy the
/// network took). Which one happens depends on timing; both are asserted in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplug_mid_send_loses_nothing() {
    const TEXT: &str = "through the unplug";
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
            text: TEXT.into(),
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
    // Settled: `queued`/`sending` are on the way to one of these; `failed` is not allowed (the
    // interruption is neither a refusal nor a timeout, and the retry after the replug succeeds).
    let status = poll("the message settles", WAIT, || async {
        let s = out_status(&gw.conversation(BOB).await, accepted.id)?;
        matches!(s.as_str(), "sent" | "delivered" | "in_doubt" | "failed").then_some(s)
    })
    .await;
    let row = gw.daemon.store().outbox_row(accepted.id).unwrap();
    let copies = || gw.received_texts(BOB).iter().filter(|t| *t == TEXT).count();
    let taken = || gw.sim().submitted().iter().filter(|p| p.to == BOB).count();
    eprintln!(
        "unplug mid-send: row {status} ({:?}); network took {}, phone has {}",
        row.last_error,
        taken(),
        copies()
    );
    match status.as_str() {
        "sent" | "delivered" => {
            assert_eq!(copies(), 1, "exactly once; row {row:?}");
            assert_eq!(taken(), 1, "one SUBMIT reached the network");
        }
        "in_doubt" => {
            assert!(
                row.last_error.as_deref().is_some_and(|e| !e.is_empty()),
                "an in-doubt row carries its reason: {row:?}"
            );
            // At most the copy the network took, and the phone has exactly what the network took.
            assert!(taken() <= 1, "not resent: {row:?}");
            assert_eq!(copies(), taken(), "the phone has what the network took");
        }
        other => panic!("the message ended {other}: {row:?}"),
    }
    // Nothing sends it again later: with the queue empty the row stays where it settled (a
    // status report may still move `in_doubt`/`sent` on to `delivered`, never back to `queued`).
    poll("the queue is empty", WAIT, || async {
        let s = gw.client().await.status().await.ok()?;
        (s.outbox_queued == 0).then_some(())
    })
    .await;
    let last = out_status(&gw.conversation(BOB).await, accepted.id).unwrap_or_default();
    assert!(
        matches!(last.as_str(), "sent" | "delivered" | "in_doubt"),
        "{status} became {last}"
    );
    assert!(copies() <= 1, "no duplicate: {:?}", gw.received_texts(BOB));
    assert_eq!(copies(), taken());
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
