//! What is left of a broadcast's queue, grouped by what decides when it can go: the home modem,
//! the recipient's zone, paused or not, and whether it is due now, later as scheduled, or later
//! after a failed attempt or a deferral. `commands` turns these groups into the reasons
//! `broadcasts` shows ("held: quiet hours until 08:00 for 3 recipients"); the store only counts.
//!
//! Why one `GROUP BY` and not a row walk: the answer has a handful of groups whatever the
//! broadcast's size, and a progress poll runs it every second (`broadcast --wait`). The zone
//! needs the join with `members`, so it is read only when quiet hours can apply at all.

use rusqlite::params;

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
    /// Of the rows due later: whether they were tried or deferred before (retry back-off, a
    /// recipient cap, quiet hours), as opposed to only scheduled.
    pub tried: bool,
    pub count: u64,
    /// The earliest `not_before` of the group.
    pub next_due: i64,
    /// One `last_error` of the group (the largest, for a stable answer).
    pub last_error: Option<String>,
}

const GROUPS_SQL: &str = "
    SELECT o.modem_pref, NULL, o.held, o.not_before > ?2 AS later,
           (o.not_before > ?2 AND (o.attempts > 0 OR o.last_error IS NOT NULL)) AS tried,
           count(*), min(o.not_before), max(o.last_error)
    FROM outbox o
    WHERE o.broadcast_id = ?1 AND o.state = 'queued'
    GROUP BY 1, 3, 4, 5";

const GROUPS_WITH_ZONES_SQL: &str = "
    SELECT o.modem_pref, m.time_zone, o.held, o.not_before > ?2 AS later,
           (o.not_before > ?2 AND (o.attempts > 0 OR o.last_error IS NOT NULL)) AS tried,
           count(*), min(o.not_before), max(o.last_error)
    FROM outbox o LEFT JOIN members m ON m.number = o.to_number
    WHERE o.broadcast_id = ?1 AND o.state = 'queued'
    GROUP BY 1, 2, 3, 4, 5";

impl Store {
    /// The queued rows of broadcast `id` at `now`, grouped (module doc); with `zones`, also by the
    /// member's time zone.
    pub fn broadcast_queue_groups(
        &self,
        id: i64,
        now: i64,
        zones: bool,
    ) -> Result<Vec<QueuedGroup>> {
        let what = "grouping a broadcast's queue";
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(if zones {
                GROUPS_WITH_ZONES_SQL
            } else {
                GROUPS_SQL
            })
            .ctx(what)?;
        st.query_map(params![id, now], |r| {
            Ok(QueuedGroup {
                modem_pref: r.get(0)?,
                zone: r.get(1)?,
                paused: r.get::<_, i64>(2)? != 0,
                later: r.get::<_, i64>(3)? != 0,
                tried: r.get::<_, i64>(4)? != 0,
                count: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                next_due: r.get(6)?,
                last_error: r.get(7)?,
            })
        })
        .ctx(what)?
        .collect::<rusqlite::Result<_>>()
        .ctx(what)
    }
}
