//! Smart encoding and segmentation of outgoing text, above the codec.
//!
//! GSM 7-bit is chosen when every character is in the default or extension table, UCS-2 (as UTF-16)
//! otherwise. One part holds 160 septets / 70 UTF-16 units; once a concatenation header is needed a
//! part holds 153 / 67 (8-bit reference, 6-octet UDH) or 152 / 66 (16-bit reference, 7 octets)
//! (23.040 §9.2.3.24.1; docs/pdu.md, "Lengths and segmentation"). Parts are cut between characters,
//! so an escape pair or a surrogate pair is never split (MM `util_split_text_gsm7` does the same).
//! A single part carries no header.

use super::address::Address;
use super::error::PduError;
use super::types::{
    Alphabet, Dcs, Deliver, InformationElement, Pdu, Submit, Timestamp, Tpdu, UserData, Validity,
};
use super::{gsm7, ucs2};

/// How a text will be sent: its alphabet, the text of each part and the units (septets or UTF-16
/// code units) each part uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPlan {
    pub alphabet: Alphabet,
    pub parts: Vec<String>,
    pub units: Vec<usize>,
}

/// Units of `c` in the alphabet (extension characters 2 septets, non-BMP characters 2 units).
fn char_units(alphabet: Alphabet, c: char) -> usize {
    match alphabet {
        Alphabet::Gsm7 => gsm7::encode_char(c).map_or(1, gsm7::Gsm7Char::len),
        _ => c.len_utf16(),
    }
}

/// The plan for an 8-bit concatenation reference.
pub fn plan(text: &str) -> SegmentPlan {
    plan_with(text, false)
}

/// The plan for an 8-bit (false) or 16-bit (true) concatenation reference.
pub fn plan_with(text: &str, sixteen_bit_reference: bool) -> SegmentPlan {
    let (alphabet, total, single, multi) = match gsm7::septet_len(text) {
        Some(n) => (
            Alphabet::Gsm7,
            n,
            160,
            if sixteen_bit_reference { 152 } else { 153 },
        ),
        None => (
            Alphabet::Ucs2,
            ucs2::unit_len(text),
            70,
            if sixteen_bit_reference { 66 } else { 67 },
        ),
    };
    if total <= single {
        return SegmentPlan {
            alphabet,
            parts: vec![text.to_string()],
            units: vec![total],
        };
    }
    let mut parts = Vec::with_capacity(total / multi + 1);
    let mut units = Vec::with_capacity(total / multi + 1);
    let mut cur = String::new();
    let mut used = 0;
    for c in text.chars() {
        let u = char_units(alphabet, c);
        if used + u > multi {
            parts.push(std::mem::take(&mut cur));
            units.push(used);
            used = 0;
        }
        cur.push(c);
        used += u;
    }
    parts.push(cur);
    units.push(used);
    SegmentPlan {
        alphabet,
        parts,
        units,
    }
}

/// Options for [`submits_for_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOptions {
    /// TP-SRR: ask for a status report.
    pub status_report: bool,
    pub validity: Validity,
    /// The concatenation reference (only its low 8 bits with an 8-bit reference).
    pub concat_reference: u16,
    pub sixteen_bit_reference: bool,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions {
            status_report: false,
            validity: Validity::None,
            concat_reference: 0,
            sixteen_bit_reference: false,
        }
    }
}

/// The user data of every part, with concatenation headers when there is more than one part.
fn user_data_parts(
    text: &str,
    reference: u16,
    sixteen: bool,
) -> Result<(Alphabet, Vec<UserData>), PduError> {
    let plan = plan_with(text, sixteen);
    let total = plan.parts.len();
    let total_u8 = u8::try_from(total).map_err(|_| PduError::TooManyParts { parts: total })?;
    let uds = plan
        .parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let sequence = (i + 1) as u8; // i < total <= 255
            let header = match (total_u8, sixteen) {
                (1, _) => Vec::new(),
                (_, true) => vec![InformationElement::Concat16 {
                    reference,
                    total: total_u8,
                    sequence,
                }],
                (_, false) => vec![InformationElement::Concat8 {
                    reference: reference as u8,
                    total: total_u8,
                    sequence,
                }],
            };
            UserData {
                header,
                body: super::types::Body::Text(part),
            }
        })
        .collect();
    Ok((plan.alphabet, uds))
}

