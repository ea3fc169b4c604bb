use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;

use crate::store::db::params;

use super::claim::ROUTED_CANDIDATE_SQL;
use super::outcomes::{ReportClass, STATUS_REPORT_WINDOW_MS, classify_status, same_number};
use super::*;
use crate::store::{ConsentEvent, ConsentSource, ModemIdentity, Segment};

/// No pool: every modem preference is soft, any modem may claim any due row.
const ANY: ClaimRoute = ClaimRoute {
    pool: Vec::new(),
    takeover: Vec::new(),
};

fn msg(to: &str, kind: MessageKind, now: i64) -> NewOutbox {
    NewOutbox::new(to, format!("to {to}"), kind, now)
}

/// Claims, records every part with the given MRs, marks sent.
fn send(s: &Store, modem: &str, now: i64, mrs: &[u8]) -> OutboxRow {
    let row = s
        .claim_next_routed(modem, now, &ANY)
        .unwrap()
        .expect("a due row");
    let total = mrs.len() as u8;
    for (i, &mr) in mrs.iter().enumerate() {
        s.record_part_sent(row.id, i as u8 + 1, total, mr, now)
            .unwrap();
    }
    s.mark_sent(row.id, now).unwrap();
    row
}

#[test]
fn same_number_compares_digits_and_suffixes() {
    assert!(same_number("+33612345678", "0612345678"));
    assert!(same_number("+15551234567", "15551234567"));
    assert!(!same_number("+15551234567", "+15551234568"));
    assert!(same_number("+33612345678", "0033612345678"));
    assert!(!same_number("+1234", "234"));
    assert!(!same_number("000", "+1"));
    assert!(!same_number("", "+1"));
}

#[test]
fn tp_st_classes() {
    assert_eq!(classify_status(0x00), ReportClass::Delivered);
    assert_eq!(classify_status(0x02), ReportClass::Delivered);
    assert_eq!(classify_status(0x20), ReportClass::Pending);
    assert_eq!(classify_status(0x30), ReportClass::Pending);
    assert_eq!(classify_status(0x41), ReportClass::Failed);
    assert_eq!(classify_status(0x46), ReportClass::Failed);
    assert_eq!(classify_status(0x60), ReportClass::Failed);
}

