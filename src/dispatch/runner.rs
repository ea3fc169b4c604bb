//! The async pool runner: one send loop per modem that turns the outbox into real sends through
//! the modem actors, under the limits, priorities, sticky-sender, failover, quiet-hour, TTL, retry
//! and in-doubt rules of the pure core ([`super::limits`], [`super::quiet`], [`super::backoff`],
//! [`super::policy`]). This is the one scheduling model of the gateway; docs/dispatch.md, "The
//! pool runner", describes it for the daemon side.
//!
//! What it owns: the loops, each modem's live limiter (restored from the store's send log at
//! start, so limits hold across restarts), and the choice of what to do with every claimed row.
//! What it must not touch: inbound messages and status reports (the daemon feeds those to the
//! store), SQL (everything goes through [`Store`] methods, run through
//! `Store::call_inline_if_free`), the modem's serial port (only [`ModemHandle::send`] and its
//! status watch).
//!
//! One loop, per modem, in this order (`runner/send_loop.rs`):
//! 0. while the state disk refuses writes (`Store::write_health`), claim nothing: write the
//!    outcomes this loop still owes (`runner/owed.rs`), or probe with one small write, each idle
//!    tick; sending resumes by itself once a write succeeds;
//! 1. wait until the modem is `Ready` and registered, not held after a modem-level error, and
//!    (with [`RunnerConfig::wait_for_sim`]) the SIM of the init it is `Ready` from recorded;
//! 2. wait until its limiter (and the pool cap) allows the next part to start;
//! 3. claim the best due row it may carry (`Store::claim_next_with_parts`: the claim of
//!    `claim_next_routed`, the row's parts from an earlier attempt and the recipient's time zone
//!    now, for quiet hours, in one call; priority first, so a continuous bulk backlog never
//!    starves replies: every slot goes to the best due row at the moment it opens; sticky sender
//!    by `modem_pref`, failover once the home modem has been down for `failover_after`). The row is committed as claimed *before* `AT+CMGS`,
//!    so a crash leaves a trace the in-doubt policy handles at the next start (the claim's
//!    commit is fsynced by the loop's next write, the submit record, still before `AT+CMGS`:
//!    docs/store.md, "When a commit is fsynced");
//! 4. per-recipient daily cap and quiet hours (bulk, in the member's zone): defer by handing the
//!    claim back with `not_before` at the allowed instant, attempt not counted, never dropped; a
//!    deferral past the TTL expires the row instead;
//! 5. encode (PDU mode only; a multipart message keeps its concatenation reference in the store
//!    so a retry reuses it), then send part by part, each part gated by the limiter and recorded
//!    with its start instant (`record_part_sent`); the last part's record and `mark_sent` are one
//!    transaction, committed with the next claim (`mark_sent_and_claim_next`) or alone before
//!    the loop waits or stops;
//! 6. on failure, [`outcome::decide`] picks fail / retry with back-off / in doubt / release the
//!    row and hold the modem.
//!
//! Why part by part (one `ModemHandle::send` per part): the limiter counts part *starts*, and the
//! instant written to `send_log` must be the one the live limiter counted, for every part, or a
//! restart could rebuild a looser history; a part also waits for its own slot when a message has
//! more parts than a cap. The price is that `AT+CMMS=1` (keep the link open between parts) is not
//! used. The recorded start is the hand-over to the actor, which the actor's one-command queue
//! puts at most one command (a health poll) before the real `AT+CMGS`.
//!
//! Waking: an idle loop sleeps until [`DispatchHandle::wake`], the next `not_before` in the
//! outbox, the next failover instant, a modem status change, or a safety tick
//! ([`RunnerConfig::idle_tick`]); it never polls faster than that. Shutdown: the token stops the
//! loops between sends; a part in flight is finished (the actor bounds the wait) and its outcome
//! recorded; a multipart message cut between parts goes back to `queued` with its sent parts
//! recorded, and only the missing parts go out later (same modem, same reference).
//!
//! Events go out with `try_send` on the daemon's `mpsc` channel: they are notifications for
//! `watch`, the store is the record, and a slow reader must never stall sending (a full channel
//! drops the event with a warning). Metrics are not events: claims, outcomes, the claim-to-OK
//! time and limiter waits go synchronously to [`RunnerConfig::observer`] (`runner/observe.rs`).

