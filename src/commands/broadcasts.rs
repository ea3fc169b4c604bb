//! The broadcast commands — preview or queue a broadcast, list broadcasts with progress and ETA,
//! one's progress, pause, resume, cancel — and the in-doubt rows a crash left for a person to
//! resolve.
//!
//! Choices worth knowing:
//! - A broadcast is streamed, never materialised: one cursor over the segment, each member
//!   decided, rendered, counted for the preview and inserted before the next is read, all in
//!   one transaction (`Store::create_broadcast_streamed`). A 100,000-member broadcast thus
//!   needs about the memory of a 100-member one (figures in docs/benchmarks.md).
//! - A broadcast goes only to members a bulk message may reach (`community::may_send` with the
//!   suppression list), whatever the segment says. Quiet hours do not exclude anyone: such
//!   recipients are counted (`quiet_now`) and dispatch holds their copies until morning.
//! - `expires_at` counts the bulk TTL from the broadcast's start (`--at`), not from when it was
//!   queued, so a broadcast scheduled for tomorrow is not born expired.
//! - The ETA is `dispatch::estimate` over this broadcast's queued rows alone, with every enabled
//!   modem assumed ready and [`ETA_PART_LATENCY_MS`] per part: a lower bound, as the estimate
//!   documents; other broadcasts competing for the same modems are not counted.

use std::collections::HashMap;

use super::broadcast_schedule::{Due, parse_local_time};
use super::members::{MAX_LIST_LIMIT, member_view, parse_segment, store_segment};
use super::{CommandError, Context, Result, Settings};
use crate::community::broadcast::{
    BroadcastOptions, PreviewTally, check_template_with, render_for,
};
use crate::community::decide::{MessageKind, Standing, may_send};
use crate::dispatch::{
    self, CountAt, DAY, EtaGroup, EtaModem, EtaRequest, Millis, QuietOverride, QuietPolicy,
    RateLimiter, Ttl, Window,
};
use crate::pdu::plan;
use crate::protocol::{
    BroadcastArgs, BroadcastIdArgs, BroadcastItem, BroadcastResult, BroadcastsArgs,
    EncodingSummary, Exclusions, InDoubtItem, InDoubtResolution, InDoubtResolveArgs,
    InDoubtResolved,
};
use crate::store::{
    BroadcastGroup, BroadcastRow, BroadcastState, Member, NewOutbox, OutboxRow, OutboxState,
    StateCounts, Store,
};
use crate::time::rfc3339;

/// Broadcasts listed when `broadcasts` gives no limit.
pub const DEFAULT_BROADCASTS_LIMIT: u32 = 20;

/// Time one SMS part is assumed to take in the ETA (`AT+CMGS` to `+CMGS:`; typical 2–4 s).
pub const ETA_PART_LATENCY_MS: Millis = 3_000;

fn parse_at(at: Option<&str>) -> Result<Option<i64>> {
    let Some(raw) = at.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    raw.parse::<jiff::Timestamp>()
        .map(|t| Some(t.as_millisecond()))
        .map_err(|_| {
            CommandError::Invalid(format!(
                "at: {raw:?} is not an RFC 3339 time such as 2026-03-01T18:00:00Z"
            ))
        })
}

/// Time zones by name, looked up once per broadcast; unknown names use the default zone.
struct Zones {
    default: jiff::tz::TimeZone,
    cache: HashMap<String, jiff::tz::TimeZone>,
}

impl Zones {
    fn new(cfg: &Settings) -> Zones {
        Zones {
            default: dispatch::time_zone(&cfg.dispatch.default_time_zone)
                .unwrap_or(jiff::tz::TimeZone::UTC),
            cache: HashMap::new(),
        }
    }

    fn get(&mut self, name: Option<&str>) -> jiff::tz::TimeZone {
        let Some(name) = name else {
            return self.default.clone();
        };
        if let Some(z) = self.cache.get(name) {
            return z.clone();
        }
        let z = dispatch::time_zone(name).unwrap_or_else(|_| self.default.clone());
        self.cache.insert(name.to_string(), z.clone());
        z
    }
}

/// Whether a copy waits for quiet hours at its due time, per time zone name: the due time is a
/// function of the zone (one instant, or one local time per zone), so every member of a zone has
/// the same answer and a 100,000-member broadcast computes it once per zone.
struct QuietNow {
    window: Option<dispatch::QuietHours>,
    default: Option<bool>,
    by_zone: HashMap<String, bool>,
}

