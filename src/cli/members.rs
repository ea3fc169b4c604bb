//! `gsmgate members list | add | remove | tag | import | export | review`: the member verbs, each one
//! request on the admin socket (`members_*` in docs/admin-protocol.md), printed as a table or,
//! with `--json`, as the daemon's data.
//!
//! Wiring only: numbers, tags, segments and CSV rows are checked by the daemon (so the rules live
//! in one place, `commands::members`); this file reads and writes files for `import`/`export`
//! (the daemon may run as another user and must not open the caller's paths) and formats.
//!
//! `import` of a file bigger than one request (64 KiB) splits it by records, each part with the
//! header, and sends it in two passes: a dry run of every part (all bad rows reported, numbered
//! as in the file, nothing stored), then the import part by part. A protocol-level upload
//! (parts assembled by the daemon, like `greeting_set`) would keep one transaction for the whole
//! file, but needs new request fields and daemon state; the two passes keep the protocol as it
//! is and refuse every bad file whole. Their one gap, a part refused in the second pass after
//! earlier parts were stored, is reported with the last file row stored ([`import_planned`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::client::Connection;
use super::output::{dash, plural, print_json, print_table, show, table};
use super::runtime::{Outcome, block_on};
use crate::admin::protocol::{
    ImportResult, MAX_REQUEST_BYTES, MemberAddArgs, MemberGetArgs, MemberItem, MemberRemoveArgs,
    MemberTagArgs, MembersExportArgs, MembersImportArgs, MembersListArgs, MembersPage, RowError,
};
use crate::admin::{Client, ClientError, ErrorCode};
use crate::community::CommunityError;
use crate::community::csv::{parse_records, write_records};

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// List members, optionally of a segment (e.g. --segment city=Chicago,tag=volunteer).
    List(ListCli),
    /// Show one member: every attribute, custom fields, and why their home modem is theirs.
    Get(GetCli),
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
    /// Texts that read like an opt-out ("Stop please") waiting for a decision; `review NUMBER
    /// --opt-out|--keep` takes it.
    Review(super::review::ReviewCli),
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
pub struct GetCli {
    /// The member's number, international (+13125550101) or in the gateway's region.
    pub number: String,
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
    /// timezone, and a column per configured custom field (e.g. shirt_size).
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

pub fn run(cmd: MembersCommand, conn: Connection) -> ExitCode {
    block_on(run_async(cmd, conn))
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
    let mut client = conn.connect().await?;
    let json = conn.json;
    match cmd {
        MembersCommand::List(l) => {
            let args = MembersListArgs {
                segment: l.segment,
                limit: l.limit,
                offset: l.offset,
            };
            show(json, &client.members_list(args).await?, print_page)
        }
        MembersCommand::Get(g) => {
            let args = MemberGetArgs { number: g.number };
            show(json, &client.members_get(args).await?, print_member)
        }
        MembersCommand::Add(a) => {
            let args = MemberAddArgs {
                number: a.number,
                name: a.name,
                city: a.city,
                region: a.region,
                tags: a.tags,
                time_zone: a.timezone,
            };
            show(json, &client.members_add(args).await?, |m| {
                println!(
                    "added {} ({}, time zone {}, home modem {})",
                    m.number,
                    m.status,
                    m.time_zone.as_deref().unwrap_or("default"),
                    m.home_modem.as_deref().unwrap_or("any")
                );
            })
        }
        MembersCommand::Remove(r) => {
            let args = MemberRemoveArgs { number: r.number };
            show(json, &client.members_remove(args).await?, |m| {
                println!("removed {}", m.number);
            })
        }
        MembersCommand::Tag(t) => {
            let args = MemberTagArgs {
                number: t.number,
                tags: t.tags,
                remove: t.remove,
            };
            show(json, &client.members_tag(args).await?, |m| {
                println!("{} tags: {}", m.number, dash(Some(&m.tags.join(", "))));
            })
        }
        MembersCommand::Import(i) => {
            let text = import_text.unwrap_or_default();
            let report = match split_import(&text, IMPORT_CHUNK_BYTES) {
                Ok(plan) => import_planned(&mut client, plan, i.dry_run).await?,
                // The file is not CSV: refused like the daemon refuses it, nothing sent.
                Err(e) => ImportReport::refused(i.dry_run, vec![e]),
            };
            print_import(&report, &i.file, json)
        }
        MembersCommand::Review(r) => super::review::run(&mut client, r, json).await,
        MembersCommand::Export(e) => {
            if json && e.file.is_none() {
                // One JSON document: the whole CSV in one reply, as before.
                let data = client
                    .members_export(MembersExportArgs {
                        segment: e.segment,
                        ..MembersExportArgs::default()
                    })
                    .await?;
                return show(json, &data, |d| print!("{}", d.csv));
            }
            let count = match &e.file {
                None => export_paged(&mut client, e.segment, std::io::stdout().lock()).await?,
                Some(path) => {
                    let f = std::fs::File::create(path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    export_paged(&mut client, e.segment, std::io::BufWriter::new(f))
                        .await
                        .with_context(|| format!("cannot write {}", path.display()))?
                }
            };
            let Some(path) = e.file else {
                return Ok(Outcome::Ok);
            };
            let written = serde_json::json!({ "count": count, "file": path.display().to_string() });
            show(json, &written, |_| {
                println!(
                    "exported {} member{} to {}",
                    count,
                    plural(count as u64),
                    path.display()
                );
            })
        }
    }
}

/// `sim0 (geomatch)`, the home and why; `-` without a home.
fn home_text(m: &MemberItem) -> String {
    match (&m.home_modem, &m.home_reason) {
        (None, _) => "-".to_string(),
        (Some(h), None) => h.clone(),
        (Some(h), Some(r)) => format!("{h} ({r})"),
    }
}

/// `shirt_size=L;diet=vegan`, the custom fields in one cell.
fn fields_text(m: &MemberItem) -> String {
    m.fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

fn print_member(m: &MemberItem) {
    let rows: Vec<(String, String)> = [
        ("number", m.number.clone()),
        ("name", dash(m.name.as_deref())),
        ("city", dash(m.city.as_deref())),
        ("region", dash(m.region.as_deref())),
        (
            "time zone",
            m.time_zone.as_deref().unwrap_or("default").to_string(),
        ),
        ("tags", dash(Some(&m.tags.join(", ")))),
        ("status", m.status.clone()),
        ("home", home_text(m)),
        ("joined", m.joined_at.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(m.fields.iter().map(|(k, v)| (k.clone(), v.clone())))
    .collect();
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
}

/// Members per page of `members export` (a few hundred KiB of CSV).
const EXPORT_PAGE: u32 = 5_000;

/// Asks the daemon for the export page by page and writes each page as it arrives, so a
/// 100,000-member export never sits in memory whole (neither here nor in the daemon's reply).
async fn export_paged(
    client: &mut Client,
    segment: Option<String>,
    mut out: impl std::io::Write,
) -> anyhow::Result<usize> {
    let mut after = None;
    let mut count = 0;
    loop {
        let page = client
            .members_export(MembersExportArgs {
                segment: segment.clone(),
                limit: Some(EXPORT_PAGE),
                after,
            })
            .await?;
        out.write_all(page.csv.as_bytes())?;
        count += page.count;
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    out.flush()?;
    Ok(count)
}

fn print_page(page: &MembersPage) {
    let with_fields = page.members.iter().any(|m| !m.fields.is_empty());
    let mut header = vec![
        "number", "name", "city", "region", "tags", "status", "home", "joined",
    ];
    if with_fields {
        header.push("fields");
    }
    let mut t = table(&header);
    for m in &page.members {
        let mut row = vec![
            m.number.clone(),
            dash(m.name.as_deref()),
            dash(m.city.as_deref()),
            dash(m.region.as_deref()),
            m.tags.join(","),
            m.status.clone(),
            home_text(m),
            m.joined_at.get(..10).unwrap_or(&m.joined_at).to_string(),
        ];
        if with_fields {
            row.push(fields_text(m));
        }
        t.add_row(row);
    }
    print_table(&t);
    println!(
        "{} of {} member{}",
        page.members.len(),
        page.total,
        plural(page.total)
    );
}

// ---------------------------------------------------------------------------------------------
// members import: files bigger than one request
// ---------------------------------------------------------------------------------------------

/// Most bytes of CSV, as escaped inside the JSON request, that one `members_import` request
/// carries: the daemon's request limit less room for the envelope (`id`, `cmd`, `dry_run`).
pub const IMPORT_CHUNK_BYTES: usize = MAX_REQUEST_BYTES - 1024;

/// One request's share of an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportChunk {
    /// The whole file when it fits one request; else the header row and a run of records,
    /// written back as CSV.
    pub csv: String,
    /// The file row (spreadsheet-numbered: header = 1, records after it) of the chunk's first
    /// record; the daemon numbers the chunk's own rows from 2.
    pub first_row: usize,
}

/// An import file split into requests, and the problems only the whole file shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPlan {
    pub chunks: Vec<ImportChunk>,
    /// Rows repeating a number of another chunk (the daemon sees one chunk at a time), found by
    /// comparing the digits of the `number` cells. A national and an international spelling of
    /// one number in different chunks (`(312)…` and `+1 312…`) are not caught here: see
    /// [`import_planned`].
    pub errors: Vec<RowError>,
}

/// Length of `s` once escaped as a JSON string (without the quotes). Escaping is per character,
/// so the length of a concatenation is the sum of the lengths.
fn json_len(s: &str) -> usize {
    serde_json::to_string(s).map_or(s.len().saturating_mul(6), |j| j.len().saturating_sub(2))
}

/// Splits an import file into requests of at most `budget` escaped bytes each: the file as it is
/// when it fits, else by records (never inside a quoted field), each chunk repeating the header.
/// Fails with the row the daemon would have named when the text is not CSV, or when one record
/// alone does not fit a request.
pub fn split_import(text: &str, budget: usize) -> Result<ImportPlan, RowError> {
    let whole = || ImportPlan {
        chunks: vec![ImportChunk {
            csv: text.to_string(),
            first_row: 2,
        }],
        errors: Vec::new(),
    };
    if json_len(text) <= budget {
        return Ok(whole());
    }
    let records = parse_records(text).map_err(|e| match e {
        CommunityError::Csv { line, reason } => RowError {
            row: line,
            message: format!("line {line}: {reason}"),
        },
        other => RowError {
            row: 1,
            message: other.to_string(),
        },
    })?;
    let mut records = records.into_iter();
    let Some(header) = records.next() else {
        return Ok(whole());
    };
    let number_col = header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("number"));
    let head = write_records(std::slice::from_ref(&header));
    let head_len = json_len(&head);
    let mut plan = ImportPlan {
        chunks: Vec::new(),
        errors: Vec::new(),
    };
    let mut cur = head.clone();
    let mut cur_len = head_len;
    let mut first_row = 2;
    // Digits of each number seen → (its row, its chunk's first row).
    let mut seen: std::collections::HashMap<String, (usize, usize)> = Default::default();
    for (i, record) in records.enumerate() {
        let row = i + 2;
        let line = write_records(std::slice::from_ref(&record));
        let len = json_len(&line);
        if head_len + len > budget {
            return Err(RowError {
                row,
                message: format!(
                    "this row takes {len} bytes in a request, more than the daemon accepts \
                     ({budget} with the header); shorten it"
                ),
            });
        }
        if cur_len + len > budget {
            plan.chunks.push(ImportChunk {
                csv: std::mem::replace(&mut cur, head.clone()),
                first_row,
            });
            cur_len = head_len;
            first_row = row;
        }
        cur.push_str(&line);
        cur_len += len;
        let raw = number_col
            .and_then(|c| record.get(c))
            .map_or("", |s| s.trim());
        // Digits only: `+1 312…` and `1 312…` are one number; a national form (`312…`) is not
        // matched with its international one (that needs the daemon's default region).
        let key: String = raw.chars().filter(char::is_ascii_digit).collect();
        if !key.is_empty() {
            match seen.get(&key) {
                // Within one chunk the daemon reports it, with the number normalised.
                Some(&(first, chunk)) if chunk != first_row => plan.errors.push(RowError {
                    row,
                    message: format!("number '{raw}' repeats row {first}"),
                }),
                Some(_) => {}
                None => {
                    seen.insert(key, (row, first_row));
                }
            }
        }
    }
    if cur.len() > head.len() {
        plan.chunks.push(ImportChunk {
            csv: cur,
            first_row,
        });
    }
    Ok(plan)
}

/// A row error the daemon reported for one chunk, numbered as in the file: the chunk's rows 2…
/// are the file's `first_row`…, and so is a "repeats row N" inside the message (the daemon's
/// wording for a number given twice in one chunk). The header (row 1) is the file's header.
fn file_row(e: RowError, first_row: usize) -> RowError {
    if e.row < 2 {
        return e;
    }
    let shift = |n: usize| first_row + n - 2;
    let message = match e.message.rsplit_once("repeats row ") {
        Some((head, n)) => match n.parse::<usize>() {
            Ok(n) if n >= 2 => format!("{head}repeats row {}", shift(n)),
            _ => e.message,
        },
        None => e.message,
    };
    RowError {
        row: shift(e.row),
        message,
    }
}

/// What an import did over all its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The sum of the chunks' results, errors numbered as in the file.
    pub result: ImportResult,
    /// Requests the file took (1 when it fits one).
    pub chunks: usize,
    /// Set when a chunk was refused after earlier chunks were imported (see [`import_planned`]):
    /// the file rows stored, `2..=through_row`.
    pub imported_through_row: Option<usize>,
}

impl ImportReport {
    fn refused(dry_run: bool, errors: Vec<RowError>) -> ImportReport {
        ImportReport {
            result: ImportResult {
                dry_run,
                imported: 0,
                suppressed: 0,
                valid: 0,
                errors,
            },
            chunks: 0,
            imported_through_row: None,
        }
    }
}

/// Sends a planned import. One chunk: one `members_import` request, every row or none, as the
/// daemon guarantees. Several chunks (a file bigger than one request, like `greeting set`
/// uploads): first every chunk is checked with a dry run and the errors of all of them (plus
/// the plan's cross-chunk repeats) are reported together, file-numbered, with nothing imported;
/// only a file that passes whole is then imported, chunk after chunk, each all-or-nothing.
/// What that cannot promise: a chunk refused at that stage — a number another chunk already
/// added in a different spelling, or a member added by someone else meanwhile — leaves the
/// chunks before it imported; the report then names the last file row stored
/// (`imported_through_row`) so the rest can be imported on its own.
pub async fn import_planned(
    client: &mut Client,
    plan: ImportPlan,
    dry_run: bool,
) -> anyhow::Result<ImportReport> {
    let n = plan.chunks.len();
    let send = async |client: &mut Client, csv: &str, dry_run: bool| match client
        .members_import(MembersImportArgs {
            csv: csv.to_string(),
            dry_run,
        })
        .await
    {
        Err(ClientError::Server(e)) if e.code == ErrorCode::RequestTooLarge => {
            anyhow::bail!(
                "the daemon refused a request of {} bytes as too large ({}); its limit is \
                     smaller than this client's ({MAX_REQUEST_BYTES})",
                csv.len(),
                e.message
            )
        }
        other => Ok(other?),
    };
    if let ([only], true) = (plan.chunks.as_slice(), plan.errors.is_empty()) {
        let result = send(client, &only.csv, dry_run).await?;
        return Ok(ImportReport {
            result,
            chunks: 1,
            imported_through_row: None,
        });
    }
    let mut total = ImportResult {
        dry_run,
        imported: 0,
        suppressed: 0,
        valid: 0,
        errors: plan.errors,
    };
    for c in &plan.chunks {
        let r = send(client, &c.csv, true).await?;
        total.valid += r.valid;
        total.suppressed += r.suppressed;
        total
            .errors
            .extend(r.errors.into_iter().map(|e| file_row(e, c.first_row)));
    }
    // Header errors come back from every chunk: report them once.
    total
        .errors
        .sort_by(|a, b| (a.row, &a.message).cmp(&(b.row, &b.message)));
    total.errors.dedup();
    if !total.errors.is_empty() {
        total.valid = 0;
        total.suppressed = 0;
    }
    if dry_run || !total.errors.is_empty() {
        return Ok(ImportReport {
            result: total,
            chunks: n,
            imported_through_row: None,
        });
    }
    total.suppressed = 0;
    for c in &plan.chunks {
        let r = send(client, &c.csv, false).await?;
        if !r.errors.is_empty() {
            total.errors = r
                .errors
                .into_iter()
                .map(|e| file_row(e, c.first_row))
                .collect();
            let stored = c.first_row - 1;
            return Ok(ImportReport {
                result: total,
                chunks: n,
                imported_through_row: (stored >= 2).then_some(stored),
            });
        }
        total.imported += r.imported;
        total.suppressed += r.suppressed;
    }
    Ok(ImportReport {
        result: total,
        chunks: n,
        imported_through_row: None,
    })
}

fn print_import(
    report: &ImportReport,
    file: &std::path::Path,
    json: bool,
) -> anyhow::Result<Outcome> {
    let result = &report.result;
    let outcome = if result.errors.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Refused
    };
    if json {
        print_json(result)?;
        return Ok(outcome);
    }
    let parts = if report.chunks > 1 {
        format!(" (sent in {} requests)", report.chunks)
    } else {
        String::new()
    };
    if !result.errors.is_empty() {
        for e in &result.errors {
            eprintln!("{e}");
        }
        match report.imported_through_row {
            Some(last) => eprintln!(
                "stopped: {} member{} of rows 2-{last} were imported, nothing from row {} on \
                 ({} bad row{} above); import the rows from {} on once fixed",
                result.imported,
                plural(result.imported as u64),
                last + 1,
                result.errors.len(),
                plural(result.errors.len() as u64),
                last + 1,
            ),
            None => eprintln!(
                "nothing was imported: {} bad row{} in {}{parts}",
                result.errors.len(),
                plural(result.errors.len() as u64),
                file.display()
            ),
        }
        return Ok(outcome);
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
            "{} row{} valid, nothing imported (dry run){kept}{parts}",
            result.valid,
            plural(result.valid as u64)
        );
    } else {
        println!(
            "imported {} member{}{kept}{parts}",
            result.imported,
            plural(result.imported as u64)
        );
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(rows: usize) -> String {
        let mut s = String::from("number,name,city\n");
        for i in 0..rows {
            s.push_str(&format!("+1312555{i:04},\"Name, {i}\",Chicago\n"));
        }
        s
    }

    #[test]
    fn a_file_that_fits_goes_whole() {
        let text = csv(10);
        let plan = split_import(&text, IMPORT_CHUNK_BYTES).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plan.chunks,
            [ImportChunk {
                csv: text,
                first_row: 2
            }]
        );
        assert!(plan.errors.is_empty());
    }

