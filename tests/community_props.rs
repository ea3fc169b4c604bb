//! Property: over random interleavings of joins, texts, STOPs (and synonyms), STARTs, HELPs and
//! broadcasts, applied to an in-memory model of the store and dispatch that uses only
//! `decide` and `may_send`:
//! - no opted-out number ever receives a broadcast;
//! - each STOP yields at most one confirmation, and between a STOP and the next START the number
//!   receives nothing but that one confirmation (README.md, "Guarantees": STOP is absolute);
//! - every reply `decide` asks for passes `may_send` (the rules and the guard agree), except the
//!   STOP confirmation, which is the decision's own action and the one text the guard would stop.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};

use gsmgate::community::{
    Action, ConsentEvent, Decision, Inbound, MemberField, MemberStatus, MemberView, MessageKind,
    Standing, decide, may_send,
};
use gsmgate::config::{CommunityConfig, OnboardingQuestion};
use proptest::prelude::*;

const NUMBERS: [&str; 4] = [
    "+13125550101",
    "+13125550102",
    "+4930901820",
    "+14155550103",
];

#[derive(Debug, Clone)]
enum Event {
    Text(usize, String),
    Broadcast,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("JOIN".to_string()),
        Just("hi there".to_string()),
        Just("Ana".to_string()),
        Just("please stop texting me".to_string()),
        Just("Stop by at 5".to_string()),
        proptest::sample::select(vec![
            "STOP",
            " stop! ",
            "Opt-Out",
            "unsubscribe",
            "end.",
            "QUIT"
        ])
        .prop_map(str::to_string),
        proptest::sample::select(vec!["START", "yes", "Unstop"]).prop_map(str::to_string),
        proptest::sample::select(vec!["HELP", "info?"]).prop_map(str::to_string),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0..NUMBERS.len(), text()).prop_map(|(n, t)| Event::Text(n, t)),
        1 => Just(Event::Broadcast),
    ]
}

/// What reaches a number: the STOP confirmation, or a message of a kind.
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

#[derive(Default)]
struct Model {
    members: HashMap<String, MemberView>,
    suppressed: HashSet<String>,
    /// Independent truth: the number's last keyword was a stop word.
    truth_opted_out: HashMap<String, bool>,
    /// Messages received since the last STOP while opted out (truth).
    since_stop: HashMap<String, Vec<Sent>>,
}

impl Model {
    fn standing(&self, n: &str) -> Standing {
        Standing::of(self.members.get(n), self.suppressed.contains(n))
    }

    fn deliver(&mut self, n: &str, what: Sent) -> Result<(), TestCaseError> {
        if let Sent::Kind(kind) = what
            && !may_send(self.standing(n), kind)
        {
            return Ok(()); // dispatch drops it
        }
        if self.truth_opted_out.get(n).copied().unwrap_or(false) {
            prop_assert_ne!(
                what,
                Sent::Kind(MessageKind::Bulk),
                "broadcast to opted-out {}",
                n
            );
            let got = self.since_stop.entry(n.to_string()).or_default();
            got.push(what);
            // The one confirmation first, then only answers to HELP.
            prop_assert!(
                got.first() == Some(&Sent::OptOutConfirmation)
                    && got.iter().skip(1).all(|s| *s == Sent::HelpAfterOptOut),
                "{} got {:?} after STOP",
                n,
                got
            );
        }
        Ok(())
    }