crate::store::testing::backend_tests! {
mod cases {
use super::*;

fn reopener() -> Box<dyn Fn() -> Store> {
    crate::store::testing::reopener(BACKEND)
}

#[test]
fn claim_order_priority_then_due_time_then_age() {
    let s = fresh();
    let bulk = s.enqueue(&msg("+1", MessageKind::Bulk, 10)).unwrap();
    let direct = s.enqueue(&msg("+2", MessageKind::Direct, 20)).unwrap();
    let reply = s.enqueue(&msg("+3", MessageKind::Reply, 30)).unwrap();
    let mut later = msg("+4", MessageKind::Compliance, 40);
    later.not_before = 1_000;
    let later = s.enqueue(&later).unwrap();
    let compliance = s.enqueue(&msg("+5", MessageKind::Compliance, 50)).unwrap();
    let order: Vec<i64> =
        std::iter::from_fn(|| s.claim_next_routed("m0", 100, &ANY).unwrap().map(|r| r.id))
            .collect();
    assert_eq!(order, [compliance, reply, direct, bulk]);
    // Not due until 1_000.
    assert!(s.claim_next_routed("m0", 999, &ANY).unwrap().is_none());
    let row = s.claim_next_routed("m0", 1_000, &ANY).unwrap().unwrap();
    assert_eq!(row.id, later);
    assert_eq!(
        (
            row.state,
            row.claimed_by.as_deref(),
            row.claimed_at,
            row.attempts
        ),
        (OutboxState::Claimed, Some("m0"), Some(1_000), 1)
    );
}

#[test]
fn modem_preference_is_sticky_but_fails_over_when_disabled() {
    let s = fresh();
    for name in ["m0", "m1"] {
        s.upsert_modem(
            &ModemIdentity {
                name: name.into(),
                ..ModemIdentity::default()
            },
            1,
        )
        .unwrap();
    }
    let mut m = msg("+1", MessageKind::Reply, 1);
    m.modem_pref = Some("m1".into());
    let id = s.enqueue(&m).unwrap();
    let pool = ClaimRoute {
        pool: vec!["m0".into(), "m1".into()],
        takeover: Vec::new(),
    };
    assert!(s.claim_next_routed("m0", 5, &pool).unwrap().is_none());
    s.set_modem_enabled("m1", false, Some("unplugged"), 6)
        .unwrap();
    assert_eq!(s.claim_next_routed("m0", 7, &pool).unwrap().unwrap().id, id);
    // A preference for a modem nobody knows does not strand the row either.
    let mut m = msg("+2", MessageKind::Reply, 1);
    m.modem_pref = Some("ghost".into());
    let id = s.enqueue(&m).unwrap();
    assert_eq!(s.claim_next_routed("m0", 8, &pool).unwrap().unwrap().id, id);
}

#[test]
fn expired_rows_are_never_claimed() {
    let s = fresh();
    let mut old = msg("+1", MessageKind::Reply, 1);
    old.expires_at = Some(50);
    let old = s.enqueue(&old).unwrap();
    let mut b = msg("+2", MessageKind::Bulk, 1);
    b.expires_at = Some(10_000);
    let b = s.enqueue(&b).unwrap();
    assert_eq!(s.claim_next_routed("m0", 100, &ANY).unwrap().unwrap().id, b);
    let row = s.outbox_row(old).unwrap();
    assert_eq!(
        (row.state, row.last_error.as_deref()),
        (OutboxState::Expired, Some("ttl"))
    );
    let mut c = msg("+3", MessageKind::Bulk, 1);
    c.expires_at = Some(200);
    let c = s.enqueue(&c).unwrap();
    assert_eq!(s.expire_due(199).unwrap(), 0);
    assert_eq!(s.expire_due(200).unwrap(), 1);
    assert_eq!(s.outbox_row(c).unwrap().state, OutboxState::Expired);
    let d = s.enqueue(&msg("+4", MessageKind::Bulk, 1)).unwrap();
    s.mark_expired(d, 300).unwrap();
    assert!(s.mark_expired(d, 300).is_err());
}

#[test]
fn opted_out_rows_are_never_claimed() {
    let s = fresh();
    let n = "+15550009";
    // Queued before the suppression exists (as if STOP landed in another process).
    let bulk = s.enqueue(&msg(n, MessageKind::Bulk, 1)).unwrap();
    let old_compliance = s.enqueue(&msg(n, MessageKind::Compliance, 1)).unwrap();
    s.conn()
        .execute(
            "INSERT INTO opt_outs (number, since) VALUES (?1, 5)",
            params![n],
        )
        .unwrap();
    let other = s.enqueue(&msg("+15550010", MessageKind::Bulk, 2)).unwrap();
    let confirmation = s.enqueue(&msg(n, MessageKind::Compliance, 6)).unwrap();
    let direct_after = s.enqueue(&msg(n, MessageKind::Direct, 7)).unwrap();
    let claimed: Vec<i64> =
        std::iter::from_fn(|| s.claim_next_routed("m0", 10, &ANY).unwrap().map(|r| r.id)).collect();
    assert_eq!(
        claimed,
        [confirmation, other],
        "only the STOP confirmation goes to {n}"
    );
    for id in [bulk, old_compliance, direct_after] {
        let row = s.outbox_row(id).unwrap();
        assert_eq!(
            (row.state, row.last_error.as_deref()),
            (OutboxState::Cancelled, Some("opted_out")),
            "row {id}"
        );
    }
}

#[test]
fn stop_then_confirmation_is_the_only_send() {
    let s = fresh();
    let n = "+15550011";
    s.enqueue(&msg(n, MessageKind::Reply, 1)).unwrap();
    s.enqueue(&msg(n, MessageKind::Compliance, 1)).unwrap();
    assert_eq!(
        s.record_consent(
            n,
            ConsentEvent::OptedOut,
            Some("STOP"),
            ConsentSource::Sms,
            10
        )
        .unwrap(),
        2
    );
    let conf = s.enqueue(&msg(n, MessageKind::Compliance, 10)).unwrap();
    assert_eq!(
        s.claim_next_routed("m0", 11, &ANY).unwrap().map(|r| r.id),
        Some(conf)
    );
    assert!(s.claim_next_routed("m0", 11, &ANY).unwrap().is_none());
    s.record_consent(
        n,
        ConsentEvent::OptedIn,
        Some("START"),
        ConsentSource::Sms,
        20,
    )
    .unwrap();
    let again = s.enqueue(&msg(n, MessageKind::Reply, 21)).unwrap();
    assert_eq!(
        s.claim_next_routed("m0", 22, &ANY).unwrap().map(|r| r.id),
        Some(again)
    );
}

#[test]
fn lifecycle_parts_and_delivery_reports() {
    let s = fresh();
    let id = s
        .enqueue(&msg("+33612345678", MessageKind::Direct, 1))
        .unwrap();
    let row = s.claim_next_routed("m0", 2, &ANY).unwrap().unwrap();
    s.set_concat_ref(id, 0xBEEF).unwrap();
    s.record_part_sent(id, 1, 2, 17, 3).unwrap();
    // A report for part 1 may arrive before part 2 is even sent.
    let r = s
        .status_report("m0", 17, "0612345678", 0x00, 4)
        .unwrap()
        .unwrap();
    assert_eq!(
        r,
        ReportMatch {
            outbox_id: id,
            part: 1,
            state: OutboxState::Claimed,
            resolved_in_doubt: false,
        }
    );
    s.record_part_sent(id, 2, 2, 18, 5).unwrap();
    assert_eq!(s.mark_sent(id, 6).unwrap(), OutboxState::Sent);
    // Temporary error: still sent.
    let r = s
        .status_report("m0", 18, "+33612345678", 0x21, 7)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, OutboxState::Sent);
    let r = s
        .status_report("m0", 18, "+33612345678", 0x00, 8)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, OutboxState::Delivered);
    let row2 = s.outbox_row(id).unwrap();
    assert_eq!(
        (row2.delivered_at, row2.sent_at, row2.concat_ref),
        (Some(8), Some(6), Some(0xBEEF))
    );
    assert_eq!(row.attempts, 1);
    let parts = s.outbox_parts(id).unwrap();
    assert_eq!(
        parts
            .iter()
            .map(|p| (p.part, p.mr, p.report_status))
            .collect::<Vec<_>>(),
        [(1, 17, Some(0)), (2, 18, Some(0))]
    );
    // Unknown MR, other modem, or other recipient: no match.
    assert!(
        s.status_report("m0", 99, "+33612345678", 0, 9)
            .unwrap()
            .is_none()
    );
    assert!(
        s.status_report("m1", 17, "+33612345678", 0, 9)
            .unwrap()
            .is_none()
    );
    assert!(
        s.status_report("m0", 17, "+4915112345678", 0, 9)
            .unwrap()
            .is_none()
    );
    // Permanent failure report.
    s.enqueue(&msg("+15550002", MessageKind::Bulk, 10)).unwrap();
    let f = send(&s, "m0", 11, &[40]);
    let r = s
        .status_report("m0", 40, "+15550002", 0x41, 12)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, OutboxState::Failed);
    assert_eq!(
        s.outbox_row(f.id).unwrap().last_error.as_deref(),
        Some("status report TP-ST 0x41")
    );
}

