//! The member and broadcast commands (`commands::members`, `commands::broadcasts`) on a real
//! SQLite store in a temporary directory, called directly as every transport calls them: members add/list/tag/remove,
//! CSV import (all or nothing, every bad row reported) and export, broadcast dry runs with their
//! exclusions, queued broadcasts (one row per eligible member, templating), pause/resume/cancel,
//! progress counts and in-doubt resolution. The socket path is covered by the daemon's e2e tests.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};

use gsmgate::commands::CommandError as ServiceError;
use gsmgate::config::Config;
use gsmgate::protocol::{
    BroadcastArgs, BroadcastIdArgs, BroadcastsArgs, InDoubtResolution, InDoubtResolveArgs,
    MemberAddArgs, MemberRemoveArgs, MemberTagArgs, MembersExportArgs, MembersImportArgs,
    MembersListArgs,
};
use gsmgate::store::{
    ClaimRoute, ConsentEvent, ConsentSource, MessageKind, NewMember, OutboxState, RecoveryPolicy,
    Store,
};

/// The commands as `(store, config, args, now)` calls on a context pinned at `now`, so each test
/// below reads as the scenario it checks.
mod service {
    use std::sync::Arc;

    use gsmgate::commands::{Clock, Context, Result, broadcasts, members};
    use gsmgate::config::Config;
    use gsmgate::protocol::*;
    use gsmgate::store::Store;

    fn ctx(store: &Store, cfg: &Config, now: i64) -> Context {
        Context::new(store.clone(), Arc::new(cfg.command_settings())).with_clock(Clock::Fixed(now))
    }

    macro_rules! wrap {
        ($($name:ident => $f:path, $args:ty, $out:ty;)*) => {$(
            pub fn $name(store: &Store, cfg: &Config, args: &$args, now: i64) -> Result<$out> {
                $f(&ctx(store, cfg, now), args)
            }
        )*};
    }

    wrap! {
        members_list => members::list, MembersListArgs, MembersPage;
        members_add => members::add, MemberAddArgs, MemberItem;
        members_remove => members::remove, MemberRemoveArgs, MemberRemoved;
        members_tag => members::tag, MemberTagArgs, MemberItem;
        members_import => members::import, MembersImportArgs, ImportResult;
        members_export => members::export, MembersExportArgs, ExportData;
        broadcast => broadcasts::broadcast, BroadcastArgs, BroadcastResult;
        broadcasts => broadcasts::list, BroadcastsArgs, Vec<BroadcastItem>;
        broadcast_progress => broadcasts::progress, BroadcastIdArgs, BroadcastItem;
        broadcast_pause => broadcasts::pause, BroadcastIdArgs, BroadcastItem;
        broadcast_resume => broadcasts::resume, BroadcastIdArgs, BroadcastItem;
        broadcast_cancel => broadcasts::cancel, BroadcastIdArgs, BroadcastItem;
        in_doubt_resolve => broadcasts::in_doubt_resolve, InDoubtResolveArgs, InDoubtResolved;
    }

    pub use gsmgate::commands::broadcasts::DROPPED_REASON;

    pub fn in_doubt(store: &Store, cfg: &Config, now: i64) -> Result<Vec<InDoubtItem>> {
        broadcasts::in_doubt(&ctx(store, cfg, now))
    }
}

/// 2026-03-02T17:00:00Z: 11:00 in Chicago, 02:00 in Tokyo (quiet hours 21:00–08:00 there).
const NOW: i64 = 1_772_470_800_000;
const HOUR: i64 = 3_600_000;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    cfg: Config,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("gsmgate.db")).expect("open store");
    // The embedded default has no quiet hours (a simulated pool never sleeps); these tests count
    // recipients in quiet hours, so they set the TCPA window a real configuration has.
    let mut cfg = Config::embedded_default();
    cfg.dispatch.quiet_hours = Some(gsmgate::config::QuietHours::DEFAULT);
    Fixture {
        _dir: dir,
        store,
        cfg,
    }
}

