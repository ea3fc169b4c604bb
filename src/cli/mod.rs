//! The command line: clap definitions and the dispatch of each verb. This is wiring only: every verb
//! calls into a library module and maps its result to an exit code (0 ok, 1 failure, 2 usage; clap
//! itself exits 2 on usage errors). Each verb group lives in its own file so the verbs can grow
//! independently.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod broadcast;
pub mod client;
pub mod config;
pub mod members;
pub mod pdu;
pub mod sim;

/// gsmgate — a self-hosted community texting gateway for USB GSM modems.
#[derive(Debug, Parser)]
#[command(name = "gsmgate", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub connection: client::Connection,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encode or decode SMS PDUs (debugging tools for modem work).
    #[command(subcommand)]
    Pdu(pdu::PduCommand),
    /// Check a configuration file, or print the embedded default with --default.
    CheckConfig(config::CheckConfigArgs),
    /// One-screen summary of the running gateway.
    Status,
    /// The modem pool: state, network, signal and today's counts per modem.
    Modems,
    /// Queue a text to one number (through the member's home modem).
    Send(client::SendCli),
    /// Received messages, newest first.
    Inbox(client::InboxCli),
    /// The thread with one number, both directions.
    Conversation(client::ConversationCli),
    /// Follow the daemon's live events until interrupted.
    Watch(client::WatchCli),
    /// Members: list, add, remove, tag, import or export CSV.
    #[command(subcommand)]
    Members(members::MembersCommand),
    /// Text a segment (or everyone): `broadcast [--segment S] [--at T] [--wait] TEXT`, or
    /// `broadcast pause|resume|cancel ID`.
    Broadcast(broadcast::BroadcastCli),
    /// Broadcasts with their progress; `progress ID`, `in-doubt`, `resolve ID`.
    Broadcasts(broadcast::BroadcastsCli),
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
        Command::CheckConfig(args) => config::run(args),
        Command::Status => client::run(client::Verb::Status, cli.connection),
        Command::Modems => client::run(client::Verb::Modems, cli.connection),
        Command::Send(a) => client::run(client::Verb::Send(a), cli.connection),
        Command::Inbox(a) => client::run(client::Verb::Inbox(a), cli.connection),
        Command::Conversation(a) => client::run(client::Verb::Conversation(a), cli.connection),
        Command::Watch(a) => client::run(client::Verb::Watch(a), cli.connection),
        Command::Members(cmd) => members::run(cmd, cli.connection),
        Command::Broadcast(cmd) => broadcast::run(cmd, cli.connection),
        Command::Broadcasts(cmd) => broadcast::run_list(cmd, cli.connection),
        Command::Sim(args) => sim::run(args),
    }
}
