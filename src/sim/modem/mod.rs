//! The per-modem AT state machine: everything one simulated modem remembers and how it answers.
//! It is sans-I/O: bytes from the host go in through [`ModemCore::feed`], time goes in through
//! [`ModemCore::poll`], and bytes for the host come out of [`ModemCore::take_due`] with the
//! instant they are due. The pty task (`at_port.rs`) owns the file descriptors; the network
//! (`network.rs`) owns the phones and is reached only through the `Radio` contract (`radio.rs`).
//! Nothing here does I/O or sleeps.
//!
//! This file owns the state and the routing of one command to the family that answers it; the
//! families are the other files: `general` (V.250 basics, identity, character set), `registration`
//! (SIM lock, CFUN, signal, network registration), `sms` (PDU-mode settings, sending, the
//! `AT+CMGS`/`AT+CMGW` prompt), `storage` (the SM/ME/SR memories and the commands that read and
//! delete them), `delivery` (MT messages and status reports routed per `AT+CNMI`, acks), `voice`
//! (ringing, answer, hang-up, audio routing), `ussd` (`AT+CUSD` and the network's menu), `files` (uploads to the flash and playback into a
//! call), `timers` (boot, reboot, vendor noise) and `line` (the serial line discipline: echo,
//! command lines, prompts, result codes, URCs).
//!
//! Why the shape: a real modem reads its input serially, so a command with latency blocks the
//! commands typed after it (input is buffered until `busy_until`), while URCs keep coming out at
//! any time — also between a command's echo and its result, which is exactly the interleaving the
//! daemon must survive (docs/modems.md, "Quirks gsmgate handles"). URCs are held back only while
//! the `> ` prompt is open. Each family answers `None` for a command it does not know, so the
//! router tries them in turn and an unknown command falls through to the profile's error wording.
//! Facts reproduced are cited inline by spec clause, vendor manual or the project whose device
//! transcripts show them; docs/simulator.md lists them per profile.

mod delivery;
mod files;
mod general;
mod line;
mod registration;
mod sms;
mod spec;
mod storage;
mod timers;
mod ussd;
mod voice;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

pub use spec::{Latency, ModemSpec, MsRange};
pub use ussd::{BALANCE as USSD_BALANCE, DATA as USSD_DATA, MENU as USSD_MENU};

use super::command::Command;
use super::faults::{FaultState, Rng};
use super::files::{FileSystem, Playback};
use super::profile::{Identity, Profile};
use super::radio::SharedRadio;

/// One stored message (27.005 §3.1 `<stat>`: 0 REC UNREAD, 1 REC READ, 2 STO UNSENT, 3 STO SENT).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    stat: u8,
    /// The PDU including its SMSC field.
    pdu: Vec<u8>,
}

impl Stored {
    /// TPDU length as `+CMGR`/`+CMGL` report it: octets after the SMSC field.
    fn tpdu_len(&self) -> usize {
        tpdu_len(&self.pdu)
    }
}

/// Octets after the SMSC field (first octet = SMSC length).
fn tpdu_len(pdu: &[u8]) -> usize {
    let smsc = pdu.first().copied().unwrap_or(0) as usize;
    pdu.len().saturating_sub(1 + smsc)
}

/// A message memory (27.005 §3.2.2 `<mem>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mem {
    Sm,
    Me,
    Sr,
}

impl Mem {
    fn parse(s: &str) -> Option<Mem> {
        match s.to_ascii_uppercase().as_str() {
            // MT ("SM and ME") is treated as SM: one combined store is enough for a simulator.
            "SM" | "MT" => Some(Mem::Sm),
            "ME" => Some(Mem::Me),
            "SR" => Some(Mem::Sr),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Mem::Sm => "SM",
            Mem::Me => "ME",
            Mem::Sr => "SR",
        }
    }
}

/// Session settings that a reboot (and ATZ) restores: echo, CNMI, charset and the rest come
/// back to their defaults after any reboot (docs/simulator.md, "What every modem does").
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    echo: bool,
    verbose: bool,
    quiet: bool,
    cmee: u8,
    cmgf: u8,
    creg: u8,
    cgreg: u8,
    clip: bool,
    crc: bool,
    cvhu: u8,
    csms: u8,
    cnmi: [u8; 5],
    cscs: String,
    cmms: u8,
    mems: [Mem; 3],
    huawei_curc: bool,
    quectel_ccinfo: bool,
    clcc_urc: bool,
}

impl Settings {
    fn defaults() -> Settings {
        Settings {
            echo: true,
            verbose: true,
            quiet: false,
            cmee: 0,
            cmgf: 0,
            creg: 0,
            cgreg: 0,
            clip: false,
            crc: false,
            cvhu: 0,
            csms: 0,
            cnmi: [1, 0, 0, 0, 0],
            cscs: "IRA".into(),
            cmms: 0,
            mems: [Mem::Sm, Mem::Sm, Mem::Sm],
            huawei_curc: true,
            quectel_ccinfo: false,
            clcc_urc: false,
        }
    }
}

