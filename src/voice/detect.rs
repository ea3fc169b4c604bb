//! Call signals from URCs: turns the `at` layer's typed [`Urc`]s into the few facts the call state
//! machine needs — it rings, who is calling, the call is connected, the call is over — per modem
//! family (docs/voice.md, "Which modems can do voice").
//!
//! Pure; it owns only this mapping and must not send commands. Which URCs a family sends:
//! - every family: `RING` / `+CRING: VOICE` per ring, `+CLIP` after it (27.007 §7.6, with CLI
//!   validity 1 = withheld, 2 = unavailable), `NO CARRIER` / `BUSY` / `NO ANSWER` at the end;
//! - Huawei: `^CONN:<idx>,<type>` connected, `^CEND:<idx>,<dur>,<status>,<cause>` ended (as
//!   chan_dongle and ModemManager's Huawei plugin read them; Huawei sends no `NO CARRIER` when the
//!   far end hangs up);
//! - SIMCom: `VOICE CALL: BEGIN`, `VOICE CALL: END: 000041`, `MISSED_CALL: …`, and `+CLCC` URCs with
//!   `AT+CLCC=1` (as ModemManager's SIMCom plugin reads them);
//! - Quectel: `+QIND: "ccinfo",<idx>,<dir>,<state>,…` (state 4 incoming, 0 active, −1 released) or
//!   `^DSCI` (state 3 connected, 6 ended) (Quectel EC2x AT Commands Manual, AT+QINDCFG; as
//!   chan_quectel reads them).
//!
//! Only mobile-terminated voice calls matter (CLCC `<dir>` 1, `<mode>` 0); outgoing or data calls
//! are ignored. A `+CRING` of a non-voice type (`FAX`, `ASYNC`, …) is not a ring for us.

use serde::Serialize;

use crate::at::Urc;
use crate::at::files::{PlaybackUrc, parse_playback_urc};
use crate::at::response::Call;
use crate::at::urc::{CliValidity, Clip};
use crate::modem::Profile;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "number", rename_all = "snake_case")]
pub enum Caller {
    /// The number as the network gave it (E.164 with `+` for type 145).
    Number(String),
    /// The caller withheld their number (CLI validity 1).
    Withheld,
    /// The network could not give a number (CLI validity 2: payphone, interworking, …).
    Unavailable,
}

impl Caller {
    /// The number, if there is one.
    pub fn number(&self) -> Option<&str> {
        match self {
            Caller::Number(n) => Some(n),
            _ => None,
        }
    }

    /// From a number field and a type of address: `+` is added for an international number
    /// (type 145) given without it; an empty field is [`Caller::Unavailable`].
    fn from_number(number: Option<&str>, toa: Option<u8>) -> Caller {
        match number.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) if toa == Some(145) && !n.starts_with('+') => Caller::Number(format!("+{n}")),
            Some(n) => Caller::Number(n.to_owned()),
            None => Caller::Unavailable,
        }
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Number(n) => f.write_str(n),
            Caller::Withheld => f.write_str("withheld"),
            Caller::Unavailable => f.write_str("unavailable"),
        }
    }
}

/// A call fact from one URC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// One ring (`RING`, `+CRING: VOICE`).
    Ring,
    /// An incoming call is alerting, with its caller if the URC carried one (Quectel ccinfo state 4,
    /// CLCC stat 4/5). Not counted as a ring: the rings that follow are.
    Incoming(Option<Caller>),
    /// Caller identification (`+CLIP`).
    Caller(Caller),
    /// The call is connected (`^CONN`, `VOICE CALL: BEGIN`, ccinfo/CLCC state 0, `^DSCI` 3).
    Connected,
    /// The call is over, by whoever.
    Ended(EndKind),
    /// A file stored on the modem finished playing (`+QPSND: 0`, `+AUDIOSTATE: audio play stop`,
    /// `+CREC: 0`; docs/voice.md, "How the greeting plays from the modem's flash").
    PlaybackEnded,
}

/// Which URC ended a call (kept for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndKind {
    /// `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`.
    Result(crate::at::CallEnd),
    /// Huawei `^CEND` with its duration (s) and cause.
    Cend {
        duration: u32,
        cc_cause: Option<u32>,
    },
    /// SIMCom `VOICE CALL: END: hhmmss`.
    VoiceCallEnd(String),
    /// SIMCom `MISSED_CALL: …`.
    Missed(String),
    /// Quectel ccinfo state −1, `^DSCI` 6, or a `+CLCC` URC with stat 6 (disconnected, SIMCom).
    Released,
}

/// Whether the family reports "connected" by a URC after `ATA` (otherwise `ATA`'s `OK` is the
/// connection).
pub fn connect_urc(profile: Profile) -> bool {
    matches!(
        profile,
        Profile::Huawei | Profile::Simcom | Profile::Quectel
    )
}

