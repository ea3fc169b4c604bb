//! The inbound pipeline: every event the modem actors publish passes through here, one at a time.
//! Inbound SMS are decoded, stored durably, acknowledged (so the modem deletes the SIM copy),
//! reassembled when they are parts, and then handed to `community::decide`, whose actions are
//! applied with the store and whose replies are enqueued in the outbox. Status reports update the
//! delivery state; state changes and alerts become watch events and modem rows in the store. Call
//! URCs (ring, caller id, call end) skip the queue: [`run`] hands them to the voice layer before
//! anything touches the store, so a call is never answered late because an SMS was being fsynced.
//!
//! Durability order (docs/daemon.md, "The inbound pipeline"): **commit → ack → `AT+CMGD`**. The ack is sent only after
//! the store returned `Ok`; a dropped ack leaves the message on the SIM for the next drain, and the
//! store's idempotent inserts make that redelivery harmless (`Duplicate`: acked, not processed
//! again). A part is acked once the part itself is stored: `pending_parts` reloads unfinished
//! groups into the reassembler at start-up, so no part needs to stay on the SIM while its siblings
//! are in transit. A PDU that does not decode, or whose body is binary, is stored anyway (text
//! describing it, the raw hex as its key, flagged `undecodable` / `binary`) and acked: nothing the
//! network delivered is lost, and a bad PDU cannot clog the SIM.
//!
//! The community step runs after that commit, and its effects (member, consent, replies, flags)
//! commit in one transaction with the message's `processed_at` mark
//! ([`Store::apply_inbound`]). A crash between the two commits leaves the message unprocessed;
//! [`Pipeline::replay_unprocessed`] finishes it at the next start, so a STOP confirmation or a
//! welcome is never lost and never doubled.
//!
//! Texts from the configured owners take another path before the community step (their own
//! commands, daemon/owners.rs), and members' conversation texts gain forwarded copies to the
//! owners as effects of the same transaction.
//!
//! Threading: the pipeline's state (the reassembler and the part ids of pending groups) lives in a
//! [`Pipeline`] value that is moved into `spawn_blocking` for each event, because every step is
//! synchronous store work that fsyncs; one event at a time also keeps the replies of one message
//! in order. The exception is a burst of status reports: the ones already queued go in one
//! hand-off and one transaction ([`Pipeline::handle_all`]); only reports are gathered, so an SMS
//! or a state change never waits behind a long batch. That commit does not wait for the disk:
//! the reports' acks are held until a synced commit of any writer has carried it there, or for
//! at most [`ACK_WAIT`], after which [`release_acks`] syncs it (docs/store.md, "When a commit is
//! fsynced"). During a broadcast the send loops' submit records, fsynced anyway, carry the
//! reports: one fsync fewer per SMS, and still commit → ack.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::events::{self, EventBus};
use super::{DaemonError, with_store};
use crate::commands::members::member_view;
use crate::commands::status::registration_word;
use crate::community::owners::RefusalBudget;
use crate::community::{self, Action, Inbound, MemberField};
use crate::config::Config;
use crate::dispatch::{DispatchHandle, HomeReason};
use crate::modem::{ModemEvent, ModemHandle, ModemState};
use crate::pdu::{self, Assembled, Part, Pdu, Tpdu};
use crate::protocol::Event;
use crate::store::{
    self, ConsentSource, InboundEffect, MemberUpdate, MessageKind, NewMember, NewOutbox, NewPart,
    NewSingle, OutboxPayload, SingleOutcome, Store, StoreError,
};
use crate::time::now_ms;
use crate::voice::{self, ModemUrc};

/// How often incomplete groups are checked for their timeout.
const EXPIRY_CHECK: Duration = Duration::from_secs(15);

/// Flag on a stored message whose PDU did not decode.
pub const FLAG_UNDECODABLE: &str = "undecodable";
/// Flag on a stored message with a binary (8-bit data) body.
pub const FLAG_BINARY: &str = "binary";

type GroupKey = (String, u16, u8);

/// The pipeline's state; see the module doc.
pub struct Pipeline {
    store: Store,
    cfg: Arc<Config>,
    bus: EventBus,
    dispatch: DispatchHandle,
    modems: HashMap<String, ModemHandle>,
    reassembler: pdu::Reassembler,
    /// Stored part ids of each pending group, keyed like the reassembler's groups.
    groups: HashMap<GroupKey, Vec<i64>>,
    /// Whether something was enqueued since the last wake.
    enqueued: bool,
    /// Where call URCs go (the voice layer); `None` logs them like any other URC.
    call_urcs: Option<mpsc::Sender<ModemUrc>>,
    /// Answers to owners' refused commands in the last hour (daemon/owners.rs).
    refusals: RefusalBudget,
    /// Which init's SIM was recorded per modem (daemon/sims.rs).
    sims: super::sims::SimRecords,
    /// Where acks of reports whose commit is not yet on disk wait ([`release_acks`]); `None`
    /// (a pipeline driven without [`run`]) syncs at once instead.
    held_acks: Option<mpsc::UnboundedSender<HeldAcks>>,
}

/// The acks of a run of status reports, held until their commit is on disk.
struct HeldAcks {
    commit: u64,
    acks: Vec<oneshot::Sender<()>>,
    since: tokio::time::Instant,
}

impl Pipeline {
    /// Builds the pipeline and reloads the parts of unfinished messages into its reassembler.
    pub async fn load(
        store: Store,
        cfg: Arc<Config>,
        bus: EventBus,
        dispatch: DispatchHandle,
        modems: HashMap<String, ModemHandle>,
        reassembly_timeout: Duration,
    ) -> Result<Pipeline, DaemonError> {
        let pending = with_store(&store, "reloading pending message parts", |s| {
            s.pending_parts()
        })
        .await?;
        let refusals = RefusalBudget::new(cfg.community.owners.refusals_per_hour);
        let mut p = Pipeline {
            store,
            cfg,
            bus,
            dispatch,
            modems,
            reassembler: pdu::Reassembler::new(reassembly_timeout.as_secs().max(1)),
            groups: HashMap::new(),
            enqueued: false,
            call_urcs: None,
            refusals,
            sims: super::sims::SimRecords::default(),
            held_acks: None,
        };
        let n = pending.len();
        for part in pending {
            let stored_secs = u64::try_from(part.stored_at / 1000).unwrap_or(0);
            let key = (part.sender.clone(), part.reference, part.total);
            p.groups.entry(key).or_default().push(part.id);
            // A group that completes here (parts stored just before a crash) is finished on the
            // first expiry pass or the next part: release it now instead.
            if let Some(done) = p.reassembler.push(
                Part {
                    sender: part.sender,
                    reference: part.reference,
                    total: part.total,
                    sequence: part.sequence,
                    text: part.text,
                },
                stored_secs,
            ) {
                let modem = part.modem.clone();
                p.finish(done, &modem);
            }
        }
        if n > 0 {
            info!(
                parts = n,
                groups = p.reassembler.pending(),
                "reloaded pending message parts"
            );
        }
        // Store work that fsyncs: off the async threads, like every event.
        let p = tokio::task::spawn_blocking(move || {
            let mut p = p;
            p.replay_unprocessed();
            p
        })
        .await
        .map_err(|e| DaemonError::Task(format!("replaying unprocessed messages: {e}")))?;
        Ok(p)
    }

