//! What to do when a send fails, and with sends left in doubt by a crash.
//!
//! The table is the one in docs/dispatch.md, "Retries and the error table" (code texts from
//! smstools3 `modeminit.c`, code meanings from 3GPP TS 27.005 §3.2.5 for `+CMS ERROR` and
//! TS 27.007 §9.2 for `+CME ERROR`). The
//! modem actor reports the raw code; deciding retries is the dispatcher's job and lives here, as
//! data plus one pure function, so the whole table is tested row by row.
//!
//! Decisions ([`RetryDecision`]) separate the message from the modem: a permanent network refusal
//! fails the message; a transient one retries it with back-off; a modem that cannot send at all
//! (no SIM, no SMSC) is taken out of the pool and its messages re-planned under the sticky-sender
//! and failover rules ([`super::plan`]); a modem without service is held until it registers again
//! while its messages wait. Codes not in the table are treated as temporary but named in the
//! reason, so a new modem's vocabulary shows up in logs instead of silently failing messages.
//!
//! In doubt: a message whose `AT+CMGS` was in flight when the daemon stopped may or may not have
//! reached the network. [`in_doubt_action`] applies `[daemon] in_doubt_policy`; the default
//! resends replies and compliance texts (short, expected, harmless if doubled) and keeps bulk and
//! the leader's direct messages in doubt for a person to decide, matching the store's
//! `RecoveryPolicy::default()`.

use super::{Backoff, Millis, XorShift64};
use crate::dispatch::settings::InDoubtPolicy;
use crate::model::MessageKind;

/// What a modem error code means for sending (docs/dispatch.md, "Retries and the error table").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Destination or subscription refuses the message: fail it.
    Permanent,
    /// Our PDU was rejected as malformed (CMS 96–99, 111, 304, 305): fail it, log the PDU.
    PermanentEncoder,
    /// Transient network trouble: retry with back-off.
    Temporary,
    /// SMSC busy (TP-FCS 192): retry later.
    ScBusy,
    /// No network service (CMS 331, CME 30): hold the queue until registered.
    NoService,
    /// SMSC address unknown (CMS 330): a configuration problem (`AT+CSCA`).
    SmscMissing,
    /// SIM or device busy (CMS 314, CME 14, CME 515): short growing wait.
    SimBusy,
    /// SIM missing, locked or broken (CMS 310–313, 315–318, CME 10–13, 15–18): out of the pool.
    SimFailure,
    /// Storage full (CMS 322, CME 20): the modem must delete stored messages.
    MemoryFull,
    /// Not in the table: retried like a temporary failure, and logged.
    Unknown,
}

impl ErrorClass {
    /// Whether the fault lies with the modem rather than the message: such failures say nothing
    /// about the message and should not count against its attempts (the runner may refund them).
    pub fn modem_level(self) -> bool {
        matches!(
            self,
            ErrorClass::NoService
                | ErrorClass::SmscMissing
                | ErrorClass::SimBusy
                | ErrorClass::SimFailure
                | ErrorClass::MemoryFull
        )
    }
}

/// Classifies `+CMS ERROR: <code>` (27.005 §3.2.5; policy in docs/dispatch.md, "Retries and the error table"). The code table itself
/// lives once, in the modem layer ([`crate::modem::class`]), which needs it to notice a SIM
/// failure; this is its meaning for sending.
pub fn classify_cms(code: u16) -> ErrorClass {
    from_modem_class(crate::modem::class(code))
}

/// Classifies `+CME ERROR: <code>` (27.007 §9.2; policy in docs/dispatch.md, "Retries and the error table"), from the modem layer's
/// table like [`classify_cms`].
pub fn classify_cme(code: u16) -> ErrorClass {
    from_modem_class(crate::modem::cme_class(code))
}