impl QuietNow {
    fn new(cfg: &Settings, over: QuietOverride) -> QuietNow {
        QuietNow {
            window: QuietPolicy::from_config(&cfg.dispatch).window_for(MessageKind::Bulk, over),
            default: None,
            by_zone: HashMap::new(),
        }
    }

    fn is_quiet(&mut self, zone: Option<&str>, due: i64, zones: &mut Zones) -> bool {
        let Some(q) = self.window else {
            return false;
        };
        let cached = match zone {
            None => self.default,
            Some(z) => self.by_zone.get(z).copied(),
        };
        if let Some(b) = cached {
            return b;
        }
        let quiet = dispatch::next_sendable_ms(due, &zones.get(zone), &q) > due;
        match zone {
            None => self.default = Some(quiet),
            Some(z) => {
                self.by_zone.insert(z.to_string(), quiet);
            }
        }
        quiet
    }
}

/// One decided copy: its text, part count and due instant.
struct Copy {
    text: String,
    parts: usize,
    due: i64,
}

/// A dry run's recipients grouped as the ETA groups them: (home modem, zone, parts, due).
type PlanGroups = HashMap<(Option<String>, Option<String>, u32, i64), u64>;

/// A broadcast's expansion, one member at a time: who gets a copy, with which text, when, and
/// the counts of the reply. Shared by the dry run and the real enqueue so both count alike.
struct Expansion<'a> {
    cfg: &'a Settings,
    template: &'a str,
    opts: BroadcastOptions,
    zones: Zones,
    due: Due,
    quiet: QuietNow,
    matched: usize,
    excluded: Exclusions,
    quiet_now: usize,
    tally: PreviewTally,
    /// Earliest and latest due instant of a copy.
    first_due: Option<i64>,
    last_due: Option<i64>,
    /// Dry run only (its first/last figures); a real broadcast's ETA reads the outbox.
    plan: Option<PlanGroups>,
}

impl<'a> Expansion<'a> {
    fn new(cfg: &'a Settings, template: &'a str, due: Due, over: QuietOverride, dry: bool) -> Self {
        Expansion {
            cfg,
            template,
            opts: BroadcastOptions::default(),
            zones: Zones::new(cfg),
            due,
            quiet: QuietNow::new(cfg, over),
            matched: 0,
            excluded: Exclusions::default(),
            quiet_now: 0,
            tally: PreviewTally::default(),
            first_due: None,
            last_due: None,
            plan: dry.then(HashMap::new),
        }
    }

    /// One member of the segment (`suppressed`: on the suppression list): their copy when a
    /// bulk message may reach them ([`may_send`]), else `None` and the reason is counted.
    fn decide(&mut self, m: &Member, suppressed: bool) -> Option<Copy> {
        self.matched += 1;
        let view = member_view(m);
        let standing = Standing::of(Some(&view), suppressed);
        if !may_send(standing, MessageKind::Bulk) {
            if standing.is_opted_out() {
                self.excluded.opted_out += 1;
            } else {
                self.excluded.not_confirmed += 1;
            }
            self.tally.skip();
            return None;
        }
        let text = render_for(self.template, &view, &self.cfg.community, &self.opts);
        let parts = self.tally.recipient(&text);
        let zone = m.time_zone.as_deref();
        let zones = &mut self.zones;
        let due = self.due.of(zone, |z| zones.get(z));
        self.quiet_now += usize::from(self.quiet.is_quiet(zone, due, &mut self.zones));
        self.first_due = Some(self.first_due.map_or(due, |f| f.min(due)));
        self.last_due = Some(self.last_due.map_or(due, |l| l.max(due)));
        if let Some(plan) = &mut self.plan {
            let parts = u32::try_from(parts).unwrap_or(u32::MAX);
            let key = (m.home_modem.clone(), m.time_zone.clone(), parts, due);
            *plan.entry(key).or_default() += 1;
        }
        Some(Copy { text, parts, due })
    }

