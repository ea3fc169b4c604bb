//! Why a broadcast's queued copies are not going out right now: quiet hours in the recipients'
//! zones, a modem's (or the pool's) rate limit, a home modem that is down, no modem ready, a
//! start that is still ahead, a retry after a failure, or a pause. `broadcasts` and
//! `broadcast --wait` show it so that a broadcast never waits in silence (issue: the demo
//! broadcast sat without a word during quiet hours).
//!
//! It owns the classification only: the counts come from the store
//! ([`Store::broadcast_queue_groups`]: the broadcast's kept counts, migration 0014), the rules
//! from `dispatch` (quiet hours, the limiters as the runner rebuilds them from the send log), and
//! the modems' states from their handles. It must
//! not decide anything the runner does not: a copy counts as held only for a reason the runner
//! itself would wait on, in the same order the runner checks them (pause, start time, modem,
//! limits, quiet hours at claim time — here quiet hours come first, because a copy in quiet
//! hours waits for the morning whatever the modem does).
//!
//! Cheap on purpose (every `--wait` polls it once a second): a handful of groups whatever the
//! broadcast's size, the member join only when quiet hours can apply, a send-log read only for a
//! modem that actually has due copies, and nothing at all for a broadcast with an empty queue.

use std::collections::{BTreeMap, HashMap};

use jiff::tz::TimeZone;

use super::{Context, Result};
use crate::community::decide::MessageKind;
use crate::dispatch::{
    self, DAY, MINUTE, Millis, QuietHours, QuietOverride, QuietPolicy, RateLimiter, Window,
};
use crate::modem::ModemState;
use crate::protocol::Held;
use crate::store::{BroadcastRow, QueuedGroup};
use crate::time::rfc3339;

/// Reasons in the order they are listed.
const ORDER: [&str; 7] = [
    "quiet_hours",
    "rate_limit",
    "modem_down",
    "no_modem_ready",
    "scheduled",
    "retry",
    "paused",
];

/// One entry being summed: the key is (reason, modem or zone).
#[derive(Default)]
struct Sum {
    count: u64,
    until: Option<Millis>,
    detail: Option<String>,
}

/// Per configured modem: whether it can send now, and its next free slot (lazily read).
struct Modems<'a> {
    ctx: &'a Context,
    now: Millis,
    slots: HashMap<String, Option<Millis>>,
    pool_slot: Option<Option<Millis>>,
}

impl<'a> Modems<'a> {
    /// Enabled modems of the pool, in file order.
    fn pool(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.ctx
            .settings
            .modems
            .iter()
            .filter(|m| m.enabled)
            .map(|m| m.name.as_str())
    }

    /// Whether `name` can take a send (`Ready` and registered, as the runner waits for). Without
    /// live handles (a context of tests or tools) every enabled modem counts as ready.
    fn ready(&self, name: &str) -> bool {
        if self.ctx.modems.is_empty() {
            return self.pool().any(|m| m == name);
        }
        self.ctx
            .modems
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.status())
            .is_some_and(|s| {
                s.state == ModemState::Ready && s.registration.is_none_or(|r| r.registered())
            })
    }

    /// The modem's next send slot after `now` when its limits hold it (`Some(MAX)`: a zero cap),
    /// `None` when it may send now.
    fn limited_until(&mut self, name: &str) -> Result<Option<Millis>> {
        if let Some(s) = self.slots.get(name) {
            return Ok(*s);
        }
        let Some(m) = self.ctx.settings.modems.iter().find(|m| m.name == name) else {
            return Ok(None);
        };
        let mut limiter = RateLimiter::new(&m.limits);
        limiter.restore(
            self.ctx
                .store
                .send_times_since(name, self.now.saturating_sub(DAY))?,
        );
        let slot = match limiter.next_allowed(self.now) {
            Some(t) if t <= self.now => None,
            Some(t) => Some(t),
            None => Some(Millis::MAX),
        };
        self.slots.insert(name.to_string(), slot);
        Ok(slot)
    }

    /// The pool cap's next slot when it holds every modem, `None` when there is none or it is free.
    fn pool_limited_until(&mut self) -> Result<Option<Millis>> {
        if let Some(s) = self.pool_slot {
            return Ok(s);
        }
        let slot = match self.ctx.settings.dispatch.pool_per_minute {
            None => None,
            Some(cap) => {
                let mut limiter = RateLimiter::with_windows(&[Window::per_minute(cap)]);
                limiter.restore(
                    self.ctx
                        .store
                        .all_send_times_since(self.now.saturating_sub(MINUTE))?,
                );
                match limiter.next_allowed(self.now) {
                    Some(t) if t <= self.now => None,
                    Some(t) => Some(t),
                    None => Some(Millis::MAX),
                }
            }
        };
        self.pool_slot = Some(slot);
        Ok(slot)
    }
}

