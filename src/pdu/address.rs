//! SMS addresses: TP-OA / TP-DA / TP-RA (23.040 §9.1.2.5) and the RP-layer SMSC address that
//! prefixes PDUs exchanged with a modem (27.005 §3.1, "SMSC prefix").
//!
//! Owns the value type and its octet forms; the nom parsers that read them live in `decode`.
//! Decoding a number never fails on odd digits: semi-octets A–E are `* # a b c` (23.040 §9.1.2.3)
//! and a stray F filler inside the digits is skipped, because senders in the wild get this wrong and
//! losing the message over it would be worse. Alphanumeric addresses (TON 101) are GSM 7-bit packed
//! and their length octet counts semi-octets, like numeric ones (docs/pdu.md, "Addresses").

use std::fmt;

use super::error::PduError;
use super::gsm7;

/// Type of number, bits 6–4 of the type-of-address octet (23.040 §9.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeOfNumber {
    Unknown,
    International,
    National,
    NetworkSpecific,
    Subscriber,
    Alphanumeric,
    Abbreviated,
    Reserved,
}

impl TypeOfNumber {
    /// From the three TON bits (already shifted down).
    pub fn from_bits(bits: u8) -> TypeOfNumber {
        match bits & 0x07 {
            0 => TypeOfNumber::Unknown,
            1 => TypeOfNumber::International,
            2 => TypeOfNumber::National,
            3 => TypeOfNumber::NetworkSpecific,
            4 => TypeOfNumber::Subscriber,
            5 => TypeOfNumber::Alphanumeric,
            6 => TypeOfNumber::Abbreviated,
            _ => TypeOfNumber::Reserved,
        }
    }

    /// The three TON bits (not shifted).
    pub fn bits(self) -> u8 {
        match self {
            TypeOfNumber::Unknown => 0,
            TypeOfNumber::International => 1,
            TypeOfNumber::National => 2,
            TypeOfNumber::NetworkSpecific => 3,
            TypeOfNumber::Subscriber => 4,
            TypeOfNumber::Alphanumeric => 5,
            TypeOfNumber::Abbreviated => 6,
            TypeOfNumber::Reserved => 7,
        }
    }

    /// Lower-case name used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            TypeOfNumber::Unknown => "unknown",
            TypeOfNumber::International => "international",
            TypeOfNumber::National => "national",
            TypeOfNumber::NetworkSpecific => "network_specific",
            TypeOfNumber::Subscriber => "subscriber",
            TypeOfNumber::Alphanumeric => "alphanumeric",
            TypeOfNumber::Abbreviated => "abbreviated",
            TypeOfNumber::Reserved => "reserved",
        }
    }
}

/// Numbering plan identification for E.164 ("ISDN/telephone").
pub const NPI_ISDN: u8 = 1;
/// Longest address value: 10 octets = 20 digits (23.040 §9.1.2.5).
pub const MAX_DIGITS: usize = 20;
/// Longest alphanumeric address: 10 octets hold 11 septets.
pub const MAX_ALNUM_SEPTETS: usize = 11;

/// An SMS address. `number` holds the digits without a `+` for international numbers (the `+`
/// is implied by the TON and added by `Display`), `* # a b c` for semi-octets A–E, or the text of
/// an alphanumeric sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub number: String,
    pub ton: TypeOfNumber,
    pub npi: u8,
}

fn is_digit_char(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#')
}

