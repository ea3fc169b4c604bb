//! The modem layer: one tokio task (actor) per modem that owns its AT serial port, runs the init
//! sequence, executes one command at a time, turns URCs into events, polls health and recovers a
//! stalled or vanished modem.
//!
//! It owns the port, the `at` digester's buffer and the modem's [`ModemStatus`]. It knows nothing of
//! members, SQL or rate limits: the dispatcher above decides what to send and what to retry; the
//! modem only reports precisely what happened (a TP-MR per part, or a [`SendError`] saying whether
//! the PDU had already been submitted). Inbound messages are published as [`ModemEvent::Sms`] with an
//! ack, and deleted from the SIM only after that ack (the layer above has stored them).
//!
//! Why an actor: the AT port is a strictly sequential resource (one command in flight; after
//! `AT+CMGS` the port waits at the `> ` prompt for the PDU, 3GPP TS 27.005 §3.5.1), so a single
//! owner task with queues in front of it is simpler and safer than a lock. Call control has its own
//! higher-priority queue, served right after the command in flight (as chan_dongle does).
//! Pending acks are futures inside the actor's own `select!`, never requests in its queue, so a full
//! event channel and a full command queue can never wait on each other.
//!
//! Files: [`handle`] (the API other tasks use), [`actor`] (the task), [`init`] (the init plan per
//! profile), [`port`] (opening and reading the tty), [`recovery`] (escalation and back-off maths),
//! [`status`], [`events`], [`error`].

pub mod actor;
pub mod balance;
pub mod error;
pub mod events;
pub mod handle;
pub mod init;
pub(crate) mod port;
pub mod recovery;
pub mod status;
pub mod ussd;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use actor::{ModemActor, spawn};
pub use error::{CommandError, ErrorClass, Failure, ModemError, SendError, class, cme_class};
pub use events::ModemEvent;
pub use handle::{CallOp, ModemHandle, OutgoingPart};
pub use init::InitOptions;
pub use status::{
    Identity, ModemState, ModemStatus, RecoveryRungs, Registration, Waiting, short_iccid,
};

/// The device family a modem belongs to; selects init variants and quirk handling (docs/modems.md,
/// "Quirks gsmgate handles"). The config file names it (`profile = "huawei"`) and `config`
/// re-exports it. The simulator keeps its own `sim::Profile`, whose methods describe simulated
/// hardware rather than quirks to handle; the daemon maps one to the other by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Plain 27.005/27.007.
    #[default]
    Generic,
    /// Huawei E1550/E173/E1752 class sticks.
    Huawei,
    /// SIMCom SIM7600 / A76xx.
    Simcom,
    /// Quectel EC25/EG25/EC20.
    Quectel,
    /// SIMCom SIM800.
    Sim800,
    /// Wavecom Multiband.
    Wavecom,
    /// ZTE / Qualcomm M6280.
    Zte,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 7] = [
        Profile::Generic,
        Profile::Huawei,
        Profile::Simcom,
        Profile::Quectel,
        Profile::Sim800,
        Profile::Wavecom,
        Profile::Zte,
    ];

    /// The name used in the config file and in `gsmgate modems`.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::Huawei => "huawei",
            Profile::Simcom => "simcom",
            Profile::Quectel => "quectel",
            Profile::Sim800 => "sim800",
            Profile::Wavecom => "wavecom",
            Profile::Zte => "zte",
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Timeouts and intervals of one modem. Defaults follow what existing modem daemons use and the
/// vendor manuals allow, named per field; tests shrink them with [`Timeouts::fast`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A plain command (27.007 set/query): chan_dongle 5 s, python-gsmmodem 10 s.
    pub plain: Duration,
    /// One `AT` probe while syncing and for liveness (chan_dongle ping: 1 s).
    pub ping: Duration,
    /// `AT+CPIN?` / entering the PIN (python-gsmmodem 15 s, smstools3 30 s for the PIN).
    pub pin: Duration,
    /// `AT+CFUN` (Quectel EC2x AT Commands Manual §2.22: 15 s).
    pub cfun: Duration,
    /// `AT+CMGS=<len>` until the `> ` prompt (smstools3 10 s; chan_dongle, python-gsmmodem 5 s).
    pub prompt: Duration,
    /// A body (PDU + Ctrl-Z of `AT+CMGW`, a file upload) or `ATD` until its final result (the
    /// maximum of the Quectel EC2x AT Commands Manual §9.8, "determined by network"; SIM800
    /// manual: 60 s).
    pub sms_result: Duration,
    /// A submitted `AT+CMGS` (PDU + Ctrl-Z written) without its `+CMGS`/error after this long
    /// makes the modem *suspect*: the send is given up as in doubt and the liveness probe runs
    /// (docs/modems.md, "Stalls"). 30 s: three times the 5–10 s a send takes on a live network
    /// (smstools3's FAQ), under every peer's give-up (python-gsmmodem 35 s, chan_dongle 40 s,
    /// smstools3 60 s) and under the modem's own relay timer TR1M (35–45 s, 3GPP TS 24.011
    /// §10), after which a live modem answers with an error by itself.
    pub send_suspect: Duration,
    /// `AT+CMGL`/`AT+CMGR` (smstools3 60 s).
    pub list: Duration,
    /// Call control (`ATA`, `AT+CHUP`, `AT+CLCC`).
    pub call: Duration,
    /// Pause between `AT` probes while syncing (python-gsmmodem: 0.5 s).
    pub sync_interval: Duration,
    /// Probes before sync gives up.
    pub sync_attempts: u32,
    /// How long the line must stay silent while syncing before stale output from before (a
    /// killed process's last answer, a late `+CMGS`) counts as drained. Longer than the modem's
    /// answer to a plain `AT`.
    pub sync_quiet: Duration,
    /// After `AT+CFUN=1,1`: how long to wait for the modem to answer again.
    pub reboot_wait: Duration,
    /// Health poll (CSQ, CREG?, COPS?).
    pub health_interval: Duration,
    /// Safety-net storage drain (`AT+CMGL=4`) against lost `+CMTI`.
    pub drain_interval: Duration,
    /// Polling a vanished port path for its return.
    pub reopen_poll: Duration,
    /// First recovery back-off; doubles per failed attempt up to `recovery_max`.
    pub recovery_base: Duration,
    /// Longest recovery back-off.
    pub recovery_max: Duration,
    /// Full failed recovery cycles (resync, reset, reopen) before the modem leaves the pool.
    pub recovery_cycles: u32,
    /// Step of the "SIM/device busy" back-off (python-gsmmodem: 0.2 s more per hit).
    pub busy_step: Duration,
    /// Busy answers tolerated per command before it fails.
    pub busy_retries: u32,
    /// Bounded wait for the in-flight command at shutdown: long enough for a send just submitted
    /// to be answered on a live network (its `+CMGS: <mr>` is then recorded instead of leaving
    /// the row in doubt), short enough that SIGTERM returns within a few seconds.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            plain: Duration::from_secs(10),
            ping: Duration::from_secs(1),
            pin: Duration::from_secs(30),
            cfun: Duration::from_secs(15),
            prompt: Duration::from_secs(10),
            sms_result: Duration::from_secs(120),
            send_suspect: Duration::from_secs(30),
            list: Duration::from_secs(60),
            call: Duration::from_secs(10),
            sync_interval: Duration::from_millis(500),
            sync_attempts: 12,
            sync_quiet: Duration::from_millis(300),
            reboot_wait: Duration::from_secs(60),
            health_interval: Duration::from_secs(30),
            drain_interval: Duration::from_secs(300),
            reopen_poll: Duration::from_secs(1),
            recovery_base: Duration::from_secs(2),
            recovery_max: Duration::from_secs(120),
            recovery_cycles: 3,
            busy_step: Duration::from_millis(200),
            busy_retries: 8,
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

