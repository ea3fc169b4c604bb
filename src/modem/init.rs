//! The init sequence (docs/modems.md, "Quirks gsmgate handles") as data: an ordered plan of steps
//! per [`Profile`], each with what a failure means (fatal, ignored, feature off, no SMS: the split
//! chan_dongle's `at_response_error` makes, where a `^CVOICE` error means "no voice" and a failed
//! `CMGF`/`CPMS`/`CNMI` means "no SMS"), and the per-profile command variants (ICCID query,
//! remaining-PIN-attempts query).
//!
//! The plan is pure so its shape per profile is unit-tested without a pty; the actor walks it. The
//! order matters: echo off before anything whose answer we parse, CMEE before CPIN so PIN errors come
//! as numbers, CPIN before CFUN/identity (some ZTE/Qualcomm firmwares answer nothing useful before the
//! SIM is unlocked), PDU mode and CNMI before the storage drain, and the drain last because the modem
//! is "ready" only after it.

use super::Profile;
use crate::at::{AtError, Command};

/// What a failure of a step means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Init fails; the actor escalates recovery.
    Fatal,
    /// Log and go on.
    Ignore,
    /// SMS cannot work on this modem: out of the pool with this reason.
    NoSms,
    /// Record the feature as off in the status and go on.
    FeatureOff(&'static str),
}

/// Which identity field an identity step fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentField {
    Manufacturer,
    Model,
    Revision,
    Imei,
    Imsi,
    Iccid,
    /// The SIM's own number (`AT+CNUM`, 27.007 §7.1); many SIMs leave it empty.
    OwnNumber,
}

/// Builds the command of a step (the `at` builders; the fallible ones only fail on outside values,
/// which plan steps never carry).
pub type Builder = fn() -> Result<Command, AtError>;

/// One step of the plan.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Wake/sync: drain, `AT` until `OK`, with Ctrl-Z/ESC in between.
    Sync,
    /// `AT+CPIN?`, and the configured PIN once if asked for.
    Pin,
    /// `AT+CFUN?` and `AT+CFUN=1` if needed (Wavecom 515 handling).
    Cfun,
    /// An identity query and the field its answer fills.
    Ident(IdentField, Builder),
    /// Huawei `AT^CVOICE?`: voice capability.
    Cvoice,
    /// `AT+CSCA?`: the SMSC, kept in the status.
    Csca,
    /// `AT+CPMS="SM","SM","SM"`: storage and its fill level.
    Cpms,
    /// `AT+COPS?`: operator name.
    Cops,
    /// `AT+CSQ`: signal.
    Csq,
    /// `AT+CREG?`: registration.
    Creg,
    /// `AT+CMGL=4` drain of stored messages.
    Drain,
    /// A command whose answer only matters as OK/error.
    Plain(Builder),
}

impl Step {
    /// A readable name: the command line for command steps, the step name otherwise.
    pub fn describe(&self) -> String {
        let line = |b: &Builder| match b() {
            Ok(c) => c.echo().to_owned(),
            Err(e) => format!("<{e}>"),
        };
        match self {
            Step::Plain(b) | Step::Ident(_, b) => line(b),
            other => format!("{other:?}"),
        }
    }
}

/// A step with its failure meaning.
#[derive(Debug, Clone, Copy)]
pub struct InitStep {
    pub step: Step,
    pub on_error: OnError,
}

/// Options that change the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InitOptions {
    /// Direct delivery (`+CMT`/`+CDS` with `AT+CSMS=1` and `AT+CNMA`) instead of stored `+CMTI`.
    /// Off by default: a directly delivered message is never stored on the SIM (`+CNMI` `<mt>`=2,
    /// 3GPP TS 27.005 §3.4.1), so until it is in the database it lives only in our process.
    pub direct_delivery: bool,
}

fn s(step: Step, on_error: OnError) -> InitStep {
    InitStep { step, on_error }
}

/// The ICCID query for a profile (docs/modems.md, the profile table): Quectel `AT+QCCID`, SIMCom
/// `AT+CICCID`, SIM800/Wavecom `AT+CCID`, Huawei `AT^ICCID?`, otherwise EF_ICCID through `AT+CRSM`.
pub fn iccid_command(profile: Profile) -> Builder {
    match profile {
        Profile::Quectel => || Ok(Command::qccid()),
        Profile::Simcom => || Ok(Command::ciccid()),
        Profile::Sim800 | Profile::Wavecom => || Ok(Command::ccid()),
        Profile::Huawei => || Ok(Command::huawei_iccid()),
        Profile::Generic | Profile::Zte => || Ok(Command::crsm_iccid()),
    }
}

