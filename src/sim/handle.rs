//! The simulator as a library: [`SimHandle`], whose methods are the control-socket commands
//! without JSON, the request and record types they take and return, and the start-up of the
//! modems (their AT port tasks, audio threads and the shared network). It owns the running
//! simulator's wiring and nothing about AT or PDUs; the control socket (`control.rs`) is a thin
//! transport over this handle and is started beside it by `Simulator::start`.
//!
//! Locking: each modem's state sits behind a std mutex that is never held across an await (every
//! critical section is a few microseconds), and its task is woken through a `Notify` when the
//! control side changes something. The lock order is modem first, then network.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::at_port::ModemTask;
use super::audio::{self, AudioStats};
use super::faults::Fault;
use super::files::FileInfo;
use super::modem::{ModemCore, ModemSpec, ModemStatus};
use super::network::{self, CallRecord, Network, ReceivedText, SubmittedPart};
use super::profile::{Identity, Profile};
use super::pty::{Pty, PtyError, publish, unpublish};
use super::radio::SharedRadio;
use super::sync::lock;
use super::wav::{self, WavError};
use crate::time::now_secs;

/// The control socket's file name in the simulator's folder.
const CONTROL_SOCKET: &str = "control.sock";

/// Errors of the simulator library.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Pty(#[from] PtyError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no modem with index {0}")]
    NoModem(usize),
    #[error("no call with id {0}")]
    NoCall(u64),
    #[error("phone {0} has no open call")]
    NoOpenCall(String),
    #[error("modem {modem} cannot take the call: {reason}")]
    CallRefused { modem: usize, reason: &'static str },
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    #[error(transparent)]
    Wav(#[from] WavError),
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Folder for the `modemN` / `modemN.audio` symlinks and `control.sock`.
    pub dir: PathBuf,
    pub modems: Vec<ModemSpec>,
    /// Seed for latencies, fault rates and split writes.
    pub seed: u64,
    /// Start the control socket (the CLI does; tests may drive the handle directly).
    pub control_socket: bool,
}

impl SimConfig {
    /// `n` modems of one profile in `dir`, control socket on.
    pub fn new(dir: impl Into<PathBuf>, n: usize, profile: Profile) -> SimConfig {
        SimConfig {
            dir: dir.into(),
            modems: (0..n)
                .map(|_| ModemSpec {
                    profile,
                    ..ModemSpec::default()
                })
                .collect(),
            seed: 1,
            control_socket: true,
        }
    }
}

/// Where one modem's ports are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModemPaths {
    pub index: usize,
    pub profile: Profile,
    /// The AT port (symlink to a pseudo-terminal).
    pub at: PathBuf,
    /// The PCM audio port, for profiles that stream audio.
    pub audio: Option<PathBuf>,
    pub imei: String,
    pub imsi: String,
    pub iccid: String,
    pub number: String,
}

/// All paths of a running simulator (printed as JSON by `gsmgate sim`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimPaths {
    pub dir: PathBuf,
    pub control: Option<PathBuf>,
    pub modems: Vec<ModemPaths>,
}

/// A text from a phone to a modem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhoneSms {
    /// The phone's number (E.164 or any sender the PDU codec accepts, e.g. alphanumeric).
    pub from: String,
    pub modem: usize,
    pub text: String,
    /// Deliver the parts of a long text in reverse order.
    pub out_of_order: bool,
    /// Hold back this part (1-based) and deliver it `late_ms` after the others.
    pub late_part: Option<u8>,
    pub late_ms: u64,
}

/// A call from a phone to a modem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhoneCall {
    pub from: String,
    pub modem: usize,
    /// Stop ringing (a missed call) after this long without an answer.
    pub give_up_after_ms: Option<u64>,
    /// Hang up this long after the modem answered.
    pub hangup_after_ms: Option<u64>,
    /// A WAV file the phone "speaks" into the call once it is answered.
    pub speak_wav: Option<PathBuf>,
}

/// One stored message of a modem memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMessage {
    pub index: usize,
    pub stat: u8,
    pub pdu_hex: String,
}

