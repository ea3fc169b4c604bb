//! The voice layer as the daemon wires it: starting it with one [`VoiceModem`] per modem, turning
//! its call events into admin `call` events, turning its callback texts into outbox replies, and
//! answering the voice admin commands (`calls`, `voicemail_*`, `greeting_set`).
//!
//! It owns no call logic (that is `voice`) and no SQL (that is `store`); it connects them to the
//! event bus, the dispatch runner and the admin socket.
//!
//! Choices, and why:
//! - The layer always runs, also with `[voice] enabled = false`: then it runs without greeting
//!   and without audio ports, so its decision table hangs every call up at once and texts the
//!   caller back — what `config/gsmgate.toml` promises for `enabled = false`. Only `greeting_set`
//!   refuses (`unavailable`) while voice is disabled; the call log and the voicemails stay
//!   readable.
//! - A simulated modem of a PCM family gets its `DIR/modemK.audio` as `audio_port` automatically
//!   when its `[[modem]] port` is the simulator's `DIR/modemK` and no `audio_port` is set, so the
//!   demo and the tests answer calls without extra configuration.
//! - A callback text becomes an outbox row of kind `reply` (so the runner counts it against the
//!   limits like any reply), preferring the modem the caller called. It is not enqueued at all
//!   for a number on the suppression list: STOP is absolute (the store would cancel the row
//!   anyway; skipping it keeps the outbox free of rows nobody asked for).
//! - `voicemail_export` returns the file's bytes (base64) instead of a path: the CLI may run as
//!   another user than the daemon and cannot be assumed to read `state_dir`.
//! - `greeting_set` takes the file whole or in chunks, because one admin request is at most
//!   64 KiB and a 10-second greeting is 160 KB; one upload at a time, and an upload left
//!   unfinished for [`UPLOAD_STALE`] is dropped by the next chunk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::events::EventBus;
use super::handler::{internal, rfc3339};
use super::inbound::sender_key;
use super::{DaemonError, Dispatch, now_ms};
use crate::admin::protocol::{
    CallItem, CallsArgs, GreetingInstalled, GreetingSetArgs, GreetingUpload, VoicemailDeleted,
    VoicemailFile, VoicemailIdArgs, VoicemailItem, VoicemailListArgs, base64,
};
use crate::admin::{ErrorBody, ErrorCode, Event, Reply};
use crate::config::{self, Config};
use crate::modem::ModemHandle;
use crate::sim::SimHandle;
use crate::store::{self, MessageKind, NewOutbox, Store, StoreError};
use crate::voice::{
    self, CallEvent, CallEventKind, CallbackText, ModemUrc, VoiceError, VoiceHandle, VoiceModem,
    VoiceSettings,
};

/// Depth of the channel call URCs are forwarded on. Calls produce a few URCs a second at most;
/// a full channel means the voice layer is stuck, and the pipeline drops (and logs) instead of
/// waiting, so SMS handling never stalls behind a call.
pub const URC_DEPTH: usize = 256;
/// Depth of the callback text channel.
const CALLBACK_DEPTH: usize = 64;
/// Page size of `calls` without a `limit`.
const DEFAULT_LIMIT: u32 = 50;
/// Largest `calls` page.
const MAX_LIMIT: u32 = 1000;
/// An unfinished greeting upload older than this is dropped.
pub const UPLOAD_STALE: Duration = Duration::from_secs(300);
/// Largest voicemail file `voicemail_export` sends (its base64 must fit the client's 64 MiB
/// response limit; `[voice] max_seconds` ≤ 600 makes files of at most 9.6 MB).
const MAX_EXPORT_BYTES: u64 = 40 * 1024 * 1024;

/// The message every voice command that needs voice answers while it is off.
pub const DISABLED: &str = "voice is disabled in [voice]; set enabled = true there and restart \
                            the daemon";

/// The audio port of each modem: the configured one, else the simulator's for a simulated modem.
fn audio_port(mc: &config::ModemConfig, sim: Option<&SimHandle>) -> Option<PathBuf> {
    if mc.audio_port.is_some() {
        return mc.audio_port.clone();
    }
    let paths = sim?.paths();
    paths
        .modems
        .into_iter()
        .find(|m| m.at == mc.port)
        .and_then(|m| m.audio)
}

