//! The generator of `src/numbering/plan.rs`, run as a test: it rebuilds the table text from the
//! `phonenumber` crate (a dev-dependency: libphonenumber's metadata) and fails when the committed
//! file differs. `GSMGATE_REGEN_NUMBERING=1 cargo test --test numbering_plan` writes the file
//! instead (after a `phonenumber` upgrade).
//!
//! What it derives (see `src/numbering/mod.rs` for how the daemon uses it):
//! - per region: the country code; the IDD and national prefixes as plain digit strings, by
//!   expanding the metadata's patterns when they denote a small finite set of strings (`00|99`,
//!   `0[0-3]\d`), else the preferred IDD; prefixes that only make sense with a capture
//!   transform (a NANP island's 7-digit local dialling) are left out; and whether numbers of
//!   the code may begin with such a prefix (an example number does);
//! - two transforms of the national number, each in its own table: Brazil's carrier-selection
//!   codes after the national prefix (`CARRIERS`) and Argentina's mobile token 15 after the
//!   area code (`MOBILE_TOKENS`), recognised by the shape of their patterns;
//! - per country code: the possible national lengths, the union over all its regions of the
//!   general, fixed-line and mobile descriptors (what the daemon's `plausible_length` accepted);
//! - per shared country code: leading national digits → region, by asking the crate which region
//!   sample numbers belong to (random numbers of every possible length under each prefix, and the
//!   metadata's example numbers), splitting a prefix digit by digit while its samples name more
//!   than one region. The samples are deterministic (a fixed-seed generator), so the output is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod splitmix;
use splitmix::Rng;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};

const PLAN: &str = "src/numbering/plan.rs";
/// More expansions than this and a pattern is not a "plain digit string" set.
const MAX_EXPANSIONS: usize = 256;
/// The deepest leading-digits prefix the region map splits to.
const MAX_DEPTH: usize = 6;
/// Random samples per possible length at each prefix.
const SAMPLES: usize = 10;

/// Expands a regular expression that denotes a finite set of digit strings; `None` otherwise.
/// Supports digits, `\d`, classes, groups (capturing or not), `|` and `?`: what the metadata's
/// prefix patterns use. Whitespace is ignored (some patterns are written free-spacing).
fn expand(pattern: &str) -> Option<BTreeSet<String>> {
    expand_up_to(pattern, MAX_EXPANSIONS)
}

/// [`expand`] with another bound on the set's size (a list of area codes is longer than any
/// prefix set).
fn expand_up_to(pattern: &str, max: usize) -> Option<BTreeSet<String>> {
    let chars: Vec<char> = pattern.chars().filter(|c| !c.is_whitespace()).collect();
    let mut pos = 0;
    let set = alternation(&chars, &mut pos, max)?;
    (pos == chars.len()).then_some(set)
}

fn alternation(c: &[char], pos: &mut usize, max: usize) -> Option<BTreeSet<String>> {
    let mut out = sequence(c, pos, max)?;
    while c.get(*pos) == Some(&'|') {
        *pos += 1;
        out.extend(sequence(c, pos, max)?);
        if out.len() > max {
            return None;
        }
    }
    Some(out)
}

fn sequence(c: &[char], pos: &mut usize, max: usize) -> Option<BTreeSet<String>> {
    let mut out: BTreeSet<String> = [String::new()].into();
    while let Some(&ch) = c.get(*pos) {
        let mut atom: BTreeSet<String> = match ch {
            '|' | ')' => break,
            '0'..='9' => {
                *pos += 1;
                [ch.to_string()].into()
            }
            '\\' if c.get(*pos + 1) == Some(&'d') => {
                *pos += 2;
                ('0'..='9').map(String::from).collect()
            }
            '[' => {
                *pos += 1;
                let mut set = BTreeSet::new();
                while c.get(*pos) != Some(&']') {
                    let lo = *c.get(*pos)?;
                    if !lo.is_ascii_digit() {
                        return None;
                    }
                    if c.get(*pos + 1) == Some(&'-') && c.get(*pos + 2) != Some(&']') {
                        let hi = *c.get(*pos + 2)?;
                        set.extend((lo..=hi).map(String::from));
                        *pos += 3;
                    } else {
                        set.insert(lo.to_string());
                        *pos += 1;
                    }
                }
                *pos += 1;
                set
            }
            '(' => {
                *pos += 1;
                if c.get(*pos) == Some(&'?') {
                    if c.get(*pos + 1) != Some(&':') {
                        return None;
                    }
                    *pos += 2;
                }
                let inner = alternation(c, pos, max)?;
                if c.get(*pos) != Some(&')') {
                    return None;
                }
                *pos += 1;
                inner
            }
            _ => return None,
        };
        if c.get(*pos) == Some(&'?') {
            *pos += 1;
            atom.insert(String::new());
        }
        out = out
            .iter()
            .flat_map(|a| atom.iter().map(move |b| format!("{a}{b}")))
            .collect();
        if out.len() > max {
            return None;
        }
    }
    Some(out)
}