struct ModemSlot {
    core: Arc<Mutex<ModemCore>>,
    notify: Arc<Notify>,
    plugged: watch::Sender<bool>,
    paths: ModemPaths,
    audio_stats: Option<Arc<Mutex<AudioStats>>>,
}

struct Inner {
    dir: PathBuf,
    control: Option<PathBuf>,
    modems: Vec<ModemSlot>,
    network: Arc<Mutex<Network>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// A running simulator. Cheap to clone; [`SimHandle::shutdown`] stops it and removes its paths.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

impl SimHandle {
    /// Creates the pseudo-terminals and symlinks and starts the modem tasks and audio threads;
    /// the control socket, if configured, is named here but bound by the caller
    /// (`Simulator::start`). Must be called inside a tokio runtime. The symlinks exist when this
    /// returns.
    pub(super) fn start(config: &SimConfig) -> Result<SimHandle, SimError> {
        std::fs::create_dir_all(&config.dir).map_err(|source| SimError::Io {
            what: "creating",
            path: config.dir.clone(),
            source,
        })?;
        let identities: Vec<Identity> = config
            .modems
            .iter()
            .enumerate()
            .map(|(i, s)| s.identity.clone().unwrap_or_else(|| Identity::for_index(i)))
            .collect();
        let smsc = config
            .modems
            .first()
            .and_then(|m| m.smsc.clone())
            .unwrap_or_else(|| "+15550000000".into());
        let network = Arc::new(Mutex::new(Network::new(
            &smsc,
            identities.iter().map(|i| i.number.clone()).collect(),
        )));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let now = Instant::now();
        let mut modems = Vec::new();
        for (i, spec) in config.modems.iter().enumerate() {
            let start = ModemStart {
                index: i,
                spec,
                config,
                network: &network,
                cancel: &cancel,
                tracker: &tracker,
                now,
            };
            modems.push(start.run()?);
        }
        Ok(SimHandle {
            inner: Arc::new(Inner {
                dir: config.dir.clone(),
                control: config
                    .control_socket
                    .then(|| config.dir.join(CONTROL_SOCKET)),
                modems,
                network,
                cancel,
                tracker,
            }),
        })
    }

    /// Where the control socket is to be bound, if the simulator has one.
    pub(super) fn control_path(&self) -> Option<&Path> {
        self.inner.control.as_deref()
    }

    /// Runs a task until the simulator stops; `shutdown` waits for it. The task gets the token
    /// that is cancelled at shutdown.
    pub(super) fn spawn<F>(&self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.tracker.spawn(task(self.inner.cancel.clone()));
    }

    fn slot(&self, modem: usize) -> Result<&ModemSlot, SimError> {
        self.inner.modems.get(modem).ok_or(SimError::NoModem(modem))
    }

    fn with_core<R>(
        &self,
        modem: usize,
        f: impl FnOnce(&mut ModemCore) -> R,
    ) -> Result<R, SimError> {
        let slot = self.slot(modem)?;
        let r = f(&mut lock(&slot.core));
        slot.notify.notify_one();
        Ok(r)
    }

    /// Paths of the ports and the control socket.
    pub fn paths(&self) -> SimPaths {
        SimPaths {
            dir: self.inner.dir.clone(),
            control: self.inner.control.clone(),
            modems: self.inner.modems.iter().map(|m| m.paths.clone()).collect(),
        }
    }

    /// State of every modem.
    pub fn status(&self) -> Vec<ModemStatus> {
        self.inner
            .modems
            .iter()
            .map(|m| lock(&m.core).status())
            .collect()
    }

