//! The GSM 7-bit default alphabet and its extension table (3GPP 23.038 §6.2.1 and §6.2.1.1), and
//! septet packing (23.038 §6.1.2.1.1: septets packed LSB-first into octets).
//!
//! Owns only the character mapping and the bit packing; user data length, UDH fill bits and DCS
//! handling belong to `decode`/`encode`. National language shift tables (UDH IE 0x24/0x25) are not
//! implemented: such messages decode with the default tables.
//!
//! Decoding never fails: an escape (0x1B) followed by a septet that the extension table does not
//! define shows the default-table character of that septet, as 23.038 §6.2.1.1 requires; ESC ESC
//! (reserved for a further extension table) and a dangling ESC at the very end show a space.

/// The default alphabet, indexed by septet (23.038 §6.2.1). 0x1B is the escape to the extension
/// table; the space stored there is what a lone escape displays as.
const DEFAULT_TABLE: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ' ', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// Runtime lookups go through statics: indexing a `const` array with a runtime index copies the
/// whole array onto the stack at every use, which cost more than the decoding itself.
static DEFAULT: [char; 128] = DEFAULT_TABLE;

/// The escape septet that selects the extension table for the next septet.
pub const ESC: u8 = 0x1B;

/// The extension table (23.038 §6.2.1.1): (septet after ESC, character).
const EXTENSION_TABLE: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

static EXTENSION: [(u8, char); 10] = EXTENSION_TABLE;

/// No mapping in `ASCII_ENC`.
const NONE: u8 = 0xFF;
/// Flag in `ASCII_ENC`: the septet belongs to the extension table.
const EXT_FLAG: u8 = 0x80;

/// ASCII code point → septet (or `EXT_FLAG | septet`, or `NONE`), derived from the tables at
/// compile time so the two directions cannot drift apart.
static ASCII_ENC: [u8; 128] = {
    let mut t = [NONE; 128];
    let mut i = 0;
    while i < 128 {
        let c = DEFAULT_TABLE[i] as u32;
        if c < 128 && i != ESC as usize {
            t[c as usize] = i as u8;
        }
        i += 1;
    }
    let mut j = 0;
    while j < EXTENSION_TABLE.len() {
        let c = EXTENSION_TABLE[j].1 as u32;
        if c < 128 {
            t[c as usize] = EXT_FLAG | EXTENSION_TABLE[j].0;
        }
        j += 1;
    }
    t
};

/// How one character is written in GSM 7-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gsm7Char {
    /// One septet of the default table.
    Basic(u8),
    /// ESC followed by this septet of the extension table (costs two septets).
    Extended(u8),
}

impl Gsm7Char {
    /// Septets this character occupies.
    #[allow(clippy::len_without_is_empty)] // a character is never empty
    pub fn len(self) -> usize {
        match self {
            Gsm7Char::Basic(_) => 1,
            Gsm7Char::Extended(_) => 2,
        }
    }
}

/// The GSM 7-bit form of `c`, or `None` when neither table has it.
pub fn encode_char(c: char) -> Option<Gsm7Char> {
    let code = c as u32;
    if code < 128 {
        // `code < 128` bounds the index.
        let v = ASCII_ENC[code as usize];
        return match v {
            NONE => None,
            v if v & EXT_FLAG != 0 => Some(Gsm7Char::Extended(v & 0x7F)),
            v => Some(Gsm7Char::Basic(v)),
        };
    }
    if c == '€' {
        return Some(Gsm7Char::Extended(0x65));
    }
    DEFAULT
        .iter()
        .position(|&d| d == c)
        .map(|i| Gsm7Char::Basic(i as u8))
}

/// Septets `text` needs in GSM 7-bit, or `None` if some character is in neither table.
pub fn septet_len(text: &str) -> Option<usize> {
    text.chars()
        .map(|c| encode_char(c).map(Gsm7Char::len))
        .sum()
}

/// Appends the septets of `text` to `out`; characters outside both tables become `?` when
/// `lossy`, otherwise the first such character is returned as the error.
pub fn text_to_septets(text: &str, lossy: bool, out: &mut Vec<u8>) -> Result<(), char> {
    for c in text.chars() {
        match encode_char(c) {
            Some(Gsm7Char::Basic(s)) => out.push(s),
            Some(Gsm7Char::Extended(s)) => {
                out.push(ESC);
                out.push(s);
            }
            None if lossy => out.push(0x3F),
            None => return Err(c),
        }
    }
    Ok(())
}

/// The extension-table character for the septet after an escape, following 23.038 §6.2.1.1 for
/// septets the table does not define (see the module comment).
fn extension_char(septet: u8) -> char {
    if septet == ESC {
        return ' ';
    }
    for &(s, c) in &EXTENSION {
        if s == septet {
            return c;
        }
    }
    default_char(septet)
}

/// The default-table character of a septet (the high bit is ignored).
pub fn default_char(septet: u8) -> char {
    DEFAULT[(septet & 0x7F) as usize]
}

/// Turns septets into text, resolving escapes. Never fails.
pub fn septets_to_string(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut esc = false;
    for &s in septets {
        push_septet(&mut out, &mut esc, s);
    }
    if esc {
        out.push(' ');
    }
    out
}

#[inline]
fn push_septet(out: &mut String, esc: &mut bool, s: u8) {
    if *esc {
        out.push(extension_char(s));
        *esc = false;
    } else if s == ESC {
        *esc = true;
    } else {
        // Masked to 0..128, the table's length.
        out.push(DEFAULT[usize::from(s & 0x7F)]);
    }
}

