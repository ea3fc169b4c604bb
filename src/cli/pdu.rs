//! `gsmgate pdu encode|decode`: debugging tools for modem work. Their JSON (one object per part
//! with the hex PDU and the `AT+CMGS` length; every field of a decoded PDU) is an interface people
//! script against and paste into bug reports (README.md, "Reference"), so it changes only with care.
//!
//! Wiring only: arguments are validated by clap (a bad number, duration or direction is a usage
//! error, exit 2), the work is done by `crate::pdu`, and the JSON is built here so the library types
//! stay free of a serialisation format. A PDU that does not decode exits 1 with exactly one line on
//! stderr naming the fault and the octet, because that line is what people paste into bug reports.

use std::io::Write;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::pdu::{
    Address, Body, Dcs, Direction, InformationElement, Pdu, PduError, SubmitOptions, Tpdu,
    UserData, Validity, status_meaning, submits_for_text, to_hex,
};

#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Encode TEXT as SMS-SUBMIT PDUs, one JSON object per line per part.
    Encode {
        /// Destination: +international, national digits, or an alphanumeric name.
        #[arg(long, value_parser = parse_address)]
        to: Address,
        /// Ask the network for a status report (TP-SRR).
        #[arg(long)]
        status_report: bool,
        /// Relative validity period: a number with m, h, d or w (30m, 16h, 4d, 5w), at most 63w.
        #[arg(long, value_parser = parse_validity)]
        validity: Option<Validity>,
        /// Concatenation reference used when the text needs several parts.
        #[arg(long, default_value_t = 0)]
        reference: u16,
        /// Use a 16-bit concatenation reference (152 septets / 66 units per part).
        #[arg(long)]
        sixteen_bit_reference: bool,
        /// The message text.
        text: String,
    },
    /// Decode a PDU given as hex (SMSC prefix included) and print every field as JSON.
    Decode {
        /// to-mobile: SMS-DELIVER / SMS-STATUS-REPORT; from-mobile: SMS-SUBMIT. Default: try both.
        #[arg(long, value_enum)]
        direction: Option<DirectionArg>,
        /// The PDU in hex, as +CMGR / +CMGL / +CMT print it.
        hex: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    ToMobile,
    FromMobile,
}

fn parse_address(s: &str) -> Result<Address, String> {
    Address::parse(s).map_err(|e| e.to_string())
}

/// "30m" / "16h" / "4d" / "5w" → the relative validity period that lasts at least that long.
fn parse_validity(s: &str) -> Result<Validity, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number followed by m, h, d or w"))?;
    let per = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{s:?}: unit must be m, h, d or w")),
    };
    if n == 0 {
        return Err(format!("{s:?}: validity must be positive"));
    }
    n.checked_mul(per)
        .and_then(Validity::relative_from_secs)
        .ok_or_else(|| {
            format!("{s:?}: longer than the 63 weeks a relative validity period can hold")
        })
}