    /// A dry run's first and last copy: the first is the earliest due instant after quiet hours
    /// in its zone (per group, not per member), the last the rate limits' ETA over the groups.
    fn first_last(&mut self, store: &Store, now: i64) -> Result<(Option<i64>, Option<i64>)> {
        let Some(plan) = self.plan.take().filter(|p| !p.is_empty()) else {
            return Ok((None, None));
        };
        let window = self.quiet.window;
        let mut first: Option<i64> = None;
        let mut groups = Vec::with_capacity(plan.len());
        let mut keys: Vec<_> = plan.into_iter().collect();
        keys.sort(); // deterministic simulation order
        for ((modem, zone, parts, due), count) in keys {
            let tz = self.zones.get(zone.as_deref());
            let due = due.max(now);
            let open = window.map_or(due, |q| dispatch::next_sendable_ms(due, &tz, &q));
            first = Some(first.map_or(open, |f| f.min(open)));
            groups.push(EtaGroup {
                modem: modem_index(self.cfg, modem.as_deref()),
                tz,
                count,
                parts: parts.max(1),
                not_before: due,
            });
        }
        let last = finish_estimate(store, self.cfg, groups, (now, now), window)?;
        Ok((first, last))
    }

    fn result(self, dry_run: bool, segment: String, scheduled_at: Option<i64>) -> BroadcastResult {
        let p = self
            .tally
            .finish(self.template, &self.cfg.community, &self.opts);
        let encoding = match (p.gsm7, p.ucs2) {
            (_, 0) => "gsm7",
            (0, _) => "ucs2",
            _ => "mixed",
        };
        BroadcastResult {
            id: None,
            dry_run,
            segment,
            scheduled_at: scheduled_at.map(rfc3339),
            matched: self.matched,
            recipients: p.recipients,
            excluded: self.excluded,
            quiet_now: self.quiet_now,
            sms: EncodingSummary {
                encoding: encoding.to_string(),
                gsm7: p.gsm7,
                ucs2: p.ucs2,
                min_parts: p.min_parts,
                max_parts: p.max_parts,
                total_sms: p.total_sms,
            },
            example: p.example,
            first_at: None,
            last_at: None,
        }
    }
}

fn modem_index(cfg: &Settings, name: Option<&str>) -> Option<usize> {
    name.and_then(|p| cfg.modems.iter().position(|m| m.name == p))
}

/// When the broadcast's copies are due: `--at 19:00 --local` per member zone, else one instant
/// (`at`, or now). Returns it with the broadcast's own `scheduled_at` (`None` for a local one
/// until its first zone is known).
fn due_of(args: &BroadcastArgs, now: i64) -> Result<(Due, Option<i64>)> {
    if args.local {
        let raw = args.at.as_deref().map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return Err(CommandError::Invalid(
                "local needs at, a time of day such as 19:00".into(),
            ));
        }
        return Ok((Due::local(parse_local_time(raw)?, now), None));
    }
    let scheduled_at = parse_at(args.at.as_deref())?;
    Ok((
        Due::at(scheduled_at.unwrap_or(now).max(now), now),
        scheduled_at,
    ))
}

/// `broadcast`: with `dry_run`, what would happen; otherwise the broadcast and one bulk outbox
/// row per eligible member, in one transaction, before this returns.
///
/// Streamed (see [`Store::create_broadcast_streamed`]): the segment is read with one cursor and
/// each member is decided, rendered and inserted before the next is read, so memory stays flat
/// whatever the segment's size. A segment nobody may receive is refused and leaves nothing.
/// Each row carries its part count and its member's zone (what the progress poll groups by) and
/// its own due time (`--local`: 19:00 in the member's zone).
pub fn broadcast(ctx: &Context, args: &BroadcastArgs) -> Result<BroadcastResult> {
    let (store, cfg, now) = (&ctx.store, &*ctx.settings, ctx.now());
    check_template_with(&args.text, &cfg.community.custom_fields())?;
    let segment = parse_segment(cfg, args.segment.as_deref())?;
    let (due, scheduled_at) = due_of(args, now)?;
    let local = due.is_local();
    let quiet_off = args.quiet_hours == Some(false);
    let over = if quiet_off {
        QuietOverride::Off
    } else {
        QuietOverride::Inherit
    };
    let members = store_segment(&segment);
    let label = segment.to_string();
    let mut x = Expansion::new(cfg, &args.text, due, over, args.dry_run);
    if args.dry_run {
        store.for_each_member(&members, |m, suppressed| {
            x.decide(m, suppressed);
        })?;
        let (first, last) = x.first_last(store, now)?;
        let start = if local { x.first_due } else { scheduled_at };
        let mut r = x.result(true, label, start);
        r.first_at = first.map(rfc3339);
        r.last_at = last.map(rfc3339);
        return Ok(r);
    }
    let ttl = Ttl::from_config(&cfg.dispatch);
    let created = store.create_broadcast_streamed(
        &args.text,
        &label,
        scheduled_at.filter(|t| *t > now),
        &members,
        now,
        |m, suppressed| {
            let c = x.decide(m, suppressed)?;
            Some(NewOutbox {
                // Sticky sender: the copy goes out on the member's home modem (assigned,
                // balanced, when the member was added; dispatch fails over if it is down).
                modem_pref: m.home_modem.clone(),
                not_before: c.due,
                // The bulk TTL counts from the copy's own start, not from the enqueue.
                expires_at: ttl.deadline(MessageKind::Bulk, c.due),
                parts: Some(u32::try_from(c.parts).unwrap_or(u32::MAX)),
                zone: m.time_zone.clone(),
                quiet_off,
                ..NewOutbox::new(m.number.clone(), c.text, MessageKind::Bulk, now)
            })
        },
    )?;
    let first_due = x.first_due;
    let mut result = x.result(false, label, scheduled_at);
    let Some((id, inserted)) = created else {
        return Err(CommandError::Invalid(format!(
            "no member of segment {} may receive a broadcast ({} matched: {} opted out, {} not \
             confirmed); nothing was queued",
            result.segment,
            result.matched,
            result.excluded.opted_out,
            result.excluded.not_confirmed
        )));
    };
    if local && let Some(first) = first_due {
        // The broadcast starts with its first zone: `scheduled` until then, and its ETA counts
        // from there.
        store.schedule_broadcast(id, first, now)?;
        result.scheduled_at = Some(rfc3339(first));
    }
    result.id = Some(id);
    // Every decided copy is one new row: members' numbers are unique, and the decision and the
    // insert read the same transaction, so no opt-out can come between them.
    result.recipients = inserted;
    ctx.wake_dispatch();
    Ok(result)
}

