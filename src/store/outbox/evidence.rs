//! What is known about a submit that may have been in flight at a crash, and how a status report
//! that arrives later settles it: the runner calls [`Store::begin_submit`] just before each
//! `AT+CMGS`, which stores on the row the part, the modem, the time and the reference the modem
//! is expected to give the submit; [`Store::record_part_sent`] stores every `+CMGS: <mr>` as the
//! modem's last reference (`modem_refs`, see `store::modems`).
//!
//! Why a prediction is sound: the gateway's PDUs carry TP-MR 0 and the modem assigns the
//! reference itself, one more than its last one per SMS-SUBMIT, modulo 256 (3GPP TS 23.040
//! §9.2.3.6; docs/simulator.md for the simulator). One command is in flight per modem, so the
//! submit interrupted by a crash got the modem's last recorded reference plus one. A report is
//! matched to an in-doubt row only on the same modem, with that reference and the row's
//! recipient (the three together), within the report window; anything else leaves the row in
//! doubt. A modem that spent a reference on a submit that failed (`+CMS ERROR`) shifts the
//! prediction by one: the report then matches nothing and the row stays in doubt — the
//! prediction can miss, it cannot resolve the wrong row, because the recipient must match too.
//!
//! It must not decide what an in-doubt row that nobody reported on becomes: that is the
//! recovery policy's and a person's choice (`recovery`).

use crate::store::db::{Conn, OptionalExtension, params};

use super::{OutboxState, state_of, transition};
use crate::store::modems::last_mr_in;
use crate::store::{Result, SqlContext, Store};

/// The submit last started for a row (`begin_submit`), as stored on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubmitEvidence {
    pub modem: String,
    /// Part number (1-based) and the row's part count.
    pub part: u8,
    pub total: u8,
    /// Unix ms when `AT+CMGS` was about to be sent.
    pub started_at: i64,
    /// The reference the modem was expected to give it; `None` when the modem's last reference
    /// was unknown (it had never sent before).
    pub expected_mr: Option<u8>,
}

/// An in-doubt row whose interrupted submit is expected to carry a given reference.
pub(super) struct Predicted {
    pub id: i64,
    pub part: u8,
    pub total: u8,
    pub to: String,
    pub at: i64,
}

/// In-doubt rows whose interrupted submit on `modem` is expected to carry reference `mr`,
/// started at or after `since`, and whose in-flight part has no recorded reference. The
/// evidence must belong to the claim the crash interrupted (same modem, started after it was
/// claimed): evidence left by an earlier attempt that failed and was retried proves nothing.
pub(super) fn predicted(tx: &Conn, modem: &str, mr: u8, since: i64) -> Result<Vec<Predicted>> {
    tx.prepare_cached(
        "SELECT o.id, o.submit_part, o.submit_total, o.to_number, o.submit_at
         FROM outbox o
         WHERE o.state = 'in_doubt' AND o.submit_modem = ?1 AND o.submit_mr = ?2
           AND o.submit_at >= ?3 AND o.submit_part IS NOT NULL AND o.submit_total IS NOT NULL
           AND o.submit_modem = o.claimed_by AND o.submit_at >= o.claimed_at
           AND NOT EXISTS (SELECT 1 FROM outbox_parts p
                           WHERE p.outbox_id = o.id AND p.part = o.submit_part)",
    )
    .and_then(|mut st| {
        st.query_map(params![modem, mr, since], |r| {
            Ok(Predicted {
                id: r.get(0)?,
                part: r.get(1)?,
                total: r.get(2)?,
                to: r.get(3)?,
                at: r.get(4)?,
            })
        })?
        .collect::<crate::store::db::DbResult<_>>()
    })
    .ctx("matching a status report to an in-doubt row")
}

