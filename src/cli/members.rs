//! `gsmgate members list | add | remove | tag | import | export`: the member verbs, each one
//! request on the admin socket (`members_*` in docs/admin-protocol.md), printed as a table or,
//! with `--json`, as the daemon's data.
//!
//! Wiring only: numbers, tags, segments and CSV rows are checked by the daemon (so the rules live
//! in one place, `community::service`); this file reads and writes files for `import`/`export`
//! (the daemon may run as another user and must not open the caller's paths) and formats. It also
//! holds the few output helpers the broadcast verbs share.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use super::client::Connection;
use crate::admin::protocol::{
    MemberAddArgs, MemberRemoveArgs, MemberTagArgs, MembersExportArgs, MembersImportArgs,
    MembersListArgs,
};
use crate::admin::{Client, ClientError, ErrorCode, resolve_socket_path};

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// List members, optionally of a segment (e.g. --segment city=Chicago,tag=volunteer).
    List(ListCli),
    /// Add one member (active; a number that texted STOP stays opted out).
    Add(AddCli),
    /// Remove one member (an opt-out is kept on the suppression list).
    Remove(RemoveCli),
    /// Add tags to a member, or remove them with --remove.
    Tag(TagCli),
    /// Import members from a CSV file: every row or none; bad rows are listed.
    Import(ImportCli),
    /// Export members as CSV (to FILE, or to standard output).
    Export(ExportCli),
}

#[derive(Debug, Args)]
pub struct ListCli {
    /// Only members matching this filter: city=, region=, tag=, status=, joined>=DATE (joined by
    /// commas; see docs/community.md).
    #[arg(long)]
    pub segment: Option<String>,
    /// At most this many members (default 100).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Skip this many members first (paging).
    #[arg(long)]
    pub offset: Option<u32>,
}

#[derive(Debug, Args)]
pub struct AddCli {
    /// The member's number, international (+13125550101) or in the gateway's region.
    pub number: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub city: Option<String>,
    /// ZIP, postal code or district.
    #[arg(long)]
    pub region: Option<String>,
    /// A tag; repeat the flag or separate with commas.
    #[arg(long = "tag", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// IANA time zone (default: derived from the number and city).
    #[arg(long)]
    pub timezone: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveCli {
    pub number: String,
}

#[derive(Debug, Args)]
pub struct TagCli {
    pub number: String,
    /// One or more tags.
    #[arg(required = true)]
    pub tags: Vec<String>,
    /// Remove these tags instead of adding them.
    #[arg(long)]
    pub remove: bool,
}

#[derive(Debug, Args)]
pub struct ImportCli {
    /// CSV with a header row: number (required), name, city, region, tags (;-separated),
    /// timezone.
    pub file: PathBuf,
    /// Check every row and report, import nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ExportCli {
    /// Write here; without it the CSV goes to standard output.
    pub file: Option<PathBuf>,
    /// Only members matching this filter.
    #[arg(long)]
    pub segment: Option<String>,
}

/// How a verb ended, for the exit code.
pub(super) enum Outcome {
    Ok,
    /// The request was answered but refused something (bad import rows): exit 1, already printed.
    Refused,
}

pub fn run(cmd: MembersCommand, conn: Connection) -> ExitCode {
    block_on(run_async(cmd, conn))
}

/// Runs a verb on a current-thread runtime and maps its outcome to an exit code.
pub(super) fn block_on(
    fut: impl std::future::Future<Output = anyhow::Result<Outcome>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
    };
    match runtime.block_on(fut) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(super::EXIT_FAILURE),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}

pub(super) async fn connect(conn: &Connection) -> Result<Client, ClientError> {
    Client::connect(resolve_socket_path(conn.socket.as_deref())).await
}

