//! The community admin commands as plain functions: members (list, add, remove, tag, import,
//! export), broadcasts (preview, queue, list, progress, pause, resume, cancel) and the in-doubt
//! rows a crash left behind. Each admin command is exactly one function here, taking
//! `(&Store, &Config, &Args, now_ms)` and returning the command's reply data or a
//! [`ServiceError`], so the daemon's handler arm is one line and the whole behaviour is tested on
//! a temporary [`Store`] without a socket (tests/community_service.rs).
//!
//! Unlike the rest of `community` this file does I/O: it reads and writes through `store` (the
//! layers below it) and calls the pure cores (`community`, `dispatch`) for every decision. It
//! must not know about sockets, tokio or modems: the daemon runs these functions on its blocking
//! pool and wakes the dispatch runner after a broadcast is queued. The argument and reply types
//! here are the wire types of these commands; `admin::protocol` re-exports them, so changing one
//! is a protocol change (docs/admin-protocol.md). Times on the wire are RFC 3339 UTC strings;
//! `now` and the store speak unix milliseconds, [`MemberView`] and [`Segment`] unix seconds.
//!
//! Choices worth knowing:
//! - Default region for numbers written without a country code: the region of the first
//!   configured modem whose `number` (the SIM's own number) is valid, else `US`. The config has
//!   no key for it, and a gateway's SIMs are where its members live.
//! - Members added by the CLI or imported are `active` (the leader vouches for their consent;
//!   the consent log records `cli`/`import` as the source). A suppressed number stays
//!   `opted_out`: the store enforces that, only a texted START lifts it.
//! - Home modems are balanced over the enabled modems with [`assign_homes`] (no geomatch),
//!   given how many members each modem already has (`Store::home_modem_counts`, one `GROUP BY`).
//!   A broadcast copy carries its member's home modem as `modem_pref` (sticky sender).
//! - A broadcast is streamed, never materialised: one cursor over the segment, each member
//!   decided, rendered, counted for the preview and inserted before the next is read, all in
//!   one transaction (`Store::create_broadcast_streamed`). A 100,000-member broadcast thus
//!   needs about the memory of a 100-member one (figures in docs/benchmarks.md).
//! - Every bad import row is reported, including numbers that are already members (checked
//!   here, before the store's all-or-nothing insert, which names only the first conflict).
//! - A broadcast goes only to members a bulk message may reach ([`may_send`] with the
//!   suppression list), whatever the segment says. Quiet hours do not exclude anyone: such
//!   recipients are counted (`quiet_now`) and dispatch holds their copies until morning.
//! - `expires_at` counts the bulk TTL from the broadcast's start (`--at`), not from when it was
//!   queued, so a broadcast scheduled for tomorrow is not born expired.
//! - The ETA is `dispatch::estimate` over this broadcast's queued rows alone, with every enabled
//!   modem assumed ready and [`ETA_PART_LATENCY_MS`] per part: a lower bound, as the estimate
//!   documents; other broadcasts competing for the same modems are not counted.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::CommunityError;
use super::broadcast::{BroadcastOptions, PreviewTally, check_template, render_for};
use super::csv::{ImportRow, RowError, export_members, parse_import, parse_records};
use super::decide::{MessageKind, Standing, may_send};
use super::member::{
    MemberStatus, MemberView, clean_field, normalise_number, normalise_tags, parse_region,
};
use super::segment::Segment;
use super::tz;
use crate::config::Config;
use crate::dispatch::{
    self, CountAt, DAY, EtaGroup, EtaModem, EtaRequest, HomeCandidate, Millis, QuietOverride,
    QuietPolicy, RateLimiter, Ttl, Window, assign_homes,
};
use crate::pdu::plan;
use crate::store::{
    self, BroadcastRow, BroadcastState, ConsentSource, Member, MemberUpdate, NewMember, NewOutbox,
    OutboxRow, OutboxState, StateCounts, Store, StoreError,
};

/// Members per page when `members_list` gives no limit.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// Largest `members_list` page.
pub const MAX_LIST_LIMIT: u32 = 10_000;
/// Broadcasts listed when `broadcasts` gives no limit.
pub const DEFAULT_BROADCASTS_LIMIT: u32 = 20;
/// Time one SMS part is assumed to take in the ETA (`AT+CMGS` to `+CMGS:`; typical 2–4 s).
pub const ETA_PART_LATENCY_MS: Millis = 3_000;
/// Default region when no modem number tells one.
pub const FALLBACK_REGION: &str = "US";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a community command failed. `admin::service_errors` maps each variant to an admin error
/// code: `InvalidNumber` → `invalid_number`, `Invalid` → `invalid_request`, `NotFound` →
/// `not_found`, `Conflict` → `conflict`, `Store` → `internal`.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A phone number that cannot be understood.
    #[error("number {input:?}: {reason}")]
    InvalidNumber { input: String, reason: String },
    /// A bad argument: segment, template, tag, time zone, time, empty recipient list.
    #[error("{0}")]
    Invalid(String),
    /// A named member, broadcast or outbox row does not exist.
    #[error("{what} {key} not found")]
    NotFound { what: &'static str, key: String },
    /// The thing exists but is in the wrong state: member already exists, broadcast already done.
    #[error("{0}")]
    Conflict(String),
    /// The database failed; details belong in the daemon log.
    #[error("database: {0}")]
    Store(StoreError),
}

