//! The event journal (`events`, filled by the triggers of migration 0008 and by
//! [`Store::append_event`]), the durable cursor of each consumer (a webhook or a local hook) and
//! the replays an operator asked for.
//!
//! What it owns: the SQL of those three tables. What it must not touch: HTTP, processes, retry
//! policy (the `hooks` module decides when to retry or give up and tells the store what
//! happened). Why a cursor per consumer and not a delivery row per (event, consumer): the
//! journal is ordered and each consumer goes through it in order (docs/http-api.md,
//! "Webhooks"), so one row per consumer is the whole queue state, a new webhook costs nothing on
//! the write path, and the backlog is `count(*)` of the ids above the cursor.
//!
//! Retention: [`Store::prune_events`] deletes events every configured consumer has passed and
//! that are older than the caller's cut-off, so the journal stays bounded whether or not anybody
//! consumes it.

use crate::store::db::{OptionalExtension, params};

use super::{Backend, Result, SqlContext, Store, StoreError};

/// Every event type the journal can carry. `sim_changed` and `low_balance` are written by
/// `Store::record_sim` and `Store::record_balance` (docs/modems.md, "SIM identity", "Balance").
pub const EVENT_TYPES: &[&str] = &[
    "message_received",
    "message_sent",
    "message_delivered",
    "message_failed",
    "member_joined",
    "member_opted_out",
    "member_opted_in",
    "call_ended",
    "voicemail_left",
    "broadcast_finished",
    "modem_down",
    "modem_up",
    "alert",
    "low_balance",
    "sim_changed",
    "owner_command",
];

/// The cursor name of a consumer: `webhook:NAME` or `hook:NAME`, so a webhook and a hook of the
/// same name keep separate positions.
pub fn consumer_key(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}

/// One journal row. `data` is the JSON object text as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEvent {
    pub id: i64,
    pub kind: String,
    /// Unix ms of the fact the event reports.
    pub at: i64,
    pub data: String,
}

/// The durable position and counters of one consumer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerRow {
    pub name: String,
    /// Every event with an id up to this one was delivered (or given up, or skipped by filter).
    pub last_id: i64,
    /// Failed attempts at the next event.
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub delivered_total: i64,
    pub failed_total: i64,
}

/// One replay an operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    pub id: i64,
    pub consumer: String,
    pub event_id: i64,
    pub requested_at: i64,
    pub done_at: Option<i64>,
    /// `delivered (HTTP 200)` or the error, once done.
    pub result: Option<String>,
}

const EVENT_COLUMNS: &str = "id, type, at, data";
const CONSUMER_COLUMNS: &str = "name, last_id, attempts, next_attempt_at, last_error, \
     last_error_at, last_success_at, delivered_total, failed_total";
const REPLAY_COLUMNS: &str = "id, consumer, event_id, requested_at, done_at, result";

fn event_from_row(r: &crate::store::db::Row<'_>) -> crate::store::db::DbResult<JournalEvent> {
    Ok(JournalEvent {
        id: r.get(0)?,
        kind: r.get(1)?,
        at: r.get(2)?,
        data: r.get(3)?,
    })
}

fn consumer_from_row(r: &crate::store::db::Row<'_>) -> crate::store::db::DbResult<ConsumerRow> {
    Ok(ConsumerRow {
        name: r.get(0)?,
        last_id: r.get(1)?,
        attempts: r.get(2)?,
        next_attempt_at: r.get(3)?,
        last_error: r.get(4)?,
        last_error_at: r.get(5)?,
        last_success_at: r.get(6)?,
        delivered_total: r.get(7)?,
        failed_total: r.get(8)?,
    })
}

fn replay_from_row(r: &crate::store::db::Row<'_>) -> crate::store::db::DbResult<ReplayRequest> {
    Ok(ReplayRequest {
        id: r.get(0)?,
        consumer: r.get(1)?,
        event_id: r.get(2)?,
        requested_at: r.get(3)?,
        done_at: r.get(4)?,
        result: r.get(5)?,
    })
}