/// The dispatch meaning of the modem layer's class. Classes that say nothing about sending (an
/// invalid storage index, an unsupported command) are `Unknown`: retried like a temporary
/// failure, and logged.
pub fn from_modem_class(c: crate::modem::ErrorClass) -> ErrorClass {
    use crate::modem::ErrorClass as M;
    match c {
        M::Permanent => ErrorClass::Permanent,
        M::InvalidPdu => ErrorClass::PermanentEncoder,
        M::Temporary => ErrorClass::Temporary,
        M::SmscBusy => ErrorClass::ScBusy,
        M::NoService => ErrorClass::NoService,
        M::SmscConfig => ErrorClass::SmscMissing,
        M::Busy => ErrorClass::SimBusy,
        M::SimFailure => ErrorClass::SimFailure,
        M::MemoryFull => ErrorClass::MemoryFull,
        M::InvalidIndex | M::Unsupported | M::Unknown => ErrorClass::Unknown,
    }
}

/// The 27.005 §3.2.5 text of a `+CMS ERROR` code, for reasons and logs.
pub fn cms_text(code: u16) -> Option<&'static str> {
    Some(match code {
        1 => "unassigned (unallocated) number",
        8 => "operator determined barring",
        10 => "call barred",
        21 => "short message transfer rejected",
        27 => "destination out of service",
        29 => "facility rejected",
        30 => "unknown subscriber",
        38 => "network out of order",
        41 => "temporary failure",
        42 => "congestion",
        47 => "resources unavailable",
        50 => "requested facility not subscribed",
        69 => "requested facility not implemented",
        96 => "invalid mandatory information",
        97 => "message type non-existent or not implemented",
        98 => "message not compatible with short message protocol state",
        99 => "information element non-existent or not implemented",
        111 => "protocol error",
        192 => "SC busy",
        195 => "invalid SME address",
        196 => "destination SME barred",
        197 => "SM rejected, duplicate SM",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        312 => "PH-SIM PIN required",
        313 => "SIM failure",
        314 => "SIM busy",
        315 => "SIM wrong",
        316 => "SIM PUK required",
        317 => "SIM PIN2 required",
        318 => "SIM PUK2 required",
        322 => "memory full",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        500 => "unknown error",
        _ => return None,
    })
}

/// What happens to a message after a failed send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    /// Final: mark the message failed with this reason. `log_pdu`: our encoder is suspect, log the
    /// PDU that was refused.
    Fail { reason: String, log_pdu: bool },
    /// Queue it again, not before this instant, same modem preference.
    RetryAt(Millis),
    /// This modem cannot send for the foreseeable future: take it out of the pool (alert) and
    /// queue the message again now; the planner's sticky-sender/failover rules decide where it
    /// goes (with failover off it waits for its home modem).
    MoveToOtherModem,
    /// The modem pauses sending (until it registers again, or until its own housekeeping such as
    /// deleting stored messages is done); the message is queued again now and waits for it.
    HoldModem { until_registered: bool },
}

/// Growth step of the SIM-busy wait (python-gsmmodem, `gsmmodem/modem.py`, adds 0.2 s per hit).
pub const SIM_BUSY_STEP_MS: Millis = 200;

/// The decision for a failure of class `class` after `attempts` send attempts (the failed one
/// included) at `now`.
pub fn action_for(
    class: ErrorClass,
    attempts: u32,
    now: Millis,
    backoff: &Backoff,
    rng: &mut XorShift64,
) -> RetryDecision {
    let retry = |what: &str, rng: &mut XorShift64| match backoff.retry_at(now, attempts, rng) {
        Some(t) => RetryDecision::RetryAt(t),
        None => RetryDecision::Fail {
            reason: format!("{what}; gave up after {attempts} attempts"),
            log_pdu: false,
        },
    };
    match class {
        ErrorClass::Permanent => RetryDecision::Fail {
            reason: "refused by the network (permanent)".to_string(),
            log_pdu: false,
        },
        ErrorClass::PermanentEncoder => RetryDecision::Fail {
            reason: "PDU rejected as invalid (encoder suspect)".to_string(),
            log_pdu: true,
        },
        ErrorClass::Temporary => retry("temporary network failure", rng),
        ErrorClass::ScBusy => retry("SMSC busy", rng),
        ErrorClass::Unknown => retry("unclassified modem error", rng),
        ErrorClass::NoService => RetryDecision::HoldModem {
            until_registered: true,
        },
        ErrorClass::SmscMissing | ErrorClass::SimFailure => RetryDecision::MoveToOtherModem,
        ErrorClass::SimBusy => {
            // Busy is the modem's state, not the message's: after as many hits as a message has
            // attempts, stop hammering and let the modem be held and recovered.
            if backoff.may_retry(attempts) {
                let step = SIM_BUSY_STEP_MS.saturating_mul(Millis::from(attempts.max(1)));
                RetryDecision::RetryAt(now.saturating_add(step))
            } else {
                RetryDecision::HoldModem {
                    until_registered: false,
                }
            }
        }
        ErrorClass::MemoryFull => RetryDecision::HoldModem {
            until_registered: false,
        },
    }
}

