//! Decoding of PDUs as modems hand them over: SMSC prefix (27.005 §3.1) followed by an
//! SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT TPDU (23.040 §9.2.2). Written with nom 8; the nom
//! error type stays private and is turned into [`PduError`] with the octet offset of the field
//! that failed (counted from the first octet of the SMSC prefix).
//!
//! A field beyond the bounds of 3GPP TS 23.040 is an error naming the field and the bound
//! (`bounds`, docs/pdu.md "Bounds the decoder enforces"): an address longer than 20 digits, an
//! SMSC prefix longer than 11 octets, a TP-UDL beyond what TP-UD can hold, a TP-UDHL beyond the
//! TP-UDL, a time stamp that is not a date and time, a reserved TP-PID in an SMS-SUBMIT. Within
//! the bounds, tolerance is deliberate, because a message lost over an odd field is worse: a
//! TP-UDL larger than the data present decodes what is there (docs/pdu.md, "What real networks
//! and modems send"); octets after the user data are ignored; address semi-octets A–E decode as
//! `* # a b c`; optional STATUS-REPORT fields the TP-PI announces but the PDU lacks are left out.
//! A mandatory field cut short, or a UDH element running past the header, also fails.
//!
//! The hot path allocates only the output strings (address, text) and, when TP-UDHI is set, the
//! header list.

use nom::bytes::complete::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::be_u8;
use nom::{IResult, Parser};

use super::address::{Address, TypeOfNumber, bcd_digits};
use super::bounds;
use super::error::PduError;
use super::gsm7;
use super::types::{
    Alphabet, Body, Dcs, Deliver, Direction, Pdu, StatusReport, Submit, Timestamp, Tpdu, UserData,
    Validity,
};
use super::{ucs2, udh};

type In<'a> = &'a [u8];

/// The private nom error: where (as bytes left) and which field; `detail` None means truncated.
#[derive(Debug)]
struct Fail {
    rest: usize,
    field: &'static str,
    detail: Option<String>,
    /// A fully formed error from a helper that already knows its absolute offset.
    done: Option<PduError>,
}

