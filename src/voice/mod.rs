//! The voice layer: what happens when someone calls one of the gateway's numbers — ring, caller
//! id, answer or reject, the greeting, an optional voicemail, hang-up, the call log — on top of the
//! modem actors and below the daemon's wiring.
//!
//! It owns one task per voice modem (the call driver), the per-modem audio tty task ([`audio`]),
//! the greeting and the voicemail files under `state_dir/voicemail/`. It must not own the AT port
//! (every command goes through the modem's high-priority call queue, so a call is served before
//! queued SMS sends and between the parts of a multipart send), nor decide anything about members:
//! the reply text after a call leaves as a [`CallbackText`] that the daemon turns into an outbox
//! entry.
//!
//! This file is the facade: the public types, [`VoiceHandle`] and [`spawn`]; the state every task
//! shares (`Shared`) lives here so that each part reads it without a back-and-forth of imports.
//! The rest, by responsibility: `driver` (the per-modem task: URCs → call-machine input, the call
//! row, the text back), `session` (one answered call: answer, greeting, beep, recording, hang-up),
//! `uploader` (when to put the greeting on a file-playback modem's flash, and whether it is
//! current), [`detect`](mod@detect) (URC → call signal per family), [`call`] (the pure per-call
//! state machine and the decision table), [`playback`] (audio path and routing commands per
//! family), [`audio`] (PCM over the audio tty), [`files`] (the greeting on the modem's flash:
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
pub mod builtin;
pub mod call;
pub mod detect;
pub mod files;
pub mod greeting;
pub mod playback;
pub mod recorder;

mod driver;
mod session;
mod uploader;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use audio::{AudioLink, AudioOptions, Pacing, StreamStats};
pub use call::{Decision, Policy, Timing};
pub use detect::{Caller, Signal, detect, is_call_urc};
pub use greeting::{Greeting, GreetingError, SourceFormat};
pub use playback::{AudioMode, AudioPath, FileFamily};
pub use session::beep;

use crate::at::Urc;
use crate::modem::{ModemHandle, Profile};
use crate::store::{CallOutcome, Store};

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

/// The voice layer's settings: the `[voice]` table of the configuration file (docs/voice.md,
/// config/gsmgate.toml), which `config` validates and fills in, plus tuning the file does not
/// expose.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceSettings {
    pub enabled: bool,
    pub answer_after_rings: u32,
    /// Greeting file from the config; a greeting set through the admin socket
    /// (`state_dir/voice/greeting.wav`) takes precedence.
    pub greeting: Option<PathBuf>,
    /// Play the greeting that ships with gsmgate ([`builtin`]) when neither of those is there.
    pub builtin_greeting: bool,
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

impl Default for VoiceSettings {
    fn default() -> Self {
        VoiceSettings {
            enabled: false,
            answer_after_rings: 2,
            greeting: None,
            builtin_greeting: false,
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

    /// The greeting in use as a WAV file (8 kHz mono 16-bit) with its length in ms.
    pub fn greeting_wav(&self) -> Option<(u64, Vec<u8>)> {
        self.shared
            .greeting()
            .map(|g| (g.duration_ms(), g.to_wav()))
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

/// Runs a store operation off the async threads (the store API is synchronous).
async fn with_store<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> crate::store::Result<T> + Send + 'static,
) -> Option<T> {
    match store.call(f).await {
        Ok(v) => Some(v),
        Err(e) => {
            warn!(error = %e, "store operation failed");
            None
        }
    }
}

/// Starts the voice layer: one driver per modem, plus the URC router. Loads the greeting
/// (`state_dir/voice/greeting.wav` if a previous `set_greeting` left one, else the configured
/// file, else the built-in one when `builtin_greeting` is set); a configured greeting that cannot
/// be loaded is an error. Tasks run on `tracker` until `shutdown`; calls in progress are hung up
/// first.
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
    } else if settings.builtin_greeting {
        Some(builtin::builtin_greeting()?)
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
        let profile = m.profile;
        let tx = driver::spawn(m, &shared, tracker, &shutdown);
        routes.insert(name, (profile, tx));
    }
    tracker.spawn(driver::route(urcs, routes, shutdown));
    Ok(VoiceHandle { shared })
}