/// What holds broadcast `b`'s queued copies at `now` (module doc).
pub(super) fn held(ctx: &Context, b: &BroadcastRow, now: Millis) -> Result<Vec<Held>> {
    let cfg = &ctx.settings;
    let quiet = QuietPolicy::from_config(&cfg.dispatch)
        .window_for(MessageKind::Bulk, QuietOverride::Inherit);
    let start = b.scheduled_at.unwrap_or(b.created_at);
    let mut zones = QuietZones::new(&cfg.dispatch.default_time_zone, quiet, now);
    // The per-zone count needs a join per row: only when the default zone (members without one,
    // recipients no longer members) or some member's zone is quiet now. Otherwise no copy is in
    // quiet hours and the groups carry no zone.
    let by_zone = quiet.is_some()
        && (zones.until(None).1 > now || {
            let names = ctx.store.member_time_zones()?;
            names.iter().any(|z| zones.until(z.as_deref()).1 > now)
        });
    if !by_zone {
        zones = QuietZones::new(&cfg.dispatch.default_time_zone, None, now);
    }
    let groups = ctx
        .store
        .broadcast_queue_groups(b.id, now, start, by_zone)?;
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut modems = Modems {
        ctx,
        now,
        slots: HashMap::new(),
        pool_slot: None,
    };
    let mut sums: BTreeMap<(usize, String), Sum> = BTreeMap::new();
    let mut retry_detail = None;
    for g in &groups {
        if let Some((reason, key, until, detail)) = classify(g, &mut zones, &mut modems, now)? {
            let order = ORDER
                .iter()
                .position(|r| *r == reason)
                .unwrap_or(ORDER.len());
            let s = sums.entry((order, key)).or_default();
            s.count += g.count;
            s.until = match (s.until, until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if s.detail.is_none() {
                s.detail = detail;
            }
            if reason == "retry" && retry_detail.is_none() {
                retry_detail = Some(ctx.store.broadcast_queue_last_error(b.id, now, start)?);
            }
        }
    }
    if let Some(e) = retry_detail.flatten()
        && let Some(s) = sums
            .iter_mut()
            .find(|((o, _), _)| ORDER.get(*o) == Some(&"retry"))
    {
        s.1.detail = Some(e);
    }
    Ok(sums
        .into_iter()
        .map(|((order, key), s)| {
            let reason = ORDER.get(order).copied().unwrap_or("other");
            entry(reason, key, s, &mut zones)
        })
        .collect())
}

/// A group's reason, its key (modem or zone; empty when neither), when it ends, and a detail.
type Reason = (&'static str, String, Option<Millis>, Option<String>);

/// The reason one group waits, with its key (modem or zone), its end and a detail; `None` when
/// the group is being sent.
fn classify(
    g: &QueuedGroup,
    zones: &mut QuietZones,
    modems: &mut Modems<'_>,
    now: Millis,
) -> Result<Option<Reason>> {
    if g.paused {
        return Ok(Some(("paused", String::new(), None, None)));
    }
    let (zone, quiet_until) = zones.until(g.zone.as_deref());
    let later = g.later.then_some(g.next_due);
    // A copy the runner deferred for quiet hours is due exactly when they end: still quiet.
    if quiet_until > now && later.is_none_or(|t| t <= quiet_until) {
        return Ok(Some(("quiet_hours", zone, Some(quiet_until), None)));
    }
    if let Some(t) = later {
        let reason = if g.tried { "retry" } else { "scheduled" };
        return Ok(Some((reason, String::new(), Some(t), None)));
    }
    // Due now: on its home modem, or on any ready one when it has none in the pool (the claim's
    // soft preference).
    let home = g
        .modem_pref
        .as_deref()
        .filter(|p| modems.pool().any(|m| m == *p));
    let slot = match home {
        Some(m) if !modems.ready(m) => {
            return Ok(Some(("modem_down", m.to_string(), None, None)));
        }
        Some(m) => modems.limited_until(m)?.map(|t| (m.to_string(), t)),
        None => {
            let ready: Vec<&str> = modems.pool().filter(|m| modems.ready(m)).collect();
            if ready.is_empty() {
                return Ok(Some(("no_modem_ready", String::new(), None, None)));
            }
            // Held only when every ready modem is: then until the first slot opens.
            let mut earliest = Some(Millis::MAX);
            for m in ready {
                match modems.limited_until(m)? {
                    None => {
                        earliest = None;
                        break;
                    }
                    Some(t) => earliest = earliest.map(|e| e.min(t)),
                }
            }
            earliest.map(|t| (String::new(), t))
        }
    };
    if let Some((modem, t)) = slot {
        return Ok(Some(("rate_limit", modem, Some(t), None)));
    }
    if let Some(t) = modems.pool_limited_until()? {
        return Ok(Some(("rate_limit", "(pool)".to_string(), Some(t), None)));
    }
    Ok(None)
}

/// The wire entry, with its words.
fn entry(reason: &str, key: String, s: Sum, zones: &mut QuietZones) -> Held {
    let until = s.until.filter(|t| *t != Millis::MAX);
    let clock = |t: Millis, tz: &TimeZone, format: &str| {
        jiff::Timestamp::from_millisecond(t)
            .map(|ts| tz.to_datetime(ts).strftime(format).to_string())
            .unwrap_or_else(|_| rfc3339(t))
    };
    let at = |t: Millis, tz: &TimeZone| clock(t, tz, "%H:%M");
    let utc = TimeZone::UTC;
    let (modem, zone) = match reason {
        "quiet_hours" => (None, Some(key.clone())),
        "rate_limit" if key == "(pool)" || key.is_empty() => (None, None),
        "rate_limit" | "modem_down" => (Some(key.clone()), None),
        _ => (None, None),
    };
    let detail = match reason {
        "quiet_hours" => format!(
            "quiet hours in {key} until {} local",
            until.map_or_else(|| "?".into(), |t| at(t, &zones.tz(&key)))
        ),
        "rate_limit" => {
            let whose = match key.as_str() {
                "(pool)" => "the pool's pool_per_minute cap".to_string(),
                "" => "the limits of every ready modem".to_string(),
                m => format!("the limits of {m}"),
            };
            match until {
                // A slot is seconds away: the seconds matter.
                Some(t) => format!(
                    "waiting for {whose}: next send at {} UTC",
                    clock(t, &utc, "%H:%M:%S")
                ),
                None => format!("{whose} allow no sends (a cap of 0)"),
            }
        }
        "modem_down" => format!("home modem {key} is not ready"),
        "no_modem_ready" => "no modem is ready".to_string(),
        "scheduled" => format!(
            "scheduled for {} UTC",
            until.map_or_else(|| "?".into(), |t| at(t, &utc))
        ),
        "retry" => format!(
            "next attempt at {} UTC{}",
            until.map_or_else(|| "?".into(), |t| at(t, &utc)),
            s.detail
                .as_deref()
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        ),
        "paused" => "the broadcast is paused".to_string(),
        other => other.to_string(),
    };
    Held {
        reason: reason.to_string(),
        count: s.count,
        until: until.map(rfc3339),
        modem,
        zone,
        detail,
    }
}

/// Quiet hours per zone at one instant: when they end (≤ now: not quiet), once per zone name.
struct QuietZones {
    default_name: String,
    default: TimeZone,
    quiet: Option<QuietHours>,
    now: Millis,
    cache: HashMap<String, (TimeZone, Millis)>,
}

impl QuietZones {
    fn new(default_name: &str, quiet: Option<QuietHours>, now: Millis) -> QuietZones {
        QuietZones {
            default_name: default_name.to_string(),
            default: dispatch::time_zone(default_name).unwrap_or(TimeZone::UTC),
            quiet,
            now,
            cache: HashMap::new(),
        }
    }

    fn tz(&mut self, name: &str) -> TimeZone {
        self.until(Some(name));
        self.cache
            .get(name)
            .map_or_else(|| self.default.clone(), |(tz, _)| tz.clone())
    }

    /// The zone's name (the default's for members without one) and when quiet hours end there.
    fn until(&mut self, zone: Option<&str>) -> (String, Millis) {
        let name = zone.unwrap_or(&self.default_name).to_string();
        if let Some((_, t)) = self.cache.get(&name) {
            return (name, *t);
        }
        // Unknown names fall back to the default zone, as the runner does.
        let tz = dispatch::time_zone(&name).unwrap_or_else(|_| self.default.clone());
        let until = match &self.quiet {
            Some(q) => dispatch::next_sendable_ms(self.now, &tz, q),
            None => self.now,
        };
        self.cache.insert(name.clone(), (tz, until));
        (name, until)
    }
}
