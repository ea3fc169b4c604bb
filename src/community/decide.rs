//! The inbound decision: what a text means and what to do about it, as a pure function
//! [`decide`] of (message, member state, config, now) returning ordered [`Action`]s, plus the
//! [`may_send`] guard dispatch applies to every outgoing message.
//!
//! Rules, first match wins (docs/community.md has the full table):
//! 1. Keywords before anything else (whole-message match, see `keywords`).
//!    - STOP from an active/pending member or a stranger: `opted_out` consent (the store puts the
//!      number on the suppression list, also without a member row) and exactly one
//!      [`Action::ConfirmOptOut`]. STOP from a number already opted out: nothing at all.
//!    - START (START, YES, UNSTOP …): opted out → `opted_in` + start confirmation; suppressed
//!      stranger → `opted_in`, member created active, start confirmation, card, onboarding;
//!      pending (double opt-in) → `confirmed` + welcome sequence; stranger → joins active (a texted
//!      START is itself the confirmation); already active → an ordinary text (YES is also how
//!      people answer a question), kept as conversation.
//!    - HELP: the help text, member or not, with no member created. Also to an opted-out number,
//!      as [`Action::HelpAfterOptOut`]: the CTIA Messaging Principles and Best Practices ask for a
//!      HELP answer whatever the subscription status, so the guarantee is "after STOP, nothing
//!      but the one confirmation, and the help text if the number texts HELP, until START"
//!      (docs/architecture.md, "Guarantees").
//!    - JOIN: a stranger joins; anyone else: kept as conversation (opted out: flagged, unanswered:
//!      re-joining takes START).
//! 2. Any text from an opted-out (or suppressed) number: inbox, flagged `from_opted_out`, no reply.
//! 3. Text that reads like an opt-out but is no keyword: inbox, flagged `possible_opt_out`, for the
//!    owner to review; nothing automatic, and a stranger sending it does not join.
//! 4. An onboarding answer from an active member: fills the field, asks the next question.
//! 5. A stranger's first text joins (the config has no "join requires a keyword" switch, so any
//!    text joins) and is also kept as conversation.
//! 6. Everything else: inbox (conversation).
//!
//! Actions are ordered: the daemon applies them in sequence (e.g. `opted_in` before creating the
//! member, so the store does not insert a suppressed number as opted out). When no
//! [`Action::Inbox`] is present the message was handled automatically and can be marked read.
//! Replies within one decision are meant to arrive in order: the welcome and the compliance line
//! are both [`MessageKind::Compliance`] (together they are the CTIA opt-in confirmation), the card
//! and onboarding questions follow as [`MessageKind::Reply`], whose priority is lower.
//!
//! Why the STOP confirmation and the HELP answer after STOP are actions of their own and not
//! kinds: to dispatch and the store they are ordinary compliance texts (same priority; the store
//! lets a compliance row written at or after the opt-out through, which is exactly these). What
//! sets them apart is a consent rule, the only texts an opted-out number may ever get, and that
//! rule lives here: [`may_send`] refuses every kind to an opted-out number,
//! [`Action::ConfirmOptOut`] is decided only for the STOP that causes the opt-out and
//! [`Action::HelpAfterOptOut`] only for a HELP from an opted-out number. So the crate keeps one kind type ([`crate::model::MessageKind`]) and
//! the exception is visible in the decision itself.

use serde::{Deserialize, Serialize};

use super::settings::CommunityConfig;

use super::keywords::{KeywordClass, classify, looks_like_opt_out};
use super::member::{ConsentEvent, E164, MemberField, MemberStatus, MemberView, normalise_number};
use super::onboarding;
use super::templates::{Vars, render};
use super::tz;
use super::vcard::{CardMessage, card_message};

/// An inbound text, whole (after reassembly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    /// The sender in E.164 (the store's key).
    pub from: String,
    pub text: String,
    /// Unix seconds, when it was received.
    pub at: i64,
}

/// Where a number stands, from its member row and the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// No member row, not suppressed.
    Stranger,
    /// No member row (or one the store has not caught up with), but on the suppression list.
    Suppressed,
    Pending,
    Active,
    OptedOut,
}