impl Timeouts {
    /// Short timeouts for tests against the simulator.
    pub fn fast() -> Self {
        Timeouts {
            plain: Duration::from_secs(2),
            ping: Duration::from_millis(300),
            pin: Duration::from_secs(2),
            cfun: Duration::from_secs(2),
            prompt: Duration::from_secs(2),
            sms_result: Duration::from_secs(3),
            send_suspect: Duration::from_secs(3),
            list: Duration::from_secs(3),
            call: Duration::from_secs(2),
            sync_interval: Duration::from_millis(50),
            sync_attempts: 20,
            sync_quiet: Duration::from_millis(100),
            reboot_wait: Duration::from_secs(5),
            health_interval: Duration::from_secs(2),
            drain_interval: Duration::from_secs(30),
            reopen_poll: Duration::from_millis(50),
            recovery_base: Duration::from_millis(50),
            recovery_max: Duration::from_millis(500),
            recovery_cycles: 2,
            busy_step: Duration::from_millis(20),
            busy_retries: 8,
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// Everything one modem actor needs to know.
#[derive(Debug, Clone)]
pub struct ModemConfig {
    /// The modem's name (log span, events, status).
    pub name: String,
    /// AT tty path, ideally a stable `/dev/serial/by-id` or udev symlink (re-resolved on reopen).
    pub port: PathBuf,
    pub baud: u32,
    /// SIM PIN, entered once if the SIM asks for it.
    pub pin: Option<String>,
    pub profile: Profile,
    pub init: InitOptions,
    pub timeouts: Timeouts,
    /// Depth of the normal request queue (the call queue is a quarter of it, at least 4).
    pub queue_depth: usize,
}

impl ModemConfig {
    /// A configuration with defaults for everything but name and port.
    pub fn new(name: impl Into<String>, port: impl Into<PathBuf>) -> ModemConfig {
        ModemConfig {
            name: name.into(),
            port: port.into(),
            baud: 115_200,
            pin: None,
            profile: Profile::Generic,
            init: InitOptions::default(),
            timeouts: Timeouts::default(),
            queue_depth: 32,
        }
    }
}