    /// A phone texts a modem. Returns the number of parts sent.
    pub fn phone_sms(&self, req: &PhoneSms) -> Result<usize, SimError> {
        self.slot(req.modem)?;
        let mut pdus = lock(&self.inner.network).texts_for(&req.from, &req.text, now_secs())?;
        let n = pdus.len();
        if req.out_of_order {
            pdus.reverse();
        }
        let late = req.late_part.and_then(|p| {
            let idx = usize::from(p).checked_sub(1)?;
            // The late part is chosen by its sequence number, also after reversing.
            let pos = if req.out_of_order {
                n.checked_sub(idx + 1)?
            } else {
                idx
            };
            (pos < pdus.len()).then(|| pdus.remove(pos))
        });
        let now = Instant::now();
        self.with_core(req.modem, |c| {
            for p in pdus {
                c.deliver_sms(p, now);
            }
        })?;
        if let Some(p) = late {
            let me = self.clone();
            let modem = req.modem;
            let delay = Duration::from_millis(req.late_ms);
            self.inner.tracker.spawn(async move {
                tokio::select! {
                    _ = me.inner.cancel.cancelled() => {}
                    _ = tokio::time::sleep(delay) => {
                        let _ = me.with_core(modem, |c| c.deliver_sms(p, Instant::now()));
                    }
                }
            });
        }
        Ok(n)
    }

    /// A phone calls a modem. Returns the call id.
    pub fn phone_call(&self, req: &PhoneCall) -> Result<u64, SimError> {
        self.slot(req.modem)?;
        let speech = match &req.speak_wav {
            Some(p) => wav::read(p)?,
            None => Vec::new(),
        };
        let id = {
            let mut net = lock(&self.inner.network);
            let id = net.new_call(&req.from, req.modem, now_secs());
            if let Some(c) = net.call_mut(id) {
                c.speech = speech;
            }
            id
        };
        let give_up = req.give_up_after_ms.map(Duration::from_millis);
        let hang = req.hangup_after_ms.map(Duration::from_millis);
        let r = self.with_core(req.modem, |c| {
            c.incoming_call(id, &req.from, give_up, hang, Instant::now())
        })?;
        if let Err(reason) = r {
            // The call never reached the modem: close its record.
            let mut net = lock(&self.inner.network);
            if let Some(c) = net.call_mut(id) {
                c.ended_at = Some(now_secs());
                c.ended_by = Some("refused".into());
            }
            return Err(SimError::CallRefused {
                modem: req.modem,
                reason,
            });
        }
        Ok(id)
    }

    /// The phone hangs up its open call.
    pub fn phone_hangup(&self, from: &str) -> Result<(), SimError> {
        let (id, modem) = {
            let net = lock(&self.inner.network);
            let c = net
                .open_call_of(from)
                .ok_or_else(|| SimError::NoOpenCall(from.into()))?;
            (c.id, c.modem)
        };
        self.with_core(modem, |c| c.phone_hangup(id, Instant::now()))?;
        Ok(())
    }

    /// Texts received by a phone (or all phones).
    pub fn received(&self, phone: Option<&str>) -> Vec<ReceivedText> {
        lock(&self.inner.network).received(phone, now_secs())
    }

    /// Every SUBMIT the network accepted, in arrival order.
    pub fn submitted(&self) -> Vec<SubmittedPart> {
        lock(&self.inner.network).submitted().to_vec()
    }

    /// Call records (audio omitted; see [`SimHandle::save_heard`]).
    pub fn calls(&self, phone: Option<&str>) -> Vec<CallRecord> {
        lock(&self.inner.network).calls(phone)
    }

    /// What the phone heard in a call, as samples.
    pub fn heard(&self, call_id: u64) -> Result<Vec<i16>, SimError> {
        lock(&self.inner.network)
            .call(call_id)
            .map(|c| c.heard.clone())
            .ok_or(SimError::NoCall(call_id))
    }

    /// Writes what the phone heard in a call as an 8 kHz mono WAV file.
    pub fn save_heard(&self, call_id: u64, path: &Path) -> Result<(), SimError> {
        let samples = self.heard(call_id)?;
        wav::write(path, &samples)?;
        Ok(())
    }