impl<'a> ParseError<In<'a>> for Fail {
    fn from_error_kind(input: In<'a>, _kind: ErrorKind) -> Self {
        Fail {
            rest: input.len(),
            field: "",
            detail: None,
            done: None,
        }
    }
    fn append(_input: In<'a>, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type R<'a, T> = IResult<In<'a>, T, Fail>;

/// Names the field a parser reads, unless an inner parser already named a narrower one; the error
/// offset is the start of the named field.
fn named<'a, O>(
    name: &'static str,
    mut p: impl FnMut(In<'a>) -> R<'a, O>,
) -> impl FnMut(In<'a>) -> R<'a, O> {
    move |i: In<'a>| {
        p(i).map_err(|e| {
            e.map(|mut f| {
                if f.field.is_empty() {
                    f.field = name;
                    f.rest = i.len();
                }
                f
            })
        })
    }
}

fn invalid(i: In<'_>, field: &'static str, detail: String) -> nom::Err<Fail> {
    nom::Err::Failure(Fail {
        rest: i.len(),
        field,
        detail: Some(detail),
        done: None,
    })
}

fn octet<'a>(name: &'static str) -> impl FnMut(In<'a>) -> R<'a, u8> {
    named(name, be_u8)
}

/// RP SMSC address (27.005 §3.1): octet count including the TOA; 0 = none.
fn smsc_address(i: In<'_>) -> R<'_, Option<Address>> {
    named("SMSC address", |i| {
        let (rest, len) = be_u8(i)?;
        if len == 0 {
            return Ok((rest, None));
        }
        bounds::smsc_length(len).map_err(|d| invalid(i, "SMSC address", d))?;
        let i = rest;
        let (i, value) = take(len).parse(i)?;
        let (toa, digits) = match value.split_first() {
            Some((t, d)) => (*t, d),
            None => return Ok((i, None)),
        };
        Ok((
            i,
            Some(Address {
                number: bcd_digits(digits, digits.len() * 2),
                ton: TypeOfNumber::from_bits(toa >> 4),
                npi: toa & 0x0F,
            }),
        ))
    })(i)
}

/// TP address (23.040 §9.1.2.5): semi-octet count, TOA, value. Alphanumeric values are GSM 7-bit
/// packed (23.040 §9.1.2.5, TON 101).
fn tp_address<'a>(name: &'static str) -> impl FnMut(In<'a>) -> R<'a, Address> {
    named(name, move |i| {
        let start = i;
        let (i, semi) = be_u8(i)?;
        bounds::address_length(semi).map_err(|d| invalid(start, name, d))?;
        let (i, toa) = be_u8(i)?;
        let (i, value) = take(usize::from(semi).div_ceil(2)).parse(i)?;
        let ton = TypeOfNumber::from_bits(toa >> 4);
        let number = if ton == TypeOfNumber::Alphanumeric {
            gsm7::unpack_to_string(value, 0, usize::from(semi) * 4 / 7)
        } else {
            bcd_digits(value, usize::from(semi))
        };
        Ok((
            i,
            Address {
                number,
                ton,
                npi: toa & 0x0F,
            },
        ))
    })
}

/// One swapped semi-octet pair as a number (the range is checked by `bounds::timestamp`).
fn swapped(b: u8) -> u8 {
    (b & 0x0F) * 10 + (b >> 4)
}

/// TP-SCTS / TP-DT / absolute TP-VP (23.040 §9.2.3.11): YY MM DD hh mm ss TZ, semi-octets
/// swapped, checked by `bounds::timestamp`.
fn timestamp<'a>(name: &'static str) -> impl FnMut(In<'a>) -> R<'a, Timestamp> {
    named(name, move |start| {
        let (i, t) = take(7usize).parse(start)?;
        let &[y, mo, d, h, mi, s, tz] = t else {
            return Err(nom::Err::Error(Fail::from_error_kind(i, ErrorKind::Eof)));
        };
        let octets = [y, mo, d, h, mi, s, tz];
        bounds::timestamp(&octets).map_err(|e| invalid(start, name, e))?;
        Ok((i, read_timestamp(octets)))
    })
}

/// The seven semi-octet octets as a time stamp, read arithmetically: TZ in quarter hours with the
/// sign in bit 3; years 80–99 are 19xx, others 20xx.
fn read_timestamp([y, mo, d, h, mi, s, tz]: [u8; 7]) -> Timestamp {
    let yy = u16::from(swapped(y));
    let q = ((tz & 0x07) * 10 + (tz >> 4)) as i8;
    Timestamp {
        year: if (80..=99).contains(&yy) {
            1900 + yy
        } else {
            2000 + yy
        },
        month: swapped(mo),
        day: swapped(d),
        hour: swapped(h),
        minute: swapped(mi),
        second: swapped(s),
        tz_quarter_hours: if tz & 0x08 != 0 { -q } else { q },
    }
}

/// TP-VP in the format TP-VPF selects (23.040 §9.2.3.12).
fn validity<'a>(vpf: u8) -> impl FnMut(In<'a>) -> R<'a, Validity> {
    move |i| match vpf & 0x03 {
        0b00 => Ok((i, Validity::None)),
        0b10 => named("validity period", be_u8)
            .parse(i)
            .map(|(i, v)| (i, Validity::Relative(v))),
        0b11 => timestamp("validity period")
            .parse(i)
            .map(|(i, t)| (i, Validity::Absolute(t))),
        _ => named("validity period", take(7usize))
            .parse(i)
            .map(|(i, v)| {
                let mut e = [0u8; 7];
                e.copy_from_slice(v);
                (i, Validity::Enhanced(e))
            }),
    }
}

/// TP-UDL and TP-UD (23.040 §9.2.3.16, §9.2.3.24). Consumes the rest of the input.
fn user_data<'a>(dcs: Dcs, udhi: bool, total: usize) -> impl FnMut(In<'a>) -> R<'a, UserData> {
    move |i| {
        let (data, udl) = named("user data length", be_u8)(i)?;
        let septets = !dcs.compressed() && dcs.alphabet() == Alphabet::Gsm7;
        bounds::user_data_length(usize::from(udl), septets)
            .map_err(|d| invalid(i, "user data length", d))?;
        let ud_offset = total - data.len();
        decode_user_data(data, usize::from(udl), dcs, udhi, ud_offset)
            .map(|ud| (&data[..0], ud))
            .map_err(|e| {
                nom::Err::Failure(Fail {
                    rest: 0,
                    field: "user data",
                    detail: None,
                    done: Some(e),
                })
            })
    }
}