pub fn run(cmd: PduCommand) -> ExitCode {
    match cmd {
        PduCommand::Encode {
            to,
            status_report,
            validity,
            reference,
            sixteen_bit_reference,
            text,
        } => {
            let opts = SubmitOptions {
                status_report,
                validity: validity.unwrap_or(Validity::None),
                concat_reference: reference,
                sixteen_bit_reference,
            };
            match encode_lines(&to, &text, &opts) {
                Ok(lines) => {
                    let mut out = std::io::stdout().lock();
                    for l in lines {
                        // A closed stdout (a pipe into `head`) is not an error worth a message.
                        let _ = writeln!(out, "{l}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        PduCommand::Decode { direction, hex } => {
            let given = direction.map(|d| match d {
                DirectionArg::ToMobile => Direction::ToMobile,
                DirectionArg::FromMobile => Direction::FromMobile,
            });
            match decode_json(&hex, given) {
                Ok(v) => {
                    let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                    let _ = writeln!(std::io::stdout().lock(), "{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    }
}

fn fail(e: &PduError) -> ExitCode {
    let line = match e {
        PduError::BadHex { position } => format!("error: bad hex: {e} (octet {})", position / 2),
        PduError::OddHex { .. } => format!("error: bad hex: {e}"),
        _ => format!("error: {e}"),
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    ExitCode::from(super::EXIT_FAILURE)
}

/// The JSON lines of `gsmgate pdu encode`.
pub fn encode_lines(
    to: &Address,
    text: &str,
    opts: &SubmitOptions,
) -> Result<Vec<String>, PduError> {
    let pdus = submits_for_text(to, text, opts)?;
    let parts = pdus.len();
    pdus.iter()
        .enumerate()
        .map(|(i, p)| {
            let bytes = p.try_encode()?;
            let encoding = match &p.tpdu {
                Tpdu::Submit(s) => s.dcs.alphabet().name(),
                _ => "",
            };
            Ok(json!({
                "pdu": to_hex(&bytes),
                "tpdu_length": bytes.len() - 1,
                "part": i + 1,
                "parts": parts,
                "encoding": encoding,
            })
            .to_string())
        })
        .collect()
}

/// The JSON document of `gsmgate pdu decode`.
pub fn decode_json(hex: &str, dir: Option<Direction>) -> Result<Value, PduError> {
    let bytes = crate::pdu::hex_to_bytes(hex)?;
    let (pdu, dir, source) = match dir {
        Some(d) => (Pdu::decode(&bytes, d)?, d, "given"),
        None => {
            let (p, d) = Pdu::decode_any(&bytes)?;
            (p, d, "detected")
        }
    };
    let smsc_len = 1 + usize::from(bytes.first().copied().unwrap_or(0));
    let fo = bytes.get(smsc_len).copied().unwrap_or(0);
    let mut v = json!({
        "type": pdu.tpdu.name(),
        "direction": match dir { Direction::ToMobile => "to-mobile", Direction::FromMobile => "from-mobile" },
        "direction_source": source,
        "smsc": pdu.smsc.as_ref().map(address_json),
        "first_octet": format!("{fo:02X}"),
        "tpdu_length": bytes.len().saturating_sub(smsc_len),
    });
    let fields = match &pdu.tpdu {
        Tpdu::Deliver(d) => {
            let mut m = json!({
                "originator": address_json(&d.originator),
                "pid": d.pid,
                "dcs": dcs_json(d.dcs),
                "timestamp": d.timestamp.to_rfc3339(),
                "flags": {
                    "more_messages_to_send": d.more_messages_to_send,
                    "status_report_indication": d.status_report_indication,
                    "reply_path": d.reply_path,
                    "user_data_header": !d.user_data.header.is_empty(),
                },
            });
            merge(&mut m, user_data_json(&d.user_data));
            m
        }
        Tpdu::Submit(s) => {
            let mut m = json!({
                "mr": s.message_reference,
                "destination": address_json(&s.destination),
                "pid": s.pid,
                "dcs": dcs_json(s.dcs),
                "validity": validity_json(&s.validity),
                "flags": {
                    "status_report_request": s.status_report_request,
                    "reject_duplicates": s.reject_duplicates,
                    "reply_path": s.reply_path,
                    "user_data_header": !s.user_data.header.is_empty(),
                },
            });
            merge(&mut m, user_data_json(&s.user_data));
            m
        }
        Tpdu::StatusReport(r) => {
            let mut m = json!({
                "mr": r.message_reference,
                "recipient": address_json(&r.recipient),
                "timestamp": r.timestamp.to_rfc3339(),
                "discharge_time": r.discharge_time.to_rfc3339(),
                "status": { "code": r.status, "hex": format!("{:02X}", r.status), "meaning": status_meaning(r.status), "delivered": r.delivered() },
                "flags": {
                    "status_report_qualifier": if r.status_report_qualifier { "command" } else { "submit" },
                    "more_messages_to_send": r.more_messages_to_send,
                },
                "pid": r.pid,
                "dcs": r.dcs.map(dcs_json),
            });
            if let Some(ud) = &r.user_data {
                merge(&mut m, user_data_json(ud));
            }
            m
        }
    };
    merge(&mut v, fields);
    Ok(v)
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

fn address_json(a: &Address) -> Value {
    json!({ "number": a.to_string(), "type_of_number": a.ton.name(), "npi": a.npi, "toa": a.toa() })
}

fn dcs_json(d: Dcs) -> Value {
    json!({
        "raw": d.raw,
        "hex": format!("{:02X}", d.raw),
        "alphabet": d.alphabet().name(),
        "class": d.class(),
        "compressed": d.compressed(),
        "message_waiting": d.message_waiting().map(|m| json!({"active": m.active, "kind": m.kind, "discard": m.discard})),
    })
}

fn validity_json(v: &Validity) -> Value {
    match v {
        Validity::None => json!({ "format": "none" }),
        Validity::Relative(r) => {
            json!({ "format": "relative", "raw": r, "seconds": Validity::relative_secs(*r) })
        }
        Validity::Absolute(t) => json!({ "format": "absolute", "until": t.to_rfc3339() }),
        Validity::Enhanced(e) => json!({ "format": "enhanced", "raw": to_hex(e) }),
    }
}

fn user_data_json(ud: &UserData) -> Value {
    let udh: Vec<Value> = ud
        .header
        .iter()
        .map(|ie| match ie {
            InformationElement::Concat8 { reference, total, sequence } => {
                json!({"type": "concat8", "reference": reference, "total": total, "sequence": sequence})
            }
            InformationElement::Concat16 { reference, total, sequence } => {
                json!({"type": "concat16", "reference": reference, "total": total, "sequence": sequence})
            }
            InformationElement::Port8 { destination, source } => {
                json!({"type": "port8", "destination": destination, "source": source})
            }
            InformationElement::Port16 { destination, source } => {
                json!({"type": "port16", "destination": destination, "source": source})
            }
            InformationElement::Other { iei, data } => json!({"type": "other", "iei": iei, "data": to_hex(data)}),
        })
        .collect();
    match &ud.body {
        Body::Text(t) => json!({ "udh": udh, "text": t }),
        Body::Data(d) => json!({ "udh": udh, "data": to_hex(d) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_durations() {
        assert_eq!(parse_validity("30m"), Ok(Validity::Relative(5)));
        assert_eq!(parse_validity("16h"), Ok(Validity::Relative(151)));
        assert_eq!(parse_validity("4d"), Ok(Validity::Relative(170)));
        assert_eq!(parse_validity("5w"), Ok(Validity::Relative(197)));
        assert_eq!(parse_validity("63w"), Ok(Validity::Relative(255)));
        assert!(parse_validity("64w").is_err());
        assert!(parse_validity("0m").is_err());
        assert!(parse_validity("5").is_err());
        assert!(parse_validity("m").is_err());
        assert!(parse_validity("99999999999999999999w").is_err());
    }

    #[test]
    fn decode_json_names_fields() {
        let v = decode_json("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", None).unwrap();
        assert_eq!(v["type"], "SMS-SUBMIT");
        assert_eq!(v["direction_source"], "detected");
        assert_eq!(v["destination"]["number"], "+46708251358");
        assert_eq!(v["validity"]["seconds"], 4 * 86_400);
        assert_eq!(v["text"], "hellohello");
        assert_eq!(v["tpdu_length"], 23);
    }
}
