//! `gsmgate activity [--days N] [--alerts N]`: members joined and opted out, messages received and
//! SMS sent per UTC day, and the latest alerts — the `activity` request on the admin socket
//! (docs/admin-protocol.md), printed as a table and a list or, with `--json`, as the daemon's data.
//!
//! Wiring only: the daemon counts and words the alerts, so the CLI, the API and the console's
//! dashboard show the same figures.

use std::process::ExitCode;

use clap::Args;

use super::client::Connection;
use super::output::{print_table, show, table};
use super::runtime::block_on;
use crate::admin::protocol::{ActivityArgs, ActivityData};

#[derive(Debug, Args)]
pub struct ActivityCli {
    /// Days to count, today included (1-92; default 14). Days are UTC dates.
    #[arg(long)]
    pub days: Option<u32>,
    /// Alerts to list, newest first (0-100; default 10).
    #[arg(long)]
    pub alerts: Option<u32>,
}

pub fn run(args: ActivityCli, conn: Connection) -> ExitCode {
    block_on(async move {
        let mut client = conn.connect().await?;
        let data = client
            .activity(ActivityArgs {
                days: args.days,
                alerts: args.alerts,
            })
            .await?;
        show(conn.json, &data, print)
    })
}

fn print(a: &ActivityData) {
    let mut t = table(&["day (UTC)", "joined", "opted out", "received", "sent"]);
    for d in &a.days {
        t.add_row(vec![
            d.day.clone(),
            d.joined.to_string(),
            d.opted_out.to_string(),
            d.received.to_string(),
            d.sent.to_string(),
        ]);
    }
    print_table(&t);
    if a.alerts.is_empty() {
        println!("no alerts");
    }
    for x in &a.alerts {
        println!("{}  {}: {}", x.at, x.kind, x.message);
    }
}
