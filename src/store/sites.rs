//! Sites: several gateways sharing one PostgreSQL database (docs/scale-out.md). Owns the `sites`
//! and `site_modems` tables (migration 0015): which daemon drives which modem, the heartbeats
//! that say a site is alive and a modem is up, and the sweep that recovers rows left in flight
//! by a site that went silent. It must not decide routing: the dispatch runner reads
//! [`Store::site_modems`] and turns it into the claim's pool and takeover lists, so the claim
//! itself (store/outbox/claim.rs) is the same query on one Pi and on many.
//!
//! Why it is built this way:
//! - A modem belongs to one site at a time ([`Store::register_site`] refuses a modem that a live
//!   site has): a SIM's send history and limits are exact only if one daemon sends on it.
//! - Heartbeats are stamped with the site's own clock and compared with the reader's clock
//!   against the failover time (minutes). Skew between NTP-synced machines is milliseconds.
//! - The lease of an in-flight row is its modem's site heartbeat. The sweep recovers the
//!   `claimed` rows of every modem that no live site holds, with the in-doubt policy, inside one
//!   write transaction: writers are serialized (store/db.rs), so when two sites sweep at once the
//!   second finds nothing left, and the policy is applied once.

use super::db::params;
use super::outbox::recover_claimed_in;
use super::{RecoveryPolicy, RecoveryReport, Result, SqlContext, Store, StoreError};

/// One site sharing the database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteRow {
    pub name: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub version: String,
}

/// One modem of some site, with both heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteModemRow {
    pub modem: String,
    pub site: String,
    /// When the modem was last up (`None`: not up since its site started).
    pub heartbeat_at: Option<i64>,
    pub site_started_at: i64,
    pub site_heartbeat_at: i64,
}

impl SiteModemRow {
    /// Whether the modem's site is alive at `now` (heard from within `alive_ms`).
    pub fn site_alive(&self, now: i64, alive_ms: i64) -> bool {
        self.site_heartbeat_at >= now.saturating_sub(alive_ms)
    }

    /// Since when the modem has not been up (its last heartbeat, or its site's start), if it
    /// is not up at `now` within `alive_ms`; `None` when it is up.
    pub fn down_since(&self, now: i64, alive_ms: i64) -> Option<i64> {
        let up = self.site_alive(now, alive_ms)
            && self
                .heartbeat_at
                .is_some_and(|h| h >= now.saturating_sub(alive_ms));
        (!up).then_some(self.heartbeat_at.unwrap_or(self.site_started_at))
    }
}

/// The modems held by live sites other than `?2`, as an SQL condition on `outbox o`: a claimed
/// row whose modem is not among them has no live site to finish it. `?1` is the oldest heartbeat
/// that still counts as alive.
const HELD_BY_LIVE_SITE: &str = "o.claimed_by IN (
        SELECT sm.modem FROM site_modems sm JOIN sites s ON s.name = sm.site
        WHERE s.heartbeat_at >= ?1 AND s.name <> ?2)";