#[test]
fn status_report_matching_survives_mr_wrap() {
    let s = fresh();
    let to = "+15550100";
    // 300 single-part messages to one recipient: the modem's MR wraps after 255.
    let mut ids = Vec::new();
    for i in 0..300i64 {
        s.enqueue(&msg(to, MessageKind::Direct, i)).unwrap();
        let row = send(&s, "m0", 1_000 + i, &[(i % 256) as u8]);
        ids.push(row.id);
    }
    // MR 5 was used by message 5 and message 261: the most recent wins.
    let r = s.status_report("m0", 5, to, 0, 10_000).unwrap().unwrap();
    assert_eq!(r.outbox_id, ids[261]);
    assert_eq!(s.outbox_row(ids[5]).unwrap().state, OutboxState::Sent);
    // MR 100 was used only once (message 100): no wrap ambiguity.
    assert_eq!(
        s.status_report("m0", 100, to, 0, 10_000)
            .unwrap()
            .unwrap()
            .outbox_id,
        ids[100]
    );
    // Same MR on a different recipient is told apart by the number.
    s.enqueue(&msg("+15550200", MessageKind::Direct, 20_000))
        .unwrap();
    let other = send(&s, "m0", 20_001, &[5]);
    assert_eq!(
        s.status_report("m0", 5, to, 0, 20_002)
            .unwrap()
            .unwrap()
            .outbox_id,
        ids[261]
    );
    assert_eq!(
        s.status_report("m0", 5, "+15550200", 0, 20_002)
            .unwrap()
            .unwrap()
            .outbox_id,
        other.id
    );
    // Reports older than the window do not match.
    let late = 1_000 + STATUS_REPORT_WINDOW_MS + 1_000;
    assert!(s.status_report("m0", 100, to, 0, late).unwrap().is_none());
}

