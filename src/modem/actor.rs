//! The modem actor: the one task that owns a modem's AT port.
//!
//! It owns the port, the `at` digester, the event backlog, the set of inbound messages awaiting an
//! ack and the modem's status. It must not know members, SQL or retry policy. Life cycle:
//! open → init (the plan of [`super::init`]) → serve (requests, URCs, acks, health polls) → on
//! trouble, recover along the ladder of [`super::recovery`] → out of the pool when that fails.
//!
//! Non-obvious choices:
//! - Exactly one command is in flight. While it runs, the actor keeps reading the port and every URC
//!   is handled on arrival (a `+CMTI` between an echo and its `OK` is queued as work, never mistaken
//!   for the answer): classification is the digester's, by prefix (STYLE.md conventions 2, 3).
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
//! - Liveness is judged by command answers (the health poll), never by URC traffic: a hung E1550
//!   keeps sending `^RSSI` while answering nothing (MODEMS.md §5).

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, trace, warn};

use super::ModemConfig;
use super::error::{CommandError, Failure, SendError, class};
use super::events::ModemEvent;
use super::handle::{CallOp, ModemHandle, OutgoingPart, Request};
use super::init::{self, IdentField, OnError, Step};
use super::port::{Port, ReadOutcome};
use super::recovery::{self, RecoveryStep};
use super::status::{ModemState, ModemStatus, Registration, rssi_dbm};
use crate::at::{Command, CommandKind, Digester, ErrorCode, FinalResult, Item, Urc, response};
use crate::pdu;

const ESC: u8 = 0x1B;
const CTRL_Z: u8 = 0x1A;
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
        cmms_supported: true,
        reboot_seen: false,
        last_submitted: false,
        buf: vec![0; 4096],
    };
    (handle, actor)
}

/// A finished command: its information lines and final result.
#[derive(Debug)]
struct Answer {
    lines: Vec<String>,
    result: FinalResult,
}

/// Why a command did not finish with a final result.
#[derive(Debug)]
enum ExecError {
    /// No final result in time; `submitted` says whether a body (PDU + Ctrl-Z) had been written.
    Timeout { submitted: bool, after: Duration },
    /// The port is gone (EOF, EIO, write failure).
    Gone(String),
}

/// Internal follow-up work, served between requests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Work {
    /// Read a stored message (`report`: from the status-report storage) and publish it.
    Read {
        storage: String,
        index: u32,
        report: bool,
    },
    /// Delete an acked stored message.
    Delete { storage: String, index: u32 },
    /// Acknowledge a direct `+CMT`/`+CDS` (`AT+CNMA`), positively or not.
    Cnma { ok: bool },
    /// List and publish everything stored (`AT+CMGL=4`).
    Drain,
}

impl Work {
    /// Housekeeping that may wait behind a queued request: a status report is delivery news,
    /// not a message; a delete only frees a slot of something already stored above; the drain
    /// is a safety net. Reading an inbound text (a reply may be due) and `AT+CNMA` (the network
    /// times out) never wait.
    fn can_wait(&self) -> bool {
        match self {
            Work::Read { report, .. } => *report,
            Work::Delete { .. } | Work::Drain => true,
            Work::Cnma { .. } => false,
        }
    }
}

#[derive(Debug)]
enum AckTarget {
    Stored { storage: String, index: u32 },
    Direct,
}

struct AckDone {
    target: AckTarget,
    acked: bool,
}

type AckFuture = Pin<Box<dyn Future<Output = AckDone> + Send>>;

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
    /// The modem announced a reboot: re-run init.
    Reboot,
    /// Shutdown requested.
    Shutdown,
}

/// How [`ModemActor::out_of_pool`] ended.
enum PoolExit {
    Shutdown,
    /// The vanished port exists again: initialise from the start.
    PortBack,
}

/// Why init or a recovery step failed.
#[derive(Debug)]
enum InitFail {
    Gone(String),
    Failed(String),
    OutOfPool(String),
    Shutdown,
}

impl From<ExecError> for InitFail {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Gone(r) => InitFail::Gone(r),
            ExecError::Timeout { after, .. } => {
                InitFail::Failed(format!("no answer within {after:?}"))
            }
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
    cmms_supported: bool,
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

/// Whether a final result says "busy, try again shortly" (MODEMS.md §1.5: CMS 314, CME 14, CME 515).
fn is_busy(r: &FinalResult) -> bool {
    matches!(
        r,
        FinalResult::CmsError(ErrorCode::Numeric(314))
            | FinalResult::CmeError(ErrorCode::Numeric(14 | 515))
    )
}

/// The [`Failure`] of a non-OK final result.
fn failure(r: &FinalResult) -> Failure {
    match r {
        FinalResult::CmsError(ErrorCode::Numeric(code)) => Failure::Cms { code: *code },
        FinalResult::CmeError(ErrorCode::Numeric(code)) => Failure::Cme { code: *code },
        FinalResult::CmsError(ErrorCode::Text(t)) => Failure::Other {
            text: format!("+CMS ERROR: {t}"),
        },
        FinalResult::CmeError(ErrorCode::Text(t)) => Failure::Other {
            text: format!("+CME ERROR: {t}"),
        },
        other => Failure::Other {
            text: format!("{other:?}"),
        },
    }
}

/// Storage names as used in `AT+CPMS`: quotes stripped, upper case; a numeric `<mem>` (`+CMTI:
/// 0,111` [CD]) names no memory we can select, so it means "where new messages go" (`mem3`).
fn storage_name(raw: &str) -> String {
    let s = raw.trim().trim_matches('"').to_ascii_uppercase();
    if s.is_empty() || s.chars().all(|c| c.is_ascii_digit()) {
        "SM".to_owned()
    } else {
        s
    }
}

/// Whether a line is a `+CMGS: <mr>` information response (27.005 §3.5.1).
fn is_cmgs_line(line: &str) -> bool {
    line.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("+CMGS:"))
}

/// Decodes the hex of a PDU line.
fn pdu_bytes(hex: &str) -> Option<Vec<u8>> {
    pdu::hex_to_bytes(hex.trim()).ok()
}

/// Whether a PDU from storage (SMSC prefix first) is an SMS-STATUS-REPORT (TP-MTI = 10, 23.040
/// §9.2.3.1).
fn is_status_report(bytes: &[u8]) -> bool {
    let smsc_len = usize::from(bytes.first().copied().unwrap_or(0));
    bytes.get(1 + smsc_len).is_some_and(|fo| fo & 0x03 == 0x02)
}

/// Builds the command for a raw admin line (`ModemHandle::command`).
///
/// The `at` layer has no public builder for free text yet (its commands carry an answer contract:
/// expected prefixes, bare lines), so only lines that match one of its builders are accepted for
/// now; anything else is refused with a clear reason instead of being guessed at.
fn raw_command(text: &str) -> Result<Command, String> {
    let known = [
        Command::at(),
        Command::csq(),
        Command::creg_query(),
        Command::cops_query(),
        Command::cpin_query(),
        Command::cfun_query(),
        Command::cgmi(),
        Command::cgmm(),
        Command::cgmr(),
        Command::cgsn(),
        Command::cimi(),
        Command::csca_query(),
        Command::cpms_query(),
        Command::cnum(),
        Command::clcc(),
        Command::qccid(),
        Command::ccid(),
        Command::ciccid(),
        Command::crsm_iccid(),
        Command::cvoice_query(),
        Command::qpinc(),
        Command::huawei_cpin(),
    ];
    known
        .into_iter()
        .find(|c| c.echo().eq_ignore_ascii_case(text))
        .ok_or_else(|| {
            format!(
                "raw command {text:?} is not supported yet: only the diagnostic queries the at layer \
                 builds are accepted (AT, AT+CSQ, AT+CREG?, AT+COPS?, AT+CPIN?, AT+CGSN, ...)"
            )
        })
}

