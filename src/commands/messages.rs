//! The messaging commands: `send` (queue one text to one number), `inbox` (what members wrote)
//! and `conversation` (one thread, both directions, marked read).
//!
//! `send` never sends anything itself: it stores the message durably before it answers (the
//! guarantee "accepted means in SQLite") and wakes the dispatch runner, which takes it from there.
//! Its refusals are decided in this order, so the error a user sees is the most useful one: an
//! unparsable number (`invalid_number`), an unknown modem (`not_found`), an empty or over-long
//! text (`invalid_request`), an opted-out number (`opted_out`: STOP is absolute). A STOP stored
//! between this check and the enqueue still wins: the store cancels rows to suppressed numbers
//! when it claims them.

use tracing::info;

use super::{CommandError, Context, DEFAULT_LIMIT, MAX_LIMIT, Result};
use crate::community;
use crate::model::MessageKind;
use crate::pdu;
use crate::protocol::{
    ConversationArgs, ConversationItem, ConversationsArgs, Direction, InboxArgs, InboxItem,
    MessageIdArgs, MessageStatus, SendAccepted, SendArgs, ThreadItem,
};
use crate::store::{self, NewOutbox, OutboxState};
use crate::time::rfc3339;

/// Most SMS parts one message may take (the concatenation header counts to 255).
const MAX_PARTS: usize = 255;

/// The word the protocol uses for an outbox state (a claimed row is `sending`).
pub fn state_word(s: OutboxState) -> &'static str {
    match s {
        OutboxState::Claimed => "sending",
        other => other.as_str(),
    }
}

/// `send`: queue `text` to `to`, on the named modem or the member's home modem.
pub fn send(ctx: &Context, args: &SendArgs) -> Result<SendAccepted> {
    let to = community::normalise_number(&args.to, None)
        .map_err(|e| match CommandError::from(e) {
            CommandError::InvalidNumber { input, reason } => CommandError::InvalidNumber {
                input,
                reason: format!("{reason}; give it in international form like +15551234567"),
            },
            other => other,
        })?
        .number;
    if let Some(m) = &args.modem
        && !ctx.settings.modems.iter().any(|c| &c.name == m)
    {
        return Err(CommandError::NotFound(format!(
            "no modem named {m:?}; configured: {}",
            ctx.settings.modem_names().join(", ")
        )));
    }
    if args.text.trim().is_empty() {
        return Err(CommandError::Invalid(
            "field `text`: the message is empty".into(),
        ));
    }
    let plan = pdu::plan(&args.text);
    if plan.parts.len() > MAX_PARTS {
        return Err(CommandError::Invalid(format!(
            "field `text`: needs {} SMS parts; at most {MAX_PARTS} fit one message",
            plan.parts.len()
        )));
    }
    let store = &ctx.store;
    if store.opted_out(&to)? {
        return Err(CommandError::OptedOut(format!(
            "{to} texted STOP; nothing can be sent to it until it texts START"
        )));
    }
    let home = store.member(&to)?.and_then(|m| m.home_modem);
    let mut row = NewOutbox::new(&to, &args.text, MessageKind::Direct, ctx.now());
    row.modem_pref = args.modem.clone().or(home);
    let id = store.enqueue(&row)?;
    ctx.wake_dispatch();
    info!(id, to = %to, parts = plan.parts.len(), "message queued");
    Ok(SendAccepted {
        id,
        parts: u32::try_from(plan.parts.len()).unwrap_or(u32::MAX),
        encoding: plan.alphabet.name().to_string(),
    })
}

/// `message_get`: where one outgoing message stands.
pub fn get(ctx: &Context, args: &MessageIdArgs) -> Result<MessageStatus> {
    let r = ctx.store.outbox_row(args.message)?;
    Ok(MessageStatus {
        id: r.id,
        to: r.to_number,
        text: r.text,
        kind: r.kind.as_str().to_string(),
        status: state_word(r.state).to_string(),
        broadcast_id: r.broadcast_id,
        modem: r.claimed_by,
        attempts: r.attempts,
        created_at: rfc3339(r.created_at),
        sent_at: r.sent_at.map(rfc3339),
        delivered_at: r.delivered_at.map(rfc3339),
        error: r.last_error,
    })
}

/// `conversations`: the latest threads, newest first, with the member's name where known.
pub fn conversations(ctx: &Context, args: &ConversationsArgs) -> Result<Vec<ThreadItem>> {
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let s = &ctx.store;
    let mut items = Vec::new();
    for t in s.threads(limit)? {
        let name = s.member(&t.number)?.and_then(|m| m.name);
        items.push(ThreadItem {
            number: t.number,
            name,
            last_at: rfc3339(t.last_at),
            unread: t.unread,
        });
    }
    Ok(items)
}

/// `inbox`: received messages, newest first; with `since`, those after that id, oldest first.
pub fn inbox(ctx: &Context, args: &InboxArgs) -> Result<Vec<InboxItem>> {
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let rows = match args.since {
        Some(after) => ctx.store.inbox_since(after, args.unread_only, limit)?,
        None => ctx.store.inbox(args.unread_only, limit)?,
    };
    Ok(rows
        .into_iter()
        .map(|m| InboxItem {
            id: m.id,
            from: m.sender,
            text: m.text,
            received_at: rfc3339(m.received_at),
            modem: m.modem,
            read: m.read,
            flag: m.flag,
        })
        .collect())
}

/// `conversation`: the last messages to and from one number, oldest first; the thread is marked
/// read. Numbers are stored in E.164; an alphanumeric sender is looked up as given.
pub fn conversation(ctx: &Context, args: &ConversationArgs) -> Result<Vec<ConversationItem>> {
    let invalid = |e: community::CommunityError| CommandError::from(e);
    // Control characters and non-space whitespace are refused before the alphanumeric fallback,
    // which would otherwise take `"\u{0}"` as a sender's name.
    let text = community::member::number_text(&args.number).map_err(invalid)?;
    let number = match community::normalise_number(text, None) {
        Ok(n) => n.number,
        Err(e) if text.starts_with('+') => return Err(invalid(e)),
        Err(_) if !text.is_empty() => text.to_string(),
        Err(e) => return Err(invalid(e)),
    };
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let s = &ctx.store;
    let entries = s.conversation(&number, limit)?;
    s.mark_thread_read(&number)?;
    let mut items = Vec::with_capacity(entries.len());
    for e in entries {
        let (direction, modem) = match e.direction {
            store::Direction::In => (Direction::In, None),
            store::Direction::Out => (
                Direction::Out,
                s.outbox_row(e.id).ok().and_then(|r| r.claimed_by),
            ),
        };
        items.push(ConversationItem {
            id: e.id,
            direction,
            text: e.text,
            at: rfc3339(e.at),
            status: e.state.map(|s| state_word(s).to_string()),
            modem,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_rows_read_as_sending() {
        assert_eq!(state_word(OutboxState::Claimed), "sending");
        assert_eq!(state_word(OutboxState::InDoubt), "in_doubt");
        assert_eq!(state_word(OutboxState::Delivered), "delivered");
    }
}
