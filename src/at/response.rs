//! Information responses: the `+XXX:` (and bare) lines a command answers with, turned into typed values.
//!
//! Owns one parser per answer syntax (27.007 / 27.005 clause cited on each) plus the vendor
//! variants described in docs/at-protocol.md. Input is what the digester handed out as
//! [`super::Item::Info`]: one line, or the slice of lines a command produced (multi-line answers
//! such as `+CMGL` with their PDU lines).
//! It does not decode PDUs (that is `pdu`'s job); PDU lines are returned as hex strings.
//! Several answer forms are ambiguous in the wild (`+CREG:` field counts, `+CPMS:` with or without
//! storage names, ICCIDs with swapped nibbles); each such decision is explained where it is made.

use nom::{
    IResult, Parser,
    bytes::complete::tag_no_case,
    character::complete::{char, space0, u8 as dec_u8},
    combinator::{all_consuming, opt, rest},
    sequence::preceded,
};

use super::AtError;
use super::lex::{Field, is_hex, prefixed_fields, strip_prefix_ci};

// ---------------------------------------------------------------------------------------------
// SMS storage answers
// ---------------------------------------------------------------------------------------------

/// `+CMGS: <mr>[,<ackpdu>]` — 27.005 §3.5.1 (PDU mode). Returns the TP-MR the modem used, which may
/// differ from the one in the submitted PDU \[SMT].
pub fn parse_cmgs(line: &str) -> Result<u8, AtError> {
    fn rule(i: &str) -> IResult<&str, u8> {
        let (i, (_, _, mr, _)) = (
            tag_no_case("+CMGS:"),
            space0,
            dec_u8,
            opt(preceded(char(','), rest)),
        )
            .parse(i)?;
        Ok((i, mr))
    }
    all_consuming(rule)
        .parse(line.trim())
        .map(|(_, mr)| mr)
        .map_err(|_| AtError::parse("+CMGS", line))
}

/// One stored message from `+CMGR`/`+CMGL` in PDU mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSms {
    /// Storage index (`+CMGL` only; `+CMGR` answers for the index it was asked).
    pub index: Option<u32>,
    /// `<stat>`: 0 REC UNREAD, 1 REC READ, 2 STO UNSENT, 3 STO SENT. `None` for ZTE's `+CMGR: ,,27`.
    pub stat: Option<u8>,
    /// `<alpha>`: phonebook name, usually empty.
    pub alpha: Option<String>,
    /// `<length>`: TPDU length in octets (without the SMSC field).
    pub length: usize,
    /// The PDU line, hex, including the SMSC field.
    pub pdu: String,
}

/// Interprets the header fields after `+CMGR:` (`<stat>,[<alpha>],<length>`) or after `+CMGL: <index>,`.
/// The last field is always the length; some firmwares drop the empty `<alpha>` entirely.
fn stored_header(fields: &[Field<'_>]) -> Option<(Option<u8>, Option<String>, usize)> {
    let (last, head) = fields.split_last()?;
    let length = last.uint()? as usize;
    let stat = match head.first() {
        None => return None,
        Some(f) if f.is_empty() => None,
        Some(f) => Some(u8::try_from(f.uint()?).ok()?),
    };
    let alpha = head.get(1).and_then(Field::opt_text);
    Some((stat, alpha, length))
}

/// `+CMGR: <stat>,[<alpha>],<length><CR><LF><pdu>` — 27.005 §3.4.3 (PDU mode), including ZTE's
/// `+CMGR: ,,27` with no `<stat>` [PGM test_modem]. `lines` are the command's Info lines.
pub fn parse_cmgr(lines: &[String]) -> Result<StoredSms, AtError> {
    let pos = lines
        .iter()
        .position(|l| strip_prefix_ci(l, "+CMGR:").is_some())
        .ok_or(AtError::Missing {
            what: "+CMGR",
            count: lines.len(),
        })?;
    let header = &lines[pos]; // position() found it
    let fields =
        prefixed_fields(header, "+CMGR:").ok_or_else(|| AtError::parse("+CMGR", header))?;
    let (stat, alpha, length) =
        stored_header(&fields).ok_or_else(|| AtError::parse("+CMGR", header))?;
    let pdu = lines
        .get(pos + 1)
        .map(|l| l.trim())
        .filter(|l| is_hex(l))
        .ok_or_else(|| AtError::parse("+CMGR PDU line", header))?;
    Ok(StoredSms {
        index: None,
        stat,
        alpha,
        length,
        pdu: pdu.to_owned(),
    })
}

/// `+CMGL: <index>,<stat>,[<alpha>],<length><CR><LF><pdu>[…]` — 27.005 §3.4.2 (PDU mode).
/// Each entry is parsed on its own so one malformed entry does not hide the others (a message that
/// cannot be read must still be reported, never silently dropped).
pub fn parse_cmgl(lines: &[String]) -> Vec<Result<StoredSms, AtError>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        i += 1;
        let Some(fields) = prefixed_fields(line, "+CMGL:") else {
            if strip_prefix_ci(line, "+CMGL:").is_some() || !is_hex(line.trim()) {
                out.push(Err(AtError::parse("+CMGL", line)));
            }
            continue;
        };
        let entry = fields.split_first().and_then(|(idx, rest)| {
            let (stat, alpha, length) = stored_header(rest)?;
            Some((idx.uint()?, stat, alpha, length))
        });
        let Some((index, stat, alpha, length)) = entry else {
            out.push(Err(AtError::parse("+CMGL", line)));
            continue;
        };
        match lines.get(i).map(|l| l.trim()).filter(|l| is_hex(l)) {
            Some(pdu) => {
                i += 1;
                out.push(Ok(StoredSms {
                    index: Some(index),
                    stat,
                    alpha,
                    length,
                    pdu: pdu.to_owned(),
                }));
            }
            None => out.push(Err(AtError::parse("+CMGL PDU line", line))),
        }
    }
    out
}

