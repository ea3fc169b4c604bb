//! One modem's send loop: readiness → limiter → claim → checks → encode → send part by part →
//! record. The order and the reasons are in the parent module's docs; this file is the mechanics.
//! Encoding follows the row's payload: a text via `pdu::submits_for_text`, a vCard (contact card
//! `vcard_sms`) as 8-bit port-9204 data via `pdu::submits_for_port_data`; both get the same
//! options and the stored concatenation reference.
//!
//! Every store call goes through `Store::call_inline_if_free` (rusqlite is synchronous): on this
//! worker when no other worker is inside the store and the connection is free, else on tokio's
//! blocking pool; at most one worker ever waits on an fsync, and a hand-off saved is two thread
//! switches saved per call, two calls per SMS (docs/daemon.md, "Footprint"). A store error
//! never panics the loop: it is logged and the loop backs off one idle tick. Outcomes go through
//! [`SendLoop::record`]: when the state disk refuses the write (full, read-only), the outcome is
//! kept in memory (`owed.rs`) and written as soon as writes work again, and the loop claims
//! nothing meanwhile; only if the process stops first does the row stay `claimed`, which the
//! next start turns `in_doubt`, the honest state.
//!
//! Store calls per one-part SMS are two (docs/daemon.md, "Footprint"): the claim (with the
//! previous row's `sent` mark and the row's recorded parts) and the submit evidence. A row's
//! last part and `sent` mark wait in `pending_sent` only while the loop runs its in-memory checks:
//! every wait and the loop's end write them first, so no outcome waits on anything outside.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::observe::Observation;
use super::outcome::{FailurePolicy, Outcome, decide};
use super::owed::{OwedQueue, Recorded, StoreOp};
use super::{DispatchEvent, Shared, ms};
use crate::dispatch::backoff::expired;
use crate::dispatch::{DAY, Millis, QuietOverride, RecipientLimiter, XorShift64};
use crate::model::MessageKind;
use crate::modem::{ModemHandle, ModemState, ModemStatus, OutgoingPart, SendError};
use crate::pdu::{Address, SubmitOptions, VCARD_PORT, submits_for_port_data, submits_for_text};
use crate::store::{ClaimRoute, Claimed, OutboxPart, OutboxPayload, OutboxRow, SentMark, Store};
use crate::time::now_ms;

/// How often a loop paused by a refusing disk tries its owed writes (or a probe) again. A failed
/// write on a full disk returns at once and costs nothing, so a second is cheap, and an SMS the
/// network accepted is recorded within a second of the disk taking writes again.
const STORAGE_PROBE_MS: Millis = 1_000;

/// Whether the modem can take a send now: `Ready` and, once known, registered.
fn usable(s: &ModemStatus) -> bool {
    s.state == ModemState::Ready && s.registration.is_none_or(|r| r.registered())
}

/// Sleeps until the wall-clock instant `at` (ms).
async fn sleep_until_ms(at: Millis) {
    let d = at.saturating_sub(now_ms()).max(0);
    tokio::time::sleep(Duration::from_millis(u64::try_from(d).unwrap_or(0))).await;
}

pub(super) struct SendLoop {
    shared: Arc<Shared>,
    i: usize,
    name: String,
    handle: ModemHandle,
    status: watch::Receiver<ModemStatus>,
    /// The actor dropped its status sender (it stopped): stop waiting for changes.
    status_closed: bool,
    shutdown: CancellationToken,
    rng: XorShift64,
    policy: FailurePolicy,
    /// Outcomes the store refused for want of a writable disk, in order.
    owed: OwedQueue,
    /// Sending is paused because the state disk refuses writes (logged once per pause).
    storage_paused: bool,
    /// When the row in hand was claimed (the start of the claim-to-OK latency).
    claimed_at: Instant,
    /// Since when the limiter has kept this ready loop from claiming (`None` while it is not).
    limiter_since: Option<Millis>,
    /// The last row's `sent` mark, written with the next claim (one commit, one store call),
    /// or alone before the loop waits or stops ([`SendLoop::flush_sent`]). Only in-memory
    /// checks run between the modem's OK and that write, as between the OK and a mark written
    /// at once.
    pending_sent: Option<PendingSent>,
    /// A call that claims failed: the server may have committed the claim anyway (a broken
    /// PostgreSQL connection). Before the next claim, such rows go back to the queue
    /// (`Store::release_unheld_claims`).
    claim_unsure: bool,
}