#[test]
fn retry_fail_cancel_and_invalid_transitions() {
    let s = fresh();
    let id = s.enqueue(&msg("+1", MessageKind::Reply, 1)).unwrap();
    assert!(matches!(
        s.mark_sent(id, 2),
        Err(StoreError::InvalidTransition { .. })
    ));
    assert!(matches!(
        s.record_part_sent(id, 1, 1, 0, 2),
        Err(StoreError::InvalidTransition { .. })
    ));
    s.claim_next_routed("m0", 2, &ANY).unwrap().unwrap();
    s.mark_retry(id, "+CMS ERROR: 500", 100).unwrap();
    let row = s.outbox_row(id).unwrap();
    assert_eq!(
        (
            row.state,
            row.not_before,
            row.claimed_by.clone(),
            row.last_error.as_deref()
        ),
        (OutboxState::Queued, 100, None, Some("+CMS ERROR: 500"))
    );
    assert!(s.claim_next_routed("m0", 99, &ANY).unwrap().is_none());
    let row = s.claim_next_routed("m1", 100, &ANY).unwrap().unwrap();
    assert_eq!(row.attempts, 2);
    s.mark_failed(id, "no network", 101).unwrap();
    assert!(s.mark_failed(id, "again", 102).is_err());
    assert!(s.mark_retry(id, "x", 1).is_err());
    assert!(s.cancel(id, "x", 1).is_err());
    assert!(matches!(
        s.mark_sent(424242, 1),
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.record_part_sent(id, 2, 1, 0, 1).is_err());
    let q = s.enqueue(&msg("+2", MessageKind::Bulk, 1)).unwrap();
    s.cancel(q, "admin", 5).unwrap();
    assert_eq!(s.outbox_row(q).unwrap().state, OutboxState::Cancelled);
    assert!(s.enqueue(&msg(" ", MessageKind::Bulk, 1)).is_err());
}

#[test]
fn recover_after_restart_applies_policy() {
    let open = reopener();
    let (bulk, reply, compliance, direct, queued, sent);
    {
        let s = open();
        bulk = s.enqueue(&msg("+1", MessageKind::Bulk, 1)).unwrap();
        reply = s.enqueue(&msg("+2", MessageKind::Reply, 1)).unwrap();
        compliance = s.enqueue(&msg("+3", MessageKind::Compliance, 1)).unwrap();
        direct = s.enqueue(&msg("+4", MessageKind::Direct, 1)).unwrap();
        sent = s.enqueue(&msg("+5", MessageKind::Bulk, 0)).unwrap();
        // Highest priority first: compliance, reply, direct, then the two bulk rows by due time.
        let order: Vec<i64> = (0..5)
            .map(|_| s.claim_next_routed("m0", 2, &ANY).unwrap().unwrap().id)
            .collect();
        assert_eq!(order, [compliance, reply, direct, sent, bulk]);
        s.record_part_sent(sent, 1, 1, 9, 3).unwrap();
        s.mark_sent(sent, 3).unwrap();
        s.record_part_sent(bulk, 1, 2, 7, 3).unwrap(); // part 1 of 2 went out, then the crash
        queued = s.enqueue(&msg("+6", MessageKind::Bulk, 4)).unwrap();
    } // "crash": the process goes away with four rows claimed
    let s = open();
    let report = s
        .recover_after_restart(&RecoveryPolicy::default(), 100)
        .unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            found_claimed: 4,
            requeued: 2,
            left_in_doubt: 2
        }
    );
    let state = |id| s.outbox_row(id).unwrap().state;
    assert_eq!(state(bulk), OutboxState::InDoubt);
    assert_eq!(state(direct), OutboxState::InDoubt);
    assert_eq!(state(reply), OutboxState::Queued);
    assert_eq!(state(compliance), OutboxState::Queued);
    assert_eq!(state(queued), OutboxState::Queued);
    assert_eq!(state(sent), OutboxState::Sent);
    assert_eq!(
        s.outbox_parts(bulk).unwrap().len(),
        1,
        "confirmed parts are kept"
    );
    assert_eq!(
        s.outbox_row(bulk).unwrap().last_error.as_deref(),
        Some("in flight at restart")
    );
    assert_eq!(
        s.in_doubt()
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [bulk, direct]
    );
    // Nothing left claimed: a second recovery is a no-op.
    assert_eq!(
        s.recover_after_restart(&RecoveryPolicy::default(), 101)
            .unwrap(),
        RecoveryReport::default()
    );
    // A person resolves the in-doubt rows.
    s.requeue_in_doubt(direct, 102).unwrap();
    s.mark_failed(bulk, "operator chose not to resend", 102)
        .unwrap();
    assert!(s.in_doubt().unwrap().is_empty());
    // Policy resending everything.
    s.claim_next_routed("m0", 200, &ANY).unwrap().unwrap();
    let all = RecoveryPolicy {
        resend_bulk: true,
        resend_direct: true,
        ..RecoveryPolicy::default()
    };
    assert_eq!(s.recover_after_restart(&all, 201).unwrap().requeued, 1);
}

#[test]
fn in_doubt_row_with_delivery_report_is_settled() {
    let s = fresh();
    let id = s.enqueue(&msg("+15550001", MessageKind::Bulk, 1)).unwrap();
    s.claim_next_routed("m0", 2, &ANY).unwrap();
    s.record_part_sent(id, 1, 1, 3, 2).unwrap();
    s.recover_after_restart(&RecoveryPolicy::default(), 5)
        .unwrap();
    assert_eq!(s.outbox_row(id).unwrap().state, OutboxState::InDoubt);
    let r = s
        .status_report("m0", 3, "+15550001", 0, 6)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, OutboxState::Delivered);
}

