//! The numbering plan the gateway needs, and the parsing of phone numbers against it: which
//! country calling codes exist, each region's international (IDD) and national prefixes, the
//! possible lengths of national significant numbers per country code, and which region a number
//! under a shared code (+1, +7, +44, …) belongs to. Owns [`parse`] (text → country code and
//! national digits); the meaning of a member's number (E.164, errors quoted to the user) stays in
//! `community::member`, which calls it, and `dispatch::homes` calls it for geomatching.
//!
//! Floor 0 (docs/architecture.md): it imports nothing of the crate, so `community` and
//! `dispatch`, which may not import each other, both use it. It touches no clock, no I/O, and no
//! heap beyond the returned digits: the tables in [`plan`] are plain `const` slices in read-only
//! data, searched by binary search, so nothing is decoded at start-up or on the first number.
//!
//! Why not libphonenumber's metadata: the daemon used the `phonenumber` crate, whose database of
//! every country is decoded on the first number (2.75 MB of heap) and whose validation runs
//! regular expressions with caches (2.3 MB) — 5 MB of a 7.75 MB daemon (docs/daemon.md,
//! "Footprint"). The gateway needs far less: a number is accepted when its national part has a
//! length a fixed-line or mobile number of its country may have (the rule the daemon already
//! applied on top of the crate's validity check, because the carrier is the real judge and plans
//! change faster than metadata), so per-range patterns are not needed. [`plan`] is GENERATED from
//! that crate by `tests/numbering_plan.rs` (a dev-dependency only), which fails when the committed
//! table differs; `tests/numbering_equivalence.rs` compares the result with the crate's answers
//! and lists where ours is deliberately different (docs/community.md, "Phone numbers").

// Generated, and compared byte for byte with the generator's output: rustfmt keeps off it.
#[rustfmt::skip]
mod plan;

/// One region (ISO 3166 code) of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Upper-case ISO 3166 code (`"GB"`).
    pub id: &'static str,
    /// The country calling code (`44`).
    pub code: u16,
    /// The international (IDD) prefixes dialled from this region, as plain digit strings.
    pub idd: &'static [&'static str],
    /// The national (trunk) prefixes stripped from a number read in this region (`"0"`).
    pub national_prefix: &'static [&'static str],
    /// Those of the national prefixes that numbers of this country code may themselves begin
    /// with (Russia's 8 00 toll-free numbers under the prefix 8): only such a prefix is kept
    /// when stripping it would leave a length no number has.
    pub prefix_may_lead: &'static [&'static str],
}

/// A number split into its country calling code and national significant number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub code: u16,
    /// ASCII digits; Italy's leading 0 is kept (it is part of the number, not a prefix).
    pub national: String,
}

impl Parsed {
    /// `+`, the country code and the national digits.
    pub fn e164(&self) -> String {
        format!("+{}{}", self.code, self.national)
    }

    /// Whether the national part has a length a number of this country code may have.
    pub fn has_possible_length(&self) -> bool {
        possible_length(self.code, self.national.len())
    }

    /// The region the number belongs to: for a shared code, by its leading national digits
    /// (`None` for non-geographic codes such as +800 and for ranges of a shared code that no
    /// region holds).
    pub fn region(&self) -> Option<&'static str> {
        region_of(self.code, &self.national)
    }
}

/// Why a text is not a phone number; [`parse`] callers turn it into their own error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// A character that is neither a digit, a leading `+` nor punctuation (`#`, `,`, `;`, …).
    Character,
    /// No country code could be read (a national number without a region, `+999`, `+0…`).
    CountryCode,
    /// Too few or too many digits to be a number of any country.
    Length,
}

/// National significant numbers are 2 to 17 digits (ITU-T E.164 and libphonenumber's bounds).
const MIN_NATIONAL: usize = 2;
const MAX_NATIONAL: usize = 17;

/// The region with ISO code `id` (case-insensitive).
pub fn region(id: &str) -> Option<&'static Region> {
    let id = id.to_ascii_uppercase();
    plan::REGIONS
        .binary_search_by(|r| r.id.cmp(id.as_str()))
        .ok()
        .and_then(|i| plan::REGIONS.get(i))
}

/// Whether `code` is an assigned country calling code.
pub fn is_country_code(code: u16) -> bool {
    lengths(code).is_some()
}

fn lengths(code: u16) -> Option<u32> {
    plan::CODES
        .binary_search_by_key(&code, |(c, _)| *c)
        .ok()
        .and_then(|i| plan::CODES.get(i))
        .map(|(_, mask)| *mask)
}

/// Whether a national significant number of `len` digits is possible under `code`.
pub fn possible_length(code: u16, len: usize) -> bool {
    len < 32 && lengths(code).is_some_and(|mask| mask & (1 << len) != 0)
}

