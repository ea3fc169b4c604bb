//! The health commands: `status` (the one-screen summary of the gateway) and `modems` (every
//! configured modem: state, registration, signal, SIM identity, today's counts against its limit).
//!
//! Modem health comes from the actors' status snapshots (a lock-free read, never an AT command:
//! `status` must answer while a modem is stuck in a 120 s timeout); counts come from the store.
//! "Today" starts at local midnight of the machine's zone, like the per-day limit a user reads
//! about in their carrier's terms.

use super::{Context, MAX_LIMIT, Result};
use crate::modem::{ModemState, Registration};
use crate::protocol::{ModemInfo, SiteStatus, StatusData, StatusSim, StorageStatus};
use crate::store::BroadcastState;

/// Inbound messages scanned for the "received today" counts.
const TODAY_SCAN: u32 = 5000;

/// The word the protocol and the store use for a registration state.
pub fn registration_word(r: Registration) -> &'static str {
    match r {
        Registration::NotSearching => "not_searching",
        Registration::Home => "home",
        Registration::Searching => "searching",
        Registration::Denied => "denied",
        Registration::Unknown => "unknown",
        Registration::Roaming => "roaming",
    }
}

/// Unix milliseconds of the start of the local day that holds `now`.
fn start_of_day_ms(now: i64) -> i64 {
    jiff::Timestamp::from_millisecond(now)
        .ok()
        .and_then(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .start_of_day()
                .ok()
        })
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or_else(|| now - now.rem_euclid(86_400_000))
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The state disk as writes see it (`store/health.rs`), with the runner's unrecorded outcomes.
fn storage(ctx: &Context) -> StorageStatus {
    let h = ctx.store.write_health();
    StorageStatus {
        state: h.word().to_string(),
        since: h.since(),
        detail: h.detail().map(str::to_string),
        unrecorded: ctx.dispatch.as_ref().map_or(0, |d| d.unrecorded() as u64),
        free_bytes: ctx.store.free_bytes(),
    }
}

/// Why the runner gives no modem new work because of the disk, e.g. `state disk full: sending
/// paused`; `None` when writes work and nothing is owed.
fn storage_pause(ctx: &Context) -> Option<String> {
    let h = ctx.store.write_health();
    if !h.is_healthy() {
        return Some(format!("{}: sending paused", h.headline()));
    }
    let owed = ctx.dispatch.as_ref().map_or(0, |d| d.unrecorded());
    (owed > 0).then(|| format!("writing {owed} unrecorded outcome(s) before sending again"))
}

/// `status`.
pub fn status(ctx: &Context) -> Result<StatusData> {
    let s = &ctx.store;
    let since = start_of_day_ms(ctx.now());
    let counts = s.state_counts()?;
    let members = s.member_counts()?;
    let broadcasts = s
        .broadcasts(MAX_LIMIT)?
        .into_iter()
        .filter(|b| matches!(b.state, BroadcastState::Running | BroadcastState::Scheduled))
        .count();
    let mut sent_today = 0u64;
    for (name, _) in &ctx.modems {
        sent_today += u64::from(s.sends_since(name, since)?);
    }
    let received_today = s
        .inbox(false, TODAY_SCAN)?
        .into_iter()
        .filter(|m| m.received_at >= since)
        .count();
    let ready = ctx
        .modems
        .iter()
        .filter(|(_, h)| h.status().state == ModemState::Ready)
        .count();
    Ok(StatusData {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_secs: ctx.started.elapsed().as_secs(),
        modems_total: saturating_u32(ctx.settings.modems.len()),
        modems_ready: saturating_u32(ready),
        outbox_queued: counts.queued,
        outbox_in_doubt: counts.in_doubt,
        sent_today,
        received_today: received_today as u64,
        members: members.active + members.pending_confirmation,
        broadcasts_active: saturating_u32(broadcasts),
        storage: Some(storage(ctx)),
        sims: status_sims(ctx)?,
        sites: sites(ctx)?,
    })
}

/// A site or a modem counts as up while heard from within this long (three of the runner's
/// heartbeats, dispatch/runner/sites.rs).
const SITE_ALIVE_MS: i64 = 30_000;

/// `status.sites`: every site sharing the database, from their heartbeats.
fn sites(ctx: &Context) -> Result<Vec<SiteStatus>> {
    let Some(me) = &ctx.settings.site else {
        return Ok(Vec::new());
    };
    let now = ctx.now();
    let modems = ctx.store.site_modems()?;
    Ok(ctx
        .store
        .sites()?
        .into_iter()
        .map(|site| {
            let own: Vec<_> = modems.iter().filter(|m| m.site == site.name).collect();
            SiteStatus {
                this_site: site.name == *me,
                alive: site.heartbeat_at >= now - SITE_ALIVE_MS,
                heartbeat_age_secs: u64::try_from((now - site.heartbeat_at) / 1000).unwrap_or(0),
                modems_total: saturating_u32(own.len()),
                modems_up: saturating_u32(
                    own.iter()
                        .filter(|m| m.down_since(now, SITE_ALIVE_MS).is_none())
                        .count(),
                ),
                name: site.name,
            }
        })
        .collect())
}

