//! One AT command in flight: writing it, writing its body at the `> ` prompt, collecting its
//! information lines until its final result, the deadlines that bound the exchange, and the "busy,
//! try again" repetition.
//!
//! It owns the mechanics of one exchange and nothing of what an answer means: init, inbound work,
//! sends and admin requests read the [`Answer`] themselves. URCs that arrive in the middle of an
//! exchange are handed to the inbound side (`on_urc`) on the spot, exactly as between commands, so a
//! `+CMTI` between an echo and its `OK` is queued as work and never taken for the answer; which line
//! is which is the `at` digester's decision, by prefix, not this file's.
//!
//! Non-obvious choices:
//! - The answer is the first final result *for this command*. A `+CMGS: <mr>` that arrives while
//!   another command waits is the tail of an abandoned send (a killed process, a timed-out part),
//!   so the final result after it is skipped; so is an `OK` before the prompt of `AT+CMGS`, which
//!   can only be an earlier command's. Taking either as ours would leave every later answer one
//!   command behind.
//! - `submitted` turns true before the body (PDU + Ctrl-Z) is written: from then on the network may
//!   have the message whatever happens next, and the caller must report it as in doubt.
//! - While init or recovery run commands (`rejecting`), requests are refused as they arrive instead
//!   of waiting a whole recovery; while serving they stay queued for the serve loop.
//! - Shutdown does not abort the exchange: it caps the deadline at the shutdown grace, so a send in
//!   flight still gets its answer if the modem gives one in time.

use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until};
use tracing::{debug, trace, warn};

use super::{ModemActor, Wake};
use crate::at::{Command, CommandKind, ErrorCode, FinalResult, Item, Urc};
use crate::modem::error::Failure;
use crate::modem::port::ReadOutcome;
use crate::modem::recovery;
use crate::modem::status::Waiting;

/// Cancels an open `> ` prompt without sending anything (3GPP TS 27.005 §3.5.1).
pub(super) const ESC: u8 = 0x1B;
/// Ends the PDU at the prompt, sending it; also closes a prompt on firmware that ignores ESC.
pub(super) const CTRL_Z: u8 = 0x1A;

/// A finished command: its information lines and final result.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) lines: Vec<String>,
    pub(super) result: FinalResult,
}

/// Why a command did not finish with a final result.
#[derive(Debug)]
pub(super) enum ExecError {
    /// No final result in time; `submitted` says whether a body (PDU + Ctrl-Z) had been written.
    Timeout { submitted: bool, after: Duration },
    /// The port is gone (EOF, EIO, write failure).
    Gone(String),
}

/// The exchange in flight.
struct InFlight<'c> {
    cmd: &'c Command,
    started: Instant,
    deadline: Instant,
    submitted: bool,
    lines: Vec<String>,
    /// A `+CMGS: <mr>` that no send of ours is waiting for was seen: the rest of a send whose
    /// process or command we gave up on (a crash, a timeout); its final result follows and is not
    /// ours.
    late_send_answer: bool,
}

/// What the digested items call for next.
enum Progress {
    /// Nothing decisive yet: read more from the port.
    More,
    /// The prompt came: write this body.
    Body(Vec<u8>),
    /// The command's final result.
    Done(Answer),
}

/// Whether a final result says "busy, try again shortly": `+CMS ERROR: 314` (SIM busy, 3GPP TS
/// 27.005 §3.2.5), `+CME ERROR: 14` (SIM busy, TS 27.007 §9.2) and the vendor `+CME ERROR: 515`
/// (device busy; Wavecom answers it twice after `AT+CFUN=1`).
pub(super) fn is_busy(r: &FinalResult) -> bool {
    matches!(
        r,
        FinalResult::CmsError(ErrorCode::Numeric(314))
            | FinalResult::CmeError(ErrorCode::Numeric(14 | 515))
    )
}

/// The [`Failure`] of a non-OK final result.
pub(super) fn failure(r: &FinalResult) -> Failure {
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

/// Whether a line is a `+CMGS: <mr>` information response (27.005 §3.5.1).
fn is_cmgs_line(line: &str) -> bool {
    line.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("+CMGS:"))
}

/// Whether a command is a send, `AT+CMGS=<length>` (27.005 §3.5.1).
fn is_cmgs_command(cmd: &Command) -> bool {
    cmd.expects_prompt()
        && cmd
            .echo()
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("AT+CMGS="))
}