    /// Holds the pipeline this long before each record of a SIM at `Ready` (a test knob,
    /// `DaemonOptions::sim_record_delay`).
    pub fn hold_sim_records(&mut self, hold: Duration) {
        self.sims.hold = Some(hold);
    }

    /// Sends every call URC (`voice::is_call_urc`) to the voice layer from now on.
    pub fn forward_call_urcs(&mut self, tx: mpsc::Sender<ModemUrc>) {
        self.call_urcs = Some(tx);
    }

    /// Takes a call URC out of the event stream and hands it to the voice layer at once, without
    /// waiting (a full channel drops it with a warning: SMS handling must never stall behind a
    /// call). Every other event is given back for [`Pipeline::handle`].
    pub fn route_call_urc(&self, event: ModemEvent) -> Option<ModemEvent> {
        let Some(tx) = &self.call_urcs else {
            return Some(event);
        };
        match event {
            ModemEvent::Urc { modem, urc } if voice::is_call_urc(&urc) => {
                match tx.try_send(ModemUrc { modem, urc }) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(u)) => {
                        warn!(modem = %u.modem, urc = ?u.urc, "voice layer is not keeping up; dropped a call URC")
                    }
                    Err(mpsc::error::TrySendError::Closed(u)) => {
                        debug!(modem = %u.modem, urc = ?u.urc, "voice layer stopped; call URC ignored")
                    }
                }
                None
            }
            other => Some(other),
        }
    }

    /// What a SIM received is applied with that SIM's rows under this modem's name: the SIM's
    /// record comes first.
    fn before_traffic(&mut self, event: &ModemEvent) {
        if let ModemEvent::Sms { modem, iccid, .. } | ModemEvent::StatusReport { modem, iccid, .. } =
            event
            && let Some(handle) = self.modems.get(modem)
        {
            let (store, dispatch) = (&self.store, &self.dispatch);
            self.sims
                .before_traffic(store, dispatch, handle, iccid.as_deref(), now_ms());
        }
    }

    /// Handles events in order, as [`Pipeline::handle`] one by one, except that a leading run
    /// of status reports is applied in one transaction ([`Store::status_reports`]) and acked
    /// together once that commit is on disk: one fsync for a burst of reports instead of one
    /// each (group commit; the durability order, commit → ack, is the same). [`run`] builds
    /// the batches: a run of reports already queued, and at most one other event after it.
    /// Synchronous: call it on a blocking thread.
    pub fn handle_all(&mut self, mut events: Vec<ModemEvent>) {
        // A run ends where a modem's SIM changes: the new SIM's record (`before_traffic`) may
        // move the rows of the one before, so reports from before must be applied first.
        let mut sims: HashMap<&str, Option<&str>> = HashMap::new();
        let run = events
            .iter()
            .take_while(|e| match e {
                ModemEvent::StatusReport { modem, iccid, .. } => {
                    *sims.entry(modem).or_insert(iccid.as_deref()) == iccid.as_deref()
                }
                _ => false,
            })
            .count();
        if run > 1 {
            let rest = events.split_off(run);
            for event in &events {
                self.before_traffic(event);
            }
            self.reports(events);
            events = rest;
        }
        for event in events {
            self.handle(event);
        }
    }

    /// Status reports (one, or a run from `handle_all`; other events are not passed here) in
    /// one transaction, acked once it is committed. One that does not decode is dropped and
    /// acked: nothing could ever apply it, and it must not clog the SIM.
    fn reports(&mut self, events: Vec<ModemEvent>) {
        let now = now_ms();
        let mut applied = Vec::new();
        let mut acks = Vec::new();
        for event in events {
            let ModemEvent::StatusReport {
                modem,
                mr,
                recipient,
                status,
                ack,
                pdu,
                ..
            } = event
            else {
                continue;
            };
            let (Some(mr), Some(status)) = (mr, status) else {
                warn!(%modem, pdu = %pdu::to_hex(&pdu), "status report does not decode; dropped");
                if let Some(ack) = ack {
                    let _ = ack.send(());
                }
                continue;
            };
            let recipient = recipient.map(|r| sender_key(&r)).unwrap_or_default();
            applied.push(store::ReportIn {
                modem,
                mr,
                recipient,
                status,
                at: now,
            });
            acks.push(ack);
        }
        if applied.is_empty() {
            return;
        }
        match self.store.status_reports_deferred(&applied) {
            Ok((matches, commit)) => {
                for (r, m) in applied.into_iter().zip(matches) {
                    self.report_applied(r, m);
                }
                self.ack_when_durable(commit, acks.into_iter().flatten().collect());
            }
            Err(e) => {
                error!(reports = applied.len(), error = %e,
                       "could not store status reports; they stay on the SIMs");
            }
        }
    }

    /// Acks reports once their commit is on disk (commit → ack, docs/daemon.md "The inbound
    /// pipeline"): at once when a synced commit has already carried it there, else through
    /// [`release_acks`], which waits for the next synced commit of any writer (a submit record
    /// during a broadcast) or syncs after [`ACK_WAIT`]. Without that task, syncs now. A sync that
    /// fails drops the acks: the reports stay on the SIMs and are read again.
    fn ack_when_durable(&self, commit: u64, acks: Vec<oneshot::Sender<()>>) {
        if acks.is_empty() {
            return;
        }
        let held = HeldAcks {
            commit,
            acks,
            since: tokio::time::Instant::now(),
        };
        if self.store.durable() >= commit {
            return held.release();
        }
        let held = match &self.held_acks {
            Some(tx) => match tx.send(held) {
                Ok(()) => return,
                Err(mpsc::error::SendError(held)) => held,
            },
            None => held,
        };
        match self.store.sync_through(commit) {
            Ok(()) => held.release(),
            Err(e) => error!(reports = held.acks.len(), error = %e,
                             "could not sync status reports; they stay on the SIMs"),
        }
    }

    /// Handles one modem event. Synchronous: call it on a blocking thread.
    pub fn handle(&mut self, event: ModemEvent) {
        self.before_traffic(&event);
        match event {
            ModemEvent::Sms {
                modem,
                storage,
                index,
                pdu,
                ack,
                ..
            } => {
                debug!(%modem, %storage, ?index, "inbound SMS");
                let mut ack = Some(ack);
                match self.sms(&modem, &pdu, &mut ack) {
                    Ok(()) => send_ack(&mut ack),
                    Err(e) => {
                        // Not acked: the message stays on the SIM and is offered again.
                        error!(%modem, error = %e, "could not store an inbound SMS; it stays on the SIM");
                    }
                }
            }
            report @ ModemEvent::StatusReport { .. } => self.reports(vec![report]),
            ModemEvent::State { modem, state } => self.state(&modem, &state),
            ModemEvent::Alert { modem, reason } => {
                warn!(%modem, %reason, "modem alert");
                self.bus.publish(Event::ModemState {
                    modem: modem.clone(),
                    state: self
                        .modems
                        .get(&modem)
                        .map(|h| h.status().state.name())
                        .unwrap_or("unknown")
                        .to_string(),
                    detail: Some(reason),
                });
            }
            ModemEvent::Urc { modem, urc } => debug!(%modem, ?urc, "unsolicited result code"),
        }
    }

    /// Releases groups whose time is up, as incomplete messages.
    pub fn expire(&mut self, now_secs: u64) {
        for done in self.reassembler.expire(now_secs) {
            self.finish_any_modem(done);
        }
    }

    /// Wakes the runner if anything was enqueued.
    fn wake_if_enqueued(&mut self) {
        if std::mem::take(&mut self.enqueued) {
            self.dispatch.wake();
        }
    }

    /// Stores one inbound PDU and acks it right after the commit (`ack` is taken then), before
    /// the community step runs.
    fn sms(
        &mut self,
        modem: &str,
        raw: &[u8],
        ack: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), StoreError> {
        let hex = pdu::to_hex(raw);
        let now = now_ms();
        let deliver = match Pdu::decode(raw, pdu::Direction::ToMobile) {
            Ok(Pdu {
                tpdu: Tpdu::Deliver(d),
                ..
            }) => d,
            Ok(other) => {
                warn!(%modem, pdu = %hex, kind = other.tpdu.name(), "inbound PDU is not an SMS-DELIVER; kept flagged");
                let text = format!("[{} received where an SMS was expected]", other.tpdu.name());
                return self.keep_flagged(modem, "unknown", &text, &hex, FLAG_UNDECODABLE, now);
            }
            Err(e) => {
                warn!(%modem, pdu = %hex, error = %e, "inbound PDU does not decode; kept flagged");
                let text = format!("[undecodable message: {e}]");
                return self.keep_flagged(modem, "unknown", &text, &hex, FLAG_UNDECODABLE, now);
            }
        };
        let sender = sender_key(&deliver.originator.to_string());
        let scts = deliver.timestamp.to_rfc3339();
        let Some(text) = deliver.text().map(str::to_string) else {
            let len = match &deliver.user_data.body {
                pdu::Body::Data(d) => d.len(),
                pdu::Body::Text(t) => t.len(),
            };
            warn!(%modem, %sender, pdu = %hex, "binary SMS (no text); kept flagged");
            let text = format!("[binary message, {len} octets]");
            return self.keep_flagged(modem, &sender, &text, &hex, FLAG_BINARY, now);
        };

        match deliver.concat() {
            Some((reference, total, sequence))
                if total > 1 && sequence >= 1 && sequence <= total =>
            {
                let outcome = self.store.store_part(&NewPart {
                    modem: modem.to_string(),
                    sender: sender.clone(),
                    reference,
                    total,
                    sequence,
                    text: text.clone(),
                    scts,
                    pdu_hex: Some(hex),
                    stored_at: now,
                })?;
                send_ack(ack);
                if outcome.message_id.is_some() {
                    debug!(%modem, %sender, reference, sequence, "part of an assembled message seen again");
                    return Ok(());
                }
                let key = (sender.clone(), reference, total);
                let ids = self.groups.entry(key).or_default();
                if !ids.contains(&outcome.id) {
                    ids.push(outcome.id);
                }
                let now_secs = u64::try_from(now / 1000).unwrap_or(0);
                let part = Part {
                    sender,
                    reference,
                    total,
                    sequence,
                    text,
                };
                if let Some(done) = self.reassembler.push(part, now_secs) {
                    if done.complete {
                        self.finish(done, modem);
                    } else {
                        // An older group evicted to make room: release it as incomplete.
                        self.finish_any_modem(done);
                    }
                }
                Ok(())
            }
            _ => {
                let outcome = self.store.store_single(&NewSingle {
                    modem: modem.to_string(),
                    sender: sender.clone(),
                    text: text.clone(),
                    scts,
                    pdu_hex: Some(hex),
                    received_at: now,
                })?;
                send_ack(ack);
                match outcome {
                    SingleOutcome::Inserted(id) => {
                        self.received(id, modem, &sender, &text, now);
                    }
                    SingleOutcome::Duplicate(id) => {
                        debug!(%modem, id, "message already stored (re-read from the SIM)");
                    }
                }
                Ok(())
            }
        }
    }

    fn keep_flagged(
        &mut self,
        modem: &str,
        sender: &str,
        text: &str,
        hex: &str,
        flag: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        // The SCTS is unknown; the hex is the natural key, so a re-read stores nothing new.
        let outcome = self.store.store_single(&NewSingle {
            modem: modem.to_string(),
            sender: sender.to_string(),
            text: text.to_string(),
            scts: String::new(),
            pdu_hex: Some(hex.to_string()),
            received_at: now,
        })?;
        if let SingleOutcome::Inserted(id) = outcome {
            // The flag and the processed mark together: such a message has no community step.
            self.store
                .apply_inbound(id, &[InboundEffect::Flag(flag.to_string())], now)?;
            self.bus.publish(Event::MessageIn {
                id,
                from: sender.to_string(),
                text: text.to_string(),
                modem: modem.to_string(),
            });
        }
        Ok(())
    }

    /// Finishes a group whose parts were all stored from one modem.
    fn finish(&mut self, done: Assembled, modem: &str) {
        let key = (done.sender.clone(), done.reference, done.total);
        let Some(ids) = self.groups.remove(&key) else {
            warn!(sender = %done.sender, reference = done.reference, "assembled a group with no stored parts");
            return;
        };
        let now = now_ms();
        match self
            .store
            .complete_message(&ids, &done.text, done.complete, now)
        {
            Ok(id) => {
                if !done.complete {
                    warn!(%modem, sender = %done.sender, missing = ?done.missing, "released an incomplete message");
                }
                self.received(id, modem, &done.sender, &done.text, now);
            }
            Err(e) => {
                error!(sender = %done.sender, error = %e, "could not assemble a message; its parts stay stored")
            }
        }
    }

    /// Finishes a group when the caller does not know the modem (expiry, eviction): the store
    /// takes it from the parts.
    fn finish_any_modem(&mut self, done: Assembled) {
        let key = (done.sender.clone(), done.reference, done.total);
        let modem = self
            .groups
            .get(&key)
            .and_then(|ids| ids.first())
            .and_then(|id| {
                self.store
                    .pending_parts()
                    .ok()?
                    .into_iter()
                    .find(|p| p.id == *id)
            })
            .map(|p| p.modem)
            .unwrap_or_default();
        self.finish(done, &modem);
    }

    /// A whole message is stored as `id`: publish it and let the community core decide.
    fn received(&mut self, id: i64, modem: &str, sender: &str, text: &str, now: i64) {
        info!(%modem, id, from = %sender, "message received");
        self.bus.publish(Event::MessageIn {
            id,
            from: sender.to_string(),
            text: text.to_string(),
            modem: modem.to_string(),
        });
        if !sender.starts_with('+') {
            // Alphanumeric or national senders (operators, services) cannot be members or be
            // answered: keep the message as conversation only.
            return;
        }
        if let Err(e) = self.community(id, modem, sender, text, now) {
            error!(id, from = %sender, error = %e, "could not apply the community decision");
        }
        self.wake_if_enqueued();
    }

    /// Runs the community step for stored message `id` and applies its effects, together with
    /// the message's processed mark, in one store transaction ([`Store::apply_inbound`]).
    fn community(
        &mut self,
        id: i64,
        modem: &str,
        from: &str,
        text: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let received = super::owners::Received {
            id,
            modem,
            from,
            text,
            now,
        };
        if self.cfg.community.owners.is_owner(from) {
            // An owner's text is a command, never a member's keyword (docs/community.md,
            // "Owners on their own phone"); daemon/owners.rs owns that path.
            let answered = super::owners::handle(
                &self.store,
                &self.cfg,
                &self.dispatch,
                &mut self.refusals,
                &received,
            )?;
            self.enqueued |= answered;
            return Ok(());
        }
        let member = self.store.member(from)?;
        let suppressed = self.store.opted_out(from)?;
        let view = member.as_ref().map(member_view);
        let now_secs = now / 1000;
        let decision = community::decide(
            &Inbound {
                from: from.to_string(),
                text: text.to_string(),
                at: now_secs,
            },
            view.as_ref(),
            suppressed,
            &self.cfg.community,
            now_secs,
        );
        debug!(id, rule = ?decision.rule, actions = decision.actions.len(), "community decision");
        let existing_home = member.as_ref().and_then(|m| m.home_modem.clone());
        let forward_home = match &existing_home {
            Some(h) if !super::owners::creates_member(&decision) => h.clone(),
            _ => modem.to_string(),
        };
        let mut effects = effects_of(&decision.actions, from, modem, existing_home, now);
        effects.extend(super::owners::forward_effects(
            &self.store,
            &self.cfg.community.owners,
            &decision,
            &received,
            view.as_ref(),
            &forward_home,
        ));
        let applied = self.store.apply_inbound(id, &effects, now)?;
        if !applied.applied {
            debug!(id, "message already processed");
            return Ok(());
        }
        for event in decision.actions.iter().filter_map(|a| match a {
            Action::Consent { event, .. } => Some(event.as_str()),
            _ => None,
        }) {
            info!(
                from,
                event,
                cancelled = applied.cancelled,
                "consent recorded"
            );
        }
        if decision.actions.iter().any(|a| {
            matches!(
                a,
                Action::Inbox {
                    flag: Some(community::Flag::PossibleOptOut)
                }
            )
        }) {
            // Info, not warn: the alert is the event itself; a warn record would reach `watch`
            // (and the webhooks fed from it) a second time through the log tap.
            info!(
                id,
                from, "text reads like an opt-out; waiting for review (`gsmgate members review`)"
            );
            self.bus.publish(Event::PossibleOptOut {
                id,
                from: from.to_string(),
                text: text.to_string(),
                modem: modem.to_string(),
            });
        }
        if !applied.enqueued.is_empty() {
            debug!(id, to = from, replies = ?applied.enqueued, "replies enqueued");
            self.enqueued = true;
        }
        Ok(())
    }

    /// Finishes the community step of messages stored before a crash but never processed
    /// (see the module doc). Called once at start-up, before any new event.
    pub fn replay_unprocessed(&mut self) {
        let pending = match self.store.unprocessed_messages() {
            Ok(p) => p,
            Err(e) => {
                error!(error = %e, "could not list unprocessed messages");
                return;
            }
        };
        if pending.is_empty() {
            return;
        }
        info!(
            messages = pending.len(),
            "finishing messages stored before a crash but not yet answered"
        );
        for m in pending {
            if let Err(e) = self.community(m.id, &m.modem, &m.sender, &m.text, now_ms()) {
                error!(id = m.id, from = %m.sender, error = %e, "could not apply the community decision");
            }
        }
        self.wake_if_enqueued();
    }

    /// Logs and publishes a stored status report's outcome.
    fn report_applied(&self, r: store::ReportIn, m: Option<store::ReportMatch>) {
        let (modem, mr, status) = (r.modem, r.mr, r.status);
        let Some(m) = m else {
            info!(%modem, mr, status, "status report matches no sent message");
            return;
        };
        if m.resolved_in_doubt {
            // docs/dispatch.md, "In-doubt policy at restart": the report is the evidence.
            info!(%modem, mr, id = m.outbox_id, part = m.part, status,
                  state = %m.state, "in-doubt message resolved by its status report");
        } else {
            debug!(%modem, mr, id = m.outbox_id, status, "status report applied");
        }
        self.bus.publish(Event::DeliveryReport {
            id: m.outbox_id,
            to: r.recipient,
            status: report_word(status).to_string(),
        });
    }

    fn state(&mut self, modem: &str, state: &ModemState) {
        debug!(%modem, state = state.name(), "modem state");
        self.bus.publish(events::modem_state(modem, state));
        let Some(handle) = self.modems.get(modem) else {
            return;
        };
        let now = now_ms();
        if *state == ModemState::Ready {
            self.sims.ready(&self.store, &self.dispatch, handle, now);
        }
        let st = handle.status();
        let status = store::ModemStatus {
            registration: st.registration.map(|r| registration_word(r).to_string()),
            signal: st.dbm.map(i64::from),
            operator: st.operator.clone(),
        };
        if let Err(e) = self.store.update_modem_status(modem, &status, now) {
            debug!(%modem, error = %e, "could not record the modem's status");
        }
    }
}

