//! Outcomes a send loop owes the store: records that could not be written because the state disk
//! was full, read-only or failing, kept in memory and written, in order, as soon as a write
//! succeeds again, without a restart.
//!
//! Owns: one loop's queue of owed writes and the count all loops share for `status`. Must not
//! touch: the decision of what to record (the send loop makes it) or SQL (every write is a
//! `Store` method, run through `Store::call_inline_if_free`).
//!
//! Why: an SMS the network accepted but whose `sent` could not be committed used to stay
//! `claimed` ("sending") until a restart turned it `in_doubt` (issue 14). Its outcome is known
//! here, in memory; losing it only because the disk was full for a while is the wrong trade.
//! Order matters (a part's record before the row's `sent`, `in_doubt` before its requeue), so
//! once anything is owed every later record of the loop queues behind it. Only write failures
//! ([`StoreError::is_write_failure`]) are kept: any other error (the row changed state meanwhile,
//! e.g. an operator cancelled it) would fail the same way forever, so it is logged and dropped,
//! as it was before. Owed records die with the process: a restart still finds the row `claimed`
//! and the in-doubt policy applies, exactly as before this queue existed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::{error, info, warn};

use super::{DispatchEvent, Shared};
use crate::store::{Store, StoreError};

/// One write, repeatable until it succeeds.
pub(super) type StoreOp = Arc<dyn Fn(&Store) -> crate::store::Result<()> + Send + Sync>;

struct Owed {
    what: &'static str,
    id: i64,
    op: StoreOp,
    /// Published once the write is in.
    then: Option<DispatchEvent>,
}

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recorded {
    /// Written now (its event, if any, is out).
    Now,
    /// Kept in memory until writes work again.
    Owed,
    /// Refused for a reason other than the disk (logged); nothing is kept.
    Refused,
}

#[derive(Default)]
pub(super) struct OwedQueue {
    items: VecDeque<Owed>,
}

impl OwedQueue {
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn push(&mut self, shared: &Shared, owed: Owed) {
        self.items.push_back(owed);
        shared.owed.fetch_add(1, Ordering::Relaxed);
    }

    fn pop(&mut self, shared: &Shared) -> Option<Owed> {
        let o = self.items.pop_front()?;
        shared.owed.fetch_sub(1, Ordering::Relaxed);
        Some(o)
    }

    /// Writes `op` now, or queues it behind what is already owed or when the disk refuses it.
    pub(super) async fn record(
        &mut self,
        shared: &Shared,
        modem: &str,
        what: &'static str,
        id: i64,
        op: StoreOp,
        then: Option<DispatchEvent>,
    ) -> Recorded {
        let owed = Owed { what, id, op, then };
        if !self.is_empty() {
            self.push(shared, owed);
            return Recorded::Owed;
        }
        match run(shared, &owed.op).await {
            Ok(()) => {
                if let Some(ev) = owed.then {
                    shared.emit(ev);
                }
                Recorded::Now
            }
            Err(e) if e.is_write_failure() => {
                warn!(%modem, id, error = %e, "cannot record {what}: kept in memory until the \
                       state disk takes writes again");
                self.push(shared, owed);
                Recorded::Owed
            }
            Err(e) => {
                error!(%modem, id, error = %e, "store error while {what}");
                Recorded::Refused
            }
        }
    }

    /// Writes what is owed, in order; true when nothing is left.
    pub(super) async fn settle(&mut self, shared: &Shared, modem: &str) -> bool {
        while let Some(next) = self.items.front() {
            match run(shared, &next.op).await {
                Ok(()) => {
                    if let Some(o) = self.pop(shared) {
                        info!(%modem, id = o.id, "recorded {} after the state disk recovered", o.what);
                        if let Some(ev) = o.then {
                            shared.emit(ev);
                        }
                    }
                }
                Err(e) if e.is_write_failure() => return false,
                Err(e) => {
                    if let Some(o) = self.pop(shared) {
                        error!(%modem, id = o.id, error = %e, "dropping owed record ({})", o.what);
                    }
                }
            }
        }
        true
    }
}

async fn run(shared: &Shared, op: &StoreOp) -> Result<(), StoreError> {
    let op = op.clone();
    shared.store.call_inline_if_free(move |s| op(s)).await
}
