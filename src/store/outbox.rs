//! The outbox: one row per recipient message, the single source of truth for what must be sent.
//! This file holds the row types, the shared row reader and transition guard, and the read-only
//! queries; the writes live in one file per responsibility:
//! `enqueue` (single rows, batches, broadcast expansion), `claim` (the one claim query and what a
//! live send loop does with a claim), `outcomes` (sent parts, final states, status reports),
//! `recovery` (rows in flight at a crash, in-doubt rows), `evidence` (what is known about a submit
//! in flight at a crash, and the status report that settles it) and `broadcasts` (a broadcast's life).
//!
//! State machine (docs/store.md draws it):
//! `queued → claimed → sent → delivered | failed`, with `claimed → queued` (retry),
//! `claimed → failed`, `queued → expired | cancelled`, and `claimed → in_doubt` only at start-up
//! for rows a crashed run left claimed. Every transition is a single guarded `UPDATE … WHERE
//! state IN (…)`; a transition from the wrong state is an error, never a silent overwrite.
//!
//! Why it looks like this:
//! - A row is claimed (committed) *before* `AT+CMGS`, so after a crash we know which sends were
//!   in flight and can apply a policy instead of resending blindly (bulk) or dropping (replies).
//! - There is one claim, `claim_next_routed`, in a `BEGIN IMMEDIATE` transaction: select the best
//!   due row, then flip it with `UPDATE … WHERE state = 'queued'`. Two claimers (threads,
//!   connections, later gateways) can never get the same row.
//! - STOP is enforced here too, not only in `community`: a non-compliance row to a suppressed
//!   number is cancelled (`opted_out`) when enqueued, when the STOP is recorded, and again at
//!   claim time. Compliance rows created at or after the opt-out (the STOP confirmation) pass;
//!   older ones do not.
//! - Paused broadcasts mark their queued rows `held`, so the due-row index skips them cheaply.
//! - `UNIQUE (broadcast_id, to_number)` makes "no member gets the same broadcast twice" a
//!   database fact, also when a broadcast's expansion is retried.

mod broadcasts;
mod claim;
mod counts;
mod enqueue;
mod evidence;
mod held;
mod orphans;
mod outcomes;
mod recovery;
pub(in crate::store) use recovery::recover_claimed_in;

use crate::store::db::{Conn, OptionalExtension, Row, params};

use super::{MessageKind, Result, SqlContext, Store, StoreError, flag, text_enum};

pub use broadcasts::{BroadcastGroup, BroadcastRow, BroadcastState};
pub use claim::{ClaimRoute, Claimed};
pub use counts::BroadcastCount;
pub(super) use enqueue::enqueue_in;
pub use evidence::SubmitEvidence;
pub use held::QueuedGroup;
pub use outcomes::{ReportIn, ReportMatch, SentMark};
pub use recovery::{RecoveryPolicy, RecoveryReport};

text_enum!(
    /// Where an outbox row is in its life.
    OutboxState, "outbox.state", {
        Queued => "queued",
        Claimed => "claimed",
        Sent => "sent",
        Delivered => "delivered",
        Failed => "failed",
        Expired => "expired",
        Cancelled => "cancelled",
        InDoubt => "in_doubt",
    }
);

impl OutboxState {
    /// True for states a row never leaves on its own.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OutboxState::Delivered
                | OutboxState::Failed
                | OutboxState::Expired
                | OutboxState::Cancelled
        )
    }
}

text_enum!(
    /// What an outbox row's `text` holds, which decides how the dispatcher encodes it (added by
    /// migration 0002; rows from before it are texts).
    #[derive(Default)]
    OutboxPayload, "outbox.payload", {
        /// An ordinary text: GSM 7-bit or UCS-2, concatenated when long.
        #[default]
        Text => "text",
        /// A vCard, sent as 8-bit data to application port 9204 (contact card `vcard_sms`).
        Vcard => "vcard",
    }
);