impl HeldAcks {
    fn release(self) {
        for ack in self.acks {
            let _ = ack.send(());
        }
    }
}

/// How long a report's ack waits for another writer's synced commit before [`release_acks`]
/// syncs it itself. Only the SIM's copy waits (its slot stays taken that long); at broadcast
/// rates a submit record comes within milliseconds, at a quiet pool's rates rarely within this.
const ACK_WAIT: Duration = Duration::from_millis(250);

/// Releases held report acks in commit order as [`Store::watch_durable`] passes their commits,
/// syncing itself when the oldest has waited `wait` ([`ACK_WAIT`]). When the pipeline stops,
/// what is still held is synced and acked before this returns.
async fn release_acks(store: Store, mut rx: mpsc::UnboundedReceiver<HeldAcks>, wait: Duration) {
    let mut durable = store.watch_durable();
    let mut held: std::collections::VecDeque<HeldAcks> = std::collections::VecDeque::new();
    let sync = |store: &Store, held: &std::collections::VecDeque<HeldAcks>| {
        let store = store.clone();
        let last = held.back().map_or(0, |h| h.commit);
        async move {
            tokio::task::spawn_blocking(move || store.sync_through(last))
                .await
                .map_err(|e| store::StoreError::Task(e.to_string()))
                .and_then(|r| r)
        }
    };
    loop {
        let on_disk = *durable.borrow_and_update();
        while held.front().is_some_and(|h| h.commit <= on_disk) {
            if let Some(h) = held.pop_front() {
                h.release();
            }
        }
        let deadline = held.front().map(|h| h.since + wait);
        tokio::select! {
            m = rx.recv() => match m {
                Some(h) => held.push_back(h),
                None => break,
            },
            r = durable.changed() => if r.is_err() { break },
            () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                if deadline.is_some() => {
                if let Err(e) = sync(&store, &held).await {
                    error!(error = %e, "could not sync status reports; they stay on the SIMs");
                    held.clear();
                }
            }
        }
    }
    if held.is_empty() {
        return;
    }
    match sync(&store, &held).await {
        Ok(()) => held.into_iter().for_each(HeldAcks::release),
        Err(e) => error!(error = %e, "could not sync status reports; they stay on the SIMs"),
    }
}

