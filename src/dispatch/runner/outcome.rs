//! What the runner does with a failed send: a pure function from the modem's [`SendError`] to an
//! [`Outcome`] the send loop applies to the store and to its own modem.
//!
//! The modem layer reports facts (the `+CMS`/`+CME` code, whether the PDU had been submitted); the
//! retry policy is the dispatch table in [`crate::dispatch::policy`]. Refusals are classified from
//! the raw code (`classify_cms` / `classify_cme`, which read the one code table in the modem layer);
//! the modem's own [`ModemClass`] is only used when there is no code (a bare `ERROR`), through
//! `from_modem_class`.
//!
//! Why the split between outcomes:
//! - **In doubt** (`SendError::in_doubt()`: the PDU and Ctrl-Z were written, then the modem
//!   vanished or stalled) is never retried blindly: the row becomes `in_doubt`, and only kinds the
//!   configured in-doubt policy resends (replies and compliance by default) are queued again.
//! - **Release** is for failures that say nothing about the message (the modem was unavailable,
//!   nothing was written, or a modem-level class such as no service or a SIM failure): the claim
//!   is handed back without counting the attempt, and the modem is held for a while, which also
//!   starts the failover clock for its members.
//! - **Retry / Fail** follow `action_for` (back-off, `max_attempts`).

use super::super::policy::{
    self, ErrorClass, RetryDecision, action_for, classify_cme, classify_cms, from_modem_class,
};
use super::super::{Backoff, InDoubtAction, Millis, XorShift64, in_doubt_action};
use crate::dispatch::settings::InDoubtPolicy;
use crate::model::MessageKind;
use crate::modem::{ErrorClass as ModemClass, Failure, SendError};

/// What to do with a claimed row after a failed send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Final failure with this reason.
    Fail { reason: String },
    /// Queue again at `at` (the attempt counts).
    Retry { at: Millis, reason: String },
    /// The PDU may have reached the network: mark `in_doubt`; `resend` per the in-doubt policy.
    InDoubt { reason: String, resend: bool },
    /// Hand the claim back (no attempt counted) and hold this modem for `hold_ms`.
    Release { reason: String, hold_ms: Millis },
}

/// The settings [`decide`] applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailurePolicy {
    pub backoff: Backoff,
    pub in_doubt: InDoubtPolicy,
    /// Hold after a modem-level refusal (no service, SIM failure, SMSC missing, memory full).
    pub modem_level_ms: Millis,
    /// Hold after the modem was unavailable or stalled before the submit.
    pub unavailable_ms: Millis,
}

/// The dispatch class of a refusal: from the code when there is one (27.005 §3.2.5, 27.007 §9.2).
pub(crate) fn class_of(failure: &Failure, modem_class: ModemClass) -> ErrorClass {
    match failure {
        Failure::Cms { code } => classify_cms(*code),
        Failure::Cme { code } => classify_cme(*code),
        Failure::Other { .. } => from_modem_class(modem_class),
    }
}

/// `+CMS ERROR: 21 (short message transfer rejected)`.
fn describe(failure: &Failure) -> String {
    match failure {
        Failure::Cms { code } => match policy::cms_text(*code) {
            Some(text) => format!("{failure} ({text})"),
            None => failure.to_string(),
        },
        _ => failure.to_string(),
    }
}