/// The region of a national number under `code`: the longest listed leading-digits prefix wins.
pub fn region_of(code: u16, national: &str) -> Option<&'static str> {
    // The entries of one code are sorted by prefix, so every prefix of `national` that is listed
    // is found by its own binary search; there are at most a handful of lengths to try.
    (0..=national.len().min(plan::MAX_LEADING))
        .rev()
        .filter_map(|n| national.get(..n))
        .find_map(|prefix| {
            plan::LEADING
                .binary_search_by(|(c, p, _)| (*c, *p).cmp(&(code, prefix)))
                .ok()
                .and_then(|i| plan::LEADING.get(i))
        })
        .and_then(|(_, _, region)| (!region.is_empty()).then_some(*region))
}

/// The ASCII digit for a decimal digit of any of the scripts libphonenumber reads (Arabic-Indic,
/// Devanagari, fullwidth, …): numbers pasted from a phone's contact list arrive in them.
fn digit_value(c: char) -> Option<u8> {
    if let Some(d) = c.to_digit(10) {
        return u8::try_from(d).ok();
    }
    // Each script's zero; its digits are the nine code points after it.
    const ZEROS: &[u32] = &[
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
        0x0D66, 0x0E50, 0x0ED0, 0xFF10,
    ];
    let c = u32::from(c);
    ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&c))
        .and_then(|zero| u8::try_from(c - zero).ok())
}

/// Punctuation a written number may carry between its digits (libphonenumber's set without the
/// letter `x`): dashes of every width, slashes, dots, brackets, tildes and spaces.
fn is_punctuation(c: char) -> bool {
    matches!(
        c,
        ' ' | '-'
            | '.'
            | '/'
            | '('
            | ')'
            | '['
            | ']'
            | '~'
            | '\u{00A0}'
            | '\u{00AD}'
            | '\u{2010}'..='\u{2015}'
            | '\u{200B}'
            | '\u{2060}'
            | '\u{2212}'
            | '\u{2053}'
            | '\u{223C}'
            | '\u{3000}'
            | '\u{30FC}'
            | '\u{FF08}'
            | '\u{FF09}'
            | '\u{FF0D}'..='\u{FF0F}'
            | '\u{FF3B}'
            | '\u{FF3D}'
            | '\u{FF5E}'
    )
}

/// The digits of `text` and whether a `+` led them. Punctuation is dropped wherever it is; a `+`
/// may stand only before the first digit; anything else refuses the text (an extension after `#`
/// or `,`, a second number after `;`), because dropping it would send to some other number.
fn digits(text: &str) -> Result<(bool, String), NumberError> {
    let mut plus = false;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if let Some(d) = digit_value(c) {
            out.push(char::from(b'0' + d));
        } else if (c == '+' || c == '\u{FF0B}') && !plus && out.is_empty() {
            plus = true;
        } else if !is_punctuation(c) {
            return Err(NumberError::Character);
        }
    }
    Ok((plus, out))
}

/// The longest of `prefixes` that `digits` starts with.
fn longest_prefix<'a>(digits: &str, prefixes: &[&'a str]) -> Option<&'a str> {
    prefixes
        .iter()
        .filter(|p| digits.starts_with(**p))
        .max_by_key(|p| p.len())
        .copied()
}

/// The shortest of `prefixes` that `digits` starts with.
fn shortest_prefix<'a>(digits: &str, prefixes: &[&'a str]) -> Option<&'a str> {
    prefixes
        .iter()
        .filter(|p| digits.starts_with(**p))
        .min_by_key(|p| p.len())
        .copied()
}

/// `national` without the national prefix of `code`'s region (`07700 900123` → `7700900123` in
/// GB). A prefix numbers may begin with (Russia's 8) goes only when what remains has a possible
/// length; any other always, so a trunk 0 before too few digits is refused by the length check
/// instead of being taken as part of the number. A prefix written twice (`0 07700…`) goes twice,
/// as libphonenumber's parser took it.
fn strip_national_prefix(code: u16, region: Option<&Region>, national: &str) -> String {
    let Some(region) = region else {
        return national.to_string();
    };
    let mut rest = national;
    for pass in 0..2 {
        // The second pass takes the plain trunk prefix (the shortest), never a carrier code.
        let prefix = if pass == 0 {
            longest_prefix(rest, region.national_prefix)
        } else {
            shortest_prefix(rest, region.national_prefix)
        };
        let stripped = prefix.and_then(|p| {
            let after = rest.get(p.len()..)?;
            let keep = region.prefix_may_lead.contains(&p) && !possible_length(code, after.len());
            (!keep).then_some(after)
        });
        if pass == 0 {
            // Argentina's 15 follows the area code whether or not the trunk 0 was written. A
            // rewrite too short for a mobile is kept (and refused by the length check) unless
            // the digits as written, without a prefix, are a number of a possible length
            // themselves (`348 150 0000`): libphonenumber's parser keeps such a number as it is.
            if let Some(mobile) = with_mobile_lead(region, stripped.unwrap_or(rest)) {
                let viable_as_written = stripped.is_none() && possible_length(code, rest.len());
                if possible_length(code, mobile.len()) || !viable_as_written {
                    return mobile;
                }
                return rest.to_string();
            }
        }
        match stripped {
            Some(after) => rest = after,
            None => break,
        }
        if let Some(after) = (pass == 0).then(|| after_carrier(region, rest)).flatten() {
            rest = after;
            break;
        }
    }
    rest.to_string()
}

