//! Table-driven specification of `community::decide` and `may_send`: every rule of
//! docs/community.md, each with the standing it applies to.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsmgate::community::{
    Action, ConsentEvent, Decision, Flag, Inbound, MemberField, MemberStatus, MemberView,
    MessageKind, Rule, Standing, decide, may_send,
};
use gsmgate::config::{CardMode, CommunityConfig, ContactCard, OnboardingQuestion};

const NUMBER: &str = "+13125550123";
const NOW: i64 = 1_767_225_600;

#[derive(Clone, Copy, Debug)]
enum Who {
    Stranger,
    Suppressed,
    Pending,
    Active,
    OptedOut,
    Onboarding(&'static str),
}

fn member(who: Who) -> (Option<MemberView>, bool) {
    let m = |status| Some(MemberView::new(NUMBER, status, NOW - 100));
    match who {
        Who::Stranger => (None, false),
        Who::Suppressed => (None, true),
        Who::Pending => (m(MemberStatus::PendingConfirmation), false),
        Who::Active => (m(MemberStatus::Active), false),
        Who::OptedOut => (m(MemberStatus::OptedOut), true),
        Who::Onboarding(step) => {
            let mut v = m(MemberStatus::Active);
            if let Some(v) = v.as_mut() {
                v.onboarding_step = Some(step.to_string());
            }
            (v, false)
        }
    }
}

fn run(text: &str, who: Who, cfg: &CommunityConfig) -> Decision {
    let (m, suppressed) = member(who);
    let msg = Inbound {
        from: NUMBER.into(),
        text: text.into(),
        at: NOW,
    };
    decide(&msg, m.as_ref(), suppressed, cfg, NOW)
}

fn kinds(d: &Decision) -> Vec<MessageKind> {
    d.replies().map(|(_, k)| k).collect()
}

/// What a decision sends, as the decision table spells it: the STOP confirmation (its own action,
/// enqueued as a compliance text) apart from the ordinary replies and their kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    OptOutConfirmation,
    HelpAfterOptOut,
    Kind(MessageKind),
}

fn sent(d: &Decision) -> Vec<Sent> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::ConfirmOptOut { .. } => Some(Sent::OptOutConfirmation),
            Action::HelpAfterOptOut { .. } => Some(Sent::HelpAfterOptOut),
            Action::Reply { kind, .. } => Some(Sent::Kind(*kind)),
            Action::SendVcard { .. } => Some(Sent::Kind(MessageKind::Reply)),
            _ => None,
        })
        .collect()
}

fn texts(d: &Decision) -> Vec<String> {
    d.replies().map(|(t, _)| t.to_string()).collect()
}

fn consent(d: &Decision) -> Vec<ConsentEvent> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Consent { event, .. } => Some(*event),
            _ => None,
        })
        .collect()
}

fn created(d: &Decision) -> Option<MemberStatus> {
    d.actions.iter().find_map(|a| match a {
        Action::CreateMember(spec) => Some(spec.status),
        _ => None,
    })
}

fn onboarding_cfg() -> CommunityConfig {
    CommunityConfig {
        onboarding: vec![
            OnboardingQuestion {
                field: "name".into(),
                question: "What's your first name?".into(),
            },
            OnboardingQuestion {
                field: "city".into(),
                question: "And your city?".into(),
            },
        ],
        ..CommunityConfig::default()
    }
}

