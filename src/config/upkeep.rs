//! Validation of a `[[modem]]`'s SIM upkeep keys (`balance_ussd`, `balance_every_hours`,
//! `low_balance`, `keepalive_days`, `keepalive_ussd`, `keepalive_sms`) into the dispatch layer's
//! [`SimUpkeep`] (docs/configuration.md, `[[modem]]`). Its own file so the modem checker in
//! `validate.rs` stays one call longer, not twenty lines.
//!
//! Why the keep-alive is "exactly one of" USSD or SMS: a SIM kept alive twice per period costs
//! twice, and a `keepalive_days` with nothing to send would silently do nothing. USSD codes are
//! checked with the modem layer's own rule (`modem::ussd::validate`), so a code the file accepts
//! is one the modem can send.

use super::raw::RawModem;
use super::validate::Checker;
use crate::dispatch::upkeep::{DEFAULT_BALANCE_EVERY_HOURS, KeepaliveAction, SimUpkeep};

/// The upkeep of modem `i`, failing the checker on bad values.
pub(super) fn check(c: &mut Checker<'_>, i: usize, raw: &RawModem) -> SimUpkeep {
    let key = |field: &str| format!("modem[{i}].{field}");
    let ussd = |c: &mut Checker<'_>, field: &str, code: &Option<String>| {
        let code = code.as_deref()?.trim().to_string();
        match crate::modem::ussd::validate(&code) {
            Ok(()) => Some(code),
            Err(e) => {
                c.fail(&key(field), e.to_string());
                None
            }
        }
    };
    let balance_ussd = ussd(c, "balance_ussd", &raw.balance_ussd);
    let keepalive_ussd = ussd(c, "keepalive_ussd", &raw.keepalive_ussd);
    let balance_every_hours = c.ranged(
        &key("balance_every_hours"),
        raw.balance_every_hours,
        DEFAULT_BALANCE_EVERY_HOURS,
        1,
        24 * 31,
    );
    let low_balance = raw.low_balance.filter(|v| {
        let ok = v.is_finite();
        if !ok {
            c.fail(&key("low_balance"), "must be a number");
        }
        ok
    });
    if low_balance.is_some() && balance_ussd.is_none() {
        c.fail(&key("low_balance"), "needs balance_ussd (the code that reads the balance)");
    }
    let keepalive_days = raw.keepalive_days.filter(|d| {
        let ok = (1..=365).contains(d);
        if !ok {
            c.fail(&key("keepalive_days"), format!("must be between 1 and 365, got {d}"));
        }
        ok
    });
    let sms = raw.keepalive_sms.as_ref().map(|s| {
        c.e164(&key("keepalive_sms.to"), &s.to);
        if s.text.trim().is_empty() {
            c.fail(&key("keepalive_sms.text"), "must not be empty");
        }
        KeepaliveAction::Sms {
            to: s.to.clone(),
            text: s.text.clone(),
        }
    });
    let keepalive = match (keepalive_ussd, sms) {
        (Some(_), Some(_)) => {
            c.fail(
                &key("keepalive_ussd"),
                "set keepalive_ussd or keepalive_sms, not both",
            );
            None
        }
        (Some(code), None) => Some(KeepaliveAction::Ussd(code)),
        (None, sms) => sms,
    };
    match (keepalive_days.is_some(), keepalive.is_some()) {
        (true, false) if raw.keepalive_ussd.is_none() && raw.keepalive_sms.is_none() => c.fail(
            &key("keepalive_days"),
            "needs keepalive_ussd or keepalive_sms (what to send)",
        ),
        (false, true) => c.fail(
            &key("keepalive_days"),
            "must be set with keepalive_ussd or keepalive_sms (after how many idle days)",
        ),
        _ => {}
    }
    SimUpkeep {
        balance_ussd,
        balance_every_hours,
        low_balance,
        keepalive_days,
        keepalive,
    }
}