fn plain_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn idd(meta: &Metadata) -> Vec<String> {
    let expanded = meta
        .international_prefix()
        .and_then(|re| expand(re.as_str()))
        .filter(|set| set.iter().all(|s| plain_digits(s)));
    match expanded {
        Some(set) => set.into_iter().collect(),
        None => meta
            .preferred_international_prefix()
            .filter(|p| plain_digits(p))
            .map(|p| vec![p.to_string()])
            .unwrap_or_default(),
    }
}

/// The metadata's national-prefix pattern without its free-spacing whitespace.
fn parsing_pattern(meta: &Metadata) -> Option<String> {
    let re = meta.national_prefix_for_parsing()?;
    Some(re.as_str().chars().filter(|c| !c.is_whitespace()).collect())
}

/// A carrier-selection pattern: national prefixes, then optionally a carrier code that the
/// transform rule drops when a given count of digits follows it. Brazil's
/// `(?:0|90)(?:(1[245]|…|99)(\d{10,11}))?` with the rule `$2` is the one such region: `0 21 11
/// 98765 4321` dials carrier 21, and the number is what follows. Returns the prefixes, the
/// codes and the bounds of that count; `None` for any other shape of pattern or rule.
fn carrier_selection(meta: &Metadata) -> Option<(BTreeSet<String>, BTreeSet<String>, u8, u8)> {
    if meta.national_prefix_transform_rule()? != "$2" {
        return None;
    }
    let pattern = parsing_pattern(meta)?;
    let body = pattern.strip_suffix("))?")?;
    let (head, count) = body.rsplit_once(")(\\d{")?;
    let (lo, hi) = count.strip_suffix('}')?.split_once(',')?;
    let (prefixes, codes) = head.split_once("(?:(")?;
    let digits = |set: BTreeSet<String>| set.iter().all(|s| plain_digits(s)).then_some(set);
    Some((
        digits(expand(prefixes)?)?,
        digits(expand(codes)?)?,
        lo.parse().ok()?,
        hi.parse().ok()?,
    ))
}

/// A mobile token: a national number written as an area code, a token and the subscriber
/// number, which the transform rule rewrites as a lead digit, the area code and the number.
/// Argentina's `0?(?:(11|2(?:2(?:02?|…)…)…)15)?` with the rule `9$1` is the one such region:
/// `011 15 2345 6789` (Buenos Aires, the local mobile prefix 15) is `+54 9 11 2345 6789`.
/// Returns the area codes, the token and the lead; `None` for any other shape.
fn mobile_token(meta: &Metadata) -> Option<(BTreeSet<String>, String, String)> {
    let lead = meta.national_prefix_transform_rule()?.strip_suffix("$1")?;
    if !plain_digits(lead) {
        return None;
    }
    let pattern = parsing_pattern(meta)?;
    let body = pattern.strip_suffix(")?")?;
    let (head, token) = body.rsplit_once(')')?;
    let (_, codes) = head.split_once("(?:(")?;
    let codes = expand_up_to(codes, 1024)?;
    (plain_digits(token) && codes.iter().all(|c| plain_digits(c)))
        .then(|| (codes, token.to_string(), lead.to_string()))
}

fn national_prefixes(meta: &Metadata) -> Vec<String> {
    // With a transform rule, the pattern rewrites local dialling (a capture moved elsewhere):
    // not a prefix to strip, so only the plain national prefix is kept; a carrier-selection
    // pattern's own prefixes are kept (its codes go to `CARRIERS`).
    let expanded = meta
        .national_prefix_for_parsing()
        .filter(|_| meta.national_prefix_transform_rule().is_none())
        .and_then(|re| expand(re.as_str()))
        .filter(|set| set.iter().all(|s| plain_digits(s)));
    let mut out: BTreeSet<String> = expanded.unwrap_or_default();
    if let Some((prefixes, ..)) = carrier_selection(meta) {
        out.extend(prefixes);
    }
    if let Some(p) = meta.national_prefix().filter(|p| plain_digits(p)) {
        out.insert(p.to_string());
    }
    out.into_iter().collect()
}

fn descriptors(meta: &Metadata) -> Vec<&Descriptor> {
    let d = meta.descriptors();
    [Some(d.general()), d.fixed_line(), d.mobile()]
        .into_iter()
        .flatten()
        .collect()
}

