//! Putting rows in the outbox: one message, a batch, or a broadcast with its recipient rows, each
//! in one transaction (a crash never leaves a half-expanded broadcast).
//!
//! Every insert goes through [`Inserter`], which prepares its statements once (the hot loop of a
//! 100,000-recipient broadcast) and applies the rules a row gets at birth: a row to a suppressed
//! number is stored `cancelled` (`opted_out`) unless it is a compliance text, a row of a paused
//! broadcast is `held`, one of a cancelled broadcast is `cancelled`. It must not decide who gets a
//! broadcast (the caller's `row_for` does) nor when a row goes out (the claim does).

use std::collections::HashMap;

use crate::store::db::{Conn, OptionalExtension, params};

use super::super::members::{Member, Segment, scan_segment};
use super::{BroadcastState, NewOutbox, OutboxState};
use crate::model::MessageKind;
use crate::store::{Result, SqlContext, Store, StoreError};

/// Inserts a broadcast row: `scheduled` when it starts later than `now`, else `running`.
fn insert_broadcast(
    tx: &Conn,
    template: &str,
    segment: &str,
    scheduled_at: Option<i64>,
    now: i64,
) -> Result<i64> {
    let state = match scheduled_at {
        Some(t) if t > now => BroadcastState::Scheduled,
        _ => BroadcastState::Running,
    };
    tx.query_row(
        "INSERT INTO broadcasts (template, segment, created_at, scheduled_at, state, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?3) RETURNING id",
        params![template, segment, now, scheduled_at, state],
        |r| r.get(0),
    )
    .ctx("creating a broadcast")
}

/// The key of a broadcast's row counts (migration 0014): broadcast, state, held, home modem, zone,
/// part count.
type CountKey = (
    i64,
    OutboxState,
    bool,
    Option<String>,
    Option<String>,
    Option<u32>,
);

/// Inserts outbox rows inside one transaction with statements prepared once (this is the hot
/// loop of a 100k-recipient broadcast).
struct Inserter<'t> {
    tx: &'t Conn,
    suppressed: crate::store::db::Stmt<'t>,
    insert: crate::store::db::Stmt<'t>,
    broadcasts: HashMap<i64, Option<BroadcastState>>,
    /// The inserted broadcast rows, counted per key in memory and added to `broadcast_counts` once
    /// at the end ([`Inserter::finish`]): an INSERT trigger would cost a few statements per row.
    counts: Counts,
}

/// Row counts per key. A broadcast has a handful of keys (modems × zones × part counts), so the
/// first few are found by comparing in place, without building (cloning) a key per row; any
/// beyond them go to a map.
#[derive(Default)]
struct Counts {
    few: Vec<(CountKey, i64)>,
    more: HashMap<CountKey, i64>,
}

impl Counts {
    const FEW: usize = 32;

    fn add(&mut self, b: i64, state: OutboxState, held: bool, m: &NewOutbox, parts: Option<u32>) {
        let same = |k: &CountKey| {
            k.0 == b
                && k.1 == state
                && k.2 == held
                && k.3 == m.modem_pref
                && k.4 == m.zone
                && k.5 == parts
        };
        if let Some((_, n)) = self.few.iter_mut().find(|(k, _)| same(k)) {
            *n += 1;
            return;
        }
        let key = (b, state, held, m.modem_pref.clone(), m.zone.clone(), parts);
        if self.few.len() < Self::FEW {
            self.few.push((key, 1));
        } else {
            *self.more.entry(key).or_default() += 1;
        }
    }

    fn drain(&mut self) -> impl Iterator<Item = (CountKey, i64)> + '_ {
        self.few.drain(..).chain(self.more.drain())
    }
}

