//! The `modems` table: what each configured modem last told us about itself and whether the pool
//! may use it.
//!
//! Rows are keyed by the configured name (stable across re-enumeration, unlike ttyUSB numbers).
//! ICCID and IMSI are looked up to recognise a SIM that moved to another port; IMEI is kept for
//! display only, since batches of cheap modems are known to share one IMEI
//! (Xinyuan-LilyGO/LilyGO-T-SIM7000G#214).

use crate::store::db::{Conn, OptionalExtension, Row, params};

use super::{Result, SqlContext, Store, StoreError, flag};

/// Identity read from the modem and SIM at start-up (`AT+CCID`, `AT+CIMI`, `AT+CGSN`, `AT+CNUM`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModemIdentity {
    pub name: String,
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub imei: Option<String>,
    pub own_number: Option<String>,
    pub profile: Option<String>,
}

/// The last polled health of a modem.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModemStatus {
    pub registration: Option<String>,
    pub signal: Option<i64>,
    pub operator: Option<String>,
}

/// One row of `modems`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModemRow {
    pub identity: ModemIdentity,
    pub status: ModemStatus,
    pub last_seen_at: Option<i64>,
    /// False when taken out of the pool (by an admin or by the health checker).
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub updated_at: i64,
    /// The ICCID this slot had before a different SIM appeared in it (`Store::record_sim`).
    pub previous_iccid: Option<String>,
    /// When that different SIM was first seen here.
    pub sim_changed_at: Option<i64>,
}

const COLUMNS: &str = "name, iccid, imsi, imei, own_number, profile, registration, signal, \
                       operator, last_seen_at, enabled, disabled_reason, updated_at, \
                       previous_iccid, sim_changed_at";

fn from_row(r: &Row<'_>) -> crate::store::db::DbResult<ModemRow> {
    Ok(ModemRow {
        identity: ModemIdentity {
            name: r.get(0)?,
            iccid: r.get(1)?,
            imsi: r.get(2)?,
            imei: r.get(3)?,
            own_number: r.get(4)?,
            profile: r.get(5)?,
        },
        status: ModemStatus {
            registration: r.get(6)?,
            signal: r.get(7)?,
            operator: r.get(8)?,
        },
        last_seen_at: r.get(9)?,
        enabled: flag(r.get(10)?),
        disabled_reason: r.get(11)?,
        updated_at: r.get(12)?,
        previous_iccid: r.get(13)?,
        sim_changed_at: r.get(14)?,
    })
}

impl Store {
    /// Inserts or updates a modem's identity by name. Status and the enabled flag are kept.
    pub fn upsert_modem(&self, id: &ModemIdentity, now: i64) -> Result<()> {
        if id.name.is_empty() {
            return Err(StoreError::InvalidArgument("empty modem name".into()));
        }
        self.write("upserting a modem", |tx| {
            tx.exec_cached(
                "INSERT INTO modems (name, iccid, imsi, imei, own_number, profile, last_seen_at, \
                                     updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (name) DO UPDATE SET
                     iccid = excluded.iccid, imsi = excluded.imsi, imei = excluded.imei,
                     own_number = excluded.own_number, profile = excluded.profile,
                     last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at",
                params![
                    id.name,
                    id.iccid,
                    id.imsi,
                    id.imei,
                    id.own_number,
                    id.profile,
                    now
                ],
            )
            .ctx("upserting a modem")?;
            Ok(())
        })
    }

    /// Records the latest health poll.
    pub fn update_modem_status(&self, name: &str, status: &ModemStatus, now: i64) -> Result<()> {
        self.write("updating modem status", |tx| {
            let n = tx
                .exec_cached(
                    "UPDATE modems SET registration = ?2, signal = ?3, operator = ?4,
                                       last_seen_at = ?5, updated_at = ?5
                     WHERE name = ?1",
                    params![
                        name,
                        status.registration,
                        status.signal,
                        status.operator,
                        now
                    ],
                )
                .ctx("updating modem status")?;
            not_found_if_zero(n, name)
        })
    }

    /// Puts a modem in or out of the pool. `reason` is kept while it is disabled.
    pub fn set_modem_enabled(
        &self,
        name: &str,
        enabled: bool,
        reason: Option<&str>,
        now: i64,
    ) -> Result<()> {
        self.write("enabling a modem", |tx| {
            let reason = if enabled { None } else { reason };
            let n = tx
                .exec_cached(
                    "UPDATE modems SET enabled = ?2, disabled_reason = ?3, updated_at = ?4
                     WHERE name = ?1",
                    params![name, enabled, reason, now],
                )
                .ctx("enabling a modem")?;
            not_found_if_zero(n, name)
        })
    }

    /// One modem by configured name.
    pub fn modem(&self, name: &str) -> Result<Option<ModemRow>> {
        self.modem_where("name", name)
    }

    /// The modem that last reported this ICCID (most recently seen first).
    pub fn modem_by_iccid(&self, iccid: &str) -> Result<Option<ModemRow>> {
        self.modem_where("iccid", iccid)
    }

