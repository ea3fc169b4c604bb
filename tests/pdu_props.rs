//! Property tests of the PDU codec: round trips (text through segmentation, encoding, decoding and
//! reassembly; addresses; concatenation references; septet packing; time stamps) and "never
//! panics" on arbitrary octets and strings in both directions.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsmgate::pdu::{
    Address, Direction, Part, Pdu, Reassembler, SubmitOptions, Timestamp, Tpdu, delivers_for_text,
    gsm7, submits_for_text, to_hex,
};
use proptest::prelude::*;

/// Decodes every part and reassembles them; returns the text.
fn through_the_air(pdus: &[Pdu], dir: Direction) -> String {
    let mut r = Reassembler::new(600);
    let mut done = None;
    // Deliver the parts in reverse to exercise out-of-order arrival.
    for p in pdus.iter().rev() {
        let bytes = p.try_encode().expect("segmented parts always fit");
        let back = Pdu::decode(&bytes, dir).expect("our own PDU decodes");
        assert_eq!(&back, p);
        let part = match back.tpdu {
            Tpdu::Deliver(d) => Part::from_deliver(&d).expect("text body"),
            Tpdu::Submit(s) => {
                let (reference, total, sequence) = s.user_data.concat().unwrap_or((0, 1, 1));
                Part {
                    sender: s.destination.to_string(),
                    reference,
                    total,
                    sequence,
                    text: s.user_data.as_text().expect("text body").to_string(),
                }
            }
            Tpdu::StatusReport(_) => panic!("unexpected report"),
        };
        if let Some(a) = r.push(part, 0) {
            assert!(a.complete);
            done = Some(a.text);
        }
    }
    assert_eq!(r.pending(), 0);
    done.expect("message completed")
}

fn gsm_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('a', 'z'),
            Just('€'),
            Just('{'),
            Just('@'),
            Just('\n'),
            Just('é'),
            Just(' '),
        ],
        0..500,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// Octets shaped like a PDU, with every field drawn within or near its bounds, so that many of
