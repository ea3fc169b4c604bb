//! The `--segment` filter language: which members a broadcast (or a listing) is for.
//!
//! Grammar (conditions joined by `,` mean AND; whitespace around tokens is ignored):
//! ```text
//! segment   = condition *( "," condition )
//! condition = key op value
//! key       = "city" | "tag" | "region" | "status" | "joined"      (case-insensitive)
//! op        = "=" for city, tag, region, status;  ">=" | ">" | "<" | "<=" for joined
//! value     = bare text without "," and '"' | '"' text with "" for a quote '"'
//! ```
//! `city`, `region` and `status` may appear once; `tag` any number of times (the member needs
//! all of them); `joined` at most once per direction. `joined` takes a date `YYYY-MM-DD`
//! (midnight UTC; `<=` includes the whole day, `>` starts the next day) or an RFC 3339 time
//! stamp. City, region and tag match case-insensitively (tags are normalised like stored tags).
//! The parsed [`Segment`] has the same fields as `store`'s, so the store compiles the same filter
//! to SQL; [`Segment::matches`] is the reference semantics for dry runs and property tests.
//! [`Segment`]'s `Display` prints the canonical form, which parses back to the same value.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::CommunityError;
use super::member::{MemberStatus, MemberView, normalise_tag};
use crate::time::rfc3339_secs;

/// A parsed member filter; every given condition must hold. The default matches everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub city: Option<String>,
    pub region: Option<String>,
    /// Normalised; the member must have all.
    pub tags: Vec<String>,
    pub status: Option<MemberStatus>,
    /// `joined_at >= joined_since` (unix seconds).
    pub joined_since: Option<i64>,
    /// `joined_at < joined_before` (unix seconds).
    pub joined_before: Option<i64>,
    /// Custom fields (`shirt_size=L`), sorted by name, each at most once; compared like city.
    #[serde(default)]
    pub fields: Vec<(String, String)>,
}

const DAY: i64 = 86_400;

fn err(input: &str, reason: impl Into<String>) -> CommunityError {
    CommunityError::Segment {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// Splits on commas outside double quotes, unquoting values; returns raw conditions.
fn split_conditions(input: &str) -> Result<Vec<String>, CommunityError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = input.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', false) => {
                in_quotes = true;
                cur.push('\u{0}');
            }
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => {
                in_quotes = false;
                cur.push('\u{0}');
            }
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if in_quotes {
        return Err(err(input, "unclosed '\"'"));
    }
    out.push(cur);
    Ok(out)
}

/// The value of a condition: quote markers (NUL) delimit a quoted part, kept verbatim; bare parts
/// are trimmed.
fn value_of(raw: &str) -> Result<String, String> {
    if raw.contains('\u{0}') {
        let trimmed = raw.trim();
        let inner = trimmed
            .strip_prefix('\u{0}')
            .and_then(|r| r.strip_suffix('\u{0}'))
            .filter(|r| !r.contains('\u{0}'))
            .ok_or("a quoted value must be the whole value")?;
        Ok(inner.to_string())
    } else {
        Ok(raw.trim().to_string())
    }
}

/// Parses `YYYY-MM-DD` (midnight UTC, `is_date` true) or an RFC 3339 time stamp.
fn parse_time(value: &str) -> Result<(i64, bool), String> {
    if let Ok(date) = value.parse::<jiff::civil::Date>()
        && value.len() == 10
    {
        let ts = date
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map_err(|e| e.to_string())?
            .timestamp()
            .as_second();
        return Ok((ts, true));
    }
    value
        .parse::<jiff::Timestamp>()
        .map(|ts| (ts.as_second(), false))
        .map_err(|_| format!("{value:?} is not a date YYYY-MM-DD or an RFC 3339 time"))
}

impl Segment {
    /// Everyone.
    pub fn all() -> Segment {
        Segment::default()
    }

    /// Parses the filter language (see the module doc) without custom fields. An empty or blank
    /// input is an error: "everyone" is [`Segment::all`], asked for explicitly, never an
    /// accident of quoting.
    pub fn parse(input: &str) -> Result<Segment, CommunityError> {
        Segment::parse_with(input, &[])
    }

