//! The bounds of 3GPP TS 23.040 the decoder enforces (docs/pdu.md, "Bounds the decoder
//! enforces"), one test per bound: the field one past the bound is an error naming the field, its
//! octet and the bound; the field at the bound decodes. Values the spec tells a receiver to accept
//! (a reserved TP-DCS, a reserved TP-PID in an SMS-DELIVER) still decode.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsmgate::pdu::{
    Address, Direction, Pdu, PduError, SubmitOptions, Tpdu, hex_to_bytes, submits_for_text, to_hex,
};

/// Vector 1 of docs/pdu.md (dreamfabric): SMSC at 0..=7, FO at 8, TP-OA length at 9 (type C8,
/// 11 digits), TP-PID at 17, TP-DCS at 18, TP-SCTS at 19..=25, TP-UDL at 26.
const DELIVER: &str = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";
/// Vector 2 of docs/pdu.md: no SMSC, FO 11 at 1, MR at 2, TP-DA length at 3, TP-PID at 11.
const SUBMIT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
/// Vector 9 of docs/pdu.md: no SMSC, FO at 1, MR at 2, TP-RA length at 3; TP-SCTS at 11..=17,
/// TP-DT at 18..=24.
const REPORT: &str = "0006D60B911326880736F4111011719551401110117195714000";

fn with(hex: &str, at: usize, octets: &[u8]) -> Vec<u8> {
    let mut b = hex_to_bytes(hex).unwrap();
    b.splice(at..at + octets.len(), octets.iter().copied());
    b
}

fn invalid(bytes: &[u8], dir: Direction) -> (&'static str, usize, String) {
    match Pdu::decode(bytes, dir) {
        Err(PduError::Invalid {
            field,
            offset,
            detail,
        }) => (field, offset, detail),
        other => panic!("expected Invalid for {}, got {other:?}", to_hex(bytes)),
    }
}

#[test]
fn an_address_of_129_digits_is_an_error_naming_the_bound() {
    // The real-device case: length 0x81 was read as 129 digits and 65 octets of what follows.
    let (field, offset, detail) = invalid(&with(DELIVER, 9, &[0x81]), Direction::ToMobile);
    assert_eq!((field, offset), ("originator address", 9));
    assert!(detail.contains("129") && detail.contains("20 "), "{detail}");
    assert!(detail.contains("§9.1.2.5"), "{detail}");
    let (field, offset, _) = invalid(&with(SUBMIT, 3, &[21]), Direction::FromMobile);
    assert_eq!((field, offset), ("destination address", 3));
    let (field, offset, _) = invalid(&with(REPORT, 3, &[0x15]), Direction::ToMobile);
    assert_eq!((field, offset), ("recipient address", 3));
}

#[test]
fn twenty_digits_decode() {
    // TP-DA of 20 digits: 0x14 semi-octets, 10 octets.
    let hex = "0011001491214365870921436587090000AA0AE8329BFD4697D9EC37";
    let p = Pdu::decode_hex(hex, Direction::FromMobile).unwrap();
    let Tpdu::Submit(s) = p.tpdu else { panic!() };
    assert_eq!(s.destination.to_string(), "+12345678901234567890");
    // Alphanumeric: the same 20 semi-octets hold 11 septets.
    let from = Address::alphanumeric("ABCDEFGHIJK").unwrap();
    let pdus = submits_for_text(&from, "x", &SubmitOptions::default()).unwrap();
    let bytes = pdus[0].encode();
    assert_eq!(bytes[3], 20, "{}", to_hex(&bytes));
    let Tpdu::Submit(s) = Pdu::decode(&bytes, Direction::FromMobile).unwrap().tpdu else {
        panic!()
    };
    assert_eq!(s.destination, from);
}

#[test]
fn an_smsc_prefix_longer_than_eleven_octets_is_an_error() {
    let mut b = vec![12, 0x91];
    b.extend([0x21; 11]);
    b.extend(hex_to_bytes(&DELIVER[16..]).unwrap());
    let (field, offset, detail) = invalid(&b, Direction::ToMobile);
    assert_eq!((field, offset), ("SMSC address", 0));
    assert!(detail.contains("12") && detail.contains("11"), "{detail}");
}

