//! The Prometheus metrics end to end (docs/http-api.md "Metrics"): the daemon runs in-process
//! against simulated modems, sends and receives, and the counters in `render()` must match what
//! the simulated network saw; Debian's `promtool check metrics` must accept the text; and the
//! real `prometheus` server scrapes it over HTTP and answers the counters through its query API.
//! Where `promtool` or `prometheus` is not installed (CI installs the `prometheus` package, see
//! .ci/run) those two tests print a SKIPPED line instead of failing.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daemon_util::*;
use gsmgate::admin::protocol::SendArgs;
use gsmgate::metrics::Metrics;
use gsmgate::sim::Fault;
use gsmgate::store::{MessageKind, NewOutbox, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(30);

/// `series → value` of a text-format render (`name{labels}` as written).
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series and value");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn get(m: &HashMap<String, f64>, series: &str) -> Option<f64> {
    m.get(series).copied()
}

/// Messages the simulated network delivered from modem `index`.
fn delivered_from(gw: &Gateway, index: usize) -> usize {
    gw.sim()
        .received(None)
        .iter()
        .filter(|r| r.modem == Some(index))
        .count()
}

async fn send(gw: &Gateway, to: &str, text: &str, modem: &str) {
    gw.client()
        .await
        .send(SendArgs {
            to: to.into(),
            text: text.into(),
            modem: Some(modem.into()),
        })
        .await
        .unwrap();
}

/// A gateway that has sent two texts on sim0, failed one on sim0 (the network refuses it with
/// `+CMS ERROR: 21`), and received one text on sim1; returns once the network has the two.
async fn busy_gateway() -> Gateway {
    busy_gateway_with("").await
}

/// [`busy_gateway`] with `extra` appended to the test configuration (e.g. an `[http]` table).
async fn busy_gateway_with(extra: &str) -> Gateway {
    let dir = daemon_util::short_tempdir();
    // sim0 reads its balance once at start (gsmgate_modem_balance).
    let text = format!("{}\n{extra}\n", daemon_util::config_text(dir.path())).replace(
        "/sim/modem0\"\n",
        "/sim/modem0\"\nbalance_ussd = \"*100#\"\nbalance_every_hours = 744\n",
    );
    let cfg = gsmgate::config::Config::from_str(&text, "test.toml").unwrap();
    let mut opts = daemon_util::options(&cfg);
    opts.upkeep = gsmgate::daemon::upkeep::UpkeepTiming {
        tick: Duration::from_millis(100),
        hour: Duration::from_secs(1),
    };
    let gw = Gateway::start_in(dir, cfg, opts).await;
    send(&gw, BOB, "first", "sim0").await;
    send(&gw, BOB, "second", "sim0").await;
    poll("Bob has both texts", WAIT, || async {
        (delivered_from(&gw, 0) >= 2).then_some(())
    })
    .await;
    gw.sim()
        .fault(
            0,
            &Fault::CmsError {
                code: 21,
                count: Some(1),
                rate: None,
            },
        )
        .unwrap();
    send(&gw, CAROL, "refused", "sim0").await;
    gw.text_in(ALICE, 1, "Hello!");
    gw
}

