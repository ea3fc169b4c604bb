//! Voice calls on the modem side: an incoming call ringing (`RING`/`+CRING`, `+CLIP`), answering
//! and hanging up (`ATA`, `ATH`, `AT+CHUP`, `AT+CVHU`), call state (`AT+CLCC`, the vendors' call
//! URCs) and switching the call's audio onto the PCM tty the way each vendor does it (Huawei
//! `AT^DDSETEX`, SIMCom `AT+CPCMREG`, Quectel `AT+QPCMV`). Every change is reported to the network
//! so the phone's call record matches what the modem did. Playing a stored file into the call is
//! `files.rs`; the PCM frames themselves are the audio task's.
//!
//! Why audio is a separate flag from "answered": on the PCM profiles the daemon must switch audio
//! on after (SIMCom, Huawei) or before (Quectel) answering, and the audio task (`audio.rs`) only
//! moves frames while [`ModemCore::audio_route`] says so — a daemon that forgets the switch hears
//! nothing, as on real hardware.

use std::time::Duration;

use tokio::time::Instant;

use super::{AudioRoute, Call, ModemCore, Outcome};
use crate::sim::command::{Arg, Command, Form};
use crate::sim::profile::Profile;
use crate::sim::radio::CallEvent;

impl ModemCore {
    /// Call handling, call URC settings and audio routing; `None` for any other command.
    pub(super) fn voice_command(&mut self, cmd: &Command) -> Option<Outcome> {
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let p = self.spec.profile;
        let o = match (cmd.name.as_str(), &cmd.form) {
            ("+CLIP", _) => self.flag_cmd(cmd, "+CLIP", |s| &mut s.clip, Some(1)),
            ("+CRC", _) => self.flag_cmd(cmd, "+CRC", |s| &mut s.crc, None),
            ("+CVHU", Form::Set) => {
                self.settings.cvhu = a(0).unwrap_or(0).clamp(0, 2) as u8;
                Outcome::Ok(vec![])
            }
            ("+CVHU", Form::Read) => Outcome::Ok(vec![format!("+CVHU: {}", self.settings.cvhu)]),
            ("+CVHU", Form::Test) => Outcome::Ok(vec!["+CVHU: (0-1)".into()]),
            ("^CVOICE", Form::Read) if p == Profile::Huawei => {
                Outcome::Ok(vec!["^CVOICE: 0,8000,16,20".into()])
            }
            ("^CVOICE", Form::Set) if p == Profile::Huawei => Outcome::Ok(vec![]),
            ("+QINDCFG", Form::Set) if p == Profile::Quectel => {
                if args
                    .first()
                    .and_then(Arg::text)
                    .is_some_and(|t| t.eq_ignore_ascii_case("ccinfo"))
                {
                    self.settings.quectel_ccinfo = a(1) == Some(1);
                }
                Outcome::Ok(vec![])
            }
            ("A", Form::Exec) => self.answer(),
            ("H", Form::Exec) => {
                if self.settings.cvhu == 1 {
                    // CVHU=1: "disconnect path is ignored but OK response is given" (27.007 §6.20).
                    Outcome::Ok(vec![])
                } else {
                    self.hangup_by_modem()
                }
            }
            ("+CHUP", Form::Exec) => self.hangup_by_modem(),
            ("+CLCC", Form::Exec) => Outcome::Ok(self.clcc_lines()),
            ("+CLCC", Form::Set) => {
                self.settings.clcc_urc = a(0) == Some(1);
                Outcome::Ok(vec![])
            }
            ("^DDSETEX", Form::Set) if p == Profile::Huawei => self.audio_on_if_active(),
            ("+CPCMREG", Form::Set) if p == Profile::Simcom => self.cpcmreg(a(0)),
            ("+CPCMREG", Form::Read) if p == Profile::Simcom => Outcome::Ok(vec![format!(
                "+CPCMREG: {}",
                u8::from(self.call.as_ref().is_some_and(|c| c.audio_on))
            )]),
            ("+QPCMV", Form::Set) if p == Profile::Quectel => self.qpcmv(a(0), a(1)),
            ("+QPCMV", Form::Read) if p == Profile::Quectel => {
                let on = self.call.as_ref().is_some_and(|c| c.qpcmv);
                Outcome::Ok(vec![if on {
                    "+QPCMV: 1,0".into()
                } else {
                    "+QPCMV: 0".into()
                }])
            }
            ("+CHUP" | "+CLCC", Form::Test) => Outcome::Ok(vec![]),
            _ => return None,
        };
        Some(o)
    }

