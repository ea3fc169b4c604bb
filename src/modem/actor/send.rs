//! Sending one message: per part `AT+CMGS=<tpdu_len>`, the PDU and Ctrl-Z at the `> ` prompt, then
//! `+CMGS: <mr>` or an error (3GPP TS 27.005 §3.5.1).
//!
//! It owns checking the parts before anything is written and turning each part's outcome into the
//! precise [`SendError`] the dispatcher decides on: refused (certainly not sent), timed out or
//! interrupted with `submitted` (in doubt once the PDU and Ctrl-Z were written), each with the
//! TP-MRs of the parts confirmed before. It must not retry, wait for rate limits or pick another
//! modem: that is the dispatcher's.
//!
//! Non-obvious choices:
//! - Call control is served before each part, so a call arriving during a long message waits for at
//!   most the part in flight.
//! - No `AT+CMMS=1` (keep the relay link open between sends, 27.005 §3.5.6): the dispatcher hands
//!   over one part per request so that its limiter counts every part's own start (the module doc of
//!   `dispatch::runner`, "Why part by part"); the actor never sees two parts of one message
//!   together, so a link kept open for the next part would never be used.
//! - A part that timed out before its prompt gets an ESC, so a prompt that comes late cannot take
//!   whatever is written next as its PDU.

use std::time::Duration;

use tracing::warn;

use super::exec::{ESC, ExecError, failure};
use super::inbound::pdu_bytes;
use super::{ModemActor, Trouble};
use crate::at::{Command, response};
use crate::modem::error::{ErrorClass, Failure, SendError, class};
use crate::modem::handle::OutgoingPart;
use crate::modem::status::ModemState;

/// How one part failed, before the modem, the part's index and the confirmed TP-MRs are attached.
enum PartFailure {
    Invalid(String),
    Refused { failure: Failure, class: ErrorClass },
    Timeout { submitted: bool, after: Duration },
    Interrupted { submitted: bool, reason: String },
}

impl PartFailure {
    fn into_error(self, modem: String, part: usize, confirmed: Vec<u8>) -> SendError {
        match self {
            PartFailure::Invalid(reason) => SendError::InvalidPart {
                modem,
                part,
                reason,
            },
            PartFailure::Refused { failure, class } => SendError::Refused {
                modem,
                part,
                failure,
                class,
                confirmed,
            },
            PartFailure::Timeout { submitted, after } => SendError::Timeout {
                modem,
                part,
                submitted,
                after,
                confirmed,
            },
            PartFailure::Interrupted { submitted, reason } => SendError::Interrupted {
                modem,
                part,
                submitted,
                reason,
                confirmed,
            },
        }
    }
}

/// A part's failure and the trouble it means for the modem, if any.
type PartError = (PartFailure, Option<Trouble>);

/// A duration in whole seconds for a log line or reason ("30 s").
fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs())
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

/// Checks every part before anything is written; the error names the first bad part.
fn check_parts(parts: &[OutgoingPart]) -> Result<(), (usize, String)> {
    if parts.is_empty() {
        return Err((0, "no parts".into()));
    }
    for (i, p) in parts.iter().enumerate() {
        check_part(p).map_err(|reason| (i, reason))?;
    }
    Ok(())
}

impl ModemActor {
    /// Sends the parts of one message in order; returns the TP-MR of each, or the error of the
    /// first part that failed, and the trouble that must interrupt serving.
    pub(super) async fn send(
        &mut self,
        parts: Vec<OutgoingPart>,
    ) -> (Result<Vec<u8>, SendError>, Option<Trouble>) {
        if let Err((part, reason)) = check_parts(&parts) {
            let modem = self.name.clone();
            let err = SendError::InvalidPart {
                modem,
                part,
                reason,
            };
            return (Err(err), None);
        }
        let mut confirmed = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let outcome = match self.serve_calls().await {
                Some(t) => {
                    let reason = format!("{t:?}");
                    let failure = PartFailure::Interrupted {
                        submitted: false,
                        reason,
                    };
                    Err((failure, Some(t)))
                }
                None => self.send_part(part).await,
            };
            match outcome {
                Ok(mr) => confirmed.push(mr),
                Err((failure, trouble)) => {
                    let modem = self.name.clone();
                    return (Err(failure.into_error(modem, i, confirmed)), trouble);
                }
            }
        }
        (Ok(confirmed), None)
    }

    /// Serves the call-control requests queued now; returns trouble that must end the send.
    async fn serve_calls(&mut self) -> Option<Trouble> {
        while let Ok(req) = self.call_rx.try_recv() {
            // Boxed: handle() → send() → handle() is recursive.
            if let Some(t) = Box::pin(self.handle(req)).await {
                return Some(t);
            }
        }
        None
    }

    /// `AT+CMGS` of one part; its TP-MR.
    async fn send_part(&mut self, part: &OutgoingPart) -> Result<u8, PartError> {
        let cmd =
            Command::cmgs(&part.hex).map_err(|e| (PartFailure::Invalid(e.to_string()), None))?;
        let timeout = self.cfg.timeouts.prompt;
        match self.exec_busy(&cmd, timeout).await {
            Ok(a) if a.result.is_ok() => {
                match a.lines.iter().find_map(|l| response::parse_cmgs(l).ok()) {
                    Some(mr) => Ok(mr),
                    None => {
                        // OK without +CMGS: the modem says sent but gave no reference.
                        warn!(lines = ?a.lines, "AT+CMGS OK without +CMGS: <mr>");
                        let reason = "OK without a +CMGS reference".into();
                        let failure = PartFailure::Interrupted {
                            submitted: true,
                            reason,
                        };
                        Err((failure, None))
                    }
                }
            }
            Ok(a) => {
                let f = failure(&a.result);
                let class = match &f {
                    Failure::Cms { code } => class(*code),
                    other => other.class(),
                };
                Err((PartFailure::Refused { failure: f, class }, None))
            }
            Err(ExecError::Timeout { submitted, .. }) if self.cancel.is_cancelled() => {
                // The shutdown grace ran out, not the modem's time: nothing to probe.
                if !submitted {
                    let _ = self.write(&[ESC]).await;
                }
                let reason = "shut down while waiting for +CMGS".to_owned();
                let failure = PartFailure::Interrupted { submitted, reason };
                Err((failure, Some(Trouble::Shutdown)))
            }
            Err(ExecError::Timeout { submitted, after }) => {
                if !submitted {
                    // Close a prompt that may have come late, so nothing is sent later by accident.
                    let _ = self.write(&[ESC]).await;
                }
                let trouble = if submitted {
                    // The network may have it: in doubt, and the modem is suspect until probed.
                    // Suspect before the reply goes out, so the dispatcher reading the status
                    // after the in-doubt answer already sees it.
                    let reason = format!("+CMGS unanswered after {}", secs(after));
                    self.set_state(ModemState::Suspect {
                        reason: reason.clone(),
                    });
                    Trouble::Suspect(reason)
                } else {
                    Trouble::Stalled("AT+CMGS unanswered".into())
                };
                Err((PartFailure::Timeout { submitted, after }, Some(trouble)))
            }
            Err(ExecError::Gone(reason)) => {
                // exec() only knows "submitted" for timeouts; for a vanished port we know it from
                // whether the prompt had come: the digester ended the command either way.
                let submitted = self.last_submitted;
                let failure = PartFailure::Interrupted {
                    submitted,
                    reason: reason.clone(),
                };
                Err((failure, Some(Trouble::Gone(reason))))
            }
        }
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
}