/// The user data proper, given TP-UDL. `offset` is where `data` starts in the PDU.
pub(crate) fn decode_user_data(
    data: &[u8],
    udl: usize,
    dcs: Dcs,
    udhi: bool,
    offset: usize,
) -> Result<UserData, PduError> {
    let mut header = Vec::new();
    let mut hdr_octets = 0;
    if udhi && let Some(&udhl) = data.first() {
        let udhl = usize::from(udhl);
        let septets = !dcs.compressed() && dcs.alphabet() == Alphabet::Gsm7;
        bounds::header_length(udhl, udl, septets).map_err(|detail| PduError::Invalid {
            field: "user data header length",
            offset,
            detail,
        })?;
        let Some(h) = data.get(1..1 + udhl) else {
            return Err(PduError::Truncated {
                field: "user data header",
                offset,
            });
        };
        header = udh::parse_header(h, offset + 1)?;
        hdr_octets = 1 + udhl;
    }
    let rest = data.get(hdr_octets..).unwrap_or(&[]);
    let alphabet = if dcs.compressed() {
        Alphabet::EightBit
    } else {
        dcs.alphabet()
    };
    let body = match alphabet {
        Alphabet::Gsm7 => {
            let hdr_septets = (hdr_octets * 8).div_ceil(7);
            let fill = (hdr_septets * 7 - hdr_octets * 8) as u8;
            Body::Text(gsm7::unpack_to_string(
                rest,
                fill,
                udl.saturating_sub(hdr_septets),
            ))
        }
        Alphabet::Ucs2 | Alphabet::EightBit => {
            let n = udl.saturating_sub(hdr_octets).min(rest.len());
            let octets = rest.get(..n).unwrap_or(rest);
            if alphabet == Alphabet::Ucs2 {
                Body::Text(ucs2::decode(octets))
            } else {
                Body::Data(octets.to_vec())
            }
        }
    };
    Ok(UserData { header, body })
}

/// SMS-DELIVER after its first octet (23.040 §9.2.2.1).
fn deliver<'a>(fo: u8, total: usize) -> impl FnMut(In<'a>) -> R<'a, Deliver> {
    move |i| {
        let (i, originator) = tp_address("originator address")(i)?;
        let (i, pid) = octet("protocol identifier")(i)?;
        let (i, dcs) = octet("data coding scheme")(i)?;
        let (i, timestamp) = timestamp("service centre time stamp")(i)?;
        let dcs = Dcs::new(dcs);
        let (i, user_data) = user_data(dcs, fo & 0x40 != 0, total)(i)?;
        Ok((
            i,
            Deliver {
                originator,
                pid,
                dcs,
                timestamp,
                more_messages_to_send: fo & 0x04 == 0,
                status_report_indication: fo & 0x20 != 0,
                reply_path: fo & 0x80 != 0,
                user_data,
            },
        ))
    }
}