/// Every part as a ready SMS-SUBMIT (SMSC "00", TP-MR 0: the modem chooses the MR).
pub fn submits_for_text(
    to: &Address,
    text: &str,
    opts: &SubmitOptions,
) -> Result<Vec<Pdu>, PduError> {
    let (alphabet, uds) = user_data_parts(text, opts.concat_reference, opts.sixteen_bit_reference)?;
    Ok(uds
        .into_iter()
        .map(|user_data| Pdu {
            smsc: None,
            tpdu: Tpdu::Submit(Submit {
                message_reference: 0,
                destination: to.clone(),
                pid: 0,
                dcs: Dcs::for_alphabet(alphabet),
                validity: opts.validity,
                status_report_request: opts.status_report,
                reject_duplicates: false,
                reply_path: false,
                user_data,
            }),
        })
        .collect())
}

/// Every part as an SMS-DELIVER from `from` (the simulator's network side). A reference above 255
/// selects the 16-bit concatenation header, otherwise the 8-bit one.
pub fn delivers_for_text(
    from: &Address,
    text: &str,
    timestamp: Timestamp,
    concat_reference: u16,
) -> Result<Vec<Pdu>, PduError> {
    let (alphabet, uds) = user_data_parts(text, concat_reference, concat_reference > 0xFF)?;
    Ok(uds
        .into_iter()
        .map(|user_data| Pdu {
            smsc: None,
            tpdu: Tpdu::Deliver(Deliver {
                originator: from.clone(),
                pid: 0,
                dcs: Dcs::for_alphabet(alphabet),
                timestamp,
                more_messages_to_send: false,
                status_report_indication: false,
                reply_path: false,
                user_data,
            }),
        })
        .collect())
}

/// The vCard application port (0x23F4): Nokia Smart Messaging, kept in the OMA/WAP port
/// registry; phones that support it store a vCard sent there as a contact.
pub const VCARD_PORT: u16 = 9204;

/// TP-UD octets, less the UDHL octet and the 16-bit port IE (23.040 §9.2.3.24.4: 2 + 4 octets).
const PORT_DATA_OCTETS: usize = 140 - 1 - 6;

