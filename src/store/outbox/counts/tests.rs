//! The counts of migration 0014 against the rows they count: after any sequence of what can
//! happen to a broadcast's rows (enqueue, claims, sends and reports, failures, retries, releases,
//! in-doubt and its review, expiry, pause/resume/cancel, opt-outs, a home or SIM move, a restart
//! with either recovery policy), the table, the groups, the queue split and the refresh check
//! read from it answer exactly what the old GROUP BYs over the rows answer.
//!
//! The walks run on both backends (`twins::sqlite`, `twins::postgres`); a restart opens the same
//! database again ([`Place`]). What only SQLite has (an old schema file, the planner) is in
//! `sqlite_only`.

use crate::store::db::params;
use proptest::prelude::*;

use crate::model::MessageKind;
use crate::store::pg::PgConfig;
use crate::store::{
    Backend, BroadcastState, ClaimRoute, ConsentEvent, ConsentSource, ModemIdentity, NewOutbox,
    OutboxState, RecoveryPolicy, Store,
};

const T0: i64 = 1_700_000_000_000;
const ZONES: [Option<&str>; 3] = [None, Some("Europe/Paris"), Some("America/Chicago")];

fn number(n: u8) -> String {
    format!("+1555000{:02}", n % 24)
}

fn modem(n: u8) -> Option<String> {
    match n % 3 {
        0 => None,
        m => Some(format!("sim{}", m - 1)),
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A broadcast to these (number, modem, zone, parts, ttl) rows; scheduled a little later.
    Broadcast {
        rows: Vec<(u8, u8, u8, u8, bool)>,
        scheduled: bool,
    },
    /// More rows into an existing broadcast (duplicates are skipped).
    AddRows {
        b: u8,
        numbers: Vec<u8>,
    },
    Claim {
        modem: u8,
    },
    Sent {
        pick: u8,
        report: bool,
    },
    Fail {
        pick: u8,
        from_sent: bool,
    },
    Retry {
        pick: u8,
        later: u16,
    },
    Release {
        pick: u8,
        later: u16,
    },
    InDoubt {
        pick: u8,
    },
    ExpireClaimed {
        pick: u8,
    },
    ExpireDue,
    Pause {
        b: u8,
    },
    Resume {
        b: u8,
    },
    CancelBroadcast {
        b: u8,
    },
    Requeue {
        pick: u8,
    },
    CancelRow {
        pick: u8,
    },
    OptOut {
        number: u8,
    },
    MoveHome {
        number: u8,
    },
    SimMove {
        slot: u8,
        iccid: u8,
    },
    Restart {
        resend_bulk: bool,
    },
    Tick {
        ms: u16,
    },
    Refresh,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (
            prop::collection::vec((0u8..24, 0u8..3, 0u8..3, 0u8..3, any::<bool>()), 1..12),
            any::<bool>()
        )
            .prop_map(|(rows, scheduled)| Op::Broadcast { rows, scheduled }),
        1 => (any::<u8>(), prop::collection::vec(0u8..24, 1..4))
            .prop_map(|(b, numbers)| Op::AddRows { b, numbers }),
        6 => (0u8..3).prop_map(|modem| Op::Claim { modem }),
        3 => (any::<u8>(), any::<bool>()).prop_map(|(pick, report)| Op::Sent { pick, report }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(pick, from_sent)| Op::Fail { pick, from_sent }),
        2 => (any::<u8>(), any::<u16>()).prop_map(|(pick, later)| Op::Retry { pick, later }),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(pick, later)| Op::Release { pick, later }),
        1 => any::<u8>().prop_map(|pick| Op::InDoubt { pick }),
        1 => any::<u8>().prop_map(|pick| Op::ExpireClaimed { pick }),
        1 => Just(Op::ExpireDue),
        1 => any::<u8>().prop_map(|b| Op::Pause { b }),
        1 => any::<u8>().prop_map(|b| Op::Resume { b }),
        1 => any::<u8>().prop_map(|b| Op::CancelBroadcast { b }),
        1 => any::<u8>().prop_map(|pick| Op::Requeue { pick }),
        1 => any::<u8>().prop_map(|pick| Op::CancelRow { pick }),
        1 => any::<u8>().prop_map(|number| Op::OptOut { number }),
        1 => any::<u8>().prop_map(|number| Op::MoveHome { number }),
        1 => (0u8..2, 0u8..3).prop_map(|(slot, iccid)| Op::SimMove { slot, iccid }),
        1 => any::<bool>().prop_map(|resend_bulk| Op::Restart { resend_bulk }),
        2 => any::<u16>().prop_map(|ms| Op::Tick { ms }),
        1 => Just(Op::Refresh),
    ]
}

