//! Rendering tests: what a scrape shows for given observations, events and snapshots, parsed
//! back from the text so the names, labels and values a dashboard or alert uses are pinned.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::dispatch::runner::Observation;
use crate::modem::{ModemState, ModemStatus, Profile, Registration};
use crate::protocol::Event;
use crate::store::{CallOutcome, MessageKind, NewOutbox};

/// `series → value` of a text-format render (`name{labels}` as written).
pub(crate) fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series and value");
            (series.to_string(), value.parse::<f64>().expect("a number"))
        })
        .collect()
}

fn metrics_with(store: Store, names: &[&str]) -> Metrics {
    // Handles of actors that are never run: status stays `initializing`.
    let handles = names
        .iter()
        .map(|n| {
            let (ev, _) = tokio::sync::mpsc::channel(1);
            let mc = crate::modem::ModemConfig::new(*n, "/nonexistent/tty");
            crate::modem::spawn(mc, ev, CancellationToken::new()).0
        })
        .collect();
    Metrics::new(store, handles, Instant::now())
}

fn metrics(names: &[&str]) -> Metrics {
    metrics_with(Store::open_in_memory().expect("store"), names)
}

fn value(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no series {series} in {:#?}", sorted(m)))
}

fn sorted(m: &HashMap<String, f64>) -> Vec<(&String, &f64)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

#[tokio::test]
async fn every_modem_has_zeroed_counters_before_anything_happens() {
    let text = metrics(&["m0", "m1"]).render().await;
    let m = parse(&text);
    for modem in ["m0", "m1"] {
        for name in [
            "gsmgate_sms_sent_total",
            "gsmgate_sms_failed_total",
            "gsmgate_sms_received_total",
            "gsmgate_sms_in_doubt_total",
            "gsmgate_sms_send_latency_seconds_count",
            "gsmgate_limiter_wait_seconds_count",
        ] {
            assert_eq!(value(&m, &format!("{name}{{modem=\"{modem}\"}}")), 0.0);
        }
        assert_eq!(
            value(
                &m,
                &format!("gsmgate_modem_state{{modem=\"{modem}\",state=\"initializing\"}}")
            ),
            1.0
        );
        assert_eq!(
            value(
                &m,
                &format!("gsmgate_modem_state{{modem=\"{modem}\",state=\"ready\"}}")
            ),
            0.0
        );
        assert_eq!(
            value(&m, &format!("gsmgate_modem_up{{modem=\"{modem}\"}}")),
            0.0
        );
    }
    assert_eq!(value(&m, "gsmgate_store_up"), 1.0);
    assert_eq!(value(&m, "gsmgate_state_disk_writable"), 1.0);
    assert_eq!(
        value(&m, "gsmgate_calls_total{modem=\"m1\",outcome=\"missed\"}"),
        0.0
    );
    let bulk = MessageKind::Bulk.default_priority();
    assert_eq!(
        value(
            &m,
            &format!("gsmgate_outbox_messages{{state=\"queued\",priority=\"{bulk}\"}}")
        ),
        0.0
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&m, &format!("gsmgate_build_info{{version=\"{version}\"}}")),
        1.0
    );
    assert!(value(&m, "gsmgate_start_time_seconds") > 1.7e9);
    assert!(
        text.contains("# TYPE gsmgate_sms_sent_total counter"),
        "{text}"
    );
    assert!(text.contains("# TYPE gsmgate_sms_send_latency_seconds histogram"));
}

