//! Scheduling a broadcast in each member's time (`--at 19:00 --local`), the per-broadcast
//! quiet-hours override (`quiet_hours: false`, `--ignore-quiet-hours`) and a dry run's first and
//! last copy (`first_at`, `last_at`). The command layer on a pinned clock checks the exact
//! per-member due times (`not_before`, read from the outbox); the daemon against simulated
//! phones checks what the phones receive.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use daemon_util::*;
use gsmgate::commands::{Clock, CommandError, Context, broadcasts, members};
use gsmgate::config::Config;
use gsmgate::protocol::{
    BroadcastArgs, BroadcastIdArgs, BroadcastResult, MemberAddArgs, MembersExportArgs,
};
use gsmgate::store::{MemberStatus, NewMember, Store};

/// 2026-03-02T17:00:00Z: 17:00 in UTC (the default zone), 11:00 in Chicago, 02:00 on the 3rd in
/// Tokyo.
const NOW: i64 = 1_772_470_800_000;

fn ms(rfc: &str) -> i64 {
    rfc.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    cfg: Config,
}

impl Fixture {
    /// Ana (no zone: the default, UTC), Cal in Chicago, Ken in Tokyo; quiet hours as given.
    fn new(quiet: Option<((u8, u8), (u8, u8))>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("gsmgate.db")).unwrap();
        let mut cfg = Config::embedded_default();
        cfg.dispatch.default_time_zone = "UTC".into();
        cfg.dispatch.quiet_hours =
            quiet.map(|(start, end)| gsmgate::dispatch::QuietHours { start, end });
        let f = Fixture { dir, store, cfg };
        // Imported straight into the store: `members add` would infer Chicago from the 312 area
        // code, and Ana must have no zone of her own (the default zone applies).
        let rows: Vec<NewMember> = [
            ("+13125550101", None),
            ("+13125550102", Some("America/Chicago")),
            ("+13125550103", Some("Asia/Tokyo")),
        ]
        .into_iter()
        .map(|(number, zone): (&str, Option<&str>)| NewMember {
            number: number.into(),
            name: None,
            city: None,
            region: None,
            time_zone: zone.map(Into::into),
            tags: Vec::new(),
            status: Some(MemberStatus::Active),
            home_modem: Some("sim0".into()),
            onboarding_step: None,
            joined_at: NOW,
            fields: Default::default(),
            home_reason: None,
        })
        .collect();
        f.store.import_members(&rows, NOW).unwrap();
        f
    }

    fn ctx(&self) -> Context {
        Context::new(self.store.clone(), Arc::new(self.cfg.command_settings()))
            .with_clock(Clock::Fixed(NOW))
    }

    fn broadcast(&self, args: BroadcastArgs) -> Result<BroadcastResult, CommandError> {
        broadcasts::broadcast(&self.ctx(), &args)
    }

    /// (number → (not_before, quiet_off, parts, zone)) of the broadcast's rows, read from the
    /// database as the dispatch runner sees them.
    fn rows(&self, id: i64) -> HashMap<String, (i64, bool, i64, Option<String>)> {
        let db = rusqlite::Connection::open(self.dir.path().join("gsmgate.db")).unwrap();
        let mut st = db
            .prepare(
                "SELECT to_number, not_before, quiet_off, parts, zone FROM outbox
                 WHERE broadcast_id = ?1",
            )
            .unwrap();
        st.query_map([id], |r| {
            Ok((
                r.get(0)?,
                (r.get(1)?, r.get::<_, i64>(2)? == 1, r.get(3)?, r.get(4)?),
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }
}

fn local(at: &str, text: &str) -> BroadcastArgs {
    BroadcastArgs {
        text: text.into(),
        at: Some(at.into()),
        local: true,
        ..BroadcastArgs::default()
    }
}

#[test]
fn local_time_is_each_members_own_and_tomorrow_where_it_has_passed() {
    let f = Fixture::new(None);
    let r = f.broadcast(local("19:00", "Rally tonight")).unwrap();
    let id = r.id.unwrap();
    // The broadcast starts with its first zone.
    assert_eq!(r.scheduled_at.as_deref(), Some("2026-03-02T19:00:00Z"));
    let rows = f.rows(id);
    let due = |n: &str| rows[n].0;
    // UTC (the default zone): 19:00 today, still ahead.
    assert_eq!(due("+13125550101"), ms("2026-03-02T19:00:00Z"));
    // Chicago (CST, UTC−6): 19:00 there today = 01:00 UTC on the 3rd.
    assert_eq!(due("+13125550102"), ms("2026-03-03T01:00:00Z"));
    // Tokyo: already 02:00 on the 3rd, so 19:00 on the 3rd there = 10:00 UTC.
    assert_eq!(due("+13125550103"), ms("2026-03-03T10:00:00Z"));
    // Each row carries its part count and zone (what the progress poll groups by).
    assert_eq!(rows["+13125550103"].2, 1);
    assert_eq!(rows["+13125550103"].3.as_deref(), Some("Asia/Tokyo"));
    assert_eq!(rows["+13125550101"].3, None);
    // 16:00 has already passed in UTC (it is 17:00): tomorrow at 16:00.
    let r = f.broadcast(local("16:00", "Tomorrow")).unwrap();
    assert_eq!(
        f.rows(r.id.unwrap())["+13125550101"].0,
        ms("2026-03-03T16:00:00Z")
    );
    // The progress ETA counts from each zone's own start, not from now.
    let p = broadcasts::progress(&f.ctx(), &BroadcastIdArgs { broadcast: id }).unwrap();
    assert_eq!(p.state, "scheduled");
    let eta = ms(p.eta.as_deref().expect("an eta"));
    assert!(eta >= ms("2026-03-03T10:00:00Z"), "{p:?}");
}

#[test]
fn local_needs_a_time_of_day() {
    let f = Fixture::new(None);
    for args in [
        BroadcastArgs {
            at: None,
            ..local("", "x")
        },
        local("2026-03-02T19:00:00Z", "x"),
        local("25:00", "x"),
        local("7pm", "x"),
    ] {
        let r = f.broadcast(args.clone());
        assert!(
            matches!(r, Err(CommandError::Invalid(_))),
            "{args:?}: {r:?}"
        );
    }
    // Without `local`, a bare time of day is still refused (the wire wants RFC 3339).
    let r = f.broadcast(BroadcastArgs {
        local: false,
        ..local("19:00", "x")
    });
    assert!(matches!(r, Err(CommandError::Invalid(_))), "{r:?}");
}

#[test]
fn a_dry_run_says_when_the_first_and_last_copies_go_out() {
    let f = Fixture::new(None);
    let dry = |args: BroadcastArgs| {
        f.broadcast(BroadcastArgs {
            dry_run: true,
            ..args
        })
        .unwrap()
    };
    // Now, to three members on two modems: the first at once, the last a few sends later.
    let r = dry(BroadcastArgs {
        text: "Now".into(),
        ..BroadcastArgs::default()
    });
    assert_eq!(r.first_at.as_deref(), Some("2026-03-02T17:00:00Z"));
    let last = ms(r.last_at.as_deref().expect("last_at"));
    assert!(last > NOW && last < NOW + 60_000, "{r:?}");
    // At 19:00 local: from UTC's 19:00 to Tokyo's (10:00 UTC tomorrow).
    let r = dry(local("19:00", "Tonight"));
    assert_eq!(r.first_at.as_deref(), Some("2026-03-02T19:00:00Z"));
    let last = ms(r.last_at.as_deref().expect("last_at"));
    assert!(
        last >= ms("2026-03-03T10:00:00Z") && last < ms("2026-03-03T10:05:00Z"),
        "{r:?}"
    );
    assert_eq!(r.id, None);
    // A real broadcast leaves the dry-run fields empty.
    let real = f.broadcast(local("19:00", "Tonight")).unwrap();
    assert_eq!((real.first_at, real.last_at), (None, None));
}

#[test]
fn the_quiet_hours_override_is_this_broadcasts_only() {
    // Quiet from 16:00 to 18:00 in each zone: at 17:00 UTC, Ana (UTC) is inside them.
    let f = Fixture::new(Some(((16, 0), (18, 0))));
    let ana = |quiet_hours: Option<bool>, dry_run| {
        f.broadcast(BroadcastArgs {
            text: "News".into(),
            segment: None,
            quiet_hours,
            dry_run,
            ..BroadcastArgs::default()
        })
        .unwrap()
    };
    // Dry runs: Ana's copy waits until 18:00 unless the override is given.
    let held = ana(None, true);
    assert_eq!(held.first_at.as_deref(), Some("2026-03-02T17:00:00Z")); // Cal, Ken are awake
    assert_eq!(held.quiet_now, 1, "{held:?}");
    let urgent = ana(Some(false), true);
    assert_eq!(urgent.quiet_now, 0, "{urgent:?}");
    // Real ones: the override is stored on this broadcast's rows only, and its ETA ignores
    // the window while the other's waits for it.
    let plain = ana(None, false).id.unwrap();
    let over = ana(Some(false), false).id.unwrap();
    assert!(f.rows(plain).values().all(|r| !r.1));
    assert!(f.rows(over).values().all(|r| r.1));
    let eta = |id| {
        let p = broadcasts::progress(&f.ctx(), &BroadcastIdArgs { broadcast: id }).unwrap();
        ms(p.eta.as_deref().expect("eta"))
    };
    assert!(eta(plain) >= ms("2026-03-02T18:00:00Z"));
    assert!(eta(over) < ms("2026-03-02T17:05:00Z"));
}

/// `members export` pages (what the CLI asks for, page after page): the pages concatenated are
/// the one-reply CSV, the last page says there is no next one, and a bad cursor is refused.
#[test]
fn a_paged_export_concatenates_to_the_whole_csv() {
    let f = Fixture::new(None);
    let export = |limit, after| {
        members::export(
            &f.ctx(),
            &MembersExportArgs {
                segment: None,
                limit,
                after,
            },
        )
    };
    let whole = export(None, None).unwrap();
    assert_eq!((whole.count, whole.next.as_deref()), (3, None));
    let mut csv = String::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = export(Some(2), after).unwrap();
        pages += 1;
        csv.push_str(&page.csv);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(csv, whole.csv);
    assert!(matches!(
        export(Some(2), Some("nonsense".into())),
        Err(CommandError::Invalid(_))
    ));
    assert!(matches!(
        export(None, Some("1.2".into())),
        Err(CommandError::Invalid(_))
    ));
}

/// `HH:MM` of a unix-ms instant in UTC.
fn utc_hm(ms: i64) -> String {
    let minutes = ms.div_euclid(60_000);
    format!("{:02}:{:02}", minutes / 60 % 24, minutes % 60)
}

/// Quiet hours from two hours ago to two hours ahead in UTC (the test gateway's default zone),
/// whatever the time the test runs at.
fn quiet_now_config(dir: &std::path::Path) -> Config {
    let now = jiff::Timestamp::now().as_millisecond();
    let start = utc_hm(now - 2 * 3_600_000);
    let end = utc_hm(now + 2 * 3_600_000);
    let text = config_text(dir).replace(
        "[dispatch.quiet_hours]\nenabled = false",
        &format!("[dispatch.quiet_hours]\nstart = \"{start}\"\nend = \"{end}\""),
    );
    Config::from_str(&text, "test.toml").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_quiet_hours_reaches_phones_inside_quiet_hours_and_the_other_broadcast_waits() {
    let dir = short_tempdir();
    let cfg = quiet_now_config(dir.path());
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let phones = ["+13125550111", "+13125550112"];
    let mut c = gw.client().await;
    for p in phones {
        // In UTC, where the quiet window is now (the 312 area code alone would say Chicago).
        c.members_add(MemberAddArgs {
            number: p.into(),
            time_zone: Some("UTC".into()),
            ..MemberAddArgs::default()
        })
        .await
        .unwrap();
    }
    let send = |text: &str, quiet_hours| BroadcastArgs {
        text: text.into(),
        quiet_hours,
        ..BroadcastArgs::default()
    };
    let plain = c.broadcast(send("Regular newsletter", None)).await.unwrap();
    assert_eq!(plain.quiet_now, 2, "{plain:?}");
    let urgent = c
        .broadcast(send("Urgent: the rally moved", Some(false)))
        .await
        .unwrap();
    assert_eq!(urgent.quiet_now, 0);
    for p in phones {
        poll(
            &format!("{p} gets the urgent text"),
            Duration::from_secs(60),
            || async {
                gw.received_texts(p)
                    .iter()
                    .any(|t| t == "Urgent: the rally moved")
                    .then_some(())
            },
        )
        .await;
    }
    // The urgent copies went out after the newsletter was queued; the newsletter still waits.
    let p = c.broadcast_progress(plain.id.unwrap()).await.unwrap();
    assert_eq!(p.queued, 2, "{p:?}");
    for phone in phones {
        assert!(
            !gw.received_texts(phone)
                .iter()
                .any(|t| t == "Regular newsletter"),
            "{phone} got the newsletter inside quiet hours"
        );
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_broadcast_reaches_each_phone_at_its_own_time() {
    let gw = Gateway::start().await;
    let mut c = gw.client().await;
    // Ana lives in UTC, Bo in Kathmandu (UTC+5:45). The next minute in UTC is at most a minute
    // away for Ana; in Kathmandu the same wall-clock time passed hours ago, so Bo's copy is due
    // tomorrow.
    for (n, zone) in [("+13125550121", "UTC"), ("+13125550122", "Asia/Kathmandu")] {
        c.members_add(MemberAddArgs {
            number: n.into(),
            time_zone: Some(zone.into()),
            ..MemberAddArgs::default()
        })
        .await
        .unwrap();
    }
    let at = utc_hm(jiff::Timestamp::now().as_millisecond() + 60_000);
    let dry = c
        .broadcast(BroadcastArgs {
            dry_run: true,
            ..local(&at, "See you at the library")
        })
        .await
        .unwrap();
    let first = ms(dry.first_at.as_deref().unwrap());
    let last = ms(dry.last_at.as_deref().unwrap());
    assert!(
        last - first > 12 * 3_600_000,
        "Bo's copy is tomorrow: {dry:?}"
    );
    let r = c
        .broadcast(local(&at, "See you at the library"))
        .await
        .unwrap();
    poll("Ana gets the text", Duration::from_secs(150), || async {
        gw.received_texts("+13125550121")
            .iter()
            .any(|t| t == "See you at the library")
            .then_some(())
    })
    .await;
    let p = c.broadcast_progress(r.id.unwrap()).await.unwrap();
    assert_eq!(p.queued, 1, "Bo's copy waits for his own time: {p:?}");
    assert!(gw.received_texts("+13125550122").is_empty());
    gw.shutdown().await;
}
