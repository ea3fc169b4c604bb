//! The SIM and the network as the host sees them: the PIN/PUK lock and the gate it puts in front
//! of other commands, `AT+CFUN`, signal (`AT+CSQ`), registration (`AT+CREG`/`AT+CGREG`/`AT+CEREG`
//! with their URCs) and the operator (`AT+COPS`). It also owns the control side's registration
//! and signal switches (faults), since they must emit the same `+CREG` URCs a real change would.
//!
//! Why one file: the lock, CFUN and registration together decide whether the radio is on
//! ([`ModemCore::radio_on`]), which sending and delivery elsewhere only ask; they must not change
//! the registration state themselves.

use std::time::Duration;

use tokio::time::Instant;

use super::{ModemCore, Outcome, SimLock, Timer};
use crate::sim::command::{Arg, Command, Form};
use crate::sim::profile::Profile;

impl ModemCore {
    /// What a command answers while the SIM is locked, if it needs the SIM: `+CME ERROR: 11`/`12`
    /// (`+CMS ERROR: 311`/`316` for SMS commands).
    pub(super) fn sim_gate(&self, name: &str) -> Option<Outcome> {
        if self.sim == SimLock::Ready || !needs_sim(name) {
            return None;
        }
        let puk = self.sim == SimLock::Puk;
        Some(if is_sms(name) {
            Outcome::Cms(if puk { 316 } else { 311 })
        } else {
            Outcome::Cme(if puk { 12 } else { 11 })
        })
    }

    /// The SIM, power, signal and registration commands; `None` for any other.
    pub(super) fn registration_command(&mut self, cmd: &Command) -> Option<Outcome> {
        let name = cmd.name.as_str();
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let p = self.spec.profile;
        let o = match (name, &cmd.form) {
            ("+CMEE", Form::Test) => Outcome::Ok(vec!["+CMEE: (0-2)".into()]),
            ("+CPIN", _) => self.cpin(cmd, &args),
            ("+CPINC" | "+QPINC", Form::Read | Form::Exec) => Outcome::Ok(vec![format!(
                "{}: \"SC\",{},{}",
                if name == "+QPINC" { "+QPINC" } else { "+CPINC" },
                self.pin_attempts,
                self.puk_attempts
            )]),
            ("+CFUN", Form::Read) => Outcome::Ok(vec![format!("+CFUN: {}", self.cfun)]),
            ("+CFUN", Form::Test) => Outcome::Ok(vec!["+CFUN: (0,1,4),(0-1)".into()]),
            ("+CFUN", Form::Set) => self.cfun_set(a(0), a(1)),
            ("+CSQ", Form::Exec) => Outcome::Ok(vec![format!(
                "+CSQ: {},99",
                if self.radio_on() { self.rssi } else { 99 }
            )]),
            ("+CSQ", Form::Test) => Outcome::Ok(vec!["+CSQ: (0-31,99),(0-7,99)".into()]),
            ("+CREG" | "+CGREG" | "+CEREG", _) => self.creg(cmd, a(0)),
            ("+COPS", Form::Read) => {
                if self.radio_on() {
                    Outcome::Ok(vec![format!(
                        "+COPS: 0,0,\"{}\",{}",
                        self.cs("GSMGATE SIM"),
                        if p == Profile::Quectel { 7 } else { 0 }
                    )])
                } else {
                    Outcome::Ok(vec!["+COPS: 0".into()])
                }
            }
            ("+COPS", Form::Set) => Outcome::Ok(vec![]),
            ("+COPS", Form::Test) => Outcome::Ok(vec![
                "+COPS: (2,\"GSMGATE SIM\",\"GSMGATE\",\"00101\",0),,(0-4),(0-2)".into(),
            ]),
            _ => return None,
        };
        Some(o)
    }

    /// Powered, registered and unlocked: the radio can send and receive.
    pub(super) fn radio_on(&self) -> bool {
        self.cfun == 1 && self.registered && self.sim == SimLock::Ready
    }

    fn reg_stat(&self) -> u8 {
        if self.radio_on() { 1 } else { 0 }
    }

