//! The voice layer (DESIGN.md layer 5): what happens when someone calls one of the gateway's
//! numbers — ring, caller id, answer or reject, the greeting, an optional voicemail, hang-up, the
//! call log — on top of the modem actors.
//!
//! It owns one task per voice modem (the call driver below), the per-modem audio tty task
//! ([`audio`]), the greeting and the voicemail files under `state_dir/voicemail/`. It must not own
//! the AT port (every command goes through the modem's high-priority call queue, so a call is
//! served before queued SMS sends and between the parts of a multipart send), nor decide anything
//! about members: the reply text after a call leaves as a [`CallbackText`] that the daemon turns
//! into an outbox entry.
//!
//! Files: [`detect`] (URC → call signal per family), [`call`] (the pure per-call state machine and
//! the decision table), [`playback`] (audio path and routing commands per family), [`audio`] (PCM
//! over the audio tty), [`files`] (the greeting on the modem's flash for the file-playback path:
//! check, upload, record), [`greeting`] (WAV loading and conversion), [`recorder`] (voicemail and
//! silence detection).
//!
//! Two audio paths (`[[modem]] voice_audio`): PCM streamed over the audio tty, or a file on the
//! modem played by the modem. On the file path one uploader task per modem keeps the greeting file
//! current (at start-up, whenever the modem is Ready again, after `set_greeting`; never during a
//! call), and a call is only answered while the modem holds the current greeting — a half-written
//! file is never played. Voicemail is PCM-only (docs/voice.md).
//!
//! Wiring (the daemon): forward every call URC (`ModemEvent::Urc` where [`is_call_urc`]) as a
//! [`ModemUrc`] into the receiver given to [`spawn`]; subscribe to [`VoiceHandle::subscribe`] for
//! `watch`; send each [`CallbackText`] to its outbox; `greeting set` calls
//! [`VoiceHandle::set_greeting`]; `voicemail list|export|delete` use the store (`voicemails`,
//! `voicemail`, `delete_voicemail`) and [`VoiceHandle::voicemail_path`].
//!
//! Why a task per call session: the driver must keep reading call signals (a hang-up by the caller)
//! while the session waits on ATA, audio routing and the greeting; the session is stopped through a
//! token and always reports an outcome, so no call state can be left behind.

pub mod audio;
pub mod call;
pub mod detect;
pub mod files;
pub mod greeting;
pub mod playback;
pub mod recorder;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

pub use audio::{AudioLink, AudioOptions, Pacing, StreamStats};
pub use call::{Decision, Policy, Timing};
pub use detect::{Caller, Signal, detect, is_call_urc};
pub use greeting::{Greeting, GreetingError, SourceFormat};
pub use playback::{AudioMode, AudioPath, FileFamily};

use crate::at::Urc;
use crate::modem::{CommandError, ModemHandle, ModemState, Profile};
use crate::store::{CallOutcome, Store};
use audio::Uplink;
use call::{Action, CallMachine};
use greeting::{FRAME_BYTES, samples_to_frames};
use recorder::{RecordState, Recorder};

/// Errors of the voice layer.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error(transparent)]
    Greeting(#[from] GreetingError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("voice modem {0:?} configured twice")]
    DuplicateModem(String),
    #[error("voicemail path {0:?} is not inside the voicemail folder")]
    BadVoicemailPath(String),
    #[error(transparent)]
    Files(#[from] files::FileError),
}

/// The `[voice]` settings the layer works with (see `config::VoiceConfig` for their meaning), plus
/// tuning the config file does not expose.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceSettings {
    pub enabled: bool,
    pub answer_after_rings: u32,
    /// Greeting file from the config; a greeting set through the admin socket
    /// (`state_dir/voice/greeting.wav`) takes precedence.
    pub greeting: Option<PathBuf>,
    pub voicemail: bool,
    pub max_seconds: u32,
    pub silence_seconds: u32,
    pub reply_text: Option<String>,
    pub allow: Vec<String>,
    pub block: Vec<String>,
    pub timing: Timing,
    pub audio: AudioOptions,
    /// How long to wait for the "connected" URC after `ATA` before routing audio anyway.
    pub connect_timeout: Duration,
}

impl From<&crate::config::VoiceConfig> for VoiceSettings {
    fn from(c: &crate::config::VoiceConfig) -> Self {
        VoiceSettings {
            enabled: c.enabled,
            answer_after_rings: c.answer_after_rings,
            greeting: c.greeting.clone(),
            voicemail: c.voicemail,
            max_seconds: c.max_seconds,
            silence_seconds: c.silence_seconds,
            reply_text: c.reply_text.clone(),
            allow: c.allow.clone(),
            block: c.block.clone(),
            ..VoiceSettings::default()
        }
    }
}

