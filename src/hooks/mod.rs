//! Webhooks and local hooks: the gateway telling other software what happened (docs/http-api.md,
//! "Webhooks" and "Local hooks"). A transport layer over the store, spawned by the daemon.
//!
//! The source of truth is the store's event journal: the triggers of migration 0008 write one
//! row per stored fact (a message received, sent, delivered or failed; a member joined, opted
//! out or in; a call ended; a voicemail left; a broadcast finished) in the fact's own
//! transaction, and [`feed`] appends the facts that are not stored (a modem down or up, alerts).
//! Every webhook ([`webhook`]) and every local hook ([`local`]) is a consumer with its own durable
//! cursor in that journal, so delivery survives restarts and kill -9 with no gap: at least once,
//! in order per webhook, de-duplicated by the receiver on the event id.
//!
//! What it owns: delivery (HTTP POST, signing, retries and give-up; running hook programs), the
//! journal's retention schedule, and a cheap [`snapshot`] of per-webhook counters for metrics.
//! What it must not touch: SQL (it calls the store's journal methods), the meaning of a message,
//! the configuration file (`config` fills [`HooksSettings`]), the admin commands (which read the
//! cursors from the store themselves).
//!
//! Outbound HTTP is reqwest on rustls with the `ring` provider (no aws-lc-rs: it needs cmake,
//! which the aarch64 cross-build must not).

pub mod feed;
pub mod local;
pub mod settings;
pub mod sign;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// The event types (the store's triggers and [`feed`] write them; `config` checks `events`).
pub use crate::store::EVENT_TYPES;
pub use settings::{HookConfig, HooksSettings, RetryPolicy, WebhookConfig};

use crate::protocol::Event;
use crate::store::{self, Store};
use crate::time::now_ms;

/// How often the journal is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Errors of starting the hooks layer.
#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
    #[error("cannot register the event consumers: {0}")]
    Store(#[from] store::StoreError),
}

/// Registers every consumer's cursor (so a fresh database delivers from its first event, and
/// nothing journaled while the tasks start is skipped), then spawns the journal feed, one
/// delivery task per webhook, one runner per local hook and the retention task, all on
/// `tracker` until `shutdown`.
pub async fn start(
    store: &Store,
    settings: &HooksSettings,
    bus: broadcast::Receiver<Event>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<(), HooksError> {
    let keys = consumer_keys(settings);
    let register = keys.clone();
    store
        .call(move |s| {
            let now = now_ms();
            register
                .iter()
                .try_for_each(|k| s.ensure_consumer(k, now).map(|_| ()))
        })
        .await?;
    tracker.spawn(feed::run(store.clone(), bus, shutdown.clone()));
    if !settings.webhooks.is_empty() {
        let client = http_client()?;
        for hook in &settings.webhooks {
            let w = webhook::Worker {
                store: store.clone(),
                hook: hook.clone(),
                client: client.clone(),
                retry: settings.retry,
                commits: store.watch_durable(),
                shutdown: shutdown.clone(),
            };
            tracker.spawn(w.run());
        }
    }
    let limit = Arc::new(Semaphore::new(settings.max_concurrent.max(1)));
    for hook in &settings.hooks {
        let w = local::Worker {
            store: store.clone(),
            hook: hook.clone(),
            limit: limit.clone(),
            batch: u32::try_from(settings.max_concurrent.max(1)).unwrap_or(u32::MAX),
            commits: store.watch_durable(),
            shutdown: shutdown.clone(),
        };
        tracker.spawn(w.run());
    }
    tracker.spawn(prune(store.clone(), keys, settings.retention, shutdown));
    if !settings.webhooks.is_empty() || !settings.hooks.is_empty() {
        info!(
            webhooks = settings.webhooks.len(),
            hooks = settings.hooks.len(),
            "event delivery started"
        );
    }
    Ok(())
}

/// The outbound client: no redirects (module doc of [`webhook`]), rustls on `ring`.
fn http_client() -> Result<reqwest::Client, HooksError> {
    // Err only when a provider is already installed (the HTTP server's, also ring): fine.
    // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange, which only aws-lc-rs
    // offers, and aws-lc-rs needs cmake and a C toolchain the aarch64 cross-build must not.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gsmgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| HooksError::Client(e.to_string()))
}

/// The cursor names of every configured consumer.
pub fn consumer_keys(settings: &HooksSettings) -> Vec<String> {
    settings
        .webhooks
        .iter()
        .map(|w| store::consumer_key("webhook", &w.name))
        .chain(
            settings
                .hooks
                .iter()
                .map(|h| store::consumer_key("hook", &h.name)),
        )
        .collect()
}

async fn prune(store: Store, keys: Vec<String>, retention: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let keys = keys.clone();
        let cut = now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        match store.call(move |s| s.prune_events(&keys, cut)).await {
            Ok(0) => {}
            Ok(n) => info!(events = n, "pruned the event journal"),
            Err(e) => warn!(error = %e, "pruning the event journal failed"),
        }
    }
}

/// Counters of one webhook, for metrics (`gsmgate_webhook_backlog` and friends).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookStats {
    pub name: String,
    /// Journal events of its types not yet delivered or given up.
    pub backlog: i64,
    pub delivered_total: i64,
    pub failed_total: i64,
}

/// A snapshot of every configured webhook's counters: one indexed count per webhook. Synchronous
/// (call it through `Store::call` from async code).
pub fn snapshot(store: &Store, webhooks: &[WebhookConfig]) -> store::Result<Vec<WebhookStats>> {
    webhooks
        .iter()
        .map(|w| {
            let key = store::consumer_key("webhook", &w.name);
            let row = store.consumer(&key)?.unwrap_or_default();
            Ok(WebhookStats {
                name: w.name.clone(),
                backlog: store.consumer_backlog(&key, &w.events)?,
                delivered_total: row.delivered_total,
                failed_total: row.failed_total,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_backlog_by_the_webhooks_types() {
        let store = Store::open_in_memory().unwrap();
        let hook = |name: &str, events: &[&str]| WebhookConfig {
            name: name.into(),
            url: "https://h/x".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            secret: "0123456789abcdef".into(),
        };
        let hooks = [
            hook("all", &[]),
            hook("alerts", &["alert"]),
            hook("never", &[]),
        ];
        store.ensure_consumer("webhook:all", 0).unwrap();
        store.ensure_consumer("webhook:alerts", 0).unwrap();
        let a = store.append_event("alert", "{}", 1).unwrap();
        store.append_event("modem_up", "{}", 2).unwrap();
        store.consumer_delivered("webhook:all", a, 3).unwrap();
        let s = snapshot(&store, &hooks).unwrap();
        let row = |n: &str| s.iter().find(|w| w.name == n).unwrap().clone();
        assert_eq!((row("all").backlog, row("all").delivered_total), (1, 1));
        assert_eq!(
            (row("alerts").backlog, row("alerts").delivered_total),
            (1, 0)
        );
        // A webhook whose cursor does not exist yet has nothing pending (it starts at the end).
        assert_eq!(row("never").backlog, 0);
        assert_eq!(
            consumer_keys(&HooksSettings {
                webhooks: hooks.to_vec(),
                ..HooksSettings::default()
            })
            .len(),
            3
        );
    }
}
