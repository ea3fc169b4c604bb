//! The per-modem call driver: one task per voice modem that turns the modem's call signals (from
//! URCs, routed here by [`route`]), its status changes and the end of a call session into input for
//! the call machine ([`call::CallMachine`]), and carries out the machine's actions: open and close
//! the call's row, reject with `AT+CHUP`, start the session, send the text back.
//!
//! It owns the call in progress on its modem (at most one) and the modem's [`Media`]. It must not
//! decide anything itself (the decision table is in [`call`]), nor talk to the audio tty or play
//! the greeting (that is the [`session`], a task of its own so that this loop keeps reading a
//! hang-up while the session waits on `ATA`, routing or the greeting).
//!
//! Why the policy is refreshed on every signal while idle: whether a call can be answered depends
//! on the greeting (which `set_greeting` may change) and, on the file path, on whether the modem
//! holds the current greeting file; reading both when a call starts means a call never waits on a
//! greeting that is not there.
//!
//! [`call`]: super::call
//! [`call::CallMachine`]: super::call::CallMachine
//! [`session`]: super::session

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use super::call::{Action, CallMachine, Finished, Policy};
use super::session::{Media, Session, SessionReport};
use super::uploader;
use super::{
    ActiveCall, AudioLink, AudioPath, CallEventKind, CallbackText, Caller, ModemUrc, Shared,
    Signal, VoiceModem, detect, playback, with_store,
};
use crate::modem::{ModemHandle, ModemState, Profile};
use crate::store::CallOutcome;
use crate::time::now_ms;

/// Starts the driver of one modem (and, on the file path, its greeting uploader); returns the
/// sender its call signals go to.
pub(super) fn spawn(
    m: VoiceModem,
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> mpsc::Sender<Signal> {
    let name = m.handle.name().to_owned();
    let path = playback::audio_path(m.profile, m.audio_port.as_deref(), m.audio_mode);
    let audio = match &path {
        AudioPath::Pcm(p) => Some(Media::Pcm(AudioLink::spawn(
            p,
            shared.settings.audio,
            tracker,
            shutdown.clone(),
        ))),
        AudioPath::File(family) => {
            let slot = uploader::spawn(
                &name,
                m.handle.clone(),
                *family,
                shared.clone(),
                tracker,
                shutdown.clone(),
            );
            Some(Media::File(*family, slot))
        }
        AudioPath::None(why) => {
            info!(modem = %name, reason = why, "no audio path: calls are let ring and texted back");
            None
        }
    };
    let (tx, rx) = mpsc::channel(64);
    let driver = Driver {
        name: name.clone(),
        modem: m.handle,
        profile: m.profile,
        audio,
        shared: shared.clone(),
        machine: CallMachine::new(policy(shared), shared.settings.timing),
        current: None,
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
    };
    tracker.spawn(
        driver
            .run(rx)
            .instrument(info_span!("voice", modem = %name)),
    );
    tx
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
pub(super) async fn route(
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
                Action::Ringing { caller, at } => self.ringing(caller, at).await,
                Action::Reject => {
                    info!("rejecting the call (AT+CHUP)");
                    if let Err(e) = self.modem.hangup().await {
                        warn!(error = %e, "AT+CHUP for a rejected call failed");
                    }
                    queue.extend(self.machine.closed(CallOutcome::Rejected));
                }
                Action::Answer => {
                    if !self.start_session() {
                        queue.extend(self.machine.closed(CallOutcome::Failed));
                    }
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
                Action::Finished(f) => self.finished(f).await,
            }
        }
    }

    /// A new call: opens its row in the store, lists it as active and tells watchers.
    async fn ringing(&mut self, caller: Caller, at: Instant) {
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

    /// Spawns the session of the current call; `false` if there is nothing to answer with.
    fn start_session(&mut self) -> bool {
        let (Some(c), Some(audio), Some(g)) = (
            self.current.as_mut(),
            self.audio.clone(),
            self.shared.greeting(),
        ) else {
            // Policy said answer, so greeting and audio were there; a race with a
            // greeting removal would land here.
            return false;
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
        true
    }

    /// The call is over: closes its row, tells watchers and queues the text back.
    async fn finished(&mut self, f: Finished) {
        let c = self.current.take();
        self.shared.active().remove(&self.name);
        let ended_ms = now_ms();
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

/// Unix ms of a past monotonic instant.
fn unix_ms_at(at: Instant) -> i64 {
    now_ms() - Instant::now().saturating_duration_since(at).as_millis() as i64
}