impl Store {
    /// Registers `site` (this daemon) and its `modems` at start-up. A modem registered by
    /// another site that was heard from at or after `alive_after` is refused: two daemons
    /// driving one SIM would break its limits. A modem of a silent site is taken over.
    pub fn register_site(
        &self,
        site: &str,
        modems: &[String],
        now: i64,
        alive_after: i64,
        version: &str,
    ) -> Result<()> {
        const OP: &str = "registering the site";
        self.write(OP, |tx| {
            tx.exec_cached(
                "INSERT INTO sites (name, started_at, heartbeat_at, version) VALUES (?1, ?2, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at,
                     heartbeat_at = excluded.heartbeat_at, version = excluded.version",
                params![site, now, version],
            )
            .ctx(OP)?;
            for modem in modems {
                let holder: Option<(String, i64)> = tx
                    .query_row_cached(
                        "SELECT sm.site, s.heartbeat_at FROM site_modems sm
                         JOIN sites s ON s.name = sm.site WHERE sm.modem = ?1",
                        params![modem],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map(Some)
                    .or_else(|e| match e {
                        super::DbError::NoRows => Ok(None),
                        e => Err(e),
                    })
                    .ctx(OP)?;
                if let Some((other, heard)) = holder
                    && other != site
                    && heard >= alive_after
                {
                    return Err(StoreError::Conflict(format!(
                        "modem {modem} is driven by site {other}, which is alive (heard from \
                         {}s ago): a modem (SIM) belongs to one site; rename it or stop {other}",
                        (now - heard).max(0) / 1000
                    )));
                }
                tx.exec_cached(
                    "INSERT INTO site_modems (modem, site, heartbeat_at) VALUES (?1, ?2, NULL)
                     ON CONFLICT (modem) DO UPDATE SET site = excluded.site, heartbeat_at = NULL",
                    params![modem, site],
                )
                .ctx(OP)?;
            }
            Ok(())
        })
    }

    /// This site is alive at `now`, and the modems in `up` are up.
    pub fn site_heartbeat(&self, site: &str, up: &[String], now: i64) -> Result<()> {
        const OP: &str = "writing the site's heartbeat";
        let up =
            serde_json::to_string(up).map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        self.write(OP, |tx| {
            let n = tx
                .exec_cached(
                    "UPDATE sites SET heartbeat_at = ?2 WHERE name = ?1",
                    params![site, now],
                )
                .ctx(OP)?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "site",
                    key: site.to_string(),
                });
            }
            tx.exec_cached(
                "UPDATE site_modems SET heartbeat_at = ?2
                 WHERE site = ?1 AND modem IN (SELECT value FROM json_each(?3))",
                params![site, now, up],
            )
            .ctx(OP)?;
            Ok(())
        })
    }

    /// Every site, by name.
    pub fn sites(&self) -> Result<Vec<SiteRow>> {
        const OP: &str = "listing sites";
        self.conn()
            .query_map(
                "SELECT name, started_at, heartbeat_at, version FROM sites ORDER BY name",
                params![],
                |r| {
                    Ok(SiteRow {
                        name: r.get(0)?,
                        started_at: r.get(1)?,
                        heartbeat_at: r.get(2)?,
                        version: r.get(3)?,
                    })
                },
            )
            .ctx(OP)
    }

    /// Every modem of every site, by site and name.
    pub fn site_modems(&self) -> Result<Vec<SiteModemRow>> {
        const OP: &str = "listing the sites' modems";
        self.conn()
            .query_map(
                "SELECT sm.modem, sm.site, sm.heartbeat_at, s.started_at, s.heartbeat_at
                 FROM site_modems sm JOIN sites s ON s.name = sm.site
                 ORDER BY sm.site, sm.modem",
                params![],
                |r| {
                    Ok(SiteModemRow {
                        modem: r.get(0)?,
                        site: r.get(1)?,
                        heartbeat_at: r.get(2)?,
                        site_started_at: r.get(3)?,
                        site_heartbeat_at: r.get(4)?,
                    })
                },
            )
            .ctx(OP)
    }

    /// Recovers, with `policy`, every `claimed` row that no live site other than `site` holds
    /// (a site is live when heard from at or after `alive_after`). At start-up `site` is this
    /// site, so its own rows from before the restart are recovered with those of silent sites;
    /// the periodic sweep passes `""` (no site's name), so every live site's rows, this one's
    /// included, are spared.
    pub fn recover_orphaned_claims(
        &self,
        site: &str,
        alive_after: i64,
        policy: &RecoveryPolicy,
        now: i64,
        reason: &str,
    ) -> Result<RecoveryReport> {
        self.write("recovering rows of silent sites", |tx| {
            recover_claimed_in(
                tx,
                &format!("o.claimed_by IS NULL OR NOT ({HELD_BY_LIVE_SITE})"),
                params![alive_after, site],
                policy,
                now,
                reason,
            )
        })
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
mod tests {
    use super::*;
    use crate::store::{ClaimRoute, MessageKind, NewOutbox};

    const MIN: i64 = 60_000;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_live_sites_modem_cannot_be_registered_twice() {
        let s = fresh();
        s.register_site("paris", &names(&["p1", "p2"]), 1_000, 0, "t").unwrap();
        let err = s
            .register_site("lyon", &names(&["l1", "p2"]), 2_000, 2_000 - 10 * MIN, "t")
            .unwrap_err();
        assert!(err.to_string().contains("p2 is driven by site paris"), "{err}");
        // Nothing of the refused registration was kept.
        assert!(s.sites().unwrap().iter().all(|r| r.name == "paris"));
        // Once paris has been silent long enough, lyon may take the modem over.
        let later = 1_000 + 11 * MIN;
        s.register_site("lyon", &names(&["l1", "p2"]), later, later - 10 * MIN, "t")
            .unwrap();
        let owners: Vec<(String, String)> = s
            .site_modems()
            .unwrap()
            .into_iter()
            .map(|m| (m.modem, m.site))
            .collect();
        assert_eq!(
            owners,
            [
                ("l1".to_string(), "lyon".to_string()),
                ("p2".to_string(), "lyon".to_string()),
                ("p1".to_string(), "paris".to_string()),
            ]
        );
    }

    #[test]
    fn heartbeats_mark_sites_alive_and_modems_up() {
        let s = fresh();
        s.register_site("paris", &names(&["p1", "p2"]), 1_000, 0, "t").unwrap();
        s.site_heartbeat("paris", &names(&["p1"]), 5_000).unwrap();
        let m = s.site_modems().unwrap();
        assert_eq!((m[0].heartbeat_at, m[1].heartbeat_at), (Some(5_000), None));
        assert_eq!(m[0].site_heartbeat_at, 5_000);
        // p1 is up; p2 has been down since the site started; after a silence both are down.
        assert_eq!(m[0].down_since(6_000, MIN), None);
        assert_eq!(m[1].down_since(6_000, MIN), Some(1_000));
        assert_eq!(m[0].down_since(5_000 + 2 * MIN, MIN), Some(5_000));
        assert!(s.site_heartbeat("nowhere", &[], 1).is_err());
    }

    /// The sweep recovers a silent site's in-flight rows once and never a live site's.
    #[test]
    fn the_sweep_recovers_only_silent_sites_rows_and_only_once() {
        let s = fresh();
        s.register_site("paris", &names(&["p1"]), 1_000, 0, "t").unwrap();
        s.register_site("lyon", &names(&["l1"]), 1_000, 0, "t").unwrap();
        for (i, kind) in [MessageKind::Reply, MessageKind::Bulk].into_iter().enumerate() {
            for modem in ["p1", "l1"] {
                let to = format!("+1555000{i}{}", modem.len());
                let id = s
                    .enqueue(&NewOutbox::new(format!("{to}{modem}"), "x", kind, 1_000))
                    .unwrap();
                let row = s
                    .claim_next_routed(modem, 1_000, &ClaimRoute::default())
                    .unwrap()
                    .unwrap();
                assert_eq!(row.id, id);
            }
        }
        // Lyon keeps beating; paris falls silent.
        let now = 1_000 + 11 * MIN;
        s.site_heartbeat("lyon", &names(&["l1"]), now).unwrap();
        let policy = RecoveryPolicy::default();
        let report = s
            .recover_orphaned_claims("", now - 10 * MIN, &policy, now, "site paris went silent")
            .unwrap();
        assert_eq!((report.found_claimed, report.requeued, report.left_in_doubt), (2, 1, 1));
        let again = s
            .recover_orphaned_claims("", now - 10 * MIN, &policy, now, "site paris went silent")
            .unwrap();
        assert_eq!(again.found_claimed, 0);
        // Lyon's rows are still claimed by l1.
        assert_eq!(s.state_counts().unwrap().claimed, 2);
        // At lyon's own restart its rows are recovered too (the sweep spares only OTHER sites).
        let report = s
            .recover_orphaned_claims("lyon", now - 10 * MIN, &policy, now, "in flight at restart")
            .unwrap();
        assert_eq!(report.found_claimed, 2);
    }
}
}
