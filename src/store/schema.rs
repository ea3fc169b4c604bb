//! Schema migrations: an ordered list of SQL files, applied by `PRAGMA user_version`.
//!
//! Version N means the first N files of [`MIGRATIONS`] have been applied. Each file runs in its own
//! transaction together with the `user_version` bump (the version lives in the database header,
//! which SQLite updates transactionally), so a crash mid-migration leaves the previous version
//! intact. A released file is never edited; changes go in a new file appended to the list.

use std::path::Path;

use rusqlite::Connection;

use super::{Result, SqlContext, StoreError};

/// The migrations, in order. Index `i` moves the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_initial", include_str!("migrations/0001_initial.sql")),
    (
        "0002_outbox_payload",
        include_str!("migrations/0002_outbox_payload.sql"),
    ),
    (
        "0003_inbound_processed",
        include_str!("migrations/0003_inbound_processed.sql"),
    ),
    (
        "0004_inbound_reviewed",
        include_str!("migrations/0004_inbound_reviewed.sql"),
    ),
    (
        "0005_submit_evidence",
        include_str!("migrations/0005_submit_evidence.sql"),
    ),
    (
        "0006_api_tokens",
        include_str!("migrations/0006_api_tokens.sql"),
    ),
    (
        "0007_broadcast_queue_index",
        include_str!("migrations/0007_broadcast_queue_index.sql"),
    ),
    ("0008_events", include_str!("migrations/0008_events.sql")),
    (
        "0009_member_fields",
        include_str!("migrations/0009_member_fields.sql"),
    ),
    (
        "0010_broadcast_progress",
        include_str!("migrations/0010_broadcast_progress.sql"),
    ),
    (
        "0011_owner_refs",
        include_str!("migrations/0011_owner_refs.sql"),
    ),
    (
        "0012_sim_identity",
        include_str!("migrations/0012_sim_identity.sql"),
    ),
    (
        "0013_web_console",
        include_str!("migrations/0013_web_console.sql"),
    ),
    (
        "0014_broadcast_counts",
        include_str!("migrations/0014_broadcast_counts.sql"),
    ),
    ("0015_sites", include_str!("migrations/0015_sites.sql")),
    (
        "0016_queued_broadcast_index",
        include_str!("migrations/0016_queued_broadcast_index.sql"),
    ),
];

/// Brings the database up to the newest schema this build knows.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .ctx("reading user_version")?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    // `found` is in 0..=known here, so the conversion cannot fail; a negative version (never
    // written by us) is treated as corrupt rather than panicking.
    let start = usize::try_from(found).map_err(|_| StoreError::NotADatabase {
        path: path.to_path_buf(),
        detail: format!("negative user_version {found}"),
    })?;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(start) {
        let version = index + 1;
        let fail = |source| StoreError::Migration {
            path: path.to_path_buf(),
            version,
            name,
            source,
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version as i64)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(version, name, path = %path.display(), "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_from_empty_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN \
                 ('modems','members','member_tags','consent_log','opt_outs','messages_in', \
                  'inbound_parts','broadcasts','outbox','outbox_parts','send_log','calls', \
                  'voicemails')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 13);
    }

    /// A database a build that knew only 0001 left behind (same pragmas and application id as
    /// `Store::open`, version 1) is brought to the newest version with every row intact, and the
    /// old outbox rows read back as texts.
    #[test]
    fn a_v1_database_upgrades_and_keeps_its_rows() {
        use crate::store::{ClaimRoute, MessageKind, NewOutbox, OutboxPayload, OutboxState, Store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            super::super::configure(&conn, &path).unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0].1).unwrap();
            tx.pragma_update(None, "user_version", 1).unwrap();
            tx.commit().unwrap();
            conn.execute_batch(
                "INSERT INTO outbox (to_number, text, kind, priority, created_at, not_before,
                                     state, concat_ref)
                 VALUES ('+15550001', 'still queued', 'reply', 200, 1, 1, 'queued', NULL),
                        ('+15550002', 'went out', 'direct', 150, 2, 2, 'sent', 77);
                 INSERT INTO consent_log (number, event, source, at)
                 VALUES ('+15550001', 'joined', 'sms', 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert!(MIGRATIONS.len() >= 2);
        let rows = store.list_outbox(None, None, 10).unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let sent = rows.iter().find(|r| r.to_number == "+15550002").unwrap();
        assert_eq!(
            (
                sent.text.as_str(),
                sent.state,
                sent.concat_ref,
                sent.payload
            ),
            ("went out", OutboxState::Sent, Some(77), OutboxPayload::Text)
        );
        let claimed = store
            .claim_next_routed("m", 10, &ClaimRoute::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            (claimed.text.as_str(), claimed.payload),
            ("still queued", OutboxPayload::Text)
        );
        let card = store
            .enqueue(
                &NewOutbox::new("+15550003", "BEGIN:VCARD\r\n", MessageKind::Reply, 20)
                    .with_payload(OutboxPayload::Vcard),
            )
            .unwrap();
        assert_eq!(
            store.outbox_row(card).unwrap().payload,
            OutboxPayload::Vcard
        );
        drop(store);
        // Reopening the upgraded file applies nothing more and keeps all three rows.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.list_outbox(None, None, 10).unwrap().len(), 3);
    }

    #[test]
    fn payload_column_accepts_only_known_values() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        let insert = |payload: &str| {
            conn.execute(
                "INSERT INTO outbox (to_number, text, kind, priority, created_at, not_before,
                                     state, payload)
                 VALUES ('+1', 'x', 'reply', 1, 1, 1, 'queued', ?1)",
                [payload],
            )
        };
        assert!(insert("text").is_ok());
        assert!(insert("vcard").is_ok());
        assert!(insert("binary").is_err());
    }

    #[test]
    fn consent_log_is_append_only() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        conn.execute(
            "INSERT INTO consent_log (number, event, source, at) VALUES ('+1', 'joined', 'sms', 1)",
            [],
        )
        .unwrap();
        assert!(conn.execute("UPDATE consent_log SET at = 2", []).is_err());
        assert!(conn.execute("DELETE FROM consent_log", []).is_err());
    }
}
