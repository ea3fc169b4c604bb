//! Call audio for the PCM-streaming profiles (Huawei, SIMCom, Quectel): the modem's audio tty
//! consumes and produces s16le 8 kHz mono in real time, 320 bytes per 20 ms frame (MODEMS.md
//! §4.1–4.4). It owns the audio task and the timing measurements of what the daemon writes; the
//! call state (whether audio flows) is read from the modem core, and the samples go to and come
//! from the phone's call record in the network. WAV conversion (hound) lives here too.
//!
//! Measurements, per call, reset when the audio path switches on:
//! - `underruns`: 20 ms ticks, after the daemon's first uplink byte, at which less than a whole
//!   frame was buffered (the modem would play a gap: "choppy robotic audio", MODEMS.md §4.6);
//! - `overruns`: ticks at which more than `MAX_BUFFERED_FRAMES` were waiting (the modem's buffer
//!   overflows and the oldest audio is dropped);
//! - `underruns_after_100ms`: the same, counting only ticks more than 100 ms after the first byte
//!   (the daemon's audio path may still be settling before that);
//! - jitter: deviation from 20 ms of the interval between successive completed frames as they
//!   arrive from the daemon; mean, max and the 99th percentile (from a 0.1 ms histogram).
//!   The clock is the runtime's (a `tokio::time::interval` with burst catch-up), so consumption
//!   stays in real time on average even when a tick is late.

use std::collections::VecDeque;
use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::lock;
use super::modem::ModemCore;
use super::network::Network;
use super::pty::{Pty, publish, unpublish};

/// Bytes per 20 ms frame of s16le 8 kHz mono.
pub const FRAME_BYTES: usize = 320;
/// Frame period.
pub const FRAME: Duration = Duration::from_millis(20);
/// The modem's uplink buffer: 10 frames = 200 ms (MODEMS.md §4.6 bounds queues at ~200 ms).
pub const MAX_BUFFERED_FRAMES: usize = 10;

/// Timing figures of the audio the daemon wrote during the current (or last) call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AudioStats {
    pub call_id: Option<u64>,
    /// Whole frames consumed from the daemon.
    pub frames_in: u64,
    /// Frames written to the daemon.
    pub frames_out: u64,
    pub underruns: u64,
    /// Underruns more than 100 ms after the daemon's first uplink byte.
    pub underruns_after_100ms: u64,
    pub overruns: u64,
    /// Mean absolute deviation of frame inter-arrival times from 20 ms, in milliseconds.
    pub jitter_mean_ms: f64,
    pub jitter_max_ms: f64,
    /// 99th percentile of that deviation, in milliseconds (0.1 ms resolution; 100 ms = beyond).
    pub jitter_p99_ms: f64,
    /// Frames written to the daemon that it did not read in time (pty buffer full).
    pub frames_out_dropped: u64,
    /// Bytes the daemon wrote while no call audio was flowing (discarded).
    pub bytes_outside_call: u64,
    #[serde(skip)]
    jitter_sum_ms: f64,
    #[serde(skip)]
    jitter_samples: u64,
    /// Deviation histogram in 0.1 ms buckets; the last bucket holds everything from 100 ms up.
    #[serde(skip)]
    jitter_hist: Vec<u32>,
}

/// Buckets of the jitter histogram (0.1 ms each, 0–100 ms, plus one overflow bucket).
const JITTER_BUCKETS: usize = 1001;

impl AudioStats {
    fn frame_arrived(&mut self, gap: Duration) {
        let dev = (gap.as_secs_f64() * 1000.0 - 20.0).abs();
        self.jitter_sum_ms += dev;
        self.jitter_samples += 1;
        self.jitter_mean_ms = self.jitter_sum_ms / self.jitter_samples as f64;
        if dev > self.jitter_max_ms {
            self.jitter_max_ms = dev;
        }
        if self.jitter_hist.len() != JITTER_BUCKETS {
            self.jitter_hist = vec![0; JITTER_BUCKETS];
        }
        let bucket = ((dev * 10.0).round() as usize).min(JITTER_BUCKETS - 1);
        if let Some(b) = self.jitter_hist.get_mut(bucket) {
            *b += 1;
        }
        // Smallest bucket at or below which 99 % of the samples lie.
        let need = (self.jitter_samples * 99).div_ceil(100);
        let mut seen = 0u64;
        for (i, n) in self.jitter_hist.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= need {
                self.jitter_p99_ms = i as f64 / 10.0;
                break;
            }
        }
    }
}

