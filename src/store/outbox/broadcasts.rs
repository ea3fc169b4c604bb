//! A broadcast's life: scheduled → running → done, paused and resumed, cancelled; its progress
//! (row counts per state) and the queued rows its ETA is computed from. The rows themselves are
//! written by `enqueue` (`create_broadcast*`) in the transaction that creates the broadcast.
//!
//! Pausing marks the broadcast's queued rows `held` instead of moving them to another state, so
//! the claim's partial index skips them cheaply and resuming is one `UPDATE`. A broadcast is
//! `done` when no row is queued, claimed or in doubt; [`Store::refresh_broadcasts`] moves it
//! there (and starts scheduled ones) because nothing else watches the clock down here.

use crate::store::db::{Conn, OptionalExtension, Row, params};

use super::counts::{UNFINISHED, first_due, in_bulk};
use super::{OutboxState, StateCounts};
use crate::store::{Result, SqlContext, Store, StoreError, text_enum};

/// One group of a broadcast's rows: how many are in `state` on `modem_pref`, for recipients in
/// `zone`, with `parts` SMS each (what the progress counts and the ETA are computed from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastGroup {
    pub state: OutboxState,
    pub modem_pref: Option<String>,
    /// `None` = the default zone (or, with `parts` `None`, not recorded at enqueue).
    pub zone: Option<String>,
    /// `None` = not counted at enqueue (the ETA counts those rows from their text).
    pub parts: Option<u32>,
    pub count: u64,
    /// The earliest `not_before` of the group's rows (unix ms) when they are queued (what the ETA
    /// reads); 0 in every other state, which no index keeps in due order (migration 0016).
    pub first_due: i64,
}

/// The progress poll's groups from the rows themselves: the broadcast's rows (index
/// `outbox_broadcast`), grouped. A poll never runs it (it costs the broadcast's size):
/// [`Store::broadcast_groups`] reads the counts of migration 0014 and this is what tests compare
/// that answer with.
pub(crate) const BROADCAST_GROUPS_SQL: &str = "SELECT state, modem_pref, zone, parts, count(*),
            CASE WHEN state = 'queued' THEN min(not_before) ELSE 0 END
     FROM outbox WHERE broadcast_id = ?1 GROUP BY state, modem_pref, zone, parts";

text_enum!(
    /// Where a broadcast is in its life.
    BroadcastState, "broadcasts.state", {
        Scheduled => "scheduled",
        Running => "running",
        Paused => "paused",
        Cancelled => "cancelled",
        Done => "done",
    }
);

/// One broadcast.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BroadcastRow {
    pub id: i64,
    pub template: String,
    pub segment: String,
    pub created_at: i64,
    pub scheduled_at: Option<i64>,
    pub state: BroadcastState,
    pub total: i64,
    pub updated_at: i64,
}

const BROADCAST_COLUMNS: &str =
    "id, template, segment, created_at, scheduled_at, state, total, updated_at";