mod observe;
mod outcome;
mod owed;
mod pool;
mod send_loop;
mod sites;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::policy::resend_flags;
use super::settings::{DispatchConfig, InDoubtPolicy, Limits};
use super::{
    Backoff, DAY, DispatchError, HOUR, Millis, QuietPolicy, RateLimiter, Window, XorShift64,
};
use crate::model::MessageKind;
use crate::modem::ModemHandle;
use crate::pdu::Validity;
use crate::store::{RecoveryPolicy, RecoveryReport, Store, StoreError};
use crate::time::now_ms;
pub use observe::{Observation, SendObserver};
use pool::{ModemRt, PoolState};

/// One modem of the pool, as the daemon hands it over.
#[derive(Debug, Clone)]
pub struct PoolModem {
    /// The configured modem name (`[[modem]] name`), also the store's `claimed_by` and `send_log`
    /// key and the value of `modem_pref` / `members.home_modem`.
    pub name: String,
    pub handle: ModemHandle,
    /// `per_minute` / `per_hour` / `per_day` of that modem.
    pub limits: Limits,
    /// The SIM's own number, if configured (geomatch when assigning homes; informational here).
    pub number: Option<String>,
}

/// What the runner reports upward; the daemon maps these to admin `watch` events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DispatchEvent {
    /// Every part accepted by the modem (`+CMGS`).
    Sent {
        id: i64,
        to: String,
        modem: String,
        parts: u32,
    },
    /// Final failure.
    Failed { id: i64, to: String, reason: String },
    /// Back in the queue until `next_attempt_at` (back-off, quiet hours, a recipient cap, or a
    /// modem that could not send).
    Retrying {
        id: i64,
        to: String,
        reason: String,
        next_attempt_at: i64,
    },
    /// The PDU may or may not have reached the network; the in-doubt policy decides.
    InDoubt {
        id: i64,
        to: String,
        modem: String,
        reason: String,
    },
    /// Its TTL ended before it could go out.
    Expired { id: i64, to: String },
}

/// Settings of the runner. [`RunnerConfig::new`] builds them from `[dispatch]` and
/// `[daemon] in_doubt_policy`; the extra knobs (`minute`, `idle_tick`, holds) exist so tests can
/// run the real loops at a faster pace.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub backoff: Backoff,
    pub quiet: QuietPolicy,
    /// IANA zone for recipients whose member record has none (`dispatch.default_time_zone`).
    pub default_time_zone: String,
    pub per_recipient_per_day: Option<u32>,
    pub pool_per_minute: Option<u32>,
    /// Up to this many ms of random pause after each part on a modem.
    pub jitter_ms: u64,
    /// Fail over when a home modem has been down this long; `None` = never.
    pub failover_after: Option<Duration>,
    pub move_home_on_failover: bool,
    pub in_doubt_policy: InDoubtPolicy,
    /// The length of what the limits call a minute (`per_minute`, `pool_per_minute`): 60 s.
    /// Tests shorten it to exercise the real loops against a window in seconds.
    pub minute: Duration,
    /// Longest idle sleep without a wake-up (safety net against a lost notification).
    pub idle_tick: Duration,
    /// How long a modem is held after a modem-level refusal (no service, SIM failure, ...).
    pub modem_hold: Duration,
    /// How long a modem is held after it was unavailable or stalled before a submit.
    pub unavailable_hold: Duration,
    /// Request status reports (TP-SRR).
    pub status_reports: bool,
    /// TP-VP of every part.
    pub validity: Validity,
    /// Seeds jitter, back-off jitter and concatenation references.
    pub seed: u64,
    /// Told about claims, outcomes and limiter waits (the daemon's metrics); `None` = nobody.
    pub observer: Option<Arc<dyn SendObserver>>,
    /// This gateway's site name when several share one database (docs/scale-out.md); `None` on
    /// a single Pi, where the runner never reads or writes the site tables.
    pub site: Option<String>,
    /// How often a site writes its heartbeats and reads the other sites' (10 s).
    pub heartbeat_every: Duration,
    /// Claim for a modem only after [`DispatchHandle::sim_recorded`] was told about the init it
    /// is `Ready` from: the SIM's rows (homes, sticky senders, send log) are under this modem's
    /// name and its limiter is the SIM's, so no row of the SIM that left is sent from the one
    /// that came, nor a budget taken from the wrong history (docs/modems.md, "SIM identity").
    /// The daemon sets it, as it records every init's SIM; off for a runner without a daemon.
    pub wait_for_sim: bool,
}

