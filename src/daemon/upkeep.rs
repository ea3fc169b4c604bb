//! The SIM upkeep task (docs/modems.md, "Balance" and "Keep-alive"): every tick, for each ready
//! modem with `balance_ussd` or a keep-alive configured, reads the balance through the modem's
//! USSD path when due and stores it per SIM (`Store::record_balance`, which journals
//! `low_balance` once per crossing), and sends the keep-alive — a USSD code, or an SMS through
//! the outbox pinned to that modem — when the SIM has sent nothing for `keepalive_days`.
//!
//! The "is it due" rules are pure (`dispatch::upkeep`); this task owns only the clock, the order
//! and the logging. Why the hour is a parameter ([`UpkeepTiming`]): end-to-end tests run the real
//! task with an hour of milliseconds, the way `limit_minute` shortens the rate limits' minute.
//! Failures are logged and retried after one more interval (balance) or one hour (keep-alive),
//! never every tick: a network that refuses USSD is not asked sixty times an hour.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{KeepaliveAction, ModemConfig};
use crate::dispatch::DispatchHandle;
use crate::dispatch::upkeep::{balance_due, keepalive_due};
use crate::model::MessageKind;
use crate::modem::balance::parse_balance;
use crate::modem::ussd::{UssdOp, UssdState};
use crate::modem::{ModemHandle, ModemState, short_iccid};
use crate::store::{NewOutbox, SimRow, Store};
use crate::time::now_ms;

/// How long the network's USSD answer is waited for (networks end an idle dialogue after ~30 s).
const USSD_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the task looks and what it calls an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpkeepTiming {
    pub tick: Duration,
    pub hour: Duration,
}

impl Default for UpkeepTiming {
    fn default() -> Self {
        UpkeepTiming {
            tick: Duration::from_secs(60),
            hour: Duration::from_secs(3600),
        }
    }
}

struct Task {
    store: Store,
    dispatch: DispatchHandle,
    hour_ms: i64,
    /// Last balance attempt and last keep-alive attempt per ICCID (in memory: after a restart
    /// one early check is harmless).
    balance_tried: HashMap<String, i64>,
    keepalive_tried: HashMap<String, i64>,
}

/// Runs until shutdown; returns at once when no modem has upkeep configured.
pub async fn run(
    store: Store,
    dispatch: DispatchHandle,
    modems: Vec<(ModemConfig, ModemHandle)>,
    timing: UpkeepTiming,
    shutdown: CancellationToken,
) {
    let modems: Vec<_> = modems
        .into_iter()
        .filter(|(mc, _)| mc.enabled && mc.upkeep.active())
        .collect();
    if modems.is_empty() {
        return;
    }
    let mut task = Task {
        store,
        dispatch,
        hour_ms: i64::try_from(timing.hour.as_millis())
            .unwrap_or(i64::MAX)
            .max(1),
        balance_tried: HashMap::new(),
        keepalive_tried: HashMap::new(),
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(timing.tick) => {}
        }
        for (mc, handle) in &modems {
            if shutdown.is_cancelled() {
                return;
            }
            task.check(mc, handle).await;
        }
    }
}

impl Task {
    async fn check(&mut self, mc: &ModemConfig, handle: &ModemHandle) {
        let st = handle.status();
        if st.state != ModemState::Ready {
            return;
        }
        let Some(iccid) = st.identity.iccid.clone() else {
            debug!(modem = %mc.name, "no ICCID: no balance check or keep-alive");
            return;
        };
        let key = iccid.clone();
        let sim = match self
            .store
            .call(move |s| s.refresh_sim_last_sent(&key))
            .await
        {
            Ok(Some(sim)) => sim,
            Ok(None) => return,
            Err(e) => {
                warn!(modem = %mc.name, error = %e, "cannot read the SIM's record");
                return;
            }
        };
        self.balance(mc, handle, &sim).await;
        self.keepalive(mc, handle, &sim).await;
    }

