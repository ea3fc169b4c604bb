//! The `ussd` command: one USSD operation (a code, a menu reply or a cancel) through the named
//! modem's actor, waiting for the network's answer (docs/admin-protocol.md, `ussd`). It owns the
//! argument checks and the mapping of USSD failures to the protocol's error codes; the AT exchange
//! and the decoding of the answer are the modem layer's (`modem::ussd`).
//!
//! Commands run on the blocking pool; this one waits for the modem on the daemon's runtime
//! (`Handle::block_on` from the pool thread), at most the request's timeout. A negative answer of
//! the network (`+CUSD: 2/3/4/5`) or no answer in time is `unavailable` with a message naming it:
//! asking again later may work, and nothing about the request itself was wrong.

use std::time::Duration;

use super::{CommandError, Context, Result};
use crate::modem::ussd::{UssdError, UssdOp};
use crate::protocol::{UssdArgs, UssdResult};

/// How long the network's answer is waited for when the request does not say: networks end an
/// idle USSD dialogue after about 30 s.
pub const DEFAULT_TIMEOUT_S: u64 = 30;
/// The longest wait a request may ask for.
pub const MAX_TIMEOUT_S: u64 = 180;

fn op_of(args: &UssdArgs) -> Result<UssdOp> {
    match (&args.code, &args.reply, args.cancel) {
        (Some(code), None, false) => Ok(UssdOp::Send(code.trim().to_owned())),
        (None, Some(reply), false) => Ok(UssdOp::Reply(reply.trim().to_owned())),
        (None, None, true) => Ok(UssdOp::Cancel),
        _ => Err(CommandError::Invalid(
            "ussd takes exactly one of code, reply and cancel".into(),
        )),
    }
}

fn error_of(e: UssdError) -> CommandError {
    match e {
        UssdError::Invalid(_) | UssdError::Command(crate::modem::CommandError::Invalid { .. }) => {
            CommandError::Invalid(e.to_string())
        }
        other => CommandError::Unavailable(other.to_string()),
    }
}

/// Runs one USSD operation and returns the network's answer.
pub fn ussd(ctx: &Context, args: &UssdArgs) -> Result<UssdResult> {
    let op = op_of(args)?;
    let secs = args.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
    if !(1..=MAX_TIMEOUT_S).contains(&secs) {
        return Err(CommandError::Invalid(format!(
            "timeout_s {secs} is outside 1-{MAX_TIMEOUT_S}"
        )));
    }
    let handle = ctx
        .modems
        .iter()
        .find(|(name, _)| *name == args.modem)
        .map(|(_, h)| h.clone())
        .ok_or_else(|| CommandError::NotFound(format!("no running modem {:?}", args.modem)))?;
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|_| CommandError::Internal("ussd needs the daemon's runtime".into()))?;
    let answer = rt
        .block_on(handle.ussd(op, Duration::from_secs(secs)))
        .map_err(error_of)?;
    Ok(UssdResult {
        modem: args.modem.clone(),
        state: answer.state.name().to_owned(),
        text: answer.text,
        dcs: answer.dcs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_operation() {
        let a = |code: Option<&str>, reply: Option<&str>, cancel| UssdArgs {
            modem: "m".into(),
            code: code.map(Into::into),
            reply: reply.map(Into::into),
            cancel,
            timeout_s: None,
        };
        assert_eq!(
            op_of(&a(Some("*100#"), None, false)).unwrap(),
            UssdOp::Send("*100#".into())
        );
        assert_eq!(
            op_of(&a(None, Some("2"), false)).unwrap(),
            UssdOp::Reply("2".into())
        );
        assert_eq!(op_of(&a(None, None, true)).unwrap(), UssdOp::Cancel);
        assert!(op_of(&a(None, None, false)).is_err());
        assert!(op_of(&a(Some("*1#"), Some("2"), false)).is_err());
        assert!(op_of(&a(Some("*1#"), None, true)).is_err());
    }
}