/// The main table: (text, who, rule, consent events, created status, reply kinds, inbox flag).
#[test]
fn decision_table() {
    const C: Sent = Sent::Kind(MessageKind::Compliance);
    const X: Sent = Sent::OptOutConfirmation;
    const H: Sent = Sent::HelpAfterOptOut;
    let cfg = CommunityConfig::default();
    type Row = (
        &'static str,
        Who,
        Rule,
        &'static [ConsentEvent],
        Option<MemberStatus>,
        &'static [Sent],
        Option<Option<Flag>>,
    );
    let table: &[Row] = &[
        // STOP family
        (
            "STOP",
            Who::Active,
            Rule::OptOut,
            &[ConsentEvent::OptedOut],
            None,
            &[X],
            None,
        ),
        (
            " stop! ",
            Who::Pending,
            Rule::OptOut,
            &[ConsentEvent::OptedOut],
            None,
            &[X],
            None,
        ),
        (
            "Opt-Out",
            Who::Stranger,
            Rule::OptOut,
            &[ConsentEvent::OptedOut],
            None,
            &[X],
            None,
        ),
        (
            "STOP",
            Who::OptedOut,
            Rule::AlreadyOptedOut,
            &[],
            None,
            &[],
            None,
        ),
        (
            "cancel",
            Who::Suppressed,
            Rule::AlreadyOptedOut,
            &[],
            None,
            &[],
            None,
        ),
        (
            "quit",
            Who::Onboarding("name"),
            Rule::OptOut,
            &[ConsentEvent::OptedOut],
            None,
            &[X],
            None,
        ),
        // HELP
        ("HELP", Who::Active, Rule::Help, &[], None, &[C], None),
        ("info", Who::Stranger, Rule::Help, &[], None, &[C], None),
        ("help", Who::Pending, Rule::Help, &[], None, &[C], None),
        (
            "HELP",
            Who::OptedOut,
            Rule::HelpWhileOptedOut,
            &[],
            None,
            &[H],
            None,
        ),
        (
            "HELP",
            Who::Suppressed,
            Rule::HelpWhileOptedOut,
            &[],
            None,
            &[H],
            None,
        ),
        // START family
        (
            "START",
            Who::OptedOut,
            Rule::OptIn,
            &[ConsentEvent::OptedIn],
            None,
            &[C],
            None,
        ),
        (
            "unstop",
            Who::Suppressed,
            Rule::OptIn,
            &[ConsentEvent::OptedIn],
            Some(MemberStatus::Active),
            &[C, C],
            None,
        ),
        (
            "YES",
            Who::Pending,
            Rule::Confirm,
            &[ConsentEvent::Confirmed],
            None,
            &[C, C],
            None,
        ),
        (
            "yes",
            Who::Active,
            Rule::AlreadySubscribed,
            &[],
            None,
            &[],
            Some(None),
        ),
        (
            "START",
            Who::Stranger,
            Rule::Join,
            &[],
            Some(MemberStatus::Active),
            &[C, C],
            None,
        ),
        // JOIN
        (
            "join",
            Who::Stranger,
            Rule::Join,
            &[],
            Some(MemberStatus::Active),
            &[C, C],
            None,
        ),
        (
            "JOIN",
            Who::OptedOut,
            Rule::JoinWhileOptedOut,
            &[],
            None,
            &[],
            Some(Some(Flag::FromOptedOut)),
        ),
        (
            "JOIN",
            Who::Suppressed,
            Rule::JoinWhileOptedOut,
            &[],
            None,
            &[],
            Some(Some(Flag::FromOptedOut)),
        ),
        (
            "JOIN",
            Who::Active,
            Rule::AlreadySubscribed,
            &[],
            None,
            &[],
            Some(None),
        ),
        // free text
        (
            "Hi, it's Maria",
            Who::Stranger,
            Rule::Join,
            &[],
            Some(MemberStatus::Active),
            &[C, C],
            Some(None),
        ),
        (
            "Hi, it's Maria",
            Who::Suppressed,
            Rule::TextWhileOptedOut,
            &[],
            None,
            &[],
            Some(Some(Flag::FromOptedOut)),
        ),
        (
            "see you there",
            Who::OptedOut,
            Rule::TextWhileOptedOut,
            &[],
            None,
            &[],
            Some(Some(Flag::FromOptedOut)),
        ),
        (
            "see you there",
            Who::Active,
            Rule::Conversation,
            &[],
            None,
            &[],
            Some(None),
        ),
        (
            "see you there",
            Who::Pending,
            Rule::PendingText,
            &[],
            None,
            &[],
            Some(None),
        ),
        (
            "please stop texting me",
            Who::Active,
            Rule::PossibleOptOut,
            &[],
            None,
            &[],
            Some(Some(Flag::PossibleOptOut)),
        ),
        (
            "please stop texting me",
            Who::Stranger,
            Rule::PossibleOptOut,
            &[],
            None,
            &[],
            Some(Some(Flag::PossibleOptOut)),
        ),
        (
            "Stop by the office at 5",
            Who::Active,
            Rule::Conversation,
            &[],
            None,
            &[],
            Some(None),
        ),
        (
            "   ",
            Who::Stranger,
            Rule::Empty,
            &[],
            None,
            &[],
            Some(None),
        ),
    ];
    for (text, who, rule, events, status, reply_kinds, inbox) in table {
        let d = run(text, *who, &cfg);
        let ctx = format!("{text:?} from {who:?}: {d:?}");
        assert_eq!(d.rule, *rule, "{ctx}");
        assert_eq!(consent(&d), *events, "{ctx}");
        assert_eq!(created(&d), *status, "{ctx}");
        assert_eq!(sent(&d), *reply_kinds, "{ctx}");
        assert_eq!(
            d.opt_out_confirmations(),
            reply_kinds.iter().filter(|k| **k == X).count()
        );
        assert_eq!(d.inbox(), *inbox, "{ctx}");
        // Whatever the decision, every reply passes the dispatch guard for the standing the
        // number has after the decision; the STOP confirmation is the one text that need not,
        // and it comes only with the opt-out itself.
        let (m, suppressed) = member(*who);
        let before = Standing::of(m.as_ref(), suppressed);
        let after = match (consent(&d).last(), created(&d)) {
            (Some(ConsentEvent::OptedOut), _) => Standing::OptedOut,
            (_, Some(MemberStatus::Active))
            | (Some(ConsentEvent::OptedIn | ConsentEvent::Confirmed), _) => Standing::Active,
            (_, Some(MemberStatus::PendingConfirmation)) => Standing::Pending,
            _ => before,
        };
        for k in sent(&d) {
            match k {
                Sent::Kind(k) => assert!(may_send(after, k), "{ctx}: {k:?} blocked for {after:?}"),
                Sent::OptOutConfirmation => assert_eq!(d.rule, Rule::OptOut, "{ctx}"),
                Sent::HelpAfterOptOut => assert_eq!(d.rule, Rule::HelpWhileOptedOut, "{ctx}"),
            }
        }
    }
}

