//! The AT layer of gsmgate, the bottom of the crate's layers (see `src/lib.rs`): sans-I/O framing,
//! parsing and command building.
//!
//! This module owns everything about the *text* a modem speaks: turning the byte stream of an AT
//! port into classified items ([`Digester`]), parsing those items into typed values
//! ([`final_result`], [`response`], [`urc`]) and building the command lines the daemon writes
//! ([`command`]). It must not touch I/O, tokio, time or the SMS PDU codec: the modem actor
//! (`modem`) owns the port, the clock and the buffer's lifetime, and hands the PDU hex strings
//! found here to `pdu`. Keeping this layer pure is what lets every framing case of
//! docs/at-protocol.md, "Framing", be tested byte by byte without a modem.
//!
//! Doc comments cite the clause of ITU-T V.250, 3GPP TS 27.007 or TS 27.005 a syntax comes from,
//! and for vendor behaviour the source in brackets: \[PGM] python-gsmmodem, \[CD] chan_dongle,
//! \[CQI] and \[CQR] the two chan_quectel forks, \[MM] ModemManager, \[GAM] Gammu, \[SMT]
//! smstools3, \[QEC] and \[QFILE] Quectel's manuals, \[S800] SIMCom's SIM800 manual, \[SIEM]
//! Siemens/Cinterion manuals. docs/at-protocol.md, "Sources", names the repository files and manual
//! editions behind each key.
//!
//! # How the modem actor drives it
//!
//! Exactly one command is in flight at a time (an answer can only be matched to the one command
//! waiting for it; docs/at-protocol.md, "Framing"). For each command:
//!
//! 1. `digester.begin(&cmd)`, then write `cmd.bytes()` to the port and arm `cmd.timeout()`.
//! 2. Feed every read into `digester.feed(&bytes)`, then pull with `digester.next_item()` until it
//!    returns `None`. Items come out in stream order:
//!    - [`Item::Urc`]: publish as an event, whatever command is waiting (URCs are classified by prefix,
//!      never by position, so a `+CMTI` between an echo and its `OK` is still a URC);
//!    - [`Item::Info`]: collect the line; these belong to the command in flight, in order (a `+CMGL:`
//!      header is followed by its bare PDU line as a second `Info`);
//!    - [`Item::Prompt`]: only for commands with a body (`AT+CMGS`): write `cmd.body()` and re-arm the
//!      timer with `CommandKind::SmsResult`'s timeout;
//!    - [`Item::Final`]: the command is over; the digester forgets it by itself (except after
//!      `CONNECT`, see [`Digester::take_raw`]). Turn the collected lines into a typed value with the
//!      matching parser, e.g. [`response::parse_cmgl`], [`response::parse_cmgs`];
//!    - [`Item::Echo`], [`Item::Garbage`], [`Item::Overflow`]: log and go on.
//! 3. On a timeout, call `digester.end()` and resynchronise (ESC, Ctrl-Z, `AT`;
//!    docs/at-protocol.md, "Recovery").
//!
//! ```
//! use gsmgate::at::{Command, Digester, FinalResult, Item, response};
//! let cmd = Command::cmgs("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").unwrap();
//! let mut d = Digester::new();
//! d.begin(&cmd);
//! d.feed(b"\r\n> ");
//! assert_eq!(d.next_item(), Some(Item::Prompt)); // now write cmd.body()
//! d.feed(b"\r\n+CMGS: 17\r\n\r\nOK\r\n");
//! let Some(Item::Info(line)) = d.next_item() else { panic!() };
//! assert_eq!(response::parse_cmgs(&line).unwrap(), 17);
//! assert_eq!(d.next_item(), Some(Item::Final(FinalResult::Ok)));
//! ```

pub mod command;
pub mod digest;
pub mod files;
pub mod final_result;
mod lex;
pub mod response;
pub mod urc;

pub use command::{Command, CommandKind};
pub use digest::{Digester, Item, MAX_LINE};
pub use final_result::{CallEnd, ErrorCode, FinalResult};
pub use urc::Urc;

/// Errors of the AT layer. Parsers say which syntax rule failed and on what line; builders say which
/// command refused which outside value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtError {
    /// A line did not match the syntax rule named in `what`.
    #[error("cannot parse {what} from modem line {line:?}")]
    Parse { what: &'static str, line: String },
    /// The answer lines did not contain the expected information response.
    #[error("no {what} found in the {count} answer lines")]
    Missing { what: &'static str, count: usize },
    /// A command builder refused a value (it would break the AT line or is out of range).
    #[error("invalid argument for {command}: {reason}")]
    InvalidArgument {
        command: &'static str,
        reason: String,
    },
}

impl AtError {
    pub(crate) fn parse(what: &'static str, line: &str) -> Self {
        AtError::Parse {
            what,
            line: line.to_owned(),
        }
    }
}
