//! The owner channel's rows (migration 0011): members' short references and the broadcasts an
//! owner asked for by SMS that wait for their `YES <code>` (docs/community.md, "Owners on their
//! own phone").
//!
//! Only SQL lives here; the references and codes are drawn by the daemon and their meaning is the
//! community layer's. Choices worth knowing: one live reference per member, refreshed by every
//! forward, so a chatty member does not fill the table and the reference an owner saw last keeps
//! working; expired rows are deleted on the next write. A pending confirmation is closed exactly
//! once, in the transaction that reads it (`confirmed`, `wrong_code`, `expired`, or `replaced`
//! by a newer `BROADCAST` of the same owner), so a code is single-use even when two texts race,
//! and a wrong code burns the pending broadcast: guessing needs a fresh `BROADCAST` (which the
//! real owner's phone is told about) for every try. The code is compared in constant time.

use crate::store::db::{OptionalExtension, params};
use subtle::ConstantTimeEq;

use super::{Result, SqlContext, Store};

/// A broadcast an owner asked for, waiting for (or just given) its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBroadcast {
    pub id: i64,
    pub owner: String,
    /// `None` = everyone.
    pub segment: Option<String>,
    pub text: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What a `YES <code>` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// The code matched in time: the row is closed as `confirmed`; create the broadcast.
    Confirmed(PendingBroadcast),
    /// No open confirmation for this owner.
    NothingPending,
    /// The code did not match: the row is closed as `wrong_code`.
    WrongCode,
    /// The code came at or after `expires_at`: the row is closed as `expired`.
    Expired,
}

impl Store {
    /// The live reference of `member`, its expiry moved to `expires_at`; when they have none,
    /// `candidate` becomes theirs. `None` when `candidate` is already another member's live
    /// reference: the caller draws another.
    pub fn owner_ref_for(
        &self,
        member: &str,
        candidate: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<String>> {
        self.write("storing an owner reference", |tx| {
            tx.execute(
                "DELETE FROM owner_refs WHERE expires_at <= ?1",
                params![now],
            )
            .ctx("pruning owner references")?;
            let live: Option<String> = tx
                .query_row(
                    "SELECT ref FROM owner_refs WHERE member = ?1 ORDER BY expires_at DESC LIMIT 1",
                    params![member],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading an owner reference")?;
            if let Some(r) = live {
                tx.execute(
                    "UPDATE owner_refs SET expires_at = ?2 WHERE ref = ?1",
                    params![r, expires_at],
                )
                .ctx("refreshing an owner reference")?;
                return Ok(Some(r));
            }
            let n = tx
                .execute(
                    "INSERT INTO owner_refs (ref, member, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (ref) DO NOTHING",
                    params![candidate, member, now, expires_at],
                )
                .ctx("storing an owner reference")?;
            Ok((n == 1).then(|| candidate.to_string()))
        })
    }

    /// The member reference `r` names, if it is live at `now`.
    pub fn owner_ref_member(&self, r: &str, now: i64) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT member FROM owner_refs WHERE ref = ?1 AND expires_at > ?2",
                params![r, now],
                |row| row.get(0),
            )
            .optional()
            .ctx("looking up an owner reference")
    }

