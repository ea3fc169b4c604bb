//! Encoding of PDUs for the modem (AT+CMGS takes the SMSC prefix plus the TPDU, 27.005 §3.5.1)
//! and, for the simulator's network side, of SMS-DELIVER and SMS-STATUS-REPORT.
//!
//! Two entry points: [`Pdu::try_encode`] refuses what 23.040 cannot carry (user data over 140
//! octets / 160 septets, a character the DCS alphabet lacks), and [`Pdu::encode`] never fails: it
//! replaces unencodable GSM 7-bit characters with `?` and cuts over-long user data at the last whole
//! character, never inside an escape or surrogate pair. Segmented text from `segment` always fits,
//! so the two agree for everything the gateway itself builds.

use super::error::PduError;
use super::gsm7;
use super::types::{
    Alphabet, Body, Dcs, Deliver, Pdu, StatusReport, Submit, Timestamp, Tpdu, UserData, Validity,
};
use super::{ucs2, udh};

/// Most octets TP-UD can hold (23.040 §9.2.3.16).
pub const MAX_UD_OCTETS: usize = 140;
/// Most septets TP-UD can hold in GSM 7-bit.
pub const MAX_UD_SEPTETS: usize = 160;

fn bcd(v: u8) -> u8 {
    let v = v % 100;
    ((v % 10) << 4) | (v / 10)
}

/// 23.040 §9.2.3.11; offsets beyond ±79 quarter hours are clamped (two digits, sign bit).
pub(crate) fn write_timestamp(t: &Timestamp, out: &mut Vec<u8>) {
    out.push(bcd((t.year % 100) as u8));
    for f in [t.month, t.day, t.hour, t.minute, t.second] {
        out.push(bcd(f));
    }
    let q = t.tz_quarter_hours.unsigned_abs().min(79);
    let sign = if t.tz_quarter_hours < 0 { 0x08 } else { 0 };
    out.push(((q % 10) << 4) | (q / 10) | sign);
}

fn unencodable(field: &'static str, detail: String) -> PduError {
    PduError::Unencodable { field, detail }
}

/// TP-UDL + TP-UD for the given DCS (23.040 §9.2.3.16, §9.2.3.24). Returns whether a header was
/// written (for TP-UDHI).
fn write_user_data(
    ud: &UserData,
    dcs: Dcs,
    lossy: bool,
    out: &mut Vec<u8>,
) -> Result<bool, PduError> {
    let mut header = Vec::new();
    if !ud.header.is_empty() {
        let len = udh::elements_len(&ud.header);
        if len + 1 > MAX_UD_OCTETS {
            if !lossy {
                return Err(unencodable("user data header", format!("{len} octets")));
            }
        } else {
            header.push(len as u8);
            udh::write_elements(&ud.header, &mut header);
        }
    }
    let hdr = header.len();
    let alphabet = if dcs.compressed() {
        Alphabet::EightBit
    } else {
        dcs.alphabet()
    };
    match alphabet {
        Alphabet::Gsm7 => {
            let mut septets = Vec::with_capacity(MAX_UD_SEPTETS);
            match &ud.body {
                Body::Text(t) => gsm7::text_to_septets(t, lossy, &mut septets).map_err(|c| {
                    unencodable(
                        "user data",
                        format!("{c:?} is not in the GSM 7-bit alphabet"),
                    )
                })?,
                Body::Data(d) => septets.extend(d.iter().map(|b| b & 0x7F)),
            }
            let hdr_septets = (hdr * 8).div_ceil(7);
            let room = MAX_UD_SEPTETS - hdr_septets;
            if septets.len() > room {
                if !lossy {
                    return Err(unencodable(
                        "user data",
                        format!("{} septets, room for {room}", septets.len()),
                    ));
                }
                septets.truncate(room);
                // Do not leave half an escape pair: ESC is never a character on its own.
                if septets
                    .iter()
                    .rev()
                    .take_while(|&&s| s == gsm7::ESC)
                    .count()
                    % 2
                    == 1
                {
                    septets.pop();
                }
            }
            out.push((hdr_septets + septets.len()) as u8);
            out.extend_from_slice(&header);
            gsm7::pack(&septets, (hdr_septets * 7 - hdr * 8) as u8, out);
        }
        Alphabet::Ucs2 | Alphabet::EightBit => {
            let mut octets = match &ud.body {
                Body::Text(t) if alphabet == Alphabet::Ucs2 => ucs2::encode(t),
                Body::Text(t) => t.as_bytes().to_vec(),
                Body::Data(d) => d.clone(),
            };
            let room = MAX_UD_OCTETS - hdr;
            if octets.len() > room {
                if !lossy {
                    return Err(unencodable(
                        "user data",
                        format!("{} octets, room for {room}", octets.len()),
                    ));
                }
                let mut keep = room;
                if alphabet == Alphabet::Ucs2 {
                    keep -= keep % 2;
                    // A high surrogate as the last kept unit would be half a character.
                    if keep >= 2
                        && octets
                            .get(keep - 2)
                            .is_some_and(|b| (0xD8..=0xDB).contains(b))
                    {
                        keep -= 2;
                    }
                }
                octets.truncate(keep);
            }
            out.push((hdr + octets.len()) as u8);
            out.extend_from_slice(&header);
            out.extend_from_slice(&octets);
        }
    }
    Ok(hdr > 0)
}

