//! Errors of the modem layer and the classification of modem error codes.
//!
//! This file owns the answer to "what went wrong on the modem and what may the layer above do about
//! it". It must not decide retries itself: the dispatcher owns retry policy, so every error here
//! carries enough facts (the code, its [`ErrorClass`], whether a PDU had already been submitted, the
//! TP-MRs of parts the network confirmed) for that decision. The codes are 3GPP TS 27.005 §3.2.5
//! (`+CMS ERROR`, with the TP-FCS values of TS 23.040 §9.2.3.22) and TS 27.007 §9.2 (`+CME
//! ERROR`); their texts and the handling per code follow smstools3 (`modeminit.c`, `smsd_cfg.c`)
//! and python-gsmmodem (the growing "busy" wait).

use std::time::Duration;

use serde::Serialize;

/// What a modem error code means for the message or the modem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The destination or the subscription refuses this message: fail it for good.
    Permanent,
    /// The network or modem rejected our PDU as malformed: permanent, and our encoder is suspect
    /// (log the PDU).
    InvalidPdu,
    /// A transient network condition: retry later with back-off.
    Temporary,
    /// The SMSC is busy (TP-FCS 192): retry later.
    SmscBusy,
    /// The modem has no network service: hold the queue until it registers again.
    NoService,
    /// The SMSC address is unknown: a configuration problem (`AT+CSCA`).
    SmscConfig,
    /// SIM or device busy: wait a little (0.2 s, growing) and repeat.
    Busy,
    /// SIM missing, locked or broken: take the modem out of the pool and alert.
    SimFailure,
    /// Invalid storage index: skip it.
    InvalidIndex,
    /// Storage full: delete stored messages.
    MemoryFull,
    /// Operation not supported or not allowed on this modem: feature off.
    Unsupported,
    /// Not in any table: treat like a temporary failure, but log it.
    Unknown,
}

impl ErrorClass {
    /// Whether retrying the same message (on this or another modem) can succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Temporary
                | ErrorClass::SmscBusy
                | ErrorClass::NoService
                | ErrorClass::Busy
                | ErrorClass::Unknown
                | ErrorClass::SmscConfig
                | ErrorClass::SimFailure
                | ErrorClass::MemoryFull
        )
    }

    /// Whether the problem lies with this modem (so another modem may succeed) rather than with the
    /// message itself.
    pub fn modem_level(self) -> bool {
        matches!(
            self,
            ErrorClass::NoService
                | ErrorClass::SmscConfig
                | ErrorClass::Busy
                | ErrorClass::SimFailure
                | ErrorClass::MemoryFull
        )
    }
}

/// Classifies a `+CMS ERROR: <code>` (27.005 §3.2.5; the handling per code follows smstools3).
pub fn class(code: u16) -> ErrorClass {
    match code {
        1 | 8 | 10 | 21 | 29 | 30 | 50 | 69 => ErrorClass::Permanent,
        96..=99 | 111 | 304 | 305 => ErrorClass::InvalidPdu,
        192 => ErrorClass::SmscBusy,
        128..=255 => ErrorClass::Permanent,
        27 | 38 | 41 | 42 | 47 | 332 | 500 => ErrorClass::Temporary,
        512..=514 => ErrorClass::Temporary,
        331 => ErrorClass::NoService,
        330 => ErrorClass::SmscConfig,
        314 => ErrorClass::Busy,
        310..=313 | 315..=318 => ErrorClass::SimFailure,
        321 => ErrorClass::InvalidIndex,
        322 => ErrorClass::MemoryFull,
        300..=303 => ErrorClass::Unsupported,
        _ => ErrorClass::Unknown,
    }
}

/// Classifies a `+CME ERROR: <code>` (27.007 §9.2; the handling per code follows smstools3).
pub fn cme_class(code: u16) -> ErrorClass {
    match code {
        30 => ErrorClass::NoService,
        14 | 515 => ErrorClass::Busy,
        10..=13 | 15..=18 => ErrorClass::SimFailure,
        21 => ErrorClass::InvalidIndex,
        20 => ErrorClass::MemoryFull,
        3 | 4 => ErrorClass::Unsupported,
        _ => ErrorClass::Unknown,
    }
}

