//! Keyword matching and the opt-out intent heuristic.
//!
//! A keyword matches when the WHOLE message, normalised, equals one configured entry, normalised
//! the same way. Normalisation ([`normalise_message`]) upper-cases, turns every character that is
//! neither a letter nor a digit into a space and collapses spaces, so `"  Stop! "`, `"stop."`,
//! `"Opt-Out"` and `"opt out"` all read as `STOP` / `OPT OUT`. Configured keywords go through the
//! same function, so a configured `OPT-OUT` matches too. Whole-message matching is what carriers
//! and the CTIA handbook expect; it is also what keeps "Stop by the office at 5" from unsubscribing
//! anyone.
//!
//! A message that is not a keyword may still mean "stop texting me". Those are never acted on
//! automatically (a false STOP silently loses a member; a missed one is a compliance problem), but
//! flagged for the owner ([`looks_like_opt_out`]). The heuristic, in order:
//! 1. an opt-out phrase anywhere, on word boundaries: "unsubscribe", "opt me out", "remove me",
//!    "take me off", "stop texting", "don't text", "leave me alone", "no more texts", … (English
//!    and Spanish built in, see [`OPT_OUT_PHRASES`]);
//! 2. a configured stop keyword followed only by "polite filler" (`STOP PLEASE`, `please stop`,
//!    `stop it`, `STOP STOP`, `stop now thanks`): every word is a stop keyword or in [`FILLER`];
//! 3. a configured stop keyword as the first word, followed by a word that makes it an order
//!    about messages (`stop sending`, `cancel my number`, `end these messages`): the second word
//!    is in [`OBJECTS`].
//!
//! Anything else is not flagged, notably a stop word used as an ordinary verb or noun: "Stop by
//! the office at 5", "I can't stop laughing", "End of the meeting?", "Cancel the picnic?". Other
//! languages come in through the configured stop keywords (rules 2 and 3). The tables in the
//! tests pin both directions.

use super::settings::Keywords;

/// What a message is, keyword-wise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeywordClass {
    Stop,
    Start,
    Help,
    Join,
}

/// Upper-case, every non-alphanumeric character → space, spaces collapsed, trimmed.
pub fn normalise_message(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    mapped
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// The keyword class of a whole message, if it is a keyword. Stop wins over the other lists
/// (config validation already rejects a word in two lists; the order is a second guard, because
/// misreading a STOP is the one mistake that must not happen). Returns the matched normalised
/// keyword too, for the consent log.
pub fn classify(text: &str, keywords: &Keywords) -> Option<(KeywordClass, String)> {
    let msg = normalise_message(text);
    if msg.is_empty() {
        return None;
    }
    let lists = [
        (KeywordClass::Stop, &keywords.stop),
        (KeywordClass::Start, &keywords.start),
        (KeywordClass::Help, &keywords.help),
        (KeywordClass::Join, &keywords.join),
    ];
    lists.into_iter().find_map(|(class, list)| {
        list.iter()
            .any(|k| normalise_message(k) == msg)
            .then(|| (class, msg.clone()))
    })
}

/// Opt-out phrases (lower case, apostrophes removed, accents folded), matched on word boundaries.
pub const OPT_OUT_PHRASES: &[&str] = &[
    // English
    "unsubscribe",
    "unsub",
    "optout",
    "opt out",
    "opt me out",
    "remove me",
    "remove my number",
    "delete me",
    "delete my number",
    "take me off",
    "take my number off",
    "leave me alone",
    "lose my number",
    "stop texting",
    "stop messaging",
    "stop sending",
    "stop contacting",
    "stop spamming",
    "stop the texts",
    "stop the messages",
    "stop these",
    "stop this",
    "dont text",
    "dont message",
    "dont contact",
    "do not text",
    "do not message",
    "do not contact",
    "no more texts",
    "no more messages",
    "no more text",
    "not interested",
    "cancel my subscription",
    "cancel me",
    "quit texting",
    "quit messaging",
    // Spanish
    "darme de baja",
    "dame de baja",
    "no me escribas",
    "no me envies",
    "no mas mensajes",
    "dejen de enviar",
    "deja de enviar",
    "dejen de escribir",
    "deja de escribir",
    "no quiero mensajes",
    "no quiero recibir",
];

/// Words that may surround a stop keyword without changing its meaning (rule 2).
pub const FILLER: &[&str] = &[
    "please", "pls", "plz", "now", "thanks", "thank", "you", "thx", "ty", "it", "me", "all",
    "just", "ok", "okay", "asap", "already", "por", "favor", "gracias", "ya",
];

/// Words after a leading stop keyword that make it about the messages (rule 3).
pub const OBJECTS: &[&str] = &[
    "texting",
    "texts",
    "text",
    "txt",
    "txts",
    "msgs",
    "msg",
    "message",
    "messages",
    "sms",
    "sending",
    "send",
    "this",
    "these",
    "that",
    "my",
    "subscription",
    "contacting",
    "spam",
    "spamming",
    "mensajes",
];

/// Lower case, apostrophes dropped (`don't` → `dont`), common Latin accents folded, every other
/// non-alphanumeric character → space, collapsed; padded with one space each side so phrase
/// matching is a substring test on word boundaries.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let mut last_space = true;
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            '\'' | '’' | '‘' | '`' => continue,
            'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    if !last_space {
        out.push(' ');
    }
    out
}