/// Where a walk's database lives, so that [`Op::Restart`] opens the same one again: a file in a
/// temporary directory, or a schema of the test server.
enum Place {
    File(tempfile::TempDir),
    Server(PgConfig),
}

impl Place {
    fn new(backend: Backend) -> Place {
        match backend {
            Backend::Sqlite => Place::File(tempfile::tempdir().unwrap()),
            Backend::Postgres => Place::Server(crate::store::testing::pg_config()),
        }
    }

    fn open(&self) -> Store {
        match self {
            Place::File(dir) => Store::open(dir.path().join("counts.db")).unwrap(),
            Place::Server(config) => Store::open_postgres(config.clone()).unwrap(),
        }
    }
}

/// The ids of rows in `state`, oldest first.
fn ids(s: &Store, state: OutboxState) -> Vec<(i64, String, Option<String>)> {
    let conn = s.conn();
    let mut st = conn
        .prepare("SELECT id, to_number, claimed_by FROM outbox WHERE state = ?1 ORDER BY id")
        .unwrap();
    st.query_map(params![state], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<crate::store::db::DbResult<_>>()
        .unwrap()
}

fn pick<T: Clone>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()].clone())
}

fn broadcast_ids(s: &Store) -> Vec<i64> {
    s.broadcasts(1_000).unwrap().iter().map(|b| b.id).collect()
}

/// Applies one operation; errors (a transition from the wrong state) are part of the game: a
/// failed write must leave the counts as they were.
fn apply(s: &mut Store, place: &Place, now: &mut i64, op: &Op) {
    let t = *now;
    match op {
        Op::Broadcast { rows, scheduled } => {
            let start = scheduled.then_some(t + 5_000);
            let mut seen = std::collections::HashSet::new();
            let rows: Vec<NewOutbox> = rows
                .iter()
                .filter(|r| seen.insert(r.0))
                .map(|&(n, m, z, p, ttl)| NewOutbox {
                    modem_pref: modem(m),
                    zone: ZONES[usize::from(z)].map(str::to_string),
                    parts: (p > 0).then_some(u32::from(p)),
                    not_before: start.unwrap_or(t),
                    expires_at: ttl.then_some(t + 20_000),
                    ..NewOutbox::new(number(n), "hi", MessageKind::Bulk, t)
                })
                .collect();
            s.create_broadcast("hi", "*", start, &rows, t).unwrap();
        }
        Op::AddRows { b, numbers } => {
            if let Some(b) = pick(&broadcast_ids(s), *b) {
                let rows: Vec<NewOutbox> = numbers
                    .iter()
                    .map(|&n| NewOutbox {
                        broadcast_id: Some(b),
                        modem_pref: modem(n),
                        ..NewOutbox::new(number(n), "more", MessageKind::Bulk, t)
                    })
                    .collect();
                s.enqueue_many(&rows).unwrap();
            }
        }
        Op::Claim { modem } => {
            let route = ClaimRoute {
                pool: vec!["sim0".into(), "sim1".into()],
                takeover: Vec::new(),
            };
            let name = format!("sim{}", modem % 2);
            let _ = s.claim_next_routed(&name, t, &route);
        }
        Op::Sent { pick: i, report } => {
            if let Some((id, to, by)) = pick(&ids(s, OutboxState::Claimed), *i) {
                let mr = (id % 256) as u8;
                let by = by.unwrap_or_else(|| "sim0".into());
                let _ = s.record_part_sent(id, 1, 1, mr, t);
                let _ = s.mark_sent(id, t);
                if *report {
                    let _ = s.status_report(&by, mr, &to, 0, t);
                }
            }
        }
        Op::Fail { pick: i, from_sent } => {
            let state = if *from_sent {
                OutboxState::Sent
            } else {
                OutboxState::Claimed
            };
            if let Some((id, ..)) = pick(&ids(s, state), *i) {
                let _ = s.mark_failed(id, "boom", t);
            }
        }
        Op::Retry { pick: i, later } => {
            if let Some((id, ..)) = pick(&ids(s, OutboxState::Claimed), *i) {
                let _ = s.mark_retry(id, "retry", t + i64::from(*later));
            }
        }
        Op::Release { pick: i, later } => {
            if let Some((id, ..)) = pick(&ids(s, OutboxState::Claimed), *i) {
                let _ = s.release_claim(id, t + i64::from(*later), Some("quiet hours"));
            }
        }
        Op::InDoubt { pick: i } => {
            if let Some((id, ..)) = pick(&ids(s, OutboxState::Claimed), *i) {
                let _ = s.mark_in_doubt(id, "vanished", t);
            }
        }
        Op::ExpireClaimed { pick: i } => {
            if let Some((id, ..)) = pick(&ids(s, OutboxState::Claimed), *i) {
                let _ = s.expire_claimed(id, t);
            }
        }
        Op::ExpireDue => {
            s.expire_due(t).unwrap();
        }
        Op::Pause { b } => {
            if let Some(b) = pick(&broadcast_ids(s), *b) {
                let _ = s.pause_broadcast(b, t);
            }
        }
        Op::Resume { b } => {
            if let Some(b) = pick(&broadcast_ids(s), *b) {
                let _ = s.resume_broadcast(b, t);
            }
        }
        Op::CancelBroadcast { b } => {
            if let Some(b) = pick(&broadcast_ids(s), *b) {
                let _ = s.cancel_broadcast(b, t);
            }
        }
        Op::Requeue { pick: i } => {
            if let Some((id, ..)) = pick(&ids(s, OutboxState::InDoubt), *i) {
                let _ = s.requeue_in_doubt(id, t);
            }
        }
        Op::CancelRow { pick: i } => {
            let mut v = ids(s, OutboxState::InDoubt);
            v.extend(ids(s, OutboxState::Queued));
            if let Some((id, ..)) = pick(&v, *i) {
                let _ = s.cancel(id, "dropped", t);
            }
        }
        Op::OptOut { number: n } => {
            s.record_consent(
                &number(*n),
                ConsentEvent::OptedOut,
                None,
                ConsentSource::Sms,
                t,
            )
            .unwrap();
        }
        Op::MoveHome { number: n } => {
            s.move_home(&number(*n), "sim0", "sim1", t).unwrap();
        }
        Op::SimMove { slot, iccid } => {
            let id = ModemIdentity {
                name: format!("sim{slot}"),
                iccid: Some(format!("8901000000000000{iccid}")),
                ..ModemIdentity::default()
            };
            s.record_sim(&id, t).unwrap();
        }
        Op::Restart { resend_bulk } => {
            *s = place.open();
            let policy = RecoveryPolicy {
                resend_bulk: *resend_bulk,
                ..RecoveryPolicy::default()
            };
            s.recover_after_restart(&policy, t).unwrap();
        }
        Op::Tick { ms } => *now += i64::from(*ms) * 4,
        Op::Refresh => {
            s.refresh_broadcasts(t).unwrap();
        }
    }
}