#[test]
fn join_sends_welcome_compliance_card_in_order() {
    let mut cfg = CommunityConfig {
        contact_card: Some(ContactCard {
            name: "Oak St".into(),
            numbers: vec![NUMBER.into()],
            url: None,
            photo_url: None,
            mode: CardMode::Text,
            vcf_url: None,
        }),
        ..CommunityConfig::default()
    };
    let d = run("hello", Who::Stranger, &cfg);
    assert_eq!(
        texts(&d),
        vec![
            "OK, I've got your number saved. Good to be connected. More from me soon".to_string(),
            "Msg frequency will vary. Msg&Data rates may apply. Reply HELP for help, STOP to cancel at any time.".to_string(),
            format!("Save this number as Oak St: {NUMBER}"),
        ]
    );
    assert_eq!(
        kinds(&d),
        vec![
            MessageKind::Compliance,
            MessageKind::Compliance,
            MessageKind::Reply
        ]
    );
    // The member is created first, with the zone of a Chicago area code.
    match d.actions.first() {
        Some(Action::CreateMember(spec)) => {
            assert_eq!(spec.number, NUMBER);
            assert_eq!(spec.time_zone.as_deref(), Some("America/Chicago"));
            assert_eq!(spec.joined_at, NOW);
            assert_eq!(spec.keyword, None);
        }
        other => panic!("{other:?}"),
    }
    // vCard SMS mode sends the card as its own action.
    if let Some(card) = cfg.contact_card.as_mut() {
        card.mode = CardMode::VcardSms;
    }
    let d = run("hello", Who::Stranger, &cfg);
    assert!(
        d.actions.iter().any(
            |a| matches!(a, Action::SendVcard { vcard } if vcard.starts_with("BEGIN:VCARD\r\n"))
        )
    );
}

#[test]
fn stop_replies_are_the_configured_confirmation() {
    let cfg = CommunityConfig {
        org_name: "Oak St".into(),
        ..CommunityConfig::default()
    };
    let d = run("stop", Who::Active, &cfg);
    assert_eq!(
        texts(&d),
        vec![
            "Oak St: You are unsubscribed and will get no more messages. Reply START to subscribe again."
        ]
    );
    match d.actions.first() {
        Some(Action::Consent {
            event: ConsentEvent::OptedOut,
            detail,
        }) => {
            assert_eq!(detail.as_deref(), Some("STOP"))
        }
        other => panic!("{other:?}"),
    }
    let d = run("help", Who::Stranger, &cfg);
    assert_eq!(
        texts(&d),
        vec!["Oak St: Msg frequency will vary. Msg&Data rates may apply. Reply STOP to cancel."]
    );
}

#[test]
fn double_opt_in() {
    let cfg = CommunityConfig {
        double_opt_in: true,
        ..onboarding_cfg()
    };
    let d = run("hi", Who::Stranger, &cfg);
    assert_eq!(created(&d), Some(MemberStatus::PendingConfirmation));
    assert_eq!(
        texts(&d),
        vec![cfg.double_opt_in_prompt.replace("{org}", "gsmgate")]
    );
    match d.actions.first() {
        Some(Action::CreateMember(spec)) => assert_eq!(spec.onboarding_step, None),
        other => panic!("{other:?}"),
    }
    let d = run("Yes!", Who::Pending, &cfg);
    assert_eq!(d.rule, Rule::Confirm);
    assert!(d.actions.contains(&Action::SetOnboardingStep {
        step: Some("name".into())
    }));
    let t = texts(&d);
    assert_eq!(t.first().map(String::as_str), Some(cfg.welcome.as_str()));
    assert_eq!(
        t.last().map(String::as_str),
        Some("What's your first name?")
    );
}