fn item(ctx: &Context, b: &BroadcastRow, now: i64) -> Result<BroadcastItem> {
    let (store, cfg) = (&ctx.store, &*ctx.settings);
    // The kept counts (migration 0014) give both the progress and the ETA's groups, without
    // reading the broadcast's rows (docs/benchmarks.md, "Progress poll").
    let groups = store.broadcast_groups(b.id)?;
    let mut c = StateCounts::default();
    for g in &groups {
        c.add(g.state, g.count);
    }
    let eta = match b.state {
        BroadcastState::Running | BroadcastState::Scheduled if c.queued + c.claimed > 0 => {
            eta(store, cfg, b, &groups, now)?
        }
        _ => None,
    };
    Ok(BroadcastItem {
        id: b.id,
        created_at: rfc3339(b.created_at),
        scheduled_at: b.scheduled_at.map(rfc3339),
        state: b.state.as_str().to_string(),
        segment: b.segment.clone(),
        template: b.template.clone(),
        total: c.total(),
        queued: c.queued,
        sending: c.claimed,
        sent: c.sent,
        delivered: c.delivered,
        failed: c.failed,
        expired: c.expired,
        cancelled: c.cancelled,
        in_doubt: c.in_doubt,
        eta: eta.map(rfc3339),
        held: match b.state {
            BroadcastState::Done | BroadcastState::Cancelled => Vec::new(),
            _ if c.queued == 0 => Vec::new(),
            _ => super::held::held(ctx, b, now)?,
        },
    })
}