impl Address {
    /// "+15551234567" → International/ISDN; "5551234" (digits, `*`, `#`) → Unknown/ISDN; anything
    /// else → Alphanumeric (GSM 7-bit, at most 11 septets).
    pub fn parse(s: &str) -> Result<Address, PduError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(bad(s, "empty address"));
        }
        if t.starts_with('+') {
            return Address::international(t);
        }
        if t.chars().all(is_digit_char) {
            if t.len() > MAX_DIGITS {
                return Err(bad(s, "more than 20 digits"));
            }
            return Ok(Address {
                number: t.to_string(),
                ton: TypeOfNumber::Unknown,
                npi: NPI_ISDN,
            });
        }
        Address::alphanumeric(t)
    }

    /// An international number written with a leading `+` and 1–20 digits.
    pub fn international(digits_with_plus: &str) -> Result<Address, PduError> {
        let t = digits_with_plus.trim();
        let digits = t
            .strip_prefix('+')
            .ok_or_else(|| bad(digits_with_plus, "international number must start with +"))?;
        if digits.is_empty() || !digits.chars().all(is_digit_char) {
            return Err(bad(digits_with_plus, "expected digits after +"));
        }
        if digits.len() > MAX_DIGITS {
            return Err(bad(digits_with_plus, "more than 20 digits"));
        }
        Ok(Address {
            number: digits.to_string(),
            ton: TypeOfNumber::International,
            npi: NPI_ISDN,
        })
    }

    /// A national-format number (TON 010, ISDN plan).
    pub fn national(digits: &str) -> Result<Address, PduError> {
        if digits.is_empty() || !digits.chars().all(is_digit_char) || digits.len() > MAX_DIGITS {
            return Err(bad(digits, "expected 1-20 digits"));
        }
        Ok(Address {
            number: digits.to_string(),
            ton: TypeOfNumber::National,
            npi: NPI_ISDN,
        })
    }

    /// An alphanumeric sender ID (TON 101, NPI 0), at most 11 GSM 7-bit septets.
    pub fn alphanumeric(text: &str) -> Result<Address, PduError> {
        match gsm7::septet_len(text) {
            None => Err(bad(
                text,
                "alphanumeric address outside the GSM 7-bit alphabet",
            )),
            Some(0) => Err(bad(text, "empty address")),
            Some(n) if n > MAX_ALNUM_SEPTETS => {
                Err(bad(text, "alphanumeric address longer than 11 septets"))
            }
            Some(_) => Ok(Address {
                number: text.to_string(),
                ton: TypeOfNumber::Alphanumeric,
                npi: 0,
            }),
        }
    }

    /// The type-of-address octet: bit 7 set, TON in bits 6–4, NPI in bits 3–0.
    pub fn toa(&self) -> u8 {
        0x80 | (self.ton.bits() << 4) | (self.npi & 0x0F)
    }

    /// Appends the TP address form: semi-octet count, TOA, value (23.040 §9.1.2.5).
    pub(crate) fn encode_tp(&self, out: &mut Vec<u8>) {
        if self.ton == TypeOfNumber::Alphanumeric {
            let mut septets = Vec::with_capacity(self.number.len());
            // Lossy: an address built by hand with unencodable text still yields a well-formed field.
            let _ = gsm7::text_to_septets(&self.number, true, &mut septets);
            septets.truncate(MAX_ALNUM_SEPTETS);
            let len_at = out.len();
            out.push(0);
            out.push(self.toa());
            let octets = gsm7::pack(&septets, 0, out);
            let semi = (septets.len() * 7).div_ceil(4).min(octets * 2);
            if let Some(l) = out.get_mut(len_at) {
                *l = semi as u8;
            }
        } else {
            let digits = self.digit_nibbles();
            out.push(digits.len() as u8);
            out.push(self.toa());
            push_bcd(&digits, out);
        }
    }

    /// Appends the RP/SMSC form: octet count (TOA included), TOA, BCD value (27.005 §3.1).
    pub(crate) fn encode_smsc(&self, out: &mut Vec<u8>) {
        let digits = self.digit_nibbles();
        out.push((1 + digits.len().div_ceil(2)) as u8);
        out.push(self.toa());
        push_bcd(&digits, out);
    }

    /// Semi-octet values of the number (at most 20).
    fn digit_nibbles(&self) -> Vec<u8> {
        self.number
            .chars()
            .filter_map(nibble_of)
            .take(MAX_DIGITS)
            .collect()
    }
}

fn bad(input: &str, detail: &'static str) -> PduError {
    PduError::BadAddress {
        input: input.to_string(),
        detail,
    }
}