impl Default for VoiceSettings {
    fn default() -> Self {
        VoiceSettings {
            enabled: false,
            answer_after_rings: 2,
            greeting: None,
            voicemail: false,
            max_seconds: 120,
            silence_seconds: 5,
            reply_text: None,
            allow: vec![],
            block: vec![],
            timing: Timing::default(),
            audio: AudioOptions::default(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// One modem the voice layer serves.
#[derive(Debug, Clone)]
pub struct VoiceModem {
    pub handle: ModemHandle,
    pub profile: Profile,
    /// The PCM tty (`[[modem]] audio_port`).
    pub audio_port: Option<PathBuf>,
    /// `[[modem]] voice_audio`; `None` = the family's default ([`AudioMode::default_for`]).
    pub audio_mode: Option<AudioMode>,
}

/// A URC of a named modem, forwarded by the daemon.
#[derive(Debug, Clone)]
pub struct ModemUrc {
    pub modem: String,
    pub urc: Urc,
}

/// What happened to a call (for `watch`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEventKind {
    Ringing {
        from: Caller,
    },
    Answered,
    Voicemail {
        path: PathBuf,
        duration_ms: i64,
    },
    Ended {
        outcome: CallOutcome,
        duration_ms: i64,
    },
}

/// A call event of one modem. `call_id` is the store's row id (`None` if the store failed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEvent {
    pub modem: String,
    pub call_id: Option<i64>,
    #[serde(flatten)]
    pub kind: CallEventKind,
}

/// A text the daemon should send to a caller after their call (`[voice] reply_text`), from the
/// modem that took the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackText {
    pub modem: String,
    pub to: String,
    pub text: String,
    pub call_id: Option<i64>,
}

/// A call going on now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveCall {
    pub modem: String,
    pub call_id: Option<i64>,
    pub caller: Caller,
    pub started_at_ms: i64,
}

/// Facts about the loaded greeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GreetingInfo {
    pub duration_ms: u64,
    pub source: SourceFormat,
    /// Whether the file was converted (not already 8 kHz mono 16-bit).
    pub converted: bool,
    pub path: PathBuf,
}

struct Shared {
    settings: VoiceSettings,
    greeting: RwLock<Option<Arc<Greeting>>>,
    greeting_path: PathBuf,
    voicemail_dir: PathBuf,
    store: Store,
    events: broadcast::Sender<CallEvent>,
    callbacks: mpsc::Sender<CallbackText>,
    active: Mutex<HashMap<String, ActiveCall>>,
    /// Bumped by every `set_greeting`: file-playback modems upload again.
    greeting_gen: watch::Sender<u64>,
    /// What was uploaded to which modem (`state_dir/voice/uploads.json`).
    records: Mutex<files::Records>,
    records_path: PathBuf,
}

impl Shared {
    fn greeting(&self) -> Option<Arc<Greeting>> {
        self.greeting
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn emit(&self, modem: &str, call_id: Option<i64>, kind: CallEventKind) {
        // No subscriber is fine.
        let _ = self.events.send(CallEvent {
            modem: modem.to_owned(),
            call_id,
            kind,
        });
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, ActiveCall>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The handle of the voice layer.
#[derive(Clone)]
pub struct VoiceHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for VoiceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceHandle").finish_non_exhaustive()
    }
}

impl VoiceHandle {
    /// Replaces the greeting: validates and converts the WAV (greeting module rule), stores the
    /// converted file as `state_dir/voice/greeting.wav` (kept across restarts, ahead of the config
    /// file) and uses it from the next call on.
    pub fn set_greeting(&self, wav: &[u8]) -> Result<GreetingInfo, VoiceError> {
        let g = Greeting::from_wav(wav)?;
        let path = &self.shared.greeting_path;
        let tmp = path.with_extension("wav.part");
        let io = |what, source| VoiceError::Io {
            what,
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, g.to_wav()).map_err(|e| io("writing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("replacing", e))?;
        let info = greeting_info(&g, path);
        *self
            .shared
            .greeting
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(g));
        self.shared.greeting_gen.send_modify(|n| *n += 1);
        info!(
            duration_ms = info.duration_ms,
            converted = info.converted,
            "greeting replaced"
        );
        Ok(info)
    }

    /// The greeting in use, if any.
    pub fn greeting(&self) -> Option<GreetingInfo> {
        self.shared
            .greeting()
            .map(|g| greeting_info(&g, &self.shared.greeting_path))
    }

    /// Call events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.shared.events.subscribe()
    }

    /// Calls going on now.
    pub fn active_calls(&self) -> Vec<ActiveCall> {
        let mut v: Vec<ActiveCall> = self.shared.active().values().cloned().collect();
        v.sort_by(|a, b| a.modem.cmp(&b.modem));
        v
    }

    /// The absolute path of a voicemail file from its store path (relative to `state_dir`);
    /// refuses anything outside the voicemail folder.
    pub fn voicemail_path(&self, stored: &str) -> Result<PathBuf, VoiceError> {
        let name = stored
            .strip_prefix("voicemail/")
            .filter(|n| {
                !n.is_empty() && !n.contains('/') && !n.contains('\\') && *n != ".." && *n != "."
            })
            .ok_or_else(|| VoiceError::BadVoicemailPath(stored.to_owned()))?;
        Ok(self.shared.voicemail_dir.join(name))
    }
}

fn greeting_info(g: &Greeting, path: &Path) -> GreetingInfo {
    GreetingInfo {
        duration_ms: g.duration_ms(),
        source: g.source(),
        converted: !g.source().is_native(),
        path: path.to_path_buf(),
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix ms of a past monotonic instant.
fn unix_ms_at(at: Instant) -> i64 {
    unix_ms() - Instant::now().saturating_duration_since(at).as_millis() as i64
}

/// Runs a store operation off the async threads (the store API is synchronous).
async fn with_store<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> crate::store::Result<T> + Send + 'static,
) -> Option<T> {
    let s = store.clone();
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            warn!(error = %e, "store operation failed");
            None
        }
        Err(e) => {
            warn!(error = %e, "store task failed");
            None
        }
    }
}

