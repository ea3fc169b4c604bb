//! Bringing the modem up on an open port: getting in step with it (sync), then walking the init
//! plan of [`crate::modem::init`] step by step, filling the status (identity, SMSC, storage,
//! voice, signal, registration) on the way.
//!
//! It owns running each step and reading its answer; the plan itself (order, per-profile variants,
//! what a failure means) is `modem::init`'s, pure and tested without a pty. It must not choose
//! recovery steps (that is `lifecycle`) and never retries a PIN.
//!
//! Non-obvious choices:
//! - Sync demands a quiet line and exactly one `OK` per probe, not just "an `OK`": after a crash the
//!   tty still holds the previous process's answers, and taking one of those for ours would leave
//!   every later answer one command behind (docs/modems.md, "Coming up after a crash").
//! - A step's own failure comes back as `Ok(Err(detail))`, so the plan decides what it means
//!   (fatal, ignored, feature off, no SMS); `Err` is reserved for what ends init whatever the plan
//!   says (the port is gone, shutdown, a SIM that must not be touched again).

use std::time::Duration;

use futures_util::stream::StreamExt;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, trace, warn};

use super::exec::{CTRL_Z, ESC, ExecError, failure};
use super::lifecycle::InitFail;
use super::{ModemActor, Wake};
use crate::at::{Command, FinalResult, Item, response};
use crate::modem::ErrorClass;
use crate::modem::error::Failure;
use crate::modem::init::{self, IdentField, OnError, Step};
use crate::modem::port::ReadOutcome;

/// A step's outcome: `Ok(Err(detail))` is a failure the plan gives a meaning to, `Err` ends init.
type StepResult = Result<Result<(), String>, InitFail>;

/// The step's detail for a command that did not answer `OK`.
fn refused(text: &str, result: &FinalResult) -> String {
    format!("{text}: {result:?}")
}

impl ModemActor {
    /// Runs the init plan; Ready only after the storage drain.
    pub(super) async fn init(&mut self, sync_within: Duration) -> Result<(), InitFail> {
        if self.port.is_none() {
            self.open_port(Duration::ZERO).await?;
        }
        // A SIM may have been swapped while the modem was away: what the last init read about
        // the SIM must not outlive it. The init count moves in the same update, so no reader
        // pairs this init's count (`inits`) with the last init's SIM.
        self.status.send_modify(|s| {
            s.inits = s.inits.wrapping_add(1);
            s.identity.imsi = None;
            s.identity.iccid = None;
            s.identity.own_number = None;
        });
        for st in init::plan(self.cfg.profile, self.cfg.init) {
            if self.cancel.is_cancelled() {
                return Err(InitFail::Shutdown);
            }
            if let Err(detail) = self.run_step(st.step, sync_within).await? {
                self.step_failed(st.on_error, detail)?;
            }
        }
        Ok(())
    }

    async fn run_step(&mut self, step: Step, sync_within: Duration) -> StepResult {
        match step {
            Step::Sync => self.sync(sync_within).await.map(Ok),
            Step::Plain(build) => self.step_plain(build).await,
            Step::Pin => self.step_pin().await,
            Step::Cfun => self.step_cfun().await,
            Step::Ident(field, build) => self.step_ident(field, build).await,
            Step::Cvoice => self.step_cvoice().await,
            Step::Csca => self.step_csca().await,
            Step::Cpms => self.step_cpms().await,
            Step::Cops => Ok(Ok(self.query_cops().await?)),
            Step::Creg => Ok(Ok(self.query_creg().await?)),
            Step::Csq => Ok(Ok(self.query_csq().await?)),
            Step::Drain => Ok(Ok(self.drain().await?)),
        }
    }

