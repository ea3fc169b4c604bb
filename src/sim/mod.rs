//! The modem simulator (docs/simulator.md): N simulated modems, each behind a pseudo-terminal that
//! the daemon opens with tokio-serial exactly like a USB tty, plus a simulated network of phones
//! that text and call them, and fault injection. It is both the `gsmgate sim` verb and a library
//! the daemon, tests, the demo and benchmarks embed in-process: [`Simulator::start`] returns a
//! [`SimHandle`] whose methods are the control-socket commands without JSON.
//!
//! Layering: the top of the library, below only the wiring (`config`, `daemon`, `cli`); it uses
//! `pdu` (the network encodes and decodes every message), `at` (only Quectel's upload checksum)
//! and `time`, and parses the host's side of the AT dialogue itself (src/lib.rs lists the layers).
//!
//! Files, each importing only files below it in this list so no two import each other:
//! `handle` (the library API and start-up) over `at_port` (the AT pty task) and `audio` (the PCM
//! tty thread), over `modem/` (the per-modem state machine, sans-I/O, split by command family) and
//! `network` (the phones), which meet only in `radio` (the contract between them); below those
//! `files` (the flash and its playback clock), `wav`, `command` (what the host sends, parsed),
//! `profile` (vendor quirks and identities), `faults`, `pty` and `sync`. `control` (the socket
//! protocol) is a transport over `handle`; this file only starts the two side by side.

mod at_port;
pub mod audio;
pub mod command;
pub mod control;
pub mod faults;
pub mod files;
mod handle;
pub mod modem;
pub mod network;
pub mod profile;
pub mod pty;
pub mod radio;
mod sync;
pub mod wav;

pub use audio::AudioStats;
pub use faults::Fault;
pub use handle::{
    ModemPaths, PhoneCall, PhoneSms, SimConfig, SimError, SimHandle, SimPaths, StoredMessage,
};
pub use modem::{Latency, ModemSpec, ModemStatus, MsRange, USSD_BALANCE, USSD_DATA, USSD_MENU};
pub use network::{CallRecord, ReceivedText, SubmittedPart};
pub use profile::{Identity, Profile};

/// Entry point of the library API.
pub struct Simulator;

impl Simulator {
    /// Creates the pseudo-terminals, symlinks and (optionally) the control socket, and starts the
    /// modem tasks. Must be called inside a tokio runtime. The symlinks exist when this returns.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let handle = SimHandle::start(&config)?;
        if let Some(path) = handle.control_path() {
            let _ = std::fs::remove_file(path);
            let listener = tokio::net::UnixListener::bind(path).map_err(|source| SimError::Io {
                what: "binding",
                path: path.to_path_buf(),
                source,
            })?;
            let transport = handle.clone();
            handle.spawn(|cancel| control::serve(listener, transport, cancel));
        }
        Ok(handle)
    }
}