pub(super) fn broadcast_from(r: &Row<'_>) -> crate::store::db::DbResult<BroadcastRow> {
    Ok(BroadcastRow {
        id: r.get(0)?,
        template: r.get(1)?,
        segment: r.get(2)?,
        created_at: r.get(3)?,
        scheduled_at: r.get(4)?,
        state: r.get(5)?,
        total: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

impl Store {
    /// Row counts per state for one broadcast (its progress), from its counts (migration 0014).
    pub fn broadcast_progress(&self, broadcast_id: i64) -> Result<StateCounts> {
        let mut c = StateCounts::default();
        for g in self.broadcast_counts(broadcast_id)? {
            c.add(g.state, g.n);
        }
        Ok(c)
    }

    /// The broadcast's rows grouped by state, home modem, zone and part count, sorted: the
    /// counts of migration 0014 (paused and not summed) and, per group, one index seek for its
    /// earliest due time. The same answer as [`Store::broadcast_groups_scan`] without reading
    /// the broadcast's rows.
    pub fn broadcast_groups(&self, broadcast_id: i64) -> Result<Vec<BroadcastGroup>> {
        let mut groups: Vec<BroadcastGroup> = Vec::new();
        let counts = self.broadcast_counts(broadcast_id)?;
        let conn = self.conn();
        for c in counts {
            // A queued count row names its whole key, pause flag included: one seek for its
            // earliest due time. No row behind a count would be a count out of step; the group
            // then says "now".
            let first = if c.state == OutboxState::Queued {
                let key = (c.modem_pref.as_deref(), c.held, c.zone.as_deref(), c.parts);
                first_due(&conn, broadcast_id, key)?.unwrap_or_default()
            } else {
                0
            };
            // Sorted by state first, then held, so a key's two halves need not be neighbours.
            match groups.iter_mut().find(|g| {
                (g.state, &g.modem_pref, &g.zone, g.parts)
                    == (c.state, &c.modem_pref, &c.zone, c.parts)
            }) {
                Some(g) => {
                    g.count += c.n;
                    g.first_due = g.first_due.min(first);
                }
                None => groups.push(BroadcastGroup {
                    state: c.state,
                    modem_pref: c.modem_pref,
                    zone: c.zone,
                    parts: c.parts,
                    count: c.n,
                    first_due: first,
                }),
            }
        }
        groups.sort_by(|a, b| {
            (a.state.as_str(), &a.modem_pref, &a.zone, a.parts).cmp(&(
                b.state.as_str(),
                &b.modem_pref,
                &b.zone,
                b.parts,
            ))
        });
        Ok(groups)
    }

    /// [`Store::broadcast_groups`] from the rows themselves ([`BROADCAST_GROUPS_SQL`]), in the
    /// same order: for tests and checks.
    pub fn broadcast_groups_scan(&self, broadcast_id: i64) -> Result<Vec<BroadcastGroup>> {
        const OP: &str = "grouping a broadcast's rows";
        let conn = self.conn();
        let mut st = conn.prepare_cached(BROADCAST_GROUPS_SQL).ctx(OP)?;
        st.query_map(params![broadcast_id], |r| {
            Ok(BroadcastGroup {
                state: r.get(0)?,
                modem_pref: r.get(1)?,
                zone: r.get(2)?,
                parts: r
                    .get::<Option<i64>>(3)?
                    .map(|p| u32::try_from(p.clamp(1, 255)).unwrap_or(1)),
                count: r.get::<i64>(4)?.max(0).unsigned_abs(),
                first_due: r.get(5)?,
            })
        })
        .and_then(|rows| rows.collect())
        .ctx(OP)
        .map(|mut groups: Vec<BroadcastGroup>| {
            groups.sort_by(|a, b| {
                (a.state.as_str(), &a.modem_pref, &a.zone, a.parts).cmp(&(
                    b.state.as_str(),
                    &b.modem_pref,
                    &b.zone,
                    b.parts,
                ))
            });
            groups
        })
    }

    /// Whether the broadcast's rows ignore quiet hours (sent with `--ignore-quiet-hours`; all
    /// its rows carry the same flag, so one row answers).
    pub fn broadcast_ignores_quiet_hours(&self, broadcast_id: i64) -> Result<bool> {
        self.conn()
            .query_row(
                "SELECT quiet_off FROM outbox WHERE broadcast_id = ?1 LIMIT 1",
                params![broadcast_id],
                |r| r.get::<i64>(0),
            )
            .optional()
            .map(|f| f == Some(1))
            .ctx("reading a broadcast's quiet hours")
    }

    /// Sets when a broadcast starts (a broadcast at a local time starts with its first zone):
    /// `scheduled` until then; a broadcast already past `running` keeps its state.
    pub fn schedule_broadcast(&self, id: i64, at: i64, now: i64) -> Result<()> {
        self.write("scheduling a broadcast", |tx| {
            tx.execute(
                "UPDATE broadcasts SET scheduled_at = ?2, updated_at = ?3,
                     state = CASE WHEN state = 'running' AND ?2 > ?3 THEN 'scheduled'
                                  ELSE state END
                 WHERE id = ?1",
                params![id, at, now],
            )
            .ctx("scheduling a broadcast")?;
            Ok(())
        })
    }

    /// Like [`Store::for_each_queued_in_broadcast`], only for the queued rows whose part count
    /// was not recorded at enqueue (rows written through the store API without one): the ETA
    /// counts those from their text, with the member's zone.
    pub fn for_each_uncounted_queued_in_broadcast(
        &self,
        broadcast_id: i64,
        mut f: impl FnMut(Option<&str>, Option<&str>, &str),
    ) -> Result<()> {
        const OP: &str = "reading a broadcast's uncounted rows";
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT o.modem_pref, m.time_zone, o.text
                 FROM outbox o LEFT JOIN members m ON m.number = o.to_number
                 WHERE o.broadcast_id = ?1 AND o.state = 'queued' AND o.parts IS NULL",
            )
            .ctx(OP)?;
        st.for_each(params![broadcast_id], |r| {
            let modem: Option<String> = r.get(0).ctx(OP)?;
            let zone: Option<String> = r.get(1).ctx(OP)?;
            let text: String = r.get(2).ctx(OP)?;
            f(modem.as_deref(), zone.as_deref(), &text);
            Ok::<_, StoreError>(())
        })
    }

    /// Calls `f(home modem, recipient's time zone, text)` for every queued row of a broadcast,
    /// from one cursor joined with the members (what the broadcast's ETA groups by). Nothing is
    /// collected: a 100,000-row broadcast polled by `broadcast --wait` costs one indexed scan,
    /// not 100,000 rows in memory and a member lookup each. `f` must not call the store.
    pub fn for_each_queued_in_broadcast(
        &self,
        broadcast_id: i64,
        mut f: impl FnMut(Option<&str>, Option<&str>, &str),
    ) -> Result<()> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT o.modem_pref, m.time_zone, o.text
                 FROM outbox o LEFT JOIN members m ON m.number = o.to_number
                 WHERE o.broadcast_id = ?1 AND o.state = 'queued'",
            )
            .ctx("reading a broadcast's queue")?;
        const OP: &str = "reading a broadcast's queue";
        st.for_each(params![broadcast_id], |r| {
            let modem: Option<String> = r.get(0).ctx(OP)?;
            let zone: Option<String> = r.get(1).ctx(OP)?;
            let text: String = r.get(2).ctx(OP)?;
            f(modem.as_deref(), zone.as_deref(), &text);
            Ok::<_, StoreError>(())
        })
    }

    /// One broadcast.
    pub fn broadcast(&self, id: i64) -> Result<BroadcastRow> {
        self.conn()
            .query_row(
                &format!("SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE id = ?1"),
                params![id],
                broadcast_from,
            )
            .optional()
            .ctx("reading a broadcast")?
            .ok_or_else(|| StoreError::NotFound {
                what: "broadcast",
                key: id.to_string(),
            })
    }

    /// All broadcasts, newest first.
    pub fn broadcasts(&self, limit: u32) -> Result<Vec<BroadcastRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {BROADCAST_COLUMNS} FROM broadcasts ORDER BY id DESC LIMIT ?1"
            ))
            .ctx("listing broadcasts")?;
        st.query_map(params![limit], broadcast_from)
            .ctx("listing broadcasts")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("listing broadcasts")
    }

    /// scheduled | running → paused; its queued rows are held (not claimable).
    pub fn pause_broadcast(&self, id: i64, now: i64) -> Result<()> {
        self.broadcast_transition(
            id,
            now,
            "pause",
            &["scheduled", "running"],
            "paused",
            |tx| {
                in_bulk(
                    tx,
                    id,
                    |s, _| (s == OutboxState::Queued).then_some((OutboxState::Queued, true)),
                    |tx| {
                        tx.execute(
                            "UPDATE outbox SET held = 1 WHERE broadcast_id = ?1 AND state = 'queued'",
                            params![id],
                        )
                    },
                )
                .map(drop)
            },
        )
    }

    /// paused → running; its rows become claimable again.
    pub fn resume_broadcast(&self, id: i64, now: i64) -> Result<()> {
        self.broadcast_transition(id, now, "resume", &["paused"], "running", |tx| {
            in_bulk(
                tx,
                id,
                |s, _| Some((s, false)),
                |tx| {
                    tx.execute(
                        "UPDATE outbox SET held = 0 WHERE broadcast_id = ?1",
                        params![id],
                    )
                },
            )
            .map(drop)
        })
    }

    /// Cancels a broadcast that is not done: its queued rows become `cancelled`. Rows already
    /// claimed finish their send. Returns how many rows were cancelled.
    pub fn cancel_broadcast(&self, id: i64, now: i64) -> Result<usize> {
        let mut n = 0;
        self.broadcast_transition(
            id,
            now,
            "cancel",
            &["scheduled", "running", "paused"],
            "cancelled",
            |tx| {
                n = in_bulk(
                    tx,
                    id,
                    |s, _| (s == OutboxState::Queued).then_some((OutboxState::Cancelled, false)),
                    |tx| {
                        tx.execute(
                            "UPDATE outbox SET state = 'cancelled',
                                               last_error = 'broadcast cancelled',
                                               finished_at = ?2, held = 0
                             WHERE broadcast_id = ?1 AND state = 'queued'",
                            params![id, now],
                        )
                    },
                )?;
                Ok(())
            },
        )?;
        Ok(n)
    }

    fn broadcast_transition(
        &self,
        id: i64,
        now: i64,
        action: &'static str,
        from: &[&str],
        to: &str,
        rows: impl FnOnce(&Conn) -> Result<()>,
    ) -> Result<()> {
        self.write("changing a broadcast", |tx| {
            let state: BroadcastState = tx
                .query_row(
                    "SELECT state FROM broadcasts WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()
                .ctx("changing a broadcast")?
                .ok_or_else(|| StoreError::NotFound {
                    what: "broadcast",
                    key: id.to_string(),
                })?;
            if !from.contains(&state.as_str()) {
                return Err(StoreError::InvalidTransition {
                    id,
                    from: format!("broadcast {state}"),
                    action,
                });
            }
            tx.execute(
                "UPDATE broadcasts SET state = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, to, now],
            )
            .ctx("changing a broadcast")?;
            rows(tx)
        })
    }

    /// Moves broadcasts along by time and progress: scheduled → running once `scheduled_at` has
    /// come; running → done once no row is queued, claimed or in doubt (by their counts,
    /// migration 0014). Returns how many changed. Reads first and writes only when one moves:
    /// every progress poll calls this, and a commit is an fsync.
    pub fn refresh_broadcasts(&self, now: i64) -> Result<usize> {
        if !self.broadcasts_to_refresh(now)? {
            return Ok(0);
        }
        self.write("refreshing broadcasts", |tx| {
            let started = tx
                .execute(
                    "UPDATE broadcasts SET state = 'running', updated_at = ?1
                     WHERE state = 'scheduled' AND (scheduled_at IS NULL OR scheduled_at <= ?1)",
                    params![now],
                )
                .ctx("refreshing broadcasts")?;
            let done = tx
                .execute(
                    &format!(
                        "UPDATE broadcasts AS b SET state = 'done', updated_at = ?1
                         WHERE b.state = 'running' AND {UNFINISHED}"
                    ),
                    params![now],
                )
                .ctx("refreshing broadcasts")?;
            Ok(started + done)
        })
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Inside as well: clippy exempts test helpers only in a module that carries it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageKind;
    use crate::store::NewOutbox;

    /// The part count, zone and quiet-hours flag given at enqueue are stored on the row and
    /// come back grouped; rows enqueued without a count stay uncounted (`None`).
    #[test]
    fn groups_carry_the_part_count_and_zone_stored_at_enqueue() {
        let s = fresh();
        let row = |to: &str, parts: Option<u32>, zone: Option<&str>| NewOutbox {
            parts,
            zone: zone.map(str::to_string),
            modem_pref: Some("sim0".into()),
            quiet_off: true,
            ..NewOutbox::new(to, "hi", MessageKind::Bulk, 10)
        };
        let (b, n) = s
            .create_broadcast(
                "hi",
                "*",
                None,
                &[
                    row("+1", Some(2), Some("Europe/Paris")),
                    row("+2", Some(2), Some("Europe/Paris")),
                    row("+3", Some(1), None),
                    row("+4", None, None),
                ],
                10,
            )
            .unwrap();
        assert_eq!(n, 4);
        let mut g = s.broadcast_groups(b).unwrap();
        g.sort_by_key(|g| (g.parts, g.count));
        let q = |parts, zone: Option<&str>, count| BroadcastGroup {
            state: OutboxState::Queued,
            modem_pref: Some("sim0".into()),
            zone: zone.map(str::to_string),
            parts,
            count,
            first_due: 10,
        };
        assert_eq!(
            g,
            vec![
                q(None, None, 1),
                q(Some(1), None, 1),
                q(Some(2), Some("Europe/Paris"), 2)
            ]
        );
        let mut uncounted = Vec::new();
        s.for_each_uncounted_queued_in_broadcast(b, |_, _, t| uncounted.push(t.to_string()))
            .unwrap();
        assert_eq!(uncounted, vec!["hi".to_string()]);
        // A fresh database numbers the rows from 1.
        assert!(s.outbox_row(1).unwrap().quiet_off);
    }
}
}

