//! The member as the community rules see it, and the normalisation of what identifies and
//! describes one: E.164 numbers (read against the crate's own compact numbering plan,
//! `crate::numbering`, generated from libphonenumber's metadata), tags and member fields.
//!
//! [`MemberView`] mirrors `store`'s member row without its ids, so rules and segment matching can
//! run on stored members, on CSV rows in a dry run and in property tests alike. The status is the
//! crate's one [`MemberStatus`] (`crate::model`); the consent names are `store`'s column values
//! (`opted_out`, `opted_in`, …).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::CommunityError;
use crate::numbering;

pub use crate::model::MemberStatus;

/// What happened to a number's consent (`consent_log.event` in the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentEvent {
    Joined,
    Confirmed,
    OptedOut,
    OptedIn,
    Imported,
    Removed,
}

impl ConsentEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentEvent::Joined => "joined",
            ConsentEvent::Confirmed => "confirmed",
            ConsentEvent::OptedOut => "opted_out",
            ConsentEvent::OptedIn => "opted_in",
            ConsentEvent::Imported => "imported",
            ConsentEvent::Removed => "removed",
        }
    }
}

impl fmt::Display for ConsentEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member as the rules see it (the store's row without ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// E.164, `+` and digits.
    pub number: String,
    pub name: Option<String>,
    pub city: Option<String>,
    /// Postal code, ZIP, district: whatever the organisation segments by.
    pub region: Option<String>,
    /// IANA zone; `None` = the configured default zone applies.
    pub time_zone: Option<String>,
    /// Normalised (see [`normalise_tags`]).
    pub tags: Vec<String>,
    pub status: MemberStatus,
    /// The `field` of the onboarding question awaiting an answer; `None` = not onboarding.
    pub onboarding_step: Option<String>,
    /// Unix seconds.
    pub joined_at: i64,
    /// Custom fields (configured onboarding fields without a column of their own), by name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

impl MemberView {
    /// An active member with only a number, joined at `joined_at` (tests, dry runs).
    pub fn new(number: impl Into<String>, status: MemberStatus, joined_at: i64) -> MemberView {
        MemberView {
            number: number.into(),
            name: None,
            city: None,
            region: None,
            time_zone: None,
            tags: Vec::new(),
            status,
            onboarding_step: None,
            joined_at,
            fields: BTreeMap::new(),
        }
    }
}

/// A member attribute an onboarding answer (or an import) fills.
///
/// Onboarding `field` names map as: `name`; `city`; `region`, `zip`, `zip_code`, `postal_code`,
/// `postcode` → [`MemberField::Region`]; `time_zone`, `timezone` → [`MemberField::TimeZone`];
/// anything else is [`MemberField::Custom`] (the store needs a place for those; see
/// docs/community.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberField {
    Name,
    City,
    Region,
    TimeZone,
    Custom(String),
}

impl MemberField {
    pub fn from_field_name(field: &str) -> MemberField {
        match field {
            "name" => MemberField::Name,
            "city" => MemberField::City,
            "region" | "zip" | "zip_code" | "postal_code" | "postcode" => MemberField::Region,
            "time_zone" | "timezone" => MemberField::TimeZone,
            other => MemberField::Custom(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MemberField::Name => "name",
            MemberField::City => "city",
            MemberField::Region => "region",
            MemberField::TimeZone => "time_zone",
            MemberField::Custom(name) => name,
        }
    }
}

/// Names a custom field may not take: the built-in columns and their aliases, the CSV columns,
/// the segment keys and the template placeholders, so `shirt_size=L`, `{shirt_size}` and a
/// `shirt_size` CSV column can never mean two things.
pub const RESERVED_FIELD_NAMES: &[&str] = &[
    "id",
    "number",
    "name",
    "first_name",
    "city",
    "region",
    "zip",
    "zip_code",
    "postal_code",
    "postcode",
    "time_zone",
    "timezone",
    "tag",
    "tags",
    "status",
    "joined",
    "joined_at",
    "updated_at",
    "home_modem",
    "home_reason",
    "onboarding_step",
    "fields",
    "org",
    "contact",
];

/// Why `name` cannot be a custom field (`None`: it can): 1 to 32 characters of `a-z`, `0-9`,
/// `_`, and not one of [`RESERVED_FIELD_NAMES`].
pub fn custom_field_error(name: &str) -> Option<String> {
    let shaped = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !shaped {
        Some(format!(
            "must be 1 to 32 characters of a-z, 0-9 or '_', got {name:?}"
        ))
    } else if RESERVED_FIELD_NAMES.contains(&name) {
        Some(format!(
            "{name:?} is a built-in member attribute, not a custom field"
        ))
    } else {
        None
    }
}

/// Parses an ISO 3166 region code (`"US"`, case-insensitive) of the numbering plan.
pub fn parse_region(code: &str) -> Result<&'static numbering::Region, CommunityError> {
    numbering::region(code.trim()).ok_or_else(|| CommunityError::InvalidRegion {
        input: code.to_string(),
    })
}

