//! The `sims` table (migration 0012): what the gateway knows about each SIM by its ICCID — where
//! it sits, its own number, its last balance and keep-alive — and the one place that moves a
//! SIM's rows when it changes slots (docs/modems.md, "SIM identity").
//!
//! Why rename rows instead of keying them by ICCID: send counts (`send_log.modem`), homes
//! (`members.home_modem`), sticky senders (`outbox.modem_pref`) and history (`messages_in`,
//! `calls`, settled outbox rows) are read by many queries under the configured modem name. A SIM
//! moving is rare, so [`Store::record_sim`] renames its rows to its new slot in one transaction
//! and every reader stays as it was. A SIM pushed out of its slot by another is parked under
//! `sim:<ICCID>` until it appears again. Sent parts (`outbox_parts.modem`) and the submit of an
//! in-doubt row (`outbox.submit_modem`) move too, because a status report is addressed to the
//! SIM that sent (3GPP TS 23.040: the service centre returns it to the mobile that submitted), so it
//! arrives through whichever slot holds that SIM now and is matched by that slot's name
//! (`Store::status_report`); only a report left in the stick's own memory across a swap comes
//! through the old slot, and the match looks there under the slot's previous SIM. What stays
//! with the hardware path is left alone: the modem's own reference counter (`modem_refs`, which
//! the modem, not the SIM, advances) and half-reassembled inbound parts. Rows claimed right now keep their `claimed_by` and submit so the runner that
//! holds them settles them. It must not decide anything about sending or timing.

use crate::store::db::{Conn, OptionalExtension, Row, params};
use serde_json::json;

use super::{ModemIdentity, Result, SqlContext, Store, StoreError};

/// One row of `sims`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SimRow {
    pub iccid: String,
    /// The name the SIM's rows are kept under: its modem's name, or `sim:<ICCID>` while parked.
    pub key: String,
    pub imsi: Option<String>,
    pub own_number: Option<String>,
    /// The configured modem it was last seen in.
    pub modem: Option<String>,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub last_sent_at: Option<i64>,
    pub keepalive_at: Option<i64>,
    pub balance: Option<f64>,
    pub balance_text: Option<String>,
    pub balance_at: Option<i64>,
    pub balance_low: bool,
}

/// A different SIM than last time in a configured slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimChange {
    pub modem: String,
    pub previous_iccid: String,
    pub iccid: String,
    /// The configured modem the new SIM was last seen in, if it was seen before.
    pub moved_from: Option<String>,
}

const COLUMNS: &str = "iccid, key, imsi, own_number, modem, first_seen_at, last_seen_at, \
                       last_sent_at, keepalive_at, balance, balance_text, balance_at, balance_low";

fn from_row(r: &Row<'_>) -> crate::store::db::DbResult<SimRow> {
    Ok(SimRow {
        iccid: r.get(0)?,
        key: r.get(1)?,
        imsi: r.get(2)?,
        own_number: r.get(3)?,
        modem: r.get(4)?,
        first_seen_at: r.get(5)?,
        last_seen_at: r.get(6)?,
        last_sent_at: r.get(7)?,
        keepalive_at: r.get(8)?,
        balance: r.get(9)?,
        balance_text: r.get(10)?,
        balance_at: r.get(11)?,
        balance_low: r.get::<i64>(12)? != 0,
    })
}

/// The parking key of a SIM that lost its slot.
pub fn parked_key(iccid: &str) -> String {
    format!("sim:{iccid}")
}

