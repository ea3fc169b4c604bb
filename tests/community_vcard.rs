//! The contact card as port-9204 vCard SMS: exact PDU bytes (DCS 0x04, UDH port IE 05 04 23F4
//! 0000, 23.040 §9.2.3.24.4), concatenation when the card exceeds one part, and a round trip
//! through the pdu decoder.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsmgate::community::vcard::{VCARD_PORT, vcard_submits, vcard_text};
use gsmgate::config::{CardMode, ContactCard};
use gsmgate::pdu::{Body, Direction, InformationElement, Pdu, Tpdu, to_hex};

fn card(name: &str) -> ContactCard {
    ContactCard {
        name: name.into(),
        numbers: vec!["+13125550123".into()],
        url: None,
        photo_url: None,
        mode: CardMode::VcardSms,
        vcf_url: None,
    }
}

#[test]
fn single_part_known_answer() {
    let vcard = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n";
    let pdus = vcard_submits("+13125550123", vcard, 7).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pdus.len(), 1);
    let data = to_hex(vcard.as_bytes());
    let udl = 7 + vcard.len();
    // SMSC 00 | FO 41 (SUBMIT, UDHI, no VP) | MR 00 | DA 0B 91 3121550521F3 | PID 00 | DCS 04 |
    // UDL | UDHL 06 | IE 05 len 04 dest 23F4 src 0000 | data
    let want = format!(
        "004100{}0004{udl:02X}06050423F40000{data}",
        "0B913121550521F3"
    );
    assert_eq!(pdus[0].to_hex(), want);
    assert_eq!(VCARD_PORT, 0x23F4);
}

#[test]
fn long_cards_are_concatenated_and_reassemble() {
    let mut c = card("Oak Street Tenants Association, Building Committee");
    c.url = Some(format!("https://example.org/{}", "a".repeat(120)));
    c.photo_url = Some(format!("https://example.org/p/{}", "b".repeat(60)));
    let vcard = vcard_text(&c);
    assert!(
        vcard.len() > 133,
        "test card must need two parts: {}",
        vcard.len()
    );
    let pdus = vcard_submits("+13125550123", &vcard, 0x42).unwrap_or_else(|e| panic!("{e}"));
    let total = pdus.len();
    assert_eq!(total, vcard.len().div_ceil(128));
    let mut body = Vec::new();
    for (i, pdu) in pdus.iter().enumerate() {
        let hex = pdu.to_hex();
        // UDHL 0B: port IE (6 octets) then concat IE 00 03 ref total seq.
        let udh = format!("0B050423F400000003 42{total:02X}{:02X}", i + 1).replace(' ', "");
        assert!(hex.contains(&udh), "{hex} lacks {udh}");
        assert!(pdu.tpdu_len() <= 140 + 15);
        let back = Pdu::decode_hex(&hex, Direction::FromMobile).unwrap_or_else(|e| panic!("{e}"));
        let Tpdu::Submit(s) = back.tpdu else {
            panic!("not a submit")
        };
        assert_eq!(s.dcs.raw, 0x04);
        assert!(s.user_data.header.contains(&InformationElement::Port16 {
            destination: 9204,
            source: 0
        }));
        match s.user_data.body {
            Body::Data(d) => {
                assert!(d.len() <= 128);
                body.extend(d);
            }
            Body::Text(t) => panic!("text body {t:?}"),
        }
    }
    assert_eq!(body, vcard.as_bytes());
}

#[test]
fn bad_destination_is_an_error() {
    assert!(vcard_submits("not a number", "BEGIN:VCARD\r\n", 0).is_err());
}