/// A valid number and the region the numbering plan assigns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E164 {
    /// `+` and digits.
    pub number: String,
    /// ISO 3166 code, when the number belongs to one region (`None` for e.g. +800 numbers).
    pub region: Option<String>,
    /// The national significant number (for NANP: area code + 7 digits).
    pub national: u64,
}

/// Normalises a phone number to E.164. A number without `+`/IDD is read in `default_region`
/// (an ISO code such as `"US"`); without one, only international forms are accepted.
/// Invalid numbers are an error that quotes the input: `number "555": not a valid phone number`.
pub fn normalise_number(input: &str, default_region: Option<&str>) -> Result<E164, CommunityError> {
    let invalid = |reason: &str| CommunityError::InvalidNumber {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = number_text(input)?;
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    // Letters could be read as keypad digits ("1-800-FLOWERS"); members' numbers never carry
    // them, and accepting them would turn a typo in a CSV into somebody else's number.
    if trimmed.chars().any(|c| c.is_alphabetic()) {
        return Err(invalid("not a valid phone number (letters)"));
    }
    let region = default_region.map(parse_region).transpose()?;
    let parsed = numbering::parse(trimmed, region)
        .ok()
        .filter(numbering::Parsed::has_possible_length)
        .ok_or_else(|| invalid("not a valid phone number"))?;
    let national = parsed
        .national
        .parse::<u64>()
        .map_err(|_| invalid("not a valid phone number"))?;
    Ok(E164 {
        number: parsed.e164(),
        region: parsed.region().map(str::to_string),
        national,
    })
}

/// The text of a number with its surrounding spaces (U+0020 only) trimmed. A control character
/// anywhere (`"+15550001111\n"`, `"\u{0}"`) or other whitespace around it (a tab, a newline, a
/// no-break space) is refused: such a number was pasted from somewhere it did not end, and
/// trimming it silently would let the rest of a line or a shell quoting mistake pass as a
/// number. Used by [`normalise_number`] and by the lookups that fall back to an alphanumeric
/// sender (`conversation`), so both refuse the same inputs.
pub fn number_text(input: &str) -> Result<&str, CommunityError> {
    let invalid = |reason: String| CommunityError::InvalidNumber {
        input: input.to_string(),
        reason,
    };
    if let Some(c) = input.chars().find(|c| c.is_control()) {
        return Err(invalid(format!(
            "contains the control character U+{:04X}",
            u32::from(c)
        )));
    }
    let trimmed = input.trim_matches(' ');
    if trimmed.starts_with(char::is_whitespace) || trimmed.ends_with(char::is_whitespace) {
        return Err(invalid(
            "has whitespace other than spaces around it".to_string(),
        ));
    }
    Ok(trimmed)
}

/// Normalises one tag: trimmed, lower-cased, inner whitespace runs become `-`; 1 to 32 letters,
/// digits, `-` or `_`. Tags are matched case-insensitively everywhere, so storing one spelling
/// keeps `Volunteer` and `volunteer` from becoming two segments.
pub fn normalise_tag(input: &str) -> Result<String, CommunityError> {
    let tag = input
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase();
    let bad = |reason: &str| CommunityError::InvalidTag {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    if tag.is_empty() {
        return Err(bad("empty"));
    }
    if tag.chars().count() > 32 {
        return Err(bad("longer than 32 characters"));
    }
    if !tag
        .chars()
        .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad("only letters, digits, '-' and '_' are allowed"));
    }
    Ok(tag)
}