/// What to do at start-up with a message left `in_doubt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InDoubtAction {
    /// Queue it again (accepting a possible duplicate).
    Resend,
    /// Leave it `in_doubt` for a person (`gsmgate` admin) to resend or cancel.
    KeepInDoubt,
}

/// The in-doubt policy as a pure function of the message kind.
pub fn in_doubt_action(kind: MessageKind, policy: InDoubtPolicy) -> InDoubtAction {
    let resend = match policy {
        InDoubtPolicy::ResendAll => true,
        InDoubtPolicy::ResendNone => false,
        InDoubtPolicy::ResendReplies => {
            matches!(kind, MessageKind::Reply | MessageKind::Compliance)
        }
    };
    if resend {
        InDoubtAction::Resend
    } else {
        InDoubtAction::KeepInDoubt
    }
}

/// The policy as per-kind flags, in [`MessageKind::ALL`] order, for building the store's
/// `RecoveryPolicy` (`resend_compliance`, `resend_reply`, `resend_direct`, `resend_bulk`).
pub fn resend_flags(policy: InDoubtPolicy) -> [(MessageKind, bool); 4] {
    MessageKind::ALL.map(|k| (k, in_doubt_action(k, policy) == InDoubtAction::Resend))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::MINUTE;
    use crate::dispatch::settings::RetryConfig;
    use proptest::prelude::*;

    fn backoff() -> Backoff {
        Backoff {
            jitter_pct: 0,
            ..Backoff::from_config(&RetryConfig {
                max_attempts: 3,
                base_delay_secs: 60,
            })
        }
    }

    /// The table of docs/dispatch.md, "Retries and the error table", row by row.
    #[test]
    fn cms_table_matches_modems_md() {
        use ErrorClass::*;
        let rows: &[(&[u16], ErrorClass)] = &[
            (&[1, 8, 10, 21, 29, 30, 50, 69], Permanent),
            (&[96, 97, 98, 99, 111, 304, 305], PermanentEncoder),
            (&[128, 195, 196, 197, 255], Permanent),
            (&[192], ScBusy),
            (&[27, 38, 41, 42, 47, 332, 500], Temporary),
            (&[512, 513, 514], Temporary),
            (&[331], NoService),
            (&[330], SmscMissing),
            (&[314], SimBusy),
            (&[310, 311, 312, 313, 315, 316, 317, 318], SimFailure),
            (&[322], MemoryFull),
            (&[0, 2, 127, 300, 321, 340, 515, 999, u16::MAX], Unknown),
        ];
        for (codes, class) in rows {
            for &c in *codes {
                assert_eq!(classify_cms(c), *class, "CMS {c}");
            }
        }
    }

    #[test]
    fn cme_table_matches_modems_md() {
        use ErrorClass::*;
        assert_eq!(classify_cme(30), NoService);
        assert_eq!(classify_cme(14), SimBusy);
        assert_eq!(classify_cme(515), SimBusy);
        for c in [10, 11, 12, 13, 15, 16, 17, 18] {
            assert_eq!(classify_cme(c), SimFailure, "CME {c}");
        }
        assert_eq!(classify_cme(20), MemoryFull);
        for c in [0, 3, 4, 21, 100, u16::MAX] {
            assert_eq!(classify_cme(c), Unknown, "CME {c}");
        }
    }

    #[test]
    fn every_listed_code_has_a_text() {
        for c in [
            1, 8, 30, 96, 111, 192, 197, 304, 310, 314, 318, 322, 330, 331, 332, 500,
        ] {
            assert!(cms_text(c).is_some(), "{c}");
        }
        assert_eq!(cms_text(192), Some("SC busy"));
        assert_eq!(cms_text(7), None);
    }

    #[test]
    fn decisions_per_class() {
        let b = backoff();
        let mut rng = XorShift64::new(1);
        let now = 1_000_000;
        let act = |c, n, rng: &mut XorShift64| action_for(c, n, now, &b, rng);
        assert!(matches!(
            act(ErrorClass::Permanent, 1, &mut rng),
            RetryDecision::Fail { log_pdu: false, .. }
        ));
        assert!(matches!(
            act(ErrorClass::PermanentEncoder, 1, &mut rng),
            RetryDecision::Fail { log_pdu: true, .. }
        ));
        assert_eq!(
            act(ErrorClass::Temporary, 1, &mut rng),
            RetryDecision::RetryAt(now + MINUTE)
        );
        assert_eq!(
            act(ErrorClass::ScBusy, 2, &mut rng),
            RetryDecision::RetryAt(now + 2 * MINUTE)
        );
        assert_eq!(
            act(ErrorClass::Unknown, 1, &mut rng),
            RetryDecision::RetryAt(now + MINUTE)
        );
        match act(ErrorClass::Temporary, 3, &mut rng) {
            RetryDecision::Fail { reason, log_pdu } => {
                assert!(reason.contains("3 attempts"), "{reason}");
                assert!(!log_pdu);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            act(ErrorClass::NoService, 1, &mut rng),
            RetryDecision::HoldModem {
                until_registered: true
            }
        );
        assert_eq!(
            act(ErrorClass::SmscMissing, 1, &mut rng),
            RetryDecision::MoveToOtherModem
        );
        assert_eq!(
            act(ErrorClass::SimFailure, 9, &mut rng),
            RetryDecision::MoveToOtherModem
        );
        assert_eq!(
            act(ErrorClass::SimBusy, 1, &mut rng),
            RetryDecision::RetryAt(now + 200)
        );
        assert_eq!(
            act(ErrorClass::SimBusy, 2, &mut rng),
            RetryDecision::RetryAt(now + 400)
        );
        assert_eq!(
            act(ErrorClass::SimBusy, 3, &mut rng),
            RetryDecision::HoldModem {
                until_registered: false
            }
        );
        assert_eq!(
            act(ErrorClass::MemoryFull, 1, &mut rng),
            RetryDecision::HoldModem {
                until_registered: false
            }
        );
        assert!(ErrorClass::SimFailure.modem_level());
        assert!(!ErrorClass::Temporary.modem_level());
    }

    #[test]
    fn in_doubt_policy_per_kind() {
        use InDoubtAction::*;
        use MessageKind::*;
        let d = InDoubtPolicy::default();
        assert_eq!(in_doubt_action(Reply, d), Resend);
        assert_eq!(in_doubt_action(Compliance, d), Resend);
        assert_eq!(in_doubt_action(Bulk, d), KeepInDoubt);
        assert_eq!(in_doubt_action(Direct, d), KeepInDoubt);
        for k in MessageKind::ALL {
            assert_eq!(in_doubt_action(k, InDoubtPolicy::ResendAll), Resend);
            assert_eq!(in_doubt_action(k, InDoubtPolicy::ResendNone), KeepInDoubt);
        }
        assert_eq!(
            resend_flags(d),
            [
                (Compliance, true),
                (Reply, true),
                (Direct, false),
                (Bulk, false)
            ]
        );
    }

    proptest! {
        /// Any code, any attempt count: a decision without panic; retries are in the future and
        /// never beyond the back-off cap; only the two permanent classes fail on the first attempt.
        #[test]
        fn total_over_all_codes(code in any::<u16>(), cme in any::<bool>(), attempts in 0u32..10, seed in any::<u64>()) {
            let class = if cme { classify_cme(code) } else { classify_cms(code) };
            let b = backoff();
            let now = 5_000;
            let d = action_for(class, attempts, now, &b, &mut XorShift64::new(seed));
            match d {
                RetryDecision::RetryAt(t) => prop_assert!(t > now && t <= now + b.cap_ms),
                RetryDecision::Fail { .. } => prop_assert!(
                    matches!(class, ErrorClass::Permanent | ErrorClass::PermanentEncoder) || attempts >= b.max_attempts
                ),
                _ => prop_assert!(class.modem_level()),
            }
        }
    }
}
