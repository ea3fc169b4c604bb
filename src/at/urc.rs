//! Unsolicited result codes: every URC of docs/at-protocol.md,
//! "Unsolicited result codes", as a typed [`Urc`] variant.
//!
//! Owns the URC vocabulary and its parsers. It does not decide whether a line *is* unsolicited —
//! a `+CREG:` line answering `AT+CREG?` is an information response — that is the digester's job,
//! based on the prefixes the command in flight declared. An unrecognised or malformed line is never
//! an error here: it becomes [`Urc::Unknown`] so a firmware surprise is logged, not fatal.
//! Two-line URCs (`+CMT`, `+CDS`, `+CBM`: header then PDU line, 27.005 §3.4.1) are recognised by
//! `pdu_header` and completed by the digester once the PDU line has arrived.

use super::final_result::{CallEnd, call_end};
use super::lex::{Field, prefixed_fields, strip_prefix_ci};
use super::response::{Call, PinState, Registration, call_from_fields, parse_cpin, parse_creg};

/// CLI validity of `+CLIP` (27.007 §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CliValidity {
    /// 0: number available.
    Valid,
    /// 1: withheld by the caller.
    Withheld,
    /// 2: not available (interworking, payphone, …).
    Unavailable,
}

/// `+CLIP: <number>,<type>[,<subaddr>,<satype>[,<alpha>[,<CLI validity>]]]` (27.007 §7.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    /// The caller's number; `None` when empty (withheld or unavailable).
    pub number: Option<String>,
    pub toa: Option<u8>,
    pub alpha: Option<String>,
    /// From the last field when present; Wavecom's two-field form has none, so validity is then
    /// inferred from whether a number came.
    pub validity: CliValidity,
}

/// A storage location named by `+CMTI` / `+CDSI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageIndex {
    /// `<mem>` as sent: `"SM"`, `"ME"`, `"SR"`, or a number on some firmwares
    /// (`+CMTI: 0,111` \[CD]).
    pub storage: String,
    /// `None` for the invalid index `-1` seen in the wild (`+CMTI: "SM",-1` \[CD]; ignore it).
    pub index: Option<u32>,
}

