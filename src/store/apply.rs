//! Applying the community step of one inbound message atomically: every effect (a new member,
//! a consent change, field updates, the automatic replies, the message's flag and read mark) and
//! the message's `processed_at` mark commit in one transaction.
//!
//! Why: the inbound pipeline commits a message first (so the modem may delete the SIM copy) and
//! runs the community step after. Before this module the step's writes were separate
//! transactions, so a crash in between could record a STOP without its confirmation, or create a
//! member without their welcome, and nothing noticed. Now a message is either unprocessed (the
//! next start re-runs the step: [`Store::unprocessed_messages`]) or processed with all of its
//! effects; never half of them.
//!
//! This module only sequences writes that the member, outbox and inbound modules define
//! (`*_in` functions taking a transaction); it owns no SQL of its own beyond the message row's
//! flag, read and processed columns.

use crate::store::db::{Conn, params};

use super::inbound::{MESSAGE_COLUMNS, message_from};
use super::members::{add_member_in, record_consent_in, update_member_in};
use super::outbox::enqueue_in;
use super::{
    ConsentEvent, ConsentSource, InboundMessage, MemberUpdate, NewMember, NewOutbox, Result,
    SqlContext, Store, StoreError,
};

/// One write of the community step, in the order the step decided it.
#[derive(Debug, Clone)]
pub enum InboundEffect {
    /// Add a member; a member who already exists is left as they are (not an error).
    AddMember {
        member: NewMember,
        source: ConsentSource,
    },
    /// Record a consent event (see [`Store::record_consent`]).
    Consent {
        number: String,
        event: ConsentEvent,
        detail: Option<String>,
        source: ConsentSource,
    },
    /// Update a member's fields.
    UpdateMember {
        number: String,
        update: MemberUpdate,
    },
    /// Enqueue an automatic reply (see [`Store::enqueue`]).
    Enqueue(NewOutbox),
    /// Set the message's flag (e.g. `possible_opt_out`).
    Flag(String),
    /// Mark the message read (handled automatically: nothing for the owner to read).
    MarkRead,
}

/// What [`Store::apply_inbound`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// False when the message had already been processed: nothing was written.
    pub applied: bool,
    /// Outbox ids of the enqueued replies, in order.
    pub enqueued: Vec<i64>,
    /// Queued messages cancelled by an opt-out.
    pub cancelled: usize,
    /// Whether an `AddMember` found the member already there.
    pub member_existed: bool,
}

impl Store {
    /// Applies `effects` for inbound message `message_id` and marks it processed at `now`, all in
    /// one transaction. A message already processed is left alone (`applied: false`), so running
    /// the step twice for one message (a replay racing a redelivery) cannot double its replies.
    pub fn apply_inbound(
        &self,
        message_id: i64,
        effects: &[InboundEffect],
        now: i64,
    ) -> Result<Applied> {
        self.write("applying an inbound message", |tx| {
            let processed: Option<Option<i64>> = tx
                .query_row(
                    "SELECT processed_at FROM messages_in WHERE id = ?1",
                    params![message_id],
                    |r| r.get(0),
                )
                .map(Some)
                .or_else(|e| match e {
                    crate::store::db::DbError::NoRows => Ok(None),
                    e => Err(e),
                })
                .ctx("applying an inbound message")?;
            match processed {
                None => {
                    return Err(StoreError::NotFound {
                        what: "inbound message",
                        key: message_id.to_string(),
                    });
                }
                Some(Some(_)) => return Ok(Applied::default()),
                Some(None) => {}
            }
            let mut out = Applied {
                applied: true,
                ..Applied::default()
            };
            for effect in effects {
                apply_one(tx, message_id, effect, now, &mut out)?;
            }
            tx.execute(
                "UPDATE messages_in SET processed_at = ?2 WHERE id = ?1",
                params![message_id, now],
            )
            .ctx("marking a message processed")?;
            Ok(out)
        })
    }

