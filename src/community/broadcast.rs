//! Broadcast preparation, pure: the text each member gets and a preview of what the broadcast
//! costs in SMS before anything is queued.
//!
//! A broadcast template may use `{name}`, `{first_name}`, `{city}`, `{org}` and `{contact}`
//! (checked up front, so a typo fails the `broadcast` request instead of reaching members). A
//! member without a name gets the fallback word, "friend" unless configured otherwise per
//! broadcast: "Hi {first_name}, …" reads "Hi friend, …". Removing the placeholder instead was
//! rejected: it leaves "Hi , …" or needs grammar the gateway cannot know.
//!
//! The preview counts with `pdu::plan`, the same segmentation the modem layer sends with, so
//! "n SMS" is what the SIMs will actually send (GSM-7 160/153, UCS-2 70/67 per part). Only
//! recipients [`may_send`] allows a bulk message are counted; the others are reported as
//! skipped. [`PreviewTally`] is the same count fed one recipient at a time, for callers that
//! stream a large segment instead of holding it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::settings::CommunityConfig;
use crate::pdu::{Alphabet, plan};

use super::CommunityError;
use super::decide::{MessageKind, Standing, may_send};
use super::member::MemberView;
use super::templates::{BROADCAST_PLACEHOLDERS, Vars, check, render};

/// Per-broadcast options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastOptions {
    /// Stands in for `{name}`/`{first_name}` when a member has no name.
    pub name_fallback: String,
}

impl Default for BroadcastOptions {
    fn default() -> Self {
        BroadcastOptions {
            name_fallback: "friend".to_string(),
        }
    }
}

/// Checks a broadcast template (built-in placeholders only).
pub fn check_template(template: &str) -> Result<(), CommunityError> {
    check_template_with(template, &[])
}

/// Checks a broadcast template that may also use the custom fields `fields` (`{shirt_size}`).
pub fn check_template_with(template: &str, fields: &[&str]) -> Result<(), CommunityError> {
    if template.trim().is_empty() {
        return Err(CommunityError::Template {
            reason: "the message is empty".into(),
        });
    }
    let mut allowed: Vec<&str> = BROADCAST_PLACEHOLDERS.to_vec();
    allowed.extend_from_slice(fields);
    check(template, &allowed)
}

/// The text `member` receives. A configured custom field the member has not answered renders
/// empty (there is no sensible stand-in for an unknown answer, unlike "friend" for a name).
pub fn render_for(
    template: &str,
    member: &MemberView,
    cfg: &CommunityConfig,
    opts: &BroadcastOptions,
) -> String {
    let custom = cfg.custom_fields();
    let filled: BTreeMap<String, String>;
    let fields = if custom.iter().all(|f| member.fields.contains_key(*f)) {
        &member.fields
    } else {
        let mut all = member.fields.clone();
        for f in custom {
            all.entry(f.to_string()).or_default();
        }
        filled = all;
        &filled
    };
    render(
        template,
        &Vars {
            org: &cfg.org_name,
            contact: cfg.contact.as_deref(),
            name: member.name.as_deref(),
            city: member.city.as_deref(),
            name_fallback: &opts.name_fallback,
            fields: Some(fields),
        },
    )
}

/// What a broadcast will cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// Members who will get it.
    pub recipients: usize,
    /// Members in the list a bulk message may not go to (not active).
    pub skipped: usize,
    /// SMS parts over all recipients.
    pub total_sms: usize,
    /// Recipients whose text is GSM-7 / UCS-2 (a name with an emoji turns one copy into UCS-2).
    pub gsm7: usize,
    pub ucs2: usize,
    /// Fewest and most parts of one copy (0 when there are no recipients).
    pub min_parts: usize,
    pub max_parts: usize,
    /// The first recipient's text, or the template rendered with the fallback name.
    pub example: String,
}

/// A [`Preview`] built one recipient at a time, so a caller streaming a 100,000-member segment
/// never holds the members or their texts: [`PreviewTally::recipient`] for each text sent,
/// [`PreviewTally::skip`] for each member left out, then [`PreviewTally::finish`].
#[derive(Debug, Clone, Default)]
pub struct PreviewTally {
    p: Option<Preview>,
    skipped: usize,
}

