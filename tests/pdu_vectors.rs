//! Known-answer tests: every worked PDU of docs/pdu.md ("Worked PDUs", vectors 1–12) plus the
//! field vectors of its "Layout", "Data coding scheme" and "User data header" sections and the
//! oddities of "What real networks and modems send", each citing its source (the bracketed keys
//! are expanded in docs/pdu.md, "Sources"). A vector is also re-encoded where the PDU is canonical
//! (our encoder would produce exactly those octets from the decoded values).

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsmgate::pdu::{
    Address, Alphabet, Body, Dcs, Deliver, Direction, InformationElement, Pdu, PduError,
    StatusReport, Submit, Timestamp, Tpdu, TypeOfNumber, UserData, Validity, hex_to_bytes,
};

fn ts(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8, tz: i8) -> Timestamp {
    Timestamp {
        year,
        month,
        day,
        hour,
        minute,
        second,
        tz_quarter_hours: tz,
    }
}

fn deliver(hex: &str) -> (Pdu, Deliver) {
    let p = Pdu::decode_hex(hex, Direction::ToMobile).unwrap();
    match &p.tpdu {
        Tpdu::Deliver(d) => (p.clone(), d.clone()),
        other => panic!("not a DELIVER: {other:?}"),
    }
}

fn submit(hex: &str) -> (Pdu, Submit) {
    let p = Pdu::decode_hex(hex, Direction::FromMobile).unwrap();
    match &p.tpdu {
        Tpdu::Submit(s) => (p.clone(), s.clone()),
        other => panic!("not a SUBMIT: {other:?}"),
    }
}

fn report(hex: &str) -> (Pdu, StatusReport) {
    let p = Pdu::decode_hex(hex, Direction::ToMobile).unwrap();
    match &p.tpdu {
        Tpdu::StatusReport(r) => (p.clone(), r.clone()),
        other => panic!("not a STATUS-REPORT: {other:?}"),
    }
}

/// Re-encoding gives the same octets, and the hex reads back to an equal value.
fn canonical(p: &Pdu, hex: &str) {
    assert_eq!(p.to_hex(), hex);
    assert_eq!(p.try_encode().unwrap(), hex_to_bytes(hex).unwrap());
    let dir = p.tpdu.direction();
    assert_eq!(&Pdu::decode_hex(&p.to_hex(), dir).unwrap(), p);
}

// Vector 1: dreamfabric "SMS and the PDU format" (as in Perl SMS::PDU tests).
#[test]
fn v01_deliver_dreamfabric() {
    let hex = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";
    let (p, d) = deliver(hex);
    assert_eq!(p.smsc.as_ref().unwrap().to_string(), "+27381000015");
    assert_eq!(d.originator.number, "27838890001");
    assert_eq!(d.originator.toa(), 0xC8);
    assert_eq!(d.originator.ton, TypeOfNumber::Subscriber);
    assert_eq!(d.dcs, Dcs::GSM7);
    assert_eq!(d.timestamp, ts(1999, 3, 29, 15, 16, 59, 8));
    assert_eq!(d.timestamp.to_rfc3339(), "1999-03-29T15:16:59+02:00");
    assert_eq!(d.text(), Some("hellohello"));
    assert!(!d.more_messages_to_send);
    canonical(&p, hex);
}

// Vector 2: dreamfabric SUBMIT; AT+CMGS=23 (docs/at-protocol.md, "Sending").
#[test]
fn v02_submit_dreamfabric() {
    let hex = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
    let (p, s) = submit(hex);
    assert_eq!(p.smsc, None);
    assert_eq!(s.message_reference, 0);
    assert_eq!(s.destination.to_string(), "+46708251358");
    assert_eq!(s.validity, Validity::Relative(0xAA));
    assert_eq!(Validity::relative_secs(0xAA), 4 * 86_400);
    assert_eq!(s.user_data.as_text(), Some("hellohello"));
    assert_eq!(p.tpdu_len(), 23);
    canonical(&p, hex);
    // Built from scratch it is the same PDU.
    let built = Pdu {
        smsc: None,
        tpdu: Tpdu::Submit(Submit {
            message_reference: 0,
            destination: Address::parse("+46708251358").unwrap(),
            pid: 0,
            dcs: Dcs::GSM7,
            validity: Validity::relative_from_secs(4 * 86_400).unwrap(),
            status_report_request: false,
            reject_duplicates: false,
            reply_path: false,
            user_data: UserData::text("hellohello"),
        }),
    };
    assert_eq!(built.to_hex(), hex);
}