impl RunnerConfig {
    /// The runner's settings for `[dispatch]` (`d`) and the daemon's in-doubt policy, with the
    /// production timings (a real minute, a 5 s idle tick).
    pub fn new(d: &DispatchConfig, in_doubt_policy: InDoubtPolicy) -> RunnerConfig {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |t| t.as_nanos() as u64);
        RunnerConfig {
            backoff: Backoff::from_config(&d.retry),
            quiet: QuietPolicy::from_config(d),
            default_time_zone: d.default_time_zone.clone(),
            per_recipient_per_day: d.per_recipient_per_day,
            pool_per_minute: d.pool_per_minute,
            jitter_ms: d.jitter_ms,
            failover_after: d
                .failover_after_minutes
                .map(|m| Duration::from_secs(u64::from(m) * 60)),
            move_home_on_failover: d.move_home_on_failover,
            in_doubt_policy,
            minute: Duration::from_secs(60),
            idle_tick: Duration::from_secs(5),
            modem_hold: Duration::from_secs(60),
            unavailable_hold: Duration::from_secs(2),
            status_reports: true,
            validity: Validity::None,
            seed,
            observer: None,
            site: None,
            heartbeat_every: Duration::from_secs(10),
            wait_for_sim: false,
        }
    }

    fn minute_ms(&self) -> Millis {
        ms(self.minute).max(1)
    }

    /// The store's recovery policy for this in-doubt policy.
    pub fn recovery_policy(&self) -> RecoveryPolicy {
        let mut p = RecoveryPolicy {
            resend_reply: false,
            resend_compliance: false,
            resend_direct: false,
            resend_bulk: false,
        };
        for (kind, resend) in resend_flags(self.in_doubt_policy) {
            match kind {
                MessageKind::Compliance => p.resend_compliance = resend,
                MessageKind::Reply => p.resend_reply = resend,
                MessageKind::Direct => p.resend_direct = resend,
                MessageKind::Bulk => p.resend_bulk = resend,
            }
        }
        p
    }
}

/// Per-modem figures for `gsmgate modems` / `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModemSendStats {
    pub modem: String,
    /// Ready, registered and not held.
    pub ready: bool,
    /// Held after a modem-level error until then (ms), with the reason.
    pub held_until: Option<i64>,
    pub hold_reason: Option<String>,
    /// Part starts in the last minute / hour / 24 hours (rolling windows, as the limits count).
    pub sent_last_minute: u32,
    pub sent_last_hour: u32,
    pub sent_last_day: u32,
    /// Earliest instant (ms) the limits allow the next part; `None` if a cap of 0 forbids it.
    pub next_allowed_at: Option<i64>,
}

/// Errors of the runner: start-up only; once running, errors are logged and retried.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("dispatch runner: store error while {what}: {source}")]
    Store {
        what: &'static str,
        #[source]
        source: Box<StoreError>,
    },
    #[error("dispatch runner: {0}")]
    Config(#[from] DispatchError),
    #[error("dispatch runner: modem name {0:?} appears twice in the pool")]
    DuplicateModem(String),
}

/// What every loop shares.
struct Shared {
    store: Store,
    cfg: RunnerConfig,
    default_tz: jiff::tz::TimeZone,
    names: Vec<String>,
    /// The other sites' modems and which of them this site may take over (`runner/sites.rs`);
    /// empty on a single Pi.
    remote: Mutex<sites::RemoteView>,
    state: Mutex<PoolState>,
    /// One per loop: `notify_one` keeps a permit, so a wake between a loop's empty claim and its
    /// sleep is not lost.
    wakers: Vec<Arc<Notify>>,
    events: mpsc::Sender<DispatchEvent>,
    /// Outcomes the loops could not write yet (state disk full or read-only; `runner/owed.rs`).
    owed: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, PoolState> {
        // A panic inside a critical section cannot leave the limiter half-updated in a way that
        // breaks a limit (records are single pushes), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remote(&self) -> MutexGuard<'_, sites::RemoteView> {
        self.remote.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake_all(&self) {
        for w in &self.wakers {
            w.notify_one();
        }
    }

    fn emit(&self, ev: DispatchEvent) {
        match self.events.try_send(ev) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                tracing::warn!(?ev, "dispatch event channel full; event dropped");
            }
        }
    }
}

/// A handle on the running loops.
#[derive(Clone)]
pub struct DispatchHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DispatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchHandle")
            .field("modems", &self.shared.names)
            .finish()
    }
}

impl DispatchHandle {
    /// Something new is in the outbox (call after every enqueue): idle loops claim at once.
    pub fn wake(&self) {
        self.shared.wake_all();
    }

    /// Rebuilds `modem`'s limiter from the store's send log: the SIM in it changed and its rows
    /// were moved to this modem's name (`Store::record_sim`), so the budget that applies is the
    /// new SIM's. Reads the store: call it from a blocking context.
    pub fn reload_limits(&self, modem: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let times = self
            .shared
            .store
            .send_times_since(modem, now.saturating_sub(DAY))?;
        let mut st = self.shared.state();
        if let Some(m) = st.modems.iter_mut().find(|m| m.name == modem) {
            m.limiter.replace_history(times);
        }
        Ok(())
    }