/// Drives the pipeline until the modem event channel closes or shutdown.
pub async fn run(
    mut pipeline: Pipeline,
    rx: mpsc::Receiver<ModemEvent>,
    shutdown: CancellationToken,
) {
    let (tx, held) = mpsc::unbounded_channel();
    pipeline.held_acks = Some(tx);
    let releaser = tokio::spawn(release_acks(pipeline.store.clone(), held, ACK_WAIT));
    drive(pipeline, rx, shutdown).await;
    // `drive` dropped the pipeline and with it the sender: the releaser finishes what it holds.
    if let Err(e) = releaser.await {
        error!(error = %e, "releasing status report acks failed");
    }
}

async fn drive(
    mut pipeline: Pipeline,
    mut rx: mpsc::Receiver<ModemEvent>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(EXPIRY_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        enum Work {
            Events(Vec<ModemEvent>),
            Expire,
        }
        let work = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            ev = rx.recv() => match ev {
                Some(ev) => match pipeline.route_call_urc(ev) {
                    Some(ev) => Work::Events(
                        gather_reports(&mut rx, ev, |e| pipeline.route_call_urc(e), REPORT_GATHER)
                            .await,
                    ),
                    None => continue,
                },
                None => return,
            },
            _ = tick.tick() => Work::Expire,
        };
        let result = tokio::task::spawn_blocking(move || {
            match work {
                Work::Events(events) => pipeline.handle_all(events),
                Work::Expire => {
                    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
                    pipeline.expire(now);
                }
            }
            pipeline.wake_if_enqueued();
            pipeline
        })
        .await;
        match result {
            Ok(p) => pipeline = p,
            Err(e) => {
                // A bug: without its state the pipeline cannot go on. Stop the daemon so systemd
                // restarts it; unacked messages are still on the SIMs.
                error!(error = %e, "inbound pipeline failed; stopping the daemon");
                shutdown.cancel();
                return;
            }
        }
    }
}

