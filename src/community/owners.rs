//! The owner on their own phone (docs/community.md, "Owners on their own phone"): what a text
//! from a configured owner number means, the PIN check, the short references members' forwarded
//! texts carry, and the words of every SMS the owner channel sends back.
//!
//! Pure like the rest of `community`: no clock, no randomness, no store. The daemon draws the
//! random bytes (the operating system's CSPRNG), stores references and pending confirmations, and
//! runs the commands; this module turns bytes into references and codes, parses an owner's text
//! into an [`OwnerCommand`], and says what to answer. Keeping the parser here keeps it
//! table-tested and property-tested ("never panics on arbitrary input") apart from any I/O.
//!
//! Why these choices:
//! - References and confirmation codes use Crockford's base32 alphabet (digits and letters
//!   without I, L, O, U): one byte masked to 5 bits is one uniform symbol, so no bias, and the
//!   parser forgives the look-alikes (`i`/`l` read as `1`, `o` as `0`) a person types on a phone.
//!   A reference has 5 symbols (2^25 ≈ 33 million values), a code 6 (2^30 ≈ 10^9): a spoofer
//!   who guesses has one chance in millions per text, and a wrong code cancels the pending
//!   broadcast, so a code cannot be guessed over several texts.
//! - The PIN is compared in constant time (`subtle`), though SMS timing hardly leaks; it is the
//!   first word of the text so an owner types it the same way before every command.
//! - `BROADCAST <segment>: text` splits at the first colon followed by whitespace (or ending the
//!   text's first part): a segment may itself hold colons in an RFC 3339 `joined>=` time stamp,
//!   which are never followed by a space.
//! - Refusals are answered at most `owner_refusals_per_hour` times per owner in any hour
//!   ([`RefusalBudget`]): anyone can send a text that looks like it comes from an owner's number,
//!   and each refusal is an SMS the gateway pays for and the real owner's phone receives. The
//!   last answer before the cap says so; what is refused after it is still logged and journaled.
//!   Successful commands are always answered (they need the PIN, a live reference or the code).
//!   The count is kept in memory: a restart gives each owner a fresh hour, which a spoofer
//!   cannot cause.

use std::collections::{HashMap, VecDeque};

use subtle::ConstantTimeEq;

use super::member::normalise_number;

/// How long a member's reference stays valid after their latest forwarded text.
pub const REF_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a `BROADCAST` waits for its `YES <code>`.
pub const CONFIRM_TTL_MS: i64 = 10 * 60 * 1000;
/// Symbols in a member reference (`#k7q2m`).
pub const REF_LEN: usize = 5;
/// Symbols in a broadcast confirmation code (`YES 7KQ2MZ`).
pub const CODE_LEN: usize = 6;

/// Answers to refused commands per owner per hour, when the config does not say.
pub const DEFAULT_REFUSALS_PER_HOUR: u32 = 5;
/// The window of [`RefusalBudget`].
const REFUSAL_WINDOW_MS: i64 = 3600 * 1000;
/// Appended to the last refusal an owner gets before the cap.
pub const REFUSAL_CAP_NOTE: &str = " (Further refused commands get no answer for an hour.)";

/// Crockford's base32 (https://www.crockford.com/base32.html), lower case.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// `[community] owners`, `forward_to_owners`, `owner_pin`, validated by `config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSettings {
    /// The owners' numbers in E.164.
    pub numbers: Vec<String>,
    /// Forward members' texts to every owner.
    pub forward: bool,
    /// When set, the first word of every owner command.
    pub pin: Option<String>,
    /// Refused commands answered per owner in any hour (0: never answered).
    pub refusals_per_hour: u32,
}

impl Default for OwnerSettings {
    /// No owners; forwarding on, so listing owners is enough to start reading members' texts.
    fn default() -> Self {
        OwnerSettings {
            numbers: Vec::new(),
            forward: true,
            pin: None,
            refusals_per_hour: DEFAULT_REFUSALS_PER_HOUR,
        }
    }
}

impl OwnerSettings {
    /// Whether `number` (E.164) is an owner.
    pub fn is_owner(&self, number: &str) -> bool {
        self.numbers.iter().any(|n| n == number)
    }

    /// Whether members' texts are forwarded (there are owners and forwarding is on).
    pub fn forwards(&self) -> bool {
        self.forward && !self.numbers.is_empty()
    }
}

