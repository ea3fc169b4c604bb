//! The owner on their own phone, the daemon's part (docs/community.md, "Owners on their own
//! phone"): members' texts forwarded to the owners with a short random reference, and an owner's
//! texts run as commands (`#ref text`, `@+number text`, `BROADCAST <segment>: text`,
//! `YES <code>`) instead of going through the member rules.
//!
//! What it owns: the orchestration — drawing references and codes from the operating system's
//! CSPRNG, the store's reference and confirmation rows, running the command layer's `send` and
//! `broadcast` as [`Caller::owner`], the answer SMS, the log line and the `owner_command` journal
//! event. What it must not touch: the meaning of an owner's text (`community::owners` parses it
//! and words the answers), SQL (`store`), the rules of `send` and `broadcast` (`commands`: an
//! owner's send is refused for an opted-out member exactly like the CLI's).
//!
//! Why at most once: an owner's message is marked processed *before* its command runs (the
//! command layer commits in its own transactions, so the two cannot share one). A crash in
//! between leaves the command undone and the owner without an answer — they text again — where
//! the other order could send a member a message twice, or a broadcast to everyone twice, on the
//! replay after the restart. A `YES <code>` closes its pending row before the broadcast is
//! created, for the same reason. Forwarded copies, by contrast, are ordinary effects of the
//! member's message and commit with it (inbound.rs): exactly once.
//!
//! Logging: the command, the owner, the member and the outcome, never a message body (the
//! inbound log line does not print bodies either); the journal event carries the same fields,
//! and `answered: false` when a refusal went unanswered because the owner's hourly cap of
//! refusal answers was reached (`community::owners::RefusalBudget`, kept by the inbound
//! pipeline).

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::commands::{self, Caller, CommandError, Context};
use crate::community::owners::{
    self as rules, BroadcastPreview, CODE_LEN, CONFIRM_TTL_MS, ConfirmRefusal, OwnerCommand,
    OwnerSettings, REF_LEN, REF_TTL_MS, REFUSAL_CAP_NOTE, RefusalAnswer, RefusalBudget, Target,
};
use crate::community::{Action, Decision, MemberView};
use crate::config::Config;
use crate::dispatch::DispatchHandle;
use crate::model::MessageKind;
use crate::protocol::{BroadcastArgs, Reply, Request, SendArgs};
use crate::store::{ConfirmOutcome, InboundEffect, NewOutbox, Store, StoreError};

/// Attempts at drawing a reference that no other member holds (each fails with odds of live
/// references / 2^25; eight failures in a row mean something else is wrong).
const REF_DRAWS: usize = 8;

/// One stored inbound message, as the community step sees it.
pub(super) struct Received<'a> {
    pub id: i64,
    /// The modem it came in on.
    pub modem: &'a str,
    pub from: &'a str,
    pub text: &'a str,
    /// Unix ms.
    pub now: i64,
}

/// `n` random symbols from the operating system's CSPRNG (through `rand`, like token secrets).
fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes[..]);
    rules::token_from_bytes(&bytes)
}

