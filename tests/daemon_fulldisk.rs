//! A full or read-only state disk is loud and pauses sending cleanly (issue 14, item 5): the
//! daemon runs in-process with the simulator, and the store's test hook makes every write fail
//! as `SQLITE_FULL` / `SQLITE_READONLY` would. Why the hook and not a real full disk: an
//! unprivileged test cannot mount a small tmpfs, and chmod does not stop root (the CI runs as
//! root). The store's own tests show that SQLite's real `SQLITE_FULL` (a page cap) and
//! `SQLITE_READONLY` (a read-only connection) are classified the same way (`store/health.rs`).

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::time::Duration;

use daemon_util::*;
use gsmgate::admin::protocol::{ConversationItem, Direction, SendArgs, WatchArgs};
use gsmgate::admin::{Event, EventKind};
use gsmgate::sim::MsRange;
use gsmgate::store::{OutboxState, WriteFault};

const WAIT: Duration = Duration::from_secs(30);

fn out_status(items: &[ConversationItem], id: i64) -> Option<String> {
    items
        .iter()
        .find(|i| i.direction == Direction::Out && i.id == id)
        .and_then(|i| i.status.clone())
}

/// The message reaches the network while the disk is full: `status`, `modems` and an alert say
/// so at once, nothing new is claimed, and once writes work again the `sent` is recorded (no
/// restart) and the message queued behind it goes out. Today's code kept it `sending` until a
/// restart and `status` said nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_sending_and_the_sent_is_recorded_when_space_returns() {
    let dir = short_tempdir();
    let cfg = config(dir.path());
    let mut opts = options(&cfg);
    if let Some(sim) = opts.sim.as_mut() {
        // Long enough to inject the fault while the first SMS is in flight.
        sim.modems[0].latency.send = MsRange(1500, 1500);
    }
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let mut alerts = gw
        .client()
        .await
        .watch(WatchArgs {
            events: Some(vec![EventKind::Alert]),
        })
        .await
        .unwrap();
    let send = |text: &str| SendArgs {
        to: BOB.into(),
        text: text.into(),
        modem: Some("sim0".into()),
    };
    let first = gw.client().await.send(send("first")).await.unwrap();
    let second = gw.client().await.send(send("second")).await.unwrap();
    poll("the first send is in flight", WAIT, || async {
        (out_status(&gw.conversation(BOB).await, first.id)? == "sending").then_some(())
    })
    .await;

    let store = gw.daemon.store();
    store.inject_write_error(Some(WriteFault::Full));
    let storage = poll("status reports the full disk", WAIT, || async {
        let s = gw.client().await.status().await.ok()?.storage?;
        (s.state == "full" && s.unrecorded > 0).then_some(s)
    })
    .await;
    assert!(
        storage.since.is_some() && storage.detail.is_some(),
        "{storage:?}"
    );
    let modems = gw.client().await.modems().await.unwrap();
    assert!(
        modems
            .iter()
            .all(|m| m.paused.as_deref() == Some("state disk full: sending paused")),
        "{modems:?}"
    );
    match alerts.next().await.unwrap() {
        Some(Event::Alert { alert, message }) => {
            assert_eq!(alert, "state_disk_full");
            assert!(message.contains("sending is paused"), "{message}");
        }
        other => panic!("expected the disk-full alert, got {other:?}"),
    }
    // The first SMS reached the phone; its `sent` is held in memory, nothing new was claimed.
    // (Read through the store: `conversation` also marks the thread read, a write.)
    assert_eq!(gw.received_texts(BOB), vec!["first".to_string()]);
    assert_eq!(
        store.outbox_row(first.id).unwrap().state,
        OutboxState::Claimed
    );
    assert_eq!(
        store.outbox_row(second.id).unwrap().state,
        OutboxState::Queued
    );
    // New work is refused while writes fail, instead of being half-accepted.
    assert!(gw.client().await.send(send("refused")).await.is_err());

    store.inject_write_error(None);
    poll(
        "the held `sent` is recorded without a restart",
        WAIT,
        || async {
            let s = out_status(&gw.conversation(BOB).await, first.id)?;
            (s == "sent" || s == "delivered").then_some(())
        },
    )
    .await;
    poll("sending resumes", WAIT, || async {
        let s = out_status(&gw.conversation(BOB).await, second.id)?;
        (s == "sent" || s == "delivered").then_some(())
    })
    .await;
    match alerts.next().await.unwrap() {
        Some(Event::Alert { alert, .. }) => assert_eq!(alert, "state_disk_writable"),
        other => panic!("expected the all-clear alert, got {other:?}"),
    }
    let s = gw.client().await.status().await.unwrap().storage.unwrap();
    assert_eq!((s.state.as_str(), s.unrecorded), ("ok", 0), "{s:?}");
    assert!(
        gw.client().await.modems().await.unwrap()[0]
            .paused
            .is_none()
    );
    // Each text reached the phone exactly once.
    assert_eq!(
        gw.received_texts(BOB),
        vec!["first".to_string(), "second".to_string()]
    );
    gw.shutdown().await;
}

/// A read-only state disk says "read-only", not "full", everywhere it is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_disk_is_reported_as_read_only() {
    let gw = Gateway::start().await;
    gw.daemon
        .store()
        .inject_write_error(Some(WriteFault::ReadOnly));
    // Any write shows it: here the `send` the operator tries.
    let refused = gw
        .client()
        .await
        .send(SendArgs {
            to: BOB.into(),
            text: "x".into(),
            modem: None,
        })
        .await;
    assert!(refused.is_err());
    let s = gw.client().await.status().await.unwrap().storage.unwrap();
    assert_eq!(s.state, "read_only", "{s:?}");
    let modems = gw.client().await.modems().await.unwrap();
    assert_eq!(
        modems[0].paused.as_deref(),
        Some("state disk read-only: sending paused")
    );
    gw.daemon.store().inject_write_error(None);
    poll("the runner's probe clears it", WAIT, || async {
        let s = gw.client().await.status().await.ok()?.storage?;
        (s.state == "ok").then_some(())
    })
    .await;
    gw.shutdown().await;
}