    /// [`Segment::parse`], also accepting `<field>=<value>` for each configured custom field in
    /// `fields` (any other key is still an error, so a typo never silently matches nobody).
    pub fn parse_with(input: &str, fields: &[&str]) -> Result<Segment, CommunityError> {
        if input.trim().is_empty() {
            return Err(err(input, "empty (use no --segment to address everyone)"));
        }
        let mut seg = Segment::default();
        for raw in split_conditions(input)? {
            if raw.trim().is_empty() {
                return Err(err(input, "empty condition (a stray ',')"));
            }
            let op_at = raw.find(['=', '<', '>']).ok_or_else(|| {
                err(
                    input,
                    format!("{:?} has no operator (=, >=, <)", raw.trim()),
                )
            })?;
            let key = raw.get(..op_at).unwrap_or("").trim().to_ascii_lowercase();
            let rest = raw.get(op_at..).unwrap_or("");
            let (op, value_raw) = ["<=", ">=", "=", "<", ">"]
                .iter()
                .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v)))
                .ok_or_else(|| err(input, "bad operator"))?;
            let value = value_of(value_raw).map_err(|r| err(input, r))?;
            if value.is_empty() {
                return Err(err(input, format!("{key}: empty value")));
            }
            let once = |slot: bool, key: &str| {
                if slot {
                    Err(err(input, format!("{key} given twice")))
                } else {
                    Ok(())
                }
            };
            match (key.as_str(), op) {
                ("city", "=") => {
                    once(seg.city.is_some(), "city")?;
                    seg.city = Some(value);
                }
                ("region", "=") => {
                    once(seg.region.is_some(), "region")?;
                    seg.region = Some(value);
                }
                ("tag", "=") => {
                    let tag = normalise_tag(&value).map_err(|e| err(input, e.to_string()))?;
                    if !seg.tags.contains(&tag) {
                        seg.tags.push(tag);
                    }
                }
                ("status", "=") => {
                    once(seg.status.is_some(), "status")?;
                    seg.status = Some(value.parse().map_err(|r: String| err(input, r))?);
                }
                ("joined", op) if op != "=" => {
                    let (t, is_date) =
                        parse_time(&value).map_err(|r| err(input, format!("joined: {r}")))?;
                    let (since, before) = match (op, is_date) {
                        (">=", _) => (Some(t), None),
                        (">", true) => (Some(t + DAY), None),
                        (">", false) => (Some(t + 1), None),
                        ("<", _) => (None, Some(t)),
                        ("<=", true) => (None, Some(t + DAY)),
                        (_, _) => (None, Some(t + 1)),
                    };
                    if let Some(s) = since {
                        once(seg.joined_since.is_some(), "joined lower bound")?;
                        seg.joined_since = Some(s);
                    }
                    if let Some(b) = before {
                        once(seg.joined_before.is_some(), "joined upper bound")?;
                        seg.joined_before = Some(b);
                    }
                }
                (field, "=") if fields.contains(&field) => {
                    if seg.fields.iter().any(|(k, _)| k == field) {
                        return Err(err(input, format!("{field} given twice")));
                    }
                    seg.fields.push((field.to_string(), value));
                }
                (field, op) if fields.contains(&field) => {
                    return Err(err(input, format!("{field} takes '=', not '{op}'")));
                }
                ("city" | "region" | "tag" | "status", op) => {
                    return Err(err(input, format!("{key} takes '=', not '{op}'")));
                }
                ("joined", _) => {
                    return Err(err(input, "joined takes >=, >, < or <=, not '='"));
                }
                (other, _) => {
                    let mut known = String::from("city, tag, region, status, joined");
                    for f in fields {
                        known.push_str(", ");
                        known.push_str(f);
                    }
                    return Err(err(
                        input,
                        format!("unknown key {other:?} (known: {known})"),
                    ));
                }
            }
        }
        seg.tags.sort();
        seg.fields.sort();
        Ok(seg)
    }

    /// Whether a member is in the segment (the reference semantics the store's SQL must follow).
    pub fn matches(&self, m: &MemberView) -> bool {
        let eq_ci = |want: &Option<String>, have: &Option<String>| match want {
            None => true,
            Some(w) => have
                .as_deref()
                .is_some_and(|h| h.trim().to_lowercase() == w.trim().to_lowercase()),
        };
        eq_ci(&self.city, &m.city)
            && eq_ci(&self.region, &m.region)
            && self.status.is_none_or(|s| s == m.status)
            && self.joined_since.is_none_or(|t| m.joined_at >= t)
            && self.joined_before.is_none_or(|t| m.joined_at < t)
            && self
                .tags
                .iter()
                .all(|t| m.tags.iter().any(|mt| mt.to_lowercase() == *t))
            && self.fields.iter().all(|(k, v)| {
                m.fields
                    .get(k)
                    .is_some_and(|have| have.eq_ignore_ascii_case(v))
            })
    }
}