// Vector 3: [PGM] test/test_pdu.py.
#[test]
fn v03_deliver_pgm_long_gsm7() {
    let hex = "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E";
    let (p, d) = deliver(hex);
    assert_eq!(p.smsc.as_ref().unwrap().to_string(), "+85290000000");
    assert_eq!(d.originator.to_string(), "+85291234567");
    assert_eq!(d.timestamp.to_rfc3339(), "2007-04-12T23:25:42+08:00");
    assert_eq!(
        d.text(),
        Some("It is easy to read text messages via AT commands.")
    );
    canonical(&p, hex);
}

// Vector 4: [PGM] test_pdu.py, 7-bit with extension characters.
#[test]
fn v04_deliver_extension_chars() {
    let hex = "06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910";
    let (p, d) = deliver(hex);
    assert_eq!(p.smsc.as_ref().unwrap().to_string(), "+2782913593");
    assert_eq!(d.originator.to_string(), "+27821234567");
    assert_eq!(d.text(), Some("@{tést}!"));
    canonical(&p, hex);
}

// Vector 5: [PGM] test_pdu.py, UDHI with concat ref 0xC3 part 1/1, TOA 81.
#[test]
fn v05_deliver_udh_concat() {
    let hex = "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E064941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7E565D0DB0D82C55EB0DB4B068BCD5C20";
    let (p, d) = deliver(hex);
    assert_eq!(p.smsc.as_ref().unwrap().to_string(), "+2781191");
    assert_eq!(d.originator.number, "2781188");
    assert_eq!(d.originator.ton, TypeOfNumber::Unknown);
    assert_eq!(d.concat(), Some((0xC3, 1, 1)));
    assert_eq!(
        d.user_data.header,
        vec![InformationElement::Concat8 {
            reference: 0xC3,
            total: 1,
            sequence: 1
        }]
    );
    assert_eq!(
        d.text(),
        Some("Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. ")
    );
    // Not canonical: the sender set the fill bit after the UDH (octet 0x91); 23.040 §9.2.3.24
    // fill bits are zero when we write them, so only that octet differs.
    let ours = p.to_hex();
    assert_eq!(ours.replacen("0101906536", "0101916536", 1), hex);
    assert_eq!(Pdu::decode_hex(&ours, Direction::ToMobile).unwrap(), p);
}

// Vector 6: [PGM] test_pdu.py (full hex fetched from babca/python-gsmmodem test/test_pdu.py).
#[test]
fn v06_deliver_alnum_ucs2_concat() {
    let hex = "07919762020033F1400DD0CDF2396C7EBB010008415072411084618C0500035602010053004D005300200063006F00640065003A00200034003800350036002C00200063006F006E006600690072006D006100740069006F006E0020006F00660020006100730073006F00630069006100740069006F006E0020006200650074007700650065006E0020006100630063006F0075006E007400200061006E00640020004D00650067";
    let (p, d) = deliver(hex);
    assert_eq!(p.smsc.as_ref().unwrap().to_string(), "+79262000331");
    assert_eq!(d.originator.number, "Megafon");
    assert_eq!(d.originator.toa(), 0xD0);
    assert_eq!(d.dcs.alphabet(), Alphabet::Ucs2);
    assert_eq!(d.concat(), Some((0x56, 2, 1)));
    assert_eq!(d.timestamp.to_rfc3339(), "2014-05-27T14:01:48+04:00");
    assert_eq!(
        d.text(),
        Some("SMS code: 4856, confirmation of association between account and Meg")
    );
    canonical(&p, hex);
}