/// Starts the voice layer: one driver per modem, plus the URC router. Loads the greeting
/// (`state_dir/voice/greeting.wav` if a previous `set_greeting` left one, else the configured
/// file); a configured greeting that cannot be loaded is an error. Tasks run on `tracker` until
/// `shutdown`; calls in progress are hung up first.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    modems: Vec<VoiceModem>,
    urcs: mpsc::Receiver<ModemUrc>,
    settings: VoiceSettings,
    store: Store,
    state_dir: &Path,
    callbacks: mpsc::Sender<CallbackText>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<VoiceHandle, VoiceError> {
    let voice_dir = state_dir.join("voice");
    let voicemail_dir = state_dir.join("voicemail");
    for d in [&voice_dir, &voicemail_dir] {
        std::fs::create_dir_all(d).map_err(|source| VoiceError::Io {
            what: "creating",
            path: d.clone(),
            source,
        })?;
    }
    let greeting_path = voice_dir.join("greeting.wav");
    let greeting = if greeting_path.exists() {
        Some(Greeting::load_file(&greeting_path)?)
    } else if let Some(p) = &settings.greeting {
        let p = if p.is_relative() {
            state_dir.join(p)
        } else {
            p.clone()
        };
        Some(Greeting::load_file(&p)?)
    } else {
        None
    };
    let (events, _) = broadcast::channel(256);
    let records_path = voice_dir.join("uploads.json");
    let records = files::Records::load(&records_path)?;
    let (greeting_gen, _) = watch::channel(0);
    let shared = Arc::new(Shared {
        greeting_gen,
        records: Mutex::new(records),
        records_path,
        settings,
        greeting: RwLock::new(greeting.map(Arc::new)),
        greeting_path,
        voicemail_dir,
        store,
        events,
        callbacks,
        active: Mutex::new(HashMap::new()),
    });
    let mut routes: HashMap<String, (Profile, mpsc::Sender<Signal>)> = HashMap::new();
    for m in modems {
        let name = m.handle.name().to_owned();
        if routes.contains_key(&name) {
            return Err(VoiceError::DuplicateModem(name));
        }
        let path = playback::audio_path(m.profile, m.audio_port.as_deref(), m.audio_mode);
        let audio = match &path {
            AudioPath::Pcm(p) => Some(Media::Pcm(AudioLink::spawn(
                p,
                shared.settings.audio,
                tracker,
                shutdown.clone(),
            ))),
            AudioPath::File(family) => {
                let slot = Arc::new(FileSlot::default());
                let up = Uploader {
                    name: name.clone(),
                    modem: m.handle.clone(),
                    family: *family,
                    slot: slot.clone(),
                    shared: shared.clone(),
                };
                tracker.spawn(
                    up.run(shutdown.clone())
                        .instrument(info_span!("greeting_upload", modem = %name)),
                );
                Some(Media::File(*family, slot))
            }
            AudioPath::None(why) => {
                info!(modem = %name, reason = why, "no audio path: calls are let ring and texted back");
                None
            }
        };
        let (tx, rx) = mpsc::channel(64);
        routes.insert(name.clone(), (m.profile, tx));
        let driver = Driver {
            name: name.clone(),
            modem: m.handle,
            profile: m.profile,
            audio,
            shared: shared.clone(),
            machine: CallMachine::new(policy(&shared), shared.settings.timing),
            current: None,
            tracker: tracker.clone(),
            shutdown: shutdown.clone(),
        };
        tracker.spawn(
            driver
                .run(rx)
                .instrument(info_span!("voice", modem = %name)),
        );
    }
    tracker.spawn(route(urcs, routes, shutdown));
    Ok(VoiceHandle { shared })
}

fn policy_for(shared: &Shared, has_audio: bool) -> Policy {
    let s = &shared.settings;
    Policy {
        enabled: s.enabled,
        answer_after_rings: s.answer_after_rings.max(1),
        can_answer: has_audio && shared.greeting().is_some(),
        reply_text: s.reply_text.as_deref().is_some_and(|t| !t.is_empty()),
        allow: s.allow.clone(),
        block: s.block.clone(),
    }
}

fn policy(shared: &Shared) -> Policy {
    policy_for(shared, false)
}

/// Routes each forwarded URC to its modem's driver as a call signal.
async fn route(
    mut urcs: mpsc::Receiver<ModemUrc>,
    routes: HashMap<String, (Profile, mpsc::Sender<Signal>)>,
    shutdown: CancellationToken,
) {
    loop {
        let u = tokio::select! {
            _ = shutdown.cancelled() => return,
            u = urcs.recv() => match u { Some(u) => u, None => return },
        };
        let Some((profile, tx)) = routes.get(&u.modem) else {
            continue;
        };
        if let Some(sig) = detect(*profile, &u.urc) {
            debug!(modem = %u.modem, ?sig, "call signal");
            // A driver that stopped (shutdown) has nothing left to learn.
            let _ = tx.send(sig).await;
        }
    }
}

