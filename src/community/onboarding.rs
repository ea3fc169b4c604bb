//! Onboarding questions by SMS: after joining, each configured question is asked in turn and the
//! next text from the member is its answer.
//!
//! The member's `onboarding_step` holds the `field` of the question awaiting an answer (not an
//! index), so reordering or removing questions in the config never files an answer under the
//! wrong field: a step whose field is no longer configured simply ends onboarding. Answers are
//! cleaned (whitespace collapsed, at most [`MAX_ANSWER_CHARS`] characters) and, for the name,
//! stripped of the usual lead-ins ("My name is Ana" → "Ana"). Keywords are matched before an
//! answer is taken, so STOP/HELP always work mid-onboarding.

use super::settings::{CommunityConfig, OnboardingQuestion};

use super::member::{MemberField, clean_field};

/// Longest stored answer, in characters; longer answers are cut at a character boundary.
pub const MAX_ANSWER_CHARS: usize = 100;

/// Lead-ins removed from a name answer (compared case-insensitively, apostrophes ignored).
const NAME_LEAD_INS: &[&str] = &[
    "my name is ",
    "my names ",
    "name is ",
    "i am ",
    "im ",
    "this is ",
    "its ",
    "me llamo ",
    "soy ",
];

/// The first question, if any are configured.
pub fn first_question(cfg: &CommunityConfig) -> Option<&OnboardingQuestion> {
    cfg.onboarding.first()
}

/// The question after the one for `field`; `None` when `field` was the last or is unknown.
pub fn next_question<'c>(cfg: &'c CommunityConfig, field: &str) -> Option<&'c OnboardingQuestion> {
    let pos = cfg.onboarding.iter().position(|q| q.field == field)?;
    cfg.onboarding.get(pos + 1)
}

/// Whether `field` is a configured question.
pub fn is_step(cfg: &CommunityConfig, field: &str) -> bool {
    cfg.onboarding.iter().any(|q| q.field == field)
}

/// The cleaned answer to store for `field`; `None` when nothing usable is left.
pub fn clean_answer(field: &MemberField, text: &str) -> Option<String> {
    let mut answer = clean_field(text)?;
    if *field == MemberField::Name {
        let lowered: String = answer
            .to_lowercase()
            .chars()
            .filter(|c| !matches!(c, '\'' | '’'))
            .collect();
        for lead in NAME_LEAD_INS {
            if lowered.starts_with(lead) {
                // Count characters in the apostrophe-free form, then skip as many non-apostrophe
                // characters in the original so the name keeps its case.
                let skip = lead.chars().count();
                let mut seen = 0;
                let cut = answer
                    .char_indices()
                    .find(|(_, c)| {
                        if matches!(c, '\'' | '’') {
                            return false;
                        }
                        seen += 1;
                        seen > skip
                    })
                    .map(|(i, _)| i);
                if let Some(cut) = cut {
                    answer = answer.get(cut..).unwrap_or("").to_string();
                }
                break;
            }
        }
        answer = answer.trim_end_matches(['.', '!', ',']).trim().to_string();
    }
    let answer: String = answer.chars().take(MAX_ANSWER_CHARS).collect();
    (!answer.is_empty()).then_some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CommunityConfig {
        CommunityConfig {
            onboarding: vec![
                OnboardingQuestion {
                    field: "name".into(),
                    question: "What's your name?".into(),
                },
                OnboardingQuestion {
                    field: "zip".into(),
                    question: "What's your ZIP?".into(),
                },
            ],
            ..CommunityConfig::default()
        }
    }

    #[test]
    fn questions_follow_each_other() {
        let c = cfg();
        assert_eq!(first_question(&c).map(|q| q.field.as_str()), Some("name"));
        assert_eq!(
            next_question(&c, "name").map(|q| q.field.as_str()),
            Some("zip")
        );
        assert_eq!(next_question(&c, "zip"), None);
        assert_eq!(next_question(&c, "gone"), None);
        assert!(is_step(&c, "zip") && !is_step(&c, "city"));
    }

    #[test]
    fn answers_are_cleaned() {
        let name = MemberField::Name;
        assert_eq!(
            clean_answer(&name, "  Ana   Lopez "),
            Some("Ana Lopez".into())
        );
        assert_eq!(clean_answer(&name, "My name is Ana."), Some("Ana".into()));
        assert_eq!(clean_answer(&name, "I'm Bo!"), Some("Bo".into()));
        assert_eq!(clean_answer(&name, "it’s Cy"), Some("Cy".into()));
        assert_eq!(clean_answer(&name, "   "), None);
        assert_eq!(
            clean_answer(&MemberField::Region, " 60601 "),
            Some("60601".into())
        );
        let long = "x".repeat(300);
        assert_eq!(
            clean_answer(&MemberField::City, &long).map(|a| a.chars().count()),
            Some(MAX_ANSWER_CHARS)
        );
        // Lead-ins are only stripped from names.
        assert_eq!(
            clean_answer(&MemberField::City, "I am in Chicago"),
            Some("I am in Chicago".into())
        );
    }
}
