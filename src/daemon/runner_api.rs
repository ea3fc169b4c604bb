//! TEMPORARY stand-in for `dispatch::runner` until branch `runner` is merged: the types of the
//! contract in /work/notes/RUNNER_API.md, so the daemon compiles against that interface. It sends
//! nothing: `spawn` logs that no runner is built and `wake` does nothing, so queued messages stay
//! queued (durably) until a build with the runner starts. Delete this file at the merge and point
//! the `use` lines in `mod.rs` and `events.rs` at `crate::dispatch::runner`.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::config::{Config, Limits};
use crate::modem::ModemHandle;
use crate::store::Store;

#[allow(dead_code)] // read by the real runner
pub struct PoolModem {
    pub name: String,
    pub handle: ModemHandle,
    pub limits: Limits,
    pub number: Option<String>,
}

#[derive(Debug, Clone)]
pub enum DispatchEvent {
    Sent { id: i64, to: String, modem: String, parts: u32 },
    Failed { id: i64, to: String, reason: String },
    Retrying { id: i64, to: String, reason: String, next_attempt_at: i64 },
    InDoubt { id: i64, to: String, modem: String, reason: String },
    Expired { id: i64, to: String },
}

pub struct RunnerConfig;

impl RunnerConfig {
    pub fn from_config(_cfg: &Config) -> RunnerConfig {
        RunnerConfig
    }
}

#[derive(Debug, thiserror::Error)]
#[error("dispatch runner unavailable")]
pub struct DispatchError;

#[derive(Clone)]
pub struct DispatchHandle;

impl DispatchHandle {
    pub fn wake(&self) {}
}

pub fn spawn(
    _store: Store,
    _modems: Vec<PoolModem>,
    _cfg: RunnerConfig,
    _events: mpsc::Sender<DispatchEvent>,
    _tracker: &TaskTracker,
    _shutdown: CancellationToken,
) -> Result<DispatchHandle, DispatchError> {
    warn!("this build has no dispatch runner: queued messages are kept but not sent");
    Ok(DispatchHandle)
}