/// Renames every SIM-owned row from key `from` to `to` (see the module doc for which).
fn rekey(tx: &Conn, from: &str, to: &str) -> Result<()> {
    const STATEMENTS: [&str; 9] = [
        "UPDATE send_log SET modem = ?2 WHERE modem = ?1",
        "UPDATE outbox_parts SET modem = ?2 WHERE modem = ?1",
        // Together with `claimed_by` below, so an in-doubt row's evidence still belongs to its
        // claim (`evidence::predicted` requires both to name the same modem).
        "UPDATE outbox SET submit_modem = ?2 WHERE submit_modem = ?1 AND state <> 'claimed'",
        "UPDATE members SET home_modem = ?2 WHERE home_modem = ?1",
        "UPDATE members SET home_reason_modem = ?2 WHERE home_reason_modem = ?1",
        "UPDATE outbox SET modem_pref = ?2 WHERE modem_pref = ?1",
        "UPDATE outbox SET claimed_by = ?2 WHERE claimed_by = ?1 AND state <> 'claimed'",
        // The de-duplication key (`messages_in_single_dedup`) includes the modem: a collision
        // means the same message was stored under both names, and the copy left behind changes
        // nothing. Skipped by the condition, not `UPDATE OR IGNORE`, which PostgreSQL lacks.
        "UPDATE messages_in SET modem = ?2 WHERE modem = ?1
           AND NOT EXISTS (SELECT 1 FROM messages_in d
                           WHERE d.modem = ?2 AND d.sender = messages_in.sender
                             AND d.scts = messages_in.scts AND d.body_key IS NOT NULL
                             AND d.body_key = messages_in.body_key)",
        "UPDATE calls SET modem = ?2 WHERE modem = ?1",
    ];
    for sql in STATEMENTS {
        tx.execute(sql, params![from, to])
            .ctx("moving a SIM's rows")?;
    }
    Ok(())
}

fn sim_in(tx: &Conn, iccid: &str) -> Result<Option<SimRow>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM sims WHERE iccid = ?1"),
        params![iccid],
        from_row,
    )
    .optional()
    .ctx("reading a SIM")
}