/// An unsolicited result code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urc {
    // --- calls (27.007 / V.250) ---
    /// `RING` (V.250 §6.3.4).
    Ring,
    /// `+CRING: <type>` (27.007 §6.11), e.g. `VOICE`.
    CRing(String),
    /// `+CLIP: …` caller id (27.007 §7.6).
    Clip(Clip),
    /// `NO CARRIER` / `BUSY` / `NO ANSWER` / `NO DIALTONE` outside a call command.
    CallEnded(CallEnd),
    /// `+CLCC: …` with `AT+CLCC=1` (SIMCom) [MM simtech].
    Clcc(Call),
    // --- SMS (27.005 §3.4.1) ---
    /// `+CMTI: <mem>,<index>`: a new message was stored.
    NewMessage(StorageIndex),
    /// `+CMT: [<alpha>],<length>` + PDU line: a message delivered directly.
    Deliver {
        alpha: Option<String>,
        length: usize,
        pdu: String,
    },
    /// `+CDS: <length>` + PDU line: a status report delivered directly.
    StatusReport { length: usize, pdu: String },
    /// `+CDSI: <mem>,<index>`: a status report was stored.
    StatusReportStored(StorageIndex),
    /// `+CBM: <length>` + PDU line: a cell broadcast page.
    CellBroadcast { length: usize, pdu: String },
    // --- network ---
    /// `+CREG:` / `+CGREG:` / `+CEREG:` (27.007 §7.2, §10.1.20, §10.1.22).
    Registration(Registration),
    /// `+CUSD: <m>[,<str>,<dcs>]` (27.007 §7.15). Huawei sends `<str>` as packed-7-bit hex \[GAM].
    Ussd {
        status: u8,
        text: Option<String>,
        dcs: Option<u16>,
    },
    // --- Huawei periodic status [GAM at.c; MM huawei] ---
    /// `^RSSI:<rssi>`, 27.007 §8.5 scale.
    Rssi(u8),
    /// `^HCSQ:"LTE",59,50,161,24`.
    Hcsq { sysmode: String, values: Vec<u32> },
    /// `^MODE:<sys_mode>[,<sys_submode>]`.
    Mode { mode: u32, submode: Option<u32> },
    /// `^SRVST:<srv_status>`.
    ServiceStatus(u32),
    /// `^SIMST:<sim_state>[,<lock_state>]`.
    SimStatus { state: u32, lock: Option<u32> },
    /// `^BOOT:…` — periodic, not a reboot (gammu/gammu#266); payload verbatim.
    Boot(String),
    /// `^DSFLOWRPT:…` data-flow report, verbatim.
    DataFlowReport(String),
    /// `^NWTIME:…` network time, verbatim.
    NetworkTime(String),
    /// `^SMMEMFULL[:<mem>]` — SMS storage full \[CD]; payload verbatim (often empty).
    SmsMemoryFull(String),
    // --- Huawei calls [MM huawei; PGM fakemodems] ---
    /// `^ORIG:<idx>,<type>` call originated.
    Orig { index: u32, call_type: u32 },
    /// `^CONF:<idx>` alerting.
    Conf { index: u32 },
    /// `^CONN:<idx>,<type>` connected.
    Conn { index: u32, call_type: u32 },
    /// `^CEND:<idx>,<duration>,<end_status>[,<cc_cause>]` ended.
    Cend {
        index: u32,
        duration: u32,
        end_status: u32,
        cc_cause: Option<u32>,
    },
    /// A DTMF digit detected by the modem: Huawei `^DDTMF: 5`, SIMCom `+RXDTMF: 8`, SIM800
    /// `+DTMF: 8`, Quectel `+QTONEDET: 49` (ASCII code) [MM; CQR; PGM].
    Dtmf(char),
    // --- SIMCom [MM simtech] ---
    /// `VOICE CALL: BEGIN`.
    VoiceCallBegin,
    /// `VOICE CALL: END: 000041`; the number verbatim.
    VoiceCallEnd(String),
    /// `MISSED_CALL: 11:01AM 07712345678`; the payload verbatim.
    MissedCall(String),
    // --- Quectel [CQR at_parse.c; MM quectel] ---
    /// `+QIND: "ccinfo",<idx>,<dir>,<state>,<mode>,<mpty>,"<num>",<type>`; state −1 = released.
    CallInfo(Call),
    /// `+QIND: "csq",<rssi>,<ber>`.
    QuectelCsq { rssi: u8, ber: u8 },
    /// `+QIND: "act","<act>"`.
    QuectelAct(String),
    /// `+QIND: SMS DONE` / A76xx `SMS DONE` — SMS subsystem ready after boot.
    SmsDone,
    /// `+QIND: PB DONE` / `PB DONE` — phonebook ready after boot.
    PbDone,
    /// Any other `+QIND:` payload, verbatim.
    Qind(String),
    /// `+QUSIM: <n>`.
    Qusim(u32),
    /// `+QPSND: <n>`; 0 = playback ended [QEC §12.18].
    Qpsnd(u32),
    /// `^DSCI: <idx>,<dir>,<state>,<type>,<num>,<toa>`; state 3 connected, 6 ended \[CQI].
    Dsci(Call),
    /// `POWERED DOWN`.
    PoweredDown,
    // --- boot lines: "re-run init" (docs/at-protocol.md, "Unsolicited result codes") ---
    /// `RDY` (Quectel, SIM800): the module (re)started [MM rdy_handler].
    Ready,
    /// `+CFUN: <fun>` at boot.
    Cfun(u8),
    /// `+CPIN: <code>` at boot (or whenever no `AT+CPIN?` waits).
    Cpin(PinState),
    /// SIM800 `Call Ready`.
    CallReady,
    /// SIM800 `SMS Ready`.
    SmsReady,
    /// A76xx `*ATREADY: <n>`.
    AtReady(u32),
    /// `+CGEV: …` packet-domain event (27.007 §10.1.19), verbatim.
    Cgev(String),
    // --- ZTE [PGM test_modem] ---
    /// `+ZDONR: "METEOR",272,3,"CS_ONLY","ROAM_OFF"` network info, verbatim after the prefix.
    Zdonr(String),
    /// `+ZPASR: "UMTS"` service mode, unquoted.
    Zpasr(String),
    /// Anything else, verbatim. Never an error.
    Unknown(String),
}