    #[test]
    fn a_big_file_splits_by_records_each_chunk_with_the_header() {
        let text = csv(1_000);
        let budget = 4_000;
        let plan = split_import(&text, budget).unwrap_or_else(|e| panic!("{e}"));
        assert!(plan.chunks.len() > 5, "{}", plan.chunks.len());
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        let mut next_row = 2;
        let mut all = Vec::new();
        for c in &plan.chunks {
            assert!(json_len(&c.csv) <= budget);
            assert_eq!(c.first_row, next_row);
            let records = parse_records(&c.csv).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(records[0], ["number", "name", "city"]);
            next_row += records.len() - 1;
            all.extend(records.into_iter().skip(1));
        }
        // Every record once, in order, quoted fields intact.
        let whole = parse_records(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all, whole[1..]);
        assert_eq!(next_row, 1_002);
    }

    #[test]
    fn repeats_across_chunks_are_found_by_digits() {
        let mut text = csv(300);
        text.push_str("+1 (312) 555-0003,Again,Chicago\n"); // row 302 repeats row 5
        text.push_str("+13125550299,Twice,Chicago\n"); // row 303 repeats row 301, same chunk
        let plan = split_import(&text, 3_000).unwrap_or_else(|e| panic!("{e}"));
        assert!(plan.chunks.len() > 2);
        let last = plan.chunks.last().map_or(0, |c| c.first_row);
        assert!(last <= 301, "row 301 and 303 share the last chunk");
        assert_eq!(
            plan.errors,
            [RowError {
                row: 302,
                message: "number '+1 (312) 555-0003' repeats row 5".into()
            }]
        );
    }

    #[test]
    fn not_csv_and_oversized_rows_are_refused_with_their_row() {
        let mut text = csv(200);
        text.push_str("\"never closed,x,y\n");
        let e = split_import(&text, 2_000).err();
        assert_eq!(e.map(|e| e.row), Some(202));
        let mut text = csv(100);
        text.push_str(&format!("+13125559999,{},Chicago\n", "x".repeat(3_000)));
        let e = split_import(&text, 2_000).err();
        assert_eq!(e.map(|e| e.row), Some(102));
    }

    #[test]
    fn chunk_rows_map_to_file_rows() {
        let e = |row, message: &str| RowError {
            row,
            message: message.into(),
        };
        assert_eq!(
            file_row(e(2, "number '555': too short"), 1_001),
            e(1_001, "number '555': too short")
        );
        assert_eq!(
            file_row(e(9, "number '+13125550101' repeats row 3"), 1_001),
            e(1_008, "number '+13125550101' repeats row 1002")
        );
        assert_eq!(
            file_row(e(1, "no \"number\" column"), 1_001),
            e(1, "no \"number\" column")
        );
    }
}
