//! gsmgate: a self-hosted community texting gateway driving a pool of USB GSM modems.
//!
//! The crate is one library plus a thin binary (`src/main.rs`). Modules are layered bottom up as in
//! DESIGN.md: a module uses only modules listed before it, and `sim` uses only `at` and `pdu`. The
//! layering keeps the sans-I/O codecs (`at`, `pdu`) testable without tokio, and keeps SQL inside
//! `store` so a second storage backend stays a contained addition.

pub mod admin;
pub mod at;
pub mod cli;
pub mod config;
pub mod pdu;
pub mod sim;
pub mod store;