/// Whether a refused command gets its answer (module doc: at most `per_hour` per owner in any
/// hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalAnswer {
    /// Answer it.
    Answer,
    /// Answer it with [`REFUSAL_CAP_NOTE`]: the last one this hour.
    AnswerLast,
    /// Send nothing.
    Silent,
}

/// The answers to refused commands each owner got in the last hour (times in unix ms, oldest
/// first). Pure: the caller passes the time.
#[derive(Debug, Clone, Default)]
pub struct RefusalBudget {
    per_hour: u32,
    answered: HashMap<String, VecDeque<i64>>,
}

impl RefusalBudget {
    pub fn new(per_hour: u32) -> RefusalBudget {
        RefusalBudget {
            per_hour,
            answered: HashMap::new(),
        }
    }

    /// Whether `owner`'s refused command at `now` is answered; an answer is counted.
    pub fn take(&mut self, owner: &str, now: i64) -> RefusalAnswer {
        // Owners are a handful of configured numbers, so the map stays that small.
        let times = self.answered.entry(owner.to_string()).or_default();
        while times
            .front()
            .is_some_and(|&t| t <= now.saturating_sub(REFUSAL_WINDOW_MS))
        {
            times.pop_front();
        }
        let used = u32::try_from(times.len()).unwrap_or(u32::MAX);
        if used >= self.per_hour {
            return RefusalAnswer::Silent;
        }
        times.push_back(now);
        if used + 1 == self.per_hour {
            RefusalAnswer::AnswerLast
        } else {
            RefusalAnswer::Answer
        }
    }
}

/// A reference or code of `bytes.len()` symbols from random `bytes` (each byte gives 5 bits).
pub fn token_from_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// The canonical (lower-case) form of a typed reference or code of `len` symbols, forgiving
/// case and Crockford's look-alikes; `None` when it cannot be one.
pub fn normalise_token(input: &str, len: usize) -> Option<String> {
    let mut out = String::with_capacity(len);
    for c in input.chars() {
        let c = match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.chars().count() == len).then_some(out)
}

/// Whom an owner's reply is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `#k7q2m`: the member a forwarded text named (canonical form).
    Ref(String),
    /// `@+15551234567`: a member by number (E.164).
    Number(String),
}

/// What an owner's text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerCommand {
    /// Send `text` to one member.
    Reply { to: Target, text: String },
    /// Preview a broadcast and ask for its confirmation; `segment` `None` = everyone.
    Broadcast {
        segment: Option<String>,
        text: String,
    },
    /// `YES <code>`: confirm the pending broadcast (the code as typed, canonical when it could
    /// be one; a malformed code is still a confirmation attempt, and fails as a wrong code).
    Confirm { code: String },
}

/// Why an owner's text is not a command; each has its answer ([`refusal_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRefusal {
    /// `owner_pin` is set and the text does not start with it.
    Pin,
    /// Not one of the commands (also: an empty text).
    Unknown,
    /// `#<ref>` that cannot be a reference.
    BadRef,
    /// `@<number>` that is not a valid number.
    BadNumber(String),
    /// A reply or broadcast without a text.
    NoText,
    /// `BROADCAST` without the `<segment>:` part.
    NoColon,
    /// `YES` without a code.
    NoCode,
}

impl OwnerRefusal {
    /// A stable word for the log and the journal.
    pub fn word(&self) -> &'static str {
        match self {
            OwnerRefusal::Pin => "pin",
            OwnerRefusal::Unknown => "unknown_command",
            OwnerRefusal::BadRef => "bad_ref",
            OwnerRefusal::BadNumber(_) => "bad_number",
            OwnerRefusal::NoText => "no_text",
            OwnerRefusal::NoColon => "no_colon",
            OwnerRefusal::NoCode => "no_code",
        }
    }
}

/// The first whitespace-separated word of `s` and the rest, trimmed.
fn first_word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

