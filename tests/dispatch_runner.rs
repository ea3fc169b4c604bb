//! End-to-end tests of the dispatch runner: real send loops, real modem actors on the simulator's
//! pseudo-terminals, a real SQLite store in a temp dir.
//!
//! Conditions are polled with deadlines, never slept for. Time is not paused (that would break the
//! actors' real pty timeouts); instead the runner's `minute` is shortened so the per-minute
//! limiter is exercised against windows of a second or two, and the failover delay is given in
//! milliseconds. Everything else (limiter, claim, store, modem, PDU codec) is the production code.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gsmgate::config::{Config, InDoubtPolicy, Limits, QuietHours};
use gsmgate::dispatch::{Backoff, DispatchEvent, DispatchHandle, PoolModem, RunnerConfig, spawn};
use gsmgate::modem::{self, ModemConfig, ModemEvent, ModemHandle, ModemState, Timeouts};
use gsmgate::sim::{self, Fault, SimConfig, SimHandle, Simulator};
use gsmgate::store::{
    ClaimRoute, ConsentEvent, ConsentSource, MessageKind, NewMember, NewOutbox, OutboxRow,
    OutboxState, Store,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const PHONE: &str = "+15551230001";
const PHONE2: &str = "+15551230002";
const PHONE3: &str = "+15551230003";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap()
}

/// A simulator with `n` modems, one actor each (named A, B, ...), and a store.
struct Rig {
    sim: SimHandle,
    dir: tempfile::TempDir,
    store: Store,
    modems: Vec<PoolModem>,
    modem_cancel: CancellationToken,
    modem_tasks: TaskTracker,
}

fn name(i: usize) -> String {
    char::from(b'A' + i as u8).to_string()
}

async fn rig(n: usize, limits: Limits) -> Rig {
    rig_with(n, limits, |_| {}).await
}

async fn rig_with(n: usize, limits: Limits, tweak: impl Fn(&mut sim::ModemSpec)) -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = SimConfig::new(dir.path(), n, sim::Profile::Generic);
    cfg.control_socket = false;
    cfg.modems.iter_mut().for_each(tweak);
    let sim = Simulator::start(cfg).await.expect("simulator starts");
    let store = Store::open(dir.path().join("gsmgate.db")).expect("store");
    let modem_cancel = CancellationToken::new();
    let modem_tasks = TaskTracker::new();
    let mut modems = Vec::new();
    for (i, paths) in sim.paths().modems.iter().enumerate() {
        let mut mc = ModemConfig::new(name(i), &paths.at);
        mc.timeouts = Timeouts {
            health_interval: Duration::from_millis(400),
            ..Timeouts::fast()
        };
        let (tx, rx) = mpsc::channel(64);
        let (handle, actor) = modem::spawn(mc, tx, modem_cancel.clone());
        modem_tasks.spawn(actor.run());
        modem_tasks.spawn(drain(rx));
        modems.push(PoolModem {
            name: name(i),
            handle,
            limits,
            number: Some(paths.number.clone()),
        });
    }
    for m in &modems {
        wait_state(&m.handle, |s| *s == ModemState::Ready).await;
    }
    Rig {
        sim,
        dir,
        store,
        modems,
        modem_cancel,
        modem_tasks,
    }
}

/// Acks inbound messages (the daemon's job) so nothing piles up.
async fn drain(mut rx: mpsc::Receiver<ModemEvent>) {
    while let Some(ev) = rx.recv().await {
        match ev {
            ModemEvent::Sms { ack, .. } => {
                let _ = ack.send(());
            }
            ModemEvent::StatusReport { ack: Some(ack), .. } => {
                let _ = ack.send(());
            }
            _ => {}
        }
    }
}

async fn wait_state(h: &ModemHandle, pred: impl Fn(&ModemState) -> bool) {
    let mut rx = h.watch_status();
    let res = timeout(Duration::from_secs(20), async {
        loop {
            if pred(&rx.borrow_and_update().state) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(res.is_ok(), "state not reached; status {:?}", h.status());
}

/// Polls `f` until it holds or `within` passes.
async fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The test pace: quiet hours off, no jitter, a short hold, a fast back-off.
fn test_cfg() -> RunnerConfig {
    let mut cfg = Config::embedded_default().runner_config();
    cfg.quiet.hours = None;
    cfg.jitter_ms = 0;
    cfg.idle_tick = Duration::from_millis(500);
    cfg.modem_hold = Duration::from_millis(500);
    cfg.unavailable_hold = Duration::from_millis(200);
    cfg.backoff = Backoff {
        base_ms: 200,
        cap_ms: 1_000,
        max_attempts: 3,
        jitter_pct: 0,
    };
    cfg.failover_after = None;
    cfg.seed = 42;
    cfg
}

struct Running {
    handle: DispatchHandle,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    events: mpsc::Receiver<DispatchEvent>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .expect("send loops stop");
    }

    /// Events are sent after the store write they describe, so a test that has already seen the
    /// row change waits (with a deadline) for the event instead of draining once.
    async fn wait_event(&mut self, what: &str, pred: impl Fn(&DispatchEvent) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) if pred(&ev) => return,
                Ok(Some(_)) => continue,
                _ => panic!("no {what} event within 5 s"),
            }
        }
    }

    fn drain_events(&mut self) -> Vec<DispatchEvent> {
        let mut out = vec![];
        while let Ok(ev) = self.events.try_recv() {
            out.push(ev);
        }
        out
    }
}