/// One memory of `+CPMS`: its name when the answer carries it, used and total slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageUsage {
    pub name: Option<String>,
    pub used: u32,
    pub total: u32,
}

/// `+CPMS: <used1>,<total1>,<used2>,<total2>,<used3>,<total3>` (set answer) or
/// `+CPMS: <mem1>,<used1>,<total1>,…` (read answer) — 27.005 §3.2.2. Also accepts Wavecom's
/// 4-field form `+CPMS: 14,50,14,50` and returns an empty list for Nokia S60's `+CPMS: ,,,,,,,,`
/// (no SMS reading over AT) [PGM fakemodems].
pub fn parse_cpms(line: &str) -> Result<Vec<StorageUsage>, AtError> {
    let err = || AtError::parse("+CPMS", line);
    let fields = prefixed_fields(line, "+CPMS:").ok_or_else(err)?;
    if fields.iter().all(Field::is_empty) {
        return Ok(Vec::new());
    }
    // Read form: a name field (quoted or not a number) starts each group of three.
    let named = fields
        .first()
        .is_some_and(|f| f.is_quoted() || f.uint().is_none());
    let group = if named { 3 } else { 2 };
    if fields.len() % group != 0 {
        return Err(err());
    }
    fields
        .chunks(group)
        .map(|c| {
            let (name, nums) = if named {
                (c.first().and_then(Field::opt_text), &c[1..])
            } else {
                (None, c)
            };
            match nums {
                [u, t] => Some(StorageUsage {
                    name,
                    used: u.uint()?,
                    total: t.uint()?,
                }),
                _ => None,
            }
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(err)
}

/// `+CPMS: (list of <mem1>s),(list of <mem2>s),(list of <mem3>s)` — the test-command answer of
/// 27.005 §3.2.2. Nokia's `+CPMS: (),(),()` gives three empty lists [PGM fakemodems].
pub fn parse_cpms_support(line: &str) -> Result<Vec<Vec<String>>, AtError> {
    let fields = prefixed_fields(line, "+CPMS:").ok_or_else(|| AtError::parse("+CPMS=?", line))?;
    fields
        .iter()
        .map(|f| match f {
            Field::Paren(inner) => Ok(inner
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .filter(|s| !s.is_empty())
                .collect()),
            _ => Err(AtError::parse("+CPMS=?", line)),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Network answers
// ---------------------------------------------------------------------------------------------

/// `+CSQ: <rssi>,<ber>` — 27.007 §8.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csq {
    pub rssi: u8,
    pub ber: u8,
}

impl Csq {
    /// Signal in dBm: −113 + 2·rssi for 0…31 (0 means ≤ −113, 31 means ≥ −51); `None` for 99
    /// (unknown) and anything out of range [27.007 §8.5; SMT explain_csq_buffer].
    pub fn dbm(&self) -> Option<i32> {
        rssi_dbm(self.rssi)
    }
}

/// The 27.007 §8.5 rssi scale, also used by Huawei `^RSSI` \[MM].
pub fn rssi_dbm(rssi: u8) -> Option<i32> {
    (rssi <= 31).then(|| -113 + 2 * i32::from(rssi))
}

/// `+CSQ: <rssi>,<ber>` — 27.007 §8.5.
pub fn parse_csq(line: &str) -> Result<Csq, AtError> {
    fn rule(i: &str) -> IResult<&str, Csq> {
        let (i, (_, _, rssi, _, _, _, ber, _)) = (
            tag_no_case("+CSQ:"),
            space0,
            dec_u8,
            space0,
            char(','),
            space0,
            dec_u8,
            space0,
        )
            .parse(i)?;
        Ok((i, Csq { rssi, ber }))
    }
    all_consuming(rule)
        .parse(line.trim())
        .map(|(_, c)| c)
        .map_err(|_| AtError::parse("+CSQ", line))
}

/// Which registration a `+CREG`-family line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegDomain {
    /// `+CREG` — circuit switched (SMS, voice), 27.007 §7.2.
    Cs,
    /// `+CGREG` — GPRS, 27.007 §10.1.20.
    Gprs,
    /// `+CEREG` — EPS (LTE), 27.007 §10.1.22.
    Eps,
}

/// A registration state, from the URC form or from the answer to the read command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub domain: RegDomain,
    /// `<n>` (URC mode) — present only in the answer to `AT+CREG?`.
    pub n: Option<u8>,
    /// `<stat>`: 0 not searching, 1 home, 2 searching, 3 denied, 4 unknown, 5 roaming (27.007 §7.2).
    pub stat: u8,
    /// `<lac>` / `<tac>`, decoded from hex.
    pub lac: Option<u32>,
    /// `<ci>`, decoded from hex.
    pub ci: Option<u32>,
    /// `<AcT>` (0 GSM, 2 UTRAN, 7 E-UTRAN, …).
    pub act: Option<u8>,
}

impl Registration {
    /// Registered, home network or roaming.
    pub fn is_registered(&self) -> bool {
        matches!(self.stat, 1 | 5)
    }
}

/// A LAC or CI: hex digits, quoted in the standard form but bare on some firmwares (`9110`, `7E6`).
/// A `<stat>` is always one unquoted digit, which is how MM tells the two forms apart.
fn looks_like_lac(f: &Field<'_>) -> bool {
    f.is_quoted() || f.text().len() > 1
}

fn hex_field(f: Option<&Field<'_>>) -> Option<u32> {
    let t = f?.text().trim();
    if t.is_empty() || t.len() > 8 || !is_hex(t) {
        return None;
    }
    u32::from_str_radix(t, 16).ok()
}

/// `+CREG:` / `+CGREG:` / `+CEREG:` in both forms — 27.007 §7.2, §10.1.20, §10.1.22:
/// URC `<stat>[,<lac>,<ci>[,<AcT>]]` and read answer `<n>,<stat>[,<lac>,<ci>[,<AcT>…]]`.
/// Field counts are ambiguous (4 fields fit both forms); like MM, the form is decided by whether
/// field 2 looks like a LAC (quoted or longer than one digit) [MM mm-modem-helpers.c].
/// Known answers: `+CREG: 2,1,9110,7E6` [CD test], `+CREG: 1`, `+CREG: 0,1`,
/// `+CREG: 1,"00C3","0000D2A1",7`.
pub fn parse_creg(line: &str) -> Result<Registration, AtError> {
    let (domain, fields) = [
        ("+CREG:", RegDomain::Cs),
        ("+CGREG:", RegDomain::Gprs),
        ("+CEREG:", RegDomain::Eps),
    ]
    .into_iter()
    .find_map(|(p, d)| prefixed_fields(line, p).map(|f| (d, f)))
    .ok_or_else(|| AtError::parse("+CREG", line))?;
    let small = |f: Option<&Field<'_>>| f.and_then(Field::uint).and_then(|v| u8::try_from(v).ok());
    let urc_form = match fields.len() {
        1 | 3 => true,
        2 => false,
        4 => fields.get(1).is_some_and(looks_like_lac),
        _ => false,
    };
    let (n, rest) = if urc_form {
        (None, &fields[..])
    } else {
        (small(fields.first()), fields.get(1..).unwrap_or(&[]))
    };
    let stat = small(rest.first()).ok_or_else(|| AtError::parse("+CREG <stat>", line))?;
    if !urc_form && n.is_none() {
        return Err(AtError::parse("+CREG <n>", line));
    }
    Ok(Registration {
        domain,
        n,
        stat,
        lac: hex_field(rest.get(1)),
        ci: hex_field(rest.get(2)),
        act: small(rest.get(3)),
    })
}

/// `+COPS: <mode>[,<format>,<oper>[,<AcT>]]` — 27.007 §7.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cops {
    pub mode: u8,
    pub format: Option<u8>,
    pub operator: Option<String>,
    pub act: Option<u8>,
}

/// `+COPS: <mode>[,<format>,<oper>[,<AcT>]]` — 27.007 §7.3; e.g. `+COPS: 0,0,"CHINA MOBILE",7`
/// \[QEC].
pub fn parse_cops(line: &str) -> Result<Cops, AtError> {
    let err = || AtError::parse("+COPS", line);
    let f = prefixed_fields(line, "+COPS:").ok_or_else(err)?;
    let small = |i: usize| {
        f.get(i)
            .and_then(Field::uint)
            .and_then(|v| u8::try_from(v).ok())
    };
    Ok(Cops {
        mode: small(0).ok_or_else(err)?,
        format: small(1),
        operator: f.get(2).and_then(Field::opt_text),
        act: small(3),
    })
}

// ---------------------------------------------------------------------------------------------
// SIM and equipment answers
// ---------------------------------------------------------------------------------------------

/// `<code>` of `+CPIN:` — 27.007 §8.3.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PinState {
    Ready,
    SimPin,
    SimPuk,
    SimPin2,
    SimPuk2,
    PhSimPin,
    /// Any other code (`PH-NET PIN`, `NOT INSERTED` on some firmwares, …), verbatim.
    Other(String),
}

