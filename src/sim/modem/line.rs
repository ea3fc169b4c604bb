//! The serial line discipline of a simulated modem: bytes in (echo, backspace, `A/`, the command
//! line up to CR, the `> ` prompt and counted raw uploads), bytes out (information lines, final
//! result codes in verbose or numeric form, `+CME`/`+CMS ERROR` per `AT+CMEE`, URCs) and the clock
//! that orders them. It owns how a line is answered, not what a command does: each command goes
//! to `ModemCore::execute` and comes back as an [`Outcome`].
//!
//! Why output is scheduled rather than written: every answer is due at an instant (now plus the
//! command's latency), URCs are due now, and the pty task takes what is due; that is how a URC
//! lands between a command's echo and its result, as on real hardware.

use std::time::Duration;

use tokio::time::Instant;

use super::spec::MsRange;
use super::{Input, ModemCore, Outcome, PromptKind, UploadKind};
use crate::sim::command;
use crate::sim::profile::Profile;

const MAX_LINE: usize = 2048;
const MAX_PROMPT: usize = 64 * 1024;

fn cme_text(code: u16) -> &'static str {
    match code {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        16 => "incorrect password",
        20 => "memory full",
        21 => "invalid index",
        30 => "no network service",
        50 => "Incorrect parameters",
        515 => "Please wait, init or command processing in progress.",
        _ => "unknown",
    }
}

fn cms_text(code: u16) -> &'static str {
    match code {
        300 => "ME failure",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        316 => "SIM PUK required",
        321 => "invalid memory index",
        322 => "memory full",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        340 => "no +CNMA acknowledgement expected",
        500 => "unknown error",
        _ => "unknown error",
    }
}

impl ModemCore {
    // ----- time and output -------------------------------------------------------------------

    pub(super) fn schedule_out(&mut self, at: Instant, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let pos = self
            .out
            .iter()
            .position(|(t, _)| *t > at)
            .unwrap_or(self.out.len());
        self.out.insert(pos, (at, bytes));
    }

    /// Bytes due at or before `now`, in order.
    pub fn take_due(&mut self, now: Instant) -> Vec<u8> {
        let n = self.out.iter().take_while(|(t, _)| *t <= now).count();
        self.out.drain(..n).flat_map(|(_, b)| b).collect()
    }

    /// Raw bytes for the host right now (garbage injection).
    pub fn inject_raw(&mut self, bytes: Vec<u8>, now: Instant) {
        self.schedule_out(now, bytes);
    }

