//! The user data header (23.040 §9.2.3.24): a list of information elements, each
//! `<IEI><IEDL><data>`. Owns the IE ⇄ octet mapping; where the header sits inside TP-UD (UDHL, fill
//! bits) is the business of `decode`/`encode`.
//!
//! Unknown IEs are skipped by their length and kept as `Other` (CD test/parse.c has a real UDH with
//! IEI 0x07 before the concatenation IE). A known IEI with the wrong length is also kept as `Other`
//! rather than failing the message, since the text is still readable. An IE whose length runs past
//! the header is an error: nothing after it can be trusted.

use super::error::PduError;
use super::types::InformationElement;

/// Parses the header octets (after UDHL). `offset` is the octet offset of the first of them in
/// the whole PDU, for error messages.
pub fn parse_header(mut data: &[u8], offset: usize) -> Result<Vec<InformationElement>, PduError> {
    let total = data.len();
    let mut out = Vec::with_capacity(2);
    while let [iei, rest @ ..] = data {
        let at = offset + (total - data.len());
        let Some((&len, rest)) = rest.split_first() else {
            return Err(PduError::Truncated {
                field: "user data header element",
                offset: at,
            });
        };
        let len = usize::from(len);
        let Some(body) = rest.get(..len) else {
            return Err(PduError::Invalid {
                field: "user data header element",
                offset: at,
                detail: format!("IE 0x{iei:02X} length {len} runs past the header"),
            });
        };
        out.push(element(*iei, body));
        data = &rest[len..];
    }
    Ok(out)
}

/// One IE from its identifier and data.
fn element(iei: u8, d: &[u8]) -> InformationElement {
    match (iei, d) {
        (0x00, &[reference, total, sequence]) => InformationElement::Concat8 {
            reference,
            total,
            sequence,
        },
        (0x08, &[r1, r2, total, sequence]) => InformationElement::Concat16 {
            reference: u16::from_be_bytes([r1, r2]),
            total,
            sequence,
        },
        (0x04, &[destination, source]) => InformationElement::Port8 {
            destination,
            source,
        },
        (0x05, &[d1, d2, s1, s2]) => InformationElement::Port16 {
            destination: u16::from_be_bytes([d1, d2]),
            source: u16::from_be_bytes([s1, s2]),
        },
        _ => InformationElement::Other {
            iei,
            data: d.to_vec(),
        },
    }
}

/// Appends the IEs (without UDHL). An `Other` IE longer than 255 octets is cut to 255.
pub fn write_elements(ies: &[InformationElement], out: &mut Vec<u8>) {
    for ie in ies {
        match ie {
            InformationElement::Concat8 {
                reference,
                total,
                sequence,
            } => {
                out.extend_from_slice(&[0x00, 3, *reference, *total, *sequence]);
            }
            InformationElement::Concat16 {
                reference,
                total,
                sequence,
            } => {
                let [r1, r2] = reference.to_be_bytes();
                out.extend_from_slice(&[0x08, 4, r1, r2, *total, *sequence]);
            }
            InformationElement::Port8 {
                destination,
                source,
            } => {
                out.extend_from_slice(&[0x04, 2, *destination, *source]);
            }
            InformationElement::Port16 {
                destination,
                source,
            } => {
                out.extend_from_slice(&[0x05, 4]);
                out.extend_from_slice(&destination.to_be_bytes());
                out.extend_from_slice(&source.to_be_bytes());
            }
            InformationElement::Other { iei, data } => {
                let d = data.get(..255).unwrap_or(data);
                out.push(*iei);
                out.push(d.len() as u8);
                out.extend_from_slice(d);
            }
        }
    }
}

/// Octets of the header elements (without UDHL).
pub fn elements_len(ies: &[InformationElement]) -> usize {
    ies.iter()
        .map(|ie| match ie {
            InformationElement::Concat8 { .. } => 5,
            InformationElement::Concat16 { .. } => 6,
            InformationElement::Port8 { .. } => 4,
            InformationElement::Port16 { .. } => 6,
            InformationElement::Other { data, .. } => 2 + data.len().min(255),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use InformationElement::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // docs/pdu.md, "User data header": [PGM TestUdhConcatenation, TestUdhPortAddress] and [CD
    // test/parse.c "Ufone"].
    #[test]
    fn udh_vectors() {
        for (hex, ie) in [
            (
                "0003170301",
                Concat8 {
                    reference: 23,
                    total: 3,
                    sequence: 1,
                },
            ),
            (
                "080401800402",
                Concat16 {
                    reference: 384,
                    total: 4,
                    sequence: 2,
                },
            ),
            (
                "04026432",
                Port8 {
                    destination: 100,
                    source: 50,
                },
            ),
            (
                "050404D21466",
                Port16 {
                    destination: 1234,
                    source: 5222,
                },
            ),
            (
                "050423F40000",
                Port16 {
                    destination: 9204,
                    source: 0,
                },
            ),
        ] {
            assert_eq!(parse_header(&h(hex), 0).unwrap(), vec![ie.clone()], "{hex}");
            let mut out = vec![];
            write_elements(std::slice::from_ref(&ie), &mut out);
            assert_eq!(out, h(hex));
            assert_eq!(elements_len(&[ie]), out.len());
        }
        assert_eq!(
            parse_header(&h("0701030003990202"), 0).unwrap(),
            vec![
                Other {
                    iei: 7,
                    data: vec![3]
                },
                Concat8 {
                    reference: 0x99,
                    total: 2,
                    sequence: 2
                }
            ]
        );
    }

    #[test]
    fn ie_past_header_is_an_error_with_offset() {
        let e = parse_header(&h("0003170301000520"), 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid user data header element at octet 15: IE 0x00 length 5 runs past the header"
        );
        assert!(matches!(
            parse_header(&h("00"), 4),
            Err(PduError::Truncated { offset: 4, .. })
        ));
    }

    #[test]
    fn known_iei_with_wrong_length_is_kept() {
        assert_eq!(
            parse_header(&h("000217FF"), 0).unwrap(),
            vec![Other {
                iei: 0,
                data: vec![0x17, 0xFF]
            }]
        );
    }
}