impl<'t> Inserter<'t> {
    fn new(tx: &'t Conn) -> Result<Self> {
        Ok(Inserter {
            tx,
            suppressed: tx
                .prepare("SELECT EXISTS (SELECT 1 FROM opt_outs WHERE number = ?1)")
                .ctx("enqueueing")?,
            insert: tx
                .prepare(
                    "INSERT INTO outbox (to_number, text, kind, priority, broadcast_id, modem_pref,
                                         created_at, not_before, expires_at, state, held,
                                         last_error, finished_at, payload, parts, zone,
                                         quiet_off)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                             ?16, ?17)
                     ON CONFLICT (broadcast_id, to_number) DO NOTHING",
                )
                .ctx("enqueueing")?,
            broadcasts: HashMap::new(),
            counts: Counts::default(),
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
                        .query_row(
                            "SELECT state FROM broadcasts WHERE id = ?1",
                            params![b],
                            |r| r.get(0),
                        )
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
                .query_row(params![&m.to_number], |r| r.get(0))
                .ctx("checking the suppression list")?;
            if suppressed {
                state = OutboxState::Cancelled;
                error = Some("opted_out");
            }
        }
        let finished = (state != OutboxState::Queued).then_some(m.created_at);
        let parts = m.parts.map(|p| p.clamp(1, 255));
        let id: Option<i64> = self
            .insert
            .insert_id(params![
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
                m.payload,
                parts,
                m.zone,
                m.quiet_off
            ])
            .ctx("enqueueing")?;
        if id.is_some()
            && let Some(b) = broadcast_id
        {
            self.counts.add(b, state, held, m, parts);
        }
        Ok(id)
    }

    /// Ends the enqueue: the broadcasts' totals and their row counts (migration 0014).
    fn finish(&mut self) -> Result<()> {
        self.refresh_totals()?;
        const OP: &str = "counting broadcast rows";
        let counts: Vec<_> = self.counts.drain().collect();
        for ((b, state, held, modem, zone, parts), n) in counts {
            let key = params![b, state, held, modem, zone, parts];
            self.tx
                .prepare_cached(
                    "INSERT INTO broadcast_counts (broadcast_id, state, held, modem_pref, zone,
                                                   parts, n)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, 0
                     WHERE NOT EXISTS (
                         SELECT 1 FROM broadcast_counts
                         WHERE broadcast_id = ?1 AND state = ?2 AND held = ?3
                           AND modem_pref IS ?4 AND zone IS ?5 AND parts IS ?6)",
                )
                .and_then(|mut st| st.execute(key))
                .ctx(OP)?;
            self.tx
                .prepare_cached(
                    "UPDATE broadcast_counts SET n = n + ?7
                     WHERE broadcast_id = ?1 AND state = ?2 AND held = ?3
                       AND modem_pref IS ?4 AND zone IS ?5 AND parts IS ?6",
                )
                .and_then(|mut st| st.execute(params![b, state, held, modem, zone, parts, n]))
                .ctx(OP)?;
        }
        Ok(())
    }

    fn refresh_totals(&self) -> Result<()> {
        for b in self.broadcasts.keys() {
            self.tx
                .execute(
                    "UPDATE broadcasts SET total = (SELECT count(*) FROM outbox WHERE broadcast_id = ?1)
                     WHERE id = ?1",
                    params![b],
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
            ins.finish()?;
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
            ins.finish()?;
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
        let conn = self.conn();
        // Under the health watch like every write (store/health.rs).
        let out = self.guarded(OP, &conn, |conn| {
            conn.transaction_opt(true, OP, |tx| {
                let id = insert_broadcast(tx, template, segment, scheduled_at, now)?;
                let mut produced = 0usize;
                let mut inserted = 0usize;
                {
                    let mut ins = Inserter::new(tx)?;
                    scan_segment(tx, members, |m, suppressed| {
                        if let Some(row) = row_for(m, suppressed) {
                            produced += 1;
                            inserted += usize::from(ins.insert(&row, Some(id))?.is_some());
                        }
                        Ok(())
                    })?;
                    if produced == 0 {
                        // Nothing to send: the broadcast row is rolled back.
                        return Ok(None);
                    }
                    ins.finish()?;
                }
                Ok(Some((id, inserted)))
            })
        })?;
        if out.is_some() {
            self.committed(true);
        }
        Ok(out)
    }
}

/// The body of [`Store::enqueue`], for callers that combine it with other writes in one
/// transaction ([`Store::apply_inbound`]).
pub(in crate::store) fn enqueue_in(tx: &Conn, m: &NewOutbox) -> Result<i64> {
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
    ins.finish()?;
    Ok(id)
}