/// Parses an owner's text. With `pin`, the text must start with it as its own word.
pub fn parse(text: &str, pin: Option<&str>) -> Result<OwnerCommand, OwnerRefusal> {
    let mut rest = text.trim();
    if let Some(pin) = pin {
        let (given, after) = first_word(rest);
        if !bool::from(given.as_bytes().ct_eq(pin.as_bytes())) {
            return Err(OwnerRefusal::Pin);
        }
        rest = after;
    }
    if let Some(after) = rest.strip_prefix('#') {
        let (r, body) = first_word(after);
        let r = normalise_token(r, REF_LEN).ok_or(OwnerRefusal::BadRef)?;
        return reply(Target::Ref(r), body);
    }
    if let Some(after) = rest.strip_prefix('@') {
        let (n, body) = first_word(after);
        let n = normalise_number(n, None)
            .map_err(|_| OwnerRefusal::BadNumber(n.chars().take(20).collect()))?;
        return reply(Target::Number(n.number), body);
    }
    let (word, after) = first_word(rest);
    if word.eq_ignore_ascii_case("BROADCAST") || word.eq_ignore_ascii_case("BROADCAST:") {
        // `BROADCAST: text` (the colon glued to the word) is everyone too.
        let after = if word.ends_with(':') {
            format!(": {after}")
        } else {
            after.to_string()
        };
        return broadcast(&after);
    }
    if word.eq_ignore_ascii_case("YES") {
        let (code, _) = first_word(after);
        if code.is_empty() {
            return Err(OwnerRefusal::NoCode);
        }
        let code = normalise_token(code, CODE_LEN).unwrap_or_else(|| code.to_lowercase());
        return Ok(OwnerCommand::Confirm { code });
    }
    Err(OwnerRefusal::Unknown)
}

fn reply(to: Target, body: &str) -> Result<OwnerCommand, OwnerRefusal> {
    if body.is_empty() {
        return Err(OwnerRefusal::NoText);
    }
    Ok(OwnerCommand::Reply {
        to,
        text: body.to_string(),
    })
}

fn broadcast(after: &str) -> Result<OwnerCommand, OwnerRefusal> {
    let split = after.char_indices().find(|&(i, c)| {
        c == ':'
            && after[i + 1..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace)
    });
    let Some((i, _)) = split else {
        return Err(OwnerRefusal::NoColon);
    };
    let segment = after[..i].trim();
    let text = after[i + 1..].trim();
    if text.is_empty() {
        return Err(OwnerRefusal::NoText);
    }
    let everyone = segment.is_empty()
        || segment == "*"
        || segment.eq_ignore_ascii_case("all")
        || segment.eq_ignore_ascii_case("everyone");
    Ok(OwnerCommand::Broadcast {
        segment: (!everyone).then(|| segment.to_string()),
        text: text.to_string(),
    })
}

/// The commands, for an owner who typed something else.
pub const USAGE: &str = "Owner commands: #<ref> text (reply to a forwarded text), @+15551234567 text, BROADCAST <segment or all>: text, YES <code>.";

/// The answer to a text that is not a command.
pub fn refusal_text(r: &OwnerRefusal) -> String {
    match r {
        OwnerRefusal::Pin => "Not done: owner commands must start with the owner PIN.".to_string(),
        OwnerRefusal::Unknown => USAGE.to_string(),
        OwnerRefusal::BadRef => {
            "Not sent: that reference is unknown or has expired. Reply with @+number text instead."
                .to_string()
        }
        OwnerRefusal::BadNumber(n) => format!("Not sent: {n:?} is not a valid number."),
        OwnerRefusal::NoText => "Not sent: the message is empty.".to_string(),
        OwnerRefusal::NoColon => {
            "Not sent: write BROADCAST <segment or all>: text, e.g. BROADCAST city=Austin: hi."
                .to_string()
        }
        OwnerRefusal::NoCode => "Not sent: write YES and the code you were sent.".to_string(),
    }
}

/// How a member is named to an owner: `Ann Lee (+15551234567)`, or the number alone.
pub fn member_label(name: Option<&str>, number: &str) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{n} ({number})"),
        None => number.to_string(),
    }
}

/// A member's text as forwarded to the owners.
pub fn forward_text(label: &str, reference: &str, text: &str) -> String {
    format!("{label} #{reference}: {text}")
}

/// The dry-run summary and the code an owner must send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastPreview<'a> {
    pub segment: &'a str,
    pub recipients: usize,
    pub opted_out: usize,
    pub not_confirmed: usize,
    pub sms: usize,
    pub code: &'a str,
}