/// Whether a non-keyword message reads like a request to stop messages (see the module doc for
/// the rules). Call it only on messages [`classify`] did not match.
pub fn looks_like_opt_out(text: &str, keywords: &Keywords) -> bool {
    let folded = fold(text);
    if OPT_OUT_PHRASES
        .iter()
        .any(|p| folded.contains(&format!(" {p} ")))
    {
        return true;
    }
    let stop_words: Vec<String> = keywords
        .stop
        .iter()
        .map(|k| fold(k).trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    let words: Vec<&str> = folded.split_whitespace().collect();
    // Rule 2: only stop keywords and filler (multi-word keywords matched as phrases first).
    let mut rest = folded.clone();
    let mut saw_keyword = false;
    for k in &stop_words {
        let pattern = format!(" {k} ");
        while rest.contains(&pattern) {
            rest = rest.replacen(&pattern, " ", 1);
            saw_keyword = true;
        }
    }
    if saw_keyword && rest.split_whitespace().all(|w| FILLER.contains(&w)) {
        return true;
    }
    // Rule 3: leading stop keyword + object word.
    if let [first, second, ..] = words.as_slice()
        && stop_words.iter().any(|k| k == first)
        && OBJECTS.contains(second)
    {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw() -> Keywords {
        Keywords::default()
    }

    #[test]
    fn keyword_normalisation() {
        let cases = [
            ("  Stop! ", Some(KeywordClass::Stop)),
            ("stop.", Some(KeywordClass::Stop)),
            ("STOP", Some(KeywordClass::Stop)),
            ("Opt-Out", Some(KeywordClass::Stop)),
            ("opt out", Some(KeywordClass::Stop)),
            ("OPT   OUT!!", Some(KeywordClass::Stop)),
            ("stopall", Some(KeywordClass::Stop)),
            ("Unsubscribe", Some(KeywordClass::Stop)),
            ("end", Some(KeywordClass::Stop)),
            ("revoke", Some(KeywordClass::Stop)),
            ("\"quit\"", Some(KeywordClass::Stop)),
            ("STOP 🛑", Some(KeywordClass::Stop)),
            ("yes", Some(KeywordClass::Start)),
            ("Start", Some(KeywordClass::Start)),
            ("unstop", Some(KeywordClass::Start)),
            ("help?", Some(KeywordClass::Help)),
            ("Info", Some(KeywordClass::Help)),
            ("join", Some(KeywordClass::Join)),
            ("stop by the office at 5", None),
            ("please stop", None),
            ("stopp", None),
            ("", None),
            ("!!!", None),
            ("s t o p", None),
        ];
        for (text, want) in cases {
            assert_eq!(classify(text, &kw()).map(|(c, _)| c), want, "{text:?}");
        }
        assert_eq!(
            classify(" Opt-Out ", &kw()).map(|(_, k)| k),
            Some("OPT OUT".to_string())
        );
    }

    #[test]
    fn configured_synonyms_and_languages() {
        let mut k = kw();
        k.stop.push("ALTO".into());
        k.stop.push("ARRÊT".into());
        k.start.push("COMENZAR".into());
        assert_eq!(
            classify("alto", &k).map(|(c, _)| c),
            Some(KeywordClass::Stop)
        );
        assert_eq!(
            classify("Arrêt.", &k).map(|(c, _)| c),
            Some(KeywordClass::Stop)
        );
        assert_eq!(
            classify("comenzar", &k).map(|(c, _)| c),
            Some(KeywordClass::Start)
        );
        assert!(looks_like_opt_out("alto por favor", &k));
        assert!(!looks_like_opt_out("alto por favor", &kw()));
    }

    /// Opt-out intent: (text, flagged?). Positives and negatives both pinned.
    #[test]
    fn opt_out_intent_table() {
        let table: &[(&str, bool)] = &[
            // positives
            ("please stop texting me", true),
            ("unsubscribe me", true),
            ("remove me from this list", true),
            ("don't text me", true),
            ("Don’t text me anymore", true),
            ("leave me alone", true),
            ("STOP PLEASE", true),
            ("Stop!!! Stop!!!", true),
            ("stop it", true),
            ("stop now thanks", true),
            ("pls stop", true),
            ("Stop sending me these", true),
            ("stop texting", true),
            ("STOP TEXTING ME", true),
            ("cancel my subscription", true),
            ("end these messages", true),
            ("quit texting me", true),
            ("take me off your list", true),
            ("I'm not interested", true),
            ("how do I opt out?", true),
            ("do not contact me again", true),
            ("no more texts please", true),
            ("wrong number, lose my number", true),
            ("No me envíes más mensajes", true),
            ("quiero darme de baja", true),
            // negatives
            ("Stop by the office at 5", false),
            ("stop by anytime", false),
            ("I can't stop laughing", false),
            ("End of the meeting?", false),
            ("when does it end", false),
            ("Cancel the picnic?", false),
            ("The bus stop on Main St", false),
            ("Thanks, see you Saturday", false),
            ("Don't stop believing", false),
            ("quitting time!", false),
            ("Can I bring a friend?", false),
            ("unstoppable", false),
            ("Stopped by earlier", false),
            ("please remember to RSVP", false),
            ("", false),
        ];
        let mut wrong = Vec::new();
        for (text, want) in table {
            if looks_like_opt_out(text, &kw()) != *want {
                wrong.push(*text);
            }
        }
        assert!(wrong.is_empty(), "misclassified: {wrong:?}");
    }
}