    /// The daemon recorded the SIM that `modem`'s init number `init` (`ModemStatus::inits`)
    /// read — or found none, or failed to: a broken SIM read must not stop sending for good —
    /// and reloaded its limits: with [`RunnerConfig::wait_for_sim`], its loop may claim from now
    /// while the modem stays `Ready` from that init.
    pub fn sim_recorded(&self, modem: &str, init: u64) {
        let Some(i) = self.shared.names.iter().position(|n| n == modem) else {
            return;
        };
        if let Some(m) = self.shared.state().modems.get_mut(i) {
            m.sim_recorded = Some(init);
        }
        if let Some(w) = self.shared.wakers.get(i) {
            w.notify_one();
        }
    }

    /// Per-modem figures for `gsmgate modems` / `status`.
    pub fn modem_stats(&self) -> Vec<ModemSendStats> {
        let now = now_ms();
        let minute = self.shared.cfg.minute_ms();
        let st = self.shared.state();
        let count =
            |l: &RateLimiter, w: Millis| u32::try_from(l.count_in(now, w)).unwrap_or(u32::MAX);
        st.modems
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let held = st.held_until(i, now);
                ModemSendStats {
                    modem: m.name.clone(),
                    ready: m.ready && held.is_none(),
                    held_until: held,
                    hold_reason: held.and(m.hold_reason.clone()),
                    sent_last_minute: count(&m.limiter, minute),
                    sent_last_hour: count(&m.limiter, HOUR),
                    sent_last_day: count(&m.limiter, DAY),
                    next_allowed_at: st.next_allowed(i, now),
                }
            })
            .collect()
    }

    /// Send outcomes known in memory but not yet written (the state disk refused them); they
    /// are written as soon as it takes writes again, and sending is paused meanwhile.
    pub fn unrecorded(&self) -> usize {
        self.shared.owed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The pool's modem names, in order.
    pub fn modems(&self) -> &[String] {
        &self.shared.names
    }
}

