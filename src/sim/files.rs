//! The simulated modem's flash: files uploaded over the AT port and played into a call
//! (docs/simulator.md, "Files on the modem and their playback"). It owns the file table and the
//! playback clock of one modem; `modem/files.rs` parses the commands (`AT+QFUPL`/`AT+QFLST`/
//! `AT+QFDEL`/`AT+QPSND` on Quectel, `AT+CFTRANRX`/`AT+FSCD`/`AT+FSATTRI`/`AT+CCMXPLAY` on SIMCom,
//! `AT+FSCREATE`/`AT+FSWRITE`/`AT+FSFLSIZE`/`AT+FSDEL`/`AT+CREC` on SIM800) and decides what to
//! answer. Sans-I/O like the rest of the core.
//!
//! Why the shape: playback runs on the modem's clock, not at once — the caller hears the file in
//! real time, 8 samples per millisecond, so a hang-up in the middle leaves the caller with the part
//! played so far, and the end URC comes when the file's duration has passed. The simulator decodes
//! PCM WAV only (`wav.rs`); a file it cannot decode is refused by the play command (a real module
//! would also play AMR/MP3). Files survive reboots (flash), and every completed upload is counted
//! per file so tests can see whether the daemon uploaded again.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::wav;

/// A file on the simulated flash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFile {
    /// The canonical name (Quectel without `UFS:`, SIMCom `C:/…`, SIM800 `C:\User\…`).
    pub name: String,
    pub data: Vec<u8>,
}

/// What a listing shows (`SimHandle::files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    pub name: String,
    pub size: usize,
    pub uploads: u32,
}

/// The file table of one modem.
#[derive(Debug, Clone, Default)]
pub struct FileSystem {
    files: Vec<SimFile>,
    /// Uploads per name (a whole-file upload, or a write from offset 0), kept across deletes so a
    /// delete-then-upload still counts as a second upload.
    uploads: std::collections::BTreeMap<String, u32>,
}

impl FileSystem {
    pub fn get(&self, name: &str) -> Option<&SimFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Stores a whole file (an upload in one go), replacing any file of that name.
    pub fn put(&mut self, name: &str, data: Vec<u8>) {
        self.files.retain(|f| f.name != name);
        self.files.push(SimFile {
            name: name.to_owned(),
            data,
        });
        self.count_upload(name);
    }