/// A `sent` mark not yet written, and the event published once it is.
struct PendingSent {
    mark: SentMark,
    event: DispatchEvent,
    parts: u8,
}

/// How processing a claimed row ended, for the loop.
enum Done {
    Continue,
    /// Shutdown came between parts; the row went back to the queue.
    Stopped,
}

impl SendLoop {
    pub(super) fn new(
        shared: Arc<Shared>,
        i: usize,
        handle: ModemHandle,
        shutdown: CancellationToken,
    ) -> Self {
        let cfg = &shared.cfg;
        let policy = FailurePolicy {
            backoff: cfg.backoff,
            in_doubt: cfg.in_doubt_policy,
            modem_level_ms: ms(cfg.modem_hold),
            unavailable_ms: ms(cfg.unavailable_hold),
        };
        let rng = XorShift64::new(cfg.seed.rotate_left(17) ^ (i as u64 + 0x51));
        SendLoop {
            name: handle.name().to_string(),
            status: handle.watch_status(),
            status_closed: false,
            handle,
            i,
            shutdown,
            rng,
            policy,
            shared,
            owed: OwedQueue::default(),
            storage_paused: false,
            claimed_at: Instant::now(),
            limiter_since: None,
            pending_sent: None,
            claim_unsure: false,
        }
    }

    fn observe(&self, what: Observation) {
        if let Some(o) = &self.shared.cfg.observer {
            o.observe(&self.name, what);
        }
    }

    /// After a claim attempt that ended a limiter wait: the time the claimed row, if any, was
    /// due but held (from the later of the wait's start and the row's due time).
    fn end_limiter_wait(&mut self, claimed: Option<&OutboxRow>, now: Millis) {
        let (Some(since), Some(row)) = (self.limiter_since.take(), claimed) else {
            return;
        };
        let held = now.saturating_sub(since.max(row.not_before));
        if held > 0 {
            let held = Duration::from_millis(u64::try_from(held).unwrap_or(0));
            self.observe(Observation::LimiterWait(held));
        }
    }