/// How a command ended when it did not end with `OK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Failure {
    /// `+CMS ERROR: <code>`.
    Cms { code: u16 },
    /// `+CME ERROR: <code>`.
    Cme { code: u16 },
    /// `ERROR`, `COMMAND NOT SUPPORT`, a textual CME/CMS error or a call-end result.
    Other { text: String },
}

impl Failure {
    /// The class of this failure; a plain `ERROR` counts as unsupported.
    pub fn class(&self) -> ErrorClass {
        match self {
            Failure::Cms { code } => class(*code),
            Failure::Cme { code } => cme_class(*code),
            Failure::Other { .. } => ErrorClass::Unsupported,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Cms { code } => write!(f, "+CMS ERROR: {code}"),
            Failure::Cme { code } => write!(f, "+CME ERROR: {code}"),
            Failure::Other { text } => f.write_str(text),
        }
    }
}

/// Why a send did not complete. Every variant carries `confirmed`: the TP-MRs of the parts the modem
/// confirmed with `+CMGS` before the failure, in part order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The modem answered `+CMS ERROR` (or `+CME ERROR`/`ERROR`) for part `part`: the network or
    /// modem refused it, so that part was certainly not delivered.
    #[error("modem {modem} refused part {part}: {failure} ({class:?})")]
    Refused {
        modem: String,
        part: usize,
        failure: Failure,
        class: ErrorClass,
        confirmed: Vec<u8>,
    },
    /// No answer in time for part `part`. `submitted` is true when the PDU and Ctrl-Z had already
    /// been written: the network may have accepted it, so the message is in doubt.
    #[error("modem {modem} timed out on part {part} after {after:?} (submitted: {submitted})")]
    Timeout {
        modem: String,
        part: usize,
        submitted: bool,
        after: Duration,
        confirmed: Vec<u8>,
    },
    /// The send was cut short by the modem vanishing, a reset or shutdown. `submitted` as for
    /// [`SendError::Timeout`].
    #[error("send on modem {modem} interrupted at part {part}: {reason} (submitted: {submitted})")]
    Interrupted {
        modem: String,
        part: usize,
        submitted: bool,
        reason: String,
        confirmed: Vec<u8>,
    },
    /// The modem cannot take sends now (initializing, recovering, vanished, out of the pool, shut
    /// down). Nothing was written: safe to send elsewhere.
    #[error("modem {modem} unavailable: {reason}")]
    ModemUnavailable { modem: String, reason: String },
    /// A part was refused before it reached the modem (bad hex, length mismatch, empty list).
    #[error("invalid part {part} for modem {modem}: {reason}")]
    InvalidPart {
        modem: String,
        part: usize,
        reason: String,
    },
}

impl SendError {
    /// TP-MRs of the parts confirmed before the failure.
    pub fn confirmed(&self) -> &[u8] {
        match self {
            SendError::Refused { confirmed, .. }
            | SendError::Timeout { confirmed, .. }
            | SendError::Interrupted { confirmed, .. } => confirmed,
            SendError::ModemUnavailable { .. } | SendError::InvalidPart { .. } => &[],
        }
    }

    /// True when the failing part may have reached the network: the dispatcher must treat the
    /// message as "in doubt" rather than retry blindly.
    pub fn in_doubt(&self) -> bool {
        matches!(
            self,
            SendError::Timeout {
                submitted: true,
                ..
            } | SendError::Interrupted {
                submitted: true,
                ..
            }
        )
    }

    /// The class of a refusal, if the modem gave one.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            SendError::Refused { class, .. } => Some(*class),
            _ => None,
        }
    }
}

/// Why a request other than a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The modem answered with an error result.
    #[error("modem {modem} answered {failure} to {command}")]
    Failed {
        modem: String,
        command: String,
        failure: Failure,
    },
    /// No final result in time.
    #[error("modem {modem} gave no answer to {command} within {after:?}")]
    Timeout {
        modem: String,
        command: String,
        after: Duration,
    },
    /// The modem cannot take requests now, or went away while the command ran.
    #[error("modem {modem} unavailable: {reason}")]
    ModemUnavailable { modem: String, reason: String },
    /// The command text was refused before it reached the modem.
    #[error("invalid command for modem {modem}: {reason}")]
    Invalid { modem: String, reason: String },
}