impl Urc {
    /// Lines that mean the module (re)booted and its settings are back to defaults: re-run init
    /// (docs/at-protocol.md, "Unsolicited result codes"). `+CPIN:`/`+CFUN:` alone are not included:
    /// they also appear after a SIM hot-swap or a CFUN change the daemon made itself.
    pub fn is_boot_marker(&self) -> bool {
        matches!(
            self,
            Urc::Ready | Urc::AtReady(_) | Urc::CallReady | Urc::SmsReady
        )
    }
}

/// The header of a two-line URC, waiting for its PDU line (27.005 §3.4.1, PDU mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PduHeader {
    Cmt {
        alpha: Option<String>,
        length: usize,
    },
    Cds {
        length: usize,
    },
    Cbm {
        length: usize,
    },
}

impl PduHeader {
    pub(crate) fn complete(self, pdu: String) -> Urc {
        match self {
            PduHeader::Cmt { alpha, length } => Urc::Deliver { alpha, length, pdu },
            PduHeader::Cds { length } => Urc::StatusReport { length, pdu },
            PduHeader::Cbm { length } => Urc::CellBroadcast { length, pdu },
        }
    }
}

/// Recognises `+CMT: [<alpha>],<length>`, `+CDS: <length>`, `+CBM: <length>` (27.005 §3.4.1, PDU mode).
pub(crate) fn pdu_header(line: &str) -> Option<PduHeader> {
    if !line.starts_with('+') {
        return None;
    }
    let len = |f: Option<&Field<'_>>| f.and_then(Field::uint).map(|v| v as usize);
    if let Some(f) = prefixed_fields(line, "+CMT:") {
        return match f.as_slice() {
            [a, l] => Some(PduHeader::Cmt {
                alpha: a.opt_text(),
                length: len(Some(l))?,
            }),
            [l] => Some(PduHeader::Cmt {
                alpha: None,
                length: len(Some(l))?,
            }),
            _ => None,
        };
    }
    if let Some(f) = prefixed_fields(line, "+CDS:") {
        return (f.len() == 1)
            .then(|| len(f.first()))
            .flatten()
            .map(|length| PduHeader::Cds { length });
    }
    if let Some(f) = prefixed_fields(line, "+CBM:") {
        return (f.len() == 1)
            .then(|| len(f.first()))
            .flatten()
            .map(|length| PduHeader::Cbm { length });
    }
    None
}

