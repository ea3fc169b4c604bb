//! The command line: clap definitions and the dispatch of each verb. This is wiring only: every verb
//! calls into a library module and maps its result to an exit code (0 ok, 1 failure, 2 usage; clap
//! itself exits 2 on usage errors). Each verb group lives in its own file so the verbs can grow
//! independently.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod pdu;
pub mod sim;

/// gsmgate — a self-hosted community texting gateway for USB GSM modems.
#[derive(Debug, Parser)]
#[command(name = "gsmgate", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encode or decode SMS PDUs (debugging tools for modem work).
    #[command(subcommand)]
    Pdu(pdu::PduCommand),
    /// Run simulated modems on pseudo-terminals (DIR/modemN, DIR/control.sock).
    Sim(sim::SimArgs),
}

/// Exit code for a failed operation (usage errors exit 2 through clap).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage error detected after parsing.
pub const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Pdu(cmd) => pdu::run(cmd),
        Command::Sim(args) => sim::run(args),
    }
}
