//! Inbound SMS: single-part messages, the parts of concatenated ones, and the inbox.
//!
//! The modem layer deletes a message from the SIM only after one of these methods returned
//! `Ok`, so every write here must be idempotent: a crash between our commit and `AT+CMGD` makes
//! the same PDU show up again on the next `AT+CMGL`. Parts are keyed by
//! (modem, sender, reference, total, sequence, SCTS) and single messages by (modem, sender,
//! SCTS, PDU hex or text); a repeat returns the existing row and says so, so the caller neither
//! stores nor answers it twice. (Two truly identical texts from one sender within the same SCTS
//! second are indistinguishable on the SIM, and are stored once.)
//!
//! Reassembly itself is `pdu::Reassembler`'s job; the store keeps the parts durable
//! ([`Store::pending_parts`] reloads them after a restart) and turns a finished set into one
//! message atomically ([`Store::complete_message`]).

use crate::store::db::{OptionalExtension, Row, params};

use super::{Result, SqlContext, Store, StoreError, flag};

/// A single-part message as read from the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSingle {
    pub modem: String,
    pub sender: String,
    pub text: String,
    /// Service centre time stamp, RFC 3339 (pdu::Timestamp::to_rfc3339).
    pub scts: String,
    pub pdu_hex: Option<String>,
    pub received_at: i64,
}

/// Outcome of `store_single`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleOutcome {
    /// Newly stored: process it.
    Inserted(i64),
    /// Already stored earlier (re-read from the SIM): delete it from the SIM, do not process.
    Duplicate(i64),
}

impl SingleOutcome {
    pub fn id(self) -> i64 {
        match self {
            SingleOutcome::Inserted(id) | SingleOutcome::Duplicate(id) => id,
        }
    }
}

/// One part of a concatenated message as read from the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPart {
    pub modem: String,
    pub sender: String,
    pub reference: u16,
    pub total: u8,
    pub sequence: u8,
    pub text: String,
    pub scts: String,
    pub pdu_hex: Option<String>,
    pub stored_at: i64,
}

/// A stored part.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredPart {
    pub id: i64,
    pub modem: String,
    pub sender: String,
    pub reference: u16,
    pub total: u8,
    pub sequence: u8,
    pub text: String,
    pub scts: String,
    pub pdu_hex: Option<String>,
    pub stored_at: i64,
    /// Set once the part went into an assembled message.
    pub message_id: Option<i64>,
}

/// Outcome of `store_part`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartOutcome {
    pub id: i64,
    /// False when this part was already stored (re-listed from the SIM).
    pub new: bool,
    /// The message this part was assembled into, if any: then the caller must not feed the part
    /// to the reassembler again.
    pub message_id: Option<i64>,
}

/// A whole inbound message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InboundMessage {
    pub id: i64,
    pub modem: String,
    pub sender: String,
    pub text: String,
    pub received_at: i64,
    pub scts: Option<String>,
    pub parts_total: u8,
    pub complete: bool,
    pub read: bool,
    pub flag: Option<String>,
    pub thread: String,
}

pub(super) const MESSAGE_COLUMNS: &str =
    "id, modem, sender, text, received_at, scts, parts_total, complete, read, flag, thread";

pub(super) fn message_from(r: &Row<'_>) -> crate::store::db::DbResult<InboundMessage> {
    Ok(InboundMessage {
        id: r.get(0)?,
        modem: r.get(1)?,
        sender: r.get(2)?,
        text: r.get(3)?,
        received_at: r.get(4)?,
        scts: r.get(5)?,
        parts_total: r.get(6)?,
        complete: flag(r.get(7)?),
        read: flag(r.get(8)?),
        flag: r.get(9)?,
        thread: r.get(10)?,
    })
}

const PART_COLUMNS: &str =
    "id, modem, sender, reference, total, sequence, text, scts, pdu_hex, stored_at, message_id";

fn part_from(r: &Row<'_>) -> crate::store::db::DbResult<StoredPart> {
    Ok(StoredPart {
        id: r.get(0)?,
        modem: r.get(1)?,
        sender: r.get(2)?,
        reference: r.get(3)?,
        total: r.get(4)?,
        sequence: r.get(5)?,
        text: r.get(6)?,
        scts: r.get(7)?,
        pdu_hex: r.get(8)?,
        stored_at: r.get(9)?,
        message_id: r.get(10)?,
    })
}