    /// The modem that last reported this IMSI (most recently seen first).
    pub fn modem_by_imsi(&self, imsi: &str) -> Result<Option<ModemRow>> {
        self.modem_where("imsi", imsi)
    }

    fn modem_where(&self, column: &'static str, value: &str) -> Result<Option<ModemRow>> {
        // `column` is one of three literals above, never caller input.
        let sql = format!(
            "SELECT {COLUMNS} FROM modems WHERE {column} = ?1
             ORDER BY last_seen_at DESC NULLS LAST LIMIT 1"
        );
        self.conn()
            .query_row_cached(&sql, params![value], from_row)
            .optional()
            .ctx("looking up a modem")
    }

    /// All modems, by name.
    pub fn modems(&self) -> Result<Vec<ModemRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!("SELECT {COLUMNS} FROM modems ORDER BY name"))
            .ctx("listing modems")?;
        st.query_map(params![], from_row)
            .ctx("listing modems")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("listing modems")
    }
}

fn not_found_if_zero(n: usize, name: &str) -> Result<()> {
    if n == 0 {
        Err(StoreError::NotFound {
            what: "modem",
            key: name.to_string(),
        })
    } else {
        Ok(())
    }
}

/// The modem's last `+CMGS: <mr>` (table `modem_refs`), read inside a write transaction.
/// The modem assigns TP-MR itself, one more per SMS-SUBMIT modulo 256 (3GPP TS 23.040
/// §9.2.3.6), so the next submit's reference is this plus one.
pub(super) fn last_mr_in(tx: &Conn, modem: &str) -> Result<Option<u8>> {
    tx.query_row_cached(
        "SELECT last_mr FROM modem_refs WHERE modem = ?1",
        params![modem],
        |r| r.get(0),
    )
    .optional()
    .ctx("reading the modem's last reference")
}

/// Records `mr` as the modem's last reference (a `+CMGS: <mr>` it answered).
pub(super) fn set_last_mr_in(tx: &Conn, modem: &str, mr: u8, now: i64) -> Result<()> {
    tx.exec_cached(
        "INSERT INTO modem_refs (modem, last_mr, at) VALUES (?1, ?2, ?3)
         ON CONFLICT (modem) DO UPDATE SET last_mr = excluded.last_mr, at = excluded.at",
        params![modem, mr, now],
    )
    .ctx("recording the modem's last reference")?;
    Ok(())
}

impl Store {
    /// The modem's last recorded `+CMGS: <mr>`, if it ever sent.
    pub fn modem_last_mr(&self, modem: &str) -> Result<Option<u8>> {
        self.conn()
            .query_row_cached(
                "SELECT last_mr FROM modem_refs WHERE modem = ?1",
                params![modem],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading the modem's last reference")
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Inside as well: clippy exempts test helpers only in a module that carries it.
#[cfg(test)]
mod tests {
    use super::*;

    fn ident(name: &str, iccid: &str, imsi: &str) -> ModemIdentity {
        ModemIdentity {
            name: name.into(),
            iccid: Some(iccid.into()),
            imsi: Some(imsi.into()),
            imei: Some("351234567890123".into()),
            own_number: Some("+15550100".into()),
            profile: Some("huawei".into()),
        }
    }

    #[test]
    fn upsert_lookup_status_and_enable() {
        let s = fresh();
        s.upsert_modem(&ident("m0", "8901", "31001"), 10).unwrap();
        s.upsert_modem(&ident("m1", "8902", "31002"), 10).unwrap();
        let st = ModemStatus {
            registration: Some("home".into()),
            signal: Some(21),
            operator: Some("Op".into()),
        };
        s.update_modem_status("m0", &st, 20).unwrap();
        s.set_modem_enabled("m0", false, Some("hung"), 30).unwrap();
        // Re-upsert after a restart keeps status and the enabled flag.
        s.upsert_modem(&ident("m0", "8901", "31001"), 40).unwrap();
        let m0 = s.modem("m0").unwrap().unwrap();
        assert_eq!(m0.status, st);
        assert!(!m0.enabled);
        assert_eq!(m0.disabled_reason.as_deref(), Some("hung"));
        assert_eq!(m0.last_seen_at, Some(40));
        assert_eq!(
            s.modem_by_iccid("8902").unwrap().unwrap().identity.name,
            "m1"
        );
        assert_eq!(
            s.modem_by_imsi("31001").unwrap().unwrap().identity.name,
            "m0"
        );
        assert!(s.modem_by_imsi("nope").unwrap().is_none());
        s.set_modem_enabled("m0", true, Some("ignored"), 50)
            .unwrap();
        let m0 = s.modem("m0").unwrap().unwrap();
        assert!(m0.enabled && m0.disabled_reason.is_none());
        assert_eq!(s.modems().unwrap().len(), 2);
        assert!(matches!(
            s.update_modem_status("ghost", &st, 1),
            Err(StoreError::NotFound { .. })
        ));
        assert!(s.upsert_modem(&ModemIdentity::default(), 1).is_err());
    }
}
}