    fn count_upload(&mut self, name: &str) {
        let n = self.uploads.entry(name.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Creates an empty file; false if it exists.
    pub fn create(&mut self, name: &str) -> bool {
        if self.get(name).is_some() {
            return false;
        }
        self.files.push(SimFile {
            name: name.to_owned(),
            data: Vec::new(),
        });
        true
    }

    /// Writes into an existing file: from the start (`append` false, counted as a new upload) or
    /// at its end. False if there is no such file.
    pub fn write(&mut self, name: &str, append: bool, data: &[u8]) -> bool {
        let Some(f) = self.files.iter_mut().find(|f| f.name == name) else {
            return false;
        };
        if !append {
            f.data.clear();
        }
        f.data.extend_from_slice(data);
        if !append {
            self.count_upload(name);
        }
        true
    }

    /// Deletes a file; false if there was none.
    pub fn delete(&mut self, name: &str) -> bool {
        let before = self.files.len();
        self.files.retain(|f| f.name != name);
        self.files.len() != before
    }

    pub fn list(&self) -> Vec<FileInfo> {
        self.files
            .iter()
            .map(|f| FileInfo {
                name: f.name.clone(),
                size: f.data.len(),
                uploads: self.uploads.get(&f.name).copied().unwrap_or(0),
            })
            .collect()
    }
}

/// Quectel names: `UFS:greet.wav` and `greet.wav` are the same file (UFS is the default, /data/ufs).
pub fn quectel_name(name: &str) -> String {
    name.strip_prefix("UFS:").unwrap_or(name).to_owned()
}

/// SIMCom paths: absolute `C:/x` as given; a bare name is in the current directory `cwd` (`C:`).
pub fn simcom_path(cwd: &str, name: &str) -> String {
    if name.contains(':') {
        name.to_owned()
    } else {
        format!("{}/{name}", cwd.trim_end_matches('/'))
    }
}

/// A file playing into the active call.
#[derive(Debug, Clone)]
pub struct Playback {
    pub call_id: u64,
    samples: Vec<i16>,
    started: Instant,
    delivered: usize,
    /// The URC sent when the file has played to its end.
    pub end_urc: &'static str,
    /// A URC sent once playback runs (after the command's `OK`), taken by the modem.
    pub start_urc: Option<&'static str>,
}

/// Samples per millisecond at 8 kHz.
const PER_MS: u128 = 8;

impl Playback {
    /// Starts playing `file` (a PCM WAV; `None` if it cannot be decoded) at `now`.
    pub fn start(
        call_id: u64,
        file: &[u8],
        now: Instant,
        end_urc: &'static str,
    ) -> Option<Playback> {
        let samples = wav::decode(file)?;
        Some(Playback {
            call_id,
            samples,
            started: now,
            delivered: 0,
            end_urc,
            start_urc: None,
        })
    }

    /// The samples due by `now` that the caller has not heard yet.
    pub fn advance(&mut self, now: Instant) -> Vec<i16> {
        let due = (now.saturating_duration_since(self.started).as_millis() * PER_MS)
            .min(self.samples.len() as u128) as usize;
        let out = self
            .samples
            .get(self.delivered..due)
            .map(<[i16]>::to_vec)
            .unwrap_or_default();
        self.delivered = self.delivered.max(due);
        out
    }

    pub fn finished(&self) -> bool {
        self.delivered >= self.samples.len()
    }

    /// When the next 20 ms of audio (or the end) is due.
    pub fn next_due(&self) -> Instant {
        let total = Duration::from_millis((self.samples.len() as u64).div_ceil(8));
        let next = Duration::from_millis((self.delivered as u64 / 160 + 1) * 20);
        self.started + next.min(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_counted() {
        let mut fs = FileSystem::default();
        let uploads = |fs: &FileSystem, n: &str| {
            fs.list()
                .into_iter()
                .find(|f| f.name == n)
                .map(|f| f.uploads)
        };
        fs.put("a", vec![1]);
        fs.put("a", vec![2, 3]);
        assert_eq!(uploads(&fs, "a"), Some(2));
        assert!(fs.create("b") && !fs.create("b"));
        assert!(fs.write("b", false, &[1, 2]) && fs.write("b", true, &[3]));
        assert_eq!(fs.get("b").unwrap().data, vec![1, 2, 3]);
        assert_eq!(uploads(&fs, "b"), Some(1));
        assert!(!fs.write("c", false, &[1]));
        assert!(fs.delete("a") && !fs.delete("a"));
        assert_eq!(fs.list().len(), 1);
        // Deleted and uploaded again: the third upload of that name.
        fs.put("a", vec![4]);
        assert_eq!(uploads(&fs, "a"), Some(3));
    }

    #[test]
    fn names() {
        assert_eq!(quectel_name("UFS:greet.wav"), "greet.wav");
        assert_eq!(quectel_name("greet.wav"), "greet.wav");
        assert_eq!(simcom_path("C:", "greet.wav"), "C:/greet.wav");
        assert_eq!(simcom_path("C:/", "greet.wav"), "C:/greet.wav");
        assert_eq!(simcom_path("C:", "C:/greet.wav"), "C:/greet.wav");
    }

    #[test]
    fn playback_runs_in_real_time() {
        let t0 = Instant::now();
        let s: Vec<i16> = (0..800).map(|i| i as i16).collect();
        let mut p = Playback::start(1, &wav::encode(&s).unwrap(), t0, "+QPSND: 0").unwrap();
        assert_eq!(p.next_due(), t0 + Duration::from_millis(20));
        let a = p.advance(t0 + Duration::from_millis(30));
        assert_eq!(a, s[..240].to_vec());
        assert!(!p.finished());
        let b = p.advance(t0 + Duration::from_millis(500));
        assert_eq!([a, b].concat(), s);
        assert!(p.finished());
        assert!(Playback::start(1, b"not a wav", t0, "x").is_none());
    }
}