impl PreviewTally {
    /// Counts one recipient's text (its parts and alphabet with `pdu::plan`); the first text is
    /// the example. Returns the text's part count (stored on its outbox row by the caller).
    pub fn recipient(&mut self, text: &str) -> usize {
        let plan = plan(text);
        let parts = plan.parts.len();
        let ucs2 = matches!(plan.alphabet, Alphabet::Ucs2);
        let p = self.p.get_or_insert_with(|| Preview {
            recipients: 0,
            skipped: 0,
            total_sms: 0,
            gsm7: 0,
            ucs2: 0,
            min_parts: parts,
            max_parts: parts,
            example: text.to_string(),
        });
        if ucs2 {
            p.ucs2 += 1;
        } else {
            p.gsm7 += 1;
        }
        p.min_parts = p.min_parts.min(parts);
        p.max_parts = p.max_parts.max(parts);
        p.recipients += 1;
        p.total_sms += parts;
        parts
    }

    /// Counts one member who does not get the broadcast.
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// Recipients counted so far.
    pub fn recipients(&self) -> usize {
        self.p.as_ref().map_or(0, |p| p.recipients)
    }

    /// The preview; with no recipient the example is the template with the fallback name.
    pub fn finish(self, template: &str, cfg: &CommunityConfig, opts: &BroadcastOptions) -> Preview {
        let mut p = self.p.unwrap_or_else(|| {
            let anon = MemberView::new("", super::MemberStatus::Active, 0);
            Preview {
                recipients: 0,
                skipped: 0,
                total_sms: 0,
                gsm7: 0,
                ucs2: 0,
                min_parts: 0,
                max_parts: 0,
                example: render_for(template, &anon, cfg, opts),
            }
        });
        p.skipped = self.skipped;
        p
    }
}

/// Previews a broadcast of `template` to `members` (usually a segment's members).
pub fn preview(
    template: &str,
    members: &[MemberView],
    cfg: &CommunityConfig,
    opts: &BroadcastOptions,
) -> Result<Preview, CommunityError> {
    check_template(template)?;
    let mut tally = PreviewTally::default();
    for m in members {
        if may_send(Standing::of(Some(m), false), MessageKind::Bulk) {
            tally.recipient(&render_for(template, m, cfg, opts));
        } else {
            tally.skip();
        }
    }
    Ok(tally.finish(template, cfg, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::community::MemberStatus;

    fn member(name: Option<&str>, status: MemberStatus) -> MemberView {
        MemberView {
            name: name.map(str::to_string),
            ..MemberView::new("+13125550101", status, 0)
        }
    }

    #[test]
    fn fallback_name() {
        let cfg = CommunityConfig::default();
        let o = BroadcastOptions::default();
        assert_eq!(
            render_for(
                "Hi {first_name}, meeting at 5",
                &member(Some("Ana Lopez"), MemberStatus::Active),
                &cfg,
                &o
            ),
            "Hi Ana, meeting at 5"
        );
        assert_eq!(
            render_for(
                "Hi {first_name}, meeting at 5",
                &member(None, MemberStatus::Active),
                &cfg,
                &o
            ),
            "Hi friend, meeting at 5"
        );
    }

    #[test]
    fn preview_counts_parts_and_encodings() {
        let cfg = CommunityConfig::default();
        let o = BroadcastOptions::default();
        let members = vec![
            member(Some("Ana"), MemberStatus::Active),
            member(Some("Zoë 😀"), MemberStatus::Active),
            member(None, MemberStatus::OptedOut),
            member(None, MemberStatus::PendingConfirmation),
        ];
        // 150 GSM-7 characters + name: "Ana" → 1 part (≤160); the emoji makes UCS-2 → 3 parts.
        let template = format!("Hi {{name}} {}", "x".repeat(150));
        let p = preview(&template, &members, &cfg, &o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.recipients, 2);
        assert_eq!(p.skipped, 2);
        assert_eq!((p.gsm7, p.ucs2), (1, 1));
        assert_eq!((p.min_parts, p.max_parts), (1, 3));
        assert_eq!(p.total_sms, 4);
        assert!(p.example.starts_with("Hi Ana x"));
        assert!(preview("Hi {nmae}", &members, &cfg, &o).is_err());
        assert!(preview("  ", &members, &cfg, &o).is_err());
    }
}
