//! One answered call, from `ATA` to hang-up: audio routing, the greeting (streamed as PCM or played
//! from the modem's flash), the beep, the voicemail recording, and the call's bookkeeping (the
//! answer time in the store, the `Answered` and `Voicemail` events, the voicemail file and row).
//!
//! It owns nothing that outlives the call. It must not decide whether to answer (that is the call
//! machine's decision table in [`call`], applied by the driver) nor end the call's row in the store
//! (the driver does that once, whatever the session did, so a session that fails still leaves a
//! finished row). Every AT command goes through the modem's call queue.
//!
//! Why a separate task per call: the driver must keep reading call signals (a hang-up by the
//! caller) while the session waits on `ATA`, audio routing and the greeting. Every wait here races
//! the caller's hang-up (`remote_gone`), the daemon's shutdown and `max_seconds` (counted from the
//! answer, greeting included), and the session always returns a [`SessionReport`], so no call state
//! is left behind.
//!
//! [`call`]: super::call

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::audio::{self, Uplink};
use super::greeting::{self, FRAME_BYTES, Greeting, samples_to_frames};
use super::recorder::{self, RecordState, Recorder};
use super::uploader::FileSlot;
use super::{AudioLink, CallEventKind, FileFamily, Shared, detect, playback, with_store};
use crate::modem::{CommandError, ModemHandle, Profile};
use crate::store::CallOutcome;
use crate::time::now_ms;

/// How a driver's modem plays the greeting.
#[derive(Clone)]
pub(super) enum Media {
    /// PCM over the audio tty.
    Pcm(AudioLink),
    /// A file on the modem's flash, kept current by the modem's uploader.
    File(FileFamily, Arc<FileSlot>),
}

impl Media {
    /// Whether a call can be answered with a greeting now.
    pub(super) fn ready(&self, shared: &Shared) -> bool {
        match self {
            Media::Pcm(_) => true,
            Media::File(_, slot) => slot.ready(*shared.greeting_gen.borrow()),
        }
    }
}

/// What a session reports to its driver.
#[derive(Debug)]
pub(super) struct SessionReport {
    pub(super) outcome: CallOutcome,
    pub(super) answered_ms: Option<i64>,
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
pub(super) struct Session {
    pub(super) modem: ModemHandle,
    pub(super) name: String,
    pub(super) profile: Profile,
    pub(super) audio: Media,
    pub(super) greeting: Arc<Greeting>,
    pub(super) shared: Arc<Shared>,
    pub(super) call_id: Option<i64>,
    /// Fired by the driver when the caller hung up.
    pub(super) remote_gone: CancellationToken,
    pub(super) shutdown: CancellationToken,
    /// Set by the driver on the family's "connected" URC.
    pub(super) connected: watch::Receiver<bool>,
    /// Bumped by the driver on every playback-ended URC (file path).
    pub(super) played: watch::Receiver<u64>,
}

/// The beep before a voicemail: 1 kHz for 300 ms at about −12 dBFS, computed (deterministic;
/// `libm`'s sine keeps the C maths library out of the daemon, see `greeting::lowpass`).
pub fn beep() -> Vec<i16> {
    (0..2400)
        .map(|n| {
            let v: f64 =
                8000.0 * libm::sin(2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / 8000.0);
            v.round() as i16
        })
        .collect()
}

impl Session {
    /// The call is connected: stamps the report and the store's call row and emits `Answered`.
    /// Returns the instant the call-length limit counts from.
    async fn mark_answered(&mut self, report: &mut SessionReport) -> Instant {
        let answered = Instant::now();
        let answered_ms = now_ms();
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

    pub(super) async fn run(mut self) -> SessionReport {
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
                let gone = caller_left(&e);
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

    /// The file-playback call (docs/voice.md, "How the greeting plays from the modem's flash"):
    /// answer, wait for "connected", play the greeting stored on the modem, wait for its end URC,
    /// hang up. No voicemail on this path (the module records to its own flash; fetching that back
    /// is not implemented).
    async fn run_file(mut self, family: FileFamily) -> SessionReport {
        let mut report = SessionReport {
            outcome: CallOutcome::Failed,
            answered_ms: None,
        };
        if let Err(e) = self.modem.answer().await {
            warn!(error = %e, "ATA failed");
            let gone = caller_left(&e);
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
        let now = now_ms();
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
            let wav = path.clone();
            // Sites sharing a PostgreSQL database play each other's voicemails: the audio goes
            // into the database too (store/voicemail_audio.rs); one Pi keeps the file only.
            with_store(&self.shared.store, move |s| {
                let vm = s.add_voicemail(id, &stored, duration_ms, now)?;
                if s.backend() == crate::store::Backend::Postgres {
                    let bytes = std::fs::read(&wav).map_err(|e| {
                        crate::store::StoreError::InvalidArgument(format!(
                            "reading {}: {e}",
                            wav.display()
                        ))
                    })?;
                    s.set_voicemail_audio(vm, &bytes)?;
                }
                Ok(vm)
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

/// Whether `ATA` failed because the caller had already left: the modem answers `NO CARRIER`
/// instead of `OK` then (ITU-T V.250, command `A`).
fn caller_left(e: &CommandError) -> bool {
    matches!(e, CommandError::Failed { failure, .. } if failure.to_string().contains("NoCarrier") || failure.to_string().contains("NO CARRIER"))
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
}