/// The command that reports remaining PIN attempts, where the profile has one: Quectel
/// `AT+QPINC?` (Quectel EC2x AT Commands Manual), Huawei `AT^CPIN?`.
pub fn pin_tries_command(profile: Profile) -> Option<Command> {
    match profile {
        Profile::Quectel => Some(Command::qpinc()),
        Profile::Huawei => Some(Command::huawei_cpin()),
        _ => None,
    }
}

/// `AT+CPIN?` for a profile: Wavecom answers `+CPIN: READY` without `OK` (docs/modems.md, the
/// profile table).
pub fn cpin_command(profile: Profile) -> Command {
    match profile {
        Profile::Wavecom => Command::cpin_query_no_ok(),
        _ => Command::cpin_query(),
    }
}

/// The init plan for a profile.
pub fn plan(profile: Profile, opts: InitOptions) -> Vec<InitStep> {
    use OnError::*;
    let mut p = vec![
        s(Step::Sync, Fatal),
        s(Step::Plain(|| Ok(Command::ate(false))), Fatal),
        s(Step::Plain(|| Command::cmee(1)), Fatal),
        s(Step::Pin, Fatal),
        s(Step::Cfun, Fatal),
        s(
            Step::Ident(IdentField::Manufacturer, || Ok(Command::cgmi())),
            Fatal,
        ),
        s(
            Step::Ident(IdentField::Model, || Ok(Command::cgmm())),
            Fatal,
        ),
        s(
            Step::Ident(IdentField::Revision, || Ok(Command::cgmr())),
            Ignore,
        ),
        s(Step::Ident(IdentField::Imei, || Ok(Command::cgsn())), Fatal),
        s(Step::Ident(IdentField::Imsi, || Ok(Command::cimi())), Fatal),
        s(
            Step::Ident(IdentField::Iccid, iccid_command(profile)),
            Ignore,
        ),
        // Every profile answers AT+CNUM, most SIMs with nothing; the number only feeds display
        // and geomatch, so its absence is never an error.
        s(
            Step::Ident(IdentField::OwnNumber, || Ok(Command::cnum())),
            Ignore,
        ),
    ];
    match profile {
        Profile::Huawei => {
            // ^CURC=0 silences the periodic ^RSSI/^BOOT/^MODE noise (gammu atgen.c); not on all
            // firmwares.
            p.push(s(Step::Plain(|| Ok(Command::huawei_curc_off())), Ignore));
            p.push(s(Step::Cvoice, FeatureOff("voice")));
        }
        Profile::Quectel => {
            p.push(s(Step::Plain(|| Ok(Command::qurccfg_usbat())), Ignore));
            p.push(s(
                Step::Plain(|| Command::qindcfg("ccinfo", true)),
                FeatureOff("ccinfo"),
            ));
            p.push(s(Step::Plain(|| Command::cereg(2)), Ignore));
        }
        Profile::Simcom => {
            p.push(s(
                Step::Plain(|| Ok(Command::clcc_urc(true))),
                FeatureOff("clcc_urc"),
            ));
            p.push(s(Step::Plain(|| Command::cereg(2)), Ignore));
        }
        Profile::Sim800 => {
            p.push(s(
                Step::Plain(|| Ok(Command::clcc_urc(true))),
                FeatureOff("clcc_urc"),
            ));
        }
        Profile::Generic | Profile::Wavecom | Profile::Zte => {}
    }
    p.push(s(Step::Plain(|| Ok(Command::cmgf_pdu())), NoSms));
    p.push(s(Step::Plain(|| Ok(Command::cscs_gsm())), Ignore));
    // ZTE answers +CME ERROR: 14 (SIM busy) to CSCA? right after init (docs/modems.md): not fatal.
    p.push(s(Step::Csca, Ignore));
    p.push(s(Step::Cpms, NoSms));
    if opts.direct_delivery {
        p.push(s(Step::Plain(|| Command::csms(1)), NoSms));
        p.push(s(Step::Plain(|| Command::cnmi(2, 2, 0, 1, 0)), NoSms));
    } else {
        p.push(s(Step::Plain(|| Command::csms(0)), Ignore));
        p.push(s(Step::Plain(|| Command::cnmi(2, 1, 0, 2, 0)), NoSms));
    }
    p.push(s(
        Step::Plain(|| Ok(Command::clip(true))),
        FeatureOff("clip"),
    ));
    p.push(s(Step::Plain(|| Ok(Command::crc(true))), FeatureOff("crc")));
    p.push(s(Step::Plain(|| Ok(Command::cvhu0())), Ignore));
    p.push(s(Step::Plain(|| Command::creg(2)), Ignore));
    p.push(s(Step::Plain(|| Ok(Command::cops_long_format())), Ignore));
    p.push(s(Step::Cops, Ignore));
    p.push(s(Step::Creg, Ignore));
    p.push(s(Step::Csq, Ignore));
    p.push(s(Step::Drain, NoSms));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(p: &[InitStep]) -> Vec<String> {
        p.iter().map(|s| s.step.describe()).collect()
    }

    #[test]
    fn generic_plan_has_the_documented_order() {
        let p = plan(Profile::Generic, InitOptions::default());
        let t = texts(&p);
        let pos = |needle: &str| {
            t.iter()
                .position(|x| x.contains(needle))
                .unwrap_or_else(|| panic!("{needle} missing in {t:?}"))
        };
        assert!(matches!(p[0].step, Step::Sync));
        assert!(pos("ATE0") < pos("CMEE"));
        assert!(pos("CMEE") < pos("Pin"));
        assert!(pos("Pin") < pos("Cfun"));
        assert!(pos("Cfun") < pos("CGMI"));
        assert!(pos("CIMI") < pos("CMGF=0"));
        assert!(pos("CMGF=0") < pos("CSCS"));
        assert!(pos("CSCS") < pos("Csca"));
        assert!(pos("Csca") < pos("Cpms"));
        assert!(pos("Cpms") < pos("CSMS=0"));
        assert!(pos("CSMS=0") < pos("CNMI=2,1,0,2,0"));
        assert!(pos("CNMI") < pos("CLIP=1"));
        assert!(pos("CLIP") < pos("CRC=1"));
        assert!(pos("CVHU=0") < pos("CREG=2"));
        assert!(pos("COPS=3,0") < pos("Cops"));
        assert!(matches!(p.last().map(|s| s.step), Some(Step::Drain)));
        assert!(t.iter().any(|x| x.contains("CRSM=176,12258")));
        assert!(pos("CRSM=176") < pos("CNUM"));
    }

    #[test]
    fn vendor_steps_per_profile() {
        let has = |prof, needle: &str| {
            texts(&plan(prof, InitOptions::default()))
                .iter()
                .any(|x| x.contains(needle))
        };
        assert!(has(Profile::Huawei, "CURC=0"));
        assert!(has(Profile::Huawei, "Cvoice"));
        assert!(has(Profile::Huawei, "^ICCID?"));
        assert!(!has(Profile::Generic, "Cvoice"));
        assert!(has(Profile::Quectel, "QURCCFG"));
        assert!(has(Profile::Quectel, "QCCID"));
        assert!(has(Profile::Simcom, "CICCID"));
        assert!(has(Profile::Sim800, "AT+CCID"));
        assert!(has(Profile::Wavecom, "AT+CCID"));
        assert!(!has(Profile::Wavecom, "QURCCFG"));
        for prof in [
            Profile::Huawei,
            Profile::Quectel,
            Profile::Simcom,
            Profile::Sim800,
        ] {
            assert!(has(prof, "AT+CNUM"), "{prof:?}");
        }
    }

    #[test]
    fn direct_delivery_switches_csms_and_cnmi() {
        let t = texts(&plan(
            Profile::Generic,
            InitOptions {
                direct_delivery: true,
            },
        ));
        assert!(t.iter().any(|x| x.contains("CSMS=1")));
        assert!(t.iter().any(|x| x.contains("CNMI=2,2,0,1,0")));
        assert!(!t.iter().any(|x| x.contains("CNMI=2,1,0,2,0")));
    }

    #[test]
    fn optional_steps_do_not_fail_init() {
        for prof in Profile::ALL {
            for st in plan(prof, InitOptions::default()) {
                if let Step::Plain(_) = st.step {
                    let t = st.step.describe();
                    let t = t.as_str();
                    if t.starts_with("AT^CURC") || t.starts_with("AT+QURCCFG") || t == "AT+CVHU=0" {
                        assert_eq!(st.on_error, OnError::Ignore, "{prof:?} {t}");
                    }
                    assert!(!t.starts_with('<'), "{prof:?}: builder failed: {t}");
                    if t == "ATE0" || t == "AT+CMEE=1" {
                        assert_eq!(st.on_error, OnError::Fatal);
                    }
                }
            }
        }
    }
}
