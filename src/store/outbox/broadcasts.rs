//! A broadcast's life: scheduled → running → done, paused and resumed, cancelled; its progress
//! (row counts per state) and the queued rows its ETA is computed from. The rows themselves are
//! written by `enqueue` (`create_broadcast*`) in the transaction that creates the broadcast.
//!
//! Pausing marks the broadcast's queued rows `held` instead of moving them to another state, so
//! the claim's partial index skips them cheaply and resuming is one `UPDATE`. A broadcast is
//! `done` when no row is queued, claimed or in doubt; [`Store::refresh_broadcasts`] moves it
//! there (and starts scheduled ones) because nothing else watches the clock down here.

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::StateCounts;
use crate::store::{Result, SqlContext, Store, StoreError, text_enum};

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

pub(super) fn broadcast_from(r: &Row<'_>) -> rusqlite::Result<BroadcastRow> {
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
    /// Row counts per state for one broadcast (its progress).
    pub fn broadcast_progress(&self, broadcast_id: i64) -> Result<StateCounts> {
        self.counts(
            "SELECT state, count(*) FROM outbox WHERE broadcast_id = ?1 GROUP BY state",
            Some(broadcast_id),
        )
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
        let mut rows = st
            .query([broadcast_id])
            .ctx("reading a broadcast's queue")?;
        while let Some(r) = rows.next().ctx("reading a broadcast's queue")? {
            let modem: Option<String> = r.get(0).ctx("reading a broadcast's queue")?;
            let zone: Option<String> = r.get(1).ctx("reading a broadcast's queue")?;
            let text: String = r.get(2).ctx("reading a broadcast's queue")?;
            f(modem.as_deref(), zone.as_deref(), &text);
        }
        Ok(())
    }

    /// One broadcast.
    pub fn broadcast(&self, id: i64) -> Result<BroadcastRow> {
        self.conn()
            .query_row(
                &format!("SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE id = ?1"),
                [id],
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
        st.query_map([limit], broadcast_from)
            .ctx("listing broadcasts")?
            .collect::<rusqlite::Result<_>>()
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
                tx.execute(
                    "UPDATE outbox SET held = 1 WHERE broadcast_id = ?1 AND state = 'queued'",
                    [id],
                )
                .map(drop)
            },
        )
    }

    /// paused → running; its rows become claimable again.
    pub fn resume_broadcast(&self, id: i64, now: i64) -> Result<()> {
        self.broadcast_transition(id, now, "resume", &["paused"], "running", |tx| {
            tx.execute("UPDATE outbox SET held = 0 WHERE broadcast_id = ?1", [id])
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
                n = tx.execute(
                    "UPDATE outbox SET state = 'cancelled', last_error = 'broadcast cancelled',
                                       finished_at = ?2, held = 0
                     WHERE broadcast_id = ?1 AND state = 'queued'",
                    params![id, now],
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
        rows: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<()> {
        self.write("changing a broadcast", |tx| {
            let state: BroadcastState = tx
                .query_row("SELECT state FROM broadcasts WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
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
            rows(tx).ctx("changing a broadcast")
        })
    }

    /// Moves broadcasts along by time and progress: scheduled → running once `scheduled_at` has
    /// come; running → done once no row is queued, claimed or in doubt. Returns how many changed.
    pub fn refresh_broadcasts(&self, now: i64) -> Result<usize> {
        self.write("refreshing broadcasts", |tx| {
            let started = tx
                .execute(
                    "UPDATE broadcasts SET state = 'running', updated_at = ?1
                     WHERE state = 'scheduled' AND (scheduled_at IS NULL OR scheduled_at <= ?1)",
                    [now],
                )
                .ctx("refreshing broadcasts")?;
            let done = tx
                .execute(
                    "UPDATE broadcasts SET state = 'done', updated_at = ?1
                     WHERE state = 'running' AND NOT EXISTS (
                         SELECT 1 FROM outbox o WHERE o.broadcast_id = broadcasts.id
                           AND o.state IN ('queued', 'claimed', 'in_doubt'))",
                    [now],
                )
                .ctx("refreshing broadcasts")?;
            Ok(started + done)
        })
    }
}
