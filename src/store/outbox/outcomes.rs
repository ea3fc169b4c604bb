//! What happens to a claimed row after the modem answered: each accepted part recorded (and
//! counted in `send_log`, the history the rate limits are rebuilt from), the row marked sent,
//! failed, retried or expired, cancelled by a person, and delivery reports matched to parts.
//!
//! A row is `delivered` only when every part's report says so and `failed` as soon as one part's
//! report is a permanent error ([`settle_delivery`], run after every report and after
//! `mark_sent`, since reports for early parts may arrive before the last part is accepted). It
//! must not choose *whether* to retry: that is dispatch's policy; this file only records it.

use crate::store::db::{Conn, OptionalExtension, params};

use super::evidence::{predicted, resolve_predicted};
use super::{OutboxPart, OutboxState, outbox_parts_in, state_of, transition};
use crate::store::modems::set_last_mr_in;
use crate::store::{Result, SqlContext, Store, StoreError};

/// How long after sending a part a status report may still be matched to it. Reports for a
/// phone that was off arrive when it comes back, within the validity period (days at most).
pub const STATUS_REPORT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// The row a status report was matched to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReportMatch {
    pub outbox_id: i64,
    pub part: u8,
    /// The row's state after the report was applied.
    pub state: OutboxState,
    /// The row was in doubt (in flight at a crash, its reference never recorded) and this report
    /// proved its submit reached the network (`evidence`).
    pub resolved_in_doubt: bool,
}

/// Delivery class of a TP-ST value (3GPP TS 23.040 §9.2.3.15):
/// 0x00–0x1F transaction completed, 0x20–0x3F temporary error with the SC still trying,
/// 0x40–0x5F permanent error, 0x60–0x7F temporary error with the SC no longer trying. Like
/// chan_dongle and chan_quectel, any value with bit 0x40 set counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReportClass {
    Delivered,
    Pending,
    Failed,
}

