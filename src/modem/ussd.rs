//! USSD as the modem layer offers it (3GPP TS 27.007 §7.15, `AT+CUSD`): the operations a caller
//! asks for ([`UssdOp`]), the network's answer ([`UssdAnswer`]) and its failures ([`UssdError`]),
//! and the text forms modems use for `<str>`. The actor's side (the command, the wait for the
//! `+CUSD` URC) is `actor/ussd.rs`; this file is pure.
//!
//! The forms of `<str>` in `+CUSD: <m>,<str>,<dcs>` (docs/modems.md, "USSD"):
//! - plain text in the TE character set (`AT+CSCS="GSM"`), most modems, `<dcs>` 15;
//! - UCS-2 as hex when `<dcs>` says UCS-2 (the Cell Broadcast DCS of 3GPP TS 23.038 §5, e.g. 72 =
//!   0x48: general data coding, UCS-2), which no 8-bit character set can carry;
//! - Huawei sticks: hex of the packed GSM 7-bit septets even for `<dcs>` 15, whatever `AT+CSCS`
//!   says (Gammu's `F_ENCODED_USSD`; ModemManager's Huawei plugin packs its requests the same
//!   way), so the request is sent packed too. Packing is 3GPP TS 23.038 §6.1.2.3.1: 7 spare bits
//!   at the end are a CR, which is dropped.
//!
//! Which form applies is decided by the profile (`packed_hex`) and the DCS, not guessed from the
//! text: a plain answer "1234" is hex-looking too.

use std::time::Duration;

use thiserror::Error;

use super::error::CommandError;
use crate::pdu::{gsm7, hex_to_bytes, to_hex, ucs2};

/// What to ask the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UssdOp {
    /// Start a session with a code such as `*100#`.
    Send(String),
    /// Answer the menu of an open session (`+CUSD: 1`), e.g. `2`.
    Reply(String),
    /// End the open session (`AT+CUSD=2`).
    Cancel,
}

/// Where the session stands after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UssdState {
    /// `+CUSD: 0`: the answer is final.
    Done,
    /// `+CUSD: 1`: the network waits for a reply (a menu).
    Menu,
    /// `AT+CUSD=2` was accepted.
    Cancelled,
}

impl UssdState {
    pub fn name(self) -> &'static str {
        match self {
            UssdState::Done => "done",
            UssdState::Menu => "menu",
            UssdState::Cancelled => "cancelled",
        }
    }
}

/// The network's answer, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UssdAnswer {
    pub state: UssdState,
    pub text: String,
    /// `<dcs>` as the modem gave it.
    pub dcs: Option<u16>,
}

/// Why a USSD operation gave no answer.
#[derive(Debug, Error)]
pub enum UssdError {
    /// The code or reply cannot be sent as given.
    #[error("invalid USSD string: {0}")]
    Invalid(String),
    /// `AT+CUSD` itself failed, or the modem is unavailable.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// `+CUSD: 2`: the network ended the session.
    #[error("the network ended the USSD session (+CUSD: 2){}", detail(.text))]
    Terminated { text: String },
    /// `+CUSD: 3`: another client on the modem answered.
    #[error("another client on the modem answered the USSD session (+CUSD: 3)")]
    OtherClient,
    /// `+CUSD: 4`: the network or modem does not support the operation.
    #[error("the network does not support this USSD request (+CUSD: 4){}", detail(.text))]
    NotSupported { text: String },
    /// `+CUSD: 5`: the network timed out.
    #[error("the network timed out the USSD session (+CUSD: 5)")]
    NetworkTimeout,
    /// A newer USSD request on the same modem took over before the answer came.
    #[error("a newer USSD request on this modem took over before the network answered")]
    Superseded,
    /// No `+CUSD` within the caller's time limit.
    #[error("no USSD answer within {after:?}")]
    Timeout { after: Duration },
}

