//! What is left of a broadcast's queue, grouped by what decides when it can go: the home modem,
//! paused or not, whether it is due now, later as scheduled, or later after a failed attempt or a
//! deferral, and (only when quiet hours may hold some of it) the recipient's zone. `commands`
//! turns these groups into the reasons `broadcasts` shows ("held: quiet hours until 08:00 for 3
//! recipients"); the store only counts.
//!
//! Why it looks like this: a progress poll runs it every second (`broadcast --wait`) and the
//! answer is a handful of groups whatever the broadcast's size. The common case reads no row
//! that is due now: the queued counts per (home modem, pause flag, zone, parts) come from the
//! broadcast's counts (migration 0014), and per such group only the rows due later than now are
//! counted, a range of the covering index `outbox_broadcast_queue` (migration 0016) that starts
//! at now (and, for a broadcast that has not started, the rows already due, a range that ends
//! at now); what is due is the rest. A count row and the index both carry the pause flag, so
//! paused and unpaused rows of one modem (a retry that came back into a paused broadcast) are
//! two groups with their own ranges. The zone needs the join with `members`, a lookup per row,
//! so that form runs only when the caller says some zone is inside quiet hours now
//! ([`Store::member_time_zones`] tells it which zones exist).
//! "Scheduled" and "deferred" are told apart by the due time: the enqueue gives every copy the
//! broadcast's start, so a copy due later than that was tried or deferred since.

use std::collections::BTreeMap;

use crate::store::db::params;

use super::OutboxState;
use super::counts::{Later, queued_between};
use crate::store::{Result, SqlContext, Store};

/// Queued rows of one broadcast that share what decides their next send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedGroup {
    /// The home modem (`modem_pref`), if any.
    pub modem_pref: Option<String>,
    /// The member's time zone (`None`: unknown, or zones not asked for).
    pub zone: Option<String>,
    /// Held by a pause.
    pub paused: bool,
    /// Not due before `next_due` (> now).
    pub later: bool,
    /// Of the rows due later: moved past the broadcast's start by an attempt or a deferral (retry
    /// back-off, a recipient cap, quiet hours), as opposed to only scheduled.
    pub tried: bool,
    pub count: u64,
    /// The earliest `not_before` of the group.
    pub next_due: i64,
}

/// The queued rows of one (home modem, paused) pair, split into due, scheduled (due later, at the
/// start) and tried (due later than the start).
#[derive(Debug, Default, PartialEq, Eq)]
pub(in crate::store) struct ModemCounts {
    modem_pref: Option<String>,
    paused: bool,
    total: i64,
    scheduled: i64,
    first_scheduled: Option<i64>,
    tried: i64,
    first_tried: Option<i64>,
}

/// [`ModemCounts`] from the rows themselves, what the tests compare [`Store::queue_counts`] with.
/// ?1 broadcast, ?2 now, ?3 the broadcast's start. The conditional counts are `CASE … THEN 1`,
/// not a summed comparison: PostgreSQL has no `sum(boolean)`.
#[cfg(test)]
const GROUPS_SQL: &str = "
    SELECT modem_pref, held, count(*),
           sum(CASE WHEN not_before > ?2 AND not_before = ?3 THEN 1 ELSE 0 END),
           min(CASE WHEN not_before > ?2 AND not_before = ?3 THEN not_before END),
           sum(CASE WHEN not_before > ?2 AND not_before <> ?3 THEN 1 ELSE 0 END),
           min(CASE WHEN not_before > ?2 AND not_before <> ?3 THEN not_before END)
    FROM outbox INDEXED BY outbox_broadcast_queue
    WHERE broadcast_id = ?1 AND state = 'queued'
    GROUP BY modem_pref, held";

