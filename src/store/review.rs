//! The review of possible opt-outs: inbound texts the community rules flagged `possible_opt_out`
//! ("Stop please", "unsubscribe me") that no person has looked at yet, listed per number, and the
//! one-step decision on them (opt the number out, or keep it).
//!
//! What it owns: the `reviewed_at` column of `messages_in` (migration 0004) and the queries over
//! flagged, unreviewed messages. What it must not touch: what reads like an opt-out (the
//! `community` rules decide the flag), the consent rules themselves (an opt-out is recorded with
//! the member module's `record_consent_in`, exactly like a texted STOP), or the outbox beyond
//! enqueueing the one confirmation.
//!
//! Why a number leaves the list without a review once a later STOP or START is logged: the member
//! then said plainly what they want, and asking the owner again about an older, vaguer text would
//! only invite a wrong click. The rule is one `NOT EXISTS` over `consent_log` (indexed by number
//! and time), so it also covers a STOP texted before anyone looked.
//!
//! Why the opt-out and its confirmation commit together: the confirmation is the only text an
//! opted-out number may get (CTIA Short Code Monitoring Handbook, A.1; docs/community.md), and a
//! crash between two transactions would record the opt-out without it.

use crate::store::db::params;

use super::members::record_consent_in;
use super::outbox::enqueue_in;
use super::{ConsentEvent, ConsentSource, NewOutbox, Result, SqlContext, Store, StoreError};

/// The flag the community rules put on a text that reads like an opt-out but is no keyword
/// (`community::Flag::PossibleOptOut`; a test in `commands::members` pins that they agree).
pub const FLAG_POSSIBLE_OPT_OUT: &str = "possible_opt_out";

/// One number with possible opt-outs nobody has reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewEntry {
    pub number: String,
    /// Unreviewed flagged messages from the number.
    pub messages: u32,
    /// The newest of them: its id, text and reception time (unix ms).
    pub last_id: i64,
    pub last_text: String,
    pub last_at: i64,
}

/// What the owner decided about a number's possible opt-outs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewDecision {
    /// Treat them as a STOP: record `opted_out` (source `cli`), which suppresses the number and
    /// cancels its queued messages, and enqueue `confirmation` (a compliance row) if given.
    OptOut { confirmation: Option<NewOutbox> },
    /// Not an opt-out: the member stays as they are.
    Keep,
}

/// What [`Store::review_possible_opt_out`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviewed {
    /// Flagged messages marked reviewed.
    pub messages: usize,
    /// Queued messages cancelled by the opt-out.
    pub cancelled: usize,
    /// Outbox id of the confirmation, if one was enqueued.
    pub confirmation: Option<i64>,
}

/// The unreviewed flagged messages of `m.thread`, as a SQL condition over `messages_in m`.
const UNREVIEWED: &str = "m.flag = 'possible_opt_out' AND m.reviewed_at IS NULL
     AND NOT EXISTS (SELECT 1 FROM consent_log c
                     WHERE c.number = m.thread AND c.event IN ('opted_out', 'opted_in')
                       AND c.at >= m.received_at)";