impl Standing {
    /// Suppression wins over any member status: if the two ever disagree, the number is treated
    /// as opted out, the safe side of "STOP is absolute".
    pub fn of(member: Option<&MemberView>, suppressed: bool) -> Standing {
        match (member.map(|m| m.status), suppressed) {
            (Some(MemberStatus::OptedOut), _) => Standing::OptedOut,
            (Some(_), true) => Standing::OptedOut,
            (None, true) => Standing::Suppressed,
            (None, false) => Standing::Stranger,
            (Some(MemberStatus::PendingConfirmation), false) => Standing::Pending,
            (Some(MemberStatus::Active), false) => Standing::Active,
        }
    }

    pub fn is_opted_out(self) -> bool {
        matches!(self, Standing::Suppressed | Standing::OptedOut)
    }
}

/// Why a message is sent: the crate's one kind type, re-exported here because the decisions
/// speak it.
pub use crate::model::MessageKind;

/// Whether a message of `kind` may go to a number of `standing`. Dispatch calls it right before
/// sending (the standing may have changed since the message was queued).
///
/// - Opted out / suppressed: nothing (STOP is absolute; the one confirmation of the STOP and the
///   answer to a HELP are not messages this guard lets through but the decision's own
///   [`Action::ConfirmOptOut`] and [`Action::HelpAfterOptOut`]).
/// - Bulk: only active members (a pending member has not confirmed yet).
/// - Everything else: any number that is not opted out (HELP answers go to strangers, the
///   double opt-in prompt to pending members, the leader may answer a stranger who wrote in).
pub fn may_send(standing: Standing, kind: MessageKind) -> bool {
    match kind {
        _ if standing.is_opted_out() => false,
        MessageKind::Bulk => standing == Standing::Active,
        MessageKind::Compliance | MessageKind::Reply | MessageKind::Direct => true,
    }
}

/// A reason to draw the owner's eye to an inbox message (`messages_in.flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Reads like an opt-out but is no keyword: the owner decides.
    PossibleOptOut,
    /// From a number that opted out; it cannot be answered until it texts START.
    FromOptedOut,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::PossibleOptOut => "possible_opt_out",
            Flag::FromOptedOut => "from_opted_out",
        }
    }
}

/// A member to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMemberSpec {
    pub number: String,
    pub status: MemberStatus,
    /// From the number (see `tz`); `None` = the configured default zone.
    pub time_zone: Option<String>,
    /// The first onboarding question's field, when onboarding starts now.
    pub onboarding_step: Option<String>,
    /// The keyword that made them join, for the consent log (`None`: free text).
    pub keyword: Option<String>,
    pub joined_at: i64,
}

/// One thing for the daemon to do, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// `store.add_member` (which logs `joined`).
    CreateMember(NewMemberSpec),
    /// `store.record_consent`; the member status follows from the event.
    Consent {
        event: ConsentEvent,
        /// The keyword that caused it.
        detail: Option<String>,
    },
    /// Enqueue a text to the sender.
    Reply { text: String, kind: MessageKind },
    /// Enqueue the one confirmation of a STOP to the sender, as a [`MessageKind::Compliance`]
    /// text after the `opted_out` consent: the only text an opted-out number ever gets.
    ConfirmOptOut { text: String },
    /// Enqueue the help text to a sender that opted out and texted HELP, as a
    /// [`MessageKind::Compliance`] text: carriers require HELP to be answered whatever the
    /// subscription status. Nothing else reaches an opted-out number.
    HelpAfterOptOut { text: String },
    /// Send the contact card as port-9204 vCard SMS (`vcard::vcard_submits`), kind `Reply`.
    SendVcard { vcard: String },
    /// Store an onboarding answer.
    SetField { field: MemberField, value: String },
    /// Move onboarding to the question for this field; `None` ends it.
    SetOnboardingStep { step: Option<String> },
    /// Keep the message in the inbox as conversation (unread), with a flag if any. Without this
    /// action the message was handled automatically.
    Inbox { flag: Option<Flag> },
}

/// Which rule decided (for logs, the `watch` stream and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    OptOut,
    AlreadyOptedOut,
    Help,
    HelpWhileOptedOut,
    OptIn,
    Confirm,
    AlreadySubscribed,
    Join,
    JoinWhileOptedOut,
    TextWhileOptedOut,
    PossibleOptOut,
    OnboardingAnswer,
    PendingText,
    Conversation,
    Empty,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub rule: Rule,
    pub actions: Vec<Action>,
}

