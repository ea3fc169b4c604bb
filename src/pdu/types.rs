//! The value types of an SMS TPDU (3GPP 23.040 §9.2) and of the data coding scheme (23.038 §4).
//!
//! Owns plain data and the small pure helpers that interpret single fields (DCS groups, validity
//! period ranges, time stamps). Parsing lives in `decode`, serialisation in `encode`; this file
//! must stay free of both so the simulator and the modem layer can build values without pulling in
//! the codec. Time stamps are kept as the seven semi-octet fields the PDU carries, not as an
//! instant, so a decode → encode round trip is exact even for the odd dates some SCs send.

use super::address::Address;

/// A service-centre time stamp or absolute validity period (23.040 §9.2.3.11): local time fields
/// plus the offset from UTC in quarter hours (negative west of Greenwich).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub tz_quarter_hours: i8,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Timestamp {
    /// RFC 3339, e.g. `2015-11-27T00:00:00+02:00`. Fields are printed as received; a PDU with an
    /// impossible date (month 0) prints it rather than inventing another.
    pub fn to_rfc3339(&self) -> String {
        let tz = i32::from(self.tz_quarter_hours) * 15;
        let sign = if tz < 0 { '-' } else { '+' };
        let tz = tz.abs();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            sign,
            tz / 60,
            tz % 60
        )
    }

    /// The local time at offset `tz_quarter_hours` of the instant `secs` (Unix seconds).
    pub fn from_unix(secs: i64, tz_quarter_hours: i8) -> Timestamp {
        let local = secs.saturating_add(i64::from(tz_quarter_hours) * 900);
        let days = local.div_euclid(86_400);
        let rem = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        Timestamp {
            year: y.clamp(0, i64::from(u16::MAX)) as u16,
            month: m as u8,
            day: d as u8,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
            tz_quarter_hours,
        }
    }

    /// The instant as Unix seconds.
    pub fn to_unix(&self) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.tz_quarter_hours) * 900
    }
}

/// The character set of the user data, from the DCS (23.038 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alphabet {
    Gsm7,
    EightBit,
    Ucs2,
}

impl Alphabet {
    /// Lower-case name used in JSON output (`gsm7`, `8bit`, `ucs2`).
    pub fn name(self) -> &'static str {
        match self {
            Alphabet::Gsm7 => "gsm7",
            Alphabet::EightBit => "8bit",
            Alphabet::Ucs2 => "ucs2",
        }
    }
}

/// TP-DCS, kept raw and interpreted on demand (23.038 §4, coding groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dcs {
    pub raw: u8,
}

/// Message-waiting indication carried by DCS groups 1100–1110 (23.038 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageWaiting {
    /// Bit 2 of the DCS: the indication is being set (true) or cleared.
    pub active: bool,
    /// Bits 1–0: 0 voicemail, 1 fax, 2 e-mail, 3 other.
    pub kind: u8,
    /// Group 1100 ("discard message"): the SC asks the handset not to store the text.
    pub discard: bool,
}

impl Dcs {
    /// GSM 7-bit default alphabet, no class.
    pub const GSM7: Dcs = Dcs { raw: 0x00 };
    /// 8-bit data, no class.
    pub const EIGHT_BIT: Dcs = Dcs { raw: 0x04 };
    /// UCS-2, no class.
    pub const UCS2: Dcs = Dcs { raw: 0x08 };

    pub fn new(raw: u8) -> Dcs {
        Dcs { raw }
    }

    /// The plain DCS for an alphabet (general data coding, no class).
    pub fn for_alphabet(a: Alphabet) -> Dcs {
        match a {
            Alphabet::Gsm7 => Dcs::GSM7,
            Alphabet::EightBit => Dcs::EIGHT_BIT,
            Alphabet::Ucs2 => Dcs::UCS2,
        }
    }

    /// General data coding groups 00xx and 01xx (automatic deletion).
    fn general(self) -> bool {
        self.raw & 0x80 == 0
    }

    /// The alphabet by coding group. Reserved values (alphabet 11 in the general groups, groups
    /// 1000–1011) are read as 8-bit data: showing their octets is safer than guessing text
    /// (docs/pdu.md, "Data coding scheme", decoder rule).
    pub fn alphabet(&self) -> Alphabet {
        let r = self.raw;
        if self.general() {
            return match (r >> 2) & 0x03 {
                0 => Alphabet::Gsm7,
                2 => Alphabet::Ucs2,
                _ => Alphabet::EightBit,
            };
        }
        match r >> 4 {
            0xC | 0xD => Alphabet::Gsm7,
            0xE => Alphabet::Ucs2,
            0xF if r & 0x04 == 0 => Alphabet::Gsm7,
            _ => Alphabet::EightBit,
        }
    }

