//! The greeting on the modem's flash, for the file-playback path: checking whether the modem holds
//! the current greeting, uploading it when it is missing or has changed, and the record of what was
//! uploaded (`state_dir/voice/uploads.json`). The sequences per family are in docs/voice.md, "How
//! the greeting plays from the modem's flash"; the commands come from the Quectel FILE AT Commands
//! Manual (AT+QFUPL, AT+QFLST), the SIMCom A76XX Audio Application Note (AT+CFTRANRX) and the
//! SIM800 Series AT Command Manual (AT+FSCREATE, AT+FSWRITE).
//!
//! It owns the upload sequences per family and the record file; it must not decide when to upload
//! (the `uploader` task does, at start-up, when the modem comes back Ready, and after
//! `greeting set`) nor play anything. Every command goes through the modem actor's normal queue
//! ([`ModemHandle::exec`]), so an upload waits behind nothing urgent and calls still go first.
//!
//! Choices:
//! - What is uploaded is the converted greeting as an 8 kHz mono 16-bit WAV
//!   (`Greeting::to_wav`), which all three families play (Quectel: wav 8/16 kHz mono 16-bit).
//! - "Unchanged" means: the record names the same content (FNV-1a 64 of the bytes, and the size)
//!   and the modem reports a file of that size. Only Quectel reports a checksum (`+QFUPL:`'s
//!   16-bit XOR, Quectel FILE AT manual); it is checked right after the upload and kept in the
//!   record. A modem that lost the file, or holds one of another size, gets it again.
//! - Quectel refuses to upload over an existing file (`+CME ERROR: 407`), so the old one is
//!   deleted first; SIMCom's `AT+CFTRANRX` replaces; SIM800 writes in chunks of at most
//!   10240 bytes, the first from offset 0 (mode 0), the rest appended (mode 1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use super::playback::FileFamily;
use crate::at::files::{parse_fsattri, parse_fsflsize, parse_qflst, parse_qfupl, quectel_checksum};
use crate::at::{AtError, Command};
use crate::modem::{CommandError, ModemHandle};

/// How long the module waits for the upload's data (`AT+QFUPL` timeout, `AT+FSWRITE` timeout).
const DATA_TIMEOUT_S: u8 = 30;