/// The forwarded copies of a member's text, one per owner, as effects of that text's community
/// step (so they commit with it). Empty when forwarding is off, the text is not conversation
/// (a STOP, an onboarding answer), or no reference could be stored.
pub(super) fn forward_effects(
    store: &Store,
    owners: &OwnerSettings,
    decision: &Decision,
    msg: &Received<'_>,
    member: Option<&MemberView>,
    home: &str,
) -> Vec<InboundEffect> {
    let (from, text, now) = (msg.from, msg.text, msg.now);
    if !owners.forwards() || decision.inbox().is_none() {
        return Vec::new();
    }
    let mut reference = None;
    for _ in 0..REF_DRAWS {
        match store.owner_ref_for(from, &random_token(REF_LEN), now, now + REF_TTL_MS) {
            Ok(Some(r)) => {
                reference = Some(r);
                break;
            }
            Ok(None) => continue,
            Err(e) => {
                warn!(from, error = %e, "could not store a reference; text not forwarded to the owners");
                return Vec::new();
            }
        }
    }
    let Some(reference) = reference else {
        warn!(
            from,
            "no free reference after {REF_DRAWS} draws; text not forwarded to the owners"
        );
        return Vec::new();
    };
    // A name the same text sets (an onboarding answer is not conversation, so this is rare)
    // is not known yet: the stored one is used.
    let name = member.and_then(|m| m.name.as_deref());
    let body = rules::forward_text(&rules::member_label(name, from), &reference, text);
    info!(from, r#ref = %reference, owners = owners.numbers.len(), "member text forwarded to the owners");
    owners
        .numbers
        .iter()
        .map(|owner| {
            let mut row = NewOutbox::new(owner, body.as_str(), MessageKind::Reply, now);
            row.modem_pref = (!home.is_empty()).then(|| home.to_string());
            InboundEffect::Enqueue(row)
        })
        .collect()
}

/// Whether a decision's actions would make `from` a member (used for the forward's home).
pub(super) fn creates_member(decision: &Decision) -> bool {
    decision
        .actions
        .iter()
        .any(|a| matches!(a, Action::CreateMember(_)))
}

/// What one owner command did: the answer SMS and the audit record.
struct Outcome {
    answer: String,
    command: &'static str,
    outcome: String,
    audit: Map<String, Value>,
}

impl Outcome {
    fn new(command: &'static str, outcome: impl Into<String>, answer: String) -> Outcome {
        Outcome {
            answer,
            command,
            outcome: outcome.into(),
            audit: Map::new(),
        }
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Outcome {
        self.audit.insert(key.to_string(), value.into());
        self
    }

    /// Whether the command was refused (anything but a reply sent, a preview or a confirmed
    /// broadcast): such answers count against the owner's hourly cap.
    fn refused(&self) -> bool {
        !matches!(self.outcome.as_str(), "sent" | "preview" | "confirmed")
    }
}

/// Handles message `id` from owner `from` (see the module doc); returns whether an answer was
/// enqueued. The message is marked processed first; one already processed is left alone.
/// `refusals` counts the answers to refused commands (at most the configured number per owner
/// per hour).
pub(super) fn handle(
    store: &Store,
    cfg: &Arc<Config>,
    dispatch: &DispatchHandle,
    refusals: &mut RefusalBudget,
    msg: &Received<'_>,
) -> Result<bool, StoreError> {
    let (id, modem, from, text, now) = (msg.id, msg.modem, msg.from, msg.text, msg.now);
    let claimed = store.apply_inbound(id, &[InboundEffect::MarkRead], now)?;
    if !claimed.applied {
        return Ok(false);
    }
    let ctx = Context::new(store.clone(), Arc::new(cfg.command_settings()))
        .with_dispatch(dispatch.clone());
    let owners = &cfg.community.owners;
    let out = match rules::parse(text, owners.pin.as_deref()) {
        Ok(cmd) => run(&ctx, from, cmd, now)?,
        Err(r) => Outcome::new("refused", r.word(), rules::refusal_text(&r)),
    };
    let mut answer = out.answer.clone();
    let answered = !out.refused()
        || match refusals.take(from, now) {
            RefusalAnswer::Answer => true,
            RefusalAnswer::AnswerLast => {
                answer.push_str(REFUSAL_CAP_NOTE);
                true
            }
            RefusalAnswer::Silent => false,
        };
    let answer_id = if answered {
        let mut row = NewOutbox::new(from, answer.as_str(), MessageKind::Reply, now);
        row.modem_pref = (!modem.is_empty()).then(|| modem.to_string());
        Some(store.enqueue(&row)?)
    } else {
        None
    };
    let details = Value::Object(out.audit.clone()).to_string();
    match answer_id {
        Some(answer_id) => info!(id, owner = from, command = out.command,
            outcome = %out.outcome, %details, answer = answer_id, "owner command"),
        None => warn!(id, owner = from, command = out.command, outcome = %out.outcome,
            %details, "owner command refused and not answered: this owner's refusals this hour \
            reached community.owner_refusals_per_hour (someone may be sending from their number)"),
    }
    let mut data = out.audit;
    data.insert("answered".into(), json!(answered));
    data.insert("owner".into(), json!(from));
    data.insert("command".into(), json!(out.command));
    data.insert("outcome".into(), json!(out.outcome));
    data.insert("inbox_id".into(), json!(id));
    if let Err(e) = store.append_event("owner_command", &Value::Object(data).to_string(), now) {
        warn!(id, owner = from, error = %e, "could not journal an owner command");
    }
    Ok(answered)
}

fn run(ctx: &Context, owner: &str, cmd: OwnerCommand, now: i64) -> Result<Outcome, StoreError> {
    match cmd {
        OwnerCommand::Reply { to, text } => reply(ctx, owner, to, &text, now),
        OwnerCommand::Broadcast { segment, text } => preview(ctx, owner, segment, &text, now),
        OwnerCommand::Confirm { code } => confirm(ctx, owner, &code, now),
    }
}

/// Runs `request` as the owner: the same scope check and command as any transport.
fn execute(ctx: &Context, owner: &str, request: Request) -> Result<Reply, CommandError> {
    let caller = Caller::owner(owner);
    commands::access::authorize(&caller, &request)?;
    commands::execute(ctx, request)
}

fn reply(
    ctx: &Context,
    owner: &str,
    to: Target,
    text: &str,
    now: i64,
) -> Result<Outcome, StoreError> {
    let (member, reference) = match to {
        Target::Ref(r) => match ctx.store.owner_ref_member(&r, now)? {
            Some(m) => (m, Some(r)),
            None => {
                return Ok(Outcome::new(
                    "reply",
                    "unknown_ref",
                    rules::refusal_text(&rules::OwnerRefusal::BadRef),
                )
                .with("ref", r));
            }
        },
        Target::Number(n) => (n, None),
    };
    let Some(m) = ctx.store.member(&member)? else {
        return Ok(Outcome::new(
            "reply",
            "not_a_member",
            format!("Not sent: {member} is not a member."),
        )
        .with("member", member));
    };
    let label = rules::member_label(m.name.as_deref(), &member);
    let request = Request::Send(SendArgs {
        to: member.clone(),
        text: text.to_string(),
        modem: None,
    });
    let out = match execute(ctx, owner, request) {
        Ok(Reply::SendAccepted(a)) => {
            Outcome::new("reply", "sent", format!("Sent to {label}.")).with("message_id", a.id)
        }
        Ok(_) => Outcome::new(
            "reply",
            "internal",
            "Not sent: unexpected answer.".to_string(),
        ),
        Err(e) => Outcome::new(
            "reply",
            e.code().as_str(),
            format!("Not sent to {label}: {}", short(&e)),
        ),
    };
    let out = out.with("member", member);
    Ok(match reference {
        Some(r) => out.with("ref", r),
        None => out,
    })
}

fn preview(
    ctx: &Context,
    owner: &str,
    segment: Option<String>,
    text: &str,
    now: i64,
) -> Result<Outcome, StoreError> {
    let request = Request::Broadcast(BroadcastArgs {
        text: text.to_string(),
        segment: segment.clone(),
        dry_run: true,
        ..BroadcastArgs::default()
    });
    let r = match execute(ctx, owner, request) {
        Ok(Reply::Broadcast(r)) => r,
        Ok(_) => {
            return Ok(Outcome::new(
                "broadcast",
                "internal",
                "Not sent: unexpected answer.".into(),
            ));
        }
        Err(e) => {
            return Ok(Outcome::new(
                "broadcast",
                e.code().as_str(),
                format!("Not sent: {}", short(&e)),
            ));
        }
    };
    let code = random_token(CODE_LEN);
    ctx.store.open_owner_confirmation(
        owner,
        &code,
        segment.as_deref(),
        text,
        now,
        now + CONFIRM_TTL_MS,
    )?;
    let answer = rules::preview_text(&BroadcastPreview {
        segment: &r.segment,
        recipients: r.recipients,
        opted_out: r.excluded.opted_out,
        not_confirmed: r.excluded.not_confirmed,
        sms: r.sms.total_sms,
        code: &code,
    });
    Ok(Outcome::new("broadcast", "preview", answer)
        .with("segment", r.segment)
        .with("recipients", r.recipients))
}

fn confirm(ctx: &Context, owner: &str, code: &str, now: i64) -> Result<Outcome, StoreError> {
    let refused = |r: ConfirmRefusal| {
        Ok(Outcome::new(
            "confirm",
            r.word(),
            rules::confirm_refusal_text(r),
        ))
    };
    let pending = match ctx.store.close_owner_confirmation(owner, code, now)? {
        ConfirmOutcome::Confirmed(p) => p,
        ConfirmOutcome::NothingPending => return refused(ConfirmRefusal::NothingPending),
        ConfirmOutcome::WrongCode => return refused(ConfirmRefusal::WrongCode),
        ConfirmOutcome::Expired => return refused(ConfirmRefusal::Expired),
    };
    let request = Request::Broadcast(BroadcastArgs {
        text: pending.text.clone(),
        segment: pending.segment.clone(),
        ..BroadcastArgs::default()
    });
    match execute(ctx, owner, request) {
        Ok(Reply::Broadcast(r)) => {
            let Some(bid) = r.id else {
                return Ok(Outcome::new(
                    "confirm",
                    "internal",
                    "Not sent: unexpected answer.".into(),
                ));
            };
            ctx.store
                .set_owner_confirmation_broadcast(pending.id, bid)?;
            Ok(Outcome::new(
                "confirm",
                "confirmed",
                format!(
                    "Broadcast {bid} queued: {} recipients, {} SMS.",
                    r.recipients, r.sms.total_sms
                ),
            )
            .with("broadcast_id", bid)
            .with("segment", r.segment)
            .with("recipients", r.recipients))
        }
        Ok(_) => Ok(Outcome::new(
            "confirm",
            "internal",
            "Not sent: unexpected answer.".into(),
        )),
        Err(e) => Ok(Outcome::new(
            "confirm",
            e.code().as_str(),
            format!("Not sent: {}", short(&e)),
        )),
    }
}

/// An error's message cut to fit one SMS beside its prefix.
fn short(e: &CommandError) -> String {
    let s = e.to_string();
    if s.chars().count() <= 110 {
        return s;
    }
    let mut t: String = s.chars().take(107).collect();
    t.push_str("...");
    t
}