/// Most status reports taken into one batch ([`Pipeline::handle_all`]).
const REPORT_RUN: usize = 64;

/// How long a status report waits for more before its batch goes to the store. A broadcast's
/// reports come back at the rate its copies went out, a few milliseconds apart on a fast pool,
/// so without a wait each was a transaction of its own (five WAL pages, a hand-off each); with it
/// a burst shares one. Any other event ends the wait at once (an SMS never waits for it), and a
/// report's ack already waits for its commit to reach the disk (up to [`ACK_WAIT`]), far inside
/// the network's acknowledgement timeout (3GPP TS 27.005 §3.4.1, `+CNMA`).
const REPORT_GATHER: Duration = Duration::from_millis(20);

/// [`with_queued_reports`], then, while the batch still ends with a report and has room, the
/// reports that arrive within `window` of the call: a burst in one transaction.
async fn gather_reports(
    rx: &mut mpsc::Receiver<ModemEvent>,
    first: ModemEvent,
    route: impl Fn(ModemEvent) -> Option<ModemEvent>,
    window: Duration,
) -> Vec<ModemEvent> {
    let deadline = tokio::time::Instant::now() + window;
    let mut batch = with_queued_reports(rx, first, &route);
    while batch.len() < REPORT_RUN && batch.last().is_some_and(is_report) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => {
                if let Some(ev) = route(ev) {
                    batch.push(ev);
                }
            }
            // The window is over, or the channel closed (the loop's next receive sees it).
            Ok(None) | Err(_) => break,
        }
    }
    batch
}