/// The answer to `BROADCAST`: the counts, and the code (upper case: easier to read on a phone).
pub fn preview_text(p: &BroadcastPreview<'_>) -> String {
    let minutes = CONFIRM_TTL_MS / 60_000;
    format!(
        "Broadcast to {}: {} recipients ({} opted out, {} unconfirmed excluded), {} SMS. Reply YES {} within {minutes} min to send.",
        p.segment,
        p.recipients,
        p.opted_out,
        p.not_confirmed,
        p.sms,
        p.code.to_uppercase()
    )
}

/// Why a `YES <code>` did not send anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmRefusal {
    /// No broadcast waits for this owner.
    NothingPending,
    /// The code does not match: the pending broadcast is cancelled.
    WrongCode,
    /// The code came too late: the pending broadcast is cancelled.
    Expired,
}

impl ConfirmRefusal {
    pub fn word(self) -> &'static str {
        match self {
            ConfirmRefusal::NothingPending => "nothing_pending",
            ConfirmRefusal::WrongCode => "wrong_code",
            ConfirmRefusal::Expired => "expired",
        }
    }
}

/// The answer to a refused `YES`.
pub fn confirm_refusal_text(r: ConfirmRefusal) -> String {
    match r {
        ConfirmRefusal::NothingPending => "Not sent: no broadcast is waiting for a code.".into(),
        ConfirmRefusal::WrongCode => {
            "Not sent: wrong code. The broadcast is cancelled; send BROADCAST again.".into()
        }
        ConfirmRefusal::Expired => "Not sent: the code has expired. Send BROADCAST again.".into(),
    }
}