impl From<CommunityError> for ServiceError {
    fn from(e: CommunityError) -> Self {
        match e {
            CommunityError::InvalidNumber { input, reason } => {
                ServiceError::InvalidNumber { input, reason }
            }
            other => ServiceError::Invalid(other.to_string()),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, key } => ServiceError::NotFound { what, key },
            StoreError::DuplicateMember { number } => {
                ServiceError::Conflict(format!("{number} is already a member"))
            }
            StoreError::InvalidTransition { id, from, action } => {
                ServiceError::Conflict(match from.strip_prefix("broadcast ") {
                    Some(state) => format!("broadcast {id} is {state}, cannot {action} it"),
                    None => format!("message {id} is {from}, cannot {action} it"),
                })
            }
            other => ServiceError::Store(other),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------------
// Wire types: arguments
// ---------------------------------------------------------------------------------------------

/// Optional boolean members may be `null` as well as absent; both mean `false`.
fn null_as_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// An optional list may be `null` as well as absent; both mean empty.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `members_list`: members matching a segment, by join time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersListArgs {
    /// A `--segment` filter (docs/community.md); absent = everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Page size, default [`DEFAULT_LIST_LIMIT`], at most [`MAX_LIST_LIMIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// `members_add`: one member, added as active.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberAddArgs {
    /// Any form the default region reads (`(312) 555-0101`), or international.
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub tags: Vec<String>,
    /// An IANA zone; absent = derived from the number and city.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// `members_remove`: one member by number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRemoveArgs {
    pub number: String,
}

/// `members_tag`: add tags to a member, or remove them with `remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberTagArgs {
    pub number: String,
    pub tags: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub remove: bool,
}

/// `members_import`: CSV text (the file's content, read by the client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersImportArgs {
    pub csv: String,
    /// Check every row, import nothing.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub dry_run: bool,
}

/// `members_export`: CSV of the members matching a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersExportArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
}

/// `broadcast`: preview (`dry_run`) or queue a text to a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastArgs {
    /// The template; may use `{name}`, `{first_name}`, `{city}`, `{org}`, `{contact}`.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Start time, RFC 3339 (`2026-03-01T18:00:00Z`); absent = now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub dry_run: bool,
}

/// `broadcasts`: the latest broadcasts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastsArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `broadcast_progress`, `broadcast_pause`, `broadcast_resume`, `broadcast_cancel`. The member
/// is `broadcast`, not `id`: `id` is the request envelope's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastIdArgs {
    pub broadcast: i64,
}

/// What to do with a message whose send was in flight at a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InDoubtResolution {
    /// Queue it again (the recipient may get it twice).
    Resend,
    /// Cancel it (the recipient may not have got it).
    Drop,
}

/// `in_doubt_resolve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InDoubtResolveArgs {
    /// The message's outbox id (`id` in `in_doubt`).
    pub message: i64,
    pub action: InDoubtResolution,
}

// ---------------------------------------------------------------------------------------------
// Wire types: replies
// ---------------------------------------------------------------------------------------------

/// One member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberItem {
    pub number: String,
    pub name: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    /// IANA zone; `null` = the configured default zone applies.
    pub time_zone: Option<String>,
    pub tags: Vec<String>,
    /// `active`, `pending_confirmation` or `opted_out`.
    pub status: String,
    pub home_modem: Option<String>,
    /// RFC 3339 UTC.
    pub joined_at: String,
}

/// `members_list` → a page and the segment's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersPage {
    /// Members matching the segment (all pages).
    pub total: u64,
    pub members: Vec<MemberItem>,
}

/// `members_remove` → the number removed (normalised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRemoved {
    pub number: String,
}

/// `members_import` → what was imported, or every bad row (then nothing was imported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportResult {
    pub dry_run: bool,
    /// Rows stored (0 on a dry run or when any row is bad).
    pub imported: usize,
    /// Rows that are (or would be) stored `opted_out` because the number texted STOP.
    pub suppressed: usize,
    /// Valid rows in the file.
    pub valid: usize,
    /// Every bad row, spreadsheet-numbered (header = row 1). Non-empty = nothing imported.
    pub errors: Vec<RowError>,
}

/// `members_export` → CSV in the import format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportData {
    pub count: usize,
    pub csv: String,
}

/// Why members of the segment do not get a broadcast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusions {
    /// Texted STOP (status `opted_out` or on the suppression list).
    pub opted_out: usize,
    /// Not confirmed yet (`pending_confirmation`).
    pub not_confirmed: usize,
}

/// The SMS cost of a broadcast, counted with the modems' own segmentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodingSummary {
    /// `gsm7`, `ucs2`, or `mixed` when names make some copies UCS-2.
    pub encoding: String,
    pub gsm7: usize,
    pub ucs2: usize,
    /// Fewest and most parts of one copy.
    pub min_parts: usize,
    pub max_parts: usize,
    /// SMS over all recipients.
    pub total_sms: usize,
}

