//! The commands every modem answers the same way apart from its profile's names: V.250 basics
//! (`ATE`, `ATV`, `ATQ`, `ATZ`, S-registers), error reporting (`AT+CMEE`), the TE character set
//! (`AT+CSCS`), vendor switches that only need an `OK` (`AT^CURC`, `AT^PORTSEL`, `AT+QURCCFG`) and
//! identity (`ATI`, `AT+CGMI`…`AT+CIMI`, the vendors' ICCID commands, `AT+CRSM` on EF_ICCID,
//! `AT+CNUM`). It also holds the small helpers other families use for 0/1 settings and for
//! strings in the current character set. It keeps no state of its own: what it sets lives in
//! `Settings`, so a reboot or `ATZ` resets it like everything else.

use super::{ModemCore, Outcome, Settings};
use crate::sim::command::{Arg, Command, Form};
use crate::sim::profile::{Profile, iccid_swapped};

impl ModemCore {
    /// V.250 basics, `AT+CMEE`, `AT+CSCS` and vendor switches; `None` for any other command.
    pub(super) fn basic_command(&mut self, cmd: &Command) -> Option<Outcome> {
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let p = self.spec.profile;
        let o = match (cmd.name.as_str(), &cmd.form) {
            ("E", Form::Exec) => self.set_flag(cmd, |s, v| s.echo = v),
            ("V", Form::Exec) => self.set_flag(cmd, |s, v| s.verbose = v),
            ("Q", Form::Exec) => self.set_flag(cmd, |s, v| s.quiet = v),
            ("X" | "L" | "M" | "&C" | "&D" | "&W", _) => Outcome::Ok(vec![]),
            (n, _)
                if n.starts_with('S')
                    && n.len() > 1
                    && n[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                match cmd.form {
                    Form::Read => Outcome::Ok(vec![format!(
                        "{:03}",
                        if n == "S3" {
                            13
                        } else if n == "S4" {
                            10
                        } else {
                            0
                        }
                    )]),
                    _ => Outcome::Ok(vec![]),
                }
            }
            ("Z" | "&F", Form::Exec) => {
                self.settings = Settings::defaults();
                Outcome::Ok(vec![])
            }
            ("+CMEE", Form::Set) => match a(0) {
                Some(v @ 0..=2) => {
                    self.settings.cmee = v as u8;
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(50),
            },
            ("+CMEE", Form::Read) => Outcome::Ok(vec![format!("+CMEE: {}", self.settings.cmee)]),
            ("+CMEE", Form::Test) => Outcome::Ok(vec!["+CMEE: (0-2)".into()]),
            ("+CSCS", Form::Read) => {
                Outcome::Ok(vec![format!("+CSCS: \"{}\"", self.settings.cscs)])
            }
            ("+CSCS", Form::Test) => {
                Outcome::Ok(vec!["+CSCS: (\"GSM\",\"IRA\",\"UCS2\",\"8859-1\")".into()])
            }
            ("+CSCS", Form::Set) => match args
                .first()
                .and_then(Arg::text)
                .map(str::to_ascii_uppercase)
            {
                Some(c) if ["GSM", "IRA", "UCS2", "8859-1", "PCCP437"].contains(&c.as_str()) => {
                    self.settings.cscs = c;
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(4),
            },
            ("^CURC", Form::Set) if p == Profile::Huawei => {
                // Gammu sends ^CURC=0 to silence Huawei noise (libgammu/phone/at/atgen.c).
                self.settings.huawei_curc = a(0) != Some(0);
                Outcome::Ok(vec![])
            }
            ("^PORTSEL" | "^USSDMODE" | "^U2DIAG", Form::Set) if p == Profile::Huawei => {
                Outcome::Ok(vec![])
            }
            ("+QURCCFG", Form::Set) if p == Profile::Quectel => Outcome::Ok(vec![]),
            _ => return None,
        };
        Some(o)
    }

    /// Identity: `ATI`, manufacturer, model, revision, IMEI, IMSI, ICCID, own number.
    pub(super) fn identity_command(&mut self, cmd: &Command) -> Option<Outcome> {
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let p = self.spec.profile;
        let o = match (cmd.name.as_str(), &cmd.form) {
            ("I", Form::Exec) => Outcome::Ok(vec![
                format!("Manufacturer: {}", p.manufacturer()),
                format!("Model: {}", p.model()),
                format!("Revision: {}", p.revision()),
                format!("IMEI: {}", self.identity.imei),
                "+GCAP: +CGSM".into(),
            ]),
            ("+CGMI" | "+GMI", Form::Exec) => Outcome::Ok(vec![p.manufacturer().into()]),
            ("+CGMM" | "+GMM", Form::Exec) => Outcome::Ok(vec![p.model().into()]),
            ("+CGMR" | "+GMR", Form::Exec) => Outcome::Ok(vec![p.revision().into()]),
            ("+CGSN" | "+GSN", Form::Exec) => Outcome::Ok(vec![self.identity.imei.clone()]),
            (
                "+CGMI" | "+CGMM" | "+CGMR" | "+CGSN" | "+CIMI" | "+GMI" | "+GMM" | "+GMR" | "+GSN",
                Form::Test,
            ) => Outcome::Ok(vec![]),
            ("+GCAP", Form::Exec) => Outcome::Ok(vec!["+GCAP: +CGSM".into()]),
            ("+CIMI", Form::Exec) => Outcome::Ok(vec![self.identity.imsi.clone()]),
            ("+QCCID", Form::Exec) if p == Profile::Quectel => {
                Outcome::Ok(vec![format!("+QCCID: {}", self.identity.iccid)])
            }
            ("+CCID" | "+CICCID", Form::Exec | Form::Read) if p == Profile::Simcom => {
                Outcome::Ok(vec![format!("+ICCID: {}", self.identity.iccid)])
            }
            ("+CCID", Form::Exec) if p == Profile::Sim800 => {
                Outcome::Ok(vec![self.identity.iccid.clone()])
            }
            // Wavecom quotes it (Wavecom AT Commands Interface Guide, +CCID).
            ("+CCID", Form::Exec) if p == Profile::Wavecom => {
                Outcome::Ok(vec![format!("+CCID: \"{}\"", self.identity.iccid)])
            }
            ("^ICCID", Form::Read) if p == Profile::Huawei => {
                Outcome::Ok(vec![format!("^ICCID: {}", self.identity.iccid)])
            }
            ("+CRSM", Form::Set) => {
                // Only READ BINARY of EF_ICCID (27.007 §8.18; 176 = READ BINARY, 12258 = 0x2FE2).
                if a(0) == Some(176) && a(1) == Some(12258) {
                    Outcome::Ok(vec![format!(
                        "+CRSM: 144,0,\"{}\"",
                        iccid_swapped(&self.identity.iccid)
                    )])
                } else {
                    Outcome::Cme(4)
                }
            }
            ("+CNUM", Form::Exec) => Outcome::Ok(vec![format!(
                "+CNUM: \"\",\"{}\",145",
                self.cs(&self.identity.number)
            )]),
            ("+CNUM" | "+CRSM", Form::Test) => Outcome::Ok(vec![]),
            _ => return None,
        };
        Some(o)
    }

    pub(super) fn set_flag(
        &mut self,
        cmd: &Command,
        f: impl FnOnce(&mut Settings, bool),
    ) -> Outcome {
        match cmd.basic_value() {
            Some(0) => f(&mut self.settings, false),
            Some(1) => f(&mut self.settings, true),
            _ => return Outcome::Error,
        }
        Outcome::Ok(vec![])
    }

    /// `+CLIP`/`+CRC` style 0/1 settings; `network` is the second field of the read answer.
    pub(super) fn flag_cmd(
        &mut self,
        cmd: &Command,
        name: &str,
        field: impl Fn(&mut Settings) -> &mut bool,
        network: Option<u8>,
    ) -> Outcome {
        match cmd.form {
            Form::Set => match cmd.args().first().and_then(Arg::int) {
                Some(v @ 0..=1) => {
                    *field(&mut self.settings) = v == 1;
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(50),
            },
            Form::Read => {
                let v = u8::from(*field(&mut self.settings));
                Outcome::Ok(vec![match network {
                    Some(n) => format!("{name}: {v},{n}"),
                    None => format!("{name}: {v}"),
                }])
            }
            Form::Test => Outcome::Ok(vec![format!("{name}: (0-1)")]),
            Form::Exec => Outcome::Ok(vec![]),
        }
    }

    /// A string parameter in the current TE character set (27.007 §5.5: UCS2 means hex).
    pub(super) fn cs(&self, s: &str) -> String {
        if self.settings.cscs == "UCS2" {
            ucs2_hex(s)
        } else {
            s.to_string()
        }
    }
}

fn ucs2_hex(s: &str) -> String {
    s.encode_utf16().map(|u| format!("{u:04X}")).collect()
}