/// SIM lock state (27.007 §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SimLock {
    Ready,
    Pin,
    Puk,
}

impl SimLock {
    /// The state as `AT+CPIN?` names it.
    fn name(self) -> &'static str {
        match self {
            SimLock::Ready => "READY",
            SimLock::Pin => "SIM PIN",
            SimLock::Puk => "SIM PUK",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PromptKind {
    /// `AT+CMGS=<len>`.
    Send { len: usize },
    /// `AT+CMGW=<len>[,<stat>]`.
    Write { len: usize, stat: u8 },
    /// Raw bytes, counted, no terminator: SIM800 `AT+FSWRITE`, SIMCom `AT+CFTRANRX`, Quectel
    /// `AT+QFUPL` (after `CONNECT`).
    Upload {
        file: String,
        size: usize,
        how: UploadKind,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UploadKind {
    /// SIM800 `AT+FSWRITE=<file>,<mode>,…` into an existing file (mode 1 = append): `OK`.
    FsWrite { append: bool },
    /// SIMCom `AT+CFTRANRX`: the file is replaced; `OK`.
    Cftranrx,
    /// Quectel `AT+QFUPL`: a new file; `+QFUPL: <size>,<checksum>` and `OK`.
    Qfupl,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Line(Vec<u8>),
    Prompt { kind: PromptKind, data: Vec<u8> },
}

/// The call state (one call at a time).
#[derive(Debug, Clone)]
struct Call {
    id: u64,
    number: String,
    active: bool,
    answered_at: Option<Instant>,
    next_ring: Instant,
    give_up_at: Option<Instant>,
    hangup_after: Option<Duration>,
    audio_on: bool,
    /// Quectel: QPCMV enabled before answering.
    qpcmv: bool,
    /// A stored file playing into the call (QPSND, CCMXPLAY, CREC=4).
    playback: Option<Playback>,
}

/// Audio routing of the active call as the audio task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioRoute {
    pub call_id: u64,
}

/// An MT message on its way into the modem (retried while it cannot be taken).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mt {
    Sms(Vec<u8>),
    Report(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Timer {
    BootDone,
    BootLine(String),
    Noise(u32),
    StatusReport(Vec<u8>),
    CnmaTimeout(u64),
    /// The network's `+CUSD` answer to a USSD request (`ussd`).
    Ussd(String),
    /// Retry pending MT deliveries once the current answer is out (after CNMA, CMGD).
    RetryDelivery,
}

/// Snapshot for `status` requests and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModemStatus {
    pub index: usize,
    pub profile: Profile,
    pub identity: Identity,
    pub echo: bool,
    pub cmee: u8,
    pub cmgf: u8,
    pub cnmi: [u8; 5],
    pub csms: u8,
    pub sim: String,
    pub pin_attempts: u8,
    pub registered: bool,
    pub booting: bool,
    pub stalled: bool,
    pub stored_sm: usize,
    pub stored_me: usize,
    pub stored_sr: usize,
    pub capacity: usize,
    pub next_mr: u8,
    pub call: Option<String>,
    pub commands_seen: u64,
    /// USSD strings received (`AT+CUSD=1,"…"`), answered or not.
    pub ussd_requests: u64,
}

/// One simulated modem's complete state.
pub struct ModemCore {
    index: usize,
    spec: ModemSpec,
    identity: Identity,
    radio: SharedRadio,
    rng: Rng,
    settings: Settings,
    sim: SimLock,
    pin_attempts: u8,
    puk_attempts: u8,
    pin: Option<String>,
    registered: bool,
    cfun: u8,
    rssi: u8,
    smsc: Option<String>,
    sm: Vec<Option<Stored>>,
    me: Vec<Option<Stored>>,
    sr: Vec<Option<Stored>>,
    next_mr: u8,
    input: Input,
    pending_in: VecDeque<u8>,
    busy_until: Instant,
    booting_until: Option<Instant>,
    out: Vec<(Instant, Vec<u8>)>,
    held_urcs: Vec<String>,
    timers: Vec<(Instant, Timer)>,
    pending_mt: VecDeque<Mt>,
    awaiting_ack: Option<(u64, Mt)>,
    ack_seq: u64,
    memfull_notified: bool,
    /// A USSD menu waits for a reply (`ussd`).
    ussd_menu: bool,
    /// The balance answer when set (`SimHandle::set_ussd_balance`), else [`USSD_BALANCE`].
    ussd_balance: Option<String>,
    /// USSD strings received (`AT+CUSD=1,"…"`).
    ussd_requests: u64,
    call: Option<Call>,
    /// Wavecom: command lines still to be refused with 515 after CFUN=1.
    busy_lines: u8,
    /// ZTE: the first `AT+CSCA?` after boot answers +CME ERROR: 14.
    zte_csca_busy: bool,
    last_line: String,
    /// The flash: uploaded files (docs/simulator.md, "Files on the modem and their playback").
    files: FileSystem,
    /// SIMCom `AT+FSCD` current directory.
    simcom_cwd: String,
    /// Files whose playback started (call id, file size), and audio played since the last take
    /// (call id, samples): taken by the pty task for the network's call record.
    played_files: Vec<(u64, usize)>,
    played_audio: Vec<(u64, Vec<i16>)>,
    pub faults: FaultState,
    commands_seen: u64,
    now: Instant,
}

/// Outcome of one command.
enum Outcome {
    /// Information lines, then OK (when it is the last command).
    Ok(Vec<String>),
    /// Information lines and no final result (Wavecom `+CPIN: READY`, as in python-gsmmodem's
    /// fakemodems transcripts).
    NoFinal(Vec<String>),
    Cme(u16),
    Cms(u16),
    /// Plain ERROR regardless of CMEE.
    Error,
    /// Unknown command (profile wording).
    Unsupported,
    /// A final result other than OK/ERROR (`NO CARRIER`).
    Final(&'static str),
    Prompt(PromptKind),
    /// OK, then reboot.
    Reboot,
}

impl ModemCore {
    /// A modem that is powered on and booting at `now` (its boot lines follow after `boot_ms`).
    pub fn new(
        index: usize,
        spec: ModemSpec,
        radio: SharedRadio,
        seed: u64,
        now: Instant,
    ) -> ModemCore {
        let identity = spec
            .identity
            .clone()
            .unwrap_or_else(|| Identity::for_index(index));
        let capacity = spec.capacity;
        let mut core = ModemCore {
            index,
            identity,
            radio,
            rng: Rng::new(seed ^ (index as u64).wrapping_mul(0x1000_0001)),
            settings: Settings::defaults(),
            sim: if spec.pin.is_some() {
                SimLock::Pin
            } else {
                SimLock::Ready
            },
            pin_attempts: spec.pin_attempts,
            puk_attempts: 10,
            pin: spec.pin.clone(),
            registered: true,
            cfun: 1,
            rssi: spec.rssi,
            smsc: spec.smsc.clone(),
            sm: vec![None; capacity],
            me: vec![None; capacity],
            sr: vec![None; capacity],
            next_mr: (index as u8).wrapping_mul(37),
            input: Input::Line(Vec::new()),
            pending_in: VecDeque::new(),
            busy_until: now,
            booting_until: None,
            out: Vec::new(),
            held_urcs: Vec::new(),
            timers: Vec::new(),
            pending_mt: VecDeque::new(),
            awaiting_ack: None,
            ack_seq: 0,
            memfull_notified: false,
            ussd_menu: false,
            ussd_balance: None,
            ussd_requests: 0,
            call: None,
            busy_lines: 0,
            zte_csca_busy: false,
            last_line: String::new(),
            files: FileSystem::default(),
            simcom_cwd: "C:".into(),
            played_files: Vec::new(),
            played_audio: Vec::new(),
            faults: FaultState::default(),
            commands_seen: 0,
            now,
            spec,
        };
        core.reboot(now);
        core
    }

    pub fn index(&self) -> usize {
        self.index
    }
    pub fn profile(&self) -> Profile {
        self.spec.profile
    }
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    /// A different SIM card in this modem (`SimHandle::insert_sim`).
    pub fn insert_sim(&mut self, identity: Identity) {
        self.identity = identity;
    }
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// A snapshot for `status` requests and tests.
    pub fn status(&self) -> ModemStatus {
        ModemStatus {
            index: self.index,
            profile: self.spec.profile,
            identity: self.identity.clone(),
            echo: self.settings.echo,
            cmee: self.settings.cmee,
            cmgf: self.settings.cmgf,
            cnmi: self.settings.cnmi,
            csms: self.settings.csms,
            sim: self.sim.name().into(),
            pin_attempts: self.pin_attempts,
            registered: self.radio_on(),
            booting: self.booting_until.is_some(),
            stalled: self.faults.stall,
            stored_sm: self.used(Mem::Sm),
            stored_me: self.used(Mem::Me),
            stored_sr: self.used(Mem::Sr),
            capacity: self.spec.capacity,
            next_mr: self.next_mr,
            call: self.call.as_ref().map(|c| {
                if c.active {
                    "active".into()
                } else {
                    "ringing".into()
                }
            }),
            commands_seen: self.commands_seen,
            ussd_requests: self.ussd_requests,
        }
    }

    /// Runs one command of a line: the SIM lock gate first, then the family that knows it.
    fn execute(&mut self, cmd: &Command) -> Outcome {
        if let Some(refused) = self.sim_gate(&cmd.name) {
            return refused;
        }
        self.basic_command(cmd)
            .or_else(|| self.identity_command(cmd))
            .or_else(|| self.registration_command(cmd))
            .or_else(|| self.sms_setting(cmd))
            .or_else(|| self.sms_message(cmd))
            .or_else(|| self.voice_command(cmd))
            .or_else(|| self.file_command(cmd))
            .or_else(|| self.ussd_command(cmd))
            .unwrap_or(Outcome::Unsupported)
    }
}