/// Polls the render until `check` accepts it; returns that render.
async fn render_until(
    metrics: &Metrics,
    what: &str,
    check: impl Fn(&HashMap<String, f64>) -> bool,
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = metrics.render().await;
        if check(&parse(&text)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_what_the_network_saw() {
    let gw = busy_gateway().await;
    let metrics = gw.daemon.metrics();
    let text = render_until(&metrics, "one failure on sim0, one receipt on sim1", |m| {
        get(m, "gsmgate_sms_failed_total{modem=\"sim0\"}") == Some(1.0)
            && get(m, "gsmgate_sms_received_total{modem=\"sim1\"}") == Some(1.0)
    })
    .await;
    let m = parse(&text);
    assert_eq!(get(&m, "gsmgate_sms_sent_total{modem=\"sim0\"}"), Some(2.0));
    assert_eq!(
        get(&m, "gsmgate_sms_send_latency_seconds_count{modem=\"sim0\"}"),
        Some(2.0)
    );
    assert_eq!(
        get(&m, "gsmgate_sms_received_total{modem=\"sim0\"}"),
        Some(0.0)
    );
    assert_eq!(get(&m, "gsmgate_modem_up{modem=\"sim0\"}"), Some(1.0));
    assert_eq!(
        get(&m, "gsmgate_modem_state{modem=\"sim1\",state=\"ready\"}"),
        Some(1.0)
    );
    assert_eq!(
        get(
            &m,
            "gsmgate_modem_registration{modem=\"sim0\",status=\"home\"}"
        ),
        Some(1.0)
    );
    assert!(
        get(
            &m,
            "gsmgate_modem_last_sent_timestamp_seconds{modem=\"sim0\"}"
        )
        .unwrap()
            > 1.7e9
    );
    assert_eq!(get(&m, "gsmgate_store_up"), Some(1.0));
    assert!(get(&m, "gsmgate_uptime_seconds").unwrap() > 0.0);

    // Alice's welcome texts go out on sim1, the modem she texted (all enqueued in one
    // transaction, before the first can reach her): once nothing is queued, in doubt or in hand,
    // the counter says what the network saw.
    let text = render_until(
        &metrics,
        "sim1's sends counted as the network saw them",
        |m| {
            let live: f64 = m
                .iter()
                .filter(|(k, _)| k.starts_with("gsmgate_outbox_messages{"))
                .map(|(_, v)| v)
                .sum();
            let n = delivered_from(&gw, 1) as f64;
            n > 0.0
                && live == 0.0
                && get(m, "gsmgate_modem_sending{modem=\"sim1\"}") == Some(0.0)
                && get(m, "gsmgate_sms_sent_total{modem=\"sim1\"}") == Some(n)
        },
    )
    .await;
    assert!(
        !text.contains(ALICE) && !text.contains(BOB),
        "a number in a label:\n{text}"
    );

    // The signal comes from the modem's own +CSQ, refreshed by its health poll.
    gw.sim().fault(0, &Fault::Signal { rssi: 20 }).unwrap();
    render_until(&metrics, "sim0's signal at -73 dBm", |m| {
        get(m, "gsmgate_modem_signal_dbm{modem=\"sim0\"}") == Some(-73.0)
    })
    .await;
    gw.shutdown().await;
}

/// Where a Debian tool is; `None` prints the SKIPPED line.
fn tool(name: &str) -> Option<PathBuf> {
    let found = ["/usr/bin", "/usr/local/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        println!("SKIPPED: `{name}` is not installed (apt-get install -y prometheus)");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_check_metrics_accepts_the_render() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let gw = busy_gateway().await;
    let metrics = gw.daemon.metrics();
    let text = render_until(&metrics, "a send and a receipt counted", |m| {
        get(m, "gsmgate_sms_received_total{modem=\"sim1\"}") == Some(1.0)
            && get(m, "gsmgate_sms_sent_total{modem=\"sim0\"}") == Some(2.0)
    })
    .await;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool exits non-zero on a parse error and on any lint finding; it prints nothing when
    // the text is clean.
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n--- text ---\n{text}"
    );
    gw.shutdown().await;
}

/// The `prometheus` process this test started; killed by its PID when dropped.
struct Prometheus {
    child: Child,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts `binary` scraping `target` every second with the bearer `token` (read from a
    /// credentials file, as docs/http-api.md shows), its data and log in `dir`.
    fn start(
        binary: &Path,
        dir: &Path,
        target: SocketAddr,
        token: &str,
    ) -> (Prometheus, SocketAddr) {
        let config = dir.join("prometheus.yml");
        let credentials = dir.join("gsmgate.token");
        std::fs::write(&credentials, token).unwrap();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: gsmgate\n    authorization:\n\
                 \x20     credentials_file: {}\n    static_configs:\n\
                 \x20     - targets: ['{target}']\n",
                credentials.display()
            ),
        )
        .unwrap();
        // A free port: bound and released; prometheus takes it a moment later.
        let web = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (Prometheus { child, log }, web)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A plain HTTP/1.0 GET (the body of a 200 answer), enough for prometheus' query API.
async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.split(' ')
        .nth(1)
        .is_some_and(|code| code == "200")
        .then(|| body.to_string())
}

/// `modem → value` of an instant query's vector result.
async fn query(web: SocketAddr, promql: &str) -> Option<HashMap<String, f64>> {
    let body = http_get(web, &format!("/api/v1/query?query={promql}")).await?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = v.pointer("/data/result")?.as_array()?;
    result
        .iter()
        .map(|r| {
            let modem = r.pointer("/metric/modem")?.as_str()?.to_string();
            let value = r.pointer("/value/1")?.as_str()?.parse().ok()?;
            Some((modem, value))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_counters() {
    let Some(binary) = tool("prometheus") else {
        return;
    };
    // The daemon's own HTTP server, and a read token for the scraper: /metrics is not anonymous.
    let gw = busy_gateway_with("[http]\nlisten = \"127.0.0.1:0\"\n").await;
    let metrics = gw.daemon.metrics();
    render_until(&metrics, "the sends and the receipt counted", |m| {
        get(m, "gsmgate_sms_received_total{modem=\"sim1\"}") == Some(1.0)
            && get(m, "gsmgate_sms_failed_total{modem=\"sim0\"}") == Some(1.0)
    })
    .await;
    let token = gw
        .client()
        .await
        .tokens_create(gsmgate::admin::protocol::TokensCreateArgs {
            name: "prometheus".into(),
            scope: gsmgate::admin::protocol::Scope::Read,
        })
        .await
        .unwrap()
        .secret;
    let target = gw.daemon.http_addr().expect("http on");
    let dir = tempfile::tempdir().unwrap();
    let (prom, web) = Prometheus::start(&binary, dir.path(), target, &token);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = query(web, "gsmgate_sms_sent_total").await;
        let failed = query(web, "gsmgate_sms_failed_total").await;
        let received = query(web, "gsmgate_sms_received_total").await;
        let ok = sent.as_ref().and_then(|s| s.get("sim0").copied()) == Some(2.0)
            && failed.as_ref().and_then(|f| f.get("sim0").copied()) == Some(1.0)
            && received.as_ref().and_then(|r| r.get("sim1").copied()) == Some(1.0);
        if ok {
            break;
        }
        if Instant::now() > deadline {
            let targets = http_get(web, "/api/v1/targets").await;
            panic!(
                "prometheus never returned the counters: sent {sent:?}, failed {failed:?}, \
                 received {received:?}\ntargets: {targets:?}\nlog:\n{}",
                prom.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The histogram made it through too (OpenMetrics, which prometheus asked for).
    let latency = query(web, "gsmgate_sms_send_latency_seconds_count")
        .await
        .unwrap();
    assert_eq!(latency.get("sim0"), Some(&2.0), "{latency:?}");
    drop(prom);
    gw.shutdown().await;
}

/// Mean time of `render()` and of the store's part alone, over `runs` renders.
async fn time_renders(metrics: &Metrics, store: &Store, runs: u32) -> (Duration, Duration) {
    let t = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(metrics.render().await);
    }
    let per_render = t.elapsed() / runs;
    let t = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(store.metrics_figures().unwrap());
    }
    (per_render, t.elapsed() / runs)
}

/// The scrape cost the docs quote: `render()` over a store with 10,000 outbox rows, first all
/// queued (the worst case for the live-outbox count: every row is in the index it walks), then
/// all history (cancelled), which the scrape must not read at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_over_ten_thousand_outbox_rows_is_cheap() {
    let dir = short_tempdir();
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let now = gsmgate::time::now_ms();
    let rows: Vec<NewOutbox> = (0..10_000)
        .map(|i| NewOutbox::new(format!("+1415555{i:04}"), "hello", MessageKind::Bulk, now))
        .collect();
    let (broadcast, _) = store
        .create_broadcast("hello", "all", None, &rows, now)
        .unwrap();
    let metrics = Metrics::new(store.clone(), vec![], Instant::now());
    let queued = format!(
        "gsmgate_outbox_messages{{state=\"queued\",priority=\"{}\"}}",
        MessageKind::Bulk.default_priority()
    );
    let first = parse(&metrics.render().await);
    assert_eq!(get(&first, &queued), Some(10_000.0));
    let (queued_render, queued_store) = time_renders(&metrics, &store, 50).await;

    store.cancel_broadcast(broadcast, now).unwrap();
    assert_eq!(get(&parse(&metrics.render().await), &queued), Some(0.0));
    let (history_render, history_store) = time_renders(&metrics, &store, 50).await;
    println!(
        "render with 10,000 outbox rows: all queued {queued_render:?} per render (store \
         {queued_store:?}); all history {history_render:?} (store {history_store:?})"
    );
    // Not a timing assert (a loaded machine may be slow); a gross regression, such as a scan per
    // row, would take seconds.
    assert!(queued_render < Duration::from_secs(1), "{queued_render:?}");
}

/// The webhook layer's stand-in: one endpoint with fixed figures.
struct FakeWebhooks;

impl gsmgate::metrics::WebhookStats for FakeWebhooks {
    fn webhook_figures(
        &self,
        _store: &Store,
    ) -> gsmgate::store::Result<Vec<gsmgate::metrics::WebhookFigures>> {
        Ok(vec![gsmgate::metrics::WebhookFigures {
            webhook: "crm".into(),
            backlog: 2,
            delivered_total: 10,
            failures_total: 1,
        }])
    }
}

fn http_api_doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/http-api.md")).unwrap()
}

/// docs/http-api.md's tables list exactly the metrics a render has (with a webhook source
/// registered and every modem known), no more and no fewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_list_exactly_the_metrics_rendered() {
    let gw = busy_gateway().await;
    let metrics = gw.daemon.metrics();
    metrics.set_webhook_stats(std::sync::Arc::new(FakeWebhooks));
    let text = render_until(&metrics, "a send, a receipt and a balance counted", |m| {
        get(m, "gsmgate_sms_received_total{modem=\"sim1\"}") == Some(1.0)
            && get(m, "gsmgate_sms_sent_total{modem=\"sim0\"}") == Some(2.0)
            && get(m, "gsmgate_modem_balance{modem=\"sim0\"}") == Some(12.34)
    })
    .await;
    let rendered: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    let documented: std::collections::BTreeSet<String> = http_api_doc()
        .lines()
        .filter_map(|l| l.strip_prefix("| `gsmgate_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("gsmgate_{n}"))
        .collect();
    assert_eq!(rendered, documented);
    gw.shutdown().await;
}

/// The scrape configuration and alert rules docs/http-api.md shows are valid as written.
#[test]
fn the_documented_prometheus_config_and_alerts_pass_promtool() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let doc = http_api_doc();
    let section = doc.split("### Scraping it").nth(1).expect("the section");
    let blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(blocks.len(), 2, "a scrape config and a rule file");
    let dir = tempfile::tempdir().unwrap();
    // The documented token file, moved into the temp dir (promtool checks that it exists).
    let token_file = dir.path().join("gsmgate.token");
    std::fs::write(&token_file, "gsmgate_x").unwrap();
    let scrape = blocks[0].replace(
        "/etc/prometheus/gsmgate.token",
        &token_file.display().to_string(),
    );
    assert_ne!(
        scrape, blocks[0],
        "the documented config reads a token file"
    );
    std::fs::write(dir.path().join("prometheus.yml"), scrape).unwrap();
    std::fs::write(dir.path().join("gsmgate-alerts.yml"), blocks[1]).unwrap();
    let out = Command::new(promtool)
        .args(["check", "config", "prometheus.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("2 rules found"),
        "the rule file was read: {said}"
    );
}