    /// Injects a fault into a modem.
    pub fn fault(&self, modem: usize, fault: &Fault) -> Result<(), SimError> {
        let slot = self.slot(modem)?;
        let now = Instant::now();
        match fault {
            Fault::Unplug => {
                slot.plugged.send_replace(false);
            }
            Fault::Replug => {
                slot.plugged.send_replace(true);
            }
            Fault::StorageFull => {
                let filler = lock(&self.inner.network).filler_pdu(now_secs());
                self.with_core(modem, |c| c.fill_storage(&filler))?;
            }
            Fault::Garbage { hex, count } => {
                let bytes = match (hex, count) {
                    (Some(h), _) => crate::pdu::hex_to_bytes(h)
                        .map_err(|e| SimError::Invalid(format!("garbage hex: {e}")))?,
                    (None, n) => self.with_core(modem, |c| {
                        (0..n.unwrap_or(16))
                            .map(|_| c.rng().range(0, 255) as u8)
                            .collect::<Vec<u8>>()
                    })?,
                };
                self.with_core(modem, |c| c.inject_raw(bytes, now))?;
            }
            other => {
                let other = other.clone();
                self.with_core(modem, move |c| match other {
                    Fault::CmsError { code, count, rate } => match rate {
                        Some(r) => c.faults.cms_rate = Some((code, r.clamp(0.0, 1.0))),
                        None => c
                            .faults
                            .cms_next
                            .extend(std::iter::repeat_n(code, count.unwrap_or(1) as usize)),
                    },
                    Fault::ClearCmsError => {
                        c.faults.cms_next.clear();
                        c.faults.cms_rate = None;
                    }
                    Fault::SplitWrites { on, max_chunk } => {
                        c.faults.split_writes = on.then_some(max_chunk.unwrap_or(4).max(1));
                    }
                    Fault::Stall { on } => {
                        c.faults.stall = on;
                        c.faults.stall_after_send &= on;
                    }
                    Fault::StallAfterSend => c.faults.stall_after_send = true,
                    Fault::Reboot => c.reboot(now),
                    Fault::Deregister => c.set_registered(false, now),
                    Fault::Register => c.set_registered(true, now),
                    Fault::Signal { rssi } => c.set_rssi(rssi),
                    Fault::Unplug | Fault::Replug | Fault::StorageFull | Fault::Garbage { .. } => {}
                })?;
            }
        }
        Ok(())
    }

    /// Messages stored in a modem memory ("SM", "ME", "SR").
    pub fn stored(&self, modem: usize, mem: &str) -> Result<Vec<StoredMessage>, SimError> {
        self.with_core(modem, |c| {
            c.stored(mem)
                .into_iter()
                .map(|(index, stat, pdu)| StoredMessage {
                    index,
                    stat,
                    pdu_hex: crate::pdu::to_hex(&pdu),
                })
                .collect()
        })
    }

    /// Puts a raw PDU (SMSC field first, any TPDU type, valid or not) into a modem: with
    /// `announce`, the network delivers it (stored per `AT+CNMI` and announced with `+CMTI`, as
    /// any SMS); without, it is written into the storage new messages go to with `stat` and no
    /// URC, as a phone that had the SIM before could have left it. Returns the index when written
    /// silently.
    pub fn store_pdu(
        &self,
        modem: usize,
        pdu: Vec<u8>,
        stat: u8,
        announce: bool,
    ) -> Result<Option<usize>, SimError> {
        self.with_core(modem, |c| {
            if announce {
                c.deliver_sms(pdu, Instant::now());
                None
            } else {
                c.put_stored(pdu, stat)
            }
        })
    }

    /// Writes a STATUS-REPORT PDU (SMSC field first) into modem `modem`'s own report memory
    /// (`SR`), unread and unannounced: a report that came in while the port was not read. It
    /// stays there across [`SimHandle::insert_sim`], as in a real stick. The index, or `None`
    /// when the memory is full.
    pub fn store_report(&self, modem: usize, pdu: Vec<u8>) -> Result<Option<usize>, SimError> {
        self.with_core(modem, |c| c.put_report(pdu))
    }

    /// Audio timing figures of a modem's current or last call (`None` without an audio port).
    pub fn audio_stats(&self, modem: usize) -> Result<Option<AudioStats>, SimError> {
        Ok(self.slot(modem)?.audio_stats.as_ref().map(|s| {
            let mut st = lock(s).clone();
            st.summarize();
            st
        }))
    }