fn write_value(f: &mut fmt::Formatter<'_>, v: &str) -> fmt::Result {
    let bare = !v.is_empty()
        && v.trim() == v
        && !v.contains([',', '"', '\u{0}'])
        && !v.starts_with(['=', '<', '>']);
    if bare {
        f.write_str(v)
    } else {
        write!(f, "\"{}\"", v.replace('"', "\"\""))
    }
}

impl fmt::Display for Segment {
    /// The canonical form; `joined` bounds are printed as `>=`/`<` time stamps. Everyone is `*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            if first {
                first = false;
                Ok(())
            } else {
                f.write_str(",")
            }
        };
        if let Some(c) = &self.city {
            sep(f)?;
            f.write_str("city=")?;
            write_value(f, c)?;
        }
        if let Some(r) = &self.region {
            sep(f)?;
            f.write_str("region=")?;
            write_value(f, r)?;
        }
        for t in &self.tags {
            sep(f)?;
            f.write_str("tag=")?;
            write_value(f, t)?;
        }
        if let Some(s) = self.status {
            sep(f)?;
            write!(f, "status={s}")?;
        }
        for (k, v) in &self.fields {
            sep(f)?;
            write!(f, "{k}=")?;
            write_value(f, v)?;
        }
        if let Some(t) = self.joined_since {
            sep(f)?;
            write!(f, "joined>={}", rfc3339_secs(t))?;
        }
        if let Some(t) = self.joined_before {
            sep(f)?;
            write!(f, "joined<{}", rfc3339_secs(t))?;
        }
        if first {
            f.write_str("*")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(date: &str) -> i64 {
        parse_time(date)
            .map(|(t, _)| t)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_every_key() {
        let s = Segment::parse(
            " city = Chicago , tag=Volunteer,TAG=block captain, region=60601, status=active, \
             joined>=2026-01-01, joined<2026-02-01",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s,
            Segment {
                city: Some("Chicago".into()),
                region: Some("60601".into()),
                tags: vec!["block-captain".into(), "volunteer".into()],
                status: Some(MemberStatus::Active),
                joined_since: Some(ts("2026-01-01")),
                joined_before: Some(ts("2026-02-01")),
                fields: Vec::new(),
            }
        );
        assert_eq!(ts("2026-01-01"), 1_767_225_600);
    }

    #[test]
    fn custom_fields_are_keys_only_when_configured() {
        let known = ["shirt_size", "diet"];
        let s = Segment::parse_with("shirt_size=L, diet=\"no nuts\",city=Chicago", &known)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.fields,
            vec![
                ("diet".to_string(), "no nuts".to_string()),
                ("shirt_size".to_string(), "L".to_string())
            ]
        );
        assert_eq!(
            Segment::parse_with(&s.to_string(), &known).unwrap_or_else(|e| panic!("{e}")),
            s
        );
        let mut m = MemberView::new("+13125550123", MemberStatus::Active, 0);
        m.city = Some("chicago".into());
        m.fields.insert("shirt_size".into(), "l".into());
        assert!(!s.matches(&m));
        m.fields.insert("diet".into(), "No Nuts".into());
        assert!(s.matches(&m));
        // Not configured: still an unknown key; configured but twice or with '<': errors.
        assert!(Segment::parse("shirt_size=L").is_err());
        assert!(Segment::parse_with("shirt_size=L,shirt_size=M", &known).is_err());
        assert!(Segment::parse_with("shirt_size<L", &known).is_err());
    }

    #[test]
    fn quoted_values_and_inclusive_dates() {
        let s = Segment::parse(r#"city="Washington, DC",joined<=2026-01-31,joined>2025-12-31"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.city.as_deref(), Some("Washington, DC"));
        assert_eq!(s.joined_before, Some(ts("2026-02-01")));
        assert_eq!(s.joined_since, Some(ts("2026-01-01")));
        let s = Segment::parse("joined>=2026-01-01T12:00:00Z").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.joined_since, Some(ts("2026-01-01") + 12 * 3600));
    }

    #[test]
    fn errors_are_clear() {
        let cases = [
            ("", "empty"),
            ("city", "no operator"),
            ("town=Chicago", "unknown key \"town\""),
            ("city>=Chicago", "city takes '='"),
            ("joined=2026-01-01", "joined takes"),
            ("joined>=yesterday", "not a date"),
            ("status=gone", "unknown status"),
            ("city=A,city=B", "city given twice"),
            ("city=A,", "stray ','"),
            ("city=\"A", "unclosed"),
            ("tag=a/b", "only letters"),
            ("city=", "empty value"),
        ];
        for (input, want) in cases {
            let got = Segment::parse(input)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(got.contains(want), "{input:?}: got {got:?}, want {want:?}");
        }
    }

    fn member() -> MemberView {
        MemberView {
            city: Some("CHICAGO".into()),
            region: Some("60601".into()),
            tags: vec!["volunteer".into(), "Block-Captain".into()],
            ..MemberView::new("+13125550123", MemberStatus::Active, ts("2026-01-15"))
        }
    }

    #[test]
    fn matching() {
        let m = member();
        let yes = [
            "city=chicago",
            "tag=VOLUNTEER",
            "tag=volunteer,tag=block captain",
            "region=60601",
            "status=active",
            "joined>=2026-01-01,joined<2026-02-01",
            "joined<=2026-01-15",
            "joined>=2026-01-15",
        ];
        let no = [
            "city=Evanston",
            "tag=donor",
            "tag=volunteer,tag=donor",
            "region=60602",
            "status=opted_out",
            "joined<2026-01-15",
            "joined>2026-01-15",
            "joined>=2026-02-01",
        ];
        for s in yes {
            assert!(Segment::parse(s).is_ok_and(|seg| seg.matches(&m)), "{s}");
        }
        for s in no {
            assert!(Segment::parse(s).is_ok_and(|seg| !seg.matches(&m)), "{s}");
        }
        assert!(Segment::all().matches(&m));
        let mut no_city = m.clone();
        no_city.city = None;
        assert!(!Segment::parse("city=chicago").is_ok_and(|s| s.matches(&no_city)));
    }

    fn arb_segment() -> impl Strategy<Value = Segment> {
        (
            proptest::option::of("[A-Za-z][A-Za-z ,\"=<>]{0,12}[A-Za-z]"),
            proptest::option::of("[0-9A-Z]{1,6}"),
            proptest::collection::btree_set("[a-z][a-z0-9_-]{0,8}", 0..3),
            proptest::option::of(proptest::sample::select(MemberStatus::ALL.to_vec())),
            proptest::option::of(0i64..4_000_000_000),
            proptest::option::of(0i64..4_000_000_000),
        )
            .prop_map(|(city, region, tags, status, since, before)| Segment {
                city,
                region,
                tags: tags.into_iter().collect(),
                status,
                joined_since: since,
                joined_before: before,
                fields: Vec::new(),
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = Segment::parse(&s);
        }

        #[test]
        fn display_round_trips(seg in arb_segment()) {
            let text = seg.to_string();
            if text == "*" {
                prop_assert_eq!(seg, Segment::all());
            } else {
                let back = Segment::parse(&text);
                prop_assert_eq!(back.as_ref().ok(), Some(&seg), "{}", text);
            }
        }
    }
}