/// A message to enqueue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewOutbox {
    pub to_number: String,
    pub text: String,
    pub kind: MessageKind,
    pub priority: i64,
    pub broadcast_id: Option<i64>,
    /// The modem this should go out on (the member's home modem, sticky sender). Soft: if that
    /// modem is unknown or disabled, any modem may take the row.
    pub modem_pref: Option<String>,
    pub created_at: i64,
    /// Not claimable before this (scheduling, quiet hours, retry back-off).
    pub not_before: i64,
    /// Expires (never sent) if still queued at this time.
    pub expires_at: Option<i64>,
    /// How `text` is sent; a text unless set (also when absent from JSON).
    #[serde(default)]
    pub payload: OutboxPayload,
    /// SMS parts of `text`, when the enqueuer counted them (the store cannot: it does not
    /// segment). Read by a broadcast's ETA; `None` = count from the text when needed.
    #[serde(default)]
    pub parts: Option<u32>,
    /// The recipient's time zone at enqueue (`None` = the default zone); what a broadcast's ETA
    /// groups by, so its poll needs no join with the members.
    #[serde(default)]
    pub zone: Option<String>,
    /// This row ignores quiet hours (a broadcast sent with `--ignore-quiet-hours`).
    #[serde(default)]
    pub quiet_off: bool,
}

impl NewOutbox {
    /// A message due now with the kind's default priority and no TTL.
    pub fn new(
        to: impl Into<String>,
        text: impl Into<String>,
        kind: MessageKind,
        now: i64,
    ) -> Self {
        NewOutbox {
            to_number: to.into(),
            text: text.into(),
            kind,
            priority: kind.default_priority(),
            broadcast_id: None,
            modem_pref: None,
            created_at: now,
            not_before: now,
            expires_at: None,
            payload: OutboxPayload::Text,
            parts: None,
            zone: None,
            quiet_off: false,
        }
    }

    /// The same message with another payload type (`NewOutbox::new(..).with_payload(Vcard)`).
    pub fn with_payload(self, payload: OutboxPayload) -> Self {
        NewOutbox { payload, ..self }
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub to_number: String,
    pub text: String,
    pub kind: MessageKind,
    pub priority: i64,
    pub broadcast_id: Option<i64>,
    pub modem_pref: Option<String>,
    pub created_at: i64,
    pub not_before: i64,
    pub expires_at: Option<i64>,
    pub state: OutboxState,
    /// True while the row's broadcast is paused.
    pub held: bool,
    /// How many times the row was claimed (send attempts started).
    pub attempts: i64,
    pub last_error: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Concatenation reference used for the parts, kept so a resend can reuse it.
    pub concat_ref: Option<i64>,
    /// How `text` is sent.
    pub payload: OutboxPayload,
    /// Quiet hours do not hold this row (its broadcast overrode them).
    pub quiet_off: bool,
}

/// One sent part of an outbox row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxPart {
    pub outbox_id: i64,
    pub part: u8,
    pub total: u8,
    pub modem: String,
    /// TP-MR the modem returned in `+CMGS: <mr>`.
    pub mr: u8,
    pub sent_at: i64,
    /// TP-ST of the latest status report for this part.
    pub report_status: Option<u8>,
    pub delivered_at: Option<i64>,
}

/// Row counts per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StateCounts {
    pub queued: u64,
    pub claimed: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub expired: u64,
    pub cancelled: u64,
    pub in_doubt: u64,
}

impl StateCounts {
    pub fn total(&self) -> u64 {
        self.queued
            + self.claimed
            + self.sent
            + self.delivered
            + self.failed
            + self.expired
            + self.cancelled
            + self.in_doubt
    }

    /// Adds `n` rows in `state`.
    pub fn add(&mut self, state: OutboxState, n: u64) {
        let slot = match state {
            OutboxState::Queued => &mut self.queued,
            OutboxState::Claimed => &mut self.claimed,
            OutboxState::Sent => &mut self.sent,
            OutboxState::Delivered => &mut self.delivered,
            OutboxState::Failed => &mut self.failed,
            OutboxState::Expired => &mut self.expired,
            OutboxState::Cancelled => &mut self.cancelled,
            OutboxState::InDoubt => &mut self.in_doubt,
        };
        *slot += n;
    }
}

const ROW_COLUMNS: &str = "id, to_number, text, kind, priority, broadcast_id, modem_pref, \
     created_at, not_before, expires_at, state, held, attempts, last_error, claimed_by, \
     claimed_at, sent_at, delivered_at, finished_at, concat_ref, payload, quiet_off";