    fn apply(&mut self, n: &str, actions: &[Action], now: i64) {
        for a in actions {
            match a {
                Action::CreateMember(spec) => {
                    // Like the store: a suppressed number is inserted opted out.
                    let status = if self.suppressed.contains(n) {
                        MemberStatus::OptedOut
                    } else {
                        spec.status
                    };
                    let mut m = MemberView::new(n, status, now);
                    m.onboarding_step = spec.onboarding_step.clone();
                    m.time_zone = spec.time_zone.clone();
                    self.members.insert(n.to_string(), m);
                }
                Action::Consent { event, .. } => match event {
                    ConsentEvent::OptedOut => {
                        self.suppressed.insert(n.to_string());
                        if let Some(m) = self.members.get_mut(n) {
                            m.status = MemberStatus::OptedOut;
                        }
                    }
                    ConsentEvent::OptedIn => {
                        self.suppressed.remove(n);
                        if let Some(m) = self.members.get_mut(n) {
                            m.status = MemberStatus::Active;
                        }
                    }
                    ConsentEvent::Confirmed => {
                        if let Some(m) = self.members.get_mut(n)
                            && m.status == MemberStatus::PendingConfirmation
                        {
                            m.status = MemberStatus::Active;
                        }
                    }
                    _ => {}
                },
                Action::SetField {
                    field: MemberField::Name,
                    value,
                } => {
                    if let Some(m) = self.members.get_mut(n) {
                        m.name = Some(value.clone());
                    }
                }
                Action::SetOnboardingStep { step } => {
                    if let Some(m) = self.members.get_mut(n) {
                        m.onboarding_step = step.clone();
                    }
                }
                _ => {}
            }
        }
    }
}

fn config(double_opt_in: bool, onboarding: bool) -> CommunityConfig {
    CommunityConfig {
        double_opt_in,
        onboarding: if onboarding {
            vec![OnboardingQuestion {
                field: "name".into(),
                question: "Name?".into(),
            }]
        } else {
            Vec::new()
        },
        ..CommunityConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn stop_is_absolute(events in proptest::collection::vec(event(), 1..60),
                        double_opt_in in any::<bool>(), onboarding in any::<bool>()) {
        let cfg = config(double_opt_in, onboarding);
        let mut model = Model::default();
        for (i, ev) in events.iter().enumerate() {
            let now = 1_767_225_600 + i as i64;
            match ev {
                Event::Broadcast => {
                    let numbers: Vec<String> = model.members.keys().cloned().collect();
                    for n in numbers {
                        model.deliver(&n, Sent::Kind(MessageKind::Bulk))?;
                    }
                }
                Event::Text(idx, text) => {
                    let n = NUMBERS[*idx];
                    let msg = Inbound { from: n.into(), text: text.clone(), at: now };
                    let d = decide(&msg, model.members.get(n), model.suppressed.contains(n), &cfg, now);
                    let class = gsmgate::community::classify(text, &cfg.keywords).map(|(c, _)| c);
                    let confirmations = d.opt_out_confirmations();
                    prop_assert_eq!(confirmations, sent(&d).iter().filter(|s| **s == Sent::OptOutConfirmation).count());
                    prop_assert!(confirmations <= 1);
                    let helps = sent(&d).iter().filter(|s| **s == Sent::HelpAfterOptOut).count();
                    prop_assert!(
                        helps == 0 || (helps == 1 && class == Some(gsmgate::community::KeywordClass::Help)),
                        "help after STOP only answers HELP: {:?}", d
                    );
                    match class {
                        Some(gsmgate::community::KeywordClass::Stop) => {
                            if model.truth_opted_out.get(n).copied().unwrap_or(false) {
                                // Already out: what it got since the first STOP still counts.
                                prop_assert_eq!(confirmations, 0, "second confirmation to {}", n);
                            } else {
                                prop_assert_eq!(confirmations, 1);
                                model.since_stop.insert(n.to_string(), Vec::new());
                            }
                            model.truth_opted_out.insert(n.to_string(), true);
                        }
                        Some(gsmgate::community::KeywordClass::Start) => {
                            model.truth_opted_out.insert(n.to_string(), false);
                            model.since_stop.remove(n);
                        }
                        _ => prop_assert_eq!(confirmations, 0),
                    }
                    model.apply(n, &d.actions, now);
                    for what in sent(&d) {
                        if let Sent::Kind(k) = what {
                            prop_assert!(may_send(model.standing(n), k), "{:?} blocked: {:?}", k, d);
                        }
                        model.deliver(n, what)?;
                    }
                }
            }
            // The model's standing agrees with the truth about opt-out.
            for n in NUMBERS {
                let truth = model.truth_opted_out.get(n).copied().unwrap_or(false);
                prop_assert_eq!(model.standing(n).is_opted_out(), truth, "{}", n);
            }
        }
    }
}
