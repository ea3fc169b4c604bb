//! Local hooks (`[[hook]]`): a program run once per event, as Gammu's `RunOnReceive` and
//! smstools3's eventhandler do, for Pi users who script in shell (docs/http-api.md, "Local
//! hooks").
//!
//! The program is executed directly (`execve`, no shell), so an SMS text can never become shell
//! syntax: it arrives as data only, in the event JSON on stdin and in `GSMGATE_*` environment
//! variables ([`environment`]). Each run has a timeout; on expiry the hook's whole process group
//! is killed (a shell script's `sleep` child would otherwise outlive it). At most
//! `max_concurrent` hook processes run at once over all hooks (a semaphore), so a burst of texts
//! cannot fork-bomb a Pi.
//!
//! Delivery: every hook has its own durable cursor in the journal, like a webhook. A worker takes
//! up to `max_concurrent` events, runs them (concurrently, so their order is not guaranteed),
//! and moves the cursor after they finished: at least once (a crash mid-batch runs the batch
//! again). A hook that exits non-zero or times out is logged (exit status and the start of its
//! stderr) and counted, and NOT retried — like `RunOnReceive`, a hook is a notification, and a
//! script that fails on some input would otherwise block every later event.

use std::process::Stdio;
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::settings::HookConfig;
use super::sign;
use crate::store::{self, JournalEvent, Store};
use crate::time::now_ms;

/// The environment variables a hook gets besides the daemon's own environment, from the event:
/// `GSMGATE_EVENT` (type), `GSMGATE_EVENT_ID`, `GSMGATE_AT` (RFC 3339), and from its data where
/// present `GSMGATE_FROM`, `GSMGATE_TO`, `GSMGATE_TEXT`, `GSMGATE_MODEM`, `GSMGATE_NUMBER`,
/// `GSMGATE_ID` (the message, call or broadcast id), `GSMGATE_STATE`. NUL bytes (which an
/// environment cannot hold) are dropped from the values.
pub fn environment(ev: &JournalEvent) -> Vec<(String, String)> {
    let clean = |s: &str| s.replace('\0', "");
    let mut env = vec![
        ("GSMGATE_EVENT".to_string(), ev.kind.clone()),
        ("GSMGATE_EVENT_ID".to_string(), ev.id.to_string()),
        ("GSMGATE_AT".to_string(), crate::time::rfc3339(ev.at)),
    ];
    let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
    for (field, var) in [
        ("from", "GSMGATE_FROM"),
        ("to", "GSMGATE_TO"),
        ("text", "GSMGATE_TEXT"),
        ("modem", "GSMGATE_MODEM"),
        ("number", "GSMGATE_NUMBER"),
        ("id", "GSMGATE_ID"),
        ("state", "GSMGATE_STATE"),
    ] {
        let value = match data.get(field) {
            Some(Value::String(s)) => clean(s),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        env.push((var.to_string(), value));
    }
    env
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Exited(i32),
    Signalled,
    TimedOut,
    /// It could not be started (missing, not executable).
    SpawnFailed(String),
}

/// Bytes of a hook's stderr kept for the log.
const STDERR_KEPT: usize = 2048;

/// Runs `hook` once for `ev` and waits for it (or its timeout).
pub async fn run_once(hook: &HookConfig, ev: &JournalEvent) -> RunOutcome {
    let mut cmd = Command::new(&hook.command);
    cmd.args(&hook.args)
        .envs(environment(ev))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so the timeout can kill its children too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return RunOutcome::SpawnFailed(e.to_string()),
    };
    let pid = child.id();
    let body = sign::body(ev);
    let stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    let feed = async move {
        if let Some(mut w) = stdin {
            // A hook that does not read stdin closes the pipe: not an error.
            let _ = w.write_all(&body).await;
        }
    };
    let collect = async move {
        let mut buf = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.take(STDERR_KEPT as u64).read_to_end(&mut buf).await;
        }
        buf
    };
    let run = async {
        let (_, err, status) = tokio::join!(feed, collect, child.wait());
        (err, status)
    };
    match tokio::time::timeout(hook.timeout, run).await {
        Ok((err, Ok(status))) => {
            if !status.success() && !err.is_empty() {
                warn!(hook = %hook.name, stderr = %String::from_utf8_lossy(&err).trim_end(), "hook stderr");
            }
            match status.code() {
                Some(c) => RunOutcome::Exited(c),
                None => RunOutcome::Signalled,
            }
        }
        Ok((_, Err(e))) => RunOutcome::SpawnFailed(e.to_string()),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            // kill_on_drop reaps the leader.
            RunOutcome::TimedOut
        }
    }
}

pub(super) struct Worker {
    pub store: Store,
    pub hook: HookConfig,
    pub limit: Arc<Semaphore>,
    pub batch: u32,
    /// The store's last commit on disk (`Store::watch_durable`): events are handed out only once
    /// on disk, so a change of it is when new ones may be readable.
    pub commits: watch::Receiver<u64>,
    pub shutdown: CancellationToken,
}