/// Starts the voice layer and its two forwarding tasks. Returns the handle and the sender the
/// inbound pipeline forwards call URCs on.
#[allow(clippy::too_many_arguments)]
pub fn start(
    cfg: &Config,
    modems: &[(config::ModemConfig, ModemHandle)],
    sim: Option<&SimHandle>,
    store: &Store,
    bus: &EventBus,
    dispatch: &Dispatch,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<(VoiceHandle, mpsc::Sender<ModemUrc>), DaemonError> {
    let enabled = cfg.voice.enabled;
    let mut settings = VoiceSettings::from(&cfg.voice);
    if !enabled {
        // Reject-only mode (module doc): nothing to play, no audio tty to hold open.
        settings.greeting = None;
    }
    let vms: Vec<VoiceModem> = modems
        .iter()
        .map(|(mc, handle)| VoiceModem {
            handle: handle.clone(),
            profile: super::modem_profile(mc.profile),
            audio_port: if enabled { audio_port(mc, sim) } else { None },
            audio_mode: mc.voice_audio,
        })
        .collect();
    for vm in &vms {
        debug!(modem = %vm.handle.name(), audio = ?vm.audio_port, "voice modem");
    }
    let (urc_tx, urc_rx) = mpsc::channel(URC_DEPTH);
    let (cb_tx, cb_rx) = mpsc::channel(CALLBACK_DEPTH);
    let handle = voice::spawn(
        vms,
        urc_rx,
        settings,
        store.clone(),
        &cfg.daemon.state_dir,
        cb_tx,
        tracker,
        shutdown.clone(),
    )
    .map_err(DaemonError::Voice)?;
    tracker.spawn(forward_events(
        handle.subscribe(),
        bus.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(send_callbacks(
        cb_rx,
        store.clone(),
        dispatch.clone(),
        shutdown,
    ));
    info!(
        enabled,
        greeting = handle.greeting().is_some(),
        "voice layer started"
    );
    Ok((handle, urc_tx))
}

/// The `state` word of a call event.
fn state_word(kind: &CallEventKind) -> &'static str {
    match kind {
        CallEventKind::Ringing { .. } => "ringing",
        CallEventKind::Answered => "answered",
        CallEventKind::Voicemail { .. } => "voicemail",
        CallEventKind::Ended { .. } => "ended",
    }
}

/// Maps call events to admin events. Only `ringing` carries the caller, so the caller of each
/// call in progress is remembered until it ends.
#[derive(Default)]
pub struct CallEventMapper {
    callers: HashMap<(String, Option<i64>), Option<String>>,
}

impl CallEventMapper {
    pub fn map(&mut self, e: &CallEvent) -> Event {
        let key = (e.modem.clone(), e.call_id);
        let from = match &e.kind {
            CallEventKind::Ringing { from } => {
                let n = from.number().map(str::to_string);
                self.callers.insert(key, n.clone());
                n
            }
            CallEventKind::Ended { .. } => self.callers.remove(&key).flatten(),
            _ => self.callers.get(&key).cloned().flatten(),
        };
        Event::Call {
            modem: e.modem.clone(),
            from,
            state: state_word(&e.kind).to_string(),
        }
    }
}

async fn forward_events(
    mut rx: broadcast::Receiver<CallEvent>,
    bus: EventBus,
    shutdown: CancellationToken,
) {
    let mut mapper = CallEventMapper::default();
    loop {
        let e = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = rx.recv() => e,
        };
        match e {
            Ok(e) => bus.publish(mapper.map(&e)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "call events were dropped before reaching watch")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Enqueues the text back to a caller as a `reply` from the modem they called, unless the number
/// texted STOP. Returns the outbox id, or `None` when it was not enqueued.
pub fn enqueue_callback(store: &Store, cb: &CallbackText, now: i64) -> store::Result<Option<i64>> {
    let to = sender_key(&cb.to);
    if store.opted_out(&to)? {
        return Ok(None);
    }
    let mut row = NewOutbox::new(&to, &cb.text, MessageKind::Reply, now);
    row.modem_pref = Some(cb.modem.clone());
    store.enqueue(&row).map(Some)
}

async fn send_callbacks(
    mut rx: mpsc::Receiver<CallbackText>,
    store: Store,
    dispatch: Dispatch,
    shutdown: CancellationToken,
) {
    loop {
        let cb = tokio::select! {
            _ = shutdown.cancelled() => return,
            cb = rx.recv() => match cb {
                Some(cb) => cb,
                None => return,
            },
        };
        let s = store.clone();
        let job = cb.clone();
        match tokio::task::spawn_blocking(move || enqueue_callback(&s, &job, now_ms())).await {
            Ok(Ok(Some(id))) => {
                debug!(id, to = %cb.to, call = ?cb.call_id, "call back text queued");
                dispatch.wake();
            }
            Ok(Ok(None)) => info!(to = %cb.to, "caller texted STOP; no text back after the call"),
            Ok(Err(e)) => {
                warn!(to = %cb.to, error = %e, "could not queue the text back to a caller")
            }
            Err(e) => warn!(error = %e, "call back task failed"),
        }
    }
}

struct Upload {
    total: u64,
    data: Vec<u8>,
    touched: Instant,
}

/// The voice admin commands.
pub struct VoiceAdmin {
    handle: VoiceHandle,
    enabled: bool,
    store: Store,
    upload: Mutex<Option<Upload>>,
}

fn not_found_or_internal(e: StoreError, what: &str) -> ErrorBody {
    match e {
        StoreError::NotFound { .. } => ErrorBody::new(ErrorCode::NotFound, format!("no {what}")),
        other => internal(DaemonError::Store {
            action: "answering a voice command",
            source: Box::new(other),
        }),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ErrorBody> + Send + 'static,
) -> Result<T, ErrorBody> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(internal(DaemonError::Task(format!("voice command: {e}")))),
    }
}

fn call_item(c: store::CallRow) -> CallItem {
    CallItem {
        id: c.id,
        modem: c.modem,
        number: c.number,
        started_at: rfc3339(c.started_at),
        answered_at: c.answered_at.map(rfc3339),
        ended_at: c.ended_at.map(rfc3339),
        duration_ms: c.duration_ms,
        outcome: c.outcome.map(|o| o.as_str().to_string()),
    }
}

impl VoiceAdmin {
    pub fn new(handle: VoiceHandle, enabled: bool, store: Store) -> VoiceAdmin {
        VoiceAdmin {
            handle,
            enabled,
            store,
            upload: Mutex::new(None),
        }
    }

    pub async fn calls(&self, args: CallsArgs) -> Result<Reply, ErrorBody> {
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let store = self.store.clone();
        let rows = blocking(move || {
            store
                .calls(limit)
                .map_err(|e| not_found_or_internal(e, "calls"))
        })
        .await?;
        Ok(Reply::Calls(rows.into_iter().map(call_item).collect()))
    }

    pub async fn voicemail_list(&self, args: VoicemailListArgs) -> Result<Reply, ErrorBody> {
        let store = self.store.clone();
        let rows = blocking(move || {
            store
                .voicemails(args.unheard_only)
                .map_err(|e| not_found_or_internal(e, "voicemails"))
        })
        .await?;
        Ok(Reply::VoicemailList(
            rows.into_iter()
                .map(|v| VoicemailItem {
                    id: v.id,
                    call_id: v.call_id,
                    number: v.number,
                    created_at: rfc3339(v.created_at),
                    duration_ms: v.duration_ms,
                    heard: v.heard,
                    path: v.path,
                })
                .collect(),
        ))
    }

    pub async fn voicemail_export(&self, args: VoicemailIdArgs) -> Result<Reply, ErrorBody> {
        let (store, handle, id) = (self.store.clone(), self.handle.clone(), args.voicemail);
        blocking(move || {
            let what = format!("voicemail {id}");
            let row = store
                .voicemail(id)
                .map_err(|e| not_found_or_internal(e, &what))?;
            let path = handle.voicemail_path(&row.path).map_err(|e| {
                internal(DaemonError::Task(format!(
                    "voicemail {id} has a bad path: {e}"
                )))
            })?;
            let missing = |e: std::io::Error| {
                ErrorBody::new(
                    ErrorCode::NotFound,
                    format!("the file of voicemail {id} ({}): {e}", path.display()),
                )
            };
            let size = std::fs::metadata(&path).map_err(missing)?.len();
            if size > MAX_EXPORT_BYTES {
                return Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    format!(
                        "voicemail {id} is {size} bytes, more than {MAX_EXPORT_BYTES} fit one \
                         answer; copy {} directly",
                        path.display()
                    ),
                ));
            }
            let wav = std::fs::read(&path).map_err(missing)?;
            store
                .set_voicemail_heard(id, true)
                .map_err(|e| not_found_or_internal(e, &what))?;
            Ok(Reply::VoicemailExport(VoicemailFile {
                id,
                number: row.number,
                created_at: rfc3339(row.created_at),
                duration_ms: row.duration_ms,
                wav_base64: base64::encode(&wav),
            }))
        })
        .await
    }

    pub async fn voicemail_delete(&self, args: VoicemailIdArgs) -> Result<Reply, ErrorBody> {
        let (store, handle, id) = (self.store.clone(), self.handle.clone(), args.voicemail);
        blocking(move || {
            // Row first: a failure after it leaves a stray file (logged), never a row whose file
            // is gone.
            let stored = store
                .delete_voicemail(id)
                .map_err(|e| not_found_or_internal(e, &format!("voicemail {id}")))?;
            let file_removed = match handle.voicemail_path(&stored) {
                Ok(path) => match std::fs::remove_file(&path) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                    Err(e) => {
                        warn!(id, path = %path.display(), error = %e, "voicemail row deleted but its file could not be removed");
                        false
                    }
                },
                Err(e) => {
                    warn!(id, error = %e, "voicemail row deleted; its stored path is not in the voicemail folder");
                    false
                }
            };
            info!(id, file_removed, "voicemail deleted");
            Ok(Reply::VoicemailDelete(VoicemailDeleted { id, file_removed }))
        })
        .await
    }

    pub async fn greeting_set(&self, args: GreetingSetArgs) -> Result<Reply, ErrorBody> {
        if !self.enabled {
            return Err(ErrorBody::new(ErrorCode::Unavailable, DISABLED));
        }
        let bytes = base64::decode(&args.wav_base64).map_err(|e| {
            ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("greeting_set: field `wav_base64`: not base64: {e}"),
            )
        })?;
        let whole = match (args.offset, args.total_bytes) {
            (None, None) => Some(bytes),
            (Some(offset), Some(total)) => self.chunk(offset, total, bytes)?,
            _ => {
                return Err(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    "greeting_set: fields `offset` and `total_bytes` go together (both for a \
                     chunk, neither for a whole file)",
                ));
            }
        };
        let Some(wav) = whole else {
            let guard = self.upload.lock().unwrap_or_else(|e| e.into_inner());
            let (received, total) = guard
                .as_ref()
                .map(|u| (u.data.len() as u64, u.total))
                .unwrap_or((0, 0));
            return Ok(Reply::GreetingSet(GreetingUpload {
                received_bytes: received,
                total_bytes: total,
                greeting: None,
            }));
        };
        let total = wav.len() as u64;
        let handle = self.handle.clone();
        let info = blocking(move || {
            handle.set_greeting(&wav).map_err(|e| match e {
                VoiceError::Greeting(g) => ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!("greeting_set: the file is not a usable greeting: {g}"),
                ),
                other => internal(DaemonError::Voice(other)),
            })
        })
        .await?;
        let f = info.source;
        Ok(Reply::GreetingSet(GreetingUpload {
            received_bytes: total,
            total_bytes: total,
            greeting: Some(GreetingInstalled {
                duration_ms: info.duration_ms,
                source: format!(
                    "{} Hz, {} ch, {}-bit{}",
                    f.sample_rate,
                    f.channels,
                    f.bits,
                    if f.float { " float" } else { "" }
                ),
                converted: info.converted,
                path: info.path.display().to_string(),
            }),
        }))
    }

    /// Adds one chunk to the upload; returns the whole file once it is complete.
    fn chunk(&self, offset: u64, total: u64, bytes: Vec<u8>) -> Result<Option<Vec<u8>>, ErrorBody> {
        let bad =
            |m: String| ErrorBody::new(ErrorCode::InvalidRequest, format!("greeting_set: {m}"));
        if total > voice::greeting::MAX_BYTES as u64 {
            return Err(bad(format!(
                "field `total_bytes`: {total} bytes; a greeting file is at most {} bytes",
                voice::greeting::MAX_BYTES
            )));
        }
        let mut guard = self.upload.lock().unwrap_or_else(|e| e.into_inner());
        if guard
            .as_ref()
            .is_some_and(|u| u.touched.elapsed() > UPLOAD_STALE)
        {
            *guard = None;
        }
        if offset == 0 {
            *guard = Some(Upload {
                total,
                data: Vec::new(),
                touched: Instant::now(),
            });
        }
        let Some(up) = guard.as_mut() else {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                "greeting_set: no greeting upload in progress; start again with offset 0",
            ));
        };
        if up.total != total || up.data.len() as u64 != offset {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!(
                    "greeting_set: the upload in progress expects offset {} of {} bytes (another \
                     upload may have started); start again with offset 0",
                    up.data.len(),
                    up.total
                ),
            ));
        }
        if offset + bytes.len() as u64 > total {
            *guard = None;
            return Err(bad(format!(
                "chunk at offset {offset} runs past `total_bytes` {total}"
            )));
        }
        up.data.extend_from_slice(&bytes);
        up.touched = Instant::now();
        if up.data.len() as u64 == total {
            Ok(guard.take().map(|u| u.data))
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::Caller;

    fn ev(modem: &str, call_id: Option<i64>, kind: CallEventKind) -> CallEvent {
        CallEvent {
            modem: modem.into(),
            call_id,
            kind,
        }
    }

    #[test]
    fn call_events_carry_the_caller_from_ringing_to_ended() {
        let mut m = CallEventMapper::default();
        let ring = m.map(&ev(
            "m0",
            Some(3),
            CallEventKind::Ringing {
                from: Caller::Number("+14155550101".into()),
            },
        ));
        assert_eq!(
            ring,
            Event::Call {
                modem: "m0".into(),
                from: Some("+14155550101".into()),
                state: "ringing".into()
            }
        );
        let withheld = m.map(&ev(
            "m1",
            Some(4),
            CallEventKind::Ringing {
                from: Caller::Withheld,
            },
        ));
        assert!(matches!(withheld, Event::Call { from: None, .. }));
        let answered = m.map(&ev("m0", Some(3), CallEventKind::Answered));
        assert!(
            matches!(answered, Event::Call { ref from, ref state, .. } if from.as_deref() == Some("+14155550101") && state == "answered")
        );
        let ended = m.map(&ev(
            "m0",
            Some(3),
            CallEventKind::Ended {
                outcome: store::CallOutcome::Greeted,
                duration_ms: 10,
            },
        ));
        assert!(
            matches!(ended, Event::Call { ref from, ref state, .. } if from.is_some() && state == "ended")
        );
        assert!(!m.callers.contains_key(&("m0".to_string(), Some(3))));
    }

    #[test]
    fn callbacks_are_replies_from_the_called_modem_and_never_go_to_opted_out_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("db")).unwrap();
        let cb = CallbackText {
            modem: "sim1".into(),
            to: "+14155550101".into(),
            text: "Send me a text".into(),
            call_id: Some(1),
        };
        let id = enqueue_callback(&s, &cb, 1000).unwrap().expect("queued");
        let row = s.outbox_row(id).unwrap();
        assert_eq!(row.kind, MessageKind::Reply);
        assert_eq!(row.modem_pref.as_deref(), Some("sim1"));
        assert_eq!(row.to_number, "+14155550101");
        s.record_consent(
            "+14155550102",
            store::ConsentEvent::OptedOut,
            Some("STOP"),
            store::ConsentSource::Sms,
            1000,
        )
        .unwrap();
        let stopped = CallbackText {
            to: "+14155550102".into(),
            ..cb
        };
        assert_eq!(enqueue_callback(&s, &stopped, 2000).unwrap(), None);
    }

    fn admin(enabled: bool) -> (tempfile::TempDir, VoiceAdmin) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("db")).unwrap();
        let (_urc_tx, urc_rx) = mpsc::channel(1);
        let (cb_tx, _cb_rx) = mpsc::channel(1);
        let h = voice::spawn(
            vec![],
            urc_rx,
            VoiceSettings::default(),
            s.clone(),
            dir.path(),
            cb_tx,
            &TaskTracker::new(),
            CancellationToken::new(),
        )
        .unwrap();
        (dir, VoiceAdmin::new(h, enabled, s))
    }

    #[tokio::test]
    async fn chunks_must_follow_each_other() {
        let (_d, a) = admin(true);
        assert_eq!(a.chunk(0, 6, b"abc".to_vec()).unwrap(), None);
        let e = a.chunk(5, 6, b"x".to_vec()).unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        assert!(e.message.contains("expects offset 3"), "{}", e.message);
        assert_eq!(
            a.chunk(3, 6, b"def".to_vec()).unwrap(),
            Some(b"abcdef".to_vec())
        );
        // Finished: the next chunk needs a new start.
        let e = a.chunk(6, 6, vec![]).unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        let e = a.chunk(0, 2, b"abc".to_vec()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = a.chunk(0, u64::MAX, vec![]).unwrap_err();
        assert!(e.message.contains("total_bytes"), "{}", e.message);
    }

    #[tokio::test]
    async fn greeting_set_refuses_when_disabled_and_bad_files_name_the_problem() {
        let (_d, off) = admin(false);
        let e = off
            .greeting_set(GreetingSetArgs {
                wav_base64: base64::encode(b"RIFF"),
                offset: None,
                total_bytes: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert!(e.message.contains("voice is disabled in [voice]"));
        let (_d, on) = admin(true);
        let e = on
            .greeting_set(GreetingSetArgs {
                wav_base64: "not base64!".into(),
                offset: None,
                total_bytes: None,
            })
            .await
            .unwrap_err();
        assert!(e.message.contains("wav_base64"), "{}", e.message);
        let e = on
            .greeting_set(GreetingSetArgs {
                wav_base64: base64::encode(b"this is no wav file at all"),
                offset: None,
                total_bytes: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.message.contains("not a usable greeting"), "{}", e.message);
    }
}