    /// Message class 0–3 (0 = flash) when the DCS carries one.
    pub fn class(&self) -> Option<u8> {
        if (self.general() && self.raw & 0x10 != 0) || self.raw >> 4 == 0xF {
            Some(self.raw & 0x03)
        } else {
            None
        }
    }

    /// Text compressed with the 23.042 algorithm (general groups, bit 5). Not decompressed here:
    /// such user data decodes as `Body::Data`.
    pub fn compressed(&self) -> bool {
        self.general() && self.raw & 0x20 != 0
    }

    /// Groups 01xx: the message is marked for automatic deletion.
    pub fn auto_delete(&self) -> bool {
        self.raw >> 6 == 0x01
    }

    /// Message-waiting groups 1100–1110.
    pub fn message_waiting(&self) -> Option<MessageWaiting> {
        let g = self.raw >> 4;
        (0xC..=0xE).contains(&g).then_some(MessageWaiting {
            active: self.raw & 0x08 != 0,
            kind: self.raw & 0x03,
            discard: g == 0xC,
        })
    }
}

/// TP-VP (23.040 §9.2.3.12) with its format (TP-VPF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    None,
    /// Relative, one octet (see [`Validity::relative_secs`]).
    Relative(u8),
    Absolute(Timestamp),
    /// Enhanced format (23.040 §9.2.3.12.3): kept as its seven octets, not interpreted.
    Enhanced([u8; 7]),
}

/// Longest relative validity: 63 weeks (VP 255).
pub const MAX_RELATIVE_SECS: u64 = 63 * 7 * 86_400;

impl Validity {
    /// Duration of a relative VP octet: 0–143 (VP+1)×5 min; 144–167 12 h + (VP−143)×30 min;
    /// 168–196 (VP−166) days; 197–255 (VP−192) weeks (23.040 §9.2.3.12.1).
    pub fn relative_secs(vp: u8) -> u64 {
        let v = u64::from(vp);
        match vp {
            0..=143 => (v + 1) * 300,
            144..=167 => 12 * 3600 + (v - 143) * 1800,
            168..=196 => (v - 166) * 86_400,
            _ => (v - 192) * 7 * 86_400,
        }
    }

    /// The shortest relative VP that lasts at least `secs`; `None` beyond 63 weeks.
    pub fn relative_from_secs(secs: u64) -> Option<Validity> {
        if secs > MAX_RELATIVE_SECS {
            return None;
        }
        (0..=255u8)
            .find(|&vp| Validity::relative_secs(vp) >= secs)
            .map(Validity::Relative)
    }

    /// TP-VPF bits 4–3 of the first octet of a SUBMIT.
    pub fn vpf_bits(&self) -> u8 {
        match self {
            Validity::None => 0b00,
            Validity::Enhanced(_) => 0b01,
            Validity::Relative(_) => 0b10,
            Validity::Absolute(_) => 0b11,
        }
    }
}

/// A user data header information element (23.040 §9.2.3.24).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InformationElement {
    /// IEI 0x00, concatenated SMS with an 8-bit reference.
    Concat8 {
        reference: u8,
        total: u8,
        sequence: u8,
    },
    /// IEI 0x08, concatenated SMS with a 16-bit reference.
    Concat16 {
        reference: u16,
        total: u8,
        sequence: u8,
    },
    /// IEI 0x04, application port addressing, 8-bit ports.
    Port8 { destination: u8, source: u8 },
    /// IEI 0x05, application port addressing, 16-bit ports.
    Port16 { destination: u16, source: u16 },
    /// Any other IE (or a known IEI with a length it must not have), kept verbatim.
    Other { iei: u8, data: Vec<u8> },
}

impl InformationElement {
    /// (reference, total, sequence) if this is a concatenation IE.
    pub fn concat(&self) -> Option<(u16, u8, u8)> {
        match *self {
            InformationElement::Concat8 {
                reference,
                total,
                sequence,
            } => Some((u16::from(reference), total, sequence)),
            InformationElement::Concat16 {
                reference,
                total,
                sequence,
            } => Some((reference, total, sequence)),
            _ => None,
        }
    }
}

/// The payload after the header: text for GSM 7-bit and UCS-2, octets for 8-bit (and compressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String),
    Data(Vec<u8>),
}

/// TP-UD: the header elements (empty = TP-UDHI clear) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    pub header: Vec<InformationElement>,
    pub body: Body,
}

impl UserData {
    /// Text without a header.
    pub fn text(s: impl Into<String>) -> UserData {
        UserData {
            header: Vec::new(),
            body: Body::Text(s.into()),
        }
    }

