//! Voicemail recording: collects the caller's downlink PCM, decides when the caller has gone quiet,
//! and writes the result as an 8 kHz mono 16-bit WAV file.
//!
//! It owns the silence rule and the WAV output; it must not touch ports, the modem or the store
//! (the call driver in `mod.rs` records the row). Pure apart from [`write_wav`], so the rule is
//! unit-tested without audio.
//!
//! Silence rule: the stream is judged in 20 ms frames (160 samples); a frame is silent when its RMS
//! is below [`SILENCE_RMS`] (about −44 dBFS: comfortably above the idle noise of a GSM downlink,
//! well below speech). Recording stops after `silence` of consecutive silent frames, or at the
//! length limit, or when the caller hangs up (the driver stops feeding). Reads from a tty split
//! anywhere, also inside a sample, so a dangling odd byte is kept for the next read. A recording
//! with no non-silent frame at all is no message and is not kept. Trailing silence beyond
//! [`KEEP_TRAILING_MS`] is trimmed from the file; everything before it is kept as heard.

use std::path::Path;
use std::time::Duration;

use super::greeting::{FRAME_SAMPLES, RATE, wav_bytes};

/// RMS below which a 20 ms frame counts as silence (16-bit full scale is 32767).
pub const SILENCE_RMS: f64 = 200.0;
/// Trailing silence kept at the end of a saved voicemail.
pub const KEEP_TRAILING_MS: u64 = 200;

/// What the recorder wants after a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Keep feeding.
    Recording,
    /// `silence` of consecutive silence: stop.
    Silence,
    /// The length limit was reached: stop.
    Full,
}

/// A recording in progress.
#[derive(Debug, Clone)]
pub struct Recorder {
    samples: Vec<i16>,
    max_samples: usize,
    silence_frames_needed: usize,
    silent_run: usize,
    /// Samples already judged (whole frames).
    judged: usize,
    /// Sample count at the end of the last non-silent frame.
    voiced_until: Option<usize>,
    odd: Option<u8>,
    state: RecordState,
}

fn frames_in(d: Duration) -> usize {
    (d.as_millis() / 20).max(1) as usize
}

impl Recorder {
    /// A recorder that stops after `silence` of silence or `max` of audio.
    pub fn new(max: Duration, silence: Duration) -> Recorder {
        let max_samples = (max.as_millis() as usize).saturating_mul(RATE as usize) / 1000;
        Recorder {
            samples: Vec::with_capacity(max_samples.min(RATE as usize * 60)),
            max_samples,
            silence_frames_needed: frames_in(silence),
            silent_run: 0,
            judged: 0,
            voiced_until: None,
            odd: None,
            state: RecordState::Recording,
        }
    }

    /// Feeds downlink bytes (s16le, split anywhere). Bytes after a stop are ignored.
    pub fn push(&mut self, bytes: &[u8]) -> RecordState {
        if self.state != RecordState::Recording {
            return self.state;
        }
        let mut rest = bytes;
        if let Some(lo) = self.odd.take() {
            match rest.split_first() {
                Some((hi, tail)) => {
                    self.samples.push(i16::from_le_bytes([lo, *hi]));
                    rest = tail;
                }
                None => {
                    self.odd = Some(lo);
                    return self.state;
                }
            }
        }
        let mut pairs = rest.chunks_exact(2);
        for p in &mut pairs {
            if let [lo, hi] = p {
                self.samples.push(i16::from_le_bytes([*lo, *hi]));
            }
        }
        self.odd = pairs.remainder().first().copied();
        self.judge();
        if self.state == RecordState::Recording && self.samples.len() >= self.max_samples {
            self.samples.truncate(self.max_samples);
            self.state = RecordState::Full;
        }
        self.state
    }

    fn judge(&mut self) {
        while self.state == RecordState::Recording {
            let Some(frame) = self.samples.get(self.judged..self.judged + FRAME_SAMPLES) else {
                return;
            };
            let energy: f64 = frame.iter().map(|s| f64::from(*s).powi(2)).sum();
            let rms = (energy / FRAME_SAMPLES as f64).sqrt();
            self.judged += FRAME_SAMPLES;
            if rms < SILENCE_RMS {
                self.silent_run += 1;
                if self.silent_run >= self.silence_frames_needed {
                    self.state = RecordState::Silence;
                }
            } else {
                self.silent_run = 0;
                self.voiced_until = Some(self.judged);
            }
        }
    }