/// The call now handled by a driver.
struct Current {
    call_id: Option<i64>,
    started_ms: i64,
    answered_ms: Option<i64>,
    session: Option<JoinHandle<SessionReport>>,
    /// Fired when the caller hung up during the session.
    remote_gone: CancellationToken,
    connected: watch::Sender<bool>,
    /// Playback-ended URCs seen during the call (file path).
    played: watch::Sender<u64>,
}

/// What a session reports.
#[derive(Debug)]
struct SessionReport {
    outcome: CallOutcome,
    answered_ms: Option<i64>,
}

struct Driver {
    name: String,
    modem: ModemHandle,
    profile: Profile,
    audio: Option<Media>,
    shared: Arc<Shared>,
    machine: CallMachine,
    current: Option<Current>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Driver {
    async fn run(mut self, mut signals: mpsc::Receiver<Signal>) {
        let mut status = self.modem.watch_status();
        loop {
            let deadline = self.machine.next_deadline();
            let in_session = self.current.as_ref().is_some_and(|c| c.session.is_some());
            let session = async {
                match self.current.as_mut().and_then(|c| c.session.as_mut()) {
                    Some(h) => Some(h.await),
                    None => std::future::pending().await,
                }
            };
            enum Wake {
                Shutdown,
                Signal(Option<Signal>),
                Tick,
                Session(Option<Result<SessionReport, tokio::task::JoinError>>),
                Status,
            }
            let wake = tokio::select! {
                // A running session sees the shutdown itself, hangs up and reports first.
                _ = self.shutdown.cancelled(), if !in_session => Wake::Shutdown,
                s = signals.recv() => Wake::Signal(s),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if deadline.is_some() => Wake::Tick,
                r = session => Wake::Session(r),
                r = status.changed() => { if r.is_err() { Wake::Shutdown } else { Wake::Status } }
            };
            let actions = match wake {
                Wake::Shutdown => {
                    if self.machine.busy() {
                        let acts = self.machine.closed(CallOutcome::Failed);
                        self.perform(acts).await;
                    }
                    return;
                }
                Wake::Signal(None) => {
                    // The router stopped: only shutdown follows.
                    self.shutdown.cancelled().await;
                    continue;
                }
                Wake::Signal(Some(Signal::PlaybackEnded)) => {
                    if let Some(c) = &self.current {
                        c.played.send_modify(|n| *n += 1);
                    }
                    continue;
                }
                Wake::Signal(Some(sig)) => {
                    if !self.machine.busy() {
                        let ready = self.audio.as_ref().is_some_and(|m| m.ready(&self.shared));
                        self.machine.set_policy(policy_for(&self.shared, ready));
                    }
                    self.machine.on_signal(sig, Instant::now())
                }
                Wake::Tick => self.machine.on_tick(Instant::now()),
                Wake::Session(r) => {
                    let report = match r {
                        Some(Ok(rep)) => rep,
                        Some(Err(e)) => {
                            warn!(error = %e, "call session task failed");
                            SessionReport {
                                outcome: CallOutcome::Failed,
                                answered_ms: None,
                            }
                        }
                        None => continue,
                    };
                    if let Some(c) = &mut self.current {
                        c.session = None;
                        c.answered_ms = report.answered_ms.or(c.answered_ms);
                    }
                    self.machine.closed(report.outcome)
                }
                Wake::Status => {
                    let state = status.borrow_and_update().state.clone();
                    if self.machine.busy() && state != ModemState::Ready {
                        // A modem that reboots or vanishes drops its call without a URC.
                        warn!(state = state.name(), "modem left Ready during a call");
                        self.machine
                            .on_signal(Signal::Ended(detect::EndKind::Released), Instant::now())
                    } else {
                        continue;
                    }
                }
            };
            self.perform(actions).await;
        }
    }

    async fn perform(&mut self, actions: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::Ringing { caller, at } => {
                    let started_ms = unix_ms_at(at);
                    let number = caller.number().map(str::to_owned);
                    let modem = self.name.clone();
                    let call_id = with_store(&self.shared.store, move |s| {
                        s.call_started(&modem, number.as_deref(), started_ms)
                    })
                    .await;
                    info!(from = %caller, ?call_id, "incoming call");
                    self.shared.active().insert(
                        self.name.clone(),
                        ActiveCall {
                            modem: self.name.clone(),
                            call_id,
                            caller: caller.clone(),
                            started_at_ms: started_ms,
                        },
                    );
                    self.shared
                        .emit(&self.name, call_id, CallEventKind::Ringing { from: caller });
                    let (connected, _) = watch::channel(false);
                    let (played, _) = watch::channel(0);
                    self.current = Some(Current {
                        call_id,
                        started_ms,
                        answered_ms: None,
                        session: None,
                        remote_gone: CancellationToken::new(),
                        connected,
                        played,
                    });
                }
                Action::Reject => {
                    info!("rejecting the call (AT+CHUP)");
                    if let Err(e) = self.modem.hangup().await {
                        warn!(error = %e, "AT+CHUP for a rejected call failed");
                    }
                    queue.extend(self.machine.closed(CallOutcome::Rejected));
                }
                Action::Answer => {
                    let (Some(c), Some(audio), Some(g)) = (
                        self.current.as_mut(),
                        self.audio.clone(),
                        self.shared.greeting(),
                    ) else {
                        // Policy said answer, so greeting and audio were there; a race with a
                        // greeting removal would land here.
                        queue.extend(self.machine.closed(CallOutcome::Failed));
                        continue;
                    };
                    let s = Session {
                        modem: self.modem.clone(),
                        name: self.name.clone(),
                        profile: self.profile,
                        audio,
                        greeting: g,
                        shared: self.shared.clone(),
                        call_id: c.call_id,
                        remote_gone: c.remote_gone.clone(),
                        shutdown: self.shutdown.clone(),
                        connected: c.connected.subscribe(),
                        played: c.played.subscribe(),
                    };
                    let span = info_span!("call", modem = %self.name, call_id = ?c.call_id);
                    c.session = Some(self.tracker.spawn(s.run().instrument(span)));
                }
                Action::Connected => {
                    if let Some(c) = &self.current {
                        c.connected.send_replace(true);
                    }
                }
                Action::StopSession => {
                    if let Some(c) = &self.current {
                        info!("caller hung up");
                        c.remote_gone.cancel();
                    }
                }
                Action::Finished(f) => {
                    let c = self.current.take();
                    self.shared.active().remove(&self.name);
                    let ended_ms = unix_ms();
                    let call_id = c.as_ref().and_then(|c| c.call_id);
                    let from_ms = c
                        .as_ref()
                        .map(|c| c.answered_ms.unwrap_or(c.started_ms))
                        .unwrap_or(ended_ms);
                    let mut duration_ms = (ended_ms - from_ms).max(0);
                    if let Some(id) = call_id {
                        let outcome = f.outcome;
                        if let Some(row) = with_store(&self.shared.store, move |s| {
                            s.call_ended(id, outcome, ended_ms)
                        })
                        .await
                        {
                            duration_ms = row.duration_ms.unwrap_or(duration_ms);
                        }
                    }
                    info!(outcome = f.outcome.as_str(), duration_ms, "call ended");
                    self.shared.emit(
                        &self.name,
                        call_id,
                        CallEventKind::Ended {
                            outcome: f.outcome,
                            duration_ms,
                        },
                    );
                    let text = self.shared.settings.reply_text.clone();
                    if let (true, Some(to), Some(text)) = (
                        f.text_back,
                        f.caller.number(),
                        text.filter(|t| !t.is_empty()),
                    ) {
                        let cb = CallbackText {
                            modem: self.name.clone(),
                            to: to.to_owned(),
                            text,
                            call_id,
                        };
                        if self.shared.callbacks.try_send(cb).is_err() {
                            warn!("callback text channel full or closed; reply text not sent");
                        }
                    }
                }
            }
        }
    }
}