    /// The concatenation info of the header, if any.
    pub fn concat(&self) -> Option<(u16, u8, u8)> {
        self.header.iter().find_map(InformationElement::concat)
    }

    /// The body as text, if it is text.
    pub fn as_text(&self) -> Option<&str> {
        match &self.body {
            Body::Text(s) => Some(s),
            Body::Data(_) => None,
        }
    }
}

/// SMS-DELIVER, SC → MS (23.040 §9.2.2.1). TP-LP (loop prevention) is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    pub originator: Address,
    pub pid: u8,
    pub dcs: Dcs,
    pub timestamp: Timestamp,
    /// TP-MMS as the bit reads: true = bit 2 is 0 = more messages are waiting at the SC.
    pub more_messages_to_send: bool,
    pub status_report_indication: bool,
    pub reply_path: bool,
    pub user_data: UserData,
}

impl Deliver {
    /// (reference, total, sequence) of a concatenation header.
    pub fn concat(&self) -> Option<(u16, u8, u8)> {
        self.user_data.concat()
    }

    /// The text, unless the body is binary.
    pub fn text(&self) -> Option<&str> {
        self.user_data.as_text()
    }
}

/// SMS-SUBMIT, MS → SC (23.040 §9.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    pub message_reference: u8,
    pub destination: Address,
    pub pid: u8,
    pub dcs: Dcs,
    pub validity: Validity,
    pub status_report_request: bool,
    pub reject_duplicates: bool,
    pub reply_path: bool,
    pub user_data: UserData,
}

/// SMS-STATUS-REPORT, SC → MS (23.040 §9.2.2.3). `pid`, `dcs` and `user_data` are present when
/// the TP-PI octet announces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub message_reference: u8,
    pub recipient: Address,
    pub timestamp: Timestamp,
    pub discharge_time: Timestamp,
    pub status: u8,
    /// TP-SRQ: the report answers an SMS-COMMAND (true) or an SMS-SUBMIT (false).
    pub status_report_qualifier: bool,
    /// TP-MMS as the bit reads (see [`Deliver::more_messages_to_send`]).
    pub more_messages_to_send: bool,
    pub pid: Option<u8>,
    pub dcs: Option<Dcs>,
    pub user_data: Option<UserData>,
}

impl StatusReport {
    /// Whether the message was delivered (TP-ST 0x00–0x1F: transaction completed).
    pub fn delivered(&self) -> bool {
        self.status < 0x20
    }
}

/// What a TP-ST value means (23.040 §9.2.3.15).
pub fn status_meaning(st: u8) -> &'static str {
    match st {
        0x00 => "delivered",
        0x01 => "forwarded, delivery unconfirmed",
        0x02 => "replaced by the SC",
        0x03..=0x0F => "completed (reserved)",
        0x10..=0x1F => "completed (SC-specific)",
        0x20 => "temporary error, SC still trying: congestion",
        0x21 => "temporary error, SC still trying: SME busy",
        0x22 => "temporary error, SC still trying: no response from SME",
        0x23 => "temporary error, SC still trying: service rejected",
        0x24 => "temporary error, SC still trying: quality of service not available",
        0x25 => "temporary error, SC still trying: error in SME",
        0x26..=0x2F => "temporary error, SC still trying",
        0x30..=0x3F => "temporary error, SC still trying (SC-specific)",
        0x40 => "permanent error: remote procedure error",
        0x41 => "permanent error: incompatible destination",
        0x42 => "permanent error: connection rejected by SME",
        0x43 => "permanent error: not obtainable",
        0x44 => "permanent error: quality of service not available",
        0x45 => "permanent error: no interworking available",
        0x46 => "permanent error: validity period expired",
        0x47 => "permanent error: deleted by originating SME",
        0x48 => "permanent error: deleted by SC administration",
        0x49 => "permanent error: message does not exist",
        0x4A..=0x5F => "permanent error",
        0x60 => "temporary error, SC gave up: congestion",
        0x61 => "temporary error, SC gave up: SME busy",
        0x62 => "temporary error, SC gave up: no response from SME",
        0x63 => "temporary error, SC gave up: service rejected",
        0x64 => "temporary error, SC gave up: quality of service not available",
        0x65 => "temporary error, SC gave up: error in SME",
        0x66..=0x7F => "temporary error, SC gave up",
        _ => "reserved",
    }
}

/// The three TPDU types this codec handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tpdu {
    Deliver(Deliver),
    Submit(Submit),
    StatusReport(StatusReport),
}

