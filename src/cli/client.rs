//! The admin verbs of the CLI (`status`, `modems`, `send`, `inbox`, `conversation`, `watch`): each
//! one connects to the daemon's admin socket through [`crate::admin::Client`], sends one request
//! and prints the answer as a table (default) or JSON (`--json`, for scripts).
//!
//! This file only formats: every decision is the daemon's. Errors print one line on stderr and exit
//! 1; the "daemon is not running" message comes from the client so every verb says the same thing.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::output::{plural, print_table, show, table};
use super::runtime::run_current_thread;
use crate::admin::protocol::{
    ConversationArgs, ConversationItem, Direction, InboxArgs, InboxItem, ModemInfo, SendAccepted,
    SendArgs, StatusData, WatchArgs,
};
use crate::admin::{Client, ClientError, EventKind, resolve_socket_path};

/// Options every admin verb takes.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The daemon's admin socket (default: $GSMGATE_SOCKET, else ./gsmgate-state/admin.sock if it
    /// exists, else /run/gsmgate/admin.sock).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SendCli {
    /// Recipient, in international form (+15551234567).
    #[arg(long)]
    pub to: String,
    /// Send through this modem instead of the member's home modem.
    #[arg(long)]
    pub modem: Option<String>,
    /// The message text.
    pub text: String,
}

