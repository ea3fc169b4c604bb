//! How a modem family gets a greeting to the caller: which audio path it has, and the AT commands
//! that route the call's audio around `ATA` (MODEMS.md §4.2–4.5).
//!
//! Pure data; it owns the per-family routing table and must not send anything itself (the driver
//! sends these through the modem's call queue). Paths:
//! - PCM over the audio tty ([`AudioPath::Pcm`]): Huawei `AT^DDSETEX=2` after `^CONN`; SIMCom
//!   `AT+CPCMREG=1` after `VOICE CALL: BEGIN`, retried while it answers ERROR (accepted only some
//!   time after connect, up to 12 s in the field: tianye1999/callpilot#112), `AT+CPCMREG=0` after
//!   the call; Quectel `AT+QPCMV=0;+QPCMV=1,0` before `ATA` (the reset first because `1,0` fails
//!   while `1,2` is active, MODEMS.md §6.7), `AT+QPCMV=0` after.
//! - Modem-stored file playback (SIM800 `AT+CREC=4`, Quectel `AT+QPSND`, SIMCom `AT+CCMXPLAY`,
//!   MODEMS.md §4.5) is NOT implemented yet: the `at` layer has no builders for `AT+CREC`,
//!   `AT+FSCREATE` or `AT+FSWRITE` (an upload needs a raw body after the `> ` prompt), and this
//!   module may not bypass it. Such modems get [`AudioPath::None`]: calls are let ring and texted
//!   back (docs/voice.md, "not done").

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::modem::{CallOp, Profile};

/// How audio reaches the caller on one modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioPath {
    /// s16le 8 kHz frames over this tty.
    Pcm(PathBuf),
    /// No way to play audio; why, for the log.
    None(&'static str),
}

/// The audio path of a modem of `profile` with an optional configured audio tty.
pub fn audio_path(profile: Profile, audio_port: Option<&Path>) -> AudioPath {
    match (routing(profile), audio_port) {
        (Some(_), Some(p)) => AudioPath::Pcm(p.to_path_buf()),
        (Some(_), None) => AudioPath::None("no audio_port configured for a PCM-capable modem"),
        (None, _) => match profile {
            Profile::Sim800 => AudioPath::None("SIM800 file playback (AT+CREC) is not implemented"),
            _ => AudioPath::None("this modem family has no PCM voice path"),
        },
    }
}

/// A routing command that may need repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub op: CallOp,
    /// Pause between attempts.
    pub every: Duration,
    /// Give up after this long.
    pub within: Duration,
}

/// The commands around a PCM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routing {
    /// Sent before `ATA`.
    pub before_answer: Option<CallOp>,
    /// Sent once the call is connected.
    pub after_connect: Option<Retry>,
    /// Sent after the call ended.
    pub after_end: Option<CallOp>,
}

/// The PCM routing of a family, `None` if it has no PCM path.
pub fn routing(profile: Profile) -> Option<Routing> {
    match profile {
        Profile::Huawei => Some(Routing {
            before_answer: None,
            after_connect: Some(Retry {
                op: CallOp::HuaweiAudio,
                every: Duration::from_millis(200),
                // One retry: a firmware without voice keeps refusing (MODEMS.md §4.2).
                within: Duration::from_millis(300),
            }),
            after_end: None,
        }),
        Profile::Simcom => Some(Routing {
            before_answer: None,
            after_connect: Some(Retry {
                op: CallOp::SimcomPcm(true),
                // MM waits 100 ms before the first attempt; the field needed up to 12 s.
                every: Duration::from_millis(150),
                within: Duration::from_secs(12),
            }),
            after_end: Some(CallOp::SimcomPcm(false)),
        }),
        Profile::Quectel => Some(Routing {
            before_answer: Some(CallOp::QuectelPcm(Some(0))),
            after_connect: None,
            after_end: Some(CallOp::QuectelPcm(None)),
        }),
        Profile::Generic | Profile::Sim800 | Profile::Wavecom | Profile::Zte => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_per_family() {
        let p = Path::new("/dev/ttyUSB1");
        for prof in [Profile::Huawei, Profile::Simcom, Profile::Quectel] {
            assert_eq!(audio_path(prof, Some(p)), AudioPath::Pcm(p.into()));
            assert!(matches!(audio_path(prof, None), AudioPath::None(_)));
        }
        for prof in [
            Profile::Generic,
            Profile::Sim800,
            Profile::Wavecom,
            Profile::Zte,
        ] {
            assert!(matches!(audio_path(prof, Some(p)), AudioPath::None(_)));
        }
    }

    #[test]
    fn routing_per_family() {
        let q = routing(Profile::Quectel).unwrap();
        assert_eq!(q.before_answer, Some(CallOp::QuectelPcm(Some(0))));
        assert_eq!(q.after_end, Some(CallOp::QuectelPcm(None)));
        let s = routing(Profile::Simcom).unwrap();
        assert_eq!(s.after_connect.map(|r| r.op), Some(CallOp::SimcomPcm(true)));
        assert!(s.after_connect.unwrap().within >= Duration::from_secs(12));
        let h = routing(Profile::Huawei).unwrap();
        assert_eq!(h.after_connect.map(|r| r.op), Some(CallOp::HuaweiAudio));
    }
}
