//! `gsmgate webhooks` and `gsmgate webhooks replay NAME EVENT_ID`: each webhook's delivery state,
//! and one event sent again. Requests on the admin socket (`webhooks`, `webhook_replay` in
//! docs/admin-protocol.md), printed as a table or, with `--json`, as the daemon's data.
//!
//! Wiring only; a replay that did not finish within the daemon's wait is reported as queued
//! (exit 0: it will be sent), one that the receiver refused exits 1.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::client::Connection;
use super::output::{dash, print_table, show, table};
use super::runtime::{Outcome, block_on};
use crate::admin::protocol::{WebhookItem, WebhookReplayed};

#[derive(Debug, Args)]
pub struct WebhooksCli {
    #[command(subcommand)]
    pub command: Option<WebhooksCommand>,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Send journal event EVENT_ID to webhook NAME again (signed as usual; the webhook's
    /// position in the journal does not change).
    Replay(ReplayCli),
}

#[derive(Debug, Args)]
pub struct ReplayCli {
    /// The webhook's name (from `gsmgate webhooks`).
    pub name: String,
    /// The event id (the `id` of the delivered JSON, header X-Gsmgate-Event-Id).
    pub event_id: i64,
}

pub fn run(args: WebhooksCli, conn: Connection) -> ExitCode {
    block_on(async move {
        let mut client = conn.connect().await?;
        match args.command {
            None => {
                let list = client.webhooks().await?;
                show(conn.json, &list, |l| print_webhooks(l))
            }
            Some(WebhooksCommand::Replay(r)) => {
                let done = client.webhook_replay(&r.name, r.event_id).await?;
                let refused = done.done
                    && !done
                        .result
                        .as_deref()
                        .is_some_and(|s| s.starts_with("delivered"));
                show(conn.json, &done, print_replay)?;
                Ok(if refused {
                    Outcome::Refused
                } else {
                    Outcome::Ok
                })
            }
        }
    })
}

fn print_webhooks(list: &[WebhookItem]) {
    if list.is_empty() {
        println!("no webhook configured ([[webhook]] in the config, docs/configuration.md)");
        return;
    }
    let mut t = table(&[
        "name",
        "url",
        "events",
        "backlog",
        "last success",
        "attempts",
        "last error",
    ]);
    for w in list {
        let events = if w.events.is_empty() {
            "all".to_string()
        } else {
            w.events.join(",")
        };
        let error = match (&w.last_error, &w.last_error_at) {
            (Some(e), Some(at)) => format!("{at}: {e}"),
            (e, _) => dash(e.as_deref()),
        };
        t.add_row(vec![
            w.name.clone(),
            w.url.clone(),
            events,
            w.backlog.to_string(),
            dash(w.last_success_at.as_deref()),
            w.attempts.to_string(),
            error,
        ]);
    }
    print_table(&t);
}

fn print_replay(r: &WebhookReplayed) {
    match (&r.done, &r.result) {
        (true, Some(result)) => println!("event {} to {}: {result}", r.event, r.name),
        _ => println!(
            "event {} to {}: queued (the daemon sends it when the webhook's worker is free)",
            r.event, r.name
        ),
    }
}