fn add(f: &Fixture, number: &str, name: Option<&str>, city: Option<&str>, tags: &[&str]) {
    service::members_add(
        &f.store,
        &f.cfg,
        &MemberAddArgs {
            number: number.into(),
            name: name.map(Into::into),
            city: city.map(Into::into),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..MemberAddArgs::default()
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("add {number}: {e}"));
}

fn list(f: &Fixture, segment: Option<&str>) -> Vec<String> {
    service::members_list(
        &f.store,
        &f.cfg,
        &MembersListArgs {
            segment: segment.map(Into::into),
            ..MembersListArgs::default()
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("list: {e}"))
    .members
    .into_iter()
    .map(|m| m.number)
    .collect()
}

fn bcast(text: &str, segment: Option<&str>, dry_run: bool) -> BroadcastArgs {
    BroadcastArgs {
        text: text.into(),
        segment: segment.map(Into::into),
        at: None,
        dry_run,
        ..BroadcastArgs::default()
    }
}

#[test]
fn members_add_list_tag_remove() {
    let f = fixture();
    let m = service::members_add(
        &f.store,
        &f.cfg,
        &MemberAddArgs {
            number: "(312) 555-0101".into(),
            name: Some("  Ana   Lopez ".into()),
            city: Some("Chicago".into()),
            tags: vec!["Volunteer".into(), "block captain".into()],
            ..MemberAddArgs::default()
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.number, "+13125550101");
    assert_eq!(m.name.as_deref(), Some("Ana Lopez"));
    assert_eq!(m.status, "active");
    assert_eq!(m.tags, vec!["block-captain", "volunteer"]);
    assert_eq!(m.time_zone.as_deref(), Some("America/Chicago"));
    assert_eq!(m.joined_at, "2026-03-02T17:00:00Z");

    // Area code 212 → New York without a city.
    add(&f, "+1 212 555 0102", None, None, &["volunteer"]);
    add(&f, "+13125550103", Some("Bo"), Some("chicago"), &[]);
    let ny = f.store.member("+12125550102").ok().flatten();
    assert_eq!(
        ny.and_then(|m| m.time_zone).as_deref(),
        Some("America/New_York")
    );

    // Home modems are balanced over the two simulated modems.
    let homes: Vec<_> = ["+13125550101", "+12125550102", "+13125550103"]
        .iter()
        .filter_map(|n| f.store.member(n).ok().flatten()?.home_modem)
        .collect();
    assert_eq!(homes.len(), 3);
    let sim0 = homes.iter().filter(|h| *h == "sim0").count();
    assert!((1..=2).contains(&sim0), "{homes:?}");

    // Errors: a duplicate (in another spelling), a bad number, a bad tag, a bad zone.
    let dup = service::members_add(
        &f.store,
        &f.cfg,
        &MemberAddArgs {
            number: "312-555-0101".into(),
            ..MemberAddArgs::default()
        },
        NOW,
    );
    assert!(matches!(dup, Err(ServiceError::Conflict(_))), "{dup:?}");
    let bad = service::members_add(
        &f.store,
        &f.cfg,
        &MemberAddArgs {
            number: "555".into(),
            ..MemberAddArgs::default()
        },
        NOW,
    );
    assert!(
        matches!(bad, Err(ServiceError::InvalidNumber { ref input, .. }) if input == "555"),
        "{bad:?}"
    );
    for args in [
        MemberAddArgs {
            number: "+13125550109".into(),
            tags: vec!["a,b".into()],
            ..MemberAddArgs::default()
        },
        MemberAddArgs {
            number: "+13125550109".into(),
            time_zone: Some("Mars/Olympus".into()),
            ..MemberAddArgs::default()
        },
    ] {
        let r = service::members_add(&f.store, &f.cfg, &args, NOW);
        assert!(matches!(r, Err(ServiceError::Invalid(_))), "{r:?}");
    }

    // Listing by segment: city is case-insensitive, tags are all required.
    assert_eq!(list(&f, None).len(), 3);
    assert_eq!(
        list(&f, Some("city=CHICAGO")),
        vec!["+13125550101", "+13125550103"]
    );
    assert_eq!(
        list(&f, Some("tag=volunteer")),
        vec!["+13125550101", "+12125550102"]
    );
    assert_eq!(
        list(&f, Some("tag=volunteer,city=Chicago")),
        vec!["+13125550101"]
    );
    assert!(list(&f, Some("joined>=2026-03-03")).is_empty());
    assert_eq!(list(&f, Some("joined>=2026-03-02")).len(), 3);
    let page = service::members_list(
        &f.store,
        &f.cfg,
        &MembersListArgs {
            segment: None,
            limit: Some(1),
            offset: Some(1),
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.total, 3);
    assert_eq!(page.members.len(), 1);
    let bad_seg = service::members_list(
        &f.store,
        &f.cfg,
        &MembersListArgs {
            segment: Some("town=Chicago".into()),
            ..MembersListArgs::default()
        },
        NOW,
    );
    assert!(
        matches!(&bad_seg, Err(ServiceError::Invalid(m)) if m.contains("town")),
        "{bad_seg:?}"
    );

    // Tags: add (normalised, merged), then remove.
    let tag = |tags: &[&str], remove: bool| {
        service::members_tag(
            &f.store,
            &f.cfg,
            &MemberTagArgs {
                number: "+12125550102".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                remove,
            },
            NOW + 1,
        )
    };
    let m = tag(&["Driver", "cook"], false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.tags, vec!["cook", "driver", "volunteer"]);
    let m = tag(&["VOLUNTEER", "nope"], true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.tags, vec!["cook", "driver"]);
    assert!(matches!(tag(&[], false), Err(ServiceError::Invalid(_))));
    assert_eq!(list(&f, Some("tag=driver")), vec!["+12125550102"]);

    // Remove, then removing again is not_found.
    let remove = |n: &str| {
        service::members_remove(
            &f.store,
            &f.cfg,
            &MemberRemoveArgs { number: n.into() },
            NOW + 2,
        )
    };
    let r = remove("(212) 555-0102").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.number, "+12125550102");
    assert!(matches!(
        remove("+12125550102"),
        Err(ServiceError::NotFound(_))
    ));
    assert_eq!(list(&f, None).len(), 2);
}

#[test]
fn import_with_bad_rows_imports_nothing_and_reports_every_row() {
    let f = fixture();
    add(&f, "+13125550101", Some("Ana"), None, &[]);
    let csv = "number,name,city,tags,timezone\r\n\
               +13125550110,Cy,Chicago,volunteer,\r\n\
               555,Bad,,,\r\n\
               (312) 555-0101,Already,,,\r\n\
               +13125550110,Twice,,,\r\n\
               +13125550111,Zed,,a;b c,Mars/Olympus\r\n\
               +13125550112,Ok,,,\r\n";
    let r = service::members_import(
        &f.store,
        &f.cfg,
        &MembersImportArgs {
            csv: csv.into(),
            dry_run: false,
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.imported, 0);
    let rows: Vec<usize> = r.errors.iter().map(|e| e.row).collect();
    // Row 3 bad number, row 4 already a member, row 5 repeats row 2, row 6 bad timezone.
    assert_eq!(rows, vec![3, 4, 5, 6], "{:?}", r.errors);
    assert!(
        r.errors
            .iter()
            .any(|e| e.row == 4 && e.message.contains("already a member"))
    );
    assert!(r.errors.iter().any(|e| e.message.contains("'555'")));
    assert!(r.errors.iter().any(|e| e.message.contains("repeats row 2")));
    assert_eq!(list(&f, None), vec!["+13125550101"]);

    // A file whose only problem is existing members: every such row is named, nothing stored.
    let csv = "number,name\n+13125550120,New\n(312) 555-0101,Ana again\n+13125550121,New2\n";
    let r = service::members_import(
        &f.store,
        &f.cfg,
        &MembersImportArgs {
            csv: csv.into(),
            dry_run: false,
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.imported, 0);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors.first().map(|e| e.row), Some(3));
    assert!(
        r.errors
            .iter()
            .all(|e| e.message.contains("already a member"))
    );
    assert_eq!(list(&f, None).len(), 1);

    // Header problems are row 1.
    let r = service::members_import(
        &f.store,
        &f.cfg,
        &MembersImportArgs {
            csv: "name,town\nAna,X\n".into(),
            dry_run: false,
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.errors.is_empty() && r.errors.iter().all(|e| e.row == 1));

    // A clean file: dry run stores nothing, the real run stores all, balanced, with zones, and
    // a suppressed number comes in opted out.
    f.store
        .record_consent(
            "+13125550133",
            ConsentEvent::OptedOut,
            None,
            ConsentSource::Sms,
            NOW - HOUR,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let mut csv = String::from("number,name,city,tags\n");
    for i in 30..40 {
        csv.push_str(&format!(
            "(312) 555-01{i},Name {i},Chicago,volunteer;Block Captain\n"
        ));
    }
    let dry = service::members_import(
        &f.store,
        &f.cfg,
        &MembersImportArgs {
            csv: csv.clone(),
            dry_run: true,
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(dry.errors.is_empty(), "{:?}", dry.errors);
    assert_eq!((dry.imported, dry.valid, dry.suppressed), (0, 10, 1));
    assert_eq!(list(&f, None).len(), 1);
    let r = service::members_import(
        &f.store,
        &f.cfg,
        &MembersImportArgs {
            csv,
            dry_run: false,
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.imported, r.suppressed), (10, 1));
    let members = f
        .store
        .list_members(&Default::default(), 100, 0)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(members.len(), 11);
    let mut per_home: HashMap<String, usize> = HashMap::new();
    for m in &members {
        *per_home
            .entry(m.home_modem.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(per_home.len(), 2, "{per_home:?}");
    let (lo, hi) = (
        per_home.values().min().copied().unwrap_or(0),
        per_home.values().max().copied().unwrap_or(0),
    );
    assert!(hi - lo <= 1, "{per_home:?}");
    let cy = f.store.member("+13125550135").ok().flatten();
    let cy = cy.unwrap_or_else(|| panic!("imported member missing"));
    assert_eq!(cy.time_zone.as_deref(), Some("America/Chicago"));
    assert_eq!(cy.tags, vec!["block-captain", "volunteer"]);
    assert_eq!(cy.status.as_str(), "active");
    let suppressed = f.store.member("+13125550133").ok().flatten();
    assert_eq!(
        suppressed.map(|m| m.status.as_str()),
        Some("opted_out"),
        "STOP survives an import"
    );
}

#[test]
fn export_imports_back_into_an_empty_gateway() {
    let f = fixture();
    add(
        &f,
        "+13125550101",
        Some("Lopez, Ana \"Annie\""),
        Some("Chicago"),
        &["volunteer"],
    );
    add(&f, "+4930901820", None, None, &["de", "press"]);
    service::members_add(
        &f.store,
        &f.cfg,
        &MemberAddArgs {
            number: "+13125550102".into(),
            region: Some("60601".into()),
            time_zone: Some("Asia/Tokyo".into()),
            ..MemberAddArgs::default()
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let all = service::members_export(&f.store, &f.cfg, &MembersExportArgs::default(), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.count, 3);
    assert!(
        all.csv
            .starts_with("number,name,city,region,tags,timezone\r\n")
    );
    let some = service::members_export(
        &f.store,
        &f.cfg,
        &MembersExportArgs {
            segment: Some("tag=press".into()),
            ..MembersExportArgs::default()
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(some.count, 1);

    let g = fixture();
    let r = service::members_import(
        &g.store,
        &g.cfg,
        &MembersImportArgs {
            csv: all.csv.clone(),
            dry_run: false,
        },
        NOW + HOUR,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.imported, 3);
    let again = service::members_export(&g.store, &g.cfg, &MembersExportArgs::default(), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.csv, all.csv);
}

/// Five Chicago members: Ana and Bo active, Cy active but living in Tokyo (quiet hours now),
/// Dee opted out by STOP, Eve pending confirmation; plus Fay, active in New York.
fn community(f: &Fixture) {
    add(
        f,
        "+13125550101",
        Some("Ana Lopez"),
        Some("Chicago"),
        &["volunteer"],
    );
    add(f, "+13125550102", None, Some("Chicago"), &[]);
    service::members_add(
        &f.store,
        &f.cfg,
        &MemberAddArgs {
            number: "+13125550103".into(),
            name: Some("Cy".into()),
            city: Some("Chicago".into()),
            time_zone: Some("Asia/Tokyo".into()),
            ..MemberAddArgs::default()
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    add(f, "+13125550104", Some("Dee"), Some("Chicago"), &[]);
    f.store
        .record_consent(
            "+13125550104",
            ConsentEvent::OptedOut,
            None,
            ConsentSource::Sms,
            NOW,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    f.store
        .add_member(
            &NewMember {
                number: "+13125550105".into(),
                name: Some("Eve".into()),
                city: Some("Chicago".into()),
                status: None,
                joined_at: NOW,
                ..NewMember::default()
            },
            ConsentSource::Sms,
            NOW,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    add(f, "+12125550106", Some("Fay"), Some("New York"), &[]);
}

#[test]
fn dry_run_counts_recipients_exclusions_and_sms() {
    let f = fixture();
    community(&f);
    let r = service::broadcast(
        &f.store,
        &f.cfg,
        &bcast("Hi {first_name}, meeting at 7", Some("city=Chicago"), true),
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.id, None);
    assert!(r.dry_run);
    assert_eq!(r.segment, "city=Chicago");
    assert_eq!(r.matched, 5);
    assert_eq!(r.recipients, 3);
    assert_eq!(r.excluded.opted_out, 1);
    assert_eq!(r.excluded.not_confirmed, 1);
    assert_eq!(r.quiet_now, 1, "Cy is at 02:00 in Tokyo");
    assert_eq!(r.sms.encoding, "gsm7");
    assert_eq!(
        (r.sms.min_parts, r.sms.max_parts, r.sms.total_sms),
        (1, 1, 3)
    );
    assert_eq!(r.example, "Hi Ana, meeting at 7");
    assert_eq!(
        f.store.state_counts().map(|c| c.total()).ok(),
        Some(0),
        "a dry run queues nothing"
    );

    // A long UCS-2 text: 80 characters with an emoji → 2 parts each.
    let text = format!("{} 😀", "x".repeat(77));
    let r = service::broadcast(&f.store, &f.cfg, &bcast(&text, None, true), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.sms.encoding, "ucs2");
    assert_eq!(r.recipients, 4);
    assert_eq!(r.sms.total_sms, 8);
    assert_eq!(r.segment, "*");

    // Unknown placeholders and bad segments are refused before anything happens.
    for args in [
        bcast("Hi {nmae}", None, false),
        bcast("  ", None, false),
        bcast("Hi", Some("city="), false),
        BroadcastArgs {
            at: Some("tomorrow".into()),
            ..bcast("Hi", None, false)
        },
    ] {
        let r = service::broadcast(&f.store, &f.cfg, &args, NOW);
        assert!(
            matches!(r, Err(ServiceError::Invalid(_))),
            "{args:?}: {r:?}"
        );
    }
    // A segment nobody may receive is refused rather than queued empty.
    let r = service::broadcast(
        &f.store,
        &f.cfg,
        &bcast("Hi", Some("status=opted_out"), false),
        NOW,
    );
    assert!(matches!(r, Err(ServiceError::Invalid(_))), "{r:?}");
    assert_eq!(f.store.broadcasts(10).map(|b| b.len()).ok(), Some(0));
}

#[test]
fn broadcast_queues_one_templated_row_per_eligible_member() {
    let f = fixture();
    community(&f);
    let at = "2026-03-03T15:00:00Z";
    let at_ms = NOW + 22 * HOUR;
    let r = service::broadcast(
        &f.store,
        &f.cfg,
        &BroadcastArgs {
            at: Some(at.into()),
            ..bcast("Hi {name}! Rally at 6", Some("city=chicago"), false)
        },
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let id = r.id.unwrap_or_else(|| panic!("no id"));
    assert_eq!(r.recipients, 3);
    assert_eq!(r.scheduled_at.as_deref(), Some(at));
    let rows = f
        .store
        .list_outbox(None, Some(id), 100)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 3);
    let to: BTreeSet<&str> = rows.iter().map(|r| r.to_number.as_str()).collect();
    assert_eq!(
        to,
        BTreeSet::from(["+13125550101", "+13125550102", "+13125550103"])
    );
    for row in &rows {
        let member = f.store.member(&row.to_number).ok().flatten();
        let member = member.unwrap_or_else(|| panic!("member"));
        assert_eq!(row.kind, MessageKind::Bulk);
        assert_eq!(row.state, OutboxState::Queued);
        assert_eq!(row.modem_pref, member.home_modem);
        assert_eq!(row.not_before, at_ms);
        assert_eq!(row.expires_at, Some(at_ms + 48 * HOUR));
        let want = match row.to_number.as_str() {
            "+13125550101" => "Hi Ana Lopez! Rally at 6",
            "+13125550102" => "Hi friend! Rally at 6",
            _ => "Hi Cy! Rally at 6",
        };
        assert_eq!(row.text, want);
    }
    let b = f.store.broadcast(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.state.as_str(), "scheduled");
    assert_eq!(b.template, "Hi {name}! Rally at 6");
    assert_eq!(b.segment, "city=chicago");
}

/// The queued broadcast reports exactly what its dry run predicted (both walk the segment with
/// the same per-member decision), also over a few thousand members with mixed names, zones,
/// standings and home modems; every copy carries its member's home modem (sticky sender).
#[test]
fn queued_broadcast_matches_its_dry_run_over_thousands_of_members() {
    let f = fixture();
    community(&f);
    let zones = ["America/Chicago", "Asia/Tokyo", "Europe/Paris"];
    let rows: Vec<NewMember> = (0..3_000)
        .map(|i| NewMember {
            number: format!("+1773555{i:04}"),
            name: (i % 4 != 0).then(|| {
                if i % 7 == 0 {
                    format!("Zoë {i} 😀")
                } else {
                    format!("M {i}")
                }
            }),
            city: Some("Chicago".into()),
            time_zone: (i % 5 != 0).then(|| zones[i % 3].to_string()),
            status: (i % 11 != 0).then_some(gsmgate::store::MemberStatus::Active),
            home_modem: Some(format!("sim{}", i % 2)),
            joined_at: NOW - i as i64,
            ..NewMember::default()
        })
        .collect();
    f.store
        .import_members(&rows, NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    for i in (0..3_000).step_by(13) {
        f.store
            .record_consent(
                &format!("+1773555{i:04}"),
                ConsentEvent::OptedOut,
                None,
                ConsentSource::Sms,
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let text = "Hi {first_name}, see you in {city}";
    let dry = service::broadcast(
        &f.store,
        &f.cfg,
        &bcast(text, Some("city=Chicago"), true),
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let real = service::broadcast(
        &f.store,
        &f.cfg,
        &bcast(text, Some("city=Chicago"), false),
        NOW,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let id = real.id.unwrap_or_else(|| panic!("no id"));
    assert_eq!(
        (
            real.matched,
            real.recipients,
            real.excluded,
            real.quiet_now,
            &real.sms,
            &real.example
        ),
        (
            dry.matched,
            dry.recipients,
            dry.excluded,
            dry.quiet_now,
            &dry.sms,
            &dry.example
        )
    );
    assert_eq!(real.matched, 3_005);
    assert!(real.excluded.opted_out >= 3_000 / 13, "{:?}", real.excluded);
    assert!(
        real.excluded.not_confirmed > 0 && real.quiet_now > 0,
        "{real:?}"
    );
    assert_eq!(real.sms.encoding, "mixed");
    let rows = f
        .store
        .list_outbox(None, Some(id), 10_000)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), real.recipients);
    assert!(rows.iter().all(|r| r.state == OutboxState::Queued));
    let mut per_modem: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        let m = f.store.member(&r.to_number).ok().flatten();
        let m = m.unwrap_or_else(|| panic!("member {}", r.to_number));
        assert_eq!(r.modem_pref, m.home_modem, "{}", r.to_number);
        *per_modem
            .entry(r.modem_pref.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(per_modem.len(), 2, "{per_modem:?}");
}

#[test]
fn pause_resume_cancel_and_progress() {
    let f = fixture();
    community(&f);
    let r = service::broadcast(&f.store, &f.cfg, &bcast("News", None, false), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    let id = r.id.unwrap_or_else(|| panic!("no id"));
    let args = BroadcastIdArgs { broadcast: id };
    let p =
        service::broadcast_progress(&f.store, &f.cfg, &args, NOW).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((p.total, p.queued, p.state.as_str()), (4, 4, "running"));
    assert!(
        p.eta.is_some(),
        "a running broadcast on ready modems has an ETA"
    );

    // One row sent, one being sent.
    let claim = |modem: &str| {
        f.store
            .claim_next_routed(modem, NOW + 1, &ClaimRoute::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("nothing to claim on {modem}"))
    };
    let a = claim("sim0");
    f.store
        .mark_sent(a.id, NOW + 2)
        .unwrap_or_else(|e| panic!("{e}"));
    let _b = claim("sim1");
    let p = service::broadcast_progress(&f.store, &f.cfg, &args, NOW + 3)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((p.queued, p.sending, p.sent), (2, 1, 1));

    let p = service::broadcast_pause(&f.store, &f.cfg, &args, NOW + 4)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.state, "paused");
    assert_eq!(p.eta, None);
    assert!(
        f.store
            .claim_next_routed("sim0", NOW + 5, &ClaimRoute::default())
            .ok()
            .flatten()
            .is_none()
            && f.store
                .claim_next_routed("sim1", NOW + 5, &ClaimRoute::default())
                .ok()
                .flatten()
                .is_none(),
        "a paused broadcast's rows are held"
    );
    let again = service::broadcast_pause(&f.store, &f.cfg, &args, NOW + 5);
    assert!(matches!(again, Err(ServiceError::Conflict(_))), "{again:?}");
    let p = service::broadcast_resume(&f.store, &f.cfg, &args, NOW + 6)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.state, "running");

    let p = service::broadcast_cancel(&f.store, &f.cfg, &args, NOW + 7)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.state, "cancelled");
    assert_eq!((p.queued, p.cancelled, p.sending, p.sent), (0, 2, 1, 1));
    let again = service::broadcast_resume(&f.store, &f.cfg, &args, NOW + 8);
    assert!(matches!(again, Err(ServiceError::Conflict(_))), "{again:?}");
    let missing =
        service::broadcast_progress(&f.store, &f.cfg, &BroadcastIdArgs { broadcast: 999 }, NOW);
    assert!(
        matches!(missing, Err(ServiceError::NotFound(_))),
        "{missing:?}"
    );

    let list = service::broadcasts(&f.store, &f.cfg, &BroadcastsArgs::default(), NOW + 9)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(list.len(), 1);
    assert_eq!(list.first().map(|b| b.id), Some(id));
}

#[test]
fn finished_broadcast_becomes_done_when_polled() {
    let f = fixture();
    add(&f, "+13125550101", Some("Ana"), None, &[]);
    let r = service::broadcast(&f.store, &f.cfg, &bcast("One", None, false), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    let id = r.id.unwrap_or_else(|| panic!("no id"));
    let row = f
        .store
        .claim_next_routed("sim0", NOW, &ClaimRoute::default())
        .ok()
        .flatten()
        .or_else(|| {
            f.store
                .claim_next_routed("sim1", NOW, &ClaimRoute::default())
                .ok()
                .flatten()
        })
        .unwrap_or_else(|| panic!("nothing to claim"));
    f.store
        .mark_sent(row.id, NOW + 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let p = service::broadcast_progress(
        &f.store,
        &f.cfg,
        &BroadcastIdArgs { broadcast: id },
        NOW + 2,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((p.state.as_str(), p.sent, p.eta), ("done", 1, None));
}

#[test]
fn in_doubt_rows_are_listed_and_resolved() {
    let f = fixture();
    add(&f, "+13125550101", Some("Ana"), None, &[]);
    add(&f, "+13125550102", Some("Bo"), None, &[]);
    let r = service::broadcast(&f.store, &f.cfg, &bcast("Vote", None, false), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    let id = r.id.unwrap_or_else(|| panic!("no id"));
    let a = f
        .store
        .claim_next_routed("sim0", NOW, &ClaimRoute::default())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("claim sim0"));
    let b = f
        .store
        .claim_next_routed("sim1", NOW, &ClaimRoute::default())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("claim sim1"));
    // The daemon "crashes" with both in flight; bulk is never resent automatically.
    f.store
        .recover_after_restart(&RecoveryPolicy::default(), NOW + HOUR)
        .unwrap_or_else(|e| panic!("{e}"));

    let doubt = service::in_doubt(&f.store, &f.cfg, NOW + HOUR).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doubt.len(), 2);
    assert!(
        doubt
            .iter()
            .all(|d| d.broadcast_id == Some(id) && d.kind == "bulk")
    );
    assert!(doubt.iter().all(|d| d.modem.is_some()));
    let p = service::broadcast_progress(
        &f.store,
        &f.cfg,
        &BroadcastIdArgs { broadcast: id },
        NOW + HOUR,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.in_doubt, 2,
        "in-doubt rows are visible in the broadcast's progress"
    );
    assert_eq!(
        p.state, "running",
        "a broadcast with rows in doubt is not done"
    );

    let resolve = |message: i64, action| {
        service::in_doubt_resolve(
            &f.store,
            &f.cfg,
            &InDoubtResolveArgs { message, action },
            NOW + 2 * HOUR,
        )
    };
    let r = resolve(a.id, InDoubtResolution::Resend).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.state, "queued");
    let r = resolve(b.id, InDoubtResolution::Drop).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.state, "cancelled");
    assert!(matches!(
        resolve(a.id, InDoubtResolution::Drop),
        Err(ServiceError::Conflict(_))
    ));
    assert!(matches!(
        resolve(12345, InDoubtResolution::Resend),
        Err(ServiceError::NotFound(_))
    ));
    assert!(
        service::in_doubt(&f.store, &f.cfg, NOW)
            .map(|d| d.is_empty())
            .unwrap_or(false)
    );
    let row = f.store.outbox_row(b.id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(row.last_error.as_deref(), Some(service::DROPPED_REASON));
}

/// `in_doubt` says per row what is known (docs/admin-protocol.md, `in_doubt`): when the
/// interrupted submit started, on which modem, the reference the modem was expected to give it;
/// or that no submit was recorded.
#[test]
fn in_doubt_shows_what_is_known_about_the_submit() {
    let f = fixture();
    for n in ["+13125550101", "+13125550102", "+13125550103"] {
        add(&f, n, None, None, &[]);
    }
    service::broadcast(&f.store, &f.cfg, &bcast("Vote", None, false), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    let claim = |modem: &str| {
        f.store
            .claim_next_routed(modem, NOW, &ClaimRoute::default())
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("claim {modem}"))
    };
    // sim0 answered `+CMGS: 16` for the first row; the second was in flight at the crash.
    let first = claim("sim0");
    f.store
        .begin_submit(first.id, 1, 1, NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    f.store
        .record_part_sent(first.id, 1, 1, 16, NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    f.store
        .mark_sent(first.id, NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    let known = claim("sim0");
    let started = f
        .store
        .begin_submit(known.id, 1, 1, NOW + 5)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(started, Some(17));
    // Claimed by a build that recorded nothing before `AT+CMGS`.
    let unknown = claim("sim1");
    f.store
        .recover_after_restart(&RecoveryPolicy::default(), NOW + HOUR)
        .unwrap_or_else(|e| panic!("{e}"));

    let doubt = service::in_doubt(&f.store, &f.cfg, NOW + HOUR).unwrap_or_else(|e| panic!("{e}"));
    let item = |id: i64| {
        doubt
            .iter()
            .find(|d| d.id == id)
            .unwrap_or_else(|| panic!("{id} listed"))
    };
    let k = item(known.id);
    assert_eq!(
        (
            k.expected_reference,
            k.submit_part,
            k.parts,
            k.parts_accepted
        ),
        (Some(17), Some(1), Some(1), 0)
    );
    assert!(k.submit_started_at.is_some());
    assert!(
        k.known
            .contains("on modem sim0, expected reference 17, no report yet"),
        "{}",
        k.known
    );
    let u = item(unknown.id);
    assert_eq!(
        (u.expected_reference, u.submit_started_at.as_deref()),
        (None, None)
    );
    assert!(u.known.contains("no submit recorded"), "{}", u.known);
}
