//! The SIM part of `modems` and `status` (docs/modems.md, "SIM identity"): which SIM sits in a
//! configured modem (shortened ICCID), its number, whether a different SIM than before appeared
//! there, and its last balance and keep-alive — from the actor's live identity and the store's
//! `modems` and `sims` rows (indexed reads by key, never an AT command).
//!
//! Why the number falls back from the configured `number` to the one the SIM reported: the
//! configured one is the operator's word and wins, but many owners never set it, and the SIM's
//! `AT+CNUM` answer is the next best thing (the same rule geomatch uses).

use super::ModemSettings;
use super::Result;
use crate::modem::short_iccid;
use crate::protocol::SimInfo;
use crate::store::Store;
use crate::time::rfc3339;

/// What `modems[].sim` shows for modem `m`; `live_iccid`/`live_number` are what its actor read at
/// the last init (`None` when it has no actor or read nothing).
pub(super) fn sim_info(
    store: &Store,
    m: &ModemSettings,
    live_iccid: Option<&str>,
    live_number: Option<&str>,
) -> Result<Option<SimInfo>> {
    let row = store.modem(&m.name)?;
    let iccid = live_iccid
        .map(str::to_string)
        .or_else(|| row.as_ref().and_then(|r| r.identity.iccid.clone()));
    let reported = live_number
        .map(str::to_string)
        .or_else(|| row.as_ref().and_then(|r| r.identity.own_number.clone()));
    let sim = match &iccid {
        Some(i) => store.sim(i)?,
        None => None,
    };
    let mut info = SimInfo {
        iccid_short: iccid.as_deref().map(short_iccid),
        number: m
            .number
            .clone()
            .or(reported)
            .or_else(|| sim.as_ref().and_then(|s| s.own_number.clone())),
        ..SimInfo::default()
    };
    if let Some(r) = &row
        && let (Some(prev), Some(at)) = (&r.previous_iccid, r.sim_changed_at)
    {
        info.previous_iccid = Some(short_iccid(prev));
        info.changed_at = Some(rfc3339(at));
    }
    if let Some(s) = sim {
        info.balance = s.balance;
        info.balance_text = s.balance_text;
        info.balance_at = s.balance_at.map(rfc3339);
        info.low_balance = s.balance_low;
        info.last_sent_at = s.last_sent_at.map(rfc3339);
        info.keepalive_at = s.keepalive_at.map(rfc3339);
    }
    Ok((info != SimInfo::default()).then_some(info))
}