/// How a wait inside a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Done,
    /// The caller hung up.
    Gone,
    /// `max_seconds` reached.
    Deadline,
    /// The daemon is stopping.
    Shutdown,
}

/// One answered call: answer, route audio, greeting, beep, voicemail, hang up.
struct Session {
    modem: ModemHandle,
    name: String,
    profile: Profile,
    audio: Media,
    greeting: Arc<Greeting>,
    shared: Arc<Shared>,
    call_id: Option<i64>,
    remote_gone: CancellationToken,
    shutdown: CancellationToken,
    connected: watch::Receiver<bool>,
    played: watch::Receiver<u64>,
}

/// The beep before a voicemail: 1 kHz for 300 ms at about −12 dBFS, computed (deterministic).
pub fn beep() -> Vec<i16> {
    (0..2400)
        .map(|n| {
            let v = 8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / 8000.0).sin();
            v.round() as i16
        })
        .collect()
}

impl Session {
    /// The call is connected: stamps the report and the store's call row and emits `Answered`.
    /// Returns the instant the call-length limit counts from.
    async fn mark_answered(&mut self, report: &mut SessionReport) -> Instant {
        let answered = Instant::now();
        let answered_ms = unix_ms();
        report.answered_ms = Some(answered_ms);
        if let Some(id) = self.call_id {
            with_store(&self.shared.store, move |s| {
                s.call_answered(id, answered_ms)
            })
            .await;
        }
        self.shared
            .emit(&self.name, self.call_id, CallEventKind::Answered);
        answered
    }