/// `+CPIN: <code>` — 27.007 §8.3.
pub fn parse_cpin(line: &str) -> Result<PinState, AtError> {
    let rest =
        strip_prefix_ci(line.trim(), "+CPIN:").ok_or_else(|| AtError::parse("+CPIN", line))?;
    let code = rest.trim().trim_matches('"');
    Ok(match code {
        "READY" => PinState::Ready,
        "SIM PIN" => PinState::SimPin,
        "SIM PUK" => PinState::SimPuk,
        "SIM PIN2" => PinState::SimPin2,
        "SIM PUK2" => PinState::SimPuk2,
        "PH-SIM PIN" => PinState::PhSimPin,
        "" => return Err(AtError::parse("+CPIN", line)),
        other => PinState::Other(other.to_owned()),
    })
}

/// Remaining PIN / PUK attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinAttempts {
    pub pin: Option<u8>,
    pub puk: Option<u8>,
}

/// Remaining attempts from Quectel `+QPINC: "SC",<pin>,<puk>` [QEC ch.5] or Huawei
/// `^CPIN: <code>,[<times>],<puk_times>,<pin_times>,<puk2_times>,<pin2_times>` (Huawei AT manual
/// `^CPIN`; listed in E1752 CLAC \[PGM]).
pub fn parse_pin_attempts(lines: &[String]) -> Result<PinAttempts, AtError> {
    let small = |f: Option<&Field<'_>>| f.and_then(Field::uint).and_then(|v| u8::try_from(v).ok());
    for line in lines {
        if let Some(f) = prefixed_fields(line, "+QPINC:") {
            if f.first().is_some_and(|k| k.text() == "SC") {
                return Ok(PinAttempts {
                    pin: small(f.get(1)),
                    puk: small(f.get(2)),
                });
            }
        } else if let Some(f) = prefixed_fields(line, "^CPIN:") {
            return Ok(PinAttempts {
                pin: small(f.get(3)),
                puk: small(f.get(2)),
            });
        }
    }
    Err(AtError::Missing {
        what: "+QPINC/^CPIN",
        count: lines.len(),
    })
}

