//! UCS-2 user data (23.038 §6.2.3), read and written as UTF-16 big-endian: characters outside the
//! BMP (emoji) travel as surrogate pairs, which every current handset displays, although 23.038
//! only names UCS-2 (docs/pdu.md, "Lengths and segmentation", names the peers' bugs this avoids).
//!
//! Decoding never fails: a lone surrogate becomes U+FFFD, and so does a dangling odd final octet
//! (seen when a UDL counts one octet too many or a modem truncates the data).

/// UTF-16 code units `text` needs.
pub fn unit_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Appends `text` as UTF-16BE.
pub fn encode_into(text: &str, out: &mut Vec<u8>) {
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
}

/// `text` as UTF-16BE octets.
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 2);
    encode_into(text, &mut out);
    out
}

/// Decodes UTF-16BE octets, replacing what is not valid UTF-16 with U+FFFD. A hand-written loop
/// rather than `char::decode_utf16`, because this is on the decoder's hot path.
pub fn decode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() + data.len() / 2);
    // `chunks_exact(2)` yields two-octet slices only, so both indexes exist.
    let mut units = data
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .peekable();
    while let Some(u) = units.next() {
        let c = match u {
            0xD800..=0xDBFF => match units.peek() {
                Some(&lo @ 0xDC00..=0xDFFF) => {
                    units.next();
                    let cp = 0x10000 + ((u32::from(u) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                    char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER)
                }
                _ => char::REPLACEMENT_CHARACTER,
            },
            0xDC00..=0xDFFF => char::REPLACEMENT_CHARACTER,
            // Not a surrogate, so always a scalar value.
            _ => char::from_u32(u32::from(u)).unwrap_or(char::REPLACEMENT_CHARACTER),
        };
        out.push(c);
    }
    if data.len() % 2 == 1 {
        out.push(char::REPLACEMENT_CHARACTER);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_is_a_surrogate_pair() {
        let b = encode("a😀");
        assert_eq!(b, vec![0x00, 0x61, 0xD8, 0x3D, 0xDE, 0x00]);
        assert_eq!(decode(&b), "a😀");
        assert_eq!(unit_len("a😀"), 3);
    }

    #[test]
    fn lone_surrogate_and_odd_octet_become_replacement() {
        assert_eq!(decode(&[0xD8, 0x3D, 0x00, 0x61]), "\u{FFFD}a");
        assert_eq!(decode(&[0x00, 0x61, 0x00]), "a\u{FFFD}");
        assert_eq!(decode(&[]), "");
        assert_eq!(decode(&[0xDC, 0x00, 0xD8, 0x3D]), "\u{FFFD}\u{FFFD}");
        assert_eq!(decode(&[0xD8, 0x3D, 0xD8, 0x3D, 0xDE, 0x00]), "\u{FFFD}😀");
    }
}