    async fn run(mut self) -> SessionReport {
        let audio = match &self.audio {
            Media::Pcm(a) => a.clone(),
            Media::File(family, _) => {
                let family = *family;
                return self.run_file(family).await;
            }
        };
        let routing = playback::routing(self.profile);
        let settings = self.shared.settings.clone();
        let mut report = SessionReport {
            outcome: CallOutcome::Failed,
            answered_ms: None,
        };
        if let Some(op) = routing.and_then(|r| r.before_answer)
            && let Err(e) = self.modem.call_control(op).await
        {
            warn!(error = %e, "audio routing before answer failed");
        }
        match self.modem.answer().await {
            Ok(_) => {}
            Err(e) => {
                // NO CARRIER as ATA's final: the caller left just before.
                let gone = matches!(&e, CommandError::Failed { failure, .. } if failure.to_string().contains("NoCarrier") || failure.to_string().contains("NO CARRIER"));
                warn!(error = %e, "ATA failed");
                report.outcome = if gone || self.remote_gone.is_cancelled() {
                    CallOutcome::Missed
                } else {
                    CallOutcome::Failed
                };
                self.after_end(routing, false).await;
                return report;
            }
        }
        let answered = self.mark_answered(&mut report).await;
        let deadline = answered + Duration::from_secs(u64::from(settings.max_seconds.max(1)));

        let flow = self.prepare_audio(routing, deadline).await;
        if flow != Flow::Done {
            report.outcome = if flow == Flow::Gone {
                CallOutcome::Greeted
            } else {
                CallOutcome::Failed
            };
            self.after_end(routing, flow != Flow::Gone).await;
            return report;
        }
        let mut stream = match audio.start().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "audio stream could not start");
                self.after_end(routing, true).await;
                return report;
            }
        };
        debug!("audio stream started; playing the greeting");
        report.outcome = CallOutcome::Greeted;
        let mut flow = self
            .play(
                &mut stream,
                samples_to_frames(self.greeting.samples()),
                deadline,
            )
            .await;
        let mut saved = None;
        if flow == Flow::Done && settings.voicemail {
            flow = self
                .play(&mut stream, samples_to_frames(&beep()), deadline)
                .await;
            if flow == Flow::Done {
                debug!("recording");
                let (f, samples) = self.record(&mut stream, deadline).await;
                flow = f;
                saved = samples;
            }
        }
        if flow == Flow::Done && !settings.voicemail {
            // The last greeting frames are still in the modem's buffer (the lead): let them play
            // out before hanging up.
            let lead = u32::try_from(settings.audio.lead).unwrap_or(u32::MAX);
            let drain = Instant::now() + audio::FRAME * lead.saturating_add(2);
            match self.interrupted(drain.min(deadline)).await {
                Flow::Deadline => {}
                other => flow = other,
            }
        }
        debug!(?flow, "session flow ended");
        audio.stop().await;
        let hang_up = flow != Flow::Gone;
        self.after_end(routing, hang_up).await;
        if let Some(samples) = saved
            && self.save_voicemail(&samples).await
        {
            report.outcome = CallOutcome::Voicemail;
        }
        report
    }

    /// The file-playback call (MODEMS.md §4.5): answer, wait for "connected", play the greeting
    /// stored on the modem, wait for its end URC, hang up. No voicemail on this path (the module
    /// records to its own flash; fetching that back is not implemented).
    async fn run_file(mut self, family: FileFamily) -> SessionReport {
        let mut report = SessionReport {
            outcome: CallOutcome::Failed,
            answered_ms: None,
        };
        if let Err(e) = self.modem.answer().await {
            warn!(error = %e, "ATA failed");
            let gone = matches!(&e, CommandError::Failed { failure, .. } if failure.to_string().contains("NoCarrier") || failure.to_string().contains("NO CARRIER"));
            report.outcome = if gone || self.remote_gone.is_cancelled() {
                CallOutcome::Missed
            } else {
                CallOutcome::Failed
            };
            return report;
        }
        let answered = self.mark_answered(&mut report).await;
        let settings = self.shared.settings.clone();
        let deadline = answered + Duration::from_secs(u64::from(settings.max_seconds.max(1)));
        let flow = self.prepare_audio(None, deadline).await;
        if flow != Flow::Done {
            report.outcome = if flow == Flow::Gone {
                CallOutcome::Greeted
            } else {
                CallOutcome::Failed
            };
            self.after_end(None, flow != Flow::Gone).await;
            return report;
        }
        let before = *self.played.borrow_and_update();
        let play = match family.play() {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "building the play command");
                self.after_end(None, true).await;
                return report;
            }
        };
        if let Err(e) = self.modem.exec_call(play).await {
            warn!(error = %e, "playing the stored greeting failed");
            let gone = self.remote_gone.is_cancelled();
            self.after_end(None, !gone).await;
            return report;
        }
        debug!("playing the greeting stored on the modem");
        report.outcome = CallOutcome::Greeted;
        // The end URC normally ends the wait; the greeting's length plus slack bounds it in case a
        // firmware does not send one.
        let slack = Duration::from_millis(self.greeting.duration_ms()) + Duration::from_secs(5);
        let until = deadline.min(Instant::now() + slack);
        let mut played = self.played.clone();
        let ended = played.wait_for(|n| *n > before);
        let flow = tokio::select! {
            r = ended => if r.is_ok() { Flow::Done } else { Flow::Shutdown },
            f = self.interrupted(until) => f,
        };
        debug!(?flow, "file playback ended");
        if matches!(flow, Flow::Deadline | Flow::Shutdown)
            && let Err(e) = self.modem.exec_call(family.stop()).await
        {
            debug!(error = %e, "stopping the playback");
        }
        self.after_end(None, flow != Flow::Gone).await;
        report
    }

    /// Waits for "connected" (families that report it) and routes the audio to the tty.
    async fn prepare_audio(
        &mut self,
        routing: Option<playback::Routing>,
        deadline: Instant,
    ) -> Flow {
        if detect::connect_urc(self.profile) {
            let wait = Instant::now() + self.shared.settings.connect_timeout;
            let mut rx = self.connected.clone();
            let connected = rx.wait_for(|c| *c);
            let f = tokio::select! {
                r = connected => if r.is_ok() { Flow::Done } else { Flow::Shutdown },
                f = self.interrupted(deadline.min(wait)) => f,
            };
            match f {
                Flow::Done => {}
                Flow::Deadline if Instant::now() < deadline => {
                    warn!("no connected URC after ATA; routing audio anyway");
                }
                other => return other,
            }
        }
        let Some(retry) = routing.and_then(|r| r.after_connect) else {
            return Flow::Done;
        };
        let until = Instant::now() + retry.within;
        loop {
            match self.modem.call_control(retry.op).await {
                Ok(_) => return Flow::Done,
                Err(e) if Instant::now() + retry.every < until => {
                    debug!(error = %e, "audio routing refused; retrying");
                }
                Err(e) => {
                    warn!(error = %e, "audio routing failed");
                    return Flow::Deadline;
                }
            }
            let pause = Instant::now() + retry.every;
            let f = self.interrupted(pause.min(deadline)).await;
            match f {
                Flow::Deadline if Instant::now() < deadline => {}
                other => return other,
            }
        }
    }

    /// Resolves when the call is interrupted, or with [`Flow::Deadline`] at `until`.
    async fn interrupted(&self, until: Instant) -> Flow {
        tokio::select! {
            _ = self.remote_gone.cancelled() => Flow::Gone,
            _ = self.shutdown.cancelled() => Flow::Shutdown,
            _ = tokio::time::sleep_until(until) => Flow::Deadline,
        }
    }

    /// Queues frames and waits until the last one has been written, draining the downlink meanwhile.
    async fn play(
        &self,
        stream: &mut audio::Stream,
        frames: Vec<[u8; FRAME_BYTES]>,
        deadline: Instant,
    ) -> Flow {
        let (mark, heard) = oneshot::channel();
        let mut items = frames
            .into_iter()
            .map(|f| Uplink::Frame(Box::new(f)))
            .chain(std::iter::once(Uplink::Mark(mark)));
        let mut next = items.next();
        let mut heard = std::pin::pin!(heard);
        loop {
            // reserve() is cancel-safe: an item is only taken out once its slot is there.
            tokio::select! {
                permit = stream.uplink.reserve(), if next.is_some() => {
                    let Ok(permit) = permit else { return Flow::Shutdown };
                    if let Some(item) = next.take() {
                        permit.send(item);
                    }
                    next = items.next();
                }
                r = &mut heard => return if r.is_ok() { Flow::Done } else { Flow::Shutdown },
                d = stream.downlink.recv() => if d.is_none() { return Flow::Shutdown },
                f = self.interrupted(deadline) => return f,
            }
        }
    }

    /// Records the caller until silence, the length limit, the deadline or a hang-up.
    async fn record(
        &self,
        stream: &mut audio::Stream,
        deadline: Instant,
    ) -> (Flow, Option<Vec<i16>>) {
        let s = &self.shared.settings;
        let max = deadline.saturating_duration_since(Instant::now());
        let mut rec = Recorder::new(
            max,
            Duration::from_secs(u64::from(s.silence_seconds.max(1))),
        );
        // What the caller said during the greeting and the beep is not part of the message.
        while stream.downlink.try_recv().is_ok() {}
        let flow = loop {
            tokio::select! {
                d = stream.downlink.recv() => match d {
                    Some(bytes) => match rec.push(&bytes) {
                        RecordState::Recording => {}
                        RecordState::Silence | RecordState::Full => break Flow::Done,
                    },
                    None => break Flow::Shutdown,
                },
                f = self.interrupted(deadline) => break f,
            }
        };
        (flow, rec.finish())
    }

    async fn after_end(&self, routing: Option<playback::Routing>, hang_up: bool) {
        if hang_up && let Err(e) = self.modem.hangup().await {
            warn!(error = %e, "AT+CHUP failed");
        }
        if let Some(op) = routing.and_then(|r| r.after_end)
            && let Err(e) = self.modem.call_control(op).await
        {
            debug!(error = %e, "audio routing off after the call failed");
        }
    }

    async fn save_voicemail(&self, samples: &[i16]) -> bool {
        let now = unix_ms();
        let file = format!(
            "{}-{}-{now}.wav",
            sanitize(&self.name),
            self.call_id
                .map_or_else(|| "x".to_owned(), |i| i.to_string())
        );
        let path = self.shared.voicemail_dir.join(&file);
        let p = path.clone();
        let data = samples.to_vec();
        match tokio::task::spawn_blocking(move || recorder::write_wav(&p, &data)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(path = %path.display(), error = %e, "writing the voicemail failed");
                return false;
            }
            Err(e) => {
                warn!(error = %e, "voicemail writer failed");
                return false;
            }
        }
        let duration_ms = samples.len() as i64 * 1000 / i64::from(greeting::RATE);
        if let Some(id) = self.call_id {
            let stored = format!("voicemail/{file}");
            with_store(&self.shared.store, move |s| {
                s.add_voicemail(id, &stored, duration_ms, now)
            })
            .await;
        }
        info!(path = %path.display(), duration_ms, "voicemail saved");
        self.shared.emit(
            &self.name,
            self.call_id,
            CallEventKind::Voicemail { path, duration_ms },
        );
        true
    }
}

