//! `gsmgate broadcast` (queue or preview a text to a segment; pause, resume or cancel one) and
//! `gsmgate broadcasts` (the list with progress and ETA, one broadcast's progress, the messages
//! left in doubt by a crash and their resolution).
//!
//! Layout, chosen so both `gsmgate broadcast "TEXT"` and `gsmgate broadcast pause 3` read
//! naturally: `broadcast` takes the text as its positional argument unless its first word is one
//! of the subcommands `pause`, `resume`, `cancel` (clap's `args_conflicts_with_subcommands`). A
//! text that is exactly one of those words is sent with `gsmgate broadcast -- pause`; a quoted
//! text of several words ("cancel the picnic?") is never mistaken for one. Looking at broadcasts
//! is the plural verb, `broadcasts`, whose default is the table.
//!
//! `--at` is read here, not in the daemon, because "18:30" means the caller's local time: RFC
//! 3339 is taken as is; `HH:MM` is today in the local zone, or tomorrow if that has passed;
//! `YYYY-MM-DD HH:MM` is local. The daemon gets RFC 3339 UTC. `--wait` polls
//! `broadcast_progress` once a second and draws a bar; Ctrl-C stops watching only, the
//! broadcast keeps going in the daemon (it is durably queued), and the verb says so.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::client::Connection;
use super::output::{dash, plural, print_json, print_table, show, table};
use super::runtime::{Outcome, block_on};
use crate::admin::Client;
use crate::admin::protocol::{
    BroadcastArgs, BroadcastItem, BroadcastResult, BroadcastsArgs, InDoubtItem, InDoubtResolution,
    InDoubtResolveArgs,
};
use crate::time::rfc3339;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BroadcastCli {
    #[command(subcommand)]
    pub action: Option<BroadcastAction>,
    #[command(flatten)]
    pub send: SendCli,
}

