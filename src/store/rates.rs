//! Rate accounting that survives restarts: `send_log` holds one row per SMS part the network
//! accepted (written by `record_part_sent` in the same transaction as the part record).
//!
//! The dispatch runner keeps its fast in-memory limiters (`dispatch::RateLimiter`) but seeds them
//! from these exact records at start, so a restart can never reset a per-hour or per-day budget;
//! the per-recipient daily cap reads them directly ([`Store::message_times_to_since`]). Sliding windows
//! are answered by counting rows in `[since, ∞)` on an index; rows older than the longest window
//! (a day) plus a margin are pruned by [`Store::prune_send_log`].

use crate::store::db::params;

use super::{Result, SqlContext, Store};

/// Rows older than this are no longer needed by any window (the longest is one day).
pub const SEND_LOG_RETENTION_MS: i64 = 2 * 24 * 3600 * 1000;

impl Store {
    /// SMS parts sent on `modem` at or after `since_ms`.
    pub fn sends_since(&self, modem: &str, since_ms: i64) -> Result<u32> {
        self.conn()
            .prepare_cached("SELECT count(*) FROM send_log WHERE modem = ?1 AND at >= ?2")
            .and_then(|mut st| st.query_row(params![modem, since_ms], |r| r.get::<i64>(0)))
            .ctx("counting sends")
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Distinct messages (outbox rows) sent to `number` at or after `since_ms`, over all modems
    /// (per-recipient caps such as "at most N a day").
    pub fn messages_to_since(&self, number: &str, since_ms: i64) -> Result<u32> {
        self.conn()
            .prepare_cached(
                "SELECT count(DISTINCT outbox_id) FROM send_log WHERE to_number = ?1 AND at >= ?2",
            )
            .and_then(|mut st| st.query_row(params![number, since_ms], |r| r.get::<i64>(0)))
            .ctx("counting sends to a number")
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The send times on `modem` at or after `since_ms`, oldest first: lets the dispatcher rebuild
    /// its sliding windows exactly after a restart.
    pub fn send_times_since(&self, modem: &str, since_ms: i64) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("SELECT at FROM send_log WHERE modem = ?1 AND at >= ?2 ORDER BY at")
            .ctx("reading send times")?;
        st.query_map(params![modem, since_ms], |r| r.get(0))
            .ctx("reading send times")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("reading send times")
    }

    /// The first-part send instant of every message (outbox row) sent to `number` at or after
    /// `since_ms`, oldest first, leaving out row `except` (the one being sent): the exact history
    /// behind a per-recipient daily cap, also across restarts.
    pub fn message_times_to_since(
        &self,
        number: &str,
        since_ms: i64,
        except: Option<i64>,
    ) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT min(at) FROM send_log
                 WHERE to_number = ?1 AND at >= ?2 AND outbox_id IS NOT ?3
                 GROUP BY coalesce(outbox_id, -id) ORDER BY 1",
            )
            .ctx("reading sends to a number")?;
        st.query_map(params![number, since_ms, except], |r| r.get(0))
            .ctx("reading sends to a number")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("reading sends to a number")
    }

    /// Every send-log instant at or after `since_ms`, over all modems, oldest first (the pool-wide
    /// cap after a restart).
    pub fn all_send_times_since(&self, since_ms: i64) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("SELECT at FROM send_log WHERE at >= ?1 ORDER BY at")
            .ctx("reading send times")?;
        st.query_map(params![since_ms], |r| r.get(0))
            .ctx("reading send times")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("reading send times")
    }

    /// Deletes send-log rows older than `SEND_LOG_RETENTION_MS` before `now`. Returns how many.
    pub fn prune_send_log(&self, now: i64) -> Result<usize> {
        self.write("pruning the send log", |tx| {
            tx.exec_cached(
                "DELETE FROM send_log WHERE at < ?1",
                params![now - SEND_LOG_RETENTION_MS],
            )
            .ctx("pruning the send log")
        })
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Again on the module itself: the attribute above is gone once the macro has expanded, and
// clippy's allow-unwrap-in-tests recognises a test module by it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ClaimRoute, MessageKind, NewOutbox};

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    fn send(s: &Store, modem: &str, to: &str, parts: u8, at: i64) {
        s.enqueue(&NewOutbox::new(to, "x", MessageKind::Direct, at))
            .unwrap();
        let row = s
            .claim_next_routed(modem, at, &ClaimRoute::default())
            .unwrap()
            .unwrap();
        for p in 1..=parts {
            s.record_part_sent(row.id, p, parts, p, at).unwrap();
        }
        s.mark_sent(row.id, at).unwrap();
    }

    fn reopener() -> Box<dyn Fn() -> Store> {
        crate::store::testing::reopener(BACKEND)
    }

    #[test]
    fn windows_are_exact_across_reopen_and_prune_is_bounded() {
        let open = reopener();
        let now = 10 * DAY;
        {
            let s = open();
            send(&s, "m0", "+1001", 1, now - 3 * DAY); // pruned
            send(&s, "m0", "+1001", 2, now - 23 * HOUR);
            send(&s, "m0", "+1002", 1, now - 30 * MIN);
            send(&s, "m0", "+1001", 3, now - 30 * 1000);
            send(&s, "m1", "+1001", 1, now - 10 * 1000);
        }
        let s = open();
        assert_eq!(s.sends_since("m0", now - MIN).unwrap(), 3);
        assert_eq!(s.sends_since("m0", now - HOUR).unwrap(), 4);
        assert_eq!(s.sends_since("m0", now - DAY).unwrap(), 6);
        assert_eq!(s.sends_since("m1", now - MIN).unwrap(), 1);
        assert_eq!(s.messages_to_since("+1001", now - DAY).unwrap(), 3);
        assert_eq!(s.send_times_since("m0", now - HOUR).unwrap().len(), 4);
        assert_eq!(s.prune_send_log(now).unwrap(), 1);
        assert_eq!(s.sends_since("m0", 0).unwrap(), 6);
        assert_eq!(s.prune_send_log(now).unwrap(), 0);
    }
}
}