/// `+CFUN: <fun>` — 27.007 §8.2.
pub fn parse_cfun(line: &str) -> Result<u8, AtError> {
    fn rule(i: &str) -> IResult<&str, u8> {
        let (i, (_, _, fun, _)) = (
            tag_no_case("+CFUN:"),
            space0,
            dec_u8,
            opt(preceded(char(','), rest)),
        )
            .parse(i)?;
        Ok((i, fun))
    }
    all_consuming(rule)
        .parse(line.trim())
        .map(|(_, f)| f)
        .map_err(|_| AtError::parse("+CFUN", line))
}

/// Huawei `^CVOICE: <mode>,<sampling_rate>,<data_bit>,<frame_period>` [MM huawei; CD].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cvoice {
    /// Mode 0 means voice is supported/enabled.
    pub enabled: bool,
    pub sample_rate: u32,
    pub bits: u8,
    pub period_ms: u8,
}

/// `^CVOICE: 0,8000,16,20` [MM `mm_huawei_parse_cvoice_response`].
pub fn parse_cvoice(line: &str) -> Result<Cvoice, AtError> {
    let err = || AtError::parse("^CVOICE", line);
    let f = prefixed_fields(line, "^CVOICE:").ok_or_else(err)?;
    let n = |i: usize| f.get(i).and_then(Field::uint);
    if f.len() != 4 {
        return Err(err());
    }
    Ok(Cvoice {
        enabled: n(0).ok_or_else(err)? == 0,
        sample_rate: n(1).ok_or_else(err)?,
        bits: n(2).and_then(|v| u8::try_from(v).ok()).ok_or_else(err)?,
        period_ms: n(3).and_then(|v| u8::try_from(v).ok()).ok_or_else(err)?,
    })
}

/// `+CSCA: <sca>[,<tosca>]` — 27.005 §3.3.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csca {
    pub number: String,
    pub toa: Option<u8>,
}

/// Decodes a UCS-2 hex string (`002B0033…`) when every unit is an ASCII dial character; with
/// `AT+CSCS="UCS2"` the modem answers string parameters that way (bg111/asterisk-chan-dongle#129).
/// Requiring every unit to start with `00` keeps a real digit string from being misread.
fn ucs2_dial_string(s: &str) -> Option<String> {
    if s.len() < 8 || !s.len().is_multiple_of(4) || !is_hex(s) {
        return None;
    }
    s.as_bytes()
        .chunks(4)
        .map(|c| {
            let unit = std::str::from_utf8(c).ok()?;
            let v = u16::from_str_radix(unit, 16).ok()?;
            let ch = char::from_u32(u32::from(v))?;
            (v < 0x80 && (ch.is_ascii_digit() || "+*#".contains(ch))).then_some(ch)
        })
        .collect()
}

/// `+CSCA: "+27…",145` — 27.005 §3.3.1; a UCS-2 hex address (`"002B0032…"`) is decoded.
/// An empty address (sends will fail with `+CMS ERROR: 330`) comes back as an empty number.
pub fn parse_csca(line: &str) -> Result<Csca, AtError> {
    let err = || AtError::parse("+CSCA", line);
    let f = prefixed_fields(line, "+CSCA:").ok_or_else(err)?;
    let raw = f.first().ok_or_else(err)?.text().trim();
    let number = ucs2_dial_string(raw).unwrap_or_else(|| raw.to_owned());
    let toa = f
        .get(1)
        .and_then(Field::uint)
        .and_then(|v| u8::try_from(v).ok());
    Ok(Csca { number, toa })
}

/// One own number from `+CNUM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnNumber {
    pub alpha: Option<String>,
    pub number: String,
    pub toa: Option<u8>,
}