#[test]
fn broadcasts_expand_once_pause_resume_cancel_and_finish() {
    let s = fresh();
    s.record_consent(
        "+9",
        ConsentEvent::OptedOut,
        Some("STOP"),
        ConsentSource::Sms,
        1,
    )
    .unwrap();
    let rows: Vec<_> = ["+1", "+2", "+3", "+2", "+9"]
        .iter()
        .map(|n| msg(n, MessageKind::Bulk, 10))
        .collect();
    let (b, inserted) = s
        .create_broadcast("Hello {name}", r#"{"city":"Paris"}"#, None, &rows, 10)
        .unwrap();
    assert_eq!(inserted, 4, "the duplicate +2 is skipped");
    let bc = s.broadcast(b).unwrap();
    assert_eq!((bc.state, bc.total), (BroadcastState::Running, 4));
    let p = s.broadcast_progress(b).unwrap();
    assert_eq!((p.queued, p.cancelled, p.total()), (3, 1, 4));
    // Re-running the expansion (e.g. after a crash) adds nobody twice.
    assert_eq!(
        s.enqueue_many(
            &rows
                .iter()
                .cloned()
                .map(|mut r| {
                    r.broadcast_id = Some(b);
                    r
                })
                .collect::<Vec<_>>()
        )
        .unwrap(),
        0
    );
    assert_eq!(
        s.enqueue(&NewOutbox {
            broadcast_id: Some(b),
            ..msg("+1", MessageKind::Bulk, 11)
        })
        .unwrap(),
        s.list_outbox(None, Some(b), 10).unwrap().last().unwrap().id
    );

    let first = s.claim_next_routed("m0", 20, &ANY).unwrap().unwrap();
    s.pause_broadcast(b, 21).unwrap();
    assert!(
        s.claim_next_routed("m0", 22, &ANY).unwrap().is_none(),
        "paused rows are held"
    );
    assert!(s.pause_broadcast(b, 22).is_err());
    // Rows added while paused are held too.
    s.enqueue(&NewOutbox {
        broadcast_id: Some(b),
        ..msg("+4", MessageKind::Bulk, 22)
    })
    .unwrap();
    assert!(s.claim_next_routed("m0", 23, &ANY).unwrap().is_none());
    s.resume_broadcast(b, 24).unwrap();
    let second = s.claim_next_routed("m0", 25, &ANY).unwrap().unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(s.cancel_broadcast(b, 26).unwrap(), 2);
    assert!(s.claim_next_routed("m0", 27, &ANY).unwrap().is_none());
    assert!(s.resume_broadcast(b, 28).is_err());
    // Claimed rows finish normally.
    s.mark_sent(first.id, 30).unwrap();
    s.mark_failed(second.id, "x", 30).unwrap();
    let p = s.broadcast_progress(b).unwrap();
    assert_eq!((p.sent, p.failed, p.cancelled, p.total()), (1, 1, 3, 5));
    assert_eq!(s.broadcast(b).unwrap().state, BroadcastState::Cancelled);
    assert_eq!(
        s.list_outbox(Some(OutboxState::Cancelled), Some(b), 10)
            .unwrap()
            .len(),
        3
    );
    // A row added to a cancelled broadcast is cancelled at once.
    let late = s
        .enqueue(&NewOutbox {
            broadcast_id: Some(b),
            ..msg("+5", MessageKind::Bulk, 31)
        })
        .unwrap();
    assert_eq!(s.outbox_row(late).unwrap().state, OutboxState::Cancelled);
    assert!(
        s.enqueue(&NewOutbox {
            broadcast_id: Some(9999),
            ..msg("+5", MessageKind::Bulk, 31)
        })
        .is_err()
    );
}

#[test]
fn scheduled_broadcast_starts_and_finishes() {
    let s = fresh();
    let rows: Vec<_> = ["+1", "+2"]
        .iter()
        .map(|n| NewOutbox {
            not_before: 1_000,
            ..msg(n, MessageKind::Bulk, 10)
        })
        .collect();
    let (b, _) = s
        .create_broadcast("t", "all", Some(1_000), &rows, 10)
        .unwrap();
    assert_eq!(s.broadcast(b).unwrap().state, BroadcastState::Scheduled);
    assert!(s.claim_next_routed("m0", 999, &ANY).unwrap().is_none());
    assert_eq!(s.refresh_broadcasts(999).unwrap(), 0);
    assert_eq!(s.refresh_broadcasts(1_000).unwrap(), 1);
    assert_eq!(s.broadcast(b).unwrap().state, BroadcastState::Running);
    let a = s.claim_next_routed("m0", 1_000, &ANY).unwrap().unwrap();
    let c = s.claim_next_routed("m0", 1_000, &ANY).unwrap().unwrap();
    s.mark_sent(a.id, 1_001).unwrap();
    assert_eq!(
        s.refresh_broadcasts(1_002).unwrap(),
        0,
        "one row still claimed"
    );
    s.mark_sent(c.id, 1_003).unwrap();
    assert_eq!(s.refresh_broadcasts(1_004).unwrap(), 1);
    assert_eq!(s.broadcast(b).unwrap().state, BroadcastState::Done);
    assert_eq!(s.broadcasts(10).unwrap().len(), 1);
    assert_eq!(s.state_counts().unwrap().sent, 2);
}

/// Two connections (as two processes or gateways would have) claim from one outbox at once.
#[test]
fn concurrent_claims_never_take_the_same_row() {
    let open = reopener();
    let s = open();
    let n = 400;
    let rows: Vec<_> = (0..n)
        .map(|i| msg(&format!("+1{i:06}"), MessageKind::Bulk, i))
        .collect();
    assert_eq!(s.enqueue_many(&rows).unwrap(), n as usize);
    let claimers: Vec<_> = ["m0", "m1", "m2"]
        .iter()
        .enumerate()
        .map(|(i, modem)| {
            // Two threads get their own connection; the third shares `s` through a clone.
            let store = if i == 2 {
                s.clone()
            } else {
                open()
            };
            let modem = modem.to_string();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(row) = store.claim_next_routed(&modem, 1_000_000, &ANY).unwrap() {
                    assert_eq!(row.claimed_by.as_deref(), Some(modem.as_str()));
                    got.push(row.id);
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.join().unwrap());
    }
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), n as usize, "every row claimed exactly once");
    assert_eq!(unique.len(), n as usize, "no row claimed twice");
    assert_eq!(s.state_counts().unwrap().claimed, n as u64);
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue { to: u8, kind: u8, delay: u8 },
    Claim { modem: u8 },
    Sent { pick: u8 },
    Failed { pick: u8 },
    Retry { pick: u8, delay: u8 },
    Cancel { pick: u8 },
    Stop { to: u8 },
    Restart,
    Tick { by: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6, 0u8..4, 0u8..3).prop_map(|(to, kind, delay)| Op::Enqueue { to, kind, delay }),
        4 => (0u8..2).prop_map(|modem| Op::Claim { modem }),
        2 => any::<u8>().prop_map(|pick| Op::Sent { pick }),
        1 => any::<u8>().prop_map(|pick| Op::Failed { pick }),
        1 => (any::<u8>(), 0u8..3).prop_map(|(pick, delay)| Op::Retry { pick, delay }),
        1 => any::<u8>().prop_map(|pick| Op::Cancel { pick }),
        1 => (0u8..6).prop_map(|to| Op::Stop { to }),
        1 => Just(Op::Restart),
        1 => (1u8..4).prop_map(|by| Op::Tick { by }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random operation sequences keep the outbox consistent: every row is in exactly one known
    /// state, agrees with a simple model, a row is never handed out while already claimed, and a
    /// suppressed number never gets a non-compliance claim.
    #[test]
    fn outbox_invariants_hold(ops in proptest::collection::vec(op(), 1..60)) {
        let s = fresh();
        let mut model: BTreeMap<i64, OutboxState> = BTreeMap::new();
        let mut kinds: BTreeMap<i64, MessageKind> = BTreeMap::new();
        let mut to_of: BTreeMap<i64, String> = BTreeMap::new();
        let mut created: BTreeMap<i64, i64> = BTreeMap::new();
        let mut stopped: HashSet<String> = HashSet::new();
        let mut now = 1_000i64;
        let pick = |model: &BTreeMap<i64, OutboxState>, want: &[OutboxState], p: u8| {
            let ids: Vec<i64> = model.iter().filter(|(_, st)| want.contains(st)).map(|(id, _)| *id).collect();
            (!ids.is_empty()).then(|| ids[p as usize % ids.len()])
        };
        for op in ops {
            match op {
                Op::Enqueue { to, kind, delay } => {
                    let kind = MessageKind::ALL[kind as usize % 4];
                    let number = format!("+1000{to}");
                    let mut m = msg(&number, kind, now);
                    m.not_before = now + i64::from(delay);
                    let id = s.enqueue(&m).unwrap();
                    let state = if stopped.contains(&number) && kind != MessageKind::Compliance { OutboxState::Cancelled } else { OutboxState::Queued };
                    model.insert(id, state);
                    kinds.insert(id, kind);
                    to_of.insert(id, number);
                    created.insert(id, now);
                }
                Op::Claim { modem } => {
                    let before = model.clone();
                    if let Some(row) = s.claim_next_routed(&format!("m{modem}"), now, &ANY).unwrap() {
                        prop_assert_eq!(before.get(&row.id), Some(&OutboxState::Queued), "claimed a row that was not queued");
                        prop_assert!(row.not_before <= now);
                        if stopped.contains(&row.to_number) {
                            prop_assert_eq!(row.kind, MessageKind::Compliance);
                        }
                        model.insert(row.id, OutboxState::Claimed);
                    }
                    // Rows the claim cancelled on the way (opt-outs) are reflected from the DB.
                    for (id, st) in model.iter_mut() {
                        if *st == OutboxState::Queued {
                            *st = s.outbox_row(*id).unwrap().state;
                        }
                    }
                }
                Op::Sent { pick: p } => {
                    if let Some(id) = pick(&model, &[OutboxState::Claimed], p) {
                        s.record_part_sent(id, 1, 1, p, now).unwrap();
                        s.mark_sent(id, now).unwrap();
                        model.insert(id, OutboxState::Sent);
                    }
                }
                Op::Failed { pick: p } => {
                    if let Some(id) = pick(&model, &[OutboxState::Claimed, OutboxState::Sent, OutboxState::InDoubt], p) {
                        s.mark_failed(id, "test", now).unwrap();
                        model.insert(id, OutboxState::Failed);
                    }
                }
                Op::Retry { pick: p, delay } => {
                    if let Some(id) = pick(&model, &[OutboxState::Claimed], p) {
                        s.mark_retry(id, "test", now + i64::from(delay)).unwrap();
                        model.insert(id, OutboxState::Queued);
                    }
                }
                Op::Cancel { pick: p } => {
                    if let Some(id) = pick(&model, &[OutboxState::Queued, OutboxState::InDoubt], p) {
                        s.cancel(id, "test", now).unwrap();
                        model.insert(id, OutboxState::Cancelled);
                    }
                }
                Op::Stop { to } => {
                    let number = format!("+1000{to}");
                    s.record_consent(&number, ConsentEvent::OptedOut, None, ConsentSource::Sms, now).unwrap();
                    stopped.insert(number.clone());
                    for (id, st) in model.iter_mut() {
                        let old_or_not_compliance = kinds[id] != MessageKind::Compliance || created[id] < now;
                        if *st == OutboxState::Queued && to_of[id] == number && old_or_not_compliance {
                            *st = OutboxState::Cancelled;
                        }
                    }
                }
                Op::Restart => {
                    let report = s.recover_after_restart(&RecoveryPolicy::default(), now).unwrap();
                    let claimed = model.values().filter(|st| **st == OutboxState::Claimed).count();
                    prop_assert_eq!(report.found_claimed, claimed);
                    for (id, st) in model.iter_mut() {
                        if *st == OutboxState::Claimed {
                            *st = if RecoveryPolicy::default().resend(kinds[id]) { OutboxState::Queued } else { OutboxState::InDoubt };
                        }
                    }
                }
                Op::Tick { by } => now += i64::from(by),
            }
            // The database agrees with the model, row by row, and the counts add up.
            for (id, st) in &model {
                prop_assert_eq!(s.outbox_row(*id).unwrap().state, *st, "row {}", id);
            }
            prop_assert_eq!(s.state_counts().unwrap().total(), model.len() as u64);
            for row in s.list_outbox(Some(OutboxState::Claimed), None, 1000).unwrap() {
                prop_assert!(row.claimed_by.is_some() && row.claimed_at.is_some());
            }
        }
    }
}

fn member(number: &str, city: &str, joined_at: i64, home: Option<&str>) -> crate::store::NewMember {
    crate::store::NewMember {
        number: number.into(),
        name: Some(format!("name {number}")),
        city: Some(city.into()),
        status: Some(crate::store::MemberStatus::Active),
        home_modem: home.map(str::to_string),
        joined_at,
        ..crate::store::NewMember::default()
    }
}

/// The streamed expansion walks the segment in join order, hands each member with its
/// suppression flag to the caller, inserts what the caller returns into the new broadcast, and
/// counts the rows in the broadcast's total.
#[test]
fn streamed_broadcast_inserts_what_the_caller_decides_in_join_order() {
    let s = fresh();
    // Inserted out of join order on purpose: +3 joined first.
    s.import_members(
        &[
            member("+1", "Paris", 20, Some("sim0")),
            member("+2", "Lyon", 30, Some("sim1")),
            member("+3", "Paris", 10, None),
            member("+4", "Paris", 40, Some("sim1")),
        ],
        5,
    )
    .unwrap();
    s.record_consent(
        "+4",
        ConsentEvent::OptedOut,
        Some("STOP"),
        ConsentSource::Sms,
        6,
    )
    .unwrap();
    let paris = Segment {
        city: Some("paris".into()),
        ..Segment::default()
    };
    let mut seen = Vec::new();
    let (b, inserted) = s
        .create_broadcast_streamed("Hi {name}", "city=paris", None, &paris, 100, |m, sup| {
            seen.push((m.number.clone(), sup));
            (!sup).then(|| NewOutbox {
                modem_pref: m.home_modem.clone(),
                ..NewOutbox::new(
                    m.number.clone(),
                    format!("Hi {}", m.number),
                    MessageKind::Bulk,
                    100,
                )
            })
        })
        .unwrap()
        .expect("rows were produced");
    assert_eq!(
        seen,
        [
            ("+3".to_string(), false),
            ("+1".to_string(), false),
            ("+4".to_string(), true)
        ]
    );
    assert_eq!(inserted, 2);
    let bc = s.broadcast(b).unwrap();
    assert_eq!(
        (
            bc.state,
            bc.total,
            bc.template.as_str(),
            bc.segment.as_str()
        ),
        (BroadcastState::Running, 2, "Hi {name}", "city=paris")
    );
    let mut rows = s.list_outbox(None, Some(b), 10).unwrap();
    rows.reverse(); // list_outbox is newest first
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.to_number.as_str(),
                r.text.as_str(),
                r.modem_pref.as_deref(),
                r.state,
                r.broadcast_id,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("+3", "Hi +3", None, OutboxState::Queued, Some(b)),
            ("+1", "Hi +1", Some("sim0"), OutboxState::Queued, Some(b)),
        ],
        "ids follow join order"
    );
    // Scheduled in the future: the broadcast is `scheduled`.
    let (b2, _) = s
        .create_broadcast_streamed("x", "*", Some(500), &Segment::default(), 100, |m, _| {
            Some(NewOutbox::new(
                m.number.clone(),
                "x",
                MessageKind::Bulk,
                100,
            ))
        })
        .unwrap()
        .unwrap();
    assert_eq!(s.broadcast(b2).unwrap().state, BroadcastState::Scheduled);
    // The store still refuses to queue to a suppressed number whatever the caller says.
    assert_eq!(s.broadcast_progress(b2).unwrap().cancelled, 1);
}