    /// Applies what the plan says a step's failure means.
    fn step_failed(&mut self, on_error: OnError, detail: String) -> Result<(), InitFail> {
        match on_error {
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
        Ok(())
    }

    /// Gets in step with the modem, also after whoever drove it before us died in the middle of a
    /// conversation. A modem keeps talking into a closed port, and a tty keeps what nobody read:
    /// the answer to the dead process's last command, a `+CMGS` that came late, a `> ` prompt still
    /// waiting for its PDU. Taking the first `OK` we read as the answer to our `AT` left every later
    /// answer one command behind, for ever (found by tests/daemon_crash.rs). So each round:
    /// 1. ESC + CR (Ctrl-Z + CR on odd rounds, for firmware that ignores ESC): ESC closes an open
    ///    prompt without sending anything (3GPP TS 27.005 §3.5.1; Quectel EC2x AT Commands Manual,
    ///    §9.8 AT+CMGS); outside a prompt the modem ignores it, and the CR keeps it from prefixing
    ///    our next command;
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
            if self.sync_round(round, hard_until).await? {
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

    /// One round of [`Self::sync`]; whether it came out clean.
    async fn sync_round(&mut self, round: u32, hard_until: Instant) -> Result<bool, InitFail> {
        let t = self.cfg.timeouts;
        let closer: &[u8] = if round.is_multiple_of(2) {
            &[ESC, b'\r']
        } else {
            &[CTRL_Z, b'\r']
        };
        self.write(closer).await?;
        match self.settle(t.sync_quiet, hard_until).await? {
            Some(0) => {}
            Some(stray) => info!(stray, "stale modem output from before dropped"),
            None => return Ok(false),
        }
        for probe in [Command::ate(false), Command::at()] {
            let clean = match self.exec(&probe, t.ping).await {
                Ok(a) if a.result.is_ok() => match self.settle(t.sync_quiet, hard_until).await? {
                    Some(0) => true,
                    Some(stray) => {
                        debug!(probe = probe.echo(), stray, "answers still behind");
                        false
                    }
                    None => false,
                },
                Ok(a) => {
                    debug!(probe = probe.echo(), result = ?a.result, "sync probe refused");
                    false
                }
                Err(ExecError::Gone(r)) => return Err(InitFail::Gone(r)),
                Err(ExecError::Timeout { .. }) => false,
            };
            if !clean {
                return Ok(false);
            }
        }
        Ok(true)
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
            match self.wait_settling(quiet_at.min(until)).await? {
                Wake::Cancel => return Err(InitFail::Shutdown),
                Wake::Read(ReadOutcome::Data(0)) => {}
                Wake::Read(ReadOutcome::Data(n)) => {
                    self.feed(n);
                    stray += self.take_stray_items();
                    quiet_at = Instant::now() + quiet;
                }
                Wake::Read(ReadOutcome::Gone(reason)) => return Err(InitFail::Gone(reason)),
                Wake::Deadline if Instant::now() >= quiet_at => return Ok(Some(stray)),
                Wake::Request(req) => self.refuse(req),
                Wake::Ack(done) => self.on_ack(done),
                Wake::Deadline | Wake::Permit | Wake::Health | Wake::Drain => {}
            }
        }
    }

    /// The next thing to happen while settling, no later than `deadline`.
    async fn wait_settling(&mut self, deadline: Instant) -> Result<Wake, InitFail> {
        let port = self
            .port
            .as_mut()
            .ok_or_else(|| InitFail::Gone("port is not open".into()))?;
        Ok(tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Wake::Cancel,
            outcome = port.read(&mut self.buf) => Wake::Read(outcome),
            _ = sleep_until(deadline) => Wake::Deadline,
            Some(req) = self.call_rx.recv() => Wake::Request(req),
            Some(req) = self.rx.recv() => Wake::Request(req),
            Some(done) = self.acks.next(), if !self.acks.is_empty() => Wake::Ack(done),
        })
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

    /// A command whose answer only matters as `OK` or not.
    async fn step_plain(&mut self, build: init::Builder) -> StepResult {
        let cmd = match build() {
            Ok(cmd) => cmd,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let a = self.simple(cmd.clone()).await?;
        if a.result.is_ok() {
            Ok(Ok(()))
        } else {
            Ok(Err(refused(cmd.echo(), &a.result)))
        }
    }

    /// `AT+CPIN?` and, once, the configured PIN (3GPP TS 27.007 §8.3). Never retries a PIN: three
    /// wrong PINs lock the SIM behind the PUK.
    async fn step_pin(&mut self) -> StepResult {
        match self.cpin_state().await? {
            Ok(response::PinState::Ready) => return Ok(Ok(())),
            Ok(response::PinState::SimPin) => {}
            Ok(response::PinState::SimPuk) => {
                return Err(InitFail::OutOfPool("SIM is PUK-locked".into()));
            }
            Ok(other) => return Err(InitFail::OutOfPool(format!("SIM asks for {other:?}"))),
            Err(f) => {
                if f.class() == ErrorClass::SimFailure {
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
        self.check_pin_tries().await?;
        self.enter_pin(&pin).await?;
        self.await_sim_ready().await
    }

    /// Refuses to risk the last PIN attempt, where the profile can tell how many are left.
    async fn check_pin_tries(&mut self) -> Result<(), InitFail> {
        let Some(q) = init::pin_tries_command(self.cfg.profile) else {
            return Ok(());
        };
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
        Ok(())
    }

    /// `AT+CPIN=<pin>`, once: a refusal is remembered so it is never entered again.
    async fn enter_pin(&mut self, pin: &str) -> Result<(), InitFail> {
        let cmd = Command::cpin_enter(pin)
            .map_err(|e| InitFail::OutOfPool(format!("configured PIN is unusable: {e}")))?;
        info!("entering the configured SIM PIN");
        let a = self.exec(&cmd, self.cfg.timeouts.pin).await?;
        if !a.result.is_ok() {
            self.pin_failed = true;
            return Err(InitFail::OutOfPool(format!(
                "SIM refused the configured PIN ({}); not retrying",
                failure(&a.result)
            )));
        }
        Ok(())
    }

    /// The SIM takes a moment to become READY after the PIN.
    async fn await_sim_ready(&mut self) -> StepResult {
        let t = self.cfg.timeouts;
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

    /// `AT+CFUN?`, and `AT+CFUN=1` when not fully functional (3GPP TS 27.007 §8.2). Busy answers
    /// after it (Wavecom 515) are absorbed by the busy repetition of every later command.
    async fn step_cfun(&mut self) -> StepResult {
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
            Ok(Err(refused("AT+CFUN=1", &a.result)))
        }
    }

    async fn step_ident(&mut self, field: IdentField, build: init::Builder) -> StepResult {
        let cmd = match build() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let text = cmd.echo().to_owned();
        let a = self.simple(cmd).await?;
        if !a.result.is_ok() {
            return Ok(Err(refused(&text, &a.result)));
        }
        let value = match field {
            IdentField::Manufacturer => response::parse_text_answer(&a.lines, "+CGMI:"),
            IdentField::Model => response::parse_text_answer(&a.lines, "+CGMM:"),
            IdentField::Revision => response::parse_text_answer(&a.lines, "+CGMR:"),
            IdentField::Imei => response::parse_imei(&a.lines),
            IdentField::Imsi => response::parse_imsi(&a.lines),
            IdentField::Iccid => response::parse_iccid(&a.lines),
            IdentField::OwnNumber => response::parse_cnum(&a.lines)
                .into_iter()
                .next()
                .map(|n| n.number)
                .ok_or(crate::at::AtError::Missing {
                    what: "own number",
                    count: a.lines.len(),
                }),
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
                IdentField::OwnNumber => &mut id.own_number,
            };
            *slot = Some(value);
        });
        Ok(Ok(()))
    }

    /// Huawei `AT^CVOICE?`: whether the stick's firmware carries voice.
    async fn step_cvoice(&mut self) -> StepResult {
        let a = self.simple(Command::cvoice_query()).await?;
        let voice = a.result.is_ok()
            && a.lines
                .iter()
                .any(|l| response::parse_cvoice(l).is_ok_and(|c| c.enabled));
        self.status.send_modify(|s| s.voice = Some(voice));
        if voice {
            Ok(Ok(()))
        } else {
            Ok(Err("no voice (^CVOICE)".into()))
        }
    }

    /// `AT+CSCA?`: the SMSC address (3GPP TS 27.005 §3.3.1).
    async fn step_csca(&mut self) -> StepResult {
        let a = self.simple(Command::csca_query()).await?;
        match a.lines.iter().find_map(|l| response::parse_csca(l).ok()) {
            Some(c) if a.result.is_ok() => {
                let number = (!c.number.is_empty()).then_some(c.number);
                if number.is_none() {
                    warn!("SMSC address is empty: sends will fail with +CMS ERROR: 330");
                }
                self.status.send_modify(|s| s.smsc = number);
                Ok(Ok(()))
            }
            _ => Ok(Err(refused("AT+CSCA?", &a.result))),
        }
    }

    /// `AT+CPMS="SM","SM","SM"` and the storage's fill level (3GPP TS 27.005 §3.2.2).
    async fn step_cpms(&mut self) -> StepResult {
        let a = match Command::cpms("SM", "SM", "SM") {
            Ok(cmd) => self.simple(cmd).await?,
            Err(e) => return Err(InitFail::Failed(e.to_string())),
        };
        if !a.result.is_ok() {
            return Ok(Err(refused("AT+CPMS", &a.result)));
        }
        self.mem1 = Some("SM".into());
        let usage = a.lines.iter().find_map(|l| response::parse_cpms(l).ok());
        if let Some(u) = usage.as_ref().and_then(|u| u.last()) {
            self.status
                .send_modify(|s| s.storage = Some((u.used, u.total)));
        }
        Ok(Ok(()))
    }
}
