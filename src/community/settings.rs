//! The community layer's settings: the `[community]` table of the configuration file as the
//! layer uses it (texts, keywords, onboarding questions, the contact card).
//!
//! The layer owns these types so that its rules can be read and tested without the configuration
//! module; `config` parses and validates the file and fills them (docs/architecture.md, "Settings").
//! Values here are already validated: keywords upper-cased with inner whitespace collapsed,
//! templates checked for unknown placeholders.

use serde::{Deserialize, Serialize};

use super::member::MemberField;
use super::owners::OwnerSettings;

/// `[community]`: the texts and keywords members see.
///
/// Text templates may use `{org}` and `{contact}`; validation rejects any other placeholder.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunityConfig {
    pub org_name: String,
    /// The help contact (a website or number) quoted in the HELP reply.
    pub contact: Option<String>,
    pub welcome: String,
    pub compliance: String,
    pub help_text: String,
    pub stop_confirmation: String,
    pub start_confirmation: String,
    /// Ask new members to confirm with a start keyword before they are subscribed.
    pub double_opt_in: bool,
    pub double_opt_in_prompt: String,
    /// Questions asked one by one after joining; answers land in the member's `field`.
    pub onboarding: Vec<OnboardingQuestion>,
    pub keywords: Keywords,
    /// Sent after the welcome; `None` = no card.
    pub contact_card: Option<ContactCard>,
    /// `owners`, `forward_to_owners`, `owner_pin`: the owner on their own phone.
    pub owners: OwnerSettings,
}

impl CommunityConfig {
    /// The configured onboarding fields that have no built-in column (`shirt_size`), in order:
    /// the names segments, templates and CSV columns accept as custom fields.
    pub fn custom_fields(&self) -> Vec<&str> {
        self.onboarding
            .iter()
            .map(|q| q.field.as_str())
            .filter(|f| matches!(MemberField::from_field_name(f), MemberField::Custom(_)))
            .collect()
    }
}

/// One onboarding question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardingQuestion {
    /// Member attribute the answer is stored in (`[a-z_]`), e.g. `city`.
    pub field: String,
    pub question: String,
}

/// Keyword lists, upper-cased with inner whitespace collapsed; a message matches when its whole
/// text (trimmed, case-folded) equals one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keywords {
    pub stop: Vec<String>,
    pub start: Vec<String>,
    pub help: Vec<String>,
    pub join: Vec<String>,
}

/// The contact card sent to new members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactCard {
    pub name: String,
    pub numbers: Vec<String>,
    pub url: Option<String>,
    pub photo_url: Option<String>,
    pub mode: CardMode,
    pub vcf_url: Option<String>,
}

/// How the contact card travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardMode {
    /// A text with a link to a hosted `.vcf` (`vcf_url`); phones offer "add contact".
    Link,
    /// The vCard itself as SMS text.
    VcardSms,
    /// A plain text with the name, numbers and url.
    #[default]
    Text,
}

impl CardMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CardMode::Link => "link",
            CardMode::VcardSms => "vcard_sms",
            CardMode::Text => "text",
        }
    }
}