/// A `modems` row with nothing known yet but its name and state.
fn blank_modem(name: String, state: &str) -> ModemInfo {
    ModemInfo {
        name,
        profile: String::new(),
        port: String::new(),
        state: state.into(),
        registration: "unknown".into(),
        signal_dbm: None,
        operator: None,
        iccid: None,
        imsi: None,
        imei: None,
        last_error: None,
        sent_today: 0,
        received_today: 0,
        per_day: None,
        waiting: None,
        paused: None,
        sim: None,
        site: None,
    }
}

/// `modems` rows for the other sites' modems (after this site's own).
fn remote_modems(ctx: &Context, since: i64) -> Result<Vec<ModemInfo>> {
    let Some(me) = &ctx.settings.site else {
        return Ok(Vec::new());
    };
    let now = ctx.now();
    let mut out = Vec::new();
    for m in ctx.store.site_modems()? {
        if m.site == *me {
            continue;
        }
        let up = m.down_since(now, SITE_ALIVE_MS).is_none();
        let mut info = blank_modem(m.modem, if up { "remote-up" } else { "remote-down" });
        info.sent_today = u64::from(ctx.store.sends_since(&info.name, since)?);
        info.site = Some(m.site);
        out.push(info);
    }
    Ok(out)
}

/// `status.sims`: the SIM of each configured modem, without the `modems` verb's counts.
fn status_sims(ctx: &Context) -> Result<Vec<StatusSim>> {
    let mut out = Vec::new();
    for mc in &ctx.settings.modems {
        let st = ctx
            .modems
            .iter()
            .find(|(n, _)| *n == mc.name)
            .map(|(_, h)| h.status());
        let id = st.as_ref().map(|s| &s.identity);
        let sim = super::sim_info::sim_info(
            &ctx.store,
            mc,
            id.and_then(|i| i.iccid.as_deref()),
            id.and_then(|i| i.own_number.as_deref()),
        )?;
        if let Some(s) = sim {
            out.push(StatusSim {
                modem: mc.name.clone(),
                iccid: s.iccid_short,
                number: s.number,
            });
        }
    }
    Ok(out)
}

/// `modems`: every configured modem in file order; a disabled one (no actor) reads `disabled`.
pub fn modems(ctx: &Context) -> Result<Vec<ModemInfo>> {
    let s = &ctx.store;
    let since = start_of_day_ms(ctx.now());
    let received: Vec<String> = s
        .inbox(false, TODAY_SCAN)?
        .into_iter()
        .filter(|m| m.received_at >= since)
        .map(|m| m.modem)
        .collect();
    let paused = storage_pause(ctx);
    let mut out = Vec::with_capacity(ctx.settings.modems.len());
    for mc in &ctx.settings.modems {
        let mut info = blank_modem(mc.name.clone(), "disabled");
        info.profile = mc.profile.as_str().to_string();
        info.port = mc.port.display().to_string();
        info.sent_today = u64::from(s.sends_since(&mc.name, since)?);
        info.received_today = received.iter().filter(|m| **m == mc.name).count() as u64;
        info.per_day = Some(mc.limits.per_day);
        info.site = ctx.settings.site.clone();
        let mut live = (None, None);
        if let Some((_, h)) = ctx.modems.iter().find(|(n, _)| *n == mc.name) {
            let st = h.status();
            info.state = st.state.name().to_string();
            info.registration = st
                .registration
                .map(registration_word)
                .unwrap_or("unknown")
                .to_string();
            info.signal_dbm = st.dbm.map(i32::from);
            info.operator = st.operator.clone();
            info.iccid = st.identity.iccid.clone();
            info.imsi = st.identity.imsi.clone();
            info.imei = st.identity.imei.clone();
            live = (st.identity.iccid.clone(), st.identity.own_number.clone());
            info.waiting = st.waiting.as_ref().map(|w| w.describe(ctx.now()));
            info.last_error = match &st.state {
                ModemState::OutOfPool { reason } | ModemState::Suspect { reason } => {
                    Some(reason.clone())
                }
                _ => st.last_error.clone(),
            };
            info.paused = paused.clone();
        }
        info.sim = super::sim_info::sim_info(s, mc, live.0.as_deref(), live.1.as_deref())?;
        out.push(info);
    }
    out.extend(remote_modems(ctx, since)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_starts_at_or_before_now_and_less_than_a_day_ago() {
        let now = 1_700_000_000_123;
        let start = start_of_day_ms(now);
        assert!(start <= now && now - start < 86_400_000 + 3_600_000);
    }
}