impl Store {
    /// Records what modem `id.name` reported at init: its identity row and, when it read an
    /// ICCID, the SIM — moving the SIM's rows to this modem if it was seen elsewhere, parking
    /// the rows of a SIM that sat here before, and journaling a `sim_changed` event when the
    /// slot's ICCID differs from the last one (all in one transaction). Returns that change.
    pub fn record_sim(&self, id: &ModemIdentity, now: i64) -> Result<Option<SimChange>> {
        if id.name.is_empty() {
            return Err(StoreError::InvalidArgument("empty modem name".into()));
        }
        self.write("recording a SIM", |tx| {
            let previous: Option<String> = tx
                .query_row(
                    "SELECT iccid FROM modems WHERE name = ?1",
                    params![&id.name],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading a modem")?
                .flatten();
            let Some(iccid) = id.iccid.as_deref().filter(|i| !i.is_empty()) else {
                // No ICCID read: the slot's SIM is unknown, its rows stay where they are.
                upsert_identity(tx, id, previous.as_deref(), None, now)?;
                return Ok(None);
            };
            let known = sim_in(tx, iccid)?;
            if known.as_ref().map(|s| s.key.as_str()) != Some(id.name.as_str()) {
                let occupant: Option<String> = tx
                    .query_row(
                        "SELECT iccid FROM sims WHERE key = ?1 AND iccid <> ?2",
                        params![id.name, iccid],
                        |r| r.get(0),
                    )
                    .optional()
                    .ctx("reading a SIM")?;
                if let Some(other) = occupant {
                    let parked = parked_key(&other);
                    rekey(tx, &id.name, &parked)?;
                    tx.execute(
                        "UPDATE sims SET key = ?2 WHERE iccid = ?1",
                        params![other, parked],
                    )
                    .ctx("parking a SIM")?;
                }
                if let Some(k) = known.as_ref() {
                    rekey(tx, &k.key, &id.name)?;
                }
            }
            tx.execute(
                "INSERT INTO sims (iccid, key, imsi, own_number, modem, first_seen_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?2, ?5, ?5)
                 ON CONFLICT (iccid) DO UPDATE SET key = excluded.key, modem = excluded.modem,
                     imsi = coalesce(excluded.imsi, sims.imsi),
                     own_number = coalesce(excluded.own_number, sims.own_number),
                     last_seen_at = excluded.last_seen_at",
                params![iccid, id.name, id.imsi, id.own_number, now],
            )
            .ctx("recording a SIM")?;
            let change = match previous {
                Some(p) if p != iccid => Some(SimChange {
                    modem: id.name.clone(),
                    previous_iccid: p,
                    iccid: iccid.to_string(),
                    moved_from: known.and_then(|k| k.modem).filter(|m| *m != id.name),
                }),
                _ => None,
            };
            upsert_identity(
                tx,
                id,
                change.as_ref().map(|c| c.previous_iccid.as_str()),
                Some(iccid),
                now,
            )?;
            if let Some(c) = &change {
                let data = json!({
                    "modem": c.modem,
                    "iccid": c.iccid,
                    "previous_iccid": c.previous_iccid,
                    "moved_from": c.moved_from,
                });
                tx.execute(
                    "INSERT INTO events (type, at, data) VALUES ('sim_changed', ?1, json(?2))",
                    params![now, data.to_string()],
                )
                .ctx("journaling a SIM change")?;
            }
            Ok(change)
        })
    }

    /// One SIM by ICCID.
    pub fn sim(&self, iccid: &str) -> Result<Option<SimRow>> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM sims WHERE iccid = ?1"),
                params![iccid],
                from_row,
            )
            .optional()
            .ctx("reading a SIM")
    }

    /// Every SIM, by ICCID.
    pub fn sims(&self) -> Result<Vec<SimRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!("SELECT {COLUMNS} FROM sims ORDER BY iccid"))
            .ctx("listing SIMs")?;
        st.query_map(params![], from_row)
            .ctx("listing SIMs")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("listing SIMs")
    }

    /// Carries the SIM's newest send over from `send_log` (pruned after two days) into
    /// `sims.last_sent_at`, and returns the SIM. Called more often than the log is pruned, so no
    /// send is missed.
    pub fn refresh_sim_last_sent(&self, iccid: &str) -> Result<Option<SimRow>> {
        self.write("noting a SIM's last send", |tx| {
            tx.execute(
                "UPDATE sims SET last_sent_at = max(coalesce(last_sent_at, 0),
                     coalesce((SELECT max(at) FROM send_log WHERE modem = sims.key), 0))
                 WHERE iccid = ?1
                   AND EXISTS (SELECT 1 FROM send_log WHERE modem = sims.key)",
                params![iccid],
            )
            .ctx("noting a SIM's last send")?;
            sim_in(tx, iccid)
        })
    }

    /// Records a keep-alive made for the SIM at `now`.
    pub fn record_keepalive(&self, iccid: &str, now: i64) -> Result<()> {
        self.write("recording a keep-alive", |tx| {
            tx.execute(
                "UPDATE sims SET keepalive_at = ?2 WHERE iccid = ?1",
                params![iccid, now],
            )
            .ctx("recording a keep-alive")?;
            Ok(())
        })
    }

    /// Records a balance read on `modem`; with a `threshold`, journals a `low_balance` event when
    /// the balance falls below it and the last reading did not (once per crossing). Returns
    /// whether it did.
    pub fn record_balance(
        &self,
        iccid: &str,
        modem: &str,
        balance: f64,
        text: &str,
        threshold: Option<f64>,
        now: i64,
    ) -> Result<bool> {
        self.write("recording a balance", |tx| {
            let was_low = sim_in(tx, iccid)?.is_some_and(|s| s.balance_low);
            let low = threshold.is_some_and(|t| balance < t);
            tx.execute(
                "UPDATE sims SET balance = ?2, balance_text = ?3, balance_at = ?4,
                                 balance_low = ?5
                 WHERE iccid = ?1",
                params![iccid, balance, text, now, low],
            )
            .ctx("recording a balance")?;
            let crossed = low && !was_low;
            if crossed {
                let data = json!({
                    "modem": modem,
                    "iccid": iccid,
                    "balance": balance,
                    "threshold": threshold,
                    "text": text,
                });
                tx.execute(
                    "INSERT INTO events (type, at, data) VALUES ('low_balance', ?1, json(?2))",
                    params![now, data.to_string()],
                )
                .ctx("journaling a low balance")?;
            }
            Ok(crossed)
        })
    }
}

