//! The outbox (one row per recipient message, the single source of truth for what must be sent),
//! its per-part send records, delivery reports, crash recovery, and broadcasts.
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
//! - `claim_next` runs in a `BEGIN IMMEDIATE` transaction: select the best due row, then flip it
//!   with `UPDATE … WHERE state = 'queued' RETURNING`. Two claimers (threads, connections, later
//!   gateways) can never get the same row.
//! - STOP is enforced here too, not only in `community`: a non-compliance row to a suppressed
//!   number is cancelled (`opted_out`) when enqueued, when the STOP is recorded, and again at
//!   claim time. Compliance rows created at or after the opt-out (the STOP confirmation) pass;
//!   older ones do not.
//! - Paused broadcasts mark their queued rows `held`, so the due-row index skips them cheaply.
//! - `UNIQUE (broadcast_id, to_number)` makes "no member gets the same broadcast twice" a
//!   database fact, also when a broadcast's expansion is retried.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::members::{Member, Segment, scan_segment};
use super::{MessageKind, Result, SqlContext, Store, StoreError, flag, text_enum};

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

/// Restricts what `claim_next` may take (the dispatcher's rate budget).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimFilter {
    /// Only rows with at least this priority.
    pub min_priority: Option<i64>,
    /// Only these kinds; empty means all kinds.
    pub kinds: Vec<MessageKind>,
}

/// What to do with rows a previous run left `claimed` (send in flight at the crash).
/// Kinds set to `true` are queued again (a possible duplicate); the others stay `in_doubt` for a
/// person to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecoveryPolicy {
    pub resend_reply: bool,
    pub resend_compliance: bool,
    pub resend_direct: bool,
    pub resend_bulk: bool,
}

impl Default for RecoveryPolicy {
    /// Resend replies and compliance texts (short, expected, harmless if doubled); never resend
    /// bulk or the leader's direct messages without a person deciding.
    fn default() -> Self {
        RecoveryPolicy {
            resend_reply: true,
            resend_compliance: true,
            resend_direct: false,
            resend_bulk: false,
        }
    }
}

impl RecoveryPolicy {
    fn resend(&self, kind: MessageKind) -> bool {
        match kind {
            MessageKind::Reply => self.resend_reply,
            MessageKind::Compliance => self.resend_compliance,
            MessageKind::Direct => self.resend_direct,
            MessageKind::Bulk => self.resend_bulk,
        }
    }
}

/// Counts from `recover_after_restart`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    /// Rows found claimed (all became in_doubt first).
    pub found_claimed: usize,
    /// Of those, queued again by the policy.
    pub requeued: usize,
    /// Of those, left in_doubt.
    pub left_in_doubt: usize,
}

/// The row a status report was matched to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReportMatch {
    pub outbox_id: i64,
    pub part: u8,
    /// The row's state after the report was applied.
    pub state: OutboxState,
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

    fn add(&mut self, state: OutboxState, n: u64) {
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

/// How long after sending a part a status report may still be matched to it. Reports for a
/// phone that was off arrive when it comes back, within the validity period (days at most).
pub const STATUS_REPORT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// The best due row for a modem. `INDEXED BY` pins the partial index `outbox_due`, whose order
/// is the claim order, so a claim walks the index instead of sorting the queue (and preparing the
/// statement fails loudly if a schema change ever made that impossible).
const CLAIM_CANDIDATE_SQL: &str = "
    SELECT o.id, o.kind, o.expires_at, o.created_at,
           (SELECT since FROM opt_outs s WHERE s.number = o.to_number)
    FROM outbox o INDEXED BY outbox_due
    WHERE o.state = 'queued' AND o.held = 0 AND o.not_before <= ?1
      AND o.priority >= ?3
      AND o.kind IN (?4, ?5, ?6, ?7)
      AND (o.modem_pref IS NULL OR o.modem_pref = ?2
           OR NOT EXISTS (SELECT 1 FROM modems m WHERE m.name = o.modem_pref AND m.enabled = 1))
    ORDER BY o.priority DESC, o.not_before, o.id
    LIMIT 1";

const ROW_COLUMNS: &str = "id, to_number, text, kind, priority, broadcast_id, modem_pref, \
     created_at, not_before, expires_at, state, held, attempts, last_error, claimed_by, \
     claimed_at, sent_at, delivered_at, finished_at, concat_ref, payload";

fn row_from(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
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
    })
}

