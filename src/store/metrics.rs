//! The figures a Prometheus scrape reads from the database (`crate::metrics`, docs/http-api.md
//! "Metrics"): the live outbox by state and priority, each modem's last accepted submit, and the
//! calls by outcome. Read-only; it owns no state and decides nothing about what a figure means.
//!
//! Why these queries and no others: a scrape comes every 15 s or so for as long as the gateway
//! runs, and every store call holds the one connection the send loops claim through, so a scrape
//! must cost index probes, not a scan of the outbox's history (which grows by every broadcast).
//! The live states each have an index that already exists: `outbox_due` holds exactly the
//! claimable queued rows (and is ordered by priority, so the count per priority needs no sort),
//! `outbox_in_doubt_mr` exactly the in-doubt rows, and a paused broadcast's held rows are found
//! through `UNIQUE (broadcast_id, to_number)`. Rows being sent (`claimed`) are at most one per
//! modem and are counted in memory by the dispatch runner instead; the final states are history,
//! which the in-memory counters (`gsmgate_sms_sent_total`, …) and `gsmgate status` cover.
//! `modem_refs` has one row per modem. `calls` has no outcome index and is scanned: calls come at
//! the pace of people ringing a community number, so the table stays small.

use crate::store::db::{Row, params};

use super::{CallOutcome, Result, SqlContext, Store};

/// Where a live outbox row is, as the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LiveState {
    /// Queued and claimable (now or at its `not_before`).
    Queued,
    /// Queued in a paused broadcast: not claimable until it is resumed.
    Held,
    /// Sent or not: a person or the in-doubt policy must decide (docs/dispatch.md).
    InDoubt,
}

impl LiveState {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveState::Queued => "queued",
            LiveState::Held => "held",
            LiveState::InDoubt => "in_doubt",
        }
    }
}

/// How many live outbox rows are in `state` at `priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveCount {
    pub state: LiveState,
    pub priority: i64,
    pub count: u64,
}

/// How many finished calls on `modem` ended with `outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCount {
    pub modem: String,
    pub outcome: CallOutcome,
    pub count: u64,
}

/// Everything one scrape reads, from one hold of the connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsFigures {
    /// Only the (state, priority) pairs that have rows.
    pub outbox: Vec<LiveCount>,
    /// Per modem, its last part the network accepted (`+CMGS`), stamped with the instant the
    /// part was handed to the modem (unix ms; `record_part_sent`).
    pub last_submit: Vec<(String, i64)>,
    pub calls: Vec<CallCount>,
    /// The last balance of the SIM in each modem (`balance_ussd`), by modem name; parked SIMs
    /// (not in any modem) are left out.
    pub balances: Vec<(String, f64)>,
}

/// The live outbox by state and priority; each arm is answered from its index (see the module
/// doc), `EXPLAIN QUERY PLAN` is pinned by a test.
const LIVE_OUTBOX: &str = "
    SELECT 'queued', priority, count(*) FROM outbox
        WHERE state = 'queued' AND held = 0 GROUP BY priority
    UNION ALL
    SELECT 'in_doubt', priority, count(*) FROM outbox
        WHERE state = 'in_doubt' GROUP BY priority
    UNION ALL
    SELECT 'held', priority, count(*) FROM outbox
        WHERE broadcast_id IN (SELECT id FROM broadcasts WHERE state = 'paused')
          AND state = 'queued' AND held = 1
        GROUP BY priority";

/// A handful of rows (one per SIM ever seen): a scan is fine.
const BALANCES: &str = "SELECT key, balance FROM sims
    WHERE balance IS NOT NULL AND key = modem ORDER BY key";

const LAST_SUBMIT: &str = "SELECT modem, at FROM modem_refs ORDER BY modem";

const CALLS_BY_OUTCOME: &str = "
    SELECT modem, outcome, count(*) FROM calls WHERE outcome IS NOT NULL
        GROUP BY modem, outcome ORDER BY modem, outcome";

fn live_count(r: &Row<'_>) -> crate::store::db::DbResult<LiveCount> {
    let state: String = r.get(0)?;
    let state = match state.as_str() {
        "queued" => LiveState::Queued,
        "held" => LiveState::Held,
        _ => LiveState::InDoubt,
    };
    Ok(LiveCount {
        state,
        priority: r.get(1)?,
        count: r.get::<i64>(2)?.max(0).unsigned_abs(),
    })
}