impl Store {
    /// Stores a single-part message, idempotently (see the module doc).
    pub fn store_single(&self, m: &NewSingle) -> Result<SingleOutcome> {
        let body_key = m.pdu_hex.as_deref().unwrap_or(&m.text);
        self.write("storing an inbound message", |tx| {
            let inserted: Option<i64> = tx
                .query_row_cached(
                    "INSERT INTO messages_in (modem, sender, text, received_at, scts, parts_total,
                                              complete, thread, body_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, 1, ?2, ?6)
                     ON CONFLICT (modem, sender, scts, body_key) WHERE body_key IS NOT NULL
                     DO NOTHING
                     RETURNING id",
                    params![m.modem, m.sender, m.text, m.received_at, m.scts, body_key],
                    |r| r.get(0),
                )
                .optional()
                .ctx("storing an inbound message")?;
            if let Some(id) = inserted {
                return Ok(SingleOutcome::Inserted(id));
            }
            let id = tx
                .query_row_cached(
                    "SELECT id FROM messages_in
                     WHERE modem = ?1 AND sender = ?2 AND scts = ?3 AND body_key = ?4",
                    params![m.modem, m.sender, m.scts, body_key],
                    |r| r.get(0),
                )
                .ctx("storing an inbound message")?;
            Ok(SingleOutcome::Duplicate(id))
        })
    }

    /// Stores one part of a concatenated message, idempotently.
    pub fn store_part(&self, p: &NewPart) -> Result<PartOutcome> {
        if p.total == 0 || p.sequence == 0 || p.sequence > p.total {
            return Err(StoreError::InvalidArgument(format!(
                "part {} of {}",
                p.sequence, p.total
            )));
        }
        self.write("storing an inbound part", |tx| {
            let inserted: Option<i64> = tx
                .query_row_cached(
                    "INSERT INTO inbound_parts (modem, sender, reference, total, sequence, text,
                                                scts, pdu_hex, stored_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (modem, sender, reference, total, sequence, scts) DO NOTHING
                     RETURNING id",
                    params![
                        p.modem,
                        p.sender,
                        p.reference,
                        p.total,
                        p.sequence,
                        p.text,
                        p.scts,
                        p.pdu_hex,
                        p.stored_at
                    ],
                    |r| r.get(0),
                )
                .optional()
                .ctx("storing an inbound part")?;
            if let Some(id) = inserted {
                return Ok(PartOutcome {
                    id,
                    new: true,
                    message_id: None,
                });
            }
            let (id, message_id) = tx
                .query_row_cached(
                    "SELECT id, message_id FROM inbound_parts
                     WHERE modem = ?1 AND sender = ?2 AND reference = ?3 AND total = ?4
                       AND sequence = ?5 AND scts = ?6",
                    params![p.modem, p.sender, p.reference, p.total, p.sequence, p.scts],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .ctx("storing an inbound part")?;
            Ok(PartOutcome {
                id,
                new: false,
                message_id,
            })
        })
    }

    /// Parts not yet assembled into a message, in arrival order: feed them to a fresh
    /// reassembler after a restart.
    pub fn pending_parts(&self) -> Result<Vec<StoredPart>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {PART_COLUMNS} FROM inbound_parts WHERE message_id IS NULL ORDER BY id"
            ))
            .ctx("reading pending parts")?;
        st.query_map(params![], part_from)
            .ctx("reading pending parts")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("reading pending parts")
    }

    /// Turns assembled parts into one message: inserts it and marks every part used, in one
    /// transaction. Fails (storing nothing) if any id is unknown, already used, or the parts
    /// are not from one (modem, sender). `complete` is false for a timed-out partial message.
    /// Modem, sender, SCTS and parts total are taken from the lowest-sequence part.
    pub fn complete_message(
        &self,
        part_ids: &[i64],
        text: &str,
        complete: bool,
        received_at: i64,
    ) -> Result<i64> {
        let unavailable = || StoreError::PartsUnavailable {
            ids: part_ids.to_vec(),
        };
        if part_ids.is_empty() {
            return Err(unavailable());
        }
        self.write("assembling a message", |tx| {
            let mut parts = Vec::with_capacity(part_ids.len());
            for &id in part_ids {
                let p = tx
                    .query_row_cached(
                        &format!("SELECT {PART_COLUMNS} FROM inbound_parts WHERE id = ?1"),
                        params![id],
                        part_from,
                    )
                    .optional()
                    .ctx("assembling a message")?
                    .ok_or_else(unavailable)?;
                if p.message_id.is_some() {
                    return Err(unavailable());
                }
                parts.push(p);
            }
            parts.sort_by_key(|p| p.sequence);
            let first = parts.first().ok_or_else(unavailable)?;
            if parts
                .iter()
                .any(|p| p.modem != first.modem || p.sender != first.sender)
            {
                return Err(StoreError::InvalidArgument(
                    "parts from different modems or senders".into(),
                ));
            }
            let message_id: i64 = tx
                .query_row_cached(
                    "INSERT INTO messages_in (modem, sender, text, received_at, scts, parts_total,
                                          complete, thread)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?2) RETURNING id",
                    params![
                        first.modem,
                        first.sender,
                        text,
                        received_at,
                        first.scts,
                        first.total,
                        complete
                    ],
                    |r| r.get(0),
                )
                .ctx("assembling a message")?;
            for p in &parts {
                tx.exec_cached(
                    "UPDATE inbound_parts SET message_id = ?2 WHERE id = ?1 AND message_id IS NULL",
                    params![p.id, message_id],
                )
                .ctx("assembling a message")?;
            }
            Ok(message_id)
        })
    }

    /// One inbound message.
    pub fn inbound_message(&self, id: i64) -> Result<InboundMessage> {
        self.conn()
            .query_row_cached(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages_in WHERE id = ?1"),
                params![id],
                message_from,
            )
            .optional()
            .ctx("reading a message")?
            .ok_or_else(|| StoreError::NotFound {
                what: "inbound message",
                key: id.to_string(),
            })
    }

    /// The inbox, newest first; `unread_only` limits it to unread messages.
    pub fn inbox(&self, unread_only: bool, limit: u32) -> Result<Vec<InboundMessage>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages_in
                 WHERE (?1 = 0 OR read = 0) ORDER BY received_at DESC, id DESC LIMIT ?2"
            ))
            .ctx("reading the inbox")?;
        st.query_map(params![unread_only, limit], message_from)
            .ctx("reading the inbox")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("reading the inbox")
    }

    /// Messages with an id above `after`, oldest first (for clients that poll for what is new).
    pub fn inbox_since(
        &self,
        after: i64,
        unread_only: bool,
        limit: u32,
    ) -> Result<Vec<InboundMessage>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages_in
                 WHERE id > ?1 AND (?2 = 0 OR read = 0) ORDER BY id LIMIT ?3"
            ))
            .ctx("reading the inbox")?;
        st.query_map(params![after, unread_only, limit], message_from)
            .ctx("reading the inbox")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("reading the inbox")
    }

    /// Marks one message read or unread.
    pub fn set_message_read(&self, id: i64, read: bool) -> Result<()> {
        self.update_message(id, "UPDATE messages_in SET read = ?2 WHERE id = ?1", &read)
    }

    /// Sets or clears a message's flag (e.g. `possible_opt_out` for a near-miss STOP).
    pub fn set_message_flag(&self, id: i64, flag: Option<&str>) -> Result<()> {
        self.update_message(id, "UPDATE messages_in SET flag = ?2 WHERE id = ?1", &flag)
    }

    fn update_message(
        &self,
        id: i64,
        sql: &str,
        value: &dyn crate::store::db::ToParam,
    ) -> Result<()> {
        self.write("updating a message", |tx| {
            let n = tx
                .exec_cached(sql, params![id, value])
                .ctx("updating a message")?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "inbound message",
                    key: id.to_string(),
                });
            }
            Ok(())
        })
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Repeated inside: clippy allows `unwrap` in test helpers only under a visible `cfg(test)`.
#[cfg(test)]
mod tests {
    use super::*;

