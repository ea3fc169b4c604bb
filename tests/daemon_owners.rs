//! End to end: the owner on their own phone (docs/community.md, "Owners on their own phone"),
//! against the daemon in-process with the simulator on pseudo-terminals, checked at the
//! simulated phones, through the admin socket, and in the event journal.
//!
//! What must hold: a member's text reaches every owner with the member's name and a random
//! reference; `#ref text` and `@+number text` from an owner reach the member from their home
//! modem and show in the member's conversation; `BROADCAST` answers with the counts and a code,
//! and only `YES <code>` from the same owner, in time, once, creates the broadcast; a wrong or
//! late code is refused and burns the pending broadcast; with `owner_pin` a command without it
//! is refused; an owner is never a member (no welcome, no keywords). And the spoofing side: a
//! number not in `owners` that texts `#<ref>`, `BROADCAST` or `YES <code>` is an ordinary member
//! texting (forwarded to the owners like any text), and nothing reaches anyone else.
//!
//! "Nothing was sent" is checked once a later answer to the same phone has arrived: the gateway
//! handles one inbound message at a time, so what a message would have enqueued is queued
//! before the answer to the next one. No fixed sleeps.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::time::Duration;

use daemon_util::*;
use gsmgate::admin::protocol::{BroadcastsArgs, Direction, MemberAddArgs, MemberGetArgs};
use gsmgate::config::Config;

const WAIT: Duration = Duration::from_secs(40);

const OWNER: &str = "+14155550110";
const MALLORY: &str = "+14155550120";
const WELCOME: &str = "OK, I've got your number saved. Good to be connected. More from me soon";

fn owner_config(dir: &std::path::Path, extra: &str) -> Config {
    // The owner's phone gets a text per member text and per command: more than the default six
    // a minute per modem, which would hold answers for a minute on a fast test.
    let text = config_text(dir)
        .replace(
            "org_name = \"Testorg\"\n",
            &format!("org_name = \"Testorg\"\nowners = [\"{OWNER}\"]\n{extra}"),
        )
        .replace("\n[[modem]]\n", "\n[[modem]]\nper_minute = 60\n");
    Config::from_str(&text, "test.toml").expect("owner config validates")
}

async fn start(extra: &str) -> Gateway {
    let dir = short_tempdir();
    let cfg = owner_config(dir.path(), extra);
    let opts = options(&cfg);
    Gateway::start_in(dir, cfg, opts).await
}

/// Waits for the first text at `phone` that satisfies `f` and returns it.
async fn text_at(gw: &Gateway, phone: &str, what: &str, f: impl Fn(&str) -> bool) -> String {
    poll(&format!("{phone} receives {what}"), WAIT, || async {
        gw.received_texts(phone).into_iter().find(|t| f(t))
    })
    .await
}

/// Waits until `phone` has received `n` texts in all, and returns them.
async fn texts_n(gw: &Gateway, phone: &str, n: usize) -> Vec<String> {
    poll(&format!("{phone} has {n} texts"), WAIT, || async {
        let t = gw.received_texts(phone);
        (t.len() >= n).then_some(t)
    })
    .await
}

/// The reference in a forwarded text `"<label> #<ref>: <text>"`.
fn reference_in(forward: &str) -> String {
    let at = forward.find(" #").expect("a reference") + 2;
    let rest = &forward[at..];
    rest[..rest.find(':').expect("ref ends with a colon")].to_string()
}

/// The code in a preview `"… Reply YES <code> within …"`.
fn code_in(preview: &str) -> String {
    let at = preview.find("YES ").expect("a code") + 4;
    preview[at..].split_whitespace().next().unwrap().to_string()
}

