//! The modem actor: the one task that owns a modem's AT port.
//!
//! It owns the port, the `at` digester, the event backlog, the set of inbound messages awaiting an
//! ack and the modem's status. It must not know members, SQL or retry policy. Life cycle:
//! open → init (the plan of [`super::init`]) → serve (requests, URCs, acks, health polls) → on
//! trouble, recover along the ladder of [`super::recovery`] → out of the pool when that fails.
//!
//! Files: this one holds the actor's state, its top-level loop and the serve loop; `exec` runs one
//! AT command in flight; `inbound` turns URCs into events and follow-up work (read, ack, delete,
//! drain); `send` is the `AT+CMGS` exchange per part; `requests` serves and refuses what the handle
//! asks; `lifecycle` is recovery, the health poll, the port, out of the pool and shutdown;
//! `bringup` is sync and the init plan run against the port.
//!
//! Non-obvious choices:
//! - Exactly one command is in flight. While it runs, the actor keeps reading the port and every URC
//!   is handled on arrival (a `+CMTI` between an echo and its `OK` is queued as work, never mistaken
//!   for the answer): each line is sorted once, by prefix, by the `at` digester, and a command
//!   declares which information responses it expects.
//! - Follow-up work (read a new message, delete an acked one) is an internal queue, served between
//!   requests with call control first, then that work, then sends; housekeeping that can wait
//!   (status reports, deletes, the drain) goes after a queued send for up to [`DEFER_MAX`], so a
//!   delivery report never delays the next send. Acks are futures polled by the actor's own
//!   `select!`, so an ack never waits behind a full request queue.
//! - Events go to a bounded channel through a small backlog flushed as room appears: the actor never
//!   blocks its port reading on a slow consumer, and it stops reading new messages off the SIM while
//!   the backlog is not empty (they are safe on the SIM meanwhile).
//! - A send interrupted at any point reports whether the PDU had been written with its Ctrl-Z
//!   (`submitted`): before that the message is certainly not sent, after it the network may have it.
//! - Liveness is judged by command answers (the health poll), never by URC traffic: a hung Huawei
//!   E1550 keeps sending `^RSSI` while answering nothing (chan_dongle's `BUGS`).
//! - A submitted send waits for its `+CMGS` only until the suspect bound, and the status shows the
//!   wait meanwhile: nothing can probe a modem that is mid-command (a byte typed now may abort
//!   the send or answer later and be taken for the next command's answer), so past the bound the
//!   send is given up as in doubt and the probe is the ladder's first rung (docs/modems.md,
//!   "Stalls").

mod bringup;
mod exec;
mod inbound;
mod lifecycle;
mod requests;
mod send;
mod stored;
mod ussd;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::events::ModemEvent;
use super::handle::{ModemHandle, Request};
use super::port::{Port, ReadOutcome};
use super::status::{ModemState, ModemStatus};
use super::{ModemConfig, Timeouts};
use crate::at::Digester;
use exec::ExecError;
use inbound::{AckDone, AckFuture, Work};
use lifecycle::{InitFail, PoolExit};

/// Events kept while the consumer is slow; URC events beyond this are dropped (logged), inbound
/// messages are not read off the SIM until the backlog drains.
const BACKLOG_MAX: usize = 256;
/// Backlog length above which no new message is read off the SIM.
const BACKLOG_READ_LIMIT: usize = 4;
/// Longest wait of housekeeping (status reports, deletes, the drain) behind queued requests.
const DEFER_MAX: Duration = Duration::from_secs(2);

/// Creates an actor and its handle. Spawn `actor.run()` on the daemon's task tracker; it returns
/// after `cancel` fires and the in-flight command has finished (bounded by the shutdown grace).
pub fn spawn(
    config: ModemConfig,
    events: mpsc::Sender<ModemEvent>,
    cancel: CancellationToken,
) -> (ModemHandle, ModemActor) {
    let depth = config.queue_depth.max(1);
    let (tx, rx) = mpsc::channel(depth);
    let (call_tx, call_rx) = mpsc::channel((depth / 4).max(4));
    let status = ModemStatus::new(&config.name, &config.port.to_string_lossy(), config.profile);
    let (status_tx, status_rx) = watch::channel(status);
    let handle = ModemHandle {
        name: Arc::from(config.name.as_str()),
        tx,
        call_tx,
        status: status_rx,
    };
    let actor = ModemActor {
        name: config.name.clone(),
        cfg: config,
        port: None,
        digester: Digester::new(),
        rx,
        call_rx,
        events,
        backlog: VecDeque::new(),
        status: status_tx,
        cancel,
        cancel_deadline: None,
        acks: FuturesUnordered::new(),
        pending: HashSet::new(),
        work: VecDeque::new(),
        work_waiting_since: None,
        rejecting: true,
        pin_failed: false,
        mem1: None,
        sr_listable: true,
        foreign: HashMap::new(),
        ussd_waiter: None,
        reboot_seen: false,
        last_submitted: false,
        buf: vec![0; 4096],
    };
    (handle, actor)
}

