//! End-to-end tests of the daemon that need no sending: inbound messages and their community
//! handling (checked in the outbox through `conversation`), reassembly, modem faults, bad admin
//! requests and a restart. The daemon runs in-process on a temp dir with the simulator on real
//! pseudo-terminals; the tests use only the admin client and the simulator handle.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::time::Duration;

use daemon_util::*;
use gsmgate::admin::protocol::{Direction, SendArgs};
use gsmgate::admin::{Client, ClientError, ErrorCode};

use gsmgate::sim::{Fault, PhoneSms};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

fn outgoing(items: &[gsmgate::admin::protocol::ConversationItem]) -> Vec<String> {
    items
        .iter()
        .filter(|i| i.direction == Direction::Out)
        .map(|i| i.text.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_text_lands_in_the_inbox_and_queues_welcome_compliance_and_card_in_order() {
    let gw = Gateway::start().await;
    gw.text_in(ALICE, 1, "Hi there, count me in");
    let inbox = poll("the text in the inbox", WAIT, || async {
        let inbox = gw.inbox().await;
        (!inbox.is_empty()).then_some(inbox)
    })
    .await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].from, ALICE);
    assert_eq!(inbox[0].text, "Hi there, count me in");
    assert_eq!(inbox[0].modem, "sim1");

    let convo = poll("three replies queued", WAIT, || async {
        let c = gw.conversation(ALICE).await;
        (outgoing(&c).len() >= 3).then_some(c)
    })
    .await;
    let out = outgoing(&convo);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(
        out[0].starts_with("OK, I've got your number saved"),
        "{out:?}"
    );
    assert!(out[1].starts_with("Msg frequency will vary"), "{out:?}");
    assert!(
        out[2].starts_with("Save this number as Test Leader"),
        "{out:?}"
    );

    // A second text: conversation, no second welcome.
    gw.text_in(ALICE, 1, "What's next?");
    poll("the second text in the inbox", WAIT, || async {
        (gw.inbox().await.len() == 2).then_some(())
    })
    .await;
    let convo = gw.conversation(ALICE).await;
    let ins: Vec<_> = convo
        .iter()
        .filter(|i| i.direction == Direction::In)
        .map(|i| i.text.as_str())
        .collect();
    assert_eq!(ins, ["Hi there, count me in", "What's next?"]);
    assert_eq!(outgoing(&convo).len(), 3, "no second welcome: {convo:?}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_text_arriving_out_of_order_is_reassembled_once() {
    let gw = Gateway::start().await;
    let long: String = (0..40)
        .map(|i| format!("word{i} "))
        .collect::<String>()
        .trim_end()
        .to_string();
    assert!(long.len() > 160);
    let parts = gw
        .sim()
        .phone_sms(&PhoneSms {
            from: BOB.into(),
            modem: 0,
            text: long.clone(),
            out_of_order: true,
            ..PhoneSms::default()
        })
        .unwrap();
    assert!(parts >= 2, "{parts}");
    let inbox = poll("the long text in the inbox", WAIT, || async {
        let inbox = gw.inbox().await;
        (!inbox.is_empty()).then_some(inbox)
    })
    .await;
    assert_eq!(inbox[0].text, long);
    // Every part was acked and deleted from the SIM; nothing else shows up.
    poll("SIM storage empty", WAIT, || async {
        gw.sim().stored(0, "SM").ok()?.is_empty().then_some(())
    })
    .await;
    assert_eq!(gw.inbox().await.len(), 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_queues_exactly_one_confirmation_and_send_is_refused_afterwards() {
    let gw = Gateway::start().await;
    gw.text_in(CAROL, 0, "STOP");
    let convo = poll("the STOP confirmation queued", WAIT, || async {
        let c = gw.conversation(CAROL).await;
        (!outgoing(&c).is_empty()).then_some(c)
    })
    .await;
    let out = outgoing(&convo);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].contains("unsubscribed"), "{out:?}");

    let err = gw
        .client()
        .await
        .send(SendArgs {
            to: CAROL.into(),
            text: "hello?".into(),
            modem: None,
        })
        .await
        .unwrap_err();
    match err {
        ClientError::Server(body) => assert_eq!(body.code, ErrorCode::OptedOut, "{body:?}"),
        other => panic!("expected opted_out, got {other:?}"),
    }
    // A second STOP gets nothing more.
    gw.text_in(CAROL, 0, "stop");
    poll("the second STOP stored", WAIT, || async {
        (gw.inbox().await.len() == 2).then_some(())
    })
    .await;
    assert_eq!(outgoing(&gw.conversation(CAROL).await).len(), 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_validates_number_and_modem_and_stores_before_replying() {
    let gw = Gateway::start().await;
    let mut c = gw.client().await;
    let bad = c
        .send(SendArgs {
            to: "12ab".into(),
            text: "x".into(),
            modem: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, ClientError::Server(b) if b.code == ErrorCode::InvalidNumber),
        "{bad:?}"
    );
    let unknown = c
        .send(SendArgs {
            to: ALICE.into(),
            text: "x".into(),
            modem: Some("nope".into()),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, ClientError::Server(b) if b.code == ErrorCode::NotFound),
        "{unknown:?}"
    );
    let ok = c
        .send(SendArgs {
            to: "+1 (415) 555-0102".into(),
            text: "Grüße from the gateway — ✓".into(),
            modem: Some("sim1".into()),
        })
        .await
        .unwrap();
    assert_eq!(ok.parts, 1);
    assert_eq!(ok.encoding, "ucs2");
    // In SQLite before the reply: the store has the row the moment send returned.
    let row = gw.daemon.store().outbox_row(ok.id).unwrap();
    assert_eq!(row.to_number, BOB);
    assert_eq!(row.modem_pref.as_deref(), Some("sim1"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_modem_recovers() {
    let gw = Gateway::start().await;
    gw.sim().fault(0, &Fault::Stall { on: true }).unwrap();
    poll("sim0 leaves ready", WAIT, || async {
        let m = gw.client().await.modems().await.ok()?;
        (m[0].state != "ready").then_some(())
    })
    .await;
    gw.sim().fault(0, &Fault::Stall { on: false }).unwrap();
    poll("sim0 ready again", Duration::from_secs(30), || async {
        let m = gw.client().await.modems().await.ok()?;
        (m[0].state == "ready").then_some(())
    })
    .await;
    // And it still receives.
    gw.text_in(ALICE, 0, "after the stall");
    poll("text after the stall", WAIT, || async {
        gw.inbox()
            .await
            .iter()
            .any(|m| m.text == "after the stall")
            .then_some(())
    })
    .await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_from_a_modem_are_tolerated() {
    let gw = Gateway::start().await;
    for _ in 0..5 {
        gw.sim()
            .fault(
                1,
                &Fault::Garbage {
                    hex: None,
                    count: Some(64),
                },
            )
            .unwrap();
    }
    gw.sim()
        .fault(
            1,
            &Fault::Garbage {
                hex: Some("00FF0D0A2B434D54493A0D0A".into()),
                count: None,
            },
        )
        .unwrap();
    gw.text_in(BOB, 1, "through the noise");
    poll("text after garbage", WAIT, || async {
        gw.inbox()
            .await
            .iter()
            .any(|m| m.text == "through the noise")
            .then_some(())
    })
    .await;
    gw.wait_modems_ready().await;
    gw.shutdown().await;
}

/// Writes one raw line and reads one response line.
async fn raw_exchange(stream: &mut BufReader<UnixStream>, line: &[u8]) -> serde_json::Value {
    stream.get_mut().write_all(line).await.unwrap();
    stream.get_mut().write_all(b"\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_line(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    serde_json::from_str(&answer).expect("answer is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_requests_get_errors_and_the_daemon_carries_on() {
    let gw = Gateway::start().await;
    let mut s = BufReader::new(UnixStream::connect(gw.socket()).await.unwrap());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "malformed_json"),
        (vec![b'x'; 1024 * 1024], "request_too_large"),
        (
            br#"{"id":1,"cmd":"launch_rockets"}"#.to_vec(),
            "unknown_command",
        ),
        (
            br#"{"id":2,"cmd":"send","to":15551234567,"text":"x"}"#.to_vec(),
            "invalid_request",
        ),
        (
            br#"{"id":3,"cmd":"inbox","limit":"ten"}"#.to_vec(),
            "invalid_request",
        ),
        (
            br#"{"id":4,"cmd":"send","to":"+14155550101"}"#.to_vec(),
            "invalid_request",
        ),
    ];
    for (line, code) in cases {
        let v = raw_exchange(&mut s, &line).await;
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
    }
    // Same connection still works, and so does a new one.
    let v = raw_exchange(&mut s, br#"{"id":9,"cmd":"status"}"#).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["id"], 9);
    assert_eq!(v["data"]["modems_total"], 2);
    gw.client().await.ping().await.unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_and_outbox_survive_a_restart() {
    let gw = Gateway::start().await;
    gw.text_in(ALICE, 0, "remember me");
    poll("the text in the inbox", WAIT, || async {
        (!gw.inbox().await.is_empty()).then_some(())
    })
    .await;
    let queued = gw
        .client()
        .await
        .send(SendArgs {
            to: BOB.into(),
            text: "kept across restarts".into(),
            modem: None,
        })
        .await
        .unwrap();
    let socket = gw.socket();
    let dir = gw.shutdown().await;
    assert!(!socket.exists(), "socket removed at shutdown");

    let cfg = config(dir.path());
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let inbox = gw.inbox().await;
    assert!(inbox.iter().any(|m| m.text == "remember me"), "{inbox:?}");
    let convo = gw.conversation(BOB).await;
    assert!(
        convo
            .iter()
            .any(|i| i.id == queued.id && i.text == "kept across restarts"),
        "{convo:?}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_socket_is_refused_clearly() {
    let gw = Gateway::start().await;
    let mut cfg = config(gw.dir.path());
    // Another state dir and no simulator, same socket.
    cfg.daemon.state_dir = gw.dir.path().join("state2");
    cfg.simulator.enabled = false;
    for m in &mut cfg.modems {
        m.enabled = false;
    }
    let err = gsmgate::daemon::Daemon::start(cfg)
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(text.contains("already answering"), "{text}");
    gw.client().await.ping().await.unwrap();
    gw.shutdown().await;
}

/// A configured modem whose port does not exist is not a start error (a USB modem may enumerate
/// late, and it must not keep the rest of the pool down): the daemon starts, the other modems
/// work, and the absent one is reported as not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_modem_port_does_not_stop_the_daemon_or_the_other_modems() {
    let dir = short_tempdir();
    let mut cfg = config(dir.path());
    let mut absent = cfg.modems[1].clone();
    absent.name = "late".into();
    absent.port = dir.path().join("sim").join("not-plugged-in");
    cfg.modems.push(absent);
    let opts = options(&cfg);
    let daemon = gsmgate::daemon::Daemon::start_with(cfg, opts, CancellationToken::new())
        .await
        .expect("starts with a port missing");
    let socket = daemon.socket_path().to_path_buf();
    let modems = poll("sim0 and sim1 ready", Duration::from_secs(20), || {
        let socket = socket.clone();
        async move {
            let modems = Client::connect(&socket).await.ok()?.modems().await.ok()?;
            modems
                .iter()
                .filter(|m| m.name.starts_with("sim"))
                .all(|m| m.state == "ready")
                .then_some(modems)
        }
    })
    .await;
    let late = modems.iter().find(|m| m.name == "late").expect("listed");
    assert_ne!(late.state, "ready", "{late:?}");
    let mut client = Client::connect(&socket).await.expect("connects");
    let accepted = client
        .send(SendArgs {
            to: BOB.into(),
            text: "still working".into(),
            modem: None,
        })
        .await
        .expect("send accepted");
    assert!(accepted.id > 0);
    let sim = daemon.sim().expect("simulator");
    poll("Bob receives the text", Duration::from_secs(20), || {
        let got = sim
            .received(Some(BOB))
            .into_iter()
            .any(|r| r.text == "still working");
        async move { got.then_some(()) }
    })
    .await;
    daemon.shutdown().await;
}