fn owner_events(gw: &Gateway) -> Vec<serde_json::Value> {
    gw.daemon
        .store()
        .events_after(0, &["owner_command".to_string()], 1000)
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

/// The journal's owner events once there are at least `n`: an event is written right after the
/// command's messages are queued, so a phone may have its text a moment before.
async fn owner_events_n(gw: &Gateway, n: usize) -> Vec<serde_json::Value> {
    poll(&format!("{n} owner_command events"), WAIT, || async {
        let e = owner_events(gw);
        (e.len() >= n).then_some(e)
    })
    .await
}

async fn broadcast_count(gw: &Gateway) -> usize {
    gw.client()
        .await
        .broadcasts(BroadcastsArgs { limit: Some(100) })
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_text_is_forwarded_and_the_owner_replies_by_ref_and_by_number() {
    let gw = start("").await;
    gw.client()
        .await
        .members_add(MemberAddArgs {
            number: BOB.into(),
            name: Some("Bob Jones".into()),
            ..MemberAddArgs::default()
        })
        .await
        .unwrap();

    // Alice is a stranger: her first text joins her on modem 1 (her home) and is conversation.
    gw.text_in(ALICE, 1, "Hi, when is the next meeting?");
    let fwd = text_at(&gw, OWNER, "Alice's text", |t| t.contains("next meeting")).await;
    assert!(
        fwd.starts_with(&format!("{ALICE} #")),
        "number and reference: {fwd}"
    );
    let r = reference_in(&fwd);
    assert_eq!(r.len(), 5, "{fwd}");

    // A named member's text carries the name.
    gw.text_in(BOB, 0, "Count me in");
    let fwd_bob = text_at(&gw, OWNER, "Bob's text", |t| t.contains("Count me in")).await;
    assert!(
        fwd_bob.starts_with(&format!("Bob Jones ({BOB}) #")),
        "{fwd_bob}"
    );
    assert_ne!(reference_in(&fwd_bob), r, "one reference per member");

    // Reply by reference (any case): Alice receives it from her home modem, modem 1.
    gw.text_in(OWNER, 0, &format!("#{} Thursday at 7pm", r.to_uppercase()));
    poll(
        "Alice receives the owner's reply from modem 1",
        WAIT,
        || async {
            gw.sim()
                .received(Some(ALICE))
                .into_iter()
                .find(|t| t.text == "Thursday at 7pm")
                .map(|t| assert_eq!(t.modem, Some(1), "from her home modem"))
        },
    )
    .await;
    text_at(&gw, OWNER, "the confirmation", |t| {
        t == format!("Sent to {ALICE}.")
    })
    .await;

    // Reply by number.
    gw.text_in(OWNER, 1, &format!("@{ALICE} Bring a friend"));
    text_at(&gw, ALICE, "the @ reply", |t| t == "Bring a friend").await;

    // Both are in Alice's conversation, outbound, like a CLI send.
    let conv = gw.conversation(ALICE).await;
    for text in ["Thursday at 7pm", "Bring a friend"] {
        assert!(
            conv.iter()
                .any(|i| i.direction == Direction::Out && i.text == text),
            "{text} in {conv:?}"
        );
    }

    // An unknown reference: a clear error to the owner, nothing sent.
    let before = gw.received_texts(ALICE).len();
    gw.text_in(OWNER, 0, "#zzzzz Secret plan");
    text_at(&gw, OWNER, "the unknown-reference error", |t| {
        t.contains("reference is unknown or has expired")
    })
    .await;
    // And an @ to a number that is no member.
    gw.text_in(OWNER, 0, &format!("@{CAROL} Hello stranger"));
    text_at(&gw, OWNER, "the not-a-member error", |t| {
        t == format!("Not sent: {CAROL} is not a member.")
    })
    .await;
    assert_eq!(gw.received_texts(ALICE).len(), before);
    assert!(gw.received_texts(CAROL).is_empty());

    // The owner is never a member: STOP and JOIN are no keywords for them, no welcome ever.
    gw.text_in(OWNER, 0, "STOP");
    gw.text_in(OWNER, 0, "JOIN");
    let owner_texts = poll("two usage answers", WAIT, || async {
        let t = gw.received_texts(OWNER);
        (t.iter()
            .filter(|t| t.starts_with("Owner commands:"))
            .count()
            == 2)
            .then_some(t)
    })
    .await;
    assert!(!owner_texts.iter().any(|t| t == WELCOME), "{owner_texts:?}");
    let err = gw
        .client()
        .await
        .members_get(MemberGetArgs {
            number: OWNER.into(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    // Still forwarded to after texting STOP: it was no opt-out.
    gw.text_in(ALICE, 1, "See you then");
    text_at(&gw, OWNER, "a later forward", |t| {
        t.contains("See you then")
    })
    .await;

    // Every command is in the journal, without the message text.
    let events = owner_events_n(&gw, 6).await;
    let outcomes: Vec<&str> = events
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "sent",
            "sent",
            "unknown_ref",
            "not_a_member",
            "unknown_command",
            "unknown_command"
        ]
    );
    assert_eq!(events[0]["member"], ALICE);
    assert_eq!(events[0]["ref"], r.as_str());
    assert_eq!(events[0]["owner"], OWNER);
    assert!(
        events
            .iter()
            .all(|e| !e.to_string().contains("Thursday") && !e.to_string().contains("Secret")),
        "{events:?}"
    );
    gw.shutdown().await;
}

async fn add_team(gw: &Gateway) {
    for n in [ALICE, BOB] {
        gw.client()
            .await
            .members_add(MemberAddArgs {
                number: n.into(),
                tags: vec!["team".into()],
                ..MemberAddArgs::default()
            })
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_goes_out_only_after_the_right_code_in_time_once() {
    let gw = start("").await;
    add_team(&gw).await;

    // The preview: counts and a code; nothing created yet.
    gw.text_in(OWNER, 0, "BROADCAST tag=team: Rally at 6");
    let preview = text_at(&gw, OWNER, "the preview", |t| t.starts_with("Broadcast to")).await;
    assert!(preview.contains("2 recipients"), "{preview}");
    assert!(preview.contains("2 SMS"), "{preview}");
    let code = code_in(&preview);
    assert_eq!(code.len(), 6, "{preview}");
    assert_eq!(broadcast_count(&gw).await, 0);

    // A wrong code is refused and burns the pending broadcast: the right one no longer works.
    gw.text_in(OWNER, 0, "YES 000000");
    text_at(&gw, OWNER, "the wrong-code refusal", |t| {
        t.contains("wrong code")
    })
    .await;
    gw.text_in(OWNER, 0, &format!("YES {code}"));
    text_at(&gw, OWNER, "nothing waiting", |t| {
        t.contains("no broadcast is waiting")
    })
    .await;
    assert_eq!(broadcast_count(&gw).await, 0);

    // A late code is refused. The pending row is aged in the database: the expiry is stored,
    // and the daemon compares it with its clock.
    gw.text_in(OWNER, 0, "BROADCAST tag=team: Rally at 7");
    let previews = poll("the second preview", WAIT, || async {
        let p: Vec<String> = gw
            .received_texts(OWNER)
            .into_iter()
            .filter(|t| t.starts_with("Broadcast to"))
            .collect();
        (p.len() == 2).then_some(p)
    })
    .await;
    let late = code_in(&previews[1]);
    let db = rusqlite::Connection::open(
        gw.dir
            .path()
            .join("state")
            .join(gsmgate::daemon::DATABASE_FILE),
    )
    .unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let aged = db
        .execute(
            "UPDATE owner_confirmations SET expires_at = 0 WHERE closed_at IS NULL",
            [],
        )
        .unwrap();
    assert_eq!(aged, 1);
    gw.text_in(OWNER, 0, &format!("YES {late}"));
    text_at(&gw, OWNER, "the expired refusal", |t| {
        t.contains("has expired")
    })
    .await;
    assert_eq!(broadcast_count(&gw).await, 0);

    // The right code in time: the broadcast is created and reaches the members, once.
    gw.text_in(OWNER, 0, "BROADCAST tag=team: Rally at 8");
    let previews = poll("the third preview", WAIT, || async {
        let p: Vec<String> = gw
            .received_texts(OWNER)
            .into_iter()
            .filter(|t| t.starts_with("Broadcast to"))
            .collect();
        (p.len() == 3).then_some(p)
    })
    .await;
    let good = code_in(&previews[2]);
    gw.text_in(OWNER, 0, &format!("yes {}", good.to_lowercase()));
    text_at(&gw, OWNER, "the confirmation", |t| {
        t.contains("queued: 2 recipients")
    })
    .await;
    for phone in [ALICE, BOB] {
        text_at(&gw, phone, "the broadcast", |t| t == "Rally at 8").await;
    }
    assert_eq!(broadcast_count(&gw).await, 1);
    // Used once: the same code again is refused and creates nothing.
    gw.text_in(OWNER, 0, &format!("YES {good}"));
    let all = poll("the reuse refusal", WAIT, || async {
        let t = gw.received_texts(OWNER);
        (t.iter()
            .filter(|t| t.contains("no broadcast is waiting"))
            .count()
            == 2)
            .then_some(t)
    })
    .await;
    assert_eq!(broadcast_count(&gw).await, 1);
    assert!(!all.iter().any(|t| t == "Rally at 6" || t == "Rally at 7"));
    for phone in [ALICE, BOB] {
        let got = gw.received_texts(phone);
        assert!(
            !got.iter().any(|t| t == "Rally at 6" || t == "Rally at 7"),
            "{got:?}"
        );
        assert_eq!(got.iter().filter(|t| *t == "Rally at 8").count(), 1);
    }
    let events = owner_events_n(&gw, 8).await;
    let confirmed: Vec<_> = events
        .iter()
        .filter(|e| e["outcome"] == "confirmed")
        .collect();
    assert_eq!(confirmed.len(), 1, "{events:?}");
    assert!(confirmed[0]["broadcast_id"].is_i64());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_owner_number_gets_nothing_special() {
    let gw = start("").await;
    add_team(&gw).await;
    gw.text_in(ALICE, 0, "Hello from Alice");
    let fwd = text_at(&gw, OWNER, "Alice's text", |t| {
        t.contains("Hello from Alice")
    })
    .await;
    let r = reference_in(&fwd);

    // Mallory is not an owner: each text is a member's text. The first joins her (welcome) and
    // all of them go to the owners like any member's text.
    let attempts = [
        format!("#{r} Send your password to Mallory"),
        "BROADCAST all: Free money".to_string(),
        "YES ABCDEF".to_string(),
        format!("@{ALICE} Hi from Mallory"),
    ];
    for a in &attempts {
        gw.text_in(MALLORY, 1, a);
        text_at(&gw, OWNER, "Mallory's text forwarded", |t| {
            t.starts_with(&format!("{MALLORY} #")) && t.ends_with(a.as_str())
        })
        .await;
    }
    text_at(&gw, MALLORY, "the welcome", |t| t == WELCOME).await;
    // Nothing reached Alice or Bob; no broadcast; no owner command recorded.
    gw.text_in(OWNER, 0, &format!("@{ALICE} Only the owner"));
    text_at(&gw, ALICE, "the real owner's text", |t| {
        t == "Only the owner"
    })
    .await;
    for phone in [ALICE, BOB] {
        let got = gw.received_texts(phone);
        assert!(
            !got.iter()
                .any(|t| t.contains("Mallory") || t.contains("money")),
            "{phone}: {got:?}"
        );
    }
    assert_eq!(broadcast_count(&gw).await, 0);
    let mallory = gw.received_texts(MALLORY);
    assert!(
        !mallory.iter().any(|t| t.starts_with("Broadcast to")
            || t.starts_with("Sent to")
            || t.starts_with("Not sent")),
        "{mallory:?}"
    );
    let events = owner_events_n(&gw, 1).await;
    assert_eq!(events.len(), 1, "only the real owner's command: {events:?}");
    assert_eq!(events[0]["owner"], OWNER);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_pin_every_owner_command_needs_it() {
    let gw = start("owner_pin = \"4321\"\nforward_to_owners = true\n").await;
    gw.text_in(ALICE, 0, "Is anyone there?");
    let fwd = text_at(&gw, OWNER, "Alice's text", |t| t.contains("anyone there")).await;
    let r = reference_in(&fwd);

    gw.text_in(OWNER, 0, &format!("#{r} Without the pin"));
    text_at(&gw, OWNER, "the PIN refusal", |t| t.contains("owner PIN")).await;
    gw.text_in(OWNER, 0, "1111 BROADCAST all: Wrong pin");
    poll("two PIN refusals", WAIT, || async {
        (gw.received_texts(OWNER)
            .iter()
            .filter(|t| t.contains("owner PIN"))
            .count()
            == 2)
            .then_some(())
    })
    .await;
    gw.text_in(OWNER, 0, &format!("4321 #{r} With the pin"));
    text_at(&gw, ALICE, "the reply with the PIN", |t| {
        t == "With the pin"
    })
    .await;
    let got = gw.received_texts(ALICE);
    assert!(!got.iter().any(|t| t == "Without the pin"), "{got:?}");
    assert_eq!(broadcast_count(&gw).await, 0);
    assert!(
        !gw.received_texts(OWNER)
            .iter()
            .any(|t| t.starts_with("Broadcast to"))
    );
    let outcomes: Vec<String> = owner_events_n(&gw, 3)
        .await
        .iter()
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["pin", "pin", "sent"]);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_can_be_turned_off_and_commands_still_work() {
    let gw = start("forward_to_owners = false\n").await;
    gw.text_in(ALICE, 0, "Not for the owner");
    // Alice's welcome proves her text was handled; the owner got nothing.
    text_at(&gw, ALICE, "the welcome", |t| t == WELCOME).await;
    gw.text_in(OWNER, 0, &format!("@{ALICE} Hello Alice"));
    text_at(&gw, ALICE, "the owner's text", |t| t == "Hello Alice").await;
    let owner = texts_n(&gw, OWNER, 1).await;
    assert_eq!(owner, [format!("Sent to {ALICE}.")]);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_broadcast_survives_a_restart_and_is_not_replayed() {
    let gw = start("").await;
    add_team(&gw).await;
    gw.text_in(OWNER, 0, "BROADCAST tag=team: After the restart");
    let preview = text_at(&gw, OWNER, "the preview", |t| t.starts_with("Broadcast to")).await;
    let code = code_in(&preview);
    let dir = gw.shutdown().await;

    // The same state directory: the pending row is in the store, not in memory.
    let cfg = owner_config(dir.path(), "");
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;
    gw.text_in(OWNER, 0, &format!("YES {code}"));
    for phone in [ALICE, BOB] {
        text_at(&gw, phone, "the broadcast", |t| t == "After the restart").await;
    }
    text_at(&gw, OWNER, "the confirmation", |t| {
        t.contains("queued: 2 recipients")
    })
    .await;
    // The BROADCAST itself was processed before the restart: no second preview (the simulated
    // phones are new after the restart, the journal is not).
    let outcomes: Vec<String> = owner_events_n(&gw, 2)
        .await
        .iter()
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["preview", "confirmed"]);
    assert_eq!(broadcast_count(&gw).await, 1);
    gw.shutdown().await;
}

/// Someone texting from the owner's number can make the gateway answer refusals only
/// `owner_refusals_per_hour` times (the last answer says so); later refusals are journaled with
/// `answered: false` and cost nothing, and a real command is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_to_an_owner_are_capped_per_hour_and_commands_still_answered() {
    let gw = start("owner_pin = \"4321\"\nowner_refusals_per_hour = 3\n").await;
    add_team(&gw).await;
    for i in 0..5 {
        gw.text_in(OWNER, 0, &format!("1111 @{ALICE} guess {i}"));
    }
    let events = owner_events_n(&gw, 5).await;
    let answered: Vec<bool> = events
        .iter()
        .map(|e| e["answered"].as_bool().unwrap())
        .collect();
    assert_eq!(answered, [true, true, true, false, false], "{events:?}");
    assert!(events.iter().all(|e| e["outcome"] == "pin"), "{events:?}");
    gw.text_in(OWNER, 0, &format!("4321 @{ALICE} The real owner"));
    text_at(&gw, ALICE, "the owner's text", |t| t == "The real owner").await;
    // The answer to the real command comes after any answer to the guesses would have: the
    // gateway handles one message at a time and queues answers in that order.
    let owner = texts_n(&gw, OWNER, 4).await;
    let pin = "Not done: owner commands must start with the owner PIN.";
    assert_eq!(
        owner,
        [
            pin.to_string(),
            pin.to_string(),
            format!("{pin} (Further refused commands get no answer for an hour.)"),
            format!("Sent to {ALICE}."),
        ]
    );
    let got = gw.received_texts(ALICE);
    assert!(!got.iter().any(|t| t.starts_with("guess")), "{got:?}");
    let last = owner_events_n(&gw, 6).await;
    assert_eq!(last[5]["outcome"], "sent");
    assert_eq!(last[5]["answered"], true);
    gw.shutdown().await;
}