    /// Stores a broadcast `owner` asked for, waiting for `code` until `expires_at`; an older
    /// open one of the same owner is closed as `replaced`. Returns the new row's id.
    pub fn open_owner_confirmation(
        &self,
        owner: &str,
        code: &str,
        segment: Option<&str>,
        text: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<i64> {
        self.write("storing an owner's pending broadcast", |tx| {
            tx.execute(
                "UPDATE owner_confirmations SET closed_at = ?2, outcome = 'replaced'
                 WHERE owner = ?1 AND closed_at IS NULL",
                params![owner, now],
            )
            .ctx("replacing an owner's pending broadcast")?;
            let id: i64 = tx.query_row_cached(
                "INSERT INTO owner_confirmations (owner, code, segment, text, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                params![owner, code, segment, text, now, expires_at],
                |r| r.get(0),
            )
            .ctx("storing an owner's pending broadcast")?;
            Ok(id)
        })
    }

    /// Checks `code` against `owner`'s open confirmation and closes it whatever the result
    /// (see the module doc).
    pub fn close_owner_confirmation(
        &self,
        owner: &str,
        code: &str,
        now: i64,
    ) -> Result<ConfirmOutcome> {
        self.write("confirming an owner's broadcast", |tx| {
            let open = tx
                .query_row(
                    "SELECT id, owner, code, segment, text, created_at, expires_at
                     FROM owner_confirmations
                     WHERE owner = ?1 AND closed_at IS NULL ORDER BY id DESC LIMIT 1",
                    params![owner],
                    |r| {
                        Ok((
                            r.get::<String>(2)?,
                            PendingBroadcast {
                                id: r.get(0)?,
                                owner: r.get(1)?,
                                segment: r.get(3)?,
                                text: r.get(4)?,
                                created_at: r.get(5)?,
                                expires_at: r.get(6)?,
                            },
                        ))
                    },
                )
                .optional()
                .ctx("reading an owner's pending broadcast")?;
            let Some((stored, pending)) = open else {
                return Ok(ConfirmOutcome::NothingPending);
            };
            let (outcome, word) = if now >= pending.expires_at {
                (ConfirmOutcome::Expired, "expired")
            } else if bool::from(stored.as_bytes().ct_eq(code.as_bytes())) {
                (ConfirmOutcome::Confirmed(pending.clone()), "confirmed")
            } else {
                (ConfirmOutcome::WrongCode, "wrong_code")
            };
            tx.execute(
                "UPDATE owner_confirmations SET closed_at = ?2, outcome = ?3 WHERE id = ?1",
                params![pending.id, now, word],
            )
            .ctx("closing an owner's pending broadcast")?;
            Ok(outcome)
        })
    }

    /// Records which broadcast a confirmed row created (for the audit trail).
    pub fn set_owner_confirmation_broadcast(&self, id: i64, broadcast: i64) -> Result<()> {
        self.write("recording an owner's broadcast", |tx| {
            tx.execute(
                "UPDATE owner_confirmations SET broadcast_id = ?2 WHERE id = ?1",
                params![id, broadcast],
            )
            .ctx("recording an owner's broadcast")?;
            Ok(())
        })
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Repeated inside: clippy allows `unwrap` in test helpers only under a visible `cfg(test)`.
#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "+14155550101";
    const O: &str = "+14155550199";

    #[test]
    fn one_live_reference_per_member_refreshed_and_expiring() {
        let s = fresh();
        assert_eq!(
            s.owner_ref_for(M, "aaaaa", 0, 100).unwrap().as_deref(),
            Some("aaaaa")
        );
        // The same member keeps the reference; the expiry moves.
        assert_eq!(
            s.owner_ref_for(M, "bbbbb", 50, 200).unwrap().as_deref(),
            Some("aaaaa")
        );
        assert_eq!(
            s.owner_ref_member("aaaaa", 150).unwrap().as_deref(),
            Some(M)
        );
        assert_eq!(s.owner_ref_member("aaaaa", 200).unwrap(), None, "expired");
        // A live reference of someone else is refused as a candidate.
        assert_eq!(
            s.owner_ref_for("+14155550102", "aaaaa", 60, 200).unwrap(),
            None
        );
        // Once expired, it is pruned and may be drawn again.
        assert_eq!(
            s.owner_ref_for("+14155550102", "aaaaa", 300, 400)
                .unwrap()
                .as_deref(),
            Some("aaaaa")
        );
        assert_eq!(
            s.owner_ref_member("aaaaa", 301).unwrap().as_deref(),
            Some("+14155550102")
        );
    }

    #[test]
    fn a_code_is_single_use_and_a_wrong_or_late_one_burns_it() {
        let s = fresh();
        assert_eq!(
            s.close_owner_confirmation(O, "abc123", 0).unwrap(),
            ConfirmOutcome::NothingPending
        );
        s.open_owner_confirmation(O, "abc123", Some("city=Austin"), "hi", 0, 600)
            .unwrap();
        // Another number's YES finds nothing of this owner's.
        assert_eq!(
            s.close_owner_confirmation(M, "abc123", 10).unwrap(),
            ConfirmOutcome::NothingPending
        );
        match s.close_owner_confirmation(O, "abc123", 10).unwrap() {
            ConfirmOutcome::Confirmed(p) => {
                assert_eq!(p.segment.as_deref(), Some("city=Austin"));
                assert_eq!(p.text, "hi");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.close_owner_confirmation(O, "abc123", 11).unwrap(),
            ConfirmOutcome::NothingPending,
            "used once"
        );

        s.open_owner_confirmation(O, "def456", None, "hi", 0, 600)
            .unwrap();
        assert_eq!(
            s.close_owner_confirmation(O, "zzz999", 10).unwrap(),
            ConfirmOutcome::WrongCode
        );
        assert_eq!(
            s.close_owner_confirmation(O, "def456", 11).unwrap(),
            ConfirmOutcome::NothingPending,
            "a wrong code cancels"
        );

        s.open_owner_confirmation(O, "ghj789", None, "hi", 0, 600)
            .unwrap();
        assert_eq!(
            s.close_owner_confirmation(O, "ghj789", 600).unwrap(),
            ConfirmOutcome::Expired
        );
    }

    #[test]
    fn a_new_broadcast_replaces_the_pending_one() {
        let s = fresh();
        s.open_owner_confirmation(O, "aaaaaa", None, "first", 0, 600)
            .unwrap();
        s.open_owner_confirmation(O, "bbbbbb", None, "second", 1, 601)
            .unwrap();
        assert_eq!(
            s.close_owner_confirmation(O, "aaaaaa", 2).unwrap(),
            ConfirmOutcome::WrongCode
        );
        s.open_owner_confirmation(O, "cccccc", None, "third", 3, 603)
            .unwrap();
        match s.close_owner_confirmation(O, "cccccc", 4).unwrap() {
            ConfirmOutcome::Confirmed(p) => assert_eq!(p.text, "third"),
            other => panic!("{other:?}"),
        }
    }
}
}
