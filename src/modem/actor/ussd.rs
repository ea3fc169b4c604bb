//! The actor's side of USSD (3GPP TS 27.007 §7.15): `AT+CUSD=1,"<str>",15` for a code or a menu
//! reply, `AT+CUSD=2` to cancel, and the wait for the `+CUSD:` URC that carries the network's
//! answer. The text forms and the meaning of `<m>` are `modem::ussd`'s; this file owns the one
//! waiting caller.
//!
//! Why a waiter instead of reading the answer in the command: the network answers seconds after
//! the `OK` (or, on some firmware, before it), as an unsolicited line, while the actor goes on
//! serving sends. The caller is registered before the command is written, so an answer that
//! arrives between the echo and the `OK` is not lost; the caller's own time limit ends a wait
//! that never gets an answer (`ModemHandle::ussd`), and a later answer to an abandoned wait is
//! published as an ordinary URC event instead of being taken for the next request's.

use std::time::Duration;

use tracing::{debug, warn};

use super::{ModemActor, Trouble};
use crate::at::Command;
use crate::modem::Profile;
use crate::modem::handle::UssdReply;
use crate::modem::ussd::{self, UssdAnswer, UssdError, UssdOp, UssdState};

/// `<dcs>` of a request: 15, GSM 7-bit, language unspecified (TS 23.038 §5).
const REQUEST_DCS: u8 = 15;

impl ModemActor {
    /// Huawei sticks exchange USSD strings as hex of packed septets (`modem::ussd`).
    fn ussd_packed(&self) -> bool {
        self.cfg.profile == Profile::Huawei
    }

    /// Serves one USSD request; returns trouble that must interrupt serving.
    pub(super) async fn ussd(
        &mut self,
        op: UssdOp,
        timeout: Duration,
        reply: UssdReply,
    ) -> Option<Trouble> {
        let cmd = match &op {
            UssdOp::Send(text) | UssdOp::Reply(text) => {
                if let Err(e) = ussd::validate(text) {
                    let _ = reply.send(Err(e));
                    return None;
                }
                match Command::cusd(&ussd::encode_request(text, self.ussd_packed()), REQUEST_DCS) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = reply.send(Err(UssdError::Invalid(e.to_string())));
                        return None;
                    }
                }
            }
            UssdOp::Cancel => Command::cusd_cancel(),
        };
        let text = cmd.echo().to_owned();
        // A new request ends the wait of an earlier one (the network has one session per modem).
        if let Some(earlier) = self.ussd_waiter.take() {
            let _ = earlier.send(Err(UssdError::Superseded));
        }
        let wait = !matches!(op, UssdOp::Cancel);
        let mut reply = Some(reply);
        if wait {
            self.ussd_waiter = reply.take();
        }
        let (res, trouble) = self.run_command(&cmd, &text, timeout).await;
        match res {
            Ok(_) if wait => {
                debug!(command = %text, "USSD request accepted; waiting for +CUSD");
            }
            Ok(_) => {
                if let Some(r) = reply.take() {
                    let _ = r.send(Ok(UssdAnswer {
                        state: UssdState::Cancelled,
                        text: String::new(),
                        dcs: None,
                    }));
                }
            }
            Err(e) => {
                // The waiter may have been answered already by a +CUSD before the error.
                if let Some(r) = reply.take().or_else(|| self.ussd_waiter.take()) {
                    let _ = r.send(Err(UssdError::Command(e)));
                }
            }
        }
        trouble
    }

    /// A `+CUSD:` URC: the answer of the waiting request, if one waits; `false` if nobody waits.
    pub(super) fn ussd_answer(&mut self, status: u8, text: Option<&str>, dcs: Option<u16>) -> bool {
        let Some(waiter) = self.ussd_waiter.take() else {
            return false;
        };
        if waiter.is_closed() {
            warn!(status, "USSD answer after its caller gave up");
            return false;
        }
        let _ = waiter.send(ussd::answer(status, text, dcs, self.ussd_packed()));
        true
    }
}