impl Tpdu {
    /// Type name used in JSON output.
    pub fn name(&self) -> &'static str {
        match self {
            Tpdu::Deliver(_) => "SMS-DELIVER",
            Tpdu::Submit(_) => "SMS-SUBMIT",
            Tpdu::StatusReport(_) => "SMS-STATUS-REPORT",
        }
    }

    /// The direction this TPDU travels in.
    pub fn direction(&self) -> Direction {
        match self {
            Tpdu::Submit(_) => Direction::FromMobile,
            _ => Direction::ToMobile,
        }
    }
}

/// SC→MS carries DELIVER and STATUS-REPORT; MS→SC carries SUBMIT (the MTI is ambiguous without
/// it: 23.040 §9.2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToMobile,
    FromMobile,
}

/// A PDU as a modem exchanges it: the optional SMSC address (None ⇔ the `00` prefix, "use the
/// stored SMSC") and the TPDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub smsc: Option<Address>,
    pub tpdu: Tpdu,
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/pdu.md, "Time stamps and validity" [PGM TestRelativeValidityPeriod] and the 0xAA / 0xA7
    // vectors.
    #[test]
    fn relative_validity_vectors() {
        for (secs, vp) in [
            (30 * 60, 5u8),
            (16 * 3600, 151),
            (3 * 86_400, 169),
            (5 * 7 * 86_400, 197),
            (4 * 86_400, 0xAA),
            (86_400, 0xA7),
        ] {
            assert_eq!(
                Validity::relative_from_secs(secs),
                Some(Validity::Relative(vp)),
                "{secs}"
            );
            assert_eq!(Validity::relative_secs(vp), secs);
        }
        assert_eq!(Validity::relative_secs(0), 300);
        assert_eq!(Validity::relative_secs(255), MAX_RELATIVE_SECS);
        assert_eq!(Validity::relative_from_secs(MAX_RELATIVE_SECS + 1), None);
        // Rounds up to the next representable period.
        assert_eq!(
            Validity::relative_from_secs(301),
            Some(Validity::Relative(1))
        );
    }

    // 23.038 §4 coding groups (docs/pdu.md, "Data coding scheme").
    #[test]
    fn dcs_groups() {
        let a = |r| Dcs::new(r).alphabet();
        assert_eq!(a(0x00), Alphabet::Gsm7);
        assert_eq!(a(0x04), Alphabet::EightBit);
        assert_eq!(a(0x08), Alphabet::Ucs2);
        assert_eq!(a(0x0C), Alphabet::EightBit);
        assert_eq!(a(0x18), Alphabet::Ucs2);
        assert_eq!(a(0xF0), Alphabet::Gsm7);
        assert_eq!(a(0xF5), Alphabet::EightBit);
        assert_eq!(a(0xC8), Alphabet::Gsm7);
        assert_eq!(a(0xD0), Alphabet::Gsm7);
        assert_eq!(a(0xE0), Alphabet::Ucs2);
        assert_eq!(a(0x80), Alphabet::EightBit);
        assert_eq!(Dcs::new(0x10).class(), Some(0));
        assert_eq!(Dcs::new(0x13).class(), Some(3));
        assert_eq!(Dcs::new(0x18).class(), Some(0));
        assert_eq!(Dcs::new(0xF2).class(), Some(2));
        assert_eq!(Dcs::new(0x00).class(), None);
        assert_eq!(Dcs::new(0x08).class(), None);
        assert!(Dcs::new(0x20).compressed());
        assert!(!Dcs::new(0xF0).compressed());
        assert!(Dcs::new(0x40).auto_delete());
        let mw = Dcs::new(0xC8).message_waiting().unwrap();
        assert!(mw.active && mw.discard && mw.kind == 0);
        assert_eq!(Dcs::new(0x00).message_waiting(), None);
    }

    #[test]
    fn timestamp_unix_round_trip() {
        // [PGM TestTimestamp] (docs/pdu.md, "Time stamps and validity"): 2015-11-27 00:00:00
        // +02:00.
        let t = Timestamp {
            year: 2015,
            month: 11,
            day: 27,
            hour: 0,
            minute: 0,
            second: 0,
            tz_quarter_hours: 8,
        };
        assert_eq!(t.to_rfc3339(), "2015-11-27T00:00:00+02:00");
        assert_eq!(t.to_unix(), 1_448_575_200);
        assert_eq!(Timestamp::from_unix(1_448_575_200, 8), t);
        let w = Timestamp {
            tz_quarter_hours: -32,
            ..t
        };
        assert_eq!(w.to_rfc3339(), "2015-11-27T00:00:00-08:00");
        assert_eq!(
            Timestamp::from_unix(0, 0).to_rfc3339(),
            "1970-01-01T00:00:00+00:00"
        );
    }
}
