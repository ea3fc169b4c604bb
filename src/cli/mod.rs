//! The command line: clap definitions and the dispatch of each verb. This is wiring only: every verb
//! calls into a library module and maps its result to an exit code (0 ok, 1 failure, 2 usage; clap
//! itself exits 2 on usage errors). Each verb group lives in its own file so the verbs can grow
//! independently; what they all share is in two small modules, `runtime` (the async set-up and the
//! outcome → exit code mapping) and `output` (a table on a terminal, JSON with `--json`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod activity;
pub mod backup;
pub mod broadcast;
pub mod client;
pub mod config;
pub mod daemon;
pub mod doctor;
pub mod man;
pub mod members;
pub mod migrate;
mod output;
pub mod pdu;
pub mod phone;
mod phone_call;
pub mod probe;
pub mod review;
mod runtime;
pub mod scan;
pub mod sim;
pub mod tokens;
pub mod ussd;
pub mod voice;
pub mod web;
pub mod webhooks;

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
    /// Run the gateway (the embedded default without --config: two simulated modems).
    Daemon(daemon::DaemonArgs),
    /// Encode or decode SMS PDUs (debugging tools for modem work).
    #[command(subcommand)]
    Pdu(pdu::PduCommand),
    /// Check a configuration file, or print the embedded default with --default.
    CheckConfig(config::CheckConfigArgs),
    /// One-screen summary of the running gateway.
    Status,
    /// The modem pool: state, network, signal and today's counts per modem; `modems scan` finds
    /// USB modems that answer AT and prints `[[modem]]` blocks for them.
    Modems(scan::ModemsArgs),
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
    /// Per UTC day: members joined and opted out, messages received and SMS sent; the latest
    /// alerts. `activity [--days N] [--alerts N]`.
    Activity(activity::ActivityCli),
    /// The call log: who called, when, how long, and what happened (greeted, voicemail, ...).
    Calls(voice::CallsCli),
    /// Voicemails: list, export ID FILE (WAV), delete ID.
    #[command(subcommand)]
    Voicemail(voice::VoicemailCommand),
    /// The greeting callers hear: `greeting set FILE` installs a WAV without a restart.
    #[command(subcommand)]
    Greeting(voice::GreetingCommand),
    /// HTTP API tokens: `tokens create NAME --scope read|send|admin`, `tokens list`,
    /// `tokens revoke NAME`.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Send a USSD code through MODEM and print the network's answer: `ussd MODEM '*100#'`;
    /// answer a menu with `--reply 2`, end it with `--cancel`.
    Ussd(ussd::UssdCli),
    /// Webhooks: each endpoint's backlog, last success and last error; `webhooks replay NAME
    /// EVENT_ID` sends one event again.
    Webhooks(webhooks::WebhooksCli),
    /// The web console's accounts: `web user add NAME --role owner|volunteer`, `web user list`,
    /// `web user passwd NAME`, `web user remove NAME` (passwords are asked for, never arguments).
    Web(web::WebCli),
    /// Run simulated modems on pseudo-terminals (DIR/modemN, DIR/control.sock).
    Sim(sim::SimArgs),
    /// Play a member's phone against a simulated pool: text or call the gateway, read replies.
    Phone(phone::PhoneArgs),
    /// Check an installation: config, state dir, daemon, ports, and each modem's SIM, network,
    /// signal, SMSC, voice and storage; prints a fix for every failure. Exit 0 when all pass.
    Doctor(doctor::DoctorArgs),
    /// Write a consistent copy of the database to FILE (also while the daemon runs; needs read
    /// access to the state directory: `sudo gsmgate backup /media/usb/gsmgate.db`).
    Backup(backup::BackupArgs),
    /// Replace the database with the backup FILE (daemon stopped; FILE is checked first and the
    /// old database kept as gsmgate.db.before-restore-TIME).
    Restore(backup::RestoreArgs),
    /// Move this gateway's data into an empty PostgreSQL database, checked by counts:
    /// `migrate --from sqlite:PATH --to postgres://USER@HOST/DB [--password-file F]` (daemon
    /// stopped).
    Migrate(migrate::MigrateArgs),
    /// Print shell completions for SHELL (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(man::CompletionsArgs),
    /// Print the man page (roff) to stdout, or write one page per verb with --dir.
    Man(man::ManArgs),
}

/// Exit code for a failed operation (usage errors exit 2 through clap).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage error detected after parsing.
pub const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Daemon(args) => daemon::run(args),
        Command::Pdu(cmd) => pdu::run(cmd),
        Command::CheckConfig(args) => config::run(args),
        Command::Status => client::run(client::Verb::Status, cli.connection),
        Command::Modems(args) => match args.command {
            None => client::run(client::Verb::Modems, cli.connection),
            Some(scan::ModemsCommand::Scan(a)) => scan::run(a, cli.connection),
        },
        Command::Send(a) => client::run(client::Verb::Send(a), cli.connection),
        Command::Inbox(a) => client::run(client::Verb::Inbox(a), cli.connection),
        Command::Conversation(a) => client::run(client::Verb::Conversation(a), cli.connection),
        Command::Watch(a) => client::run(client::Verb::Watch(a), cli.connection),
        Command::Members(cmd) => members::run(cmd, cli.connection),
        Command::Broadcast(cmd) => broadcast::run(cmd, cli.connection),
        Command::Broadcasts(cmd) => broadcast::run_list(cmd, cli.connection),
        Command::Activity(a) => activity::run(a, cli.connection),
        Command::Calls(a) => voice::run_calls(a, cli.connection),
        Command::Voicemail(cmd) => voice::run_voicemail(cmd, cli.connection),
        Command::Greeting(cmd) => voice::run_greeting(cmd, cli.connection),
        Command::Tokens(cmd) => tokens::run(cmd, cli.connection),
        Command::Ussd(args) => ussd::run(args, cli.connection),
        Command::Webhooks(a) => webhooks::run(a, cli.connection),
        Command::Web(a) => web::run(a, cli.connection),
        Command::Sim(args) => sim::run(args),
        Command::Phone(args) => phone::run(args, cli.connection),
        Command::Doctor(args) => doctor::run(args, cli.connection),
        Command::Backup(args) => backup::run_backup(args, cli.connection),
        Command::Restore(args) => backup::run_restore(args, cli.connection),
        Command::Migrate(args) => migrate::run(args, cli.connection),
        Command::Completions(args) => man::completions(args),
        Command::Man(args) => man::man(args),
    }
}