// Vector 7: [MM] test-sms-part-3gpp.c `test_create_pdu_ucs2_no_smsc`.
#[test]
fn v07_submit_ucs2() {
    let hex = "0011000B915155551532F40008003A041404300020043704340440043004320441044204320443043504420020043A043E0440043E043B044C002C0020043404350442043A04300021";
    let (p, s) = submit(hex);
    assert_eq!(s.destination.to_string(), "+15555551234");
    assert_eq!(s.dcs, Dcs::UCS2);
    assert_eq!(s.validity, Validity::Relative(0));
    assert_eq!(Validity::relative_secs(0), 300);
    assert_eq!(s.user_data.as_text(), Some("Да здравствует король, детка!"));
    canonical(&p, hex);
}

// Vector 8: [PGM] test_pdu.py, 8-bit SUBMIT.
#[test]
fn v08_submit_8bit() {
    let hex = "0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421";
    let (p, s) = submit(hex);
    assert_eq!(p.smsc.as_ref().unwrap().to_string(), "+2781191");
    assert_eq!(s.destination.to_string(), "+27821234567");
    assert_eq!(s.validity, Validity::None);
    assert_eq!(s.user_data.body, Body::Data(b"Hello world!".to_vec()));
    canonical(&p, hex);
}

// Vector 9: [PGM] test_pdu.py, STATUS-REPORT delivered.
#[test]
fn v09_status_report_delivered() {
    let hex = "0006D60B911326880736F4111011719551401110117195714000";
    let (p, r) = report(hex);
    assert_eq!(p.smsc, None);
    assert_eq!(r.message_reference, 214);
    assert_eq!(r.recipient.to_string(), "+31628870634");
    assert_eq!(r.timestamp.to_rfc3339(), "2011-01-11T17:59:15+01:00");
    assert_eq!(r.discharge_time.to_rfc3339(), "2011-01-11T17:59:17+01:00");
    assert_eq!(r.status, 0);
    assert!(r.delivered());
    canonical(&p, hex);
}

// Vector 10: [MM] `test_pdu_not_stored`, SC-specific temporary status.
#[test]
fn v10_status_report_temporary() {
    let hex = "07914356060013F1065A098136397339F7219011700463802190117004638030";
    let (p, r) = report(hex);
    assert_eq!(p.smsc.as_ref().unwrap().to_string(), "+34656000311");
    assert_eq!(r.message_reference, 90);
    assert_eq!(r.recipient.number, "639337937");
    assert_eq!(r.recipient.toa(), 0x81);
    assert_eq!(r.status, 0x30);
    assert!(!r.delivered());
    canonical(&p, hex);
}

// Vector 11: [PGM] test_pdu.py, absolute validity period.
#[test]
fn v11_submit_absolute_validity() {
    let hex =
        "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301";
    let (p, s) = submit(hex);
    assert_eq!(s.destination.to_string(), "+27820001111");
    assert_eq!(
        s.validity,
        Validity::Absolute(ts(2013, 7, 10, 13, 39, 0, 8))
    );
    assert_eq!(s.user_data.as_text(), Some("Timestamp validity test"));
    canonical(&p, hex);
}

// Vector 12: [CD] test/parse.c (full hex fetched from wdoekes/asterisk-chan-dongle test/parse.c).
#[test]
fn v12_deliver_class0_digits_as_alnum() {
    let hex = "07919333851805320409D034186C360300F0713032810105408849A7F1099A36A720D9EC059BB140319C2E06D38186EF39FD0D1AA3D3E176981E06155D20184B467381926CD0585E26A7E96F1001547481683816ACE60241CB7250DA6D7E83E67550D95E76D3EB61761AF486EBD36F771A14A6D3D3F632A80C12BFDDF539485E9EA7C9F534688C4E87DB61100D968BD95C";
    let (p, d) = deliver(hex);
    assert_eq!(p.smsc.as_ref().unwrap().to_string(), "+393358815023");
    assert_eq!(d.originator.number, "40033");
    assert_eq!(d.originator.ton, TypeOfNumber::Alphanumeric);
    assert_eq!(d.dcs.raw, 0xF0);
    assert_eq!(d.dcs.class(), Some(0));
    assert_eq!(d.dcs.alphabet(), Alphabet::Gsm7);
    assert_eq!(
        d.text(),
        Some(
            "INFO SMS 23/03, 18:10: Costo chiamata E. 0,24. Il credito è E. 48,05. Per info su eventuali opzioni attive e bonus residui chiama 40916."
        )
    );
    canonical(&p, hex);
}