/// What woke a `select!` (handled after it, when its borrows have ended).
enum Wake {
    Cancel,
    Request(Request),
    Ack(AckDone),
    Permit,
    Read(ReadOutcome),
    Deadline,
    Health,
    Drain,
}

/// Why serving stopped.
#[derive(Debug)]
enum Trouble {
    /// The port vanished.
    Gone(String),
    /// A command went unanswered.
    Stalled(String),
    /// A submitted send went unanswered past the suspect bound: probe before anything else.
    Suspect(String),
    /// The modem announced a reboot: re-run init.
    Reboot,
    /// Shutdown requested.
    Shutdown,
}

impl From<ExecError> for Trouble {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Gone(r) => Trouble::Gone(r),
            ExecError::Timeout { after, .. } => {
                Trouble::Stalled(format!("no answer within {after:?}"))
            }
        }
    }
}

/// What the serve loop runs next without waiting.
enum Job {
    Request(Request),
    Work(Work),
}

/// The serve loop's periodic duties.
struct Ticks {
    health: Interval,
    drain: Interval,
}

impl Ticks {
    fn new(t: &Timeouts) -> Ticks {
        let every = |period: Duration| {
            let mut i = tokio::time::interval_at(Instant::now() + period, period);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        };
        Ticks {
            health: every(t.health_interval),
            drain: every(t.drain_interval),
        }
    }
}

/// The actor. Create with [`spawn`], run with [`ModemActor::run`].
pub struct ModemActor {
    name: String,
    cfg: ModemConfig,
    port: Option<Port>,
    digester: Digester,
    rx: mpsc::Receiver<Request>,
    call_rx: mpsc::Receiver<Request>,
    events: mpsc::Sender<ModemEvent>,
    backlog: VecDeque<ModemEvent>,
    status: watch::Sender<ModemStatus>,
    cancel: CancellationToken,
    /// Set once shutdown is requested: the in-flight command must end by then.
    cancel_deadline: Option<Instant>,
    acks: FuturesUnordered<AckFuture>,
    /// Stored messages published and not yet acked or given up: (storage, index).
    pending: HashSet<(String, u32)>,
    /// The caller of a USSD request waiting for the network's `+CUSD` (`ussd`).
    ussd_waiter: Option<crate::modem::handle::UssdReply>,
    /// Foreign records left in received storage, by slot, with their PDU line (`stored`).
    foreign: HashMap<(String, u32), String>,
    work: VecDeque<Work>,
    /// Since when `work` has not been empty (housekeeping waits behind requests at most
    /// [`DEFER_MAX`]).
    work_waiting_since: Option<Instant>,
    /// Answer requests with "unavailable" instead of queueing them (init, recovery, out of pool).
    rejecting: bool,
    /// A PIN entry failed once: never enter it again.
    pin_failed: bool,
    /// The storage `AT+CPMS` last selected for reading/deleting.
    mem1: Option<String>,
    /// `AT+CPMS="SR"` has not been refused: the storage drain lists `SR` too.
    sr_listable: bool,
    reboot_seen: bool,
    /// Whether the last command's body (PDU + Ctrl-Z) was written.
    last_submitted: bool,
    buf: Vec<u8>,
}

