//! `gsmgate web user add NAME --role owner|volunteer`, `web user list`, `web user passwd NAME`,
//! `web user remove NAME`: the web console's accounts, managed on the gateway itself through the
//! admin socket (`web_users_*` in docs/admin-protocol.md; roles and sessions in docs/web.md).
//!
//! Wiring only, plus reading the password: from the terminal with echo off (asked twice) when
//! stdin is a terminal, else the first line of stdin, so scripts and tests can pipe it in. The
//! password never appears on the command line, where `ps` and shell history would show it.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::client::Connection;
use super::output::{print_table, show, table};
use super::runtime::block_on;
use crate::admin::protocol::{WebRole, WebUserAddArgs, WebUserItem, WebUserPasswdArgs};

#[derive(Debug, Args)]
pub struct WebCli {
    #[command(subcommand)]
    pub command: WebCommand,
}

#[derive(Debug, Subcommand)]
pub enum WebCommand {
    /// Console accounts: `user add NAME --role owner|volunteer`, `user list`, `user passwd NAME`,
    /// `user remove NAME`.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account; the password is asked for (or read from stdin when it is not a terminal).
    Add(AddArgs),
    /// Every account with its role and open sessions.
    List,
    /// Set a new password (asked for like `add`); the account's sessions end.
    Passwd(NameArgs),
    /// Remove an account and end its sessions.
    Remove(NameArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The login name: A-Z a-z 0-9 _ - .
    pub name: String,
    /// `owner` (everything the console offers) or `volunteer` (read and answer conversations).
    #[arg(long, value_parser = parse_role)]
    pub role: WebRole,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    pub name: String,
}

fn parse_role(s: &str) -> Result<WebRole, String> {
    WebRole::parse(s).ok_or_else(|| format!("{s:?} is not a role; use owner or volunteer"))
}

/// Reads one line from the terminal with echo off, restoring the terminal whatever happens.
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("reading the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning echo off")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let restored = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read.context("reading the password")?;
    restored.context("restoring the terminal")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The new password: typed twice on a terminal, else the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = read_hidden("Password: ")?;
        let again = read_hidden("Password again: ")?;
        if first != again {
            bail!("the two passwords differ; nothing was changed");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

pub fn run(cli: WebCli, conn: Connection) -> ExitCode {
    let WebCommand::User(cmd) = cli.command;
    let password = match &cmd {
        UserCommand::Add(_) | UserCommand::Passwd(_) => match read_password() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(super::EXIT_FAILURE);
            }
        },
        _ => None,
    };
    block_on(async move {
        let mut client = conn.connect().await?;
        match cmd {
            UserCommand::Add(a) => {
                let made = client
                    .web_users_add(WebUserAddArgs {
                        name: a.name,
                        role: a.role,
                        password: password.unwrap_or_default(),
                    })
                    .await?;
                show(conn.json, &made, |u| {
                    println!(
                        "console user {} ({}) added; log in at the gateway's HTTP address",
                        u.name, u.role
                    )
                })
            }
            UserCommand::List => show(conn.json, &client.web_users_list().await?, |u| {
                print_users(u)
            }),
            UserCommand::Passwd(n) => {
                let changed = client
                    .web_users_passwd(WebUserPasswdArgs {
                        name: n.name,
                        password: password.unwrap_or_default(),
                    })
                    .await?;
                show(conn.json, &changed, |c| {
                    println!(
                        "password of {} changed; {} session(s) ended",
                        c.name, c.sessions_ended
                    )
                })
            }
            UserCommand::Remove(n) => {
                show(conn.json, &client.web_users_remove(&n.name).await?, |c| {
                    println!(
                        "console user {} removed; {} session(s) ended",
                        c.name, c.sessions_ended
                    )
                })
            }
        }
    })
}

fn print_users(users: &[WebUserItem]) {
    if users.is_empty() {
        println!("(no console users; add one with `gsmgate web user add NAME --role owner`)");
        return;
    }
    let mut t = table(&["NAME", "ROLE", "CREATED", "SESSIONS"]);
    for u in users {
        t.add_row(vec![
            u.name.clone(),
            u.role.to_string(),
            u.created_at.clone(),
            u.sessions.to_string(),
        ]);
    }
    print_table(&t);
}
