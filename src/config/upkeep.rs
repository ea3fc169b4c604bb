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
        c.fail(
            &key("low_balance"),
            "needs balance_ussd (the code that reads the balance)",
        );
    }
    let keepalive_days = raw.keepalive_days.filter(|d| {
        let ok = (1..=365).contains(d);
        if !ok {
            c.fail(
                &key("keepalive_days"),
                format!("must be between 1 and 365, got {d}"),
            );
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

#[cfg(test)]
mod tests {
    use crate::config::{Config, KeepaliveAction};

    const MINIMAL: &str = "[daemon]\nstate_dir = \"/var/lib/gsmgate\"\n\n[[modem]]\nname = \"m0\"\nport = \"/dev/ttyUSB0\"\n";

    fn load(extra: &str) -> Result<Config, String> {
        Config::from_str(&format!("{MINIMAL}{extra}"), "t.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn balance_and_keepalive_keys_fill_the_upkeep() {
        let c = load(
            "balance_ussd = \"*100#\"\nbalance_every_hours = 6\nlow_balance = 5.0\n\
             keepalive_days = 60\nkeepalive_sms = { to = \"+15551234567\", text = \"hi\" }\n",
        )
        .unwrap();
        let u = &c.modems[0].upkeep;
        assert_eq!(u.balance_ussd.as_deref(), Some("*100#"));
        assert_eq!((u.balance_every_hours, u.low_balance), (6, Some(5.0)));
        assert_eq!(u.keepalive_days, Some(60));
        assert_eq!(
            u.keepalive,
            Some(KeepaliveAction::Sms {
                to: "+15551234567".into(),
                text: "hi".into()
            })
        );
        let c = load("keepalive_days = 1\nkeepalive_ussd = \"*101#\"\n").unwrap();
        let u = &c.modems[0].upkeep;
        assert_eq!(u.keepalive, Some(KeepaliveAction::Ussd("*101#".into())));
        assert_eq!(u.balance_every_hours, 12);
        assert!(!load("").unwrap().modems[0].upkeep.active());
    }

    #[test]
    fn bad_upkeep_keys_are_located_errors() {
        let cases = [
            ("balance_ussd = \"*100#\\\"\"\n", "modem[0].balance_ussd"),
            (
                "balance_ussd = \"*100#\"\nbalance_every_hours = 0\n",
                "modem[0].balance_every_hours",
            ),
            ("low_balance = 5.0\n", "needs balance_ussd"),
            (
                "keepalive_days = 0\nkeepalive_ussd = \"*1#\"\n",
                "modem[0].keepalive_days",
            ),
            (
                "keepalive_days = 30\n",
                "needs keepalive_ussd or keepalive_sms",
            ),
            (
                "keepalive_ussd = \"*1#\"\n",
                "must be set with keepalive_ussd",
            ),
            (
                "keepalive_days = 3\nkeepalive_ussd = \"*1#\"\n\
                 keepalive_sms = { to = \"+15551234567\", text = \"x\" }\n",
                "not both",
            ),
            (
                "keepalive_days = 3\nkeepalive_sms = { to = \"5551234\", text = \"x\" }\n",
                "modem[0].keepalive_sms.to",
            ),
            (
                "keepalive_days = 3\nkeepalive_sms = { to = \"+15551234567\", text = \" \" }\n",
                "modem[0].keepalive_sms.text",
            ),
        ];
        for (extra, needle) in cases {
            let e = load(extra).unwrap_err();
            assert!(e.contains(needle), "{extra:?}: {e}");
        }
    }
}