/// SMS-SUBMIT after its first octet (23.040 §9.2.2.2).
fn submit<'a>(fo: u8, total: usize) -> impl FnMut(In<'a>) -> R<'a, Submit> {
    move |i| {
        let (i, message_reference) = octet("message reference")(i)?;
        let (i, destination) = tp_address("destination address")(i)?;
        let pid_at = i;
        let (i, pid) = octet("protocol identifier")(i)?;
        bounds::submit_pid(pid).map_err(|d| invalid(pid_at, "protocol identifier", d))?;
        let (i, dcs) = octet("data coding scheme")(i)?;
        let (i, validity) = validity(fo >> 3)(i)?;
        let dcs = Dcs::new(dcs);
        let (i, user_data) = user_data(dcs, fo & 0x40 != 0, total)(i)?;
        Ok((
            i,
            Submit {
                message_reference,
                destination,
                pid,
                dcs,
                validity,
                status_report_request: fo & 0x20 != 0,
                reject_duplicates: fo & 0x04 != 0,
                reply_path: fo & 0x80 != 0,
                user_data,
            },
        ))
    }
}

/// SMS-STATUS-REPORT after its first octet (23.040 §9.2.2.3), including the optional TP-PI
/// (§9.2.3.27) and the fields it announces. Extension PI octets are skipped.
fn status_report<'a>(fo: u8, total: usize) -> impl FnMut(In<'a>) -> R<'a, StatusReport> {
    move |i| {
        let (i, message_reference) = octet("message reference")(i)?;
        let (i, recipient) = tp_address("recipient address")(i)?;
        let (i, scts) = timestamp("service centre time stamp")(i)?;
        let (i, discharge_time) = timestamp("discharge time")(i)?;
        let (mut i, status) = octet("status")(i)?;
        let mut sr = StatusReport {
            message_reference,
            recipient,
            timestamp: scts,
            discharge_time,
            status,
            status_report_qualifier: fo & 0x20 != 0,
            more_messages_to_send: fo & 0x04 == 0,
            pid: None,
            dcs: None,
            user_data: None,
        };
        let Some((&pi, mut rest)) = i.split_first() else {
            return Ok((i, sr));
        };
        let mut ext = pi;
        while ext & 0x80 != 0 {
            match rest.split_first() {
                Some((&e, r)) => {
                    ext = e;
                    rest = r;
                }
                None => break,
            }
        }
        i = rest;
        if pi & 0x01 != 0
            && let Some((&p, r)) = i.split_first()
        {
            sr.pid = Some(p);
            i = r;
        }
        if pi & 0x02 != 0
            && let Some((&d, r)) = i.split_first()
        {
            sr.dcs = Some(Dcs::new(d));
            i = r;
        }
        if pi & 0x04 != 0 && !i.is_empty() {
            let (r, ud) = user_data(sr.dcs.unwrap_or(Dcs::GSM7), fo & 0x40 != 0, total)(i)?;
            sr.user_data = Some(ud);
            i = r;
        }
        Ok((i, sr))
    }
}

/// The whole PDU: SMSC prefix, first octet (TP-MTI in bits 1–0, 23.040 §9.2.3.1), TPDU.
fn pdu<'a>(dir: Direction, total: usize) -> impl FnMut(In<'a>) -> R<'a, Pdu> {
    move |i| {
        let (i, smsc) = smsc_address(i)?;
        let (rest, fo) = octet("first octet")(i)?;
        let (rest, tpdu) = match (dir, fo & 0x03) {
            // 23.040 §9.2.3.1: a reserved MTI received by an MS is handled as SMS-DELIVER.
            (Direction::ToMobile, 0b00 | 0b11) => {
                deliver(fo, total).map(Tpdu::Deliver).parse(rest)?
            }
            (Direction::ToMobile, 0b10) => status_report(fo, total)
                .map(Tpdu::StatusReport)
                .parse(rest)?,
            (Direction::FromMobile, 0b01) => submit(fo, total).map(Tpdu::Submit).parse(rest)?,
            (d, mti) => {
                let what = match (d, mti) {
                    (Direction::ToMobile, _) => "SMS-SUBMIT-REPORT",
                    (_, 0b00) => "SMS-DELIVER-REPORT",
                    (_, 0b10) => "SMS-COMMAND",
                    _ => "a reserved type",
                };
                return Err(invalid(
                    i,
                    "first octet",
                    format!("TP-MTI {mti:02b} is {what}, which this codec does not decode"),
                ));
            }
        };
        Ok((rest, Pdu { smsc, tpdu }))
    }
}

