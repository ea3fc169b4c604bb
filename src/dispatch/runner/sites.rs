//! The runner's side of several sites sharing one database (docs/scale-out.md): every
//! `heartbeat_every` it stamps this site's heartbeat and its up modems, sweeps the in-flight rows
//! of sites that went silent (the in-doubt policy, once: store/sites.rs), and reads the other
//! sites' modems into a [`RemoteView`] that the send loops add to their claim route. It must not
//! touch the per-modem limiters: a remote modem's SIM is only ever driven by its own site, so
//! only that site counts its sends.
//!
//! Why routing stays in the claim's two lists: a row homed on another site's modem is, for the
//! claim, a row preferring a modem of the pool that this modem may not take, exactly as a row
//! homed on a sibling modem of the same Pi; once that modem has been down (no heartbeat, or its
//! site silent) for `failover_after`, it joins the takeover list, as a local modem does. The claim
//! query is therefore the same on one Pi and on many, and so are its guarantees (STOP checked in
//! the claim's transaction, one claimer per row). A modem counts as up while its heartbeat is
//! younger than three beats, so one slow write does not move members.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Millis, RunnerConfig, Shared, ms};
use crate::store::SiteModemRow;
use crate::time::now_ms;

/// Without `failover_after`, how long a site must be silent before its modems may be registered
/// by another site (a silent site's rows are then never swept: they wait for it).
const DEFAULT_DEAD_AFTER_MS: Millis = 10 * 60_000;

/// A modem is up while stamped within this many heartbeats.
const BEATS_ALIVE: Millis = 3;

/// The other sites' modems as the claim sees them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RemoteView {
    /// Every modem of another site: rows homed there are theirs unless taken over.
    names: Vec<String>,
    /// Those down for at least `failover_after` (or whose site is silent that long).
    takeover: Vec<String>,
}

impl RemoteView {
    /// The view from the sites' modems at `now`, for site `me`.
    fn from_rows(
        me: &str,
        rows: &[SiteModemRow],
        now: Millis,
        alive_ms: Millis,
        failover: Option<Millis>,
    ) -> RemoteView {
        let mut view = RemoteView::default();
        for row in rows.iter().filter(|r| r.site != me) {
            view.names.push(row.modem.clone());
            if let (Some(after), Some(since)) = (failover, row.down_since(now, alive_ms))
                && since.saturating_add(after) <= now
            {
                view.takeover.push(row.modem.clone());
            }
        }
        view
    }

    /// Adds the remote modems to a claim's pool and takeover lists.
    pub(crate) fn extend_route(&self, pool: &mut Vec<String>, takeover: &mut Vec<String>) {
        pool.extend(self.names.iter().cloned());
        takeover.extend(self.takeover.iter().cloned());
    }
}

/// How long a site must be silent before it counts as gone.
pub(super) fn dead_after_ms(cfg: &RunnerConfig) -> Millis {
    cfg.failover_after.map_or(DEFAULT_DEAD_AFTER_MS, ms)
}

/// The site's heartbeat loop; returns when `shutdown` fires.
pub(super) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let Some(site) = shared.cfg.site.clone() else {
        return;
    };
    // Since when every beat has reached the database (`None` after a failed one).
    let mut connected_since: Option<std::time::Instant> = None;
    loop {
        let judge = connected_since.is_some_and(|t| {
            shared
                .cfg
                .failover_after
                .is_some_and(|after| t.elapsed() >= after)
        });
        let ok = beat(&shared, &site, judge).await;
        connected_since = match (ok, connected_since) {
            (true, Some(t)) => Some(t),
            (true, None) => Some(std::time::Instant::now()),
            (false, _) => None,
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(shared.cfg.heartbeat_every) => {}
        }
    }
}

/// One heartbeat: stamp, sweep, read, and wake the loops if the route changed; whether it
/// reached the database. A failed write (database unreachable) is logged and tried again at the
/// next beat; meanwhile the loops keep the last view, and the other sites see this one's
/// heartbeat age.
///
/// `judge`: this site has reached the database for at least the failover time without a gap,
/// so a silence it sees in another site is that site's, not the database's. After an outage
/// every site's heartbeat is old at once; judging then would sweep the in-flight rows of sites
/// that are alive and reconnecting. Until then the view keeps no takeover and nothing is swept.
async fn beat(shared: &Arc<Shared>, site: &str, judge: bool) -> bool {
    let now = now_ms();
    let up: Vec<String> = {
        let state = shared.state();
        state
            .modems
            .iter()
            .filter(|m| m.usable(now))
            .map(|m| m.name.clone())
            .collect()
    };
    let alive_ms = ms(shared.cfg.heartbeat_every).saturating_mul(BEATS_ALIVE);
    let failover = shared.cfg.failover_after.map(ms).filter(|_| judge);
    let policy = shared.cfg.recovery_policy();
    let me = site.to_string();
    let rows = shared
        .store
        .call(move |s| {
            s.site_heartbeat(&me, &up, now)?;
            if let Some(after) = failover {
                s.recover_orphaned_claims(
                    "",
                    now.saturating_sub(after),
                    &policy,
                    now,
                    "in flight on a site that went silent",
                )?;
            }
            s.site_modems()
        })
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(site, error = %e, "site heartbeat failed; retrying at the next beat");
            return false;
        }
    };
    let view = RemoteView::from_rows(site, &rows, now, alive_ms, failover);
    let changed = {
        let mut remote = shared.remote();
        let changed = *remote != view;
        if changed && remote.takeover != view.takeover {
            tracing::info!(site, takeover = ?view.takeover, "other sites' modems this site may take over");
        }
        *remote = view;
        changed
    };
    if changed {
        shared.wake_all();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(modem: &str, site: &str, hb: Option<i64>, site_hb: i64) -> SiteModemRow {
        SiteModemRow {
            modem: modem.into(),
            site: site.into(),
            heartbeat_at: hb,
            site_started_at: 0,
            site_heartbeat_at: site_hb,
        }
    }

    #[test]
    fn remote_modems_join_the_pool_and_fail_over_after_the_time() {
        let min = 60_000;
        let now = 100 * min;
        let rows = [
            row("p1", "paris", Some(now - 1_000), now - 1_000),
            // Down for 4 minutes on a live site: not yet (failover 5 min).
            row("l1", "lyon", Some(now - 4 * min), now - 1_000),
            // Down for 6 minutes: taken over.
            row("l2", "lyon", Some(now - 6 * min), now - 1_000),
            // Its site silent for 6 minutes: taken over although its last beat said up.
            row("n1", "nice", Some(now - 6 * min), now - 6 * min),
        ];
        let view = RemoteView::from_rows("paris", &rows, now, 30_000, Some(5 * min));
        assert_eq!(view.names, ["l1", "l2", "n1"]);
        assert_eq!(view.takeover, ["l2", "n1"]);
        // Without a failover time nothing is ever taken over.
        let view = RemoteView::from_rows("paris", &rows, now, 30_000, None);
        assert!(view.takeover.is_empty());
        let (mut pool, mut takeover) = (vec!["p1".to_string()], Vec::new());
        view.extend_route(&mut pool, &mut takeover);
        assert_eq!(pool, ["p1", "l1", "l2", "n1"]);
    }
}
