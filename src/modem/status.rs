//! The observable state of one modem: what the admin `modems` verb, the dispatcher's pool and the
//! health checks read.
//!
//! The actor is the only writer (through a `tokio::sync::watch` channel), so readers always see a
//! consistent snapshot without locking the actor. Signal conversion follows 27.007 §8.5
//! (dBm = −113 + 2·rssi, 99 unknown); registration states follow 27.007 §7.2.

use serde::Serialize;

/// Where the modem is in its life cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ModemState {
    /// Opening the port or running the init sequence.
    Initializing,
    /// Init (including the storage drain) done; sends are accepted.
    Ready,
    /// A send's answer (`+CMGS`) did not come within the suspect bound (`Timeouts::send_suspect`):
    /// the send was given up as in doubt and the liveness probe (ESC + Ctrl-Z, then `AT`, the
    /// first rung of the recovery ladder) runs. No new work is given to a suspect modem; it turns
    /// `Ready` when the probe answers, `Recovering` when it does not.
    Suspect { reason: String },
    /// Recovering from a stall (ESC/Ctrl-Z, reset, re-init).
    Recovering,
    /// The port is gone; waiting for the device path to reappear.
    Vanished,
    /// Taken out of the pool for good (wrong PIN, SIM failure, too many failed recoveries).
    OutOfPool { reason: String },
    /// Disabled by configuration or shut down.
    Disabled,
}

impl ModemState {
    /// A short name for logs and tables.
    pub fn name(&self) -> &'static str {
        match self {
            ModemState::Initializing => "initializing",
            ModemState::Ready => "ready",
            ModemState::Suspect { .. } => "suspect",
            ModemState::Recovering => "recovering",
            ModemState::Vanished => "vanished",
            ModemState::OutOfPool { .. } => "out_of_pool",
            ModemState::Disabled => "disabled",
        }
    }
}

/// Who the modem and its SIM are. Pool keys use ICCID/IMSI (the SIM) plus IMEI (the hardware).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub revision: Option<String>,
    pub imei: Option<String>,
    pub imsi: Option<String>,
    pub iccid: Option<String>,
    /// The SIM's own number from `AT+CNUM`, when the SIM carries one.
    pub own_number: Option<String>,
}

/// An ICCID as `modems` and `status` show it: the last six digits after an ellipsis, enough to
/// tell a handful of SIMs apart and to find the one printed on the card (`…123456`).
pub fn short_iccid(iccid: &str) -> String {
    let chars: Vec<char> = iccid.chars().collect();
    match chars.len().checked_sub(6) {
        Some(cut) if cut > 0 => format!("…{}", chars[cut..].iter().collect::<String>()),
        _ => iccid.to_string(),
    }
}

/// Network registration status `<stat>` of `+CREG` (27.007 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    NotSearching,
    Home,
    Searching,
    Denied,
    Unknown,
    Roaming,
}

impl Registration {
    /// Maps `<stat>`; values beyond 5 (27.007 adds SMS-only and emergency states) count as unknown
    /// except 6/7 which are home/roaming "SMS only" and still allow SMS.
    pub fn from_stat(stat: u8) -> Registration {
        match stat {
            0 => Registration::NotSearching,
            1 | 6 => Registration::Home,
            2 => Registration::Searching,
            3 => Registration::Denied,
            5 | 7 => Registration::Roaming,
            _ => Registration::Unknown,
        }
    }

    /// Whether the modem can send SMS in this state.
    pub fn registered(self) -> bool {
        matches!(self, Registration::Home | Registration::Roaming)
    }
}

/// dBm for a `+CSQ` rssi (0 → −113, 31 → −51, 99 → unknown).
pub fn rssi_dbm(rssi: u8) -> Option<i16> {
    if rssi <= 31 {
        Some(-113 + 2 * i16::from(rssi))
    } else {
        None
    }
}

/// A command the modem is waiting on longer than an instant: today the network's answer to a
/// submitted `AT+CMGS` (the PDU and Ctrl-Z are written; 27.005 §3.5.1 gives no time bound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// What is awaited, e.g. `+CMGS`.
    pub awaiting: String,
    /// Since when (unix ms): the moment the PDU and Ctrl-Z were written.
    pub since_ms: i64,
}