async fn run_async(cmd: MembersCommand, conn: Connection) -> anyhow::Result<Outcome> {
    // Read the import file before connecting, so a typo in the path is reported as such.
    let import_text = match &cmd {
        MembersCommand::Import(i) => Some(
            std::fs::read_to_string(&i.file)
                .with_context(|| format!("cannot read {}", i.file.display()))?,
        ),
        _ => None,
    };
    let mut client = connect(&conn).await?;
    match cmd {
        MembersCommand::List(l) => {
            let page = client
                .members_list(MembersListArgs {
                    segment: l.segment,
                    limit: l.limit,
                    offset: l.offset,
                })
                .await?;
            if conn.json {
                return print_json(&page);
            }
            let mut t = table(&[
                "number", "name", "city", "region", "tags", "status", "home", "joined",
            ]);
            for m in &page.members {
                t.add_row(vec![
                    m.number.clone(),
                    dash(m.name.as_deref()),
                    dash(m.city.as_deref()),
                    dash(m.region.as_deref()),
                    m.tags.join(","),
                    m.status.clone(),
                    dash(m.home_modem.as_deref()),
                    m.joined_at.get(..10).unwrap_or(&m.joined_at).to_string(),
                ]);
            }
            println!("{t}");
            println!(
                "{} of {} member{}",
                page.members.len(),
                page.total,
                plural(page.total)
            );
        }
        MembersCommand::Add(a) => {
            let m = client
                .members_add(MemberAddArgs {
                    number: a.number,
                    name: a.name,
                    city: a.city,
                    region: a.region,
                    tags: a.tags,
                    time_zone: a.timezone,
                })
                .await?;
            if conn.json {
                return print_json(&m);
            }
            println!(
                "added {} ({}, time zone {}, home modem {})",
                m.number,
                m.status,
                m.time_zone.as_deref().unwrap_or("default"),
                m.home_modem.as_deref().unwrap_or("any")
            );
        }
        MembersCommand::Remove(r) => {
            let removed = client
                .members_remove(MemberRemoveArgs { number: r.number })
                .await?;
            if conn.json {
                return print_json(&removed);
            }
            println!("removed {}", removed.number);
        }
        MembersCommand::Tag(t) => {
            let m = client
                .members_tag(MemberTagArgs {
                    number: t.number,
                    tags: t.tags,
                    remove: t.remove,
                })
                .await?;
            if conn.json {
                return print_json(&m);
            }
            println!("{} tags: {}", m.number, dash(Some(&m.tags.join(", "))));
        }
        MembersCommand::Import(i) => {
            let csv = import_text.unwrap_or_default();
            let result = match client
                .members_import(MembersImportArgs {
                    csv,
                    dry_run: i.dry_run,
                })
                .await
            {
                Err(ClientError::Server(e)) if e.code == ErrorCode::RequestTooLarge => {
                    anyhow::bail!(
                        "{} is larger than the daemon accepts in one request; split it into \
                         smaller files (each imports all-or-nothing on its own)",
                        i.file.display()
                    )
                }
                other => other?,
            };
            if conn.json {
                print_json(&result)?;
                return Ok(if result.errors.is_empty() {
                    Outcome::Ok
                } else {
                    Outcome::Refused
                });
            }
            if !result.errors.is_empty() {
                for e in &result.errors {
                    eprintln!("{e}");
                }
                eprintln!(
                    "nothing was imported: {} bad row{} in {}",
                    result.errors.len(),
                    plural(result.errors.len() as u64),
                    i.file.display()
                );
                return Ok(Outcome::Refused);
            }
            let kept = if result.suppressed > 0 {
                format!(
                    "; {} texted STOP before and stay opted out",
                    result.suppressed
                )
            } else {
                String::new()
            };
            if result.dry_run {
                println!(
                    "{} row{} valid, nothing imported (dry run){kept}",
                    result.valid,
                    plural(result.valid as u64)
                );
            } else {
                println!(
                    "imported {} member{}{kept}",
                    result.imported,
                    plural(result.imported as u64)
                );
            }
        }
        MembersCommand::Export(e) => {
            let data = client
                .members_export(MembersExportArgs { segment: e.segment })
                .await?;
            match e.file {
                Some(path) => {
                    std::fs::write(&path, &data.csv)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    if conn.json {
                        return print_json(&serde_json::json!({
                            "count": data.count, "file": path.display().to_string()
                        }));
                    }
                    println!(
                        "exported {} member{} to {}",
                        data.count,
                        plural(data.count as u64),
                        path.display()
                    );
                }
                None if conn.json => return print_json(&data),
                None => print!("{}", data.csv),
            }
        }
    }
    Ok(Outcome::Ok)
}

pub(super) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY);
    t.set_header(header.to_vec());
    t
}

pub(super) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<Outcome> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("cannot print JSON")?
    );
    Ok(Outcome::Ok)
}

pub(super) fn dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "-".to_string(),
    }
}

pub(super) fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
