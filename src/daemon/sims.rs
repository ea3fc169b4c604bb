//! What the daemon does when a modem turns ready with a SIM: record the SIM (moving its counts,
//! homes, history and the sends awaiting status reports to this modem when it came from another
//! slot, `Store::record_sim`), warn when a different SIM than last time sits in the slot (the
//! store journals `sim_changed` in the same transaction, so webhooks get it exactly once), rebuild
//! the modem's rate limiter from the SIM's own send history, and only then let the dispatch
//! runner claim for that modem (docs/modems.md, "SIM identity").
//!
//! Runs on the inbound pipeline's blocking thread, like the identity write it replaces. It must
//! not decide anything about the rows themselves; that is the store's one transaction.
//!
//! Why per init (`ModemStatus::inits`) and not per state change: the runner sees the modem's
//! status through a watch that may skip states, and the pipeline handles events some time after
//! the actor sent them. Keying both sides by the init number makes the runner wait for exactly
//! the record of the init it sees `Ready`, and a re-init closes that gate again by itself.
//!
//! Why also before a message or report: an init drains the SIM's storage before it reports
//! `Ready`, so status reports (and texts) the SIM received elsewhere reach the pipeline before
//! the `Ready` event; applied under the slot's old rows they would match nothing (a report
//! acked and lost) or land among the rows of the SIM that left. Each such event carries the
//! ICCID of the SIM that received it (read by the init that published it, not the modem's
//! status when the pipeline gets to it, which may already be a later SIM's), and that SIM is
//! recorded in the slot first whenever it is not the one last recorded there.

use std::collections::HashMap;

use tracing::{info, warn};

use crate::dispatch::DispatchHandle;
use crate::modem::{ModemHandle, ModemState, ModemStatus, short_iccid};
use crate::store::{ModemIdentity, Store};

/// The SIM last recorded in each modem, and the test knob that holds the record back.
#[derive(Debug, Default)]
pub(super) struct SimRecords {
    /// Per modem, the ICCID last recorded in it (`None`: recorded without one).
    recorded: HashMap<String, Option<String>>,
    /// How long to hold the pipeline before the record at `Ready` (`DaemonOptions::
    /// sim_record_delay`: tests widen the window in which the runner must not claim).
    pub(super) hold: Option<std::time::Duration>,
}

impl SimRecords {
    /// The modem turned `Ready`: records what its init read (again, if a message already made
    /// it record the ICCID: the rest of the identity is complete now), reloads its limits and
    /// opens the runner's gate for that init. A snapshot that is no longer `Ready` belongs to a
    /// later init, whose own `Ready` event will do this; opening the gate for it now would let
    /// the runner claim before its SIM is recorded.
    pub(super) fn ready(
        &mut self,
        store: &Store,
        dispatch: &DispatchHandle,
        handle: &ModemHandle,
        now: i64,
    ) {
        let st = handle.status();
        if st.state != ModemState::Ready {
            return;
        }
        if let Some(hold) = self.hold {
            // On the pipeline's blocking thread, which is what a slow record would hold up.
            std::thread::sleep(hold);
        }
        record(store, dispatch, &identity(&st), now);
        self.recorded
            .insert(st.name.clone(), st.identity.iccid.clone());
        // Opened also when recording failed or the SIM has no ICCID: a broken SIM read must not
        // stop the modem sending for good; its rows then stay where they were.
        dispatch.sim_recorded(&st.name, st.inits);
    }

    /// Before a message or status report that SIM `iccid` received in the modem is applied:
    /// records that SIM in the modem unless it is the one last recorded there (see the module
    /// doc). With the full identity when the modem still holds that SIM, else with the ICCID
    /// alone (the rest comes with the next `Ready`).
    pub(super) fn before_traffic(
        &mut self,
        store: &Store,
        dispatch: &DispatchHandle,
        handle: &ModemHandle,
        iccid: Option<&str>,
        now: i64,
    ) {
        let Some(iccid) = iccid.filter(|i| !i.is_empty()) else {
            return;
        };
        let name = handle.name();
        if self.recorded.get(name).and_then(Option::as_deref) == Some(iccid) {
            return;
        }
        let st = handle.status();
        let id = if st.identity.iccid.as_deref() == Some(iccid) {
            identity(&st)
        } else {
            ModemIdentity {
                name: name.to_string(),
                iccid: Some(iccid.to_string()),
                ..ModemIdentity::default()
            }
        };
        record(store, dispatch, &id, now);
        self.recorded
            .insert(name.to_string(), Some(iccid.to_string()));
    }
}

fn identity(st: &ModemStatus) -> ModemIdentity {
    ModemIdentity {
        name: st.name.clone(),
        iccid: st.identity.iccid.clone(),
        imsi: st.identity.imsi.clone(),
        imei: st.identity.imei.clone(),
        own_number: st.identity.own_number.clone(),
        profile: Some(format!("{:?}", st.profile).to_lowercase()),
    }
}

/// Records the identity a modem read at init (see the module doc).
fn record(store: &Store, dispatch: &DispatchHandle, id: &ModemIdentity, now: i64) {
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