    /// Stores a file on a modem (SIM800 playback with `AT+CREC=4`).
    pub fn put_file(&self, modem: usize, name: &str, data: Vec<u8>) -> Result<(), SimError> {
        self.with_core(modem, |c| c.put_file(name, data))
    }

    /// The files on a modem's flash (uploaded by the daemon or put there), with upload counts.
    pub fn files(&self, modem: usize) -> Result<Vec<FileInfo>, SimError> {
        self.with_core(modem, |c| c.files())
    }

    /// Puts another SIM into modem `modem` (best done while it is unplugged, as with a real
    /// stick): from now on it answers with this IMSI, ICCID and own number.
    pub fn insert_sim(&self, modem: usize, identity: Identity) -> Result<(), SimError> {
        self.with_core(modem, |c| c.insert_sim(identity))
    }

    /// What modem `modem`'s network answers to the balance code `*100#` from now on, e.g.
    /// `"Balance: 3.10 EUR"`.
    pub fn set_ussd_balance(&self, modem: usize, text: &str) -> Result<(), SimError> {
        self.with_core(modem, |c| c.set_ussd_balance(text))
    }

    /// TP-ST put into generated status reports (0 delivered, e.g. 0x46 validity expired).
    pub fn set_report_status(&self, status: u8) {
        lock(&self.inner.network).report_status = status;
    }

    /// Stops every task and removes the symlinks and the control socket.
    pub async fn shutdown(self) {
        self.inner.cancel.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        for m in &self.inner.modems {
            unpublish(&m.paths.at);
            if let Some(a) = &m.paths.audio {
                unpublish(a);
            }
        }
        if let Some(c) = &self.inner.control {
            let _ = std::fs::remove_file(c);
        }
    }
}

/// What starting one modem needs: its index and spec and the simulator-wide pieces.
struct ModemStart<'a> {
    index: usize,
    spec: &'a ModemSpec,
    config: &'a SimConfig,
    network: &'a Arc<Mutex<Network>>,
    cancel: &'a CancellationToken,
    tracker: &'a TaskTracker,
    now: Instant,
}

impl ModemStart<'_> {
    /// Opens and publishes the modem's first AT pty (and audio pty, for the PCM profiles) so the
    /// paths exist when `start` returns, and spawns the tasks that serve them.
    fn run(self) -> Result<ModemSlot, SimError> {
        let (i, profile) = (self.index, self.spec.profile);
        let radio: SharedRadio = self.network.clone();
        let core = Arc::new(Mutex::new(ModemCore::new(
            i,
            self.spec.clone(),
            radio,
            self.config.seed,
            self.now,
        )));
        let id = lock(&core).identity().clone();
        let at = self.config.dir.join(format!("modem{i}"));
        let audio = profile
            .has_audio_port()
            .then(|| self.config.dir.join(format!("modem{i}.audio")));
        let pty = Pty::open()?;
        publish(&at, pty.slave_path())?;
        let (plugged, plugged_rx) = watch::channel(true);
        let notify = Arc::new(Notify::new());
        let audio_stats = audio
            .as_ref()
            .map(|_| Arc::new(Mutex::new(AudioStats::default())));
        if let (Some(link), Some(stats)) = (&audio, &audio_stats) {
            let shared = audio::AudioShared {
                core: core.clone(),
                network: self.network.clone(),
                stats: stats.clone(),
                link: link.clone(),
                plugged: plugged.subscribe(),
            };
            audio::start_audio_thread(shared, self.cancel.clone(), self.tracker)?;
        }
        let task = ModemTask {
            core: core.clone(),
            notify: notify.clone(),
            plugged: plugged_rx,
            link: at.clone(),
            network: self.network.clone(),
        };
        self.tracker.spawn(task.run(pty, self.cancel.clone()));
        Ok(ModemSlot {
            core,
            notify,
            plugged,
            paths: ModemPaths {
                index: i,
                profile,
                at,
                audio,
                imei: id.imei,
                imsi: id.imsi,
                iccid: id.iccid,
                number: id.number,
            },
            audio_stats,
        })
    }
}