impl Worker {
    pub async fn run(mut self) {
        let key = store::consumer_key("hook", &self.hook.name);
        let k = key.clone();
        if let Err(e) = self
            .store
            .call(move |s| s.ensure_consumer(&k, now_ms()))
            .await
        {
            warn!(hook = %self.hook.name, error = %e, "cannot register the hook's cursor; not running it");
            return;
        }
        info!(hook = %self.hook.name, command = %self.hook.command.display(), "local hook started");
        while !self.shutdown.is_cancelled() {
            self.commits.borrow_and_update();
            let (k, types, batch) = (key.clone(), self.hook.events.clone(), self.batch);
            let read = self
                .store
                .call(move |s| {
                    let cursor = s.ensure_consumer(&k, now_ms())?;
                    let last = s.last_event_id()?;
                    let events = s.events_after(cursor.last_id, &types, batch)?;
                    Ok((cursor, last, events))
                })
                .await;
            let (cursor, last, events) = match read {
                Ok(r) => r,
                Err(e) => {
                    warn!(hook = %self.hook.name, error = %e, "hook worker: database error; retrying");
                    self.wait().await;
                    continue;
                }
            };
            if events.is_empty() {
                if last > cursor.last_id {
                    let k = key.clone();
                    let _ = self.store.call(move |s| s.consumer_skip_to(&k, last)).await;
                }
                self.wait().await;
                continue;
            }
            let runs = events.iter().map(|ev| self.run_limited(ev));
            let outcomes = tokio::select! {
                o = futures_util::future::join_all(runs) => o,
                // Not recorded: the batch runs again after the restart (at least once).
                _ = self.shutdown.cancelled() => return,
            };
            let k = key.clone();
            let _ = self
                .store
                .call(move |s| {
                    for (ev, outcome) in events.iter().zip(outcomes) {
                        let now = now_ms();
                        match outcome {
                            RunOutcome::Exited(0) => s.consumer_delivered(&k, ev.id, now)?,
                            other => s.consumer_gave_up(&k, ev.id, &describe(&other), now)?,
                        }
                    }
                    Ok(())
                })
                .await
                .map_err(|e| warn!(hook = %self.hook.name, error = %e, "cannot record hook runs"));
        }
    }

    async fn run_limited(&self, ev: &JournalEvent) -> RunOutcome {
        let Ok(_permit) = self.limit.acquire().await else {
            return RunOutcome::SpawnFailed("hook runner closed".into());
        };
        let outcome = run_once(&self.hook, ev).await;
        match &outcome {
            RunOutcome::Exited(0) => {
                info!(hook = %self.hook.name, event = ev.id, kind = %ev.kind, "hook ran (exit 0)")
            }
            other => {
                warn!(hook = %self.hook.name, event = ev.id, kind = %ev.kind, outcome = %describe(other), "hook failed (not retried)")
            }
        }
        outcome
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.commits.changed() => {}
            _ = tokio::time::sleep(super::webhook::IDLE_POLL) => {}
            _ = self.shutdown.cancelled() => {}
        }
    }
}

/// For the log and the cursor's last error.
pub fn describe(o: &RunOutcome) -> String {
    match o {
        RunOutcome::Exited(c) => format!("exit status {c}"),
        RunOutcome::Signalled => "killed by a signal".into(),
        RunOutcome::TimedOut => "timed out (killed)".into(),
        RunOutcome::SpawnFailed(e) => format!("could not start: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn environment_carries_the_main_fields_without_nul() {
        let ev = JournalEvent {
            id: 3,
            kind: "message_received".into(),
            at: 0,
            data: r#"{"id":9,"from":"+15550001","text":"a\u0000b; rm -rf /","modem":"sim0","parts":1}"#.into(),
        };
        let env = environment(&ev);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("GSMGATE_EVENT"), Some("message_received"));
        assert_eq!(get("GSMGATE_EVENT_ID"), Some("3"));
        assert_eq!(get("GSMGATE_FROM"), Some("+15550001"));
        assert_eq!(get("GSMGATE_TEXT"), Some("ab; rm -rf /"));
        assert_eq!(get("GSMGATE_ID"), Some("9"));
        assert_eq!(get("GSMGATE_TO"), None);
        assert_eq!(get("GSMGATE_AT"), Some("1970-01-01T00:00:00Z"));
    }

    #[tokio::test]
    async fn a_missing_program_is_reported_not_panicked() {
        let hook = HookConfig {
            name: "x".into(),
            command: "/nonexistent/hook".into(),
            args: vec![],
            events: vec![],
            timeout: Duration::from_secs(5),
        };
        let ev = JournalEvent {
            id: 1,
            kind: "alert".into(),
            at: 0,
            data: "{}".into(),
        };
        assert!(matches!(
            run_once(&hook, &ev).await,
            RunOutcome::SpawnFailed(_)
        ));
    }
}
