//! `[community] owners`, `forward_to_owners`, `owner_pin`, `owner_refusals_per_hour`: their validation into the community
//! layer's [`OwnerSettings`] (docs/configuration.md, docs/community.md "Owners on their own
//! phone").
//!
//! Kept apart from `validate.rs` so the rules of this one feature read in one place. Rules worth
//! knowing: every owner number must be E.164 (`+` and the country code), because an owner is
//! recognised by comparing the sender's E.164 form and a national number would silently match
//! nobody; duplicates are refused as a typo. The PIN is 4 to 16 letters or digits with no
//! whitespace: it is the first word of every owner command, so whitespace inside would split it.
//! `forward_to_owners` defaults to true (the reason to list owners is to read members' texts).
//! `owner_refusals_per_hour` (default 5) is capped at 60: more would not protect the owner.

use super::validate::Checker;
use crate::community::normalise_number;
use crate::community::owners::{DEFAULT_REFUSALS_PER_HOUR, OwnerSettings};

/// Above this, the cap would not protect anyone (one refusal a minute).
const MAX_REFUSALS_PER_HOUR: u32 = 60;

/// Shortest and longest accepted `owner_pin`.
const PIN_LEN: std::ops::RangeInclusive<usize> = 4..=16;

/// Validates the three keys (`None` = not in the file).
pub(super) fn owner_settings(
    c: &mut Checker<'_>,
    owners: Option<Vec<String>>,
    forward: Option<bool>,
    pin: Option<String>,
    refusals_per_hour: Option<u32>,
) -> OwnerSettings {
    let mut numbers: Vec<String> = Vec::new();
    for (i, raw) in owners.unwrap_or_default().iter().enumerate() {
        let key = format!("community.owners[{i}]");
        if !raw.trim().starts_with('+') {
            c.fail(
                &key,
                format!("{raw:?} must be in international form like +15551234567"),
            );
            continue;
        }
        match normalise_number(raw, None) {
            Ok(n) if numbers.contains(&n.number) => {
                c.fail(&key, format!("{} is listed twice", n.number));
            }
            Ok(n) => numbers.push(n.number),
            Err(e) => c.fail(&key, e.to_string()),
        }
    }
    let pin = pin.filter(|p| !p.is_empty());
    if let Some(p) = &pin
        && (!PIN_LEN.contains(&p.chars().count()) || !p.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        c.fail(
            "community.owner_pin",
            format!(
                "must be {} to {} letters or digits (no spaces)",
                PIN_LEN.start(),
                PIN_LEN.end()
            ),
        );
    }
    let refusals_per_hour = refusals_per_hour.unwrap_or(DEFAULT_REFUSALS_PER_HOUR);
    if refusals_per_hour > MAX_REFUSALS_PER_HOUR {
        c.fail(
            "community.owner_refusals_per_hour",
            format!("must be 0 to {MAX_REFUSALS_PER_HOUR}"),
        );
    }
    OwnerSettings {
        numbers,
        forward: forward.unwrap_or(true),
        pin,
        refusals_per_hour,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[daemon]\nstate_dir = \"/tmp/x\"\n\n[[modem]]\nname = \"m\"\nport = \"/dev/null\"\n\n[community]\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::from_str(&format!("{BASE}{extra}"), "t.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn owners_are_e164_and_forwarding_defaults_on() {
        let c = parse("owners = [\"+1 415 555 0199\"]\n").unwrap();
        assert_eq!(c.community.owners.numbers, vec!["+14155550199".to_string()]);
        assert!(c.community.owners.forward);
        assert_eq!(c.community.owners.pin, None);
        assert_eq!(c.community.owners.refusals_per_hour, 5);
        let c = parse("owner_refusals_per_hour = 0\n").unwrap();
        assert_eq!(c.community.owners.refusals_per_hour, 0);
        let c =
            parse("owners = [\"+14155550199\"]\nforward_to_owners = false\nowner_pin = \"4321\"\n")
                .unwrap();
        assert!(!c.community.owners.forwards());
        assert_eq!(c.community.owners.pin.as_deref(), Some("4321"));
    }

    #[test]
    fn bad_owner_keys_are_errors_that_name_the_key() {
        for (extra, key) in [
            ("owners = [\"4155550199\"]\n", "community.owners[0]"),
            ("owners = [\"+1\"]\n", "community.owners[0]"),
            (
                "owners = [\"+14155550199\", \"+14155550199\"]\n",
                "community.owners[1]",
            ),
            ("owner_pin = \"12\"\n", "community.owner_pin"),
            ("owner_pin = \"12 34\"\n", "community.owner_pin"),
            (
                "owner_refusals_per_hour = 61\n",
                "community.owner_refusals_per_hour",
            ),
        ] {
            let e = parse(extra).unwrap_err();
            assert!(e.contains(key), "{extra}: {e}");
        }
    }
}