fn caller_of_clip(c: &Clip) -> Caller {
    match c.validity {
        CliValidity::Withheld => Caller::Withheld,
        CliValidity::Unavailable => Caller::Unavailable,
        CliValidity::Valid => Caller::from_number(c.number.as_deref(), c.toa),
    }
}

/// A `+CLCC`/ccinfo/`^DSCI` entry as a signal, for mobile-terminated voice calls only.
/// CLCC stat (27.007 §7.18): 0 active, 4 incoming, 5 waiting; SIMCom reports 6 when released;
/// Quectel ccinfo uses −1 for released.
fn call_entry(c: &Call, connected: i32, ended: &[i32]) -> Option<Signal> {
    if !c.incoming || c.mode != 0 {
        return None;
    }
    let caller = || Caller::from_number(c.number.as_deref(), c.toa);
    match c.state {
        s if s == connected => Some(Signal::Connected),
        4 | 5 => Some(Signal::Incoming(Some(caller()))),
        s if ended.contains(&s) => Some(Signal::Ended(EndKind::Released)),
        _ => None,
    }
}

/// The call signal carried by a URC, if any. `profile` selects the family-specific readings; the
/// standard ones (`RING`, `+CLIP`, `NO CARRIER`) apply to all.
pub fn detect(profile: Profile, urc: &Urc) -> Option<Signal> {
    let _ = profile; // Every form is unambiguous across families today; kept for quirks to come.
    match urc {
        Urc::Ring => Some(Signal::Ring),
        Urc::CRing(kind) => {
            let k = kind.trim().to_ascii_uppercase();
            (k.is_empty() || k == "VOICE" || k == "REL VOICE").then_some(Signal::Ring)
        }
        Urc::Clip(c) => Some(Signal::Caller(caller_of_clip(c))),
        Urc::CallEnded(e) => Some(Signal::Ended(EndKind::Result(*e))),
        Urc::Clcc(c) => call_entry(c, 0, &[6, -1]),
        Urc::CallInfo(c) => call_entry(c, 0, &[-1]),
        Urc::Dsci(c) => call_entry(c, 3, &[6]),
        Urc::Conn { .. } => Some(Signal::Connected),
        Urc::Cend {
            duration, cc_cause, ..
        } => Some(Signal::Ended(EndKind::Cend {
            duration: *duration,
            cc_cause: *cc_cause,
        })),
        Urc::VoiceCallBegin => Some(Signal::Connected),
        Urc::VoiceCallEnd(t) => Some(Signal::Ended(EndKind::VoiceCallEnd(t.clone()))),
        Urc::MissedCall(t) => Some(Signal::Ended(EndKind::Missed(t.clone()))),
        Urc::Qpsnd(0) => Some(Signal::PlaybackEnded),
        Urc::Unknown(t) => {
            (parse_playback_urc(t) == Some(PlaybackUrc::Ended)).then_some(Signal::PlaybackEnded)
        }
        _ => None,
    }
}