    fn creg(&mut self, cmd: &Command, n: Option<i64>) -> Outcome {
        let name = cmd.name.as_str();
        match cmd.form {
            Form::Set => match n {
                Some(v @ 0..=2) => {
                    if name == "+CREG" {
                        self.settings.creg = v as u8;
                    } else {
                        self.settings.cgreg = v as u8;
                    }
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(50),
            },
            Form::Read => {
                let mode = if name == "+CREG" {
                    self.settings.creg
                } else {
                    self.settings.cgreg
                };
                let stat = self.reg_stat();
                Outcome::Ok(vec![if mode == 2 && stat == 1 {
                    format!("{name}: {mode},{stat},\"{}\",\"{}\"", self.lac(), self.ci())
                } else {
                    format!("{name}: {mode},{stat}")
                }])
            }
            Form::Test => Outcome::Ok(vec![format!("{name}: (0-2)")]),
            Form::Exec => Outcome::Ok(vec![]),
        }
    }

    fn lac(&self) -> String {
        format!("{:04X}", 0x1A2B + self.index as u32 % 64)
    }
    fn ci(&self) -> String {
        format!("{:04X}", 0x3C4D + self.index as u32 % 64)
    }

    /// Emits `+CREG:` URCs after a registration change (27.007 §7.2).
    fn creg_urc(&mut self) {
        let stat = self.reg_stat();
        match self.settings.creg {
            1 => self.urc(&format!("+CREG: {stat}")),
            2 if stat == 1 => {
                let l = format!("+CREG: {stat},\"{}\",\"{}\"", self.lac(), self.ci());
                self.urc(&l)
            }
            2 => self.urc(&format!("+CREG: {stat}")),
            _ => {}
        }
    }

    fn cpin(&mut self, cmd: &Command, args: &[Arg]) -> Outcome {
        match cmd.form {
            Form::Read => {
                let line = format!("+CPIN: {}", self.sim.name());
                if self.spec.profile == Profile::Wavecom && self.sim == SimLock::Ready {
                    // Wavecom answers +CPIN: READY without OK (python-gsmmodem's fakemodems
                    // transcripts; Gammu's F_CPIN_NO_OK).
                    Outcome::NoFinal(vec![line])
                } else {
                    Outcome::Ok(vec![line])
                }
            }
            Form::Test => Outcome::Ok(vec![]),
            Form::Exec => Outcome::Cme(50),
            Form::Set => {
                let given = args.first().and_then(Arg::text).unwrap_or("").to_string();
                match self.sim {
                    SimLock::Ready => Outcome::Cme(3),
                    SimLock::Pin => {
                        if Some(&given) == self.pin.as_ref() {
                            self.sim = SimLock::Ready;
                            self.pin_attempts = self.spec.pin_attempts;
                            self.sim_became_ready();
                            Outcome::Ok(vec![])
                        } else {
                            self.pin_attempts = self.pin_attempts.saturating_sub(1);
                            if self.pin_attempts == 0 {
                                self.sim = SimLock::Puk;
                            }
                            Outcome::Cme(16)
                        }
                    }
                    SimLock::Puk => {
                        let new_pin = args.get(1).and_then(Arg::text).map(str::to_string);
                        if given == self.spec.puk && new_pin.is_some() {
                            self.pin = new_pin;
                            self.sim = SimLock::Ready;
                            self.pin_attempts = self.spec.pin_attempts;
                            self.sim_became_ready();
                            Outcome::Ok(vec![])
                        } else {
                            self.puk_attempts = self.puk_attempts.saturating_sub(1);
                            Outcome::Cme(16)
                        }
                    }
                }
            }
        }
    }

    /// The SIM was unlocked: the ready lines a module prints once its SIM is usable (boot printed
    /// them only for an unlocked SIM), then the registration URC.
    fn sim_became_ready(&mut self) {
        let lines: &[&str] = match self.spec.profile {
            Profile::Quectel => &["+QIND: SMS DONE", "+QIND: PB DONE"],
            Profile::Sim800 => &["Call Ready", "SMS Ready"],
            _ => &[],
        };
        for (i, line) in lines.iter().enumerate() {
            let at = self.now + Duration::from_millis(50 + 10 * i as u64);
            self.timers.push((at, Timer::BootLine((*line).into())));
        }
        self.creg_urc();
    }

    fn cfun_set(&mut self, fun: Option<i64>, rst: Option<i64>) -> Outcome {
        match (fun, rst) {
            (Some(1), Some(1)) => Outcome::Reboot,
            (Some(f @ (0 | 1 | 4)), None | Some(0)) => {
                let was = self.radio_on();
                self.cfun = f as u8;
                if f == 1 && self.spec.profile == Profile::Wavecom {
                    self.busy_lines = 2;
                }
                if was != self.radio_on() {
                    self.creg_urc();
                }
                Outcome::Ok(vec![])
            }
            _ => Outcome::Cme(50),
        }
    }

    pub fn set_registered(&mut self, on: bool, now: Instant) {
        self.now = now;
        let was = self.radio_on();
        self.registered = on;
        if was != self.radio_on() {
            self.creg_urc();
        }
        self.try_deliver_pending();
    }

    pub fn set_rssi(&mut self, rssi: u8) {
        self.rssi = rssi.min(99);
    }
}

/// Whether a command is refused while the SIM is locked (identity, settings, the lock itself and
/// call handling still work, as on real modules).
fn needs_sim(name: &str) -> bool {
    !matches!(
        name,
        "E" | "V"
            | "Q"
            | "Z"
            | "&F"
            | "&W"
            | "&C"
            | "&D"
            | "I"
            | "X"
            | "L"
            | "M"
            | "+CGMI"
            | "+CGMM"
            | "+CGMR"
            | "+CGSN"
            | "+GMI"
            | "+GMM"
            | "+GMR"
            | "+GSN"
            | "+GCAP"
            | "+CPIN"
            | "+CMEE"
            | "+CFUN"
            | "+CSQ"
            | "+CREG"
            | "+CGREG"
            | "+CEREG"
            | "+CSCS"
            | "+CCID"
            | "+CICCID"
            | "+QCCID"
            | "^ICCID"
            | "+CRSM"
            | "^CURC"
            | "^CVOICE"
            | "+CLIP"
            | "+CRC"
            | "+CVHU"
            | "+QINDCFG"
            | "+QURCCFG"
            | "+CLCC"
            | "A"
            | "H"
            | "+CHUP"
            | "+CPINC"
            | "+QPINC"
            | "^CPIN"
            | "+IPR"
            | "+IFC"
            | "+CLAC"
            | "+CMGF"
            | "+CSMS"
            | "+CNMI"
            | "+CMMS"
    ) && !name.starts_with('S')
}

/// SMS commands answer a locked SIM with `+CMS ERROR`, the others with `+CME ERROR`.
fn is_sms(name: &str) -> bool {
    matches!(
        name,
        "+CMGS"
            | "+CMGW"
            | "+CMSS"
            | "+CMGL"
            | "+CMGR"
            | "+CMGD"
            | "+CPMS"
            | "+CSCA"
            | "+CNMA"
            | "+CSMP"
    )
}