/// Decodes a PDU including its SMSC prefix.
pub fn decode(bytes: &[u8], dir: Direction) -> Result<Pdu, PduError> {
    let total = bytes.len();
    match pdu(dir, total)(bytes) {
        Ok((_, p)) => Ok(p),
        Err(nom::Err::Error(f) | nom::Err::Failure(f)) => Err(to_error(f, total)),
        // Only streaming parsers return Incomplete; all of ours are `complete`.
        Err(nom::Err::Incomplete(_)) => Err(PduError::Truncated {
            field: "PDU",
            offset: total,
        }),
    }
}

fn to_error(f: Fail, total: usize) -> PduError {
    if let Some(e) = f.done {
        return e;
    }
    let field = if f.field.is_empty() { "PDU" } else { f.field };
    let offset = total.saturating_sub(f.rest);
    match f.detail {
        None => PduError::Truncated { field, offset },
        Some(detail) => PduError::Invalid {
            field,
            offset,
            detail,
        },
    }
}

/// Decodes in whichever direction works: SC→MS (DELIVER / STATUS-REPORT) first, then MS→SC
/// (SUBMIT). When both fail, the error of the direction the TP-MTI points to is returned.
pub fn decode_any(bytes: &[u8]) -> Result<(Pdu, Direction), PduError> {
    match decode(bytes, Direction::ToMobile) {
        Ok(p) => Ok((p, Direction::ToMobile)),
        Err(first) => match decode(bytes, Direction::FromMobile) {
            Ok(p) => Ok((p, Direction::FromMobile)),
            Err(second) => {
                let smsc_len = bytes.first().map_or(0, |&l| usize::from(l));
                let mti = bytes.get(1 + smsc_len).map(|fo| fo & 0x03);
                Err(if mti == Some(0b01) { second } else { first })
            }
        },
    }
}

/// Hex (either case, surrounding whitespace ignored) to octets.
pub fn hex_to_bytes(hex: &str) -> Result<Vec<u8>, PduError> {
    let h = hex.trim().as_bytes();
    fn val(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(h.len() / 2);
    for (n, pair) in h.chunks(2).enumerate() {
        let hi = pair
            .first()
            .and_then(|&c| val(c))
            .ok_or(PduError::BadHex { position: n * 2 })?;
        let Some(&lo) = pair.get(1) else {
            return Err(PduError::OddHex { digits: h.len() });
        };
        let lo = val(lo).ok_or(PduError::BadHex {
            position: n * 2 + 1,
        })?;
        out.push(hi << 4 | lo);
    }
    Ok(out)
}

impl Pdu {
    /// Decodes a PDU whose octets include the SMSC prefix (27.005 §3.1).
    pub fn decode(bytes: &[u8], dir: Direction) -> Result<Pdu, PduError> {
        decode(bytes, dir)
    }

    /// [`Pdu::decode`] from hex, as `+CMGR`/`+CMGL`/`+CMT`/`+CDS` print it.
    pub fn decode_hex(hex: &str, dir: Direction) -> Result<Pdu, PduError> {
        decode(&hex_to_bytes(hex)?, dir)
    }

    /// Decodes trying both directions (see [`decode_any`]).
    pub fn decode_any(bytes: &[u8]) -> Result<(Pdu, Direction), PduError> {
        decode_any(bytes)
    }
}

impl Timestamp {
    /// Reads the seven semi-octet octets of a TP-SCTS / TP-DT / absolute TP-VP (23.040 §9.2.3.11)
    /// without checking their range (the decoder checks; see `bounds::timestamp`).
    pub fn from_semi_octets(octets: [u8; 7]) -> Timestamp {
        read_timestamp(octets)
    }
}