/// Binary application data as SMS-SUBMIT parts to 16-bit application port `destination_port`
/// (source port `source_port`): DCS 0x04 (8-bit data, 23.038 §4), every part carrying the port IE
/// 0x05 (23.040 §9.2.3.24.4) and, when the data needs more than one part, a concatenation IE after
/// it (8-bit reference, 5 octets, or 16-bit with `opts.sixteen_bit_reference`, 6 octets;
/// §9.2.3.24.1 and §9.2.3.24.8). One part holds 133 octets; with concatenation 128 (127).
/// `opts` sets TP-SRR, TP-VP and the reference as for [`submits_for_text`], so a resend with the
/// stored reference produces the same parts.
pub fn submits_for_port_data(
    to: &Address,
    destination_port: u16,
    source_port: u16,
    data: &[u8],
    opts: &SubmitOptions,
) -> Result<Vec<Pdu>, PduError> {
    let chunks: Vec<&[u8]> = if data.len() <= PORT_DATA_OCTETS {
        vec![data]
    } else {
        let concat = if opts.sixteen_bit_reference { 6 } else { 5 };
        data.chunks(PORT_DATA_OCTETS - concat).collect()
    };
    let total = u8::try_from(chunks.len()).map_err(|_| PduError::TooManyParts {
        parts: chunks.len(),
    })?;
    let port = InformationElement::Port16 {
        destination: destination_port,
        source: source_port,
    };
    Ok(chunks
        .into_iter()
        .zip(1u8..)
        .map(|(chunk, sequence)| {
            let mut header = vec![port.clone()];
            match (total, opts.sixteen_bit_reference) {
                (1, _) => {}
                (_, true) => header.push(InformationElement::Concat16 {
                    reference: opts.concat_reference,
                    total,
                    sequence,
                }),
                (_, false) => header.push(InformationElement::Concat8 {
                    // Only the low 8 bits travel in an 8-bit reference (as for text).
                    reference: opts.concat_reference as u8,
                    total,
                    sequence,
                }),
            }
            Pdu {
                smsc: None,
                tpdu: Tpdu::Submit(Submit {
                    message_reference: 0,
                    destination: to.clone(),
                    pid: 0,
                    dcs: Dcs::EIGHT_BIT,
                    validity: opts.validity,
                    status_report_request: opts.status_report,
                    reject_duplicates: false,
                    reply_path: false,
                    user_data: UserData {
                        header,
                        body: super::types::Body::Data(chunk.to_vec()),
                    },
                }),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::types::{Body, Direction};
    use proptest::prelude::*;

    /// Decodes every part back (as the SMSC would) and returns (headers, data) per part.
    fn port_parts(pdus: &[Pdu]) -> Vec<(Vec<InformationElement>, Vec<u8>, Submit)> {
        pdus.iter()
            .map(|p| {
                let back = Pdu::decode_hex(&p.to_hex(), Direction::FromMobile).unwrap();
                let Tpdu::Submit(s) = back.tpdu else {
                    panic!("not a submit")
                };
                let Body::Data(d) = s.user_data.body.clone() else {
                    panic!("not 8-bit data")
                };
                (s.user_data.header.clone(), d, s)
            })
            .collect()
    }

    #[test]
    fn port_data_limits_133_128_127_and_options() {
        let to = Address::international("+13125550123").unwrap();
        let opts = SubmitOptions {
            status_report: true,
            validity: Validity::Relative(167),
            concat_reference: 0x1234,
            sixteen_bit_reference: false,
        };
        let one = submits_for_port_data(&to, VCARD_PORT, 0, &[7; 133], &opts).unwrap();
        let parts = port_parts(&one);
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].0,
            vec![InformationElement::Port16 {
                destination: 9204,
                source: 0
            }]
        );
        assert_eq!(parts[0].2.dcs.raw, 0x04);
        assert!(parts[0].2.status_report_request);
        assert_eq!(parts[0].2.validity, Validity::Relative(167));
        // The UDH in hex: UDHL 06, IE 05 len 04, 23F4, 0000.
        assert!(one[0].to_hex().contains("06050423F40000"));

        let two = submits_for_port_data(&to, VCARD_PORT, 0, &[7; 134], &opts).unwrap();
        let parts = port_parts(&two);
        assert_eq!(
            parts.iter().map(|p| p.1.len()).collect::<Vec<_>>(),
            vec![128, 6]
        );
        assert_eq!(
            parts[1].0[1],
            InformationElement::Concat8 {
                reference: 0x34,
                total: 2,
                sequence: 2
            }
        );
        let sixteen = SubmitOptions {
            sixteen_bit_reference: true,
            ..opts
        };
        let parts = port_parts(&submits_for_port_data(&to, 1, 2, &[7; 134], &sixteen).unwrap());
        assert_eq!(
            parts.iter().map(|p| p.1.len()).collect::<Vec<_>>(),
            vec![127, 7]
        );
        assert_eq!(
            parts[0].0,
            vec![
                InformationElement::Port16 {
                    destination: 1,
                    source: 2
                },
                InformationElement::Concat16 {
                    reference: 0x1234,
                    total: 2,
                    sequence: 1
                }
            ]
        );
        assert!(matches!(
            submits_for_port_data(&to, 1, 0, &vec![0; 128 * 256], &opts),
            Err(PduError::TooManyParts { parts: 256 })
        ));
    }

    proptest! {
        /// Any data goes out in parts of at most 140 TP-UD octets that decode and join back to it.
        #[test]
        fn port_data_round_trips(data in proptest::collection::vec(any::<u8>(), 0..600),
                                 reference in any::<u16>(), sixteen in any::<bool>()) {
            let to = Address::international("+441234567890").unwrap();
            let opts = SubmitOptions { concat_reference: reference, sixteen_bit_reference: sixteen,
                                       ..SubmitOptions::default() };
            let pdus = submits_for_port_data(&to, VCARD_PORT, 0, &data, &opts).unwrap();
            let parts = port_parts(&pdus);
            let joined: Vec<u8> = parts.iter().flat_map(|p| p.1.clone()).collect();
            prop_assert_eq!(joined, data);
            for (header, body, _) in &parts {
                let udh = crate::pdu::udh::elements_len(header) + 1;
                prop_assert!(udh + body.len() <= 140);
            }
        }
    }

    #[test]
    fn limits_160_153_70_67() {
        let p = plan(&"a".repeat(160));
        assert_eq!((p.alphabet, p.parts.len()), (Alphabet::Gsm7, 1));
        let p = plan(&"a".repeat(161));
        assert_eq!(p.units, vec![153, 8]);
        let p = plan_with(&"a".repeat(161), true);
        assert_eq!(p.units, vec![152, 9]);
        let p = plan(&"ж".repeat(70));
        assert_eq!((p.alphabet, p.parts.len()), (Alphabet::Ucs2, 1));
        let p = plan(&"ж".repeat(71));
        assert_eq!(p.units, vec![67, 4]);
        let p = plan_with(&"ж".repeat(71), true);
        assert_eq!(p.units, vec![66, 5]);
    }

    #[test]
    fn escape_and_surrogate_pairs_stay_whole() {
        // 152 septets then '€' (2 septets): 154 > 153, so '€' moves to part 2.
        let t = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let p = plan(&t);
        assert_eq!(p.units, vec![152, 12]);
        assert!(p.parts[1].starts_with('€'));
        // 66 units then an emoji (2 units): 68 > 67.
        let t = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        let p = plan(&t);
        assert_eq!(p.units, vec![66, 12]);
        assert_eq!(p.parts.concat(), t);
    }

    #[test]
    fn extension_chars_count_two_for_the_single_limit() {
        assert_eq!(plan(&"€".repeat(80)).parts.len(), 1);
        assert_eq!(plan(&"€".repeat(81)).parts.len(), 2);
    }

    #[test]
    fn single_part_has_no_header_and_multi_parts_do() {
        let to = Address::parse("+15551234567").unwrap();
        let one = submits_for_text(&to, "hi", &SubmitOptions::default()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].to_hex(), "0001000B915155214365F7000002E834");
        let opts = SubmitOptions {
            concat_reference: 0x1234,
            sixteen_bit_reference: true,
            ..Default::default()
        };
        let many = submits_for_text(&to, &"x".repeat(200), &opts).unwrap();
        let Tpdu::Submit(s) = &many[1].tpdu else {
            panic!()
        };
        assert_eq!(s.user_data.concat(), Some((0x1234, 2, 2)));
        let opts = SubmitOptions {
            concat_reference: 0x1234,
            ..Default::default()
        };
        let many = submits_for_text(&to, &"x".repeat(200), &opts).unwrap();
        let Tpdu::Submit(s) = &many[0].tpdu else {
            panic!()
        };
        assert_eq!(s.user_data.concat(), Some((0x34, 2, 1)));
    }

    #[test]
    fn too_many_parts_is_an_error() {
        let to = Address::parse("+15551234567").unwrap();
        let e = submits_for_text(&to, &"x".repeat(153 * 255 + 1), &SubmitOptions::default())
            .unwrap_err();
        assert_eq!(e, PduError::TooManyParts { parts: 256 });
        assert_eq!(
            submits_for_text(&to, &"x".repeat(153 * 255), &SubmitOptions::default())
                .unwrap()
                .len(),
            255
        );
    }
}