fn run(r: &Rig, cfg: RunnerConfig) -> Running {
    let (tx, events) = mpsc::channel(256);
    let tracker = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let handle = spawn(
        r.store.clone(),
        r.modems.clone(),
        cfg,
        tx,
        &tracker,
        shutdown.clone(),
    )
    .expect("runner starts");
    Running {
        handle,
        tracker,
        shutdown,
        events,
    }
}

impl Rig {
    async fn stop(self) {
        self.modem_cancel.cancel();
        self.modem_tasks.close();
        let _ = timeout(Duration::from_secs(10), self.modem_tasks.wait()).await;
        self.sim.shutdown().await;
        drop(self.dir);
    }

    fn enqueue(&self, to: &str, text: &str, kind: MessageKind, pref: Option<&str>) -> i64 {
        self.store
            .enqueue(&NewOutbox {
                modem_pref: pref.map(str::to_string),
                ..NewOutbox::new(to, text, kind, now_ms())
            })
            .expect("enqueue")
    }

    fn row(&self, id: i64) -> OutboxRow {
        self.store.outbox_row(id).expect("row")
    }

    fn is_sent(&self, id: i64) -> bool {
        matches!(
            self.row(id).state,
            OutboxState::Sent | OutboxState::Delivered
        )
    }

    async fn wait_sent(&self, ids: &[i64], within: Duration) {
        eventually(within, "rows sent", || {
            ids.iter().all(|&id| self.is_sent(id))
        })
        .await;
    }

    async fn wait_state(&self, id: i64, state: OutboxState, within: Duration) {
        eventually(within, &format!("row {id} {state}"), || {
            self.row(id).state == state
        })
        .await;
    }

    fn received_texts(&self, phone: &str) -> Vec<String> {
        self.sim
            .received(Some(phone))
            .into_iter()
            .filter(|t| t.complete)
            .map(|t| t.text)
            .collect()
    }
}

fn limits(per_minute: u32) -> Limits {
    Limits {
        per_minute,
        per_hour: 1_000,
        per_day: 10_000,
    }
}