#[test]
fn udl_beyond_160_septets_or_140_octets_is_an_error() {
    // GSM 7-bit: 160 is the bound (the data present is shorter: tolerated).
    assert!(Pdu::decode(&with(DELIVER, 26, &[160]), Direction::ToMobile).is_ok());
    let (field, offset, detail) = invalid(&with(DELIVER, 26, &[161]), Direction::ToMobile);
    assert_eq!((field, offset), ("user data length", 26));
    assert!(
        detail.contains("161") && detail.contains("160 septets"),
        "{detail}"
    );
    // UCS-2 (DCS 08) and 8-bit (DCS 04): 140 octets.
    let ucs2 = with(DELIVER, 18, &[0x08]);
    let mut at_bound = ucs2.clone();
    at_bound[26] = 140;
    assert!(Pdu::decode(&at_bound, Direction::ToMobile).is_ok());
    let mut past = ucs2;
    past[26] = 141;
    let (field, _, detail) = invalid(&past, Direction::ToMobile);
    assert_eq!(field, "user data length");
    assert!(detail.contains("140 octets"), "{detail}");
    let mut eight = with(DELIVER, 18, &[0x04]);
    eight[26] = 200;
    assert_eq!(invalid(&eight, Direction::ToMobile).0, "user data length");
}

#[test]
fn a_header_longer_than_the_user_data_is_an_error() {
    // FO 44 (UDHI), UDL 6 septets, UDHL 5: the header needs 7 septets.
    let mut b = with(DELIVER, 8, &[0x44]);
    b.truncate(26);
    b.extend([6, 5, 0, 3, 1, 2, 1, 0x41]);
    let (field, offset, detail) = invalid(&b, Direction::ToMobile);
    assert_eq!((field, offset), ("user data header length", 27));
    assert!(
        detail.contains("7 septets") && detail.contains("TP-UDL is 6"),
        "{detail}"
    );
    // With TP-UDL 8 the same header and one character decode.
    b[26] = 8;
    assert!(Pdu::decode(&b, Direction::ToMobile).is_ok());
    // In UCS-2 the bound is counted in octets.
    let mut u = b.clone();
    u[18] = 0x08;
    u[26] = 5;
    assert_eq!(
        invalid(&u, Direction::ToMobile).0,
        "user data header length"
    );
}

#[test]
fn time_stamps_out_of_range_are_errors() {
    // Month 13, day 32, hour 24, minute 60, second 60, a hex semi-octet, 31 February.
    for (pos, octet, what) in [
        (20, 0x31, "month 13"),
        (21, 0x23, "day 32"),
        (22, 0x42, "24:"),
        (23, 0x06, ":60:"),
        (24, 0x06, ":60"),
        (19, 0x9A, "year"),
        (25, 0xA0, "time zone"),
    ] {
        let (field, offset, detail) = invalid(&with(DELIVER, pos, &[octet]), Direction::ToMobile);
        assert_eq!((field, offset), ("service centre time stamp", 19), "{what}");
        assert!(detail.contains(what), "{what}: {detail}");
    }
    let feb31 = with(DELIVER, 20, &[0x20, 0x13]);
    assert!(invalid(&feb31, Direction::ToMobile).2.contains("day 31"));
    // The discharge time of a status report and an absolute validity period are time stamps too.
    let (field, offset, _) = invalid(&with(REPORT, 19, &[0x31]), Direction::ToMobile);
    assert_eq!((field, offset), ("discharge time", 18));
    let absolute =
        "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301";
    let (field, _, _) = invalid(&with(absolute, 15, &[0x99]), Direction::FromMobile);
    assert_eq!(field, "validity period");
}

#[test]
fn reserved_pid_fails_a_submit_but_not_a_deliver() {
    // 23.040 §9.2.3.9: the SC may reject a reserved TP-PID; the MS stores it as received.
    let (field, offset, detail) = invalid(&with(SUBMIT, 11, &[0x80]), Direction::FromMobile);
    assert_eq!((field, offset), ("protocol identifier", 11));
    assert!(
        detail.contains("0x80") && detail.contains("reserved"),
        "{detail}"
    );
    let p = Pdu::decode(&with(DELIVER, 17, &[0x80]), Direction::ToMobile).unwrap();
    let Tpdu::Deliver(d) = p.tpdu else { panic!() };
    assert_eq!(d.pid, 0x80);
}

#[test]
fn reserved_dcs_still_decodes() {
    // 23.038 §4: a receiver reads reserved codings; the codec shows their octets as data.
    for dcs in [0x0C, 0x80, 0xB3] {
        let p = Pdu::decode(&with(DELIVER, 18, &[dcs]), Direction::ToMobile);
        assert!(p.is_ok(), "DCS 0x{dcs:02X}: {p:?}");
    }
}
