//! Wire types of the `ussd` command: a USSD code sent through one modem, the reply to a menu, or
//! the cancel of an open session (3GPP TS 27.007 §7.15), and the network's answer.
//!
//! Shapes only; `commands::ussd` runs it through the modem actor. Exactly one of `code`, `reply`
//! and `cancel` is given; the command checks that, so a request naming two gets an
//! `invalid_request` that says which.

use serde::{Deserialize, Serialize};

use super::serde_helpers::{is_false, null_as_false};

/// `ussd`: one USSD operation on one modem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UssdArgs {
    /// The configured modem name.
    pub modem: String,
    /// A code that starts a session, e.g. `*100#`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The answer to the open menu (`state` `menu`), e.g. `2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// End the open session.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub cancel: bool,
    /// Seconds to wait for the network's answer (1–180); absent means 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
}

/// `ussd` → the network's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdResult {
    pub modem: String,
    /// `done` (final answer), `menu` (the network waits for a `reply`) or `cancelled`.
    pub state: String,
    /// The answer, decoded (empty after a cancel).
    pub text: String,
    /// The data coding scheme the modem reported (3GPP TS 23.038 §5), if any.
    pub dcs: Option<u16>,
}
