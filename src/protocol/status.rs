//! Wire types of `status` (the one-screen summary) and `modems` (every configured modem and its
//! health).
//!
//! Shapes only; what the commands do is `commands::status`.

use serde::{Deserialize, Serialize};

/// `status` → one-screen summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusData {
    pub version: String,
    pub uptime_secs: u64,
    pub modems_total: u32,
    pub modems_ready: u32,
    /// Messages waiting in the outbox.
    pub outbox_queued: u64,
    /// Messages whose send was in flight at a crash, awaiting the configured policy.
    pub outbox_in_doubt: u64,
    pub sent_today: u64,
    pub received_today: u64,
    pub members: u64,
    /// Broadcasts still being sent.
    pub broadcasts_active: u32,
}

/// `modems` → one per configured modem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModemInfo {
    pub name: String,
    /// Config profile: generic, huawei, simcom, quectel, sim800.
    pub profile: String,
    pub port: String,
    /// Actor state, e.g. `ready`, `suspect`, `recovering`, `initializing`, `vanished`, `disabled`.
    pub state: String,
    /// Network registration, e.g. `home`, `roaming`, `searching`, `denied`, `unknown`.
    pub registration: String,
    pub signal_dbm: Option<i32>,
    pub operator: Option<String>,
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub imei: Option<String>,
    pub last_error: Option<String>,
    pub sent_today: u64,
    pub received_today: u64,
    /// The configured daily limit, if any.
    pub per_day: Option<u32>,
    /// What the modem is waiting for right now and for how long, e.g. "waiting for +CMGS, 42 s"
    /// (a send the network has not answered yet); absent when nothing is outstanding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}
