//! The one claim, and what a live send loop does with a claimed row besides sending it: hand it
//! back without counting the attempt (quiet hours, a recipient cap, a modem that could not send),
//! `claimed → in_doubt` and `claimed → expired`, the next instant a queued row becomes due (an
//! idle loop sleeps until then), and moving a member's home after a failover.
//!
//! [`Store::claim_next_routed`] is the scheduling decision of the whole gateway: which row goes
//! next on which modem. Its order (priority, then due time, then age) is the order of the partial
//! index `outbox_due`, which the query pins with `INDEXED BY`, so a claim walks the index instead
//! of sorting the queue, and preparing the statement fails loudly if a schema change ever made
//! that impossible. Sticky sender and failover are in the same query: a row preferring another
//! modem is taken only when that modem is outside the running pool, disabled in the `modems`
//! table, or in [`ClaimRoute::takeover`] (the runner's pool state says it has been down long
//! enough). Lists are bound as one JSON array each (`json_each`), so the statement text never
//! changes and stays in the statement cache.
//!
//! The rules a candidate must pass before it is taken live in one function,
//! [`screen_candidate`]: an expired row becomes `expired`, a row to a suppressed number becomes
//! `cancelled` (`opted_out`; STOP is absolute also here); neither is ever returned. Two claimers
//! never get the same row: the claim is one write transaction (`BEGIN IMMEDIATE` on SQLite, the
//! one write lock every PostgreSQL writer takes first: store/db.rs, so sites sharing one database
//! claim one at a time) and the flip is guarded by `state = 'queued'`.

use crate::store::db::{Conn, OptionalExtension, params};

use super::outcomes::{SentMark, sent_mark_in};
use super::{OutboxPart, OutboxRow, OutboxState, outbox_parts_in, outbox_row_in, transition};
use crate::model::MessageKind;
use crate::store::{Result, SqlContext, Store, StoreError};

/// Which rows a modem may claim, beyond rows without a preference and rows preferring it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimRoute {
    /// Every modem of the running pool. A row preferring a modem outside this list (or one
    /// disabled in the `modems` table) is a soft preference: any modem may take it.
    pub pool: Vec<String>,
    /// Pool modems whose rows this modem may take now (their home has been down long enough:
    /// failover).
    pub takeover: Vec<String>,
}

/// The best due row for modem `?2` at `?1`, given the pool `?3` and the takeover list `?4`.
pub(super) const ROUTED_CANDIDATE_SQL: &str = "
    SELECT o.id, o.kind, o.expires_at, o.created_at,
           (SELECT since FROM opt_outs s WHERE s.number = o.to_number)
    FROM outbox o INDEXED BY outbox_due
    WHERE o.state = 'queued' AND o.held = 0 AND o.not_before <= ?1
      AND (o.modem_pref IS NULL OR o.modem_pref = ?2
           OR o.modem_pref IN (SELECT value FROM json_each(?4))
           OR o.modem_pref NOT IN (SELECT value FROM json_each(?3))
           OR EXISTS (SELECT 1 FROM modems m WHERE m.name = o.modem_pref AND m.enabled = 0))
    ORDER BY o.priority DESC, o.not_before, o.id
    LIMIT 1";

/// A claimed row with what the send loop reads before its first submit, from the claim's own
/// transaction: each read on its own would be another round trip to the blocking pool per SMS
/// (docs/daemon.md, "Footprint").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub row: OutboxRow,
    /// Its parts already recorded by an earlier, interrupted attempt.
    pub parts: Vec<OutboxPart>,
    /// The recipient member's time zone now (`None`: not a member, or no zone of their own):
    /// what quiet hours are judged in. The row's `zone` is the one at enqueue, for the ETA.
    pub zone: Option<String>,
}

fn claimed_in(tx: &Conn, id: i64) -> Result<Claimed> {
    let row = outbox_row_in(tx, id)?;
    let zone = tx
        .query_row_cached(
            "SELECT time_zone FROM members WHERE number = ?1",
            params![row.to_number],
            |r| r.get(0),
        )
        .optional()
        .ctx("reading the recipient's time zone")?
        .flatten();
    Ok(Claimed {
        parts: outbox_parts_in(tx, id)?,
        row,
        zone,
    })
}

fn json_list(names: &[String]) -> Result<String> {
    serde_json::to_string(names).map_err(|e| StoreError::InvalidArgument(e.to_string()))
}