impl Store {
    /// Numbers with possible opt-outs nobody has reviewed, the longest-waiting first.
    pub fn possible_opt_outs(&self) -> Result<Vec<ReviewEntry>> {
        let op = "listing possible opt-outs";
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT m.thread, count(*), max(m.received_at),
                        (SELECT l.id FROM messages_in l
                         WHERE l.thread = m.thread AND l.flag = 'possible_opt_out'
                           AND l.reviewed_at IS NULL
                         ORDER BY l.received_at DESC, l.id DESC LIMIT 1)
                 FROM messages_in m WHERE {UNREVIEWED}
                 GROUP BY m.thread ORDER BY max(m.received_at), m.thread"
            ))
            .ctx(op)?;
        let rows = st
            .query_map(params![], |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<u32>(1)?,
                    r.get::<i64>(2)?,
                    r.get::<i64>(3)?,
                ))
            })
            .ctx(op)?
            .collect::<crate::store::db::DbResult<Vec<_>>>()
            .ctx(op)?;
        let mut text = conn
            .prepare_cached("SELECT text FROM messages_in WHERE id = ?1")
            .ctx(op)?;
        let mut out = Vec::with_capacity(rows.len());
        for (number, messages, last_at, last_id) in rows {
            let last_text: String = text.query_row(params![last_id], |r| r.get(0)).ctx(op)?;
            out.push(ReviewEntry {
                number,
                messages,
                last_id,
                last_text,
                last_at,
            });
        }
        Ok(out)
    }

    /// Applies the owner's decision about `number`'s unreviewed possible opt-outs and marks them
    /// reviewed at `now`, in one transaction. A number with nothing to review is `NotFound` and
    /// nothing is written (no consent event is logged for a number the list did not show).
    pub fn review_possible_opt_out(
        &self,
        number: &str,
        decision: &ReviewDecision,
        now: i64,
    ) -> Result<Reviewed> {
        let op = "reviewing possible opt-outs";
        self.write(op, |tx| {
            let messages = tx
                .execute(
                    &format!(
                        "UPDATE messages_in AS m SET reviewed_at = ?2
                         WHERE m.thread = ?1 AND {UNREVIEWED}"
                    ),
                    params![number, now],
                )
                .ctx(op)?;
            if messages == 0 {
                return Err(StoreError::NotFound {
                    what: "unreviewed possible opt-out from",
                    key: number.to_string(),
                });
            }
            let mut out = Reviewed {
                messages,
                ..Reviewed::default()
            };
            if let ReviewDecision::OptOut { confirmation } = decision {
                out.cancelled = record_consent_in(
                    tx,
                    number,
                    ConsentEvent::OptedOut,
                    Some("possible opt-out reviewed"),
                    ConsentSource::Cli,
                    now,
                )?;
                if let Some(row) = confirmation {
                    out.confirmation = Some(enqueue_in(tx, row)?);
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Repeated inside: clippy allows `unwrap` in test helpers only under a visible `cfg(test)`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{InboundEffect, MessageKind, NewSingle, OutboxState};

    fn flagged(s: &Store, from: &str, text: &str, at: i64) -> i64 {
        let id = s
            .store_single(&NewSingle {
                modem: "m0".into(),
                sender: from.into(),
                text: text.into(),
                scts: format!("t{at}"),
                pdu_hex: None,
                received_at: at,
            })
            .unwrap()
            .id();
        s.apply_inbound(id, &[InboundEffect::Flag(FLAG_POSSIBLE_OPT_OUT.into())], at)
            .unwrap();
        id
    }

    #[test]
    fn lists_per_number_and_keep_takes_a_number_off() {
        let s = fresh();
        flagged(&s, "+15550001", "stop please", 10);
        let last = flagged(&s, "+15550001", "please stop!!", 30);
        flagged(&s, "+15550002", "unsubscribe", 20);
        let list = s.possible_opt_outs().unwrap();
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(
            (list[0].number.as_str(), list[0].messages),
            ("+15550002", 1)
        );
        assert_eq!(
            (
                list[1].number.as_str(),
                list[1].messages,
                list[1].last_id,
                list[1].last_text.as_str(),
                list[1].last_at
            ),
            ("+15550001", 2, last, "please stop!!", 30)
        );
        let r = s
            .review_possible_opt_out("+15550001", &ReviewDecision::Keep, 40)
            .unwrap();
        assert_eq!((r.messages, r.cancelled, r.confirmation), (2, 0, None));
        assert!(!s.opted_out("+15550001").unwrap());
        assert_eq!(s.possible_opt_outs().unwrap().len(), 1);
        // Reviewed already: nothing to decide, nothing written.
        assert!(matches!(
            s.review_possible_opt_out("+15550001", &ReviewDecision::Keep, 50),
            Err(StoreError::NotFound { .. })
        ));
        assert!(s.consent_history("+15550001").unwrap().is_empty());
    }

    #[test]
    fn opt_out_suppresses_cancels_and_confirms_in_one_step() {
        let s = fresh();
        let queued = s
            .enqueue(&NewOutbox::new("+15550001", "news", MessageKind::Direct, 5))
            .unwrap();
        flagged(&s, "+15550001", "stop please", 10);
        let confirmation = NewOutbox::new("+15550001", "bye", MessageKind::Compliance, 20);
        let r = s
            .review_possible_opt_out(
                "+15550001",
                &ReviewDecision::OptOut {
                    confirmation: Some(confirmation),
                },
                20,
            )
            .unwrap();
        assert_eq!((r.messages, r.cancelled), (1, 1));
        assert!(s.opted_out("+15550001").unwrap());
        assert_eq!(s.outbox_row(queued).unwrap().state, OutboxState::Cancelled);
        let confirm = s.outbox_row(r.confirmation.unwrap()).unwrap();
        assert_eq!(
            (confirm.text.as_str(), confirm.state),
            ("bye", OutboxState::Queued)
        );
        let history = s.consent_history("+15550001").unwrap();
        assert_eq!(
            (history[0].event, history[0].source),
            (ConsentEvent::OptedOut, ConsentSource::Cli)
        );
        assert!(s.possible_opt_outs().unwrap().is_empty());
    }

    #[test]
    fn a_later_stop_or_start_settles_the_question() {
        let s = fresh();
        flagged(&s, "+15550001", "stop please", 10);
        flagged(&s, "+15550002", "no more texts", 10);
        s.record_consent(
            "+15550001",
            ConsentEvent::OptedOut,
            None,
            ConsentSource::Sms,
            11,
        )
        .unwrap();
        s.record_consent(
            "+15550002",
            ConsentEvent::OptedIn,
            None,
            ConsentSource::Sms,
            12,
        )
        .unwrap();
        assert!(s.possible_opt_outs().unwrap().is_empty());
        // A new flagged text after the START is a new question.
        flagged(&s, "+15550002", "stop it", 13);
        let list = s.possible_opt_outs().unwrap();
        assert_eq!((list.len(), list[0].messages), (1, 1));
    }
}
}
