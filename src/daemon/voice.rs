//! The voice layer as the daemon wires it: starting it with one [`VoiceModem`] per modem, turning
//! its call events into admin `call` events, and turning its callback texts into outbox replies.
//!
//! It owns no call logic (that is `voice`), no SQL (that is `store`) and no admin command (the
//! voice commands are `commands::voice`); it connects the voice layer to the event bus and the
//! dispatch runner.
//!
//! Choices, and why:
//! - The layer always runs, also with `[voice] enabled = false`: then it runs without greeting
//!   and without audio ports, so its decision table hangs every call up at once and texts the
//!   caller back — what `config/gsmgate.toml` promises for `enabled = false`.
//! - A simulated modem of a PCM family gets its `DIR/modemK.audio` as `audio_port` automatically
//!   when its `[[modem]] port` is the simulator's `DIR/modemK` and no `audio_port` is set, so the
//!   demo and the tests answer calls without extra configuration.
//! - A callback text becomes an outbox row of kind `reply` (so the runner counts it against the
//!   limits like any reply), preferring the modem the caller called. It is not enqueued at all
//!   for a number on the suppression list: STOP is absolute (the store would cancel the row
//!   anyway; skipping it keeps the outbox free of rows nobody asked for).

use std::collections::HashMap;
use std::path::PathBuf;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::events::EventBus;
use super::inbound::sender_key;
use super::{DaemonError, with_store};
use crate::config::{self, Config};
use crate::dispatch::DispatchHandle;
use crate::modem::ModemHandle;
use crate::protocol::Event;
use crate::sim::SimHandle;
use crate::store::{self, MessageKind, NewOutbox, Store};
use crate::time::now_ms;
use crate::voice::{
    self, CallEvent, CallEventKind, CallbackText, ModemUrc, VoiceHandle, VoiceModem,
};

/// Depth of the channel call URCs are forwarded on. Calls produce a few URCs a second at most;
/// a full channel means the voice layer is stuck, and the pipeline drops (and logs) instead of
/// waiting, so SMS handling never stalls behind a call.
pub const URC_DEPTH: usize = 256;
/// Depth of the callback text channel.
const CALLBACK_DEPTH: usize = 64;

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
    dispatch: &DispatchHandle,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<(VoiceHandle, mpsc::Sender<ModemUrc>), DaemonError> {
    let enabled = cfg.voice.enabled;
    let mut settings = cfg.voice.clone();
    if !enabled {
        // Reject-only mode (module doc): nothing to play, no audio tty to hold open.
        settings.greeting = None;
    }
    let vms: Vec<VoiceModem> = modems
        .iter()
        .map(|(mc, handle)| VoiceModem {
            handle: handle.clone(),
            profile: mc.profile,
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
    dispatch: DispatchHandle,
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
        let job = cb.clone();
        match with_store(&store, "queueing a call back text", move |s| {
            enqueue_callback(s, &job, now_ms())
        })
        .await
        {
            Ok(Some(id)) => {
                debug!(id, to = %cb.to, call = ?cb.call_id, "call back text queued");
                dispatch.wake();
            }
            Ok(None) => info!(to = %cb.to, "caller texted STOP; no text back after the call"),
            Err(e) => warn!(to = %cb.to, error = %e, "could not queue the text back to a caller"),
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
}