/// `+CNUM: [<alpha>],<number>,<type>[,…]` lines — 27.007 §7.1. Entries with an empty number
/// (`+CNUM: "Subscriber Number","",145`, `+CNUM: ,,145` [CD test/parse.c]) are skipped: they carry
/// no number, and an empty list is the normal "unknown" answer.
pub fn parse_cnum(lines: &[String]) -> Vec<OwnNumber> {
    lines
        .iter()
        .filter_map(|l| prefixed_fields(l, "+CNUM:"))
        .filter_map(|f| {
            let raw = f.get(1)?.text().trim();
            if raw.is_empty() {
                return None;
            }
            let number = ucs2_dial_string(raw).unwrap_or_else(|| raw.to_owned());
            Some(OwnNumber {
                alpha: f.first().and_then(Field::opt_text),
                number,
                toa: f
                    .get(2)
                    .and_then(Field::uint)
                    .and_then(|v| u8::try_from(v).ok()),
            })
        })
        .collect()
}

/// A call as listed by `+CLCC` (27.007 §7.18) or reported by Quectel `+QIND: "ccinfo"` and `^DSCI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub index: u32,
    /// `<dir>` 1: mobile terminated (incoming).
    pub incoming: bool,
    /// `<stat>`: 0 active, 1 held, 2 dialing, 3 alerting, 4 incoming, 5 waiting; Quectel ccinfo uses
    /// −1 for released, `^DSCI` uses 6 for ended.
    pub state: i32,
    /// `<mode>`: 0 voice.
    pub mode: u8,
    pub multiparty: bool,
    pub number: Option<String>,
    pub toa: Option<u8>,
}

/// `+CLCC: <id>,<dir>,<stat>,<mode>,<mpty>[,<number>,<type>[,<alpha>…]]` — 27.007 §7.18;
/// e.g. `+CLCC: 1,1,4,0,0,"+79139131234",145` [CD test/parse.c].
pub fn parse_clcc(line: &str) -> Result<Call, AtError> {
    let f = prefixed_fields(line, "+CLCC:").ok_or_else(|| AtError::parse("+CLCC", line))?;
    call_from_fields(&f, [0, 1, 2, 3, 4, 5, 6]).ok_or_else(|| AtError::parse("+CLCC", line))
}

/// Builds a [`Call`] from fields at positions `[index, dir, state, mode, mpty, number, type]`
/// (`usize::MAX` = absent). Shared by `+CLCC`, `+QIND: "ccinfo"` and `^DSCI`.
pub(crate) fn call_from_fields(f: &[Field<'_>], pos: [usize; 7]) -> Option<Call> {
    let get = |i: usize| f.get(i);
    let small = |i: usize| {
        get(i)
            .and_then(Field::uint)
            .and_then(|v| u8::try_from(v).ok())
    };
    Some(Call {
        index: get(pos[0])?.uint()?,
        incoming: get(pos[1])?.uint()? == 1,
        state: i32::try_from(get(pos[2])?.int()?).ok()?,
        mode: small(pos[3]).unwrap_or(0),
        multiparty: small(pos[4]) == Some(1),
        number: get(pos[5]).and_then(Field::opt_text),
        toa: small(pos[6]),
    })
}

// ---------------------------------------------------------------------------------------------
// Identity answers
// ---------------------------------------------------------------------------------------------

/// Strips any of the known vendor prefixes and surrounding quotes from an identity line.
fn identity_value<'a>(line: &'a str, prefixes: &[&str]) -> &'a str {
    let t = line.trim();
    let t = prefixes
        .iter()
        .find_map(|p| strip_prefix_ci(t, p))
        .unwrap_or(t);
    t.trim().trim_matches('"').trim()
}

fn digits_between(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// IMEI from `AT+CGSN` — 27.007 §5.4: bare digits (`867…`) or `+CGSN: 86…` / `+CGSN: "86…"`;
/// 14 to 17 digits (IMEI, IMEI+check digit, IMEISV).
pub fn parse_imei(lines: &[String]) -> Result<String, AtError> {
    lines
        .iter()
        .map(|l| identity_value(l, &["+CGSN:", "+GSN:", "IMEI:"]))
        .find(|v| digits_between(v, 14, 17))
        .map(str::to_owned)
        .ok_or(AtError::Missing {
            what: "IMEI",
            count: lines.len(),
        })
}

/// IMSI from `AT+CIMI` — 27.007 §5.6: 6 to 15 digits, bare or `+CIMI: …`.
pub fn parse_imsi(lines: &[String]) -> Result<String, AtError> {
    lines
        .iter()
        .map(|l| identity_value(l, &["+CIMI:"]))
        .find(|v| digits_between(v, 6, 15))
        .map(str::to_owned)
        .ok_or(AtError::Missing {
            what: "IMSI",
            count: lines.len(),
        })
}

/// Swaps each pair of nibbles of a BCD string and drops `F` padding (SIM EF contents, 31.102).
fn unswap_bcd(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len());
    for pair in b.chunks(2) {
        for &c in pair.iter().rev() {
            if c != b'F' && c != b'f' {
                out.push(char::from(c));
            }
        }
    }
    out
}