/// How a driver's modem plays the greeting.
#[derive(Clone)]
enum Media {
    /// PCM over the audio tty.
    Pcm(AudioLink),
    /// A file on the modem's flash, kept current by the modem's uploader.
    File(FileFamily, Arc<FileSlot>),
}

impl Media {
    /// Whether a call can be answered with a greeting now.
    fn ready(&self, shared: &Shared) -> bool {
        match self {
            Media::Pcm(_) => true,
            Media::File(_, slot) => slot.ready(*shared.greeting_gen.borrow()),
        }
    }
}

/// The state of the greeting file on one modem, shared by its uploader and its driver.
#[derive(Debug, Default)]
struct FileSlot {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// The greeting generation the modem holds, once checked or uploaded.
    installed: Option<u64>,
    /// An upload is running: the file may be partial.
    busy: bool,
}

impl FileSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The modem holds greeting generation `generation` and no upload runs. Otherwise calls are
    /// let ring and texted back: a half-written file must not be played.
    fn ready(&self, generation: u64) -> bool {
        let s = self.lock();
        !s.busy && s.installed == Some(generation)
    }
}

/// Keeps one file-playback modem's greeting file current: checks (and uploads if needed) when the
/// modem becomes Ready, and again after every `set_greeting`; never during a call on that modem.
struct Uploader {
    name: String,
    modem: ModemHandle,
    family: FileFamily,
    slot: Arc<FileSlot>,
    shared: Arc<Shared>,
}