/// Writes the modem's identity row; `changed_from` is the slot's previous ICCID when a different
/// SIM appeared now (kept for `modems` until the next change).
fn upsert_identity(
    tx: &Conn,
    id: &ModemIdentity,
    changed_from: Option<&str>,
    iccid: Option<&str>,
    now: i64,
) -> Result<()> {
    let changed = iccid.is_some() && changed_from.is_some();
    // The old values are named `modems.x`: in an upsert PostgreSQL finds a bare `x` ambiguous
    // between the row and `excluded`.
    tx.execute(
        "INSERT INTO modems (name, iccid, imsi, imei, own_number, profile, last_seen_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (name) DO UPDATE SET
             iccid = coalesce(excluded.iccid, modems.iccid),
             imsi = coalesce(excluded.imsi, modems.imsi),
             imei = coalesce(excluded.imei, modems.imei),
             own_number = CASE WHEN ?8 THEN excluded.own_number
                               ELSE coalesce(excluded.own_number, modems.own_number) END,
             profile = coalesce(excluded.profile, modems.profile),
             previous_iccid = CASE WHEN ?8 THEN ?9 ELSE modems.previous_iccid END,
             sim_changed_at = CASE WHEN ?8 THEN excluded.last_seen_at
                                   ELSE modems.sim_changed_at END,
             last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at",
        params![
            id.name,
            iccid.or(id.iccid.as_deref()),
            id.imsi,
            id.imei,
            id.own_number,
            id.profile,
            now,
            changed,
            changed_from
        ],
    )
    .ctx("recording a modem")?;
    Ok(())
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Inside as well: clippy exempts test helpers only in a module that carries it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        ClaimRoute, ConsentSource, MemberStatus, MessageKind, NewMember, NewOutbox, OutboxState,
    };

    const X: &str = "8900101000000000001";
    const Y: &str = "8900101000000000002";
    const Z: &str = "8900101000000000003";

    fn id(name: &str, iccid: Option<&str>) -> ModemIdentity {
        ModemIdentity {
            name: name.into(),
            iccid: iccid.map(str::to_string),
            imsi: None,
            imei: None,
            own_number: Some(format!("+1555{name}")),
            profile: Some("generic".into()),
        }
    }

    fn send(s: &Store, modem: &str, at: i64) -> i64 {
        send_mr(s, modem, at, 1)
    }

    /// One text to +15550009 sent from `modem` at `at`, its part accepted with TP-MR `mr`.
    fn send_mr(s: &Store, modem: &str, at: i64, mr: u8) -> i64 {
        let mut row = NewOutbox::new("+15550009", "x", MessageKind::Direct, at);
        row.modem_pref = Some(modem.into());
        s.enqueue(&row).unwrap();
        let c = s
            .claim_next_routed(modem, at, &ClaimRoute::default())
            .unwrap()
            .unwrap();
        s.record_part_sent(c.id, 1, 1, mr, at).unwrap();
        s.mark_sent(c.id, at).unwrap();
        c.id
    }

    fn member(s: &Store, number: &str, home: &str) {
        s.add_member(
            &NewMember {
                number: number.into(),
                status: Some(MemberStatus::Active),
                home_modem: Some(home.into()),
                ..NewMember::default()
            },
            ConsentSource::Cli,
            1,
        )
        .unwrap();
    }

    fn homes(s: &Store) -> Vec<(String, u64)> {
        s.home_modem_counts().unwrap()
    }

    fn events(s: &Store, kind: &str) -> Vec<serde_json::Value> {
        s.events_after(0, &[kind.to_string()], 100)
            .unwrap()
            .into_iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    }

    #[test]
    fn a_sim_moved_to_another_modem_takes_its_counts_homes_and_history() {
        let s = fresh();
        assert_eq!(s.record_sim(&id("m0", Some(X)), 10).unwrap(), None);
        assert_eq!(s.record_sim(&id("m1", Some(Y)), 10).unwrap(), None);
        send(&s, "m0", 100);
        send(&s, "m0", 200);
        send(&s, "m1", 300);
        member(&s, "+15550101", "m0");
        member(&s, "+15550102", "m0");
        member(&s, "+15550103", "m1");
        // Swapped: m0 comes up first with Y, then m1 with X.
        let c = s.record_sim(&id("m0", Some(Y)), 1_000).unwrap().unwrap();
        assert_eq!(
            (
                c.previous_iccid.as_str(),
                c.iccid.as_str(),
                c.moved_from.as_deref()
            ),
            (X, Y, Some("m1"))
        );
        // Meanwhile X's rows are parked, Y's are on m0.
        assert_eq!(s.sends_since("m0", 0).unwrap(), 1);
        assert_eq!(s.sends_since(&parked_key(X), 0).unwrap(), 2);
        let c = s.record_sim(&id("m1", Some(X)), 1_001).unwrap().unwrap();
        assert_eq!(c.moved_from.as_deref(), Some("m0"));
        assert_eq!(s.sends_since("m1", 0).unwrap(), 2);
        assert_eq!(s.sends_since("m0", 0).unwrap(), 1);
        assert_eq!(homes(&s), vec![("m0".into(), 1), ("m1".into(), 2)]);
        assert_eq!(s.sim(X).unwrap().unwrap().key, "m1");
        assert_eq!(s.sim(Y).unwrap().unwrap().key, "m0");
        // Both slots changed: two events, and `modems` rows say what was there before.
        let ev = events(&s, "sim_changed");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0]["modem"], "m0");
        assert_eq!(ev[0]["previous_iccid"], X);
        assert_eq!(ev[0]["moved_from"], "m1");
        let m0 = s.modem("m0").unwrap().unwrap();
        assert_eq!(m0.previous_iccid.as_deref(), Some(X));
        assert_eq!(m0.sim_changed_at, Some(1_000));
        assert_eq!(m0.identity.iccid.as_deref(), Some(Y));
        // The same SIMs again at the next start: nothing moves, nothing is raised.
        assert_eq!(s.record_sim(&id("m0", Some(Y)), 2_000).unwrap(), None);
        assert_eq!(s.record_sim(&id("m1", Some(X)), 2_000).unwrap(), None);
        assert_eq!(events(&s, "sim_changed").len(), 2);
        assert_eq!(s.sends_since("m1", 0).unwrap(), 2);
    }

    /// A report the old SIM received into the stick's own memory, drained after a new SIM went
    /// in: matched under the old SIM's key, parked or in its new slot; the new SIM's own
    /// reports match first.
    #[test]
    fn a_report_drained_after_a_swap_settles_the_old_sims_row() {
        let s = fresh();
        let state = |id| s.outbox_row(id).unwrap().state;
        s.record_sim(&id("m0", Some(X)), 10).unwrap();
        let a = send_mr(&s, "m0", 100, 1);
        let b = send_mr(&s, "m0", 200, 2);
        s.record_sim(&id("m0", Some(Z)), 500).unwrap().unwrap();
        let z = send_mr(&s, "m0", 600, 3);
        // X is parked: its report, drained through m0, still finds its row.
        let m = s.status_report("m0", 1, "+15550009", 0, 700).unwrap();
        assert_eq!(m.map(|m| (m.outbox_id, m.state)), Some((a, OutboxState::Delivered)));
        // Z's own report matches at the first look.
        let m = s.status_report("m0", 3, "+15550009", 0, 710).unwrap();
        assert_eq!(m.map(|m| m.outbox_id), Some(z));
        // X now sits in m1: a report of X's still drained through m0 finds its row there.
        s.record_sim(&id("m1", Some(X)), 800).unwrap();
        assert_eq!(state(b), OutboxState::Sent);
        let m = s.status_report("m0", 2, "+15550009", 0, 900).unwrap();
        assert_eq!(m.map(|m| m.outbox_id), Some(b));
        assert_eq!(state(b), OutboxState::Delivered);
        // A reference neither SIM used matches nothing.
        assert_eq!(s.status_report("m0", 9, "+15550009", 0, 1_000).unwrap(), None);
    }

    #[test]
    fn a_new_sim_starts_empty_and_the_old_one_keeps_its_rows_until_it_returns() {
        let s = fresh();
        s.record_sim(&id("m0", Some(X)), 10).unwrap();
        send(&s, "m0", 100);
        member(&s, "+15550101", "m0");
        let c = s.record_sim(&id("m0", Some(Z)), 500).unwrap().unwrap();
        assert_eq!(c.moved_from, None);
        assert_eq!(s.sends_since("m0", 0).unwrap(), 0);
        assert!(homes(&s).iter().all(|(m, _)| m != "m0"));
        assert_eq!(events(&s, "sim_changed")[0]["iccid"], Z);
        // X comes back to m0: its count and member come with it; Z is parked.
        s.record_sim(&id("m0", Some(X)), 900).unwrap().unwrap();
        assert_eq!(s.sends_since("m0", 0).unwrap(), 1);
        assert_eq!(homes(&s), vec![("m0".into(), 1)]);
        assert_eq!(s.sim(Z).unwrap().unwrap().key, parked_key(Z));
    }

    #[test]
    fn a_first_iccid_adopts_the_slots_rows_and_no_iccid_moves_nothing() {
        let s = fresh();
        s.record_sim(&id("m0", None), 10).unwrap();
        send(&s, "m0", 100);
        assert_eq!(s.record_sim(&id("m0", Some(X)), 20).unwrap(), None);
        assert_eq!(s.sim(X).unwrap().unwrap().key, "m0");
        assert_eq!(s.sends_since("m0", 0).unwrap(), 1);
        // A later init that could not read the ICCID changes nothing.
        assert_eq!(s.record_sim(&id("m0", None), 30).unwrap(), None);
        assert_eq!(
            s.modem("m0").unwrap().unwrap().identity.iccid.as_deref(),
            Some(X)
        );
        assert!(events(&s, "sim_changed").is_empty());
        assert!(s.record_sim(&id("", Some(X)), 1).is_err());
    }

    #[test]
    fn status_reports_are_matched_by_the_slot_that_holds_the_sim_that_sent() {
        use crate::store::{OutboxState, RecoveryPolicy};
        const TO: &str = "+15550009";
        let s = fresh();
        s.record_sim(&id("m0", Some(X)), 10).unwrap();
        s.record_sim(&id("m1", Some(Y)), 10).unwrap();
        // X sends one part (`+CMGS: 1`) and starts another whose `+CMGS` a crash cut off (the
        // modem's next reference, 2, is the prediction): one sent, one in doubt.
        let sent = send(&s, "m0", 100);
        let mut row = NewOutbox::new(TO, "y", MessageKind::Bulk, 200);
        row.modem_pref = Some("m0".into());
        let doubt = s.enqueue(&row).unwrap();
        let c = s
            .claim_next_routed("m0", 200, &ClaimRoute::default())
            .unwrap()
            .unwrap();
        assert_eq!(c.id, doubt);
        assert_eq!(s.begin_submit(doubt, 1, 1, 210).unwrap(), Some(2));
        s.recover_after_restart(&RecoveryPolicy::default(), 300)
            .unwrap();
        assert_eq!(s.outbox_row(doubt).unwrap().state, OutboxState::InDoubt);
        // X and Y swap slots; the reports come to X, now in m1.
        s.record_sim(&id("m0", Some(Y)), 1_000).unwrap().unwrap();
        s.record_sim(&id("m1", Some(X)), 1_001).unwrap().unwrap();
        let m = s.status_report("m1", 1, TO, 0, 1_100).unwrap().unwrap();
        assert_eq!((m.outbox_id, m.state), (sent, OutboxState::Delivered));
        let m = s.status_report("m1", 2, TO, 0, 1_200).unwrap().unwrap();
        assert_eq!((m.outbox_id, m.resolved_in_doubt), (doubt, true));
        assert_eq!(s.outbox_row(doubt).unwrap().state, OutboxState::Delivered);
        // The modem's own reference counter stays with the hardware.
        assert_eq!(s.modem_last_mr("m0").unwrap(), Some(1));
        assert_eq!(s.modem_last_mr("m1").unwrap(), None);
    }

    #[test]
    fn low_balance_is_journaled_once_per_crossing() {
        let s = fresh();
        s.record_sim(&id("m0", Some(X)), 10).unwrap();
        let t = Some(5.0);
        assert!(!s.record_balance(X, "m0", 12.0, "12 EUR", t, 100).unwrap());
        assert!(s.record_balance(X, "m0", 4.0, "4 EUR", t, 200).unwrap());
        assert!(!s.record_balance(X, "m0", 3.0, "3 EUR", t, 300).unwrap());
        assert!(!s.record_balance(X, "m0", 9.0, "9 EUR", t, 400).unwrap());
        assert!(s.record_balance(X, "m0", 1.0, "1 EUR", t, 500).unwrap());
        let ev = events(&s, "low_balance");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0]["balance"], 4.0);
        assert_eq!(ev[0]["threshold"], 5.0);
        let sim = s.sim(X).unwrap().unwrap();
        assert_eq!(
            (sim.balance, sim.balance_at, sim.balance_low),
            (Some(1.0), Some(500), true)
        );
        // No threshold: never low.
        assert!(!s.record_balance(X, "m0", 0.0, "0", None, 600).unwrap());
    }

    #[test]
    fn the_last_send_outlives_the_pruned_send_log() {
        let s = fresh();
        s.record_sim(&id("m0", Some(X)), 10).unwrap();
        assert_eq!(
            s.refresh_sim_last_sent(X).unwrap().unwrap().last_sent_at,
            None
        );
        send(&s, "m0", 100);
        assert_eq!(
            s.refresh_sim_last_sent(X).unwrap().unwrap().last_sent_at,
            Some(100)
        );
        s.prune_send_log(100 + crate::store::rates::SEND_LOG_RETENTION_MS + 1)
            .unwrap();
        assert_eq!(
            s.refresh_sim_last_sent(X).unwrap().unwrap().last_sent_at,
            Some(100)
        );
        s.record_keepalive(X, 700).unwrap();
        assert_eq!(s.sim(X).unwrap().unwrap().keepalive_at, Some(700));
        assert!(s.refresh_sim_last_sent(Y).unwrap().is_none());
    }
}
}