impl Store {
    /// Atomically claims the best due row `modem` may send under `route`: highest priority, then
    /// earliest `not_before`, then oldest. Expired rows become `expired` and rows to suppressed
    /// numbers `cancelled` (`opted_out`) on the way; the returned row is `claimed` by `modem`
    /// with its attempt counted. With [`ClaimRoute::default`] (no pool known) every preference is
    /// soft and any modem may take any due row.
    pub fn claim_next_routed(
        &self,
        modem: &str,
        now: i64,
        route: &ClaimRoute,
    ) -> Result<Option<OutboxRow>> {
        let pool = json_list(&route.pool)?;
        let takeover = json_list(&route.takeover)?;
        let claimed = self.write("claiming (routed)", |tx| {
            claim_routed_in(tx, modem, now, &pool, &takeover)
        })?;
        // The row is ours now (claimed by `modem`); nobody else changes it, so reading it after
        // the commit is consistent.
        claimed.map(|id| self.outbox_row(id)).transpose()
    }

    /// [`Store::claim_next_routed`], the claimed row's parts already recorded (by an earlier,
    /// interrupted attempt: [`Store::outbox_parts`]) and the recipient's time zone in one
    /// transaction and one call ([`Claimed`]): the send loop needs them before its first
    /// submit, and each call is a round trip to the blocking pool (docs/daemon.md, "Footprint").
    /// The claim is committed when this returns, and on disk with the caller's next synced write
    /// (the submit record, or whatever settles the row).
    pub fn claim_next_with_parts(
        &self,
        modem: &str,
        now: i64,
        route: &ClaimRoute,
    ) -> Result<Option<Claimed>> {
        let pool = json_list(&route.pool)?;
        let takeover = json_list(&route.takeover)?;
        // A claim is settled next by a synced write (`write_sync_later`); no claim, no need.
        self.write_sync_later(
            "claiming (routed)",
            |tx| {
                let Some(id) = claim_routed_in(tx, modem, now, &pool, &takeover)? else {
                    return Ok(None);
                };
                claimed_in(tx, id).map(Some)
            },
            Option::is_some,
        )
    }

    /// The previous row's `sent` mark (with its last part's record) and
    /// [`Store::claim_next_with_parts`] in one transaction and one call, for a send loop that
    /// goes on claiming as soon as a row is done: one commit and one round trip to the blocking
    /// pool fewer per SMS. The mark is committed with the claim, and on disk before the next
    /// row's first submit (with its synced submit record), or at once when nothing was claimed;
    /// if this fails nothing is written (the caller writes the mark alone). The row's state
    /// after the mark, and the claim.
    pub fn mark_sent_and_claim_next(
        &self,
        mark: &SentMark,
        modem: &str,
        now: i64,
        route: &ClaimRoute,
    ) -> Result<(OutboxState, Option<Claimed>)> {
        let pool = json_list(&route.pool)?;
        let takeover = json_list(&route.takeover)?;
        // With a claim, the claimed row's next (synced) write carries the mark to disk too
        // (`write_sync_later`); without one, the mark is synced now.
        self.write_sync_later(
            "marking sent and claiming",
            |tx| {
                let state = sent_mark_in(tx, mark)?;
                let Some(id) = claim_routed_in(tx, modem, now, &pool, &takeover)? else {
                    return Ok((state, None));
                };
                Ok((state, Some(claimed_in(tx, id)?)))
            },
            |(_, claimed)| claimed.is_some(),
        )
    }

    /// claimed → queued without counting the attempt: the claim said nothing about the message
    /// (quiet hours, a recipient cap, a modem that could not send). Due again at `not_before`;
    /// `reason` (if any) replaces `last_error`. Recorded parts are kept.
    pub fn release_claim(&self, id: i64, not_before: i64, reason: Option<&str>) -> Result<()> {
        self.write("releasing a claim", |tx| {
            transition(
                tx,
                id,
                "release the claim",
                "UPDATE outbox SET state = 'queued', not_before = ?2,
                                   last_error = coalesce(?3, last_error),
                                   attempts = max(attempts - 1, 0),
                                   claimed_by = NULL, claimed_at = NULL
                 WHERE id = ?1 AND state = 'claimed'",
                params![id, not_before, reason],
            )
        })
    }

    /// claimed → in_doubt: the PDU may have reached the network but the modem never confirmed it
    /// (it vanished or stalled after the submit). A person, or the in-doubt policy, decides.
    pub fn mark_in_doubt(&self, id: i64, reason: &str, now: i64) -> Result<()> {
        self.write("marking in doubt", |tx| {
            transition(
                tx,
                id,
                "mark in doubt",
                "UPDATE outbox SET state = 'in_doubt', last_error = ?2, claimed_at = ?3
                 WHERE id = ?1 AND state = 'claimed'",
                params![id, reason, now],
            )
        })
    }