/// ICCID from any of its vendor forms [CQR; PGM] (docs/at-protocol.md, "Health"):
/// Quectel `+QCCID: 8944…`, SIMCom `+CCID: …` / `+ICCID: …` / `+CICCID: …`, Huawei `^ICCID: …`,
/// bare digits, and generic `+CRSM: 144,0,"98…"` (27.007 §8.18 reading EF_ICCID 0x2FE2, nibble-swapped,
/// `F`-padded). A value that starts `98` is nibble-swapped (ICCIDs start with the `89` telecom prefix,
/// ITU-T E.118), so it is unswapped whatever command produced it.
pub fn parse_iccid(lines: &[String]) -> Result<String, AtError> {
    let missing = || AtError::Missing {
        what: "ICCID",
        count: lines.len(),
    };
    for line in lines {
        let raw = if let Some(f) = prefixed_fields(line, "+CRSM:") {
            // sw1 144 (0x90) = success; anything else carries no ICCID.
            if f.first().and_then(Field::uint) != Some(144) {
                return Err(AtError::parse("+CRSM", line));
            }
            match f.get(2) {
                Some(d) => unswap_bcd(d.text().trim()),
                None => continue,
            }
        } else {
            identity_value(
                line,
                &[
                    "+QCCID:", "+CCID:", "+ICCID:", "+CICCID:", "^ICCID:", "ICCID:",
                ],
            )
            .to_owned()
        };
        let mut v = raw.trim_end_matches(['F', 'f']).to_owned();
        if v.starts_with("98") && is_hex(&v) {
            v = unswap_bcd(&raw);
        }
        if digits_between(&v, 18, 22) {
            return Ok(v);
        }
    }
    Err(missing())
}

