//! How a modem family gets a greeting to the caller: which audio path it has, and the AT commands
//! that route the call's audio around `ATA` (docs/voice.md, "Which modems can do voice").
//!
//! Pure data; it owns the per-family routing table and must not send anything itself (the driver
//! sends these through the modem's call queue). Paths:
//! - PCM over the audio tty ([`AudioPath::Pcm`]): Huawei `AT^DDSETEX=2` after `^CONN`; SIMCom
//!   `AT+CPCMREG=1` after `VOICE CALL: BEGIN`, retried while it answers ERROR (accepted only some
//!   time after connect, up to 12 s in the field: tianye1999/callpilot#112), `AT+CPCMREG=0` after
//!   the call; Quectel `AT+QPCMV=0;+QPCMV=1,0` before `ATA` (the reset first because `1,0` is
//!   reported to fail while `1,2` is active, and chan_quectel always resets first too;
//!   docs/voice.md, "Firmware caveats"), `AT+QPCMV=0` after.
//! - Playback of a file stored on the modem ([`AudioPath::File`]): Quectel `AT+QPSND` (end
//!   `+QPSND: 0`; Quectel EC2x AT Commands Manual, AT+QPSND), SIMCom A76xx/SIM7600 `AT+CCMXPLAY`
//!   (end `+AUDIOSTATE: audio play stop`; SIMCom A76XX Audio Application Note), SIM800 `AT+CREC=4`
//!   (end `+CREC: 0`; SIM800 Series AT Command Manual, AT+CREC). The greeting is uploaded to the
//!   flash beforehand (`files`). The audio never crosses USB, so no audio tty is needed.
//!
//! Which path a modem uses is configuration (`[[modem]] voice_audio`, [`AudioMode`]): by default
//! PCM for the families that stream it and file playback for SIM800, the only path it has.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::at::Command;
use crate::modem::{CallOp, Profile};

/// How the greeting reaches callers of one modem (`[[modem]] voice_audio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioMode {
    /// (a) PCM streamed over the modem's audio tty (`audio_port`).
    Pcm,
    /// (b) A file uploaded to the modem's flash and played there.
    File,
}

impl AudioMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AudioMode::Pcm => "pcm",
            AudioMode::File => "file",
        }
    }

    /// The modes a family supports (docs/voice.md, "Which modems can do voice").
    pub fn supported(profile: Profile) -> &'static [AudioMode] {
        match profile {
            Profile::Huawei => &[AudioMode::Pcm],
            Profile::Simcom | Profile::Quectel => &[AudioMode::Pcm, AudioMode::File],
            Profile::Sim800 => &[AudioMode::File],
            Profile::Generic | Profile::Wavecom | Profile::Zte => &[],
        }
    }

    /// The mode used when the config names none: the first supported one.
    pub fn default_for(profile: Profile) -> Option<AudioMode> {
        Self::supported(profile).first().copied()
    }
}

/// A family that plays files from its flash, with the names and commands it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFamily {
    /// Quectel EC25/EG25/EC20: UFS, `AT+QFUPL`, `AT+QPSND`.
    Quectel,
    /// SIMCom A76xx/SIM7600: `C:/`, `AT+CFTRANRX`, `AT+CCMXPLAY`.
    Simcom,
    /// SIMCom SIM800: `C:\User\`, `AT+FSWRITE`, `AT+CREC=4`.
    Sim800,
}

impl FileFamily {
    pub fn of(profile: Profile) -> Option<FileFamily> {
        match profile {
            Profile::Quectel => Some(FileFamily::Quectel),
            Profile::Simcom => Some(FileFamily::Simcom),
            Profile::Sim800 => Some(FileFamily::Sim800),
            _ => None,
        }
    }