/// Validates one outgoing part: hex, SMSC prefix length and the declared TPDU length agree.
fn check_part(part: &OutgoingPart) -> Result<(), String> {
    let bytes = pdu_bytes(&part.hex).ok_or_else(|| "PDU is not valid hex".to_owned())?;
    let smsc_len = usize::from(*bytes.first().ok_or_else(|| "PDU is empty".to_owned())?);
    let tpdu = bytes
        .len()
        .checked_sub(1 + smsc_len)
        .filter(|n| *n > 0)
        .ok_or_else(|| "PDU shorter than its SMSC field".to_owned())?;
    if tpdu != part.tpdu_len {
        return Err(format!(
            "tpdu_len {} does not match the PDU ({} octets after the SMSC field)",
            part.tpdu_len, tpdu
        ));
    }
    Ok(())
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
    // port I/O and command execution
    // ----------------------------------------------------------------------------------------

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ExecError> {
        let Some(port) = self.port.as_mut() else {
            return Err(ExecError::Gone("port is not open".into()));
        };
        trace!(tx = %String::from_utf8_lossy(bytes).escape_debug(), "to modem");
        port.write_all(bytes)
            .await
            .map_err(|e| ExecError::Gone(format!("write failed: {e}")))
    }

    /// Handles the digester's items while no command is in flight.
    fn take_idle_items(&mut self) {
        while let Some(item) = self.digester.next_item() {
            trace!(?item, "from modem");
            match item {
                Item::Urc(u) => self.on_urc(u),
                other => debug!(?other, "stray item with no command in flight"),
            }
        }
    }

    /// Feeds bytes read from the port into the digester.
    fn feed(&mut self, n: usize) {
        let bytes = self.buf.get(..n).unwrap_or_default();
        trace!(rx = %String::from_utf8_lossy(bytes).escape_debug(), "raw from modem");
        self.digester.feed(bytes);
    }

    fn reject(&self, req: Request, reason: &str) {
        let modem = self.name.clone();
        match req {
            Request::Send { reply, .. } => {
                let _ = reply.send(Err(SendError::ModemUnavailable {
                    modem,
                    reason: reason.to_owned(),
                }));
            }
            Request::Command { reply, .. }
            | Request::Call { reply, .. }
            | Request::Exec { reply, .. } => {
                let _ = reply.send(Err(CommandError::ModemUnavailable {
                    modem,
                    reason: reason.to_owned(),
                }));
            }
        }
    }

    fn unavailable_reason(&self) -> String {
        match self.state() {
            ModemState::OutOfPool { reason } => format!("out of the pool: {reason}"),
            s => format!("modem is {}", s.name()),
        }
    }

    /// Runs one command: writes it, writes its body at the prompt, collects its information lines
    /// until the final result. URCs arriving meanwhile are handled on the spot.
    async fn exec(&mut self, cmd: &Command, timeout: Duration) -> Result<Answer, ExecError> {
        self.digester.begin(cmd);
        let res = self.exec_inner(cmd, timeout).await;
        if res.is_err() {
            self.digester.end();
        }
        self.take_idle_items();
        self.flush_backlog();
        res
    }

    async fn exec_inner(&mut self, cmd: &Command, timeout: Duration) -> Result<Answer, ExecError> {
        let started = Instant::now();
        self.write(cmd.bytes()).await?;
        let mut deadline = started + timeout;
        let mut submitted = false;
        self.last_submitted = false;
        let mut lines = Vec::new();
        // A `+CMGS: <mr>` that no send of ours is waiting for: the rest of a send whose process or
        // command we gave up on (a crash, a timeout); its final result follows and is not ours.
        let mut late_send_answer = false;
        loop {
            while let Some(item) = self.digester.next_item() {
                trace!(?item, "from modem");
                match item {
                    Item::Urc(Urc::Unknown(l)) if !cmd.expects_prompt() && is_cmgs_line(&l) => {
                        warn!(line = %l, command = cmd.echo(), "late answer to an earlier AT+CMGS");
                        late_send_answer = true;
                        self.on_urc(Urc::Unknown(l));
                    }
                    Item::Final(result) if late_send_answer => {
                        debug!(?result, "final result of the late AT+CMGS answer skipped");
                        late_send_answer = false;
                        lines.clear();
                        // The digester ended the command on that final: ours is still in flight.
                        self.digester.begin(cmd);
                    }
                    Item::Final(FinalResult::Ok) if cmd.body().is_some() && !submitted => {
                        // `OK` before the prompt cannot answer our `AT+CMGS` (it waits for the
                        // PDU): it is an earlier command's, and the prompt may still come.
                        warn!(command = cmd.echo(), "stale OK before the prompt skipped");
                        lines.clear();
                        self.digester.begin(cmd);
                    }
                    Item::Urc(u) => self.on_urc(u),
                    Item::Info(l) => lines.push(l),
                    Item::Prompt => match cmd.body() {
                        Some(body) if !submitted => {
                            let body = body.to_vec();
                            // From here on the message may reach the network whatever happens.
                            submitted = true;
                            self.last_submitted = true;
                            self.write(&body).await?;
                            deadline = Instant::now() + self.cfg.timeouts.sms_result;
                        }
                        _ => debug!("unexpected prompt"),
                    },
                    Item::Final(result) => return Ok(Answer { lines, result }),
                    _ => {}
                }
            }
            if let Some(d) = self.cancel_deadline {
                deadline = deadline.min(d);
            }
            let port = self
                .port
                .as_mut()
                .ok_or_else(|| ExecError::Gone("port is not open".into()))?;
            let ev = tokio::select! {
                biased;
                _ = self.cancel.cancelled(), if self.cancel_deadline.is_none() => Wake::Cancel,
                outcome = port.read(&mut self.buf) => Wake::Read(outcome),
                _ = sleep_until(deadline) => Wake::Deadline,
                Some(req) = self.call_rx.recv(), if self.rejecting => Wake::Request(req),
                Some(req) = self.rx.recv(), if self.rejecting => Wake::Request(req),
            };
            match ev {
                Wake::Cancel => {
                    self.cancel_deadline = Some(Instant::now() + self.cfg.timeouts.shutdown_grace);
                }
                Wake::Read(ReadOutcome::Data(n)) => self.feed(n),
                Wake::Read(ReadOutcome::Gone(reason)) => return Err(ExecError::Gone(reason)),
                Wake::Deadline => {
                    return Err(ExecError::Timeout {
                        submitted,
                        after: started.elapsed(),
                    });
                }
                Wake::Request(req) => {
                    let reason = self.unavailable_reason();
                    self.reject(req, &reason);
                }
                Wake::Ack(_) | Wake::Permit | Wake::Health | Wake::Drain => {}
            }
        }
    }

    /// [`Self::exec`], repeating while the modem answers "busy" (growing delay, MODEMS.md §1.5).
    async fn exec_busy(&mut self, cmd: &Command, timeout: Duration) -> Result<Answer, ExecError> {
        let mut hits = 0;
        loop {
            let answer = self.exec(cmd, timeout).await?;
            if is_busy(&answer.result) && hits < self.cfg.timeouts.busy_retries {
                let delay = recovery::busy_delay(self.cfg.timeouts.busy_step, hits);
                debug!(?answer.result, ?delay, "modem busy; repeating");
                hits += 1;
                sleep(delay).await;
                continue;
            }
            return Ok(answer);
        }
    }

    /// The configured timeout for a command's class.
    fn timeout_of(&self, cmd: &Command) -> Duration {
        let t = &self.cfg.timeouts;
        match cmd.kind() {
            CommandKind::Plain => t.plain,
            CommandKind::Pin => t.pin,
            CommandKind::Cfun => t.cfun,
            CommandKind::ListSms => t.list,
            CommandKind::SmsPrompt => t.prompt,
            CommandKind::SmsResult => t.sms_result,
            CommandKind::Dial => t.sms_result,
            CommandKind::Answer => t.call,
        }
    }

    /// A command with its class timeout and the busy handling.
    async fn simple(&mut self, cmd: Command) -> Result<Answer, ExecError> {
        let timeout = self.timeout_of(&cmd);
        self.exec_busy(&cmd, timeout).await
    }

    // ----------------------------------------------------------------------------------------
    // URCs
    // ----------------------------------------------------------------------------------------

    fn on_urc(&mut self, urc: Urc) {
        match urc {
            Urc::NewMessage(si) => match si.index {
                Some(index) => {
                    let storage = storage_name(&si.storage);
                    self.queue_read(storage, index, false);
                }
                None => debug!(storage = %si.storage, "+CMTI with invalid index ignored"),
            },
            Urc::StatusReportStored(si) => match si.index {
                Some(index) => {
                    let storage = storage_name(&si.storage);
                    self.queue_read(storage, index, true);
                }
                None => debug!(storage = %si.storage, "+CDSI with invalid index ignored"),
            },
            Urc::Deliver { pdu, .. } => self.on_direct_deliver(&pdu),
            Urc::StatusReport { pdu, .. } => {
                match pdu_bytes(&pdu) {
                    Some(bytes) => self.publish_report("direct".into(), None, bytes, None),
                    None => warn!(%pdu, "undecodable +CDS PDU line"),
                }
                if self.cfg.init.direct_delivery {
                    self.work.push_back(Work::Cnma { ok: true });
                }
            }
            Urc::Registration(r) => {
                let reg = Registration::from_stat(r.stat);
                self.status.send_modify(|s| s.registration = Some(reg));
                self.publish(ModemEvent::Urc {
                    modem: self.name.clone(),
                    urc: Urc::Registration(r),
                });
            }
            Urc::Rssi(rssi) | Urc::QuectelCsq { rssi, .. } => {
                self.status.send_modify(|s| {
                    s.rssi = Some(rssi);
                    s.dbm = rssi_dbm(rssi);
                });
            }
            Urc::SmsMemoryFull(mem) => {
                warn!(%mem, "modem reports SMS storage full");
                self.publish(ModemEvent::Alert {
                    modem: self.name.clone(),
                    reason: format!("SMS storage full {mem}"),
                });
                if !self.work.contains(&Work::Drain) {
                    self.work.push_back(Work::Drain);
                }
            }
            u if u.is_boot_marker() => {
                if self.state() == ModemState::Ready {
                    warn!(?u, "modem announced a reboot; re-running init");
                    self.reboot_seen = true;
                }
            }
            other => self.publish(ModemEvent::Urc {
                modem: self.name.clone(),
                urc: other,
            }),
        }
    }

    fn queue_read(&mut self, storage: String, index: u32, report: bool) {
        let w = Work::Read {
            storage: storage.clone(),
            index,
            report,
        };
        if self.pending.contains(&(storage, index)) || self.work.contains(&w) {
            return;
        }
        self.work.push_back(w);
    }

    fn on_direct_deliver(&mut self, hex: &str) {
        let Some(bytes) = pdu_bytes(hex) else {
            warn!(%hex, "undecodable +CMT PDU line");
            if self.cfg.init.direct_delivery {
                self.work.push_back(Work::Cnma { ok: false });
            }
            return;
        };
        let (ack, rx) = oneshot::channel();
        self.acks.push(Box::pin(async move {
            AckDone {
                target: AckTarget::Direct,
                acked: rx.await.is_ok(),
            }
        }));
        self.status.send_modify(|s| s.received += 1);
        self.publish(ModemEvent::Sms {
            modem: self.name.clone(),
            storage: "direct".into(),
            index: None,
            pdu: bytes,
            ack,
        });
    }

    /// Publishes a status report, decoding MR, recipient and status with `pdu`.
    fn publish_report(
        &mut self,
        storage: String,
        index: Option<u32>,
        bytes: Vec<u8>,
        ack: Option<oneshot::Sender<()>>,
    ) {
        let (mr, recipient, status) = match pdu::Pdu::decode(&bytes, pdu::Direction::ToMobile) {
            Ok(pdu::Pdu {
                tpdu: pdu::Tpdu::StatusReport(r),
                ..
            }) => (
                Some(r.message_reference),
                Some(r.recipient.to_string()),
                Some(r.status),
            ),
            Ok(other) => {
                warn!(?other, "status report slot held another TPDU type");
                (None, None, None)
            }
            Err(e) => {
                warn!(error = %e, "undecodable status report");
                (None, None, None)
            }
        };
        self.publish(ModemEvent::StatusReport {
            modem: self.name.clone(),
            storage,
            index,
            mr,
            recipient,
            status,
            pdu: bytes,
            ack,
        });
    }

    /// Publishes a stored message (or report) with an ack that triggers its deletion.
    fn publish_stored(&mut self, storage: String, index: u32, bytes: Vec<u8>, report: bool) {
        let (ack, rx) = oneshot::channel();
        let target = AckTarget::Stored {
            storage: storage.clone(),
            index,
        };
        self.pending.insert((storage.clone(), index));
        self.acks.push(Box::pin(async move {
            AckDone {
                target,
                acked: rx.await.is_ok(),
            }
        }));
        if report {
            self.publish_report(storage, Some(index), bytes, Some(ack));
        } else {
            self.status.send_modify(|s| s.received += 1);
            self.publish(ModemEvent::Sms {
                modem: self.name.clone(),
                storage,
                index: Some(index),
                pdu: bytes,
                ack,
            });
        }
    }

    fn on_ack(&mut self, done: AckDone) {
        match (done.target, done.acked) {
            (AckTarget::Stored { storage, index }, true) => {
                self.work.push_back(Work::Delete { storage, index });
            }
            (AckTarget::Stored { storage, index }, false) => {
                warn!(%storage, index, "inbound message not acknowledged; left on the SIM");
                self.pending.remove(&(storage, index));
            }
            (AckTarget::Direct, ok) => {
                if self.cfg.init.direct_delivery {
                    self.work.push_back(Work::Cnma { ok });
                } else if !ok {
                    warn!(
                        "directly delivered message not stored by the layer above (modem acked it already)"
                    );
                }
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // inbound work
    // ----------------------------------------------------------------------------------------

    /// Selects `storage` for reading and deleting (`AT+CPMS=<mem1>`), if not already selected.
    async fn select_storage(&mut self, storage: &str) -> Result<bool, ExecError> {
        if self.mem1.as_deref() == Some(storage) {
            return Ok(true);
        }
        let cmd = match Command::cpms(storage, "SM", "SM") {
            Ok(c) => c,
            Err(e) => {
                warn!(%storage, error = %e, "storage name not usable");
                return Ok(false);
            }
        };
        let a = self.simple(cmd).await?;
        if a.result.is_ok() {
            self.mem1 = Some(storage.to_owned());
            Ok(true)
        } else {
            warn!(%storage, result = ?a.result, "cannot select storage");
            Ok(false)
        }
    }

    async fn do_work(&mut self, w: Work) -> Result<(), ExecError> {
        match w {
            Work::Read {
                storage,
                index,
                report,
            } => {
                if self.pending.contains(&(storage.clone(), index))
                    || !self.select_storage(&storage).await?
                {
                    return Ok(());
                }
                let a = self.simple(Command::cmgr(index)).await?;
                if !a.result.is_ok() {
                    warn!(%storage, index, result = ?a.result, "cannot read stored message");
                    return Ok(());
                }
                match response::parse_cmgr(&a.lines) {
                    Ok(sms) => match pdu_bytes(&sms.pdu) {
                        Some(bytes) => {
                            let report = report || is_status_report(&bytes);
                            self.publish_stored(storage, index, bytes, report);
                        }
                        None => warn!(%storage, index, pdu = %sms.pdu, "stored message is not hex"),
                    },
                    // An empty slot answers OK with no +CMGR line.
                    Err(e) => debug!(%storage, index, error = %e, "no message in slot"),
                }
            }
            Work::Delete { storage, index } => {
                if !self.select_storage(&storage).await? {
                    self.pending.remove(&(storage, index));
                    return Ok(());
                }
                // The slot stops being ours the moment the modem executes the delete: a message
                // stored there from then on is announced with the same index (`+CDSI: "SR",<i>`),
                // often in the same read as this `OK`, and must be read, not taken for the one we
                // are deleting. So the index leaves `pending` before the command is written.
                self.pending.remove(&(storage.clone(), index));
                let a = self.simple(Command::cmgd(index)).await?;
                if a.result.is_ok() {
                    debug!(%storage, index, "stored message deleted after ack");
                } else {
                    warn!(%storage, index, result = ?a.result, "delete failed");
                }
            }
            Work::Cnma { ok: true } => {
                let a = self.simple(Command::cnma_pdu()).await?;
                if !a.result.is_ok() {
                    warn!(result = ?a.result, "AT+CNMA refused");
                }
            }
            Work::Cnma { ok: false } => {
                // Without our ack the network retries later (RP-ERROR) and the ME resets CNMI
                // <mt>/<ds> to 0 (MODEMS.md §1.3 [SIEM]): restore direct delivery right away.
                warn!("direct message not stored above: not acknowledged, network will resend");
                if let Ok(cmd) = Command::cnmi(2, 2, 0, 1, 0) {
                    let a = self.simple(cmd).await?;
                    if !a.result.is_ok() {
                        warn!(result = ?a.result, "restoring AT+CNMI failed");
                    }
                }
            }
            Work::Drain => self.drain().await?,
        }
        Ok(())
    }

    /// `AT+CMGL=4` in `SM`, then in `SR`: publishes every stored received message and status
    /// report not already awaiting an ack (MODEMS.md §1.4). The `SR` pass is the safety net for
    /// reports whose `+CDSI` was lost (or arrived while no daemon listened): without it they would
    /// sit in `SR` for ever, and a full `SR` loses every later report. Modems that refuse
    /// `AT+CPMS="SR"` (Wavecom, MODEMS.md §1.1 step 12) store reports in `SM`, which the first pass
    /// covers; the refusal is remembered so the drain does not ask again.
    async fn drain(&mut self) -> Result<(), ExecError> {
        let mut count = self.drain_storage("SM").await?;
        if self.sr_listable {
            if self.select_storage("SR").await? {
                count += self.drain_storage("SR").await?;
            } else {
                debug!("SR storage not selectable: reports are only looked for in SM");
                self.sr_listable = false;
            }
        }
        if count > 0 {
            info!(count, "stored messages published from the storage drain");
        }
        Ok(())
    }

    /// Lists one storage with `AT+CMGL=4` and publishes what is not pending; returns how many.
    async fn drain_storage(&mut self, storage: &str) -> Result<usize, ExecError> {
        if !self.select_storage(storage).await? {
            return Ok(0);
        }
        let Ok(cmd) = Command::cmgl(4) else {
            return Ok(0);
        };
        let a = self.simple(cmd).await?;
        if !a.result.is_ok() {
            warn!(%storage, result = ?a.result, "AT+CMGL=4 failed");
            return Ok(0);
        }
        let mut count = 0;
        for entry in response::parse_cmgl(&a.lines) {
            let sms = match entry {
                Ok(sms) => sms,
                Err(e) => {
                    warn!(%storage, error = %e, "unreadable CMGL entry");
                    continue;
                }
            };
            // STO UNSENT / STO SENT are outgoing copies, not inbound messages.
            if matches!(sms.stat, Some(2 | 3)) {
                continue;
            }
            let Some(index) = sms.index else { continue };
            if self.pending.contains(&(storage.to_owned(), index)) {
                continue;
            }
            match pdu_bytes(&sms.pdu) {
                Some(bytes) => {
                    let report = storage == "SR" || is_status_report(&bytes);
                    self.publish_stored(storage.to_owned(), index, bytes, report);
                    count += 1;
                }
                None => warn!(%storage, index, pdu = %sms.pdu, "stored message is not hex"),
            }
        }
        Ok(count)
    }

    // ----------------------------------------------------------------------------------------
    // serving
    // ----------------------------------------------------------------------------------------

    fn trouble_of(e: ExecError) -> Trouble {
        match e {
            ExecError::Gone(r) => Trouble::Gone(r),
            ExecError::Timeout { after, .. } => {
                Trouble::Stalled(format!("no answer within {after:?}"))
            }
        }
    }

    async fn serve(&mut self) -> Trouble {
        self.rejecting = false;
        let t = self.cfg.timeouts;
        let mut health =
            tokio::time::interval_at(Instant::now() + t.health_interval, t.health_interval);
        health.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut drain =
            tokio::time::interval_at(Instant::now() + t.drain_interval, t.drain_interval);
        drain.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let trouble = loop {
            self.flush_backlog();
            if self.reboot_seen {
                self.reboot_seen = false;
                break Trouble::Reboot;
            }
            if self.cancel.is_cancelled() {
                break Trouble::Shutdown;
            }
            if let Ok(req) = self.call_rx.try_recv() {
                if let Some(t) = self.handle(req).await {
                    break t;
                }
                continue;
            }
            if self.work.is_empty() {
                self.work_waiting_since = None;
            } else if self.work_waiting_since.is_none() {
                self.work_waiting_since = Some(Instant::now());
            }
            let pos = self.work.iter().position(|w| {
                !matches!(w, Work::Read { .. } | Work::Drain)
                    || self.backlog.len() < BACKLOG_READ_LIMIT
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
                if let Some(t) = self.handle(req).await {
                    break t;
                }
                continue;
            }
            if let Some(w) = pos.and_then(|p| self.work.remove(p)) {
                if let Err(e) = self.do_work(w).await {
                    break Self::trouble_of(e);
                }
                continue;
            }
            let Some(port) = self.port.as_mut() else {
                break Trouble::Gone("port is not open".into());
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
                _ = health.tick() => Wake::Health,
                _ = drain.tick() => Wake::Drain,
            };
            match ev {
                Wake::Cancel => break Trouble::Shutdown,
                Wake::Request(req) => {
                    if let Some(t) = self.handle(req).await {
                        break t;
                    }
                }
                Wake::Ack(done) => self.on_ack(done),
                Wake::Permit | Wake::Deadline => {}
                Wake::Read(ReadOutcome::Data(n)) => {
                    self.feed(n);
                    self.take_idle_items();
                }
                Wake::Read(ReadOutcome::Gone(reason)) => break Trouble::Gone(reason),
                Wake::Health => {
                    if let Err(e) = self.poll_health().await {
                        break Self::trouble_of(e);
                    }
                }
                Wake::Drain => {
                    if !self.work.contains(&Work::Drain) {
                        self.work.push_back(Work::Drain);
                    }
                }
            }
        };
        self.rejecting = true;
        trouble
    }

    /// Serves one request; returns trouble that must interrupt serving.
    async fn handle(&mut self, req: Request) -> Option<Trouble> {
        match req {
            Request::Send { parts, reply } => {
                let (res, trouble) = self.send(parts).await;
                match &res {
                    Ok(mrs) => self.status.send_modify(|s| s.sent += mrs.len() as u64),
                    Err(e) => self.note_error(e.to_string()),
                }
                let _ = reply.send(res);
                trouble
            }
            Request::Command {
                text,
                timeout,
                reply,
            } => {
                let timeout = timeout.unwrap_or(self.cfg.timeouts.plain);
                let (res, trouble) = self.raw_command(&text, timeout).await;
                let _ = reply.send(res);
                trouble
            }
            Request::Call { op, reply } => {
                let cmd = match op {
                    CallOp::Answer => Command::ata(),
                    CallOp::Hangup => Command::chup(),
                    CallOp::Clcc => Command::clcc(),
                    CallOp::HuaweiAudio => Command::ddsetex(),
                    CallOp::SimcomPcm(on) => Command::cpcmreg(on),
                    CallOp::QuectelPcm(None) => Command::qpcmv_off(),
                    CallOp::QuectelPcm(Some(port)) => match Command::qpcmv(port) {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = reply.send(Err(CommandError::Invalid {
                                modem: self.name.clone(),
                                reason: e.to_string(),
                            }));
                            return None;
                        }
                    },
                };
                let timeout = self.timeout_of(&cmd).min(self.cfg.timeouts.call);
                let (res, trouble) = self.run_command(&cmd, op.text(), timeout).await;
                let _ = reply.send(res);
                trouble
            }
            Request::Exec { cmd, reply } => {
                let timeout = self.timeout_of(&cmd);
                let text = cmd.echo().to_owned();
                let (res, trouble) = self.run_command(&cmd, &text, timeout).await;
                let _ = reply.send(res);
                trouble
            }
        }
    }

    async fn raw_command(
        &mut self,
        text: &str,
        timeout: Duration,
    ) -> (Result<Vec<String>, CommandError>, Option<Trouble>) {
        let t = text.trim();
        let bad = !t.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT"))
            || t.bytes().any(|b| b < 0x20 || b == 0x7F);
        if bad {
            return (
                Err(CommandError::Invalid {
                    modem: self.name.clone(),
                    reason:
                        "a raw command is one line starting with AT, without control characters"
                            .into(),
                }),
                None,
            );
        }
        match raw_command(t) {
            Ok(cmd) => self.run_command(&cmd, t, timeout).await,
            Err(reason) => (
                Err(CommandError::Invalid {
                    modem: self.name.clone(),
                    reason,
                }),
                None,
            ),
        }
    }

    async fn run_command(
        &mut self,
        cmd: &Command,
        text: &str,
        timeout: Duration,
    ) -> (Result<Vec<String>, CommandError>, Option<Trouble>) {
        match self.exec(cmd, timeout).await {
            Ok(a) if a.result.is_ok() => (Ok(a.lines), None),
            Ok(a) => (
                Err(CommandError::Failed {
                    modem: self.name.clone(),
                    command: text.to_owned(),
                    failure: failure(&a.result),
                }),
                None,
            ),
            Err(ExecError::Timeout { after, .. }) => (
                Err(CommandError::Timeout {
                    modem: self.name.clone(),
                    command: text.to_owned(),
                    after,
                }),
                Some(Trouble::Stalled(format!("{text} unanswered"))),
            ),
            Err(ExecError::Gone(reason)) => (
                Err(CommandError::ModemUnavailable {
                    modem: self.name.clone(),
                    reason: reason.clone(),
                }),
                Some(Trouble::Gone(reason)),
            ),
        }
    }

    /// Sends the parts of one message (MODEMS.md §1.2).
    async fn send(
        &mut self,
        parts: Vec<OutgoingPart>,
    ) -> (Result<Vec<u8>, SendError>, Option<Trouble>) {
        let modem = self.name.clone();
        if parts.is_empty() {
            return (
                Err(SendError::InvalidPart {
                    modem,
                    part: 0,
                    reason: "no parts".into(),
                }),
                None,
            );
        }
        for (i, p) in parts.iter().enumerate() {
            if let Err(reason) = check_part(p) {
                return (
                    Err(SendError::InvalidPart {
                        modem,
                        part: i,
                        reason,
                    }),
                    None,
                );
            }
        }
        if parts.len() > 1 && self.cmms_supported {
            let cmms = Command::cmms(1).map_err(|e| e.to_string());
            let res = match cmms {
                Ok(cmd) => self.simple(cmd).await,
                Err(_) => Ok(Answer {
                    lines: vec![],
                    result: FinalResult::Error,
                }),
            };
            match res {
                Ok(a) if !a.result.is_ok() => {
                    debug!("AT+CMMS unsupported; parts go without a kept-open link");
                    self.cmms_supported = false;
                }
                Ok(_) => {}
                Err(e) => {
                    let trouble = Self::trouble_of(e);
                    return (
                        Err(SendError::Interrupted {
                            modem,
                            part: 0,
                            submitted: false,
                            reason: format!("{trouble:?}"),
                            confirmed: vec![],
                        }),
                        Some(trouble),
                    );
                }
            }
        }
        let mut confirmed = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            // Calls first, also in the middle of a multipart message.
            while let Ok(req) = self.call_rx.try_recv() {
                // Boxed: handle() → send() → handle() is recursive.
                if let Some(t) = Box::pin(self.handle(req)).await {
                    return (
                        Err(SendError::Interrupted {
                            modem,
                            part: i,
                            submitted: false,
                            reason: format!("{t:?}"),
                            confirmed,
                        }),
                        Some(t),
                    );
                }
            }
            let cmd = match Command::cmgs(&part.hex) {
                Ok(c) => c,
                Err(e) => {
                    return (
                        Err(SendError::InvalidPart {
                            modem,
                            part: i,
                            reason: e.to_string(),
                        }),
                        None,
                    );
                }
            };
            let timeout = self.cfg.timeouts.prompt;
            match self.exec_busy(&cmd, timeout).await {
                Ok(a) if a.result.is_ok() => {
                    let mr = a.lines.iter().find_map(|l| response::parse_cmgs(l).ok());
                    match mr {
                        Some(mr) => confirmed.push(mr),
                        None => {
                            // OK without +CMGS: the modem says sent but gave no reference.
                            warn!(lines = ?a.lines, "AT+CMGS OK without +CMGS: <mr>");
                            return (
                                Err(SendError::Interrupted {
                                    modem,
                                    part: i,
                                    submitted: true,
                                    reason: "OK without a +CMGS reference".into(),
                                    confirmed,
                                }),
                                None,
                            );
                        }
                    }
                }
                Ok(a) => {
                    let f = failure(&a.result);
                    let class = match &f {
                        Failure::Cms { code } => class(*code),
                        other => other.class(),
                    };
                    return (
                        Err(SendError::Refused {
                            modem,
                            part: i,
                            failure: f,
                            class,
                            confirmed,
                        }),
                        None,
                    );
                }
                Err(ExecError::Timeout { submitted, after }) => {
                    if !submitted {
                        // Close a prompt that may have come late, so nothing is sent later by accident.
                        let _ = self.write(&[ESC]).await;
                    }
                    return (
                        Err(SendError::Timeout {
                            modem,
                            part: i,
                            submitted,
                            after,
                            confirmed,
                        }),
                        Some(Trouble::Stalled("AT+CMGS unanswered".into())),
                    );
                }
                Err(ExecError::Gone(reason)) => {
                    // exec() only knows "submitted" for timeouts; for a vanished port we know it
                    // from whether the prompt had come: the digester ended the command either way.
                    let submitted = self.last_submitted;
                    return (
                        Err(SendError::Interrupted {
                            modem,
                            part: i,
                            submitted,
                            reason: reason.clone(),
                            confirmed,
                        }),
                        Some(Trouble::Gone(reason)),
                    );
                }
            }
        }
        (Ok(confirmed), None)
    }

    /// Health poll: `AT+CSQ`, `AT+CREG?`, `AT+COPS?` (MODEMS.md §5). A timeout means the modem
    /// stalled.
    async fn poll_health(&mut self) -> Result<(), ExecError> {
        self.query_csq().await?;
        self.query_creg().await?;
        self.query_cops().await?;
        Ok(())
    }

    async fn query_csq(&mut self) -> Result<(), ExecError> {
        let a = self.simple(Command::csq()).await?;
        if let Some(csq) = a.lines.iter().find_map(|l| response::parse_csq(l).ok()) {
            self.status.send_modify(|s| {
                s.rssi = Some(csq.rssi);
                s.dbm = rssi_dbm(csq.rssi);
            });
        }
        Ok(())
    }

    async fn query_creg(&mut self) -> Result<(), ExecError> {
        let a = self.simple(Command::creg_query()).await?;
        if let Some(r) = a.lines.iter().find_map(|l| response::parse_creg(l).ok()) {
            let reg = Registration::from_stat(r.stat);
            self.status.send_modify(|s| s.registration = Some(reg));
        }
        Ok(())
    }

    async fn query_cops(&mut self) -> Result<(), ExecError> {
        let a = self.simple(Command::cops_query()).await?;
        if let Some(c) = a.lines.iter().find_map(|l| response::parse_cops(l).ok()) {
            self.status.send_modify(|s| s.operator = c.operator.clone());
        }
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // bring-up and recovery
    // ----------------------------------------------------------------------------------------

    /// Waits `d` while answering requests with "unavailable" and collecting acks.
    async fn idle_wait(&mut self, d: Duration) -> Result<(), InitFail> {
        let until = Instant::now() + d;
        loop {
            let ev = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => Wake::Cancel,
                Some(req) = self.call_rx.recv() => Wake::Request(req),
                Some(req) = self.rx.recv() => Wake::Request(req),
                Some(done) = self.acks.next(), if !self.acks.is_empty() => Wake::Ack(done),
                _ = sleep_until(until) => Wake::Deadline,
            };
            match ev {
                Wake::Cancel => return Err(InitFail::Shutdown),
                Wake::Deadline => return Ok(()),
                Wake::Request(req) => {
                    let reason = self.unavailable_reason();
                    self.reject(req, &reason);
                }
                Wake::Ack(done) => self.on_ack(done),
                Wake::Read(_) | Wake::Permit | Wake::Health | Wake::Drain => {}
            }
        }
    }

    /// Opens the port, waiting up to `wait` for its path to (re)appear.
    async fn open_port(&mut self, wait: Duration) -> Result<(), InitFail> {
        let until = Instant::now() + wait;
        loop {
            match Port::open(&self.cfg.port, self.cfg.baud) {
                Ok(port) => {
                    info!(resolved = %port.resolved.display(), "port opened");
                    self.port = Some(port);
                    self.digester = Digester::new();
                    self.mem1 = None;
                    return Ok(());
                }
                Err(e) => {
                    if Instant::now() >= until {
                        return Err(InitFail::Gone(format!(
                            "cannot open {}: {e}",
                            self.cfg.port.display()
                        )));
                    }
                    trace!(error = %e, "port not available yet");
                    self.idle_wait(self.cfg.timeouts.reopen_poll).await?;
                }
            }
        }
    }

    fn drop_port(&mut self) {
        if self.port.take().is_some() {
            warn!("port dropped");
        }
        self.digester = Digester::new();
        self.mem1 = None;
    }

    /// Brings the modem (back) to Ready, escalating on failure; `Err` only for shutdown or out of
    /// the pool.
    async fn recover(&mut self, trouble: Option<Trouble>) -> Result<(), InitFail> {
        self.rejecting = true;
        let t = self.cfg.timeouts;
        let mut attempt: u32 = 0;
        let mut reboot_only = false;
        match &trouble {
            None => self.set_state(ModemState::Initializing),
            Some(Trouble::Gone(reason)) => {
                warn!(%reason, "port vanished");
                self.drop_port();
                self.set_state(ModemState::Vanished);
            }
            Some(Trouble::Stalled(reason)) => {
                warn!(%reason, "modem stalled; recovering");
                self.set_state(ModemState::Recovering);
            }
            Some(Trouble::Reboot) => {
                reboot_only = true;
                self.set_state(ModemState::Initializing);
            }
            Some(Trouble::Shutdown) => return Err(InitFail::Shutdown),
        }
        if trouble.is_some() {
            self.status.send_modify(|s| s.recoveries += 1);
        }
        loop {
            if self.cancel.is_cancelled() {
                return Err(InitFail::Shutdown);
            }
            let step = if self.port.is_none() {
                if attempt >= 3 * t.recovery_cycles {
                    RecoveryStep::GiveUp
                } else {
                    RecoveryStep::Reopen
                }
            } else if reboot_only || trouble.is_none() {
                // A fresh start or an announced reboot: just init.
                RecoveryStep::Resync
            } else {
                recovery::step_for(attempt, t.recovery_cycles)
            };
            let res = match step {
                RecoveryStep::GiveUp => {
                    return Err(InitFail::OutOfPool(format!(
                        "{attempt} recovery attempts failed"
                    )));
                }
                RecoveryStep::Resync => {
                    if trouble.is_some() && !reboot_only {
                        warn!(attempt, "recovery: ESC + Ctrl-Z, then AT");
                        let _ = self.write(&[ESC, CTRL_Z, b'\r']).await;
                    }
                    self.init(t.sync_interval * t.sync_attempts).await
                }
                RecoveryStep::Reset => {
                    warn!(attempt, "recovery: AT+CFUN=1,1 (modem reset)");
                    let _ = self.write(&[ESC, CTRL_Z, b'\r']).await;
                    match self.simple(Command::cfun_reset()).await {
                        Err(ExecError::Gone(r)) => Err(InitFail::Gone(r)),
                        _ => self.init(t.reboot_wait).await,
                    }
                }
                RecoveryStep::Reopen => {
                    if self.port.is_some() {
                        warn!(attempt, "recovery: reopening the port");
                        self.drop_port();
                    }
                    self.set_state(ModemState::Vanished);
                    match self.open_port(t.reboot_wait).await {
                        Ok(()) => {
                            self.set_state(ModemState::Initializing);
                            self.init(t.reboot_wait).await
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match res {
                Ok(()) => {
                    self.set_state(ModemState::Ready);
                    return Ok(());
                }
                Err(InitFail::Shutdown) => return Err(InitFail::Shutdown),
                Err(InitFail::OutOfPool(r)) => return Err(InitFail::OutOfPool(r)),
                Err(InitFail::Gone(r)) => {
                    warn!(attempt, reason = %r, "port gone during recovery");
                    self.drop_port();
                    self.set_state(ModemState::Vanished);
                }
                Err(InitFail::Failed(r)) => {
                    warn!(attempt, reason = %r, "init failed");
                    self.note_error(r);
                    if self.state() != ModemState::Vanished {
                        self.set_state(ModemState::Recovering);
                    }
                }
            }
            reboot_only = false;
            attempt += 1;
            let delay =
                recovery::backoff(t.recovery_base, t.recovery_max, attempt.saturating_sub(1));
            self.idle_wait(delay).await?;
        }
    }

    /// Wake/sync (MODEMS.md §1.1 step 1), also after whoever drove the modem before us died in
    /// the middle of a conversation. A modem keeps talking into a closed port, and a tty keeps
    /// what nobody read: the answer to the dead process's last command, a `+CMGS` that came late,
    /// a `> ` prompt still waiting for its PDU. Taking the first `OK` we read as the answer to our
    /// `AT` left every later answer one command behind, for ever (found by tests/daemon_crash.rs).
    /// So each round:
    /// 1. ESC + CR (Ctrl-Z + CR on odd rounds, for firmware that ignores ESC): ESC closes an open
    ///    prompt without sending anything (27.005 §3.5.1, [QEC §9.8]); outside a prompt the modem
    ///    ignores it, and the CR keeps it from prefixing our next command;
    /// 2. read until the line has been quiet for `sync_quiet`: whatever was still due arrives and
    ///    is dropped (URCs among it are handled as always);
    /// 3. `ATE0`, then `AT`: each must get exactly one final result, `OK`, and the line must stay
    ///    quiet after it. A second final result means we were still behind: the round starts over.
    ///
    /// Rounds start until `within` has passed; then sync fails and recovery escalates.
    async fn sync(&mut self, within: Duration) -> Result<(), InitFail> {
        let t = self.cfg.timeouts;
        let until = Instant::now() + within;
        // A round in progress may finish after `until`; a babbling line may not hold it for ever.
        let hard_until = until + 4 * t.sync_quiet + 2 * t.ping;
        let mut round = 0u32;
        loop {
            let closer: &[u8] = if round.is_multiple_of(2) {
                &[ESC, b'\r']
            } else {
                &[CTRL_Z, b'\r']
            };
            self.write(closer).await?;
            let mut clean = match self.settle(t.sync_quiet, hard_until).await? {
                Some(stray) => {
                    if stray > 0 {
                        info!(stray, "stale modem output from before dropped");
                    }
                    true
                }
                None => false,
            };
            for probe in [Command::ate(false), Command::at()] {
                if !clean {
                    break;
                }
                clean = match self.exec(&probe, t.ping).await {
                    Ok(a) if a.result.is_ok() => {
                        match self.settle(t.sync_quiet, hard_until).await? {
                            Some(0) => true,
                            Some(stray) => {
                                debug!(probe = probe.echo(), stray, "answers still behind");
                                false
                            }
                            None => false,
                        }
                    }
                    Ok(a) => {
                        debug!(probe = probe.echo(), result = ?a.result, "sync probe refused");
                        false
                    }
                    Err(ExecError::Gone(r)) => return Err(InitFail::Gone(r)),
                    Err(ExecError::Timeout { .. }) => false,
                };
            }
            if clean {
                return Ok(());
            }
            if self.cancel.is_cancelled() {
                return Err(InitFail::Shutdown);
            }
            if Instant::now() >= until {
                return Err(InitFail::Failed(format!(
                    "no clean answer to ATE0/AT within {within:?}"
                )));
            }
            round += 1;
            self.idle_wait(t.sync_interval).await?;
        }
    }

    /// Reads until nothing has arrived for `quiet`, handling URCs on the way (requests are
    /// refused, acks collected). Returns how many final results arrived that no command of ours
    /// was waiting for, or `None` if the line did not go quiet before `until`.
    async fn settle(&mut self, quiet: Duration, until: Instant) -> Result<Option<usize>, InitFail> {
        let mut stray = self.take_stray_items();
        let mut quiet_at = Instant::now() + quiet;
        loop {
            if quiet_at > until && Instant::now() >= until {
                return Ok(None);
            }
            let port = self
                .port
                .as_mut()
                .ok_or_else(|| InitFail::Gone("port is not open".into()))?;
            let ev = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => Wake::Cancel,
                outcome = port.read(&mut self.buf) => Wake::Read(outcome),
                _ = sleep_until(quiet_at.min(until)) => Wake::Deadline,
                Some(req) = self.call_rx.recv() => Wake::Request(req),
                Some(req) = self.rx.recv() => Wake::Request(req),
                Some(done) = self.acks.next(), if !self.acks.is_empty() => Wake::Ack(done),
            };
            match ev {
                Wake::Cancel => return Err(InitFail::Shutdown),
                Wake::Read(ReadOutcome::Data(0)) => {}
                Wake::Read(ReadOutcome::Data(n)) => {
                    self.feed(n);
                    stray += self.take_stray_items();
                    quiet_at = Instant::now() + quiet;
                }
                Wake::Read(ReadOutcome::Gone(reason)) => return Err(InitFail::Gone(reason)),
                Wake::Deadline if Instant::now() >= quiet_at => return Ok(Some(stray)),
                Wake::Deadline => {}
                Wake::Request(req) => {
                    let reason = self.unavailable_reason();
                    self.reject(req, &reason);
                }
                Wake::Ack(done) => self.on_ack(done),
                Wake::Permit | Wake::Health | Wake::Drain => {}
            }
        }
    }

    /// Like [`Self::take_idle_items`], counting the final results (answers to nobody's command).
    fn take_stray_items(&mut self) -> usize {
        let mut finals = 0;
        while let Some(item) = self.digester.next_item() {
            trace!(?item, "from modem");
            match item {
                Item::Urc(u) => self.on_urc(u),
                Item::Final(result) => {
                    debug!(?result, "stale final result dropped");
                    finals += 1;
                }
                other => debug!(?other, "stale modem output dropped"),
            }
        }
        self.flush_backlog();
        finals
    }

    /// Runs the init plan; Ready only after the storage drain.
    async fn init(&mut self, sync_within: Duration) -> Result<(), InitFail> {
        if self.port.is_none() {
            self.open_port(Duration::ZERO).await?;
        }
        let profile = self.cfg.profile;
        for st in init::plan(profile, self.cfg.init) {
            if self.cancel.is_cancelled() {
                return Err(InitFail::Shutdown);
            }
            let outcome: Result<(), String> = match st.step {
                Step::Sync => {
                    self.sync(sync_within).await?;
                    Ok(())
                }
                Step::Plain(build) => match build() {
                    Ok(cmd) => {
                        let a = self.simple(cmd.clone()).await?;
                        if a.result.is_ok() {
                            Ok(())
                        } else {
                            Err(format!("{}: {:?}", cmd.echo(), a.result))
                        }
                    }
                    Err(e) => Err(e.to_string()),
                },
                Step::Pin => self.step_pin().await?,
                Step::Cfun => self.step_cfun().await?,
                Step::Ident(field, build) => self.step_ident(field, build).await?,
                Step::Cvoice => {
                    let a = self.simple(Command::cvoice_query()).await?;
                    let voice = a.result.is_ok()
                        && a.lines
                            .iter()
                            .any(|l| response::parse_cvoice(l).is_ok_and(|c| c.enabled));
                    self.status.send_modify(|s| s.voice = Some(voice));
                    if voice {
                        Ok(())
                    } else {
                        Err("no voice (^CVOICE)".into())
                    }
                }
                Step::Csca => {
                    let a = self.simple(Command::csca_query()).await?;
                    match a.lines.iter().find_map(|l| response::parse_csca(l).ok()) {
                        Some(c) if a.result.is_ok() => {
                            let number = (!c.number.is_empty()).then_some(c.number);
                            if number.is_none() {
                                warn!(
                                    "SMSC address is empty: sends will fail with +CMS ERROR: 330"
                                );
                            }
                            self.status.send_modify(|s| s.smsc = number);
                            Ok(())
                        }
                        _ => Err(format!("AT+CSCA?: {:?}", a.result)),
                    }
                }
                Step::Cpms => {
                    let a = match Command::cpms("SM", "SM", "SM") {
                        Ok(cmd) => self.simple(cmd).await?,
                        Err(e) => return Err(InitFail::Failed(e.to_string())),
                    };
                    if a.result.is_ok() {
                        self.mem1 = Some("SM".into());
                        let usage = a.lines.iter().find_map(|l| response::parse_cpms(l).ok());
                        if let Some(u) = usage.as_ref().and_then(|u| u.last()) {
                            self.status
                                .send_modify(|s| s.storage = Some((u.used, u.total)));
                        }
                        Ok(())
                    } else {
                        Err(format!("AT+CPMS: {:?}", a.result))
                    }
                }
                Step::Cops => {
                    self.query_cops().await?;
                    Ok(())
                }
                Step::Creg => {
                    self.query_creg().await?;
                    Ok(())
                }
                Step::Csq => {
                    self.query_csq().await?;
                    Ok(())
                }
                Step::Drain => {
                    self.drain().await?;
                    Ok(())
                }
            };
            if let Err(detail) = outcome {
                match st.on_error {
                    OnError::Fatal => return Err(InitFail::Failed(detail)),
                    OnError::Ignore => debug!(%detail, "optional init step failed"),
                    OnError::NoSms => {
                        return Err(InitFail::OutOfPool(format!("SMS not usable: {detail}")));
                    }
                    OnError::FeatureOff(feature) => {
                        info!(feature, %detail, "feature off");
                        self.status.send_modify(|s| {
                            if !s.disabled_features.iter().any(|f| f == feature) {
                                s.disabled_features.push(feature.to_owned());
                            }
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// `AT+CPIN?` and, once, the configured PIN (MODEMS.md §1.1 step 5). Never retries a PIN:
    /// three wrong PINs lock the SIM behind the PUK.
    async fn step_pin(&mut self) -> Result<Result<(), String>, InitFail> {
        let t = self.cfg.timeouts;
        let state = self.cpin_state().await?;
        match state {
            Ok(response::PinState::Ready) => return Ok(Ok(())),
            Ok(response::PinState::SimPin) => {}
            Ok(response::PinState::SimPuk) => {
                return Err(InitFail::OutOfPool("SIM is PUK-locked".into()));
            }
            Ok(other) => return Err(InitFail::OutOfPool(format!("SIM asks for {other:?}"))),
            Err(f) => {
                if f.class() == super::ErrorClass::SimFailure {
                    return Err(InitFail::OutOfPool(format!("SIM failure: {f}")));
                }
                return Ok(Err(format!("AT+CPIN?: {f}")));
            }
        }
        let Some(pin) = self.cfg.pin.clone() else {
            return Err(InitFail::OutOfPool(
                "SIM asks for a PIN and none is configured".into(),
            ));
        };
        if self.pin_failed {
            return Err(InitFail::OutOfPool(
                "configured PIN was refused before; not retrying".into(),
            ));
        }
        if let Some(q) = init::pin_tries_command(self.cfg.profile) {
            let a = self.simple(q).await?;
            let left = response::parse_pin_attempts(&a.lines)
                .ok()
                .and_then(|t| t.pin);
            if let Some(left) = left {
                info!(left, "PIN attempts left");
                if left <= 1 {
                    return Err(InitFail::OutOfPool(format!(
                        "only {left} PIN attempt left; refusing to risk the PUK lock"
                    )));
                }
            }
        }
        let cmd = match Command::cpin_enter(&pin) {
            Ok(c) => c,
            Err(e) => {
                return Err(InitFail::OutOfPool(format!(
                    "configured PIN is unusable: {e}"
                )));
            }
        };
        info!("entering the configured SIM PIN");
        let a = self.exec(&cmd, t.pin).await?;
        if !a.result.is_ok() {
            self.pin_failed = true;
            return Err(InitFail::OutOfPool(format!(
                "SIM refused the configured PIN ({}); not retrying",
                failure(&a.result)
            )));
        }
        // The SIM takes a moment to become READY after the PIN.
        let until = Instant::now() + t.pin;
        loop {
            if let Ok(response::PinState::Ready) = self.cpin_state().await? {
                return Ok(Ok(()));
            }
            if Instant::now() >= until {
                return Ok(Err("SIM not ready after the PIN".into()));
            }
            self.idle_wait(t.busy_step).await?;
        }
    }

    async fn cpin_state(&mut self) -> Result<Result<response::PinState, Failure>, InitFail> {
        let a = self.simple(init::cpin_command(self.cfg.profile)).await?;
        // Wavecom answers `+CPIN: READY` without OK; the digester turns that into the final.
        let parsed = a.lines.iter().find_map(|l| response::parse_cpin(l).ok());
        Ok(match parsed {
            Some(s) if !a.result.is_error() => Ok(s),
            _ if a.result.is_error() => Err(failure(&a.result)),
            _ => Err(Failure::Other {
                text: "no +CPIN line".into(),
            }),
        })
    }

    /// `AT+CFUN?`, and `AT+CFUN=1` when not fully functional (MODEMS.md §1.1 step 6). Busy answers
    /// after it (Wavecom 515) are absorbed by the busy repetition of every later command.
    async fn step_cfun(&mut self) -> Result<Result<(), String>, InitFail> {
        let a = self.simple(Command::cfun_query()).await?;
        let fun = a.lines.iter().find_map(|l| response::parse_cfun(l).ok());
        if fun == Some(1) {
            return Ok(Ok(()));
        }
        let a = match Command::cfun(1) {
            Ok(cmd) => self.simple(cmd).await?,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if a.result.is_ok() {
            Ok(Ok(()))
        } else {
            Ok(Err(format!("AT+CFUN=1: {:?}", a.result)))
        }
    }

    async fn step_ident(
        &mut self,
        field: IdentField,
        build: init::Builder,
    ) -> Result<Result<(), String>, InitFail> {
        let cmd = match build() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let text = cmd.echo().to_owned();
        let a = self.simple(cmd).await?;
        if !a.result.is_ok() {
            return Ok(Err(format!("{text}: {:?}", a.result)));
        }
        let value = match field {
            IdentField::Manufacturer => response::parse_text_answer(&a.lines, "+CGMI:"),
            IdentField::Model => response::parse_text_answer(&a.lines, "+CGMM:"),
            IdentField::Revision => response::parse_text_answer(&a.lines, "+CGMR:"),
            IdentField::Imei => response::parse_imei(&a.lines),
            IdentField::Imsi => response::parse_imsi(&a.lines),
            IdentField::Iccid => response::parse_iccid(&a.lines),
        };
        let value = match value {
            Ok(v) => v,
            Err(e) => return Ok(Err(format!("{text}: {e}"))),
        };
        self.status.send_modify(|s| {
            let id = &mut s.identity;
            let slot = match field {
                IdentField::Manufacturer => &mut id.manufacturer,
                IdentField::Model => &mut id.model,
                IdentField::Revision => &mut id.revision,
                IdentField::Imei => &mut id.imei,
                IdentField::Imsi => &mut id.imsi,
                IdentField::Iccid => &mut id.iccid,
            };
            *slot = Some(value);
        });
        Ok(Ok(()))
    }

    // ----------------------------------------------------------------------------------------
    // out of pool and shutdown
    // ----------------------------------------------------------------------------------------

    /// Out of the pool: every request is refused. With `watch_port` (it went out because its port
    /// vanished), the device path is checked every `reopen_poll` and [`PoolExit::PortBack`]
    /// returned when it exists again.
    async fn out_of_pool(&mut self, reason: String, watch_port: bool) -> PoolExit {
        warn!(%reason, "taking the modem out of the pool");
        self.rejecting = true;
        self.set_state(ModemState::OutOfPool {
            reason: reason.clone(),
        });
        self.publish(ModemEvent::Alert {
            modem: self.name.clone(),
            reason: format!("out of the pool: {reason}"),
        });
        loop {
            self.flush_backlog();
            let read = async {
                match self.port.as_mut() {
                    Some(p) => p.read(&mut self.buf).await,
                    None => std::future::pending().await,
                }
            };
            let ev = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => Wake::Cancel,
                Some(req) = self.call_rx.recv() => Wake::Request(req),
                Some(req) = self.rx.recv() => Wake::Request(req),
                // No deletes out of the pool: an acked message stays on the SIM and is found again
                // (and deduplicated above) when the modem comes back.
                Some(_done) = self.acks.next(), if !self.acks.is_empty() => Wake::Permit,
                outcome = read => Wake::Read(outcome),
                _ = tokio::time::sleep(self.cfg.timeouts.reopen_poll), if watch_port => Wake::Deadline,
            };
            match ev {
                Wake::Cancel => return PoolExit::Shutdown,
                Wake::Deadline if self.cfg.port.exists() => return PoolExit::PortBack,
                Wake::Request(req) => {
                    let reason = self.unavailable_reason();
                    self.reject(req, &reason);
                }
                Wake::Read(ReadOutcome::Data(n)) => {
                    self.feed(n);
                    self.take_idle_items();
                }
                Wake::Read(ReadOutcome::Gone(_)) => self.drop_port(),
                Wake::Ack(_) | Wake::Permit | Wake::Deadline | Wake::Health | Wake::Drain => {}
            }
        }
    }

    async fn finish(&mut self) {
        self.rejecting = true;
        let reason = "modem is shutting down";
        while let Ok(req) = self.call_rx.try_recv() {
            self.reject(req, reason);
        }
        while let Ok(req) = self.rx.try_recv() {
            self.reject(req, reason);
        }
        if !matches!(self.state(), ModemState::OutOfPool { .. }) {
            self.set_state(ModemState::Disabled);
        }
        self.flush_backlog();
        info!("modem actor stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_checks() {
        let ok = OutgoingPart {
            hex: "0011000B916407281553F80000AA0AE8329BFD4697D9EC37".into(),
            tpdu_len: 23,
        };
        assert!(check_part(&ok).is_ok());
        let bad_len = OutgoingPart {
            tpdu_len: 24,
            ..ok.clone()
        };
        assert!(check_part(&bad_len).is_err());
        let bad_hex = OutgoingPart {
            hex: "00XY".into(),
            tpdu_len: 1,
        };
        assert!(check_part(&bad_hex).is_err());
        let short = OutgoingPart {
            hex: "07".into(),
            tpdu_len: 0,
        };
        assert!(check_part(&short).is_err());
        let empty = OutgoingPart {
            hex: String::new(),
            tpdu_len: 0,
        };
        assert!(check_part(&empty).is_err());
    }

    #[test]
    fn storage_names() {
        assert_eq!(storage_name("\"SM\""), "SM");
        assert_eq!(storage_name("sr"), "SR");
        assert_eq!(storage_name("0"), "SM");
        assert_eq!(storage_name(""), "SM");
    }

    #[test]
    fn status_report_detection() {
        // MODEMS.md §2.5 #9 (status report, no SMSC) and #1 (deliver with SMSC).
        let sr = pdu_bytes("0006D60B911326880736F4111011719551401110117195714000").unwrap();
        assert!(is_status_report(&sr));
        let deliver =
            pdu_bytes("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
                .unwrap();
        assert!(!is_status_report(&deliver));
        assert!(!is_status_report(&[]));
        assert!(!is_status_report(&[5, 1]));
    }

    #[test]
    fn only_housekeeping_waits_behind_requests() {
        let read = |report| Work::Read {
            storage: "SR".into(),
            index: 1,
            report,
        };
        assert!(read(true).can_wait());
        assert!(!read(false).can_wait(), "an inbound text may need a reply");
        assert!(
            Work::Delete {
                storage: "SM".into(),
                index: 1
            }
            .can_wait()
        );
        assert!(Work::Drain.can_wait());
        assert!(!Work::Cnma { ok: true }.can_wait(), "the network times out");
    }

    #[test]
    fn busy_results() {
        assert!(is_busy(&FinalResult::CmeError(ErrorCode::Numeric(515))));
        assert!(is_busy(&FinalResult::CmsError(ErrorCode::Numeric(314))));
        assert!(!is_busy(&FinalResult::CmsError(ErrorCode::Numeric(331))));
        assert!(!is_busy(&FinalResult::Ok));
    }
}