const BROADCAST_COLUMNS: &str =
    "id, template, segment, created_at, scheduled_at, state, total, updated_at";

fn broadcast_from(r: &Row<'_>) -> rusqlite::Result<BroadcastRow> {
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

/// Delivery class of a TP-ST value (3GPP TS 23.040 §9.2.3.15; MODEMS.md "Status reports"):
/// 0x00–0x1F transaction completed, 0x20–0x3F temporary error with the SC still trying,
/// 0x40–0x5F permanent error, 0x60–0x7F temporary error with the SC no longer trying. Like
/// chan_dongle and chan_quectel, any value with bit 0x40 set counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReportClass {
    Delivered,
    Pending,
    Failed,
}

fn classify_status(st: u8) -> ReportClass {
    if st & 0x40 != 0 {
        ReportClass::Failed
    } else if st & 0x20 != 0 {
        ReportClass::Pending
    } else {
        ReportClass::Delivered
    }
}

/// Do two renderings of a phone number name the same subscriber? Status reports often carry the
/// recipient in national format (`0612…`) while the outbox has E.164 (`+33612…`), so digits are
/// compared without leading zeros and a match on the last 8+ digits is accepted.
fn same_number(a: &str, b: &str) -> bool {
    // Leading zeros are trunk or international prefixes (0612…, 0033…), never subscriber digits.
    let digits = |s: &str| -> Vec<char> {
        let d: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
        let zeros = d.iter().take_while(|c| **c == '0').count();
        d[zeros..].to_vec()
    };
    let (da, db) = (digits(a), digits(b));
    if da.is_empty() || db.is_empty() {
        return false;
    }
    if da == db {
        return true;
    }
    let n = da.len().min(db.len());
    n >= 8 && da[da.len() - n..] == db[db.len() - n..]
}