impl Store {
    /// What a metrics scrape reads (see the module doc for why it is cheap).
    pub fn metrics_figures(&self) -> Result<MetricsFigures> {
        let conn = self.conn();
        let op = "reading the metrics figures";
        let mut outbox: Vec<LiveCount> = conn
            .prepare_cached(LIVE_OUTBOX)
            .and_then(|mut st| st.query_map(params![], live_count)?.collect())
            .ctx(op)?;
        outbox.sort_by_key(|c| (c.state, c.priority));
        let last_submit = conn
            .prepare_cached(LAST_SUBMIT)
            .and_then(|mut st| {
                st.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .ctx(op)?;
        let calls = conn
            .prepare_cached(CALLS_BY_OUTCOME)
            .and_then(|mut st| {
                st.query_map(params![], |r| {
                    Ok(CallCount {
                        modem: r.get(0)?,
                        outcome: r.get(1)?,
                        count: r.get::<i64>(2)?.max(0).unsigned_abs(),
                    })
                })?
                .collect()
            })
            .ctx(op)?;
        let balances = conn
            .prepare_cached(BALANCES)
            .and_then(|mut st| {
                st.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .ctx(op)?;
        Ok(MetricsFigures {
            outbox,
            last_submit,
            calls,
            balances,
        })
    }

    #[cfg(test)]
    fn query_plan(&self, sql: &str) -> Vec<String> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        st.query_map(params![], |r| r.get::<String>(3))
            .expect("plan")
            .collect::<crate::store::db::DbResult<_>>()
            .expect("plan rows")
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Inside as well: clippy exempts test helpers only in a module that carries it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MessageKind, NewOutbox, RecoveryPolicy};

    fn enqueue(s: &Store, to: &str, kind: MessageKind, now: i64) -> i64 {
        s.enqueue(&NewOutbox::new(to, "hi", kind, now)).unwrap()
    }

    #[test]
    fn an_empty_store_has_no_figures() {
        let s = fresh();
        assert_eq!(s.metrics_figures().unwrap(), MetricsFigures::default());
    }

    #[test]
    fn live_rows_are_counted_by_state_and_priority_and_history_is_not() {
        let s = fresh();
        let now = 1_000;
        enqueue(&s, "+15550001", MessageKind::Reply, now);
        enqueue(&s, "+15550002", MessageKind::Reply, now);
        enqueue(&s, "+15550003", MessageKind::Bulk, now);
        // One reply goes out (history), one is claimed (the runner counts those), and a
        // restart turns a claimed bulk row in doubt.
        let route = crate::store::ClaimRoute {
            pool: vec!["m0".into()],
            takeover: vec![],
        };
        let sent = s.claim_next_routed("m0", now, &route).unwrap().unwrap();
        s.record_part_sent(sent.id, 1, 1, 7, now).unwrap();
        s.mark_sent(sent.id, now).unwrap();
        s.claim_next_routed("m0", now, &route).unwrap().unwrap();
        let bulk = s.claim_next_routed("m0", now, &route).unwrap().unwrap();
        assert_eq!(bulk.kind, MessageKind::Bulk);
        s.recover_after_restart(&RecoveryPolicy::default(), now + 1)
            .unwrap();

        let f = s.metrics_figures().unwrap();
        let reply = MessageKind::Reply.default_priority();
        let bulk_p = MessageKind::Bulk.default_priority();
        // The claimed reply went back to the queue at the restart (replies are resent).
        assert_eq!(
            f.outbox,
            vec![
                LiveCount {
                    state: LiveState::Queued,
                    priority: reply,
                    count: 1
                },
                LiveCount {
                    state: LiveState::InDoubt,
                    priority: bulk_p,
                    count: 1
                },
            ]
        );
        assert_eq!(f.last_submit, vec![("m0".to_string(), now)]);
    }

    #[test]
    fn a_paused_broadcast_counts_as_held() {
        let s = fresh();
        let now = 1_000;
        let rows: Vec<NewOutbox> = ["+15550001", "+15550002"]
            .into_iter()
            .map(|n| NewOutbox::new(n, "hello", MessageKind::Bulk, now))
            .collect();
        let (b, _) = s
            .create_broadcast("hello", "all", None, &rows, now)
            .unwrap();
        s.pause_broadcast(b, now).unwrap();
        let f = s.metrics_figures().unwrap();
        assert_eq!(
            f.outbox,
            vec![LiveCount {
                state: LiveState::Held,
                priority: MessageKind::Bulk.default_priority(),
                count: 2
            }]
        );
        s.resume_broadcast(b, now).unwrap();
        let f = s.metrics_figures().unwrap();
        assert_eq!(f.outbox[0].state, LiveState::Queued);
        assert_eq!(f.outbox[0].count, 2);
    }

    #[test]
    fn calls_are_counted_by_modem_and_outcome_once_ended() {
        let s = fresh();
        let a = s.call_started("m0", Some("+15550001"), 1).unwrap();
        s.call_ended(a, CallOutcome::Missed, 2).unwrap();
        let b = s.call_started("m0", None, 3).unwrap();
        s.call_ended(b, CallOutcome::Missed, 4).unwrap();
        let c = s.call_started("m1", None, 5).unwrap();
        s.call_ended(c, CallOutcome::Voicemail, 6).unwrap();
        s.call_started("m1", None, 7).unwrap(); // still ringing: not counted
        let f = s.metrics_figures().unwrap();
        assert_eq!(
            f.calls,
            vec![
                CallCount {
                    modem: "m0".into(),
                    outcome: CallOutcome::Missed,
                    count: 2
                },
                CallCount {
                    modem: "m1".into(),
                    outcome: CallOutcome::Voicemail,
                    count: 1
                },
            ]
        );
    }
}
}

/// What only SQLite has: its query planner (PostgreSQL plans by its statistics, and the
/// translator drops the SQLite index hints).
#[cfg(test)]
mod sqlite_only_tests {
    use super::*;

    /// The scrape must not scan the outbox: every arm of the live query is answered from an
    /// index (a `SCAN outbox` without `USING … INDEX` would grow with the history).
    #[test]
    fn the_live_outbox_query_uses_indexes_only() {
        let s = Store::open_in_memory().unwrap();
        let plan = s.query_plan(LIVE_OUTBOX);
        for line in plan.iter().filter(|l| l.contains("outbox")) {
            assert!(
                line.contains("INDEX") || line.contains("PRIMARY KEY"),
                "outbox read without an index: {line} (plan: {plan:?})"
            );
        }
        assert!(plan.iter().any(|l| l.contains("outbox_due")), "{plan:?}");
        assert!(
            plan.iter().any(|l| l.contains("outbox_in_doubt_mr")),
            "{plan:?}"
        );
    }
}
