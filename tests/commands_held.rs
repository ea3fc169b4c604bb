//! What holds a broadcast (`held` in `broadcasts` / `broadcast_progress`, docs/admin-protocol.md):
//! the commands called directly on a real store with the clock pinned, so the reasons, counts and
//! until-times are exact. Issue 18: the demo broadcast sat silent during quiet hours, with no word
//! of why; before `held` existed these replies had no such field at all.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gsmgate::commands::{Clock, Context, broadcasts, members};
use gsmgate::config::{Config, Limits, QuietHours};
use gsmgate::protocol::{
    BroadcastArgs, BroadcastIdArgs, BroadcastItem, BroadcastsArgs, MemberAddArgs,
};
use gsmgate::store::{ClaimRoute, Store};
use serde_json::Value;

/// 2026-03-02T22:00:00Z: inside the 21:00–08:00 quiet hours in UTC, daytime in Chicago (16:00).
const NIGHT: i64 = 1_772_488_800_000;
/// 2026-03-03T08:00:00Z: when quiet hours end in UTC.
const MORNING_UTC: &str = "2026-03-03T08:00:00Z";
const SECOND: i64 = 1_000;

fn ctx(store: &Store, cfg: &Config, now: i64) -> Context {
    Context::new(store.clone(), Arc::new(cfg.command_settings())).with_clock(Clock::Fixed(now))
}

fn add(store: &Store, cfg: &Config, number: &str, zone: Option<&str>, now: i64) {
    members::add(
        &ctx(store, cfg, now),
        &MemberAddArgs {
            number: number.into(),
            name: Some("Ada".into()),
            time_zone: zone.map(Into::into),
            ..MemberAddArgs::default()
        },
    )
    .unwrap_or_else(|e| panic!("add {number}: {e}"));
}

fn broadcast(store: &Store, cfg: &Config, now: i64) -> i64 {
    broadcasts::broadcast(
        &ctx(store, cfg, now),
        &BroadcastArgs {
            text: "Hi {name}".into(),
            segment: None,
            at: None,
            dry_run: false,
            ..Default::default()
        },
    )
    .expect("broadcast")
    .id
    .expect("an id")
}

fn progress(store: &Store, cfg: &Config, id: i64, now: i64) -> BroadcastItem {
    broadcasts::progress(&ctx(store, cfg, now), &BroadcastIdArgs { broadcast: id }).unwrap()
}

/// The item as a `--json` client sees it.
fn held_json(item: &BroadcastItem) -> Vec<Value> {
    let v = serde_json::to_value(item).unwrap();
    v["held"].as_array().expect("held is an array").clone()
}

#[test]
fn a_broadcast_in_quiet_hours_says_so_with_the_count_and_the_end_per_zone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("gsmgate.db")).unwrap();
    let mut cfg = Config::embedded_default();
    cfg.dispatch.quiet_hours = Some(QuietHours::DEFAULT);
    cfg.dispatch.default_time_zone = "UTC".into();
    for n in ["+15557654301", "+15557654302", "+15557654303"] {
        add(&store, &cfg, n, None, NIGHT);
    }
    // Daytime in Chicago: this one is not held.
    add(&store, &cfg, "+15557654304", Some("America/Chicago"), NIGHT);
    let id = broadcast(&store, &cfg, NIGHT);

    let p = progress(&store, &cfg, id, NIGHT + SECOND);
    let held = held_json(&p);
    assert_eq!(held.len(), 1, "{held:?}");
    let h = &held[0];
    assert_eq!(h["reason"], "quiet_hours");
    assert_eq!(h["count"], 3);
    assert_eq!(h["until"], MORNING_UTC);
    assert_eq!(h["zone"], "UTC");
    assert_eq!(h["detail"], "quiet hours in UTC until 08:00 local");

    // The runner defers a copy it claimed in quiet hours to their end: still quiet, not a retry.
    let morning = MORNING_UTC
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let row = store
        .claim_next_routed("sim0", NIGHT, &ClaimRoute::default())
        .unwrap()
        .expect("a due row");
    let zone_of_row = if row.to_number == "+15557654304" {
        "America/Chicago"
    } else {
        "UTC"
    };
    if zone_of_row == "UTC" {
        store
            .release_claim(row.id, morning, Some("quiet hours in UTC"))
            .unwrap();
        assert_eq!(progress(&store, &cfg, id, NIGHT + SECOND).held, p.held);
    } else {
        store.release_claim(row.id, NIGHT, None).unwrap();
    }

    // `broadcasts` (the list) says the same.
    let list = broadcasts::list(
        &ctx(&store, &cfg, NIGHT + SECOND),
        &BroadcastsArgs::default(),
    )
    .unwrap();
    assert_eq!(list[0].held, p.held);

    // At 08:00 UTC the night is over in UTC but has begun in Chicago (02:00): each zone its own.
    let morning = MORNING_UTC
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let h = progress(&store, &cfg, id, morning).held;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].zone.as_deref(), Some("America/Chicago"));
    assert_eq!(
        (h[0].count, h[0].until.as_deref()),
        (1, Some("2026-03-03T14:00:00Z"))
    );
    // At 15:00 UTC (09:00 in Chicago) nothing holds any copy.
    let h = progress(&store, &cfg, id, morning + 7 * 3_600_000).held;
    assert!(h.is_empty(), "{h:?}");

    // Without quiet hours (the embedded default) no quiet hours hold anything at night (a copy the
    // runner deferred earlier waits for its due time as a retry).
    let plain = Config::embedded_default();
    assert_eq!(plain.dispatch.quiet_hours, None);
    let h = progress(&store, &plain, id, NIGHT + SECOND).held;
    assert!(
        h.iter().all(|h| h.reason == "retry" && h.count == 1),
        "{h:?}"
    );
}