impl Decision {
    fn new(rule: Rule, actions: Vec<Action>) -> Decision {
        Decision { rule, actions }
    }

    /// The texts to send, in order, with the kind each is enqueued as (the STOP confirmation is
    /// a compliance text; [`Decision::opt_out_confirmations`] tells it apart).
    pub fn replies(&self) -> impl Iterator<Item = (&str, MessageKind)> {
        self.actions.iter().filter_map(|a| match a {
            Action::Reply { text, kind } => Some((text.as_str(), *kind)),
            Action::ConfirmOptOut { text } | Action::HelpAfterOptOut { text } => {
                Some((text.as_str(), MessageKind::Compliance))
            }
            Action::SendVcard { vcard } => Some((vcard.as_str(), MessageKind::Reply)),
            _ => None,
        })
    }

    /// How many STOP confirmations the decision sends (0 or 1).
    pub fn opt_out_confirmations(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::ConfirmOptOut { .. }))
            .count()
    }

    /// The inbox flag, if the message is kept as conversation.
    pub fn inbox(&self) -> Option<Option<Flag>> {
        self.actions.iter().find_map(|a| match a {
            Action::Inbox { flag } => Some(*flag),
            _ => None,
        })
    }
}

fn vars<'a>(cfg: &'a CommunityConfig, member: Option<&'a MemberView>) -> Vars<'a> {
    Vars {
        org: &cfg.org_name,
        contact: cfg.contact.as_deref(),
        name: member.and_then(|m| m.name.as_deref()),
        city: member.and_then(|m| m.city.as_deref()),
        name_fallback: "",
        fields: None,
    }
}

/// The stop confirmation, rendered for `member`: the text of [`Action::ConfirmOptOut`], also for
/// an opt-out a person decided (`members review NUMBER --opt-out`) rather than a texted keyword.
pub fn stop_confirmation(cfg: &CommunityConfig, member: Option<&MemberView>) -> String {
    render(&cfg.stop_confirmation, &vars(cfg, member))
}

fn reply(
    cfg: &CommunityConfig,
    member: Option<&MemberView>,
    template: &str,
    kind: MessageKind,
) -> Action {
    Action::Reply {
        text: render(template, &vars(cfg, member)),
        kind,
    }
}

/// An onboarding question for `member` (as it is after the answer just given, if any): a question
/// may use the member placeholders and the configured custom fields ("Thanks {first_name}! Your
/// T-shirt size?"; `config` validates that), and an unanswered custom field renders empty.
fn question(cfg: &CommunityConfig, member: Option<&MemberView>, template: &str) -> Action {
    let mut fields = member.map(|m| m.fields.clone()).unwrap_or_default();
    for f in cfg.custom_fields() {
        fields.entry(f.to_string()).or_default();
    }
    Action::Reply {
        text: render(
            template,
            &Vars {
                fields: Some(&fields),
                ..vars(cfg, member)
            },
        ),
        kind: MessageKind::Reply,
    }
}

fn card_action(cfg: &CommunityConfig) -> Option<Action> {
    cfg.contact_card
        .as_ref()
        .map(|card| match card_message(card) {
            CardMessage::Text(text) => Action::Reply {
                text,
                kind: MessageKind::Reply,
            },
            CardMessage::Vcard(vcard) => Action::SendVcard { vcard },
        })
}

/// Welcome, compliance line, card, first onboarding question.
fn welcome_sequence(
    cfg: &CommunityConfig,
    member: Option<&MemberView>,
    opening: &str,
) -> Vec<Action> {
    let mut out = vec![
        reply(cfg, member, opening, MessageKind::Compliance),
        reply(cfg, member, &cfg.compliance, MessageKind::Compliance),
    ];
    out.extend(card_action(cfg));
    if let Some(q) = onboarding::first_question(cfg) {
        out.push(question(cfg, member, &q.question));
    }
    out
}