    fn single(text: &str, scts: &str) -> NewSingle {
        NewSingle {
            modem: "m0".into(),
            sender: "+15550001".into(),
            text: text.into(),
            scts: scts.into(),
            pdu_hex: Some(format!("07911326{:X}", text.len())),
            received_at: 1000,
        }
    }

    fn part(seq: u8, total: u8, text: &str) -> NewPart {
        NewPart {
            modem: "m0".into(),
            sender: "+15550001".into(),
            reference: 0x1234,
            total,
            sequence: seq,
            text: text.into(),
            scts: "2026-01-02T03:04:05+01:00".into(),
            pdu_hex: None,
            stored_at: 500,
        }
    }

    #[test]
    fn single_is_idempotent() {
        let s = fresh();
        let a = s
            .store_single(&single("JOIN", "2026-01-02T03:04:05+00:00"))
            .unwrap();
        let b = s
            .store_single(&single("JOIN", "2026-01-02T03:04:05+00:00"))
            .unwrap();
        assert!(matches!(a, SingleOutcome::Inserted(_)));
        assert_eq!(b, SingleOutcome::Duplicate(a.id()));
        // Same text at another time is a new message.
        let c = s
            .store_single(&single("JOIN", "2026-01-02T03:04:06+00:00"))
            .unwrap();
        assert!(matches!(c, SingleOutcome::Inserted(_)));
        // Without a PDU the text is the key.
        let mut d = single("hi", "t");
        d.pdu_hex = None;
        let d1 = s.store_single(&d).unwrap();
        assert_eq!(
            s.store_single(&d).unwrap(),
            SingleOutcome::Duplicate(d1.id())
        );
        assert_eq!(s.inbox(false, 10).unwrap().len(), 3);
        let m = s.inbound_message(a.id()).unwrap();
        assert_eq!(
            (m.thread.as_str(), m.complete, m.read, m.parts_total),
            ("+15550001", true, false, 1)
        );
    }