const GROUPS_WITH_ZONES_SQL: &str = "
    SELECT o.modem_pref, m.time_zone, o.held, o.not_before > ?2 AS later,
           (o.not_before > ?2 AND o.not_before <> ?3) AS tried,
           count(*), min(o.not_before)
    FROM outbox o LEFT JOIN members m ON m.number = o.to_number
    WHERE o.broadcast_id = ?1 AND o.state = 'queued'
    GROUP BY 1, 2, 3, 4, 5";

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn min_of(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Later {
    fn n(&self) -> i64 {
        i64::try_from(self.count).unwrap_or(i64::MAX)
    }

    fn sum(a: Later, b: Later) -> Later {
        Later {
            count: a.count + b.count,
            first: min_of(a.first, b.first),
        }
    }
}

impl Store {
    /// The queued rows of broadcast `id` at `now`, grouped (module doc); `start` is the
    /// broadcast's start (`scheduled_at`, else `created_at`). With `zones`, also by the member's
    /// time zone (a join: ask only when quiet hours hold some zone now).
    pub fn broadcast_queue_groups(
        &self,
        id: i64,
        now: i64,
        start: i64,
        zones: bool,
    ) -> Result<Vec<QueuedGroup>> {
        let what = "grouping a broadcast's queue";
        let conn = self.conn();
        if zones {
            let mut st = conn.prepare_cached(GROUPS_WITH_ZONES_SQL).ctx(what)?;
            return st
                .query_map(params![id, now, start], |r| {
                    Ok(QueuedGroup {
                        modem_pref: r.get(0)?,
                        zone: r.get(1)?,
                        paused: r.get::<i64>(2)? != 0,
                        later: r.get::<i64>(3)? != 0,
                        tried: r.get::<i64>(4)? != 0,
                        count: count(r.get(5)?),
                        next_due: r.get(6)?,
                    })
                })
                .ctx(what)?
                .collect::<crate::store::db::DbResult<_>>()
                .ctx(what);
        }
        drop(conn);
        let rows = self.queue_counts(id, now, start)?;
        let mut groups = Vec::with_capacity(rows.len() * 3);
        for c in rows {
            let group = |later, tried, n, next_due| QueuedGroup {
                modem_pref: c.modem_pref.clone(),
                zone: None,
                paused: c.paused,
                later,
                tried,
                count: count(n),
                next_due,
            };
            let due = c.total - c.scheduled - c.tried;
            if due > 0 {
                groups.push(group(false, false, due, now));
            }
            if let Some(t) = c.first_scheduled.filter(|_| c.scheduled > 0) {
                groups.push(group(true, false, c.scheduled, t));
            }
            if let Some(t) = c.first_tried.filter(|_| c.tried > 0) {
                groups.push(group(true, true, c.tried, t));
            }
        }
        Ok(groups)
    }

    /// The queued rows per (home modem, paused) from the broadcast's counts, with the rows due
    /// later than `now` counted per count row from the index (module doc), in the order of
    /// (home modem, paused).
    pub(in crate::store) fn queue_counts(
        &self,
        id: i64,
        now: i64,
        start: i64,
    ) -> Result<Vec<ModemCounts>> {
        let counts = self.broadcast_counts(id)?;
        let conn = self.conn();
        let mut by_modem: BTreeMap<(Option<String>, bool), ModemCounts> = BTreeMap::new();
        for c in counts
            .into_iter()
            .filter(|c| c.state == OutboxState::Queued)
        {
            let total = i64::try_from(c.n).unwrap_or(i64::MAX);
            let key = (c.modem_pref.as_deref(), c.held, c.zone.as_deref(), c.parts);
            let range = |lo, hi| queued_between(&conn, id, key, (lo, hi));
            let (scheduled, first_scheduled, tried) = if start > now {
                // Not started: copies due at the start are scheduled, any other later one was
                // moved there by an attempt or a deferral.
                let due = range(i64::MIN, now)?;
                let before = range(now.saturating_add(1), start - 1)?;
                let after = range(start.saturating_add(1), i64::MAX)?;
                let tried = Later::sum(before, after);
                let scheduled = total - due.n() - tried.n();
                (scheduled, (scheduled > 0).then_some(start), tried)
            } else {
                (0, None, range(now.saturating_add(1), i64::MAX)?)
            };
            let m = by_modem.entry((c.modem_pref, c.held)).or_default();
            m.total += total;
            m.scheduled += scheduled;
            m.first_scheduled = min_of(m.first_scheduled, first_scheduled);
            m.tried += tried.n();
            m.first_tried = min_of(m.first_tried, tried.first);
        }
        Ok(by_modem
            .into_iter()
            .map(|((modem_pref, paused), m)| ModemCounts {
                modem_pref,
                paused,
                ..m
            })
            .collect())
    }

    /// [`Store::queue_counts`] from one walk of the queued rows ([`GROUPS_SQL`]), in the same
    /// order (sorted here: a GROUP BY promises no order, and PostgreSQL's hash aggregate gives
    /// none).
    #[cfg(test)]
    pub(in crate::store) fn queue_counts_scan(
        &self,
        id: i64,
        now: i64,
        start: i64,
    ) -> Result<Vec<ModemCounts>> {
        let what = "grouping a broadcast's queue";
        let conn = self.conn();
        let mut st = conn.prepare_cached(GROUPS_SQL).ctx(what)?;
        let mut rows: Vec<ModemCounts> = st
            .query_map(params![id, now, start], |r| {
                Ok(ModemCounts {
                    modem_pref: r.get(0)?,
                    paused: r.get::<i64>(1)? != 0,
                    total: r.get(2)?,
                    scheduled: r.get::<Option<i64>>(3)?.unwrap_or(0),
                    first_scheduled: r.get(4)?,
                    tried: r.get::<Option<i64>>(5)?.unwrap_or(0),
                    first_tried: r.get(6)?,
                })
            })
            .ctx(what)?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx(what)?;
        rows.sort_by(|a, b| (&a.modem_pref, a.paused).cmp(&(&b.modem_pref, b.paused)));
        Ok(rows)
    }

    /// One `last_error` of the broadcast's queued rows that are due after `now` and past the
    /// start (the detail of a `retry` hold).
    pub fn broadcast_queue_last_error(
        &self,
        id: i64,
        now: i64,
        start: i64,
    ) -> Result<Option<String>> {
        use crate::store::db::OptionalExtension;
        self.conn()
            .prepare_cached(
                "SELECT last_error FROM outbox INDEXED BY outbox_broadcast_queue
                 WHERE broadcast_id = ?1 AND state = 'queued' AND not_before > ?2
                   AND not_before <> ?3 AND last_error IS NOT NULL
                 LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row(params![id, now, start], |r| r.get(0))
                    .optional()
            })
            .ctx("reading a broadcast's last error")
    }

    /// The distinct time zones of members (`None` for members without one): which zones quiet
    /// hours could hold copies in.
    pub fn member_time_zones(&self) -> Result<Vec<Option<String>>> {
        let what = "reading the members' time zones";
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("SELECT DISTINCT time_zone FROM members")
            .ctx(what)?;
        st.query_map(params![], |r| r.get(0))
            .ctx(what)?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx(what)
    }
}
