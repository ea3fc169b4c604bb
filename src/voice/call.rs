//! The per-call state machine of one modem, pure: call signals and the clock in, actions out.
//!
//! It owns the decision what to do with a call (answer, reject, let it ring) from the policy and
//! the caller, the ring count, and the call's life cycle; it must not do I/O — the driver in
//! `mod.rs` performs the actions (ATA/CHUP through the modem's call queue, the audio session, the
//! store rows) and reports back. Time is injected (`now`), so every path is unit-tested without a
//! modem, including the ones that are hard to provoke on a real line.
//!
//! Decision table (also in docs/voice.md), checked in this order:
//! 1. number on the block list → reject (`AT+CHUP`), no text back;
//! 2. voice disabled → reject, text back;
//! 3. allow list not empty and the caller not on it (a withheld number is never on it) → reject,
//!    text back;
//! 4. no way to play a greeting (no greeting, or no audio path on this modem) → let it ring (the
//!    caller gives up), text back;
//! 5. otherwise answer after `answer_after_rings` rings, play the greeting (and record a voicemail
//!    when configured), text back.
//!
//! "Text back" needs a number and a configured reply text. Caller id comes after the first `RING`
//! (`+CLIP`), so an answer waits for it: at the N-th ring the call is answered as soon as the caller
//! is known, or after [`Timing::clip_grace`] / at the next ring as an unknown caller. Rejections
//! happen as soon as the caller is known, without waiting for N rings. A call that stops ringing
//! without an end URC (generic modems send none when the caller gives up) ends as missed after
//! [`Timing::ring_timeout`] without a ring. End URCs arriving while idle (the echo of our own
//! `AT+CHUP`: `^CEND`, `VOICE CALL: END`, ccinfo −1) are ignored.

use std::time::Duration;

use tokio::time::Instant;

use super::detect::{Caller, Signal};
use crate::store::CallOutcome;

/// What the configuration says about calls (the policy half of `[voice]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub enabled: bool,
    /// Rings before answering (at least 1).
    pub answer_after_rings: u32,
    /// A greeting is loaded and the modem has a way to play it.
    pub can_answer: bool,
    /// A reply text is configured.
    pub reply_text: bool,
    /// When non-empty, only these numbers are answered.
    pub allow: Vec<String>,
    /// Never answered nor texted back.
    pub block: Vec<String>,
}

/// Timers of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long to wait for `+CLIP` after the ring that would answer.
    pub clip_grace: Duration,
    /// Silence after the last ring after which an unanswered call counts as missed.
    pub ring_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            clip_grace: Duration::from_millis(600),
            // Networks ring every ~3–5 s; three missed rings mean the caller has gone.
            ring_timeout: Duration::from_secs(12),
        }
    }
}

/// What to do with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Answer,
    Reject,
    Ignore,
}

/// A decision and whether to text the caller afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub text_back: bool,
    /// Why, for the log.
    pub reason: &'static str,
}

/// Compares numbers ignoring spaces, dashes, dots and brackets (the config validates E.164, the
/// network may format its own way).
fn same_number(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    };
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

/// The decision table of the module docs.
pub fn decide(policy: &Policy, caller: &Caller) -> Verdict {
    let number = caller.number();
    let listed = |list: &[String]| number.is_some_and(|n| list.iter().any(|l| same_number(l, n)));
    let text = policy.reply_text && number.is_some();
    let v = |decision, text_back, reason| Verdict {
        decision,
        text_back,
        reason,
    };
    if listed(&policy.block) {
        v(Decision::Reject, false, "number is on the block list")
    } else if !policy.enabled {
        v(Decision::Reject, text, "voice is disabled")
    } else if !policy.allow.is_empty() && !listed(&policy.allow) {
        v(Decision::Reject, text, "caller is not on the allow list")
    } else if !policy.can_answer {
        v(Decision::Ignore, text, "no greeting or no audio path")
    } else {
        v(Decision::Answer, text, "answering")
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A call is ringing: open its log row and tell watchers. Always comes first, once per call.
    Ringing { caller: Caller, at: Instant },
    /// Answer and run the session (greeting, voicemail).
    Answer,
    /// Hang up without answering (`AT+CHUP`), then report [`CallMachine::closed`].
    Reject,
    /// The session learns the call is connected.
    Connected,
    /// The caller hung up during the session: stop it (it reports [`CallMachine::closed`]).
    StopSession,
    /// The call is over: close its log row.
    Finished(Finished),
}

/// The end of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub caller: Caller,
    pub outcome: CallOutcome,
    pub text_back: bool,
    pub started: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Ringing, not yet decided (or decided to answer, waiting for the N-th ring).
    Ringing,
    /// Decided to let it ring.
    Ignoring,
    /// `AT+CHUP` sent, waiting for [`CallMachine::closed`].
    Rejecting,
    /// Session running.
    InCall,
    /// Session told to stop, waiting for [`CallMachine::closed`].
    Closing,
}

