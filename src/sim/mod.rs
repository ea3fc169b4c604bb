//! (being written)
pub mod command;
pub mod faults;
pub mod modem;
pub mod profile;
