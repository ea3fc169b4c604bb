//! SMS in PDU mode as the host drives it: the message-service settings (`AT+CMGF`, `AT+CSMS`,
//! `AT+CMMS`, `AT+CNMI`, `AT+CSCA`, `AT+CSMP`), sending (`AT+CMGS` and its `> ` prompt, `AT+CMSS`
//! from storage), writing to storage (`AT+CMGW`) and acknowledging (`AT+CNMA`). What is stored and
//! how it is read is `storage.rs`; how MT messages reach the host is `delivery.rs`.
//!
//! Why the modem picks the TP-MR: real modems ignore the reference in the PDU and use their own,
//! counting per modem and wrapping at 256, which is what the daemon must match status reports on.
//! Text mode is selectable but not simulated beyond that (docs/simulator.md, "Limits").

use std::time::Duration;

use super::{Input, ModemCore, Outcome, PromptKind, Stored, Timer, tpdu_len};
use crate::sim::command::{Arg, Command, Form};
use crate::sim::profile::Profile;

impl ModemCore {
    /// Message-service settings and storage selection; `None` for any other command.
    pub(super) fn sms_setting(&mut self, cmd: &Command) -> Option<Outcome> {
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let p = self.spec.profile;
        let o = match (cmd.name.as_str(), &cmd.form) {
            ("+CMGF", Form::Set) => match a(0) {
                Some(v @ 0..=1) => {
                    self.settings.cmgf = v as u8;
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(50),
            },
            ("+CMGF", Form::Read) => Outcome::Ok(vec![format!("+CMGF: {}", self.settings.cmgf)]),
            ("+CMGF", Form::Test) => Outcome::Ok(vec!["+CMGF: (0,1)".into()]),
            ("+CSMS", Form::Set) => match a(0) {
                Some(v @ 0..=1) => {
                    self.settings.csms = v as u8;
                    Outcome::Ok(vec!["+CSMS: 1,1,1".into()])
                }
                _ => Outcome::Cms(303),
            },
            ("+CSMS", Form::Read) => {
                Outcome::Ok(vec![format!("+CSMS: {},1,1,1", self.settings.csms)])
            }
            ("+CSMS", Form::Test) => Outcome::Ok(vec!["+CSMS: (0,1)".into()]),
            ("+CMMS", Form::Set) => {
                self.settings.cmms = a(0).unwrap_or(0).clamp(0, 2) as u8;
                Outcome::Ok(vec![])
            }
            ("+CMMS", Form::Read) => Outcome::Ok(vec![format!("+CMMS: {}", self.settings.cmms)]),
            ("+CMMS", Form::Test) => Outcome::Ok(vec!["+CMMS: (0-2)".into()]),
            ("+CNMI", Form::Set) => {
                let mut v = self.settings.cnmi;
                for (i, slot) in v.iter_mut().enumerate() {
                    match args.get(i) {
                        Some(Arg::Empty) | None => {}
                        Some(x) => match x.int() {
                            Some(n @ 0..=3) => *slot = n as u8,
                            _ => return Some(Outcome::Cms(303)),
                        },
                    }
                }
                self.settings.cnmi = v;
                Outcome::Ok(vec![])
            }
            ("+CNMI", Form::Read) => {
                let c = self.settings.cnmi;
                Outcome::Ok(vec![format!(
                    "+CNMI: {},{},{},{},{}",
                    c[0], c[1], c[2], c[3], c[4]
                )])
            }
            ("+CNMI", Form::Test) => {
                Outcome::Ok(vec!["+CNMI: (0-2),(0-3),(0,2,3),(0-2),(0,1)".into()])
            }
            ("+CSCA", Form::Read) => {
                if p == Profile::Zte && self.zte_csca_busy {
                    self.zte_csca_busy = false;
                    return Some(Outcome::Cme(14));
                }
                match &self.smsc {
                    Some(s) => Outcome::Ok(vec![format!("+CSCA: \"{}\",145", self.cs(s))]),
                    None => Outcome::Ok(vec!["+CSCA: \"\",129".into()]),
                }
            }
            ("+CSCA", Form::Set) => {
                self.smsc = args
                    .first()
                    .and_then(Arg::text)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string);
                Outcome::Ok(vec![])
            }
            ("+CSMP", Form::Set) => {
                if p == Profile::Zte {
                    // ZTE/M6280 clear the SMSC when CSMP is sent (python-gsmmodem's fakemodems; its
                    // modem.py restores the SMSC after CSMP for that reason).
                    self.smsc = None;
                }
                Outcome::Ok(vec![])
            }
            ("+CSMP", Form::Read) => Outcome::Ok(vec!["+CSMP: 17,167,0,0".into()]),
            ("+CSDH", _) => Outcome::Ok(vec![]),
            ("+CPMS", _) => self.cpms(cmd, &args),
            ("+CSCA", Form::Test) => Outcome::Ok(vec![]),
            _ => return None,
        };
        Some(o)
    }

