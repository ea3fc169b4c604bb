//! Prometheus metrics of the gateway (docs/http-api.md, "Metrics"): a cheap `Clone` handle,
//! [`Metrics`], that the daemon feeds and that renders the text a Prometheus server scrapes
//! (`GET /metrics` in the HTTP layer).
//!
//! A layer beside the transports (`admin`, the HTTP server): it reads the store, the modem
//! handles' status snapshots, the dispatch runner's observations and the daemon's event bus, and
//! decides nothing; nothing below the daemon imports it. Two kinds of figures:
//! - counters and histograms kept in memory (`families.rs`), fed as things happen (`feed.rs`):
//!   sends, failures, receipts, claim → OK latency, limiter waits. They start at zero with the
//!   process, which Prometheus' `rate()` and `increase()` expect;
//! - gauges read at scrape time (`scrape.rs`): each modem's state, registration and signal from
//!   its handle (a `watch` borrow, no I/O), and the live outbox, each modem's last accepted
//!   submit and the calls from one short store call on the blocking pool, answered from indexes
//!   (`store::metrics`). A scrape with 10,000 outbox rows costs well under a millisecond of
//!   database time (docs/http-api.md gives the measured figure).
//!
//! The output is the Prometheus text format 0.0.4 by default ([`Format::Prometheus`]): it is
//! what every Prometheus server and `promtool check metrics` read (Debian's promtool 2.42 refuses
//! OpenMetrics' `info` type and `# EOF`). OpenMetrics is there for content negotiation
//! ([`Format::from_accept`]).
//!
//! Gaps, on purpose: no per-number or per-message labels (a series per phone number grows
//! without bound and leaks who texts whom); no modem balance yet (the USSD balance check does not
//! exist; it belongs in `scrape.rs` as `gsmgate_modem_balance` once the modem status carries it);
//! webhook figures come from whoever registers a [`WebhookStats`] source (the webhook layer),
//! and are absent until one is.

mod families;
mod feed;
mod scrape;

use std::sync::{Arc, RwLock};
use std::time::Instant;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;
use tracing::warn;

use crate::dispatch::runner::SendObserver;
use crate::modem::ModemHandle;
use crate::store::Store;
use crate::time::now_ms;
use families::Families;
use scrape::Snapshot;

pub use families::{LIMITER_WAIT_BUCKETS, SEND_LATENCY_BUCKETS};

/// Every metric's name starts with this and an underscore.
pub const PREFIX: &str = "gsmgate";

/// The exposition format of a render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Prometheus text format 0.0.4 (what `promtool check metrics` reads).
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` to serve a render in this format with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format a scraper asks for in its `Accept` header: OpenMetrics when it names it (as
    /// Prometheus does, preferring it), else the 0.0.4 text.
    pub fn from_accept(accept: &str) -> Format {
        if accept.contains("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Webhook figures for the metrics, per configured webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookFigures {
    /// The webhook's name (never its URL: it may carry a secret).
    pub webhook: String,
    /// Deliveries waiting (queued or retrying).
    pub backlog: u64,
    /// Deliveries the receiver accepted, ever or since start (a counter: must never decrease).
    pub delivered_total: u64,
    /// Events given up after the retry period (a counter: must never decrease).
    pub failures_total: u64,
}

/// The hook point for the webhook layer: a source of [`WebhookFigures`], registered with
/// [`Metrics::set_webhook_stats`]. Called once per scrape on the blocking pool, with the store,
/// so it may run one cheap (indexed) query; it must not block on anything else.
pub trait WebhookStats: Send + Sync + 'static {
    fn webhook_figures(&self, store: &Store) -> crate::store::Result<Vec<WebhookFigures>>;
}

/// The daemon's metrics; clones share everything.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    modems: Vec<ModemHandle>,
    families: Families,
    started: Instant,
    start_time_s: f64,
    webhooks: RwLock<Option<Arc<dyn WebhookStats>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("modems", &self.inner.modems.len())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics over `store` and `modems` (the pool, in order), for a daemon that started at
    /// `started`. Every per-modem series exists from here on, at zero.
    pub fn new(store: Store, modems: Vec<ModemHandle>, started: Instant) -> Metrics {
        let names: Vec<String> = modems.iter().map(|h| h.name().to_string()).collect();
        let start_ms =
            now_ms().saturating_sub(i64::try_from(started.elapsed().as_millis()).unwrap_or(0));
        Metrics {
            inner: Arc::new(Inner {
                store,
                modems,
                families: Families::new(&names),
                started,
                start_time_s: start_ms as f64 / 1000.0,
                webhooks: RwLock::new(None),
            }),
        }
    }

    /// This handle as the dispatch runner's observer (`RunnerConfig::observer`).
    pub fn send_observer(&self) -> Arc<dyn SendObserver> {
        Arc::new(self.clone())
    }

    /// Registers the webhook layer's figures (replacing an earlier source).
    pub fn set_webhook_stats(&self, source: Arc<dyn WebhookStats>) {
        let mut w = self
            .inner
            .webhooks
            .write()
            .unwrap_or_else(|p| p.into_inner());
        *w = Some(source);
    }

    /// The metrics in the Prometheus text format 0.0.4; serve with [`CONTENT_TYPE`].
    pub async fn render(&self) -> String {
        self.render_as(Format::Prometheus).await
    }

    /// The metrics in `format`; serve with [`Format::content_type`].
    pub async fn render_as(&self, format: Format) -> String {
        let snap = self.snapshot().await;
        self.encode(&snap, format)
    }

    /// Reads what a scrape reports: the store's figures (and the webhooks') in one call on the
    /// blocking pool, the modems' snapshots from their handles.
    async fn snapshot(&self) -> Snapshot {
        let webhooks = self
            .inner
            .webhooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let read = self
            .inner
            .store
            .call(move |s| {
                let figures = s.metrics_figures()?;
                let hooks = match webhooks {
                    Some(w) => Some(w.webhook_figures(s)?),
                    None => None,
                };
                Ok((figures, hooks))
            })
            .await;
        let (figures, webhooks) = match read {
            Ok((f, w)) => (Some(f), w),
            Err(e) => {
                warn!(error = %e, "metrics: the database did not answer; reporting without it");
                (None, None)
            }
        };
        Snapshot {
            modems: self.inner.modems.iter().map(ModemHandle::status).collect(),
            figures,
            webhooks,
            disk_writable: self.inner.store.write_health().is_healthy(),
            start_time_s: self.inner.start_time_s,
            uptime_s: self.inner.started.elapsed().as_secs_f64(),
        }
    }

    fn encode(&self, snap: &Snapshot, format: Format) -> String {
        let mut reg = Registry::with_prefix(PREFIX);
        self.inner.families.register(&mut reg);
        scrape::register(&mut reg, snap);
        let mut out = String::with_capacity(16 * 1024);
        let written = match format {
            Format::Prometheus => prometheus_text::encode(&mut out, &reg),
            Format::OpenMetrics => text::encode(&mut out, &reg),
        };
        if let Err(e) = written {
            // Writing into a String cannot fail; if an encoder ever did, say so in the output.
            warn!(error = %e, "metrics: encoding failed");
            out.push_str("# encoding failed\n");
        }
        out
    }
}

#[cfg(test)]
mod tests;
