//! The figures read at scrape time and turned into metrics: each modem's snapshot (state,
//! registration, signal, the actor's error and recovery counts), the store's figures (live
//! outbox, last accepted submit, calls), the state disk's health, the webhook figures when a
//! source is registered, uptime and build info.
//!
//! Owns only the mapping from those values to metric families; it reads nothing itself
//! ([`super::Metrics::render`] gathers a [`Snapshot`] first, the store part on the blocking
//! pool). A gauge of a state is a "state set": one series per possible state, `1` for the
//! current one and `0` for the others, so `gsmgate_modem_state{state="ready"} == 0` is an alert
//! that fires whatever the modem turned into, and no series vanishes when the state changes.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::WebhookFigures;
use super::families::ModemLabel;
use crate::model::MessageKind;
use crate::modem::{ModemState, ModemStatus, Registration};
use crate::store::{CallOutcome, LiveState, MetricsFigures};

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every state a modem can be in, by its `ModemState::name`.
const MODEM_STATES: [&str; 7] = [
    "initializing",
    "ready",
    "suspect",
    "recovering",
    "vanished",
    "out_of_pool",
    "disabled",
];

/// Every registration status, by the word `gsmgate modems --json` uses.
const REGISTRATIONS: [(Registration, &str); 6] = [
    (Registration::NotSearching, "not_searching"),
    (Registration::Home, "home"),
    (Registration::Searching, "searching"),
    (Registration::Denied, "denied"),
    (Registration::Unknown, "unknown"),
    (Registration::Roaming, "roaming"),
];