/// Whether a pending confirmation made at `expires_at` is still valid at `now`.
pub fn confirmation_valid(expires_at: i64, now: i64) -> bool {
    now < expires_at
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "+14155550101";

    #[test]
    fn tokens_are_crockford_base32_and_parse_back_forgivingly() {
        let t = token_from_bytes(&[0, 31, 32, 255, 17]);
        assert_eq!(t, "0z0zh", "32 wraps to the first symbol");
        assert_eq!(normalise_token("0ZZZH", 5).as_deref(), Some("0zzzh"));
        assert_eq!(normalise_token("OzzzH", 5).as_deref(), Some("0zzzh"));
        assert_eq!(normalise_token("iLzzh", 5).as_deref(), Some("11zzh"));
        assert_eq!(normalise_token("0zzz", 5), None);
        assert_eq!(
            normalise_token("0zzzu", 5),
            None,
            "u is not in the alphabet"
        );
        assert_eq!(normalise_token("0zzé1", 5), None);
    }

    #[test]
    fn replies_by_ref_and_by_number() {
        assert_eq!(
            parse("#K7Q2M  see you at 6", None),
            Ok(OwnerCommand::Reply {
                to: Target::Ref("k7q2m".into()),
                text: "see you at 6".into()
            })
        );
        assert_eq!(
            parse(&format!("@{N} hi there"), None),
            Ok(OwnerCommand::Reply {
                to: Target::Number(N.into()),
                text: "hi there".into()
            })
        );
        assert_eq!(parse("#k7q2m", None), Err(OwnerRefusal::NoText));
        assert_eq!(parse("#k7 hi", None), Err(OwnerRefusal::BadRef));
        assert!(matches!(
            parse("@12 hi", None),
            Err(OwnerRefusal::BadNumber(_))
        ));
    }

    #[test]
    fn broadcast_splits_at_the_first_colon_before_a_space() {
        assert_eq!(
            parse("broadcast city=Austin: Rally at 6: bring a friend", None),
            Ok(OwnerCommand::Broadcast {
                segment: Some("city=Austin".into()),
                text: "Rally at 6: bring a friend".into()
            })
        );
        assert_eq!(
            parse("BROADCAST joined>=2026-01-01T00:00:00Z: hi", None),
            Ok(OwnerCommand::Broadcast {
                segment: Some("joined>=2026-01-01T00:00:00Z".into()),
                text: "hi".into()
            })
        );
        for t in [
            "BROADCAST all: hi",
            "BROADCAST: hi",
            "BROADCAST *: hi",
            "BROADCAST : hi",
        ] {
            assert_eq!(
                parse(t, None),
                Ok(OwnerCommand::Broadcast {
                    segment: None,
                    text: "hi".into()
                }),
                "{t}"
            );
        }
        assert_eq!(parse("BROADCAST hi", None), Err(OwnerRefusal::NoColon));
        assert_eq!(parse("BROADCAST all:", None), Err(OwnerRefusal::NoText));
    }

    #[test]
    fn yes_takes_a_code_and_anything_else_is_unknown() {
        assert_eq!(
            parse("yes 7kq2mz", None),
            Ok(OwnerCommand::Confirm {
                code: "7kq2mz".into()
            })
        );
        assert_eq!(
            parse("YES abc", None),
            Ok(OwnerCommand::Confirm { code: "abc".into() })
        );
        assert_eq!(parse("YES", None), Err(OwnerRefusal::NoCode));
        for t in ["STOP", "HELP", "JOIN", "hello", "", "   "] {
            assert_eq!(parse(t, None), Err(OwnerRefusal::Unknown), "{t:?}");
        }
    }

    #[test]
    fn the_pin_prefixes_every_command() {
        let pin = Some("1234");
        assert_eq!(
            parse("1234 #k7q2m hi", pin),
            Ok(OwnerCommand::Reply {
                to: Target::Ref("k7q2m".into()),
                text: "hi".into()
            })
        );
        assert_eq!(parse("#k7q2m hi", pin), Err(OwnerRefusal::Pin));
        assert_eq!(parse("12345 #k7q2m hi", pin), Err(OwnerRefusal::Pin));
        assert_eq!(parse("1234#k7q2m hi", pin), Err(OwnerRefusal::Pin));
        assert_eq!(parse("", pin), Err(OwnerRefusal::Pin));
        assert_eq!(
            parse("1234 YES 7KQ2MZ", pin),
            Ok(OwnerCommand::Confirm {
                code: "7kq2mz".into()
            })
        );
    }

    #[test]
    fn owner_settings_match_exact_numbers() {
        let s = OwnerSettings {
            numbers: vec![N.into()],
            forward: true,
            pin: None,
            refusals_per_hour: DEFAULT_REFUSALS_PER_HOUR,
        };
        assert!(s.is_owner(N));
        assert!(!s.is_owner("+14155550102"));
        assert!(s.forwards());
        assert!(!OwnerSettings::default().forwards());
    }

    #[test]
    fn texts_read_well() {
        assert_eq!(
            forward_text(&member_label(Some("Ann"), N), "k7q2m", "hi"),
            format!("Ann ({N}) #k7q2m: hi")
        );
        assert_eq!(member_label(Some("  "), N), N);
        let p = preview_text(&BroadcastPreview {
            segment: "*",
            recipients: 2,
            opted_out: 1,
            not_confirmed: 0,
            sms: 2,
            code: "7kq2mz",
        });
        assert!(
            p.contains("2 recipients") && p.contains("YES 7KQ2MZ within 10 min"),
            "{p}"
        );
        assert!(confirmation_valid(10, 9) && !confirmation_valid(10, 10));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in proptest::prelude::any::<String>(), pin in proptest::option::of("[0-9]{4,8}")) {
            let _ = parse(&text, pin.as_deref());
            let _ = normalise_token(&text, REF_LEN);
        }

        #[test]
        fn a_token_parses_back_to_itself(bytes in proptest::collection::vec(proptest::num::u8::ANY, 1..12)) {
            let t = token_from_bytes(&bytes);
            proptest::prop_assert_eq!(normalise_token(&t.to_uppercase(), bytes.len()), Some(t));
        }
    }

    #[test]
    fn refusals_are_answered_at_most_per_hour_per_owner() {
        use RefusalAnswer::*;
        let mut b = RefusalBudget::new(3);
        let h = 3600 * 1000;
        let got: Vec<_> = (0..5).map(|i| b.take("+1", 1_000 + i)).collect();
        assert_eq!(got, [Answer, Answer, AnswerLast, Silent, Silent]);
        // Another owner has a budget of their own.
        assert_eq!(b.take("+2", 1_010), Answer);
        // Silent refusals are not counted: an hour after the first answer, one is free again.
        assert_eq!(b.take("+1", 1_000 + h - 1), Silent);
        assert_eq!(b.take("+1", 1_000 + h), AnswerLast);
        assert_eq!(b.take("+1", 1_002 + h), Answer);
        assert_eq!(b.take("+1", 1_002 + h), AnswerLast);
        assert_eq!(b.take("+1", 1_002 + h), Silent);
        assert_eq!(RefusalBudget::new(0).take("+1", 5), Silent);
        assert_eq!(RefusalBudget::new(1).take("+1", 5), AnswerLast);
    }
}