/// them decode (uniformly random octets almost never do).
fn pdu_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let digits = proptest::collection::vec(any::<u8>(), 0..=10);
    let time = (
        0u8..100,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
        0u8..80,
        any::<bool>(),
    );
    (
        (
            any::<bool>(),
            digits.clone(),
            0u8..=3,
            0u8..=21,
            any::<u8>(),
            digits,
        ),
        (
            prop_oneof![Just(0u8), any::<u8>()],
            prop_oneof![Just(0u8), Just(4), Just(8), any::<u8>()],
            time,
        ),
        (
            prop_oneof![0u8..=140, any::<u8>()],
            proptest::collection::vec(any::<u8>(), 0..150),
        ),
    )
        .prop_map(
            |((smsc, sd, mti, alen, toa, ad), (pid, dcs, t), (udl, ud))| {
                let bcd = |v: u8| ((v % 10) << 4) | (v / 10);
                let mut b = vec![];
                if smsc && !sd.is_empty() {
                    b.push(sd.len() as u8 + 1);
                    b.push(0x91);
                    b.extend(&sd);
                } else {
                    b.push(0);
                }
                // FO: MTI plus random upper bits from the type of address octet.
                b.push((toa & 0xFC) | mti);
                if mti & 0x01 != mti >> 1 {
                    b.push(udl); // TP-MR of a SUBMIT or a STATUS-REPORT
                }
                b.push(alen);
                b.push(toa | 0x80);
                b.extend(
                    ad.iter()
                        .copied()
                        .cycle()
                        .take(usize::from(alen).div_ceil(2)),
                );
                let ts = [
                    bcd(t.0),
                    bcd(t.1),
                    bcd(t.2),
                    bcd(t.3),
                    bcd(t.4),
                    bcd(t.5),
                    bcd(t.6) | if t.7 { 0x08 } else { 0 },
                ];
                match mti {
                    0b10 => {
                        b.extend(ts);
                        b.extend(ts);
                        b.push(dcs); // TP-ST
                    }
                    _ => {
                        b.push(pid);
                        b.push(dcs);
                        if mti == 0b01 {
                            match (toa >> 3) & 0x03 {
                                0b10 => b.push(udl),
                                0b11 => b.extend(ts),
                                0b01 => b.extend([1, 0, 0, 0, 0, 0, 0]),
                                _ => {}
                            }
                        } else {
                            b.extend(ts);
                        }
                        b.push(udl);
                        b.extend(ud);
                    }
                }
                b
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_survives_submit_round_trip(text in "\\PC{0,400}|.{0,300}", reference: u16, sixteen: bool) {
        let to = Address::parse("+15551234567").unwrap();
        let opts = SubmitOptions { concat_reference: reference, sixteen_bit_reference: sixteen, ..Default::default() };
        let pdus = submits_for_text(&to, &text, &opts).unwrap();
        prop_assert_eq!(through_the_air(&pdus, Direction::FromMobile), text);
    }

    #[test]
    fn gsm_text_survives_deliver_round_trip(text in gsm_text(), reference: u16, secs in 315_532_800i64..3_471_292_799, tz in -79i8..=79) {
        let from = Address::parse("Sender").unwrap();
        let pdus = delivers_for_text(&from, &text, Timestamp::from_unix(secs, tz), reference).unwrap();
        for p in &pdus {
            let Tpdu::Deliver(d) = &p.tpdu else { unreachable!() };
            if pdus.len() > 1 {
                let r = d.concat().unwrap().0;
                prop_assert_eq!(r, if reference > 0xFF { reference } else { reference & 0xFF });
            } else {
                prop_assert!(d.user_data.header.is_empty());
            }
        }
        prop_assert_eq!(through_the_air(&pdus, Direction::ToMobile), text);
    }

    #[test]
    fn numbers_round_trip(digits in "[0-9*#]{1,20}", intl: bool, alnum in "[A-Za-z][A-Za-z0-9 {}€]{0,3}[A-Za-z]") {
        let addrs = [
            if intl { Address::parse(&format!("+{digits}")).unwrap() } else { Address::parse(&digits).unwrap() },
            Address::alphanumeric(&alnum).unwrap(),
        ];
        for a in addrs {
            let pdus = submits_for_text(&a, "x", &SubmitOptions::default()).unwrap();
            let back = Pdu::decode(&pdus[0].encode(), Direction::FromMobile).unwrap();
            let Tpdu::Submit(s) = back.tpdu else { unreachable!() };
            prop_assert_eq!(&s.destination, &a);
            prop_assert_eq!(Address::parse(&a.to_string()).map(|x| x.to_string()).ok(), Some(a.to_string()));
        }
    }

    #[test]
    fn septets_pack_and_unpack(septets in proptest::collection::vec(0u8..128, 0..300), fill in 0u8..7) {
        let mut packed = vec![];
        gsm7::pack(&septets, fill, &mut packed);
        prop_assert_eq!(packed.len(), (septets.len() * 7 + fill as usize).div_ceil(8));
        prop_assert_eq!(gsm7::unpack(&packed, fill, septets.len()), septets);
    }

    #[test]
    fn timestamps_round_trip(secs in 315_532_800i64..3_471_292_799, tz in -79i8..=79) {
        // 1980-01-01 .. 2079-12-31: the two-digit years the semi-octets can hold.
        let t = Timestamp::from_unix(secs, tz);
        prop_assert_eq!(t.to_unix(), secs);
        prop_assert_eq!(Timestamp::from_semi_octets(t.to_semi_octets()), t);
    }

    #[test]
    fn decoder_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Pdu::decode(&bytes, Direction::ToMobile);
        let _ = Pdu::decode(&bytes, Direction::FromMobile);
        if let Ok((p, _)) = Pdu::decode_any(&bytes) {
            // Whatever decoded also encodes without panicking.
            let _ = p.encode();
            let _ = p.try_encode();
            let _ = p.tpdu_len();
        }
    }

    #[test]
    fn every_decoded_pdu_reencodes_to_the_same_fields(bytes in pdu_like_bytes()) {
        // Whatever decodes and the encoder can carry (`try_encode`) decodes back to equal fields:
        // the decoder reads no field the encoder would write differently.
        for dir in [Direction::ToMobile, Direction::FromMobile] {
            let Ok(p) = Pdu::decode(&bytes, dir) else { continue };
            let Ok(again) = p.try_encode() else { continue };
            let back = Pdu::decode(&again, dir);
            prop_assert_eq!(back.as_ref(), Ok(&p), "{} → {}", to_hex(&bytes), to_hex(&again));
        }
    }

    #[test]
    fn decoder_never_panics_on_mutated_pdus(pos in 0usize..80, xor in 1u8..=255, cut in 0usize..80) {
        let mut b = gsmgate::pdu::hex_to_bytes("07919762020033F1400DD0CDF2396C7EBB010008415072411084618C0500035602010053004D00530020").unwrap();
        if let Some(x) = b.get_mut(pos) { *x ^= xor; }
        b.truncate(cut.max(1));
        let _ = Pdu::decode(&b, Direction::ToMobile);
        let _ = Pdu::decode(&b, Direction::FromMobile);
    }

    #[test]
    fn decoder_never_panics_on_strings(s in "[0-9A-Fa-f]{0,300}|\\PC{0,100}") {
        let _ = Pdu::decode_hex(&s, Direction::ToMobile);
        let _ = Pdu::decode_hex(&s, Direction::FromMobile);
    }
}