fn detail(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The alphabet of a Cell Broadcast / USSD data coding scheme (3GPP TS 23.038 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UssdAlphabet {
    Gsm7,
    EightBit,
    Ucs2,
    /// 0x11: UCS-2 preceded by a two-character language indication (TS 23.038 §5).
    Ucs2WithLanguage,
}

/// The alphabet `dcs` selects; reserved values read as GSM 7-bit, as TS 23.038 §5 tells a
/// receiver to.
pub fn alphabet(dcs: u16) -> UssdAlphabet {
    let d = (dcs & 0xFF) as u8;
    match d >> 4 {
        // 0000, 0010, 0011: languages in GSM 7-bit.
        0x0 | 0x2 | 0x3 => UssdAlphabet::Gsm7,
        0x1 => match d & 0x0F {
            0x1 => UssdAlphabet::Ucs2WithLanguage,
            _ => UssdAlphabet::Gsm7,
        },
        // 01xx: general data coding; bits 3–2 the alphabet.
        0x4..=0x7 => match (d >> 2) & 0x03 {
            1 => UssdAlphabet::EightBit,
            2 => UssdAlphabet::Ucs2,
            _ => UssdAlphabet::Gsm7,
        },
        // 1001: message with user data header, alphabet as above.
        0x9 => match (d >> 2) & 0x03 {
            1 => UssdAlphabet::EightBit,
            2 => UssdAlphabet::Ucs2,
            _ => UssdAlphabet::Gsm7,
        },
        // 1111: bit 2 selects 8-bit data.
        0xF if d & 0x04 != 0 => UssdAlphabet::EightBit,
        _ => UssdAlphabet::Gsm7,
    }
}

/// Unpacks hex of packed GSM 7-bit septets (TS 23.038 §6.1.2.3.1); `None` if not hex.
fn unpack_hex(text: &str) -> Option<String> {
    let bytes = hex_to_bytes(text).ok()?;
    let mut count = bytes.len() * 8 / 7;
    let septets = gsm7::unpack(&bytes, 0, count);
    // 8n-1 characters leave 7 spare bits, filled with CR; zero fill reads as '@'.
    if count.is_multiple_of(8) && matches!(septets.last(), Some(0x0D | 0x00)) {
        count -= 1;
    }
    Some(gsm7::septets_to_string(
        septets.get(..count).unwrap_or(&septets),
    ))
}

/// Decodes `<str>` of a `+CUSD` answer; `packed_hex` for modems that send GSM 7-bit text as hex
/// of packed septets (Huawei). A string that does not fit the form it should have is shown as
/// given rather than lost.
pub fn decode_text(text: &str, dcs: Option<u16>, packed_hex: bool) -> String {
    let Some(dcs) = dcs else {
        return text.to_owned();
    };
    match alphabet(dcs) {
        UssdAlphabet::Gsm7 if packed_hex => unpack_hex(text).unwrap_or_else(|| text.to_owned()),
        UssdAlphabet::Gsm7 => text.to_owned(),
        UssdAlphabet::Ucs2 => match hex_to_bytes(text) {
            Ok(b) => ucs2::decode(&b),
            Err(_) => text.to_owned(),
        },
        UssdAlphabet::Ucs2WithLanguage => match hex_to_bytes(text) {
            Ok(b) => ucs2::decode(b.get(2..).unwrap_or_default()),
            Err(_) => text.to_owned(),
        },
        UssdAlphabet::EightBit => match hex_to_bytes(text) {
            Ok(b) => b.iter().map(|&c| char::from(c)).collect(),
            Err(_) => text.to_owned(),
        },
    }
}

/// Checks a code or reply: 1–160 characters of the GSM 7-bit alphabet, no `"` (it ends the AT
/// string) and no control characters.
pub fn validate(text: &str) -> Result<(), UssdError> {
    let n = text.chars().count();
    if n == 0 || n > 160 {
        return Err(UssdError::Invalid(format!(
            "{text:?} must be 1 to 160 characters"
        )));
    }
    if text.chars().any(|c| c == '"' || c.is_control()) {
        return Err(UssdError::Invalid(format!(
            "{text:?} holds a quote or a control character"
        )));
    }
    if gsm7::septet_len(text).is_none() {
        return Err(UssdError::Invalid(format!(
            "{text:?} has characters outside the GSM 7-bit alphabet"
        )));
    }
    Ok(())
}

/// `<str>` of a request as the modem wants it: as given, or hex of packed septets (Huawei).
pub fn encode_request(text: &str, packed_hex: bool) -> String {
    if !packed_hex {
        return text.to_owned();
    }
    let mut septets = Vec::new();
    let _ = gsm7::text_to_septets(text, true, &mut septets);
    // 8n-1 characters: the 7 spare bits would read as '@'; TS 23.038 §6.1.2.3.1 puts a CR there.
    if septets.len() % 8 == 7 {
        septets.push(0x0D);
    }
    let mut packed = Vec::new();
    gsm7::pack(&septets, 0, &mut packed);
    to_hex(&packed)
}

/// The answer or error of one `+CUSD: <m>[,<str>,<dcs>]` URC.
pub fn answer(
    status: u8,
    text: Option<&str>,
    dcs: Option<u16>,
    packed_hex: bool,
) -> Result<UssdAnswer, UssdError> {
    let text = text
        .map(|t| decode_text(t, dcs, packed_hex))
        .unwrap_or_default();
    match status {
        0 => Ok(UssdAnswer {
            state: UssdState::Done,
            text,
            dcs,
        }),
        1 => Ok(UssdAnswer {
            state: UssdState::Menu,
            text,
            dcs,
        }),
        2 => Err(UssdError::Terminated { text }),
        3 => Err(UssdError::OtherClient),
        4 => Err(UssdError::NotSupported { text }),
        _ => Err(UssdError::NetworkTimeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cbs_dcs_alphabets() {
        // TS 23.038 §5: 15 = GSM 7-bit, language unspecified; 72 = 0x48 UCS-2; 68 = 0x44 8-bit.
        assert_eq!(alphabet(15), UssdAlphabet::Gsm7);
        assert_eq!(alphabet(0x48), UssdAlphabet::Ucs2);
        assert_eq!(alphabet(0x44), UssdAlphabet::EightBit);
        assert_eq!(alphabet(0x40), UssdAlphabet::Gsm7);
        assert_eq!(alphabet(0x11), UssdAlphabet::Ucs2WithLanguage);
        assert_eq!(alphabet(0xF4), UssdAlphabet::EightBit);
        assert_eq!(
            alphabet(0x80),
            UssdAlphabet::Gsm7,
            "reserved reads as GSM 7-bit"
        );
    }

    #[test]
    fn the_three_forms_decode() {
        // Plain text (Quectel, SIMCom, ... with CSCS="GSM").
        assert_eq!(decode_text("Balance 1,23", Some(15), false), "Balance 1,23");
        // UCS-2 hex, DCS 72: "Баланс".
        assert_eq!(
            decode_text("04110430043B0430043D0441", Some(72), false),
            "Баланс"
        );
        // Huawei: hex of packed septets, DCS 15. "*100#" packs to AA180C3602.
        assert_eq!(decode_text("AA180C3602", Some(15), true), "*100#");
        assert_eq!(encode_request("*100#", true), "AA180C3602");
        // Not hex although it should be: shown as given.
        assert_eq!(decode_text("Balance", Some(15), true), "Balance");
        // No DCS: as given.
        assert_eq!(decode_text("0041", None, true), "0041");
    }

    #[test]
    fn seven_characters_end_in_a_cr_that_is_dropped() {
        // 7 characters + CR fill exactly 7 octets (TS 23.038 §6.1.2.3.1).
        let hex = encode_request("1234567", true);
        assert_eq!(hex.len(), 14);
        assert_eq!(decode_text(&hex, Some(15), true), "1234567");
    }

    #[test]
    fn statuses_map_to_answers_and_errors() {
        assert_eq!(
            answer(0, Some("ok"), Some(15), false).unwrap().state,
            UssdState::Done
        );
        assert_eq!(
            answer(1, Some("1 a"), Some(15), false).unwrap().state,
            UssdState::Menu
        );
        assert!(matches!(
            answer(2, None, None, false),
            Err(UssdError::Terminated { .. })
        ));
        assert!(matches!(
            answer(3, None, None, false),
            Err(UssdError::OtherClient)
        ));
        assert!(matches!(
            answer(4, None, None, false),
            Err(UssdError::NotSupported { .. })
        ));
        assert!(matches!(
            answer(5, None, None, false),
            Err(UssdError::NetworkTimeout)
        ));
    }

    #[test]
    fn requests_are_checked() {
        assert!(validate("*100#").is_ok());
        assert!(validate("").is_err());
        assert!(validate("*1\"#").is_err());
        assert!(validate("*1\r#").is_err());
        assert!(validate("😀").is_err());
        assert!(validate(&"1".repeat(161)).is_err());
    }

    proptest! {
        #[test]
        fn packed_text_survives_the_huawei_form(text in "[A-Za-z0-9*#:,. ]{1,160}") {
            let hex = encode_request(&text, true);
            prop_assert_eq!(decode_text(&hex, Some(15), true), text);
        }

        #[test]
        fn ucs2_text_survives_the_hex_form(text in "\\PC{1,60}") {
            let hex = to_hex(&ucs2::encode(&text));
            prop_assert_eq!(decode_text(&hex, Some(0x48), false), text);
        }

        #[test]
        fn decoding_never_panics(text in "\\PC{0,200}|[0-9A-F]{0,200}", dcs: Option<u16>, packed: bool) {
            let _ = decode_text(&text, dcs, packed);
        }
    }
}