fn state_of(tx: &Transaction<'_>, id: i64) -> Result<OutboxState> {
    tx.query_row("SELECT state FROM outbox WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .ctx("reading an outbox row")?
        .ok_or_else(|| StoreError::NotFound {
            what: "outbox row",
            key: id.to_string(),
        })
}

/// Applies `sql` (which must bind ?1 = id and guard on the allowed states); if it changed no row,
/// reports why: unknown id or wrong state.
fn transition(
    tx: &Transaction<'_>,
    id: i64,
    action: &'static str,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<()> {
    let n = tx.execute(sql, params).ctx(action)?;
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

/// After a part report or `mark_sent`: a sent (or in-doubt) row whose every part is delivered
/// becomes `delivered`; one with any failed part becomes `failed`.
fn settle_delivery(tx: &Transaction<'_>, id: i64, now: i64) -> Result<OutboxState> {
    let state = state_of(tx, id)?;
    if !matches!(state, OutboxState::Sent | OutboxState::InDoubt) {
        return Ok(state);
    }
    let (total, delivered, failed_status, last_delivery): (
        Option<i64>,
        i64,
        Option<i64>,
        Option<i64>,
    ) = tx
        .query_row(
            "SELECT max(total),
                    count(*) FILTER (WHERE delivered_at IS NOT NULL),
                    max(report_status) FILTER (WHERE report_status & 64 <> 0),
                    max(delivered_at)
             FROM outbox_parts WHERE outbox_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .ctx("settling delivery")?;
    if let Some(st) = failed_status {
        tx.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?2, finished_at = ?3 WHERE id = ?1",
            params![id, format!("status report TP-ST {st:#04x}"), now],
        )
        .ctx("settling delivery")?;
        return Ok(OutboxState::Failed);
    }
    if let Some(total) = total
        && delivered >= total
    {
        tx.execute(
            "UPDATE outbox SET state = 'delivered', delivered_at = ?2, finished_at = ?3,
                               sent_at = coalesce(sent_at, ?2)
             WHERE id = ?1",
            params![id, last_delivery, now],
        )
        .ctx("settling delivery")?;
        return Ok(OutboxState::Delivered);
    }
    Ok(state)
}

/// Inserts a broadcast row: `scheduled` when it starts later than `now`, else `running`.
fn insert_broadcast(
    tx: &Transaction<'_>,
    template: &str,
    segment: &str,
    scheduled_at: Option<i64>,
    now: i64,
) -> Result<i64> {
    let state = match scheduled_at {
        Some(t) if t > now => BroadcastState::Scheduled,
        _ => BroadcastState::Running,
    };
    tx.execute(
        "INSERT INTO broadcasts (template, segment, created_at, scheduled_at, state, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?3)",
        params![template, segment, now, scheduled_at, state],
    )
    .ctx("creating a broadcast")?;
    Ok(tx.last_insert_rowid())
}

/// Inserts outbox rows inside one transaction with statements prepared once (this is the hot
/// loop of a 100k-recipient broadcast).
struct Inserter<'t> {
    tx: &'t Transaction<'t>,
    suppressed: rusqlite::Statement<'t>,
    insert: rusqlite::Statement<'t>,
    broadcasts: HashMap<i64, Option<BroadcastState>>,
}

impl<'t> Inserter<'t> {
    fn new(tx: &'t Transaction<'t>) -> Result<Self> {
        Ok(Inserter {
            tx,
            suppressed: tx
                .prepare("SELECT EXISTS (SELECT 1 FROM opt_outs WHERE number = ?1)")
                .ctx("enqueueing")?,
            insert: tx
                .prepare(
                    "INSERT INTO outbox (to_number, text, kind, priority, broadcast_id, modem_pref,
                                         created_at, not_before, expires_at, state, held,
                                         last_error, finished_at, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                     ON CONFLICT (broadcast_id, to_number) DO NOTHING",
                )
                .ctx("enqueueing")?,
            broadcasts: HashMap::new(),
        })
    }

    /// Inserts one row (into `broadcast`, overriding the row's own, when given); returns
    /// `Some(id)`, or `None` when the (broadcast, number) pair already exists.
    fn insert(&mut self, m: &NewOutbox, broadcast: Option<i64>) -> Result<Option<i64>> {
        if m.to_number.trim().is_empty() {
            return Err(StoreError::InvalidArgument("empty recipient number".into()));
        }
        let broadcast_id = broadcast.or(m.broadcast_id);
        let mut state = OutboxState::Queued;
        let mut held = false;
        let mut error: Option<&str> = None;
        if let Some(b) = broadcast_id {
            let bstate = match self.broadcasts.get(&b) {
                Some(s) => *s,
                None => {
                    let s: Option<BroadcastState> = self
                        .tx
                        .query_row("SELECT state FROM broadcasts WHERE id = ?1", [b], |r| {
                            r.get(0)
                        })
                        .optional()
                        .ctx("reading a broadcast")?;
                    self.broadcasts.insert(b, s);
                    s
                }
            };
            match bstate {
                None => {
                    return Err(StoreError::NotFound {
                        what: "broadcast",
                        key: b.to_string(),
                    });
                }
                Some(BroadcastState::Paused) => held = true,
                Some(BroadcastState::Cancelled) => {
                    state = OutboxState::Cancelled;
                    error = Some("broadcast cancelled");
                }
                Some(_) => {}
            }
        }
        if m.kind != MessageKind::Compliance {
            let suppressed: bool = self
                .suppressed
                .query_row([&m.to_number], |r| r.get(0))
                .ctx("checking the suppression list")?;
            if suppressed {
                state = OutboxState::Cancelled;
                error = Some("opted_out");
            }
        }
        let finished = (state != OutboxState::Queued).then_some(m.created_at);
        let n = self
            .insert
            .execute(params![
                m.to_number,
                m.text,
                m.kind,
                m.priority,
                broadcast_id,
                m.modem_pref,
                m.created_at,
                m.not_before,
                m.expires_at,
                state,
                held,
                error,
                finished,
                m.payload
            ])
            .ctx("enqueueing")?;
        Ok((n > 0).then(|| self.tx.last_insert_rowid()))
    }

    fn refresh_totals(&self) -> Result<()> {
        for b in self.broadcasts.keys() {
            self.tx
                .execute(
                    "UPDATE broadcasts SET total = (SELECT count(*) FROM outbox WHERE broadcast_id = ?1)
                     WHERE id = ?1",
                    [b],
                )
                .ctx("counting broadcast rows")?;
        }
        Ok(())
    }
}

impl Store {
    /// Enqueues one message; durable (fsynced) when this returns. Returns the row id. For a
    /// broadcast row whose (broadcast, number) already exists, returns the existing row's id.
    /// A non-compliance message to a suppressed number is stored as `cancelled` (`opted_out`).
    pub fn enqueue(&self, m: &NewOutbox) -> Result<i64> {
        self.write("enqueueing", |tx| enqueue_in(tx, m))
    }

    /// Enqueues many messages in one transaction (all or none). Rows whose (broadcast, number)
    /// already exists are skipped. Returns how many rows were inserted.
    pub fn enqueue_many(&self, rows: &[NewOutbox]) -> Result<usize> {
        self.write("enqueueing many", |tx| {
            let mut ins = Inserter::new(tx)?;
            let mut inserted = 0;
            for m in rows {
                inserted += usize::from(ins.insert(m, None)?.is_some());
            }
            ins.refresh_totals()?;
            Ok(inserted)
        })
    }

    /// Creates a broadcast and its recipient rows in one transaction, so a crash can never leave a
    /// half-expanded broadcast. Each row's `broadcast_id` is set to the new id; `not_before` of a
    /// scheduled broadcast should be its `scheduled_at`. Returns (broadcast id, rows inserted).
    pub fn create_broadcast(
        &self,
        template: &str,
        segment: &str,
        scheduled_at: Option<i64>,
        rows: &[NewOutbox],
        now: i64,
    ) -> Result<(i64, usize)> {
        self.write("creating a broadcast", |tx| {
            let id = insert_broadcast(tx, template, segment, scheduled_at, now)?;
            let mut ins = Inserter::new(tx)?;
            let mut inserted = 0;
            for m in rows {
                inserted += usize::from(ins.insert(m, Some(id))?.is_some());
            }
            ins.refresh_totals()?;
            Ok((id, inserted))
        })
    }

    /// Creates a broadcast to the members matching `members`, streaming: one cursor walks the
    /// segment in join order and `row_for(member, suppressed)` decides each member's copy (`None`
    /// = not a recipient); every copy is inserted as it comes, with prepared statements, into
    /// the broadcast created first. Neither the members nor the rows are ever collected, so
    /// memory does not grow with the segment (a 100,000-member broadcast: docs/benchmarks.md).
    ///
    /// All of it is one `BEGIN IMMEDIATE` transaction, committed (fsynced) before this returns:
    /// a crash or an error at any point leaves no broadcast and no row, never a half-expanded
    /// one (in WAL mode, frames of an uncommitted transaction are ignored on recovery), so a
    /// failed enqueue is simply asked for again. When `row_for` produced no row at all, nothing
    /// is written and this returns `Ok(None)`; otherwise (broadcast id, rows inserted). The
    /// suppression flag comes from the same transaction as the insert, so no opt-out can slip in
    /// between the decision and the row (rows to suppressed numbers are stored `cancelled`
    /// anyway, like every enqueue).
    ///
    /// `row_for` runs while the store's connection is locked: it must not call back into this
    /// `Store`. Other users of the store (dispatch, inbound) wait for the commit.
    pub fn create_broadcast_streamed(
        &self,
        template: &str,
        segment: &str,
        scheduled_at: Option<i64>,
        members: &Segment,
        now: i64,
        mut row_for: impl FnMut(&Member, bool) -> Option<NewOutbox>,
    ) -> Result<Option<(i64, usize)>> {
        const OP: &str = "creating a broadcast";
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx(OP)?;
        let id = insert_broadcast(&tx, template, segment, scheduled_at, now)?;
        let mut produced = 0usize;
        let mut inserted = 0usize;
        {
            let mut ins = Inserter::new(&tx)?;
            scan_segment(&tx, members, |m, suppressed| {
                if let Some(row) = row_for(m, suppressed) {
                    produced += 1;
                    inserted += usize::from(ins.insert(&row, Some(id))?.is_some());
                }
                Ok(())
            })?;
            if produced == 0 {
                // Dropping the transaction rolls the broadcast row back.
                return Ok(None);
            }
            ins.refresh_totals()?;
        }
        tx.commit().ctx(OP)?;
        Ok(Some((id, inserted)))
    }

    /// Atomically takes the best due row for `modem`: highest priority, then earliest
    /// `not_before`, then oldest; due (`not_before <= now`), not held, and either without a modem
    /// preference, preferring this modem, or preferring a modem that is unknown or disabled.
    /// On the way, expired rows become `expired` and rows to suppressed numbers become
    /// `cancelled` (`opted_out`); neither is ever returned. The returned row is `claimed`.
    pub fn claim_next(
        &self,
        modem: &str,
        now: i64,
        filter: &ClaimFilter,
    ) -> Result<Option<OutboxRow>> {
        let kinds: Vec<MessageKind> = if filter.kinds.is_empty() {
            MessageKind::ALL.to_vec()
        } else {
            filter.kinds.clone()
        };
        // Pad to four bound values so the statement text (and its cache entry) never changes.
        let k = |i: usize| {
            kinds
                .get(i)
                .or(kinds.first())
                .copied()
                .unwrap_or(MessageKind::Compliance)
        };
        let min_priority = filter.min_priority.unwrap_or(i64::MIN);
        self.write("claiming", |tx| {
            loop {
                let candidate = tx
                    .prepare_cached(CLAIM_CANDIDATE_SQL)
                    .and_then(|mut st| {
                        st.query_row(
                            params![now, modem, min_priority, k(0), k(1), k(2), k(3)],
                            |r| {
                                Ok((
                                    r.get::<_, i64>(0)?,
                                    r.get::<_, MessageKind>(1)?,
                                    r.get::<_, Option<i64>>(2)?,
                                    r.get::<_, i64>(3)?,
                                    r.get::<_, Option<i64>>(4)?,
                                ))
                            },
                        )
                        .optional()
                    })
                    .ctx("claiming")?;
                let Some((id, kind, expires_at, created_at, opted_out_since)) = candidate else {
                    return Ok(None);
                };
                if !screen_candidate(tx, id, kind, expires_at, created_at, opted_out_since, now)? {
                    continue;
                }
                let row = tx
                    .query_row(
                        &format!(
                            "UPDATE outbox SET state = 'claimed', claimed_by = ?2, claimed_at = ?3,
                                               attempts = attempts + 1
                             WHERE id = ?1 AND state = 'queued'
                             RETURNING {ROW_COLUMNS}"
                        ),
                        params![id, modem, now],
                        row_from,
                    )
                    .ctx("claiming")?;
                return Ok(Some(row));
            }
        })
    }

    /// Records that part `part` of `total` of a claimed row was accepted by the modem with TP-MR
    /// `mr`, and counts it in the send log (rate limits). Repeating a part replaces its record.
    pub fn record_part_sent(&self, id: i64, part: u8, total: u8, mr: u8, now: i64) -> Result<()> {
        if part == 0 || total == 0 || part > total {
            return Err(StoreError::InvalidArgument(format!(
                "part {part} of {total}"
            )));
        }
        self.write("recording a sent part", |tx| {
            let (state, modem, to): (OutboxState, Option<String>, String) = tx
                .query_row(
                    "SELECT state, claimed_by, to_number FROM outbox WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .ctx("recording a sent part")?
                .ok_or_else(|| StoreError::NotFound {
                    what: "outbox row",
                    key: id.to_string(),
                })?;
            let (OutboxState::Claimed, Some(modem)) = (state, modem) else {
                return Err(StoreError::InvalidTransition {
                    id,
                    from: state.to_string(),
                    action: "record a sent part",
                });
            };
            tx.execute(
                "INSERT INTO outbox_parts (outbox_id, part, total, modem, mr, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (outbox_id, part) DO UPDATE SET
                     total = excluded.total, modem = excluded.modem, mr = excluded.mr,
                     sent_at = excluded.sent_at, report_status = NULL, delivered_at = NULL",
                params![id, part, total, modem, mr, now],
            )
            .ctx("recording a sent part")?;
            tx.execute(
                "INSERT INTO send_log (modem, to_number, outbox_id, at) VALUES (?1, ?2, ?3, ?4)",
                params![modem, to, id, now],
            )
            .ctx("logging a send")?;
            Ok(())
        })
    }

    /// Stores the concatenation reference chosen for a claimed row's parts.
    pub fn set_concat_ref(&self, id: i64, reference: u16) -> Result<()> {
        self.write("setting the concat reference", |tx| {
            transition(
                tx,
                id,
                "set the concat reference",
                "UPDATE outbox SET concat_ref = ?2 WHERE id = ?1 AND state = 'claimed'",
                params![id, reference],
            )
        })
    }

    /// The parts recorded for a row, by part number.
    pub fn outbox_parts(&self, id: i64) -> Result<Vec<OutboxPart>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT outbox_id, part, total, modem, mr, sent_at, report_status, delivered_at
                 FROM outbox_parts WHERE outbox_id = ?1 ORDER BY part",
            )
            .ctx("reading parts")?;
        st.query_map([id], |r| {
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
        .collect::<rusqlite::Result<_>>()
        .ctx("reading parts")
    }

    /// claimed → sent (every part accepted by the modem).
    pub fn mark_sent(&self, id: i64, now: i64) -> Result<OutboxState> {
        self.write("marking sent", |tx| {
            transition(
                tx,
                id,
                "mark sent",
                "UPDATE outbox SET state = 'sent', sent_at = ?2, last_error = NULL
                 WHERE id = ?1 AND state = 'claimed'",
                params![id, now],
            )?;
            // Reports for early parts may already be in.
            settle_delivery(tx, id, now)
        })
    }

    /// claimed | sent | in_doubt → failed, with a reason. Final.
    pub fn mark_failed(&self, id: i64, reason: &str, now: i64) -> Result<()> {
        self.write("marking failed", |tx| {
            transition(
                tx,
                id,
                "mark failed",
                "UPDATE outbox SET state = 'failed', last_error = ?2, finished_at = ?3
                 WHERE id = ?1 AND state IN ('claimed', 'sent', 'in_doubt')",
                params![id, reason, now],
            )
        })
    }

    /// claimed → queued, due again at `next_attempt_at` (back-off), keeping the error. The attempt
    /// was already counted when the row was claimed.
    pub fn mark_retry(&self, id: i64, reason: &str, next_attempt_at: i64) -> Result<()> {
        self.write("scheduling a retry", |tx| {
            transition(
                tx,
                id,
                "retry",
                "UPDATE outbox SET state = 'queued', last_error = ?2, not_before = ?3,
                                   claimed_by = NULL, claimed_at = NULL
                 WHERE id = ?1 AND state = 'claimed'",
                params![id, reason, next_attempt_at],
            )
        })
    }

    /// queued → expired for one row (TTL reached, decided by the caller).
    pub fn mark_expired(&self, id: i64, now: i64) -> Result<()> {
        self.write("expiring", |tx| {
            transition(
                tx,
                id,
                "expire",
                "UPDATE outbox SET state = 'expired', last_error = 'ttl', finished_at = ?2
                 WHERE id = ?1 AND state = 'queued'",
                params![id, now],
            )
        })
    }

    /// Expires every queued row whose TTL has passed. Returns how many.
    pub fn expire_due(&self, now: i64) -> Result<usize> {
        self.write("expiring", |tx| {
            tx.execute(
                "UPDATE outbox SET state = 'expired', last_error = 'ttl', finished_at = ?1
                 WHERE state = 'queued' AND expires_at IS NOT NULL AND expires_at <= ?1",
                [now],
            )
            .ctx("expiring")
        })
    }

    /// queued | in_doubt → cancelled (admin).
    pub fn cancel(&self, id: i64, reason: &str, now: i64) -> Result<()> {
        self.write("cancelling", |tx| {
            transition(
                tx,
                id,
                "cancel",
                "UPDATE outbox SET state = 'cancelled', last_error = ?2, finished_at = ?3
                 WHERE id = ?1 AND state IN ('queued', 'in_doubt')",
                params![id, reason, now],
            )
        })
    }

    /// in_doubt → queued: a person decided to send it again.
    pub fn requeue_in_doubt(&self, id: i64, now: i64) -> Result<()> {
        self.write("requeueing", |tx| {
            transition(
                tx,
                id,
                "requeue",
                "UPDATE outbox SET state = 'queued', not_before = ?2, claimed_by = NULL,
                                   claimed_at = NULL
                 WHERE id = ?1 AND state = 'in_doubt'",
                params![id, now],
            )
        })
    }

    /// Call once at start-up, before any claim: every row left `claimed` by a previous run was
    /// in flight when it stopped, so it becomes `in_doubt` (reason recorded); then kinds the
    /// policy resends go back to `queued`. Recorded parts are kept, so a resend can skip parts
    /// the modem already accepted (see [`Store::outbox_parts`]).
    pub fn recover_after_restart(
        &self,
        policy: &RecoveryPolicy,
        now: i64,
    ) -> Result<RecoveryReport> {
        self.write("recovering the outbox", |tx| {
            let claimed: Vec<(i64, MessageKind)> = tx
                .prepare("SELECT id, kind FROM outbox WHERE state = 'claimed' ORDER BY id")
                .and_then(|mut st| {
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()
                })
                .ctx("recovering the outbox")?;
            tx.execute(
                "UPDATE outbox SET state = 'in_doubt', last_error = 'in flight at restart'
                 WHERE state = 'claimed'",
                [],
            )
            .ctx("recovering the outbox")?;
            let mut report = RecoveryReport {
                found_claimed: claimed.len(),
                ..RecoveryReport::default()
            };
            for (id, kind) in claimed {
                if policy.resend(kind) {
                    tx.execute(
                        "UPDATE outbox SET state = 'queued', not_before = ?2, claimed_by = NULL,
                                           claimed_at = NULL
                         WHERE id = ?1",
                        params![id, now],
                    )
                    .ctx("recovering the outbox")?;
                    report.requeued += 1;
                } else {
                    report.left_in_doubt += 1;
                }
            }
            if report.found_claimed > 0 {
                tracing::warn!(?report, "outbox rows were in flight at the last stop");
            }
            Ok(report)
        })
    }

    /// Applies a status report received on `modem` for TP-MR `mr` and `recipient`. Matches the
    /// most recently sent part with that modem and MR within [`STATUS_REPORT_WINDOW_MS`] whose
    /// number matches (MRs wrap at 256, so the recipient and recency disambiguate). Returns
    /// `None` when nothing matches (a late or foreign report; the caller logs it).
    pub fn status_report(
        &self,
        modem: &str,
        mr: u8,
        recipient: &str,
        status: u8,
        at: i64,
    ) -> Result<Option<ReportMatch>> {
        self.write("applying a status report", |tx| {
            let candidates: Vec<(i64, u8, String)> = tx
                .prepare_cached(
                    "SELECT p.outbox_id, p.part, o.to_number
                     FROM outbox_parts p JOIN outbox o ON o.id = p.outbox_id
                     WHERE p.modem = ?1 AND p.mr = ?2 AND p.sent_at >= ?3
                     ORDER BY p.sent_at DESC, p.outbox_id DESC, p.part DESC",
                )
                .and_then(|mut st| {
                    st.query_map(params![modem, mr, at - STATUS_REPORT_WINDOW_MS], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<rusqlite::Result<_>>()
                })
                .ctx("matching a status report")?;
            let found = candidates
                .into_iter()
                .find(|(_, _, to)| recipient.is_empty() || same_number(to, recipient));
            let Some((outbox_id, part, _)) = found else {
                return Ok(None);
            };
            let delivered_at = (classify_status(status) == ReportClass::Delivered).then_some(at);
            tx.execute(
                "UPDATE outbox_parts SET report_status = ?3, delivered_at = ?4
                 WHERE outbox_id = ?1 AND part = ?2",
                params![outbox_id, part, status, delivered_at],
            )
            .ctx("applying a status report")?;
            let state = settle_delivery(tx, outbox_id, at)?;
            Ok(Some(ReportMatch {
                outbox_id,
                part,
                state,
            }))
        })
    }

    /// One outbox row.
    pub fn outbox_row(&self, id: i64) -> Result<OutboxRow> {
        self.conn()
            .query_row(
                &format!("SELECT {ROW_COLUMNS} FROM outbox WHERE id = ?1"),
                [id],
                row_from,
            )
            .optional()
            .ctx("reading an outbox row")?
            .ok_or_else(|| StoreError::NotFound {
                what: "outbox row",
                key: id.to_string(),
            })
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
                 WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR broadcast_id = ?2)
                 ORDER BY id DESC LIMIT ?3"
            ))
            .ctx("listing the outbox")?;
        st.query_map(params![state, broadcast_id, limit], row_from)
            .ctx("listing the outbox")?
            .collect::<rusqlite::Result<_>>()
            .ctx("listing the outbox")
    }

    /// Every row in doubt, oldest first (for a person to resolve).
    pub fn in_doubt(&self) -> Result<Vec<OutboxRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {ROW_COLUMNS} FROM outbox WHERE state = 'in_doubt' ORDER BY id"
            ))
            .ctx("listing in-doubt rows")?;
        st.query_map([], row_from)
            .ctx("listing in-doubt rows")?
            .collect::<rusqlite::Result<_>>()
            .ctx("listing in-doubt rows")
    }

    /// Row counts per state over the whole outbox.
    pub fn state_counts(&self) -> Result<StateCounts> {
        self.counts("SELECT state, count(*) FROM outbox GROUP BY state", None)
    }

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

    fn counts(&self, sql: &str, arg: Option<i64>) -> Result<StateCounts> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(sql).ctx("counting the outbox")?;
        let map = |r: &Row<'_>| Ok((r.get::<_, OutboxState>(0)?, r.get::<_, i64>(1)?));
        let rows: Vec<(OutboxState, i64)> = match arg {
            Some(a) => st.query_map([a], map),
            None => st.query_map([], map),
        }
        .and_then(|rows| rows.collect())
        .ctx("counting the outbox")?;
        let mut c = StateCounts::default();
        for (state, n) in rows {
            c.add(state, n.max(0) as u64);
        }
        Ok(c)
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

