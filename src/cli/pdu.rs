//! `gsmgate pdu encode|decode` (being written).

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Decode a PDU given as hex.
    Decode { hex: String },
}

pub fn run(_cmd: PduCommand) -> ExitCode {
    ExitCode::from(super::EXIT_FAILURE)
}