/// Spawns the per-modem send loops on `tracker`; they stop when `shutdown` is cancelled
/// (finishing an in-flight send first).
///
/// Before the first claim, synchronously (this is start-up, one short transaction each): runs
/// `recover_after_restart` with the configured in-doubt policy (rows a crash left `claimed`
/// become `in_doubt`; replies and compliance are queued again by default, bulk is not), and
/// rebuilds every modem's limiter from `send_log` (and the pool limiter from all modems), so a
/// restart never resets a budget.
pub fn spawn(
    store: Store,
    modems: Vec<PoolModem>,
    cfg: RunnerConfig,
    events: mpsc::Sender<DispatchEvent>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<DispatchHandle, RunnerError> {
    let (handle, report) = start(store, modems, cfg, events, tracker, shutdown)?;
    if report.found_claimed > 0 {
        tracing::warn!(
            found = report.found_claimed,
            requeued = report.requeued,
            in_doubt = report.left_in_doubt,
            "sends were in flight at the last stop"
        );
    }
    Ok(handle)
}

fn start(
    store: Store,
    modems: Vec<PoolModem>,
    cfg: RunnerConfig,
    events: mpsc::Sender<DispatchEvent>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<(DispatchHandle, RecoveryReport), RunnerError> {
    let mut seen = HashSet::new();
    for m in &modems {
        if !seen.insert(m.name.as_str()) {
            return Err(RunnerError::DuplicateModem(m.name.clone()));
        }
    }
    let default_tz = super::time_zone(&cfg.default_time_zone)?;
    let now = now_ms();
    let store_err = |what| {
        move |source| RunnerError::Store {
            what,
            source: Box::new(source),
        }
    };
    let names: Vec<String> = modems.iter().map(|m| m.name.clone()).collect();
    let report = match &cfg.site {
        None => store
            .recover_after_restart(&cfg.recovery_policy(), now)
            .map_err(store_err("recovering in-flight sends"))?,
        Some(site) => {
            let alive_after = now.saturating_sub(sites::dead_after_ms(&cfg));
            store
                .register_site(site, &names, now, alive_after, env!("CARGO_PKG_VERSION"))
                .map_err(store_err("registering the site"))?;
            // This site's own rows from before the restart, and any a silent site left.
            store
                .recover_orphaned_claims(
                    site,
                    alive_after,
                    &cfg.recovery_policy(),
                    now,
                    "in flight at restart",
                )
                .map_err(store_err("recovering in-flight sends"))?
        }
    };
    let minute = cfg.minute_ms();
    let mut rts = Vec::with_capacity(modems.len());
    for (i, m) in modems.iter().enumerate() {
        let mut limiter = RateLimiter::with_windows(&[
            Window {
                len_ms: minute,
                cap: m.limits.per_minute,
            },
            Window::per_hour(m.limits.per_hour),
            Window::per_day(m.limits.per_day),
        ])
        .with_jitter(cfg.jitter_ms, XorShift64::new(cfg.seed ^ (i as u64 + 1)));
        let times = store
            .send_times_since(&m.name, now.saturating_sub(DAY))
            .map_err(store_err("restoring the send log"))?;
        limiter.restore(times);
        rts.push(ModemRt::new(m.name.clone(), limiter));
    }
    let pool_limiter = match cfg.pool_per_minute {
        None => None,
        Some(cap) => {
            let mut p = RateLimiter::with_windows(&[Window {
                len_ms: minute,
                cap,
            }]);
            p.restore(
                store
                    .all_send_times_since(now.saturating_sub(minute))
                    .map_err(store_err("restoring the send log"))?,
            );
            Some(p)
        }
    };
    let shared = Arc::new(Shared {
        store,
        default_tz,
        names,
        remote: Mutex::new(sites::RemoteView::default()),
        state: Mutex::new(PoolState {
            modems: rts,
            pool_limiter,
        }),
        wakers: modems.iter().map(|_| Arc::new(Notify::new())).collect(),
        events,
        cfg,
        owed: std::sync::atomic::AtomicUsize::new(0),
    });
    for (i, m) in modems.into_iter().enumerate() {
        let lp = send_loop::SendLoop::new(shared.clone(), i, m.handle, shutdown.clone());
        tracker.spawn(lp.run());
    }
    if shared.cfg.site.is_some() {
        tracker.spawn(sites::run(shared.clone(), shutdown));
    }
    Ok((DispatchHandle { shared }, report))
}

fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_map_dispatch_and_in_doubt_policy() {
        let d = DispatchConfig {
            failover_after_minutes: Some(3),
            pool_per_minute: Some(12),
            ..DispatchConfig::default()
        };
        let r = RunnerConfig::new(&d, InDoubtPolicy::ResendAll);
        assert_eq!(r.failover_after, Some(Duration::from_secs(180)));
        assert_eq!(r.pool_per_minute, Some(12));
        assert_eq!(r.minute, Duration::from_secs(60));
        assert_eq!(r.backoff, Backoff::from_config(&d.retry));
        assert_eq!(r.default_time_zone, d.default_time_zone);
        let p = r.recovery_policy();
        assert!(p.resend_bulk && p.resend_direct && p.resend_reply && p.resend_compliance);

        let p = RunnerConfig::new(&d, InDoubtPolicy::ResendReplies).recovery_policy();
        assert_eq!(p, RecoveryPolicy::default());
        let p = RunnerConfig::new(&d, InDoubtPolicy::ResendNone).recovery_policy();
        assert!(!(p.resend_bulk || p.resend_direct || p.resend_reply || p.resend_compliance));
    }

    #[test]
    fn spawn_refuses_a_bad_zone_or_a_duplicate_modem_name() {
        let store = Store::open_in_memory().expect("store");
        let mut cfg = RunnerConfig::new(&DispatchConfig::default(), InDoubtPolicy::default());
        cfg.default_time_zone = "Mars/Olympus".into();
        let (tx, _rx) = mpsc::channel(1);
        let tracker = TaskTracker::new();
        let err = spawn(store, vec![], cfg, tx, &tracker, CancellationToken::new())
            .expect_err("bad zone");
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");

        // Handles of actors that are never run: spawn must refuse before touching them.
        let pm = |name: &str| {
            let (ev, _) = mpsc::channel(1);
            let mc = crate::modem::ModemConfig::new(name, "/nonexistent/tty");
            let (handle, _actor) = crate::modem::spawn(mc, ev, CancellationToken::new());
            PoolModem {
                name: name.to_string(),
                handle,
                limits: Limits::DEFAULT,
                number: None,
            }
        };
        let (tx, _rx) = mpsc::channel(1);
        let err = spawn(
            Store::open_in_memory().expect("store"),
            vec![pm("A"), pm("A")],
            RunnerConfig::new(&DispatchConfig::default(), InDoubtPolicy::default()),
            tx,
            &tracker,
            CancellationToken::new(),
        )
        .expect_err("duplicate");
        assert!(
            matches!(err, RunnerError::DuplicateModem(ref n) if n == "A"),
            "{err}"
        );
        assert!(tracker.is_empty(), "nothing spawned");
    }
}
