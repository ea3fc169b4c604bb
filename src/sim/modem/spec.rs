//! What can be configured about one simulated modem: its profile, SIM, storage, latencies and the
//! timings of its vendor behaviour. Plain data, serialisable, with the defaults every test and the
//! `gsmgate sim` verb start from; the state machine (`modem/mod.rs`) reads it and never changes it.
//!
//! The default latencies are short on purpose (milliseconds, where a real network takes seconds
//! to answer a send) so that suites stay fast; tests and benchmarks that model real timing set
//! their own.

use crate::sim::profile::{Identity, Profile};

/// Range of a simulated delay in milliseconds (uniform between the two, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MsRange(pub u64, pub u64);

/// Per-command-kind latency: how long the modem "thinks" before it answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    /// Any command not listed below.
    pub default: MsRange,
    /// From Ctrl-Z to `+CMGS:` / `+CMSS:` (real networks take seconds: smstools3's FAQ counts
    /// 5–10 s per message).
    pub send: MsRange,
    /// `AT+CMGL` / `AT+CMGR`.
    pub read: MsRange,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            default: MsRange(1, 5),
            send: MsRange(20, 80),
            read: MsRange(2, 10),
        }
    }
}

/// Everything configurable about one simulated modem.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ModemSpec {
    pub profile: Profile,
    /// SIM PIN; `None` means the SIM starts READY.
    pub pin: Option<String>,
    /// Remaining PIN attempts at start (3 on real SIMs).
    pub pin_attempts: u8,
    pub puk: String,
    /// SIM message storage capacity (per memory).
    pub capacity: usize,
    pub latency: Latency,
    /// Time from reboot to the boot lines.
    pub boot_ms: u64,
    /// Huawei `^RSSI`/`^BOOT` period; 0 = off.
    pub noise_interval_ms: u64,
    /// Interval between RING repeats of an incoming call.
    pub ring_interval_ms: u64,
    /// Time after which an unacknowledged `+CMT`/`+CDS` (with `AT+CSMS=1`) counts as missed.
    pub cnma_timeout_ms: u64,
    /// Delay from an accepted SUBMIT with TP-SRR to its status report.
    pub status_report_delay_ms: u64,
    /// SIMCom: `AT+CPCMREG=1` answers ERROR until this long after the call connected.
    pub cpcmreg_delay_ms: u64,
    /// `AT+CSQ` rssi.
    pub rssi: u8,
    /// Service centre address (`AT+CSCA?`); `None` = empty, sends with SMSC `00` then fail (330).
    pub smsc: Option<String>,
    /// Override of the generated identity.
    pub identity: Option<Identity>,
}

impl Default for ModemSpec {
    fn default() -> Self {
        ModemSpec {
            profile: Profile::Generic,
            pin: None,
            pin_attempts: 3,
            puk: "12345678".into(),
            capacity: 30,
            latency: Latency::default(),
            boot_ms: 300,
            noise_interval_ms: 10_000,
            ring_interval_ms: 3_000,
            cnma_timeout_ms: 5_000,
            status_report_delay_ms: 200,
            cpcmreg_delay_ms: 1_000,
            rssi: 21,
            smsc: Some("+15550000000".into()),
            identity: None,
        }
    }
}
