//! PCM over the modem's audio tty (Huawei voice port, SIMCom if04, Quectel NMEA port in TTY mode):
//! s16le 8 kHz mono in 320-byte / 20 ms frames both ways (MODEMS.md §4.1–4.4).
//!
//! It owns the audio tty of one modem and its task; it must not send AT commands (routing the audio
//! to the tty is the driver's job, through the modem's call queue). One task per modem keeps the
//! tty open and reads it continuously, also between calls and while not recording, so the tty never
//! backs up (MODEMS.md §4.6). During a stream it writes exactly one frame per 20 ms tick of a
//! monotonic clock: the next queued frame, or silence when nothing is queued.
//!
//! Choices:
//! - Pacing: [`Pacing::Interval`] (`tokio::time::interval` with `MissedTickBehavior::Burst`) or
//!   [`Pacing::Deadline`] (an absolute-deadline loop, `sleep_until(start + k·20 ms)`). Both are
//!   drift-free; a late tick is caught up by writing the missed frames at once. Measured against the
//!   simulator in tests/voice_sim.rs (figures in docs/voice.md); the interval is the default.
//! - Priming: a modem may drop what is written before its audio path has switched (the simulator
//!   does, like a real module between `AT^DDSETEX` and the switch). So the stream writes paced
//!   silence for [`AudioOptions::settle`], then [`AudioOptions::lead`] extra silence frames at once,
//!   which gives the modem's buffer that many frames of margin against scheduling jitter, and only
//!   then starts taking queued frames. The lead (60 ms) stays well under the 200 ms modem buffer.
//! - The uplink queue is bounded ([`AudioOptions::queue`] frames): the producer (greeting, beep)
//!   waits, so our own audio is never dropped and the latency stays bounded. [`Uplink::Mark`]s
//!   travel in the queue and fire once every frame before them has been written: the driver knows
//!   exactly when the greeting has been heard.
//! - The downlink goes to the stream's receiver with `try_send`; if the consumer lags, chunks are
//!   dropped and counted rather than letting the tty back up.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::greeting::FRAME_BYTES;

/// The 20 ms frame period.
pub const FRAME: Duration = Duration::from_millis(20);

/// Errors of the audio tty.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("opening audio tty {path}: {source}")]
    Open {
        path: PathBuf,
        source: tokio_serial::Error,
    },
    #[error("audio task of {path} has stopped")]
    Stopped { path: PathBuf },
}

/// How uplink writes are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pacing {
    #[default]
    Interval,
    Deadline,
}

/// Tuning of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioOptions {
    pub pacing: Pacing,
    /// Paced silence before priming.
    pub settle: Duration,
    /// Extra frames written at once after `settle`.
    pub lead: usize,
    /// Uplink queue depth in frames.
    pub queue: usize,
}

impl Default for AudioOptions {
    fn default() -> Self {
        AudioOptions {
            pacing: Pacing::Interval,
            settle: Duration::from_millis(40),
            lead: 3,
            queue: 10,
        }
    }
}

/// One uplink item.
#[derive(Debug)]
pub enum Uplink {
    Frame(Box<[u8; FRAME_BYTES]>),
    /// Fires when every frame queued before it has been written.
    Mark(oneshot::Sender<()>),
}

/// Our side's figures of the current (or last) stream.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StreamStats {
    pub frames_written: u64,
    pub silence_frames: u64,
    /// Ticks that fired more than 2 ms late.
    pub late_ticks: u64,
    pub max_late_ms: f64,
    pub downlink_bytes: u64,
    pub downlink_dropped: u64,
}

/// A running stream: queue frames on `uplink`, read the caller on `downlink`. Dropping it (or
/// [`AudioLink::stop`]) ends the stream.
#[derive(Debug)]
pub struct Stream {
    pub uplink: mpsc::Sender<Uplink>,
    pub downlink: mpsc::Receiver<Vec<u8>>,
}

