//! The contact card sent to new members, in the three configured ways (`CardMode`):
//! - `link`: a text with the URL of a `.vcf` file the owner hosts; phones offer "add contact";
//! - `vcard_sms`: the vCard itself as 8-bit SMS to application port 9204 (the vCard port of
//!   Nokia Smart Messaging, later OMA/WAP port registry: 0x23F4), concatenated when longer than
//!   one part. Feature phones and many Android builds store it as a contact; iPhones and some
//!   Android messaging apps ignore port-addressed SMS, which is why `link` or `text` is the safer
//!   default for a mixed audience (docs/community.md);
//! - `text`: a plain "Save this number as …" text.
//!
//! The vCard is version 3.0 (RFC 2426): CRLF line ends; TEXT values escape `\`, `,`, `;` and
//! newlines (RFC 2426 §4 "escaped-char"); lines longer than 75 octets are folded with CRLF + one
//! space (RFC 2425 §5.8.1), never inside a UTF-8 sequence. TEL values are E.164 (validated by
//! config) and URIs are written as given, so neither is escaped.
//!
//! The SMS parts are built by `pdu::submits_for_port_data` (DCS 0x04 8-bit data; UDH IE 0x05
//! 16-bit ports, destination 9204, source 0, 23.040 §9.2.3.24.4; IE 0x00 8-bit concatenation when
//! more than one part, §9.2.3.24.1). That builder lives in `pdu`, not here, because the
//! dispatcher (a layer below `community`) encodes outbox rows of payload `vcard` with it at send
//! time: the outbox stores the vCard text, and the parts, status-report flag, validity and stored
//! concatenation reference are the dispatcher's business, exactly as for a text.

use super::settings::{CardMode, ContactCard};
pub use crate::pdu::VCARD_PORT;
use crate::pdu::{Address, Pdu, SubmitOptions, submits_for_port_data};

use super::CommunityError;

/// Longest vCard line in octets, excluding CRLF (RFC 2425 §5.8.1).
pub const FOLD_AT: usize = 75;

/// What the daemon sends for the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardMessage {
    /// An ordinary text (link and text modes).
    Text(String),
    /// A vCard to send as port-9204 SMS (build the parts with [`vcard_submits`]).
    Vcard(String),
}

/// Escapes a TEXT value (RFC 2426 §4).
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Folds one logical line into physical lines of at most [`FOLD_AT`] octets (continuations start
/// with a space, which counts), each ended by CRLF.
pub fn fold_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / FOLD_AT * 3 + 2);
    let mut used = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > FOLD_AT {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
    out
}

/// The vCard 3.0 text of a card.
pub fn vcard_text(card: &ContactCard) -> String {
    let name = escape_text(card.name.trim());
    let mut lines = vec![
        "BEGIN:VCARD".to_string(),
        "VERSION:3.0".to_string(),
        format!("N:{name};;;;"),
        format!("FN:{name}"),
    ];
    for number in &card.numbers {
        lines.push(format!("TEL;TYPE=CELL:{number}"));
    }
    if let Some(url) = &card.url {
        lines.push(format!("URL:{url}"));
    }
    if let Some(photo) = &card.photo_url {
        lines.push(format!("PHOTO;VALUE=uri:{photo}"));
    }
    lines.push("END:VCARD".to_string());
    lines.iter().map(|l| fold_line(l)).collect()
}

/// The message for the configured card mode. `link` without `vcf_url` (which config validation
/// rejects) falls back to the text form rather than sending a broken link.
pub fn card_message(card: &ContactCard) -> CardMessage {
    match (card.mode, &card.vcf_url) {
        (CardMode::Link, Some(url)) => {
            CardMessage::Text(format!("Save {} to your contacts: {url}", card.name.trim()))
        }
        (CardMode::VcardSms, _) => CardMessage::Vcard(vcard_text(card)),
        (CardMode::Link, None) | (CardMode::Text, _) => CardMessage::Text(plain_text(card)),
    }
}

/// "Save this number as NAME: +1…, +1… URL".
pub fn plain_text(card: &ContactCard) -> String {
    let mut text = format!("Save this number as {}", card.name.trim());
    if !card.numbers.is_empty() {
        text.push_str(": ");
        text.push_str(&card.numbers.join(", "));
    }
    if let Some(url) = &card.url {
        text.push(' ');
        text.push_str(url);
    }
    text
}