/// `broadcast` → what was (or, on a dry run, would be) queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastResult {
    /// The new broadcast; `null` on a dry run.
    pub id: Option<i64>,
    pub dry_run: bool,
    /// Canonical segment (`*` = everyone).
    pub segment: String,
    /// RFC 3339 UTC start, when scheduled.
    pub scheduled_at: Option<String>,
    /// Members in the segment.
    pub matched: usize,
    /// Members who get a copy.
    pub recipients: usize,
    pub excluded: Exclusions,
    /// Recipients inside quiet hours in their own zone right now; queued all the same, their
    /// copies wait until quiet hours end there.
    pub quiet_now: usize,
    pub sms: EncodingSummary,
    /// The first recipient's text (or the template with the fallback name).
    pub example: String,
}

/// One broadcast and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastItem {
    pub id: i64,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub scheduled_at: Option<String>,
    /// `scheduled`, `running`, `paused`, `cancelled`, `done`.
    pub state: String,
    pub segment: String,
    pub template: String,
    /// Recipient rows.
    pub total: u64,
    pub queued: u64,
    /// Claimed by a modem, being sent.
    pub sending: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub expired: u64,
    pub cancelled: u64,
    /// In flight at a crash; see `in_doubt`.
    pub in_doubt: u64,
    /// RFC 3339 UTC estimate of the last send (lower bound); `null` when nothing is left, the
    /// broadcast is paused, or it cannot finish (no modem ready for some recipients).
    pub eta: Option<String>,
}

/// One outbox row left in doubt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InDoubtItem {
    pub id: i64,
    pub to: String,
    /// `reply`, `compliance`, `direct`, `bulk`.
    pub kind: String,
    pub broadcast_id: Option<i64>,
    pub text: String,
    /// Modem it was in flight on.
    pub modem: Option<String>,
    /// RFC 3339 UTC, when it was claimed.
    pub claimed_at: Option<String>,
    pub reason: Option<String>,
}

/// `in_doubt_resolve` → the row's new state (`queued` or `cancelled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InDoubtResolved {
    pub id: i64,
    pub state: String,
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

/// RFC 3339 UTC for unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// A stored member as the community rules see it (`joined_at` ms → s).
pub fn member_view(m: &Member) -> MemberView {
    MemberView {
        number: m.number.clone(),
        name: m.name.clone(),
        city: m.city.clone(),
        region: m.region.clone(),
        time_zone: m.time_zone.clone(),
        tags: m.tags.clone(),
        status: m.status,
        onboarding_step: m.onboarding_step.clone(),
        joined_at: m.joined_at.div_euclid(1000),
    }
}

/// The store's filter for a parsed segment. Same fields; `joined` bounds go from seconds to the
/// store's milliseconds. City and region compare with SQLite's `NOCASE` (ASCII case folding),
/// where [`Segment::matches`] folds all of Unicode: `city=ÉVRY` finds `Évry` only in a dry run.
pub fn store_segment(seg: &Segment) -> store::Segment {
    store::Segment {
        city: seg.city.as_ref().map(|c| c.trim().to_string()),
        region: seg.region.as_ref().map(|r| r.trim().to_string()),
        tags: seg.tags.clone(),
        status: seg.status,
        joined_since: seg.joined_since.map(|s| s.saturating_mul(1000)),
        joined_before: seg.joined_before.map(|s| s.saturating_mul(1000)),
    }
}

fn member_item(m: &Member) -> MemberItem {
    MemberItem {
        number: m.number.clone(),
        name: m.name.clone(),
        city: m.city.clone(),
        region: m.region.clone(),
        time_zone: m.time_zone.clone(),
        tags: m.tags.clone(),
        status: m.status.as_str().to_string(),
        home_modem: m.home_modem.clone(),
        joined_at: rfc3339(m.joined_at),
    }
}

fn parse_segment(input: Option<&str>) -> Result<Segment> {
    match input {
        None => Ok(Segment::all()),
        Some(s) => Ok(Segment::parse(s)?),
    }
}

/// The region numbers without a country code are read in (see the module doc).
pub fn default_region(cfg: &Config) -> String {
    cfg.modems
        .iter()
        .filter_map(|m| m.number.as_deref())
        .find_map(|n| normalise_number(n, None).ok().and_then(|e| e.region))
        .unwrap_or_else(|| FALLBACK_REGION.to_string())
}

fn normalise(cfg: &Config, number: &str) -> Result<String> {
    let region = default_region(cfg);
    // The region comes from a valid number or the constant; it always parses, but a failure
    // must still not lose the number: fall back to international forms only.
    let region = parse_region(&region).ok().map(|_| region);
    Ok(normalise_number(number, region.as_deref())?.number)
}

