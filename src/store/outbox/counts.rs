//! A broadcast's row counts per (state, held, home modem, zone, part count), kept in
//! `broadcast_counts` (migration 0014) so that a progress poll reads a handful of rows instead of
//! grouping the broadcast's outbox rows: the progress, the ETA's groups, the "held" reasons and
//! whether a broadcast is done all start from them.
//!
//! It owns reading that table and the few index probes a poll adds to it; it must not write the
//! counts (the enqueue adds a new row's counts in its transaction, `enqueue.rs`; the migration's
//! triggers follow every later change of a row) nor decide what a count means.
//!
//! Why the probes look like this: what the table cannot hold depends on time (`not_before`
//! against now, which moves) or is a minimum (which a count cannot keep under removals). So each
//! is asked per group, with every key column bound, of a covering index: the earliest due time is
//! one seek (`min` on the last column of `outbox_broadcast_queue`, migration 0016), and the
//! rows due later than now are a range that starts at now, so a poll reads only the rows a
//! retry or a schedule moved into the future, not the 100,000 that are due.
//! [`Store::broadcast_counts_scan`] is the same answer from the outbox itself, what tests compare
//! the table with.

use crate::store::db::{Conn, OptionalExtension, Row, params};

use super::OutboxState;
use crate::store::{Result, SqlContext, Store};

/// The rows of one broadcast that share a state, pause flag, home modem, zone and part count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastCount {
    pub state: OutboxState,
    pub held: bool,
    pub modem_pref: Option<String>,
    /// The recipient's zone at enqueue (`None`: the default zone, or not recorded).
    pub zone: Option<String>,
    /// SMS parts per copy (`None`: not counted at enqueue).
    pub parts: Option<u32>,
    pub n: u64,
}

fn count_from(r: &Row<'_>) -> crate::store::db::DbResult<BroadcastCount> {
    Ok(BroadcastCount {
        state: r.get(0)?,
        held: r.get::<i64>(1)? != 0,
        modem_pref: r.get(2)?,
        zone: r.get(3)?,
        parts: r
            .get::<Option<i64>>(4)?
            .map(|p| u32::try_from(p.clamp(1, 255)).unwrap_or(1)),
        n: r.get::<i64>(5)?.max(0).unsigned_abs(),
    })
}

fn counts_in(conn: &Conn, broadcast_id: i64) -> Result<Vec<BroadcastCount>> {
    const OP: &str = "reading a broadcast's counts";
    let mut st = conn
        .prepare_cached(
            "SELECT state, held, modem_pref, zone, parts, n FROM broadcast_counts
             WHERE broadcast_id = ?1 AND n <> 0",
        )
        .ctx(OP)?;
    let mut v: Vec<BroadcastCount> = st
        .query_map(params![broadcast_id], count_from)
        .and_then(|rows| rows.collect())
        .ctx(OP)?;
    sort(&mut v);
    Ok(v)
}

/// Runs `update`, a statement that changes many rows of broadcast `id` in one way, with the
/// count triggers off for that broadcast (each firing is three statements: 1.6-2x the cost of a
/// 100,000-row pause or cancel), then rewrites the broadcast's counts itself: `remap` says where
/// the rows of each (state, held) go (`None`: they stay). All in the caller's transaction.
pub(super) fn in_bulk<T>(
    tx: &Conn,
    id: i64,
    remap: impl Fn(OutboxState, bool) -> Option<(OutboxState, bool)>,
    update: impl FnOnce(&Conn) -> crate::store::db::DbResult<T>,
) -> Result<T> {
    const OP: &str = "rewriting a broadcast's counts";
    tx.execute(
        "INSERT INTO broadcast_counts_bulk (broadcast_id) VALUES (?1)",
        params![id],
    )
    .ctx(OP)?;
    let out = update(tx).ctx(OP)?;
    tx.execute(
        "DELETE FROM broadcast_counts_bulk WHERE broadcast_id = ?1",
        params![id],
    )
    .ctx(OP)?;
    let mut moved: Vec<BroadcastCount> = Vec::new();
    for mut c in counts_in(tx, id)? {
        if let Some((state, held)) = remap(c.state, c.held) {
            (c.state, c.held) = (state, held);
        }
        let same = |m: &BroadcastCount| {
            (m.state, m.held, &m.modem_pref, &m.zone, m.parts)
                == (c.state, c.held, &c.modem_pref, &c.zone, c.parts)
        };
        match moved.iter_mut().find(|m| same(m)) {
            Some(m) => m.n += c.n,
            None => moved.push(c),
        }
    }
    tx.execute(
        "DELETE FROM broadcast_counts WHERE broadcast_id = ?1",
        params![id],
    )
    .ctx(OP)?;
    for c in moved {
        tx.execute(
            "INSERT INTO broadcast_counts (broadcast_id, state, held, modem_pref, zone, parts, n)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                c.state,
                c.held,
                c.modem_pref,
                c.zone,
                c.parts,
                i64::try_from(c.n).unwrap_or(i64::MAX)
            ],
        )
        .ctx(OP)?;
    }
    Ok(out)
}

/// Key order (the state by name), so two answers compare as lists.
fn sort(v: &mut [BroadcastCount]) {
    v.sort_by(|a, b| {
        (
            a.state.as_str(),
            a.held,
            &a.modem_pref,
            &a.zone,
            a.parts,
            a.n,
        )
            .cmp(&(
                b.state.as_str(),
                b.held,
                &b.modem_pref,
                &b.zone,
                b.parts,
                b.n,
            ))
    });
}