    /// A phone starts calling this modem.
    pub fn incoming_call(
        &mut self,
        id: u64,
        number: &str,
        give_up_after: Option<Duration>,
        hangup_after: Option<Duration>,
        now: Instant,
    ) -> Result<(), &'static str> {
        self.now = now;
        if self.call.is_some() {
            return Err("busy");
        }
        if !self.can_receive() {
            return Err("not registered");
        }
        self.call = Some(Call {
            id,
            number: number.to_string(),
            active: false,
            answered_at: None,
            next_ring: now,
            give_up_at: give_up_after.map(|d| now + d),
            hangup_after,
            audio_on: false,
            qpcmv: false,
            playback: None,
        });
        if self.settings.quectel_ccinfo {
            let l = format!("+QIND: \"ccinfo\",1,1,4,0,0,\"{number}\",145");
            self.urc(&l);
        }
        Ok(())
    }

    /// The phone hangs up (or the control side ends the call).
    pub fn phone_hangup(&mut self, id: u64, now: Instant) -> bool {
        self.now = now;
        if self.call.as_ref().is_some_and(|c| c.id == id) {
            self.end_call(CallEvent::HungUpByPhone);
            true
        } else {
            false
        }
    }

    /// The active call whose audio is flowing, if any (read by the audio task).
    pub fn audio_route(&self) -> Option<AudioRoute> {
        self.call
            .as_ref()
            .filter(|c| c.active && c.audio_on)
            .map(|c| AudioRoute { call_id: c.id })
    }

    fn type_of(number: &str) -> u8 {
        if number.starts_with('+') { 145 } else { 129 }
    }

    fn ring(&mut self) {
        let Some(c) = &self.call else { return };
        let (number, id) = (c.number.clone(), c.id);
        self.report_call(id, CallEvent::Ring);
        let t = Self::type_of(&number);
        if self.settings.crc {
            self.urc("+CRING: VOICE");
        } else {
            self.urc("RING");
        }
        if self.settings.clip {
            if self.spec.profile == Profile::Wavecom {
                self.urc(&format!("+CLIP: \"{number}\",{t}"));
            } else {
                self.urc(&format!("+CLIP: \"{number}\",{t},,,,0"));
            }
        }
    }

    pub(super) fn run_call(&mut self, now: Instant) {
        let Some(c) = &mut self.call else { return };
        if !c.active {
            if c.give_up_at.is_some_and(|g| now >= g) {
                self.end_call(CallEvent::HungUpByPhone);
                return;
            }
            if now >= c.next_ring {
                c.next_ring = now + Duration::from_millis(self.spec.ring_interval_ms.max(100));
                if self.booting_until.is_none() {
                    self.ring();
                }
            }
        } else {
            if let Some(p) = &mut c.playback {
                let start = p.start_urc.take();
                let samples = p.advance(now);
                let (id, done, end) = (p.call_id, p.finished(), p.end_urc);
                if done {
                    c.playback = None;
                }
                if !samples.is_empty() {
                    self.played_audio.push((id, samples));
                }
                if let Some(u) = start {
                    self.urc(u);
                }
                if done {
                    self.urc(end);
                }
            }
            if let Some(c) = &self.call
                && let (Some(a), Some(h)) = (c.answered_at, c.hangup_after)
                && now >= a + h
            {
                self.end_call(CallEvent::HungUpByPhone);
            }
        }
    }

    fn end_urcs(&mut self, c: &Call, by_modem: bool) {
        let secs = c
            .answered_at
            .map(|a| self.now.saturating_duration_since(a).as_secs())
            .unwrap_or(0);
        let num = c.number.clone();
        let t = Self::type_of(&num);
        match self.spec.profile {
            Profile::Huawei => self.urc(&format!(
                "^CEND:1,{secs},{},16",
                if by_modem { 29 } else { 104 }
            )),
            Profile::Simcom => {
                if c.active {
                    self.urc(&format!(
                        "VOICE CALL: END: {:02}{:02}{:02}",
                        secs / 3600,
                        (secs / 60) % 60,
                        secs % 60
                    ));
                } else {
                    self.urc(&format!("MISSED_CALL: 00:00AM {num}"));
                }
            }
            _ => {}
        }
        if self.settings.quectel_ccinfo {
            self.urc(&format!("+QIND: \"ccinfo\",1,1,-1,0,0,\"{num}\",{t}"));
        }
        if !by_modem && self.spec.profile != Profile::Huawei {
            self.urc("NO CARRIER");
        }
    }

    fn end_call(&mut self, ev: CallEvent) {
        let Some(mut c) = self.call.take() else {
            return;
        };
        // The caller heard the file up to now, not beyond.
        if let Some(p) = &mut c.playback {
            let samples = p.advance(self.now);
            if !samples.is_empty() {
                self.played_audio.push((p.call_id, samples));
            }
        }
        self.end_urcs(&c, ev == CallEvent::HungUpByModem);
        self.report_call(c.id, ev);
    }

    fn answer(&mut self) -> Outcome {
        let now = self.now;
        let profile = self.spec.profile;
        let ccinfo = self.settings.quectel_ccinfo;
        let Some(c) = &mut self.call else {
            return Outcome::Final("NO CARRIER");
        };
        if c.active {
            return Outcome::Cme(3);
        }
        c.active = true;
        c.answered_at = Some(now);
        if profile == Profile::Quectel && c.qpcmv {
            c.audio_on = true;
        }
        let (id, num, audio) = (c.id, c.number.clone(), c.audio_on);
        match profile {
            Profile::Huawei => self.urc("^CONN:1,0"),
            Profile::Simcom => self.urc("VOICE CALL: BEGIN"),
            _ => {}
        }
        if ccinfo {
            self.urc(&format!(
                "+QIND: \"ccinfo\",1,1,0,0,0,\"{num}\",{}",
                Self::type_of(&num)
            ));
        }
        self.report_call(id, CallEvent::Answered);
        if audio {
            self.report_call(id, CallEvent::AudioOn);
        }
        Outcome::Ok(vec![])
    }

    fn hangup_by_modem(&mut self) -> Outcome {
        self.end_call(CallEvent::HungUpByModem);
        Outcome::Ok(vec![])
    }

    fn clcc_lines(&self) -> Vec<String> {
        match &self.call {
            Some(c) => vec![format!(
                "+CLCC: 1,1,{},0,0,\"{}\",{}",
                if c.active { 0 } else { 4 },
                c.number,
                Self::type_of(&c.number)
            )],
            None => vec![],
        }
    }

    fn audio_on_if_active(&mut self) -> Outcome {
        match &mut self.call {
            Some(c) if c.active => {
                let first = !c.audio_on;
                c.audio_on = true;
                let id = c.id;
                if first {
                    self.report_call(id, CallEvent::AudioOn);
                }
                Outcome::Ok(vec![])
            }
            _ => Outcome::Cme(3),
        }
    }

    /// SIMCom `AT+CPCMREG`: accepted only some time after the call connected (ModemManager's
    /// simtech plugin waits before it, and integrations retry it; docs/modems.md, "The families").
    fn cpcmreg(&mut self, v: Option<i64>) -> Outcome {
        let now = self.now;
        let delay = Duration::from_millis(self.spec.cpcmreg_delay_ms);
        match v {
            Some(0) => {
                if let Some(c) = &mut self.call {
                    c.audio_on = false;
                }
                Outcome::Ok(vec![])
            }
            Some(1) => match &self.call {
                Some(c) if c.active && c.answered_at.is_some_and(|a| now >= a + delay) => {
                    self.audio_on_if_active()
                }
                _ => Outcome::Error,
            },
            _ => Outcome::Error,
        }
    }

    /// Quectel `AT+QPCMV=<en>[,<port>]`: `1,x` while already on answers ERROR (reported by the
    /// asterisk-chan-quectel projects, which therefore always send `AT+QPCMV=0` first).
    fn qpcmv(&mut self, en: Option<i64>, _port: Option<i64>) -> Outcome {
        match (en, &mut self.call) {
            (Some(0), Some(c)) => {
                c.qpcmv = false;
                c.audio_on = false;
                Outcome::Ok(vec![])
            }
            (Some(0), None) => Outcome::Ok(vec![]),
            (Some(1), Some(c)) => {
                if c.qpcmv {
                    return Outcome::Error;
                }
                c.qpcmv = true;
                if c.active {
                    return self.audio_on_if_active();
                }
                Outcome::Ok(vec![])
            }
            // Without a call there is nothing to route; accepted like the real module.
            (Some(1), None) => Outcome::Ok(vec![]),
            _ => Outcome::Error,
        }
    }

    /// Tells the network about a call event. A poisoned network lock skips the event: the modem
    /// goes on, and the call record simply misses it.
    pub(super) fn report_call(&self, call_id: u64, event: CallEvent) {
        if let Ok(mut r) = self.radio.lock() {
            r.call_event(self.index, call_id, event, crate::time::now_secs());
        }
    }
}