/// The highest event id ever handed out (NULL before the first), as an SQL expression. Ids are
/// never reused, so this is not `max(id)`, which pruning lowers: SQLite keeps the counter of an
/// AUTOINCREMENT table in `sqlite_sequence`, PostgreSQL in the identity column's sequence (its
/// last value is NULL until the first id is drawn). The one place the two dialects cannot share
/// a text; a macro so that the statements below stay literals (cached, no `format!` per call).
macro_rules! last_id {
    (Sqlite) => {
        "(SELECT seq FROM sqlite_sequence WHERE name = 'events')"
    };
    (Postgres) => {
        "pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass)"
    };
}

/// Both dialects of one statement that reads the last event id, chosen by the connection.
macro_rules! by_backend {
    ($backend:expr, $($part:tt),+) => {
        match $backend {
            Backend::Sqlite => concat!($(by_backend!(@part Sqlite, $part)),+),
            Backend::Postgres => concat!($(by_backend!(@part Postgres, $part)),+),
        }
    };
    (@part $b:ident, LAST_ID) => { last_id!($b) };
    (@part $b:ident, $text:literal) => { $text };
}

/// `AND type IN (?, ?, …)` for a non-empty filter (values bound after `first` other
/// parameters); empty for "every type".
fn type_filter(types: &[String], first: usize) -> String {
    if types.is_empty() {
        return String::new();
    }
    let marks: Vec<String> = (0..types.len())
        .map(|i| format!("?{}", first + i + 1))
        .collect();
    format!(" AND type IN ({})", marks.join(", "))
}

impl Store {
    /// Appends an event that is not a stored fact (a modem down or up, an alert). `data` must be
    /// a JSON object. Returns its id.
    pub fn append_event(&self, kind: &str, data: &str, at: i64) -> Result<i64> {
        if !EVENT_TYPES.contains(&kind) {
            return Err(StoreError::InvalidArgument(format!("event type {kind:?}")));
        }
        self.write("appending an event", |tx| {
            let id: i64 = tx
                .query_row_cached(
                    "INSERT INTO events (type, at, data) VALUES (?1, ?2, json(?3)) RETURNING id",
                    params![kind, at, data],
                    |r| r.get(0),
                )
                .ctx("appending an event")?;
            Ok(id)
        })
    }