// docs/pdu.md, "User data header": [CD] test/parse.c "Ufone": unknown IE 0x07 before the concat IE.
#[test]
fn ufone_unknown_ie_before_concat() {
    let hex = "07912933035011804409D055F3DB5D060000411120712071022A080701030003990202A09976D7E9E5390B640FB3D364103DCD668364B3562CD692C1623417";
    let (p, d) = deliver(hex);
    assert_eq!(d.originator.number, "Ufone");
    assert_eq!(
        d.user_data.header[0],
        InformationElement::Other {
            iei: 0x07,
            data: vec![0x03]
        }
    );
    assert_eq!(d.concat(), Some((0x99, 2, 2)));
    assert_eq!(d.text(), Some("Minutes, valid till 23-11-2014."));
    canonical(&p, hex);
}

// docs/pdu.md, "What real networks and modems send": a TP-UDL within the bound but larger than the
// data present decodes what is there (UDL 0x14 = 20 octets, 10 present: the header and "はい").
#[test]
fn udl_larger_than_data_decodes_what_is_there() {
    let (_, s) = submit("0041010C910661345542F6000814050003000301306F3044");
    assert_eq!(s.message_reference, 1);
    assert_eq!(s.user_data.concat(), Some((0, 3, 1)));
    assert_eq!(s.user_data.as_text(), Some("はい"));
}

// docs/pdu.md, "Bounds the decoder enforces": [PGM] test_pdu.py's vector announces UDL 0xA0 = 160
// octets of UCS-2, beyond the 140 octets TP-UD holds (23.040 §9.2.3.16): an error naming TP-UDL.
#[test]
fn udl_beyond_the_user_data_capacity_is_an_error() {
    let e = Pdu::decode_hex(
        "0041010C910661345542F60008A0050003000301306F3044",
        Direction::FromMobile,
    )
    .unwrap_err();
    assert_eq!(
        e,
        PduError::Invalid {
            field: "user data length",
            offset: 13,
            detail: "TP-UDL 160 exceeds the 140 octets TP-UD can hold (3GPP TS 23.040 §9.2.3.16)"
                .into()
        }
    );
}

// docs/pdu.md, "Data coding scheme": [PGM] "Flash SMS" vector is FO 0x05 (TP-RD) with DCS 00 —
// not a flash message.
#[test]
fn pgm_flash_vector_is_not_flash() {
    let hex = "0005000B917228001011F10000094676788E064D9B53";
    let (p, s) = submit(hex);
    assert!(s.reject_duplicates);
    assert_eq!(s.dcs.class(), None);
    assert_eq!(s.user_data.as_text(), Some("Flash SMS"));
    canonical(&p, hex);
}

// docs/pdu.md, "Time stamps and validity": [PGM TestTimestamp].
#[test]
fn timestamp_vectors() {
    let t = |h: &str| {
        let b = hex_to_bytes(h).unwrap();
        Timestamp::from_semi_octets(b.try_into().unwrap())
    };
    assert_eq!(
        t("51117200000080").to_rfc3339(),
        "2015-11-27T00:00:00+02:00"
    );
    assert_eq!(
        t("7040213252242B").to_rfc3339(),
        "2007-04-12T23:25:42-08:00"
    );
    assert_eq!(
        t("70402132522423").to_rfc3339(),
        "2007-04-12T23:25:42+08:00"
    );
    for h in ["51117200000080", "7040213252242B", "70402132522423"] {
        assert_eq!(gsmgate::pdu::to_hex(&t(h).to_semi_octets()), h);
    }
}

