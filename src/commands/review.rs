//! The review of possible opt-outs: `members_review` lists the numbers whose texts read like an
//! opt-out but are no keyword ("Stop please"; `community::keywords::looks_like_opt_out`) and that
//! nobody has decided about; `members_review_resolve` takes the one-step decision on a number.
//!
//! What it owns: the decision's rules — an `opt_out` is a STOP in every respect (suppression,
//! queued messages cancelled, the one stop confirmation as a compliance row, consent source
//! `cli`), a `keep` changes nothing about the member. What it must not touch: SQL (the store's
//! `review` module holds the queries and writes both in one transaction), the heuristic that
//! flags a text (`community`), or the alert raised when such a text arrives (the daemon's inbound
//! pipeline).
//!
//! Why the confirmation is sent on `opt_out`: the member asked to stop, only in words the keyword
//! list does not know; the CTIA rule that an opt-out gets exactly one confirmation
//! (docs/community.md, "The rules") does not depend on who recognised it.

use super::members::{member_view, normalise};
use super::{CommandError, Context, Result};
use crate::community;
use crate::model::MessageKind;
use crate::protocol::{ReviewAction, ReviewItem, ReviewResolveArgs, ReviewResolved};
use crate::store::{NewOutbox, ReviewDecision, StoreError};
use crate::time::rfc3339;

/// `members_review`: numbers with unreviewed possible opt-outs, the longest-waiting first.
pub fn list(ctx: &Context) -> Result<Vec<ReviewItem>> {
    let store = &ctx.store;
    let mut items = Vec::new();
    for e in store.possible_opt_outs()? {
        let status = store
            .member(&e.number)?
            .map(|m| m.status.as_str().to_string());
        items.push(ReviewItem {
            number: e.number,
            status,
            messages: e.messages,
            last_id: e.last_id,
            last_text: e.last_text,
            last_at: rfc3339(e.last_at),
        });
    }
    Ok(items)
}

/// `members_review_resolve`: opts the number out (like a texted STOP, source `cli`) or keeps it;
/// either way its flagged texts leave the review list. A number with nothing to review is
/// `not_found`.
pub fn resolve(ctx: &Context, args: &ReviewResolveArgs) -> Result<ReviewResolved> {
    let (store, cfg, now) = (&ctx.store, &*ctx.settings, ctx.now());
    let number = normalise(cfg, &args.number)?;
    let decision = match args.action {
        ReviewAction::Keep => ReviewDecision::Keep,
        ReviewAction::OptOut => {
            let member = store.member(&number)?;
            let text = community::stop_confirmation(
                &cfg.community,
                member.as_ref().map(member_view).as_ref(),
            );
            let home = member.and_then(|m| m.home_modem);
            ReviewDecision::OptOut {
                confirmation: (!text.trim().is_empty()).then(|| {
                    let mut row = NewOutbox::new(&number, &text, MessageKind::Compliance, now);
                    row.modem_pref = home;
                    row
                }),
            }
        }
    };
    let done = store
        .review_possible_opt_out(&number, &decision, now)
        .map_err(|e| match e {
            StoreError::NotFound { .. } => CommandError::NotFound(format!(
                "{number} has no possible opt-out waiting for review (`members review` lists them)"
            )),
            other => other.into(),
        })?;
    if done.confirmation.is_some() {
        ctx.wake_dispatch();
    }
    tracing::info!(
        %number,
        action = ?args.action,
        messages = done.messages,
        cancelled = done.cancelled,
        "possible opt-out reviewed"
    );
    Ok(ReviewResolved {
        number,
        action: args.action,
        messages: done.messages,
        cancelled: done.cancelled,
        confirmation: done.confirmation,
    })
}

#[cfg(test)]
mod tests {
    use crate::community::Flag;
    use crate::store::FLAG_POSSIBLE_OPT_OUT;

    /// The store lists what the community rules flag: one word, written in two layers.
    #[test]
    fn the_store_and_the_rules_agree_on_the_flag() {
        assert_eq!(Flag::PossibleOptOut.as_str(), FLAG_POSSIBLE_OPT_OUT);
    }
}