fn row_from(r: &Row<'_>) -> crate::store::db::DbResult<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        to_number: r.get(1)?,
        text: r.get(2)?,
        kind: r.get(3)?,
        priority: r.get(4)?,
        broadcast_id: r.get(5)?,
        modem_pref: r.get(6)?,
        created_at: r.get(7)?,
        not_before: r.get(8)?,
        expires_at: r.get(9)?,
        state: r.get(10)?,
        held: flag(r.get(11)?),
        attempts: r.get(12)?,
        last_error: r.get(13)?,
        claimed_by: r.get(14)?,
        claimed_at: r.get(15)?,
        sent_at: r.get(16)?,
        delivered_at: r.get(17)?,
        finished_at: r.get(18)?,
        concat_ref: r.get(19)?,
        payload: r.get(20)?,
        quiet_off: flag(r.get(21)?),
    })
}

fn state_of(tx: &Conn, id: i64) -> Result<OutboxState> {
    tx.query_row_cached("SELECT state FROM outbox WHERE id = ?1", params![id], |r| {
        r.get(0)
    })
    .optional()
    .ctx("reading an outbox row")?
    .ok_or_else(|| StoreError::NotFound {
        what: "outbox row",
        key: id.to_string(),
    })
}

/// One outbox row, on the caller's connection or transaction.
fn outbox_row_in(conn: &Conn, id: i64) -> Result<OutboxRow> {
    conn.query_row_cached(
        &format!("SELECT {ROW_COLUMNS} FROM outbox WHERE id = ?1"),
        params![id],
        row_from,
    )
    .optional()
    .ctx("reading an outbox row")?
    .ok_or_else(|| StoreError::NotFound {
        what: "outbox row",
        key: id.to_string(),
    })
}

/// The parts recorded for a row, by part number, on the caller's connection or transaction.
fn outbox_parts_in(conn: &Conn, id: i64) -> Result<Vec<OutboxPart>> {
    let mut st = conn
        .prepare_cached(
            "SELECT outbox_id, part, total, modem, mr, sent_at, report_status, delivered_at
             FROM outbox_parts WHERE outbox_id = ?1 ORDER BY part",
        )
        .ctx("reading parts")?;
    st.query_map(params![id], |r| {
        Ok(OutboxPart {
            outbox_id: r.get(0)?,
            part: r.get(1)?,
            total: r.get(2)?,
            modem: r.get(3)?,
            mr: r.get(4)?,
            sent_at: r.get(5)?,
            report_status: r.get(6)?,
            delivered_at: r.get(7)?,
        })
    })
    .ctx("reading parts")?
    .collect::<crate::store::db::DbResult<_>>()
    .ctx("reading parts")
}

/// Applies `sql` (which must bind ?1 = id and guard on the allowed states); if it changed no row,
/// reports why: unknown id or wrong state.
fn transition(
    tx: &Conn,
    id: i64,
    action: &'static str,
    sql: &str,
    params: crate::store::db::Params<'_>,
) -> Result<()> {
    let n = tx.exec_cached(sql, params).ctx(action)?;
    if n == 0 {
        let from = state_of(tx, id)?;
        return Err(StoreError::InvalidTransition {
            id,
            from: from.to_string(),
            action,
        });
    }
    Ok(())
}

impl Store {
    /// One outbox row.
    pub fn outbox_row(&self, id: i64) -> Result<OutboxRow> {
        outbox_row_in(&self.conn(), id)
    }

    /// Outbox rows, newest first, optionally by state and/or broadcast.
    pub fn list_outbox(
        &self,
        state: Option<OutboxState>,
        broadcast_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM outbox
                 WHERE (CAST(?1 AS TEXT) IS NULL OR state = ?1)
                   AND (CAST(?2 AS BIGINT) IS NULL OR broadcast_id = ?2)
                 ORDER BY id DESC LIMIT ?3"
            ))
            .ctx("listing the outbox")?;
        st.query_map(params![state, broadcast_id, limit], row_from)
            .ctx("listing the outbox")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("listing the outbox")
    }

    /// Row counts per state over the whole outbox.
    pub fn state_counts(&self) -> Result<StateCounts> {
        self.counts("SELECT state, count(*) FROM outbox GROUP BY state", None)
    }

    fn counts(&self, sql: &str, arg: Option<i64>) -> Result<StateCounts> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(sql).ctx("counting the outbox")?;
        let map = |r: &Row<'_>| Ok((r.get::<OutboxState>(0)?, r.get::<i64>(1)?));
        let rows: Vec<(OutboxState, i64)> = match arg {
            Some(a) => st.query_map(params![a], map),
            None => st.query_map(params![], map),
        }
        .and_then(|rows| rows.collect())
        .ctx("counting the outbox")?;
        let mut c = StateCounts::default();
        for (state, n) in rows {
            c.add(state, n.max(0) as u64);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod send_path_tests;