impl std::fmt::Debug for ModemActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModemActor")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ModemActor {
    /// Runs the actor until shutdown.
    pub async fn run(mut self) {
        let span = info_span!("modem", name = %self.name);
        async move {
            info!(port = %self.cfg.port.display(), profile = ?self.cfg.profile, "modem actor starting");
            let mut trouble = None;
            loop {
                match self.recover(trouble.take()).await {
                    Ok(()) => {}
                    Err(InitFail::Shutdown) => break,
                    Err(InitFail::OutOfPool(reason)) => {
                        // Only a modem that went out because its port vanished is retried, when
                        // the port comes back (a replug, a late USB enumeration). A SIM or PIN
                        // failure stays out until a person acts: retrying would spend PIN
                        // attempts.
                        let watch_port = self.port.is_none();
                        match self.out_of_pool(reason, watch_port).await {
                            PoolExit::Shutdown => break,
                            PoolExit::PortBack => {
                                info!(port = %self.cfg.port.display(), "port is back; re-initialising");
                                self.rejecting = false;
                                continue;
                            }
                        }
                    }
                    Err(other) => {
                        // recover() only returns Shutdown or OutOfPool on failure.
                        warn!(?other, "unexpected recovery outcome");
                        self.out_of_pool(format!("{other:?}"), false).await;
                        break;
                    }
                }
                match self.serve().await {
                    Trouble::Shutdown => break,
                    t => trouble = Some(t),
                }
            }
            self.finish().await;
        }
        .instrument(span)
        .await
    }

    // ----------------------------------------------------------------------------------------
    // status and events
    // ----------------------------------------------------------------------------------------

    fn set_state(&mut self, state: ModemState) {
        let changed = self.status.borrow().state != state;
        if changed {
            info!(state = state.name(), detail = ?state, "modem state");
            self.status.send_modify(|s| s.state = state.clone());
            self.publish(ModemEvent::State {
                modem: self.name.clone(),
                state,
            });
        }
    }

    fn state(&self) -> ModemState {
        self.status.borrow().state.clone()
    }

    fn note_error(&mut self, text: String) {
        self.status.send_modify(|s| {
            s.errors += 1;
            s.last_error = Some(text);
        });
    }

    /// Queues an event; flushes what fits into the channel right away.
    fn publish(&mut self, ev: ModemEvent) {
        let droppable = matches!(ev, ModemEvent::Urc { .. });
        if droppable && self.backlog.len() >= BACKLOG_MAX {
            warn!(?ev, "event backlog full; dropping URC event");
            return;
        }
        self.backlog.push_back(ev);
        self.flush_backlog();
    }

    fn flush_backlog(&mut self) {
        while let Some(ev) = self.backlog.pop_front() {
            match self.events.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.backlog.push_front(ev);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(ev)) => {
                    // Nobody listens: dropping the event drops any ack sender, so stored messages
                    // stay on the SIM.
                    debug!(?ev, "event channel closed; event dropped");
                }
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // serving
    // ----------------------------------------------------------------------------------------

    /// Serves requests, follow-up work, URCs, acks and the periodic duties until trouble.
    async fn serve(&mut self) -> Trouble {
        self.rejecting = false;
        let mut ticks = Ticks::new(&self.cfg.timeouts);
        let trouble = loop {
            self.flush_backlog();
            if let Some(t) = self.interrupted() {
                break t;
            }
            let trouble = match self.next_job() {
                Some(Job::Request(req)) => self.handle(req).await,
                Some(Job::Work(w)) => self.do_work(w).await.err().map(Trouble::from),
                None => self.serve_wait(&mut ticks).await,
            };
            if let Some(t) = trouble {
                break t;
            }
        };
        self.rejecting = true;
        trouble
    }

    /// A reboot the modem announced, or shutdown.
    fn interrupted(&mut self) -> Option<Trouble> {
        if self.reboot_seen {
            self.reboot_seen = false;
            return Some(Trouble::Reboot);
        }
        self.cancel.is_cancelled().then_some(Trouble::Shutdown)
    }

    /// What to run now, in order: call control; a queued request if the first runnable work item
    /// is housekeeping that may still wait; that work item. New messages are not read (nor the
    /// storage drained) while the event backlog is long: they are safe on the SIM meanwhile.
    fn next_job(&mut self) -> Option<Job> {
        if let Ok(req) = self.call_rx.try_recv() {
            return Some(Job::Request(req));
        }
        if self.work.is_empty() {
            self.work_waiting_since = None;
        } else if self.work_waiting_since.is_none() {
            self.work_waiting_since = Some(Instant::now());
        }
        let pos = self.work.iter().position(|w| {
            !matches!(w, Work::Read { .. } | Work::Drain) || self.backlog.len() < BACKLOG_READ_LIMIT
        });
        // A queued request (a due send) goes before housekeeping that can wait, so a status
        // report never delays the next send; the housekeeping runs in the gaps between sends,
        // and after `DEFER_MAX` it runs first anyway so `SR` cannot fill under a steady load.
        let can_wait = pos
            .and_then(|p| self.work.get(p))
            .is_some_and(Work::can_wait)
            && self
                .work_waiting_since
                .is_some_and(|since| since.elapsed() < DEFER_MAX);
        if can_wait && let Ok(req) = self.rx.try_recv() {
            return Some(Job::Request(req));
        }
        pos.and_then(|p| self.work.remove(p)).map(Job::Work)
    }

    /// Nothing to run: waits for the next thing to happen and handles it.
    async fn serve_wait(&mut self, ticks: &mut Ticks) -> Option<Trouble> {
        let Some(port) = self.port.as_mut() else {
            return Some(Trouble::Gone("port is not open".into()));
        };
        let backlog_waiting = !self.backlog.is_empty();
        let ev = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Wake::Cancel,
            Some(req) = self.call_rx.recv() => Wake::Request(req),
            Some(done) = self.acks.next(), if !self.acks.is_empty() => Wake::Ack(done),
            permit = self.events.reserve(), if backlog_waiting => {
                if let (Ok(permit), Some(ev)) = (permit, self.backlog.pop_front()) {
                    permit.send(ev);
                }
                Wake::Permit
            }
            outcome = port.read(&mut self.buf) => Wake::Read(outcome),
            Some(req) = self.rx.recv() => Wake::Request(req),
            _ = ticks.health.tick() => Wake::Health,
            _ = ticks.drain.tick() => Wake::Drain,
        };
        match ev {
            Wake::Cancel => Some(Trouble::Shutdown),
            Wake::Request(req) => self.handle(req).await,
            Wake::Ack(done) => {
                self.on_ack(done);
                None
            }
            Wake::Read(ReadOutcome::Data(n)) => {
                self.feed(n);
                self.take_idle_items();
                None
            }
            Wake::Read(ReadOutcome::Gone(reason)) => Some(Trouble::Gone(reason)),
            Wake::Health => self.poll_health().await.err().map(Trouble::from),
            Wake::Drain => {
                self.queue_drain();
                None
            }
            Wake::Permit | Wake::Deadline => None,
        }
    }
}
