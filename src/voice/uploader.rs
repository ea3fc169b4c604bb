//! The greeting file on a file-playback modem's flash, kept current: one uploader task per such
//! modem, and the slot that tells that modem's driver whether a call may be answered now.
//!
//! It owns the "is the greeting on the modem current" state ([`FileSlot`]) and the per-modem
//! record of what was uploaded (`state_dir/voice/uploads.json`, through [`files::Records`]). The
//! AT side of checking and uploading is [`files`]; this module only decides *when*. It must not
//! upload during a call on its modem (the file may be playing to the caller, and an upload on the
//! port would hold up the call's commands: a call goes first in the modem's queue but cannot
//! overtake a command already in flight), and it never plays anything.
//!
//! Why a slot with a generation instead of a flag: `set_greeting` bumps a generation counter, and a
//! modem is only "ready" when it holds that exact generation and no upload runs. A call that rings
//! while the new greeting is being written is let ring and texted back, so a half-written file is
//! never played (docs/voice.md, "How the greeting plays from the modem's flash").

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use super::files;
use super::{FileFamily, Shared, VoiceError};
use crate::modem::{ModemHandle, ModemState};
use crate::time::now_ms;

/// Starts the uploader of one file-playback modem; the returned slot is shared with its driver.
pub(super) fn spawn(
    name: &str,
    modem: ModemHandle,
    family: FileFamily,
    shared: Arc<Shared>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Arc<FileSlot> {
    let slot = Arc::new(FileSlot::default());
    let up = Uploader {
        name: name.to_owned(),
        modem,
        family,
        slot: slot.clone(),
        shared,
    };
    tracker.spawn(
        up.run(shutdown)
            .instrument(info_span!("greeting_upload", modem = %name)),
    );
    slot
}

/// The state of the greeting file on one modem, shared by its uploader and its driver.
#[derive(Debug, Default)]
pub(super) struct FileSlot {
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
    pub(super) fn ready(&self, generation: u64) -> bool {
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
        let res = files::ensure(&self.modem, self.family, &wav, record.as_ref(), now_ms()).await;
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
