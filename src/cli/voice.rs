//! `gsmgate calls`, `gsmgate voicemail list | export | delete` and `gsmgate greeting set`: the
//! voice verbs, each a request on the admin socket (`calls`, `voicemail_*`, `greeting_set` in
//! docs/admin-protocol.md), printed as a table or, with `--json`, as the daemon's data.
//!
//! Wiring only. Files move through the socket, never by path: `voicemail export` gets the WAV's
//! bytes from the daemon and writes them here, and `greeting set` reads the file here and sends
//! its bytes (in chunks when it is bigger than one request may be), because the CLI and the
//! daemon may run as different users and the daemon must not open the caller's paths. The
//! greeting's format is checked by the daemon, so there is one rule (docs/voice.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::client::Connection;
use super::output::{dash, plural, print_table, show, table};
use super::runtime::{Outcome, block_on};
use crate::admin::Client;
use crate::admin::protocol::{CallItem, CallsArgs, VoicemailItem, VoicemailListArgs, base64};

#[derive(Debug, Args)]
pub struct CallsCli {
    /// At most this many calls (newest first; default 50).
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum VoicemailCommand {
    /// Voicemails, newest first.
    List(VoicemailListCli),
    /// Write voicemail ID to FILE (a WAV, 8 kHz mono 16-bit) and mark it heard.
    Export(VoicemailExportCli),
    /// Delete voicemail ID and its file.
    Delete(VoicemailIdCli),
}

#[derive(Debug, Args)]
pub struct VoicemailListCli {
    /// Only voicemails not exported yet.
    #[arg(long)]
    pub unheard: bool,
}

#[derive(Debug, Args)]
pub struct VoicemailExportCli {
    /// The voicemail's id (from `gsmgate voicemail list`).
    pub id: i64,
    /// Where to write the WAV file; `-` writes it to standard output.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct VoicemailIdCli {
    /// The voicemail's id (from `gsmgate voicemail list`).
    pub id: i64,
}

#[derive(Debug, Subcommand)]
pub enum GreetingCommand {
    /// Install FILE (a PCM WAV; converted to 8 kHz mono 16-bit) as the greeting callers hear,
    /// from the next call on; no restart needed.
    Set(GreetingSetCli),
    /// Write the greeting callers hear now to FILE (WAV, 8 kHz mono 16-bit).
    Get(GreetingSetCli),
}

#[derive(Debug, Args)]
pub struct GreetingSetCli {
    pub file: PathBuf,
}

/// Milliseconds as `m:ss`.
fn mmss(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

pub fn run_calls(args: CallsCli, conn: Connection) -> ExitCode {
    block_on(async move {
        let mut client = conn.connect().await?;
        let calls = client.calls(CallsArgs { limit: args.limit }).await?;
        show(conn.json, &calls, |c| print_calls(c))
    })
}

fn print_calls(calls: &[CallItem]) {
    let mut t = table(&["id", "started", "from", "modem", "duration", "outcome"]);
    for c in calls {
        t.add_row(vec![
            c.id.to_string(),
            c.started_at.clone(),
            c.number.clone().unwrap_or_else(|| "withheld".into()),
            c.modem.clone(),
            c.duration_ms.map(mmss).unwrap_or_else(|| "-".into()),
            c.outcome.clone().unwrap_or_else(|| "in progress".into()),
        ]);
    }
    print_table(&t);
    println!("{} call{}", calls.len(), plural(calls.len() as u64));
}

pub fn run_voicemail(cmd: VoicemailCommand, conn: Connection) -> ExitCode {
    block_on(async move {
        let mut client = conn.connect().await?;
        match cmd {
            VoicemailCommand::List(l) => {
                let args = VoicemailListArgs {
                    unheard_only: l.unheard,
                };
                show(conn.json, &client.voicemail_list(args).await?, |v| {
                    print_voicemails(v)
                })
            }
            VoicemailCommand::Export(e) => export_voicemail(&mut client, e, conn.json).await,
            VoicemailCommand::Delete(d) => {
                show(conn.json, &client.voicemail_delete(d.id).await?, |r| {
                    println!(
                        "deleted voicemail {}{}",
                        r.id,
                        if r.file_removed {
                            ""
                        } else {
                            " (its file was already gone)"
                        }
                    );
                })
            }
        }
    })
}

fn print_voicemails(items: &[VoicemailItem]) {
    let mut t = table(&["id", "recorded", "from", "length", "", "call"]);
    for v in items {
        t.add_row(vec![
            v.id.to_string(),
            v.created_at.clone(),
            dash(v.number.as_deref()),
            mmss(v.duration_ms),
            if v.heard { "" } else { "new" }.to_string(),
            v.call_id.to_string(),
        ]);
    }
    print_table(&t);
    println!("{} voicemail{}", items.len(), plural(items.len() as u64));
}

/// Writes the WAV the daemon sends to the caller's file (or stdout for `-`, where nothing else
/// is printed so the bytes can be piped into a player).
async fn export_voicemail(
    client: &mut Client,
    e: VoicemailExportCli,
    json: bool,
) -> anyhow::Result<Outcome> {
    let file = client.voicemail_export(e.id).await?;
    let wav = base64::decode(&file.wav_base64)
        .context("the daemon sent a voicemail that is not valid base64")?;
    if e.file.as_os_str() == "-" {
        use std::io::Write;
        std::io::stdout()
            .write_all(&wav)
            .context("cannot write the voicemail to standard output")?;
        return Ok(Outcome::Ok);
    }
    std::fs::write(&e.file, &wav).with_context(|| format!("cannot write {}", e.file.display()))?;
    let written = serde_json::json!({
        "id": file.id,
        "number": file.number,
        "created_at": file.created_at,
        "duration_ms": file.duration_ms,
        "file": e.file,
        "bytes": wav.len(),
    });
    show(json, &written, |_| {
        println!(
            "wrote voicemail {} from {} ({}) to {}",
            file.id,
            dash(file.number.as_deref()),
            mmss(file.duration_ms),
            e.file.display()
        );
    })
}

pub fn run_greeting(cmd: GreetingCommand, conn: Connection) -> ExitCode {
    block_on(async move {
        match cmd {
            GreetingCommand::Set(s) => {
                // Read before connecting, so a typo in the path is reported as such.
                let wav = std::fs::read(&s.file)
                    .with_context(|| format!("cannot read {}", s.file.display()))?;
                let mut client = conn.connect().await?;
                show(conn.json, &client.greeting_set(&wav).await?, |g| {
                    println!(
                        "greeting set: {:.1} s from {} ({}){}; callers hear it from the next call",
                        g.duration_ms as f64 / 1000.0,
                        s.file.display(),
                        g.source,
                        if g.converted {
                            ", converted to 8 kHz mono 16-bit"
                        } else {
                            ""
                        }
                    );
                })
            }
            GreetingCommand::Get(g) => {
                let mut client = conn.connect().await?;
                let Some(file) = client.greeting_get().await? else {
                    anyhow::bail!(
                        "no greeting is installed; set one with `gsmgate greeting set FILE`"
                    );
                };
                let wav = crate::admin::protocol::base64::decode(&file.wav_base64)
                    .context("the daemon sent a greeting that is not base64")?;
                std::fs::write(&g.file, wav)
                    .with_context(|| format!("cannot write {}", g.file.display()))?;
                show(conn.json, &file.duration_ms, |ms| {
                    println!(
                        "greeting ({:.1} s) written to {}",
                        *ms as f64 / 1000.0,
                        g.file.display()
                    )
                })
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_minutes_and_seconds() {
        assert_eq!(mmss(0), "0:00");
        assert_eq!(mmss(61_999), "1:01");
        assert_eq!(mmss(-5), "0:00");
    }
}