/// What only SQLite has: a database file of an older schema, migrated at open.
#[cfg(test)]
mod sqlite_only_tests {
    use super::*;

    const X: &str = "8900101000000000001";
    const Y: &str = "8900101000000000002";

    #[test]
    fn the_migration_gives_each_known_sim_its_modems_rows() {
        // A database of the previous schema with two modems that had reported ICCIDs.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            // Every migration before 0012 (later ones, if any, run at open as usual).
            let before = crate::store::schema::MIGRATIONS
                .iter()
                .position(|(name, _)| *name == "0012_sim_identity")
                .unwrap();
            for (_, sql) in &crate::store::schema::MIGRATIONS[..before] {
                let tx = conn.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.commit().unwrap();
            }
            conn.pragma_update(None, "user_version", before as i64)
                .unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO modems (name, iccid, own_number, last_seen_at, updated_at)
                 VALUES ('m0', '{X}', '+15550100', 5, 5), ('m1', '{Y}', NULL, 7, 7),
                        ('m2', NULL, NULL, 9, 9);"
            ))
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let sims = s.sims().unwrap();
        assert_eq!(sims.len(), 2);
        assert_eq!((sims[0].key.as_str(), sims[0].first_seen_at), ("m0", 5));
        assert_eq!(sims[0].own_number.as_deref(), Some("+15550100"));
        assert_eq!(sims[1].key, "m1");
        // And the SIMs stay where they are at the next init.
        let m0 = ModemIdentity {
            name: "m0".into(),
            iccid: Some(X.into()),
            ..ModemIdentity::default()
        };
        assert_eq!(s.record_sim(&m0, 50).unwrap(), None);
    }
}