/// Home modems for `numbers`, balanced over the enabled modems given the members they have.
fn assign(store: &Store, cfg: &Config, numbers: &[&str]) -> Result<Vec<Option<String>>> {
    let counts: HashMap<String, u64> = store.home_modem_counts()?.into_iter().collect();
    let mut candidates: Vec<HomeCandidate> = cfg
        .modems
        .iter()
        .map(|m| HomeCandidate {
            number: m.number.clone(),
            eligible: m.enabled,
            members: counts.get(&m.name).copied().unwrap_or(0),
        })
        .collect();
    Ok(assign_homes(numbers, &mut candidates, false)
        .into_iter()
        .map(|i| i.and_then(|i| cfg.modems.get(i)).map(|m| m.name.clone()))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

/// `members_list`.
pub fn members_list(
    store: &Store,
    _cfg: &Config,
    args: &MembersListArgs,
    _now: i64,
) -> Result<MembersPage> {
    let seg = store_segment(&parse_segment(args.segment.as_deref())?);
    let limit = args.limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT);
    let members = store.list_members(&seg, limit, args.offset.unwrap_or(0))?;
    Ok(MembersPage {
        total: store.count_members(&seg)?,
        members: members.iter().map(member_item).collect(),
    })
}

fn valid_zone(zone: Option<&str>) -> Result<Option<String>> {
    match zone.map(str::trim).filter(|z| !z.is_empty()) {
        None => Ok(None),
        Some(z) if tz::is_known_zone(z) => Ok(Some(z.to_string())),
        Some(z) => Err(CommunityError::InvalidTimeZone {
            input: z.to_string(),
        }
        .into()),
    }
}

/// `members_add`: normalises the number, derives the time zone, picks a home modem and stores
/// the member as active with a `joined` consent event from the CLI.
pub fn members_add(
    store: &Store,
    cfg: &Config,
    args: &MemberAddArgs,
    now: i64,
) -> Result<MemberItem> {
    let region = default_region(cfg);
    let e164 = normalise_number(&args.number, Some(&region))?;
    let city = args.city.as_deref().and_then(clean_field);
    let tags = normalise_tags(args.tags.iter().map(String::as_str))?;
    let time_zone = match valid_zone(args.time_zone.as_deref())? {
        Some(z) => Some(z),
        None => tz::zone_for_number(&e164, city.as_deref()).map(str::to_string),
    };
    if store.member(&e164.number)?.is_some() {
        return Err(ServiceError::Conflict(format!(
            "{} is already a member",
            e164.number
        )));
    }
    let home = assign(store, cfg, &[e164.number.as_str()])?
        .into_iter()
        .next()
        .flatten();
    let new = NewMember {
        number: e164.number,
        name: args.name.as_deref().and_then(clean_field),
        city,
        region: args.region.as_deref().and_then(clean_field),
        time_zone,
        tags,
        status: Some(MemberStatus::Active),
        home_modem: home,
        onboarding_step: None,
        joined_at: now,
    };
    let m = store.add_member(&new, ConsentSource::Cli, now)?;
    Ok(member_item(&m))
}

/// `members_remove`: the member row goes (a suppression stays).
pub fn members_remove(
    store: &Store,
    cfg: &Config,
    args: &MemberRemoveArgs,
    now: i64,
) -> Result<MemberRemoved> {
    let number = normalise(cfg, &args.number)?;
    if store.remove_member(&number, ConsentSource::Cli, now)? {
        Ok(MemberRemoved { number })
    } else {
        Err(ServiceError::NotFound {
            what: "member",
            key: number,
        })
    }
}

/// `members_tag`: adds (or with `remove`, removes) tags; returns the member afterwards.
pub fn members_tag(
    store: &Store,
    cfg: &Config,
    args: &MemberTagArgs,
    now: i64,
) -> Result<MemberItem> {
    let number = normalise(cfg, &args.number)?;
    let given = normalise_tags(args.tags.iter().map(String::as_str))?;
    if given.is_empty() {
        return Err(ServiceError::Invalid("no tag given".into()));
    }
    let member = store
        .member(&number)?
        .ok_or_else(|| ServiceError::NotFound {
            what: "member",
            key: number.clone(),
        })?;
    let mut tags: Vec<String> = member.tags.iter().map(|t| t.to_lowercase()).collect();
    if args.remove {
        tags.retain(|t| !given.contains(t));
    } else {
        tags.extend(given);
    }
    tags.sort();
    tags.dedup();
    let update = MemberUpdate {
        tags: Some(tags),
        ..MemberUpdate::default()
    };
    Ok(member_item(&store.update_member(&number, &update, now)?))
}

/// `members_import`: every row valid and new, or nothing is stored and every bad row is
/// reported. Numbers already in the store are bad rows too.
pub fn members_import(
    store: &Store,
    cfg: &Config,
    args: &MembersImportArgs,
    now: i64,
) -> Result<ImportResult> {
    let region = default_region(cfg);
    let refused = |errors: Vec<RowError>| ImportResult {
        dry_run: args.dry_run,
        imported: 0,
        suppressed: 0,
        valid: 0,
        errors,
    };
    let rows: Vec<ImportRow> = match parse_import(&args.csv, Some(&region)) {
        Ok(rows) => rows,
        Err(CommunityError::Import(mut errors)) => {
            // Report the rows that are already members too, so one round shows every problem.
            errors.extend(existing_rows(store, &args.csv, &region, &errors)?);
            errors.sort_by_key(|e| e.row);
            return Ok(refused(errors));
        }
        Err(CommunityError::Csv { line, reason }) => {
            return Ok(refused(vec![RowError {
                row: line,
                message: format!("line {line}: {reason}"),
            }]));
        }
        Err(other) => return Err(other.into()),
    };
    let mut errors = Vec::new();
    let mut suppressed = 0;
    for r in &rows {
        if store.member(&r.number)?.is_some() {
            errors.push(RowError {
                row: r.row,
                message: format!("number '{}' is already a member", r.number),
            });
        } else if store.opted_out(&r.number)? {
            suppressed += 1;
        }
    }
    if !errors.is_empty() {
        return Ok(refused(errors));
    }
    if args.dry_run {
        return Ok(ImportResult {
            dry_run: true,
            imported: 0,
            suppressed,
            valid: rows.len(),
            errors,
        });
    }
    let numbers: Vec<&str> = rows.iter().map(|r| r.number.as_str()).collect();
    let homes = assign(store, cfg, &numbers)?;
    let new: Vec<NewMember> = rows
        .iter()
        .zip(homes)
        .map(|(r, home)| NewMember {
            number: r.number.clone(),
            name: r.name.clone(),
            city: r.city.clone(),
            region: r.region.clone(),
            time_zone: r.time_zone.clone(),
            tags: r.tags.clone(),
            status: Some(MemberStatus::Active),
            home_modem: home,
            onboarding_step: None,
            joined_at: now,
        })
        .collect();
    match store.import_members(&new, now) {
        Ok(report) => Ok(ImportResult {
            dry_run: false,
            imported: report.inserted,
            suppressed: report.suppressed,
            valid: rows.len(),
            errors: Vec::new(),
        }),
        // A member added between the check and the insert: still all or nothing, reported as
        // the row it came from.
        Err(StoreError::ImportConflict { index, reason, .. }) => {
            let row = rows.get(index).map_or(index + 2, |r| r.row);
            Ok(refused(vec![RowError {
                row,
                message: reason,
            }]))
        }
        Err(e) => Err(e.into()),
    }
}

/// Rows of a CSV whose number is valid, not already reported, and already a member.
fn existing_rows(
    store: &Store,
    csv: &str,
    region: &str,
    reported: &[RowError],
) -> Result<Vec<RowError>> {
    let Ok(records) = parse_records(csv) else {
        return Ok(Vec::new());
    };
    let mut records = records.into_iter();
    let Some(col) = records.next().and_then(|header| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case("number"))
    }) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, record) in records.enumerate() {
        let row = i + 2;
        if reported.iter().any(|e| e.row == row) {
            continue;
        }
        let Some(Ok(n)) = record
            .get(col)
            .map(|raw| normalise_number(raw, Some(region)))
        else {
            continue;
        };
        if store.member(&n.number)?.is_some() {
            out.push(RowError {
                row,
                message: format!("number '{}' is already a member", n.number),
            });
        }
    }
    Ok(out)
}