/// Pause before retrying a failed upload.
const UPLOAD_RETRY: Duration = Duration::from_secs(20);

impl Uploader {
    async fn run(self, shutdown: CancellationToken) {
        let mut status = self.modem.watch_status();
        let mut greeting_gen = self.shared.greeting_gen.subscribe();
        let mut retry_at: Option<Instant> = None;
        // Checked once per Ready period and greeting generation.
        let mut checked: Option<u64> = None;
        loop {
            let ready = status.borrow_and_update().state == ModemState::Ready;
            let generation = *greeting_gen.borrow_and_update();
            if !ready {
                checked = None;
            }
            let due = ready
                && checked != Some(generation)
                && retry_at.is_none_or(|t| Instant::now() >= t)
                && !self.shared.active().contains_key(&self.name);
            if due {
                retry_at = None;
                match self.check(generation).await {
                    Ok(()) => checked = Some(generation),
                    Err(e) => {
                        warn!(error = %e, "greeting upload failed; retrying");
                        retry_at = Some(Instant::now() + UPLOAD_RETRY);
                    }
                }
                continue;
            }
            // A call in progress delays the check: look again shortly.
            let wait = if ready && checked != Some(generation) {
                retry_at.unwrap_or_else(|| Instant::now() + Duration::from_millis(500))
            } else {
                Instant::now() + Duration::from_secs(3600)
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = status.changed() => if r.is_err() { return },
                r = greeting_gen.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(wait) => {}
            }
        }
    }

    /// Makes sure the modem holds greeting generation `generation`.
    async fn check(&self, generation: u64) -> Result<(), VoiceError> {
        let Some(g) = self.shared.greeting() else {
            // Nothing to upload; calls are not answered without a greeting anyway.
            return Ok(());
        };
        let wav = g.to_wav();
        let record = lock(&self.shared.records).0.get(&self.name).cloned();
        self.slot.lock().busy = true;
        let res = files::ensure(&self.modem, self.family, &wav, record.as_ref(), unix_ms()).await;
        let mut st = self.slot.lock();
        st.busy = false;
        let ensured = match res {
            Ok(e) => e,
            Err(e) => {
                st.installed = None;
                return Err(e.into());
            }
        };
        // A newer greeting may have been set meanwhile; then this one is not "current".
        st.installed = Some(generation);
        drop(st);
        match &ensured {
            files::Ensured::Present(_) => {
                info!("greeting file on the modem is current; upload skipped")
            }
            files::Ensured::Uploaded(i) => {
                info!(size = i.size, checksum = ?i.checksum, "greeting uploaded to the modem")
            }
        }
        let mut records = lock(&self.shared.records);
        records
            .0
            .insert(self.name.clone(), ensured.installed().clone());
        records.save(&self.shared.records_path)?;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A modem name as a file-name part.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beep_is_a_clean_tone() {
        let b = beep();
        assert_eq!(b.len(), 2400);
        assert_eq!(&b[..4], &[0, 5657, 8000, 5657]);
        assert_eq!(b.iter().map(|s| s.unsigned_abs()).max(), Some(8000));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(sanitize("m0/../x y"), "m0____x_y");
    }

    #[test]
    fn settings_from_config() {
        let c = crate::config::VoiceConfig {
            enabled: true,
            answer_after_rings: 3,
            greeting: Some("g.wav".into()),
            voicemail: true,
            max_seconds: 60,
            silence_seconds: 4,
            reply_text: Some("hi".into()),
            allow: vec!["+1".into()],
            block: vec!["+2".into()],
        };
        let s = VoiceSettings::from(&c);
        assert!(s.enabled && s.voicemail);
        assert_eq!(
            (s.answer_after_rings, s.max_seconds, s.silence_seconds),
            (3, 60, 4)
        );
        assert_eq!(s.greeting.as_deref(), Some(Path::new("g.wav")));
        assert_eq!((s.allow.len(), s.block.len()), (1, 1));
    }
}
