//! End-to-end consent: HELP, STOP and START against the daemon in-process with the simulator on
//! pseudo-terminals, checked at the simulated phones and through the admin socket only.
//!
//! What must hold (docs/community.md, "The rules"): HELP answers a stranger without enrolling them;
//! STOP gets exactly one confirmation and then no broadcast reaches the number, also after a
//! daemon restart on the same state dir (the suppression lives in the store); START subscribes
//! again, with a confirmation, and the next broadcast reaches the number.
//!
//! "Does not reach" is checked once the broadcast has finished for everyone else (every recipient
//! row final and the other phones have the text), so there is no fixed wait; the broadcast's own
//! exclusion count says the opted-out number was never queued.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::time::Duration;

use daemon_util::*;
use gsmgate::admin::protocol::Direction;
use gsmgate::protocol::MembersListArgs;

const WAIT: Duration = Duration::from_secs(30);

const HELP_TEXT: &str =
    "Testorg: Msg frequency will vary. Msg&Data rates may apply. Reply STOP to cancel.";

/// Every outbox row to `number` is sent or delivered (nothing queued or in flight).
async fn all_out_final(gw: &Gateway, number: &str) {
    poll(&format!("every row to {number} final"), WAIT, || async {
        gw.conversation(number)
            .await
            .iter()
            .filter(|i| i.direction == Direction::Out)
            .all(|i| matches!(i.status.as_deref(), Some("sent" | "delivered")))
            .then_some(())
    })
    .await;
}

/// Nothing was ever submitted to `phone` with `text` (checked at the network, not only the
/// phone: a part the phone could not reassemble would still show here).
fn never_submitted(gw: &Gateway, phone: &str, text: &str) {
    assert!(
        !gw.received_texts(phone).iter().any(|t| t == text),
        "{phone} received {text:?}"
    );
    let to_phone = gw
        .sim()
        .submitted()
        .into_iter()
        .filter(|p| p.to == phone)
        .count();
    assert_eq!(
        to_phone,
        gw.received_texts(phone).len(),
        "every submit to {phone} is one of the texts it has (all single-part here)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_from_a_stranger_gets_the_help_text_and_enrols_nobody() {
    let gw = Gateway::start().await;
    gw.text_in(CAROL, 0, "HELP");
    let got = poll("Carol receives the help text", WAIT, || async {
        let t = gw.received_texts(CAROL);
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(got, vec![HELP_TEXT.to_string()]);
    all_out_final(&gw, CAROL).await;
    assert_eq!(gw.received_texts(CAROL).len(), 1, "only the help text");
    let page = gw
        .client()
        .await
        .members_list(MembersListArgs::default())
        .await
        .expect("members_list");
    assert_eq!(page.total, 0, "{page:?}");
    assert!(page.members.is_empty());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_after_stop_gets_the_help_text_and_nothing_else() {
    let gw = Gateway::start().await;
    for phone in [ALICE, BOB] {
        gw.add_member(phone).await;
    }
    gw.text_in(BOB, 0, "STOP");
    poll("Bob receives the confirmation", WAIT, || async {
        (!gw.received_texts(BOB).is_empty()).then_some(())
    })
    .await;

    // HELP after STOP: answered (carriers require it whatever the subscription status).
    gw.text_in(BOB, 1, "HELP");
    poll("Bob receives the help text", WAIT, || async {
        (gw.received_texts(BOB).len() == 2).then_some(())
    })
    .await;
    let got = gw.received_texts(BOB);
    assert!(
        got[0].starts_with("Testorg: You are unsubscribed"),
        "{got:?}"
    );
    assert_eq!(got[1], HELP_TEXT, "{got:?}");

    // Anything else still reaches nothing: a plain text gets no answer, a broadcast skips Bob,
    // and Bob is still opted out.
    gw.text_in(BOB, 0, "what is this");
    let (recipients, opted_out) = gw.broadcast_and_wait("Cleanup Saturday", &[ALICE]).await;
    assert_eq!((recipients, opted_out), (1, 1));
    all_out_final(&gw, BOB).await;
    never_submitted(&gw, BOB, "Cleanup Saturday");
    assert_eq!(
        gw.received_texts(BOB).len(),
        2,
        "{:?}",
        gw.received_texts(BOB)
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_holds_across_broadcasts_and_a_restart_and_start_resubscribes() {
    let gw = Gateway::start().await;
    for phone in [ALICE, BOB, CAROL] {
        gw.add_member(phone).await;
    }

    // STOP: exactly one confirmation.
    gw.text_in(CAROL, 1, "STOP");
    poll("Carol receives the confirmation", WAIT, || async {
        (!gw.received_texts(CAROL).is_empty()).then_some(())
    })
    .await;
    all_out_final(&gw, CAROL).await;
    let got = gw.received_texts(CAROL);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("Testorg: You are unsubscribed"),
        "{got:?}"
    );

    // A broadcast reaches the others, not Carol.
    let (recipients, opted_out) = gw
        .broadcast_and_wait("Meeting Tuesday at 7", &[ALICE, BOB])
        .await;
    assert_eq!((recipients, opted_out), (2, 1));
    all_out_final(&gw, CAROL).await;
    never_submitted(&gw, CAROL, "Meeting Tuesday at 7");
    assert_eq!(gw.received_texts(CAROL).len(), 1);

    // Restart on the same state dir: the opt-out is in the store, not in memory.
    let dir = gw.shutdown().await;
    let cfg = config(dir.path());
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let (recipients, opted_out) = gw
        .broadcast_and_wait("Rent strike vote Friday", &[ALICE, BOB])
        .await;
    assert_eq!((recipients, opted_out), (2, 1));
    all_out_final(&gw, CAROL).await;
    never_submitted(&gw, CAROL, "Rent strike vote Friday");
    // The simulator is new with the daemon, so Carol's phone has received nothing since.
    assert!(gw.received_texts(CAROL).is_empty());

    // START: a confirmation, and the next broadcast reaches Carol again.
    gw.text_in(CAROL, 0, "START");
    poll("Carol receives the start confirmation", WAIT, || async {
        (!gw.received_texts(CAROL).is_empty()).then_some(())
    })
    .await;
    all_out_final(&gw, CAROL).await;
    let got = gw.received_texts(CAROL);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("Testorg: You are subscribed again"),
        "{got:?}"
    );
    let (recipients, opted_out) = gw
        .broadcast_and_wait("Potluck Sunday", &[ALICE, BOB, CAROL])
        .await;
    assert_eq!((recipients, opted_out), (3, 0));
    gw.shutdown().await;
}