pub(super) fn classify_status(st: u8) -> ReportClass {
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
pub(super) fn same_number(a: &str, b: &str) -> bool {
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

/// After a part report or `mark_sent`: a sent (or in-doubt) row whose every part is delivered
/// becomes `delivered`; one with any failed part becomes `failed`.
fn settle_delivery(tx: &Conn, id: i64, now: i64) -> Result<OutboxState> {
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
        .query_row_cached(
            "SELECT max(total),
                    count(*) FILTER (WHERE delivered_at IS NOT NULL),
                    max(report_status) FILTER (WHERE report_status & 64 <> 0),
                    max(delivered_at)
             FROM outbox_parts WHERE outbox_id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .ctx("settling delivery")?;
    if let Some(st) = failed_status {
        tx.exec_cached(
            "UPDATE outbox SET state = 'failed', last_error = ?2, finished_at = ?3 WHERE id = ?1",
            params![id, format!("status report TP-ST {st:#04x}"), now],
        )
        .ctx("settling delivery")?;
        return Ok(OutboxState::Failed);
    }
    if let Some(total) = total
        && delivered >= total
    {
        tx.exec_cached(
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

/// A row's `sent` mark, with the record of its last part when that goes in the same transaction
/// (the send loop's last write for a row, see [`Store::mark_sent_and_claim_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentMark {
    pub id: i64,
    /// The last accepted part: (part, total, TP-MR, its start), as `record_part_sent` takes
    /// them; `None` when every part had been recorded before.
    pub last_part: Option<(u8, u8, u8, i64)>,
    /// The row's `sent_at`.
    pub now: i64,
}

/// [`SentMark`] inside the caller's transaction: the part's record, then the mark.
pub(super) fn sent_mark_in(tx: &Conn, mark: &SentMark) -> Result<OutboxState> {
    if let Some((part, total, mr, started)) = mark.last_part {
        check_part(part, total)?;
        record_part_sent_in(tx, mark.id, part, total, mr, started)?;
    }
    mark_sent_in(tx, mark.id, mark.now)
}

fn check_part(part: u8, total: u8) -> Result<()> {
    if part == 0 || total == 0 || part > total {
        return Err(StoreError::InvalidArgument(format!(
            "part {part} of {total}"
        )));
    }
    Ok(())
}

/// `record_part_sent`'s write, inside the caller's transaction (the caller checked the numbers).
fn record_part_sent_in(tx: &Conn, id: i64, part: u8, total: u8, mr: u8, now: i64) -> Result<()> {
    let (state, modem, to): (OutboxState, Option<String>, String) = tx
        .query_row_cached(
            "SELECT state, claimed_by, to_number FROM outbox WHERE id = ?1",
            params![id],
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
    tx.exec_cached(
        "INSERT INTO outbox_parts (outbox_id, part, total, modem, mr, sent_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (outbox_id, part) DO UPDATE SET
             total = excluded.total, modem = excluded.modem, mr = excluded.mr,
             sent_at = excluded.sent_at, report_status = NULL, delivered_at = NULL",
        params![id, part, total, modem, mr, now],
    )
    .ctx("recording a sent part")?;
    set_last_mr_in(tx, &modem, mr, now)?;
    tx.exec_cached(
        "INSERT INTO send_log (modem, to_number, outbox_id, at) VALUES (?1, ?2, ?3, ?4)",
        params![modem, to, id, now],
    )
    .ctx("logging a send")?;
    Ok(())
}

/// claimed → sent, inside the caller's transaction; then settles delivery, since reports for
/// early parts may already be in.
fn mark_sent_in(tx: &Conn, id: i64, now: i64) -> Result<OutboxState> {
    transition(
        tx,
        id,
        "mark sent",
        "UPDATE outbox SET state = 'sent', sent_at = ?2, last_error = NULL
         WHERE id = ?1 AND state = 'claimed'",
        params![id, now],
    )?;
    settle_delivery(tx, id, now)
}

impl Store {
    /// Records that part `part` of `total` of a claimed row was accepted by the modem with TP-MR
    /// `mr`, and counts it in the send log (rate limits). Repeating a part replaces its record.
    pub fn record_part_sent(&self, id: i64, part: u8, total: u8, mr: u8, now: i64) -> Result<()> {
        check_part(part, total)?;
        self.write("recording a sent part", |tx| {
            record_part_sent_in(tx, id, part, total, mr, now)
        })
    }

    /// [`Store::record_part_sent`] for the last part of a row and [`Store::mark_sent`] in one
    /// transaction and one call: the accepted part and the `sent` mark are one commit (one
    /// fsync) instead of two, and a crash leaves either both or neither, as if it had come
    /// before the part's record (the row stays `claimed`, in doubt at the next start). The
    /// row's state afterwards, as `mark_sent` returns it. `started` is the part's start (its
    /// `send_log` instant, as `record_part_sent`'s `now`), `now` the row's `sent_at`.
    pub fn record_last_part_sent(
        &self,
        id: i64,
        part: u8,
        total: u8,
        mr: u8,
        started: i64,
        now: i64,
    ) -> Result<OutboxState> {
        let mark = SentMark {
            id,
            last_part: Some((part, total, mr, started)),
            now,
        };
        check_part(part, total)?;
        self.write("recording the last part and marking sent", |tx| {
            sent_mark_in(tx, &mark)
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
        outbox_parts_in(&self.conn(), id)
    }

    /// claimed → sent (every part accepted by the modem).
    pub fn mark_sent(&self, id: i64, now: i64) -> Result<OutboxState> {
        self.write("marking sent", |tx| mark_sent_in(tx, id, now))
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
            tx.exec_cached(
                "UPDATE outbox SET state = 'expired', last_error = 'ttl', finished_at = ?1
                 WHERE state = 'queued' AND expires_at IS NOT NULL AND expires_at <= ?1",
                params![now],
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

    /// Applies a status report received on `modem` for TP-MR `mr` and `recipient`. Matches the
    /// most recent send with that modem and MR within [`STATUS_REPORT_WINDOW_MS`] whose number
    /// matches (MRs wrap at 256, so the recipient and recency disambiguate): a recorded part, or
    /// the interrupted submit of an in-doubt row whose expected reference is `mr` (`evidence`;
    /// only with a known recipient). With no match under `modem`, the SIM that sat in that slot
    /// before is tried (a report left in the stick's memory across a swap: `status_report_in`).
    /// Returns `None` when nothing matches (a late or foreign report; the caller logs it).
    pub fn status_report(
        &self,
        modem: &str,
        mr: u8,
        recipient: &str,
        status: u8,
        at: i64,
    ) -> Result<Option<ReportMatch>> {
        let report = ReportIn {
            modem: modem.to_string(),
            mr,
            recipient: recipient.to_string(),
            status,
            at,
        };
        Ok(self.status_reports(&[report])?.into_iter().next().flatten())
    }

    /// [`Store::status_report`] for a run of reports in one transaction, so one commit (one
    /// fsync) covers them all: group commit for a burst of reports (the inbound pipeline drains
    /// its queue into runs, daemon/inbound.rs). Each report's result, in order; if the
    /// transaction fails, none was applied. On disk when this returns.
    pub fn status_reports(&self, reports: &[ReportIn]) -> Result<Vec<Option<ReportMatch>>> {
        let (matches, commit) = self.status_reports_deferred(reports)?;
        self.sync_through(commit)?;
        Ok(matches)
    }

    /// [`Store::status_reports`] whose commit may wait for the next synced commit of any caller
    /// to reach the disk (`write_deferred`): the results and the commit's number. The pipeline
    /// acks the reports (the modem then deletes the SIM's copies) only once
    /// [`Store::watch_durable`] reaches that number, so a power cut before then loses nothing:
    /// the reports are read from the SIM again. During a broadcast the send loops' synced
    /// submit records carry the reports to disk, one fsync fewer per SMS.
    pub fn status_reports_deferred(
        &self,
        reports: &[ReportIn],
    ) -> Result<(Vec<Option<ReportMatch>>, u64)> {
        self.write_deferred("applying status reports", |tx| {
            reports.iter().map(|r| status_report_in(tx, r)).collect()
        })
    }
}

/// One status report to apply ([`Store::status_reports`]): the arguments of
/// [`Store::status_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportIn {
    pub modem: String,
    pub mr: u8,
    pub recipient: String,
    pub status: u8,
    pub at: i64,
}

/// [`Store::status_report`] inside the caller's transaction: matched under `r.modem`, the key of
/// the SIM in that slot now, and failing that under the key of the SIM that sat there before
/// (`modems.previous_iccid`). The second look is for the stick's own status-report memory
/// (`SR`, in the modem, not on the SIM): a report that reached the old SIM and was still there
/// when the SIM was swapped is drained after the swap, through the slot, while the old SIM's
/// rows were moved to its parking key or its new slot (`sims.rs`). A report kept on the SIM
/// (`SM`) travels with it and matches at the first look.
fn status_report_in(tx: &Conn, r: &ReportIn) -> Result<Option<ReportMatch>> {
    if let Some(m) = report_under(tx, &r.modem, r)? {
        return Ok(Some(m));
    }
    let previous: Option<String> = tx
        .prepare_cached(
            "SELECT s.key FROM modems m JOIN sims s ON s.iccid = m.previous_iccid
             WHERE m.name = ?1 AND s.key <> ?1",
        )
        .and_then(|mut st| st.query_row(params![r.modem], |row| row.get(0)).optional())
        .ctx("reading the slot's previous SIM")?;
    match previous {
        Some(key) => report_under(tx, &key, r),
        None => Ok(None),
    }
}

/// Report `r` matched and applied under the SIM key `modem` (see [`status_report_in`]).
fn report_under(tx: &Conn, modem: &str, r: &ReportIn) -> Result<Option<ReportMatch>> {
    let (mr, recipient, status, at) = (r.mr, r.recipient.as_str(), r.status, r.at);
    let since = at - STATUS_REPORT_WINDOW_MS;
    let candidates: Vec<(i64, u8, String, i64)> = tx
        .prepare_cached(
            "SELECT p.outbox_id, p.part, o.to_number, p.sent_at
                 FROM outbox_parts p JOIN outbox o ON o.id = p.outbox_id
                 WHERE p.modem = ?1 AND p.mr = ?2 AND p.sent_at >= ?3
                 ORDER BY p.sent_at DESC, p.outbox_id DESC, p.part DESC",
        )
        .and_then(|mut st| {
            st.query_map(params![modem, mr, since], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<crate::store::db::DbResult<_>>()
        })
        .ctx("matching a status report")?;
    let recorded = candidates
        .into_iter()
        .find(|(_, _, to, _)| recipient.is_empty() || same_number(to, recipient));
    // An in-doubt prediction needs the recipient: the reference alone is not evidence.
    let guessed = if recipient.is_empty() {
        None
    } else {
        predicted(tx, modem, mr, since)?
            .into_iter()
            .filter(|p| same_number(&p.to, recipient))
            .max_by_key(|p| (p.at, p.id))
    };
    // The most recent send with this reference is the one reported on.
    let (outbox_id, part, resolved_in_doubt) = match (recorded, guessed) {
        (Some((id, part, _, sent)), Some(g)) if sent >= g.at => (id, part, false),
        (_, Some(g)) => {
            resolve_predicted(tx, &g, modem, mr)?;
            (g.id, g.part, true)
        }
        (Some((id, part, _, _)), None) => (id, part, false),
        (None, None) => return Ok(None),
    };
    let delivered_at = (classify_status(status) == ReportClass::Delivered).then_some(at);
    tx.exec_cached(
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
        resolved_in_doubt,
    }))
}
