//! The per-modem AT state machine: everything one simulated modem remembers and how it answers.
//! It is sans-I/O: bytes from the host go in through [`ModemCore::feed`], time goes in through
//! [`ModemCore::poll`], and bytes for the host come out of [`ModemCore::take_due`] with the
//! instant they are due. The pty task (`pty.rs`) owns the file descriptors; the network
//! (`network.rs`) owns the phones. This file must not do I/O or sleep.
//!
//! Why the shape: a real modem reads its input serially, so a command with latency blocks the
//! commands typed after it (input is buffered until `busy_until`), while URCs keep coming out at
//! any time — also between a command's echo and its result, which is exactly the interleaving the
//! daemon must survive (MODEMS.md §3.2). URCs are held back only while the `> ` prompt is open.
//! Facts reproduced are cited inline as MODEMS.md §n or by spec clause.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::command::{self, Arg, Command, Form};
use super::faults::{FaultState, Rng};
use super::files::{FileInfo, FileSystem, Playback, quectel_name, simcom_path};
use super::profile::{Identity, Profile, iccid_swapped};

/// Range of a simulated delay in milliseconds (uniform between the two, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MsRange(pub u64, pub u64);

/// Per-command-kind latency: how long the modem "thinks" before it answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    /// Any command not listed below.
    pub default: MsRange,
    /// From Ctrl-Z to `+CMGS:` / `+CMSS:` (real networks: 1–10 s, MODEMS.md §1.2).
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

/// What the state machine needs from the simulated network. `network.rs` implements it; unit
/// tests use a recorder.
pub trait Radio: Send {
    /// A SUBMIT left modem `modem` with the modem-chosen reference `mr`. `pdu` includes the SMSC
    /// field. Returns the status report PDU (with SMSC field) to deliver back, if TP-SRR was set,
    /// or an error text if the PDU is not a valid SUBMIT (the modem answers `+CMS ERROR: 304`).
    fn submit(
        &mut self,
        modem: usize,
        mr: u8,
        pdu: &[u8],
        unix_now: i64,
    ) -> Result<Option<Vec<u8>>, String>;
    /// A call changed state (answered, ended).
    fn call_event(&mut self, modem: usize, call_id: u64, event: CallEvent, unix_now: i64);
}

/// Call state changes reported to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    Answered,
    /// The modem hung up (ATH/AT+CHUP).
    HungUpByModem,
    /// The phone hung up or gave up ringing.
    HungUpByPhone,
    /// The modem went away (reboot, unplug) during the call.
    Dropped,
    /// Audio path switched on (PCM frames flow on the audio tty).
    AudioOn,
    /// A file stored on the modem was played to the caller (SIM800 `AT+CREC=4`).
    FilePlayed,
}

/// The radio as shared by the modems and the control side.
pub type SharedRadio = Arc<Mutex<dyn Radio>>;

/// One stored message (27.005 §3.1 `<stat>`: 0 REC UNREAD, 1 REC READ, 2 STO UNSENT, 3 STO SENT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub stat: u8,
    /// The PDU including its SMSC field.
    pub pdu: Vec<u8>,
}

impl Stored {
    /// TPDU length as `+CMGR`/`+CMGL` report it: octets after the SMSC field.
    pub fn tpdu_len(&self) -> usize {
        tpdu_len(&self.pdu)
    }
}

/// Octets after the SMSC field (first octet = SMSC length).
pub fn tpdu_len(pdu: &[u8]) -> usize {
    let smsc = pdu.first().copied().unwrap_or(0) as usize;
    pdu.len().saturating_sub(1 + smsc)
}

/// A message memory (27.005 §3.2.2 `<mem>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mem {
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

/// Session settings that a reboot (and ATZ) restores (MODEMS.md §6.15).
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
pub enum SimLock {
    Ready,
    Pin,
    Puk,
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
    call: Option<Call>,
    /// Wavecom: command lines still to be refused with 515 after CFUN=1.
    busy_lines: u8,
    /// ZTE: the first `AT+CSCA?` after boot answers +CME ERROR: 14.
    zte_csca_busy: bool,
    last_line: String,
    /// The flash: uploaded files (MODEMS.md §4.5).
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
    /// Information lines and no final result (Wavecom `+CPIN: READY`, MODEMS.md §6.1).
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

fn cme_text(code: u16) -> &'static str {
    match code {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        16 => "incorrect password",
        20 => "memory full",
        21 => "invalid index",
        30 => "no network service",
        50 => "Incorrect parameters",
        515 => "Please wait, init or command processing in progress.",
        _ => "unknown",
    }
}

