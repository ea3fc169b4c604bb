//! What a modem tells the layers above without being asked: inbound messages, status reports, call
//! and network URCs, state changes and alerts.
//!
//! Inbound messages carry a oneshot `ack`: the modem deletes the stored copy from the SIM only
//! after the receiver of the event has committed it, so a crash in between loses nothing. Dropping
//! the `ack` sender means "not stored": the message stays on the SIM and the next storage drain
//! offers it again.

use tokio::sync::oneshot;

use super::status::ModemState;
use crate::at::Urc;

/// One event from a modem actor. Events are sent on a bounded channel; the actor never blocks its
/// port reading on that channel (it keeps a small backlog and flushes it as room appears).
#[derive(Debug)]
pub enum ModemEvent {
    /// An inbound SMS (a DELIVER TPDU with its SMSC prefix). `storage`/`index` say where it is stored
    /// (`"SM"`, 3); a directly delivered `+CMT` has storage `"direct"` and no index.
    Sms {
        modem: String,
        storage: String,
        index: Option<u32>,
        pdu: Vec<u8>,
        ack: oneshot::Sender<()>,
        /// The ICCID of the SIM in the modem when it was read (`None` while unknown): what a SIM
        /// received belongs to that SIM, also when the event is handled after it moved on.
        iccid: Option<String>,
    },
    /// A status report (SMS-STATUS-REPORT with SMSC prefix). `mr`, `recipient`, `status` are decoded
    /// from it (TP-MR, TP-RA, TP-ST; 23.040 §9.2.2.3); `None` where the PDU did not decode. Stored
    /// reports carry an `ack` like [`ModemEvent::Sms`]; direct `+CDS` reports have none to give.
    StatusReport {
        modem: String,
        storage: String,
        index: Option<u32>,
        mr: Option<u8>,
        recipient: Option<String>,
        status: Option<u8>,
        pdu: Vec<u8>,
        ack: Option<oneshot::Sender<()>>,
        /// The ICCID of the SIM in the modem when it was read (`None` while unknown): what a SIM
        /// received belongs to that SIM, also when the event is handled after it moved on.
        iccid: Option<String>,
    },
    /// Any other unsolicited result code (calls, registration, vendor noise), for the voice layer and
    /// `watch`.
    Urc { modem: String, urc: Urc },
    /// The modem changed state.
    State { modem: String, state: ModemState },
    /// Something needs a human: the modem left the pool, the SIM is failing, storage is full.
    Alert { modem: String, reason: String },
}

impl ModemEvent {
    /// The name of the modem that produced the event.
    pub fn modem(&self) -> &str {
        match self {
            ModemEvent::Sms { modem, .. }
            | ModemEvent::StatusReport { modem, .. }
            | ModemEvent::Urc { modem, .. }
            | ModemEvent::State { modem, .. }
            | ModemEvent::Alert { modem, .. } => modem,
        }
    }
}