fn storage_index(f: &[Field<'_>]) -> Option<StorageIndex> {
    match f {
        [mem, idx] => {
            let i = idx.int()?;
            Some(StorageIndex {
                storage: mem.text().to_owned(),
                index: u32::try_from(i).ok(),
            })
        }
        _ => None,
    }
}

/// `+CLIP:` in all its field counts: 27.007 §7.6 full form, `"+27821234567",145,,,,0`, and
/// Wavecom's `"num",145` [PGM fakemodems].
fn clip(f: &[Field<'_>]) -> Option<Clip> {
    let number = f.first()?.opt_text();
    let toa = f
        .get(1)
        .and_then(Field::uint)
        .and_then(|v| u8::try_from(v).ok());
    let alpha = f.get(4).and_then(Field::opt_text);
    let validity = match f.get(5).and_then(Field::uint) {
        Some(0) => CliValidity::Valid,
        Some(1) => CliValidity::Withheld,
        Some(2) => CliValidity::Unavailable,
        Some(_) => return None,
        None if number.is_some() => CliValidity::Valid,
        None => CliValidity::Unavailable,
    };
    Some(Clip {
        number,
        toa,
        alpha,
        validity,
    })
}

/// The digit of a DTMF URC: `5`, `"5"`, or an ASCII code for Quectel `+QTONEDET` (48–57, 65–68, 42, 35).
fn dtmf_digit(f: &[Field<'_>], ascii_code: bool) -> Option<char> {
    let t = f.first()?.text().trim();
    if ascii_code {
        let c = char::from(u8::try_from(t.parse::<u32>().ok()?).ok()?);
        return (c.is_ascii_digit() || matches!(c, 'A'..='D' | '*' | '#')).then_some(c);
    }
    let mut chars = t.chars();
    let c = chars.next()?;
    (chars.next().is_none() && (c.is_ascii_alphanumeric() || c == '*' || c == '#')).then_some(c)
}

fn qind(rest: &str) -> Option<Urc> {
    let body = rest.trim();
    match body {
        "SMS DONE" => return Some(Urc::SmsDone),
        "PB DONE" => return Some(Urc::PbDone),
        _ => {}
    }
    let f = super::lex::field_list(body).ok().map(|(_, f)| f)?;
    let small = |i: usize| {
        f.get(i)
            .and_then(Field::uint)
            .and_then(|v| u8::try_from(v).ok())
    };
    match f.first()?.text() {
        "ccinfo" => call_from_fields(f.get(1..)?, [0, 1, 2, 3, 4, 5, 6]).map(Urc::CallInfo),
        "csq" => Some(Urc::QuectelCsq {
            rssi: small(1)?,
            ber: small(2)?,
        }),
        "act" => Some(Urc::QuectelAct(f.get(1)?.text().to_owned())),
        _ => Some(Urc::Qind(body.to_owned())),
    }
}

/// Upper-cases a short URC prefix into `scratch` without allocating; longer prefixes (no known URC
/// has one) come back empty and match nothing.
fn upper<'a>(head: &str, scratch: &'a mut [u8; 16]) -> &'a str {
    let Some(dst) = scratch.get_mut(..head.len()) else {
        return "";
    };
    dst.copy_from_slice(head.as_bytes());
    dst.make_ascii_uppercase();
    std::str::from_utf8(dst).unwrap_or("")
}

/// Parses a typed URC. `None` means "not a URC we know" (or a known prefix with a malformed
/// payload); [`parse_urc`] maps that to [`Urc::Unknown`].
fn typed_urc(line: &str) -> Option<Urc> {
    let first = *line.as_bytes().first()?;
    let u32f = |f: &[Field<'_>], i: usize| f.get(i).and_then(Field::uint);
    match first {
        b'+' => {
            let colon = line.find(':')?;
            let head = line.get(..=colon)?;
            let rest = line.get(colon + 1..)?;
            let fields = || {
                super::lex::field_list(rest.trim_start())
                    .ok()
                    .filter(|(r, _)| r.is_empty())
                    .map(|(_, f)| f)
            };
            match upper(head, &mut [0; 16]) {
                "+CRING:" => Some(Urc::CRing(rest.trim().to_owned())),
                "+CLIP:" => clip(&fields()?).map(Urc::Clip),
                "+CLCC:" => call_from_fields(&fields()?, [0, 1, 2, 3, 4, 5, 6]).map(Urc::Clcc),
                "+CMTI:" => storage_index(&fields()?).map(Urc::NewMessage),
                "+CDSI:" => storage_index(&fields()?).map(Urc::StatusReportStored),
                "+CREG:" | "+CGREG:" | "+CEREG:" => parse_creg(line).ok().map(Urc::Registration),
                "+CUSD:" => {
                    let f = fields()?;
                    Some(Urc::Ussd {
                        status: u8::try_from(u32f(&f, 0)?).ok()?,
                        text: f.get(1).and_then(Field::opt_text),
                        dcs: u32f(&f, 2).and_then(|v| u16::try_from(v).ok()),
                    })
                }
                "+RXDTMF:" | "+DTMF:" => dtmf_digit(&fields()?, false).map(Urc::Dtmf),
                "+QTONEDET:" => dtmf_digit(&fields()?, true).map(Urc::Dtmf),
                "+QIND:" => qind(rest),
                "+QUSIM:" => u32f(&fields()?, 0).map(Urc::Qusim),
                "+QPSND:" => u32f(&fields()?, 0).map(Urc::Qpsnd),
                "+CFUN:" => u32f(&fields()?, 0)
                    .and_then(|v| u8::try_from(v).ok())
                    .map(Urc::Cfun),
                "+CPIN:" => parse_cpin(line).ok().map(Urc::Cpin),
                "+CGEV:" => Some(Urc::Cgev(rest.trim().to_owned())),
                "+ZDONR:" => Some(Urc::Zdonr(rest.trim().to_owned())),
                "+ZPASR:" => Some(Urc::Zpasr(rest.trim().trim_matches('"').to_owned())),
                _ => None,
            }
        }
        b'^' => {
            if let Some(rest) = strip_prefix_ci(line, "^SMMEMFULL") {
                return Some(Urc::SmsMemoryFull(
                    rest.trim_start_matches(':').trim().to_owned(),
                ));
            }
            let colon = line.find(':')?;
            let head = line.get(..=colon)?;
            let rest = line.get(colon + 1..)?;
            let fields = || {
                super::lex::field_list(rest.trim_start())
                    .ok()
                    .filter(|(r, _)| r.is_empty())
                    .map(|(_, f)| f)
            };
            match upper(head, &mut [0; 16]) {
                "^RSSI:" => u32f(&fields()?, 0)
                    .and_then(|v| u8::try_from(v).ok())
                    .map(Urc::Rssi),
                "^HCSQ:" => {
                    let f = fields()?;
                    let (mode, vals) = f.split_first()?;
                    Some(Urc::Hcsq {
                        sysmode: mode.text().to_owned(),
                        values: vals.iter().map(Field::uint).collect::<Option<Vec<_>>>()?,
                    })
                }
                "^MODE:" => {
                    let f = fields()?;
                    Some(Urc::Mode {
                        mode: u32f(&f, 0)?,
                        submode: u32f(&f, 1),
                    })
                }
                "^SRVST:" => u32f(&fields()?, 0).map(Urc::ServiceStatus),
                "^SIMST:" => {
                    let f = fields()?;
                    Some(Urc::SimStatus {
                        state: u32f(&f, 0)?,
                        lock: u32f(&f, 1),
                    })
                }
                "^BOOT:" => Some(Urc::Boot(rest.trim().to_owned())),
                "^DSFLOWRPT:" => Some(Urc::DataFlowReport(rest.trim().to_owned())),
                "^NWTIME:" => Some(Urc::NetworkTime(rest.trim().to_owned())),
                "^ORIG:" => {
                    let f = fields()?;
                    Some(Urc::Orig {
                        index: u32f(&f, 0)?,
                        call_type: u32f(&f, 1)?,
                    })
                }
                "^CONF:" => Some(Urc::Conf {
                    index: u32f(&fields()?, 0)?,
                }),
                "^CONN:" => {
                    let f = fields()?;
                    Some(Urc::Conn {
                        index: u32f(&f, 0)?,
                        call_type: u32f(&f, 1)?,
                    })
                }
                "^CEND:" => {
                    let f = fields()?;
                    Some(Urc::Cend {
                        index: u32f(&f, 0)?,
                        duration: u32f(&f, 1)?,
                        end_status: u32f(&f, 2)?,
                        cc_cause: u32f(&f, 3),
                    })
                }
                "^DDTMF:" => dtmf_digit(&fields()?, false).map(Urc::Dtmf),
                "^DSCI:" => {
                    call_from_fields(&fields()?, [0, 1, 2, 3, usize::MAX, 4, 5]).map(Urc::Dsci)
                }
                _ => None,
            }
        }
        _ => {
            if let Ok((_, end)) = call_end(line) {
                return Some(Urc::CallEnded(end));
            }
            match line {
                "RING" => return Some(Urc::Ring),
                "RDY" => return Some(Urc::Ready),
                "Call Ready" => return Some(Urc::CallReady),
                "SMS Ready" => return Some(Urc::SmsReady),
                "SMS DONE" => return Some(Urc::SmsDone),
                "PB DONE" => return Some(Urc::PbDone),
                "POWERED DOWN" => return Some(Urc::PoweredDown),
                "VOICE CALL: BEGIN" => return Some(Urc::VoiceCallBegin),
                _ => {}
            }
            if let Some(rest) = line.strip_prefix("VOICE CALL: END:") {
                return Some(Urc::VoiceCallEnd(rest.trim().to_owned()));
            }
            if let Some(rest) = line.strip_prefix("MISSED_CALL:") {
                return Some(Urc::MissedCall(rest.trim().to_owned()));
            }
            if let Some(rest) = line.strip_prefix("*ATREADY:") {
                return rest.trim().parse().ok().map(Urc::AtReady);
            }
            None
        }
    }
}

/// Parses a complete line as a URC; unknown or malformed lines become [`Urc::Unknown`].
/// Two-line URCs are not completed here (see the digester); a lone `+CMT:` header is `Unknown`.
pub fn parse_urc(line: &str) -> Urc {
    let t = line.trim();
    typed_urc(t).unwrap_or_else(|| Urc::Unknown(t.to_owned()))
}

/// Whether the line is a URC this module types (anything but [`Urc::Unknown`]), without keeping it.
pub(crate) fn typed(line: &str) -> Option<Urc> {
    typed_urc(line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::response::RegDomain;
    use proptest::prelude::*;

    fn call(index: u32, incoming: bool, state: i32, number: &str, toa: u8) -> Call {
        Call {
            index,
            incoming,
            state,
            mode: 0,
            multiparty: false,
            number: Some(number.into()),
            toa: Some(toa),
        }
    }

    #[test]
    fn call_urcs() {
        assert_eq!(parse_urc("RING"), Urc::Ring);
        assert_eq!(parse_urc("+CRING: VOICE"), Urc::CRing("VOICE".into()));
        // The full form (27.007 §7.6).
        assert_eq!(
            parse_urc("+CLIP: \"+27821234567\",145,,,,0"),
            Urc::Clip(Clip {
                number: Some("+27821234567".into()),
                toa: Some(145),
                alpha: None,
                validity: CliValidity::Valid
            })
        );
        // Wavecom two-field form [PGM fakemodems].
        assert_eq!(
            parse_urc("+CLIP: \"+27821234567\",145"),
            Urc::Clip(Clip {
                number: Some("+27821234567".into()),
                toa: Some(145),
                alpha: None,
                validity: CliValidity::Valid
            })
        );
        let Urc::Clip(c) = parse_urc("+CLIP: \"\",128,,,,1") else {
            panic!()
        };
        assert_eq!((c.number, c.validity), (None, CliValidity::Withheld));
        let Urc::Clip(c) = parse_urc("+CLIP: \"\",128,,,\"\",2") else {
            panic!()
        };
        assert_eq!(c.validity, CliValidity::Unavailable);
        let Urc::Clip(c) = parse_urc("+CLIP: \"+4477\",145,,,\"Alice\",0") else {
            panic!()
        };
        assert_eq!(c.alpha.as_deref(), Some("Alice"));
        assert_eq!(parse_urc("NO CARRIER"), Urc::CallEnded(CallEnd::NoCarrier));
        assert_eq!(parse_urc("BUSY"), Urc::CallEnded(CallEnd::Busy));
        assert_eq!(parse_urc("NO ANSWER"), Urc::CallEnded(CallEnd::NoAnswer));
        assert_eq!(
            parse_urc("NO DIALTONE"),
            Urc::CallEnded(CallEnd::NoDialtone)
        );
        assert_eq!(
            parse_urc("+CLCC: 1,1,4,0,0,\"+79139131234\",145"),
            Urc::Clcc(call(1, true, 4, "+79139131234", 145))
        );
    }

    #[test]
    fn sms_urcs() {
        assert_eq!(
            parse_urc("+CMTI: \"SM\",3"),
            Urc::NewMessage(StorageIndex {
                storage: "SM".into(),
                index: Some(3)
            })
        );
        // [CD at_response.c, test/parse.c].
        assert_eq!(
            parse_urc("+CMTI: \"SM\",-1"),
            Urc::NewMessage(StorageIndex {
                storage: "SM".into(),
                index: None
            })
        );
        assert_eq!(
            parse_urc("+CMTI: 0,111"),
            Urc::NewMessage(StorageIndex {
                storage: "0".into(),
                index: Some(111)
            })
        );
        assert_eq!(
            parse_urc("+CDSI: \"SR\",57"),
            Urc::StatusReportStored(StorageIndex {
                storage: "SR".into(),
                index: Some(57)
            })
        );
        assert_eq!(
            pdu_header("+CMT: ,24"),
            Some(PduHeader::Cmt {
                alpha: None,
                length: 24
            })
        );
        assert_eq!(
            pdu_header("+CMT: \"Bob\",24"),
            Some(PduHeader::Cmt {
                alpha: Some("Bob".into()),
                length: 24
            })
        );
        assert_eq!(pdu_header("+CDS: 24"), Some(PduHeader::Cds { length: 24 }));
        assert_eq!(pdu_header("+CBM: 88"), Some(PduHeader::Cbm { length: 88 }));
        assert_eq!(pdu_header("+CMTI: \"SM\",3"), None);
        assert_eq!(pdu_header("+CMT: x"), None);
        assert_eq!(
            parse_urc("+CMTI: \"SM\""),
            Urc::Unknown("+CMTI: \"SM\"".into())
        );
    }

    #[test]
    fn network_urcs() {
        let Urc::Registration(r) = parse_urc("+CREG: 1,\"00C3\",\"0000D2A1\",7") else {
            panic!()
        };
        assert_eq!(
            (r.domain, r.n, r.stat, r.act),
            (RegDomain::Cs, None, 1, Some(7))
        );
        let Urc::Registration(r) = parse_urc("+CEREG: 5") else {
            panic!()
        };
        assert_eq!((r.domain, r.stat), (RegDomain::Eps, 5));
        assert_eq!(
            parse_urc("+CUSD: 0,\"Balance 1,23\",15"),
            Urc::Ussd {
                status: 0,
                text: Some("Balance 1,23".into()),
                dcs: Some(15)
            }
        );
        assert_eq!(
            parse_urc("+CUSD: 2"),
            Urc::Ussd {
                status: 2,
                text: None,
                dcs: None
            }
        );
    }

    #[test]
    fn huawei_urcs() {
        // Formats from docs/at-protocol.md, "Unsolicited result codes" [GAM at.c; MM huawei; PGM
        // fakemodems].
        assert_eq!(parse_urc("^RSSI:18"), Urc::Rssi(18));
        assert_eq!(parse_urc("^RSSI: 25"), Urc::Rssi(25));
        assert_eq!(
            parse_urc("^HCSQ:\"LTE\",59,50,161,24"),
            Urc::Hcsq {
                sysmode: "LTE".into(),
                values: vec![59, 50, 161, 24]
            }
        );
        assert_eq!(
            parse_urc("^MODE:3,3"),
            Urc::Mode {
                mode: 3,
                submode: Some(3)
            }
        );
        assert_eq!(
            parse_urc("^MODE: 2"),
            Urc::Mode {
                mode: 2,
                submode: None
            }
        );
        assert_eq!(parse_urc("^SRVST:0"), Urc::ServiceStatus(0));
        assert_eq!(
            parse_urc("^SIMST:1"),
            Urc::SimStatus {
                state: 1,
                lock: None
            }
        );
        assert_eq!(
            parse_urc("^BOOT:27710117,0,0,0,75"),
            Urc::Boot("27710117,0,0,0,75".into())
        );
        assert_eq!(
            parse_urc("^DSFLOWRPT:0000001E,00000000,00000000,0000000000000000"),
            Urc::DataFlowReport("0000001E,00000000,00000000,0000000000000000".into())
        );
        assert_eq!(
            parse_urc("^NWTIME:19/05/10,14:02:31+8,00"),
            Urc::NetworkTime("19/05/10,14:02:31+8,00".into())
        );
        assert_eq!(parse_urc("^SMMEMFULL"), Urc::SmsMemoryFull(String::new()));
        assert_eq!(
            parse_urc("^SMMEMFULL: \"SM\""),
            Urc::SmsMemoryFull("\"SM\"".into())
        );
        assert_eq!(
            parse_urc("^ORIG:1,0"),
            Urc::Orig {
                index: 1,
                call_type: 0
            }
        );
        assert_eq!(parse_urc("^CONF:1"), Urc::Conf { index: 1 });
        assert_eq!(
            parse_urc("^CONN:1,0"),
            Urc::Conn {
                index: 1,
                call_type: 0
            }
        );
        assert_eq!(
            parse_urc("^CEND:1,5,29,16"),
            Urc::Cend {
                index: 1,
                duration: 5,
                end_status: 29,
                cc_cause: Some(16)
            }
        );
        assert_eq!(
            parse_urc("^CEND:1,0,104"),
            Urc::Cend {
                index: 1,
                duration: 0,
                end_status: 104,
                cc_cause: None
            }
        );
        assert_eq!(parse_urc("^DDTMF:5"), Urc::Dtmf('5'));
    }

    #[test]
    fn simcom_quectel_urcs() {
        // [MM simtech; PGM modem.py].
        assert_eq!(parse_urc("VOICE CALL: BEGIN"), Urc::VoiceCallBegin);
        assert_eq!(
            parse_urc("VOICE CALL: END: 000041"),
            Urc::VoiceCallEnd("000041".into())
        );
        assert_eq!(
            parse_urc("MISSED_CALL: 11:01AM 07712345678"),
            Urc::MissedCall("11:01AM 07712345678".into())
        );
        assert_eq!(parse_urc("+RXDTMF: 8"), Urc::Dtmf('8'));
        assert_eq!(parse_urc("+DTMF: #"), Urc::Dtmf('#'));
        // [CQR at_parse.c, README log].
        assert_eq!(
            parse_urc("+QIND: \"ccinfo\",2,0,3,0,0,\"XXXX\",129"),
            Urc::CallInfo(call(2, false, 3, "XXXX", 129))
        );
        assert_eq!(
            parse_urc("+QIND: \"ccinfo\",1,1,-1,0,0,\"+447700900123\",145"),
            Urc::CallInfo(call(1, true, -1, "+447700900123", 145))
        );
        assert_eq!(
            parse_urc("+QIND: \"csq\",27,99"),
            Urc::QuectelCsq { rssi: 27, ber: 99 }
        );
        assert_eq!(
            parse_urc("+QIND: \"act\",\"LTE\""),
            Urc::QuectelAct("LTE".into())
        );
        assert_eq!(parse_urc("+QIND: SMS DONE"), Urc::SmsDone);
        assert_eq!(parse_urc("+QIND: PB DONE"), Urc::PbDone);
        assert_eq!(
            parse_urc("+QIND: \"FOTA\",\"START\""),
            Urc::Qind("\"FOTA\",\"START\"".into())
        );
        assert_eq!(parse_urc("+QUSIM: 1"), Urc::Qusim(1));
        assert_eq!(parse_urc("+QTONEDET: 49"), Urc::Dtmf('1'));
        assert_eq!(parse_urc("+QTONEDET: 35"), Urc::Dtmf('#'));
        assert_eq!(
            parse_urc("+QTONEDET: 7"),
            Urc::Unknown("+QTONEDET: 7".into())
        );
        assert_eq!(parse_urc("+QPSND: 0"), Urc::Qpsnd(0));
        assert_eq!(
            parse_urc("^DSCI: 4,1,3,0,+XXXX,145"),
            Urc::Dsci(call(4, true, 3, "+XXXX", 145))
        );
        assert_eq!(parse_urc("POWERED DOWN"), Urc::PoweredDown);
    }

    #[test]
    fn boot_and_zte_urcs() {
        // Boot sequences of docs/at-protocol.md, "Unsolicited result codes" (Quectel, SIM800,
        // A76xx).
        assert_eq!(parse_urc("RDY"), Urc::Ready);
        assert!(parse_urc("RDY").is_boot_marker());
        assert_eq!(parse_urc("+CFUN: 1"), Urc::Cfun(1));
        assert_eq!(parse_urc("+CPIN: READY"), Urc::Cpin(PinState::Ready));
        assert_eq!(parse_urc("Call Ready"), Urc::CallReady);
        assert_eq!(parse_urc("SMS Ready"), Urc::SmsReady);
        assert_eq!(parse_urc("*ATREADY: 1"), Urc::AtReady(1));
        assert_eq!(parse_urc("SMS DONE"), Urc::SmsDone);
        assert_eq!(parse_urc("PB DONE"), Urc::PbDone);
        assert_eq!(
            parse_urc("+CGEV: EPS PDN ACT 1"),
            Urc::Cgev("EPS PDN ACT 1".into())
        );
        // [PGM test_modem].
        assert_eq!(
            parse_urc("+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\""),
            Urc::Zdonr("\"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"".into())
        );
        assert_eq!(parse_urc("+ZPASR: \"UMTS\""), Urc::Zpasr("UMTS".into()));
        assert_eq!(parse_urc("+FOO: 1"), Urc::Unknown("+FOO: 1".into()));
        assert_eq!(parse_urc("hello"), Urc::Unknown("hello".into()));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*", p in prop::sample::select(vec![
            "+CLIP:", "+CMTI:", "+QIND:", "^CEND:", "^HCSQ:", "+CUSD:", "+QTONEDET:", "^DSCI:", "+CMT:", "+CREG:",
        ]), body in "[0-9A-Z,\"+ -]{0,30}") {
            let _ = parse_urc(&s);
            let _ = pdu_header(&s);
            let line = format!("{p}{body}");
            let _ = parse_urc(&line);
            let _ = pdu_header(&line);
        }
    }
}