fn is_report(e: &ModemEvent) -> bool {
    matches!(e, ModemEvent::StatusReport { .. })
}

/// `first`, and when it is a status report, the reports already queued behind it (up to
/// [`REPORT_RUN`]) and at most one other event after them: what one hand-off to the blocking
/// pool handles. Only reports are gathered, so an SMS or a state change never waits behind a
/// long batch; call URCs met on the way still go to the voice layer at once.
fn with_queued_reports(
    rx: &mut mpsc::Receiver<ModemEvent>,
    first: ModemEvent,
    route: impl Fn(ModemEvent) -> Option<ModemEvent>,
) -> Vec<ModemEvent> {
    let mut batch = vec![first];
    while batch.last().is_some_and(is_report) && batch.len() < REPORT_RUN {
        let Ok(ev) = rx.try_recv() else { break };
        if let Some(ev) = route(ev) {
            batch.push(ev);
        }
    }
    batch
}

/// Turns the community core's actions into store effects, in order. Reply rows are routed to the
/// member's home modem: the modem they texted when this message creates them, else the home they
/// have, else the modem the message came in on.
fn effects_of(
    actions: &[Action],
    from: &str,
    modem: &str,
    existing_home: Option<String>,
    now: i64,
) -> Vec<InboundEffect> {
    let creates = actions.iter().any(|a| matches!(a, Action::CreateMember(_)));
    let home = if creates {
        modem.to_string()
    } else {
        existing_home.unwrap_or_else(|| modem.to_string())
    };
    let route = |mut row: NewOutbox| {
        row.modem_pref = (!home.is_empty()).then(|| home.clone());
        InboundEffect::Enqueue(row)
    };
    let mut effects = Vec::with_capacity(actions.len() + 1);
    let mut inbox = false;
    for action in actions {
        match action {
            Action::CreateMember(spec) => {
                effects.push(InboundEffect::AddMember {
                    member: NewMember {
                        number: spec.number.clone(),
                        time_zone: spec.time_zone.clone(),
                        status: Some(spec.status),
                        home_modem: Some(modem.to_string()),
                        // The modem they texted: their phone already shows that conversation.
                        home_reason: Some(HomeReason::Sticky.as_str().to_string()),
                        onboarding_step: spec.onboarding_step.clone(),
                        joined_at: now,
                        ..NewMember::default()
                    },
                    source: ConsentSource::Sms,
                });
            }
            Action::Consent { event, detail } => {
                let Some(ev) = store::ConsentEvent::parse(event.as_str()) else {
                    warn!(event = event.as_str(), "consent event unknown to the store");
                    continue;
                };
                effects.push(InboundEffect::Consent {
                    number: from.to_string(),
                    event: ev,
                    detail: detail.clone(),
                    source: ConsentSource::Sms,
                });
            }
            Action::Reply { text, kind } => {
                effects.push(route(NewOutbox::new(from, text.as_str(), *kind, now)));
            }
            Action::ConfirmOptOut { text } | Action::HelpAfterOptOut { text } => {
                // Written after the opted_out consent, so the store lets these compliance rows
                // (the STOP's confirmation, a HELP's answer) through to the suppressed number.
                effects.push(route(NewOutbox::new(
                    from,
                    text.as_str(),
                    MessageKind::Compliance,
                    now,
                )));
            }
            Action::SendVcard { vcard } => {
                // The outbox row holds the vCard text with payload `vcard`; the dispatcher
                // encodes it as 8-bit port-9204 parts at send time (reusing the stored
                // concatenation reference on a retry). Kind `Reply`, as `SendVcard` documents:
                // after the welcome and compliance line (compliance priority), before the
                // onboarding question (same priority, enqueued later).
                effects.push(route(
                    NewOutbox::new(from, vcard.as_str(), MessageKind::Reply, now)
                        .with_payload(OutboxPayload::Vcard),
                ));
            }
            Action::SetField { field, value } => {
                let mut u = MemberUpdate::default();
                match field {
                    MemberField::Name => u.name = Some(Some(value.clone())),
                    MemberField::City => u.city = Some(Some(value.clone())),
                    MemberField::Region => u.region = Some(Some(value.clone())),
                    MemberField::TimeZone => u.time_zone = Some(Some(value.clone())),
                    MemberField::Custom(name) => {
                        u.fields.insert(name.clone(), Some(value.clone()));
                    }
                }
                effects.push(InboundEffect::UpdateMember {
                    number: from.to_string(),
                    update: u,
                });
            }
            Action::SetOnboardingStep { step } => effects.push(InboundEffect::UpdateMember {
                number: from.to_string(),
                update: MemberUpdate {
                    onboarding_step: Some(step.clone()),
                    ..MemberUpdate::default()
                },
            }),
            Action::Inbox { flag } => {
                inbox = true;
                if let Some(f) = flag {
                    effects.push(InboundEffect::Flag(f.as_str().to_string()));
                }
            }
        }
    }
    if !inbox {
        // Handled automatically (STOP, HELP, a join): nothing for the owner to read.
        effects.push(InboundEffect::MarkRead);
    }
    effects
}

/// Tells the modem the message is stored (it deletes the SIM copy); at most once.
fn send_ack(ack: &mut Option<oneshot::Sender<()>>) {
    if let Some(a) = ack.take() {
        // The actor may have stopped meanwhile; the message is stored either way.
        let _ = a.send(());
    }
}

/// The key a sender is stored under: E.164 when the address is an international number, the
/// address as shown otherwise (alphanumeric senders, short codes).
pub(crate) fn sender_key(shown: &str) -> String {
    match community::normalise_number(shown, None) {
        Ok(n) => n.number,
        Err(_) => shown.to_string(),
    }
}