    /// claimed → expired: the TTL ends before the message could go out (quiet hours or limits
    /// would push it past its `expires_at`).
    pub fn expire_claimed(&self, id: i64, now: i64) -> Result<()> {
        self.write("expiring a claimed row", |tx| {
            transition(
                tx,
                id,
                "expire",
                "UPDATE outbox SET state = 'expired', last_error = 'ttl', finished_at = ?2
                 WHERE id = ?1 AND state = 'claimed'",
                params![id, now],
            )
        })
    }

    /// The earliest `not_before` after `now` among queued, unheld rows: when the next scheduled,
    /// deferred or backed-off message becomes due (an idle sender sleeps until then).
    pub fn next_due_after(&self, now: i64) -> Result<Option<i64>> {
        self.conn()
            .prepare_cached(
                "SELECT min(not_before) FROM outbox
                 WHERE state = 'queued' AND held = 0 AND not_before > ?1",
            )
            .and_then(|mut st| st.query_row(params![now], |r| r.get(0)))
            .ctx("reading the next due time")
    }

    /// Makes `modem` the home of `number` after a failover (`move_home_on_failover`): the member's
    /// `home_modem` (if a member) and the preference of their rows still queued for `from`.
    /// Returns how many queued rows moved.
    pub fn move_home(&self, number: &str, from: &str, modem: &str, now: i64) -> Result<usize> {
        self.write("moving a member's home modem", |tx| {
            tx.exec_cached(
                "UPDATE members SET home_modem = ?2, updated_at = ?3 WHERE number = ?1",
                params![number, modem, now],
            )
            .ctx("moving a member's home modem")?;
            tx.exec_cached(
                "UPDATE outbox SET modem_pref = ?3
                 WHERE to_number = ?1 AND modem_pref = ?2 AND state IN ('queued', 'claimed')",
                params![number, from, modem],
            )
            .ctx("moving a member's home modem")
        })
    }
}

/// The claim itself, inside the caller's transaction: the best due row `modem` may take (pool
/// and takeover lists as JSON arrays), screened and flipped to `claimed`; its id.
fn claim_routed_in(
    tx: &Conn,
    modem: &str,
    now: i64,
    pool: &str,
    takeover: &str,
) -> Result<Option<i64>> {
    loop {
        let candidate = tx
            .prepare_cached(ROUTED_CANDIDATE_SQL)
            .and_then(|mut st| {
                st.query_row(params![now, modem, pool, takeover], |r| {
                    Ok((
                        r.get::<i64>(0)?,
                        r.get::<MessageKind>(1)?,
                        r.get::<Option<i64>>(2)?,
                        r.get::<i64>(3)?,
                        r.get::<Option<i64>>(4)?,
                    ))
                })
                .optional()
            })
            .ctx("claiming (routed)")?;
        let Some((id, kind, expires_at, created_at, opted_out_since)) = candidate else {
            return Ok(None);
        };
        if !screen_candidate(tx, id, kind, expires_at, created_at, opted_out_since, now)? {
            continue;
        }
        let n = tx
            .exec_cached(
                "UPDATE outbox SET state = 'claimed', claimed_by = ?2, claimed_at = ?3,
                                   attempts = attempts + 1
                 WHERE id = ?1 AND state = 'queued'",
                params![id, modem, now],
            )
            .ctx("claiming (routed)")?;
        if n == 1 {
            return Ok(Some(id));
        }
    }
}

