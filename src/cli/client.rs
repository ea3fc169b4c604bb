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
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::admin::protocol::{ConversationArgs, Direction, InboxArgs, SendArgs, WatchArgs};
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

pub fn run(verb: Verb, conn: Connection) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run_async(verb, &conn)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(VerbError::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(super::EXIT_USAGE)
        }
        Err(VerbError::Client(e)) => fail(&e.to_string()),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(super::EXIT_FAILURE)
}

enum VerbError {
    Usage(String),
    Client(ClientError),
}

impl From<ClientError> for VerbError {
    fn from(e: ClientError) -> Self {
        VerbError::Client(e)
    }
}

async fn run_async(verb: Verb, conn: &Connection) -> Result<(), VerbError> {
    let path = resolve_socket_path(conn.socket.as_deref());
    // Parse the watch filter before connecting so a typo is a usage error, not a daemon error.
    let watch_filter = match &verb {
        Verb::Watch(w) if !w.events.is_empty() => Some(parse_event_kinds(&w.events)?),
        _ => None,
    };
    let mut client = Client::connect(&path).await?;
    match verb {
        Verb::Status => {
            let s = client.status().await?;
            if conn.json {
                return print_json(&s);
            }
            let mut t = table(&["", ""]);
            t.add_row(vec!["version".to_string(), s.version.clone()]);
            t.add_row(vec!["uptime".to_string(), human_secs(s.uptime_secs)]);
            t.add_row(vec![
                "modems ready".to_string(),
                format!("{}/{}", s.modems_ready, s.modems_total),
            ]);
            t.add_row(vec![
                "outbox queued".to_string(),
                s.outbox_queued.to_string(),
            ]);
            t.add_row(vec!["in doubt".to_string(), s.outbox_in_doubt.to_string()]);
            t.add_row(vec!["sent today".to_string(), s.sent_today.to_string()]);
            t.add_row(vec![
                "received today".to_string(),
                s.received_today.to_string(),
            ]);
            t.add_row(vec!["members".to_string(), s.members.to_string()]);
            t.add_row(vec![
                "active broadcasts".to_string(),
                s.broadcasts_active.to_string(),
            ]);
            print_table(t);
        }
        Verb::Modems => {
            let modems = client.modems().await?;
            if conn.json {
                return print_json(&modems);
            }
            let mut t = table(&[
                "name", "state", "network", "signal", "operator", "sent", "recv", "profile", "port",
            ]);
            for m in &modems {
                t.add_row(vec![
                    m.name.clone(),
                    match &m.last_error {
                        Some(e) if m.state != "ready" => format!("{} ({e})", m.state),
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
                    m.profile.clone(),
                    m.port.clone(),
                ]);
            }
            print_table(t);
        }
        Verb::Send(s) => {
            let accepted = client
                .send(SendArgs {
                    to: s.to.clone(),
                    text: s.text,
                    modem: s.modem,
                })
                .await?;
            if conn.json {
                return print_json(&accepted);
            }
            println!(
                "queued message {} to {} ({} part{}, {})",
                accepted.id,
                s.to,
                accepted.parts,
                if accepted.parts == 1 { "" } else { "s" },
                accepted.encoding
            );
        }
        Verb::Inbox(i) => {
            let items = client
                .inbox(InboxArgs {
                    unread_only: i.unread,
                    limit: i.limit,
                })
                .await?;
            if conn.json {
                return print_json(&items);
            }
            let mut t = table(&["id", "received", "from", "modem", "", "text"]);
            for m in &items {
                t.add_row(vec![
                    m.id.to_string(),
                    m.received_at.clone(),
                    m.from.clone(),
                    m.modem.clone(),
                    if m.read { "" } else { "new" }.to_string(),
                    m.text.clone(),
                ]);
            }
            print_table(t);
        }
        Verb::Conversation(c) => {
            let items = client
                .conversation(ConversationArgs {
                    number: c.number,
                    limit: c.limit,
                })
                .await?;
            if conn.json {
                return print_json(&items);
            }
            for m in &items {
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
        Verb::Watch(_) => {
            let mut stream = client
                .watch(WatchArgs {
                    events: watch_filter,
                })
                .await?;
            let stdout = std::io::stdout();
            while let Some(event) = stream.next().await? {
                let line = if conn.json {
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
        Log {
            level,
            target,
            message,
        } => format!("{level} {target}: {message}"),
        Lagged { missed } => format!("(missed {missed} events)"),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY);
    if header.iter().any(|h| !h.is_empty()) {
        t.set_header(header.to_vec());
    }
    t
}

fn print_table(t: Table) {
    println!("{t}");
}

fn print_json<T: Serialize>(value: &T) -> Result<(), VerbError> {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        // Serialising our own plain data types cannot fail; say so if it ever does.
        Err(e) => eprintln!("gsmgate: cannot print JSON: {e}"),
    }
    Ok(())
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
