//! End-to-end: the contact card in `vcard_sms` mode travels as a real port-9204 vCard SMS. A phone
//! texts the daemon (in-process, simulator on pseudo-terminals); the simulated network must see,
//! after the welcome and the compliance line, SUBMITs with DCS 0x04 and the 16-bit port IE
//! 9204 (23.040 §9.2.3.24.4) whose data joins back to the configured vCard. The card here is
//! long enough for two parts, so the concatenation IE and the stored reference are exercised too.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::time::Duration;

use daemon_util::*;
use gsmgate::community::vcard::vcard_text;
use gsmgate::config::Config;
use gsmgate::pdu::{Body, Direction, InformationElement, Pdu, Tpdu};
use gsmgate::store::OutboxPayload;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_gets_the_card_as_a_port_9204_vcard_after_welcome_and_compliance() {
    let dir = short_tempdir();
    let long_url = format!("https://example.org/{}", "a".repeat(120));
    let text = config_text(dir.path()).replace(
        "mode = \"text\"",
        &format!("mode = \"vcard_sms\"\nurl = \"{long_url}\""),
    );
    let cfg = Config::from_str(&text, "test.toml").expect("vcard config validates");
    let card = cfg
        .community
        .contact_card
        .clone()
        .expect("contact card configured");
    let vcard = vcard_text(&card);
    assert!(vcard.len() > 133, "the card must need two parts");
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;

    gw.text_in(ALICE, 0, "Hello!");
    let parts = vcard.len().div_ceil(128);
    // welcome + compliance line + the card's parts, all to Alice.
    let submitted = poll("welcome, compliance and card submitted", WAIT, || async {
        let s: Vec<_> = gw
            .sim()
            .submitted()
            .into_iter()
            .filter(|p| p.to == ALICE)
            .collect();
        (s.len() >= 2 + parts).then_some(s)
    })
    .await;
    let decoded: Vec<_> = submitted
        .iter()
        .map(|p| {
            let pdu = Pdu::decode_hex(&p.pdu_hex, Direction::FromMobile)
                .unwrap_or_else(|e| panic!("{e}: {}", p.pdu_hex));
            match pdu.tpdu {
                Tpdu::Submit(s) => s,
                other => panic!("not a SUBMIT: {other:?}"),
            }
        })
        .collect();
    // The first two are the welcome and the compliance line, as ordinary texts.
    for s in &decoded[..2] {
        assert_ne!(s.dcs.raw, 0x04, "{s:?}");
        assert!(matches!(s.user_data.body, Body::Text(_)), "{s:?}");
    }
    let Body::Text(welcome) = &decoded[0].user_data.body else {
        unreachable!()
    };
    assert!(
        welcome.starts_with("OK, I've got your number saved"),
        "{welcome}"
    );
    // Then the card: 8-bit data to port 9204 (source 0), concatenated, one reference.
    let mut data = Vec::new();
    let mut references = Vec::new();
    for (i, s) in decoded[2..2 + parts].iter().enumerate() {
        assert_eq!(s.dcs.raw, 0x04, "part {}: {s:?}", i + 1);
        assert_eq!(
            s.user_data.header.first(),
            Some(&InformationElement::Port16 {
                destination: 9204,
                source: 0
            }),
            "part {}",
            i + 1
        );
        match s.user_data.header.get(1) {
            Some(InformationElement::Concat8 {
                reference,
                total,
                sequence,
            }) => {
                assert_eq!((*total as usize, *sequence as usize), (parts, i + 1));
                references.push(*reference);
            }
            other => panic!("part {} lacks the concatenation IE: {other:?}", i + 1),
        }
        match &s.user_data.body {
            Body::Data(d) => data.extend_from_slice(d),
            Body::Text(t) => panic!("a text body {t:?}"),
        }
    }
    assert_eq!(String::from_utf8(data).expect("utf-8"), vcard);
    references.dedup();
    assert_eq!(references.len(), 1, "one reference for all parts");

    // The outbox row says what it is and kept the reference it went out with.
    let store = gw.daemon.store();
    let row = store
        .list_outbox(None, None, 20)
        .expect("outbox")
        .into_iter()
        .find(|r| r.to_number == ALICE && r.payload == OutboxPayload::Vcard)
        .expect("a vcard row to Alice");
    assert_eq!(row.text, vcard);
    assert_eq!(row.concat_ref.map(|r| r as u8), references.first().copied());
    gw.shutdown().await;
}