    /// Messages stored but never processed (a crash came between the two), oldest first. Only
    /// messages the community step runs for are listed: from an international number, and not
    /// kept as undecodable or binary.
    pub fn unprocessed_messages(&self) -> Result<Vec<InboundMessage>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages_in
                 WHERE processed_at IS NULL AND sender LIKE '+%'
                   AND (flag IS NULL OR flag NOT IN ('undecodable', 'binary'))
                 ORDER BY id"
            ))
            .ctx("listing unprocessed messages")?;
        st.query_map(params![], message_from)
            .ctx("listing unprocessed messages")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("listing unprocessed messages")
    }
}

fn apply_one(
    tx: &Conn,
    message_id: i64,
    effect: &InboundEffect,
    now: i64,
    out: &mut Applied,
) -> Result<()> {
    match effect {
        InboundEffect::AddMember { member, source } => {
            match add_member_in(tx, member, *source, now) {
                Ok(()) => {}
                Err(StoreError::DuplicateMember { .. }) => out.member_existed = true,
                Err(e) => return Err(e),
            }
        }
        InboundEffect::Consent {
            number,
            event,
            detail,
            source,
        } => {
            out.cancelled +=
                record_consent_in(tx, number, *event, detail.as_deref(), *source, now)?;
        }
        InboundEffect::UpdateMember { number, update } => {
            update_member_in(tx, number, update, now)?;
        }
        InboundEffect::Enqueue(row) => out.enqueued.push(enqueue_in(tx, row)?),
        InboundEffect::Flag(flag) => {
            tx.execute(
                "UPDATE messages_in SET flag = ?2 WHERE id = ?1",
                params![message_id, flag],
            )
            .ctx("flagging a message")?;
        }
        InboundEffect::MarkRead => {
            tx.execute(
                "UPDATE messages_in SET read = 1 WHERE id = ?1",
                params![message_id],
            )
            .ctx("marking a message read")?;
        }
    }
    Ok(())
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Repeated inside: clippy allows `unwrap` in test helpers only under a visible `cfg(test)`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemberStatus, MessageKind, NewSingle, OutboxState, SingleOutcome};

    fn stored(s: &Store, from: &str, text: &str, at: i64) -> i64 {
        match s
            .store_single(&NewSingle {
                modem: "m1".into(),
                sender: from.into(),
                text: text.into(),
                scts: format!("2026-11-25T10:00:{:02}Z", at % 60),
                pdu_hex: None,
                received_at: at,
            })
            .unwrap()
        {
            SingleOutcome::Inserted(id) => id,
            SingleOutcome::Duplicate(id) => panic!("duplicate {id}"),
        }
    }

    fn join_effects(from: &str, now: i64) -> Vec<InboundEffect> {
        vec![
            InboundEffect::AddMember {
                member: NewMember {
                    number: from.into(),
                    status: Some(MemberStatus::Active),
                    joined_at: now,
                    ..NewMember::default()
                },
                source: ConsentSource::Sms,
            },
            InboundEffect::Enqueue(NewOutbox::new(
                from,
                "welcome",
                MessageKind::Compliance,
                now,
            )),
            InboundEffect::MarkRead,
        ]
    }

    #[test]
    fn a_stored_message_is_unprocessed_until_its_effects_commit() {
        let s = fresh();
        let id = stored(&s, "+15550001", "JOIN", 1_000);
        let pending = s.unprocessed_messages().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, id);

        let applied = s
            .apply_inbound(id, &join_effects("+15550001", 2_000), 2_000)
            .unwrap();
        assert!(applied.applied);
        assert_eq!(applied.enqueued.len(), 1);
        assert!(s.unprocessed_messages().unwrap().is_empty());
        assert!(s.member("+15550001").unwrap().is_some());
        assert!(s.inbound_message(id).unwrap().read);
        let row = s.outbox_row(applied.enqueued[0]).unwrap();
        assert_eq!(row.state, OutboxState::Queued);
    }

    #[test]
    fn applying_twice_writes_once() {
        let s = fresh();
        let id = stored(&s, "+15550001", "JOIN", 1_000);
        s.apply_inbound(id, &join_effects("+15550001", 2_000), 2_000)
            .unwrap();
        let again = s
            .apply_inbound(id, &join_effects("+15550001", 3_000), 3_000)
            .unwrap();
        assert_eq!(again, Applied::default());
        assert_eq!(s.state_counts().unwrap().total(), 1);
    }

    #[test]
    fn a_failing_effect_rolls_back_every_effect_and_leaves_the_message_unprocessed() {
        let s = fresh();
        let id = stored(&s, "+15550001", "NAME Ann", 1_000);
        let effects = vec![
            InboundEffect::Enqueue(NewOutbox::new("+15550001", "hi", MessageKind::Reply, 2_000)),
            // No such member: update_member fails with NotFound.
            InboundEffect::UpdateMember {
                number: "+15550001".into(),
                update: MemberUpdate {
                    name: Some(Some("Ann".into())),
                    ..MemberUpdate::default()
                },
            },
        ];
        assert!(matches!(
            s.apply_inbound(id, &effects, 2_000),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(
            s.state_counts().unwrap().total(),
            0,
            "the reply was rolled back"
        );
        assert_eq!(s.unprocessed_messages().unwrap().len(), 1);
    }

    #[test]
    fn an_existing_member_is_kept_and_reported() {
        let s = fresh();
        let id = stored(&s, "+15550001", "JOIN", 1_000);
        s.add_member(
            &NewMember {
                number: "+15550001".into(),
                name: Some("Ann".into()),
                joined_at: 500,
                ..NewMember::default()
            },
            ConsentSource::Cli,
            500,
        )
        .unwrap();
        let applied = s
            .apply_inbound(id, &join_effects("+15550001", 2_000), 2_000)
            .unwrap();
        assert!(applied.member_existed);
        assert_eq!(applied.enqueued.len(), 1);
        assert_eq!(
            s.member("+15550001").unwrap().unwrap().name.as_deref(),
            Some("Ann")
        );
    }

    #[test]
    fn an_opt_out_cancels_queued_bulk_in_the_same_transaction() {
        let s = fresh();
        s.enqueue(&NewOutbox::new("+15550001", "news", MessageKind::Bulk, 500))
            .unwrap();
        let id = stored(&s, "+15550001", "STOP", 1_000);
        let applied = s
            .apply_inbound(
                id,
                &[
                    InboundEffect::Consent {
                        number: "+15550001".into(),
                        event: ConsentEvent::OptedOut,
                        detail: Some("STOP".into()),
                        source: ConsentSource::Sms,
                    },
                    InboundEffect::Enqueue(NewOutbox::new(
                        "+15550001",
                        "You are unsubscribed",
                        MessageKind::Compliance,
                        2_000,
                    )),
                ],
                2_000,
            )
            .unwrap();
        assert_eq!(applied.cancelled, 1);
        assert_eq!(applied.enqueued.len(), 1);
        assert!(s.opted_out("+15550001").unwrap());
        assert_eq!(
            s.outbox_row(applied.enqueued[0]).unwrap().state,
            OutboxState::Queued,
            "the confirmation itself is not suppressed"
        );
    }

    #[test]
    fn national_senders_and_flagged_messages_are_not_replayed() {
        let s = fresh();
        stored(&s, "BANK", "Your code", 1_000);
        let flagged = stored(&s, "+15550002", "[binary message, 4 octets]", 1_001);
        s.set_message_flag(flagged, Some("binary")).unwrap();
        assert!(s.unprocessed_messages().unwrap().is_empty());
    }

    #[test]
    fn an_unknown_message_is_not_found() {
        let s = fresh();
        assert!(matches!(
            s.apply_inbound(42, &[], 1),
            Err(StoreError::NotFound { .. })
        ));
    }
}
}