/// The rules a claim applies to its candidate before taking it: an expired row becomes
/// `expired`, and a row to a suppressed number becomes `cancelled` (`opted_out`) — only a
/// compliance text written at or after the opt-out (the STOP confirmation itself) may still go.
/// True when the row may be claimed.
fn screen_candidate(
    tx: &Conn,
    id: i64,
    kind: MessageKind,
    expires_at: Option<i64>,
    created_at: i64,
    opted_out_since: Option<i64>,
    now: i64,
) -> Result<bool> {
    if expires_at.is_some_and(|e| e <= now) {
        tx.exec_cached(
            "UPDATE outbox SET state = 'expired', last_error = 'ttl', finished_at = ?2
             WHERE id = ?1 AND state = 'queued'",
            params![id, now],
        )
        .ctx("expiring")?;
        return Ok(false);
    }
    let blocked = match opted_out_since {
        None => false,
        Some(since) => kind != MessageKind::Compliance || created_at < since,
    };
    if blocked {
        tx.exec_cached(
            "UPDATE outbox SET state = 'cancelled', last_error = 'opted_out', finished_at = ?2
             WHERE id = ?1 AND state = 'queued'",
            params![id, now],
        )
        .ctx("cancelling an opted-out row")?;
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Again on the module itself: the attribute above is gone once the macro has expanded, and
// clippy's allow-unwrap-in-tests recognises a test module by it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        ClaimRoute, ConsentEvent, ConsentSource, ModemIdentity, NewMember, NewOutbox, OutboxState,
        RecoveryPolicy,
    };

    const NOW: i64 = 1_700_000_000_000;

    fn store() -> Store {
        fresh()
    }

    fn route(pool: &[&str], takeover: &[&str]) -> ClaimRoute {
        ClaimRoute {
            pool: pool.iter().map(|s| s.to_string()).collect(),
            takeover: takeover.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn row(to: &str, kind: MessageKind, pref: Option<&str>) -> NewOutbox {
        NewOutbox {
            modem_pref: pref.map(str::to_string),
            ..NewOutbox::new(to, "hi", kind, NOW)
        }
    }

    #[test]
    fn sticky_rows_go_only_to_their_home_unless_taken_over() {
        let s = store();
        let a = s
            .enqueue(&row("+1555", MessageKind::Bulk, Some("A")))
            .unwrap();
        let r = route(&["A", "B"], &[]);
        assert_eq!(s.claim_next_routed("B", NOW, &r).unwrap(), None);
        let got = s
            .claim_next_routed("B", NOW, &route(&["A", "B"], &["A"]))
            .unwrap()
            .unwrap();
        assert_eq!((got.id, got.state), (a, OutboxState::Claimed));
        assert_eq!(got.claimed_by.as_deref(), Some("B"));
        assert_eq!(got.attempts, 1);
    }

    #[test]
    fn unknown_or_disabled_home_is_a_soft_preference() {
        let s = store();
        let a = s
            .enqueue(&row("+1555", MessageKind::Bulk, Some("gone")))
            .unwrap();
        let got = s
            .claim_next_routed("B", NOW, &route(&["A", "B"], &[]))
            .unwrap();
        assert_eq!(got.map(|r| r.id), Some(a));

        let b = s
            .enqueue(&row("+1556", MessageKind::Bulk, Some("A")))
            .unwrap();
        s.upsert_modem(
            &ModemIdentity {
                name: "A".into(),
                ..ModemIdentity::default()
            },
            NOW,
        )
        .unwrap();
        assert_eq!(
            s.claim_next_routed("B", NOW, &route(&["A", "B"], &[]))
                .unwrap(),
            None
        );
        s.set_modem_enabled("A", false, Some("admin"), NOW).unwrap();
        let got = s
            .claim_next_routed("B", NOW, &route(&["A", "B"], &[]))
            .unwrap();
        assert_eq!(got.map(|r| r.id), Some(b));
    }

    #[test]
    fn priority_then_due_time_then_age_and_not_before_future() {
        let s = store();
        let bulk = s.enqueue(&row("+1", MessageKind::Bulk, None)).unwrap();
        let later = s
            .enqueue(&NewOutbox {
                not_before: NOW + 10,
                ..row("+2", MessageKind::Compliance, None)
            })
            .unwrap();
        let reply = s.enqueue(&row("+3", MessageKind::Reply, None)).unwrap();
        let r = route(&["A"], &[]);
        let order: Vec<i64> = std::iter::from_fn(|| s.claim_next_routed("A", NOW, &r).unwrap())
            .map(|r| r.id)
            .collect();
        assert_eq!(order, vec![reply, bulk]);
        assert_eq!(s.next_due_after(NOW).unwrap(), Some(NOW + 10));
        let got = s.claim_next_routed("A", NOW + 10, &r).unwrap();
        assert_eq!(got.map(|r| r.id), Some(later));
        assert_eq!(s.next_due_after(NOW).unwrap(), None);
    }

    #[test]
    fn opted_out_and_expired_rows_are_never_claimed() {
        let s = store();
        let stale = s
            .enqueue(&NewOutbox {
                expires_at: Some(NOW),
                ..row("+1", MessageKind::Bulk, None)
            })
            .unwrap();
        let out = s.enqueue(&row("+2", MessageKind::Bulk, None)).unwrap();
        s.record_consent("+2", ConsentEvent::OptedOut, None, ConsentSource::Sms, NOW)
            .unwrap();
        assert_eq!(
            s.claim_next_routed("A", NOW, &route(&["A"], &[])).unwrap(),
            None
        );
        assert_eq!(s.outbox_row(stale).unwrap().state, OutboxState::Expired);
        assert_eq!(s.outbox_row(out).unwrap().state, OutboxState::Cancelled);
    }

    #[test]
    fn release_refunds_the_attempt_and_guards_the_state() {
        let s = store();
        let id = s.enqueue(&row("+1", MessageKind::Bulk, None)).unwrap();
        let r = route(&["A"], &[]);
        s.claim_next_routed("A", NOW, &r).unwrap().unwrap();
        s.release_claim(id, NOW + 500, Some("quiet hours")).unwrap();
        let got = s.outbox_row(id).unwrap();
        assert_eq!(
            (got.state, got.attempts, got.not_before),
            (OutboxState::Queued, 0, NOW + 500)
        );
        assert_eq!(got.last_error.as_deref(), Some("quiet hours"));
        assert_eq!(got.claimed_by, None);
        assert!(matches!(
            s.release_claim(id, NOW, None),
            Err(StoreError::InvalidTransition { .. })
        ));
        assert!(matches!(
            s.release_claim(999, NOW, None),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn in_doubt_and_expire_from_claimed_only() {
        let s = store();
        let a = s.enqueue(&row("+1", MessageKind::Bulk, None)).unwrap();
        let b = s.enqueue(&row("+2", MessageKind::Bulk, None)).unwrap();
        let r = route(&["A"], &[]);
        assert!(s.mark_in_doubt(a, "x", NOW).is_err());
        s.claim_next_routed("A", NOW, &r).unwrap().unwrap();
        s.claim_next_routed("A", NOW, &r).unwrap().unwrap();
        s.mark_in_doubt(a, "modem vanished after submit", NOW)
            .unwrap();
        s.expire_claimed(b, NOW).unwrap();
        let ra = s.outbox_row(a).unwrap();
        assert_eq!(ra.state, OutboxState::InDoubt);
        assert_eq!(
            ra.last_error.as_deref(),
            Some("modem vanished after submit")
        );
        assert_eq!(s.outbox_row(b).unwrap().state, OutboxState::Expired);
        // An in-doubt row is not touched by a later restart recovery.
        let rep = s
            .recover_after_restart(&RecoveryPolicy::default(), NOW)
            .unwrap();
        assert_eq!(rep.found_claimed, 0);
    }

    #[test]
    fn message_times_count_messages_not_parts_and_skip_the_current_row() {
        let s = store();
        let r = route(&["A"], &[]);
        let mut ids = vec![];
        for (i, parts) in [(0, 2u8), (1, 1)] {
            let id = s.enqueue(&row("+1", MessageKind::Bulk, None)).unwrap();
            s.claim_next_routed("A", NOW, &r).unwrap().unwrap();
            for p in 1..=parts {
                s.record_part_sent(id, p, parts, p, NOW + i * 100 + i64::from(p))
                    .unwrap();
            }
            s.mark_sent(id, NOW).unwrap();
            ids.push(id);
        }
        assert_eq!(
            s.message_times_to_since("+1", NOW, None).unwrap(),
            vec![NOW + 1, NOW + 101]
        );
        assert_eq!(
            s.message_times_to_since("+1", NOW, Some(ids[0])).unwrap(),
            vec![NOW + 101]
        );
        assert_eq!(
            s.message_times_to_since("+1", NOW + 50, None).unwrap(),
            vec![NOW + 101]
        );
        assert_eq!(
            s.all_send_times_since(NOW).unwrap(),
            vec![NOW + 1, NOW + 2, NOW + 101]
        );
    }

    #[test]
    fn move_home_updates_member_and_queued_rows() {
        let s = store();
        s.add_member(
            &NewMember {
                number: "+1".into(),
                home_modem: Some("A".into()),
                ..NewMember::default()
            },
            ConsentSource::Cli,
            NOW,
        )
        .unwrap();
        let q = s.enqueue(&row("+1", MessageKind::Bulk, Some("A"))).unwrap();
        let other = s.enqueue(&row("+2", MessageKind::Bulk, Some("A"))).unwrap();
        assert_eq!(s.move_home("+1", "A", "B", NOW).unwrap(), 1);
        assert_eq!(
            s.member("+1").unwrap().unwrap().home_modem.as_deref(),
            Some("B")
        );
        assert_eq!(s.outbox_row(q).unwrap().modem_pref.as_deref(), Some("B"));
        assert_eq!(
            s.outbox_row(other).unwrap().modem_pref.as_deref(),
            Some("A")
        );
        // Without a pool every preference is soft: B may take a row still preferring A.
        assert!(
            s.claim_next_routed("B", NOW, &ClaimRoute::default())
                .unwrap()
                .is_some()
        );
    }
}
}