fn cms_text(code: u16) -> &'static str {
    match code {
        300 => "ME failure",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        316 => "SIM PUK required",
        321 => "invalid memory index",
        322 => "memory full",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        340 => "no +CNMA acknowledgement expected",
        500 => "unknown error",
        _ => "unknown error",
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn parse_hex(s: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

fn ucs2_hex(s: &str) -> String {
    s.encode_utf16().map(|u| format!("{u:04X}")).collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const MAX_LINE: usize = 2048;
const MAX_PROMPT: usize = 64 * 1024;
/// Largest simulated upload (the flash is not infinite; a 300 s greeting is 4.8 MB).
const MAX_UPLOAD: i64 = 8 * 1024 * 1024;

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
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    // ----- time and output -------------------------------------------------------------------

    fn schedule_out(&mut self, at: Instant, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let pos = self
            .out
            .iter()
            .position(|(t, _)| *t > at)
            .unwrap_or(self.out.len());
        self.out.insert(pos, (at, bytes));
    }

    /// Bytes due at or before `now`, in order.
    pub fn take_due(&mut self, now: Instant) -> Vec<u8> {
        let n = self.out.iter().take_while(|(t, _)| *t <= now).count();
        self.out.drain(..n).flat_map(|(_, b)| b).collect()
    }

    /// Raw bytes for the host right now (garbage injection).
    pub fn inject_raw(&mut self, bytes: Vec<u8>, now: Instant) {
        self.schedule_out(now, bytes);
    }

    /// The next instant at which `poll` or `take_due` has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut consider = |t: Instant| d = Some(d.map_or(t, |x: Instant| x.min(t)));
        if let Some((t, _)) = self.out.first() {
            consider(*t);
        }
        for (t, _) in &self.timers {
            consider(*t);
        }
        if !self.pending_in.is_empty() {
            consider(
                self.booting_until
                    .unwrap_or(self.busy_until)
                    .max(self.busy_until),
            );
        }
        if let Some(c) = &self.call {
            if !c.active {
                consider(c.next_ring);
                if let Some(g) = c.give_up_at {
                    consider(g);
                }
            } else {
                if let (Some(a), Some(h)) = (c.answered_at, c.hangup_after) {
                    consider(a + h);
                }
                if let Some(p) = &c.playback {
                    consider(p.next_due());
                }
            }
        }
        d
    }

    fn urc(&mut self, line: &str) {
        if matches!(self.input, Input::Prompt { .. }) {
            self.held_urcs.push(line.to_string());
            return;
        }
        let bytes = format!("\r\n{line}{}", self.spec.profile.urc_ending()).into_bytes();
        self.schedule_out(self.now, bytes);
    }

    /// Two-line URCs (`+CMT`, `+CDS`): header and PDU.
    fn urc2(&mut self, head: &str, pdu: &str) {
        self.urc(&format!("{head}\r\n{pdu}"));
    }

    fn flush_held_urcs(&mut self) {
        for u in std::mem::take(&mut self.held_urcs) {
            self.urc(&u);
        }
    }

    fn latency(&mut self, r: MsRange) -> Duration {
        Duration::from_millis(self.rng.range(r.0, r.1))
    }

    // ----- input -----------------------------------------------------------------------------

    /// Bytes the host wrote.
    pub fn feed(&mut self, bytes: &[u8], now: Instant) {
        self.pending_in.extend(bytes.iter().copied());
        self.poll(now);
    }

    /// Advances time: timers, calls, retried deliveries, buffered input.
    pub fn poll(&mut self, now: Instant) {
        self.now = now;
        self.run_timers(now);
        self.run_call(now);
        self.try_deliver_pending();
        if let Some(b) = self.booting_until
            && now < b
        {
            // A booting modem does not listen; what the host types is lost.
            self.pending_in.clear();
            return;
        }
        while now >= self.busy_until {
            let Some(b) = self.pending_in.pop_front() else {
                break;
            };
            if self.faults.stall {
                continue;
            }
            self.input_byte(b);
        }
    }

    fn echo(&mut self, b: &[u8]) {
        if self.settings.echo {
            self.schedule_out(self.now, b.to_vec());
        }
    }

    fn input_byte(&mut self, b: u8) {
        match &mut self.input {
            Input::Line(buf) => match b {
                b'\r' => {
                    let line = String::from_utf8_lossy(buf).into_owned();
                    buf.clear();
                    self.echo(b"\r");
                    self.execute_line(&line);
                }
                b'\n' => {
                    // LF after CR (hosts that send CRLF) is ignored by real modems.
                }
                0x08 | 0x7F => {
                    buf.pop();
                    self.echo(&[b]);
                }
                0x1A | 0x1B => {
                    // Ctrl-Z / ESC outside a prompt: nothing to send or cancel (hosts send them
                    // to close a stuck prompt, MODEMS.md §1.1 step 1).
                    buf.clear();
                }
                _ => {
                    if buf.len() < MAX_LINE {
                        buf.push(b);
                    }
                    // A/ repeats the last command line without a CR (V.250 §6.2.2).
                    if buf.len() == 2 && buf[0].eq_ignore_ascii_case(&b'A') && buf[1] == b'/' {
                        buf.clear();
                        self.echo(&[b]);
                        let last = self.last_line.clone();
                        self.execute_line(&last);
                        return;
                    }
                    self.echo(&[b]);
                }
            },
            Input::Prompt { kind, data } => {
                if let PromptKind::Upload { size, .. } = kind {
                    data.push(b);
                    if data.len() >= *size {
                        self.finish_upload();
                    }
                    return;
                }
                match b {
                    0x1A => self.finish_prompt(),
                    0x1B => {
                        // ESC cancels: OK, nothing sent [QEC §9.8].
                        self.input = Input::Line(Vec::new());
                        let d = self.latency(self.spec.latency.default);
                        let bytes = self.final_bytes("OK");
                        self.schedule_out(self.now + d, bytes);
                        self.flush_held_urcs();
                    }
                    _ => {
                        if data.len() < MAX_PROMPT {
                            data.push(b);
                        }
                        self.echo(&[b]);
                    }
                }
            }
        }
    }

    fn final_bytes(&self, text: &str) -> Vec<u8> {
        if self.settings.quiet {
            return Vec::new();
        }
        if self.settings.verbose {
            format!("\r\n{text}\r\n").into_bytes()
        } else {
            let code = match text {
                "OK" => "0",
                "CONNECT" => "1",
                "RING" => "2",
                "NO CARRIER" => "3",
                "ERROR" => "4",
                other => other,
            };
            format!("{code}\r").into_bytes()
        }
    }

    fn info_bytes(&self, lines: &[String]) -> Vec<u8> {
        if lines.is_empty() {
            return Vec::new();
        }
        let body = lines.join("\r\n");
        if self.settings.verbose {
            format!("\r\n{body}\r\n").into_bytes()
        } else {
            format!("{body}\r\n").into_bytes()
        }
    }

    fn error_text(&self, o: &Outcome) -> String {
        match o {
            Outcome::Cme(c) => match self.settings.cmee {
                1 => format!("+CME ERROR: {c}"),
                2 => format!("+CME ERROR: {}", cme_text(*c)),
                _ => "ERROR".into(),
            },
            Outcome::Cms(c) => match self.settings.cmee {
                1 => format!("+CMS ERROR: {c}"),
                2 => format!("+CMS ERROR: {}", cms_text(*c)),
                _ => "ERROR".into(),
            },
            Outcome::Unsupported => self.spec.profile.unsupported().into(),
            Outcome::Final(t) => (*t).into(),
            _ => "ERROR".into(),
        }
    }

    fn execute_line(&mut self, line: &str) {
        // Real modems hunt for "AT" and ignore what precedes it (line noise, a stray ESC).
        let upper = line.to_ascii_uppercase();
        let Some(pos) = upper.find("AT") else { return };
        let Some(text) = line.get(pos..) else { return };
        self.last_line = text.to_string();
        self.commands_seen += 1;
        let cmds = match command::parse_line(text) {
            Ok(c) => c,
            Err(_) => {
                let d = self.latency(self.spec.latency.default);
                let b = self.final_bytes("ERROR");
                self.schedule_out(self.now + d, b);
                self.busy_until = self.now + d;
                return;
            }
        };
        let mut kind = self.spec.latency.default;
        if cmds.iter().any(|c| c.name == "+CMGL" || c.name == "+CMGR") {
            kind = self.spec.latency.read;
        }
        let delay = self.latency(kind);
        let at = self.now + delay;
        self.busy_until = at;
        if self.busy_lines > 0 {
            // Wavecom after AT+CFUN=1: the next two command lines get 515 (MODEMS.md §6.1).
            self.busy_lines -= 1;
            let t = self.error_text(&Outcome::Cme(515));
            let b = self.final_bytes(&t);
            self.schedule_out(at, b);
            return;
        }
        let mut bytes = Vec::new();
        let mut ended = false;
        for cmd in &cmds {
            let o = self.execute(cmd);
            match o {
                Outcome::Ok(lines) => bytes.extend(self.info_bytes(&lines)),
                Outcome::NoFinal(lines) => {
                    bytes.extend(self.info_bytes(&lines));
                    ended = true;
                    break;
                }
                Outcome::Prompt(kind) => {
                    if self.spec.profile == Profile::Zte {
                        bytes.extend(self.zte_noise());
                    }
                    if matches!(
                        kind,
                        PromptKind::Upload {
                            how: UploadKind::Qfupl,
                            ..
                        }
                    ) {
                        // Quectel's data phase opens with CONNECT, not a prompt [QFILE].
                        bytes.extend(self.final_bytes("CONNECT"));
                    } else {
                        bytes.extend_from_slice(b"\r\n> ");
                    }
                    self.input = Input::Prompt {
                        kind,
                        data: Vec::new(),
                    };
                    ended = true;
                    break;
                }
                Outcome::Reboot => {
                    bytes.extend(self.final_bytes("OK"));
                    self.schedule_out(at, std::mem::take(&mut bytes));
                    self.reboot(at);
                    return;
                }
                err => {
                    let t = self.error_text(&err);
                    bytes.extend(self.final_bytes(&t));
                    ended = true;
                    break;
                }
            }
        }
        if !ended {
            bytes.extend(self.final_bytes("OK"));
        }
        self.schedule_out(at, bytes);
    }

    fn zte_noise(&self) -> Vec<u8> {
        // ZTE sends these before `> ` and before `+CMGS:` (MODEMS.md §3.2, PGM test_modem).
        b"\r\n+ZPASR: \"UMTS\"\r\n\r\n+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"\r\n"
            .to_vec()
    }

    // ----- commands ----------------------------------------------------------------------------

    fn needs_sim(name: &str) -> bool {
        !matches!(
            name,
            "E" | "V"
                | "Q"
                | "Z"
                | "&F"
                | "&W"
                | "&C"
                | "&D"
                | "I"
                | "X"
                | "L"
                | "M"
                | "+CGMI"
                | "+CGMM"
                | "+CGMR"
                | "+CGSN"
                | "+GMI"
                | "+GMM"
                | "+GMR"
                | "+GSN"
                | "+GCAP"
                | "+CPIN"
                | "+CMEE"
                | "+CFUN"
                | "+CSQ"
                | "+CREG"
                | "+CGREG"
                | "+CEREG"
                | "+CSCS"
                | "+CCID"
                | "+CICCID"
                | "+QCCID"
                | "^ICCID"
                | "+CRSM"
                | "^CURC"
                | "^CVOICE"
                | "+CLIP"
                | "+CRC"
                | "+CVHU"
                | "+QINDCFG"
                | "+QURCCFG"
                | "+CLCC"
                | "A"
                | "H"
                | "+CHUP"
                | "+CPINC"
                | "+QPINC"
                | "^CPIN"
                | "+IPR"
                | "+IFC"
                | "+CLAC"
                | "+CMGF"
                | "+CSMS"
                | "+CNMI"
                | "+CMMS"
        ) && !name.starts_with('S')
    }

    fn is_sms(name: &str) -> bool {
        matches!(
            name,
            "+CMGS"
                | "+CMGW"
                | "+CMSS"
                | "+CMGL"
                | "+CMGR"
                | "+CMGD"
                | "+CPMS"
                | "+CSCA"
                | "+CNMA"
                | "+CSMP"
        )
    }

    fn execute(&mut self, cmd: &Command) -> Outcome {
        let name = cmd.name.as_str();
        if self.sim != SimLock::Ready && Self::needs_sim(name) {
            let puk = self.sim == SimLock::Puk;
            return if Self::is_sms(name) {
                Outcome::Cms(if puk { 316 } else { 311 })
            } else {
                Outcome::Cme(if puk { 12 } else { 11 })
            };
        }
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let p = self.spec.profile;
        match (name, &cmd.form) {
            ("E", Form::Exec) => self.set_flag(cmd, |s, v| s.echo = v),
            ("V", Form::Exec) => self.set_flag(cmd, |s, v| s.verbose = v),
            ("Q", Form::Exec) => self.set_flag(cmd, |s, v| s.quiet = v),
            ("X" | "L" | "M" | "&C" | "&D" | "&W", _) => Outcome::Ok(vec![]),
            (n, _)
                if n.starts_with('S')
                    && n.len() > 1
                    && n[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                match cmd.form {
                    Form::Read => Outcome::Ok(vec![format!(
                        "{:03}",
                        if n == "S3" {
                            13
                        } else if n == "S4" {
                            10
                        } else {
                            0
                        }
                    )]),
                    _ => Outcome::Ok(vec![]),
                }
            }
            ("Z" | "&F", Form::Exec) => {
                self.settings = Settings::defaults();
                Outcome::Ok(vec![])
            }
            ("I", Form::Exec) => Outcome::Ok(vec![
                format!("Manufacturer: {}", p.manufacturer()),
                format!("Model: {}", p.model()),
                format!("Revision: {}", p.revision()),
                format!("IMEI: {}", self.identity.imei),
                "+GCAP: +CGSM".into(),
            ]),
            ("+CGMI" | "+GMI", Form::Exec) => Outcome::Ok(vec![p.manufacturer().into()]),
            ("+CGMM" | "+GMM", Form::Exec) => Outcome::Ok(vec![p.model().into()]),
            ("+CGMR" | "+GMR", Form::Exec) => Outcome::Ok(vec![p.revision().into()]),
            ("+CGSN" | "+GSN", Form::Exec) => Outcome::Ok(vec![self.identity.imei.clone()]),
            (
                "+CGMI" | "+CGMM" | "+CGMR" | "+CGSN" | "+CIMI" | "+GMI" | "+GMM" | "+GMR" | "+GSN",
                Form::Test,
            ) => Outcome::Ok(vec![]),
            ("+GCAP", Form::Exec) => Outcome::Ok(vec!["+GCAP: +CGSM".into()]),
            ("+CIMI", Form::Exec) => Outcome::Ok(vec![self.identity.imsi.clone()]),
            ("+QCCID", Form::Exec) if p == Profile::Quectel => {
                Outcome::Ok(vec![format!("+QCCID: {}", self.identity.iccid)])
            }
            ("+CCID" | "+CICCID", Form::Exec | Form::Read) if p == Profile::Simcom => {
                Outcome::Ok(vec![format!("+ICCID: {}", self.identity.iccid)])
            }
            ("+CCID", Form::Exec) if p == Profile::Sim800 => {
                Outcome::Ok(vec![self.identity.iccid.clone()])
            }
            ("^ICCID", Form::Read) if p == Profile::Huawei => {
                Outcome::Ok(vec![format!("^ICCID: {}", self.identity.iccid)])
            }
            ("+CRSM", Form::Set) => {
                // Only READ BINARY of EF_ICCID (27.007 §8.18; 176 = READ BINARY, 12258 = 0x2FE2).
                if a(0) == Some(176) && a(1) == Some(12258) {
                    Outcome::Ok(vec![format!(
                        "+CRSM: 144,0,\"{}\"",
                        iccid_swapped(&self.identity.iccid)
                    )])
                } else {
                    Outcome::Cme(4)
                }
            }
            ("+CMEE", Form::Set) => match a(0) {
                Some(v @ 0..=2) => {
                    self.settings.cmee = v as u8;
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(50),
            },
            ("+CMEE", Form::Read) => Outcome::Ok(vec![format!("+CMEE: {}", self.settings.cmee)]),
            ("+CMEE", Form::Test) => Outcome::Ok(vec!["+CMEE: (0-2)".into()]),
            ("+CPIN", _) => self.cpin(cmd, &args),
            ("+CPINC" | "+QPINC", Form::Read | Form::Exec) => Outcome::Ok(vec![format!(
                "{}: \"SC\",{},{}",
                if name == "+QPINC" { "+QPINC" } else { "+CPINC" },
                self.pin_attempts,
                self.puk_attempts
            )]),
            ("+CFUN", Form::Read) => Outcome::Ok(vec![format!("+CFUN: {}", self.cfun)]),
            ("+CFUN", Form::Test) => Outcome::Ok(vec!["+CFUN: (0,1,4),(0-1)".into()]),
            ("+CFUN", Form::Set) => self.cfun_set(a(0), a(1)),
            ("+CSQ", Form::Exec) => Outcome::Ok(vec![format!(
                "+CSQ: {},99",
                if self.radio_on() { self.rssi } else { 99 }
            )]),
            ("+CSQ", Form::Test) => Outcome::Ok(vec!["+CSQ: (0-31,99),(0-7,99)".into()]),
            ("+CREG" | "+CGREG" | "+CEREG", _) => self.creg(cmd, a(0)),
            ("+COPS", Form::Read) => {
                if self.radio_on() {
                    Outcome::Ok(vec![format!(
                        "+COPS: 0,0,\"{}\",{}",
                        self.cs("GSMGATE SIM"),
                        if p == Profile::Quectel { 7 } else { 0 }
                    )])
                } else {
                    Outcome::Ok(vec!["+COPS: 0".into()])
                }
            }
            ("+COPS", Form::Set) => Outcome::Ok(vec![]),
            ("+COPS", Form::Test) => Outcome::Ok(vec![
                "+COPS: (2,\"GSMGATE SIM\",\"GSMGATE\",\"00101\",0),,(0-4),(0-2)".into(),
            ]),
            ("+CSCS", Form::Read) => {
                Outcome::Ok(vec![format!("+CSCS: \"{}\"", self.settings.cscs)])
            }
            ("+CSCS", Form::Test) => {
                Outcome::Ok(vec!["+CSCS: (\"GSM\",\"IRA\",\"UCS2\",\"8859-1\")".into()])
            }
            ("+CSCS", Form::Set) => match args
                .first()
                .and_then(Arg::text)
                .map(str::to_ascii_uppercase)
            {
                Some(c) if ["GSM", "IRA", "UCS2", "8859-1", "PCCP437"].contains(&c.as_str()) => {
                    self.settings.cscs = c;
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(4),
            },
            ("+CNUM", Form::Exec) => Outcome::Ok(vec![format!(
                "+CNUM: \"\",\"{}\",145",
                self.cs(&self.identity.number)
            )]),
            ("+CLIP", _) => self.flag_cmd(cmd, "+CLIP", |s| &mut s.clip, Some(1)),
            ("+CRC", _) => self.flag_cmd(cmd, "+CRC", |s| &mut s.crc, None),
            ("+CVHU", Form::Set) => {
                self.settings.cvhu = a(0).unwrap_or(0).clamp(0, 2) as u8;
                Outcome::Ok(vec![])
            }
            ("+CVHU", Form::Read) => Outcome::Ok(vec![format!("+CVHU: {}", self.settings.cvhu)]),
            ("+CVHU", Form::Test) => Outcome::Ok(vec!["+CVHU: (0-1)".into()]),
            ("^CURC", Form::Set) if p == Profile::Huawei => {
                // Gammu sends ^CURC=0 to silence Huawei noise [GAM atgen.c].
                self.settings.huawei_curc = a(0) != Some(0);
                Outcome::Ok(vec![])
            }
            ("^CVOICE", Form::Read) if p == Profile::Huawei => {
                Outcome::Ok(vec!["^CVOICE: 0,8000,16,20".into()])
            }
            ("^CVOICE", Form::Set) if p == Profile::Huawei => Outcome::Ok(vec![]),
            ("^PORTSEL" | "^USSDMODE" | "^U2DIAG", Form::Set) if p == Profile::Huawei => {
                Outcome::Ok(vec![])
            }
            ("+QINDCFG", Form::Set) if p == Profile::Quectel => {
                if args
                    .first()
                    .and_then(Arg::text)
                    .is_some_and(|t| t.eq_ignore_ascii_case("ccinfo"))
                {
                    self.settings.quectel_ccinfo = a(1) == Some(1);
                }
                Outcome::Ok(vec![])
            }
            ("+QURCCFG", Form::Set) if p == Profile::Quectel => Outcome::Ok(vec![]),
            // ---- SMS configuration -----------------------------------------------------------
            ("+CMGF", Form::Set) => match a(0) {
                Some(v @ 0..=1) => {
                    self.settings.cmgf = v as u8;
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(50),
            },
            ("+CMGF", Form::Read) => Outcome::Ok(vec![format!("+CMGF: {}", self.settings.cmgf)]),
            ("+CMGF", Form::Test) => Outcome::Ok(vec!["+CMGF: (0,1)".into()]),
            ("+CSMS", Form::Set) => match a(0) {
                Some(v @ 0..=1) => {
                    self.settings.csms = v as u8;
                    Outcome::Ok(vec!["+CSMS: 1,1,1".into()])
                }
                _ => Outcome::Cms(303),
            },
            ("+CSMS", Form::Read) => {
                Outcome::Ok(vec![format!("+CSMS: {},1,1,1", self.settings.csms)])
            }
            ("+CSMS", Form::Test) => Outcome::Ok(vec!["+CSMS: (0,1)".into()]),
            ("+CMMS", Form::Set) => {
                self.settings.cmms = a(0).unwrap_or(0).clamp(0, 2) as u8;
                Outcome::Ok(vec![])
            }
            ("+CMMS", Form::Read) => Outcome::Ok(vec![format!("+CMMS: {}", self.settings.cmms)]),
            ("+CMMS", Form::Test) => Outcome::Ok(vec!["+CMMS: (0-2)".into()]),
            ("+CNMI", Form::Set) => {
                let mut v = self.settings.cnmi;
                for (i, slot) in v.iter_mut().enumerate() {
                    match args.get(i) {
                        Some(Arg::Empty) | None => {}
                        Some(x) => match x.int() {
                            Some(n @ 0..=3) => *slot = n as u8,
                            _ => return Outcome::Cms(303),
                        },
                    }
                }
                self.settings.cnmi = v;
                Outcome::Ok(vec![])
            }
            ("+CNMI", Form::Read) => {
                let c = self.settings.cnmi;
                Outcome::Ok(vec![format!(
                    "+CNMI: {},{},{},{},{}",
                    c[0], c[1], c[2], c[3], c[4]
                )])
            }
            ("+CNMI", Form::Test) => {
                Outcome::Ok(vec!["+CNMI: (0-2),(0-3),(0,2,3),(0-2),(0,1)".into()])
            }
            ("+CSCA", Form::Read) => {
                if p == Profile::Zte && self.zte_csca_busy {
                    self.zte_csca_busy = false;
                    return Outcome::Cme(14);
                }
                match &self.smsc {
                    Some(s) => Outcome::Ok(vec![format!("+CSCA: \"{}\",145", self.cs(s))]),
                    None => Outcome::Ok(vec!["+CSCA: \"\",129".into()]),
                }
            }
            ("+CSCA", Form::Set) => {
                self.smsc = args
                    .first()
                    .and_then(Arg::text)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string);
                Outcome::Ok(vec![])
            }
            ("+CSMP", Form::Set) => {
                if p == Profile::Zte {
                    // ZTE/M6280 clear the SMSC when CSMP is sent (MODEMS.md §1.1 step 11).
                    self.smsc = None;
                }
                Outcome::Ok(vec![])
            }
            ("+CSMP", Form::Read) => Outcome::Ok(vec!["+CSMP: 17,167,0,0".into()]),
            ("+CSDH", _) => Outcome::Ok(vec![]),
            ("+CPMS", _) => self.cpms(cmd, &args),
            ("+CMGS", Form::Set) | ("+CMGW", Form::Set) => {
                if self.settings.cmgf != 0 {
                    // Text mode sending is not simulated (docs/simulator.md).
                    return Outcome::Cms(302);
                }
                match a(0) {
                    Some(n @ 1..=255) if name == "+CMGS" => {
                        Outcome::Prompt(PromptKind::Send { len: n as usize })
                    }
                    Some(n @ 1..=255) => Outcome::Prompt(PromptKind::Write {
                        len: n as usize,
                        stat: a(1).filter(|s| (0..=3).contains(s)).unwrap_or(2) as u8,
                    }),
                    _ => Outcome::Cms(304),
                }
            }
            ("+CMGS" | "+CMGW" | "+CMSS" | "+CMGR" | "+CMGD" | "+CMGL", Form::Test) => match name {
                "+CMGD" => Outcome::Ok(vec![format!("+CMGD: ({}),(0-4)", self.index_range())]),
                "+CMGL" => Outcome::Ok(vec![if self.settings.cmgf == 0 {
                    "+CMGL: (0-4)".into()
                } else {
                    "+CMGL: (\"REC UNREAD\",\"REC READ\",\"STO UNSENT\",\"STO SENT\",\"ALL\")"
                        .into()
                }]),
                _ => Outcome::Ok(vec![]),
            },
            ("+CMSS", Form::Set) => self.cmss(&args),
            ("+CMGL", Form::Exec | Form::Set) => self.cmgl(&args),
            ("+CMGR", Form::Set) => self.cmgr(a(0)),
            ("+CMGD", Form::Set) => self.cmgd(a(0), a(1)),
            ("+CNMA", Form::Exec | Form::Set) => match self.awaiting_ack.take() {
                Some(_) => {
                    self.retry_after_answer();
                    Outcome::Ok(vec![])
                }
                None => Outcome::Cms(340),
            },
            // ---- voice ---------------------------------------------------------------------
            ("A", Form::Exec) => self.answer(),
            ("H", Form::Exec) => {
                if self.settings.cvhu == 1 {
                    // CVHU=1: "disconnect path is ignored but OK response is given" (27.007 §6.20).
                    Outcome::Ok(vec![])
                } else {
                    self.hangup_by_modem()
                }
            }
            ("+CHUP", Form::Exec) => self.hangup_by_modem(),
            ("+CLCC", Form::Exec) => Outcome::Ok(self.clcc_lines()),
            ("+CLCC", Form::Set) => {
                self.settings.clcc_urc = a(0) == Some(1);
                Outcome::Ok(vec![])
            }
            ("^DDSETEX", Form::Set) if p == Profile::Huawei => self.audio_on_if_active(),
            ("+CPCMREG", Form::Set) if p == Profile::Simcom => self.cpcmreg(a(0)),
            ("+CPCMREG", Form::Read) if p == Profile::Simcom => Outcome::Ok(vec![format!(
                "+CPCMREG: {}",
                u8::from(self.call.as_ref().is_some_and(|c| c.audio_on))
            )]),
            ("+QPCMV", Form::Set) if p == Profile::Quectel => self.qpcmv(a(0), a(1)),
            ("+QPCMV", Form::Read) if p == Profile::Quectel => {
                let on = self.call.as_ref().is_some_and(|c| c.qpcmv);
                Outcome::Ok(vec![if on {
                    "+QPCMV: 1,0".into()
                } else {
                    "+QPCMV: 0".into()
                }])
            }
            ("+CREC", Form::Set) if p == Profile::Sim800 => self.crec(&args),
            ("+FSCREATE", Form::Set) if p == Profile::Sim800 => {
                let Some(f) = args.first().and_then(Arg::text) else {
                    return Outcome::Error;
                };
                // Creating an existing file keeps it (the upload overwrites with mode 0).
                self.files.create(f);
                Outcome::Ok(vec![])
            }
            ("+FSWRITE", Form::Set) if p == Profile::Sim800 => {
                let Some(f) = args.first().and_then(Arg::text) else {
                    return Outcome::Error;
                };
                if self.files.get(f).is_none() {
                    return Outcome::Error;
                }
                match (a(1), a(2)) {
                    (Some(mode @ 0..=1), Some(size @ 1..=10240)) => {
                        Outcome::Prompt(PromptKind::Upload {
                            file: f.to_string(),
                            size: size as usize,
                            how: UploadKind::FsWrite { append: mode == 1 },
                        })
                    }
                    _ => Outcome::Error,
                }
            }
            ("+FSFLSIZE", Form::Set) if p == Profile::Sim800 => {
                match args
                    .first()
                    .and_then(Arg::text)
                    .and_then(|f| self.files.get(f))
                {
                    Some(f) => Outcome::Ok(vec![format!("+FSFLSIZE: {}", f.data.len())]),
                    None => Outcome::Error,
                }
            }
            ("+FSDEL", Form::Set) if p == Profile::Sim800 => {
                match args.first().and_then(Arg::text) {
                    Some(f) if self.files.delete(f) => Outcome::Ok(vec![]),
                    _ => Outcome::Error,
                }
            }
            ("+QFLST", Form::Set) if p == Profile::Quectel => {
                let Some(n) = args.first().and_then(Arg::text) else {
                    return Outcome::Error;
                };
                let name = quectel_name(n);
                Outcome::Ok(
                    self.files
                        .get(&name)
                        .map(|f| format!("+QFLST: \"UFS:{}\",{}", f.name, f.data.len()))
                        .into_iter()
                        .collect(),
                )
            }
            ("+QFDEL", Form::Set) if p == Profile::Quectel => {
                match args.first().and_then(Arg::text) {
                    Some(n) if self.files.delete(&quectel_name(n)) => Outcome::Ok(vec![]),
                    // 405: file not found [QFILE error codes].
                    _ => Outcome::Cme(405),
                }
            }
            ("+QFUPL", Form::Set) if p == Profile::Quectel => {
                let Some(n) = args.first().and_then(Arg::text) else {
                    return Outcome::Error;
                };
                let name = quectel_name(n);
                if self.files.get(&name).is_some() {
                    // 407: file already exists [QFILE].
                    return Outcome::Cme(407);
                }
                match a(1).unwrap_or(10240) {
                    size @ 1..=MAX_UPLOAD => Outcome::Prompt(PromptKind::Upload {
                        file: name,
                        size: size as usize,
                        how: UploadKind::Qfupl,
                    }),
                    _ => Outcome::Cme(400),
                }
            }
            ("+QPSND", Form::Set) if p == Profile::Quectel => match a(0) {
                Some(1) => match args.get(1).and_then(Arg::text) {
                    Some(n) => self.play(&quectel_name(n), "+QPSND: 0", None),
                    None => Outcome::Error,
                },
                Some(0) => self.stop_playback(None),
                _ => Outcome::Error,
            },
            ("+FSCD", Form::Set) if p == Profile::Simcom => {
                match args.first().and_then(Arg::text) {
                    Some(d) if d.eq_ignore_ascii_case("C:") || d.eq_ignore_ascii_case("C:/") => {
                        self.simcom_cwd = "C:".into();
                        Outcome::Ok(vec![])
                    }
                    _ => Outcome::Error,
                }
            }
            ("+FSATTRI", Form::Set) if p == Profile::Simcom => {
                let path = args
                    .first()
                    .and_then(Arg::text)
                    .map(|n| simcom_path(&self.simcom_cwd, n));
                match path.and_then(|p| self.files.get(&p)) {
                    Some(f) => Outcome::Ok(vec![format!(
                        "+FSATTRI: {},2024/01/01 00:00:00",
                        f.data.len()
                    )]),
                    None => Outcome::Error,
                }
            }
            ("+FSDEL", Form::Set) if p == Profile::Simcom => {
                let path = args
                    .first()
                    .and_then(Arg::text)
                    .map(|n| simcom_path(&self.simcom_cwd, n));
                match path {
                    Some(p) if self.files.delete(&p) => Outcome::Ok(vec![]),
                    _ => Outcome::Error,
                }
            }
            ("+CFTRANRX", Form::Set) if p == Profile::Simcom => {
                match (args.first().and_then(Arg::text), a(1)) {
                    (Some(path), Some(size @ 1..=MAX_UPLOAD)) if path.contains(':') => {
                        Outcome::Prompt(PromptKind::Upload {
                            file: simcom_path(&self.simcom_cwd, path),
                            size: size as usize,
                            how: UploadKind::Cftranrx,
                        })
                    }
                    _ => Outcome::Error,
                }
            }
            ("+CCMXPLAY", Form::Set) if p == Profile::Simcom => {
                match args.first().and_then(Arg::text) {
                    // play_path 1 = to the remote party [A76XX audio app note].
                    Some(path) if a(1) == Some(1) => self.play(
                        &simcom_path(&self.simcom_cwd, path),
                        "+AUDIOSTATE: audio play stop",
                        Some("+AUDIOSTATE: audio play"),
                    ),
                    _ => Outcome::Error,
                }
            }
            ("+CCMXSTOP", Form::Exec) if p == Profile::Simcom => {
                self.stop_playback(Some("+AUDIOSTATE: audio play stop"))
            }
            // Test forms of known action commands answer OK (gammu probes e.g. AT+CHUP=?).
            ("+CHUP" | "+CLCC" | "+CNMA" | "+CNUM" | "+CSCA" | "+CRSM", Form::Test) => {
                Outcome::Ok(vec![])
            }
            _ => Outcome::Unsupported,
        }
    }

    fn set_flag(&mut self, cmd: &Command, f: impl FnOnce(&mut Settings, bool)) -> Outcome {
        match cmd.basic_value() {
            Some(0) => f(&mut self.settings, false),
            Some(1) => f(&mut self.settings, true),
            _ => return Outcome::Error,
        }
        Outcome::Ok(vec![])
    }

    /// `+CLIP`/`+CRC` style 0/1 settings; `network` is the second field of the read answer.
    fn flag_cmd(
        &mut self,
        cmd: &Command,
        name: &str,
        field: impl Fn(&mut Settings) -> &mut bool,
        network: Option<u8>,
    ) -> Outcome {
        match cmd.form {
            Form::Set => match cmd.args().first().and_then(Arg::int) {
                Some(v @ 0..=1) => {
                    *field(&mut self.settings) = v == 1;
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(50),
            },
            Form::Read => {
                let v = u8::from(*field(&mut self.settings));
                Outcome::Ok(vec![match network {
                    Some(n) => format!("{name}: {v},{n}"),
                    None => format!("{name}: {v}"),
                }])
            }
            Form::Test => Outcome::Ok(vec![format!("{name}: (0-1)")]),
            Form::Exec => Outcome::Ok(vec![]),
        }
    }

    /// A string parameter in the current TE character set (27.007 §5.5: UCS2 means hex).
    fn cs(&self, s: &str) -> String {
        if self.settings.cscs == "UCS2" {
            ucs2_hex(s)
        } else {
            s.to_string()
        }
    }

    fn radio_on(&self) -> bool {
        self.cfun == 1 && self.registered && self.sim == SimLock::Ready
    }

    fn reg_stat(&self) -> u8 {
        if self.radio_on() { 1 } else { 0 }
    }

    fn creg(&mut self, cmd: &Command, n: Option<i64>) -> Outcome {
        let name = cmd.name.as_str();
        match cmd.form {
            Form::Set => match n {
                Some(v @ 0..=2) => {
                    if name == "+CREG" {
                        self.settings.creg = v as u8;
                    } else {
                        self.settings.cgreg = v as u8;
                    }
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Cme(50),
            },
            Form::Read => {
                let mode = if name == "+CREG" {
                    self.settings.creg
                } else {
                    self.settings.cgreg
                };
                let stat = self.reg_stat();
                Outcome::Ok(vec![if mode == 2 && stat == 1 {
                    format!("{name}: {mode},{stat},\"{}\",\"{}\"", self.lac(), self.ci())
                } else {
                    format!("{name}: {mode},{stat}")
                }])
            }
            Form::Test => Outcome::Ok(vec![format!("{name}: (0-2)")]),
            Form::Exec => Outcome::Ok(vec![]),
        }
    }

    fn lac(&self) -> String {
        format!("{:04X}", 0x1A2B + self.index as u32 % 64)
    }
    fn ci(&self) -> String {
        format!("{:04X}", 0x3C4D + self.index as u32 % 64)
    }

    /// Emits `+CREG:` URCs after a registration change (27.007 §7.2).
    fn creg_urc(&mut self) {
        let stat = self.reg_stat();
        match self.settings.creg {
            1 => self.urc(&format!("+CREG: {stat}")),
            2 if stat == 1 => {
                let l = format!("+CREG: {stat},\"{}\",\"{}\"", self.lac(), self.ci());
                self.urc(&l)
            }
            2 => self.urc(&format!("+CREG: {stat}")),
            _ => {}
        }
    }

    fn cpin(&mut self, cmd: &Command, args: &[Arg]) -> Outcome {
        match cmd.form {
            Form::Read => {
                let state = match self.sim {
                    SimLock::Ready => "READY",
                    SimLock::Pin => "SIM PIN",
                    SimLock::Puk => "SIM PUK",
                };
                let line = format!("+CPIN: {state}");
                if self.spec.profile == Profile::Wavecom && self.sim == SimLock::Ready {
                    // Wavecom answers +CPIN: READY without OK (MODEMS.md §6.1, gammu F_CPIN_NO_OK).
                    Outcome::NoFinal(vec![line])
                } else {
                    Outcome::Ok(vec![line])
                }
            }
            Form::Test => Outcome::Ok(vec![]),
            Form::Exec => Outcome::Cme(50),
            Form::Set => {
                let given = args.first().and_then(Arg::text).unwrap_or("").to_string();
                match self.sim {
                    SimLock::Ready => Outcome::Cme(3),
                    SimLock::Pin => {
                        if Some(&given) == self.pin.as_ref() {
                            self.sim = SimLock::Ready;
                            self.pin_attempts = self.spec.pin_attempts;
                            self.sim_became_ready();
                            Outcome::Ok(vec![])
                        } else {
                            self.pin_attempts = self.pin_attempts.saturating_sub(1);
                            if self.pin_attempts == 0 {
                                self.sim = SimLock::Puk;
                            }
                            Outcome::Cme(16)
                        }
                    }
                    SimLock::Puk => {
                        let new_pin = args.get(1).and_then(Arg::text).map(str::to_string);
                        if given == self.spec.puk && new_pin.is_some() {
                            self.pin = new_pin;
                            self.sim = SimLock::Ready;
                            self.pin_attempts = self.spec.pin_attempts;
                            self.sim_became_ready();
                            Outcome::Ok(vec![])
                        } else {
                            self.puk_attempts = self.puk_attempts.saturating_sub(1);
                            Outcome::Cme(16)
                        }
                    }
                }
            }
        }
    }

    fn sim_became_ready(&mut self) {
        match self.spec.profile {
            Profile::Quectel => {
                self.timers.push((
                    self.now + Duration::from_millis(50),
                    Timer::BootLine("+QIND: SMS DONE".into()),
                ));
                self.timers.push((
                    self.now + Duration::from_millis(60),
                    Timer::BootLine("+QIND: PB DONE".into()),
                ));
            }
            Profile::Sim800 => {
                self.timers.push((
                    self.now + Duration::from_millis(50),
                    Timer::BootLine("Call Ready".into()),
                ));
                self.timers.push((
                    self.now + Duration::from_millis(60),
                    Timer::BootLine("SMS Ready".into()),
                ));
            }
            _ => {}
        }
        self.creg_urc();
    }

    fn cfun_set(&mut self, fun: Option<i64>, rst: Option<i64>) -> Outcome {
        match (fun, rst) {
            (Some(1), Some(1)) => Outcome::Reboot,
            (Some(f @ (0 | 1 | 4)), None | Some(0)) => {
                let was = self.radio_on();
                self.cfun = f as u8;
                if f == 1 && self.spec.profile == Profile::Wavecom {
                    self.busy_lines = 2;
                }
                if was != self.radio_on() {
                    self.creg_urc();
                }
                Outcome::Ok(vec![])
            }
            _ => Outcome::Cme(50),
        }
    }

    // ----- storage -----------------------------------------------------------------------------

    fn mem(&mut self, m: Mem) -> &mut Vec<Option<Stored>> {
        match m {
            Mem::Sm => &mut self.sm,
            Mem::Me => &mut self.me,
            Mem::Sr => &mut self.sr,
        }
    }

    fn mem_ref(&self, m: Mem) -> &Vec<Option<Stored>> {
        match m {
            Mem::Sm => &self.sm,
            Mem::Me => &self.me,
            Mem::Sr => &self.sr,
        }
    }

    fn used(&self, m: Mem) -> usize {
        self.mem_ref(m).iter().filter(|s| s.is_some()).count()
    }

    fn index_range(&self) -> String {
        let first = self.spec.profile.first_index();
        format!("{}-{}", first, first + self.spec.capacity.saturating_sub(1))
    }

    /// Stores a PDU in memory `m`; returns its external index.
    fn store(&mut self, m: Mem, s: Stored) -> Option<usize> {
        let first = self.spec.profile.first_index();
        let slots = self.mem(m);
        let slot = slots.iter().position(Option::is_none)?;
        if let Some(x) = slots.get_mut(slot) {
            *x = Some(s);
        }
        Some(slot + first)
    }

    fn slot_of(&self, index: i64) -> Option<usize> {
        let first = self.spec.profile.first_index() as i64;
        usize::try_from(index - first)
            .ok()
            .filter(|s| *s < self.spec.capacity)
    }

    fn cpms(&mut self, cmd: &Command, args: &[Arg]) -> Outcome {
        match cmd.form {
            Form::Test => Outcome::Ok(vec![if self.spec.profile == Profile::Wavecom {
                "+CPMS: ((\"SM\"),(\"SM\"),(\"SM\"))".into()
            } else {
                "+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")".into()
            }]),
            Form::Read => {
                let parts: Vec<String> = self
                    .settings
                    .mems
                    .iter()
                    .map(|m| format!("\"{}\",{},{}", m.name(), self.used(*m), self.spec.capacity))
                    .collect();
                Outcome::Ok(vec![format!("+CPMS: {}", parts.join(","))])
            }
            Form::Exec => Outcome::Cms(302),
            Form::Set => {
                let mut mems = self.settings.mems;
                for (i, arg) in args.iter().take(3).enumerate() {
                    let Some(t) = arg.text() else { continue };
                    let Some(m) = Mem::parse(t) else {
                        return Outcome::Cms(302);
                    };
                    if m == Mem::Sr && (self.spec.profile == Profile::Wavecom || i > 0) {
                        // Wavecom rejects "SR" (MODEMS.md §1.1 step 12); SR is read-only elsewhere.
                        return Outcome::Error;
                    }
                    if let Some(slot) = mems.get_mut(i) {
                        *slot = m;
                    }
                }
                self.settings.mems = mems;
                let parts: Vec<String> = mems
                    .iter()
                    .map(|m| format!("{},{}", self.used(*m), self.spec.capacity))
                    .collect();
                Outcome::Ok(vec![format!("+CPMS: {}", parts.join(","))])
            }
        }
    }

    fn cmgl(&mut self, args: &[Arg]) -> Outcome {
        if self.settings.cmgf != 0 {
            return Outcome::Cms(302);
        }
        let stat = match args.first() {
            None | Some(Arg::Empty) => 0,
            // `AT+CMGL="ALL"` is text-mode syntax: ERROR in PDU mode (MODEMS.md §1.4).
            Some(Arg::Str(_)) => return Outcome::Cms(302),
            Some(a) => match a.int() {
                Some(s @ 0..=4) => s as u8,
                _ => return Outcome::Cms(302),
            },
        };
        let m = self.settings.mems[0];
        let first = self.spec.profile.first_index();
        let mut lines = Vec::new();
        for (i, slot) in self.mem(m).iter_mut().enumerate() {
            if let Some(s) = slot
                && (stat == 4 || s.stat == stat)
            {
                lines.push(format!("+CMGL: {},{},,{}", i + first, s.stat, s.tpdu_len()));
                lines.push(hex_upper(&s.pdu));
                // Listing flips REC UNREAD to REC READ (27.005 §3.4.2, MODEMS.md §6.11).
                if s.stat == 0 {
                    s.stat = 1;
                }
            }
        }
        Outcome::Ok(lines)
    }

    fn cmgr(&mut self, index: Option<i64>) -> Outcome {
        if self.settings.cmgf != 0 {
            return Outcome::Cms(302);
        }
        let m = self.settings.mems[0];
        let Some(slot) = index.and_then(|i| self.slot_of(i)) else {
            return Outcome::Cms(321);
        };
        match self.mem(m).get_mut(slot) {
            Some(Some(s)) => {
                let lines = vec![
                    format!("+CMGR: {},,{}", s.stat, s.tpdu_len()),
                    hex_upper(&s.pdu),
                ];
                if s.stat == 0 {
                    s.stat = 1;
                }
                Outcome::Ok(lines)
            }
            _ => Outcome::Cms(321),
        }
    }

    fn cmgd(&mut self, index: Option<i64>, flag: Option<i64>) -> Outcome {
        let m = self.settings.mems[0];
        let flag = flag.unwrap_or(0);
        if flag == 0 {
            let Some(slot) = index.and_then(|i| self.slot_of(i)) else {
                return Outcome::Cms(321);
            };
            if let Some(x) = self.mem(m).get_mut(slot) {
                *x = None;
            }
        } else {
            let keep = |s: &Stored| match flag {
                1 => s.stat != 1,
                2 => s.stat != 1 && s.stat != 3,
                3 => s.stat == 0,
                _ => false,
            };
            if !(1..=4).contains(&flag) {
                return Outcome::Cms(302);
            }
            for x in self.mem(m).iter_mut() {
                if x.as_ref().is_some_and(|s| !keep(s)) {
                    *x = None;
                }
            }
        }
        self.memfull_notified = false;
        self.retry_after_answer();
        Outcome::Ok(vec![])
    }

    fn finish_prompt(&mut self) {
        let Input::Prompt { kind, data } =
            std::mem::replace(&mut self.input, Input::Line(Vec::new()))
        else {
            return;
        };
        // The answer time is fixed first so a status report can be scheduled after it.
        let lat = if matches!(kind, PromptKind::Send { .. }) {
            self.spec.latency.send
        } else {
            self.spec.latency.default
        };
        let at = self.now + self.latency(lat);
        self.busy_until = at;
        let outcome = match kind {
            PromptKind::Send { len } => self.send_pdu(&data, len),
            PromptKind::Write { len, stat } => match parse_hex(&data) {
                Some(pdu) if tpdu_len(&pdu) == len => {
                    let m = self.settings.mems[1];
                    match self.store(m, Stored { stat, pdu }) {
                        Some(i) => Outcome::Ok(vec![format!("+CMGW: {i}")]),
                        None => Outcome::Cms(322),
                    }
                }
                _ => Outcome::Cms(304),
            },
            PromptKind::Upload { .. } => Outcome::Error,
        };
        let mut bytes = Vec::new();
        if self.spec.profile == Profile::Zte && matches!(kind, PromptKind::Send { .. }) {
            bytes.extend(self.zte_noise());
        }
        match outcome {
            Outcome::Ok(lines) => {
                bytes.extend(self.info_bytes(&lines));
                bytes.extend(self.final_bytes("OK"));
            }
            e => {
                let t = self.error_text(&e);
                bytes.extend(self.final_bytes(&t));
            }
        }
        self.schedule_out(at, bytes);
        self.flush_held_urcs();
    }

    /// The last byte of an upload arrived: store it and answer per command.
    fn finish_upload(&mut self) {
        let Input::Prompt {
            kind: PromptKind::Upload { file, how, .. },
            data,
        } = std::mem::replace(&mut self.input, Input::Line(Vec::new()))
        else {
            return;
        };
        let mut bytes = Vec::new();
        match how {
            UploadKind::FsWrite { append } => {
                let ok = self.files.write(&file, append, &data);
                bytes.extend(self.final_bytes(if ok { "OK" } else { "ERROR" }));
            }
            UploadKind::Cftranrx => {
                self.files.put(&file, data);
                bytes.extend(self.final_bytes("OK"));
            }
            UploadKind::Qfupl => {
                let sum = crate::at::files::quectel_checksum(&data);
                let line = format!("+QFUPL: {},{sum:x}", data.len());
                self.files.put(&file, data);
                bytes.extend(self.info_bytes(&[line]));
                bytes.extend(self.final_bytes("OK"));
            }
        }
        self.schedule_out(self.now, bytes);
        self.flush_held_urcs();
    }

    /// Ctrl-Z after `AT+CMGS=<len>`: validate, pick the modem's own TP-MR, hand to the network.
    fn send_pdu(&mut self, hex: &[u8], len: usize) -> Outcome {
        let Some(pdu) = parse_hex(hex) else {
            return Outcome::Cms(304);
        };
        if pdu.is_empty() || tpdu_len(&pdu) != len {
            // The length given with AT+CMGS must match the TPDU (MODEMS.md §1.2).
            return Outcome::Cms(304);
        }
        self.submit(pdu)
    }

    fn submit(&mut self, pdu: Vec<u8>) -> Outcome {
        if !self.radio_on() {
            return Outcome::Cms(331);
        }
        if pdu.first() == Some(&0) && self.smsc.is_none() {
            return Outcome::Cms(330);
        }
        if let Some(code) = self.faults.send_error(&mut self.rng) {
            return Outcome::Cms(code);
        }
        let mr = self.next_mr;
        let result = match self.radio.lock() {
            Ok(mut r) => r.submit(self.index, mr, &pdu, unix_now()),
            Err(_) => Err("network lock poisoned".into()),
        };
        match result {
            Ok(report) => {
                // The modem's own reference, ignoring the PDU's TP-MR (MODEMS.md §6.9).
                self.next_mr = self.next_mr.wrapping_add(1);
                if let Some(r) = report {
                    // The report follows the +CMGS answer, as on a real network.
                    let at = self.busy_until.max(self.now)
                        + Duration::from_millis(self.spec.status_report_delay_ms);
                    self.timers.push((at, Timer::StatusReport(r)));
                }
                let tag = if self.last_line.to_ascii_uppercase().contains("CMSS") {
                    "+CMSS"
                } else {
                    "+CMGS"
                };
                Outcome::Ok(vec![format!("{tag}: {mr}")])
            }
            Err(_) => Outcome::Cms(304),
        }
    }

    fn cmss(&mut self, args: &[Arg]) -> Outcome {
        if args.get(1).is_some_and(|a| !matches!(a, Arg::Empty)) {
            // Re-addressing a stored PDU is not simulated (docs/simulator.md).
            return Outcome::Cms(303);
        }
        let m = self.settings.mems[1];
        let Some(slot) = args
            .first()
            .and_then(Arg::int)
            .and_then(|i| self.slot_of(i))
        else {
            return Outcome::Cms(321);
        };
        let Some(Some(s)) = self.mem(m).get(slot).cloned() else {
            return Outcome::Cms(321);
        };
        let o = self.submit(s.pdu.clone());
        if matches!(o, Outcome::Ok(_))
            && let Some(Some(x)) = self.mem(m).get_mut(slot)
        {
            x.stat = 3;
        }
        o
    }

    // ----- MT delivery -------------------------------------------------------------------------

    /// A DELIVER PDU (with SMSC field) arrives from the network.
    pub fn deliver_sms(&mut self, pdu: Vec<u8>, now: Instant) {
        self.now = now;
        self.pending_mt.push_back(Mt::Sms(pdu));
        self.try_deliver_pending();
    }

    /// A STATUS-REPORT PDU (with SMSC field) arrives from the network.
    pub fn deliver_report(&mut self, pdu: Vec<u8>, now: Instant) {
        self.now = now;
        self.pending_mt.push_back(Mt::Report(pdu));
        self.try_deliver_pending();
    }

    fn can_receive(&self) -> bool {
        self.booting_until.is_none() && self.radio_on()
    }

    fn try_deliver_pending(&mut self) {
        while self.awaiting_ack.is_none() && self.can_receive() {
            let Some(mt) = self.pending_mt.pop_front() else {
                break;
            };
            if let Err(mt) = self.route_mt(mt) {
                self.pending_mt.push_front(mt);
                break;
            }
        }
    }

    /// Routes one MT message per CNMI (27.005 §3.4.1). `Err` gives it back for a later retry
    /// (storage full), as the network retries an undeliverable message.
    fn route_mt(&mut self, mt: Mt) -> Result<(), Mt> {
        let [_, mt_mode, _, ds, _] = self.settings.cnmi;
        match &mt {
            Mt::Sms(pdu) => {
                if mt_mode == 2 {
                    let head = format!("+CMT: ,{}", tpdu_len(pdu));
                    let body = hex_upper(pdu);
                    self.urc2(&head, &body);
                    self.expect_ack(mt.clone());
                    return Ok(());
                }
                let m = self.settings.mems[2];
                match self.store(
                    m,
                    Stored {
                        stat: 0,
                        pdu: pdu.clone(),
                    },
                ) {
                    Some(i) => {
                        if mt_mode == 1 || mt_mode == 3 {
                            self.urc(&format!("+CMTI: \"{}\",{i}", m.name()));
                        }
                        Ok(())
                    }
                    None => {
                        if self.spec.profile == Profile::Huawei && !self.memfull_notified {
                            self.urc("^SMMEMFULL: \"SM\"");
                        }
                        self.memfull_notified = true;
                        Err(mt)
                    }
                }
            }
            Mt::Report(pdu) => match ds {
                1 => {
                    let head = format!("+CDS: {}", tpdu_len(pdu));
                    let body = hex_upper(pdu);
                    self.urc2(&head, &body);
                    self.expect_ack(mt.clone());
                    Ok(())
                }
                2 => match self.store(
                    Mem::Sr,
                    Stored {
                        stat: 0,
                        pdu: pdu.clone(),
                    },
                ) {
                    Some(i) => {
                        self.urc(&format!("+CDSI: \"SR\",{i}"));
                        Ok(())
                    }
                    None => Err(mt),
                },
                // ds=0: no status reports routed to the TE; the report is discarded.
                _ => Ok(()),
            },
        }
    }

    /// Pending messages go out after the answer of the running command, not before its OK.
    fn retry_after_answer(&mut self) {
        let at = self.busy_until.max(self.now);
        self.timers.push((at, Timer::RetryDelivery));
    }

    fn expect_ack(&mut self, mt: Mt) {
        if self.settings.csms == 1 {
            self.ack_seq += 1;
            let seq = self.ack_seq;
            self.awaiting_ack = Some((seq, mt));
            let at = self.now + Duration::from_millis(self.spec.cnma_timeout_ms);
            self.timers.push((at, Timer::CnmaTimeout(seq)));
        }
    }

    // ----- timers ------------------------------------------------------------------------------

    fn run_timers(&mut self, now: Instant) {
        while let Some(pos) = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| *t <= now)
            .min_by_key(|(_, (t, _))| *t)
            .map(|(i, _)| i)
        {
            let (_, timer) = self.timers.remove(pos);
            match timer {
                Timer::BootDone => self.boot_done(),
                Timer::BootLine(l) => self.urc(&l),
                Timer::Noise(n) => {
                    if self.spec.profile == Profile::Huawei && self.spec.noise_interval_ms > 0 {
                        if self.settings.huawei_curc && self.booting_until.is_none() {
                            let l = format!("^RSSI:{}", self.rssi);
                            self.urc(&l);
                            if n % 3 == 2 {
                                self.urc("^BOOT:27710117,0,0,0,75");
                            }
                        }
                        let at = now + Duration::from_millis(self.spec.noise_interval_ms);
                        self.timers.push((at, Timer::Noise(n.wrapping_add(1))));
                    }
                }
                Timer::StatusReport(pdu) => self.deliver_report(pdu, now),
                Timer::RetryDelivery => self.try_deliver_pending(),
                Timer::CnmaTimeout(seq) => {
                    if let Some((s, mt)) = self.awaiting_ack.take() {
                        if s == seq {
                            // The trap: a missed +CNMA makes the ME set CNMI <mt> and <ds> to 0
                            // (MODEMS.md §1.3 [SIEM]); the network redelivers later, now silently
                            // stored.
                            self.settings.cnmi[1] = 0;
                            self.settings.cnmi[3] = 0;
                            self.pending_mt.push_front(mt);
                            self.try_deliver_pending();
                        } else {
                            self.awaiting_ack = Some((s, mt));
                        }
                    }
                }
            }
        }
    }

    /// Power-cycles the modem at `at`: settings back to defaults, SIM locked again if it has a
    /// PIN, call dropped, boot lines after `boot_ms`. Stored messages survive (they are on the SIM).
    pub fn reboot(&mut self, at: Instant) {
        self.settings = Settings::defaults();
        self.sim = if self.pin.is_some() {
            SimLock::Pin
        } else {
            SimLock::Ready
        };
        self.cfun = 1;
        self.input = Input::Line(Vec::new());
        self.held_urcs.clear();
        self.awaiting_ack = None;
        self.busy_lines = 0;
        self.timers
            .retain(|(_, t)| matches!(t, Timer::StatusReport(_)));
        if let Some(c) = self.call.take()
            && let Ok(mut r) = self.radio.lock()
        {
            r.call_event(self.index, c.id, CallEvent::Dropped, unix_now());
        }
        let done = at + Duration::from_millis(self.spec.boot_ms);
        self.booting_until = Some(done);
        self.busy_until = done;
        self.timers.push((done, Timer::BootDone));
    }

    fn boot_done(&mut self) {
        self.booting_until = None;
        self.zte_csca_busy = self.spec.profile == Profile::Zte;
        let swap = self.rng.range(0, 1) == 1;
        let lines = self
            .spec
            .profile
            .boot_lines(self.sim == SimLock::Ready, swap);
        for (i, l) in lines.into_iter().enumerate() {
            // The DONE lines come a little later than RDY on real modules.
            let at = self.now + Duration::from_millis(20 * i as u64);
            self.timers.push((at, Timer::BootLine(l)));
        }
        if self.spec.profile == Profile::Huawei && self.spec.noise_interval_ms > 0 {
            let at = self.now + Duration::from_millis(self.spec.noise_interval_ms);
            self.timers.push((at, Timer::Noise(0)));
        }
        self.try_deliver_pending();
    }

    // ----- faults and control ------------------------------------------------------------------

    pub fn set_registered(&mut self, on: bool, now: Instant) {
        self.now = now;
        let was = self.radio_on();
        self.registered = on;
        if was != self.radio_on() {
            self.creg_urc();
        }
        self.try_deliver_pending();
    }

    pub fn set_rssi(&mut self, rssi: u8) {
        self.rssi = rssi.min(99);
    }

    /// Fills every free slot of the receive memory with read copies of `filler`.
    pub fn fill_storage(&mut self, filler: &[u8]) {
        let m = self.settings.mems[2];
        for slot in self.mem(m).iter_mut().filter(|s| s.is_none()) {
            *slot = Some(Stored {
                stat: 1,
                pdu: filler.to_vec(),
            });
        }
    }

    /// Messages currently stored in a memory ("SM", "ME", "SR"), as (index, stat, pdu).
    pub fn stored(&self, mem: &str) -> Vec<(usize, u8, Vec<u8>)> {
        let Some(m) = Mem::parse(mem) else {
            return Vec::new();
        };
        let first = self.spec.profile.first_index();
        self.mem_ref(m)
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i + first, s.stat, s.pdu.clone())))
            .collect()
    }

    /// Stores a file on the modem's flash (a playback source), as an upload would.
    pub fn put_file(&mut self, name: &str, data: Vec<u8>) {
        self.files.put(name, data);
    }

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
            sim: match self.sim {
                SimLock::Ready => "READY",
                SimLock::Pin => "SIM PIN",
                SimLock::Puk => "SIM PUK",
            }
            .into(),
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
        }
    }

    // ----- calls -------------------------------------------------------------------------------

    /// A phone starts calling this modem.
    pub fn incoming_call(
        &mut self,
        id: u64,
        number: &str,
        give_up_after: Option<Duration>,
        hangup_after: Option<Duration>,
        now: Instant,
    ) -> Result<(), &'static str> {
        self.now = now;
        if self.call.is_some() {
            return Err("busy");
        }
        if !self.can_receive() {
            return Err("not registered");
        }
        self.call = Some(Call {
            id,
            number: number.to_string(),
            active: false,
            answered_at: None,
            next_ring: now,
            give_up_at: give_up_after.map(|d| now + d),
            hangup_after,
            audio_on: false,
            qpcmv: false,
            playback: None,
        });
        if self.settings.quectel_ccinfo {
            let l = format!("+QIND: \"ccinfo\",1,1,4,0,0,\"{number}\",145");
            self.urc(&l);
        }
        Ok(())
    }

    /// The phone hangs up (or the control side ends the call).
    pub fn phone_hangup(&mut self, id: u64, now: Instant) -> bool {
        self.now = now;
        if self.call.as_ref().is_some_and(|c| c.id == id) {
            self.end_call(CallEvent::HungUpByPhone);
            true
        } else {
            false
        }
    }

    /// The active call whose audio is flowing, if any (read by the audio task).
    pub fn audio_route(&self) -> Option<AudioRoute> {
        self.call
            .as_ref()
            .filter(|c| c.active && c.audio_on)
            .map(|c| AudioRoute { call_id: c.id })
    }

    fn type_of(number: &str) -> u8 {
        if number.starts_with('+') { 145 } else { 129 }
    }

    fn ring(&mut self) {
        let Some(c) = &self.call else { return };
        let number = c.number.clone();
        let t = Self::type_of(&number);
        if self.settings.crc {
            self.urc("+CRING: VOICE");
        } else {
            self.urc("RING");
        }
        if self.settings.clip {
            if self.spec.profile == Profile::Wavecom {
                self.urc(&format!("+CLIP: \"{number}\",{t}"));
            } else {
                self.urc(&format!("+CLIP: \"{number}\",{t},,,,0"));
            }
        }
    }

    fn run_call(&mut self, now: Instant) {
        let Some(c) = &mut self.call else { return };
        if !c.active {
            if c.give_up_at.is_some_and(|g| now >= g) {
                self.end_call(CallEvent::HungUpByPhone);
                return;
            }
            if now >= c.next_ring {
                c.next_ring = now + Duration::from_millis(self.spec.ring_interval_ms.max(100));
                if self.booting_until.is_none() {
                    self.ring();
                }
            }
        } else {
            if let Some(p) = &mut c.playback {
                let start = p.start_urc.take();
                let samples = p.advance(now);
                let (id, done, end) = (p.call_id, p.finished(), p.end_urc);
                if done {
                    c.playback = None;
                }
                if !samples.is_empty() {
                    self.played_audio.push((id, samples));
                }
                if let Some(u) = start {
                    self.urc(u);
                }
                if done {
                    self.urc(end);
                }
            }
            if let Some(c) = &self.call
                && let (Some(a), Some(h)) = (c.answered_at, c.hangup_after)
                && now >= a + h
            {
                self.end_call(CallEvent::HungUpByPhone);
            }
        }
    }

    fn end_urcs(&mut self, c: &Call, by_modem: bool) {
        let secs = c
            .answered_at
            .map(|a| self.now.saturating_duration_since(a).as_secs())
            .unwrap_or(0);
        let num = c.number.clone();
        let t = Self::type_of(&num);
        match self.spec.profile {
            Profile::Huawei => self.urc(&format!(
                "^CEND:1,{secs},{},16",
                if by_modem { 29 } else { 104 }
            )),
            Profile::Simcom => {
                if c.active {
                    self.urc(&format!(
                        "VOICE CALL: END: {:02}{:02}{:02}",
                        secs / 3600,
                        (secs / 60) % 60,
                        secs % 60
                    ));
                } else {
                    self.urc(&format!("MISSED_CALL: 00:00AM {num}"));
                }
            }
            _ => {}
        }
        if self.settings.quectel_ccinfo {
            self.urc(&format!("+QIND: \"ccinfo\",1,1,-1,0,0,\"{num}\",{t}"));
        }
        if !by_modem && self.spec.profile != Profile::Huawei {
            self.urc("NO CARRIER");
        }
    }

    fn end_call(&mut self, ev: CallEvent) {
        let Some(mut c) = self.call.take() else {
            return;
        };
        // The caller heard the file up to now, not beyond.
        if let Some(p) = &mut c.playback {
            let samples = p.advance(self.now);
            if !samples.is_empty() {
                self.played_audio.push((p.call_id, samples));
            }
        }
        self.end_urcs(&c, ev == CallEvent::HungUpByModem);
        if let Ok(mut r) = self.radio.lock() {
            r.call_event(self.index, c.id, ev, unix_now());
        }
    }

    fn answer(&mut self) -> Outcome {
        let now = self.now;
        let profile = self.spec.profile;
        let ccinfo = self.settings.quectel_ccinfo;
        let Some(c) = &mut self.call else {
            return Outcome::Final("NO CARRIER");
        };
        if c.active {
            return Outcome::Cme(3);
        }
        c.active = true;
        c.answered_at = Some(now);
        if profile == Profile::Quectel && c.qpcmv {
            c.audio_on = true;
        }
        let (id, num, audio) = (c.id, c.number.clone(), c.audio_on);
        match profile {
            Profile::Huawei => self.urc("^CONN:1,0"),
            Profile::Simcom => self.urc("VOICE CALL: BEGIN"),
            _ => {}
        }
        if ccinfo {
            self.urc(&format!(
                "+QIND: \"ccinfo\",1,1,0,0,0,\"{num}\",{}",
                Self::type_of(&num)
            ));
        }
        if let Ok(mut r) = self.radio.lock() {
            r.call_event(self.index, id, CallEvent::Answered, unix_now());
            if audio {
                r.call_event(self.index, id, CallEvent::AudioOn, unix_now());
            }
        }
        Outcome::Ok(vec![])
    }

    fn hangup_by_modem(&mut self) -> Outcome {
        self.end_call(CallEvent::HungUpByModem);
        Outcome::Ok(vec![])
    }

    fn clcc_lines(&self) -> Vec<String> {
        match &self.call {
            Some(c) => vec![format!(
                "+CLCC: 1,1,{},0,0,\"{}\",{}",
                if c.active { 0 } else { 4 },
                c.number,
                Self::type_of(&c.number)
            )],
            None => vec![],
        }
    }

    fn audio_on_if_active(&mut self) -> Outcome {
        match &mut self.call {
            Some(c) if c.active => {
                let first = !c.audio_on;
                c.audio_on = true;
                let id = c.id;
                if first && let Ok(mut r) = self.radio.lock() {
                    r.call_event(self.index, id, CallEvent::AudioOn, unix_now());
                }
                Outcome::Ok(vec![])
            }
            _ => Outcome::Cme(3),
        }
    }

    /// SIMCom `AT+CPCMREG`: accepted only some time after the call connected (MODEMS.md §4.3).
    fn cpcmreg(&mut self, v: Option<i64>) -> Outcome {
        let now = self.now;
        let delay = Duration::from_millis(self.spec.cpcmreg_delay_ms);
        match v {
            Some(0) => {
                if let Some(c) = &mut self.call {
                    c.audio_on = false;
                }
                Outcome::Ok(vec![])
            }
            Some(1) => match &self.call {
                Some(c) if c.active && c.answered_at.is_some_and(|a| now >= a + delay) => {
                    self.audio_on_if_active()
                }
                _ => Outcome::Error,
            },
            _ => Outcome::Error,
        }
    }

    /// Quectel `AT+QPCMV=<en>[,<port>]`: `1,x` while already on answers ERROR (MODEMS.md §6.7).
    fn qpcmv(&mut self, en: Option<i64>, _port: Option<i64>) -> Outcome {
        match (en, &mut self.call) {
            (Some(0), Some(c)) => {
                c.qpcmv = false;
                c.audio_on = false;
                Outcome::Ok(vec![])
            }
            (Some(0), None) => Outcome::Ok(vec![]),
            (Some(1), Some(c)) => {
                if c.qpcmv {
                    return Outcome::Error;
                }
                c.qpcmv = true;
                if c.active {
                    return self.audio_on_if_active();
                }
                Outcome::Ok(vec![])
            }
            // Without a call there is nothing to route; accepted like the real module.
            (Some(1), None) => Outcome::Ok(vec![]),
            _ => Outcome::Error,
        }
    }

    /// SIM800 `AT+CREC=4,"<file>",<channel>,<volume>`: play a stored file to the caller, `+CREC: 0`
    /// at its end; `AT+CREC=5` stops [S800 p.337].
    fn crec(&mut self, args: &[Arg]) -> Outcome {
        match args.first().and_then(Arg::int) {
            Some(4) => match args.get(1).and_then(Arg::text) {
                Some(name) => {
                    let name = name.to_owned();
                    self.play(&name, "+CREC: 0", None)
                }
                None => Outcome::Error,
            },
            Some(5) => self.stop_playback(None),
            _ => Outcome::Error,
        }
    }

    /// Starts playing a stored file into the active call; `end` is the URC at its end, `start` one
    /// sent once it runs. ERROR without an active call, a file of that name, or a decodable WAV.
    fn play(&mut self, name: &str, end: &'static str, start: Option<&'static str>) -> Outcome {
        let now = self.now;
        let Some(file) = self.files.get(name) else {
            return Outcome::Error;
        };
        let size = file.data.len();
        let Some(c) = self.call.as_mut().filter(|c| c.active) else {
            return Outcome::Error;
        };
        let Some(mut p) = Playback::start(c.id, &file.data, now, end) else {
            return Outcome::Error;
        };
        p.start_urc = start;
        let id = c.id;
        c.playback = Some(p);
        self.played_files.push((id, size));
        if let Ok(mut r) = self.radio.lock() {
            r.call_event(self.index, id, CallEvent::FilePlayed, unix_now());
        }
        Outcome::Ok(vec![])
    }

    /// Stops a playback (what played so far was heard); `urc` is sent if one was running.
    fn stop_playback(&mut self, urc: Option<&'static str>) -> Outcome {
        let now = self.now;
        let Some(mut p) = self.call.as_mut().and_then(|c| c.playback.take()) else {
            return Outcome::Ok(vec![]);
        };
        let samples = p.advance(now);
        if !samples.is_empty() {
            self.played_audio.push((p.call_id, samples));
        }
        if let Some(u) = urc {
            self.urc(u);
        }
        Outcome::Ok(vec![])
    }

    /// Playbacks started (call id, file size) and audio played (call id, samples) since the last
    /// call; taken by the pty task to record what the phone heard.
    #[allow(clippy::type_complexity)]
    pub fn take_played(&mut self) -> (Vec<(u64, usize)>, Vec<(u64, Vec<i16>)>) {
        (
            std::mem::take(&mut self.played_files),
            std::mem::take(&mut self.played_audio),
        )
    }

    /// The files on the flash.
    pub fn files(&self) -> Vec<FileInfo> {
        self.files.list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Records submissions; answers with a canned status report when `report` is set.
    #[derive(Default)]
    struct Recorder {
        submits: Vec<(usize, u8, Vec<u8>)>,
        report: Option<Vec<u8>>,
        events: Vec<CallEvent>,
    }

    impl Radio for Recorder {
        fn submit(
            &mut self,
            modem: usize,
            mr: u8,
            pdu: &[u8],
            _now: i64,
        ) -> Result<Option<Vec<u8>>, String> {
            self.submits.push((modem, mr, pdu.to_vec()));
            Ok(self.report.clone())
        }
        fn call_event(&mut self, _m: usize, _id: u64, e: CallEvent, _now: i64) {
            self.events.push(e);
        }
    }

    /// SUBMIT from MODEMS.md §2.5 #2 ("hellohello", AT+CMGS=23).
    const SUBMIT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
    /// DELIVER from MODEMS.md §2.5 #1.
    const DELIVER: &str =
        "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";
    /// STATUS-REPORT from MODEMS.md §2.5 #9.
    const REPORT: &str = "0006D60B911326880736F4111011719551401110117195714000";

    struct Harness {
        core: ModemCore,
        now: Instant,
        radio: Arc<Mutex<Recorder>>,
    }

    impl Harness {
        fn with(spec: ModemSpec) -> Harness {
            let radio = Arc::new(Mutex::new(Recorder::default()));
            let shared: SharedRadio = radio.clone();
            let now = Instant::now();
            let core = ModemCore::new(0, spec, shared, 1, now);
            let mut h = Harness { core, now, radio };
            h.advance(300);
            h
        }
        fn new(profile: Profile) -> Harness {
            Harness::with(ModemSpec {
                profile,
                latency: Latency {
                    default: MsRange(0, 0),
                    send: MsRange(0, 0),
                    read: MsRange(0, 0),
                },
                boot_ms: 0,
                noise_interval_ms: 0,
                ..ModemSpec::default()
            })
        }
        /// Steps simulated time by 1 ms up to `ms`, collecting output.
        fn advance(&mut self, ms: u64) -> String {
            let mut out = Vec::new();
            for _ in 0..=ms {
                self.core.poll(self.now);
                out.extend(self.core.take_due(self.now));
                self.now += Duration::from_millis(1);
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        fn raw(&mut self, bytes: &[u8]) -> String {
            self.core.feed(bytes, self.now);
            self.advance(5)
        }
        fn at(&mut self, line: &str) -> String {
            self.raw(format!("{line}\r").as_bytes())
        }
        fn quiet(profile: Profile) -> Harness {
            let mut h = Harness::new(profile);
            h.at("ATE0");
            h
        }
        fn deliver(&mut self, hex: &str) -> String {
            let pdu = parse_hex(hex.as_bytes()).unwrap();
            self.core.deliver_sms(pdu, self.now);
            self.advance(1)
        }
    }

    #[test]
    fn echo_on_until_ate0_and_back_after_reboot() {
        let mut h = Harness::new(Profile::Generic);
        assert_eq!(h.at("AT"), "AT\r\r\nOK\r\n");
        assert_eq!(h.at("ATE0"), "ATE0\r\r\nOK\r\n");
        assert_eq!(h.at("AT"), "\r\nOK\r\n");
        assert_eq!(h.at("AT+CFUN=1,1"), "\r\nOK\r\n");
        h.advance(10);
        assert_eq!(h.at("AT"), "AT\r\r\nOK\r\n");
    }

    #[test]
    fn cmee_modes() {
        let mut h = Harness::quiet(Profile::Generic);
        assert_eq!(h.at("AT+CPIN=\"1234\""), "\r\nERROR\r\n");
        h.at("AT+CMEE=1");
        assert_eq!(h.at("AT+CPIN=\"1234\""), "\r\n+CME ERROR: 3\r\n");
        assert_eq!(h.at("AT+CMGR=99"), "\r\n+CMS ERROR: 321\r\n");
        h.at("AT+CMEE=2");
        assert_eq!(
            h.at("AT+CPIN=\"1234\""),
            "\r\n+CME ERROR: operation not allowed\r\n"
        );
        assert_eq!(h.at("AT+CMEE?"), "\r\n+CMEE: 2\r\n\r\nOK\r\n");
    }

    #[test]
    fn unknown_commands() {
        let mut h = Harness::quiet(Profile::Generic);
        assert_eq!(h.at("AT+XYZZY"), "\r\nERROR\r\n");
        let mut h = Harness::quiet(Profile::Huawei);
        assert_eq!(h.at("AT+XYZZY"), "\r\nCOMMAND NOT SUPPORT\r\n");
        // Garbage before AT is skipped; lines without AT are ignored.
        assert_eq!(h.at("\x1b\x1aAT"), "\r\nOK\r\n");
        assert_eq!(h.at("hello"), "");
    }

    #[test]
    fn pin_attempts_then_puk() {
        let mut h = Harness::with(ModemSpec {
            pin: Some("1234".into()),
            latency: Latency {
                default: MsRange(0, 0),
                send: MsRange(0, 0),
                read: MsRange(0, 0),
            },
            boot_ms: 0,
            ..ModemSpec::default()
        });
        h.at("ATE0");
        h.at("AT+CMEE=1");
        assert_eq!(h.at("AT+CPIN?"), "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
        assert_eq!(h.at("AT+CIMI"), "\r\n+CME ERROR: 11\r\n");
        assert_eq!(h.at("AT+CMGL=4"), "\r\n+CMS ERROR: 311\r\n");
        assert_eq!(h.at("AT+CPIN=\"0000\""), "\r\n+CME ERROR: 16\r\n");
        assert_eq!(h.at("AT+CPINC?"), "\r\n+CPINC: \"SC\",2,10\r\n\r\nOK\r\n");
        h.at("AT+CPIN=\"0000\"");
        h.at("AT+CPIN=\"0000\"");
        assert_eq!(h.at("AT+CPIN?"), "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n");
        assert_eq!(
            h.at("AT+CPIN=\"1234\""),
            "\r\n+CME ERROR: 16\r\n",
            "PIN no longer helps"
        );
        assert_eq!(h.at("AT+CPIN=\"12345678\",\"4321\""), "\r\nOK\r\n");
        assert_eq!(h.at("AT+CPIN?"), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
        assert_eq!(h.at("AT+CIMI"), "\r\n001010001000000\r\n\r\nOK\r\n");
    }

    #[test]
    fn correct_pin_unlocks() {
        let mut h = Harness::with(ModemSpec {
            pin: Some("1234".into()),
            latency: Latency {
                default: MsRange(0, 0),
                send: MsRange(0, 0),
                read: MsRange(0, 0),
            },
            boot_ms: 0,
            ..ModemSpec::default()
        });
        h.at("ATE0");
        assert_eq!(h.at("AT+CPIN=\"1234\""), "\r\nOK\r\n");
        assert!(h.at("AT+CSQ").contains("+CSQ: 21,99"));
    }

    #[test]
    fn send_flow_with_prompt_and_modem_reference() {
        let mut h = Harness::quiet(Profile::Generic);
        assert_eq!(h.at("AT+CMGS=23"), "\r\n> ");
        let out = h.raw(format!("{SUBMIT}\x1a").as_bytes());
        let mr0 = h.radio.lock().unwrap().submits[0].1;
        assert_eq!(out, format!("\r\n+CMGS: {mr0}\r\n\r\nOK\r\n"));
        h.at("AT+CMGS=23");
        let out = h.raw(format!("{SUBMIT}\x1a").as_bytes());
        assert_eq!(
            out,
            format!("\r\n+CMGS: {}\r\n\r\nOK\r\n", mr0.wrapping_add(1))
        );
        // The PDU reached the network unchanged.
        assert_eq!(hex_upper(&h.radio.lock().unwrap().submits[0].2), SUBMIT);
    }

    #[test]
    fn reference_wraps_at_256() {
        let mut h = Harness::quiet(Profile::Generic);
        for _ in 0..257 {
            h.at("AT+CMGS=23");
            h.raw(format!("{SUBMIT}\x1a").as_bytes());
        }
        let s = &h.radio.lock().unwrap().submits;
        assert_eq!(s[256].1, s[0].1);
        assert_eq!(s[255].1, s[0].1.wrapping_sub(1));
    }

    #[test]
    fn send_errors() {
        let mut h = Harness::quiet(Profile::Generic);
        h.at("AT+CMEE=1");
        h.at("AT+CMGS=22");
        assert_eq!(
            h.raw(format!("{SUBMIT}\x1a").as_bytes()),
            "\r\n+CMS ERROR: 304\r\n",
            "length mismatch"
        );
        h.at("AT+CMGS=23");
        assert_eq!(h.raw(b"0011ZZ\x1a"), "\r\n+CMS ERROR: 304\r\n", "not hex");
        h.at("AT+CMGS=23");
        assert_eq!(
            h.raw(format!("{SUBMIT}\x1b").as_bytes()),
            "\r\nOK\r\n",
            "ESC cancels"
        );
        assert!(h.radio.lock().unwrap().submits.is_empty());
        h.core.faults.cms_next.push_back(500);
        h.at("AT+CMGS=23");
        assert_eq!(
            h.raw(format!("{SUBMIT}\x1a").as_bytes()),
            "\r\n+CMS ERROR: 500\r\n"
        );
        h.core.set_registered(false, h.now);
        h.at("AT+CMGS=23");
        assert_eq!(
            h.raw(format!("{SUBMIT}\x1a").as_bytes()),
            "\r\n+CMS ERROR: 331\r\n"
        );
        h.at("AT+CMGF=1");
        assert_eq!(h.at("AT+CMGS=\"+1555\""), "\r\n+CMS ERROR: 302\r\n");
    }

    #[test]
    fn prompt_echoes_and_holds_urcs() {
        let mut h = Harness::new(Profile::Generic);
        h.at("AT+CNMI=2,1,0,2,0");
        assert_eq!(h.at("AT+CMGS=23"), "AT+CMGS=23\r\r\n> ");
        // A message arriving while the prompt is open is announced after the result.
        let urc = h.deliver(DELIVER);
        assert_eq!(urc, "");
        let out = h.raw(format!("{SUBMIT}\x1a").as_bytes());
        assert!(out.starts_with(SUBMIT), "{out:?}");
        assert!(out.contains("+CMGS: "));
        assert!(out.contains("+CMTI: \"SM\",1"), "{out:?}");
    }

    #[test]
    fn stored_delivery_read_list_delete() {
        let mut h = Harness::quiet(Profile::Generic);
        h.at("AT+CNMI=2,1,0,2,0");
        assert_eq!(h.deliver(DELIVER), "\r\n+CMTI: \"SM\",1\r\n");
        assert_eq!(
            h.at("AT+CPMS?"),
            "\r\n+CPMS: \"SM\",1,30,\"SM\",1,30,\"SM\",1,30\r\n\r\nOK\r\n"
        );
        assert_eq!(
            h.at("AT+CMGL=0"),
            format!("\r\n+CMGL: 1,0,,28\r\n{DELIVER}\r\n\r\nOK\r\n")
        );
        // Listing flipped it to REC READ.
        assert_eq!(
            h.at("AT+CMGR=1"),
            format!("\r\n+CMGR: 1,,28\r\n{DELIVER}\r\n\r\nOK\r\n")
        );
        assert_eq!(h.at("AT+CMGL=0"), "\r\nOK\r\n");
        assert_eq!(h.at("AT+CMGL=\"ALL\""), "\r\nERROR\r\n");
        assert_eq!(h.at("AT+CMGD=1"), "\r\nOK\r\n");
        assert_eq!(h.at("AT+CMGL=4"), "\r\nOK\r\n");
        h.deliver(DELIVER);
        h.deliver(DELIVER);
        h.at("AT+CMGD=1,4");
        assert_eq!(
            h.at("AT+CPMS?"),
            "\r\n+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30\r\n\r\nOK\r\n"
        );
    }

    #[test]
    fn huawei_indexes_from_zero() {
        let mut h = Harness::quiet(Profile::Huawei);
        h.at("AT+CNMI=2,1,0,2,0");
        assert_eq!(h.deliver(DELIVER), "\r\n+CMTI: \"SM\",0\r\n");
        assert!(h.at("AT+CMGR=0").starts_with("\r\n+CMGR: 0,,28"));
    }

    #[test]
    fn full_storage_then_retry_after_delete() {
        let mut h = Harness::with(ModemSpec {
            capacity: 2,
            latency: Latency {
                default: MsRange(0, 0),
                send: MsRange(0, 0),
                read: MsRange(0, 0),
            },
            boot_ms: 0,
            ..ModemSpec::default()
        });
        h.at("ATE0");
        h.at("AT+CMEE=1");
        h.at("AT+CNMI=2,1,0,2,0");
        h.deliver(DELIVER);
        h.deliver(DELIVER);
        assert_eq!(h.deliver(DELIVER), "", "no room: the network keeps it");
        assert_eq!(h.at("AT+CMGW=23"), "\r\n> ");
        assert_eq!(
            h.raw(format!("{SUBMIT}\x1a").as_bytes()),
            "\r\n+CMS ERROR: 322\r\n"
        );
        let out = h.at("AT+CMGD=1");
        assert!(out.contains("+CMTI: \"SM\",1"), "{out:?}");
    }

    #[test]
    fn write_then_send_from_storage() {
        let mut h = Harness::quiet(Profile::Generic);
        h.at("AT+CMGW=23");
        assert_eq!(
            h.raw(format!("{SUBMIT}\x1a").as_bytes()),
            "\r\n+CMGW: 1\r\n\r\nOK\r\n"
        );
        let out = h.at("AT+CMSS=1");
        assert!(out.starts_with("\r\n+CMSS: "), "{out:?}");
        assert_eq!(h.radio.lock().unwrap().submits.len(), 1);
    }

    #[test]
    fn direct_delivery_with_ack_and_the_missed_ack_trap() {
        let mut h = Harness::quiet(Profile::Generic);
        h.at("AT+CSMS=1");
        h.at("AT+CMEE=1");
        h.at("AT+CNMI=2,2,0,1,0");
        assert_eq!(
            h.deliver(DELIVER),
            format!("\r\n+CMT: ,28\r\n{DELIVER}\r\n")
        );
        // A second message waits for the ack.
        assert_eq!(h.deliver(DELIVER), "");
        let out = h.at("AT+CNMA");
        assert!(out.starts_with("\r\nOK\r\n"), "{out:?}");
        assert!(
            out.contains("+CMT: ,28"),
            "second one after the ack: {out:?}"
        );
        assert_eq!(h.at("AT+CNMA"), "\r\nOK\r\n", "acks the second");
        assert_eq!(h.at("AT+CNMA"), "\r\n+CMS ERROR: 340\r\n", "nothing to ack");
        // Now miss an ack: after the timeout CNMI mt and ds are 0 and the message is stored.
        h.deliver(DELIVER);
        h.advance(5_100);
        assert_eq!(h.at("AT+CNMI?"), "\r\n+CNMI: 2,0,0,0,0\r\n\r\nOK\r\n");
        assert_eq!(h.core.status().stored_sm, 1);
    }

    #[test]
    fn status_reports_stored_or_direct() {
        let mut h = Harness::quiet(Profile::Generic);
        h.radio.lock().unwrap().report = Some(parse_hex(REPORT.as_bytes()).unwrap());
        h.at("AT+CNMI=2,1,0,2,0");
        h.at("AT+CMGS=23");
        h.raw(format!("{SUBMIT}\x1a").as_bytes());
        let out = h.advance(300);
        assert_eq!(out, "\r\n+CDSI: \"SR\",1\r\n");
        h.at("AT+CPMS=\"SR\"");
        assert_eq!(
            h.at("AT+CMGR=1"),
            format!("\r\n+CMGR: 0,,25\r\n{REPORT}\r\n\r\nOK\r\n")
        );
        h.at("AT+CNMI=2,1,0,1,0");
        h.at("AT+CMGS=23");
        h.raw(format!("{SUBMIT}\x1a").as_bytes());
        assert_eq!(h.advance(300), format!("\r\n+CDS: 25\r\n{REPORT}\r\n"));
    }

    #[test]
    fn chained_commands_one_final() {
        let mut h = Harness::quiet(Profile::Generic);
        assert_eq!(
            h.at("AT+CMGF=0;+CGMI;+CSQ"),
            "\r\ngsmgate\r\n\r\n+CSQ: 21,99\r\n\r\nOK\r\n"
        );
        assert_eq!(h.at("AT+CGMI;+NOPE;+CSQ"), "\r\ngsmgate\r\n\r\nERROR\r\n");
    }

    #[test]
    fn registration_urcs() {
        let mut h = Harness::quiet(Profile::Generic);
        h.at("AT+CREG=2");
        assert_eq!(
            h.at("AT+CREG?"),
            "\r\n+CREG: 2,1,\"1A2B\",\"3C4D\"\r\n\r\nOK\r\n"
        );
        h.core.set_registered(false, h.now);
        assert_eq!(h.advance(1), "\r\n+CREG: 0\r\n");
        assert_eq!(h.at("AT+COPS?"), "\r\n+COPS: 0\r\n\r\nOK\r\n");
        h.at("AT+CREG=1");
        h.core.set_registered(true, h.now);
        assert_eq!(h.advance(1), "\r\n+CREG: 1\r\n");
    }

    #[test]
    fn wavecom_quirks() {
        let mut h = Harness::quiet(Profile::Wavecom);
        assert_eq!(h.at("AT+CPIN?"), "\r\n+CPIN: READY\r\n");
        h.at("AT+CMEE=1");
        assert_eq!(h.at("AT+CFUN=1"), "\r\nOK\r\n");
        assert_eq!(h.at("AT"), "\r\n+CME ERROR: 515\r\n");
        assert_eq!(h.at("AT"), "\r\n+CME ERROR: 515\r\n");
        assert_eq!(h.at("AT"), "\r\nOK\r\n");
        assert_eq!(h.at("AT+CPMS=\"SM\",\"SM\",\"SR\""), "\r\nERROR\r\n");
    }

    #[test]
    fn zte_noise_before_prompt_and_result() {
        let mut h = Harness::quiet(Profile::Zte);
        let p = h.at("AT+CMGS=23");
        assert!(p.starts_with("\r\n+ZPASR: \"UMTS\"\r\n"), "{p:?}");
        assert!(p.ends_with("\r\n> "));
        let r = h.raw(format!("{SUBMIT}\x1a").as_bytes());
        assert!(r.starts_with("\r\n+ZPASR"), "{r:?}");
        assert!(r.contains("+CMGS: "));
        assert_eq!(
            h.at("AT+CSCA?"),
            "\r\nERROR\r\n",
            "SIM busy right after boot"
        );
        h.at("AT+CSMP=17,167,0,0");
        assert_eq!(h.at("AT+CSCA?"), "\r\n+CSCA: \"\",129\r\n\r\nOK\r\n");
    }

    #[test]
    fn zte_csca_busy_after_boot() {
        let mut h = Harness::quiet(Profile::Zte);
        h.at("AT+CMEE=1");
        assert_eq!(h.at("AT+CSCA?"), "\r\n+CME ERROR: 14\r\n");
        assert!(h.at("AT+CSCA?").contains("+CSCA: \"+15550000000\",145"));
    }

    #[test]
    fn quectel_reboot_lines() {
        let mut h = Harness::quiet(Profile::Quectel);
        let out = h.at("AT+CFUN=1,1") + &h.advance(200);
        assert!(out.starts_with("\r\nOK\r\n\r\nRDY\r\n"), "{out:?}");
        assert!(
            out.contains("+QIND: PB DONE") && out.contains("+QIND: SMS DONE"),
            "{out:?}"
        );
        assert_eq!(h.at("AT"), "AT\r\r\nOK\r\n", "echo is back");
    }

    #[test]
    fn simcom_urcs_end_with_cr_cr_lf() {
        let mut h = Harness::quiet(Profile::Simcom);
        h.at("AT+CNMI=2,1,0,2,0");
        assert_eq!(h.deliver(DELIVER), "\r\n+CMTI: \"SM\",1\r\r\n");
    }

    #[test]
    fn huawei_noise_and_curc() {
        let mut h = Harness::with(ModemSpec {
            profile: Profile::Huawei,
            latency: Latency {
                default: MsRange(0, 0),
                send: MsRange(0, 0),
                read: MsRange(0, 0),
            },
            boot_ms: 0,
            noise_interval_ms: 100,
            ..ModemSpec::default()
        });
        h.at("ATE0");
        let out = h.advance(350);
        assert!(out.contains("^RSSI:21"), "{out:?}");
        assert!(out.contains("^BOOT:"), "{out:?}");
        h.at("AT^CURC=0");
        assert_eq!(h.advance(300), "");
    }

    #[test]
    fn incoming_call_generic() {
        let mut h = Harness::quiet(Profile::Generic);
        h.at("AT+CLIP=1");
        h.core
            .incoming_call(1, "+15551234567", None, None, h.now)
            .unwrap();
        let out = h.advance(3_100);
        assert_eq!(out.matches("RING").count(), 2, "{out:?}");
        assert!(out.contains("+CLIP: \"+15551234567\",145,,,,0"));
        assert_eq!(
            h.at("AT+CLCC"),
            "\r\n+CLCC: 1,1,4,0,0,\"+15551234567\",145\r\n\r\nOK\r\n"
        );
        assert_eq!(h.at("ATA"), "\r\nOK\r\n");
        assert_eq!(
            h.at("AT+CLCC"),
            "\r\n+CLCC: 1,1,0,0,0,\"+15551234567\",145\r\n\r\nOK\r\n"
        );
        assert_eq!(h.advance(3_100), "", "no more rings once answered");
        assert_eq!(h.at("AT+CHUP"), "\r\nOK\r\n");
        assert_eq!(
            h.radio.lock().unwrap().events,
            vec![CallEvent::Answered, CallEvent::HungUpByModem]
        );
        assert_eq!(h.at("ATA"), "\r\nNO CARRIER\r\n");
    }

    #[test]
    fn phone_hangs_up_after_answer() {
        let mut h = Harness::quiet(Profile::Generic);
        h.at("AT+CRC=1");
        h.core
            .incoming_call(
                1,
                "+15551234567",
                None,
                Some(Duration::from_millis(500)),
                h.now,
            )
            .unwrap();
        assert!(h.advance(5).contains("+CRING: VOICE"));
        h.at("ATA");
        assert_eq!(h.advance(600), "\r\nNO CARRIER\r\n");
    }

    #[test]
    fn huawei_call_urcs_and_audio() {
        let mut h = Harness::quiet(Profile::Huawei);
        h.core
            .incoming_call(3, "+15551234567", None, None, h.now)
            .unwrap();
        h.advance(1);
        assert_eq!(h.at("AT^DDSETEX=2"), "\r\nERROR\r\n", "no call up yet");
        assert_eq!(h.at("ATA"), "\r\n^CONN:1,0\r\n\r\nOK\r\n");
        assert_eq!(h.core.audio_route(), None);
        assert_eq!(h.at("AT^DDSETEX=2"), "\r\nOK\r\n");
        assert_eq!(h.core.audio_route(), Some(AudioRoute { call_id: 3 }));
        let out = h.at("AT+CHUP");
        assert!(out.contains("^CEND:1,0,29,16"), "{out:?}");
        assert_eq!(h.core.audio_route(), None);
    }

    #[test]
    fn simcom_cpcmreg_only_after_a_while() {
        let mut h = Harness::quiet(Profile::Simcom);
        h.core
            .incoming_call(1, "+15551234567", None, None, h.now)
            .unwrap();
        h.advance(1);
        let out = h.at("ATA");
        assert!(out.contains("VOICE CALL: BEGIN"), "{out:?}");
        assert_eq!(h.at("AT+CPCMREG=1"), "\r\nERROR\r\n");
        h.advance(1_000);
        assert_eq!(h.at("AT+CPCMREG=1"), "\r\nOK\r\n");
        assert!(h.core.audio_route().is_some());
        assert!(h.at("AT+CHUP").contains("VOICE CALL: END: 0000"));
    }

    #[test]
    fn quectel_qpcmv_then_answer() {
        let mut h = Harness::quiet(Profile::Quectel);
        h.at("AT+QINDCFG=\"ccinfo\",1,0");
        h.core
            .incoming_call(1, "+15551234567", None, None, h.now)
            .unwrap();
        assert!(
            h.advance(1)
                .contains("+QIND: \"ccinfo\",1,1,4,0,0,\"+15551234567\",145")
        );
        let out = h.at("AT+QPCMV=0;+QPCMV=1,0;A");
        assert!(out.contains("+QIND: \"ccinfo\",1,1,0,0,0"), "{out:?}");
        assert!(h.core.audio_route().is_some());
        assert_eq!(h.at("AT+QPCMV=1,2"), "\r\nERROR\r\n", "already on");
    }

    #[test]
    fn missed_call_simcom() {
        let mut h = Harness::quiet(Profile::Simcom);
        h.core
            .incoming_call(
                1,
                "+15551234567",
                Some(Duration::from_millis(100)),
                None,
                h.now,
            )
            .unwrap();
        let out = h.advance(200);
        assert!(
            out.contains("RING") && out.contains("MISSED_CALL:"),
            "{out:?}"
        );
    }

    #[test]
    fn identity_commands() {
        let mut h = Harness::quiet(Profile::Quectel);
        let id = Identity::for_index(0);
        assert_eq!(h.at("AT+CGSN"), format!("\r\n{}\r\n\r\nOK\r\n", id.imei));
        assert_eq!(
            h.at("AT+QCCID"),
            format!("\r\n+QCCID: {}\r\n\r\nOK\r\n", id.iccid)
        );
        assert_eq!(
            h.at("AT+CNUM"),
            format!("\r\n+CNUM: \"\",\"{}\",145\r\n\r\nOK\r\n", id.number)
        );
        h.at("AT+CSCS=\"UCS2\"");
        assert_eq!(
            h.at("AT+CSCA?"),
            "\r\n+CSCA: \"002B00310035003500350030003000300030003000300030\",145\r\n\r\nOK\r\n"
        );
    }

    #[test]
    fn split_input_bytes() {
        let mut h = Harness::quiet(Profile::Generic);
        let mut out = String::new();
        for b in b"AT+CGMI\r" {
            out += &h.raw(&[*b]);
        }
        assert_eq!(out, "\r\ngsmgate\r\n\r\nOK\r\n");
    }

    #[test]
    fn stall_ignores_commands() {
        let mut h = Harness::quiet(Profile::Generic);
        h.core.faults.stall = true;
        assert_eq!(h.at("AT"), "");
        h.core.faults.stall = false;
        assert_eq!(h.at("AT"), "\r\nOK\r\n");
    }

    #[test]
    fn latency_delays_answer_and_later_input() {
        let mut h = Harness::with(ModemSpec {
            latency: Latency {
                default: MsRange(50, 50),
                send: MsRange(0, 0),
                read: MsRange(0, 0),
            },
            boot_ms: 0,
            ..ModemSpec::default()
        });
        h.at("ATE0");
        h.advance(60);
        h.core.feed(b"AT\rAT+CGMI\r", h.now);
        assert_eq!(h.advance(20), "");
        assert_eq!(h.advance(40), "\r\nOK\r\n");
        assert_eq!(h.advance(60), "\r\ngsmgate\r\n\r\nOK\r\n");
    }

    /// A PCM WAV of `n` samples at 8 kHz (a ramp), as the daemon uploads it.
    fn wav_of(n: usize) -> (Vec<u8>, Vec<i16>) {
        let samples: Vec<i16> = (0..n).map(|i| (i as i16).wrapping_mul(7)).collect();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for s in &samples {
            w.write_sample(*s).unwrap();
        }
        w.finalize().unwrap();
        (out.into_inner(), samples)
    }

    fn heard(h: &mut Harness) -> Vec<i16> {
        h.core
            .take_played()
            .1
            .into_iter()
            .flat_map(|(_, s)| s)
            .collect()
    }

    fn answered_call(h: &mut Harness) {
        h.core
            .incoming_call(5, "+15551234567", None, None, h.now)
            .unwrap();
        h.advance(1);
        h.at("ATA");
        h.advance(5);
    }

    #[test]
    fn sim800_file_upload_and_playback() {
        let mut h = Harness::quiet(Profile::Sim800);
        let (wav, samples) = wav_of(1600);
        let (a, b) = wav.split_at(1000);
        assert_eq!(h.at("AT+FSFLSIZE=C:\\User\\1.wav"), "\r\nERROR\r\n");
        assert_eq!(h.at("AT+FSCREATE=C:\\User\\1.wav"), "\r\nOK\r\n");
        assert_eq!(
            h.at(&format!("AT+FSWRITE=C:\\User\\1.wav,0,{},10", a.len())),
            "\r\n> "
        );
        // Raw bytes, counted: whatever they contain does not end them early.
        assert_eq!(h.raw(a), "\r\nOK\r\n");
        assert_eq!(
            h.at(&format!("AT+FSWRITE=\"C:\\User\\1.wav\",1,{},10", b.len())),
            "\r\n> "
        );
        assert_eq!(h.raw(b), "\r\nOK\r\n");
        assert_eq!(
            h.at("AT+FSFLSIZE=C:\\User\\1.wav"),
            format!("\r\n+FSFLSIZE: {}\r\n\r\nOK\r\n", wav.len())
        );
        assert_eq!(h.core.files()[0].uploads, 1);
        assert_eq!(
            h.at("AT+CREC=4,\"C:\\User\\1.wav\",0,90"),
            "\r\nERROR\r\n",
            "no call"
        );
        answered_call(&mut h);
        assert_eq!(h.at("AT+CREC=4,\"C:\\User\\1.wav\",0,90"), "\r\nOK\r\n");
        let (started, mut got): (_, Vec<i16>) = {
            let (f, a) = h.core.take_played();
            (f, a.into_iter().flat_map(|(_, s)| s).collect())
        };
        assert_eq!(started, vec![(5, wav.len())]);
        // 1600 samples = 200 ms, heard in real time; the end URC after that.
        assert_eq!(h.advance(100), "");
        got.extend(heard(&mut h));
        assert!(got.len() >= 700 && got.len() < 1600, "{}", got.len());
        assert_eq!(h.advance(150), "\r\n+CREC: 0\r\n");
        got.extend(heard(&mut h));
        assert_eq!(got, samples);
        assert_eq!(
            h.at("AT+CREC=4,\"C:\\User\\nope.amr\",0,90"),
            "\r\nERROR\r\n"
        );
        assert_eq!(h.at("AT+FSDEL=C:\\User\\1.wav"), "\r\nOK\r\n");
        assert_eq!(h.at("AT+FSDEL=C:\\User\\1.wav"), "\r\nERROR\r\n");
    }

    #[test]
    fn quectel_upload_list_and_play() {
        let mut h = Harness::quiet(Profile::Quectel);
        h.at("AT+CMEE=1");
        let (wav, samples) = wav_of(800);
        assert_eq!(h.at("AT+QFLST=\"UFS:greet.wav\""), "\r\nOK\r\n");
        assert_eq!(
            h.at("AT+QFDEL=\"UFS:greet.wav\""),
            "\r\n+CME ERROR: 405\r\n"
        );
        assert_eq!(
            h.at(&format!("AT+QFUPL=\"UFS:greet.wav\",{},30", wav.len())),
            "\r\nCONNECT\r\n"
        );
        let sum = crate::at::files::quectel_checksum(&wav);
        assert_eq!(
            h.raw(&wav),
            format!("\r\n+QFUPL: {},{sum:x}\r\n\r\nOK\r\n", wav.len())
        );
        assert_eq!(
            h.at("AT+QFLST=\"UFS:greet.wav\""),
            format!("\r\n+QFLST: \"UFS:greet.wav\",{}\r\n\r\nOK\r\n", wav.len())
        );
        assert_eq!(
            h.at(&format!("AT+QFUPL=\"UFS:greet.wav\",{},30", wav.len())),
            "\r\n+CME ERROR: 407\r\n",
            "the file exists"
        );
        answered_call(&mut h);
        assert_eq!(h.at("AT+QPSND=1,\"greet.wav\",0,1,1"), "\r\nOK\r\n");
        let out = h.advance(150);
        assert!(out.ends_with("\r\n+QPSND: 0\r\n"), "{out:?}");
        assert_eq!(heard(&mut h), samples);
        assert_eq!(h.at("AT+QFDEL=\"UFS:greet.wav\""), "\r\nOK\r\n");
    }

    #[test]
    fn simcom_upload_and_play_stopped_by_a_hangup() {
        let mut h = Harness::quiet(Profile::Simcom);
        let (wav, samples) = wav_of(8000);
        assert_eq!(
            h.at(&format!("AT+CFTRANRX=\"C:/greet.wav\",{}", wav.len())),
            "\r\n> "
        );
        assert_eq!(h.raw(&wav), "\r\nOK\r\n");
        assert_eq!(h.at("AT+FSCD=C:"), "\r\nOK\r\n");
        assert_eq!(
            h.at("AT+FSATTRI=greet.wav"),
            format!(
                "\r\n+FSATTRI: {},2024/01/01 00:00:00\r\n\r\nOK\r\n",
                wav.len()
            )
        );
        answered_call(&mut h);
        // OK first, then the URC once playback runs.
        let out = h.at("AT+CCMXPLAY=\"C:/greet.wav\",1,0") + &h.advance(295);
        assert!(
            out.starts_with("\r\nOK\r\n\r\n+AUDIOSTATE: audio play\r"),
            "{out:?}"
        );
        assert!(h.core.phone_hangup(5, h.now));
        // The caller heard about 300 ms of the 1 s file, then nothing more.
        let got = heard(&mut h);
        assert!(got.len() >= 2400 && got.len() < 4000, "{}", got.len());
        assert_eq!(got[..], samples[..got.len()]);
        assert!(!h.advance(1000).contains("audio play stop"));
        assert!(heard(&mut h).is_empty());
        assert_eq!(h.core.files()[0].uploads, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn never_panics_on_any_input(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..12)) {
            let mut h = Harness::new(Profile::Huawei);
            for c in chunks {
                h.core.feed(&c, h.now);
                h.advance(2);
            }
        }

        #[test]
        fn never_panics_on_at_like_input(lines in proptest::collection::vec("AT[+^]?[A-Z]{0,6}[=?]{0,2}[0-9,\"A-Z]{0,12}", 0..12)) {
            let mut h = Harness::new(Profile::Generic);
            for l in lines {
                h.at(&l);
            }
        }
    }
}