/// The SMS-SUBMIT parts carrying `vcard` to port 9204 of `to` (E.164). `reference` is the
/// concatenation reference (8-bit) used when more than one part is needed. The parts are built
/// by [`crate::pdu::submits_for_port_data`], which the dispatcher also calls for an outbox row
/// with payload `vcard` (so what is previewed here is what goes out).
pub fn vcard_submits(to: &str, vcard: &str, reference: u8) -> Result<Vec<Pdu>, CommunityError> {
    let destination = Address::international(to).map_err(|e| CommunityError::Pdu(e.to_string()))?;
    let opts = SubmitOptions {
        concat_reference: u16::from(reference),
        ..SubmitOptions::default()
    };
    submits_for_port_data(&destination, VCARD_PORT, 0, vcard.as_bytes(), &opts).map_err(|e| {
        CommunityError::Card {
            reason: format!("vCard of {} octets: {e}", vcard.len()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn card() -> ContactCard {
        ContactCard {
            name: "Oak St Tenants".into(),
            numbers: vec!["+13125550123".into()],
            url: Some("https://oakst.org".into()),
            photo_url: None,
            mode: CardMode::Text,
            vcf_url: None,
        }
    }

    #[test]
    fn known_answer_vcard() {
        assert_eq!(
            vcard_text(&card()),
            "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Oak St Tenants;;;;\r\nFN:Oak St Tenants\r\n\
             TEL;TYPE=CELL:+13125550123\r\nURL:https://oakst.org\r\nEND:VCARD\r\n"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_text("a,b;c\\d\ne\r\nf"), "a\\,b\\;c\\\\d\\ne\\nf");
        let mut c = card();
        c.name = "Smith, Jones; & Co".into();
        assert!(vcard_text(&c).contains("FN:Smith\\, Jones\\; & Co\r\n"));
    }

    #[test]
    fn folding_at_75_octets() {
        let line = format!("FN:{}", "x".repeat(200));
        let folded = fold_line(&line);
        let physical: Vec<&str> = folded.trim_end_matches("\r\n").split("\r\n").collect();
        assert_eq!(physical.len(), 3);
        assert_eq!(physical[0].len(), 75);
        assert_eq!(physical[1].len(), 75);
        assert!(physical[1].starts_with(' ') && physical[2].starts_with(' '));
        // Unfolding (remove CRLF + space) gives the line back.
        assert_eq!(folded.replace("\r\n ", "").trim_end_matches("\r\n"), line);
        // A short line is untouched.
        assert_eq!(fold_line("FN:x"), "FN:x\r\n");
    }

    #[test]
    fn card_modes() {
        let mut c = card();
        assert_eq!(
            card_message(&c),
            CardMessage::Text(
                "Save this number as Oak St Tenants: +13125550123 https://oakst.org".into()
            )
        );
        c.mode = CardMode::Link;
        c.vcf_url = Some("https://oakst.org/card.vcf".into());
        assert_eq!(
            card_message(&c),
            CardMessage::Text(
                "Save Oak St Tenants to your contacts: https://oakst.org/card.vcf".into()
            )
        );
        c.mode = CardMode::VcardSms;
        assert_eq!(card_message(&c), CardMessage::Vcard(vcard_text(&c)));
    }

    proptest! {
        /// Folding never splits a UTF-8 character, never exceeds 75 octets, and unfolds back.
        #[test]
        fn folding_properties(s in "[^\r\n]{0,400}") {
            let folded = fold_line(&s);
            for l in folded.trim_end_matches("\r\n").split("\r\n") {
                prop_assert!(l.len() <= FOLD_AT);
            }
            prop_assert_eq!(folded.replace("\r\n ", ""), format!("{s}\r\n"));
        }

        #[test]
        fn escaped_text_has_no_raw_separators(s in ".{0,100}") {
            let e = escape_text(&s);
            prop_assert!(!e.contains('\n') && !e.contains('\r'));
            let unescaped_sep = e.replace("\\\\", "").replace("\\,", "").replace("\\;", "");
            prop_assert!(!unescaped_sep.contains(',') && !unescaped_sep.contains(';'));
        }
    }
}