/// Normalises a list of tags (see [`normalise_tag`]), dropping empty entries and duplicates;
/// the result is sorted so equal sets compare equal.
pub fn normalise_tags<'a>(
    tags: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, CommunityError> {
    let mut out = Vec::new();
    for tag in tags {
        if tag.trim().is_empty() {
            continue;
        }
        out.push(normalise_tag(tag)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Trims and collapses whitespace of a free-text member field; `None` when nothing is left.
pub fn clean_field(text: &str) -> Option<String> {
    let cleaned = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_to_e164() {
        let n = normalise_number("(312) 555-0123", Some("US")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.number, "+13125550123");
        assert_eq!(n.region.as_deref(), Some("US"));
        let n = normalise_number("+49 30 901820", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.number, "+4930901820");
        assert_eq!(n.region.as_deref(), Some("DE"));
        let n = normalise_number("030 901820", Some("de")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.number, "+4930901820");
    }

    #[test]
    fn invalid_numbers_are_clear_errors() {
        for bad in [
            "555",
            "",
            "  ",
            "hello",
            "1-800-FLOWERS",
            "+1 555",
            "+999 1234",
        ] {
            let err = normalise_number(bad, Some("US")).expect_err(bad);
            assert!(
                matches!(&err, CommunityError::InvalidNumber { input, .. } if input == bad),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            normalise_number("555", Some("US"))
                .err()
                .map(|e| e.to_string()),
            Some("number \"555\": not a valid phone number".to_string())
        );
        // Unassigned but well-formed ranges (the fictional 555-01xx numbers) are accepted.
        assert_eq!(
            normalise_number("+15551234567", None).map(|n| n.number),
            Ok("+15551234567".to_string())
        );
        assert!(matches!(
            normalise_number("3125550123", Some("XX")),
            Err(CommunityError::InvalidRegion { .. })
        ));
        // A national number needs a region.
        assert!(normalise_number("3125550123", None).is_err());
    }

    #[test]
    fn control_characters_and_other_whitespace_are_refused() {
        for bad in [
            "+15550001111\n",
            "\u{0}",
            "+1555\u{0}0001111",
            "\t+15550001111",
            "+15550001111\r",
            "+15550001111\u{a0}",
            "\u{2003}+15550001111",
        ] {
            let err = normalise_number(bad, Some("US")).expect_err(bad);
            assert!(
                matches!(&err, CommunityError::InvalidNumber { input, .. } if input == bad),
                "{bad:?}: {err}"
            );
            assert!(number_text(bad).is_err(), "{bad:?}");
        }
        assert!(
            normalise_number("+15550001111\n", None)
                .err()
                .is_some_and(|e| e.to_string().contains("U+000A")),
        );
        // Spaces around a number are still trimmed.
        assert_eq!(
            normalise_number("  +15550001111 ", None).map(|n| n.number),
            Ok("+15550001111".to_string())
        );
        assert_eq!(number_text("  Vodafone "), Ok("Vodafone"));
    }

    #[test]
    fn tags_normalise() {
        assert_eq!(
            normalise_tags(["Volunteer", " block  captain ", "volunteer", "", "Ünion_2"])
                .unwrap_or_else(|e| panic!("{e}")),
            vec!["block-captain", "volunteer", "ünion_2"]
        );
        assert!(normalise_tag("a,b").is_err());
        assert!(normalise_tag(&"x".repeat(33)).is_err());
    }

    #[test]
    fn field_names_map() {
        assert_eq!(MemberField::from_field_name("zip"), MemberField::Region);
        assert_eq!(MemberField::from_field_name("name"), MemberField::Name);
        assert_eq!(
            MemberField::from_field_name("shirt_size"),
            MemberField::Custom("shirt_size".into())
        );
    }
}