/// Nothing is left behind when no member is a recipient, or when an insert fails part way:
/// the broadcast row and the rows before the failure roll back together.
#[test]
fn streamed_broadcast_is_all_or_nothing() {
    let s = fresh();
    let all: Vec<_> = (0..50)
        .map(|i| member(&format!("+1555{i:04}"), "Paris", i, None))
        .collect();
    s.import_members(&all, 1).unwrap();
    let none = s
        .create_broadcast_streamed("t", "*", None, &Segment::default(), 10, |_, _| None)
        .unwrap();
    assert_eq!(none, None);
    assert!(s.broadcasts(10).unwrap().is_empty());

    let mut n = 0;
    let err = s
        .create_broadcast_streamed("t", "*", None, &Segment::default(), 10, |m, _| {
            n += 1;
            // The 40th copy has no recipient: the store refuses it mid-stream.
            let to = if n == 40 {
                String::new()
            } else {
                m.number.clone()
            };
            Some(NewOutbox::new(to, "t", MessageKind::Bulk, 10))
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    assert_eq!(n, 40, "the scan stops at the failure");
    assert!(s.broadcasts(10).unwrap().is_empty());
    assert_eq!(s.state_counts().unwrap().total(), 0);
    // The store is usable afterwards (the transaction was rolled back, not left open).
    let (b, inserted) = s
        .create_broadcast_streamed("t", "*", None, &Segment::default(), 11, |m, _| {
            Some(NewOutbox::new(m.number.clone(), "t", MessageKind::Bulk, 11))
        })
        .unwrap()
        .unwrap();
    assert_eq!((inserted, s.broadcast(b).unwrap().total), (50, 50));
}

#[test]
fn home_modem_counts_group_members_by_home() {
    let s = fresh();
    s.import_members(
        &[
            member("+1", "a", 1, Some("sim0")),
            member("+2", "a", 2, Some("sim1")),
            member("+3", "a", 3, Some("sim1")),
            member("+4", "a", 4, None),
        ],
        5,
    )
    .unwrap();
    assert_eq!(
        s.home_modem_counts().unwrap(),
        [("sim0".to_string(), 1), ("sim1".to_string(), 2)]
    );
}

#[test]
fn for_each_queued_in_broadcast_joins_the_member_zone_and_skips_other_states() {
    let s = fresh();
    s.add_member(
        &crate::store::NewMember {
            number: "+15550001".into(),
            time_zone: Some("America/Chicago".into()),
            joined_at: 1,
            ..crate::store::NewMember::default()
        },
        ConsentSource::Cli,
        1,
    )
    .unwrap();
    let mut rows = Vec::new();
    for (to, home) in [
        ("+15550001", Some("m1")),
        ("+15550002", None),
        ("+15550003", Some("m2")),
    ] {
        let mut r = NewOutbox::new(to, format!("hi {to}"), MessageKind::Bulk, 10);
        r.modem_pref = home.map(str::to_string);
        rows.push(r);
    }
    let (b, _) = s.create_broadcast("hi", "all", None, &rows, 10).unwrap();
    // One row leaves the queue: it must not be listed.
    let claimed = s.claim_next_routed("m2", 20, &ANY).unwrap().expect("a row");
    // Another broadcast's rows are not listed either.
    s.create_broadcast(
        "x",
        "all",
        None,
        &[msg("+15550009", MessageKind::Bulk, 10)],
        10,
    )
    .unwrap();
    let mut seen = Vec::new();
    s.for_each_queued_in_broadcast(b, |modem, zone, text| {
        seen.push((
            modem.map(str::to_string),
            zone.map(str::to_string),
            text.to_string(),
        ))
    })
    .unwrap();
    seen.sort();
    let mut expected: Vec<(Option<String>, Option<String>, String)> = vec![
        (
            Some("m1".into()),
            Some("America/Chicago".into()),
            "hi +15550001".into(),
        ),
        (None, None, "hi +15550002".into()),
        (Some("m2".into()), None, "hi +15550003".into()),
    ];
    expected.retain(|e| e.2 != claimed.text);
    expected.sort();
    assert_eq!(seen, expected);
}
}
}

