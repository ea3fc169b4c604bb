//! PCM over the modem's audio tty (Huawei voice port, SIMCom if04, Quectel NMEA port in TTY mode):
//! s16le 8 kHz mono in 320-byte / 20 ms frames both ways (the format Huawei reports with
//! `AT^CVOICE?` → `^CVOICE: 0,8000,16,20`; docs/voice.md, "How the audio flows (PCM)").
//!
//! It owns the audio tty of one modem and its task; it must not send AT commands (routing the audio
//! to the tty is the driver's job, through the modem's call queue). One task per modem keeps the
//! tty open and reads it continuously, also between calls and while not recording, so the tty never
//! backs up (docs/voice.md, "How the audio flows (PCM)"). During a stream it writes exactly one
//! frame per 20 ms tick of a monotonic clock: the next queued frame, or silence when nothing is
//! queued.
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
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// `tokio::time::interval`, `MissedTickBehavior::Burst`, on the audio task.
    #[default]
    Interval,
    /// `sleep_until(start + k·20 ms)` on the audio task.
    Deadline,
    /// An absolute-deadline loop on a dedicated OS thread with non-blocking writes.
    Thread,
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
    /// Uplink writes that did not fit into the tty (thread pacing only).
    pub frames_dropped: u64,
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
    downlink: mpsc::Sender<Vec<u8>>,
    /// The uplink when paced on this task (`None` when a pacer thread owns it).
    feed: Option<Feed>,
    interval: tokio::time::Interval,
    next: Instant,
    /// Stops the pacer thread when the stream ends.
    _thread: Option<ThreadStop>,
}

/// Sets the stop flag of a pacer thread when dropped.
struct ThreadStop(Arc<AtomicBool>);

impl Drop for ThreadStop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The uplink side of a stream: its queue, the priming state and a frame taken early.
struct Feed {
    uplink: mpsc::Receiver<Uplink>,
    started: Instant,
    settle: Duration,
    lead: usize,
    primed: bool,
    /// A frame taken off the queue early (while firing marks), written at the next tick.
    held: Option<Box<[u8; FRAME_BYTES]>>,
}