/// Packs septets LSB-first after `fill_bits` zero bits (0–6; the fill after a UDH, 23.040
/// §9.2.3.24). Returns the number of octets written.
pub fn pack(septets: &[u8], fill_bits: u8, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    let mut acc: u32 = 0;
    let mut nbits: u32 = u32::from(fill_bits % 8);
    for &s in septets {
        acc |= u32::from(s & 0x7F) << nbits;
        nbits += 7;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        out.push(acc as u8);
    }
    out.len() - start
}

/// Unpacks up to `max` septets from `data`, skipping the first `fill_bits` bits (0–7), calling `f`
/// for each. Stops early when the data runs out (a UDL larger than the data is tolerated:
/// docs/pdu.md, "What real networks and modems send"). Returns the number of septets produced.
///
/// Septets are read eight at a time: the 56 bits of eight septets (plus the fill) sit in at most
/// eight octets, loaded as one little-endian word. This keeps the loop free of per-septet bounds
/// checks, which matters for the decode rate.
#[inline]
pub fn unpack_with(data: &[u8], fill_bits: u8, max: usize, mut f: impl FnMut(u8)) -> usize {
    let fill = u32::from(fill_bits % 8);
    let available = (data.len() * 8).saturating_sub(fill as usize) / 7;
    let count = max.min(available);
    let mut produced = 0;
    let mut group = 0;
    while produced < count {
        let start = group * 7;
        let mut word = [0u8; 8];
        let chunk = data.get(start..(start + 8).min(data.len())).unwrap_or(&[]);
        // `chunk` is at most 8 octets long by the range above.
        word[..chunk.len()].copy_from_slice(chunk);
        let mut bits = u64::from_le_bytes(word) >> fill;
        for _ in 0..8.min(count - produced) {
            f((bits & 0x7F) as u8);
            bits >>= 7;
        }
        produced += 8.min(count - produced);
        group += 1;
    }
    count
}

/// Unpacks septets into a vector (see [`unpack_with`]).
pub fn unpack(data: &[u8], fill_bits: u8, max: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(max.min(data.len() * 8 / 7 + 1));
    unpack_with(data, fill_bits, max, |s| v.push(s));
    v
}

/// Unpacks and decodes in one pass without an intermediate septet buffer (the decoder's hot path).
pub fn unpack_to_string(data: &[u8], fill_bits: u8, max: usize) -> String {
    let n = max.min(data.len() * 8 / 7 + 1);
    let mut out = String::with_capacity(n + n / 4);
    let mut esc = false;
    unpack_with(data, fill_bits, max, |s| push_septet(&mut out, &mut esc, s));
    if esc {
        out.push(' ');
    }
    out
}

/// Packs `text` into GSM 7-bit octets (no fill), or returns the first character not in the
/// tables. Returns (octets, septet count).
pub fn encode_text(text: &str) -> Result<(Vec<u8>, usize), char> {
    let mut septets = Vec::with_capacity(text.len());
    text_to_septets(text, false, &mut septets)?;
    let mut out = Vec::with_capacity(septets.len() * 7 / 8 + 1);
    pack(&septets, 0, &mut out);
    Ok((out, septets.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    // Packing vectors: docs/pdu.md, "The GSM 7-bit default alphabet" [PGM TestGsm7].
    #[test]
    fn packs_known_vectors() {
        for (text, packed) in [
            ("Hello World!", "C8329BFD065DDF72363904"),
            ("123", "31D90C"),
            ("[{abc}]~", "1BDE0615168F37A98D6FD303"),
        ] {
            let (octets, n) = encode_text(text).unwrap();
            assert_eq!(hex(&octets), packed, "{text}");
            let back = unpack_to_string(&octets, 0, n);
            assert_eq!(back, text);
        }
    }

    #[test]
    fn extension_chars_cost_two() {
        assert_eq!(septet_len("€[]"), Some(6));
        assert_eq!(septet_len("abc"), Some(3));
        assert_eq!(septet_len("a😀"), None);
        assert_eq!(septet_len("`"), None);
    }

    #[test]
    fn every_table_char_round_trips() {
        for (i, &c) in DEFAULT.iter().enumerate() {
            if i == ESC as usize {
                continue;
            }
            assert_eq!(encode_char(c), Some(Gsm7Char::Basic(i as u8)), "{c:?}");
        }
        for &(s, c) in &EXTENSION {
            assert_eq!(encode_char(c), Some(Gsm7Char::Extended(s)));
        }
    }

    // 23.038 §6.2.1.1: an undefined extension septet shows the default-table character.
    #[test]
    fn unknown_escape_shows_base_char_and_esc_esc_a_space() {
        assert_eq!(septets_to_string(&[ESC, 0x41]), "A");
        assert_eq!(septets_to_string(&[ESC, ESC, 0x41]), " A");
        assert_eq!(septets_to_string(&[0x41, ESC]), "A ");
    }

    #[test]
    fn fill_bits_shift_the_text() {
        let mut out = vec![];
        pack(&[0x41, 0x42], 1, &mut out);
        assert_eq!(unpack(&out, 1, 2), vec![0x41, 0x42]);
    }

    #[test]
    fn unpack_stops_when_data_runs_out() {
        assert_eq!(unpack(&[0xC8, 0x32], 0, 100).len(), 2);
        assert!(unpack(&[], 3, 10).is_empty());
    }
}