/// `members_export`: the segment's members as CSV (import format).
pub fn members_export(
    store: &Store,
    _cfg: &Config,
    args: &MembersExportArgs,
    _now: i64,
) -> Result<ExportData> {
    let seg = store_segment(&parse_segment(args.segment.as_deref())?);
    // The reply carries the whole CSV anyway; one cursor at least reads each member once.
    let mut views: Vec<MemberView> = Vec::new();
    store.for_each_member(&seg, |m, _| views.push(member_view(m)))?;
    Ok(ExportData {
        count: views.len(),
        csv: export_members(&views),
    })
}

// ---------------------------------------------------------------------------------------------
// Broadcasts
// ---------------------------------------------------------------------------------------------

fn parse_at(at: Option<&str>) -> Result<Option<i64>> {
    let Some(raw) = at.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    raw.parse::<jiff::Timestamp>()
        .map(|t| Some(t.as_millisecond()))
        .map_err(|_| {
            ServiceError::Invalid(format!(
                "at: {raw:?} is not an RFC 3339 time such as 2026-03-01T18:00:00Z"
            ))
        })
}

/// Time zones by name, looked up once per broadcast; unknown names use the default zone.
struct Zones {
    default: jiff::tz::TimeZone,
    cache: HashMap<String, jiff::tz::TimeZone>,
}

impl Zones {
    fn new(cfg: &Config) -> Zones {
        Zones {
            default: dispatch::time_zone(&cfg.dispatch.default_time_zone)
                .unwrap_or(jiff::tz::TimeZone::UTC),
            cache: HashMap::new(),
        }
    }

    fn get(&mut self, name: Option<&str>) -> jiff::tz::TimeZone {
        let Some(name) = name else {
            return self.default.clone();
        };
        if let Some(z) = self.cache.get(name) {
            return z.clone();
        }
        let z = dispatch::time_zone(name).unwrap_or_else(|_| self.default.clone());
        self.cache.insert(name.to_string(), z.clone());
        z
    }
}

/// Whether recipients are inside quiet hours at one instant, per time zone name: every member
/// of a zone has the same answer, so a 100,000-member broadcast computes it once per zone.
struct QuietNow {
    window: Option<(crate::config::QuietHours, jiff::Timestamp)>,
    zones: Zones,
    default: Option<bool>,
    by_zone: HashMap<String, bool>,
}