/// A national number written with a mobile token after its area code, rewritten the way the
/// plan writes it: Argentina's `11 15 2345 6789` (Buenos Aires, then 15, the local prefix for a
/// mobile) is `9 11 2345 6789`, as libphonenumber's parser rewrites it. The area codes are
/// listed, and none of them followed by 15 begins another (no subscriber number there begins
/// with 15), so at most one matches.
fn with_mobile_lead(region: &Region, national: &str) -> Option<String> {
    let (_, areas, token, lead) = plan::MOBILE_TOKENS
        .iter()
        .find(|(id, ..)| *id == region.id)?;
    areas.iter().find_map(|area| {
        let number = national.strip_prefix(area)?.strip_prefix(token)?;
        Some(format!("{lead}{area}{number}"))
    })
}

/// `national` without a carrier-selection code that follows the national prefix (Brazil's
/// `0 21 11 98765 4321`: carrier 21, then area code 11 and the number), as libphonenumber's
/// parser drops it; only when the count of digits its plan gives follows, so `0 21 2345 6789`
/// (Rio's area code 21 and a local number) keeps its 21, and only before an area code: what
/// follows a carrier code never begins with 0 (`0 21 0000000000` is no number; libphonenumber's
/// parser strips the carrier there too, then refuses what is left by its patterns, which ours
/// does not carry, so it keeps the digits and the length check refuses them).
fn after_carrier<'a>(region: &Region, national: &'a str) -> Option<&'a str> {
    let (_, codes, lo, hi) = plan::CARRIERS.iter().find(|(id, ..)| *id == region.id)?;
    let code = longest_prefix(national, codes)?;
    national
        .get(code.len()..)
        .filter(|after| (*lo..=*hi).contains(&after.len()) && !after.starts_with('0'))
}

/// The region whose prefixes apply to a national number under `code`, found by its digits
/// after any leading zeros (which are a prefix there, not the number's own leading digits); for
/// a range no region holds, the code's first region (a code's regions share their prefixes).
fn rules_region(code: u16, national: &str) -> Option<&'static Region> {
    region_of(code, national.trim_start_matches('0'))
        .or_else(|| region_of(code, ""))
        .and_then(region)
}

/// After a `+` or an IDD: the country code (the first of 1 to 3 digits that is assigned: the
/// codes are prefix-free) and the national number, without the region's national prefix if the
/// writer put one in (`+44 (0)7700 900123`).
fn international(digits: &str) -> Result<Parsed, NumberError> {
    if digits.len() <= MIN_NATIONAL {
        return Err(NumberError::Length);
    }
    if digits.starts_with('0') {
        return Err(NumberError::CountryCode);
    }
    let (code, rest) = (1..=3)
        .filter_map(|n| Some((digits.get(..n)?.parse::<u16>().ok()?, digits.get(n..)?)))
        .find(|(code, _)| is_country_code(*code))
        .ok_or(NumberError::CountryCode)?;
    Ok(Parsed {
        code,
        national: strip_national_prefix(code, rules_region(code, rest), rest),
    })
}

/// A number written without `+`/IDD in `home`: the country code is taken off when the writer
/// put it in front of a national number (`1 312 555 0100` in the US, `49 30 901820` in Germany)
/// and only then, so an Italian mobile beginning with 39 stays Italian; then the national
/// prefix.
fn national(home: &Region, digits: &str) -> Parsed {
    let code = home.code;
    let cc = code.to_string();
    let with_code = digits
        .strip_prefix(cc.as_str())
        .filter(|_| !possible_length(code, digits.len()))
        .map(|rest| strip_national_prefix(code, Some(home), rest))
        .filter(|rest| possible_length(code, rest.len()));
    let national = with_code.unwrap_or_else(|| strip_national_prefix(code, Some(home), digits));
    Parsed { code, national }
}

/// Parses a written phone number into its country code and national digits: `+` or `home`'s
/// IDD (`00`, `011`, …) followed by a country code, or else a national number of `home` (none:
/// international forms only). Does not judge the length against the plan (see
/// [`Parsed::has_possible_length`]) beyond the 2-to-17-digit bounds of any national number.
pub fn parse(text: &str, home: Option<&Region>) -> Result<Parsed, NumberError> {
    let (plus, digits) = digits(text)?;
    let parsed = if plus {
        // A region's IDD after the plus (`+00 49…`, `+011 49…`) is a common copy-paste slip.
        let idd = home.and_then(|h| longest_prefix(&digits, h.idd));
        let after = idd
            .and_then(|p| digits.get(p.len()..))
            .filter(|rest| !rest.starts_with('0'));
        international(after.unwrap_or(&digits))?
    } else {
        let home = home.ok_or(NumberError::CountryCode)?;
        let after = longest_prefix(&digits, home.idd)
            .and_then(|p| digits.get(p.len()..))
            .filter(|rest| !rest.starts_with('0'));
        match after {
            Some(rest) => international(rest)?,
            None => national(home, &digits),
        }
    };
    if parsed.national.len() < MIN_NATIONAL || parsed.national.len() > MAX_NATIONAL {
        return Err(NumberError::Length);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests;