    /// Up to `limit` events after `after`, oldest first, of the given types (empty: all), all of
    /// them on disk: commits not yet fsynced are synced first.
    pub fn events_after(
        &self,
        after: i64,
        types: &[String],
        limit: u32,
    ) -> Result<Vec<JournalEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1{} ORDER BY id LIMIT ?2",
            type_filter(types, 2)
        );
        let mut values: Vec<crate::store::db::OwnedValue> =
            vec![after.into(), i64::from(limit).into()];
        values.extend(types.iter().map(|t| t.clone().into()));
        let conn = self.conn();
        // Only events on disk: a power cut can undo a commit made without its own fsync
        // (docs/store.md, "When a commit is fsynced"), and the id of an event it undid would be
        // reused by the next one, which a consumer that saw the first would skip as seen.
        self.sync_locked(&conn, "reading events", *self.commits.borrow())?;
        let mut st = conn.prepare_cached(&sql).ctx("reading events")?;
        st.query_map(&crate::store::db::param_refs(&values), event_from_row)
            .ctx("reading events")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("reading events")
    }

    /// One event by id (`None` once pruned or never written).
    pub fn event(&self, id: i64) -> Result<Option<JournalEvent>> {
        self.conn()
            .query_row_cached(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"),
                params![id],
                event_from_row,
            )
            .optional()
            .ctx("reading an event")
    }

    /// The highest event id ever written (0 for none), also after pruning.
    pub fn last_event_id(&self) -> Result<i64> {
        let conn = self.conn();
        conn.query_row_cached(
            by_backend!(conn.backend(), "SELECT coalesce(", LAST_ID, ", 0)"),
            params![],
            |r| r.get(0),
        )
        .ctx("reading the last event id")
    }

    /// The consumer's cursor, creating it at the journal's current end: a webhook added to the
    /// configuration receives the events from then on, not the history.
    pub fn ensure_consumer(&self, name: &str, now: i64) -> Result<ConsumerRow> {
        self.write("registering an event consumer", |tx| {
            tx.exec_cached(
                by_backend!(
                    tx.backend(),
                    "INSERT INTO event_consumers (name, last_id, created_at)
                     VALUES (?1, coalesce(",
                    LAST_ID,
                    ", 0), ?2) ON CONFLICT (name) DO NOTHING"
                ),
                params![name, now],
            )
            .ctx("registering an event consumer")?;
            Ok(())
        })?;
        self.consumer(name)?.ok_or_else(|| StoreError::NotFound {
            what: "event consumer",
            key: name.to_string(),
        })
    }

    /// A consumer's cursor and counters.
    pub fn consumer(&self, name: &str) -> Result<Option<ConsumerRow>> {
        self.conn()
            .query_row_cached(
                &format!("SELECT {CONSUMER_COLUMNS} FROM event_consumers WHERE name = ?1"),
                params![name],
                consumer_from_row,
            )
            .optional()
            .ctx("reading an event consumer")
    }

    /// Event `event_id` reached the consumer: the cursor moves to it, the retry state clears.
    pub fn consumer_delivered(&self, name: &str, event_id: i64, now: i64) -> Result<()> {
        self.update_consumer(
            "UPDATE event_consumers SET last_id = max(last_id, ?2), attempts = 0,
                    next_attempt_at = NULL, last_success_at = ?3,
                    delivered_total = delivered_total + 1
             WHERE name = ?1",
            params![name, event_id, now],
        )
    }

    /// Event `event_id` is given up after retrying: the cursor moves past it, the error stays.
    pub fn consumer_gave_up(&self, name: &str, event_id: i64, error: &str, now: i64) -> Result<()> {
        self.update_consumer(
            "UPDATE event_consumers SET last_id = max(last_id, ?2), attempts = 0,
                    next_attempt_at = NULL, last_error = ?3, last_error_at = ?4,
                    failed_total = failed_total + 1
             WHERE name = ?1",
            params![name, event_id, error, now],
        )
    }

    /// An attempt at the next event failed; it is tried again at `next_at`.
    pub fn consumer_retry(
        &self,
        name: &str,
        attempts: i64,
        next_at: i64,
        error: &str,
        now: i64,
    ) -> Result<()> {
        self.update_consumer(
            "UPDATE event_consumers SET attempts = ?2, next_attempt_at = ?3, last_error = ?4,
                    last_error_at = ?5
             WHERE name = ?1",
            params![name, attempts, next_at, error, now],
        )
    }

    /// Moves the cursor over events the consumer does not subscribe to (no counter changes), so
    /// its position never holds back pruning.
    pub fn consumer_skip_to(&self, name: &str, last_id: i64) -> Result<()> {
        self.update_consumer(
            "UPDATE event_consumers SET last_id = ?2 WHERE name = ?1 AND last_id < ?2",
            params![name, last_id],
        )
    }

    fn update_consumer(&self, sql: &str, values: crate::store::db::Params<'_>) -> Result<()> {
        self.write("updating an event consumer", |tx| {
            tx.exec_cached(sql, values)
                .ctx("updating an event consumer")?;
            Ok(())
        })
    }

    /// Events after the consumer's cursor of the given types (empty: all): its backlog.
    pub fn consumer_backlog(&self, name: &str, types: &[String]) -> Result<i64> {
        let sql = format!(
            "SELECT count(*) FROM events
             WHERE id > coalesce((SELECT last_id FROM event_consumers WHERE name = ?1),
                                 {}, 0){}",
            by_backend!(self.backend(), LAST_ID),
            type_filter(types, 1)
        );
        let mut values: Vec<crate::store::db::OwnedValue> = vec![name.to_string().into()];
        values.extend(types.iter().map(|t| t.clone().into()));
        self.conn()
            .query_row_cached(&sql, &crate::store::db::param_refs(&values), |r| r.get(0))
            .ctx("counting a backlog")
    }

    /// Deletes events older than `older_than` (unix ms) that every consumer in `consumers` has
    /// passed (consumers without a cursor yet are ignored), and finished replays as old. Returns
    /// how many events went.
    pub fn prune_events(&self, consumers: &[String], older_than: i64) -> Result<usize> {
        self.write("pruning the event journal", |tx| {
            let mut min_cursor = i64::MAX;
            for name in consumers {
                let last: Option<i64> = tx
                    .query_row_cached(
                        "SELECT last_id FROM event_consumers WHERE name = ?1",
                        params![name],
                        |r| r.get(0),
                    )
                    .optional()
                    .ctx("pruning the event journal")?;
                if let Some(last) = last {
                    min_cursor = min_cursor.min(last);
                }
            }
            let n = tx
                .exec_cached(
                    "DELETE FROM events WHERE id <= ?1 AND at < ?2",
                    params![min_cursor, older_than],
                )
                .ctx("pruning the event journal")?;
            tx.exec_cached(
                "DELETE FROM event_replays WHERE done_at IS NOT NULL AND done_at < ?1",
                params![older_than],
            )
            .ctx("pruning the event journal")?;
            Ok(n)
        })
    }

    /// Asks the consumer's worker to send event `event_id` once more, out of band. Fails with
    /// `NotFound` when the event is not in the journal (never written, or pruned).
    pub fn request_replay(&self, consumer: &str, event_id: i64, now: i64) -> Result<i64> {
        if self.event(event_id)?.is_none() {
            return Err(StoreError::NotFound {
                what: "event",
                key: event_id.to_string(),
            });
        }
        self.write("requesting a replay", |tx| {
            let id: i64 = tx.query_row_cached(
                "INSERT INTO event_replays (consumer, event_id, requested_at) VALUES (?1, ?2, ?3) RETURNING id",
                params![consumer, event_id, now],
                |r| r.get(0),
            )
            .ctx("requesting a replay")?;
            Ok(id)
        })
    }

    /// Replays of `consumer` not yet done, oldest first.
    pub fn pending_replays(&self, consumer: &str) -> Result<Vec<ReplayRequest>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {REPLAY_COLUMNS} FROM event_replays
                 WHERE consumer = ?1 AND done_at IS NULL ORDER BY id"
            ))
            .ctx("reading replays")?;
        st.query_map(params![consumer], replay_from_row)
            .ctx("reading replays")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("reading replays")
    }

    /// One replay request.
    pub fn replay(&self, id: i64) -> Result<Option<ReplayRequest>> {
        self.conn()
            .query_row_cached(
                &format!("SELECT {REPLAY_COLUMNS} FROM event_replays WHERE id = ?1"),
                params![id],
                replay_from_row,
            )
            .optional()
            .ctx("reading a replay")
    }

    /// Records the outcome of a replay.
    pub fn finish_replay(&self, id: i64, result: &str, now: i64) -> Result<()> {
        self.write("finishing a replay", |tx| {
            tx.exec_cached(
                "UPDATE event_replays SET done_at = ?2, result = ?3 WHERE id = ?1",
                params![id, now, result],
            )
            .ctx("finishing a replay")?;
            Ok(())
        })
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Inside as well: clippy exempts test helpers only in a module that carries it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        ConsentEvent, ConsentSource, MessageKind, NewMember, NewOutbox, NewSingle, OutboxState,
    };

    fn types(s: &Store) -> Vec<String> {
        s.events_after(0, &[], 1000)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    #[test]
    fn stored_facts_write_their_events_in_the_same_transaction() {
        let s = fresh();
        s.store_single(&NewSingle {
            modem: "m0".into(),
            sender: "+15550001".into(),
            text: "hello".into(),
            scts: "2026-01-01T00:00:00Z".into(),
            pdu_hex: None,
            received_at: 10,
        })
        .unwrap();
        let ev = s.events_after(0, &[], 10).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, "message_received");
        assert_eq!(ev[0].at, 10);
        let data: serde_json::Value = serde_json::from_str(&ev[0].data).unwrap();
        assert_eq!(data["from"], "+15550001");
        assert_eq!(data["text"], "hello");
        assert_eq!(data["complete"], true);

        s.add_member(
            &NewMember {
                number: "+15550002".into(),
                ..NewMember::default()
            },
            ConsentSource::Cli,
            20,
        )
        .unwrap();
        s.record_consent(
            "+15550002",
            ConsentEvent::OptedOut,
            Some("STOP"),
            ConsentSource::Sms,
            30,
        )
        .unwrap();
        s.record_consent(
            "+15550002",
            ConsentEvent::OptedIn,
            Some("START"),
            ConsentSource::Sms,
            40,
        )
        .unwrap();
        let id = s
            .enqueue(&NewOutbox::new("+15550003", "hi", MessageKind::Direct, 50))
            .unwrap();
        let row = s
            .claim_next_routed("m0", 60, &crate::store::ClaimRoute::default())
            .unwrap()
            .unwrap();
        assert_eq!(row.id, id);
        s.mark_failed(id, "rejected", 70).unwrap();
        assert_eq!(s.outbox_row(id).unwrap().state, OutboxState::Failed);
        assert_eq!(
            types(&s),
            [
                "message_received",
                "member_joined",
                "member_opted_out",
                "member_opted_in",
                "message_failed"
            ]
        );
        let failed = s.events_after(4, &[], 10).unwrap();
        let data: serde_json::Value = serde_json::from_str(&failed[0].data).unwrap();
        assert_eq!(
            (data["to"].as_str(), data["error"].as_str()),
            (Some("+15550003"), Some("rejected"))
        );
        assert_eq!(failed[0].at, 70);
    }

    #[test]
    fn cursors_filters_backlog_and_pruning() {
        let s = fresh();
        s.append_event("modem_up", r#"{"modem":"a"}"#, 1).unwrap();
        let c = s.ensure_consumer("webhook:x", 5).unwrap();
        assert_eq!(c.last_id, 1, "a new consumer starts at the end");
        assert!(s.append_event("no_such_type", "{}", 1).is_err());
        assert!(s.append_event("alert", "not json", 1).is_err());
        s.append_event("modem_down", r#"{"modem":"a"}"#, 2).unwrap();
        s.append_event("alert", r#"{"alert":"x"}"#, 3).unwrap();
        assert_eq!(s.consumer_backlog("webhook:x", &[]).unwrap(), 2);
        assert_eq!(
            s.consumer_backlog("webhook:x", &["alert".into()]).unwrap(),
            1
        );
        let only_alerts = s.events_after(1, &["alert".into()], 10).unwrap();
        assert_eq!(only_alerts.len(), 1);
        assert_eq!(only_alerts[0].id, 3);

        s.consumer_retry("webhook:x", 1, 100, "HTTP 500", 6)
            .unwrap();
        let c = s.consumer("webhook:x").unwrap().unwrap();
        assert_eq!(
            (c.attempts, c.next_attempt_at, c.last_error.as_deref()),
            (1, Some(100), Some("HTTP 500"))
        );
        s.consumer_delivered("webhook:x", 2, 7).unwrap();
        s.consumer_gave_up("webhook:x", 3, "timeout", 8).unwrap();
        let c = s.consumer("webhook:x").unwrap().unwrap();
        assert_eq!(
            (c.last_id, c.attempts, c.delivered_total, c.failed_total),
            (3, 0, 1, 1)
        );
        assert_eq!(c.last_success_at, Some(7));

        s.ensure_consumer("hook:y", 9).unwrap();
        s.append_event("alert", r#"{"alert":"y"}"#, 4).unwrap();
        // hook:y is at 3, webhook:x at 3: events 1..=3 may go once old enough, 4 stays.
        assert_eq!(
            s.prune_events(&["webhook:x".into(), "hook:y".into()], 3)
                .unwrap(),
            2
        );
        assert_eq!(
            s.prune_events(&["webhook:x".into(), "hook:y".into()], 100)
                .unwrap(),
            1
        );
        assert_eq!(s.events_after(0, &[], 10).unwrap().len(), 1);
        // Ids are never reused after pruning (receivers de-duplicate by id).
        assert_eq!(s.last_event_id().unwrap(), 4);
        assert_eq!(s.prune_events(&[], 100).unwrap(), 1);
        let next = s.append_event("alert", "{}", 5).unwrap();
        assert_eq!(next, 5);
    }

    #[test]
    fn replays_are_queued_and_finished() {
        let s = fresh();
        assert!(matches!(
            s.request_replay("webhook:x", 1, 1),
            Err(StoreError::NotFound { .. })
        ));
        let e = s.append_event("alert", "{}", 1).unwrap();
        let r = s.request_replay("webhook:x", e, 2).unwrap();
        assert_eq!(s.pending_replays("webhook:x").unwrap().len(), 1);
        s.finish_replay(r, "delivered (HTTP 200)", 3).unwrap();
        assert!(s.pending_replays("webhook:x").unwrap().is_empty());
        assert_eq!(
            s.replay(r).unwrap().unwrap().result.as_deref(),
            Some("delivered (HTTP 200)")
        );
    }
}
}
