//! `gsmgate tokens create NAME --scope read|send|admin`, `tokens list`, `tokens revoke NAME`: the
//! HTTP API's bearer tokens, managed on the gateway itself through the admin socket
//! (`tokens_*` in docs/admin-protocol.md; what each scope allows is in docs/http-api.md).
//!
//! Wiring only. The secret is printed once by `create` and cannot be shown again (the daemon
//! keeps only its hash), so the human output says so next to it.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::client::Connection;
use super::output::{dash, print_table, show, table};
use super::runtime::block_on;
use crate::admin::protocol::{Scope, TokenItem, TokensCreateArgs};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token for an app; prints its secret once.
    Create(CreateArgs),
    /// Every token with its scope and last use (never the secrets).
    List,
    /// Revoke a token: requests with it are refused from now on.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A name for the app using it (shown in the log with each API call): A-Z a-z 0-9 _ - .
    pub name: String,
    /// What it may do: `read` (look only), `send` (read + send texts), `admin` (everything).
    #[arg(long, value_parser = parse_scope)]
    pub scope: Scope,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    pub name: String,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s).ok_or_else(|| format!("{s:?} is not a scope; use read, send or admin"))
}

pub fn run(cmd: TokensCommand, conn: Connection) -> ExitCode {
    block_on(async move {
        let mut client = conn.connect().await?;
        match cmd {
            TokensCommand::Create(c) => {
                let made = client
                    .tokens_create(TokensCreateArgs {
                        name: c.name,
                        scope: c.scope,
                    })
                    .await?;
                show(conn.json, &made, |t| {
                    println!(
                        "token {} (scope {}) created; its secret, shown only now:",
                        t.name, t.scope
                    );
                    println!();
                    println!("  {}", t.secret);
                    println!();
                    println!(
                        "Use it as: Authorization: Bearer <secret>. Store it now: it cannot be shown again."
                    );
                })
            }
            TokensCommand::List => {
                show(conn.json, &client.tokens_list().await?, |t| print_tokens(t))
            }
            TokensCommand::Revoke(r) => {
                show(conn.json, &client.tokens_revoke(&r.name).await?, |t| {
                    println!("token {} revoked", t.name)
                })
            }
        }
    })
}

fn print_tokens(tokens: &[TokenItem]) {
    if tokens.is_empty() {
        println!("(no tokens; create one with `gsmgate tokens create NAME --scope send`)");
        return;
    }
    let mut t = table(&["NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED"]);
    for k in tokens {
        t.add_row(vec![
            k.name.clone(),
            k.scope.to_string(),
            k.created_at.clone(),
            dash(k.last_used_at.as_deref()),
            dash(k.revoked_at.as_deref()),
        ]);
    }
    print_table(&t);
}
