//! The modem's life around serving: bringing it (back) to Ready along the recovery ladder, opening
//! and dropping the port, the health poll, out of the pool (and back when a vanished port
//! returns), and shutdown.
//!
//! It owns the modem's state transitions outside serving (Initializing, Suspect, Recovering,
//! Vanished, OutOfPool, Disabled) and the order of escalation; a suspect modem (its send's
//! `+CMGS` never came) starts at the first rung, whose `AT` is the liveness probe. The back-off and ladder maths are
//! [`crate::modem::recovery`]'s (pure, tested without a pty); running the init plan is
//! `bringup`'s. It must not touch the queued requests beyond refusing them: nothing is sent while
//! the modem is not Ready.
//!
//! Non-obvious choices:
//! - Liveness is judged by command answers (the health poll), never by URC traffic: a hung Huawei
//!   E1550 keeps sending `^RSSI`/`^BOOT` while answering nothing (chan_dongle's `BUGS`).
//! - The ladder is the one existing modem daemons climb: ESC + Ctrl-Z then `AT` (smstools3 and
//!   Gammu close a stuck prompt this way), `AT+CFUN=1,1` (chan_dongle's "reset"), reopening the
//!   port, then out of the pool with an alert.
//! - Out of the pool, acks are collected but nothing is deleted: an acked message stays on the SIM
//!   and is found again (and deduplicated above) when the modem comes back.

use std::time::Duration;

use futures_util::stream::StreamExt;
use tokio::time::{Instant, sleep_until};
use tracing::{info, trace, warn};

use super::exec::{CTRL_Z, ESC, ExecError};
use super::{ModemActor, Trouble, Wake};
use crate::at::{Command, Digester, response};
use crate::modem::events::ModemEvent;
use crate::modem::port::{Port, ReadOutcome};
use crate::modem::recovery::{self, RecoveryStep};
use crate::modem::status::{ModemState, Registration, rssi_dbm};

/// How [`ModemActor::out_of_pool`] ended.
pub(super) enum PoolExit {
    Shutdown,
    /// The vanished port exists again: initialise from the start.
    PortBack,
}

/// Why init or a recovery step failed.
#[derive(Debug)]
pub(super) enum InitFail {
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

impl ModemActor {
    /// Brings the modem (back) to Ready, escalating on failure; `Err` only for shutdown or out of
    /// the pool.
    pub(super) async fn recover(&mut self, trouble: Option<Trouble>) -> Result<(), InitFail> {
        self.rejecting = true;
        self.enter_recovery(trouble.as_ref())?;
        let t = self.cfg.timeouts;
        let mut attempt: u32 = 0;
        let mut reboot_only = matches!(trouble, Some(Trouble::Reboot));
        loop {
            if self.cancel.is_cancelled() {
                return Err(InitFail::Shutdown);
            }
            // A fresh start or an announced reboot only needs init, the first time.
            let plain_init = reboot_only || trouble.is_none();
            let step = self.next_step(attempt, plain_init);
            match self.try_step(step, attempt, !plain_init).await {
                Ok(()) => {
                    self.set_state(ModemState::Ready);
                    return Ok(());
                }
                Err(e) => self.attempt_failed(attempt, e)?,
            }
            reboot_only = false;
            attempt += 1;
            let delay =
                recovery::backoff(t.recovery_base, t.recovery_max, attempt.saturating_sub(1));
            self.idle_wait(delay).await?;
        }
    }

    /// Sets the state that the trouble (or a fresh start) begins recovery in.
    fn enter_recovery(&mut self, trouble: Option<&Trouble>) -> Result<(), InitFail> {
        match trouble {
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
            Some(Trouble::Suspect(reason)) => {
                warn!(%reason, "modem suspect: the send is in doubt; probing (ESC + Ctrl-Z, then AT)");
                self.set_state(ModemState::Suspect {
                    reason: reason.clone(),
                });
            }
            Some(Trouble::Reboot) => self.set_state(ModemState::Initializing),
            Some(Trouble::Shutdown) => return Err(InitFail::Shutdown),
        }
        if trouble.is_some() {
            self.status.send_modify(|s| s.recoveries += 1);
        }
        Ok(())
    }

    /// The rung of the ladder for this attempt. Without a port only reopening can help, for as
    /// many attempts as the whole ladder would take.
    fn next_step(&self, attempt: u32, plain_init: bool) -> RecoveryStep {
        let cycles = self.cfg.timeouts.recovery_cycles;
        if self.port.is_none() {
            if attempt >= 3 * cycles {
                RecoveryStep::GiveUp
            } else {
                RecoveryStep::Reopen
            }
        } else if plain_init {
            RecoveryStep::Resync
        } else {
            recovery::step_for(attempt, cycles)
        }
    }

