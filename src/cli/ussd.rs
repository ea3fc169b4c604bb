//! `gsmgate ussd MODEM CODE`, `gsmgate ussd MODEM --reply TEXT`, `gsmgate ussd MODEM --cancel`:
//! one `ussd` request on the admin socket (docs/admin-protocol.md), printing the network's answer
//! (with `--json`, the daemon's data). Wiring only; the USSD exchange is the daemon's.

use std::process::ExitCode;

use clap::Args;

use super::client::Connection;
use super::output::show;
use super::runtime::block_on;
use crate::admin::protocol::{UssdArgs, UssdResult};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("operation").required(true).args(["code", "reply", "cancel"])))]
pub struct UssdCli {
    /// The configured modem name (see `gsmgate modems`).
    pub modem: String,
    /// The USSD code, e.g. `*100#` (quote it for the shell).
    pub code: Option<String>,
    /// Answer the open menu with TEXT, e.g. `--reply 2`.
    #[arg(long, value_name = "TEXT")]
    pub reply: Option<String>,
    /// End the open session.
    #[arg(long)]
    pub cancel: bool,
    /// Seconds to wait for the network's answer (1–180; default 30).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

pub fn run(args: UssdCli, conn: Connection) -> ExitCode {
    block_on(async move {
        let mut client = conn.connect().await?;
        let result = client
            .ussd(UssdArgs {
                modem: args.modem,
                code: args.code,
                reply: args.reply,
                cancel: args.cancel,
                timeout_s: args.timeout,
            })
            .await?;
        show(conn.json, &result, print)
    })
}

fn print(r: &UssdResult) {
    match r.state.as_str() {
        "cancelled" => println!("USSD session on {} cancelled", r.modem),
        "menu" => {
            println!("{}", r.text);
            println!(
                "(menu: answer with `gsmgate ussd {} --reply …` or `--cancel`)",
                r.modem
            );
        }
        _ => println!("{}", r.text),
    }
}