/// What `refresh_broadcasts` had to look for before migration 0014, from the rows.
fn refresh_due_by_rows(s: &Store, now: i64) -> bool {
    s.conn()
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM broadcasts WHERE state = 'scheduled'
                              AND (scheduled_at IS NULL OR scheduled_at <= ?1))
                 OR EXISTS (SELECT 1 FROM broadcasts b WHERE b.state = 'running' AND NOT EXISTS (
                     SELECT 1 FROM outbox o WHERE o.broadcast_id = b.id
                       AND o.state IN ('queued', 'claimed', 'in_doubt')))",
            params![now],
            |r| r.get(0),
        )
        .unwrap()
}

/// Every answer read from the counts equals the one grouped from the rows.
fn check(s: &Store, now: i64) -> Result<(), TestCaseError> {
    for b in s.broadcasts(1_000).unwrap() {
        let counts = s.broadcast_counts(b.id).unwrap();
        prop_assert_eq!(
            &counts,
            &s.broadcast_counts_scan(b.id).unwrap(),
            "broadcast {}",
            b.id
        );
        prop_assert_eq!(
            s.broadcast_groups(b.id).unwrap(),
            s.broadcast_groups_scan(b.id).unwrap()
        );
        let start = b.scheduled_at.unwrap_or(b.created_at);
        for (at, from) in [
            (now, start),
            (now + 3_000, start),
            (start - 1, start),
            (now, now),
        ] {
            prop_assert_eq!(
                s.queue_counts(b.id, at, from).unwrap(),
                s.queue_counts_scan(b.id, at, from).unwrap()
            );
        }
    }
    for at in [now, now + 10_000] {
        prop_assert_eq!(
            s.broadcasts_to_refresh(at).unwrap(),
            refresh_due_by_rows(s, at)
        );
    }
    Ok(())
}