#[test]
fn onboarding_answers_fill_fields() {
    let cfg = onboarding_cfg();
    let d = run("hey", Who::Stranger, &cfg);
    match d.actions.first() {
        Some(Action::CreateMember(spec)) => {
            assert_eq!(spec.onboarding_step.as_deref(), Some("name"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        texts(&d).last().map(String::as_str),
        Some("What's your first name?")
    );

    let d = run("My name is Ana", Who::Onboarding("name"), &cfg);
    assert_eq!(d.rule, Rule::OnboardingAnswer);
    assert_eq!(
        d.actions,
        vec![
            Action::SetField {
                field: MemberField::Name,
                value: "Ana".into()
            },
            Action::SetOnboardingStep {
                step: Some("city".into())
            },
            Action::Reply {
                text: "And your city?".into(),
                kind: MessageKind::Reply
            },
        ]
    );
    assert_eq!(d.inbox(), None);

    let d = run("denver", Who::Onboarding("city"), &cfg);
    assert_eq!(
        d.actions,
        vec![
            Action::SetField {
                field: MemberField::City,
                value: "denver".into()
            },
            Action::SetField {
                field: MemberField::TimeZone,
                value: "America/Denver".into()
            },
            Action::SetOnboardingStep { step: None },
        ]
    );
    // Keywords still win mid-onboarding; an opt-out-looking answer is flagged, not stored.
    assert_eq!(run("HELP", Who::Onboarding("city"), &cfg).rule, Rule::Help);
    assert_eq!(
        run("stop texting me", Who::Onboarding("city"), &cfg).rule,
        Rule::PossibleOptOut
    );
    // A step no longer configured ends onboarding and keeps the text as conversation.
    let d = run("blue", Who::Onboarding("colour"), &cfg);
    assert_eq!(d.rule, Rule::Conversation);
    assert!(
        d.actions
            .contains(&Action::SetOnboardingStep { step: None })
    );
}

#[test]
fn a_custom_answer_is_a_custom_field_and_the_next_question_sees_the_answers() {
    let cfg = CommunityConfig {
        onboarding: vec![
            OnboardingQuestion {
                field: "name".into(),
                question: "Name?".into(),
            },
            OnboardingQuestion {
                field: "shirt_size".into(),
                question: "Thanks {first_name}! Size?".into(),
            },
            OnboardingQuestion {
                field: "diet".into(),
                question: "Size {shirt_size} noted{diet}. Diet?".into(),
            },
        ],
        ..CommunityConfig::default()
    };
    let d = run("Ana Lopez", Who::Onboarding("name"), &cfg);
    assert_eq!(texts(&d), vec!["Thanks Ana! Size?".to_string()]);
    let d = run(" XL ", Who::Onboarding("shirt_size"), &cfg);
    assert_eq!(
        d.actions.first(),
        Some(&Action::SetField {
            field: MemberField::Custom("shirt_size".into()),
            value: "XL".into()
        })
    );
    // The answer just given renders; an unanswered custom field is empty, never `{diet}`.
    assert_eq!(texts(&d), vec!["Size XL noted. Diet?".to_string()]);
}

#[test]
fn configured_keywords_in_other_languages() {
    let mut cfg = CommunityConfig::default();
    cfg.keywords.stop.push("PARAR".into());
    cfg.keywords.start.push("EMPEZAR".into());
    cfg.keywords.help.push("AYUDA".into());
    assert_eq!(run("parar", Who::Active, &cfg).rule, Rule::OptOut);
    assert_eq!(run("Empezar", Who::OptedOut, &cfg).rule, Rule::OptIn);
    assert_eq!(run("ayuda", Who::Stranger, &cfg).rule, Rule::Help);
    assert_eq!(
        run("parar por favor", Who::Active, &cfg).rule,
        Rule::PossibleOptOut
    );
}

#[test]
fn may_send_table() {
    use MessageKind::*;
    use Standing::*;
    let kinds = [Compliance, Reply, Direct, Bulk];
    let table: &[(Standing, [bool; 4])] = &[
        (Stranger, [true, true, true, false]),
        (Suppressed, [false, false, false, false]),
        (Pending, [true, true, true, false]),
        (Active, [true, true, true, true]),
        (OptedOut, [false, false, false, false]),
    ];
    for (standing, allowed) in table {
        for (kind, want) in kinds.iter().zip(allowed) {
            assert_eq!(may_send(*standing, *kind), *want, "{standing:?} {kind:?}");
        }
    }
    // Suppression wins over a stale member status.
    let m = MemberView::new(NUMBER, MemberStatus::Active, 0);
    assert_eq!(Standing::of(Some(&m), true), OptedOut);
    // The STOP confirmation, which no kind lets through to an opted-out number, is its own
    // action and is enqueued as a compliance text.
    let stop = run("STOP", Who::Active, &CommunityConfig::default());
    assert_eq!(stop.opt_out_confirmations(), 1);
    let stop_kinds: Vec<MessageKind> = stop.replies().map(|(_, k)| k).collect();
    assert_eq!(stop_kinds, [MessageKind::Compliance]);
    assert_eq!(Flag::PossibleOptOut.as_str(), "possible_opt_out");
}