#[test]
fn a_broadcast_behind_a_tiny_rate_limit_names_the_modem_the_next_slot_and_has_an_eta() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("gsmgate.db")).unwrap();
    let mut cfg = Config::embedded_default();
    // One modem, one SMS a minute.
    cfg.modems.truncate(1);
    cfg.modems[0].limits = Limits {
        per_minute: 1,
        per_hour: 60,
        per_day: 1000,
    };
    for n in ["+15557654311", "+15557654312", "+15557654313"] {
        add(&store, &cfg, n, None, NIGHT);
    }
    let id = broadcast(&store, &cfg, NIGHT);
    // Before anything was sent, the slot is free: nothing holds it, it is being sent.
    assert!(progress(&store, &cfg, id, NIGHT).held.is_empty());

    // sim0 sends one copy now; the other two wait a minute for the next slot.
    let route = ClaimRoute {
        pool: vec!["sim0".into()],
        takeover: vec![],
    };
    let row = store
        .claim_next_routed("sim0", NIGHT, &route)
        .unwrap()
        .expect("a due row");
    store.record_part_sent(row.id, 1, 1, 7, NIGHT).unwrap();
    store.mark_sent(row.id, NIGHT).unwrap();

    let p = progress(&store, &cfg, id, NIGHT + 10 * SECOND);
    let held = held_json(&p);
    assert_eq!(held.len(), 1, "{held:?}");
    let h = &held[0];
    assert_eq!(h["reason"], "rate_limit");
    assert_eq!(h["count"], 2);
    assert_eq!(h["modem"], "sim0");
    assert_eq!(
        h["until"], "2026-03-02T22:01:00Z",
        "the minute after the send"
    );
    assert!(
        h["detail"].as_str().unwrap().contains("the limits of sim0"),
        "{h}"
    );
    // The ETA says when the wait ends: two more minutes of one SMS each.
    let eta = p.eta.expect("an ETA while rate limited");
    assert!(
        eta.as_str() >= "2026-03-02T22:02:00Z",
        "the last copy goes in the second minute after the first: {eta}"
    );
}

#[test]
fn paused_scheduled_and_modemless_copies_are_named_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("gsmgate.db")).unwrap();
    let mut cfg = Config::embedded_default();
    add(&store, &cfg, "+15557654321", None, NIGHT);
    add(&store, &cfg, "+15557654322", None, NIGHT);

    // Scheduled an hour ahead.
    let c = ctx(&store, &cfg, NIGHT);
    let id = broadcasts::broadcast(
        &c,
        &BroadcastArgs {
            text: "later".into(),
            segment: None,
            at: Some("2026-03-02T23:00:00Z".into()),
            dry_run: false,
            ..Default::default()
        },
    )
    .unwrap()
    .id
    .unwrap();
    let h = &progress(&store, &cfg, id, NIGHT).held;
    assert_eq!((h[0].reason.as_str(), h[0].count), ("scheduled", 2));
    assert_eq!(h[0].until.as_deref(), Some("2026-03-02T23:00:00Z"));

    // Paused.
    broadcasts::pause(&c, &BroadcastIdArgs { broadcast: id }).unwrap();
    let h = &progress(&store, &cfg, id, NIGHT).held;
    assert_eq!((h[0].reason.as_str(), h[0].count), ("paused", 2));
    assert_eq!(h[0].until, None);
    broadcasts::resume(&c, &BroadcastIdArgs { broadcast: id }).unwrap();

    // Past the start, one copy failed and waits for its retry; the other is due (not held).
    let t = NIGHT + 90 * 60 * SECOND;
    let row = store
        .claim_next_routed("sim0", t, &ClaimRoute::default())
        .unwrap()
        .expect("a due row");
    store
        .release_claim(row.id, NIGHT + 3 * 3_600_000, Some("+CMS ERROR: 500"))
        .unwrap();
    let h = &progress(&store, &cfg, id, t).held;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!((h[0].reason.as_str(), h[0].count), ("retry", 1));
    assert_eq!(h[0].until.as_deref(), Some("2026-03-03T01:00:00Z"));
    assert!(h[0].detail.contains("+CMS ERROR: 500"), "{h:?}");

    // Every modem disabled: due copies wait for a modem.
    for m in &mut cfg.modems {
        m.enabled = false;
    }
    let after = NIGHT + 2 * 3_600_000;
    let h = &progress(&store, &cfg, id, after).held;
    assert_eq!(h.len(), 2, "{h:?}");
    // The due copy's home is out of the pool, so any modem may take it, and none is ready.
    assert_eq!((h[0].reason.as_str(), h[0].count), ("no_modem_ready", 1));
    assert_eq!((h[1].reason.as_str(), h[1].count), ("retry", 1));
}