impl Feed {
    /// The bytes to write for the tick due at `due`, with their frame and silence-frame counts.
    fn take(&mut self, due: Instant) -> (Vec<u8>, usize, usize) {
        let mut frames: Vec<[u8; FRAME_BYTES]> = Vec::with_capacity(1);
        let mut silence = 0;
        if !self.primed && due >= self.started + self.settle {
            debug!(lead = self.lead, "audio stream primed");
            self.primed = true;
            silence += self.lead;
            frames.extend(std::iter::repeat_n(SILENCE, self.lead));
        }
        let mut got = None;
        if self.primed {
            got = self.held.take().map(|f| *f);
            while got.is_none() {
                match self.uplink.try_recv() {
                    Ok(Uplink::Mark(done)) => {
                        let _ = done.send(());
                    }
                    Ok(Uplink::Frame(f)) => got = Some(*f),
                    Err(_) => break,
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
        (frames.concat(), frames.len(), silence)
    }

    /// Fires the marks right behind the frame just written (now, not a tick later).
    fn after_write(&mut self) {
        if !self.primed || self.held.is_some() {
            return;
        }
        while let Ok(item) = self.uplink.try_recv() {
            match item {
                Uplink::Mark(done) => {
                    let _ = done.send(());
                }
                Uplink::Frame(f) => {
                    self.held = Some(f);
                    break;
                }
            }
        }
    }
}

impl StreamStats {
    fn wrote(&mut self, frames: usize, silence: usize, late: Duration) {
        self.frames_written += frames as u64;
        self.silence_frames += silence as u64;
        if late > Duration::from_millis(2) {
            self.late_ticks += 1;
        }
        self.max_late_ms = self.max_late_ms.max(late.as_secs_f64() * 1000.0);
    }
}

/// Opens the tty for the pacer thread's writes: non-blocking, so a modem that stops consuming
/// costs dropped frames (counted), never a stuck thread.
fn open_writer(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
}

/// The pacer thread ([`Pacing::Thread`]): an absolute-deadline loop on the OS clock
/// (`clock_nanosleep` resolution instead of the runtime's 1 ms timer wheel), independent of how
/// busy the async workers are.
fn pacer_thread(
    mut feed: Feed,
    mut out: std::fs::File,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<StreamStats>>,
) {
    use std::io::Write;
    let start = std::time::Instant::now();
    let mut k: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + FRAME * k;
        let now = std::time::Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let late = std::time::Instant::now().saturating_duration_since(due);
        let (bytes, frames, silence) = feed.take(Instant::from_std(due));
        match out.write(&bytes) {
            Ok(n) if n == bytes.len() => {}
            Ok(_) | Err(_) => {
                // A full tty buffer (the modem is not consuming) or a vanished device.
                lock(&stats).frames_dropped += 1;
            }
        }
        lock(&stats).wrote(frames, silence, late);
        feed.after_write();
        k = k.saturating_add(1);
    }
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

    /// Sets up a stream: the queues, and the pacer (this task, or a thread).
    fn start_stream(&mut self) -> Result<(Active, Stream), AudioError> {
        self.open()?;
        let (up_tx, up_rx) = mpsc::channel(self.options.queue.max(1));
        let (down_tx, down_rx) = mpsc::channel(256);
        let now = Instant::now();
        let mut interval = tokio::time::interval_at(now, FRAME);
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let feed = Feed {
            uplink: up_rx,
            started: now,
            settle: self.options.settle,
            lead: self.options.lead,
            primed: false,
            held: None,
        };
        *lock(&self.stats) = StreamStats::default();
        let (feed, thread) = if self.options.pacing == Pacing::Thread {
            let out = open_writer(&self.path).map_err(|e| AudioError::Open {
                path: self.path.clone(),
                source: tokio_serial::Error::new(
                    tokio_serial::ErrorKind::Io(e.kind()),
                    e.to_string(),
                ),
            })?;
            let stop = Arc::new(AtomicBool::new(false));
            let (flag, stats) = (stop.clone(), self.stats.clone());
            let spawned = std::thread::Builder::new()
                .name("gsmgate-pcm".into())
                .spawn(move || pacer_thread(feed, out, flag, stats));
            if let Err(e) = spawned {
                return Err(AudioError::Open {
                    path: self.path.clone(),
                    source: tokio_serial::Error::new(
                        tokio_serial::ErrorKind::Io(e.kind()),
                        e.to_string(),
                    ),
                });
            }
            (None, Some(ThreadStop(stop)))
        } else {
            (Some(feed), None)
        };
        let active = Active {
            downlink: down_tx,
            feed,
            interval,
            next: now,
            _thread: thread,
        };
        Ok((
            active,
            Stream {
                uplink: up_tx,
                downlink: down_rx,
            },
        ))
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
                    match (active.as_mut().filter(|a| a.feed.is_some()), pacing) {
                        (Some(a), Pacing::Interval | Pacing::Thread) => a.interval.tick().await,
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
                    active = None;
                    let res = self.start_stream().map(|(a, stream)| {
                        active = Some(a);
                        stream
                    });
                    let _ = reply.send(res);
                }
                Wake::Cmd(Some(Cmd::Stop)) => active = None,
                Wake::Read(Ok(n)) if n > 0 => {
                    if let Some(a) = &active {
                        let mut st = lock(&self.stats);
                        st.downlink_bytes += n as u64;
                        if a.downlink
                            .try_send(buf.get(..n).unwrap_or_default().to_vec())
                            .is_err()
                        {
                            st.downlink_dropped += 1;
                        }
                    }
                }
                Wake::Read(r) => {
                    // 0 bytes is end-of-file (`std::io::Read`): on a tty, the device is gone.
                    warn!(path = %self.path.display(), result = ?r.map_err(|e| e.to_string()), "audio tty gone");
                    self.port = None;
                    active = None;
                }
                Wake::Tick(due) => {
                    let Some(a) = active.as_mut() else { continue };
                    let Some(feed) = a.feed.as_mut() else {
                        continue;
                    };
                    a.next = due + FRAME;
                    let late = Instant::now().saturating_duration_since(due);
                    let (bytes, frames, silence) = feed.take(due);
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
                    lock(&self.stats).wrote(frames, silence, late);
                    feed.after_write();
                }
            }
        }
    }
}