crate::store::testing::backend_tests! {
mod twins {
    use super::*;

    // A walk on the server costs about a second (a schema, its migrations, a round trip per
    // statement) where SQLite's costs a few milliseconds: the PostgreSQL twin takes fewer walks
    // of the same kind, which still reach every statement of the counts, and the SQLite twin
    // keeps exploring the orders.
    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if BACKEND == Backend::Postgres { 16 } else { 48 },
            ..ProptestConfig::default()
        })]

        #[test]
        fn counts_equal_the_group_by_after_any_sequence(ops in prop::collection::vec(op(), 1..60)) {
            let place = Place::new(BACKEND);
            let mut s = place.open();
            let mut now = T0;
            for op in &ops {
                apply(&mut s, &place, &mut now, op);
                check(&s, now)?;
            }
        }
    }

    /// Every kind of transition once, in a fixed order, so a failure names the step without a
    /// shrink: the property above explores the orders.
    #[test]
    fn counts_follow_each_transition() {
        let place = Place::new(BACKEND);
        let mut s = place.open();
        let mut now = T0;
        let rows = (0..12).map(|n| (n, n, n % 3, n % 3, n % 4 == 0)).collect();
        let steps = [
            Op::Broadcast {
                rows,
                scheduled: false,
            },
            Op::Claim { modem: 0 },
            Op::Claim { modem: 1 },
            Op::Claim { modem: 0 },
            Op::Claim { modem: 1 },
            Op::Claim { modem: 0 },
            Op::Sent {
                pick: 0,
                report: true,
            },
            Op::Sent {
                pick: 0,
                report: false,
            },
            Op::Fail {
                pick: 0,
                from_sent: false,
            },
            Op::Retry {
                pick: 0,
                later: 60_000,
            },
            Op::InDoubt { pick: 0 },
            Op::Requeue { pick: 0 },
            Op::Claim { modem: 1 },
            Op::InDoubt { pick: 0 },
            Op::CancelRow { pick: 0 },
            Op::Pause { b: 0 },
            Op::AddRows {
                b: 0,
                numbers: vec![20, 21],
            },
            Op::Resume { b: 0 },
            Op::SimMove { slot: 0, iccid: 1 },
            Op::SimMove { slot: 1, iccid: 1 },
            Op::MoveHome { number: 4 },
            Op::OptOut { number: 7 },
            Op::Claim { modem: 0 },
            Op::Restart { resend_bulk: false },
            Op::Claim { modem: 1 },
            Op::Restart { resend_bulk: true },
            Op::Tick { ms: 10_000 },
            Op::ExpireDue,
            Op::CancelBroadcast { b: 0 },
            Op::Refresh,
        ];
        for (i, step) in steps.iter().enumerate() {
            apply(&mut s, &place, &mut now, step);
            check(&s, now).unwrap_or_else(|e| panic!("after step {i} {step:?}: {e}"));
        }
        let states: std::collections::BTreeSet<&str> = s
            .broadcast_counts(1)
            .unwrap()
            .iter()
            .map(|c| c.state.as_str())
            .collect();
        // The walk reached every final state the counts must follow.
        for st in [
            OutboxState::Delivered,
            OutboxState::Failed,
            OutboxState::Cancelled,
            OutboxState::Expired,
        ] {
            assert!(
                states.contains(st.as_str()),
                "{st} never reached: {states:?}"
            );
        }
        assert_eq!(s.broadcast(1).unwrap().state, BroadcastState::Cancelled);
    }

    /// A poll that finds nothing to move commits nothing: no fsync, no wake-up of the journal's
    /// consumers, and it does not wait for the write lock that a claim may be holding.
    #[test]
    fn a_refresh_that_moves_nothing_does_not_write() {
        let place = Place::new(BACKEND);
        let s = place.open();
        let row = NewOutbox::new("+15550001", "hi", MessageKind::Bulk, T0);
        let (b, _) = s.create_broadcast("hi", "*", None, &[row], T0).unwrap();
        let commits = s.watch_commits();
        let before = *commits.borrow();
        assert_eq!(s.refresh_broadcasts(T0 + 1).unwrap(), 0);
        assert_eq!(
            *commits.borrow(),
            before,
            "nothing moved, nothing committed"
        );
        // Another connection holds the write lock (a claim in progress, maybe on another site):
        // the poll does not wait. The holder lets go after 20 s at the latest, so a poll that
        // did wait fails the bound below instead of hanging the test.
        let other = place.open();
        let (held, is_held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (refreshed, elapsed) = std::thread::scope(|scope| {
            scope.spawn(move || {
                other
                    .write("holding the write lock", |_| {
                        held.send(()).unwrap();
                        let _ = released.recv_timeout(std::time::Duration::from_secs(20));
                        Ok(())
                    })
                    .unwrap()
            });
            is_held.recv().unwrap();
            let t = std::time::Instant::now();
            let refreshed = s.refresh_broadcasts(T0 + 2).unwrap();
            let elapsed = t.elapsed();
            release.send(()).unwrap();
            (refreshed, elapsed)
        });
        assert_eq!(refreshed, 0);
        assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
        // When a broadcast does move, it is written.
        let r = s
            .claim_next_routed("sim0", T0 + 3, &ClaimRoute::default())
            .unwrap()
            .unwrap();
        s.mark_failed(r.id, "boom", T0 + 3).unwrap();
        let before = *commits.borrow();
        assert_eq!(s.refresh_broadcasts(T0 + 4).unwrap(), 1);
        assert_ne!(*commits.borrow(), before);
        assert_eq!(s.broadcast(b).unwrap().state, BroadcastState::Done);
    }
}
}