/// A status report proved that the in-flight part of in-doubt row `p` reached the network:
/// record the part (and count it in the send log, at the time it was submitted), and when every
/// part is now recorded the row was sent — `in_doubt → sent`, then settled by the report like
/// any sent row (delivered, failed, or sent while the network still tries). A row with parts
/// never submitted stays in doubt, now with the parts that did arrive recorded, so a resend
/// skips them. Returns the row's state afterwards.
pub(super) fn resolve_predicted(
    tx: &Conn,
    p: &Predicted,
    modem: &str,
    mr: u8,
) -> Result<OutboxState> {
    tx.exec_cached(
        "INSERT INTO outbox_parts (outbox_id, part, total, modem, mr, sent_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![p.id, p.part, p.total, modem, mr, p.at],
    )
    .ctx("recording a part proven by its status report")?;
    tx.exec_cached(
        "INSERT INTO send_log (modem, to_number, outbox_id, at) VALUES (?1, ?2, ?3, ?4)",
        params![modem, p.to, p.id, p.at],
    )
    .ctx("logging a send")?;
    let recorded: i64 = tx
        .query_row_cached(
            "SELECT count(*) FROM outbox_parts WHERE outbox_id = ?1 AND total = ?2",
            params![p.id, p.total],
            |r| r.get(0),
        )
        .ctx("counting recorded parts")?;
    if recorded >= i64::from(p.total) {
        transition(
            tx,
            p.id,
            "mark sent by its status report",
            "UPDATE outbox SET state = 'sent', sent_at = ?2,
                               last_error = 'in flight at restart; sent, proven by its status report'
             WHERE id = ?1 AND state = 'in_doubt'",
            params![p.id, p.at],
        )?;
    }
    state_of(tx, p.id)
}

impl Store {
    /// Called just before `AT+CMGS` for part `part` of `total` of a claimed row: stores on the
    /// row the modem, the part, the time and the reference the modem is expected to give it
    /// (its last reference plus one), so that a crash before `+CMGS:` is recorded leaves the
    /// evidence a later status report is matched with. Returns that expected reference.
    pub fn begin_submit(&self, id: i64, part: u8, total: u8, now: i64) -> Result<Option<u8>> {
        self.write("recording a submit", |tx| {
            let modem: Option<String> = tx
                .query_row_cached(
                    "SELECT claimed_by FROM outbox WHERE id = ?1 AND state = 'claimed'",
                    params![id],
                    |r| r.get(0),
                )
                .optional()
                .ctx("recording a submit")?
                .flatten();
            let expected = match &modem {
                Some(m) => last_mr_in(tx, m)?.map(|mr| mr.wrapping_add(1)),
                None => None,
            };
            transition(
                tx,
                id,
                "record a submit",
                "UPDATE outbox SET submit_modem = claimed_by, submit_part = ?2,
                                   submit_total = ?3, submit_at = ?4, submit_mr = ?5
                 WHERE id = ?1 AND state = 'claimed' AND claimed_by IS NOT NULL",
                params![id, part, total, now, expected],
            )?;
            Ok(expected)
        })
    }