    /// One database opened again as a restart opens it: a file for SQLite, the same schema
    /// for PostgreSQL.
    enum Place {
        File(tempfile::TempDir),
        Schema(crate::store::pg::PgConfig),
    }

    impl Place {
        fn new() -> Place {
            match BACKEND {
                crate::store::Backend::Sqlite => Place::File(tempfile::tempdir().unwrap()),
                crate::store::Backend::Postgres => {
                    Place::Schema(crate::store::testing::pg_config())
                }
            }
        }

        fn open(&self) -> Store {
            match self {
                Place::File(dir) => Store::open(dir.path().join("g.db")).unwrap(),
                Place::Schema(config) => Store::open_postgres(config.clone()).unwrap(),
            }
        }
    }

    #[test]
    fn parts_are_idempotent_reload_and_assemble_atomically() {
        let place = Place::new();
        let (p1, p2);
        {
            let s = place.open();
            p2 = s.store_part(&part(2, 3, "world")).unwrap();
            p1 = s.store_part(&part(1, 3, "hello ")).unwrap();
            assert!(p1.new && p2.new);
            let again = s.store_part(&part(1, 3, "hello ")).unwrap();
            assert_eq!(
                again,
                PartOutcome {
                    id: p1.id,
                    new: false,
                    message_id: None
                }
            );
        }
        // After a restart the unassembled parts come back, in arrival order.
        let s = place.open();
        let pending = s.pending_parts().unwrap();
        assert_eq!(
            pending.iter().map(|p| p.sequence).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(pending[0].reference, 0x1234);
        // A timed-out partial message.
        let id = s
            .complete_message(&[p2.id, p1.id], "hello world", false, 900)
            .unwrap();
        let m = s.inbound_message(id).unwrap();
        assert_eq!(
            (m.text.as_str(), m.complete, m.parts_total),
            ("hello world", false, 3)
        );
        assert_eq!(m.scts.as_deref(), Some("2026-01-02T03:04:05+01:00"));
        assert!(s.pending_parts().unwrap().is_empty());
        // Re-listing a used part reports its message; using it again fails and stores nothing.
        let again = s.store_part(&part(2, 3, "world")).unwrap();
        assert_eq!(again.message_id, Some(id));
        let p3 = s.store_part(&part(3, 3, "!")).unwrap();
        assert!(matches!(
            s.complete_message(&[p3.id, p1.id], "x", true, 1),
            Err(StoreError::PartsUnavailable { .. })
        ));
        assert_eq!(s.pending_parts().unwrap().len(), 1);
        assert_eq!(s.inbox(false, 10).unwrap().len(), 1);
        assert!(s.complete_message(&[], "x", true, 1).is_err());
        assert!(s.complete_message(&[9999], "x", true, 1).is_err());
        assert!(s.store_part(&part(4, 3, "bad")).is_err());
    }

    #[test]
    fn read_and_flag() {
        let s = fresh();
        let id = s.store_single(&single("stpo", "t1")).unwrap().id();
        s.set_message_flag(id, Some("possible_opt_out")).unwrap();
        assert_eq!(s.inbox(true, 10).unwrap().len(), 1);
        s.set_message_read(id, true).unwrap();
        assert!(s.inbox(true, 10).unwrap().is_empty());
        let m = s.inbound_message(id).unwrap();
        assert_eq!(m.flag.as_deref(), Some("possible_opt_out"));
        assert!(s.set_message_read(424242, true).is_err());
    }

    #[test]
    fn inbox_since_pages_forward_by_id_and_filters_unread() {
        let s = fresh();
        let ids: Vec<i64> = (0..4)
            .map(|i| {
                s.store_single(&single(&format!("text {i}"), &format!("t{i}")))
                    .unwrap()
                    .id()
            })
            .collect();
        s.set_message_read(ids[2], true).unwrap();
        let got = |after, unread_only, limit| -> Vec<i64> {
            s.inbox_since(after, unread_only, limit)
                .unwrap()
                .iter()
                .map(|m| m.id)
                .collect()
        };
        assert_eq!(got(0, false, 10), ids);
        assert_eq!(got(ids[0], false, 2), ids[1..3].to_vec());
        assert_eq!(got(ids[0], true, 10), vec![ids[1], ids[3]]);
        assert!(got(ids[3], false, 10).is_empty());
    }
}
}