impl QuietNow {
    fn new(cfg: &Config, start: i64) -> QuietNow {
        let quiet = QuietPolicy::from_config(&cfg.dispatch)
            .window_for(MessageKind::Bulk, QuietOverride::Inherit);
        QuietNow {
            window: quiet.zip(jiff::Timestamp::from_millisecond(start).ok()),
            zones: Zones::new(cfg),
            default: None,
            by_zone: HashMap::new(),
        }
    }

    fn is_quiet(&mut self, zone: Option<&str>) -> bool {
        let Some((q, at)) = self.window else {
            return false;
        };
        let cached = match zone {
            None => self.default,
            Some(z) => self.by_zone.get(z).copied(),
        };
        if let Some(b) = cached {
            return b;
        }
        let quiet = dispatch::next_sendable(at, &self.zones.get(zone), &q) > at;
        match zone {
            None => self.default = Some(quiet),
            Some(z) => {
                self.by_zone.insert(z.to_string(), quiet);
            }
        }
        quiet
    }
}

/// A broadcast's expansion, one member at a time: who gets a copy, with which text, and the
/// counts of the reply. Shared by the dry run and the real enqueue so both count alike.
struct Expansion<'a> {
    cfg: &'a Config,
    template: &'a str,
    opts: BroadcastOptions,
    quiet: QuietNow,
    matched: usize,
    excluded: Exclusions,
    quiet_now: usize,
    tally: PreviewTally,
}

impl<'a> Expansion<'a> {
    fn new(cfg: &'a Config, template: &'a str, start: i64) -> Self {
        Expansion {
            cfg,
            template,
            opts: BroadcastOptions::default(),
            quiet: QuietNow::new(cfg, start),
            matched: 0,
            excluded: Exclusions::default(),
            quiet_now: 0,
            tally: PreviewTally::default(),
        }
    }

    /// One member of the segment (`suppressed`: on the suppression list): their text when a
    /// bulk message may reach them ([`may_send`]), else `None` and the reason is counted.
    fn decide(&mut self, m: &Member, suppressed: bool) -> Option<String> {
        self.matched += 1;
        let view = member_view(m);
        let standing = Standing::of(Some(&view), suppressed);
        if !may_send(standing, MessageKind::Bulk) {
            if standing.is_opted_out() {
                self.excluded.opted_out += 1;
            } else {
                self.excluded.not_confirmed += 1;
            }
            self.tally.skip();
            return None;
        }
        let text = render_for(self.template, &view, &self.cfg.community, &self.opts);
        self.tally.recipient(&text);
        self.quiet_now += usize::from(self.quiet.is_quiet(m.time_zone.as_deref()));
        Some(text)
    }

    fn result(self, dry_run: bool, segment: String, scheduled_at: Option<i64>) -> BroadcastResult {
        let p = self
            .tally
            .finish(self.template, &self.cfg.community, &self.opts);
        let encoding = match (p.gsm7, p.ucs2) {
            (_, 0) => "gsm7",
            (0, _) => "ucs2",
            _ => "mixed",
        };
        BroadcastResult {
            id: None,
            dry_run,
            segment,
            scheduled_at: scheduled_at.map(rfc3339),
            matched: self.matched,
            recipients: p.recipients,
            excluded: self.excluded,
            quiet_now: self.quiet_now,
            sms: EncodingSummary {
                encoding: encoding.to_string(),
                gsm7: p.gsm7,
                ucs2: p.ucs2,
                min_parts: p.min_parts,
                max_parts: p.max_parts,
                total_sms: p.total_sms,
            },
            example: p.example,
        }
    }
}

/// `broadcast`: with `dry_run`, what would happen; otherwise the broadcast and one bulk outbox
/// row per eligible member, in one transaction, before this returns.
///
/// Streamed (see [`Store::create_broadcast_streamed`]): the segment is read with one cursor and
/// each member is decided, rendered and inserted before the next is read, so memory stays flat
/// whatever the segment's size. A segment nobody may receive is refused and leaves nothing.
pub fn broadcast(
    store: &Store,
    cfg: &Config,
    args: &BroadcastArgs,
    now: i64,
) -> Result<BroadcastResult> {
    check_template(&args.text)?;
    let segment = parse_segment(args.segment.as_deref())?;
    let scheduled_at = parse_at(args.at.as_deref())?;
    let start = scheduled_at.unwrap_or(now).max(now);
    let members = store_segment(&segment);
    let label = segment.to_string();
    let mut x = Expansion::new(cfg, &args.text, start);
    if args.dry_run {
        store.for_each_member(&members, |m, suppressed| {
            x.decide(m, suppressed);
        })?;
        return Ok(x.result(true, label, scheduled_at));
    }
    let expires_at = Ttl::from_config(&cfg.dispatch).deadline(MessageKind::Bulk, start);
    let created = store.create_broadcast_streamed(
        &args.text,
        &label,
        scheduled_at.filter(|t| *t > now),
        &members,
        now,
        |m, suppressed| {
            let text = x.decide(m, suppressed)?;
            Some(NewOutbox {
                // Sticky sender: the copy goes out on the member's home modem (assigned,
                // balanced, when the member was added; dispatch fails over if it is down).
                modem_pref: m.home_modem.clone(),
                not_before: start,
                expires_at,
                ..NewOutbox::new(m.number.clone(), text, MessageKind::Bulk, now)
            })
        },
    )?;
    let mut result = x.result(false, label, scheduled_at);
    let Some((id, inserted)) = created else {
        return Err(ServiceError::Invalid(format!(
            "no member of segment {} may receive a broadcast ({} matched: {} opted out, {} not \
             confirmed); nothing was queued",
            result.segment,
            result.matched,
            result.excluded.opted_out,
            result.excluded.not_confirmed
        )));
    };
    result.id = Some(id);
    // Every decided copy is one new row: members' numbers are unique, and the decision and the
    // insert read the same transaction, so no opt-out can come between them.
    result.recipients = inserted;
    Ok(result)
}