    /// Runs one rung and then init; `close_prompt` (a recovery, not a fresh start or an announced
    /// reboot): a resync first closes a prompt a stalled exchange may have left open, and the
    /// rung is counted in the status.
    async fn try_step(
        &mut self,
        step: RecoveryStep,
        attempt: u32,
        close_prompt: bool,
    ) -> Result<(), InitFail> {
        let t = self.cfg.timeouts;
        match step {
            RecoveryStep::GiveUp => Err(InitFail::OutOfPool(format!(
                "{attempt} recovery attempts failed"
            ))),
            RecoveryStep::Resync => {
                if close_prompt {
                    warn!(attempt, "recovery: ESC + Ctrl-Z, then AT");
                    self.status.send_modify(|s| s.rungs.resync += 1);
                    let _ = self.write(&[ESC, CTRL_Z, b'\r']).await;
                }
                self.init(t.sync_interval * t.sync_attempts).await
            }
            RecoveryStep::Reset => {
                warn!(attempt, "recovery: AT+CFUN=1,1 (modem reset)");
                self.status.send_modify(|s| s.rungs.reset += 1);
                let _ = self.write(&[ESC, CTRL_Z, b'\r']).await;
                match self.simple(Command::cfun_reset()).await {
                    Err(ExecError::Gone(r)) => Err(InitFail::Gone(r)),
                    _ => self.init(t.reboot_wait).await,
                }
            }
            RecoveryStep::Reopen => {
                // The first open of a fresh start is no rung.
                if close_prompt {
                    self.status.send_modify(|s| s.rungs.reopen += 1);
                }
                if self.port.is_some() {
                    warn!(attempt, "recovery: reopening the port");
                    self.drop_port();
                }
                self.set_state(ModemState::Vanished);
                self.open_port(t.reboot_wait).await?;
                self.set_state(ModemState::Initializing);
                self.init(t.reboot_wait).await
            }
        }
    }

    /// Records a failed attempt; passes on the failures that end recovery.
    fn attempt_failed(&mut self, attempt: u32, e: InitFail) -> Result<(), InitFail> {
        match e {
            InitFail::Shutdown | InitFail::OutOfPool(_) => return Err(e),
            InitFail::Gone(r) => {
                warn!(attempt, reason = %r, "port gone during recovery");
                self.drop_port();
                self.set_state(ModemState::Vanished);
            }
            InitFail::Failed(r) => {
                warn!(attempt, reason = %r, "init failed");
                self.note_error(r);
                if self.state() != ModemState::Vanished {
                    self.set_state(ModemState::Recovering);
                }
            }
        }
        Ok(())
    }

    /// Waits `d` while answering requests with "unavailable" and collecting acks.
    pub(super) async fn idle_wait(&mut self, d: Duration) -> Result<(), InitFail> {
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
                Wake::Request(req) => self.refuse(req),
                Wake::Ack(done) => self.on_ack(done),
                Wake::Read(_) | Wake::Permit | Wake::Health | Wake::Drain => {}
            }
        }
    }

    /// Opens the port, waiting up to `wait` for its path to (re)appear.
    pub(super) async fn open_port(&mut self, wait: Duration) -> Result<(), InitFail> {
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

    /// Health poll: `AT+CSQ`, `AT+CREG?`, `AT+COPS?` (3GPP TS 27.007 §8.5, §7.2, §7.3). A timeout
    /// means the modem stalled.
    pub(super) async fn poll_health(&mut self) -> Result<(), ExecError> {
        self.query_csq().await?;
        self.query_creg().await?;
        self.query_cops().await?;
        Ok(())
    }

    pub(super) async fn query_csq(&mut self) -> Result<(), ExecError> {
        let a = self.simple(Command::csq()).await?;
        if let Some(csq) = a.lines.iter().find_map(|l| response::parse_csq(l).ok()) {
            self.status.send_modify(|s| {
                s.rssi = Some(csq.rssi);
                s.dbm = rssi_dbm(csq.rssi);
            });
        }
        Ok(())
    }

    pub(super) async fn query_creg(&mut self) -> Result<(), ExecError> {
        let a = self.simple(Command::creg_query()).await?;
        if let Some(r) = a.lines.iter().find_map(|l| response::parse_creg(l).ok()) {
            let reg = Registration::from_stat(r.stat);
            self.status.send_modify(|s| s.registration = Some(reg));
        }
        Ok(())
    }

    pub(super) async fn query_cops(&mut self) -> Result<(), ExecError> {
        let a = self.simple(Command::cops_query()).await?;
        if let Some(c) = a.lines.iter().find_map(|l| response::parse_cops(l).ok()) {
            self.status.send_modify(|s| s.operator = c.operator.clone());
        }
        Ok(())
    }

    /// Out of the pool: every request is refused. With `watch_port` (it went out because its port
    /// vanished), the device path is checked every `reopen_poll` and [`PoolExit::PortBack`]
    /// returned when it exists again.
    pub(super) async fn out_of_pool(&mut self, reason: String, watch_port: bool) -> PoolExit {
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
            match self.wait_out_of_pool(watch_port).await {
                Wake::Cancel => return PoolExit::Shutdown,
                Wake::Deadline if self.cfg.port.exists() => return PoolExit::PortBack,
                Wake::Request(req) => self.refuse(req),
                Wake::Read(ReadOutcome::Data(n)) => {
                    self.feed(n);
                    self.take_idle_items();
                }
                Wake::Read(ReadOutcome::Gone(_)) => self.drop_port(),
                Wake::Ack(_) | Wake::Permit | Wake::Deadline | Wake::Health | Wake::Drain => {}
            }
        }
    }

    /// The next thing to happen out of the pool. The port, while it is still open, is read so
    /// the tty never backs up and URCs keep the status current.
    async fn wait_out_of_pool(&mut self, watch_port: bool) -> Wake {
        let read = async {
            match self.port.as_mut() {
                Some(p) => p.read(&mut self.buf).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Wake::Cancel,
            Some(req) = self.call_rx.recv() => Wake::Request(req),
            Some(req) = self.rx.recv() => Wake::Request(req),
            // No deletes out of the pool: the ack is dropped, the message stays on the SIM.
            Some(_done) = self.acks.next(), if !self.acks.is_empty() => Wake::Permit,
            outcome = read => Wake::Read(outcome),
            _ = tokio::time::sleep(self.cfg.timeouts.reopen_poll), if watch_port => Wake::Deadline,
        }
    }

    /// Refuses what is still queued and leaves the final state.
    pub(super) async fn finish(&mut self) {
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
