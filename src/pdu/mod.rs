//! The SMS codec: SMS-SUBMIT, SMS-DELIVER and SMS-STATUS-REPORT as modems exchange them in PDU mode
//! (3GPP 23.040, alphabets and DCS from 23.038, SMSC prefix from 27.005), plus segmentation of
//! outgoing text and reassembly of inbound parts.
//!
//! Sans-I/O: bytes in, values out, and the reverse; no tokio, no clock (reassembly takes the time
//! as an argument), no logging. It must not know about modems, AT commands or storage: the `at`
//! layer hands it hex, the modem actor and the simulator call it. Decoding tolerates the oddities
//! real networks produce (see `decode`) and never panics on any input; errors name the field and
//! the octet where decoding stopped.
//!
//! Bracketed keys in comments (\[PGM] python-gsmmodem, \[MM] ModemManager, \[CD] chan_dongle,
//! \[SMT] smstools3) name the peer project a test vector or a tolerated oddity comes from;
//! docs/pdu.md, "Sources", names their files, and its "Worked PDUs" table the provenance of every
//! vector.
//!
//! Layout: value types in `types`/`address`, alphabets in `gsm7`/`ucs2`, the header in `udh`,
//! the codec in `decode`/`encode`, and `segment`/`reassembly` above it.

pub mod address;
pub mod bounds;
pub mod decode;
pub mod encode;
pub mod error;
pub mod gsm7;
pub mod reassembly;
pub mod segment;
pub mod types;
pub mod ucs2;
pub mod udh;

pub use address::{Address, NPI_ISDN, TypeOfNumber};
pub use decode::{decode_any, hex_to_bytes};
pub use encode::to_hex;
pub use error::PduError;
pub use reassembly::{Assembled, DEFAULT_MAX_GROUPS, Part, Reassembler};
pub use segment::{
    SegmentPlan, SubmitOptions, VCARD_PORT, delivers_for_text, plan, plan_with,
    submits_for_port_data, submits_for_text,
};
pub use types::{
    Alphabet, Body, Dcs, Deliver, Direction, InformationElement, MessageWaiting, Pdu, StatusReport,
    Submit, Timestamp, Tpdu, UserData, Validity, status_meaning,
};