fn item(store: &Store, cfg: &Config, b: &BroadcastRow, now: i64) -> Result<BroadcastItem> {
    let c: StateCounts = store.broadcast_progress(b.id)?;
    let eta = match b.state {
        BroadcastState::Running | BroadcastState::Scheduled if c.queued + c.claimed > 0 => {
            eta(store, cfg, b, now)?
        }
        _ => None,
    };
    Ok(BroadcastItem {
        id: b.id,
        created_at: rfc3339(b.created_at),
        scheduled_at: b.scheduled_at.map(rfc3339),
        state: b.state.as_str().to_string(),
        segment: b.segment.clone(),
        template: b.template.clone(),
        total: c.total(),
        queued: c.queued,
        sending: c.claimed,
        sent: c.sent,
        delivered: c.delivered,
        failed: c.failed,
        expired: c.expired,
        cancelled: c.cancelled,
        in_doubt: c.in_doubt,
        eta: eta.map(rfc3339),
    })
}

/// The broadcast's finish estimate (ms), or `None` when some recipients cannot be served.
fn eta(store: &Store, cfg: &Config, b: &BroadcastRow, now: i64) -> Result<Option<i64>> {
    let mut zones = Zones::new(cfg);
    let mut groups: HashMap<(Option<usize>, String, u32), u64> = HashMap::new();
    // A template without placeholders gives every copy the same text, so part counts are
    // memoised (up to 64 texts); personalised copies are planned one by one.
    let mut parts_of: HashMap<String, u32> = HashMap::new();
    store.for_each_queued_in_broadcast(b.id, |modem_pref, zone, text| {
        let modem = modem_pref.and_then(|p| cfg.modems.iter().position(|m| m.name == p));
        let zone = zone.unwrap_or(&cfg.dispatch.default_time_zone).to_string();
        let parts = match parts_of.get(text) {
            Some(&n) => n,
            None => {
                let n = u32::try_from(plan(text).parts.len()).unwrap_or(u32::MAX);
                if parts_of.len() < 64 {
                    parts_of.insert(text.to_string(), n);
                }
                n
            }
        };
        *groups.entry((modem, zone, parts)).or_default() += 1;
    })?;
    let mut keys: Vec<_> = groups.into_iter().collect();
    keys.sort(); // deterministic simulation order
    let groups: Vec<EtaGroup> = keys
        .into_iter()
        .map(|((modem, zone, parts), count)| EtaGroup {
            modem,
            tz: zones.get(Some(&zone)),
            count,
            parts: parts.max(1),
        })
        .collect();
    let mut modems = Vec::with_capacity(cfg.modems.len());
    for m in &cfg.modems {
        let mut limiter = RateLimiter::new(&m.limits);
        limiter.restore(store.send_times_since(&m.name, now.saturating_sub(DAY))?);
        modems.push(EtaModem {
            limiter,
            latency_ms: ETA_PART_LATENCY_MS,
            ready: m.enabled,
        });
    }
    let req = EtaRequest {
        now: b.scheduled_at.unwrap_or(now).max(now),
        modems,
        groups,
        quiet: QuietPolicy::from_config(&cfg.dispatch)
            .window_for(MessageKind::Bulk, QuietOverride::Inherit),
        pool_limiter: cfg
            .dispatch
            .pool_per_minute
            .map(|cap| RateLimiter::with_windows(&[Window::per_minute(cap)])),
        horizon_ms: EtaRequest::DEFAULT_HORIZON_MS,
        count_at: CountAt::Start,
    };
    Ok(dispatch::estimate(&req).finish)
}

/// `broadcasts`: the latest broadcasts, newest first, with progress and ETA.
pub fn broadcasts(
    store: &Store,
    cfg: &Config,
    args: &BroadcastsArgs,
    now: i64,
) -> Result<Vec<BroadcastItem>> {
    store.refresh_broadcasts(now)?;
    let limit = args
        .limit
        .unwrap_or(DEFAULT_BROADCASTS_LIMIT)
        .min(MAX_LIST_LIMIT);
    store
        .broadcasts(limit)?
        .iter()
        .map(|b| item(store, cfg, b, now))
        .collect()
}

/// `broadcast_progress`: one broadcast, with its state moved along first (running → done when
/// nothing is left), so a client polling it sees the end.
pub fn broadcast_progress(
    store: &Store,
    cfg: &Config,
    args: &BroadcastIdArgs,
    now: i64,
) -> Result<BroadcastItem> {
    store.refresh_broadcasts(now)?;
    item(store, cfg, &store.broadcast(args.broadcast)?, now)
}

