//! Tests of the send loop's merged store calls (docs/daemon.md, "Footprint"):
//! [`Store::claim_next_with_parts`] and [`Store::record_last_part_sent`]. Each must leave the
//! database exactly as the single calls it replaces would (claim then `outbox_parts`;
//! `record_part_sent` then `mark_sent`), in ONE commit, and a write the disk refuses must leave
//! nothing behind, so the send loop's owed-write queue can replay it whole.

use super::*;
use crate::store::WriteFault;

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
    let (row, parts) = s.claim_next_with_parts("m1", 30, &ANY).unwrap().unwrap();
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
    let (row, parts) = s.claim_next_with_parts("m0", 20, &ANY).unwrap().unwrap();
    assert_eq!(row.id, ok);
    assert!(parts.is_empty());
    assert_eq!(s.outbox_row(old).unwrap().state, OutboxState::Expired);
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
    let (next, parts) = next.unwrap();
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