/// What only SQLite has: its query planner, and its own migrations.
#[cfg(test)]
mod sqlite_only_tests {
    use super::*;

    fn plan(s: &Store, sql: &str) -> Vec<String> {
        let conn = s.conn();
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        st.query_map(params![1], |r| r.get::<String>(3))
            .unwrap()
            .collect::<crate::store::db::DbResult<_>>()
            .unwrap()
    }

    /// The reads that look at a broadcast's rows in any state (the total at enqueue, resume, a
    /// copy's quiet-hours flag, the scans tests compare with) find them through
    /// `outbox_broadcast`, never by scanning the outbox, which holds every broadcast ever sent
    /// until pruned.
    #[test]
    fn reads_of_a_broadcasts_rows_in_any_state_use_its_index() {
        let s = Store::open_in_memory().unwrap();
        for sql in [
            BROADCAST_GROUPS_SQL,
            "SELECT count(*) FROM outbox WHERE broadcast_id = ?1",
            "SELECT quiet_off FROM outbox WHERE broadcast_id = ?1 LIMIT 1",
            "UPDATE outbox SET held = 0 WHERE broadcast_id = ?1",
        ] {
            let p = plan(&s, sql);
            assert!(
                p.iter()
                    .any(|l| l.contains("INDEX outbox_broadcast (broadcast_id=?)")),
                "{sql}: {p:?}"
            );
            assert!(
                !p.iter().any(|l| l.starts_with("SCAN outbox")),
                "{sql}: {p:?}"
            );
        }
    }