/// `broadcast_pause`: queued rows are held until resumed.
pub fn broadcast_pause(
    store: &Store,
    cfg: &Config,
    args: &BroadcastIdArgs,
    now: i64,
) -> Result<BroadcastItem> {
    store.pause_broadcast(args.broadcast, now)?;
    item(store, cfg, &store.broadcast(args.broadcast)?, now)
}

/// `broadcast_resume`.
pub fn broadcast_resume(
    store: &Store,
    cfg: &Config,
    args: &BroadcastIdArgs,
    now: i64,
) -> Result<BroadcastItem> {
    store.resume_broadcast(args.broadcast, now)?;
    item(store, cfg, &store.broadcast(args.broadcast)?, now)
}

/// `broadcast_cancel`: queued rows are cancelled; rows being sent finish.
pub fn broadcast_cancel(
    store: &Store,
    cfg: &Config,
    args: &BroadcastIdArgs,
    now: i64,
) -> Result<BroadcastItem> {
    store.cancel_broadcast(args.broadcast, now)?;
    item(store, cfg, &store.broadcast(args.broadcast)?, now)
}

// ---------------------------------------------------------------------------------------------
// In doubt
// ---------------------------------------------------------------------------------------------

fn in_doubt_item(r: &OutboxRow) -> InDoubtItem {
    InDoubtItem {
        id: r.id,
        to: r.to_number.clone(),
        kind: r.kind.as_str().to_string(),
        broadcast_id: r.broadcast_id,
        text: r.text.clone(),
        modem: r.claimed_by.clone(),
        claimed_at: r.claimed_at.map(rfc3339),
        reason: r.last_error.clone(),
    }
}

/// `in_doubt`: every message whose send was in flight at a crash and that the configured policy
/// left for a person to decide, oldest first.
pub fn in_doubt(store: &Store, _cfg: &Config, _now: i64) -> Result<Vec<InDoubtItem>> {
    Ok(store.in_doubt()?.iter().map(in_doubt_item).collect())
}

/// Reason recorded on an in-doubt row an administrator dropped.
pub const DROPPED_REASON: &str = "in doubt after a crash; dropped by the administrator";

/// `in_doubt_resolve`: resend (queue again) or drop (cancel) one in-doubt row.
pub fn in_doubt_resolve(
    store: &Store,
    _cfg: &Config,
    args: &InDoubtResolveArgs,
    now: i64,
) -> Result<InDoubtResolved> {
    let row = store.outbox_row(args.message)?;
    if row.state != OutboxState::InDoubt {
        return Err(ServiceError::Conflict(format!(
            "message {} is {}, not in doubt",
            row.id, row.state
        )));
    }
    let state = match args.action {
        InDoubtResolution::Resend => {
            store.requeue_in_doubt(args.message, now)?;
            OutboxState::Queued
        }
        InDoubtResolution::Drop => {
            store.cancel(args.message, DROPPED_REASON, now)?;
            OutboxState::Cancelled
        }
    };
    Ok(InDoubtResolved {
        id: args.message,
        state: state.as_str().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_convert_seconds_to_store_milliseconds() {
        let seg = Segment::parse("city=Chicago,tag=Volunteer,joined>=2026-01-01,status=active")
            .unwrap_or_else(|e| panic!("{e}"));
        let s = store_segment(&seg);
        assert_eq!(s.city.as_deref(), Some("Chicago"));
        assert_eq!(s.tags, vec!["volunteer"]);
        assert_eq!(s.status, Some(MemberStatus::Active));
        assert_eq!(s.joined_since, Some(1_767_225_600_000));
        assert_eq!(s.joined_before, None);
        assert_eq!(store_segment(&Segment::all()), store::Segment::default());
    }

    #[test]
    fn default_region_comes_from_a_modem_number() {
        let mut cfg = Config::embedded_default();
        for m in &mut cfg.modems {
            m.number = None;
        }
        assert_eq!(default_region(&cfg), "US");
        if let Some(m) = cfg.modems.first_mut() {
            m.number = Some("+4930901820".into());
        }
        assert_eq!(default_region(&cfg), "DE");
    }

    #[test]
    fn at_must_be_rfc3339() {
        assert_eq!(
            parse_at(Some("2026-03-01T18:00:00Z")).ok().flatten(),
            Some(1_772_388_000_000)
        );
        assert_eq!(parse_at(None).ok().flatten(), None);
        assert!(matches!(
            parse_at(Some("18:00")),
            Err(ServiceError::Invalid(_))
        ));
    }

    #[test]
    fn store_errors_map_to_service_errors() {
        let e: ServiceError = StoreError::NotFound {
            what: "broadcast",
            key: "9".into(),
        }
        .into();
        assert!(matches!(e, ServiceError::NotFound { .. }));
        let e: ServiceError = StoreError::DuplicateMember {
            number: "+1".into(),
        }
        .into();
        assert!(matches!(e, ServiceError::Conflict(_)));
        let e: ServiceError = CommunityError::InvalidNumber {
            input: "5".into(),
            reason: "r".into(),
        }
        .into();
        assert!(matches!(e, ServiceError::InvalidNumber { .. }));
    }
}