/// Tests that are about SQLite itself: its file with synchronous=FULL, its query planner.
mod sqlite_only_tests {
    use super::*;

    /// 100,000 broadcast rows in one transaction, on a file with synchronous=FULL.
    #[test]
    fn enqueue_100k_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("g.db")).unwrap();
        let rows: Vec<_> = (0..100_000)
            .map(|i| msg(&format!("+1555{i:07}"), MessageKind::Bulk, 1))
            .collect();
        let started = std::time::Instant::now();
        let (b, inserted) = s.create_broadcast("t", "all", None, &rows, 1).unwrap();
        let elapsed = started.elapsed();
        eprintln!(
            "enqueued {inserted} broadcast rows in {elapsed:?} (build profile: {})",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
        assert_eq!(inserted, 100_000);
        assert_eq!(s.broadcast(b).unwrap().total, 100_000);
        // The budget is for the release build; unoptimised debug builds get a generous margin.
        let budget = if cfg!(debug_assertions) { 20.0 } else { 2.0 };
        assert!(elapsed.as_secs_f64() < budget, "{elapsed:?}");
        // Claiming from a big queue stays an index lookup.
        let started = std::time::Instant::now();
        for _ in 0..100 {
            s.claim_next_routed("m0", 2, &ANY).unwrap().unwrap();
        }
        eprintln!("100 claims from a 100k queue in {:?}", started.elapsed());
    }

    #[test]
    fn due_query_uses_the_partial_index() {
        let s = Store::open_in_memory().unwrap();
        let plan: Vec<String> = s
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {ROUTED_CANDIDATE_SQL}"))
            .unwrap()
            .query_map(params![0, "m0", "[]", "[]"], |r| r.get(3))
            .unwrap()
            .collect::<crate::store::db::DbResult<_>>()
            .unwrap();
        assert!(plan.iter().any(|p| p.contains("outbox_due")), "{plan:?}");
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
    }
}