fn new_member(
    number: &str,
    status: MemberStatus,
    keyword: Option<String>,
    cfg: &CommunityConfig,
    now: i64,
) -> NewMemberSpec {
    let time_zone = normalise_number(number, None)
        .ok()
        .as_ref()
        .and_then(|n: &E164| tz::zone_for_number(n, None))
        .map(str::to_string);
    let onboarding_step = match status {
        MemberStatus::Active => onboarding::first_question(cfg).map(|q| q.field.clone()),
        _ => None,
    };
    NewMemberSpec {
        number: number.to_string(),
        status,
        time_zone,
        onboarding_step,
        keyword,
        joined_at: now,
    }
}

/// A stranger joins: pending with a prompt under double opt-in, else active with the welcome.
fn join(msg: &Inbound, keyword: Option<String>, cfg: &CommunityConfig, now: i64) -> Vec<Action> {
    if cfg.double_opt_in {
        vec![
            Action::CreateMember(new_member(
                &msg.from,
                MemberStatus::PendingConfirmation,
                keyword,
                cfg,
                now,
            )),
            reply(
                cfg,
                None,
                &cfg.double_opt_in_prompt,
                MessageKind::Compliance,
            ),
        ]
    } else {
        let mut out = vec![Action::CreateMember(new_member(
            &msg.from,
            MemberStatus::Active,
            keyword,
            cfg,
            now,
        ))];
        out.extend(welcome_sequence(cfg, None, &cfg.welcome));
        out
    }
}

/// Decides what an inbound text means. `member` is the sender's member row, `suppressed` whether
/// the number is on the store's suppression list (`store.opted_out`). Pure: the same inputs give
/// the same decision.
pub fn decide(
    msg: &Inbound,
    member: Option<&MemberView>,
    suppressed: bool,
    cfg: &CommunityConfig,
    now: i64,
) -> Decision {
    use Standing as S;
    let standing = Standing::of(member, suppressed);
    let inbox = |flag| Action::Inbox { flag };
    let flagged_out = || {
        Decision::new(
            Rule::TextWhileOptedOut,
            vec![inbox(Some(Flag::FromOptedOut))],
        )
    };

    if let Some((class, keyword)) = classify(&msg.text, &cfg.keywords) {
        let detail = Some(keyword.clone());
        return match (class, standing) {
            (KeywordClass::Stop, S::OptedOut | S::Suppressed) => {
                Decision::new(Rule::AlreadyOptedOut, Vec::new())
            }
            (KeywordClass::Stop, S::Stranger | S::Pending | S::Active) => Decision::new(
                Rule::OptOut,
                vec![
                    Action::Consent {
                        event: ConsentEvent::OptedOut,
                        detail,
                    },
                    Action::ConfirmOptOut {
                        text: stop_confirmation(cfg, member),
                    },
                ],
            ),
            (KeywordClass::Help, S::OptedOut | S::Suppressed) => Decision::new(
                Rule::HelpWhileOptedOut,
                vec![Action::HelpAfterOptOut {
                    text: render(&cfg.help_text, &vars(cfg, member)),
                }],
            ),
            (KeywordClass::Help, _) => Decision::new(
                Rule::Help,
                vec![reply(cfg, member, &cfg.help_text, MessageKind::Compliance)],
            ),
            (KeywordClass::Start, S::OptedOut) => Decision::new(
                Rule::OptIn,
                vec![
                    Action::Consent {
                        event: ConsentEvent::OptedIn,
                        detail,
                    },
                    reply(
                        cfg,
                        member,
                        &cfg.start_confirmation,
                        MessageKind::Compliance,
                    ),
                ],
            ),
            (KeywordClass::Start, S::Suppressed) => {
                let mut actions = vec![
                    Action::Consent {
                        event: ConsentEvent::OptedIn,
                        detail: detail.clone(),
                    },
                    Action::CreateMember(new_member(
                        &msg.from,
                        MemberStatus::Active,
                        detail,
                        cfg,
                        now,
                    )),
                ];
                actions.extend(welcome_sequence(cfg, None, &cfg.start_confirmation));
                Decision::new(Rule::OptIn, actions)
            }
            (KeywordClass::Start, S::Pending) => {
                let mut actions = vec![Action::Consent {
                    event: ConsentEvent::Confirmed,
                    detail,
                }];
                if let Some(q) = onboarding::first_question(cfg) {
                    actions.push(Action::SetOnboardingStep {
                        step: Some(q.field.clone()),
                    });
                }
                actions.extend(welcome_sequence(cfg, member, &cfg.welcome));
                Decision::new(Rule::Confirm, actions)
            }
            (KeywordClass::Start, S::Active) => {
                Decision::new(Rule::AlreadySubscribed, vec![inbox(None)])
            }
            (KeywordClass::Start, S::Stranger) => {
                // The texted START is the confirmation double opt-in would ask for.
                let mut actions = vec![Action::CreateMember(new_member(
                    &msg.from,
                    MemberStatus::Active,
                    detail,
                    cfg,
                    now,
                ))];
                actions.extend(welcome_sequence(cfg, None, &cfg.welcome));
                Decision::new(Rule::Join, actions)
            }
            (KeywordClass::Join, S::Stranger) => {
                Decision::new(Rule::Join, join(msg, detail, cfg, now))
            }
            (KeywordClass::Join, S::OptedOut | S::Suppressed) => Decision::new(
                Rule::JoinWhileOptedOut,
                vec![inbox(Some(Flag::FromOptedOut))],
            ),
            (KeywordClass::Join, S::Pending | S::Active) => {
                Decision::new(Rule::AlreadySubscribed, vec![inbox(None)])
            }
        };
    }

    if standing.is_opted_out() {
        return flagged_out();
    }
    if msg.text.trim().is_empty() {
        return Decision::new(Rule::Empty, vec![inbox(None)]);
    }
    if looks_like_opt_out(&msg.text, &cfg.keywords) {
        return Decision::new(
            Rule::PossibleOptOut,
            vec![inbox(Some(Flag::PossibleOptOut))],
        );
    }
    match (standing, member) {
        (S::Stranger, _) => {
            let mut actions = join(msg, None, cfg, now);
            actions.push(inbox(None));
            Decision::new(Rule::Join, actions)
        }
        (S::Pending, _) => Decision::new(Rule::PendingText, vec![inbox(None)]),
        (S::Active, Some(m)) => match m.onboarding_step.as_deref() {
            Some(step) if onboarding::is_step(cfg, step) => onboarding_answer(msg, m, step, cfg),
            Some(_) => Decision::new(
                Rule::Conversation,
                vec![Action::SetOnboardingStep { step: None }, inbox(None)],
            ),
            None => Decision::new(Rule::Conversation, vec![inbox(None)]),
        },
        _ => Decision::new(Rule::Conversation, vec![inbox(None)]),
    }
}