    /// What the row's submit under its current claim was (`None` when none was recorded: not
    /// submitted under this claim, or by a build that did not record it).
    pub fn submit_evidence(&self, id: i64) -> Result<Option<SubmitEvidence>> {
        self.conn()
            .query_row_cached(
                "SELECT submit_modem, submit_part, submit_total, submit_at, submit_mr
                 FROM outbox WHERE id = ?1 AND submit_modem IS NOT NULL
                   AND submit_part IS NOT NULL AND submit_total IS NOT NULL
                   AND submit_at IS NOT NULL
                   AND submit_modem = claimed_by AND submit_at >= claimed_at",
                params![id],
                |r| {
                    Ok(SubmitEvidence {
                        modem: r.get(0)?,
                        part: r.get(1)?,
                        total: r.get(2)?,
                        started_at: r.get(3)?,
                        expected_mr: r.get(4)?,
                    })
                },
            )
            .optional()
            .ctx("reading a row's submit")
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Again on the module itself: the attribute above is gone once the macro has expanded, and
// clippy's allow-unwrap-in-tests recognises a test module by it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ClaimRoute, MessageKind, NewOutbox, RecoveryPolicy};

    const ANY: ClaimRoute = ClaimRoute {
        pool: Vec::new(),
        takeover: Vec::new(),
    };
    const A: &str = "+33612345678";

    /// Claims the next due row on `modem`, records `done` parts with their references, starts
    /// the submit of the next part and returns (id, expected reference).
    fn start(s: &Store, modem: &str, total: u8, done: &[u8], now: i64) -> (i64, Option<u8>) {
        let row = s.claim_next_routed(modem, now, &ANY).unwrap().unwrap();
        for (i, &mr) in done.iter().enumerate() {
            s.record_part_sent(row.id, i as u8 + 1, total, mr, now)
                .unwrap();
        }
        let part = done.len() as u8 + 1;
        (row.id, s.begin_submit(row.id, part, total, now).unwrap())
    }

    fn enqueue(s: &Store, to: &str, now: i64) -> i64 {
        s.enqueue(&NewOutbox::new(to, "hi", MessageKind::Bulk, now))
            .unwrap()
    }

    fn crash(s: &Store, now: i64) {
        let r = s
            .recover_after_restart(&RecoveryPolicy::default(), now)
            .unwrap();
        assert!(r.left_in_doubt > 0);
    }

    #[test]
    fn the_report_with_the_predicted_reference_resolves_an_in_doubt_row() {
        let s = fresh();
        enqueue(&s, "+33600000001", 1);
        let a = enqueue(&s, A, 2);
        // An earlier send on m0 answered `+CMGS: 16`: the next submit on m0 should get 17.
        let (first, _) = start(&s, "m0", 1, &[], 10);
        s.record_part_sent(first, 1, 1, 16, 11).unwrap();
        s.mark_sent(first, 12).unwrap();
        assert_eq!(s.modem_last_mr("m0").unwrap(), Some(16));
        let (id, expected) = start(&s, "m0", 1, &[], 20);
        assert_eq!((id, expected), (a, Some(17)));
        crash(&s, 30);
        let e = s.submit_evidence(a).unwrap().unwrap();
        assert_eq!(
            e,
            SubmitEvidence {
                modem: "m0".into(),
                part: 1,
                total: 1,
                started_at: 20,
                expected_mr: Some(17),
            }
        );

        // Another number, another reference, another modem, or no recipient: untouched.
        assert_eq!(
            s.status_report("m0", 17, "+33699999999", 0, 40).unwrap(),
            None
        );
        assert_eq!(s.status_report("m0", 18, A, 0, 41).unwrap(), None);
        assert_eq!(s.status_report("m1", 17, A, 0, 42).unwrap(), None);
        assert_eq!(s.status_report("m0", 17, "", 0, 43).unwrap(), None);
        assert_eq!(s.outbox_row(a).unwrap().state, OutboxState::InDoubt);
        assert!(s.outbox_parts(a).unwrap().is_empty());

        // The recipient in national format, the predicted reference: delivered.
        let m = s
            .status_report("m0", 17, "0612345678", 0, 50)
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.outbox_id, m.part, m.state, m.resolved_in_doubt),
            (a, 1, OutboxState::Delivered, true)
        );
        let row = s.outbox_row(a).unwrap();
        assert_eq!((row.sent_at, row.delivered_at), (Some(20), Some(50)));
        let parts = s.outbox_parts(a).unwrap();
        assert_eq!((parts[0].mr, parts[0].sent_at), (17, 20));
        // A repeated report now matches the recorded part, not a prediction.
        let again = s.status_report("m0", 17, A, 0, 60).unwrap().unwrap();
        assert!(!again.resolved_in_doubt);
    }

    #[test]
    fn pending_and_failed_reports_settle_the_row_like_a_sent_one() {
        let s = fresh();
        let warm = enqueue(&s, "+33600000001", 1);
        let a = enqueue(&s, A, 2);
        let (w, _) = start(&s, "m0", 1, &[], 5);
        assert_eq!(w, warm);
        s.record_part_sent(w, 1, 1, 255, 6).unwrap();
        s.mark_sent(w, 6).unwrap();
        let (id, expected) = start(&s, "m0", 1, &[], 10);
        assert_eq!(
            (id, expected),
            (a, Some(0)),
            "255 + 1 wraps to 0 (TS 23.040 §9.2.3.6)"
        );
        crash(&s, 20);
        // 0x20: temporary error, the SC still trying — the network has it: sent.
        let m = s.status_report("m0", 0, A, 0x20, 30).unwrap().unwrap();
        assert_eq!((m.state, m.resolved_in_doubt), (OutboxState::Sent, true));
        // A later permanent error for the same part: failed.
        let m = s.status_report("m0", 0, A, 0x41, 31).unwrap().unwrap();
        assert_eq!(m.state, OutboxState::Failed);
    }

    #[test]
    fn a_multipart_row_resolves_only_when_every_part_is_known() {
        let s = fresh();
        let a = enqueue(&s, A, 1);
        let b = enqueue(&s, "+33622222222", 1);
        // Part 1 of 2 accepted as 20, part 2 in flight: expected 21.
        let (id, expected) = start(&s, "m0", 2, &[20], 10);
        assert_eq!((id, expected), (a, Some(21)));
        // On m1, part 1 of 3 in flight, nothing known of the modem before (first send ever).
        let (id_b, unknown) = start(&s, "m1", 3, &[], 10);
        assert_eq!((id_b, unknown), (b, None));
        crash(&s, 20);
        let m = s.status_report("m0", 21, A, 0, 30).unwrap().unwrap();
        assert_eq!((m.part, m.state), (2, OutboxState::Sent));
        let m = s.status_report("m0", 20, A, 0, 31).unwrap().unwrap();
        assert_eq!(m.state, OutboxState::Delivered);
        // No prediction for m1: whatever reference a report carries, the row stays in doubt.
        for mr in [0u8, 1, 255] {
            assert_eq!(
                s.status_report("m1", mr, "+33622222222", 0, 40).unwrap(),
                None
            );
        }
        assert_eq!(s.outbox_row(b).unwrap().state, OutboxState::InDoubt);
    }

    #[test]
    fn a_part_in_flight_before_unsent_parts_is_recorded_and_the_row_stays_in_doubt() {
        let s = fresh();
        let warm = enqueue(&s, "+33600000009", 1);
        let a = enqueue(&s, A, 2);
        let (w, _) = start(&s, "m0", 1, &[], 5);
        assert_eq!(w, warm);
        s.record_part_sent(w, 1, 1, 99, 6).unwrap();
        s.mark_sent(w, 6).unwrap();
        let (id, expected) = start(&s, "m0", 3, &[], 10);
        assert_eq!((id, expected), (a, Some(100)));
        crash(&s, 20);
        let m = s.status_report("m0", 100, A, 0, 30).unwrap().unwrap();
        assert_eq!(
            (m.part, m.state, m.resolved_in_doubt),
            (1, OutboxState::InDoubt, true)
        );
        // Part 1 is now known, so a resend skips it; parts 2 and 3 were never submitted.
        let parts = s.outbox_parts(a).unwrap();
        assert_eq!((parts.len(), parts[0].mr), (1, 100));
    }

    #[test]
    fn a_later_recorded_send_with_the_same_reference_wins_over_the_prediction() {
        let s = fresh();
        let a = enqueue(&s, A, 1);
        let (w, _) = start(&s, "m0", 1, &[], 1);
        assert_eq!(w, a);
        s.record_part_sent(w, 1, 1, 9, 2).unwrap();
        s.mark_sent(w, 2).unwrap();
        // A direct message to the same number, in flight at the crash with expected 10.
        let d = s
            .enqueue(&NewOutbox::new(A, "again", MessageKind::Direct, 3))
            .unwrap();
        let (id, e) = start(&s, "m0", 1, &[], 5);
        assert_eq!((id, e), (d, Some(10)));
        crash(&s, 6);
        // The modem never got it; after the restart a reply to the same number took 10.
        let r = s
            .enqueue(&NewOutbox::new(A, "reply", MessageKind::Reply, 7))
            .unwrap();
        let (id, _) = start(&s, "m0", 1, &[], 8);
        assert_eq!(id, r);
        s.record_part_sent(r, 1, 1, 10, 9).unwrap();
        s.mark_sent(r, 9).unwrap();
        let m = s.status_report("m0", 10, A, 0, 20).unwrap().unwrap();
        assert_eq!((m.outbox_id, m.resolved_in_doubt), (r, false));
        assert_eq!(s.outbox_row(d).unwrap().state, OutboxState::InDoubt);
    }

    #[test]
    fn evidence_of_an_earlier_failed_attempt_proves_nothing() {
        let s = fresh();
        let warm = enqueue(&s, "+33600000009", 1);
        let a = enqueue(&s, A, 1);
        let (w, _) = start(&s, "m0", 1, &[], 2);
        assert_eq!(w, warm);
        s.record_part_sent(w, 1, 1, 30, 3).unwrap();
        s.mark_sent(w, 3).unwrap();
        // Attempt 1 on m0 expected 31 and failed (`+CMS ERROR`); retried at once.
        let (id, e) = start(&s, "m0", 1, &[], 5);
        assert_eq!((id, e), (a, Some(31)));
        s.mark_retry(a, "+CMS ERROR: 500", 6).unwrap();
        // Attempt 2 claimed on m1; the crash comes before its submit started.
        let again = s.claim_next_routed("m1", 7, &ANY).unwrap().unwrap();
        assert_eq!(again.id, a);
        crash(&s, 8);
        assert_eq!(s.submit_evidence(a).unwrap(), None);
        assert_eq!(s.status_report("m0", 31, A, 0, 9).unwrap(), None);
        assert_eq!(s.outbox_row(a).unwrap().state, OutboxState::InDoubt);
    }

    #[test]
    fn a_submit_is_recorded_only_on_a_claimed_row() {
        let s = fresh();
        let a = enqueue(&s, A, 1);
        assert!(s.begin_submit(a, 1, 1, 2).is_err());
        assert_eq!(s.submit_evidence(a).unwrap(), None);
    }
}
}