/// The rules every claim applies to its candidate before taking it, shared by `claim_next` and
/// `claim_next_routed` so the two can never disagree: an expired row becomes `expired`, and a row
/// to a suppressed number becomes `cancelled` (`opted_out`) — only a compliance text written at or
/// after the opt-out (the STOP confirmation itself) may still go. True when the row may be claimed.
pub(super) fn screen_candidate(
    tx: &Transaction<'_>,
    id: i64,
    kind: MessageKind,
    expires_at: Option<i64>,
    created_at: i64,
    opted_out_since: Option<i64>,
    now: i64,
) -> Result<bool> {
    if expires_at.is_some_and(|e| e <= now) {
        tx.execute(
            "UPDATE outbox SET state = 'expired', last_error = 'ttl', finished_at = ?2
             WHERE id = ?1 AND state = 'queued'",
            params![id, now],
        )
        .ctx("expiring")?;
        return Ok(false);
    }
    let blocked = match opted_out_since {
        None => false,
        Some(since) => kind != MessageKind::Compliance || created_at < since,
    };
    if blocked {
        tx.execute(
            "UPDATE outbox SET state = 'cancelled', last_error = 'opted_out', finished_at = ?2
             WHERE id = ?1 AND state = 'queued'",
            params![id, now],
        )
        .ctx("cancelling an opted-out row")?;
        return Ok(false);
    }
    Ok(true)
}

/// The body of [`Store::enqueue`], for callers that combine it with other writes in one
/// transaction ([`Store::apply_inbound`]).
pub(super) fn enqueue_in(tx: &Transaction<'_>, m: &NewOutbox) -> Result<i64> {
    let mut ins = Inserter::new(tx)?;
    let id = match ins.insert(m, None)? {
        Some(id) => id,
        None => tx
            .query_row(
                "SELECT id FROM outbox WHERE broadcast_id = ?1 AND to_number = ?2",
                params![m.broadcast_id, m.to_number],
                |r| r.get(0),
            )
            .ctx("enqueueing")?,
    };
    ins.refresh_totals()?;
    Ok(id)
}

#[cfg(test)]
mod tests;