// docs/pdu.md, "Addresses": [PGM TestSmsPduAddressFields] through a whole SUBMIT (address bytes
// after FO and MR).
#[test]
fn address_vectors_in_a_pdu() {
    for (addr, field) in [
        (Address::parse("+27829135934").unwrap(), "0B917228195339F4"),
        (Address::national("0129998765").unwrap(), "0AA11092997856"),
        (Address::parse("abc").unwrap(), "06D061F118"),
        (Address::parse("FRANCOIS").unwrap(), "0ED04669D0397C26A7"),
    ] {
        let p = Pdu {
            smsc: None,
            tpdu: Tpdu::Submit(Submit {
                message_reference: 0,
                destination: addr.clone(),
                pid: 0,
                dcs: Dcs::GSM7,
                validity: Validity::None,
                status_report_request: false,
                reject_duplicates: false,
                reply_path: false,
                user_data: UserData::text(""),
            }),
        };
        let hex = p.to_hex();
        assert_eq!(&hex[6..6 + field.len()], field);
        let (_, s) = submit(&hex);
        assert_eq!(s.destination, addr);
    }
    // Semi-octets A–E decode as * # a b c instead of failing (23.040 §9.1.2.3).
    let (_, s) = submit("0001000A81BADCFE214300000000");
    assert_eq!(s.destination.number, "*#abc1234");
}

// docs/pdu.md, "Layout": [PGM TestSmsPduSmscFields]: +2782913593 → 06 91 7228195339.
#[test]
fn smsc_vector() {
    let (p, _) = submit("069172281953390100038121F3000000");
    assert_eq!(p.smsc.as_ref().unwrap().to_string(), "+2782913593");
    assert!(p.to_hex().starts_with("06917228195339"));
}

// docs/pdu.md, "User data header": [MM] `test_pdu_udhi` 16-bit concat UDH 06 08 04 0010 02 01;
// [PGM TestUdhConcatenation].
#[test]
fn sixteen_bit_concat_header_in_a_deliver() {
    let from = Address::parse("+31612345678").unwrap();
    let pdus = gsmgate::pdu::delivers_for_text(
        &from,
        &"z".repeat(200),
        ts(2024, 1, 2, 3, 4, 5, 4),
        0x0010,
    )
    .unwrap();
    // Reference 0x10 fits 8 bits: 8-bit header.
    let Tpdu::Deliver(d) = &pdus[0].tpdu else {
        panic!()
    };
    assert_eq!(d.concat(), Some((0x10, 2, 1)));
    let pdus = gsmgate::pdu::delivers_for_text(
        &from,
        &"z".repeat(200),
        ts(2024, 1, 2, 3, 4, 5, 4),
        0x0180,
    )
    .unwrap();
    let hex = pdus[1].to_hex();
    assert!(hex.contains("06080401800202"), "{hex}");
    let Tpdu::Deliver(d) = &Pdu::decode_hex(&hex, Direction::ToMobile).unwrap().tpdu else {
        panic!()
    };
    assert_eq!(d.concat(), Some((384, 2, 2)));
}

// 23.040 §9.2.3.24: an IE whose length runs past the header is an error with its octet.
#[test]
fn malformed_udh_is_an_error_not_a_panic() {
    // UDHL 05, IE 00 claims 09 octets.
    let e = Pdu::decode_hex(
        "0041010C910661345542F600080A050009000301306F3044",
        Direction::FromMobile,
    )
    .unwrap_err();
    assert_eq!(
        e,
        PduError::Invalid {
            field: "user data header element",
            offset: 15,
            detail: "IE 0x00 length 9 runs past the header".into()
        }
    );
    // UDHL within TP-UDL (0x8C = 140) but past the data present.
    let e = Pdu::decode_hex("0041010C910661345542F600088C8000", Direction::FromMobile).unwrap_err();
    assert_eq!(
        e,
        PduError::Truncated {
            field: "user data header",
            offset: 14
        }
    );
}