/// The broadcast's finish estimate (ms), or `None` when some recipients cannot be served.
///
/// Its queued rows come grouped by the store (home modem, zone, part count, earliest due), so
/// a poll costs the kept counts and a simulation over a handful of groups. Rows queued
/// without a part count (through the store API, not this command) are read and counted from
/// their text, as every row was before migration 0010.
fn eta(
    store: &Store,
    cfg: &Settings,
    b: &BroadcastRow,
    rows: &[BroadcastGroup],
    now: i64,
) -> Result<Option<i64>> {
    let mut zones = Zones::new(cfg);
    let mut groups: HashMap<(Option<usize>, String, u32), (u64, i64)> = HashMap::new();
    let default_zone = &cfg.dispatch.default_time_zone;
    let mut uncounted = false;
    for g in rows.iter().filter(|g| g.state == OutboxState::Queued) {
        let Some(parts) = g.parts else {
            uncounted = true;
            continue;
        };
        let zone = g.zone.as_deref().unwrap_or(default_zone).to_string();
        let key = (modem_index(cfg, g.modem_pref.as_deref()), zone, parts);
        let e = groups.entry(key).or_insert((0, g.first_due));
        e.0 += g.count;
        e.1 = e.1.min(g.first_due);
    }
    if uncounted {
        // A template without placeholders gives every copy the same text, so part counts are
        // memoised (up to 64 texts); personalised copies are planned one by one.
        let mut parts_of: HashMap<String, u32> = HashMap::new();
        store.for_each_uncounted_queued_in_broadcast(b.id, |modem_pref, zone, text| {
            let zone = zone.unwrap_or(default_zone).to_string();
            let parts = match parts_of.get(text) {
                Some(&n) => n,
                None => {
                    let n = u32::try_from(plan(text).parts.len()).unwrap_or(u32::MAX);
                    if parts_of.len() < 64 {
                        parts_of.insert(text.to_string(), n);
                    }
                    n
                }
            };
            let key = (modem_index(cfg, modem_pref), zone, parts);
            groups.entry(key).or_insert((0, Millis::MIN)).0 += 1;
        })?;
    }
    let mut keys: Vec<_> = groups.into_iter().collect();
    keys.sort(); // deterministic simulation order
    let groups: Vec<EtaGroup> = keys
        .into_iter()
        .map(|((modem, zone, parts), (count, first_due))| EtaGroup {
            modem,
            tz: zones.get(Some(&zone)),
            count,
            parts: parts.max(1),
            not_before: first_due,
        })
        .collect();
    let quiet = if store.broadcast_ignores_quiet_hours(b.id)? {
        None
    } else {
        QuietPolicy::from_config(&cfg.dispatch)
            .window_for(MessageKind::Bulk, QuietOverride::Inherit)
    };
    finish_estimate(
        store,
        cfg,
        groups,
        (now, b.scheduled_at.unwrap_or(now)),
        quiet,
    )
}

/// `dispatch::estimate` over `groups` from `start` (not before `now`), with each enabled modem's
/// limiter as its send log of the day before `now` leaves it, and the pool cap.
fn finish_estimate(
    store: &Store,
    cfg: &Settings,
    groups: Vec<EtaGroup>,
    (now, start): (i64, i64),
    quiet: Option<dispatch::QuietHours>,
) -> Result<Option<i64>> {
    let mut modems = Vec::with_capacity(cfg.modems.len());
    for m in &cfg.modems {
        let mut limiter = RateLimiter::new(&m.limits);
        limiter.restore(store.send_times_since(&m.name, now.saturating_sub(DAY))?);
        modems.push(EtaModem {
            limiter,
            latency_ms: ETA_PART_LATENCY_MS,
            ready: m.enabled,
        });
    }
    let req = EtaRequest {
        now: start.max(now),
        modems,
        groups,
        quiet,
        pool_limiter: cfg
            .dispatch
            .pool_per_minute
            .map(|cap| RateLimiter::with_windows(&[Window::per_minute(cap)])),
        horizon_ms: EtaRequest::DEFAULT_HORIZON_MS,
        count_at: CountAt::Start,
    };
    Ok(dispatch::estimate(&req).finish)
}

/// `broadcasts`: the latest broadcasts, newest first, with progress and ETA.
pub fn list(ctx: &Context, args: &BroadcastsArgs) -> Result<Vec<BroadcastItem>> {
    let (store, now) = (&ctx.store, ctx.now());
    store.refresh_broadcasts(now)?;
    let limit = args
        .limit
        .unwrap_or(DEFAULT_BROADCASTS_LIMIT)
        .min(MAX_LIST_LIMIT);
    store
        .broadcasts(limit)?
        .iter()
        .map(|b| item(ctx, b, now))
        .collect()
}

/// `broadcast_progress`: one broadcast, with its state moved along first (running → done when
/// nothing is left), so a client polling it sees the end.
pub fn progress(ctx: &Context, args: &BroadcastIdArgs) -> Result<BroadcastItem> {
    let (store, now) = (&ctx.store, ctx.now());
    store.refresh_broadcasts(now)?;
    item(ctx, &store.broadcast(args.broadcast)?, now)
}

/// `broadcast_pause`: queued rows are held until resumed.
pub fn pause(ctx: &Context, args: &BroadcastIdArgs) -> Result<BroadcastItem> {
    let (store, now) = (&ctx.store, ctx.now());
    store.pause_broadcast(args.broadcast, now)?;
    item(ctx, &store.broadcast(args.broadcast)?, now)
}