    /// Sending, writing, listing, reading, deleting and acknowledging; `None` for any other.
    pub(super) fn sms_message(&mut self, cmd: &Command) -> Option<Outcome> {
        let name = cmd.name.as_str();
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let o = match (name, &cmd.form) {
            ("+CMGS", Form::Set) | ("+CMGW", Form::Set) => {
                if self.settings.cmgf != 0 {
                    // Text mode sending is not simulated (docs/simulator.md).
                    return Some(Outcome::Cms(302));
                }
                match a(0) {
                    Some(n @ 1..=255) if name == "+CMGS" => {
                        Outcome::Prompt(PromptKind::Send { len: n as usize })
                    }
                    Some(n @ 1..=255) => Outcome::Prompt(PromptKind::Write {
                        len: n as usize,
                        stat: a(1).filter(|s| (0..=3).contains(s)).unwrap_or(2) as u8,
                    }),
                    _ => Outcome::Cms(304),
                }
            }
            ("+CMGS" | "+CMGW" | "+CMSS" | "+CMGR" | "+CMGD" | "+CMGL", Form::Test) => match name {
                "+CMGD" => Outcome::Ok(vec![format!("+CMGD: ({}),(0-4)", self.index_range())]),
                "+CMGL" => Outcome::Ok(vec![if self.settings.cmgf == 0 {
                    "+CMGL: (0-4)".into()
                } else {
                    "+CMGL: (\"REC UNREAD\",\"REC READ\",\"STO UNSENT\",\"STO SENT\",\"ALL\")"
                        .into()
                }]),
                _ => Outcome::Ok(vec![]),
            },
            ("+CMSS", Form::Set) => self.cmss(&args),
            ("+CMGL", Form::Exec | Form::Set) => self.cmgl(&args),
            ("+CMGR", Form::Set) => self.cmgr(a(0)),
            ("+CMGD", Form::Set) => self.cmgd(a(0), a(1)),
            ("+CNMA", Form::Exec | Form::Set) => match self.awaiting_ack.take() {
                Some(_) => {
                    self.retry_after_answer();
                    Outcome::Ok(vec![])
                }
                None => Outcome::Cms(340),
            },
            ("+CNMA", Form::Test) => Outcome::Ok(vec![]),
            _ => return None,
        };
        Some(o)
    }

    /// Ctrl-Z closed an `AT+CMGS`/`AT+CMGW` prompt: send or store what was typed and answer after
    /// the command's latency (the send latency for `AT+CMGS`).
    pub(super) fn finish_prompt(&mut self) {
        let Input::Prompt { kind, data } =
            std::mem::replace(&mut self.input, Input::Line(Vec::new()))
        else {
            return;
        };
        // The answer time is fixed first so a status report can be scheduled after it.
        let lat = if matches!(kind, PromptKind::Send { .. }) {
            self.spec.latency.send
        } else {
            self.spec.latency.default
        };
        let at = self.now + self.latency(lat);
        self.busy_until = at;
        let outcome = match kind {
            PromptKind::Send { len } => self.send_pdu(&data, len),
            PromptKind::Write { len, stat } => match parse_hex(&data) {
                Some(pdu) if tpdu_len(&pdu) == len => {
                    let m = self.settings.mems[1];
                    match self.store(m, Stored { stat, pdu }) {
                        Some(i) => Outcome::Ok(vec![format!("+CMGW: {i}")]),
                        None => Outcome::Cms(322),
                    }
                }
                _ => Outcome::Cms(304),
            },
            PromptKind::Upload { .. } => Outcome::Error,
        };
        if matches!(kind, PromptKind::Send { .. }) && self.faults.stall_after_send {
            // The network has the message; the answer never comes out (docs/simulator.md).
            self.faults.stall_after_send = false;
            self.faults.stall = true;
            self.flush_held_urcs();
            return;
        }
        let mut bytes = Vec::new();
        if self.spec.profile == Profile::Zte && matches!(kind, PromptKind::Send { .. }) {
            bytes.extend(self.zte_noise());
        }
        match outcome {
            Outcome::Ok(lines) => {
                bytes.extend(self.info_bytes(&lines));
                bytes.extend(self.final_bytes("OK"));
            }
            e => {
                let t = self.error_text(&e);
                bytes.extend(self.final_bytes(&t));
            }
        }
        self.schedule_out(at, bytes);
        self.flush_held_urcs();
    }