/// The outcome of `err` for a message of `kind` after `attempts` attempts (this one included).
pub(crate) fn decide(
    err: &SendError,
    kind: MessageKind,
    attempts: u32,
    now: Millis,
    policy: &FailurePolicy,
    rng: &mut XorShift64,
) -> Outcome {
    if err.in_doubt() {
        return Outcome::InDoubt {
            reason: format!("in doubt: {err}"),
            resend: in_doubt_action(kind, policy.in_doubt) == InDoubtAction::Resend,
        };
    }
    match err {
        SendError::Refused { failure, class, .. } => {
            let dclass = class_of(failure, *class);
            let what = describe(failure);
            match action_for(dclass, attempts, now, &policy.backoff, rng) {
                RetryDecision::Fail { reason, .. } => Outcome::Fail {
                    reason: format!("{what}: {reason}"),
                },
                RetryDecision::RetryAt(at) => Outcome::Retry {
                    at,
                    reason: format!("{what}: retrying"),
                },
                RetryDecision::MoveToOtherModem | RetryDecision::HoldModem { .. } => {
                    Outcome::Release {
                        reason: format!("{what}: modem cannot send ({dclass:?})"),
                        hold_ms: policy.modem_level_ms,
                    }
                }
            }
        }
        // Nothing reached the network (in_doubt() was false): safe to send again, elsewhere too.
        SendError::Timeout { .. }
        | SendError::Interrupted { .. }
        | SendError::ModemUnavailable { .. } => Outcome::Release {
            reason: format!("not sent: {err}"),
            hold_ms: policy.unavailable_ms,
        },
        // Our own PDU was refused before it reached the modem: the encoder is at fault, and
        // repeating it would fail the same way.
        SendError::InvalidPart { .. } => Outcome::Fail {
            reason: format!("invalid PDU: {err}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::settings::RetryConfig;
    use std::time::Duration;

    fn policy() -> FailurePolicy {
        FailurePolicy {
            backoff: Backoff {
                jitter_pct: 0,
                ..Backoff::from_config(&RetryConfig {
                    max_attempts: 3,
                    base_delay_secs: 10,
                })
            },
            in_doubt: InDoubtPolicy::ResendReplies,
            modem_level_ms: 60_000,
            unavailable_ms: 1_000,
        }
    }

    fn refused(code: u16) -> SendError {
        SendError::Refused {
            modem: "m".into(),
            part: 0,
            failure: Failure::Cms { code },
            class: crate::modem::class(code),
            confirmed: vec![],
        }
    }

    fn run(err: &SendError, kind: MessageKind, attempts: u32) -> Outcome {
        decide(
            err,
            kind,
            attempts,
            1_000,
            &policy(),
            &mut XorShift64::new(1),
        )
    }

    #[test]
    fn permanent_code_fails_with_the_code_and_its_meaning() {
        match run(&refused(21), MessageKind::Bulk, 1) {
            Outcome::Fail { reason } => {
                assert!(reason.contains("+CMS ERROR: 21"), "{reason}");
                assert!(
                    reason.contains("short message transfer rejected"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn temporary_code_backs_off_then_gives_up() {
        assert_eq!(
            run(&refused(42), MessageKind::Reply, 1),
            Outcome::Retry {
                at: 11_000,
                reason: "+CMS ERROR: 42 (congestion): retrying".into()
            }
        );
        assert!(matches!(
            run(&refused(42), MessageKind::Reply, 2),
            Outcome::Retry { at: 21_000, .. }
        ));
        assert!(matches!(
            run(&refused(42), MessageKind::Reply, 3),
            Outcome::Fail { .. }
        ));
    }

    #[test]
    fn modem_level_codes_release_and_hold() {
        for code in [331, 330, 310, 322] {
            match run(&refused(code), MessageKind::Bulk, 1) {
                Outcome::Release { hold_ms, .. } => assert_eq!(hold_ms, 60_000, "CMS {code}"),
                other => panic!("CMS {code}: {other:?}"),
            }
        }
    }

    #[test]
    fn submitted_then_gone_is_in_doubt_and_only_replies_resend() {
        let err = SendError::Interrupted {
            modem: "m".into(),
            part: 0,
            submitted: true,
            reason: "port vanished".into(),
            confirmed: vec![],
        };
        assert!(matches!(
            run(&err, MessageKind::Bulk, 1),
            Outcome::InDoubt { resend: false, .. }
        ));
        assert!(matches!(
            run(&err, MessageKind::Reply, 1),
            Outcome::InDoubt { resend: true, .. }
        ));
        let timeout = SendError::Timeout {
            modem: "m".into(),
            part: 0,
            submitted: true,
            after: Duration::from_secs(3),
            confirmed: vec![],
        };
        assert!(matches!(
            run(&timeout, MessageKind::Direct, 1),
            Outcome::InDoubt { resend: false, .. }
        ));
    }

    #[test]
    fn not_submitted_is_released_without_doubt() {
        for err in [
            SendError::Timeout {
                modem: "m".into(),
                part: 0,
                submitted: false,
                after: Duration::from_secs(2),
                confirmed: vec![],
            },
            SendError::ModemUnavailable {
                modem: "m".into(),
                reason: "vanished".into(),
            },
        ] {
            assert!(matches!(
                run(&err, MessageKind::Bulk, 1),
                Outcome::Release { hold_ms: 1_000, .. }
            ));
        }
        let bad = SendError::InvalidPart {
            modem: "m".into(),
            part: 0,
            reason: "bad hex".into(),
        };
        assert!(matches!(
            run(&bad, MessageKind::Bulk, 1),
            Outcome::Fail { .. }
        ));
    }

    #[test]
    fn codes_win_over_the_modem_class_and_bare_error_is_unknown() {
        assert_eq!(
            class_of(&Failure::Cms { code: 192 }, ModemClass::Unknown),
            ErrorClass::ScBusy
        );
        assert_eq!(
            class_of(&Failure::Cme { code: 30 }, ModemClass::Unknown),
            ErrorClass::NoService
        );
        assert_eq!(
            class_of(
                &Failure::Other {
                    text: "ERROR".into()
                },
                ModemClass::Unsupported
            ),
            ErrorClass::Unknown
        );
        // Codes that mean nothing for sending are retried as unknown, not failed.
        for code in [300u16, 301, 302, 303, 321] {
            assert_eq!(classify_cms(code), ErrorClass::Unknown, "CMS {code}");
        }
    }
}