/// `broadcast_resume`.
pub fn resume(ctx: &Context, args: &BroadcastIdArgs) -> Result<BroadcastItem> {
    let (store, now) = (&ctx.store, ctx.now());
    store.resume_broadcast(args.broadcast, now)?;
    ctx.wake_dispatch();
    item(ctx, &store.broadcast(args.broadcast)?, now)
}

/// `broadcast_cancel`: queued rows are cancelled; rows being sent finish.
pub fn cancel(ctx: &Context, args: &BroadcastIdArgs) -> Result<BroadcastItem> {
    let (store, now) = (&ctx.store, ctx.now());
    store.cancel_broadcast(args.broadcast, now)?;
    item(ctx, &store.broadcast(args.broadcast)?, now)
}

/// One in-doubt row with what is known about its interrupted submit (`Store::submit_evidence`,
/// the parts the modem accepted before the crash).
fn in_doubt_item(store: &Store, r: &OutboxRow) -> Result<InDoubtItem> {
    let evidence = store.submit_evidence(r.id)?;
    let accepted = store.outbox_parts(r.id)?;
    let parts_accepted = u32::try_from(accepted.len()).unwrap_or(u32::MAX);
    let reported = accepted
        .iter()
        .filter(|p| p.report_status.is_some())
        .count();
    let known = match &evidence {
        None => "no submit recorded (sent by an older build, or never submitted)".to_string(),
        Some(e) => {
            let mut k = format!(
                "submit of part {} of {} started at {} on modem {}, ",
                e.part,
                e.total,
                rfc3339(e.started_at),
                e.modem
            );
            match e.expected_mr {
                Some(mr) => k.push_str(&format!("expected reference {mr}, no report yet")),
                None => k.push_str("reference not predictable (the modem's last one is unknown)"),
            }
            if e.total > 1 {
                k.push_str(&format!(
                    "; {parts_accepted} of {} parts accepted before ({reported} reported)",
                    e.total
                ));
            }
            k
        }
    };
    Ok(InDoubtItem {
        id: r.id,
        to: r.to_number.clone(),
        kind: r.kind.as_str().to_string(),
        broadcast_id: r.broadcast_id,
        text: r.text.clone(),
        modem: r.claimed_by.clone(),
        claimed_at: r.claimed_at.map(rfc3339),
        reason: r.last_error.clone(),
        submit_started_at: evidence.as_ref().map(|e| rfc3339(e.started_at)),
        submit_part: evidence.as_ref().map(|e| e.part),
        parts: evidence.as_ref().map(|e| e.total),
        parts_accepted,
        expected_reference: evidence.as_ref().and_then(|e| e.expected_mr),
        known,
    })
}

/// `in_doubt`: every message whose send was in flight at a crash and that the configured policy
/// left for a person to decide, oldest first, each with what is known about its submit.
pub fn in_doubt(ctx: &Context) -> Result<Vec<InDoubtItem>> {
    let store = &ctx.store;
    store
        .in_doubt()?
        .iter()
        .map(|r| in_doubt_item(store, r))
        .collect()
}

/// Reason recorded on an in-doubt row an administrator dropped.
pub const DROPPED_REASON: &str = "in doubt after a crash; dropped by the administrator";

/// `in_doubt_resolve`: resend (queue again) or drop (cancel) one in-doubt row.
pub fn in_doubt_resolve(ctx: &Context, args: &InDoubtResolveArgs) -> Result<InDoubtResolved> {
    let (store, now) = (&ctx.store, ctx.now());
    let row = store.outbox_row(args.message)?;
    if row.state != OutboxState::InDoubt {
        return Err(CommandError::Conflict(format!(
            "message {} is {}, not in doubt",
            row.id, row.state
        )));
    }
    let state = match args.action {
        InDoubtResolution::Resend => {
            store.requeue_in_doubt(args.message, now)?;
            OutboxState::Queued
        }
        InDoubtResolution::Drop => {
            store.cancel(args.message, DROPPED_REASON, now)?;
            OutboxState::Cancelled
        }
    };
    ctx.wake_dispatch();
    Ok(InDoubtResolved {
        id: args.message,
        state: state.as_str().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_must_be_rfc3339() {
        assert_eq!(
            parse_at(Some("2026-03-01T18:00:00Z")).ok().flatten(),
            Some(1_772_388_000_000)
        );
        assert_eq!(parse_at(None).ok().flatten(), None);
        assert!(matches!(
            parse_at(Some("18:00")),
            Err(CommandError::Invalid(_))
        ));
    }
}