/// Errors of the modem layer outside a single request: opening the port, the init sequence.
#[derive(Debug, thiserror::Error)]
pub enum ModemError {
    /// The serial port could not be opened.
    #[error("cannot open {path} for modem {modem}: {source}")]
    Open {
        modem: String,
        path: String,
        #[source]
        source: tokio_serial::Error,
    },
    /// Reading or writing the port failed, or it returned end of file (device gone).
    #[error("port of modem {modem} failed: {detail}")]
    Port { modem: String, detail: String },
    /// A required init step failed.
    #[error("init of modem {modem} failed at {step}: {detail}")]
    Init {
        modem: String,
        step: String,
        detail: String,
    },
    /// The modem must leave the pool (wrong PIN, SIM failure, too many failed recoveries).
    #[error("modem {modem} taken out of the pool: {reason}")]
    OutOfPool { modem: String, reason: String },
    /// A command timed out.
    #[error("modem {modem} timed out on {command} after {after:?}")]
    Timeout {
        modem: String,
        command: String,
        after: Duration,
    },
    /// Shutdown was requested.
    #[error("modem {modem} is shutting down")]
    Shutdown { modem: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cms_classes_follow_the_code_table() {
        for c in [1, 8, 10, 21, 29, 30, 50, 69, 195, 196, 197] {
            assert_eq!(class(c), ErrorClass::Permanent, "CMS {c}");
        }
        for c in [96, 97, 98, 99, 111, 304, 305] {
            assert_eq!(class(c), ErrorClass::InvalidPdu, "CMS {c}");
        }
        assert_eq!(class(192), ErrorClass::SmscBusy);
        for c in [27, 38, 41, 42, 47, 332, 500, 512, 513, 514] {
            assert_eq!(class(c), ErrorClass::Temporary, "CMS {c}");
        }
        assert_eq!(class(331), ErrorClass::NoService);
        assert_eq!(class(330), ErrorClass::SmscConfig);
        assert_eq!(class(314), ErrorClass::Busy);
        for c in [310, 311, 312, 313, 315, 316, 317, 318] {
            assert_eq!(class(c), ErrorClass::SimFailure, "CMS {c}");
        }
        assert_eq!(class(321), ErrorClass::InvalidIndex);
        assert_eq!(class(322), ErrorClass::MemoryFull);
        assert_eq!(class(999), ErrorClass::Unknown);
    }

    #[test]
    fn cme_classes_follow_the_code_table() {
        assert_eq!(cme_class(30), ErrorClass::NoService);
        assert_eq!(cme_class(14), ErrorClass::Busy);
        assert_eq!(cme_class(515), ErrorClass::Busy);
        for c in [10, 11, 12, 13, 15, 16, 17, 18] {
            assert_eq!(cme_class(c), ErrorClass::SimFailure, "CME {c}");
        }
        assert_eq!(cme_class(21), ErrorClass::InvalidIndex);
        assert_eq!(cme_class(20), ErrorClass::MemoryFull);
    }

    #[test]
    fn retry_and_modem_level_split() {
        assert!(!ErrorClass::Permanent.retryable());
        assert!(!ErrorClass::InvalidPdu.retryable());
        assert!(ErrorClass::Temporary.retryable());
        assert!(!ErrorClass::Temporary.modem_level());
        assert!(ErrorClass::NoService.modem_level());
        assert!(ErrorClass::SimFailure.modem_level());
    }

    #[test]
    fn in_doubt_only_when_submitted() {
        let e = SendError::Timeout {
            modem: "m".into(),
            part: 1,
            submitted: true,
            after: Duration::from_secs(1),
            confirmed: vec![7],
        };
        assert!(e.in_doubt());
        assert_eq!(e.confirmed(), &[7]);
        let e = SendError::Interrupted {
            modem: "m".into(),
            part: 0,
            submitted: false,
            reason: "gone".into(),
            confirmed: vec![],
        };
        assert!(!e.in_doubt());
        let e = SendError::Refused {
            modem: "m".into(),
            part: 0,
            failure: Failure::Cms { code: 331 },
            class: class(331),
            confirmed: vec![],
        };
        assert!(!e.in_doubt());
        assert_eq!(e.class(), Some(ErrorClass::NoService));
    }
}