/// Writes the FO placeholder at `fo_at` once TP-UDHI is known.
fn set_udhi(out: &mut [u8], fo_at: usize, udhi: bool) {
    if udhi && let Some(fo) = out.get_mut(fo_at) {
        *fo |= 0x40;
    }
}

fn write_submit(s: &Submit, lossy: bool, out: &mut Vec<u8>) -> Result<(), PduError> {
    let fo_at = out.len();
    out.push(
        0x01 | u8::from(s.reject_duplicates) << 2
            | s.validity.vpf_bits() << 3
            | u8::from(s.status_report_request) << 5
            | u8::from(s.reply_path) << 7,
    );
    out.push(s.message_reference);
    s.destination.encode_tp(out);
    out.push(s.pid);
    out.push(s.dcs.raw);
    match &s.validity {
        Validity::None => {}
        Validity::Relative(v) => out.push(*v),
        Validity::Absolute(t) => write_timestamp(t, out),
        Validity::Enhanced(e) => out.extend_from_slice(e),
    }
    let udhi = write_user_data(&s.user_data, s.dcs, lossy, out)?;
    set_udhi(out, fo_at, udhi);
    Ok(())
}

fn write_deliver(d: &Deliver, lossy: bool, out: &mut Vec<u8>) -> Result<(), PduError> {
    let fo_at = out.len();
    out.push(
        u8::from(!d.more_messages_to_send) << 2
            | u8::from(d.status_report_indication) << 5
            | u8::from(d.reply_path) << 7,
    );
    d.originator.encode_tp(out);
    out.push(d.pid);
    out.push(d.dcs.raw);
    write_timestamp(&d.timestamp, out);
    let udhi = write_user_data(&d.user_data, d.dcs, lossy, out)?;
    set_udhi(out, fo_at, udhi);
    Ok(())
}

fn write_status_report(r: &StatusReport, lossy: bool, out: &mut Vec<u8>) -> Result<(), PduError> {
    let fo_at = out.len();
    out.push(
        0x02 | u8::from(!r.more_messages_to_send) << 2 | u8::from(r.status_report_qualifier) << 5,
    );
    out.push(r.message_reference);
    r.recipient.encode_tp(out);
    write_timestamp(&r.timestamp, out);
    write_timestamp(&r.discharge_time, out);
    out.push(r.status);
    let pi = u8::from(r.pid.is_some())
        | u8::from(r.dcs.is_some()) << 1
        | u8::from(r.user_data.is_some()) << 2;
    if pi != 0 {
        out.push(pi);
        if let Some(p) = r.pid {
            out.push(p);
        }
        if let Some(d) = r.dcs {
            out.push(d.raw);
        }
        if let Some(ud) = &r.user_data {
            let udhi = write_user_data(ud, r.dcs.unwrap_or(Dcs::GSM7), lossy, out)?;
            set_udhi(out, fo_at, udhi);
        }
    }
    Ok(())
}

fn write_pdu(p: &Pdu, lossy: bool) -> Result<Vec<u8>, PduError> {
    let mut out = Vec::with_capacity(176);
    match &p.smsc {
        None => out.push(0),
        Some(a) => a.encode_smsc(&mut out),
    }
    match &p.tpdu {
        Tpdu::Submit(s) => write_submit(s, lossy, &mut out)?,
        Tpdu::Deliver(d) => write_deliver(d, lossy, &mut out)?,
        Tpdu::StatusReport(r) => write_status_report(r, lossy, &mut out)?,
    }
    Ok(out)
}

impl Pdu {
    /// The octets, SMSC prefix first. Never fails (see the module comment for what is replaced).
    pub fn encode(&self) -> Vec<u8> {
        // The lossy writer has no error path: every `?` inside it is behind `if !lossy`.
        write_pdu(self, true).unwrap_or_default()
    }

    /// The octets, or an error for anything 23.040 cannot carry unchanged.
    pub fn try_encode(&self) -> Result<Vec<u8>, PduError> {
        write_pdu(self, false)
    }

    /// [`Pdu::encode`] as upper-case hex, as AT+CMGS expects it.
    pub fn to_hex(&self) -> String {
        to_hex(&self.encode())
    }

    /// Octets after the SMSC prefix: the length AT+CMGS and +CMGR count (27.005 §3.5.1).
    pub fn tpdu_len(&self) -> usize {
        let smsc = match &self.smsc {
            None => 1,
            Some(a) => {
                let mut v = Vec::with_capacity(12);
                a.encode_smsc(&mut v);
                v.len()
            }
        };
        self.encode().len().saturating_sub(smsc)
    }
}

/// Upper-case hex of octets.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    s
}

impl Timestamp {
    /// The seven semi-octet octets of this time stamp (23.040 §9.2.3.11).
    pub fn to_semi_octets(&self) -> [u8; 7] {
        let mut v = Vec::with_capacity(7);
        write_timestamp(self, &mut v);
        let mut out = [0u8; 7];
        out.copy_from_slice(&v);
        out
    }
}