fn onboarding_answer(msg: &Inbound, m: &MemberView, step: &str, cfg: &CommunityConfig) -> Decision {
    let field = MemberField::from_field_name(step);
    let Some(value) = onboarding::clean_answer(&field, &msg.text) else {
        return Decision::new(Rule::Conversation, vec![Action::Inbox { flag: None }]);
    };
    let mut actions = Vec::new();
    let usable = field != MemberField::TimeZone || tz::is_known_zone(&value);
    if field == MemberField::City
        && let Ok(number) = normalise_number(&m.number, None)
        && let Some(zone) = tz::zone_for_number(&number, Some(&value))
        && m.time_zone.as_deref() != Some(zone)
    {
        actions.push(Action::SetField {
            field: MemberField::TimeZone,
            value: zone.to_string(),
        });
    }
    let next = onboarding::next_question(cfg, step);
    let mut answered = m.clone();
    if usable {
        match &field {
            MemberField::Name => answered.name = Some(value.clone()),
            MemberField::City => answered.city = Some(value.clone()),
            MemberField::Region => answered.region = Some(value.clone()),
            MemberField::TimeZone => answered.time_zone = Some(value.clone()),
            MemberField::Custom(name) => {
                answered.fields.insert(name.clone(), value.clone());
            }
        }
        actions.insert(0, Action::SetField { field, value });
    }
    actions.push(Action::SetOnboardingStep {
        step: next.map(|q| q.field.clone()),
    });
    if let Some(q) = next {
        actions.push(question(cfg, Some(&answered), &q.question));
    }
    Decision::new(Rule::OnboardingAnswer, actions)
}
