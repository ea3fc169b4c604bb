//! Call audio for the PCM-streaming profiles (Huawei, SIMCom, Quectel): the modem's audio tty
//! consumes and produces s16le 8 kHz mono in real time, 320 bytes per 20 ms frame (docs/modems.md,
//! "The families"). It owns the audio task and the timing measurements of what the daemon writes;
//! the call state (whether audio flows) is read from the modem core, and the samples go to and come
//! from the phone's call record in the network. WAV conversion is `wav.rs`.
//!
//! Measurements, per call, reset when the audio path switches on:
//! - `underruns`: 20 ms ticks, after the daemon's first uplink byte, at which less than a whole
//!   frame was buffered (the modem would play a gap: the "robotic" audio reported in
//!   wdoekes/asterisk-chan-dongle#184);
//! - `overruns`: ticks at which more than `MAX_BUFFERED_FRAMES` were waiting (the modem's buffer
//!   overflows and the oldest audio is dropped);
//! - `underruns_after_100ms`: the same, counting only ticks more than 100 ms after the first byte
//!   (the daemon's audio path may still be settling before that);
//! - jitter: how far each completed frame's arrival lies from the ideal 20 ms grid — arrival of
//!   frame k minus k·20 ms, relative to the median of those offsets — over the frames that arrive
//!   more than 100 ms after the first byte (the priming burst is not jitter); mean, max and the
//!   99th percentile of the absolute deviation. A late frame counts once (the inter-arrival
//!   measure used before counted it twice: one long gap, one short), and a steady offset is not
//!   jitter. The inter-arrival figure is kept beside it for comparison (`interarrival_p99_ms`).
//!
//! Timing: the audio tty runs on its own OS thread with its own current-thread runtime (the pty is
//! opened and registered there), so the arrival of the daemon's bytes is timestamped when that
//! thread wakes on the read — not after the shared runtime's workers, busy with the daemon under
//! test, get to it. That is what a real modem is: hardware consuming on its own clock. The
//! consumption clock is a `tokio::time::interval` with burst catch-up on that runtime.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::modem::ModemCore;
use super::network::Network;
use super::pty::{Pty, PtyError, publish, unpublish};
use super::sync::lock;

/// Bytes per 20 ms frame of s16le 8 kHz mono.
pub const FRAME_BYTES: usize = 320;
/// Frame period.
pub const FRAME: Duration = Duration::from_millis(20);
/// The modem's uplink buffer: 10 frames = 200 ms, the bound the daemon keeps its own queue under
/// (docs/voice.md, "How the audio flows (PCM)").
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
    /// Mean absolute deviation of frame arrivals from the ideal 20 ms grid, in milliseconds.
    pub jitter_mean_ms: f64,
    pub jitter_max_ms: f64,
    /// 99th percentile of that deviation, in milliseconds.
    pub jitter_p99_ms: f64,
    /// Frames the jitter figures are over (those after the first 100 ms).
    pub jitter_frames: u64,
    /// 99th percentile of |inter-arrival − 20 ms| over the same frames (the earlier measure).
    pub interarrival_p99_ms: f64,
    /// Frames written to the daemon that it did not read in time (pty buffer full).
    pub frames_out_dropped: u64,
    /// Bytes the daemon wrote while no call audio was flowing (discarded).
    pub bytes_outside_call: u64,
    /// Arrival offsets (arrival of frame k − k·20 ms, in ms from the first measured frame).
    #[serde(skip)]
    offsets_ms: Vec<f64>,
}

/// The p-th percentile (0–100) of `v` by nearest rank; 0 for an empty slice.
fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied().unwrap_or(0.0)
}

impl AudioStats {
    /// A frame completed at `offset` = its arrival minus its index × 20 ms (any fixed origin).
    fn frame_arrived(&mut self, offset: Duration) {
        self.offsets_ms.push(offset.as_secs_f64() * 1000.0);
    }

