//! Requests from the [`ModemHandle`](crate::modem::ModemHandle): serving one (a send, a raw admin
//! line, call control, a built command from another layer) and answering it, or refusing it while
//! the modem cannot take it.
//!
//! It owns the translation of an exchange's outcome into the caller's error type
//! ([`CommandError`], [`SendError`]) and into the trouble that must interrupt serving (a timeout
//! means a stalled modem, a lost port a vanished one). It must not run AT exchanges itself (that is
//! `exec`) nor decide what a failure means for a message (the dispatcher's).
//!
//! A raw admin line is accepted only if it is one of the diagnostic queries the `at` layer builds:
//! a command there carries its answer contract (expected prefixes, bare lines), and guessing one
//! for free text could make the digester take a URC for the answer or the reverse.

use std::time::Duration;

use super::exec::{ExecError, failure};
use super::{ModemActor, Trouble};
use crate::at::{AtError, Command};
use crate::modem::error::{CommandError, SendError};
use crate::modem::handle::{CallOp, Request};
use crate::modem::status::ModemState;
use crate::modem::ussd::UssdError;

/// A command's answer lines or error, and the trouble that must interrupt serving.
type CommandOutcome = (Result<Vec<String>, CommandError>, Option<Trouble>);

/// Builds the command for a raw admin line (`ModemHandle::command`): only lines that match one of
/// the `at` layer's diagnostic builders are accepted; anything else is refused with a clear reason
/// instead of being guessed at.
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

/// The command of a call-control operation.
fn call_command(op: CallOp) -> Result<Command, AtError> {
    Ok(match op {
        CallOp::Answer => Command::ata(),
        CallOp::Hangup => Command::chup(),
        CallOp::Clcc => Command::clcc(),
        CallOp::HuaweiAudio => Command::ddsetex(),
        CallOp::SimcomPcm(on) => Command::cpcmreg(on),
        CallOp::QuectelPcm(None) => Command::qpcmv_off(),
        CallOp::QuectelPcm(Some(port)) => Command::qpcmv(port)?,
    })
}

impl ModemActor {
    /// Serves one request; returns trouble that must interrupt serving.
    pub(super) async fn handle(&mut self, req: Request) -> Option<Trouble> {
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
                let cmd = match call_command(op) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = reply.send(Err(self.invalid(e.to_string())));
                        return None;
                    }
                };
                let timeout = self.timeout_of(&cmd).min(self.cfg.timeouts.call);
                let (res, trouble) = self.run_command(&cmd, op.text(), timeout).await;
                let _ = reply.send(res);
                trouble
            }
            Request::Ussd { op, timeout, reply } => self.ussd(op, timeout, reply).await,
            Request::Exec { cmd, reply } => {
                let timeout = self.timeout_of(&cmd);
                let text = cmd.echo().to_owned();
                let (res, trouble) = self.run_command(&cmd, &text, timeout).await;
                let _ = reply.send(res);
                trouble
            }
        }
    }

    fn invalid(&self, reason: String) -> CommandError {
        CommandError::Invalid {
            modem: self.name.clone(),
            reason,
        }
    }

    async fn raw_command(&mut self, text: &str, timeout: Duration) -> CommandOutcome {
        let t = text.trim();
        let bad = !t.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT"))
            || t.bytes().any(|b| b < 0x20 || b == 0x7F);
        if bad {
            let reason = "a raw command is one line starting with AT, without control characters";
            return (Err(self.invalid(reason.into())), None);
        }
        match raw_command(t) {
            Ok(cmd) => self.run_command(&cmd, t, timeout).await,
            Err(reason) => (Err(self.invalid(reason)), None),
        }
    }

    pub(super) async fn run_command(
        &mut self,
        cmd: &Command,
        text: &str,
        timeout: Duration,
    ) -> CommandOutcome {
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

    /// Answers a request with "unavailable" and `reason`, without running it.
    pub(super) fn reject(&self, req: Request, reason: &str) {
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
            Request::Ussd { reply, .. } => {
                let _ = reply.send(Err(UssdError::Command(CommandError::ModemUnavailable {
                    modem,
                    reason: reason.to_owned(),
                })));
            }
        }
    }

    /// [`Self::reject`] with the reason the modem's state gives.
    pub(super) fn refuse(&self, req: Request) {
        let reason = match self.state() {
            ModemState::OutOfPool { reason } => format!("out of the pool: {reason}"),
            s => format!("modem is {}", s.name()),
        };
        self.reject(req, &reason);
    }
}