impl Waiting {
    /// The `modems` wording, e.g. "waiting for +CMGS, 42 s".
    pub fn describe(&self, now_ms: i64) -> String {
        let secs = now_ms.saturating_sub(self.since_ms).max(0) / 1000;
        format!("waiting for {}, {secs} s", self.awaiting)
    }
}

/// A snapshot of one modem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModemStatus {
    pub name: String,
    pub port: String,
    pub profile: super::Profile,
    #[serde(flatten)]
    pub state: ModemState,
    pub identity: Identity,
    pub registration: Option<Registration>,
    pub rssi: Option<u8>,
    pub dbm: Option<i16>,
    pub operator: Option<String>,
    pub smsc: Option<String>,
    /// `(used, total)` of the storage new messages go to.
    pub storage: Option<(u32, u32)>,
    /// Whether the modem reported voice support (Huawei `^CVOICE`); `None` if not probed.
    pub voice: Option<bool>,
    /// Features turned off because the modem refused their setup command (e.g. "clip").
    pub disabled_features: Vec<String>,
    pub last_error: Option<String>,
    /// The answer the modem is waiting for right now, if any (cleared when it comes or the wait
    /// is given up).
    pub waiting: Option<Waiting>,
    pub sent: u64,
    pub received: u64,
    pub errors: u64,
    pub recoveries: u64,
    /// How often each rung of the recovery ladder was tried (docs/modems.md, "Stalls").
    pub rungs: RecoveryRungs,
    /// Inits started since the actor began (the first is 1). The identity belongs to init number
    /// `inits`, and a `Ready` state to the init that reached it: the dispatch runner claims for
    /// this modem only once the daemon has recorded the SIM of the init it sees `Ready`
    /// (docs/modems.md, "SIM identity"), so a re-init closes that gate again by itself.
    #[serde(skip)]
    pub inits: u64,
}

/// Attempts per rung of the recovery ladder (`modem::recovery::RecoveryStep`), counted when the
/// rung starts; giving up shows as the `out_of_pool` state. Counters, not a "current rung", so a
/// reader polling now and then misses none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryRungs {
    /// ESC + Ctrl-Z, then `AT` and init.
    pub resync: u64,
    /// `AT+CFUN=1,1`, then init.
    pub reset: u64,
    /// The port closed and opened again, then init.
    pub reopen: u64,
}

impl ModemStatus {
    /// A fresh status for a modem that has not been opened yet.
    pub fn new(name: &str, port: &str, profile: super::Profile) -> ModemStatus {
        ModemStatus {
            name: name.to_owned(),
            port: port.to_owned(),
            profile,
            state: ModemState::Initializing,
            identity: Identity::default(),
            registration: None,
            rssi: None,
            dbm: None,
            operator: None,
            smsc: None,
            storage: None,
            voice: None,
            disabled_features: Vec::new(),
            last_error: None,
            waiting: None,
            sent: 0,
            received: 0,
            errors: 0,
            recoveries: 0,
            rungs: RecoveryRungs::default(),
            inits: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbm_follows_27_007() {
        assert_eq!(rssi_dbm(0), Some(-113));
        assert_eq!(rssi_dbm(31), Some(-51));
        assert_eq!(rssi_dbm(15), Some(-83));
        assert_eq!(rssi_dbm(99), None);
        assert_eq!(rssi_dbm(32), None);
    }

    #[test]
    fn waiting_reads_in_whole_seconds() {
        let w = Waiting {
            awaiting: "+CMGS".into(),
            since_ms: 1_000,
        };
        assert_eq!(w.describe(43_999), "waiting for +CMGS, 42 s");
        assert_eq!(w.describe(0), "waiting for +CMGS, 0 s");
    }

    #[test]
    fn iccids_shorten_to_their_last_six_digits() {
        assert_eq!(short_iccid("8900101000120000005"), "…000005");
        assert_eq!(short_iccid("123456"), "123456");
        assert_eq!(short_iccid(""), "");
    }

    #[test]
    fn registration_states() {
        assert!(Registration::from_stat(1).registered());
        assert!(Registration::from_stat(5).registered());
        assert!(!Registration::from_stat(2).registered());
        assert_eq!(Registration::from_stat(3), Registration::Denied);
        assert_eq!(Registration::from_stat(200), Registration::Unknown);
    }
}