/// Whether a URC concerns calls at all (what the daemon forwards to the voice layer).
pub fn is_call_urc(urc: &Urc) -> bool {
    matches!(
        urc,
        Urc::Ring
            | Urc::CRing(_)
            | Urc::Clip(_)
            | Urc::CallEnded(_)
            | Urc::Clcc(_)
            | Urc::CallInfo(_)
            | Urc::Dsci(_)
            | Urc::Conn { .. }
            | Urc::Orig { .. }
            | Urc::Conf { .. }
            | Urc::Cend { .. }
            | Urc::VoiceCallBegin
            | Urc::VoiceCallEnd(_)
            | Urc::MissedCall(_)
            | Urc::Dtmf(_)
            | Urc::Qpsnd(_)
    ) || matches!(urc, Urc::Unknown(t) if parse_playback_urc(t).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::CallEnd;
    use crate::at::urc::parse_urc;
    use proptest::prelude::*;

    fn d(p: Profile, line: &str) -> Option<Signal> {
        detect(p, &parse_urc(line))
    }

    #[test]
    fn common_forms() {
        for p in Profile::ALL {
            assert_eq!(d(p, "RING"), Some(Signal::Ring));
            assert_eq!(d(p, "+CRING: VOICE"), Some(Signal::Ring));
            assert_eq!(d(p, "+CRING: FAX"), None);
            assert_eq!(
                d(p, "+CLIP: \"+27821234567\",145,,,,0"),
                Some(Signal::Caller(Caller::Number("+27821234567".into())))
            );
            assert_eq!(
                d(p, "NO CARRIER"),
                Some(Signal::Ended(EndKind::Result(CallEnd::NoCarrier)))
            );
        }
    }

    #[test]
    fn withheld_and_unavailable_numbers() {
        // 3GPP TS 27.007 §7.6 (+CLIP): CLI validity 1 withheld, 2 unavailable.
        let p = Profile::Generic;
        assert_eq!(
            d(p, "+CLIP: \"\",128,,,,1"),
            Some(Signal::Caller(Caller::Withheld))
        );
        assert_eq!(
            d(p, "+CLIP: \"\",128,,,\"\",2"),
            Some(Signal::Caller(Caller::Unavailable))
        );
        // Wavecom's two-field form with an empty number.
        assert_eq!(
            d(Profile::Wavecom, "+CLIP: \"\",129"),
            Some(Signal::Caller(Caller::Unavailable))
        );
        // National number without +, international type without + gets one.
        assert_eq!(
            d(p, "+CLIP: \"07712345678\",129,,,,0"),
            Some(Signal::Caller(Caller::Number("07712345678".into())))
        );
        assert_eq!(
            d(p, "+CLIP: \"447700900123\",145,,,,0"),
            Some(Signal::Caller(Caller::Number("+447700900123".into())))
        );
    }

    #[test]
    fn huawei_flow() {
        // A Huawei call as chan_dongle drives it: +CLCC, ^CONN after ATA, ^CEND at the end.
        let p = Profile::Huawei;
        assert_eq!(
            d(p, "+CLCC: 1,1,4,0,0,\"+79139131234\",145"),
            Some(Signal::Incoming(Some(Caller::Number(
                "+79139131234".into()
            ))))
        );
        assert_eq!(d(p, "^CONN:1,0"), Some(Signal::Connected));
        assert_eq!(
            d(p, "^CEND:1,5,29,16"),
            Some(Signal::Ended(EndKind::Cend {
                duration: 5,
                cc_cause: Some(16)
            }))
        );
        // Outgoing call entries are not ours.
        assert_eq!(d(p, "+CLCC: 1,0,0,0,0,\"+79139131234\",145"), None);
    }

    #[test]
    fn simcom_flow() {
        let p = Profile::Simcom;
        assert_eq!(d(p, "VOICE CALL: BEGIN"), Some(Signal::Connected));
        assert_eq!(
            d(p, "VOICE CALL: END: 000041"),
            Some(Signal::Ended(EndKind::VoiceCallEnd("000041".into())))
        );
        assert!(matches!(
            d(p, "MISSED_CALL: 11:01AM 07712345678"),
            Some(Signal::Ended(EndKind::Missed(_)))
        ));
        assert_eq!(
            d(p, "+CLCC: 1,1,6,0,0,\"+447700900123\",145"),
            Some(Signal::Ended(EndKind::Released))
        );
    }

    #[test]
    fn quectel_flow() {
        // A Quectel call as chan_quectel logs it: ccinfo state 4 incoming, 0 active, -1 released.
        let p = Profile::Quectel;
        assert_eq!(
            d(p, "+QIND: \"ccinfo\",1,1,4,0,0,\"+447700900123\",145"),
            Some(Signal::Incoming(Some(Caller::Number(
                "+447700900123".into()
            ))))
        );
        assert_eq!(
            d(p, "+QIND: \"ccinfo\",1,1,0,0,0,\"+447700900123\",145"),
            Some(Signal::Connected)
        );
        assert_eq!(
            d(p, "+QIND: \"ccinfo\",1,1,-1,0,0,\"+447700900123\",145"),
            Some(Signal::Ended(EndKind::Released))
        );
        assert_eq!(
            d(p, "+QIND: \"ccinfo\",1,1,4,0,0,\"\",129"),
            Some(Signal::Incoming(Some(Caller::Unavailable)))
        );
        assert_eq!(
            d(p, "^DSCI: 1,1,3,0,+447700900123,145"),
            Some(Signal::Connected)
        );
        assert_eq!(
            d(p, "^DSCI: 1,1,6,0,+447700900123,145"),
            Some(Signal::Ended(EndKind::Released))
        );
    }

    #[test]
    fn call_urc_filter() {
        assert!(is_call_urc(&parse_urc("RING")));
        assert!(is_call_urc(&parse_urc("+CREC: 0")));
        assert!(is_call_urc(&parse_urc("+AUDIOSTATE: audio play stop")));
        assert!(!is_call_urc(&parse_urc("+AUDIOSTATE: crec stop")));
        for (line, p) in [
            ("+QPSND: 0", Profile::Quectel),
            ("+AUDIOSTATE: audio play stop", Profile::Simcom),
            ("+CREC: 0", Profile::Sim800),
        ] {
            assert_eq!(
                detect(p, &parse_urc(line)),
                Some(Signal::PlaybackEnded),
                "{line}"
            );
        }
        assert_eq!(
            detect(Profile::Simcom, &parse_urc("+AUDIOSTATE: audio play")),
            None
        );
        assert!(!is_call_urc(&parse_urc("^RSSI:18")));
        assert!(!is_call_urc(&parse_urc("+CMTI: \"SM\",3")));
    }

    proptest! {
        #[test]
        fn never_panics(line in ".{0,80}") {
            for p in Profile::ALL {
                let _ = d(p, &line);
            }
        }
    }
}