    /// The greeting's name on the modem, as the upload command takes it.
    pub fn upload_name(self) -> &'static str {
        match self {
            FileFamily::Quectel => "UFS:greet.wav",
            FileFamily::Simcom => "C:/greet.wav",
            FileFamily::Sim800 => "C:\\User\\greet.wav",
        }
    }

    /// The command that plays the greeting to the caller.
    pub fn play(self) -> Result<Command, crate::at::AtError> {
        match self {
            FileFamily::Quectel => Command::qpsnd_play("greet.wav"),
            FileFamily::Simcom => Command::ccmxplay("C:/greet.wav"),
            FileFamily::Sim800 => Command::crec_play(self.upload_name(), 90),
        }
    }

    /// The command that stops it.
    pub fn stop(self) -> Command {
        match self {
            FileFamily::Quectel => Command::qpsnd_stop(),
            FileFamily::Simcom => Command::ccmxstop(),
            FileFamily::Sim800 => Command::crec_stop(),
        }
    }
}

/// How audio reaches the caller on one modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioPath {
    /// s16le 8 kHz frames over this tty.
    Pcm(PathBuf),
    /// A file stored on the modem, played by the modem.
    File(FileFamily),
    /// No way to play audio; why, for the log.
    None(&'static str),
}

/// The audio path of a modem of `profile` with an optional configured audio tty and configured
/// mode (`None` = the family's default, [`AudioMode::default_for`]).
pub fn audio_path(
    profile: Profile,
    audio_port: Option<&Path>,
    mode: Option<AudioMode>,
) -> AudioPath {
    let Some(mode) = mode.or_else(|| AudioMode::default_for(profile)) else {
        return AudioPath::None("this modem family has no voice path");
    };
    if !AudioMode::supported(profile).contains(&mode) {
        return AudioPath::None("voice_audio names a path this modem family does not have");
    }
    match mode {
        AudioMode::Pcm => match audio_port {
            Some(p) => AudioPath::Pcm(p.to_path_buf()),
            None => AudioPath::None("no audio_port configured for a PCM-capable modem"),
        },
        AudioMode::File => match FileFamily::of(profile) {
            Some(f) => AudioPath::File(f),
            None => AudioPath::None("this modem family has no file playback"),
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
                // One retry: a firmware without voice keeps refusing (docs/voice.md, "Firmware
                // caveats").
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
            assert_eq!(audio_path(prof, Some(p), None), AudioPath::Pcm(p.into()));
            assert!(matches!(audio_path(prof, None, None), AudioPath::None(_)));
        }
        for prof in [Profile::Generic, Profile::Wavecom, Profile::Zte] {
            assert!(matches!(
                audio_path(prof, Some(p), None),
                AudioPath::None(_)
            ));
            assert!(matches!(
                audio_path(prof, Some(p), Some(AudioMode::File)),
                AudioPath::None(_)
            ));
        }
        assert_eq!(
            audio_path(Profile::Sim800, None, None),
            AudioPath::File(FileFamily::Sim800)
        );
        assert!(matches!(
            audio_path(Profile::Sim800, Some(p), Some(AudioMode::Pcm)),
            AudioPath::None(_)
        ));
        assert_eq!(
            audio_path(Profile::Quectel, Some(p), Some(AudioMode::File)),
            AudioPath::File(FileFamily::Quectel)
        );
        assert_eq!(
            audio_path(Profile::Simcom, None, Some(AudioMode::File)),
            AudioPath::File(FileFamily::Simcom)
        );
        assert!(matches!(
            audio_path(Profile::Huawei, Some(p), Some(AudioMode::File)),
            AudioPath::None(_)
        ));
    }

    #[test]
    fn file_commands_per_family() {
        assert_eq!(
            FileFamily::Quectel.play().unwrap().text(),
            "AT+QPSND=1,\"greet.wav\",0,1,1\r"
        );
        assert_eq!(
            FileFamily::Simcom.play().unwrap().text(),
            "AT+CCMXPLAY=\"C:/greet.wav\",1,0\r"
        );
        assert_eq!(
            FileFamily::Sim800.play().unwrap().text(),
            "AT+CREC=4,\"C:\\User\\greet.wav\",0,90\r"
        );
        assert_eq!(FileFamily::Sim800.stop().text(), "AT+CREC=5\r");
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