/// Rows of one queued group due after a time, and the earliest of them.
pub(super) struct Later {
    pub count: u64,
    pub first: Option<i64>,
}

impl Store {
    /// The broadcast's row counts (migration 0014), groups with no row left omitted, in key order.
    pub fn broadcast_counts(&self, broadcast_id: i64) -> Result<Vec<BroadcastCount>> {
        counts_in(&self.conn(), broadcast_id)
    }

    /// What [`Store::broadcast_counts`] must equal, grouped from the outbox rows themselves (a
    /// scan of the broadcast's rows: for tests and checks, not for a poll).
    pub fn broadcast_counts_scan(&self, broadcast_id: i64) -> Result<Vec<BroadcastCount>> {
        const OP: &str = "counting a broadcast's rows";
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT state, held, modem_pref, zone, parts, count(*) FROM outbox
                 WHERE broadcast_id = ?1 GROUP BY state, held, modem_pref, zone, parts",
            )
            .ctx(OP)?;
        let mut v: Vec<BroadcastCount> = st
            .query_map(params![broadcast_id], count_from)
            .and_then(|rows| rows.collect())
            .ctx(OP)?;
        sort(&mut v);
        Ok(v)
    }

    /// Whether [`Store::refresh_broadcasts`] would change anything at `now`: a scheduled
    /// broadcast whose start has come, or a running one with no row queued, claimed or in doubt.
    /// A read, so a poll commits (and fsyncs) only when a broadcast actually moves.
    pub(super) fn broadcasts_to_refresh(&self, now: i64) -> Result<bool> {
        self.conn()
            .prepare_cached(&format!(
                "SELECT EXISTS (
                     SELECT 1 FROM broadcasts
                     WHERE state = 'scheduled' AND (scheduled_at IS NULL OR scheduled_at <= ?1))
                 OR EXISTS (SELECT 1 FROM broadcasts b WHERE b.state = 'running' AND {UNFINISHED})"
            ))
            .and_then(|mut st| st.query_row(params![now], |r| r.get(0)))
            .ctx("checking broadcasts")
    }
}

/// SQL condition on a broadcast `b`: none of its rows is queued, claimed or in doubt (read from
/// its counts, not its rows).
pub(super) const UNFINISHED: &str = "NOT EXISTS (
    SELECT 1 FROM broadcast_counts c WHERE c.broadcast_id = b.id
      AND c.state IN ('queued', 'claimed', 'in_doubt') AND c.n > 0)";

/// ?1 broadcast, ?2 home modem, ?3 pause flag, ?4 zone, ?5 parts: every column of the index
/// before `not_before` is bound, so `min` is one seek (plan pinned by a test).
pub(super) const FIRST_DUE_SQL: &str =
    "SELECT min(not_before) FROM outbox INDEXED BY outbox_broadcast_queue
     WHERE broadcast_id = ?1 AND state = 'queued' AND modem_pref IS ?2 AND held = ?3
       AND zone IS ?4 AND parts IS ?5";

/// ?1 broadcast, ?2 home modem, ?3 pause flag, ?4 zone, ?5 parts, ?6..?7 the due range: a range
/// of the index (plan pinned by a test).
pub(super) const QUEUED_BETWEEN_SQL: &str =
    "SELECT count(*), min(not_before) FROM outbox INDEXED BY outbox_broadcast_queue
     WHERE broadcast_id = ?1 AND state = 'queued' AND modem_pref IS ?2 AND held = ?3
       AND zone IS ?4 AND parts IS ?5 AND not_before BETWEEN ?6 AND ?7";

/// The queued rows of one count row's key: its home modem, pause flag, zone and part count.
pub(super) type QueuedKey<'a> = (Option<&'a str>, bool, Option<&'a str>, Option<u32>);

/// The earliest `not_before` of the broadcast's queued rows with one key: one seek of the
/// covering index `outbox_broadcast_queue`.
pub(super) fn first_due(
    conn: &Conn,
    broadcast_id: i64,
    (modem_pref, held, zone, parts): QueuedKey<'_>,
) -> Result<Option<i64>> {
    conn.prepare_cached(FIRST_DUE_SQL)
        .and_then(|mut st| {
            st.query_row(params![broadcast_id, modem_pref, held, zone, parts], |r| {
                r.get(0)
            })
        })
        .optional()
        .map(Option::flatten)
        .ctx("reading a group's first due time")
}

/// The queued rows with one key due in `lo..=hi`: a range of the covering index
/// `outbox_broadcast_queue`, as long as the rows it finds.
pub(super) fn queued_between(
    conn: &Conn,
    broadcast_id: i64,
    (modem_pref, held, zone, parts): QueuedKey<'_>,
    (lo, hi): (i64, i64),
) -> Result<Later> {
    if lo > hi {
        return Ok(Later {
            count: 0,
            first: None,
        });
    }
    conn.prepare_cached(QUEUED_BETWEEN_SQL)
        .and_then(|mut st| {
            st.query_row(
                params![broadcast_id, modem_pref, held, zone, parts, lo, hi],
                |r| {
                    Ok(Later {
                        count: r.get::<i64>(0)?.max(0).unsigned_abs(),
                        first: r.get(1)?,
                    })
                },
            )
        })
        .ctx("reading a group's later rows")
}

#[cfg(test)]
mod tests;
