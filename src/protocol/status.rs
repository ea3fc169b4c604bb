//! Wire types of `status` (the one-screen summary) and `modems` (every configured modem and its
//! health).
//!
//! Shapes only; what the commands do is `commands::status`.

use serde::{Deserialize, Serialize};

/// `status` → one-screen summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The state disk as the daemon's writes see it (absent from daemons before this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageStatus>,
    /// Each configured modem's SIM (shortened ICCID and number), where known (absent from
    /// daemons before this field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sims: Vec<StatusSim>,
    /// Every site sharing the database (docs/scale-out.md); empty on a single Pi.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteStatus>,
}

/// `status.sites[]`: one gateway sharing the database, as its heartbeats show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteStatus {
    pub name: String,
    /// This is the site that answered.
    pub this_site: bool,
    /// Heard from within the last few heartbeats (30 s).
    pub alive: bool,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_secs: u64,
    pub modems_total: u32,
    /// Its modems that were up at its last heartbeat.
    pub modems_up: u32,
}

/// `status.sims[]`: which SIM sits in which modem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusSim {
    pub modem: String,
    /// The ICCID shortened to its last six digits, e.g. `…123456`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
    /// The SIM's number: the configured `number`, else the one the SIM reported (`AT+CNUM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// `modems[].sim`: the SIM in the modem, what it reported and what the gateway knows about it
/// (docs/modems.md, "SIM identity", "Balance", "Keep-alive"). Times are RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct SimInfo {
    /// The ICCID shortened to its last six digits, e.g. `…123456` (the full one is `iccid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid_short: Option<String>,
    /// The configured `number`, else the one the SIM reported (`AT+CNUM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Set when a different SIM than before appeared in this modem: the old one, shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_iccid: Option<String>,
    /// When that different SIM was first seen here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
    /// The last balance read by `balance_ussd`, and the network's words it was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_at: Option<String>,
    /// The last balance was below `low_balance`.
    #[serde(default)]
    pub low_balance: bool,
    /// The SIM's last sent SMS as far as the keep-alive knows, and its last keep-alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_at: Option<String>,
}

/// `status.storage`: whether the database takes writes, and what that does to sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StorageStatus {
    /// `ok`, `full` (disk full), `read_only` (file, directory or file system read-only) or
    /// `io_error` (another write error); anything but `ok` pauses sending.
    pub state: String,
    /// When writes started failing (unix ms); absent while `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// SQLite's (and the OS's) words for the first failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Sent (or otherwise settled) messages whose outcome is held in memory until the disk takes
    /// writes again; they are written then, without a restart.
    #[serde(default)]
    pub unrecorded: u64,
    /// Free bytes on the file system that holds the database, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
}

/// `modems` → one per configured modem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Why the runner gives this modem no new work although it may be ready, e.g.
    /// `state disk full: sending paused` (absent when nothing pauses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
    /// The SIM (absent when nothing is known about it, and from daemons before this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<SimInfo>,
    /// The site that drives this modem, when several share one database (docs/scale-out.md).
    /// Another site's modem has `state` `remote-up` or `remote-down` and no port or profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}