#[derive(Debug, Clone)]
struct Current {
    phase: Phase,
    caller: Option<Caller>,
    announced: bool,
    rings: u32,
    started: Instant,
    last_signal: Instant,
    /// Set when the answering ring came before the caller id.
    answer_by: Option<Instant>,
    verdict: Option<Verdict>,
}

/// The state machine of one modem's (single) call.
#[derive(Debug, Clone)]
pub struct CallMachine {
    policy: Policy,
    timing: Timing,
    call: Option<Current>,
}

impl CallMachine {
    pub fn new(policy: Policy, timing: Timing) -> CallMachine {
        CallMachine {
            policy,
            timing,
            call: None,
        }
    }

    /// Replaces the policy (greeting set or removed); a call in progress keeps its verdict.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Whether a call is going on.
    pub fn busy(&self) -> bool {
        self.call.is_some()
    }

    /// The caller of the current call, if known.
    pub fn caller(&self) -> Option<&Caller> {
        self.call.as_ref().and_then(|c| c.caller.as_ref())
    }

    /// When [`Self::on_tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let c = self.call.as_ref()?;
        match c.phase {
            Phase::Ringing | Phase::Ignoring => {
                let timeout = c.last_signal + self.timing.ring_timeout;
                Some(c.answer_by.map_or(timeout, |a| a.min(timeout)))
            }
            _ => None,
        }
    }

    /// Feeds one signal.
    pub fn on_signal(&mut self, sig: Signal, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match sig {
            Signal::Ring | Signal::Incoming(_) | Signal::Caller(_) => {
                let c = self.call.get_or_insert(Current {
                    phase: Phase::Ringing,
                    caller: None,
                    announced: false,
                    rings: 0,
                    started: now,
                    last_signal: now,
                    answer_by: None,
                    verdict: None,
                });
                if !matches!(c.phase, Phase::Ringing | Phase::Ignoring) {
                    return out;
                }
                c.last_signal = now;
                match sig {
                    Signal::Ring => c.rings += 1,
                    Signal::Incoming(Some(caller)) | Signal::Caller(caller) => {
                        // The first identification wins (a later CLCC may carry a reformatted
                        // number).
                        c.caller.get_or_insert(caller);
                    }
                    _ => {}
                }
                self.progress(now, false, &mut out);
            }
            Signal::Connected => {
                if let Some(c) = &self.call
                    && c.phase == Phase::InCall
                {
                    out.push(Action::Connected);
                }
            }
            // Playback is the session's business (the driver hands it over).
            Signal::PlaybackEnded => {}
            Signal::Ended(_) => match self.call.as_ref().map(|c| c.phase) {
                None | Some(Phase::Rejecting | Phase::Closing) => {}
                Some(Phase::Ringing | Phase::Ignoring) => {
                    self.finish(CallOutcome::Missed, &mut out);
                }
                Some(Phase::InCall) => {
                    if let Some(c) = &mut self.call {
                        c.phase = Phase::Closing;
                    }
                    out.push(Action::StopSession);
                }
            },
        }
        out
    }

    /// Advances the clock.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(c) = &self.call else { return out };
        if !matches!(c.phase, Phase::Ringing | Phase::Ignoring) {
            return out;
        }
        if now >= c.last_signal + self.timing.ring_timeout {
            self.finish(CallOutcome::Missed, &mut out);
        } else if c.answer_by.is_some_and(|a| now >= a) {
            self.progress(now, true, &mut out);
        }
        out
    }

    /// The driver finished what [`Action::Reject`] or [`Action::Answer`] started, with this outcome.
    pub fn closed(&mut self, outcome: CallOutcome) -> Vec<Action> {
        let mut out = Vec::new();
        if self.call.is_some() {
            self.finish(outcome, &mut out);
        }
        out
    }

    /// Decides (and acts) when enough is known. `force`: the caller-id grace has run out.
    fn progress(&mut self, now: Instant, force: bool, out: &mut Vec<Action>) {
        let n = self.policy.answer_after_rings.max(1);
        let Some(c) = &mut self.call else { return };
        let answering_ring = c.rings >= n;
        // A ring after the answering one means no caller id is coming.
        let give_up_on_clip = force || c.rings > n;
        if c.caller.is_none() && give_up_on_clip {
            c.caller = Some(Caller::Unavailable);
        }
        let Some(caller) = c.caller.clone() else {
            if answering_ring && c.answer_by.is_none() {
                c.answer_by = Some(now + self.timing.clip_grace);
            }
            return;
        };
        if !c.announced {
            c.announced = true;
            out.push(Action::Ringing {
                caller: caller.clone(),
                at: c.started,
            });
        }
        let verdict = *c
            .verdict
            .get_or_insert_with(|| decide(&self.policy, &caller));
        match (c.phase, verdict.decision) {
            (Phase::Ringing, Decision::Reject) => {
                c.phase = Phase::Rejecting;
                out.push(Action::Reject);
            }
            (Phase::Ringing, Decision::Ignore) => c.phase = Phase::Ignoring,
            (Phase::Ringing, Decision::Answer) if answering_ring => {
                c.phase = Phase::InCall;
                c.answer_by = None;
                out.push(Action::Answer);
            }
            _ => {}
        }
    }

    fn finish(&mut self, outcome: CallOutcome, out: &mut Vec<Action>) {
        let Some(c) = self.call.take() else { return };
        let caller = c.caller.unwrap_or(Caller::Unavailable);
        if !c.announced {
            out.push(Action::Ringing {
                caller: caller.clone(),
                at: c.started,
            });
        }
        let verdict = c.verdict.unwrap_or_else(|| decide(&self.policy, &caller));
        out.push(Action::Finished(Finished {
            caller,
            outcome,
            text_back: verdict.text_back,
            started: c.started,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::detect::EndKind;
    use proptest::prelude::*;

    fn policy() -> Policy {
        Policy {
            enabled: true,
            answer_after_rings: 2,
            can_answer: true,
            reply_text: true,
            allow: vec![],
            block: vec![],
        }
    }

    fn num(n: &str) -> Caller {
        Caller::Number(n.into())
    }

    fn ms(t0: Instant, m: u64) -> Instant {
        t0 + Duration::from_millis(m)
    }

    fn kinds(a: &[Action]) -> Vec<&'static str> {
        a.iter()
            .map(|a| match a {
                Action::Ringing { .. } => "ringing",
                Action::Answer => "answer",
                Action::Reject => "reject",
                Action::Connected => "connected",
                Action::StopSession => "stop",
                Action::Finished(_) => "finished",
            })
            .collect()
    }

    #[test]
    fn decision_table() {
        let p = policy();
        assert_eq!(decide(&p, &num("+1555")).decision, Decision::Answer);
        assert!(decide(&p, &num("+1555")).text_back);
        assert!(!decide(&p, &Caller::Withheld).text_back);
        let blocked = Policy {
            block: vec!["+1 555".into()],
            ..policy()
        };
        let v = decide(&blocked, &num("+1555"));
        assert_eq!((v.decision, v.text_back), (Decision::Reject, false));
        let off = Policy {
            enabled: false,
            ..policy()
        };
        let v = decide(&off, &num("+1555"));
        assert_eq!((v.decision, v.text_back), (Decision::Reject, true));
        let allow = Policy {
            allow: vec!["+1666".into()],
            ..policy()
        };
        assert_eq!(decide(&allow, &num("+1555")).decision, Decision::Reject);
        assert_eq!(decide(&allow, &num("+1666")).decision, Decision::Answer);
        assert_eq!(decide(&allow, &Caller::Withheld).decision, Decision::Reject);
        let mute = Policy {
            can_answer: false,
            ..policy()
        };
        let v = decide(&mute, &num("+1555"));
        assert_eq!((v.decision, v.text_back), (Decision::Ignore, true));
        let silent = Policy {
            reply_text: false,
            ..policy()
        };
        assert!(!decide(&silent, &num("+1555")).text_back);
    }

    #[test]
    fn answers_at_the_nth_ring_with_caller_id() {
        let t0 = Instant::now();
        let mut m = CallMachine::new(policy(), Timing::default());
        assert!(m.on_signal(Signal::Ring, t0).is_empty());
        let a = m.on_signal(Signal::Caller(num("+1555")), ms(t0, 10));
        assert_eq!(kinds(&a), ["ringing"]);
        assert!(
            m.on_signal(Signal::Ring, ms(t0, 3000))
                .contains(&Action::Answer)
        );
        assert_eq!(
            m.on_signal(Signal::Connected, ms(t0, 3100)),
            [Action::Connected]
        );
        // A late CLIP or ring during the call changes nothing.
        assert!(m.on_signal(Signal::Ring, ms(t0, 3200)).is_empty());
        let a = m.on_signal(Signal::Ended(EndKind::Released), ms(t0, 9000));
        assert_eq!(a, [Action::StopSession]);
        // Duplicate end URCs (SIMCom VOICE CALL: END + NO CARRIER) are ignored.
        assert!(
            m.on_signal(Signal::Ended(EndKind::Released), ms(t0, 9001))
                .is_empty()
        );
        let a = m.closed(CallOutcome::Voicemail);
        let [Action::Finished(f)] = a.as_slice() else {
            panic!("{a:?}")
        };
        assert_eq!(
            (f.outcome, f.caller.clone(), f.text_back, f.started),
            (CallOutcome::Voicemail, num("+1555"), true, t0)
        );
        assert!(!m.busy());
        // The echo of our own hang-up while idle starts nothing.
        assert!(
            m.on_signal(Signal::Ended(EndKind::Released), ms(t0, 9100))
                .is_empty()
        );
        assert!(!m.busy());
    }

    #[test]
    fn waits_for_clip_then_answers_unknown_after_grace() {
        let t0 = Instant::now();
        let p = Policy {
            answer_after_rings: 1,
            ..policy()
        };
        let mut m = CallMachine::new(p, Timing::default());
        assert!(m.on_signal(Signal::Ring, t0).is_empty());
        assert_eq!(m.next_deadline(), Some(ms(t0, 600)));
        assert!(m.on_tick(ms(t0, 599)).is_empty());
        let a = m.on_tick(ms(t0, 600));
        assert_eq!(kinds(&a), ["ringing", "answer"]);
        assert!(matches!(
            &a[0],
            Action::Ringing {
                caller: Caller::Unavailable,
                ..
            }
        ));
    }

    #[test]
    fn withheld_caller_is_answered_without_text() {
        let t0 = Instant::now();
        let mut m = CallMachine::new(policy(), Timing::default());
        m.on_signal(Signal::Ring, t0);
        m.on_signal(Signal::Caller(Caller::Withheld), t0);
        assert!(
            m.on_signal(Signal::Ring, ms(t0, 3000))
                .contains(&Action::Answer)
        );
        let a = m.closed(CallOutcome::Greeted);
        let [Action::Finished(f)] = a.as_slice() else {
            panic!()
        };
        assert!(!f.text_back);
        assert_eq!(f.caller, Caller::Withheld);
    }

    #[test]
    fn blocked_is_rejected_at_once() {
        let t0 = Instant::now();
        let p = Policy {
            block: vec!["+1555".into()],
            ..policy()
        };
        let mut m = CallMachine::new(p, Timing::default());
        m.on_signal(Signal::Ring, t0);
        let a = m.on_signal(Signal::Caller(num("+1555")), t0);
        assert_eq!(kinds(&a), ["ringing", "reject"]);
        // NO CARRIER after our CHUP does not end it twice.
        assert!(m.on_signal(Signal::Ended(EndKind::Released), t0).is_empty());
        let a = m.closed(CallOutcome::Rejected);
        let [Action::Finished(f)] = a.as_slice() else {
            panic!()
        };
        assert_eq!((f.outcome, f.text_back), (CallOutcome::Rejected, false));
    }

    #[test]
    fn ignored_call_ends_missed_by_urc_or_ring_timeout() {
        let t0 = Instant::now();
        let p = Policy {
            can_answer: false,
            ..policy()
        };
        let mut m = CallMachine::new(p.clone(), Timing::default());
        m.on_signal(Signal::Incoming(Some(num("+1555"))), t0);
        m.on_signal(Signal::Ring, t0);
        m.on_signal(Signal::Ring, ms(t0, 3000));
        m.on_signal(Signal::Ring, ms(t0, 6000));
        let a = m.on_signal(Signal::Ended(EndKind::Released), ms(t0, 7000));
        let [Action::Finished(f)] = a.as_slice() else {
            panic!("{a:?}")
        };
        assert_eq!((f.outcome, f.text_back), (CallOutcome::Missed, true));

        let mut m = CallMachine::new(p, Timing::default());
        m.on_signal(Signal::Ring, t0);
        m.on_signal(Signal::Caller(num("+1555")), t0);
        assert_eq!(m.next_deadline(), Some(ms(t0, 12_000)));
        assert!(m.on_tick(ms(t0, 11_999)).is_empty());
        assert_eq!(kinds(&m.on_tick(ms(t0, 12_000))), ["finished"]);
    }

    #[test]
    fn caller_gives_up_before_the_answering_ring() {
        let t0 = Instant::now();
        let mut m = CallMachine::new(policy(), Timing::default());
        m.on_signal(Signal::Ring, t0);
        let a = m.on_signal(Signal::Ended(EndKind::Released), ms(t0, 500));
        // No CLIP came: announced as unavailable, then finished as missed.
        assert_eq!(kinds(&a), ["ringing", "finished"]);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Sig(u8),
        Tick(u16),
        Closed,
    }

    proptest! {
        /// Whatever happens in whatever order, the machine never emits Finished twice per call,
        /// always announces before finishing, and is idle once a Finished is out and nothing new
        /// rang (no stuck call state).
        #[test]
        fn no_stuck_state(steps in proptest::collection::vec(
            prop_oneof![
                (0u8..6).prop_map(Step::Sig),
                (0u16..20_000).prop_map(Step::Tick),
                Just(Step::Closed),
            ], 0..40)) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut m = CallMachine::new(policy(), Timing::default());
            let mut announced = false;
            for s in steps {
                let acts = match s {
                    Step::Sig(k) => {
                        now += Duration::from_millis(10);
                        let sig = match k {
                            0 => Signal::Ring,
                            1 => Signal::Caller(num("+1555")),
                            2 => Signal::Caller(Caller::Withheld),
                            3 => Signal::Connected,
                            4 => Signal::Incoming(None),
                            _ => Signal::Ended(EndKind::Released),
                        };
                        m.on_signal(sig, now)
                    }
                    Step::Tick(d) => {
                        now += Duration::from_millis(u64::from(d));
                        m.on_tick(now)
                    }
                    Step::Closed => m.closed(CallOutcome::Greeted),
                };
                for a in &acts {
                    match a {
                        Action::Ringing { .. } => {
                            prop_assert!(!announced);
                            announced = true;
                        }
                        Action::Finished(_) => {
                            prop_assert!(announced);
                            announced = false;
                            prop_assert!(!m.busy());
                        }
                        _ => {}
                    }
                }
            }
            // Driving the end from any state leaves the machine idle.
            let mut end = m.on_signal(Signal::Ended(EndKind::Released), now);
            end.extend(m.closed(CallOutcome::Failed));
            prop_assert!(!m.busy());
        }
    }
}