#[derive(Debug, Args)]
pub struct InboxCli {
    /// Only messages not read yet.
    #[arg(long)]
    pub unread: bool,
    /// At most this many messages (newest first).
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ConversationCli {
    /// The member's number.
    pub number: String,
    /// At most this many messages.
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct WatchCli {
    /// Only these event types (comma separated), e.g. message_in,message_sent.
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
}

/// One admin verb with its arguments.
#[derive(Debug)]
pub enum Verb {
    Status,
    Modems,
    Send(SendCli),
    Inbox(InboxCli),
    Conversation(ConversationCli),
    Watch(WatchCli),
}

impl Connection {
    /// Connects to the daemon's admin socket (`--socket`, else the default search).
    pub(super) async fn connect(&self) -> Result<Client, ClientError> {
        Client::connect(resolve_socket_path(self.socket.as_deref())).await
    }
}

pub fn run(verb: Verb, conn: Connection) -> ExitCode {
    match run_current_thread(run_async(verb, &conn)) {
        Err(code) => code,
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(VerbError::Usage(msg))) => {
            eprintln!("error: {msg}");
            ExitCode::from(super::EXIT_USAGE)
        }
        // `{}` and not the cause chain: the client's messages already name their cause.
        Ok(Err(VerbError::Client(e))) => fail(&e.to_string()),
        Ok(Err(VerbError::Output(e))) => fail(&format!("{e:#}")),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(super::EXIT_FAILURE)
}

enum VerbError {
    Usage(String),
    Client(ClientError),
    /// Printing the answer failed.
    Output(anyhow::Error),
}

impl From<ClientError> for VerbError {
    fn from(e: ClientError) -> Self {
        VerbError::Client(e)
    }
}

impl From<anyhow::Error> for VerbError {
    fn from(e: anyhow::Error) -> Self {
        VerbError::Output(e)
    }
}

async fn run_async(verb: Verb, conn: &Connection) -> Result<(), VerbError> {
    // Parse the watch filter before connecting so a typo is a usage error, not a daemon error.
    let watch_filter = match &verb {
        Verb::Watch(w) if !w.events.is_empty() => Some(parse_event_kinds(&w.events)?),
        _ => None,
    };
    let mut client = conn.connect().await?;
    let json = conn.json;
    match verb {
        Verb::Status => show(json, &client.status().await?, print_status)?,
        Verb::Modems => show(json, &client.modems().await?, |m| print_modems(m))?,
        Verb::Send(s) => {
            let to = s.to.clone();
            let args = SendArgs {
                to: s.to,
                text: s.text,
                modem: s.modem,
            };
            show(json, &client.send(args).await?, |a| print_accepted(a, &to))?
        }
        Verb::Inbox(i) => {
            let args = InboxArgs {
                unread_only: i.unread,
                limit: i.limit,
                since: None,
            };
            show(json, &client.inbox(args).await?, |m| print_inbox(m))?
        }
        Verb::Conversation(c) => {
            let args = ConversationArgs {
                number: c.number,
                limit: c.limit,
            };
            show(json, &client.conversation(args).await?, |m| {
                print_conversation(m)
            })?
        }
        Verb::Watch(_) => return watch(client, watch_filter, json).await,
    };
    Ok(())
}

fn print_status(s: &StatusData) {
    let mut t = table(&["", ""]);
    let rows = [
        ("version", s.version.clone()),
        ("uptime", human_secs(s.uptime_secs)),
        (
            "modems ready",
            format!("{}/{}", s.modems_ready, s.modems_total),
        ),
        ("state disk", storage_line(s.storage.as_ref())),
        ("outbox queued", s.outbox_queued.to_string()),
        ("in doubt", s.outbox_in_doubt.to_string()),
        ("sent today", s.sent_today.to_string()),
        ("received today", s.received_today.to_string()),
        ("members", s.members.to_string()),
        ("active broadcasts", s.broadcasts_active.to_string()),
    ];
    for (name, value) in rows {
        t.add_row(vec![name.to_string(), value]);
    }
    for sim in &s.sims {
        let words: Vec<&str> = [sim.iccid.as_deref(), sim.number.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        t.add_row(vec![format!("SIM in {}", sim.modem), words.join(" ")]);
    }
    for site in &s.sites {
        let this = if site.this_site { " (this one)" } else { "" };
        let heard = if site.alive {
            "alive".to_string()
        } else {
            format!("SILENT for {}", human_secs(site.heartbeat_age_secs))
        };
        t.add_row(vec![
            format!("site {}{this}", site.name),
            format!(
                "{heard}, {}/{} modems up",
                site.modems_up, site.modems_total
            ),
        ]);
    }
    print_table(&t);
}

/// `modems`' SIM column: `…123456 +15550100`, and `(new, was …654321)` after a SIM change.
fn sim_cell(sim: Option<&crate::admin::protocol::SimInfo>) -> String {
    let Some(s) = sim else {
        return "-".into();
    };
    let mut words: Vec<String> = [s.iccid_short.clone(), s.number.clone()]
        .into_iter()
        .flatten()
        .collect();
    if let Some(prev) = &s.previous_iccid {
        words.push(format!("(new, was {prev})"));
    }
    if words.is_empty() {
        "-".into()
    } else {
        words.join(" ")
    }
}

/// `modems`' balance column: `12.34`, `4.10 LOW`, or `-` before the first reading.
fn balance_cell(sim: Option<&crate::admin::protocol::SimInfo>) -> String {
    match sim.and_then(|s| s.balance.map(|b| (b, s.low_balance))) {
        Some((b, true)) => format!("{b:.2} LOW"),
        Some((b, false)) => format!("{b:.2}"),
        None => "-".into(),
    }
}

/// `status`'s "state disk" row: `ok (3.2 GiB free)`, or what fails and what that does to sending.
fn storage_line(s: Option<&crate::admin::protocol::StorageStatus>) -> String {
    let Some(s) = s else {
        return "unknown (daemon too old to say)".into();
    };
    let free = s
        .free_bytes
        .map(|b| format!(", {} free", human_bytes(b)))
        .unwrap_or_default();
    let owed = match s.unrecorded {
        0 => String::new(),
        n => format!(", {n} outcome(s) held in memory until writes work"),
    };
    let what = match s.state.as_str() {
        "ok" => return format!("ok{free}{owed}"),
        "full" => "FULL",
        "read_only" => "READ-ONLY",
        "io_error" => "WRITE ERROR",
        other => other,
    };
    let since = s
        .since
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| format!(" since {t:.0}"))
        .unwrap_or_default();
    format!("{what}{since}: sending paused{owed}{free}")
}

/// 1536 → `1.5 KiB`.
fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn print_modems(modems: &[ModemInfo]) {
    let sites = modems.iter().any(|m| m.site.is_some());
    let mut head = vec![
        "name", "state", "network", "signal", "operator", "sent", "recv", "sim", "balance",
        "profile", "port",
    ];
    if sites {
        head.insert(1, "site");
    }
    let mut t = table(&head);
    for m in modems {
        let mut row = vec![
            m.name.clone(),
            match (&m.waiting, &m.last_error, &m.paused) {
                (Some(w), _, _) => format!("{} ({w})", m.state),
                (None, Some(e), _) if m.state != "ready" => format!("{} ({e})", m.state),
                (None, _, Some(p)) => format!("{} ({p})", m.state),
                _ => m.state.clone(),
            },
            m.registration.clone(),
            m.signal_dbm
                .map(|d| format!("{d} dBm"))
                .unwrap_or_else(|| "-".into()),
            m.operator.clone().unwrap_or_else(|| "-".into()),
            match m.per_day {
                Some(limit) => format!("{}/{limit}", m.sent_today),
                None => m.sent_today.to_string(),
            },
            m.received_today.to_string(),
            sim_cell(m.sim.as_ref()),
            balance_cell(m.sim.as_ref()),
            m.profile.clone(),
            m.port.clone(),
        ];
        if sites {
            row.insert(1, m.site.clone().unwrap_or_default());
        }
        t.add_row(row);
    }
    print_table(&t);
}

fn print_accepted(accepted: &SendAccepted, to: &str) {
    println!(
        "queued message {} to {to} ({} part{}, {})",
        accepted.id,
        accepted.parts,
        plural(u64::from(accepted.parts)),
        accepted.encoding
    );
}

fn print_inbox(items: &[InboxItem]) {
    let mut t = table(&["id", "received", "from", "modem", "", "flag", "text"]);
    for m in items {
        t.add_row(vec![
            m.id.to_string(),
            m.received_at.clone(),
            m.from.clone(),
            m.modem.clone(),
            if m.read { "" } else { "new" }.to_string(),
            m.flag.clone().unwrap_or_default(),
            m.text.clone(),
        ]);
    }
    print_table(&t);
}

fn print_conversation(items: &[ConversationItem]) {
    for m in items {
        let arrow = match m.direction {
            Direction::In => "<",
            Direction::Out => ">",
        };
        let status = m
            .status
            .as_deref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        println!("{} {arrow} {}{status}", m.at, m.text);
    }
}

/// Follows the event stream until the daemon closes it or stdout does; one line per event, compact
/// JSON with `--json` (one object per line, for `jq` and log shippers).
async fn watch(
    client: Client,
    events: Option<Vec<EventKind>>,
    json: bool,
) -> Result<(), VerbError> {
    let mut stream = client.watch(WatchArgs { events }).await?;
    let stdout = std::io::stdout();
    while let Some(event) = stream.next().await? {
        let line = if json {
            serde_json::to_string(&event).unwrap_or_default()
        } else {
            describe_event(&event)
        };
        let mut out = stdout.lock();
        // A closed pipe (`gsmgate watch | head`) ends the watch quietly.
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

fn parse_event_kinds(names: &[String]) -> Result<Vec<EventKind>, VerbError> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<EventKind>(serde_json::Value::String(n.trim().to_string()))
                .map_err(|_| VerbError::Usage(format!("unknown event type `{n}`")))
        })
        .collect()
}

fn describe_event(e: &crate::admin::Event) -> String {
    use crate::admin::Event::*;
    match e {
        ModemState {
            modem,
            state,
            detail,
        } => match detail {
            Some(d) => format!("modem {modem}: {state} ({d})"),
            None => format!("modem {modem}: {state}"),
        },
        MessageIn {
            id,
            from,
            text,
            modem,
        } => format!("in  #{id} from {from} via {modem}: {text}"),
        MessageSent {
            id,
            to,
            modem,
            parts,
        } => format!("out #{id} to {to} via {modem} ({parts} parts) sent"),
        MessageFailed { id, to, reason } => format!("out #{id} to {to} failed: {reason}"),
        DeliveryReport { id, to, status } => format!("out #{id} to {to}: {status}"),
        Call { modem, from, state } => format!(
            "call on {modem} from {}: {state}",
            from.as_deref().unwrap_or("withheld")
        ),
        PossibleOptOut {
            id,
            from,
            text,
            modem,
        } => format!(
            "in  #{id} from {from} via {modem} reads like an opt-out (`gsmgate members review`): {text}"
        ),
        Alert { alert, message } => format!("ALERT {alert}: {message}"),
        Log {
            level,
            target,
            message,
        } => format!("{level} {target}: {message}"),
        Lagged { missed } => format!("(missed {missed} events)"),
    }
}

fn human_secs(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(59), "0m 59s");
        assert_eq!(human_secs(3600 + 120), "1h 2m");
        assert_eq!(human_secs(2 * 86400 + 3600), "2d 1h 0m");
    }

    #[test]
    fn event_kind_names_parse_and_typos_are_usage_errors() {
        let ok = parse_event_kinds(&["message_in".into(), " call ".into()]);
        assert!(matches!(ok, Ok(ref v) if v == &[EventKind::MessageIn, EventKind::Call]));
        assert!(matches!(
            parse_event_kinds(&["mesage_in".into()]),
            Err(VerbError::Usage(_))
        ));
    }
}