enum Cmd {
    Start {
        reply: oneshot::Sender<Result<Stream, AudioError>>,
    },
    Stop,
}

/// The handle of one modem's audio task.
#[derive(Debug, Clone)]
pub struct AudioLink {
    path: PathBuf,
    tx: mpsc::Sender<Cmd>,
    stats: Arc<Mutex<StreamStats>>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cmd::Start { .. } => "Start",
            Cmd::Stop => "Stop",
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AudioLink {
    /// Spawns the task of the audio tty at `path` on `tracker`. The tty is opened now if it is there
    /// and again at each stream start if it went away.
    pub fn spawn(
        path: &Path,
        options: AudioOptions,
        tracker: &tokio_util::task::TaskTracker,
        cancel: CancellationToken,
    ) -> AudioLink {
        let (tx, rx) = mpsc::channel(4);
        let stats = Arc::new(Mutex::new(StreamStats::default()));
        let task = Task {
            path: path.to_path_buf(),
            options,
            port: None,
            stats: stats.clone(),
        };
        tracker.spawn(task.run(rx, cancel));
        AudioLink {
            path: path.to_path_buf(),
            tx,
            stats,
        }
    }

    /// Starts a stream (opening the tty if needed).
    pub async fn start(&self) -> Result<Stream, AudioError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || AudioError::Stopped {
            path: self.path.clone(),
        };
        self.tx
            .send(Cmd::Start { reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Ends the stream (the tty stays open and read).
    pub async fn stop(&self) {
        let _ = self.tx.send(Cmd::Stop).await;
    }

    /// Figures of the current or last stream.
    pub fn stats(&self) -> StreamStats {
        lock(&self.stats).clone()
    }
}

struct Active {
    uplink: mpsc::Receiver<Uplink>,
    downlink: mpsc::Sender<Vec<u8>>,
    started: Instant,
    primed: bool,
    /// A frame taken off the queue early (while firing marks), written at the next tick.
    held: Option<Box<[u8; FRAME_BYTES]>>,
    interval: tokio::time::Interval,
    next: Instant,
}

struct Task {
    path: PathBuf,
    options: AudioOptions,
    port: Option<tokio_serial::SerialStream>,
    stats: Arc<Mutex<StreamStats>>,
}

const SILENCE: [u8; FRAME_BYTES] = [0; FRAME_BYTES];

impl Task {
    fn open(&mut self) -> Result<(), AudioError> {
        if self.port.is_some() {
            return Ok(());
        }
        // The baud rate means nothing on a USB tty or a pty; tokio-serial needs one.
        let builder = tokio_serial::new(self.path.to_string_lossy(), 115_200);
        let port =
            tokio_serial::SerialStream::open(&builder).map_err(|source| AudioError::Open {
                path: self.path.clone(),
                source,
            })?;
        info!(path = %self.path.display(), "audio tty open");
        self.port = Some(port);
        Ok(())
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, cancel: CancellationToken) {
        if let Err(e) = self.open() {
            debug!(error = %e, "audio tty not open yet");
        }
        let mut active: Option<Active> = None;
        let mut buf = vec![0u8; 4096];
        loop {
            let deadline = active.as_ref().map(|a| a.next);
            let pacing = self.options.pacing;
            enum Wake {
                Cancel,
                Cmd(Option<Cmd>),
                Read(std::io::Result<usize>),
                Tick(Instant),
            }
            let wake = {
                let read = async {
                    match self.port.as_mut() {
                        Some(p) => p.read(&mut buf).await,
                        None => std::future::pending().await,
                    }
                };
                let tick = async {
                    match (active.as_mut(), pacing) {
                        (Some(a), Pacing::Interval) => a.interval.tick().await,
                        (Some(_), Pacing::Deadline) => {
                            let d = deadline.unwrap_or_else(Instant::now);
                            tokio::time::sleep_until(d).await;
                            d
                        }
                        (None, _) => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Wake::Cancel,
                    t = tick => Wake::Tick(t),
                    c = cmds.recv() => Wake::Cmd(c),
                    r = read => Wake::Read(r),
                }
            };
            match wake {
                Wake::Cancel | Wake::Cmd(None) => return,
                Wake::Cmd(Some(Cmd::Start { reply })) => {
                    let res = self.open().map(|()| {
                        let (up_tx, up_rx) = mpsc::channel(self.options.queue.max(1));
                        let (down_tx, down_rx) = mpsc::channel(256);
                        let now = Instant::now();
                        let mut interval = tokio::time::interval_at(now, FRAME);
                        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
                        active = Some(Active {
                            uplink: up_rx,
                            downlink: down_tx,
                            started: now,
                            primed: false,
                            held: None,
                            interval,
                            next: now,
                        });
                        *lock(&self.stats) = StreamStats::default();
                        Stream {
                            uplink: up_tx,
                            downlink: down_rx,
                        }
                    });
                    let _ = reply.send(res);
                }
                Wake::Cmd(Some(Cmd::Stop)) => active = None,
                Wake::Read(Ok(n)) if n > 0 => {
                    if let Some(a) = &active {
                        let mut st = lock(&self.stats);
                        st.downlink_bytes += n as u64;
                        if a.downlink.try_send(buf.get(..n).unwrap_or_default().to_vec()).is_err() {
                            st.downlink_dropped += 1;
                        }
                    }
                }
                Wake::Read(r) => {
                    // 0 bytes = the device is gone (DEPENDENCIES.md, tokio-serial).
                    warn!(path = %self.path.display(), result = ?r.map_err(|e| e.to_string()), "audio tty gone");
                    self.port = None;
                    active = None;
                }
                Wake::Tick(due) => {
                    let Some(a) = active.as_mut() else { continue };
                    a.next = due + FRAME;
                    let late = Instant::now().saturating_duration_since(due);
                    let mut frames: Vec<[u8; FRAME_BYTES]> = Vec::with_capacity(1);
                    let mut silence = 0;
                    if !a.primed && due >= a.started + self.options.settle {
                        debug!(lead = self.options.lead, "audio stream primed");
                        a.primed = true;
                        silence += self.options.lead;
                        frames.extend(std::iter::repeat_n(SILENCE, self.options.lead));
                    }
                    let mut got = if a.primed { a.held.take().map(|f| *f) } else { None };
                    if a.primed && got.is_none() {
                        while let Ok(item) = a.uplink.try_recv() {
                            match item {
                                Uplink::Mark(done) => {
                                    let _ = done.send(());
                                }
                                Uplink::Frame(f) => {
                                    got = Some(*f);
                                    break;
                                }
                            }
                        }
                    }
                    match got {
                        Some(f) => frames.push(f),
                        None => {
                            silence += 1;
                            frames.push(SILENCE);
                        }
                    }
                    let bytes: Vec<u8> = frames.concat();
                    let ok = match self.port.as_mut() {
                        Some(p) => p.write_all(&bytes).await.is_ok(),
                        None => false,
                    };
                    if !ok {
                        warn!(path = %self.path.display(), "audio tty write failed");
                        self.port = None;
                        active = None;
                        continue;
                    }
                    let mut st = lock(&self.stats);
                    st.frames_written += frames.len() as u64;
                    st.silence_frames += silence as u64;
                    if late > Duration::from_millis(2) {
                        st.late_ticks += 1;
                    }
                    st.max_late_ms = st.max_late_ms.max(late.as_secs_f64() * 1000.0);
                    drop(st);
                    // Marks right after the frame just written fire now, not a tick later.
                    if let Some(a) = active.as_mut().filter(|a| a.primed && a.held.is_none()) {
                        while let Ok(item) = a.uplink.try_recv() {
                            match item {
                                Uplink::Mark(done) => {
                                    let _ = done.send(());
                                }
                                Uplink::Frame(f) => {
                                    // Taken to look behind it: first in line at the next tick.
                                    a.held = Some(f);
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