    /// Migration 0011 fills the part count of rows queued before it from their text.
    #[test]
    fn the_migration_estimates_the_parts_of_existing_rows() {
        let s = Store::open_in_memory().unwrap();
        let conn = s.conn();
        let est = |text: &str| -> i64 {
            conn.execute("DELETE FROM outbox", params![]).unwrap();
            conn.execute(
                "INSERT OR IGNORE INTO broadcasts (id, template, segment, created_at, state,
                                                   updated_at)
                 VALUES (1, 't', '*', 0, 'running', 0)",
                params![],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO outbox (to_number, text, kind, priority, broadcast_id, created_at,
                                     not_before, state)
                 VALUES ('+1', ?1, 'bulk', 1, 1, 0, 0, 'queued')",
                params![text],
            )
            .unwrap();
            let update = crate::store::schema::MIGRATIONS
                .iter()
                .find(|(n, _)| *n == "0010_broadcast_progress")
                .unwrap()
                .1
                .split(";\n")
                .find(|st| st.contains("UPDATE outbox SET parts"))
                .unwrap()
                .to_string();
            conn.execute(&update, params![]).unwrap();
            conn.query_row("SELECT parts FROM outbox", params![], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(est("hello\nthere"), 1);
        assert_eq!(est(&"a".repeat(160)), 1);
        assert_eq!(est(&"a".repeat(161)), 2);
        assert_eq!(est(&"ж".repeat(70)), 1);
        assert_eq!(est(&"ж".repeat(71)), 2);
    }
}
