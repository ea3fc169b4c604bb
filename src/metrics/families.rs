//! The metrics kept in memory between scrapes: counters and histograms fed by the dispatch
//! runner's observations and the event bus, and their label sets.
//!
//! Owns the names, help texts and bucket bounds of those metrics; it reads nothing itself (the
//! feeding is in `feed.rs`, the scrape-time figures in `scrape.rs`). They start at zero with the
//! process, as Prometheus counters may: `rate()` and `increase()` handle the reset. Every
//! per-modem series is created at start for every configured modem, so a modem that has sent
//! nothing yet shows `0` instead of no series (an absent series makes `rate()` and alerts on it
//! silently empty).
//!
//! Labels are the modem's configured name, a state word or a delivery status: never a phone
//! number or a message id (one series per number would grow without bound).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `{modem="…"}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModemLabel {
    pub modem: String,
}

impl ModemLabel {
    pub fn new(modem: &str) -> Self {
        ModemLabel {
            modem: modem.to_string(),
        }
    }
}

/// `{status="delivered"|"pending"|"failed"}` of a status report.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReportLabel {
    pub status: String,
}

type ModemHistograms = Family<ModemLabel, Histogram, fn() -> Histogram>;

/// Upper bounds (seconds) of the claim → modem OK histogram: a submit takes a second or a few on
/// a real network (the simulator answers in tens of ms), a multipart message that waits for the
/// limiter between parts can take minutes.
pub const SEND_LATENCY_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Upper bounds (seconds) of the limiter-wait histogram: from a slot freed a moment later to a
/// message held for the rest of a per-hour or per-day window.
pub const LIMITER_WAIT_BUCKETS: [f64; 10] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
];

fn send_latency() -> Histogram {
    Histogram::new(SEND_LATENCY_BUCKETS)
}

fn limiter_wait() -> Histogram {
    Histogram::new(LIMITER_WAIT_BUCKETS)
}

/// The in-memory metrics; cloning shares them.
#[derive(Clone, Debug)]
pub(crate) struct Families {
    pub sent: Family<ModemLabel, Counter>,
    pub parts_sent: Family<ModemLabel, Counter>,
    pub failed: Family<ModemLabel, Counter>,
    pub in_doubt: Family<ModemLabel, Counter>,
    pub retries: Family<ModemLabel, Counter>,
    pub deferred: Family<ModemLabel, Counter>,
    pub received: Family<ModemLabel, Counter>,
    pub sending: Family<ModemLabel, Gauge>,
    pub send_latency: ModemHistograms,
    pub limiter_wait: ModemHistograms,
    pub delivery_reports: Family<ReportLabel, Counter>,
    /// Bus events the metrics missed because their subscription fell behind.
    pub events_missed: Counter,
}

impl Families {
    /// Zeroed families with a series for each of `modems`.
    pub fn new(modems: &[String]) -> Families {
        let f = Families {
            sent: Family::default(),
            parts_sent: Family::default(),
            failed: Family::default(),
            in_doubt: Family::default(),
            retries: Family::default(),
            deferred: Family::default(),
            received: Family::default(),
            sending: Family::default(),
            send_latency: Family::new_with_constructor(send_latency as fn() -> Histogram),
            limiter_wait: Family::new_with_constructor(limiter_wait as fn() -> Histogram),
            delivery_reports: Family::default(),
            events_missed: Counter::default(),
        };
        for m in modems {
            let l = ModemLabel::new(m);
            for c in [
                &f.sent,
                &f.parts_sent,
                &f.failed,
                &f.in_doubt,
                &f.retries,
                &f.deferred,
                &f.received,
            ] {
                drop(c.get_or_create(&l));
            }
            drop(f.sending.get_or_create(&l));
            drop(f.send_latency.get_or_create(&l));
            drop(f.limiter_wait.get_or_create(&l));
        }
        for status in ["delivered", "pending", "failed"] {
            drop(f.delivery_reports.get_or_create(&ReportLabel {
                status: status.into(),
            }));
        }
        f
    }

    /// Registers (clones of) every family in `reg`; docs/http-api.md "Metrics" lists them.
    pub fn register(&self, reg: &mut Registry) {
        let counters = [
            (
                "sms_sent",
                "Messages whose every part the modem accepted (+CMGS)",
                &self.sent,
            ),
            (
                "sms_parts_sent",
                "SMS parts the modem accepted (a long message is several parts)",
                &self.parts_sent,
            ),
            (
                "sms_failed",
                "Messages that failed for good on this modem",
                &self.failed,
            ),
            (
                "sms_in_doubt",
                "Sends left in doubt: they may or may not have reached the network",
                &self.in_doubt,
            ),
            (
                "sms_retries",
                "Sends the modem could not make, queued again (back-off or modem held)",
                &self.retries,
            ),
            (
                "sms_deferred",
                "Messages handed back unsent for quiet hours or the per-recipient cap",
                &self.deferred,
            ),
            (
                "sms_received",
                "Whole messages received and stored (a long message counts once)",
                &self.received,
            ),
        ];
        for (name, help, family) in counters {
            reg.register(name, help, family.clone());
        }
        reg.register(
            "modem_sending",
            "Messages the modem's send loop has claimed and not yet settled (0 or 1)",
            self.sending.clone(),
        );
        reg.register(
            "sms_send_latency_seconds",
            "Time from the claim of a message to the modem's OK for its last part",
            self.send_latency.clone(),
        );
        reg.register(
            "limiter_wait_seconds",
            "How long a due message waited for the rate limiter (count: how often)",
            self.limiter_wait.clone(),
        );
        reg.register(
            "sms_delivery_reports",
            "Status reports received, by status",
            self.delivery_reports.clone(),
        );
        reg.register(
            "metrics_events_missed",
            "Events the metrics missed because they fell behind the event bus",
            self.events_missed.clone(),
        );
    }
}