    /// The next instant at which `poll` or `take_due` has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut consider = |t: Instant| d = Some(d.map_or(t, |x: Instant| x.min(t)));
        if let Some((t, _)) = self.out.first() {
            consider(*t);
        }
        for (t, _) in &self.timers {
            consider(*t);
        }
        if !self.pending_in.is_empty() {
            consider(
                self.booting_until
                    .unwrap_or(self.busy_until)
                    .max(self.busy_until),
            );
        }
        if let Some(c) = &self.call {
            if !c.active {
                consider(c.next_ring);
                if let Some(g) = c.give_up_at {
                    consider(g);
                }
            } else {
                if let (Some(a), Some(h)) = (c.answered_at, c.hangup_after) {
                    consider(a + h);
                }
                if let Some(p) = &c.playback {
                    consider(p.next_due());
                }
            }
        }
        d
    }

    pub(super) fn urc(&mut self, line: &str) {
        if matches!(self.input, Input::Prompt { .. }) {
            self.held_urcs.push(line.to_string());
            return;
        }
        let bytes = format!("\r\n{line}{}", self.spec.profile.urc_ending()).into_bytes();
        self.schedule_out(self.now, bytes);
    }

    /// Two-line URCs (`+CMT`, `+CDS`): header and PDU.
    pub(super) fn urc2(&mut self, head: &str, pdu: &str) {
        self.urc(&format!("{head}\r\n{pdu}"));
    }

    pub(super) fn flush_held_urcs(&mut self) {
        for u in std::mem::take(&mut self.held_urcs) {
            self.urc(&u);
        }
    }

    pub(super) fn latency(&mut self, r: MsRange) -> Duration {
        Duration::from_millis(self.rng.range(r.0, r.1))
    }

    // ----- input -----------------------------------------------------------------------------

    /// Bytes the host wrote.
    pub fn feed(&mut self, bytes: &[u8], now: Instant) {
        self.pending_in.extend(bytes.iter().copied());
        self.poll(now);
    }

    /// Advances time: timers, calls, retried deliveries, buffered input.
    pub fn poll(&mut self, now: Instant) {
        self.now = now;
        self.run_timers(now);
        self.run_call(now);
        self.try_deliver_pending();
        if let Some(b) = self.booting_until
            && now < b
        {
            // A booting modem does not listen; what the host types is lost.
            self.pending_in.clear();
            return;
        }
        while now >= self.busy_until {
            let Some(b) = self.pending_in.pop_front() else {
                break;
            };
            if self.faults.stall {
                continue;
            }
            self.input_byte(b);
        }
    }

    fn echo(&mut self, b: &[u8]) {
        if self.settings.echo {
            self.schedule_out(self.now, b.to_vec());
        }
    }

    fn input_byte(&mut self, b: u8) {
        match &mut self.input {
            Input::Line(buf) => match b {
                b'\r' => {
                    let line = String::from_utf8_lossy(buf).into_owned();
                    buf.clear();
                    self.echo(b"\r");
                    self.execute_line(&line);
                }
                b'\n' => {
                    // LF after CR (hosts that send CRLF) is ignored by real modems.
                }
                0x08 | 0x7F => {
                    buf.pop();
                    self.echo(&[b]);
                }
                0x1A | 0x1B => {
                    // Ctrl-Z / ESC outside a prompt: nothing to send or cancel (hosts such as
                    // smstools3 and Gammu send them to close a prompt a previous run left open).
                    buf.clear();
                }
                _ => {
                    if buf.len() < MAX_LINE {
                        buf.push(b);
                    }
                    // A/ repeats the last command line without a CR (V.250 §6.2.2).
                    if buf.len() == 2 && buf[0].eq_ignore_ascii_case(&b'A') && buf[1] == b'/' {
                        buf.clear();
                        self.echo(&[b]);
                        let last = self.last_line.clone();
                        self.execute_line(&last);
                        return;
                    }
                    self.echo(&[b]);
                }
            },
            Input::Prompt { kind, data } => {
                if let PromptKind::Upload { size, .. } = kind {
                    data.push(b);
                    if data.len() >= *size {
                        self.finish_upload();
                    }
                    return;
                }
                match b {
                    0x1A => self.finish_prompt(),
                    0x1B => {
                        // ESC cancels: OK, nothing sent (Quectel EC2x AT Commands Manual,
                        // AT+CMGS §9.8).
                        self.input = Input::Line(Vec::new());
                        let d = self.latency(self.spec.latency.default);
                        let bytes = self.final_bytes("OK");
                        self.schedule_out(self.now + d, bytes);
                        self.flush_held_urcs();
                    }
                    _ => {
                        if data.len() < MAX_PROMPT {
                            data.push(b);
                        }
                        self.echo(&[b]);
                    }
                }
            }
        }
    }

    pub(super) fn final_bytes(&self, text: &str) -> Vec<u8> {
        if self.settings.quiet {
            return Vec::new();
        }
        if self.settings.verbose {
            format!("\r\n{text}\r\n").into_bytes()
        } else {
            let code = match text {
                "OK" => "0",
                "CONNECT" => "1",
                "RING" => "2",
                "NO CARRIER" => "3",
                "ERROR" => "4",
                other => other,
            };
            format!("{code}\r").into_bytes()
        }
    }

    pub(super) fn info_bytes(&self, lines: &[String]) -> Vec<u8> {
        if lines.is_empty() {
            return Vec::new();
        }
        let body = lines.join("\r\n");
        if self.settings.verbose {
            format!("\r\n{body}\r\n").into_bytes()
        } else {
            format!("{body}\r\n").into_bytes()
        }
    }

    pub(super) fn error_text(&self, o: &Outcome) -> String {
        match o {
            Outcome::Cme(c) => match self.settings.cmee {
                1 => format!("+CME ERROR: {c}"),
                2 => format!("+CME ERROR: {}", cme_text(*c)),
                _ => "ERROR".into(),
            },
            Outcome::Cms(c) => match self.settings.cmee {
                1 => format!("+CMS ERROR: {c}"),
                2 => format!("+CMS ERROR: {}", cms_text(*c)),
                _ => "ERROR".into(),
            },
            Outcome::Unsupported => self.spec.profile.unsupported().into(),
            Outcome::Final(t) => (*t).into(),
            _ => "ERROR".into(),
        }
    }

    fn execute_line(&mut self, line: &str) {
        // Real modems hunt for "AT" and ignore what precedes it (line noise, a stray ESC).
        let upper = line.to_ascii_uppercase();
        let Some(pos) = upper.find("AT") else { return };
        let Some(text) = line.get(pos..) else { return };
        self.last_line = text.to_string();
        self.commands_seen += 1;
        let cmds = match command::parse_line(text) {
            Ok(c) => c,
            Err(_) => {
                let d = self.latency(self.spec.latency.default);
                let b = self.final_bytes("ERROR");
                self.schedule_out(self.now + d, b);
                self.busy_until = self.now + d;
                return;
            }
        };
        let mut kind = self.spec.latency.default;
        if cmds.iter().any(|c| c.name == "+CMGL" || c.name == "+CMGR") {
            kind = self.spec.latency.read;
        }
        let delay = self.latency(kind);
        let at = self.now + delay;
        self.busy_until = at;
        if self.busy_lines > 0 {
            // Wavecom after AT+CFUN=1: the next two command lines get 515 (python-gsmmodem's
            // fakemodems transcripts).
            self.busy_lines -= 1;
            let t = self.error_text(&Outcome::Cme(515));
            let b = self.final_bytes(&t);
            self.schedule_out(at, b);
            return;
        }
        let mut bytes = Vec::new();
        let mut ended = false;
        for cmd in &cmds {
            let o = self.execute(cmd);
            match o {
                Outcome::Ok(lines) => bytes.extend(self.info_bytes(&lines)),
                Outcome::NoFinal(lines) => {
                    bytes.extend(self.info_bytes(&lines));
                    ended = true;
                    break;
                }
                Outcome::Prompt(kind) => {
                    if self.spec.profile == Profile::Zte {
                        bytes.extend(self.zte_noise());
                    }
                    if matches!(
                        kind,
                        PromptKind::Upload {
                            how: UploadKind::Qfupl,
                            ..
                        }
                    ) {
                        // Quectel's data phase opens with CONNECT, not a prompt (Quectel UGxx
                        // FILE AT Commands Manual, AT+QFUPL).
                        bytes.extend(self.final_bytes("CONNECT"));
                    } else {
                        bytes.extend_from_slice(b"\r\n> ");
                    }
                    self.input = Input::Prompt {
                        kind,
                        data: Vec::new(),
                    };
                    ended = true;
                    break;
                }
                Outcome::Reboot => {
                    bytes.extend(self.final_bytes("OK"));
                    self.schedule_out(at, std::mem::take(&mut bytes));
                    self.reboot(at);
                    return;
                }
                err => {
                    let t = self.error_text(&err);
                    bytes.extend(self.final_bytes(&t));
                    ended = true;
                    break;
                }
            }
        }
        if !ended {
            bytes.extend(self.final_bytes("OK"));
        }
        self.schedule_out(at, bytes);
    }

    pub(super) fn zte_noise(&self) -> Vec<u8> {
        // ZTE sends these before `> ` and before `+CMGS:` (python-gsmmodem, test_modem.py's ZTE
        // send test).
        b"\r\n+ZPASR: \"UMTS\"\r\n\r\n+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"\r\n"
            .to_vec()
    }
}
