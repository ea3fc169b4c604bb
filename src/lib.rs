//! gsmgate: a self-hosted community texting gateway driving a pool of USB GSM modems.
//!
//! The crate is one library plus a thin binary (`src/main.rs`). Modules are layered bottom up as in
//! DESIGN.md — `at`, `pdu`, `store`, `modem`, `dispatch`, `community`, `admin`, `sim`, then the
//! wiring in `config`, `daemon` and `cli` — and a module uses only modules below it (`sim` uses only
//! `at` and `pdu`). The layering keeps the sans-I/O codecs testable without tokio, and keeps SQL
//! inside `store` so a second storage backend stays a contained addition. The `mod` lines below
//! are in rustfmt's alphabetical order, not layer order.

pub mod admin;
pub mod at;
pub mod cli;
pub mod community;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod model;
pub mod modem;
pub mod pdu;
pub mod sim;
pub mod store;
pub mod time;
pub mod voice;
