//! Tests of the send loop's merged store calls (docs/daemon.md, "Footprint"):
//! [`Store::claim_next_with_parts`] and [`Store::record_last_part_sent`], and of the inbound
//! pipeline's run of status reports ([`Store::status_reports`]). Each must leave the database
//! exactly as the single calls it replaces would (claim then `outbox_parts`; `record_part_sent`
//! then `mark_sent`; one `status_report` after another), in ONE commit, and a write the disk
//! refuses must leave nothing behind, so the send loop's owed-write queue can replay it whole.
//! The claims' commits skip their own fsync (docs/store.md, "When a commit is fsynced"); every
//! other write must find commits synced again, whatever the claim did.

use super::*;
use crate::store::db::Backend;
use crate::store::{ConsentSource, MemberUpdate, NewMember, WriteFault};

crate::store::testing::backend_tests! {
mod cases {
use super::*;

const ANY: ClaimRoute = ClaimRoute {
    pool: Vec::new(),
    takeover: Vec::new(),
};

fn msg(to: &str, now: i64) -> NewOutbox {
    NewOutbox::new(to, format!("to {to}"), MessageKind::Bulk, now)
}

/// Commits so far (the store's counter, bumped once per committed write transaction).
fn commits(s: &Store) -> u64 {
    *s.watch_commits().borrow()
}

/// The `send_log` instants of a row (what the rate limits are rebuilt from).
fn log_times(s: &Store, id: i64) -> Vec<i64> {
    let conn = s.conn();
    let mut st = conn
        .prepare("SELECT at FROM send_log WHERE outbox_id = ?1 ORDER BY at")
        .unwrap();
    st.query_map(params![id], |r| r.get(0))
        .unwrap()
        .collect::<crate::store::db::DbResult<_>>()
        .unwrap()
}

#[test]
fn claim_with_parts_is_the_claim_and_the_recorded_parts_in_one_commit() {
    let s = fresh();
    assert_eq!(s.claim_next_with_parts("m0", 10, &ANY).unwrap(), None);
    let id = s.enqueue(&msg("+33612345678", 10)).unwrap();

    // A first attempt that got part 1 of 2 out, then was handed back (shutdown between parts).
    let first = s.claim_next_routed("m0", 20, &ANY).unwrap().unwrap();
    s.record_part_sent(id, 1, 2, 7, 21).unwrap();
    s.release_claim(id, 22, None).unwrap();

    let before = commits(&s);
    let Claimed { row, parts, zone } = s.claim_next_with_parts("m1", 30, &ANY).unwrap().unwrap();
    assert_eq!(commits(&s), before + 1, "one transaction");
    // The same row and parts the two single calls read.
    assert_eq!(row, s.outbox_row(id).unwrap());
    assert_eq!(parts, s.outbox_parts(id).unwrap());
    assert_eq!(
        (
            row.state,
            row.claimed_by.as_deref(),
            row.claimed_at,
            row.attempts
        ),
        (OutboxState::Claimed, Some("m1"), Some(30), first.attempts)
    );
    assert_eq!(
        parts
            .iter()
            .map(|p| (p.part, p.total, p.modem.as_str(), p.mr))
            .collect::<Vec<_>>(),
        [(1, 2, "m0", 7)]
    );
    assert_eq!(zone, None, "not a member");
    // Claimed means claimed: nobody else gets it.
    assert_eq!(s.claim_next_with_parts("m0", 40, &ANY).unwrap(), None);
}

#[test]
fn claim_with_parts_screens_like_the_single_claim() {
    let s = fresh();
    let mut old = msg("+33611111111", 10);
    old.expires_at = Some(15);
    let old = s.enqueue(&old).unwrap();
    let ok = s.enqueue(&msg("+33622222222", 11)).unwrap();
    let Claimed { row, parts, .. } = s.claim_next_with_parts("m0", 20, &ANY).unwrap().unwrap();
    assert_eq!(row.id, ok);
    assert!(parts.is_empty());
    assert_eq!(s.outbox_row(old).unwrap().state, OutboxState::Expired);
}

/// The claim reads the recipient's time zone as it is now (quiet hours are judged in it), not
/// the one stored on the row at enqueue (the ETA's), in its own transaction: both claim calls.
#[test]
fn the_claim_carries_the_recipients_time_zone_now() {
    let s = fresh();
    let member = |number: &str, zone: Option<&str>| NewMember {
        number: number.into(),
        time_zone: zone.map(Into::into),
        joined_at: 1,
        ..NewMember::default()
    };
    s.add_member(&member("+33611111111", Some("Europe/Paris")), ConsentSource::Cli, 1)
        .unwrap();
    s.add_member(&member("+33622222222", None), ConsentSource::Cli, 1)
        .unwrap();
    let moved = s.enqueue(&msg("+33611111111", 10)).unwrap();
    s.enqueue(&msg("+33622222222", 11)).unwrap();
    s.enqueue(&msg("+33633333333", 12)).unwrap();
    // The member moved after the enqueue.
    let update = MemberUpdate {
        time_zone: Some(Some("America/Chicago".into())),
        ..MemberUpdate::default()
    };
    s.update_member("+33611111111", &update, 13).unwrap();

    let first = s.claim_next_with_parts("m0", 20, &ANY).unwrap().unwrap();
    assert_eq!(
        (first.row.id, first.zone.as_deref()),
        (moved, Some("America/Chicago"))
    );
    let mark = |id| SentMark {
        id,
        last_part: Some((1, 1, 7, 21)),
        now: 22,
    };
    let (_, second) = s
        .mark_sent_and_claim_next(&mark(moved), "m0", 23, &ANY)
        .unwrap();
    let second = second.unwrap();
    assert_eq!(
        (second.row.to_number.as_str(), second.zone),
        ("+33622222222", None),
        "a member without a zone of their own"
    );
    let (_, third) = s
        .mark_sent_and_claim_next(&mark(second.row.id), "m0", 24, &ANY)
        .unwrap();
    let third = third.unwrap();
    assert_eq!(
        (third.row.to_number.as_str(), third.zone),
        ("+33633333333", None),
        "not a member"
    );
}

#[test]
fn the_last_part_and_the_sent_mark_are_one_commit() {
    let s = fresh();
    let id = s.enqueue(&msg("+33612345678", 10)).unwrap();
    s.claim_next_routed("m0", 20, &ANY).unwrap().unwrap();
    s.record_part_sent(id, 1, 2, 7, 21).unwrap();

    let before = commits(&s);
    let state = s.record_last_part_sent(id, 2, 2, 8, 25, 26).unwrap();
    assert_eq!(commits(&s), before + 1, "one transaction");
    assert_eq!(state, OutboxState::Sent);
    let row = s.outbox_row(id).unwrap();
    assert_eq!((row.state, row.sent_at), (OutboxState::Sent, Some(26)));
    let parts = s.outbox_parts(id).unwrap();
    assert_eq!(
        parts
            .iter()
            .map(|p| (p.part, p.mr, p.sent_at))
            .collect::<Vec<_>>(),
        [(1, 7, 21), (2, 8, 25)]
    );
    // The part counts at its start, as `record_part_sent` counts it.
    assert_eq!(log_times(&s, id), [21, 25]);
    // Reports that came in for both parts settle it, as after `mark_sent`.
    s.status_report("m0", 7, "+33612345678", 0, 30).unwrap();
    s.status_report("m0", 8, "+33612345678", 0, 31).unwrap();
    assert_eq!(s.outbox_row(id).unwrap().state, OutboxState::Delivered);
}

#[test]
fn the_last_part_is_refused_whole_on_a_row_no_longer_claimed_or_a_bad_part() {
    let s = fresh();
    let id = s.enqueue(&msg("+33612345678", 10)).unwrap();
    assert!(s.record_last_part_sent(id, 1, 1, 7, 20, 20).is_err());
    s.claim_next_routed("m0", 20, &ANY).unwrap().unwrap();
    assert!(matches!(
        s.record_last_part_sent(id, 2, 1, 7, 20, 20),
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(s.outbox_parts(id).unwrap().is_empty());
    assert!(log_times(&s, id).is_empty());
    assert_eq!(s.outbox_row(id).unwrap().state, OutboxState::Claimed);
}

#[test]
fn a_refused_write_leaves_nothing_and_replays_whole() {
    let s = fresh();
    let id = s.enqueue(&msg("+33612345678", 10)).unwrap();
    s.claim_next_routed("m0", 20, &ANY).unwrap().unwrap();
    s.inject_write_error(Some(WriteFault::Full));
    let err = s.record_last_part_sent(id, 1, 1, 7, 21, 22).unwrap_err();
    assert!(err.is_write_failure(), "{err}");
    assert!(s.outbox_parts(id).unwrap().is_empty());
    assert_eq!(s.outbox_row(id).unwrap().state, OutboxState::Claimed);
    // What the send loop's owed queue does once the disk takes writes again.
    s.inject_write_error(None);
    assert_eq!(
        s.record_last_part_sent(id, 1, 1, 7, 21, 22).unwrap(),
        OutboxState::Sent
    );
    assert_eq!(log_times(&s, id), [21]);

    // A claim the disk refuses claims nothing.
    let next = s.enqueue(&msg("+33622222222", 30)).unwrap();
    s.inject_write_error(Some(WriteFault::ReadOnly));
    assert!(s.claim_next_with_parts("m0", 40, &ANY).is_err());
    s.inject_write_error(None);
    assert_eq!(s.outbox_row(next).unwrap().state, OutboxState::Queued);
}

#[test]
fn the_sent_mark_and_the_next_claim_are_one_commit() {
    let s = fresh();
    let first = s.enqueue(&msg("+33611111111", 10)).unwrap();
    let second = s.enqueue(&msg("+33622222222", 11)).unwrap();
    s.claim_next_routed("m0", 20, &ANY).unwrap().unwrap();
    let mark = SentMark {
        id: first,
        last_part: Some((1, 1, 7, 21)),
        now: 22,
    };
    let before = commits(&s);
    let (state, next) = s.mark_sent_and_claim_next(&mark, "m0", 23, &ANY).unwrap();
    assert_eq!(commits(&s), before + 1, "one transaction");
    assert_eq!(state, OutboxState::Sent);
    let row = s.outbox_row(first).unwrap();
    assert_eq!((row.state, row.sent_at), (OutboxState::Sent, Some(22)));
    assert_eq!(log_times(&s, first), [21]);
    let Claimed {
        row: next, parts, ..
    } = next.unwrap();
    assert_eq!(
        (next.id, next.state, next.claimed_at),
        (second, OutboxState::Claimed, Some(23))
    );
    assert!(parts.is_empty());

    // Nothing left to claim: the mark alone (here without a part: all were recorded before).
    s.record_part_sent(second, 1, 1, 8, 24).unwrap();
    let mark = SentMark {
        id: second,
        last_part: None,
        now: 25,
    };
    let (state, next) = s.mark_sent_and_claim_next(&mark, "m0", 26, &ANY).unwrap();
    assert_eq!((state, next), (OutboxState::Sent, None));
    assert_eq!(s.outbox_row(second).unwrap().sent_at, Some(25));
}

/// SQLite's `synchronous` (2 = FULL); `None` on PostgreSQL, which has no such setting.
fn sync_level(s: &Store) -> Option<String> {
    s.pragma("synchronous").ok()
}

#[test]
fn every_claim_leaves_commits_synced_for_the_next_write() {
    let s = fresh();
    let full = sync_level(&s);
    if s.backend() == Backend::Sqlite {
        assert_eq!(full.as_deref(), Some("2"));
    }
    // An empty claim, a claim, a mark with a claim, a mark with none.
    assert_eq!(s.claim_next_with_parts("m0", 10, &ANY).unwrap(), None);
    assert_eq!(sync_level(&s), full);
    let first = s.enqueue(&msg("+33611111111", 10)).unwrap();
    let second = s.enqueue(&msg("+33622222222", 11)).unwrap();
    s.claim_next_with_parts("m0", 20, &ANY).unwrap().unwrap();
    assert_eq!(sync_level(&s), full);
    let mark = |id, now| SentMark {
        id,
        last_part: Some((1, 1, 7, now)),
        now,
    };
    let (_, next) = s
        .mark_sent_and_claim_next(&mark(first, 21), "m0", 22, &ANY)
        .unwrap();
    assert_eq!(next.unwrap().row.id, second);
    assert_eq!(sync_level(&s), full);
    let (state, next) = s
        .mark_sent_and_claim_next(&mark(second, 23), "m0", 24, &ANY)
        .unwrap();
    assert_eq!((state, next), (OutboxState::Sent, None));
    assert_eq!(sync_level(&s), full);
    // Failed calls: refused by the disk, and a mark the row no longer takes.
    let third = s.enqueue(&msg("+33633333333", 30)).unwrap();
    s.inject_write_error(Some(WriteFault::Full));
    assert!(s.claim_next_with_parts("m0", 31, &ANY).is_err());
    s.inject_write_error(None);
    assert_eq!(sync_level(&s), full);
    assert!(matches!(
        s.mark_sent_and_claim_next(&mark(second, 32), "m0", 33, &ANY),
        Err(StoreError::InvalidTransition { .. })
    ));
    assert_eq!(sync_level(&s), full);
    assert_eq!(s.outbox_row(third).unwrap().state, OutboxState::Queued);
}

/// The sync that follows an unsynced commit when no synced write is coming (a `sent` mark with
/// nothing left to claim) fails: on SQLite the call reports the failure although its commit
/// stands, the store is marked unhealthy, and the next writes find commits synced again once
/// the disk takes writes. (PostgreSQL commits such a write synchronously: nothing follows it.)
#[test]
fn a_failed_sync_after_an_unsynced_commit_is_reported_and_leaves_commits_synced() {
    let s = fresh();
    let full = sync_level(&s);
    let id = s.enqueue(&msg("+33611111111", 10)).unwrap();
    let injector = s.clone();
    let res = s.write_sync_later(
        "test: a write whose sync fails",
        |tx| {
            tx.exec_cached(
                "UPDATE outbox SET last_error = 'committed' WHERE id = ?1",
                params![id],
            )
            .ctx("test update")?;
            // After the commit's own start, before its sync: the disk turns full.
            injector.inject_write_error(Some(WriteFault::Full));
            Ok(())
        },
        |_| false,
    );
    match s.backend() {
        Backend::Sqlite => {
            assert!(res.is_err(), "the failed sync must fail the call");
            assert!(!s.write_health().is_healthy());
        }
        Backend::Postgres => res.unwrap(),
    }
    s.inject_write_error(None);
    assert_eq!(sync_level(&s), full);
    assert_eq!(
        s.outbox_row(id).unwrap().last_error.as_deref(),
        Some("committed")
    );
    let next = s.enqueue(&msg("+33622222222", 11)).unwrap();
    assert_eq!(s.outbox_row(next).unwrap().state, OutboxState::Queued);
    assert!(s.write_health().is_healthy());
}

/// A sent row with one recorded part (`mr` on `modem`) to `to`.
fn sent_row(s: &Store, to: &str, modem: &str, mr: u8, now: i64) -> i64 {
    let id = s.enqueue(&msg(to, now)).unwrap();
    let row = s.claim_next_routed(modem, now, &ANY).unwrap().unwrap();
    assert_eq!(row.id, id);
    s.record_part_sent(id, 1, 1, mr, now).unwrap();
    s.mark_sent(id, now).unwrap();
    id
}

#[test]
fn a_run_of_status_reports_is_the_single_reports_in_one_commit() {
    // The same sends on two stores: reports one by one on `a`, as one run on `b`.
    let (a, b) = (fresh(), fresh());
    let mut ids = Vec::new();
    for s in [&a, &b] {
        ids = vec![
            sent_row(s, "+33611111111", "m0", 1, 10),
            sent_row(s, "+33622222222", "m0", 2, 11),
            sent_row(s, "+33633333333", "m1", 1, 12),
        ];
    }
    let report = |modem: &str, mr, to: &str, status, at| ReportIn {
        modem: modem.into(),
        mr,
        recipient: to.into(),
        status,
        at,
    };
    let run = [
        report("m0", 1, "+33611111111", 0x00, 20),
        // A temporary error, then the final report for the same part.
        report("m0", 2, "+33622222222", 0x21, 21),
        report("m0", 2, "+33622222222", 0x00, 22),
        // Matches nothing.
        report("m0", 99, "+33611111111", 0x00, 23),
        report("m1", 1, "+33633333333", 0x41, 24),
    ];
    let one_by_one: Vec<_> = run
        .iter()
        .map(|r| {
            a.status_report(&r.modem, r.mr, &r.recipient, r.status, r.at)
                .unwrap()
        })
        .collect();
    let before = commits(&b);
    let together = b.status_reports(&run).unwrap();
    assert_eq!(commits(&b), before + 1, "one transaction");
    assert_eq!(together, one_by_one);
    assert_eq!(
        together.iter().map(|m| m.as_ref().map(|m| m.state)).collect::<Vec<_>>(),
        [
            Some(OutboxState::Delivered),
            Some(OutboxState::Sent),
            Some(OutboxState::Delivered),
            None,
            Some(OutboxState::Failed)
        ]
    );
    for id in ids {
        assert_eq!(a.outbox_row(id).unwrap(), b.outbox_row(id).unwrap());
        assert_eq!(a.outbox_parts(id).unwrap(), b.outbox_parts(id).unwrap());
    }
}

#[test]
fn a_refused_run_of_status_reports_applies_none() {
    let s = fresh();
    let first = sent_row(&s, "+33611111111", "m0", 1, 10);
    let second = sent_row(&s, "+33622222222", "m0", 2, 11);
    let run = [(1, "+33611111111"), (2, "+33622222222")].map(|(mr, to)| ReportIn {
        modem: "m0".into(),
        mr,
        recipient: to.into(),
        status: 0x00,
        at: 20,
    });
    s.inject_write_error(Some(WriteFault::Full));
    let err = s.status_reports(&run).unwrap_err();
    assert!(err.is_write_failure(), "{err}");
    s.inject_write_error(None);
    for id in [first, second] {
        assert_eq!(s.outbox_row(id).unwrap().state, OutboxState::Sent);
        assert_eq!(s.outbox_parts(id).unwrap()[0].report_status, None);
    }
    // Offered again (the modem still holds them), they apply.
    assert_eq!(s.status_reports(&run).unwrap().len(), 2);
    assert_eq!(s.outbox_row(second).unwrap().state, OutboxState::Delivered);
}

/// Status reports applied with a deferred commit: on disk once a later synced commit of any
/// writer is (SQLite), or at once (PostgreSQL); [`Store::sync_through`] gets them there without
/// a new journal commit; and every other write still finds commits synced.
#[test]
fn a_deferred_commit_is_durable_with_the_next_synced_commit_or_a_sync() {
    let s = fresh();
    let full = sync_level(&s);
    sent_row(&s, "+33611111111", "m0", 1, 10);
    sent_row(&s, "+33622222222", "m0", 2, 11);
    let report = |mr, to: &str| ReportIn {
        modem: "m0".into(),
        mr,
        recipient: to.into(),
        status: 0x00,
        at: 20,
    };
    let (m, n) = s
        .status_reports_deferred(&[report(1, "+33611111111")])
        .unwrap();
    assert_eq!(m[0].as_ref().unwrap().state, OutboxState::Delivered);
    assert_eq!(n, commits(&s));
    assert_eq!(sync_level(&s), full);
    match s.backend() {
        Backend::Sqlite => {
            assert!(s.durable() < n, "not waited for");
            // Another writer's synced commit carries it to disk.
            s.enqueue(&msg("+33633333333", 12)).unwrap();
            assert!(s.durable() >= n);
        }
        Backend::Postgres => assert!(s.durable() >= n, "synced at once"),
    }
    let (_, n) = s
        .status_reports_deferred(&[report(2, "+33622222222")])
        .unwrap();
    let before = commits(&s);
    s.sync_through(n).unwrap();
    assert!(s.durable() >= n);
    assert_eq!(commits(&s), before, "a sync is no new commit for the journal");
    assert_eq!(sync_level(&s), full);
    // A report that matches nothing writes nothing: nothing to wait for.
    let (m, n) = s
        .status_reports_deferred(&[report(99, "+33611111111")])
        .unwrap();
    assert_eq!(m, [None]);
    assert!(s.durable() >= n);
}

/// The event journal hands out only events on disk: a `message_sent` event written with a
/// claim's unsynced commit is synced before a consumer (webhooks, hooks) reads it.
#[test]
fn events_are_read_only_once_on_disk() {
    let s = fresh();
    let first = s.enqueue(&msg("+33611111111", 10)).unwrap();
    s.enqueue(&msg("+33622222222", 11)).unwrap();
    s.claim_next_with_parts("m0", 20, &ANY).unwrap().unwrap();
    let mark = SentMark {
        id: first,
        last_part: Some((1, 1, 7, 21)),
        now: 21,
    };
    s.mark_sent_and_claim_next(&mark, "m0", 22, &ANY).unwrap();
    if s.backend() == Backend::Sqlite {
        assert!(s.durable() < commits(&s), "the mark's commit is not synced yet");
    }
    let sent = s.events_after(0, &["message_sent".into()], 10).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(s.durable(), commits(&s));
}

#[test]
fn a_refused_mark_and_claim_writes_neither() {
    let s = fresh();
    let first = s.enqueue(&msg("+33611111111", 10)).unwrap();
    let second = s.enqueue(&msg("+33622222222", 11)).unwrap();
    s.claim_next_routed("m0", 20, &ANY).unwrap().unwrap();
    let mark = SentMark {
        id: first,
        last_part: Some((1, 1, 7, 21)),
        now: 22,
    };
    s.inject_write_error(Some(WriteFault::Full));
    let err = s
        .mark_sent_and_claim_next(&mark, "m0", 23, &ANY)
        .unwrap_err();
    assert!(err.is_write_failure(), "{err}");
    s.inject_write_error(None);
    assert_eq!(s.outbox_row(first).unwrap().state, OutboxState::Claimed);
    assert!(s.outbox_parts(first).unwrap().is_empty());
    assert_eq!(s.outbox_row(second).unwrap().state, OutboxState::Queued);

    // A mark the row no longer takes (a second mark) rolls the claim back with it.
    s.mark_sent_and_claim_next(&mark, "m0", 23, &ANY).unwrap();
    let third = s.enqueue(&msg("+33633333333", 30)).unwrap();
    assert!(matches!(
        s.mark_sent_and_claim_next(&mark, "m0", 40, &ANY),
        Err(StoreError::InvalidTransition { .. })
    ));
    assert_eq!(s.outbox_row(third).unwrap().state, OutboxState::Queued);
}
}
}