    /// Runs a store call, inline if free (`Store::call_inline_if_free`), else on the blocking pool.
    async fn db<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Store) -> crate::store::Result<T> + Send + 'static,
    ) -> Option<T> {
        match self.shared.store.call_inline_if_free(f).await {
            Ok(v) => Some(v),
            Err(e) => {
                error!(modem = %self.name, error = %e, "store error while {what}");
                None
            }
        }
    }

    /// Writes an outcome now, or keeps it until the state disk takes writes (`owed.rs`);
    /// `then` is published once it is written.
    async fn record(
        &mut self,
        what: &'static str,
        id: i64,
        op: StoreOp,
        then: Option<DispatchEvent>,
    ) -> Recorded {
        let shared = self.shared.clone();
        self.owed
            .record(&shared, &self.name, what, id, op, then)
            .await
    }

    /// Whether the loop may claim: nothing owed and the last write succeeded. Owed outcomes are
    /// written first; with none owed but a failed write seen, one probe write asks the disk.
    async fn storage_ok(&mut self) -> bool {
        let shared = self.shared.clone();
        let ok = self.owed.settle(&shared, &self.name).await
            && (shared.store.write_health().is_healthy()
                || shared.store.call(|s| s.probe_write()).await.is_ok());
        if ok && self.storage_paused {
            info!(modem = %self.name, "state disk takes writes again; sending resumes");
            self.shared.wake_all();
        } else if !ok && !self.storage_paused {
            let h = shared.store.write_health();
            warn!(modem = %self.name, state = h.headline(), detail = h.detail().unwrap_or(""),
                  "sending paused: the state disk refuses writes");
        }
        self.storage_paused = !ok;
        ok
    }

    /// While the disk refuses writes: waits for the next probe (at most [`STORAGE_PROBE_MS`])
    /// or for any other write to succeed; false on shutdown.
    async fn pause_for_storage(&mut self, tick: Millis) -> bool {
        self.flush_sent().await;
        let mut health = self.shared.store.watch_write_health();
        health.borrow_and_update();
        let at = now_ms() + tick.min(STORAGE_PROBE_MS);
        let shutdown = self.shutdown.clone();
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = sleep_until_ms(at) => true,
            _ = health.changed() => true,
        }
    }

    /// Resolves on a status change (or never, once the actor is gone).
    async fn status_changed(&mut self) {
        if self.status_closed {
            std::future::pending::<()>().await;
        }
        if self.status.changed().await.is_err() {
            self.status_closed = true;
        }
    }

    /// Waits until `at`, a status change or shutdown; false on shutdown.
    async fn pause(&mut self, at: Millis, on_status: bool, on_wake: bool) -> bool {
        self.flush_sent().await;
        let shutdown = self.shutdown.clone();
        let waker = self.shared.wakers.get(self.i).cloned();
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = sleep_until_ms(at) => true,
            _ = self.status_changed(), if on_status => true,
            _ = async {
                match waker {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            }, if on_wake => true,
        }
    }

    pub(super) async fn run(mut self) {
        info!(modem = %self.name, "send loop started");
        let tick = ms(self.shared.cfg.idle_tick).max(1);
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            if !self.storage_ok().await {
                if !self.pause_for_storage(tick).await {
                    break;
                }
                continue;
            }
            let now = now_ms();
            let (ready, suspect, init) = {
                let s = self.status.borrow_and_update();
                (
                    usable(&s),
                    matches!(s.state, ModemState::Suspect { .. }),
                    s.inits,
                )
            };
            // Ready, but the daemon has not yet moved this init's SIM's rows here: a claim now
            // could take a row of the SIM that left, or a budget from its history.
            let sim_pending = ready
                && self.shared.cfg.wait_for_sim
                && !self.shared.state().sim_recorded(self.i, init);
            let up = ready && !sim_pending;
            let mut changed = self.shared.state().set_ready(self.i, up, now);
            if suspect {
                changed |= self.shared.state().set_suspect(self.i, now);
            }
            if changed {
                debug!(modem = %self.name, up, "modem usability changed");
                // Other loops may now fail over to (or stop failing over from) this modem.
                self.shared.wake_all();
            }
            if !up {
                // A wait for a modem that cannot send is not the limiter's.
                self.limiter_since = None;
                // `DispatchHandle::sim_recorded` wakes this loop when the record is in.
                if !self.pause(now + tick, true, sim_pending).await {
                    break;
                }
                continue;
            }
            let held = self.shared.state().held_until(self.i, now);
            if let Some(until) = held {
                self.limiter_since = None;
                if !self.pause(until, false, false).await {
                    break;
                }
                continue;
            }
            let next = self.shared.state().next_allowed(self.i, now);
            match next {
                None => {
                    // A cap of zero: this modem never sends.
                    if !self.pause(now + tick, true, false).await {
                        break;
                    }
                    continue;
                }
                Some(t) if t > now => {
                    self.limiter_since.get_or_insert(now);
                    if !self.pause(t, true, false).await {
                        break;
                    }
                    continue;
                }
                Some(_) => {}
            }
            let failover_ms = self.shared.cfg.failover_after.map(ms);
            let (mut takeover, next_failover) =
                self.shared.state().takeovers(self.i, now, failover_ms);
            let mut pool = self.shared.names.clone();
            self.shared.remote().extend_route(&mut pool, &mut takeover);
            let route = ClaimRoute { pool, takeover };
            let me = self.name.clone();
            if self.claim_unsure {
                let modem = me.clone();
                match self
                    .db("releasing unheld claims", move |s| {
                        s.release_unheld_claims(&modem, now)
                    })
                    .await
                {
                    Some(_) => self.claim_unsure = false,
                    None => {
                        if !self.pause(now + tick, false, false).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            // The row's parts from an earlier attempt come with the claim, and the last row's
            // `sent` mark goes with it: one hop, not three.
            let claimed = match self.pending_sent.take() {
                Some(p) => self.mark_sent_and_claim(p, me, now, route).await,
                None => {
                    self.db("claiming", move |s| {
                        s.claim_next_with_parts(&me, now, &route)
                    })
                    .await
                }
            };
            self.claim_unsure |= claimed.is_none();
            let claimed_row = claimed.as_ref().and_then(Option::as_ref).map(|c| &c.row);
            self.end_limiter_wait(claimed_row, now_ms());
            match claimed {
                None => {
                    if !self.pause(now + tick, false, false).await {
                        break;
                    }
                }
                Some(Some(claim)) => {
                    self.claimed_at = Instant::now();
                    self.observe(Observation::Claimed);
                    let done = self.process(claim).await;
                    self.observe(Observation::Settled);
                    if let Done::Stopped = done {
                        break;
                    }
                }
                Some(None) => {
                    let due = self
                        .db("reading the next due time", move |s| s.next_due_after(now))
                        .await
                        .flatten();
                    let until = [due, next_failover, Some(now + tick)]
                        .into_iter()
                        .flatten()
                        .min()
                        .unwrap_or(now + tick);
                    if !self.pause(until, true, true).await {
                        break;
                    }
                }
            }
        }
        self.flush_sent().await;
        info!(modem = %self.name, "send loop stopped");
    }

    /// The pending `sent` mark and the next claim in one transaction. If that fails, nothing
    /// was written: the mark is written alone (or owed, `owed.rs`) and nothing is claimed.
    async fn mark_sent_and_claim(
        &mut self,
        p: PendingSent,
        me: String,
        now: Millis,
        route: ClaimRoute,
    ) -> Option<Option<Claimed>> {
        let mark = p.mark;
        let res = self
            .shared
            .store
            .call_inline_if_free(move |s| s.mark_sent_and_claim_next(&mark, &me, now, &route))
            .await;
        match res {
            Ok((_, claimed)) => {
                info!(modem = %self.name, id = p.mark.id, parts = p.parts, "sent");
                self.shared.emit(p.event);
                Some(claimed)
            }
            Err(e) => {
                debug!(modem = %self.name, error = %e, "marking sent with the next claim failed");
                self.pending_sent = Some(p);
                self.flush_sent().await;
                None
            }
        }
    }

    /// Writes the pending `sent` mark alone, now or once the disk takes writes.
    async fn flush_sent(&mut self) {
        let Some(p) = self.pending_sent.take() else {
            return;
        };
        let mark = p.mark;
        let id = mark.id;
        let op: StoreOp = Arc::new(move |s| match mark.last_part {
            Some((part, total, mr, started)) => s
                .record_last_part_sent(id, part, total, mr, started, mark.now)
                .map(|_| ()),
            None => s.mark_sent(id, mark.now).map(|_| ()),
        });
        if self.record("marking sent", id, op, Some(p.event)).await == Recorded::Now {
            info!(modem = %self.name, id, parts = p.parts, "sent");
        }
    }

    /// Hands the claim back (attempt not counted), due at `at`; expires it instead if `at` is past
    /// its TTL.
    async fn defer(&mut self, row: &OutboxRow, at: Millis, reason: String) {
        let id = row.id;
        let now = now_ms();
        if expired(row.expires_at, at) {
            let ev = DispatchEvent::Expired {
                id,
                to: row.to_number.clone(),
            };
            let op: StoreOp = Arc::new(move |s| s.expire_claimed(id, now));
            self.observe(Observation::Expired);
            if self.record("expiring", id, op, Some(ev)).await == Recorded::Now {
                info!(modem = %self.name, id, %reason, "expired: would go out after its TTL");
            }
            return;
        }
        let r = reason.clone();
        let ev = DispatchEvent::Retrying {
            id,
            to: row.to_number.clone(),
            reason: reason.clone(),
            next_attempt_at: at,
        };
        let op: StoreOp = Arc::new(move |s| s.release_claim(id, at, Some(&r)));
        self.observe(Observation::Deferred);
        if self.record("deferring", id, op, Some(ev)).await == Recorded::Now {
            debug!(modem = %self.name, id, %reason, at, "deferred");
        }
    }

    async fn fail(&mut self, row: &OutboxRow, reason: String) {
        let id = row.id;
        let now = now_ms();
        let r = reason.clone();
        let ev = DispatchEvent::Failed {
            id,
            to: row.to_number.clone(),
            reason: reason.clone(),
        };
        let op: StoreOp = Arc::new(move |s| s.mark_failed(id, &r, now));
        self.observe(Observation::Failed);
        if self.record("marking failed", id, op, Some(ev)).await == Recorded::Now {
            warn!(modem = %self.name, id, %reason, "send failed");
        }
    }

    /// Everything between the claim and the final record of one row: the checks that may defer
    /// it, the encoding, then the parts.
    async fn process(&mut self, claim: Claimed) -> Done {
        let Claimed {
            row,
            parts: recorded,
            zone,
        } = claim;
        let now = now_ms();
        if let Some(done) = self.check(&row, zone, now).await {
            return done;
        }
        let (parts, total) = match self.encode(&row).await {
            Ok(p) => p,
            Err(done) => return done,
        };
        self.send_parts(&row, &recorded, parts, total).await
    }

    /// Failover bookkeeping, the per-recipient cap, quiet hours (in `zone`, the recipient's time
    /// zone read with the claim) and the TTL, at `now`. `Some` when the row was settled here
    /// (deferred, expired, failed or handed back).
    async fn check(&mut self, row: &OutboxRow, zone: Option<String>, now: Millis) -> Option<Done> {
        let id = row.id;
        let kind = row.kind;
        // Failover: a row preferring another pool modem reached us only through a takeover.
        if let Some(home) = row.modem_pref.clone()
            && home != self.name
            && self.shared.names.contains(&home)
        {
            info!(modem = %self.name, id, %home, "failover: home modem is down");
            if self.shared.cfg.move_home_on_failover {
                let (to, me) = (row.to_number.clone(), self.name.clone());
                self.db("moving the member's home", move |s| {
                    s.move_home(&to, &home, &me, now)
                })
                .await;
            }
        }

        // Per-recipient daily cap (messages, not parts; compliance texts are exempt).
        if let Some(cap) = self.shared.cfg.per_recipient_per_day
            && kind != MessageKind::Compliance
        {
            let to = row.to_number.clone();
            let Some(times) = self
                .db("reading the recipient's sends", move |s| {
                    s.message_times_to_since(&to, now.saturating_sub(DAY), Some(id))
                })
                .await
            else {
                return Some(self.give_back(row).await);
            };
            let mut lim = RecipientLimiter::new(cap);
            for t in times {
                lim.record(&row.to_number, t);
            }
            match lim.next_allowed(&row.to_number, now) {
                None => {
                    self.fail(row, "dispatch.per_recipient_per_day is 0".into())
                        .await;
                    return Some(Done::Continue);
                }
                Some(t) if t > now => {
                    self.defer(row, t, format!("per-recipient cap of {cap} a day"))
                        .await;
                    return Some(Done::Continue);
                }
                Some(_) => {}
            }
        }

        // Quiet hours, in the recipient's zone, unless the row's broadcast overrode them
        // (`--ignore-quiet-hours`, that broadcast only).
        if !row.quiet_off && self.shared.cfg.quiet.applies_to(kind) {
            let tz = match zone.as_deref().map(crate::dispatch::time_zone) {
                Some(Ok(tz)) => tz,
                Some(Err(e)) => {
                    warn!(id, error = %e, "member time zone unknown; using the default");
                    self.shared.default_tz.clone()
                }
                None => self.shared.default_tz.clone(),
            };
            let at = self
                .shared
                .cfg
                .quiet
                .not_before(kind, QuietOverride::Inherit, now, &tz);
            if at > now {
                let name = zone.unwrap_or_else(|| self.shared.cfg.default_time_zone.clone());
                self.defer(row, at, format!("quiet hours in {name}")).await;
                return Some(Done::Continue);
            }
        }

        if expired(row.expires_at, now) {
            self.defer(row, now, "ttl".into()).await;
            return Some(Done::Continue);
        }
        None
    }

    /// The row's PDUs (PDU mode only), with one concatenation reference for all parts, stored
    /// before the first part so a retry rebuilds identical parts. `Err` when the row was settled
    /// here (failed or handed back).
    async fn encode(&mut self, row: &OutboxRow) -> Result<(Vec<OutgoingPart>, u8), Done> {
        let id = row.id;
        // Encode: PDU mode only; one reference for all parts, kept across retries.
        let reference = match row.concat_ref.and_then(|r| u16::try_from(r).ok()) {
            Some(r) => r,
            // Only the low 8 bits go out with an 8-bit reference; avoid 0 for readability.
            None => u16::try_from(self.rng.up_to(254) + 1).unwrap_or(1),
        };
        let to = match Address::parse(&row.to_number) {
            Ok(a) => a,
            Err(e) => {
                self.fail(row, format!("invalid recipient number: {e}"))
                    .await;
                return Err(Done::Continue);
            }
        };
        let opts = SubmitOptions {
            status_report: self.shared.cfg.status_reports,
            validity: self.shared.cfg.validity,
            concat_reference: reference,
            sixteen_bit_reference: false,
        };
        let encoded = match row.payload {
            OutboxPayload::Text => submits_for_text(&to, &row.text, &opts),
            // The contact card in `vcard_sms` mode: the same options (reference, status report,
            // validity), so a retry rebuilds identical parts with the stored reference.
            OutboxPayload::Vcard => {
                submits_for_port_data(&to, VCARD_PORT, 0, row.text.as_bytes(), &opts)
            }
        };
        let pdus = match encoded {
            Ok(p) => p,
            Err(e) => {
                self.fail(row, format!("cannot encode the {}: {e}", row.payload))
                    .await;
                return Err(Done::Continue);
            }
        };
        let Ok(total) = u8::try_from(pdus.len()) else {
            self.fail(
                row,
                format!("text needs {} parts (at most 255)", pdus.len()),
            )
            .await;
            return Err(Done::Continue);
        };
        if total > 1 && row.concat_ref.is_none() {
            let stored = self
                .db("storing the concat reference", move |s| {
                    s.set_concat_ref(id, reference)
                })
                .await;
            if stored.is_none() {
                return Err(self.give_back(row).await);
            }
        }
        let parts: Vec<OutgoingPart> = pdus
            .iter()
            .map(|p| OutgoingPart {
                hex: p.to_hex(),
                tpdu_len: p.tpdu_len(),
            })
            .collect();
        Ok((parts, total))
    }

    /// Sends the parts not yet accepted (`recorded`: the row's parts read with its claim), each
    /// in its own limiter slot, then marks the row sent: with the last part's record, in one
    /// commit, or alone when every part had been accepted before.
    async fn send_parts(
        &mut self,
        row: &OutboxRow,
        recorded: &[OutboxPart],
        parts: Vec<OutgoingPart>,
        total: u8,
    ) -> Done {
        let id = row.id;
        let kind = row.kind;
        // Parts already accepted on this modem in an earlier, interrupted attempt.
        let done_parts: HashSet<u8> = recorded
            .iter()
            .filter(|p| p.total == total && p.modem == self.name)
            .map(|p| p.part)
            .collect();

        for (k, part) in parts.into_iter().enumerate() {
            let no = u8::try_from(k + 1).unwrap_or(u8::MAX);
            if done_parts.contains(&no) {
                continue;
            }
            // Each part waits for its own slot; the row stays claimed meanwhile.
            let mut waiting_since = None;
            let start = loop {
                let now = now_ms();
                let res = self.shared.state().try_start(self.i, now);
                match res {
                    Ok(()) => break now,
                    Err(Some(t)) => {
                        waiting_since.get_or_insert(now);
                        if !self.pause(t, false, false).await {
                            // Shutdown between parts: back to the queue; sent parts are recorded.
                            self.give_back(row).await;
                            return Done::Stopped;
                        }
                    }
                    Err(None) => {
                        self.give_back(row).await;
                        return Done::Continue;
                    }
                }
            };
            if let Some(since) = waiting_since {
                let held = u64::try_from(start.saturating_sub(since)).unwrap_or(0);
                self.observe(Observation::LimiterWait(Duration::from_millis(held)));
            }
            // What a status report arriving after a crash is matched with (the modem's next
            // reference); committed before the submit, or the part is not sent.
            if self
                .db("recording the submit", move |s| {
                    s.begin_submit(id, no, total, start)
                })
                .await
                .is_none()
            {
                self.shared.state().end_part(self.i, now_ms());
                return self.give_back(row).await;
            }
            // Not raced against shutdown: the actor finishes (or bounds) the exchange, and its
            // outcome is recorded either way.
            let res = self.handle.send(vec![part]).await;
            let done = now_ms();
            self.shared.state().end_part(self.i, done);
            match res {
                Ok(mrs) => {
                    let Some(&mr) = mrs.first() else {
                        // Cannot happen for one part; if it did, the part's fate is unknown.
                        let err = SendError::Interrupted {
                            modem: self.name.clone(),
                            part: k,
                            submitted: true,
                            reason: "no message reference returned".into(),
                            confirmed: vec![],
                        };
                        self.on_error(row, kind, err).await;
                        return Done::Continue;
                    };
                    // The last part to send: its record and the `sent` mark are one write.
                    if (no + 1..=total).all(|n| done_parts.contains(&n)) {
                        self.owe_sent(row, total, Some((no, mr, start)));
                        return Done::Continue;
                    }
                    let op: StoreOp =
                        Arc::new(move |s| s.record_part_sent(id, no, total, mr, start));
                    match self.record("recording a sent part", id, op, None).await {
                        Recorded::Now => {}
                        Recorded::Owed => {
                            // The disk refuses writes: send no more parts now. Back to the
                            // queue once writes work again, its sent parts recorded, as after
                            // a shutdown between parts.
                            self.give_back(row).await;
                            return Done::Continue;
                        }
                        // Left claimed: in doubt at the next start, never silently resent.
                        Recorded::Refused => return Done::Continue,
                    }
                }
                Err(err) => {
                    self.on_error(row, kind, err).await;
                    return Done::Continue;
                }
            }
        }

        // Every part had been accepted in an earlier attempt.
        self.owe_sent(row, total, None);
        Done::Continue
    }

    /// Marks the row sent (every part accepted): with the next claim, or alone before the loop
    /// waits (`pending_sent`); with `accepted` (part, reference, start) the last part's record
    /// goes in the same transaction.
    fn owe_sent(&mut self, row: &OutboxRow, total: u8, accepted: Option<(u8, u8, Millis)>) {
        let event = DispatchEvent::Sent {
            id: row.id,
            to: row.to_number.clone(),
            modem: self.name.clone(),
            parts: u32::from(total),
        };
        let mark = SentMark {
            id: row.id,
            last_part: accepted.map(|(no, mr, start)| (no, total, mr, start)),
            now: now_ms(),
        };
        // Counted when the modem said OK, also if the disk makes the record wait (`owed.rs`).
        self.observe(Observation::Sent {
            parts: u32::from(total),
            since_claim: self.claimed_at.elapsed(),
        });
        self.pending_sent = Some(PendingSent {
            mark,
            event,
            parts: total,
        });
    }

    /// Back to the queue, due now, attempt not counted (the loop could not finish the attempt
    /// for reasons of its own).
    async fn give_back(&mut self, row: &OutboxRow) -> Done {
        let id = row.id;
        let now = now_ms();
        let op: StoreOp = Arc::new(move |s| s.release_claim(id, now, None));
        self.record("releasing a claim", id, op, None).await;
        Done::Continue
    }

    async fn on_error(&mut self, row: &OutboxRow, kind: MessageKind, err: SendError) {
        let id = row.id;
        let now = now_ms();
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        match decide(&err, kind, attempts, now, &self.policy, &mut self.rng) {
            Outcome::Fail { reason } => self.fail(row, reason).await,
            Outcome::Retry { at, reason } => {
                let r = reason.clone();
                let ev = DispatchEvent::Retrying {
                    id,
                    to: row.to_number.clone(),
                    reason: reason.clone(),
                    next_attempt_at: at,
                };
                let op: StoreOp = Arc::new(move |s| s.mark_retry(id, &r, at));
                self.observe(Observation::Retried);
                if self.record("scheduling a retry", id, op, Some(ev)).await == Recorded::Now {
                    info!(modem = %self.name, id, %reason, at, "retry scheduled");
                }
            }
            Outcome::InDoubt { reason, resend } => {
                let r = reason.clone();
                let ev = DispatchEvent::InDoubt {
                    id,
                    to: row.to_number.clone(),
                    modem: self.name.clone(),
                    reason: reason.clone(),
                };
                // Two records, so a replay after a disk failure never repeats the first.
                let op: StoreOp = Arc::new(move |s| s.mark_in_doubt(id, &r, now));
                self.observe(Observation::InDoubt);
                let marked = self.record("marking in doubt", id, op, Some(ev)).await;
                if marked == Recorded::Now {
                    warn!(modem = %self.name, id, %reason, resend, "send in doubt");
                }
                if resend && marked != Recorded::Refused {
                    let op: StoreOp = Arc::new(move |s| s.requeue_in_doubt(id, now));
                    self.record("queueing an in-doubt message again", id, op, None)
                        .await;
                }
            }
            Outcome::Release { reason, hold_ms } => {
                let r = reason.clone();
                let ev = DispatchEvent::Retrying {
                    id,
                    to: row.to_number.clone(),
                    reason: reason.clone(),
                    next_attempt_at: now,
                };
                let op: StoreOp = Arc::new(move |s| s.release_claim(id, now, Some(&r)));
                self.observe(Observation::Retried);
                self.record("releasing a claim", id, op, Some(ev)).await;
                warn!(modem = %self.name, id, %reason, hold_ms, "modem cannot send; holding it");
                self.shared
                    .state()
                    .hold(self.i, now.saturating_add(hold_ms), &reason, now);
                // Other modems may take the row (no preference) or, after the failover delay,
                // this modem's members' rows.
                self.shared.wake_all();
            }
        }
    }
}
