//! Shared lexical rules of AT information text (V.250 §5.7.2, 27.007 §4.1): numbers, quoted strings
//! and the comma-separated parameter list most `+XXX:` answers are made of.
//!
//! The parameter list is lexed once into [`Field`]s and interpreted by each answer's parser, because
//! the interesting decisions in the wild (which form of `+CREG:` is this, is this `+CPMS:` the Nokia
//! empty form) depend on how many fields came and whether they were quoted, not on a fixed grammar.
//! nom error types stay private to the AT module; callers see [`super::AtError`].

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::take_till,
    character::complete::{char, space0},
    combinator::{all_consuming, map},
    multi::separated_list1,
    sequence::{delimited, preceded},
};

/// One parameter of an information response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field<'a> {
    /// `"..."`: the text between the quotes (AT strings have no escapes, 27.007 §4.1).
    Quoted(&'a str),
    /// `(...)`: a parenthesised list from a test command (`AT+CPMS=?`), contents unparsed.
    Paren(&'a str),
    /// Anything else, trimmed; empty for an omitted parameter (`+CMGR: ,,27`).
    Bare(&'a str),
}

impl<'a> Field<'a> {
    /// The text of the field whatever its form.
    pub(crate) fn text(&self) -> &'a str {
        match *self {
            Field::Quoted(s) | Field::Paren(s) | Field::Bare(s) => s,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.text().is_empty()
    }

    pub(crate) fn is_quoted(&self) -> bool {
        matches!(self, Field::Quoted(_))
    }

    /// The field as an unsigned number; quoted numbers are accepted (some firmwares quote them).
    pub(crate) fn uint(&self) -> Option<u32> {
        let t = self.text().trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    }

    /// The field as a signed number (`+CMTI: "SM",-1`, `+QIND: "ccinfo",1,1,-1,…`).
    pub(crate) fn int(&self) -> Option<i64> {
        let t = self.text().trim();
        let digits = t.strip_prefix('-').unwrap_or(t);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    }

    /// The field as text, `None` when omitted or empty.
    pub(crate) fn opt_text(&self) -> Option<String> {
        if self.is_empty() {
            None
        } else {
            Some(self.text().to_owned())
        }
    }
}

fn quoted(input: &str) -> IResult<&str, Field<'_>> {
    map(
        delimited(char('"'), take_till(|c| c == '"'), char('"')),
        Field::Quoted,
    )
    .parse(input)
}

fn paren(input: &str) -> IResult<&str, Field<'_>> {
    map(
        delimited(char('('), take_till(|c| c == ')'), char(')')),
        Field::Paren,
    )
    .parse(input)
}

fn bare(input: &str) -> IResult<&str, Field<'_>> {
    map(take_till(|c| c == ','), |s: &str| Field::Bare(s.trim())).parse(input)
}

fn field(input: &str) -> IResult<&str, Field<'_>> {
    delimited(space0, alt((quoted, paren, bare)), space0).parse(input)
}

/// The parameter list of V.250 §5.7.2 information text: fields separated by commas.
pub(crate) fn field_list(input: &str) -> IResult<&str, Vec<Field<'_>>> {
    separated_list1(char(','), field).parse(input)
}

/// `<prefix>` then optional spaces then the parameter list up to the end of the line.
/// Returns `None` when the prefix does not match or text trails an unterminated field.
pub(crate) fn prefixed_fields<'a>(line: &'a str, prefix: &str) -> Option<Vec<Field<'a>>> {
    let rest = strip_prefix_ci(line, prefix)?;
    all_consuming(preceded(space0, field_list))
        .parse(rest)
        .ok()
        .map(|(_, f)| f)
}

/// Case-insensitive prefix strip: some firmwares answer in lower case (`+cmti:`).
pub(crate) fn strip_prefix_ci<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        line.get(prefix.len()..)
    } else {
        None
    }
}

/// A run of hex digits (PDU lines, `+CRSM` data).
/// PDU lines are most of the bytes a modem sends and this check sits on the digester's hot path,
/// so it tests eight bytes at a time (SWAR) instead of one.
pub(crate) fn is_hex(s: &str) -> bool {
    is_hex_bytes(s.as_bytes())
}

/// [`is_hex`] on bytes.
pub(crate) fn is_hex_bytes(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Per byte, for bytes below 0x80 (checked first, so no addition carries into the next byte):
    // x + (0x80 - lo) has its high bit set iff x >= lo; x + (0x7F - hi) iff x > hi.
    fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
        let ge_lo = x.wrapping_add(ONES * u64::from(0x80 - lo));
        let gt_hi = x.wrapping_add(ONES * u64::from(0x7F - hi));
        ge_lo & !gt_hi & HIGH
    }
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        if x & HIGH != 0 {
            return false;
        }
        let hex = in_range(x, b'0', b'9') | in_range(x | (ONES * 0x20), b'a', b'f');
        if hex != HIGH {
            return false;
        }
    }
    !s.is_empty() && chunks.remainder().iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn hex_check_matches_naive(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            proptest::prop_assert_eq!(is_hex_bytes(&v), !v.is_empty() && v.iter().all(u8::is_ascii_hexdigit));
        }
    }

    #[test]
    fn lexes_mixed_fields() {
        let f = prefixed_fields(r#"+COPS: 0,0,"CHINA, MOBILE",7"#, "+COPS:").unwrap();
        assert_eq!(
            f,
            vec![
                Field::Bare("0"),
                Field::Bare("0"),
                Field::Quoted("CHINA, MOBILE"),
                Field::Bare("7")
            ]
        );
    }

    #[test]
    fn lexes_empty_fields() {
        let f = prefixed_fields("+CPMS: ,,,,,,,,", "+CPMS:").unwrap();
        assert_eq!(f.len(), 9);
        assert!(f.iter().all(Field::is_empty));
    }

    #[test]
    fn lexes_parens() {
        let f = prefixed_fields(r#"+CPMS: ("SM","ME"),(),("SM")"#, "+CPMS:").unwrap();
        assert_eq!(
            f,
            vec![
                Field::Paren(r#""SM","ME""#),
                Field::Paren(""),
                Field::Paren(r#""SM""#)
            ]
        );
    }

    #[test]
    fn hex_check() {
        assert!(is_hex("0123456789abcdefABCDEF"));
        for bad in ["", "0G", "g", "0x", " 0", "@", "`", "/", ":", "\u{0}"] {
            assert!(!is_hex(bad), "{bad:?}");
        }
        for b in 0..=255u8 {
            assert_eq!(is_hex_bytes(&[b]), b.is_ascii_hexdigit(), "{b}");
            // Every byte value at every position of a word-sized run.
            for pos in 0..9 {
                let mut v = b"0123456789aBcDeF0".to_vec();
                v[pos] = b;
                assert_eq!(is_hex_bytes(&v), b.is_ascii_hexdigit(), "{b} at {pos}");
            }
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(Field::Bare("-1").int(), Some(-1));
        assert_eq!(Field::Bare("-").int(), None);
        assert_eq!(Field::Quoted("12").uint(), Some(12));
        assert_eq!(Field::Bare("1a").uint(), None);
        assert_eq!(Field::Bare("99999999999").uint(), None);
    }

    #[test]
    fn prefix_is_case_insensitive_and_safe_on_short_or_multibyte_lines() {
        assert_eq!(strip_prefix_ci("+cmti: x", "+CMTI:"), Some(" x"));
        assert_eq!(strip_prefix_ci("+CM", "+CMTI:"), None);
        assert_eq!(strip_prefix_ci("+CMé€€€", "+CMTI:"), None);
    }
}