fn example_descriptors(meta: &Metadata) -> Vec<&Descriptor> {
    let d = meta.descriptors();
    [
        Some(d.general()),
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The region the crate gives a national number under `code`, when it parses back unchanged.
fn crate_region(code: u16, national: &str) -> Option<Option<String>> {
    let parsed = phonenumber::parse(None, format!("+{code}{national}")).ok()?;
    (parsed.code().value() == code && parsed.national().to_string() == national)
        .then(|| parsed.country().id().map(|id| id.as_ref().to_string()))
}

struct RegionMap<'a> {
    code: u16,
    lengths: &'a BTreeSet<u16>,
    examples: &'a [String],
    entries: Vec<(String, Option<String>)>,
}

impl RegionMap<'_> {
    /// Labels samples under `prefix`; splits into the ten next digits while they disagree.
    /// `inherited` is the label an entry for this prefix would override.
    fn build(&mut self, prefix: &str, inherited: &Option<String>) {
        let seed = u64::from(self.code) << 40
            ^ prefix.parse::<u64>().unwrap_or(0) << 4
            ^ prefix.len() as u64;
        let mut rng = Rng(seed);
        let mut counts: BTreeMap<Option<String>, usize> = BTreeMap::new();
        for &len in self
            .lengths
            .iter()
            .filter(|&&l| usize::from(l) > prefix.len())
        {
            for _ in 0..SAMPLES {
                let n = format!("{prefix}{}", rng.digits(usize::from(len) - prefix.len()));
                if let Some(label) = crate_region(self.code, &n) {
                    *counts.entry(label).or_default() += 1;
                }
            }
        }
        for e in self.examples.iter().filter(|e| e.starts_with(prefix)) {
            if let Some(label) = crate_region(self.code, e) {
                *counts.entry(label).or_default() += 1;
            }
        }
        let regions: Vec<&String> = counts.keys().flatten().collect();
        let label = match regions.as_slice() {
            [] if counts.is_empty() => inherited.clone(),
            [] => None,
            [one] => Some((*one).clone()),
            _ => counts
                .iter()
                .filter(|(k, _)| k.is_some())
                .max_by_key(|(_, n)| **n)
                .and_then(|(k, _)| k.clone()),
        };
        if prefix.is_empty() || label != *inherited {
            self.entries.push((prefix.to_string(), label.clone()));
        }
        if regions.len() > 1 && prefix.len() < MAX_DEPTH {
            for d in '0'..='9' {
                self.build(&format!("{prefix}{d}"), &label);
            }
        }
    }
}