    /// Whether anything but silence has been heard so far.
    pub fn heard_voice(&self) -> bool {
        self.voiced_until.is_some()
    }

    /// Samples recorded so far.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The message: `None` if the caller said nothing; otherwise the samples with trailing silence
    /// trimmed to [`KEEP_TRAILING_MS`].
    pub fn finish(mut self) -> Option<Vec<i16>> {
        // A last partial frame is judged too, so a short final word is not lost.
        let tail = self.samples.get(self.judged..).unwrap_or_default();
        if !tail.is_empty() {
            let energy: f64 = tail.iter().map(|s| f64::from(*s).powi(2)).sum();
            if (energy / tail.len() as f64).sqrt() >= SILENCE_RMS {
                self.voiced_until = Some(self.samples.len());
            }
        }
        let end = self.voiced_until?;
        let keep = end + (KEEP_TRAILING_MS as usize * RATE as usize / 1000);
        self.samples.truncate(keep.min(self.samples.len()));
        Some(self.samples)
    }
}

/// Writes samples as an 8 kHz mono 16-bit WAV file, atomically (temp file + rename), so a crash
/// never leaves a half file under a name the store points at.
pub fn write_wav(path: &Path, samples: &[i16]) -> std::io::Result<()> {
    let tmp = path.with_extension("wav.part");
    std::fs::write(&tmp, wav_bytes(samples))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(s: &[i16]) -> Vec<u8> {
        s.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn tone(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((i as f64 * 0.3).sin() * 3000.0) as i16)
            .collect()
    }

    #[test]
    fn stops_after_silence_and_trims() {
        let mut r = Recorder::new(Duration::from_secs(10), Duration::from_millis(500));
        let voice = tone(1600); // 200 ms
        assert_eq!(r.push(&bytes(&voice)), RecordState::Recording);
        // 480 ms of silence: not yet.
        assert_eq!(r.push(&bytes(&[0; 3840])), RecordState::Recording);
        assert_eq!(r.push(&bytes(&[0; 160])), RecordState::Silence);
        // Ignored once stopped.
        assert_eq!(r.push(&bytes(&voice)), RecordState::Silence);
        let out = r.finish().unwrap();
        assert_eq!(out.len(), 1600 + 1600);
        assert_eq!(&out[..1600], &voice[..]);
    }

    #[test]
    fn silence_only_is_no_message() {
        let mut r = Recorder::new(Duration::from_secs(10), Duration::from_secs(1));
        r.push(&bytes(&[3; 8000]));
        assert!(!r.heard_voice());
        assert_eq!(r.finish(), None);
    }

    #[test]
    fn length_limit() {
        let mut r = Recorder::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(r.push(&bytes(&tone(2000))), RecordState::Full);
        assert_eq!(r.finish().unwrap().len(), 800);
    }

    #[test]
    fn split_reads_inside_samples() {
        let voice = tone(500);
        let b = bytes(&voice);
        let mut r = Recorder::new(Duration::from_secs(10), Duration::from_secs(1));
        for chunk in b.chunks(3) {
            r.push(chunk);
        }
        assert_eq!(r.finish().unwrap(), voice);
    }

    #[test]
    fn wav_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vm.wav");
        let s = tone(1234);
        write_wav(&p, &s).unwrap();
        let back: Vec<i16> = hound::WavReader::open(&p)
            .unwrap()
            .into_samples::<i16>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(back, s);
        assert!(!p.with_extension("wav.part").exists());
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_samples(data in proptest::collection::vec(any::<u8>(), 0..2000), cut in 1usize..50) {
            let mut a = Recorder::new(Duration::from_secs(60), Duration::from_secs(60));
            a.push(&data);
            let mut b = Recorder::new(Duration::from_secs(60), Duration::from_secs(60));
            for c in data.chunks(cut) {
                b.push(c);
            }
            prop_assert_eq!(a.len(), data.len() / 2);
            prop_assert_eq!(a.finish(), b.finish());
        }
    }
}