/// Errors converting WAV data.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("reading WAV {path}: {source}")]
    Read { path: String, source: hound::Error },
    #[error("writing WAV {path}: {source}")]
    Write { path: String, source: hound::Error },
}

/// Samples of a WAV file as 8 kHz mono s16: the first channel, resampled by nearest neighbour if
/// the rate differs (good enough to hear and to measure). `None` if it is not a PCM WAV.
pub fn wav_samples(bytes: &[u8]) -> Option<Vec<i16>> {
    let reader = hound::WavReader::new(Cursor::new(bytes)).ok()?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int
        || spec.bits_per_sample != 16
        || spec.channels == 0
    {
        return None;
    }
    let ch = usize::from(spec.channels);
    let all: Vec<i16> = reader
        .into_samples::<i16>()
        .filter_map(Result::ok)
        .collect();
    let mono: Vec<i16> = all.iter().step_by(ch).copied().collect();
    if spec.sample_rate == 8000 || spec.sample_rate == 0 {
        return Some(mono);
    }
    let out_len = (mono.len() as u64 * 8000 / u64::from(spec.sample_rate)) as usize;
    Some(
        (0..out_len)
            .filter_map(|i| {
                mono.get((i as u64 * u64::from(spec.sample_rate) / 8000) as usize)
                    .copied()
            })
            .collect(),
    )
}

/// Reads a WAV file into 8 kHz mono samples.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, WavError> {
    let bytes = std::fs::read(path).map_err(|e| WavError::Read {
        path: path.display().to_string(),
        source: hound::Error::IoError(e),
    })?;
    wav_samples(&bytes).ok_or_else(|| WavError::Read {
        path: path.display().to_string(),
        source: hound::Error::Unsupported,
    })
}

/// Writes 8 kHz mono s16 samples as a WAV file.
pub fn write_wav(path: &Path, samples: &[i16]) -> Result<(), WavError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let err = |source| WavError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for s in samples {
        w.write_sample(*s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

fn bytes_to_samples(b: &[u8]) -> Vec<i16> {
    b.chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn samples_to_bytes(s: &[i16]) -> Vec<u8> {
    s.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Everything the audio task of one modem shares.
pub struct AudioShared {
    pub core: Arc<Mutex<ModemCore>>,
    pub network: Arc<Mutex<Network>>,
    pub stats: Arc<Mutex<AudioStats>>,
    pub link: std::path::PathBuf,
    pub plugged: watch::Receiver<bool>,
}

/// Runs the audio tty of one modem until cancelled, following unplug/replug like the AT port.
pub async fn audio_task(mut s: AudioShared, first: Pty, cancel: CancellationToken) {
    let mut first = Some(first);
    loop {
        if let Some(pty) = first.take() {
            let stop = serve(&pty, &mut s, &cancel).await;
            unpublish(&s.link);
            drop(pty);
            if stop {
                return;
            }
            continue;
        }
        if !*s.plugged.borrow() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = s.plugged.changed() => { if r.is_err() { return; } continue; }
            }
        }
        let pty = match Pty::open() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("audio pty for {}: {e}", s.link.display());
                return;
            }
        };
        if let Err(e) = publish(&s.link, pty.slave_path()) {
            tracing::error!("{e}");
            return;
        }
        let stop = serve(&pty, &mut s, &cancel).await;
        unpublish(&s.link);
        drop(pty);
        if stop {
            return;
        }
    }
}