/// What only SQLite has: a database file of an older schema, and the planner's choice of index.
mod sqlite_only {
    use super::*;

    /// Migration 0014 counts the broadcasts already in a database at version 13.
    #[test]
    fn the_migration_counts_existing_broadcasts() {
        use crate::store::schema::MIGRATIONS;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v13.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            crate::store::configure(&conn, &path).unwrap();
            let tx = conn.transaction().unwrap();
            for (_, sql) in &MIGRATIONS[..13] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 13).unwrap();
            tx.commit().unwrap();
            for b in 1..=2 {
                conn.execute(
                    "INSERT INTO broadcasts (id, template, segment, created_at, state, updated_at)
                     VALUES (?1, 't', '*', 0, 'running', 0)",
                    rusqlite::params![b],
                )
                .unwrap();
            }
            let rows = [
                (1, "queued", 0, Some("sim0"), None, Some(1)),
                (1, "queued", 0, Some("sim0"), None, Some(1)),
                (1, "queued", 1, Some("sim1"), Some("Europe/Paris"), Some(2)),
                (1, "sent", 0, Some("sim0"), None, Some(1)),
                (1, "failed", 0, None, None, None),
                (2, "claimed", 0, Some("sim1"), None, Some(1)),
                (2, "delivered", 0, Some("sim1"), None, Some(1)),
            ];
            for (i, (b, state, held, m, z, p)) in rows.into_iter().enumerate() {
                conn.execute(
                    "INSERT INTO outbox (to_number, text, kind, priority, broadcast_id, modem_pref,
                                         created_at, not_before, state, held, zone, parts)
                     VALUES (?1, 'x', 'bulk', 1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8)",
                    rusqlite::params![format!("+1{i}"), b, m, i as i64, state, held, z, p],
                )
                .unwrap();
            }
            // A row that is no broadcast's is not counted.
            conn.execute(
                "INSERT INTO outbox (to_number, text, kind, priority, created_at, not_before, state)
                 VALUES ('+19', 'x', 'reply', 1, 0, 0, 'queued')",
                rusqlite::params![],
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        for b in 1..=2 {
            let counts = s.broadcast_counts(b).unwrap();
            assert!(!counts.is_empty());
            assert_eq!(counts, s.broadcast_counts_scan(b).unwrap());
        }
        let p = s.broadcast_progress(1).unwrap();
        assert_eq!((p.queued, p.sent, p.failed, p.total()), (3, 1, 1, 5));
        // And they move with the rows from then on.
        let row = s
            .claim_next_routed("sim0", 10, &ClaimRoute::default())
            .unwrap()
            .unwrap();
        s.mark_sent(row.id, 10).unwrap();
        assert_eq!(s.broadcast_progress(1).unwrap().sent, 2);
        assert_eq!(
            s.broadcast_counts(1).unwrap(),
            s.broadcast_counts_scan(1).unwrap()
        );
    }

    /// A poll's probes read the covering index with every key column bound: a seek for the first due
    /// time, a range from a due time for the later rows; never the table, never a sort.
    #[test]
    fn the_probes_seek_the_covering_index() {
        use super::super::{FIRST_DUE_SQL, QUEUED_BETWEEN_SQL};
        let s = Store::open_in_memory().unwrap();
        let conn = s.conn();
        for (sql, n) in [(FIRST_DUE_SQL, 5), (QUEUED_BETWEEN_SQL, 7)] {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let args: Vec<i64> = (0..n).collect();
            let plan: Vec<String> = st
                .query_map(&crate::store::db::param_refs(&args), |r| r.get::<String>(3))
                .unwrap()
                .collect::<crate::store::db::DbResult<_>>()
                .unwrap();
            assert_eq!(plan.len(), 1, "{plan:?}");
            assert!(
                plan[0].starts_with(
                    "SEARCH outbox USING COVERING INDEX outbox_broadcast_queue (broadcast_id=? \
                     AND modem_pref=? AND held=? AND zone=? AND parts=?"
                ),
                "{plan:?}"
            );
        }
    }
}