/// Sorted times never put more than `cap` in any half-open window of `len` ms.
fn max_in_window(times: &[i64], len: i64) -> usize {
    let mut t = times.to_vec();
    t.sort_unstable();
    (0..t.len())
        .map(|i| t[i..].iter().take_while(|&&x| x < t[i] + len).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_and_multipart_are_sent_with_one_mr_per_part() {
    let r = rig(1, Limits::DEFAULT).await;
    let mut running = run(&r, test_cfg());
    let reply = r.enqueue(PHONE, "Thanks, you are in!", MessageKind::Reply, None);
    let long: String = (0..40).map(|i| format!("word{i:02} ")).collect();
    let multi = r.enqueue(PHONE2, &long, MessageKind::Direct, None);
    running.handle.wake();
    r.wait_sent(&[reply, multi], Duration::from_secs(15)).await;

    eventually(Duration::from_secs(30), "texts at the phones", || {
        r.received_texts(PHONE)
            .contains(&"Thanks, you are in!".to_string())
            && r.received_texts(PHONE2).contains(&long)
    })
    .await;
    let parts = r.store.outbox_parts(multi).expect("parts");
    assert!(parts.len() > 1, "a multipart message: {parts:?}");
    assert!(
        parts
            .iter()
            .all(|p| p.total as usize == parts.len() && p.modem == "A")
    );
    let at_phone = r
        .sim
        .received(Some(PHONE2))
        .into_iter()
        .find(|t| t.text == long)
        .expect("received");
    let mrs: Vec<u8> = parts.iter().map(|p| p.mr).collect();
    assert_eq!(
        at_phone.message_references, mrs,
        "one MR per part, as the network saw them"
    );
    assert!(
        r.row(multi).concat_ref.is_some(),
        "reference kept for retries"
    );
    assert_eq!(r.store.outbox_parts(reply).expect("parts").len(), 1);
    assert_eq!(r.row(reply).attempts, 1);

    // The Sent event follows the store's commit, so it may still be on its way: gather until
    // both are in (or the deadline names what is missing).
    let mut events = Vec::new();
    let sent = |events: &[DispatchEvent], id: i64| {
        events.iter().any(
            |e| matches!(e, DispatchEvent::Sent { id: i, modem, .. } if *i == id && modem == "A"),
        )
    };
    eventually(Duration::from_secs(30), "Sent events for both", || {
        events.extend(running.drain_events());
        sent(&events, reply) && sent(&events, multi)
    })
    .await;
    // The counters follow the send log; read them until they have caught up (a loaded machine).
    let want = 1 + parts.len();
    eventually(Duration::from_secs(30), "the day's count", || {
        let stats = running.handle.modem_stats();
        stats.len() == 1 && stats[0].sent_last_day as usize == want
    })
    .await;
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_minute_limit_holds_in_every_window_also_across_a_restart() {
    // per_minute = 3 with a "minute" of 2 s: five messages need two windows.
    const WINDOW: i64 = 2_000;
    let r = rig(1, limits(3)).await;
    let mut cfg = test_cfg();
    cfg.minute = Duration::from_millis(WINDOW as u64);
    let running = run(&r, cfg.clone());
    let ids: Vec<i64> = (0..5)
        .map(|i| r.enqueue(&format!("+1555000010{i}"), "bulk", MessageKind::Bulk, None))
        .collect();
    running.handle.wake();
    r.wait_sent(&ids, Duration::from_secs(20)).await;
    let times = r.store.send_times_since("A", 0).expect("send log");
    assert_eq!(times.len(), 5);
    assert_eq!(max_in_window(&times, WINDOW), 3, "send log {times:?}");
    assert!(
        times[3] - times[0] >= WINDOW,
        "the 4th send waited for the window: {times:?}"
    );

    // A restart must not reset the budget: the new runner rebuilds the window from send_log.
    running.stop().await;
    let running = run(&r, cfg);
    let more: Vec<i64> = (0..3)
        .map(|i| r.enqueue(&format!("+1555000020{i}"), "bulk", MessageKind::Bulk, None))
        .collect();
    running.handle.wake();
    r.wait_sent(&more, Duration::from_secs(20)).await;
    let times = r.store.send_times_since("A", 0).expect("send log");
    assert_eq!(times.len(), 8);
    assert_eq!(max_in_window(&times, WINDOW), 3, "send log {times:?}");
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_takes_the_next_slot_ahead_of_a_bulk_backlog() {
    let r = rig(1, limits(2)).await;
    let mut cfg = test_cfg();
    cfg.minute = Duration::from_millis(1_500);
    let running = run(&r, cfg);
    let bulk: Vec<i64> = (0..6)
        .map(|i| r.enqueue(&format!("+1555000030{i}"), "news", MessageKind::Bulk, None))
        .collect();
    running.handle.wake();
    r.wait_sent(&bulk[..1], Duration::from_secs(10)).await;
    let reply = r.enqueue(PHONE, "HELP: reply STOP to leave", MessageKind::Reply, None);
    let committed = now_ms();
    let queued_at = r.row(reply).created_at;
    running.handle.wake();
    r.wait_sent(&bulk, Duration::from_secs(30)).await;
    r.wait_sent(&[reply], Duration::from_secs(5)).await;

    let start = |id: i64| r.store.outbox_parts(id).expect("parts")[0].sent_at;
    let reply_start = start(reply);
    let overtaken: Vec<i64> = bulk
        .iter()
        .copied()
        .filter(|&b| start(b) > reply_start)
        .collect();
    assert!(
        overtaken.len() >= 2,
        "a backlog was still queued: {overtaken:?}"
    );
    // Between the reply's enqueue and its start, at most the one bulk message whose claim was
    // already under way when the reply was committed may go; every claim after it takes the
    // reply (and with two slots per window that is the very next slot).
    let in_between: Vec<(i64, i64)> = bulk
        .iter()
        .map(|&b| (b, start(b)))
        .filter(|&(_, s)| queued_at <= s && s < reply_start)
        .collect();
    assert!(
        in_between.len() <= 1,
        "bulk started after the reply was queued ({queued_at}) and before it went out \
         ({reply_start}): {in_between:?}"
    );
    if let Some(&(b, _)) = in_between.first() {
        let claimed_at = r.row(b).claimed_at.expect("claimed");
        assert!(
            claimed_at <= committed,
            "bulk {b} was claimed at {claimed_at}, after the reply was committed ({committed})"
        );
    }
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_refusals_fail_or_retry_by_code() {
    let r = rig(1, Limits::DEFAULT).await;
    let mut running = run(&r, test_cfg());

    // CMS 21 (short message transfer rejected): permanent.
    r.sim
        .fault(
            0,
            &Fault::CmsError {
                code: 21,
                count: Some(1),
                rate: None,
            },
        )
        .expect("fault");
    let refused = r.enqueue(PHONE, "refused", MessageKind::Direct, None);
    running.handle.wake();
    r.wait_state(refused, OutboxState::Failed, Duration::from_secs(10))
        .await;
    let row = r.row(refused);
    let reason = row.last_error.unwrap_or_default();
    assert!(reason.contains("+CMS ERROR: 21"), "{reason}");
    assert_eq!(row.attempts, 1, "a permanent refusal is not retried");

    // CMS 42 (congestion): temporary, retried after the back-off, then sent.
    r.sim
        .fault(
            0,
            &Fault::CmsError {
                code: 42,
                count: Some(1),
                rate: None,
            },
        )
        .expect("fault");
    let retried = r.enqueue(PHONE, "second time lucky", MessageKind::Reply, None);
    running.handle.wake();
    r.wait_sent(&[retried], Duration::from_secs(10)).await;
    let row = r.row(retried);
    assert_eq!(row.attempts, 2, "one refusal, one success");
    assert!(
        r.received_texts(PHONE)
            .contains(&"second time lucky".to_string())
    );
    assert!(!r.received_texts(PHONE).contains(&"refused".to_string()));

    let events = running.drain_events();
    assert!(events.iter().any(
        |e| matches!(e, DispatchEvent::Failed { id, reason, .. } if *id == refused && reason.contains("21"))
    ));
    assert!(events.iter().any(
        |e| matches!(e, DispatchEvent::Retrying { id, reason, .. } if *id == retried && reason.contains("42"))
    ));
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_out_recipients_never_receive() {
    let r = rig(1, Limits::DEFAULT).await;
    let now = now_ms();
    // Opted out before the broadcast: cancelled when enqueued.
    r.store
        .record_consent(
            PHONE2,
            ConsentEvent::OptedOut,
            Some("STOP"),
            ConsentSource::Sms,
            now,
        )
        .expect("consent");
    let before = r.enqueue(PHONE2, "broadcast", MessageKind::Bulk, None);
    // Opted out while queued: the STOP cancels it.
    let queued = r.enqueue(PHONE3, "broadcast", MessageKind::Bulk, None);
    r.store
        .record_consent(
            PHONE3,
            ConsentEvent::OptedOut,
            Some("STOP"),
            ConsentSource::Sms,
            now,
        )
        .expect("consent");
    let running = run(&r, test_cfg());
    let control = r.enqueue(PHONE, "broadcast", MessageKind::Bulk, None);
    running.handle.wake();
    r.wait_sent(&[control], Duration::from_secs(10)).await;
    for id in [before, queued] {
        let row = r.row(id);
        assert_eq!(row.state, OutboxState::Cancelled);
        assert_eq!(row.last_error.as_deref(), Some("opted_out"));
    }
    assert!(r.received_texts(PHONE2).is_empty());
    assert!(r.received_texts(PHONE3).is_empty());
    running.stop().await;
    r.stop().await;
}

async fn member_homed_on_a(r: &Rig) {
    r.store
        .add_member(
            &NewMember {
                number: PHONE.into(),
                home_modem: Some("A".into()),
                ..NewMember::default()
            },
            ConsentSource::Cli,
            now_ms(),
        )
        .expect("member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_failover_a_message_waits_for_its_home_modem() {
    let r = rig(2, Limits::DEFAULT).await;
    member_homed_on_a(&r).await;
    let running = run(&r, test_cfg());
    r.sim.fault(0, &Fault::Unplug).expect("unplug A");
    wait_state(&r.modems[0].handle, |s| *s != ModemState::Ready).await;
    let sticky = r.enqueue(PHONE, "for you, via A", MessageKind::Direct, Some("A"));
    let free = r.enqueue(PHONE2, "anyone", MessageKind::Direct, None);
    running.handle.wake();
    r.wait_sent(&[free], Duration::from_secs(10)).await;
    assert_eq!(r.store.outbox_parts(free).expect("parts")[0].modem, "B");
    let row = r.row(sticky);
    assert_eq!(row.state, OutboxState::Queued, "waits for A: {row:?}");
    assert_eq!(row.attempts, 0);

    r.sim.fault(0, &Fault::Replug).expect("replug A");
    r.wait_sent(&[sticky], Duration::from_secs(20)).await;
    assert_eq!(r.store.outbox_parts(sticky).expect("parts")[0].modem, "A");
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_failover_the_message_goes_out_through_another_modem() {
    let r = rig(2, Limits::DEFAULT).await;
    member_homed_on_a(&r).await;
    let mut cfg = test_cfg();
    cfg.failover_after = Some(Duration::from_millis(300));
    cfg.move_home_on_failover = true;
    let running = run(&r, cfg);
    r.sim.fault(0, &Fault::Unplug).expect("unplug A");
    wait_state(&r.modems[0].handle, |s| *s != ModemState::Ready).await;
    let sticky = r.enqueue(PHONE, "for you, via B now", MessageKind::Direct, Some("A"));
    running.handle.wake();
    r.wait_sent(&[sticky], Duration::from_secs(10)).await;
    assert_eq!(r.store.outbox_parts(sticky).expect("parts")[0].modem, "B");
    let got = r
        .sim
        .received(Some(PHONE))
        .into_iter()
        .find(|t| t.text == "for you, via B now")
        .expect("received");
    assert_eq!(got.modem, Some(1));
    let member = r.store.member(PHONE).expect("member").expect("exists");
    assert_eq!(member.home_modem.as_deref(), Some("B"), "home moved");
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_bulk_stays_in_doubt_and_a_reply_is_resent() {
    let r = rig(1, Limits::DEFAULT).await;
    let bulk = r.enqueue(PHONE2, "broadcast", MessageKind::Bulk, None);
    let reply = r.enqueue(PHONE, "welcome", MessageKind::Reply, None);
    // A previous run claimed both and died before recording anything.
    let now = now_ms();
    for _ in 0..2 {
        r.store
            .claim_next_routed("A", now, &ClaimRoute::default())
            .expect("claim")
            .expect("a row");
    }
    let mut cfg = test_cfg();
    cfg.in_doubt_policy = InDoubtPolicy::ResendReplies;
    let running = run(&r, cfg);
    r.wait_sent(&[reply], Duration::from_secs(10)).await;
    assert!(r.received_texts(PHONE).contains(&"welcome".to_string()));
    let row = r.row(bulk);
    assert_eq!(row.state, OutboxState::InDoubt);
    // Not resent: wake the loop once more and let it find nothing to do.
    let control = r.enqueue(PHONE3, "later", MessageKind::Bulk, None);
    running.handle.wake();
    r.wait_sent(&[control], Duration::from_secs(10)).await;
    assert_eq!(r.row(bulk).state, OutboxState::InDoubt);
    assert!(r.received_texts(PHONE2).is_empty());
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_defer_bulk_but_not_replies() {
    let r = rig(1, Limits::DEFAULT).await;
    // A window around the current UTC hour, whatever time the test runs.
    let hour = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .hour() as u8;
    let mut cfg = test_cfg();
    cfg.quiet.hours = Some(QuietHours {
        start: (hour, 0),
        end: ((hour + 2) % 24, 0),
    });
    cfg.default_time_zone = "UTC".into();
    let mut running = run(&r, cfg);
    let bulk = r.enqueue(PHONE2, "tonight's meeting", MessageKind::Bulk, None);
    let reply = r.enqueue(PHONE, "HELP text", MessageKind::Reply, None);
    running.handle.wake();
    r.wait_sent(&[reply], Duration::from_secs(10)).await;
    eventually(Duration::from_secs(30), "bulk deferred", || {
        r.row(bulk).not_before > now_ms()
    })
    .await;
    let row = r.row(bulk);
    assert_eq!(row.state, OutboxState::Queued);
    assert_eq!(row.attempts, 0, "a deferral is not an attempt");
    assert_eq!(row.last_error.as_deref(), Some("quiet hours in UTC"));
    let end = jiff::Timestamp::from_millisecond(row.not_before).expect("ts");
    let end = jiff::tz::TimeZone::UTC.to_datetime(end);
    assert_eq!((end.hour() as u8, end.minute()), ((hour + 2) % 24, 0));
    running
        .wait_event(
            "Retrying for the deferred bulk row",
            |e| matches!(e, DispatchEvent::Retrying { id, .. } if *id == bulk),
        )
        .await;
    assert!(r.received_texts(PHONE2).is_empty());
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_that_vanishes_after_the_submit_leaves_bulk_in_doubt() {
    // The network takes 2 s to answer +CMGS (within the actor's 3 s sms_result timeout).
    let r = rig_with(1, Limits::DEFAULT, |m| {
        m.latency.send = sim::MsRange(2_000, 2_000);
    })
    .await;
    let mut running = run(&r, test_cfg());
    let bulk = r.enqueue(PHONE2, "maybe sent", MessageKind::Bulk, None);
    running.handle.wake();
    // Pull the modem while the SUBMIT is at the network, before +CMGS comes back.
    eventually(Duration::from_secs(30), "the network has the PDU", || {
        !r.sim.submitted().is_empty()
    })
    .await;
    r.sim.fault(0, &Fault::Unplug).expect("unplug");
    eventually(Duration::from_secs(30), "bulk decided", || {
        r.row(bulk).state != OutboxState::Claimed
    })
    .await;
    let row = r.row(bulk);
    assert_eq!(
        row.state,
        OutboxState::InDoubt,
        "never queued for a silent resend: {row:?}"
    );
    // The event follows the store's commit: gather until it is in.
    let mut events = Vec::new();
    eventually(Duration::from_secs(30), "the InDoubt event", || {
        events.extend(running.drain_events());
        events.iter().any(
            |e| matches!(e, DispatchEvent::InDoubt { id, modem, .. } if *id == bulk && modem == "A"),
        )
    })
    .await;
    // A reply in the same situation follows the in-doubt policy: queued again, sent after the
    // modem is back.
    r.sim.fault(0, &Fault::Replug).expect("replug");
    wait_state(&r.modems[0].handle, |s| *s == ModemState::Ready).await;
    let reply = r.enqueue(PHONE, "welcome", MessageKind::Reply, None);
    running.handle.wake();
    let n = r.sim.submitted().len();
    eventually(Duration::from_secs(30), "reply at the network", || {
        r.sim.submitted().len() > n
    })
    .await;
    r.sim.fault(0, &Fault::Unplug).expect("unplug again");
    eventually(Duration::from_secs(30), "reply decided", || {
        r.row(reply).state != OutboxState::Claimed
    })
    .await;
    r.sim.fault(0, &Fault::Replug).expect("replug again");
    r.wait_sent(&[reply], Duration::from_secs(20)).await;
    assert_eq!(r.row(reply).attempts, 2, "resent once after the doubt");
    assert_eq!(r.row(bulk).state, OutboxState::InDoubt);
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_cap_holds_across_modems() {
    const WINDOW: i64 = 2_000;
    let r = rig(2, limits(10)).await;
    let mut cfg = test_cfg();
    cfg.minute = Duration::from_millis(WINDOW as u64);
    cfg.pool_per_minute = Some(3);
    let running = run(&r, cfg);
    let ids: Vec<i64> = (0..6)
        .map(|i| r.enqueue(&format!("+1555000040{i}"), "pool", MessageKind::Bulk, None))
        .collect();
    running.handle.wake();
    r.wait_sent(&ids, Duration::from_secs(20)).await;
    let mut all = r.store.send_times_since("A", 0).expect("log");
    all.extend(r.store.send_times_since("B", 0).expect("log"));
    assert_eq!(all.len(), 6);
    assert_eq!(max_in_window(&all, WINDOW), 3, "pool send log {all:?}");
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_recipient_daily_cap_defers_without_counting_an_attempt() {
    let r = rig(1, Limits::DEFAULT).await;
    let mut cfg = test_cfg();
    cfg.per_recipient_per_day = Some(1);
    let running = run(&r, cfg);
    let first = r.enqueue(PHONE, "one", MessageKind::Bulk, None);
    running.handle.wake();
    r.wait_sent(&[first], Duration::from_secs(10)).await;
    // The compliance text first: the loop may be awake already (its idle tick), and a `second`
    // claimed before `stop` exists would be deferred from `first` alone. One modem's loop
    // claims one row at a time, so `second` is checked only after `stop` went out.
    let stop = r.enqueue(PHONE, "You are unsubscribed", MessageKind::Compliance, None);
    let second = r.enqueue(PHONE, "two", MessageKind::Direct, None);
    running.handle.wake();
    r.wait_sent(&[stop], Duration::from_secs(10)).await;
    eventually(Duration::from_secs(30), "second deferred", || {
        r.row(second).not_before > now_ms()
    })
    .await;
    let row = r.row(second);
    // The compliance text is exempt from the cap but counted (docs/dispatch.md): with a cap of
    // one, the next message may go a day after the latest of the two.
    let start = |id: i64| r.store.outbox_parts(id).expect("parts")[0].sent_at;
    let latest = start(first).max(start(stop));
    assert_eq!(row.state, OutboxState::Queued);
    assert_eq!(row.attempts, 0);
    assert_eq!(
        row.not_before,
        latest + 24 * 3600 * 1000,
        "a day after the last"
    );
    assert!(!r.received_texts(PHONE).contains(&"two".to_string()));
    running.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_between_parts_requeues_and_the_rest_goes_out_after_restart() {
    // Two parts per 3 s window: a three-part message waits for its third slot.
    let r = rig(1, limits(2)).await;
    let mut cfg = test_cfg();
    cfg.minute = Duration::from_millis(3_000);
    let running = run(&r, cfg.clone());
    // 45 × 8 characters: three GSM 7-bit parts of at most 153.
    let long: String = (0..45).map(|i| format!("piece{i:02} ")).collect();
    let id = r.enqueue(PHONE, &long, MessageKind::Direct, None);
    running.handle.wake();
    eventually(Duration::from_secs(30), "two parts sent", || {
        r.store.outbox_parts(id).expect("parts").len() == 2
    })
    .await;
    running.stop().await;
    let row = r.row(id);
    assert_eq!(row.state, OutboxState::Queued, "back in the queue: {row:?}");
    assert_eq!(row.attempts, 0);
    let reference = row.concat_ref;
    assert!(reference.is_some());

    let running = run(&r, cfg);
    r.wait_sent(&[id], Duration::from_secs(15)).await;
    let parts = r.store.outbox_parts(id).expect("parts");
    assert_eq!(parts.len(), 3);
    assert_eq!(
        r.row(id).concat_ref,
        reference,
        "same reference for the rest"
    );
    eventually(Duration::from_secs(30), "reassembled at the phone", || {
        r.received_texts(PHONE).contains(&long)
    })
    .await;
    assert_eq!(r.sim.submitted().len(), 3, "no part was sent twice");
    running.stop().await;
    r.stop().await;
}

/// A contact card (payload `vcard`) cut between parts by a shutdown: the rest goes out after the
/// restart with the stored concatenation reference, every part as 8-bit data to port 9204, and
/// the phone's parts join back to the vCard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcard_row_goes_out_as_port_9204_parts_and_a_resend_keeps_the_reference() {
    use gsmgate::pdu::{Body, Direction, InformationElement, Pdu, Tpdu};
    use gsmgate::store::OutboxPayload;

    let r = rig(1, limits(2)).await;
    let mut cfg = test_cfg();
    cfg.minute = Duration::from_millis(3_000);
    let running = run(&r, cfg.clone());
    // 300 octets: three parts of at most 128.
    let frame = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:\r\nEND:VCARD\r\n".len();
    let vcard = format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{}\r\nEND:VCARD\r\n",
        "x".repeat(300 - frame)
    );
    assert_eq!(vcard.len(), 300);
    let id = r
        .store
        .enqueue(
            &NewOutbox::new(PHONE, vcard.as_str(), MessageKind::Reply, now_ms())
                .with_payload(OutboxPayload::Vcard),
        )
        .expect("enqueue");
    running.handle.wake();
    eventually(Duration::from_secs(30), "two parts sent", || {
        r.store.outbox_parts(id).expect("parts").len() == 2
    })
    .await;
    running.stop().await;
    let row = r.row(id);
    assert_eq!(row.state, OutboxState::Queued, "back in the queue: {row:?}");
    assert_eq!(row.payload, OutboxPayload::Vcard);
    let reference = row.concat_ref.expect("reference stored");

    let running = run(&r, cfg);
    r.wait_sent(&[id], Duration::from_secs(15)).await;
    assert_eq!(r.row(id).concat_ref, Some(reference));
    let submitted = r.sim.submitted();
    assert_eq!(submitted.len(), 3, "no part was sent twice");
    let mut data = Vec::new();
    for (i, part) in submitted.iter().enumerate() {
        let pdu = Pdu::decode_hex(&part.pdu_hex, Direction::FromMobile).expect("decodes");
        let Tpdu::Submit(s) = pdu.tpdu else {
            panic!("not a submit")
        };
        assert_eq!(s.dcs.raw, 0x04);
        assert!(s.status_report_request, "same options as a text");
        assert_eq!(
            s.user_data.header,
            vec![
                InformationElement::Port16 {
                    destination: 9204,
                    source: 0
                },
                InformationElement::Concat8 {
                    reference: reference as u8,
                    total: 3,
                    sequence: i as u8 + 1
                }
            ]
        );
        let Body::Data(d) = s.user_data.body else {
            panic!("not data")
        };
        data.extend(d);
    }
    assert_eq!(data, vcard.as_bytes());
    running.stop().await;
    r.stop().await;
}

/// Records what the send loops report to their observer (the daemon's metrics).
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<(String, gsmgate::dispatch::runner::Observation)>>);

impl gsmgate::dispatch::runner::SendObserver for Recorder {
    fn observe(&self, modem: &str, what: gsmgate::dispatch::runner::Observation) {
        self.0.lock().unwrap().push((modem.to_string(), what));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_observer_sees_claims_sends_with_their_latency_and_limiter_waits() {
    use gsmgate::dispatch::runner::Observation;
    // One part per "minute" of 1 s: of three due messages, the 2nd and 3rd wait for the limiter.
    let r = rig(1, limits(1)).await;
    let recorder = std::sync::Arc::new(Recorder::default());
    let mut cfg = test_cfg();
    cfg.minute = Duration::from_millis(1_000);
    cfg.observer = Some(recorder.clone());
    let running = run(&r, cfg);
    let ids: Vec<i64> = (0..3)
        .map(|i| r.enqueue(&format!("+1555000030{i}"), "bulk", MessageKind::Bulk, None))
        .collect();
    running.handle.wake();
    r.wait_sent(&ids, Duration::from_secs(20)).await;
    running.stop().await;

    let seen: Vec<Observation> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .inspect(|(modem, _)| assert_eq!(modem, "A"))
        .map(|(_, o)| *o)
        .collect();
    let count = |f: fn(&Observation) -> bool| seen.iter().filter(|o| f(o)).count();
    assert_eq!(count(|o| matches!(o, Observation::Claimed)), 3, "{seen:?}");
    assert_eq!(count(|o| matches!(o, Observation::Settled)), 3, "{seen:?}");
    let sent: Vec<Duration> = seen
        .iter()
        .filter_map(|o| match o {
            Observation::Sent {
                parts: 1,
                since_claim,
            } => Some(*since_claim),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 3, "{seen:?}");
    assert!(sent.iter().all(|d| *d > Duration::ZERO), "{sent:?}");
    let waits: Vec<Duration> = seen
        .iter()
        .filter_map(|o| match o {
            Observation::LimiterWait(d) => Some(*d),
            _ => None,
        })
        .collect();
    // At least the two messages behind the first waited; never longer than the whole run.
    assert!(waits.len() >= 2, "{seen:?}");
    assert!(
        waits
            .iter()
            .all(|d| *d > Duration::ZERO && *d < Duration::from_secs(20)),
        "{waits:?}"
    );
    assert_eq!(
        count(|o| matches!(o, Observation::Failed | Observation::InDoubt)),
        0
    );
    // Claimed and Settled alternate: one message in hand at a time.
    let mut in_hand = 0i32;
    for o in &seen {
        match o {
            Observation::Claimed => in_hand += 1,
            Observation::Settled => in_hand -= 1,
            _ => {}
        }
        assert!((0..=1).contains(&in_hand), "{seen:?}");
    }
    r.stop().await;
}

/// Polls for `within` that row `id` is still queued, never attempted, and nothing was submitted.
async fn stays_unclaimed(r: &Rig, id: i64, within: Duration) {
    let until = Instant::now() + within;
    while Instant::now() < until {
        let row = r.row(id);
        assert_eq!(
            (row.state, row.attempts),
            (OutboxState::Queued, 0),
            "claimed before its modem's SIM was recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With `wait_for_sim` (the daemon's setting), a loop claims nothing for a `Ready` modem until
/// the SIM of the init it is `Ready` from has been recorded (`DispatchHandle::sim_recorded`),
/// and a re-init closes that gate again (docs/modems.md, "SIM identity"). Without the gate the
/// row goes out within milliseconds of the wake, long before the 2 s watched here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_for_sim_nothing_is_claimed_before_the_inits_sim_is_recorded() {
    let r = rig(1, Limits::DEFAULT).await;
    let mut cfg = test_cfg();
    cfg.wait_for_sim = true;
    let running = run(&r, cfg);
    let h = r.modems[0].handle.clone();
    let first = r.enqueue(PHONE, "one", MessageKind::Direct, None);
    running.handle.wake();
    // Four idle ticks and a wake: time enough for a claim the gate did not stop.
    stays_unclaimed(&r, first, Duration::from_secs(2)).await;
    let init = h.status().inits;
    assert!(init >= 1, "{:?}", h.status());
    running.handle.sim_recorded("A", init);
    r.wait_sent(&[first], Duration::from_secs(15)).await;

    // Unplugged and back: a new init, whose SIM is not recorded yet.
    r.sim.fault(0, &Fault::Unplug).unwrap();
    wait_state(&h, |s| *s != ModemState::Ready).await;
    r.sim.fault(0, &Fault::Replug).unwrap();
    wait_state(&h, |s| *s == ModemState::Ready).await;
    let again = h.status().inits;
    assert!(again > init, "{again} after {init}");
    let second = r.enqueue(PHONE, "two", MessageKind::Direct, None);
    running.handle.wake();
    stays_unclaimed(&r, second, Duration::from_secs(2)).await;
    // The record of the earlier init does not open the gate for this one.
    running.handle.sim_recorded("A", init);
    stays_unclaimed(&r, second, Duration::from_secs(1)).await;
    running.handle.sim_recorded("A", again);
    r.wait_sent(&[second], Duration::from_secs(15)).await;
    let texts: Vec<String> = r.sim.submitted().into_iter().map(|p| p.to).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    running.stop().await;
    r.stop().await;
}