    /// Ctrl-Z after `AT+CMGS=<len>`: validate, pick the modem's own TP-MR, hand to the network.
    fn send_pdu(&mut self, hex: &[u8], len: usize) -> Outcome {
        let Some(pdu) = parse_hex(hex) else {
            return Outcome::Cms(304);
        };
        if pdu.is_empty() || tpdu_len(&pdu) != len {
            // The length given with AT+CMGS must match the TPDU (27.005 §3.5.1: <length> counts
            // the octets after the SMSC field).
            return Outcome::Cms(304);
        }
        self.submit(pdu)
    }

    fn submit(&mut self, pdu: Vec<u8>) -> Outcome {
        if !self.radio_on() {
            return Outcome::Cms(331);
        }
        if pdu.first() == Some(&0) && self.smsc.is_none() {
            return Outcome::Cms(330);
        }
        if let Some(code) = self.faults.send_error(&mut self.rng) {
            return Outcome::Cms(code);
        }
        let mr = self.next_mr;
        let result = match self.radio.lock() {
            Ok(mut r) => r.submit(self.index, mr, &pdu, crate::time::now_secs()),
            Err(_) => Err("network lock poisoned".into()),
        };
        match result {
            Ok(report) => {
                // The modem's own reference, ignoring the PDU's TP-MR (smstools3 logs the mismatch:
                // "Message reference was defined, but the modem did not use it").
                self.next_mr = self.next_mr.wrapping_add(1);
                if let Some(r) = report {
                    // The report follows the +CMGS answer, as on a real network.
                    let at = self.busy_until.max(self.now)
                        + Duration::from_millis(self.spec.status_report_delay_ms);
                    self.timers.push((at, Timer::StatusReport(r)));
                }
                let tag = if self.last_line.to_ascii_uppercase().contains("CMSS") {
                    "+CMSS"
                } else {
                    "+CMGS"
                };
                Outcome::Ok(vec![format!("{tag}: {mr}")])
            }
            Err(_) => Outcome::Cms(304),
        }
    }

    fn cmss(&mut self, args: &[Arg]) -> Outcome {
        if args.get(1).is_some_and(|a| !matches!(a, Arg::Empty)) {
            // Re-addressing a stored PDU is not simulated (docs/simulator.md).
            return Outcome::Cms(303);
        }
        let m = self.settings.mems[1];
        let Some(slot) = args
            .first()
            .and_then(Arg::int)
            .and_then(|i| self.slot_of(i))
        else {
            return Outcome::Cms(321);
        };
        let Some(Some(s)) = self.mem(m).get(slot).cloned() else {
            return Outcome::Cms(321);
        };
        let o = self.submit(s.pdu.clone());
        if matches!(o, Outcome::Ok(_))
            && let Some(Some(x)) = self.mem(m).get_mut(slot)
        {
            x.stat = 3;
        }
        o
    }
}

/// The hex the host typed at the prompt, whitespace ignored; `None` if it is not hex.
fn parse_hex(s: &[u8]) -> Option<Vec<u8>> {
    let digits: String = s
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|&b| char::from(b))
        .collect();
    crate::pdu::hex_to_bytes(&digits).ok()
}