/// Wall-clock unix ms for the status snapshot (the modem layer keeps no clock of its own; readers
/// compare it with theirs).
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ModemActor {
    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<(), ExecError> {
        let Some(port) = self.port.as_mut() else {
            return Err(ExecError::Gone("port is not open".into()));
        };
        trace!(tx = %String::from_utf8_lossy(bytes).escape_debug(), "to modem");
        port.write_all(bytes)
            .await
            .map_err(|e| ExecError::Gone(format!("write failed: {e}")))
    }

    /// Feeds bytes read from the port into the digester.
    pub(super) fn feed(&mut self, n: usize) {
        let bytes = self.buf.get(..n).unwrap_or_default();
        trace!(rx = %String::from_utf8_lossy(bytes).escape_debug(), "raw from modem");
        self.digester.feed(bytes);
    }

    /// Handles the digester's items while no command is in flight.
    pub(super) fn take_idle_items(&mut self) {
        while let Some(item) = self.digester.next_item() {
            trace!(?item, "from modem");
            match item {
                Item::Urc(u) => self.on_urc(u),
                other => debug!(?other, "stray item with no command in flight"),
            }
        }
    }

    /// Runs one command: writes it, writes its body at the prompt, collects its information lines
    /// until the final result. URCs arriving meanwhile are handled on the spot.
    pub(super) async fn exec(
        &mut self,
        cmd: &Command,
        timeout: Duration,
    ) -> Result<Answer, ExecError> {
        self.digester.begin(cmd);
        let res = self.exec_inner(cmd, timeout).await;
        if res.is_err() {
            self.digester.end();
        }
        self.set_waiting(None);
        self.take_idle_items();
        self.flush_backlog();
        res
    }

    async fn exec_inner(&mut self, cmd: &Command, timeout: Duration) -> Result<Answer, ExecError> {
        let started = Instant::now();
        self.write(cmd.bytes()).await?;
        self.last_submitted = false;
        let mut flight = InFlight {
            cmd,
            started,
            deadline: started + timeout,
            submitted: false,
            lines: Vec::new(),
            late_send_answer: false,
        };
        loop {
            match self.digest_answer(&mut flight) {
                Progress::Done(answer) => return Ok(answer),
                Progress::Body(body) => {
                    // From here on the message may reach the network whatever happens.
                    flight.submitted = true;
                    self.last_submitted = true;
                    self.write(&body).await?;
                    flight.deadline = Instant::now() + self.body_timeout(cmd);
                }
                Progress::More => self.await_answer(&flight).await?,
            }
        }
    }

    /// Sorts the items digested so far into the exchange in flight.
    fn digest_answer(&mut self, flight: &mut InFlight<'_>) -> Progress {
        let cmd = flight.cmd;
        while let Some(item) = self.digester.next_item() {
            trace!(?item, "from modem");
            match item {
                Item::Urc(Urc::Unknown(l)) if !cmd.expects_prompt() && is_cmgs_line(&l) => {
                    warn!(line = %l, command = cmd.echo(), "late answer to an earlier AT+CMGS");
                    flight.late_send_answer = true;
                    self.on_urc(Urc::Unknown(l));
                }
                Item::Final(result) if flight.late_send_answer => {
                    debug!(?result, "final result of the late AT+CMGS answer skipped");
                    flight.late_send_answer = false;
                    flight.lines.clear();
                    // The digester ended the command on that final: ours is still in flight.
                    self.digester.begin(cmd);
                }
                Item::Final(FinalResult::Ok) if cmd.body().is_some() && !flight.submitted => {
                    // `OK` before the prompt cannot answer our `AT+CMGS` (it waits for the PDU):
                    // it is an earlier command's, and the prompt may still come.
                    warn!(command = cmd.echo(), "stale OK before the prompt skipped");
                    flight.lines.clear();
                    self.digester.begin(cmd);
                }
                Item::Urc(u) => self.on_urc(u),
                Item::Info(l) => flight.lines.push(l),
                Item::Prompt => match cmd.body() {
                    Some(body) if !flight.submitted => return Progress::Body(body.to_vec()),
                    _ => debug!("unexpected prompt"),
                },
                Item::Final(result) => {
                    let lines = std::mem::take(&mut flight.lines);
                    return Progress::Done(Answer { lines, result });
                }
                _ => {}
            }
        }
        Progress::More
    }

    /// Waits for more of the answer: bytes from the port, the deadline, or shutdown (which only
    /// shortens the deadline). Requests are refused meanwhile only while `rejecting`.
    async fn await_answer(&mut self, flight: &InFlight<'_>) -> Result<(), ExecError> {
        let deadline = match self.cancel_deadline {
            Some(d) => flight.deadline.min(d),
            None => flight.deadline,
        };
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
                    submitted: flight.submitted,
                    after: flight.started.elapsed(),
                });
            }
            Wake::Request(req) => self.refuse(req),
            Wake::Ack(_) | Wake::Permit | Wake::Health | Wake::Drain => {}
        }
        Ok(())
    }

    /// [`Self::exec`], repeating while the modem answers "busy" ([`is_busy`]) with a delay that
    /// grows by `busy_step` per hit (python-gsmmodem's policy).
    pub(super) async fn exec_busy(
        &mut self,
        cmd: &Command,
        timeout: Duration,
    ) -> Result<Answer, ExecError> {
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

    /// How long the answer to a written body may take: a send's `+CMGS` only until the modem is
    /// suspect (`send_suspect`), and it shows in the status as a wait meanwhile; other bodies
    /// (`AT+CMGW`, uploads) the class timeout of a result the network may delay.
    fn body_timeout(&mut self, cmd: &Command) -> Duration {
        if is_cmgs_command(cmd) {
            self.set_waiting(Some("+CMGS"));
            self.cfg.timeouts.send_suspect
        } else {
            self.cfg.timeouts.sms_result
        }
    }

    /// Publishes (or clears) what the modem is waiting for in its status snapshot.
    fn set_waiting(&mut self, awaiting: Option<&str>) {
        let waiting = awaiting.map(|a| Waiting {
            awaiting: a.to_owned(),
            since_ms: unix_ms(),
        });
        self.status.send_if_modified(|s| {
            if s.waiting.is_none() && waiting.is_none() {
                return false;
            }
            s.waiting = waiting;
            true
        });
    }

    /// The configured timeout for a command's class.
    pub(super) fn timeout_of(&self, cmd: &Command) -> Duration {
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
    pub(super) async fn simple(&mut self, cmd: Command) -> Result<Answer, ExecError> {
        let timeout = self.timeout_of(&cmd);
        self.exec_busy(&cmd, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_results() {
        assert!(is_busy(&FinalResult::CmeError(ErrorCode::Numeric(515))));
        assert!(is_busy(&FinalResult::CmsError(ErrorCode::Numeric(314))));
        assert!(!is_busy(&FinalResult::CmsError(ErrorCode::Numeric(331))));
        assert!(!is_busy(&FinalResult::Ok));
    }
}