#[tokio::test]
async fn observations_become_counters_and_histograms_per_modem() {
    let mx = metrics(&["m0", "m1"]);
    let o = mx.send_observer();
    o.observe("m0", Observation::Claimed);
    o.observe(
        "m0",
        Observation::Sent {
            parts: 2,
            since_claim: Duration::from_millis(1500),
        },
    );
    o.observe("m0", Observation::Settled);
    o.observe("m0", Observation::Claimed);
    o.observe(
        "m0",
        Observation::Sent {
            parts: 1,
            since_claim: Duration::from_millis(200),
        },
    );
    o.observe("m1", Observation::Claimed);
    o.observe("m1", Observation::Failed);
    o.observe("m1", Observation::InDoubt);
    o.observe("m1", Observation::Retried);
    o.observe("m1", Observation::Expired);
    o.observe("m1", Observation::Deferred);
    o.observe("m1", Observation::LimiterWait(Duration::from_secs(20)));
    let m = parse(&mx.render().await);

    assert_eq!(value(&m, "gsmgate_sms_sent_total{modem=\"m0\"}"), 2.0);
    assert_eq!(value(&m, "gsmgate_sms_parts_sent_total{modem=\"m0\"}"), 3.0);
    assert_eq!(value(&m, "gsmgate_sms_sent_total{modem=\"m1\"}"), 0.0);
    assert_eq!(
        value(&m, "gsmgate_sms_send_latency_seconds_count{modem=\"m0\"}"),
        2.0
    );
    assert!((value(&m, "gsmgate_sms_send_latency_seconds_sum{modem=\"m0\"}") - 1.7).abs() < 1e-9);
    assert_eq!(
        value(
            &m,
            "gsmgate_sms_send_latency_seconds_bucket{modem=\"m0\",le=\"0.25\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "gsmgate_sms_send_latency_seconds_bucket{modem=\"m0\",le=\"2.5\"}"
        ),
        2.0
    );
    // m0's second claim is still in hand; m1's has not settled either.
    assert_eq!(value(&m, "gsmgate_modem_sending{modem=\"m0\"}"), 1.0);
    assert_eq!(value(&m, "gsmgate_modem_sending{modem=\"m1\"}"), 1.0);
    for name in ["failed", "in_doubt", "retries", "deferred"] {
        assert_eq!(
            value(&m, &format!("gsmgate_sms_{name}_total{{modem=\"m1\"}}")),
            1.0,
            "{name}"
        );
    }
    assert_eq!(
        value(&m, "gsmgate_limiter_wait_seconds_count{modem=\"m1\"}"),
        1.0
    );
    assert_eq!(
        value(&m, "gsmgate_limiter_wait_seconds_sum{modem=\"m1\"}"),
        20.0
    );
}

#[tokio::test]
async fn bus_events_count_receipts_and_reports_without_numbers_in_labels() {
    let mx = metrics(&["m0"]);
    let bus = tokio::sync::broadcast::channel(16).0;
    let stop = CancellationToken::new();
    let follower = tokio::spawn(mx.clone().follow_events(bus.subscribe(), stop.clone()));
    for id in 0..3 {
        bus.send(Event::MessageIn {
            id,
            from: "+14155550101".into(),
            text: "hello".into(),
            modem: "m0".into(),
        })
        .expect("subscribed");
    }
    bus.send(Event::DeliveryReport {
        id: 1,
        to: "+14155550102".into(),
        status: "delivered".into(),
    })
    .expect("subscribed");
    // A modem that was not in the pool at start still gets its series.
    bus.send(Event::MessageIn {
        id: 9,
        from: "+14155550103".into(),
        text: "hi".into(),
        modem: "late".into(),
    })
    .expect("subscribed");
    drop(bus);
    follower.await.expect("follower ends when the bus closes");

    let text = mx.render().await;
    let m = parse(&text);
    assert_eq!(value(&m, "gsmgate_sms_received_total{modem=\"m0\"}"), 3.0);
    assert_eq!(value(&m, "gsmgate_sms_received_total{modem=\"late\"}"), 1.0);
    assert_eq!(
        value(
            &m,
            "gsmgate_sms_delivery_reports_total{status=\"delivered\"}"
        ),
        1.0
    );
    assert!(
        !text.contains("+1415"),
        "a phone number leaked into a label:\n{text}"
    );
}

#[tokio::test]
async fn the_store_figures_show_the_live_outbox_last_sends_and_calls() {
    let store = Store::open_in_memory().expect("store");
    let now = crate::time::now_ms();
    for n in ["+15550001", "+15550002"] {
        store
            .enqueue(&NewOutbox::new(n, "hi", MessageKind::Bulk, now))
            .expect("enqueue");
    }
    store
        .enqueue(&NewOutbox::new("+15550003", "hi", MessageKind::Reply, now))
        .expect("enqueue");
    let route = crate::store::ClaimRoute {
        pool: vec!["m0".into()],
        takeover: vec![],
    };
    let row = store
        .claim_next_routed("m0", now, &route)
        .expect("claim")
        .expect("a row");
    store
        .record_part_sent(row.id, 1, 1, 5, 1_700_000_000_500)
        .expect("part");
    store.mark_sent(row.id, now).expect("sent");
    let call = store.call_started("m0", None, now).expect("call");
    store
        .call_ended(call, CallOutcome::Voicemail, now)
        .expect("ended");

    let text = metrics_with(store, &["m0"]).render().await;
    let m = parse(&text);
    let bulk = MessageKind::Bulk.default_priority();
    let reply = MessageKind::Reply.default_priority();
    assert_eq!(
        value(
            &m,
            &format!("gsmgate_outbox_messages{{state=\"queued\",priority=\"{bulk}\"}}")
        ),
        2.0
    );
    // The reply was claimed first (higher priority) and sent: history, not live.
    assert_eq!(
        value(
            &m,
            &format!("gsmgate_outbox_messages{{state=\"queued\",priority=\"{reply}\"}}")
        ),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "gsmgate_modem_last_sent_timestamp_seconds{modem=\"m0\"}"
        ),
        1_700_000_000.5
    );
    assert_eq!(
        value(
            &m,
            "gsmgate_calls_total{modem=\"m0\",outcome=\"voicemail\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn a_modem_snapshot_becomes_state_registration_and_signal() {
    let mut ready = ModemStatus::new("m0", "/dev/ttyUSB0", Profile::Generic);
    ready.state = ModemState::Ready;
    ready.registration = Some(Registration::Roaming);
    ready.dbm = Some(-71);
    ready.errors = 4;
    ready.recoveries = 1;
    let mut denied = ModemStatus::new("m1", "/dev/ttyUSB1", Profile::Generic);
    denied.state = ModemState::Ready;
    denied.registration = Some(Registration::Denied);
    let lost = ModemStatus::new("m2", "/dev/ttyUSB2", Profile::Generic);
    let snap = Snapshot {
        modems: vec![ready, denied, lost],
        figures: None,
        webhooks: None,
        disk_writable: false,
        start_time_s: 1.0,
        uptime_s: 2.0,
    };
    let m = parse(&metrics(&[]).encode(&snap, Format::Prometheus));
    assert_eq!(value(&m, "gsmgate_modem_up{modem=\"m0\"}"), 1.0);
    // Ready but denied by the network: cannot send.
    assert_eq!(value(&m, "gsmgate_modem_up{modem=\"m1\"}"), 0.0);
    assert_eq!(
        value(
            &m,
            "gsmgate_modem_registration{modem=\"m0\",status=\"roaming\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "gsmgate_modem_registration{modem=\"m0\",status=\"home\"}"
        ),
        0.0
    );
    assert_eq!(value(&m, "gsmgate_modem_signal_dbm{modem=\"m0\"}"), -71.0);
    assert_eq!(value(&m, "gsmgate_modem_errors_total{modem=\"m0\"}"), 4.0);
    assert_eq!(
        value(&m, "gsmgate_modem_recoveries_total{modem=\"m0\"}"),
        1.0
    );
    // Unknown is absent, not a made-up value.
    assert!(!m.contains_key("gsmgate_modem_signal_dbm{modem=\"m2\"}"));
    assert!(!m.contains_key("gsmgate_modem_registration{modem=\"m2\",status=\"home\"}"));
    // The store did not answer: said so, and its metrics are missing rather than zero.
    assert_eq!(value(&m, "gsmgate_store_up"), 0.0);
    assert!(!m.keys().any(|k| k.starts_with("gsmgate_outbox_messages")));
    assert_eq!(value(&m, "gsmgate_state_disk_writable"), 0.0);
    assert_eq!(value(&m, "gsmgate_uptime_seconds"), 2.0);
}

#[derive(Debug)]
struct FakeWebhooks;

impl WebhookStats for FakeWebhooks {
    fn webhook_figures(&self, _store: &Store) -> crate::store::Result<Vec<WebhookFigures>> {
        Ok(vec![WebhookFigures {
            webhook: "crm".into(),
            backlog: 7,
            delivered_total: 40,
            failures_total: 3,
        }])
    }
}

#[tokio::test]
async fn webhook_figures_appear_once_a_source_is_registered() {
    let mx = metrics(&["m0"]);
    let before = mx.render().await;
    assert!(!before.contains("gsmgate_webhook"), "{before}");
    mx.set_webhook_stats(Arc::new(FakeWebhooks));
    let m = parse(&mx.render().await);
    assert_eq!(value(&m, "gsmgate_webhook_backlog{webhook=\"crm\"}"), 7.0);
    assert_eq!(
        value(&m, "gsmgate_webhook_deliveries_total{webhook=\"crm\"}"),
        40.0
    );
    assert_eq!(
        value(&m, "gsmgate_webhook_failures_total{webhook=\"crm\"}"),
        3.0
    );
}

#[tokio::test]
async fn openmetrics_is_offered_to_a_scraper_that_asks_for_it() {
    let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::from_accept(prom), Format::OpenMetrics);
    assert_eq!(Format::from_accept("text/plain"), Format::Prometheus);
    assert_eq!(Format::from_accept(""), Format::Prometheus);
    assert!(
        Format::OpenMetrics
            .content_type()
            .starts_with("application/openmetrics-text")
    );
    assert_eq!(Format::Prometheus.content_type(), CONTENT_TYPE);

    let text = metrics(&["m0"]).render_as(Format::OpenMetrics).await;
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE gsmgate_build info"), "{text}");
    assert!(
        text.contains("gsmgate_sms_sent_total{modem=\"m0\"} 0"),
        "{text}"
    );
}