/// Serves one plugged period. Returns true when the task must end.
async fn serve(pty: &Pty, s: &mut AudioShared, cancel: &CancellationToken) -> bool {
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut inbuf: VecDeque<u8> = VecDeque::new();
    let mut route: Option<u64> = None;
    let mut first_byte: Option<Instant> = None;
    let mut arrived: usize = 0;
    let mut last_frame_at: Option<Instant> = None;
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return true,
            r = s.plugged.changed() => {
                if r.is_err() { return true; }
                if !*s.plugged.borrow() { return false; }
            }
            r = pty.read(&mut buf) => {
                let n = match r { Ok(n) => n, Err(_) => { tokio::time::sleep(FRAME).await; continue; } };
                let data = buf.get(..n).unwrap_or_default();
                let now = Instant::now();
                let mut st = lock(&s.stats);
                if route.is_some() {
                    inbuf.extend(data.iter().copied());
                    first_byte.get_or_insert(now);
                    let before = arrived / FRAME_BYTES;
                    arrived += n;
                    for _ in before..arrived / FRAME_BYTES {
                        if let Some(prev) = last_frame_at {
                            st.frame_arrived(now.saturating_duration_since(prev));
                        }
                        last_frame_at = Some(now);
                    }
                } else {
                    st.bytes_outside_call += n as u64;
                }
            }
            _ = tick.tick() => {
                let now_route = lock(&s.core).audio_route().map(|r| r.call_id);
                if now_route != route {
                    route = now_route;
                    inbuf.clear();
                    first_byte = None;
                    arrived = 0;
                    last_frame_at = None;
                    if route.is_some() {
                        *lock(&s.stats) = AudioStats { call_id: route, ..AudioStats::default() };
                    }
                }
                let Some(id) = route else { continue };
                let mut frame: Vec<u8> = Vec::with_capacity(FRAME_BYTES);
                {
                    let mut st = lock(&s.stats);
                    if inbuf.len() >= FRAME_BYTES {
                        frame.extend(inbuf.drain(..FRAME_BYTES));
                        st.frames_in += 1;
                    } else {
                        if let Some(first) = first_byte {
                            st.underruns += 1;
                            if Instant::now().saturating_duration_since(first) > Duration::from_millis(100) {
                                st.underruns_after_100ms += 1;
                            }
                        }
                        frame.extend(inbuf.drain(..));
                        frame.resize(FRAME_BYTES, 0);
                    }
                    if inbuf.len() > MAX_BUFFERED_FRAMES * FRAME_BYTES {
                        st.overruns += 1;
                        let excess = inbuf.len() - MAX_BUFFERED_FRAMES * FRAME_BYTES;
                        inbuf.drain(..excess);
                    }
                }
                let speech = {
                    let mut net = lock(&s.network);
                    net.heard(id, &bytes_to_samples(&frame));
                    net.speech(id, FRAME_BYTES / 2)
                };
                let out = samples_to_bytes(&speech);
                let written = pty.try_write(&out).unwrap_or(0);
                let mut st = lock(&s.stats);
                if written < out.len() {
                    st.frames_out_dropped += 1;
                } else {
                    st.frames_out += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        let samples: Vec<i16> = (0..800).map(|i| (i * 37 % 2000) as i16 - 1000).collect();
        write_wav(&p, &samples).unwrap();
        assert_eq!(read_wav(&p).unwrap(), samples);
    }

    #[test]
    fn garbage_is_not_wav() {
        assert!(wav_samples(b"not a wav at all").is_none());
        assert!(wav_samples(&[]).is_none());
    }

    #[test]
    fn jitter_figures() {
        let mut s = AudioStats::default();
        s.frame_arrived(Duration::from_millis(20));
        s.frame_arrived(Duration::from_millis(30));
        assert!((s.jitter_mean_ms - 5.0).abs() < 1e-9);
        assert!((s.jitter_max_ms - 10.0).abs() < 1e-9);
        // 99 % of 200 samples: 198 on time, 2 late → p99 still 0 once the late ones are ≤ 1 %.
        let mut s = AudioStats::default();
        for _ in 0..198 {
            s.frame_arrived(Duration::from_millis(20));
        }
        s.frame_arrived(Duration::from_millis(25));
        s.frame_arrived(Duration::from_millis(25));
        assert_eq!(s.jitter_p99_ms, 0.0);
        s.frame_arrived(Duration::from_millis(25));
        assert!((s.jitter_p99_ms - 5.0).abs() < 1e-9);
    }

    #[test]
    fn sample_bytes_round_trip() {
        let s = vec![1i16, -2, 300, i16::MIN, i16::MAX];
        assert_eq!(bytes_to_samples(&samples_to_bytes(&s)), s);
    }
}