const CALL_OUTCOMES: [CallOutcome; 5] = [
    CallOutcome::Missed,
    CallOutcome::Greeted,
    CallOutcome::Voicemail,
    CallOutcome::Rejected,
    CallOutcome::Failed,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModemStateLabel {
    modem: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistrationLabel {
    modem: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabel {
    state: &'static str,
    priority: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabel {
    modem: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabel {
    webhook: String,
}

/// What one scrape read.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub modems: Vec<ModemStatus>,
    /// `None` when the store did not answer (the scrape still reports the rest).
    pub figures: Option<MetricsFigures>,
    pub webhooks: Option<Vec<WebhookFigures>>,
    pub disk_writable: bool,
    pub start_time_s: f64,
    pub uptime_s: f64,
}

/// Usable for sending: `Ready` and, once known, registered (as the dispatch runner decides).
fn up(s: &ModemStatus) -> bool {
    s.state == ModemState::Ready && s.registration.is_none_or(Registration::registered)
}

fn bool_gauge(v: bool) -> i64 {
    i64::from(v)
}

/// Registers the scrape-time families of `snap` in `reg`.
pub(crate) fn register(reg: &mut Registry, snap: &Snapshot) {
    modems(reg, &snap.modems);
    if let Some(f) = &snap.figures {
        let pool: Vec<&str> = snap.modems.iter().map(|m| m.name.as_str()).collect();
        store_figures(reg, f, &pool);
    }
    let store_up = Gauge::<i64>::default();
    store_up.set(bool_gauge(snap.figures.is_some()));
    reg.register(
        "store_up",
        "1 when this scrape's database queries answered, else 0 (their metrics are missing)",
        store_up,
    );
    let writable = Gauge::<i64>::default();
    writable.set(bool_gauge(snap.disk_writable));
    reg.register(
        "state_disk_writable",
        "1 while the state disk takes writes; 0 while it is full or read-only (sending pauses)",
        writable,
    );
    if let Some(w) = &snap.webhooks {
        webhooks(reg, w);
    }
    let start = FloatGauge::default();
    start.set(snap.start_time_s);
    reg.register(
        "start_time_seconds",
        "When the daemon started, in unix seconds",
        start,
    );
    let uptime = FloatGauge::default();
    uptime.set(snap.uptime_s);
    reg.register("uptime_seconds", "Seconds since the daemon started", uptime);
    reg.register(
        "build",
        "The gsmgate version that is running",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
}

fn modems(reg: &mut Registry, modems: &[ModemStatus]) {
    let state = Family::<ModemStateLabel, Gauge>::default();
    let usable = Family::<ModemLabel, Gauge>::default();
    let registration = Family::<RegistrationLabel, Gauge>::default();
    let signal = Family::<ModemLabel, Gauge>::default();
    let errors = Family::<ModemLabel, Counter>::default();
    let recoveries = Family::<ModemLabel, Counter>::default();
    for m in modems {
        let now = m.state.name();
        for s in MODEM_STATES {
            state
                .get_or_create(&ModemStateLabel {
                    modem: m.name.clone(),
                    state: s,
                })
                .set(bool_gauge(s == now));
        }
        let label = ModemLabel::new(&m.name);
        usable.get_or_create(&label).set(bool_gauge(up(m)));
        // Unknown until the modem answered `+CREG?` / `+CSQ`: no series rather than a made-up one.
        if let Some(r) = m.registration {
            for (each, word) in REGISTRATIONS {
                registration
                    .get_or_create(&RegistrationLabel {
                        modem: m.name.clone(),
                        status: word,
                    })
                    .set(bool_gauge(each == r));
            }
        }
        if let Some(dbm) = m.dbm {
            signal.get_or_create(&label).set(i64::from(dbm));
        }
        errors.get_or_create(&label).inc_by(m.errors);
        recoveries.get_or_create(&label).inc_by(m.recoveries);
    }
    reg.register(
        "modem_state",
        "The modem's state: 1 for the current one, 0 for the others",
        state,
    );
    reg.register(
        "modem_up",
        "1 while the modem can send (ready and registered), else 0",
        usable,
    );
    reg.register(
        "modem_registration",
        "Network registration (27.007 +CREG): 1 for the current status; absent until known",
        registration,
    );
    reg.register(
        "modem_signal_dbm",
        "Signal strength in dBm from +CSQ (-113 + 2 * rssi, 27.007 8.5); absent until known",
        signal,
    );
    reg.register(
        "modem_errors",
        "Commands the modem answered with an error (since the daemon started)",
        errors,
    );
    reg.register(
        "modem_recoveries",
        "Recoveries from a stall: reset and re-init (since the daemon started)",
        recoveries,
    );
}

/// The store's figures; `pool` names the running modems, whose call counts start at zero.
fn store_figures(reg: &mut Registry, f: &MetricsFigures, pool: &[&str]) {
    let outbox = Family::<OutboxLabel, Gauge>::default();
    // Every state at every kind's default priority, so an empty queue reads 0, not "no data".
    for state in [LiveState::Queued, LiveState::Held, LiveState::InDoubt] {
        for kind in [
            MessageKind::Compliance,
            MessageKind::Reply,
            MessageKind::Direct,
            MessageKind::Bulk,
        ] {
            drop(outbox.get_or_create(&OutboxLabel {
                state: state.as_str(),
                priority: kind.default_priority(),
            }));
        }
    }
    for c in &f.outbox {
        outbox
            .get_or_create(&OutboxLabel {
                state: c.state.as_str(),
                priority: c.priority,
            })
            .set(i64::try_from(c.count).unwrap_or(i64::MAX));
    }
    reg.register(
        "outbox_messages",
        "Live outbox rows by state (queued, held in a paused broadcast, in_doubt) and priority",
        outbox,
    );

    let last = Family::<ModemLabel, FloatGauge>::default();
    for (modem, at_ms) in &f.last_submit {
        last.get_or_create(&ModemLabel::new(modem))
            .set(*at_ms as f64 / 1000.0);
    }
    reg.register(
        "modem_last_sent_timestamp_seconds",
        "When the modem last had an SMS part accepted, in unix seconds (kept across restarts)",
        last,
    );

    let balance = Family::<ModemLabel, FloatGauge>::default();
    for (modem, value) in &f.balances {
        balance.get_or_create(&ModemLabel::new(modem)).set(*value);
    }
    reg.register(
        "modem_balance",
        "The last balance of the modem's SIM read by balance_ussd, in the operator's currency; \
         absent until read",
        balance,
    );

    let calls = Family::<CallLabel, Counter>::default();
    for modem in pool {
        for outcome in CALL_OUTCOMES {
            drop(calls.get_or_create(&CallLabel {
                modem: (*modem).to_string(),
                outcome: outcome.as_str(),
            }));
        }
    }
    for c in &f.calls {
        calls
            .get_or_create(&CallLabel {
                modem: c.modem.clone(),
                outcome: c.outcome.as_str(),
            })
            .inc_by(c.count);
    }
    reg.register(
        "calls",
        "Finished voice calls by outcome (missed, greeted, voicemail, rejected, failed)",
        calls,
    );
}

fn webhooks(reg: &mut Registry, figures: &[WebhookFigures]) {
    let backlog = Family::<WebhookLabel, Gauge>::default();
    let delivered = Family::<WebhookLabel, Counter>::default();
    let failures = Family::<WebhookLabel, Counter>::default();
    for w in figures {
        let l = WebhookLabel {
            webhook: w.webhook.clone(),
        };
        backlog
            .get_or_create(&l)
            .set(i64::try_from(w.backlog).unwrap_or(i64::MAX));
        delivered.get_or_create(&l).inc_by(w.delivered_total);
        failures.get_or_create(&l).inc_by(w.failures_total);
    }
    reg.register(
        "webhook_backlog",
        "Webhook deliveries waiting to be made (queued or retrying)",
        backlog,
    );
    reg.register(
        "webhook_deliveries",
        "Webhook deliveries the receiver accepted",
        delivered,
    );
    reg.register(
        "webhook_failures",
        "Webhook events given up after the retry period",
        failures,
    );
}