fn generate() -> String {
    let mut metas: Vec<&Metadata> = DATABASE.iter().collect();
    metas.sort_by(|a, b| a.id().cmp(b.id()));
    // By code, not from `iter()`: the non-geographic codes (+800, +882, …) all have the id
    // "001", so only one of them is in the by-id map.
    let by_code: BTreeMap<u16, Vec<&Metadata>> = (1..1000u16)
        .filter_map(|code| Some((code, DATABASE.by_code(&code)?)))
        .collect();

    let mut out = String::new();
    out.push_str(
        "//! GENERATED by `tests/numbering_plan.rs` from the `phonenumber` crate's metadata \
         (libphonenumber);\n//! do not edit: `GSMGATE_REGEN_NUMBERING=1 cargo test --test \
         numbering_plan` rewrites it (rustfmt skips\n//! it: `super` declares it \
         `#[rustfmt::skip]`). What each table holds and how it is derived is in\n//! that \
         test's `//!` paragraph.\n\n\
         use super::Region;\n\n",
    );
    out.push_str(
        "/// Every region, sorted by ISO code.\npub(super) const REGIONS: &[Region] = &[\n",
    );
    for m in metas.iter().filter(|m| m.id() != "001") {
        let list = |v: Vec<String>| {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let prefixes = national_prefixes(m);
        // Whether a number of this code may begin with a prefix: the examples of every region
        // of the code are the evidence (Russia's toll-free 800 under the prefix 8).
        let examples: Vec<String> = DATABASE
            .by_code(&m.country_code())
            .unwrap_or_default()
            .iter()
            .flat_map(|other| example_descriptors(other))
            .filter_map(|d| d.example().map(str::to_string))
            .collect();
        let may_lead: Vec<String> = prefixes
            .iter()
            .filter(|p| examples.iter().any(|e| e.starts_with(p.as_str())))
            .cloned()
            .collect();
        writeln!(
            out,
            "    Region {{ id: \"{}\", code: {}, idd: &[{}], national_prefix: &[{}], \
             prefix_may_lead: &[{}] }},",
            m.id(),
            m.country_code(),
            list(idd(m)),
            list(prefixes),
            list(may_lead),
        )
        .unwrap();
    }
    out.push_str("];\n\n");

    out.push_str(
        "/// Carrier-selection codes, sorted by region: (region, codes, fewest and most digits \
         after a code).\n/// A code after the national prefix is dropped only when such a count \
         of digits follows it.\npub(super) const CARRIERS: &[(&str, &[&str], usize, usize)] = \
         &[\n",
    );
    for m in metas.iter().filter(|m| m.id() != "001") {
        if let Some((_, codes, lo, hi)) = carrier_selection(m) {
            let codes: Vec<String> = codes.iter().map(|s| format!("\"{s}\"")).collect();
            writeln!(
                out,
                "    (\"{}\", &[{}], {lo}, {hi}),",
                m.id(),
                codes.join(", ")
            )
            .unwrap();
        }
    }
    out.push_str("];\n\n");

    out.push_str(
        "/// Mobile tokens, sorted by region: (region, area codes, token, lead). A national number \
         written as an\n/// area code, the token and the subscriber number is the lead, the area \
         code and the number.\npub(super) const MOBILE_TOKENS: &[(&str, &[&str], &str, &str)] = \
         &[\n",
    );
    for m in metas.iter().filter(|m| m.id() != "001") {
        if let Some((codes, token, lead)) = mobile_token(m) {
            let codes: Vec<String> = codes.iter().map(|s| format!("\"{s}\"")).collect();
            writeln!(
                out,
                "    (\"{}\", &[{}], \"{token}\", \"{lead}\"),",
                m.id(),
                codes.join(", ")
            )
            .unwrap();
        }
    }
    out.push_str("];\n\n");

    let mut lengths: BTreeMap<u16, BTreeSet<u16>> = BTreeMap::new();
    out.push_str(
        "/// Every country calling code and its possible national lengths (bit n: n digits), \
         sorted by code.\npub(super) const CODES: &[(u16, u32)] = &[\n",
    );
    for (code, metas) in &by_code {
        let set: BTreeSet<u16> = metas
            .iter()
            .flat_map(|m| descriptors(m))
            .flat_map(|d| d.possible_length().iter().copied())
            .collect();
        let mask: u32 = set.iter().map(|l| 1u32 << l).sum();
        writeln!(out, "    ({code}, {mask:#x}),").unwrap();
        lengths.insert(*code, set);
    }
    out.push_str("];\n\n");

    let mut leading = Vec::new();
    for (code, metas) in &by_code {
        let single = metas.len() == 1;
        if single {
            let id = metas[0].id();
            let region = if id == "001" {
                String::new()
            } else {
                id.to_string()
            };
            leading.push((*code, String::new(), region));
            continue;
        }
        let examples: Vec<String> = metas
            .iter()
            .flat_map(|m| example_descriptors(m))
            .filter_map(|d| d.example().map(str::to_string))
            .collect();
        let mut map = RegionMap {
            code: *code,
            lengths: &lengths[code],
            examples: &examples,
            entries: Vec::new(),
        };
        map.build("", &None);
        for (prefix, label) in map.entries {
            leading.push((*code, prefix, label.unwrap_or_default()));
        }
    }
    leading.sort();
    let max = leading.iter().map(|(_, p, _)| p.len()).max().unwrap_or(0);
    writeln!(
        out,
        "/// The longest prefix in [`LEADING`].\npub(super) const MAX_LEADING: usize = {max};\n"
    )
    .unwrap();
    out.push_str(
        "/// (country code, leading national digits, region): the longest listed prefix of a \
         national number\n/// names its region (\"\": none, e.g. +800), sorted by code and prefix.\n\
         pub(super) const LEADING: &[(u16, &str, &str)] = &[\n",
    );
    for (code, prefix, region) in &leading {
        writeln!(out, "    ({code}, \"{prefix}\", \"{region}\"),").unwrap();
    }
    out.push_str("];\n");
    out
}

#[test]
fn the_committed_numbering_plan_is_what_the_metadata_gives() {
    let generated = generate();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PLAN);
    if std::env::var_os("GSMGATE_REGEN_NUMBERING").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{PLAN} is not what the phonenumber metadata gives; regenerate it with \
         `GSMGATE_REGEN_NUMBERING=1 cargo test --test numbering_plan` and review the diff"
    );
}

#[test]
fn prefix_patterns_expand_to_digit_strings() {
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(expand("00|99"), Some(set(&["00", "99"])));
    assert_eq!(expand("0(?:0|11)"), Some(set(&["00", "011"])));
    assert_eq!(expand("0[0-2]"), Some(set(&["00", "01", "02"])));
    assert_eq!(expand("80?"), Some(set(&["8", "80"])));
    assert_eq!(expand("([457]\\d{6})$|1"), None);
}

/// The point of the plan: the daemon itself no longer depends on `phonenumber` (nor, through it,
/// on `regex`); only the tests do. `cargo tree -e normal -i phonenumber` checks the whole graph;
/// this pins the manifest.
#[test]
fn phonenumber_is_a_dev_dependency_only() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let mut section = "";
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if line.starts_with("phonenumber") || line.starts_with("regex") {
            assert_eq!(section, "[dev-dependencies]", "{line} in {section}");
        }
    }
}