/// `delivered`, `pending` or `failed` for a TP-ST (23.040 §9.2.3.15).
pub fn report_word(status: u8) -> &'static str {
    match status {
        0x00..=0x1F => "delivered",
        0x20..=0x3F => "pending",
        _ => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_words_follow_23_040() {
        assert_eq!(report_word(0x00), "delivered");
        assert_eq!(report_word(0x1F), "delivered");
        assert_eq!(report_word(0x20), "pending");
        assert_eq!(report_word(0x46), "failed");
        assert_eq!(report_word(0x60), "failed");
    }

    fn report(mr: u8) -> ModemEvent {
        ModemEvent::StatusReport {
            modem: "m0".into(),
            storage: "SR".into(),
            index: None,
            mr: Some(mr),
            recipient: None,
            status: Some(0),
            pdu: vec![],
            ack: None,
            iccid: None,
        }
    }

    fn alert(reason: &str) -> ModemEvent {
        ModemEvent::Alert {
            modem: "m0".into(),
            reason: reason.into(),
        }
    }

    /// What a batch holds, in order: report references and alert reasons.
    fn names(batch: &[ModemEvent]) -> Vec<String> {
        batch
            .iter()
            .map(|e| match e {
                ModemEvent::StatusReport { mr, .. } => format!("r{}", mr.unwrap_or(0)),
                ModemEvent::Alert { reason, .. } => reason.clone(),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn a_batch_is_a_run_of_queued_reports_and_at_most_one_other_event() {
        let (tx, mut rx) = mpsc::channel(256);
        let keep = Some;
        for ev in [report(2), report(3), alert("a"), report(4), alert("b")] {
            tx.try_send(ev).unwrap();
        }
        // A report gathers the reports queued behind it and the first other event.
        let b = with_queued_reports(&mut rx, report(1), keep);
        assert_eq!(names(&b), ["r1", "r2", "r3", "a"]);
        let first = rx.try_recv().unwrap();
        assert_eq!(
            names(&with_queued_reports(&mut rx, first, keep)),
            ["r4", "b"]
        );
        // Anything else goes alone, even with reports queued behind it.
        tx.try_send(report(9)).unwrap();
        let b = with_queued_reports(&mut rx, alert("c"), keep);
        assert_eq!(names(&b), ["c"]);
        assert_eq!(names(&[rx.try_recv().unwrap()]), ["r9"]);

        // An event the router takes (a call URC, for the voice layer) is not in the batch.
        for ev in [report(6), alert("call"), report(7)] {
            tx.try_send(ev).unwrap();
        }
        let b = with_queued_reports(&mut rx, report(5), |e| match &e {
            ModemEvent::Alert { reason, .. } if reason == "call" => None,
            _ => Some(e),
        });
        assert_eq!(names(&b), ["r5", "r6", "r7"]);

        // At most REPORT_RUN events.
        for mr in 0..100 {
            tx.try_send(report(mr)).unwrap();
        }
        let first = rx.try_recv().unwrap();
        assert_eq!(with_queued_reports(&mut rx, first, keep).len(), REPORT_RUN);
    }

    /// A report waits up to the window for more reports; anything else ends the wait (and a
    /// batch that starts with anything else never waits at all).
    #[tokio::test]
    async fn a_report_waits_for_more_within_the_window_and_nothing_else_waits() {
        let keep = Some;
        const LONG: Duration = Duration::from_secs(30);
        let (tx, mut rx) = mpsc::channel(256);
        // Reports arriving after the first, then another event: one batch, ended by the event
        // (long before the window is over).
        let sender = tokio::spawn({
            let tx = tx.clone();
            async move {
                for ev in [report(2), report(3), alert("a"), report(4)] {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    tx.send(ev).await.unwrap();
                }
            }
        });
        let t = tokio::time::Instant::now();
        let b = gather_reports(&mut rx, report(1), keep, LONG).await;
        assert_eq!(names(&b), ["r1", "r2", "r3", "a"]);
        assert!(t.elapsed() < LONG / 2, "{:?}", t.elapsed());
        sender.await.unwrap();
        assert_eq!(names(&[rx.try_recv().unwrap()]), ["r4"]);

        // A lone report goes when the window is over.
        let window = Duration::from_millis(50);
        let t = tokio::time::Instant::now();
        let b = gather_reports(&mut rx, report(5), keep, window).await;
        assert_eq!(names(&b), ["r5"]);
        assert!(t.elapsed() >= window);

        // Anything else goes at once, even with reports about to follow.
        let t = tokio::time::Instant::now();
        let b = gather_reports(&mut rx, alert("b"), keep, LONG).await;
        assert_eq!(names(&b), ["b"]);
        assert!(t.elapsed() < LONG / 2, "{:?}", t.elapsed());

        // An event the router takes while the batch waits (a call URC, for the voice layer)
        // neither joins the batch nor ends the wait.
        let sender = tokio::spawn({
            let tx = tx.clone();
            async move {
                for ev in [report(11), alert("call"), report(12), alert("z")] {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    tx.send(ev).await.unwrap();
                }
            }
        });
        let route = |e: ModemEvent| match &e {
            ModemEvent::Alert { reason, .. } if reason == "call" => None,
            _ => Some(e),
        };
        let b = gather_reports(&mut rx, report(10), route, LONG).await;
        assert_eq!(names(&b), ["r10", "r11", "r12", "z"]);
        sender.await.unwrap();

        // A full batch does not wait either, nor a closed channel.
        for mr in 0..100 {
            tx.try_send(report(mr)).unwrap();
        }
        let first = rx.try_recv().unwrap();
        let t = tokio::time::Instant::now();
        assert_eq!(
            gather_reports(&mut rx, first, keep, LONG).await.len(),
            REPORT_RUN
        );
        while rx.try_recv().is_ok() {}
        drop(tx);
        let b = gather_reports(&mut rx, report(6), keep, LONG).await;
        assert_eq!(names(&b), ["r6"]);
        assert!(t.elapsed() < LONG / 2, "{:?}", t.elapsed());
    }

    /// A status report of a reference on `m0`, with its ack.
    fn acked_report(mr: Option<u8>) -> (ModemEvent, oneshot::Receiver<()>) {
        acked_report_from(mr, None)
    }

    /// [`acked_report`] received with the SIM `iccid` in `m0`.
    fn acked_report_from(
        mr: Option<u8>,
        iccid: Option<&str>,
    ) -> (ModemEvent, oneshot::Receiver<()>) {
        let (ack, acked) = oneshot::channel();
        let ev = ModemEvent::StatusReport {
            modem: "m0".into(),
            storage: "SR".into(),
            index: None,
            mr,
            recipient: None,
            status: Some(0),
            pdu: vec![],
            ack: Some(ack),
            iccid: iccid.map(str::to_string),
        };
        (ev, acked)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_run_of_reports_is_one_commit_acked_after_it() {
        use crate::dispatch::spawn;
        use crate::store::{ClaimRoute, MessageKind, NewOutbox, OutboxState, WriteFault};
        let store = Store::open_in_memory().unwrap();
        let cfg = Arc::new(Config::embedded_default());
        let (events, _keep) = mpsc::channel(16);
        let tracker = tokio_util::task::TaskTracker::new();
        let shutdown = CancellationToken::new();
        let runner = cfg.runner_config();
        let dispatch = spawn(
            store.clone(),
            vec![],
            runner,
            events,
            &tracker,
            shutdown.clone(),
        )
        .unwrap();
        let mut p = Pipeline::load(
            store.clone(),
            cfg,
            EventBus::new(),
            dispatch,
            HashMap::new(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        // Three rows sent a moment ago (reports match recent sends), references 1, 2 and 3.
        let t = now_ms() - 1_000;
        let ids: Vec<i64> = (1..=3u8)
            .map(|mr| {
                let to = format!("+3361111111{mr}");
                let id = store
                    .enqueue(&NewOutbox::new(&to, "hi", MessageKind::Bulk, t))
                    .unwrap();
                store
                    .claim_next_routed("m0", t, &ClaimRoute::default())
                    .unwrap()
                    .unwrap();
                store.record_part_sent(id, 1, 1, mr, t).unwrap();
                store.mark_sent(id, t).unwrap();
                id
            })
            .collect();
        let commits = || *store.watch_commits().borrow();
        let state = |id| store.outbox_row(id).unwrap().state;

        // Refused by the disk: nothing applied, nothing acked (the reports stay on the SIM),
        // except one that does not decode, which is dropped and acked as before.
        let (r1, a1) = acked_report(Some(1));
        let (bad, a_bad) = acked_report(None);
        let (r2, a2) = acked_report(Some(2));
        store.inject_write_error(Some(WriteFault::Full));
        p.handle_all(vec![r1, bad, r2]);
        store.inject_write_error(None);
        assert!(a1.await.is_err() && a2.await.is_err(), "not acked");
        assert!(a_bad.await.is_ok());
        assert_eq!(state(ids[0]), OutboxState::Sent);

        // Offered again: one commit for the run, every report acked, then the event after it.
        let (r1, a1) = acked_report(Some(1));
        let (r2, a2) = acked_report(Some(2));
        let (r3, a3) = acked_report(Some(3));
        let before = commits();
        p.handle_all(vec![r1, r2, r3, alert("after the run")]);
        assert_eq!(commits(), before + 1, "one transaction");
        for acked in [a1, a2, a3] {
            assert!(acked.await.is_ok());
        }
        for &id in &ids {
            assert_eq!(state(id), OutboxState::Delivered);
        }

        // A run ends where the modem's SIM changes (the new SIM's record may move the old
        // one's rows): two reports from two SIMs are two commits.
        let (r1, a1) = acked_report_from(Some(1), Some("8933000000000000001"));
        let (r2, a2) = acked_report_from(Some(2), Some("8933000000000000002"));
        let before = commits();
        p.handle_all(vec![r1, r2]);
        assert_eq!(commits(), before + 2, "one transaction per SIM");
        assert!(a1.await.is_ok() && a2.await.is_ok());
        shutdown.cancel();
    }

    /// Held acks go out when another writer's synced commit carries their commit to disk, or
    /// after [`ACK_WAIT`] through the releaser's own sync, and what is held when the pipeline
    /// stops is synced and acked before the releaser ends. Never before the commit is on disk,
    /// and never when the sync fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn held_report_acks_wait_for_their_commit_to_be_on_disk() {
        use crate::store::{ClaimRoute, MessageKind, NewOutbox};
        const FOREVER: Duration = Duration::from_secs(3_600);
        const SHORT: Duration = Duration::from_millis(50);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("g.db")).unwrap();
        let enqueue = |n: u64| {
            let to = format!("+336111{n:05}");
            store
                .enqueue(&NewOutbox::new(&to, "hi", MessageKind::Bulk, 10))
                .unwrap();
        };
        // A claim is an unsynced commit (docs/store.md): the commit to wait for.
        let unsynced = || {
            let before = *store.watch_commits().borrow();
            enqueue(50_000 + before);
            store
                .claim_next_with_parts("m0", 20, &ClaimRoute::default())
                .unwrap()
                .unwrap();
            let n = *store.watch_commits().borrow();
            assert!(store.durable() < n, "the claim's commit is not synced");
            n
        };
        let hold = |commit| {
            let (ack, acked) = oneshot::channel();
            let held = HeldAcks {
                commit,
                acks: vec![ack],
                since: tokio::time::Instant::now(),
            };
            (held, acked)
        };

        // A releaser that would wait an hour: another writer's synced commit releases the ack.
        let (tx, rx) = mpsc::unbounded_channel();
        let releaser = tokio::spawn(release_acks(store.clone(), rx, FOREVER));
        let (held, mut acked) = hold(unsynced());
        tx.send(held).unwrap();
        tokio::time::sleep(SHORT).await;
        assert!(
            acked.try_recv().is_err(),
            "not before the commit is on disk"
        );
        enqueue(1);
        acked.await.unwrap();

        // The pipeline stops with acks held: synced and acked before the releaser ends.
        let n = unsynced();
        let (held, acked) = hold(n);
        tx.send(held).unwrap();
        drop(tx);
        releaser.await.unwrap();
        acked.await.unwrap();
        assert!(store.durable() >= n);

        // Nobody else writes: the releaser syncs once the oldest has waited.
        let (tx, rx) = mpsc::unbounded_channel();
        let releaser = tokio::spawn(release_acks(store.clone(), rx, SHORT));
        let n = unsynced();
        let (held, acked) = hold(n);
        let start = tokio::time::Instant::now();
        tx.send(held).unwrap();
        acked.await.unwrap();
        assert!(start.elapsed() >= SHORT);
        assert!(store.durable() >= n);

        // The disk refuses the sync: the acks are dropped (the reports stay on the SIM) and the
        // releaser goes on with the next ones.
        let n = unsynced();
        store.inject_write_error(Some(crate::store::WriteFault::Full));
        let (held, acked) = hold(n);
        tx.send(held).unwrap();
        assert!(acked.await.is_err(), "not acked when the sync failed");
        assert!(store.durable() < n);
        store.inject_write_error(None);
        let (held, acked) = hold(n);
        tx.send(held).unwrap();
        acked.await.unwrap();
        assert!(store.durable() >= n);
        drop(tx);
        releaser.await.unwrap();
    }

    #[test]
    fn senders_are_keyed_in_e164_when_possible() {
        assert_eq!(sender_key("+14155550123"), "+14155550123");
        assert_eq!(sender_key("Vodafone"), "Vodafone");
        assert_eq!(sender_key("12345"), "12345");
    }
}