/// Semi-octet value of an address character (23.040 §9.1.2.3).
fn nibble_of(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(0xA),
        '#' => Some(0xB),
        'a' | 'A' => Some(0xC),
        'b' | 'B' => Some(0xD),
        'c' | 'C' => Some(0xE),
        _ => None,
    }
}

/// Character of a semi-octet; F (filler) has none.
pub(crate) fn char_of_nibble(n: u8) -> Option<char> {
    match n {
        0..=9 => Some((b'0' + n) as char),
        0xA => Some('*'),
        0xB => Some('#'),
        0xC => Some('a'),
        0xD => Some('b'),
        0xE => Some('c'),
        _ => None,
    }
}

/// Nibble-swapped BCD with an F filler for an odd count.
fn push_bcd(digits: &[u8], out: &mut Vec<u8>) {
    for pair in digits.chunks(2) {
        let lo = pair.first().copied().unwrap_or(0xF);
        let hi = pair.get(1).copied().unwrap_or(0xF);
        out.push((hi << 4) | lo);
    }
}

/// Reads `count` semi-octets of nibble-swapped BCD; never fails (see the module comment).
pub(crate) fn bcd_digits(octets: &[u8], count: usize) -> String {
    let mut s = String::with_capacity(count);
    for (i, &b) in octets.iter().enumerate() {
        for (j, n) in [b & 0x0F, b >> 4].into_iter().enumerate() {
            if i * 2 + j >= count {
                return s;
            }
            if let Some(c) = char_of_nibble(n) {
                s.push(c);
            }
        }
    }
    s
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ton == TypeOfNumber::International && !self.number.starts_with('+') {
            write!(f, "+{}", self.number)
        } else {
            f.write_str(&self.number)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(a: &Address) -> String {
        let mut v = vec![];
        a.encode_tp(&mut v);
        v.iter().map(|x| format!("{x:02X}")).collect()
    }

    // docs/pdu.md, "Addresses" [PGM TestSmsPduAddressFields].
    #[test]
    fn address_vectors() {
        assert_eq!(
            tp(&Address::parse("+27829135934").unwrap()),
            "0B917228195339F4"
        );
        assert_eq!(
            tp(&Address::national("0129998765").unwrap()),
            "0AA11092997856"
        );
        assert_eq!(tp(&Address::parse("abc").unwrap()), "06D061F118");
        assert_eq!(
            tp(&Address::parse("FRANCOIS").unwrap()),
            "0ED04669D0397C26A7"
        );
    }

    // docs/pdu.md, "Layout" [PGM TestSmsPduSmscFields].
    #[test]
    fn smsc_vector() {
        let mut v = vec![];
        Address::parse("+2782913593").unwrap().encode_smsc(&mut v);
        assert_eq!(v, vec![0x06, 0x91, 0x72, 0x28, 0x19, 0x53, 0x39]);
    }

    #[test]
    fn parse_classifies() {
        let a = Address::parse("+15551234567").unwrap();
        assert_eq!(
            (a.ton, a.npi, a.to_string()),
            (TypeOfNumber::International, 1, "+15551234567".into())
        );
        let a = Address::parse("5551234").unwrap();
        assert_eq!(
            (a.ton, a.to_string()),
            (TypeOfNumber::Unknown, "5551234".into())
        );
        assert_eq!(
            Address::parse("Megafon").unwrap().ton,
            TypeOfNumber::Alphanumeric
        );
        assert!(Address::parse("").is_err());
        assert!(Address::parse("+").is_err());
        assert!(Address::parse("+12a").is_err());
        assert!(Address::parse("123456789012345678901").is_err());
        assert!(Address::parse("TwelveLetter").is_err());
        assert!(Address::parse("😀").is_err());
    }

    #[test]
    fn nibbles_a_to_e_decode() {
        assert_eq!(bcd_digits(&[0xBA, 0xDC, 0xFE], 6), "*#abc");
        assert_eq!(bcd_digits(&[0x21, 0xF3], 4), "123");
    }
}
