//! Rows whose fate is unknown: at start-up, every row a previous run left `claimed` was in flight
//! when it stopped; it becomes `in_doubt`, and the kinds the policy resends go back to the queue.
//! A person resolves the rest (`in_doubt`, then `requeue_in_doubt` or `cancel`).
//!
//! Why not resend everything: the PDU may have reached the network before the crash, so a resend
//! can be a duplicate. Replies and compliance texts are short and expected, a duplicate is
//! harmless; a broadcast or the leader's own message sent twice is not, so by default those wait
//! for a person. It must not decide the policy (dispatch maps `in_doubt_policy` to it).

use crate::store::db::{Conn, params};

use super::{OutboxRow, ROW_COLUMNS, row_from, transition};
use crate::model::MessageKind;
use crate::store::{Result, SqlContext, Store};

/// What to do with rows a previous run left `claimed` (send in flight at the crash).
/// Kinds set to `true` are queued again (a possible duplicate); the others stay `in_doubt` for a
/// person to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecoveryPolicy {
    pub resend_reply: bool,
    pub resend_compliance: bool,
    pub resend_direct: bool,
    pub resend_bulk: bool,
}

impl Default for RecoveryPolicy {
    /// Resend replies and compliance texts (short, expected, harmless if doubled); never resend
    /// bulk or the leader's direct messages without a person deciding.
    fn default() -> Self {
        RecoveryPolicy {
            resend_reply: true,
            resend_compliance: true,
            resend_direct: false,
            resend_bulk: false,
        }
    }
}

impl RecoveryPolicy {
    pub(super) fn resend(&self, kind: MessageKind) -> bool {
        match kind {
            MessageKind::Reply => self.resend_reply,
            MessageKind::Compliance => self.resend_compliance,
            MessageKind::Direct => self.resend_direct,
            MessageKind::Bulk => self.resend_bulk,
        }
    }
}

/// Counts from `recover_after_restart`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    /// Rows found claimed (all became in_doubt first).
    pub found_claimed: usize,
    /// Of those, queued again by the policy.
    pub requeued: usize,
    /// Of those, left in_doubt.
    pub left_in_doubt: usize,
}

impl Store {
    /// in_doubt → queued: a person decided to send it again.
    pub fn requeue_in_doubt(&self, id: i64, now: i64) -> Result<()> {
        self.write("requeueing", |tx| {
            transition(
                tx,
                id,
                "requeue",
                "UPDATE outbox SET state = 'queued', not_before = ?2, claimed_by = NULL,
                                   claimed_at = NULL
                 WHERE id = ?1 AND state = 'in_doubt'",
                params![id, now],
            )
        })
    }

    /// Call once at start-up, before any claim: every row left `claimed` by a previous run was
    /// in flight when it stopped, so it becomes `in_doubt` (reason recorded); then kinds the
    /// policy resends go back to `queued`. Recorded parts are kept, so a resend can skip parts
    /// the modem already accepted (see [`Store::outbox_parts`]).
    pub fn recover_after_restart(
        &self,
        policy: &RecoveryPolicy,
        now: i64,
    ) -> Result<RecoveryReport> {
        self.write("recovering the outbox", |tx| {
            recover_claimed_in(tx, "1 = 1", params![], policy, now, "in flight at restart")
        })
    }

    /// Every row in doubt, oldest first (for a person to resolve).
    pub fn in_doubt(&self) -> Result<Vec<OutboxRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {ROW_COLUMNS} FROM outbox WHERE state = 'in_doubt' ORDER BY id"
            ))
            .ctx("listing in-doubt rows")?;
        st.query_map(params![], row_from)
            .ctx("listing in-doubt rows")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("listing in-doubt rows")
    }
}

/// Recovers the `claimed` rows that also match `filter` (SQL over `outbox o`, with `params`):
/// each becomes `in_doubt` with `reason`, then the kinds `policy` resends go back to `queued`.
/// Recorded parts are kept, so a resend can skip parts the modem already accepted. One caller
/// is a restart (every claimed row), the other a site's sweep of rows whose site went silent
/// (store/sites.rs).
pub(in crate::store) fn recover_claimed_in(
    tx: &Conn,
    filter: &str,
    params: crate::store::db::Params<'_>,
    policy: &RecoveryPolicy,
    now: i64,
    reason: &str,
) -> Result<RecoveryReport> {
    const OP: &str = "recovering the outbox";
    let claimed: Vec<(i64, MessageKind)> = tx
        .prepare(&format!(
            "SELECT o.id, o.kind FROM outbox o WHERE o.state = 'claimed' AND ({filter}) ORDER BY o.id"
        ))
        .and_then(|mut st| {
            st.query_map(params, |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<crate::store::db::DbResult<_>>()
        })
        .ctx(OP)?;
    let mut report = RecoveryReport {
        found_claimed: claimed.len(),
        ..RecoveryReport::default()
    };
    for (id, kind) in claimed {
        let resend = policy.resend(kind);
        tx.exec_cached(
            "UPDATE outbox SET state = 'in_doubt', last_error = ?2 WHERE id = ?1 AND state = 'claimed'",
            params![id, reason],
        )
        .ctx(OP)?;
        if resend {
            tx.exec_cached(
                "UPDATE outbox SET state = 'queued', not_before = ?2, claimed_by = NULL,
                                   claimed_at = NULL
                 WHERE id = ?1",
                params![id, now],
            )
            .ctx(OP)?;
            report.requeued += 1;
        } else {
            report.left_in_doubt += 1;
        }
    }
    if report.found_claimed > 0 {
        tracing::warn!(?report, reason, "outbox rows in flight were recovered");
    }
    Ok(report)
}