    /// Computes the jitter figures from the arrivals recorded so far.
    pub fn summarize(&mut self) {
        let n = self.offsets_ms.len();
        self.jitter_frames = n as u64;
        if n == 0 {
            return;
        }
        let mut sorted = self.offsets_ms.clone();
        let median = percentile(&mut sorted, 50.0);
        let mut dev: Vec<f64> = self.offsets_ms.iter().map(|o| (o - median).abs()).collect();
        self.jitter_mean_ms = dev.iter().sum::<f64>() / n as f64;
        self.jitter_max_ms = dev.iter().copied().fold(0.0, f64::max);
        self.jitter_p99_ms = percentile(&mut dev, 99.0);
        // Inter-arrival gap k = 20 ms + offset_k − offset_{k−1}.
        let mut gaps: Vec<f64> = self
            .offsets_ms
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .collect();
        self.interarrival_p99_ms = percentile(&mut gaps, 99.0);
    }
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
#[derive(Clone)]
pub struct AudioShared {
    pub core: Arc<Mutex<ModemCore>>,
    pub network: Arc<Mutex<Network>>,
    pub stats: Arc<Mutex<AudioStats>>,
    pub link: std::path::PathBuf,
    pub plugged: watch::Receiver<bool>,
}

/// Starts the audio tty of one modem on its own OS thread and current-thread runtime (module doc:
/// timing), publishing the first pty before it returns. The thread ends at `cancel`; `tracker`
/// waits for it.
pub fn start_audio_thread(
    shared: AudioShared,
    cancel: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> Result<(), PtyError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("sim-audio".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(PtyError::Register(e)));
                    return;
                }
            };
            rt.block_on(async move {
                let opened = Pty::open().and_then(|p| {
                    publish(&shared.link, p.slave_path())?;
                    Ok(p)
                });
                match opened {
                    Ok(pty) => {
                        let _ = ready_tx.send(Ok(()));
                        audio_task(shared, pty, cancel).await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            let _ = done_tx.send(());
        });
    if let Err(e) = spawned {
        return Err(PtyError::Register(e));
    }
    // The thread answers at once (opening a pty takes microseconds).
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(PtyError::Register(std::io::Error::other(
                "audio thread ended before opening its pty",
            )));
        }
    }
    tracker.spawn(async move {
        let _ = done_rx.await;
    });
    Ok(())
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
    // The grid origin: the first frame completed more than 100 ms after the first byte.
    let mut grid: Option<(Instant, u64)> = None;
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
                    let settled = first_byte
                        .is_some_and(|f| now.saturating_duration_since(f) > Duration::from_millis(100));
                    for k in before..arrived / FRAME_BYTES {
                        if !settled {
                            continue;
                        }
                        let k = k as u64;
                        let (origin, k0) = *grid.get_or_insert((now, k));
                        // Offset of frame k from the grid through the first settled frame; may be
                        // negative (early), so shift by a second to keep the Duration positive.
                        let ideal = origin + FRAME * u32::try_from(k - k0).unwrap_or(u32::MAX);
                        let off = (now + Duration::from_secs(1)).saturating_duration_since(ideal);
                        st.frame_arrived(off);
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
                    grid = None;
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
    fn jitter_is_the_deviation_from_the_grid() {
        let ms = |m: f64| Duration::from_secs_f64(1.0 + m / 1000.0);
        // 200 frames on the grid with a steady 3 ms offset: no jitter.
        let mut s = AudioStats::default();
        for _ in 0..200 {
            s.frame_arrived(ms(3.0));
        }
        s.summarize();
        assert_eq!((s.jitter_p99_ms, s.jitter_max_ms), (0.0, 0.0));
        assert_eq!(s.jitter_frames, 200);
        // One frame 5 ms late: max 5, p99 still 0 (1 of 201 < 1 %); inter-arrival sees two gaps.
        s.frame_arrived(ms(8.0));
        s.frame_arrived(ms(3.0));
        s.summarize();
        assert!((s.jitter_max_ms - 5.0).abs() < 1e-9);
        assert_eq!(s.jitter_p99_ms, 0.0);
        assert!((s.interarrival_p99_ms - 0.0).abs() < 1e-9);
        // 3 of 203 late (> 1 %): p99 = 5 ms.
        s.frame_arrived(ms(8.0));
        s.frame_arrived(ms(8.0));
        s.summarize();
        assert!((s.jitter_p99_ms - 5.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn percentile_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut [], 99.0), 0.0);
    }

    #[test]
    fn sample_bytes_round_trip() {
        let s = vec![1i16, -2, 300, i16::MIN, i16::MAX];
        assert_eq!(bytes_to_samples(&samples_to_bytes(&s)), s);
    }
}