    async fn balance(&mut self, mc: &ModemConfig, handle: &ModemHandle, sim: &SimRow) {
        let u = &mc.upkeep;
        let Some(code) = &u.balance_ussd else { return };
        let now = now_ms();
        let every = i64::from(u.balance_every_hours).saturating_mul(self.hour_ms);
        let tried = self.balance_tried.get(&sim.iccid).copied();
        if !balance_due(sim.balance_at, tried, every, now) {
            return;
        }
        self.balance_tried.insert(sim.iccid.clone(), now);
        let modem = mc.name.as_str();
        let answer = match handle.ussd(UssdOp::Send(code.clone()), USSD_TIMEOUT).await {
            Ok(a) => a,
            Err(e) => {
                warn!(%modem, %code, error = %e, "balance check failed");
                return;
            }
        };
        if answer.state == UssdState::Menu {
            // A code that opens a menu leaves the session open: close it for the next user.
            let _ = handle.ussd(UssdOp::Cancel, USSD_TIMEOUT).await;
        }
        let Some(b) = parse_balance(&answer.text) else {
            warn!(%modem, %code, answer = %answer.text, "no amount in the balance answer");
            return;
        };
        let (iccid, text, threshold) = (sim.iccid.clone(), answer.text.clone(), u.low_balance);
        let name = mc.name.clone();
        let at = now_ms();
        match self
            .store
            .call(move |s| s.record_balance(&iccid, &name, b.amount, &text, threshold, at))
            .await
        {
            Ok(true) => warn!(
                %modem, balance = b.amount, threshold = threshold.unwrap_or_default(),
                "SIM balance is below the low_balance threshold"
            ),
            Ok(false) => {
                info!(%modem, balance = b.amount, currency = b.currency.as_deref().unwrap_or(""), "SIM balance read")
            }
            Err(e) => warn!(%modem, error = %e, "cannot store the balance"),
        }
    }

    async fn keepalive(&mut self, mc: &ModemConfig, handle: &ModemHandle, sim: &SimRow) {
        let u = &mc.upkeep;
        let (Some(days), Some(action)) = (u.keepalive_days, &u.keepalive) else {
            return;
        };
        let now = now_ms();
        let period = i64::from(days)
            .saturating_mul(24)
            .saturating_mul(self.hour_ms);
        if !keepalive_due(
            sim.first_seen_at,
            sim.last_sent_at,
            sim.keepalive_at,
            period,
            now,
        ) {
            return;
        }
        if self
            .keepalive_tried
            .get(&sim.iccid)
            .is_some_and(|t| now.saturating_sub(*t) < self.hour_ms)
        {
            return;
        }
        self.keepalive_tried.insert(sim.iccid.clone(), now);
        let modem = mc.name.clone();
        let done = match action {
            KeepaliveAction::Ussd(code) => {
                match handle.ussd(UssdOp::Send(code.clone()), USSD_TIMEOUT).await {
                    Ok(a) => {
                        if a.state == UssdState::Menu {
                            let _ = handle.ussd(UssdOp::Cancel, USSD_TIMEOUT).await;
                        }
                        true
                    }
                    Err(e) => {
                        warn!(%modem, %code, error = %e, "keep-alive USSD failed");
                        false
                    }
                }
            }
            KeepaliveAction::Sms { to, text } => {
                let mut row = NewOutbox::new(to.clone(), text.clone(), MessageKind::Direct, now);
                row.modem_pref = Some(modem.clone());
                match self.store.call(move |s| s.enqueue(&row)).await {
                    Ok(_) => {
                        self.dispatch.wake();
                        true
                    }
                    Err(e) => {
                        warn!(%modem, error = %e, "cannot queue the keep-alive SMS");
                        false
                    }
                }
            }
        };
        if !done {
            return;
        }
        let iccid = sim.iccid.clone();
        if let Err(e) = self
            .store
            .call(move |s| s.record_keepalive(&iccid, now))
            .await
        {
            warn!(%modem, error = %e, "cannot record the keep-alive");
        }
        info!(
            %modem, iccid = %short_iccid(&sim.iccid), days,
            what = match action { KeepaliveAction::Ussd(_) => "ussd", KeepaliveAction::Sms { .. } => "sms" },
            "keep-alive sent: the SIM had sent nothing for keepalive_days"
        );
    }
}