/// The text answer of `AT+CGMI` / `AT+CGMM` / `AT+CGMR` (27.007 §5.1–5.3): the first non-empty line,
/// with an optional `+CGMI:`-style prefix removed (`prefix` is e.g. `"+CGMI:"`).
pub fn parse_text_answer(lines: &[String], prefix: &str) -> Result<String, AtError> {
    lines
        .iter()
        .map(|l| {
            let t = l.trim();
            strip_prefix_ci(t, prefix)
                .unwrap_or(t)
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .find(|t| !t.is_empty())
        .ok_or(AtError::Missing {
            what: "text answer",
            count: lines.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn cmgs() {
        // The composite script of docs/at-protocol.md, "Framing".
        assert_eq!(parse_cmgs("+CMGS: 17"), Ok(17));
        assert_eq!(parse_cmgs("+CMGS: 255,\"ack\""), Ok(255));
        assert!(parse_cmgs("+CMGS: 256").is_err());
        assert!(parse_cmgs("+CMGS:").is_err());
    }

    #[test]
    fn cmgr_standard() {
        // [PGM test_modem] "Hello raspberry pi"; 35 = 43 − 8 SMSC octets (docs/at-protocol.md,
        // "Receiving").
        let pdu = "07917248014000F3240B917247587706F400003110824115248012C8329BFD06C9C373B8B82C97E741F034";
        let r = parse_cmgr(&v(&["+CMGR: 0,,35", pdu])).unwrap();
        assert_eq!(
            r,
            StoredSms {
                index: None,
                stat: Some(0),
                alpha: None,
                length: 35,
                pdu: pdu.into()
            }
        );
    }

    #[test]
    fn cmgr_zte_without_stat() {
        // ZTE status report read [PGM test_modem] (docs/at-protocol.md, "Receiving").
        let r = parse_cmgr(&v(&[
            "+CMGR: ,,27",
            "0006D60B911326880736F4111011719551401110117195714000",
        ]))
        .unwrap();
        assert_eq!(r.stat, None);
        assert_eq!(r.length, 27);
    }

    #[test]
    fn cmgr_errors() {
        assert!(matches!(parse_cmgr(&[]), Err(AtError::Missing { .. })));
        assert!(parse_cmgr(&v(&["+CMGR: 0,,35"])).is_err());
        assert!(parse_cmgr(&v(&["+CMGR: 0,,35", "not hex"])).is_err());
        assert!(parse_cmgr(&v(&["+CMGR: x,,35", "00"])).is_err());
    }

    #[test]
    fn cmgl_listing() {
        // Entry format of 27.005 §3.4.2 (docs/at-protocol.md, "Listing").
        let lines = v(&[
            "+CMGL: 0,1,,23",
            "0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
            "+CMGL: 3,0,\"Bob\",35",
            "07917248014000F3240B917247587706F400003110824115248012C8329BFD06C9C373B8B82C97E741F034",
            "+CMGL: 4,0,,10",
            "+CMGL: 5,0,,10",
            "00",
        ]);
        let r = parse_cmgl(&lines);
        assert_eq!(r.len(), 4);
        let first = r[0].as_ref().unwrap();
        assert_eq!(
            (first.index, first.stat, first.length),
            (Some(0), Some(1), 23)
        );
        assert_eq!(r[1].as_ref().unwrap().alpha.as_deref(), Some("Bob"));
        assert!(r[2].is_err(), "entry 4 has no PDU line");
        assert_eq!(r[3].as_ref().unwrap().index, Some(5));
    }

    #[test]
    fn cpms_forms() {
        // Wavecom 4-field [PGM fakemodems].
        assert_eq!(
            parse_cpms("+CPMS: 14,50,14,50").unwrap(),
            vec![
                StorageUsage {
                    name: None,
                    used: 14,
                    total: 50
                },
                StorageUsage {
                    name: None,
                    used: 14,
                    total: 50
                }
            ]
        );
        // Set answer, 27.005 §3.2.2.
        assert_eq!(parse_cpms("+CPMS: 3,30,3,30,3,30").unwrap().len(), 3);
        // Read answer.
        let r = parse_cpms("+CPMS: \"SM\",3,30,\"ME\",0,100,\"SM\",3,30").unwrap();
        assert_eq!(
            r[1],
            StorageUsage {
                name: Some("ME".into()),
                used: 0,
                total: 100
            }
        );
        // Nokia S60 [PGM fakemodems].
        assert_eq!(parse_cpms("+CPMS: ,,,,,,,,").unwrap(), vec![]);
        assert!(parse_cpms("+CPMS: 1,2,3").is_err());
        assert_eq!(
            parse_cpms_support("+CPMS: (\"SM\",\"ME\"),(\"SM\"),(\"SM\")").unwrap(),
            vec![
                vec!["SM".to_string(), "ME".into()],
                vec!["SM".into()],
                vec!["SM".into()]
            ]
        );
        assert_eq!(
            parse_cpms_support("+CPMS: (),(),()").unwrap(),
            vec![Vec::<String>::new(); 3]
        );
    }

    #[test]
    fn csq() {
        let c = parse_csq("+CSQ: 18,99").unwrap();
        assert_eq!(c, Csq { rssi: 18, ber: 99 });
        assert_eq!(c.dbm(), Some(-77));
        assert_eq!(Csq { rssi: 0, ber: 0 }.dbm(), Some(-113));
        assert_eq!(Csq { rssi: 31, ber: 0 }.dbm(), Some(-51));
        assert_eq!(Csq { rssi: 99, ber: 99 }.dbm(), None);
        assert!(parse_csq("+CSQ: 18").is_err());
    }

    #[test]
    fn creg_forms() {
        // [CD test]: query form with bare hex LAC/CI.
        let r = parse_creg("+CREG: 2,1,9110,7E6").unwrap();
        assert_eq!(
            (r.n, r.stat, r.lac, r.ci, r.act),
            (Some(2), 1, Some(0x9110), Some(0x7E6), None)
        );
        // URC, stat only.
        let r = parse_creg("+CREG: 1").unwrap();
        assert_eq!((r.n, r.stat), (None, 1));
        // Query, no location.
        let r = parse_creg("+CREG: 0,1").unwrap();
        assert_eq!((r.n, r.stat, r.lac), (Some(0), 1, None));
        // URC with quoted LAC/CI and AcT.
        let r = parse_creg("+CREG: 1,\"00C3\",\"0000D2A1\",7").unwrap();
        assert_eq!(
            (r.n, r.stat, r.lac, r.ci, r.act),
            (None, 1, Some(0xC3), Some(0xD2A1), Some(7))
        );
        // Query with AcT, CEREG domain.
        let r = parse_creg("+CEREG: 2,5,\"1A2B\",\"01234567\",7").unwrap();
        assert_eq!(
            (r.domain, r.n, r.stat, r.act),
            (RegDomain::Eps, Some(2), 5, Some(7))
        );
        assert!(r.is_registered());
        let r = parse_creg("+CGREG: 2,\"00C3\",\"D2A1\"").unwrap();
        assert_eq!((r.domain, r.n, r.stat), (RegDomain::Gprs, None, 2));
        assert!(parse_creg("+CREG: x").is_err());
        assert!(parse_creg("+CSQ: 1").is_err());
    }

    #[test]
    fn cops() {
        // [QEC example; PGM].
        assert_eq!(
            parse_cops("+COPS: 0,0,\"CHINA MOBILE\",7").unwrap(),
            Cops {
                mode: 0,
                format: Some(0),
                operator: Some("CHINA MOBILE".into()),
                act: Some(7)
            }
        );
        assert_eq!(parse_cops("+COPS: 0").unwrap().operator, None);
    }

    #[test]
    fn cpin_and_attempts() {
        assert_eq!(parse_cpin("+CPIN: READY"), Ok(PinState::Ready));
        assert_eq!(parse_cpin("+CPIN: SIM PIN"), Ok(PinState::SimPin));
        assert_eq!(parse_cpin("+CPIN: SIM PUK"), Ok(PinState::SimPuk));
        assert_eq!(
            parse_cpin("+CPIN: PH-NET PIN"),
            Ok(PinState::Other("PH-NET PIN".into()))
        );
        assert!(parse_cpin("+CPIN:").is_err());
        assert_eq!(
            parse_pin_attempts(&v(&["+QPINC: \"SC\",3,10", "+QPINC: \"P2\",3,10"])).unwrap(),
            PinAttempts {
                pin: Some(3),
                puk: Some(10)
            }
        );
        assert_eq!(
            parse_pin_attempts(&v(&["^CPIN: READY,,10,3,10,3"])).unwrap(),
            PinAttempts {
                pin: Some(3),
                puk: Some(10)
            }
        );
    }

    #[test]
    fn cfun_cvoice() {
        assert_eq!(parse_cfun("+CFUN: 1"), Ok(1));
        // [MM mm_huawei_parse_cvoice_response; CD].
        assert_eq!(
            parse_cvoice("^CVOICE: 0,8000,16,20").unwrap(),
            Cvoice {
                enabled: true,
                sample_rate: 8000,
                bits: 16,
                period_ms: 20
            }
        );
        assert!(parse_cvoice("^CVOICE: 0").is_err());
    }

    #[test]
    fn csca() {
        assert_eq!(
            parse_csca("+CSCA: \"+27829135934\",145").unwrap(),
            Csca {
                number: "+27829135934".into(),
                toa: Some(145)
            }
        );
        // UCS-2 form (bg111/asterisk-chan-dongle#129).
        assert_eq!(
            parse_csca("+CSCA: \"002B0035003500300031\",145")
                .unwrap()
                .number,
            "+5501"
        );
        assert_eq!(parse_csca("+CSCA: \"\",129").unwrap().number, "");
    }

    #[test]
    fn cnum() {
        // [CD test/parse.c] odd and empty forms.
        assert_eq!(
            parse_cnum(&v(&[
                "+CNUM: \"Subscriber Number\",\"\",145",
                "+CNUM: ,,145"
            ])),
            vec![]
        );
        assert_eq!(
            parse_cnum(&v(&["+CNUM: \"Own\",\"+15551234567\",145"])),
            vec![OwnNumber {
                alpha: Some("Own".into()),
                number: "+15551234567".into(),
                toa: Some(145)
            }]
        );
        assert_eq!(parse_cnum(&v(&["+CNUM: ,\"5551234\",129"]))[0].alpha, None);
    }

    #[test]
    fn clcc() {
        // [CD at_response.c, test/parse.c].
        let c = parse_clcc("+CLCC: 1,1,4,0,0,\"+79139131234\",145").unwrap();
        assert_eq!(
            c,
            Call {
                index: 1,
                incoming: true,
                state: 4,
                mode: 0,
                multiparty: false,
                number: Some("+79139131234".into()),
                toa: Some(145)
            }
        );
        assert_eq!(parse_clcc("+CLCC: 1,0,0,0,0").unwrap().number, None);
    }

    #[test]
    fn identities() {
        assert_eq!(
            parse_imei(&v(&["867962040123456"])).unwrap(),
            "867962040123456"
        );
        assert_eq!(
            parse_imei(&v(&["+CGSN: 867962040123456"])).unwrap(),
            "867962040123456"
        );
        assert_eq!(
            parse_imei(&v(&["+CGSN: \"867962040123456\""])).unwrap(),
            "867962040123456"
        );
        assert!(parse_imei(&v(&["huawei"])).is_err());
        assert_eq!(
            parse_imsi(&v(&["234150123456789"])).unwrap(),
            "234150123456789"
        );
        let iccid = "89441000301234567890";
        for line in [
            "+QCCID: 89441000301234567890",
            "+CCID: \"89441000301234567890\"",
            "+ICCID: 89441000301234567890",
            "^ICCID: 98440100032143658709",
            "89441000301234567890",
            "+CRSM: 144,0,\"98440100032143658709\"",
        ] {
            assert_eq!(parse_iccid(&v(&[line])).unwrap(), iccid, "{line}");
        }
        // 19-digit ICCID padded with F in the EF.
        assert_eq!(
            parse_iccid(&v(&["+CRSM: 144,0,\"984401000321436587F9\""])).unwrap(),
            "8944100030123456789"
        );
        assert!(parse_iccid(&v(&["+CRSM: 106,130"])).is_err());
        assert_eq!(
            parse_text_answer(&v(&["", "huawei"]), "+CGMI:").unwrap(),
            "huawei"
        );
        assert_eq!(
            parse_text_answer(&v(&["+CGMI: Quectel"]), "+CGMI:").unwrap(),
            "Quectel"
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*", t in "[+^A-Z:0-9,\" ()-]{0,40}") {
            for line in [&s, &t] {
                let lines = vec![line.clone(), s.clone(), t.clone()];
                let _ = parse_cmgs(line);
                let _ = parse_cmgr(&lines);
                let _ = parse_cmgl(&lines);
                let _ = parse_cpms(line);
                let _ = parse_cpms_support(line);
                let _ = parse_csq(line);
                let _ = parse_creg(line);
                let _ = parse_cops(line);
                let _ = parse_cpin(line);
                let _ = parse_pin_attempts(&lines);
                let _ = parse_cfun(line);
                let _ = parse_cvoice(line);
                let _ = parse_csca(line);
                let _ = parse_cnum(&lines);
                let _ = parse_clcc(line);
                let _ = parse_imei(&lines);
                let _ = parse_imsi(&lines);
                let _ = parse_iccid(&lines);
                let _ = parse_text_answer(&lines, "+CGMI:");
            }
        }

        #[test]
        fn prefixed_inputs_never_panic(
            p in prop::sample::select(vec!["+CMGL: ", "+CPMS: ", "+CREG: ", "+CRSM: ", "+CSCA: ", "+CNUM: ", "+CLCC: "]),
            body in "[0-9A-F,\"() -]{0,30}",
        ) {
            let line = format!("{p}{body}");
            let lines = vec![line.clone(), body.clone()];
            let _ = parse_cmgl(&lines);
            let _ = parse_cpms(&line);
            let _ = parse_creg(&line);
            let _ = parse_iccid(&lines);
            let _ = parse_csca(&line);
            let _ = parse_cnum(&lines);
            let _ = parse_clcc(&line);
        }
    }
}
