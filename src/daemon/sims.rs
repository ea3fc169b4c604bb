//! What the daemon does when a modem turns ready with a SIM: record the SIM (moving its counts,
//! homes and history to this modem when it came from another slot, `Store::record_sim`), warn
//! when a different SIM than last time sits in the slot (the store journals `sim_changed` in the
//! same transaction, so webhooks get it exactly once), and rebuild the modem's rate limiter from
//! the SIM's own send history (docs/modems.md, "SIM identity").
//!
//! Runs on the inbound pipeline's blocking thread, like the identity write it replaces. It must
//! not decide anything about the rows themselves; that is the store's one transaction.

use tracing::{info, warn};

use crate::dispatch::DispatchHandle;
use crate::modem::short_iccid;
use crate::store::{ModemIdentity, Store};

/// Records the identity a modem read at init (see the module doc).
pub(super) fn record(store: &Store, dispatch: &DispatchHandle, id: &ModemIdentity, now: i64) {
    let modem = id.name.as_str();
    match store.record_sim(id, now) {
        Ok(Some(change)) => {
            warn!(
                %modem,
                iccid = %short_iccid(&change.iccid),
                previous = %short_iccid(&change.previous_iccid),
                moved_from = change.moved_from.as_deref().unwrap_or("-"),
                "a different SIM is in this modem; sends, limits, homes and history follow the SIM"
            );
        }
        Ok(None) => {
            if let Some(iccid) = &id.iccid {
                info!(%modem, iccid = %short_iccid(iccid), number = id.own_number.as_deref().unwrap_or("-"), "SIM recorded");
            }
        }
        Err(e) => {
            warn!(%modem, error = %e, "could not record the modem's identity");
            return;
        }
    }
    // Also without a change of this slot: the SIM may have come from a slot that never had an
    // ICCID recorded, and its rows moved here all the same.
    if let Err(e) = dispatch.reload_limits(modem) {
        warn!(%modem, error = %e, "could not rebuild the modem's limits from its SIM's history");
    }
}