#[derive(Debug, Args)]
pub struct SendCli {
    /// Only members matching this filter (city=, region=, tag=, status=, joined>=DATE, joined by
    /// commas); default everyone. Only active members receive it.
    #[arg(long)]
    pub segment: Option<String>,
    /// Start at this time: RFC 3339, HH:MM (local, next occurrence) or "YYYY-MM-DD HH:MM" (local).
    /// With --local, HH:MM in each member's own time zone.
    #[arg(long)]
    pub at: Option<String>,
    /// --at HH:MM is the time where each member lives (their time zone, else
    /// [dispatch] default_time_zone): today there, or tomorrow when it has passed there.
    #[arg(long, requires = "at")]
    pub local: bool,
    /// Quiet hours do not hold this broadcast (this one only; urgent news).
    #[arg(long)]
    pub ignore_quiet_hours: bool,
    /// Show recipients, exclusions, encoding and SMS count; queue nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow the progress with a bar until the broadcast is done (Ctrl-C stops watching only).
    #[arg(long, conflicts_with = "dry_run")]
    pub wait: bool,
    /// The text; {name}, {first_name}, {city}, {org} and {contact} are filled in per member.
    #[arg(required = true)]
    pub text: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BroadcastAction {
    /// Hold a broadcast's queued messages until `resume`.
    Pause(IdCli),
    /// Continue a paused broadcast.
    Resume(IdCli),
    /// Cancel a broadcast's queued messages (those being sent finish).
    Cancel(IdCli),
}

#[derive(Debug, Args)]
pub struct IdCli {
    /// The broadcast id (see `gsmgate broadcasts`).
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct BroadcastsCli {
    #[command(subcommand)]
    pub action: Option<BroadcastsAction>,
    /// At most this many broadcasts, newest first (default 20).
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum BroadcastsAction {
    /// One broadcast's progress; --wait follows it with a bar.
    Progress(ProgressCli),
    /// Messages whose send was in flight when the daemon stopped uncleanly.
    InDoubt,
    /// Resend or drop one in-doubt message.
    Resolve(ResolveCli),
}

#[derive(Debug, Args)]
pub struct ProgressCli {
    pub id: i64,
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("resolution").required(true).args(["resend", "drop"])))]
pub struct ResolveCli {
    /// The message id (from `gsmgate broadcasts in-doubt`).
    pub id: i64,
    /// Send it again (the recipient may get it twice).
    #[arg(long)]
    pub resend: bool,
    /// Give it up (the recipient may not have got it).
    #[arg(long)]
    pub drop: bool,
}

pub fn run(cmd: BroadcastCli, conn: Connection) -> ExitCode {
    block_on(run_broadcast(cmd, conn))
}

pub fn run_list(cmd: BroadcastsCli, conn: Connection) -> ExitCode {
    block_on(run_broadcasts(cmd, conn))
}

/// Reads `--at` in the local zone `now` is in; returns the instant.
pub fn parse_at(input: &str, now: &jiff::ZonedDateTime) -> anyhow::Result<jiff::Timestamp> {
    let s = input.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    let local = |dt: jiff::civil::DateTime| -> anyhow::Result<jiff::Timestamp> {
        Ok(dt.to_zoned_datetime(now.time_zone().clone())?.timestamp())
    };
    if let Ok(t) = s.parse::<jiff::civil::Time>()
        && s.len() <= 8
    {
        let today = now.date().to_datetime(t);
        let at = local(today)?;
        if at > now.timestamp() {
            return Ok(at);
        }
        return local(now.date().tomorrow()?.to_datetime(t));
    }
    if let Ok(dt) = s.replace(' ', "T").parse::<jiff::civil::DateTime>() {
        return local(dt);
    }
    bail!(
        "--at {input:?}: expected HH:MM (local), \"YYYY-MM-DD HH:MM\" (local) or an RFC 3339 time \
         such as 2026-03-01T18:00:00Z"
    )
}

async fn run_broadcast(cmd: BroadcastCli, conn: Connection) -> anyhow::Result<Outcome> {
    if let Some(action) = cmd.action {
        let mut client = conn.connect().await?;
        let (b, verb) = match action {
            BroadcastAction::Pause(i) => (client.broadcast_pause(i.id).await?, "paused"),
            BroadcastAction::Resume(i) => (client.broadcast_resume(i.id).await?, "resumed"),
            BroadcastAction::Cancel(i) => (client.broadcast_cancel(i.id).await?, "cancelled"),
        };
        return show(conn.json, &b, |b| {
            println!("broadcast {} {verb}: {}", b.id, counts(b));
        });
    }
    let send = cmd.send;
    let Some(text) = send.text else {
        bail!("the broadcast needs a text");
    };
    // On the wire in the crate's one RFC 3339 form; the daemon keeps milliseconds, so nothing
    // finer is lost.
    let at = match &send.at {
        // A time of day in each member's zone: the daemon resolves it per member.
        Some(a) if send.local => Some(a.trim().to_string()),
        Some(a) => Some(rfc3339(
            parse_at(a, &jiff::ZonedDateTime::now())?.as_millisecond(),
        )),
        None => None,
    };
    let mut client = conn.connect().await?;
    let r = client
        .broadcast(BroadcastArgs {
            text,
            segment: send.segment,
            at,
            dry_run: send.dry_run,
            local: send.local,
            quiet_hours: send.ignore_quiet_hours.then_some(false),
        })
        .await?;
    if conn.json && !send.wait {
        print_json(&r)?;
        return Ok(Outcome::Ok);
    }
    if !conn.json {
        print_preview(&r);
    }
    let Some(id) = r.id else {
        println!("dry run: nothing was queued");
        return Ok(Outcome::Ok);
    };
    if !conn.json {
        match &r.scheduled_at {
            Some(t) => println!("queued broadcast {id}, starting {t}"),
            None => println!("queued broadcast {id}"),
        }
    }
    if send.wait {
        return follow(&mut client, id, conn.json).await;
    }
    Ok(Outcome::Ok)
}

/// Who the broadcast reaches and what it costs: printed for a dry run and before queueing.
fn print_preview(r: &BroadcastResult) {
    println!(
        "segment {}: {} member{}, {} recipient{}",
        r.segment,
        r.matched,
        plural(r.matched as u64),
        r.recipients,
        plural(r.recipients as u64)
    );
    if r.excluded.opted_out + r.excluded.not_confirmed > 0 {
        println!(
            "excluded: {} opted out, {} not confirmed yet",
            r.excluded.opted_out, r.excluded.not_confirmed
        );
    }
    if r.quiet_now > 0 {
        println!(
            "quiet hours now for {} recipient{} (their copies wait until quiet hours end \
             where they live)",
            r.quiet_now,
            plural(r.quiet_now as u64)
        );
    }
    let parts = if r.sms.min_parts == r.sms.max_parts {
        format!(
            "{} part{} per message",
            r.sms.max_parts,
            plural(r.sms.max_parts as u64)
        )
    } else {
        format!("{}–{} parts per message", r.sms.min_parts, r.sms.max_parts)
    };
    let encoding = match r.sms.encoding.as_str() {
        "gsm7" => "GSM-7".to_string(),
        "ucs2" => "UCS-2".to_string(),
        _ => format!("{} GSM-7 and {} UCS-2 copies", r.sms.gsm7, r.sms.ucs2),
    };
    println!(
        "encoding {encoding}, {parts}, {} SMS in total",
        r.sms.total_sms
    );
    println!("example: {}", r.example);
    if let (Some(first), Some(last)) = (&r.first_at, &r.last_at) {
        println!("first copy {first}, last copy about {last}");
    } else if let Some(first) = &r.first_at {
        println!("first copy {first}; the last cannot be estimated (no modem ready for some)");
    }
}

async fn run_broadcasts(cmd: BroadcastsCli, conn: Connection) -> anyhow::Result<Outcome> {
    let mut client = conn.connect().await?;
    let json = conn.json;
    match cmd.action {
        None => {
            let args = BroadcastsArgs { limit: cmd.limit };
            show(json, &client.broadcasts(args).await?, |l| {
                print_broadcasts(l)
            })
        }
        Some(BroadcastsAction::Progress(p)) if p.wait => follow(&mut client, p.id, json).await,
        Some(BroadcastsAction::Progress(p)) => {
            show(json, &client.broadcast_progress(p.id).await?, |b| {
                println!("broadcast {} {}: {}", b.id, b.state, counts(b));
            })
        }
        Some(BroadcastsAction::InDoubt) => {
            show(json, &client.in_doubt().await?, |i| print_in_doubt(i))
        }
        Some(BroadcastsAction::Resolve(r)) => {
            let action = if r.resend {
                InDoubtResolution::Resend
            } else {
                InDoubtResolution::Drop
            };
            let args = InDoubtResolveArgs {
                message: r.id,
                action,
            };
            show(json, &client.in_doubt_resolve(args).await?, |done| {
                println!("message {} is now {}", done.id, done.state);
            })
        }
    }
}

fn print_broadcasts(list: &[BroadcastItem]) {
    let mut t = table(&[
        "id",
        "created",
        "state",
        "total",
        "sent",
        "delivered",
        "failed",
        "queued",
        "in doubt",
        "eta",
        "segment",
    ]);
    for b in list {
        t.add_row(vec![
            b.id.to_string(),
            short_time(&b.created_at),
            b.state.clone(),
            b.total.to_string(),
            (b.sent + b.delivered).to_string(),
            b.delivered.to_string(),
            (b.failed + b.expired).to_string(),
            (b.queued + b.sending).to_string(),
            b.in_doubt.to_string(),
            b.eta.as_deref().map_or_else(|| "-".to_string(), short_time),
            b.segment.clone(),
        ]);
    }
    print_table(&t);
    for b in list {
        for line in held_lines(b) {
            println!("broadcast {}: {line}", b.id);
        }
    }
    let doubt: u64 = list.iter().map(|b| b.in_doubt).sum();
    if doubt > 0 {
        println!(
            "{doubt} message{} in doubt after a crash: see `gsmgate broadcasts in-doubt`",
            plural(doubt)
        );
    }
}

fn print_in_doubt(items: &[InDoubtItem]) {
    if items.is_empty() {
        println!("no message is in doubt");
        return;
    }
    let mut t = table(&["id", "to", "kind", "broadcast", "modem", "claimed", "text"]);
    for d in items {
        t.add_row(vec![
            d.id.to_string(),
            d.to.clone(),
            d.kind.clone(),
            d.broadcast_id
                .map_or_else(|| "-".to_string(), |b| b.to_string()),
            dash(d.modem.as_deref()),
            d.claimed_at
                .as_deref()
                .map_or_else(|| "-".into(), short_time),
            truncate(&d.text, 40),
        ]);
    }
    print_table(&t);
    // What is known per row (submit, expected reference) is a sentence, not a column.
    for d in items.iter().filter(|d| !d.known.is_empty()) {
        println!("{}: {}", d.id, d.known);
    }
    println!("resolve each with `gsmgate broadcasts resolve ID --resend` or `--drop`");
}

fn counts(b: &BroadcastItem) -> String {
    let mut s = format!(
        "{} sent ({} delivered), {} failed, {} queued, {} sending",
        b.sent + b.delivered,
        b.delivered,
        b.failed + b.expired,
        b.queued,
        b.sending
    );
    if b.cancelled > 0 {
        s.push_str(&format!(", {} cancelled", b.cancelled));
    }
    if b.in_doubt > 0 {
        s.push_str(&format!(", {} in doubt", b.in_doubt));
    }
    if let Some(eta) = &b.eta {
        s.push_str(&format!(", done by about {}", short_time(eta)));
    }
    s
}

/// What holds the broadcast's queued copies, one line per reason ("3 held: quiet hours in UTC
/// until 08:00 local"); a rate limit also gives the ETA, since that is when the wait ends.
fn held_lines(b: &BroadcastItem) -> Vec<String> {
    b.held
        .iter()
        .map(|h| {
            let mut line = format!("{} held: {}", h.count, h.detail);
            if h.reason == "rate_limit"
                && let Some(eta) = &b.eta
            {
                line.push_str(&format!("; all sent by about {}", short_time(eta)));
            }
            line
        })
        .collect()
}

/// Messages that will not change any more (the bar's position).
fn finished(b: &BroadcastItem) -> u64 {
    b.sent + b.delivered + b.failed + b.expired + b.cancelled
}

/// Whether watching can stop: the broadcast ended, or only in-doubt rows (which need a person)
/// are left.
fn settled(b: &BroadcastItem) -> bool {
    matches!(b.state.as_str(), "done" | "cancelled")
        || (b.queued + b.sending == 0 && b.in_doubt > 0)
}

async fn follow(client: &mut Client, id: i64, json: bool) -> anyhow::Result<Outcome> {
    let first = client.broadcast_progress(id).await?;
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(first.total)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut last = first;
    let mut said: Vec<String> = Vec::new();
    loop {
        bar.set_length(last.total);
        bar.set_position(finished(&last));
        bar.set_message(format!("{} · {}", last.state, counts(&last)));
        // Whatever holds copies is said once when it starts (and again when the set of reasons
        // changes, not at every new slot), above the bar on a terminal and as plain lines
        // otherwise: a broadcast never waits in silence.
        let lines = held_lines(&last);
        let reasons: Vec<String> = last
            .held
            .iter()
            .map(|h| format!("{} {:?} {:?}", h.reason, h.modem, h.zone))
            .collect();
        if !json && reasons != said {
            for line in &lines {
                if bar.is_hidden() {
                    println!("{line}");
                } else {
                    bar.println(line);
                }
            }
            said = reasons;
        }
        if settled(&last) {
            break;
        }
        tokio::select! {
            _ = &mut ctrl_c => {
                bar.abandon();
                eprintln!(
                    "stopped watching; broadcast {id} keeps running in the daemon \
                     (`gsmgate broadcasts progress {id} --wait` to follow it again)"
                );
                return Ok(Outcome::Ok);
            }
            _ = ticker.tick() => {
                last = client.broadcast_progress(id).await?;
            }
        }
    }
    bar.finish();
    if json {
        print_json(&last)?;
        return Ok(Outcome::Ok);
    }
    println!("broadcast {id} {}: {}", last.state, counts(&last));
    if last.in_doubt > 0 {
        println!(
            "{} message{} in doubt: see `gsmgate broadcasts in-doubt`",
            last.in_doubt,
            plural(last.in_doubt)
        );
    }
    Ok(Outcome::Ok)
}

/// `2026-03-02T17:00:00Z` → `2026-03-02 17:00Z`, the table's width.
fn short_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(d), Some(t)) => format!("{d} {t}Z"),
        _ => rfc3339.to_string(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or(s)),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chicago(s: &str) -> jiff::ZonedDateTime {
        s.parse::<jiff::civil::DateTime>()
            .and_then(|dt| dt.in_tz("America/Chicago"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn at_hh_mm_is_the_next_local_occurrence() {
        let now = chicago("2026-03-02T11:00");
        let at = |s: &str| parse_at(s, &now).map(|t| t.to_string()).ok();
        assert_eq!(at("18:30").as_deref(), Some("2026-03-03T00:30:00Z"));
        // 09:00 has passed: tomorrow.
        assert_eq!(at("09:00").as_deref(), Some("2026-03-03T15:00:00Z"));
        assert_eq!(
            at("2026-03-05 08:00").as_deref(),
            Some("2026-03-05T14:00:00Z")
        );
        assert_eq!(
            at("2026-03-05T08:00:00Z").as_deref(),
            Some("2026-03-05T08:00:00Z")
        );
        assert!(parse_at("tomorrow", &now).is_err());
        assert!(parse_at("25:00", &now).is_err());
    }

    #[test]
    fn settled_when_done_cancelled_or_only_in_doubt_left() {
        let mut b = BroadcastItem {
            id: 1,
            created_at: String::new(),
            scheduled_at: None,
            state: "running".into(),
            segment: "*".into(),
            template: "t".into(),
            total: 3,
            queued: 1,
            sending: 0,
            sent: 2,
            delivered: 0,
            failed: 0,
            expired: 0,
            cancelled: 0,
            in_doubt: 0,
            eta: None,
            held: vec![],
        };
        assert!(!settled(&b));
        b.queued = 0;
        b.in_doubt = 1;
        assert!(settled(&b));
        b.in_doubt = 0;
        b.state = "done".into();
        assert!(settled(&b));
        assert_eq!(finished(&b), 2);
    }

    #[test]
    fn short_times_and_truncation() {
        assert_eq!(short_time("2026-03-02T17:00:00Z"), "2026-03-02 17:00Z");
        assert_eq!(short_time("x"), "x");
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 2), "hi");
    }
}
