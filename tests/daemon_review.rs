//! End-to-end review of possible opt-outs and the number checks of the messaging verbs, against
//! the daemon in-process with the simulator on pseudo-terminals, through the admin socket only.
//!
//! What must hold (docs/community.md, "Opt-out intent"; docs/admin-protocol.md, `inbox`,
//! `members_review`): a text that reads like an opt-out but is no keyword ("Stop please") changes
//! nothing by itself, but it shows in `inbox` with its flag, raises a `possible_opt_out` event and
//! waits in `members_review`; `--opt-out` there is a STOP (one confirmation, no later broadcast),
//! `--keep` leaves the member subscribed. Numbers with control characters or whitespace other
//! than spaces around them are refused with `invalid_number`.
//!
//! "No later broadcast" is checked once the broadcast has finished for everyone else, so there
//! is no fixed wait.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::time::Duration;

use daemon_util::*;
use gsmgate::admin::ClientError;
use gsmgate::admin::protocol::{ConversationArgs, Direction, ErrorCode, SendArgs};
use gsmgate::protocol::{Event, EventKind, ReviewAction, ReviewResolveArgs, WatchArgs};

const WAIT: Duration = Duration::from_secs(30);
const STOP_CONFIRMATION: &str =
    "Testorg: You are unsubscribed and will get no more messages. Reply START to subscribe again.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_please_is_shown_alerted_reviewed_and_an_opt_out_stops_broadcasts() {
    let gw = Gateway::start().await;
    for phone in [ALICE, BOB, CAROL] {
        gw.add_member(phone).await;
    }
    let mut events = gw
        .client()
        .await
        .watch(WatchArgs {
            events: Some(vec![EventKind::PossibleOptOut]),
        })
        .await
        .expect("watch");

    gw.text_in(ALICE, 0, "Stop please");
    gw.text_in(BOB, 1, "please stop texting me");

    // The alert: one event per text, with the sender and the inbox id.
    let mut alerted = Vec::new();
    while alerted.len() < 2 {
        let ev = tokio::time::timeout(WAIT, events.next())
            .await
            .expect("possible_opt_out event in time")
            .expect("event stream")
            .expect("stream open");
        match ev {
            Event::PossibleOptOut { id, from, text, .. } => alerted.push((from, text, id)),
            other => panic!("only possible_opt_out was asked for, got {other:?}"),
        }
    }
    alerted.sort();
    assert_eq!(
        alerted
            .iter()
            .map(|(f, t, _)| (f.as_str(), t.as_str()))
            .collect::<Vec<_>>(),
        [(ALICE, "Stop please"), (BOB, "please stop texting me")]
    );

    // The inbox shows the flag.
    let inbox = gw.inbox().await;
    let alice_in = inbox
        .iter()
        .find(|m| m.from == ALICE)
        .expect("in the inbox");
    assert_eq!(alice_in.flag.as_deref(), Some("possible_opt_out"));
    assert_eq!(alice_in.id, alerted[0].2);
    // ... and in the JSON a client gets.
    let json = serde_json::to_value(alice_in).unwrap();
    assert_eq!(json["flag"], "possible_opt_out");

    // Nothing was decided automatically: no reply, still active.
    assert!(gw.received_texts(ALICE).is_empty());

    // The review list has both, with the member status.
    let list = gw.client().await.members_review().await.expect("review");
    let numbers: Vec<_> = list.iter().map(|i| i.number.as_str()).collect();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(
        numbers.contains(&ALICE) && numbers.contains(&BOB),
        "{list:?}"
    );
    let alice = list.iter().find(|i| i.number == ALICE).unwrap();
    assert_eq!(
        (
            alice.status.as_deref(),
            alice.messages,
            alice.last_text.as_str()
        ),
        (Some("active"), 1, "Stop please")
    );

    // Alice: opted out in one step, with the one confirmation. Bob: kept.
    let done = gw
        .client()
        .await
        .members_review_resolve(ReviewResolveArgs {
            number: ALICE.into(),
            action: ReviewAction::OptOut,
        })
        .await
        .expect("opt out");
    assert_eq!((done.action, done.messages), (ReviewAction::OptOut, 1));
    assert!(done.confirmation.is_some());
    gw.client()
        .await
        .members_review_resolve(ReviewResolveArgs {
            number: BOB.into(),
            action: ReviewAction::Keep,
        })
        .await
        .expect("keep");
    assert!(gw.client().await.members_review().await.unwrap().is_empty());
    // Deciding twice: nothing waits any more.
    let again = gw
        .client()
        .await
        .members_review_resolve(ReviewResolveArgs {
            number: BOB.into(),
            action: ReviewAction::OptOut,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&again, ClientError::Server(b) if b.code == ErrorCode::NotFound),
        "{again:?}"
    );

    poll("Alice receives the stop confirmation", WAIT, || async {
        (gw.received_texts(ALICE) == [STOP_CONFIRMATION]).then_some(())
    })
    .await;

    // The next broadcast reaches Bob and Carol, never Alice.
    let (recipients, _) = gw
        .broadcast_and_wait("Picnic on Saturday", &[BOB, CAROL])
        .await;
    assert_eq!(recipients, 2);
    assert_eq!(gw.received_texts(ALICE), [STOP_CONFIRMATION]);
    let to_alice = gw
        .sim()
        .submitted()
        .into_iter()
        .filter(|p| p.to == ALICE)
        .count();
    assert_eq!(
        to_alice, 1,
        "only the confirmation was ever submitted to Alice"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_with_control_characters_are_refused() {
    let gw = Gateway::start().await;
    let mut c = gw.client().await;
    for bad in [
        "+15550001111\n",
        "\u{0}",
        "\t+15550001111",
        "+1555\u{0}0001111",
    ] {
        let e = c
            .send(SendArgs {
                to: bad.into(),
                text: "x".into(),
                modem: None,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ClientError::Server(b) if b.code == ErrorCode::InvalidNumber),
            "send to {bad:?}: {e:?}"
        );
        let e = c
            .conversation(ConversationArgs {
                number: bad.into(),
                limit: None,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ClientError::Server(b) if b.code == ErrorCode::InvalidNumber),
            "conversation {bad:?}: {e:?}"
        );
    }
    // Spaces around a number are still fine, and an alphanumeric sender is still looked up.
    let ok = c
        .send(SendArgs {
            to: " +14155550102 ".into(),
            text: "hello".into(),
            modem: None,
        })
        .await
        .expect("spaces are trimmed");
    assert!(ok.id > 0);
    let thread = c
        .conversation(ConversationArgs {
            number: BOB.into(),
            limit: None,
        })
        .await
        .unwrap();
    assert!(thread.iter().any(|i| i.direction == Direction::Out));
    c.conversation(ConversationArgs {
        number: "Vodafone".into(),
        limit: None,
    })
    .await
    .expect("alphanumeric senders are looked up as given");
    gw.shutdown().await;
}
