//! A claim whose commit the claimer never heard back about. With PostgreSQL a connection can
//! break after the server committed a claim and before its answer arrived: the row is `claimed`
//! by a modem whose send loop holds nothing. The loop knows it never saw (so never sent) that
//! row, so the row goes back to the queue, its attempt not counted, the next time the loop
//! reaches the store (dispatch/runner/send_loop.rs). Only the modem's own loop may call this:
//! it is the one claimer under that name, so a `claimed` row of its modem that it does not hold
//! cannot be in flight anywhere. On SQLite a failed claim never committed, and this finds nothing.

use crate::store::db::params;
use crate::store::{Result, SqlContext, Store};

impl Store {
    /// Requeues every row `claimed` by `modem` (whose loop holds none); returns how many.
    pub fn release_unheld_claims(&self, modem: &str, now: i64) -> Result<usize> {
        const OP: &str = "releasing claims the send loop never received";
        let n = self.write(OP, |tx| {
            tx.exec_cached(
                "UPDATE outbox SET state = 'queued', claimed_by = NULL, claimed_at = NULL,
                                   not_before = ?2, attempts = max(attempts - 1, 0)
                 WHERE claimed_by = ?1 AND state = 'claimed'",
                params![modem, now],
            )
            .ctx(OP)
        })?;
        if n > 0 {
            tracing::warn!(modem, rows = n, "requeued claims whose answer was lost");
        }
        Ok(n)
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
mod tests {
    use crate::store::{ClaimRoute, MessageKind, NewOutbox, OutboxState};

    #[test]
    fn only_the_modems_own_claims_go_back_uncounted() {
        let s = fresh();
        let mine = s.enqueue(&NewOutbox::new("+15550001", "a", MessageKind::Bulk, 1)).unwrap();
        let other = s.enqueue(&NewOutbox::new("+15550002", "b", MessageKind::Bulk, 1)).unwrap();
        let any = ClaimRoute::default();
        assert_eq!(s.claim_next_routed("m0", 5, &any).unwrap().unwrap().id, mine);
        assert_eq!(s.claim_next_routed("m1", 5, &any).unwrap().unwrap().id, other);
        assert_eq!(s.release_unheld_claims("m0", 9).unwrap(), 1);
        let row = s.outbox_row(mine).unwrap();
        assert_eq!((row.state, row.attempts, row.not_before), (OutboxState::Queued, 0, 9));
        assert_eq!(s.outbox_row(other).unwrap().state, OutboxState::Claimed);
        assert_eq!(s.release_unheld_claims("m0", 10).unwrap(), 0);
    }
}
}
