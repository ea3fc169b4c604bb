//! The contract between a simulated modem and the simulated network: what a modem reports to the
//! network (a SUBMIT left, a call changed state) and what it gets back (a status report). Both
//! sides import this file and neither imports the other, so the modem state machine (`modem/`)
//! can be tested against a recorder and the network (`network.rs`) knows nothing about AT.
//!
//! Why a trait object behind one mutex: every modem shares the same network, and every call into
//! it is short; the lock order is modem first, then network (see `network.rs`).

use std::sync::{Arc, Mutex};

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
    /// The modem signalled one more ring (`RING`/`+CRING`) to the host.
    Ring,
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