/// Errors of checking or uploading the greeting.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("building {0}")]
    Build(#[from] AtError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("{modem}: after the upload the modem reports {what} {got}, expected {expected}")]
    Mismatch {
        modem: String,
        what: &'static str,
        expected: String,
        got: String,
    },
    #[error("{modem}: no {prefix} line in the answer to the upload")]
    NoAnswer { modem: String, prefix: &'static str },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("upload record {path} is not valid: {source}")]
    Record {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// What was uploaded to one modem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub family: FileFamily,
    /// The name on the modem.
    pub name: String,
    pub size: u64,
    /// FNV-1a 64 of the uploaded bytes, as 16 hex digits.
    pub fnv64: String,
    /// The modem's checksum of the upload, where it reports one (Quectel, hex).
    pub checksum: Option<String>,
    pub uploaded_at_ms: i64,
}

/// FNV-1a 64 (no crate needed; a change detector, not a security measure).
pub fn fnv64(data: &[u8]) -> String {
    let h = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// The record file: modem name → what was uploaded there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records(pub BTreeMap<String, Installed>);

impl Records {
    /// Loads the record; a missing file is an empty record.
    pub fn load(path: &Path) -> Result<Records, FileError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| FileError::Record {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records::default()),
            Err(source) => Err(FileError::Io {
                what: "reading",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the record atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        let io = |what, source| FileError::Io {
            what,
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("json.part");
        // Serialising a map of plain strings and numbers cannot fail.
        let text = serde_json::to_vec_pretty(self).unwrap_or_default();
        std::fs::write(&tmp, text).map_err(|e| io("writing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("replacing", e))
    }
}

/// The outcome of [`ensure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// The modem already held this greeting; nothing was written.
    Present(Installed),
    /// It was uploaded now.
    Uploaded(Installed),
}

impl Ensured {
    pub fn installed(&self) -> &Installed {
        match self {
            Ensured::Present(i) | Ensured::Uploaded(i) => i,
        }
    }
}

/// Makes sure the modem holds `wav` as its greeting file: skips the upload when `record` names
/// the same content and the modem reports a file of its size, uploads otherwise.
pub async fn ensure(
    modem: &ModemHandle,
    family: FileFamily,
    wav: &[u8],
    record: Option<&Installed>,
    now_ms: i64,
) -> Result<Ensured, FileError> {
    let hash = fnv64(wav);
    let size = wav.len() as u64;
    let on_modem = size_on_modem(modem, family).await;
    debug!(?on_modem, size, "greeting file on the modem");
    if let Some(r) = record
        && r.family == family
        && r.fnv64 == hash
        && r.size == size
        && on_modem == Some(size)
    {
        return Ok(Ensured::Present(r.clone()));
    }
    info!(
        family = ?family,
        size,
        on_modem = ?on_modem,
        "uploading the greeting to the modem"
    );
    let checksum = upload(modem, family, wav).await?;
    // Read the size back: the upload's OK alone does not prove the file is whole.
    let after = size_on_modem(modem, family).await;
    if after != Some(size) {
        return Err(FileError::Mismatch {
            modem: modem.name().to_owned(),
            what: "file size",
            expected: size.to_string(),
            got: after.map_or_else(|| "no file".to_owned(), |n| n.to_string()),
        });
    }
    Ok(Ensured::Uploaded(Installed {
        family,
        name: family.upload_name().to_owned(),
        size,
        fnv64: hash,
        checksum: checksum.map(|c| format!("{c:04x}")),
        uploaded_at_ms: now_ms,
    }))
}

/// The size of the greeting file on the modem, `None` if it has none (or cannot say).
pub async fn size_on_modem(modem: &ModemHandle, family: FileFamily) -> Option<u64> {
    let name = family.upload_name();
    match family {
        FileFamily::Quectel => {
            let lines = modem.exec(Command::qflst(name).ok()?).await.ok()?;
            lines
                .iter()
                .filter_map(|l| parse_qflst(l).ok())
                .find(|(n, _)| n == name || n.strip_prefix("UFS:") == name.strip_prefix("UFS:"))
                .map(|(_, s)| s)
        }
        FileFamily::Simcom => {
            // AT+FSATTRI takes a name in the current directory, so select C: first.
            modem.exec(Command::fscd("C:").ok()?).await.ok()?;
            let lines = modem.exec(Command::fsattri("greet.wav").ok()?).await.ok()?;
            lines.iter().find_map(|l| parse_fsattri(l).ok())
        }
        FileFamily::Sim800 => {
            let lines = modem.exec(Command::fsflsize(name).ok()?).await.ok()?;
            lines.iter().find_map(|l| parse_fsflsize(l).ok())
        }
    }
}

/// Uploads `wav` as the greeting file; returns the modem's checksum where it reports one.
async fn upload(
    modem: &ModemHandle,
    family: FileFamily,
    wav: &[u8],
) -> Result<Option<u16>, FileError> {
    let name = family.upload_name();
    match family {
        FileFamily::Quectel => {
            // 405 (no such file) is the normal answer the first time.
            if let Err(e) = modem.exec(Command::qfdel(name)?).await {
                debug!(error = %e, "AT+QFDEL before the upload");
            }
            let lines = modem
                .exec(Command::qfupl(name, wav, u16::from(DATA_TIMEOUT_S))?)
                .await?;
            let (size, sum) = lines
                .iter()
                .find_map(|l| parse_qfupl(l).ok())
                .ok_or_else(|| FileError::NoAnswer {
                    modem: modem.name().to_owned(),
                    prefix: "+QFUPL:",
                })?;
            let want = quectel_checksum(wav);
            if size != wav.len() as u64 || sum != want {
                return Err(FileError::Mismatch {
                    modem: modem.name().to_owned(),
                    what: "+QFUPL size,checksum",
                    expected: format!("{},{want:04x}", wav.len()),
                    got: format!("{size},{sum:04x}"),
                });
            }
            Ok(Some(sum))
        }
        FileFamily::Simcom => {
            modem.exec(Command::cftranrx(name, wav)?).await?;
            Ok(None)
        }
        FileFamily::Sim800 => {
            if let Err(e) = modem.exec(Command::fsdel(name)?).await {
                debug!(error = %e, "AT+FSDEL before the upload");
            }
            modem.exec(Command::fscreate(name)?).await?;
            for (i, chunk) in wav.chunks(Command::FSWRITE_MAX).enumerate() {
                modem
                    .exec(Command::fswrite(name, i > 0, chunk, DATA_TIMEOUT_S)?)
                    .await?;
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        // FNV-1a 64 test vectors (Fowler/Noll/Vo reference).
        assert_eq!(fnv64(b""), "cbf29ce484222325");
        assert_eq!(fnv64(b"a"), "af63dc4c8601ec8c");
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("uploads.json");
        assert_eq!(Records::load(&p).unwrap(), Records::default());
        let mut r = Records::default();
        r.0.insert(
            "q0".into(),
            Installed {
                family: FileFamily::Quectel,
                name: "UFS:greet.wav".into(),
                size: 44,
                fnv64: fnv64(b"x"),
                checksum: Some("2d19".into()),
                uploaded_at_ms: 1,
            },
        );
        r.save(&p).unwrap();
        assert_eq!(Records::load(&p).unwrap(), r);
        std::fs::write(&p, b"{not json").unwrap();
        assert!(matches!(Records::load(&p), Err(FileError::Record { .. })));
    }
}