#[test]
fn errors_name_field_and_octet() {
    let e = Pdu::decode_hex("0011000B91640728", Direction::FromMobile).unwrap_err();
    assert_eq!(e.to_string(), "truncated destination address at octet 3");
    let e = Pdu::decode_hex(
        "07917283010010F5040BC87238880900F10000993092",
        Direction::ToMobile,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "truncated service centre time stamp at octet 19"
    );
    assert_eq!(
        Pdu::decode_hex("0", Direction::ToMobile).unwrap_err(),
        PduError::OddHex { digits: 1 }
    );
    assert_eq!(
        Pdu::decode_hex("00G1", Direction::ToMobile).unwrap_err(),
        PduError::BadHex { position: 2 }
    );
    assert_eq!(
        Pdu::decode_hex("", Direction::ToMobile)
            .unwrap_err()
            .to_string(),
        "truncated SMSC address at octet 0"
    );
    let e = Pdu::decode_hex("0001", Direction::ToMobile).unwrap_err();
    assert!(
        matches!(
            e,
            PduError::Invalid {
                field: "first octet",
                offset: 1,
                ..
            }
        ),
        "{e}"
    );
}

// The direction matters: the same MTI bits mean different TPDUs (23.040 §9.2.3.1).
#[test]
fn decode_any_picks_the_direction_that_works() {
    let (_, dir) =
        Pdu::decode_any(&hex_to_bytes("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").unwrap())
            .unwrap();
    assert_eq!(dir, Direction::FromMobile);
    let (_, dir) = Pdu::decode_any(
        &hex_to_bytes("0006D60B911326880736F4111011719551401110117195714000").unwrap(),
    )
    .unwrap();
    assert_eq!(dir, Direction::ToMobile);
}

// 23.040 §9.2.2.3: optional PI/PID/DCS/UD of a STATUS-REPORT round trip.
#[test]
fn status_report_with_optional_fields_round_trips() {
    let r = StatusReport {
        message_reference: 17,
        recipient: Address::parse("+15551234567").unwrap(),
        timestamp: ts(2024, 2, 29, 23, 59, 59, -20),
        discharge_time: ts(2024, 3, 1, 0, 0, 1, -20),
        status: 0x46,
        status_report_qualifier: false,
        more_messages_to_send: false,
        pid: Some(0),
        dcs: Some(Dcs::UCS2),
        user_data: Some(UserData::text("é😀")),
    };
    let p = Pdu {
        smsc: None,
        tpdu: Tpdu::StatusReport(r),
    };
    let back = Pdu::decode(&p.try_encode().unwrap(), Direction::ToMobile).unwrap();
    assert_eq!(back, p);
}

// DCS 0x04 with ports: a vCard to port 9204 (docs/pdu.md, "User data header").
#[test]
fn port16_data_round_trips() {
    let d = Deliver {
        originator: Address::parse("+15551234567").unwrap(),
        pid: 0,
        dcs: Dcs::EIGHT_BIT,
        timestamp: ts(2024, 5, 6, 7, 8, 9, 0),
        more_messages_to_send: true,
        status_report_indication: true,
        reply_path: true,
        user_data: UserData {
            header: vec![InformationElement::Port16 {
                destination: 9204,
                source: 0,
            }],
            body: Body::Data(b"BEGIN:VCARD\r\nEND:VCARD\r\n".to_vec()),
        },
    };
    let p = Pdu {
        smsc: Some(Address::parse("+2782913593").unwrap()),
        tpdu: Tpdu::Deliver(d),
    };
    let hex = p.to_hex();
    assert!(hex.contains("050423F40000"));
    assert_eq!(Pdu::decode_hex(&hex, Direction::ToMobile).unwrap(), p);
}

#[test]
fn strict_encode_refuses_what_lossy_encode_repairs() {
    let mut s = submit("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").1;
    s.user_data = UserData::text("ж".to_string() + &"a".repeat(200));
    let p = Pdu {
        smsc: None,
        tpdu: Tpdu::Submit(s),
    };
    assert!(matches!(p.try_encode(), Err(PduError::Unencodable { .. })));
    let Tpdu::Submit(back) = Pdu::decode(&p.encode(), Direction::FromMobile)
        .unwrap()
        .tpdu
    else {
        panic!()
    };
    assert_eq!(
        back.user_data.as_text().unwrap(),
        format!("?{}", "a".repeat(159))
    );
}
