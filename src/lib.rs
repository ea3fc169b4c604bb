//! gsmgate: a self-hosted community texting gateway driving a pool of USB GSM modems.
//!
//! One library plus a thin binary (`src/main.rs`). The modules are layers, bottom up, and a module
//! uses only the ones before it (docs/architecture.md has the table of what each owns and must not
//! touch, and the import directions):
//!
//! 1. `time`, `model`, `numbering` — the clock in the units the crate speaks; the shared words
//!    (message kind, member status); the numbering plan that phone numbers are read against.
//! 2. `at`, `pdu` — sans-I/O codecs: AT framing and parsers; SMS PDUs, alphabets, segmentation.
//! 3. `store` — the only module that speaks SQL; the outbox is the truth of what must be sent.
//!    `sim` — the modem simulator on pseudo-terminals (uses only `at`, `pdu`, `time`).
//! 4. `modem` — one actor per modem over its serial port.
//! 5. `voice` — calls: answer, greeting, voicemail.
//! 6. `dispatch` — the pure scheduling rules and the pool runner that applies them.
//! 7. `community` — what a message means; pure (no store, no dispatch, no config).
//! 8. `protocol` — the admin commands' wire types; `commands` — one function per admin verb, which
//!    every transport calls.
//! 9. `admin` — the Unix-socket transport (server and the CLI's client); beside it `metrics` —
//!    the Prometheus metrics the daemon feeds and the HTTP layer serves.
//! 9. `admin` — the Unix-socket transport (server and the CLI's client); `hooks` — webhooks and
//!    local hooks, consumers of the store's event journal.
//! 10. `config`, `daemon`, `cli` — wiring: `config` validates the file into each layer's own
//!     settings type (nothing below imports it), `daemon` spawns the long-lived tasks, `cli` is
//!     clap and rendering.
//!
//! The layering keeps the codecs testable without tokio, keeps every rule in one place whatever
//! transport asked for it, and keeps SQL inside `store` so a second storage backend stays a
//! contained addition. The `mod` lines below are in rustfmt's alphabetical order, not layer order.

pub mod admin;
pub mod at;
pub mod cli;
pub mod commands;
pub mod community;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod hooks;
pub mod http;
pub mod metrics;
pub mod model;
pub mod modem;
pub mod numbering;
pub mod pdu;
pub mod protocol;
pub mod sim;
pub mod store;
pub mod time;
pub mod voice;
pub mod web;
