//! The member commands: list (a page of a segment), add, remove, tag, import and export; and the
//! conversions every command shares between the store's member rows, the community rules' view of
//! a member and the wire's [`MemberItem`].
//!
//! Choices worth knowing:
//! - Default region for numbers written without a country code: the region of the first
//!   configured modem whose `number` (the SIM's own number) is valid, else `US`. The config has
//!   no key for it, and a gateway's SIMs are where its members live.
//! - Members added by the CLI or imported are `active` (the leader vouches for their consent;
//!   the consent log records `cli`/`import` as the source). A suppressed number stays
//!   `opted_out`: the store enforces that, only a texted START lifts it.
//! - Home modems are balanced over the enabled modems with `dispatch::assign_homes` (no
//!   geomatch), given how many members each modem already has (`Store::home_modem_counts`, one
//!   `GROUP BY`). A broadcast copy carries its member's home modem as `modem_pref` (sticky sender).
//! - Every bad import row is reported, including numbers that are already members (checked
//!   here, before the store's all-or-nothing insert, which names only the first conflict).

use std::collections::HashMap;

use super::{CommandError, Context, ModemSettings, Result, Settings};
use crate::community::csv::{ImportRow, export_members_with, parse_import_with, parse_records};
use crate::community::member::{
    MemberStatus, MemberView, clean_field, normalise_number, normalise_tags, parse_region,
};
use crate::community::segment::Segment;
use crate::community::{CommunityError, tz};
use crate::dispatch::{HomeCandidate, assign_homes};
use crate::protocol::{
    ExportData, ImportResult, MemberAddArgs, MemberGetArgs, MemberItem, MemberRemoveArgs,
    MemberRemoved, MemberTagArgs, MemberUpdateArgs, MembersExportArgs, MembersImportArgs,
    MembersListArgs, MembersPage, OptOutItem, RowError,
};
use crate::store::{self, ConsentSource, Member, MemberUpdate, NewMember, Store, StoreError};
use crate::time::rfc3339;

/// Members per page when `members_list` gives no limit.
pub const DEFAULT_LIST_LIMIT: u32 = 100;

/// Largest `members_list` page.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// Default region when no modem number tells one.
pub const FALLBACK_REGION: &str = "US";

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
        fields: m.fields.clone(),
    }
}

/// `member_item` with the opt-out's when and how filled in for an opted-out member.
fn member_item_with_consent(store: &Store, m: &Member) -> Result<MemberItem> {
    let mut item = member_item(m);
    if item.status == "opted_out"
        && let Some((at, source, detail)) = store.opt_out_record(&m.number)?
    {
        item.opt_out = Some(OptOutItem {
            at: rfc3339(at),
            source,
            detail,
        });
    }
    Ok(item)
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
        fields: seg
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.trim().to_string()))
            .collect(),
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
        home_reason: m.home_reason.clone(),
        fields: m.fields.clone(),
        opt_out: None,
    }
}

/// Parses a `--segment`, with the configured custom fields as keys (`shirt_size=L`).
pub(super) fn parse_segment(cfg: &Settings, input: Option<&str>) -> Result<Segment> {
    match input {
        None => Ok(Segment::all()),
        Some(s) => Ok(Segment::parse_with(s, &cfg.community.custom_fields())?),
    }
}

/// The region numbers without a country code are read in (see the module doc).
pub fn default_region(modems: &[ModemSettings]) -> String {
    modems
        .iter()
        .filter_map(|m| m.number.as_deref())
        .find_map(|n| normalise_number(n, None).ok().and_then(|e| e.region))
        .unwrap_or_else(|| FALLBACK_REGION.to_string())
}

pub(super) fn normalise(cfg: &Settings, number: &str) -> Result<String> {
    let region = default_region(&cfg.modems);
    // The region comes from a valid number or the constant; it always parses, but a failure
    // must still not lose the number: fall back to international forms only.
    let region = parse_region(&region).ok().map(|_| region);
    Ok(normalise_number(number, region.as_deref())?.number)
}

/// A home modem and why it was chosen (the reason's word, as stored).
type Home = Option<(String, String)>;

/// Home modems for `numbers`, balanced over the enabled modems given the members they have;
/// with `[dispatch] geomatch`, by the modems' own numbers first: the configured `number`, else
/// the one the modem reported (`modems.own_number`, when the SIM tells it).
fn assign(store: &Store, cfg: &Settings, numbers: &[&str]) -> Result<Vec<Home>> {
    let counts: HashMap<String, u64> = store.home_modem_counts()?.into_iter().collect();
    let reported: HashMap<String, String> = if cfg.dispatch.geomatch {
        store
            .modems()?
            .into_iter()
            .filter_map(|m| Some((m.identity.name, m.identity.own_number?)))
            .collect()
    } else {
        HashMap::new()
    };
    let mut candidates: Vec<HomeCandidate> = cfg
        .modems
        .iter()
        .map(|m| HomeCandidate {
            number: m.number.clone().or_else(|| reported.get(&m.name).cloned()),
            eligible: m.enabled,
            members: counts.get(&m.name).copied().unwrap_or(0),
        })
        .collect();
    Ok(
        assign_homes(numbers, &mut candidates, cfg.dispatch.geomatch)
            .into_iter()
            .map(|c| {
                let c = c?;
                let modem = cfg.modems.get(c.index)?;
                Some((modem.name.clone(), c.reason.as_str().to_string()))
            })
            .collect(),
    )
}

/// `members_list`.
pub fn list(ctx: &Context, args: &MembersListArgs) -> Result<MembersPage> {
    let store = &ctx.store;
    let seg = store_segment(&parse_segment(&ctx.settings, args.segment.as_deref())?);
    let limit = args.limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT);
    let members = store.list_members(&seg, limit, args.offset.unwrap_or(0))?;
    Ok(MembersPage {
        total: store.count_members(&seg)?,
        members: members
            .iter()
            .map(|m| member_item_with_consent(store, m))
            .collect::<Result<Vec<_>>>()?,
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
pub fn add(ctx: &Context, args: &MemberAddArgs) -> Result<MemberItem> {
    let (store, cfg, now) = (&ctx.store, &*ctx.settings, ctx.now());
    let region = default_region(&cfg.modems);
    let e164 = normalise_number(&args.number, Some(&region))?;
    let city = args.city.as_deref().and_then(clean_field);
    let tags = normalise_tags(args.tags.iter().map(String::as_str))?;
    let time_zone = match valid_zone(args.time_zone.as_deref())? {
        Some(z) => Some(z),
        None => tz::zone_for_number(&e164, city.as_deref()).map(str::to_string),
    };
    if store.member(&e164.number)?.is_some() {
        return Err(CommandError::Conflict(format!(
            "{} is already a member",
            e164.number
        )));
    }
    let (home_modem, home_reason) = assign(store, cfg, &[e164.number.as_str()])?
        .into_iter()
        .next()
        .flatten()
        .unzip();
    let new = NewMember {
        number: e164.number,
        name: args.name.as_deref().and_then(clean_field),
        city,
        region: args.region.as_deref().and_then(clean_field),
        time_zone,
        tags,
        status: Some(MemberStatus::Active),
        home_modem,
        onboarding_step: None,
        joined_at: now,
        home_reason,
        fields: Default::default(),
    };
    let m = store.add_member(&new, ConsentSource::Cli, now)?;
    Ok(member_item(&m))
}

/// `members_remove`: the member row goes (a suppression stays).
pub fn remove(ctx: &Context, args: &MemberRemoveArgs) -> Result<MemberRemoved> {
    let (store, cfg, now) = (&ctx.store, &*ctx.settings, ctx.now());
    let number = normalise(cfg, &args.number)?;
    if store.remove_member(&number, ConsentSource::Cli, now)? {
        Ok(MemberRemoved { number })
    } else {
        Err(CommandError::NotFound(format!("member {number} not found")))
    }
}

/// `members_get`: one member by number.
pub fn get(ctx: &Context, args: &MemberGetArgs) -> Result<MemberItem> {
    let number = normalise(&ctx.settings, &args.number)?;
    let member = ctx
        .store
        .member(&number)?
        .ok_or_else(|| CommandError::NotFound(format!("member {number} not found")))?;
    member_item_with_consent(&ctx.store, &member)
}

/// `members_update`: changes the given fields of one member (an empty text clears it; `tags`
/// replaces the set). Status and consent are not fields: they change only by the member's own
/// texts, `members_remove` or a review decision.
pub fn update(ctx: &Context, args: &MemberUpdateArgs) -> Result<MemberItem> {
    let (store, cfg, now) = (&ctx.store, &*ctx.settings, ctx.now());
    let number = normalise(cfg, &args.number)?;
    if store.member(&number)?.is_none() {
        return Err(CommandError::NotFound(format!("member {number} not found")));
    }
    let text = |v: &Option<String>| v.as_ref().map(|t| clean_field(t));
    let time_zone = match &args.time_zone {
        None => None,
        Some(z) if z.trim().is_empty() => Some(None),
        Some(z) => Some(valid_zone(Some(z))?),
    };
    let tags = match &args.tags {
        None => None,
        Some(t) => {
            let mut tags = normalise_tags(t.iter().map(String::as_str))?;
            tags.sort();
            tags.dedup();
            Some(tags)
        }
    };
    let update = MemberUpdate {
        name: text(&args.name),
        city: text(&args.city),
        region: text(&args.region),
        time_zone,
        tags,
        ..MemberUpdate::default()
    };
    Ok(member_item(&store.update_member(&number, &update, now)?))
}

/// `members_tag`: adds (or with `remove`, removes) tags; returns the member afterwards.
pub fn tag(ctx: &Context, args: &MemberTagArgs) -> Result<MemberItem> {
    let (store, cfg, now) = (&ctx.store, &*ctx.settings, ctx.now());
    let number = normalise(cfg, &args.number)?;
    let given = normalise_tags(args.tags.iter().map(String::as_str))?;
    if given.is_empty() {
        return Err(CommandError::Invalid("no tag given".into()));
    }
    let member = store
        .member(&number)?
        .ok_or_else(|| CommandError::NotFound(format!("member {number} not found")))?;
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
pub fn import(ctx: &Context, args: &MembersImportArgs) -> Result<ImportResult> {
    let (store, cfg, now) = (&ctx.store, &*ctx.settings, ctx.now());
    let region = default_region(&cfg.modems);
    let refused = |errors: Vec<RowError>| ImportResult {
        dry_run: args.dry_run,
        imported: 0,
        suppressed: 0,
        valid: 0,
        errors,
    };
    let custom = cfg.community.custom_fields();
    let rows: Vec<ImportRow> = match parse_import_with(&args.csv, Some(&region), &custom) {
        Ok(rows) => rows,
        Err(CommunityError::Import(errors)) => {
            let mut errors: Vec<RowError> = errors.into_iter().map(RowError::from).collect();
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
        .map(|(r, home)| {
            let (home_modem, home_reason) = home.unzip();
            NewMember {
                number: r.number.clone(),
                name: r.name.clone(),
                city: r.city.clone(),
                region: r.region.clone(),
                time_zone: r.time_zone.clone(),
                tags: r.tags.clone(),
                status: Some(MemberStatus::Active),
                home_modem,
                onboarding_step: None,
                joined_at: now,
                home_reason,
                fields: r.fields.clone(),
            }
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

/// Most members in one page of a paged export.
pub const MAX_EXPORT_PAGE: u32 = 10_000;

/// `members_export`: the segment's members as CSV (import format). With `limit`, one keyset
/// page (after the cursor `after`, the previous page's `next`): the CLI asks page after page and
/// writes each as it arrives, so neither side holds the whole list (docs/community.md). Pages
/// after the first carry no header, so the pages concatenated are the one-reply CSV.
pub fn export(ctx: &Context, args: &MembersExportArgs) -> Result<ExportData> {
    let (store, cfg) = (&ctx.store, &*ctx.settings);
    let seg = store_segment(&parse_segment(cfg, args.segment.as_deref())?);
    let fields = cfg.community.custom_fields();
    let mut views: Vec<MemberView> = Vec::new();
    let Some(limit) = args.limit else {
        if args.after.is_some() {
            return Err(CommandError::Invalid(
                "after needs limit (a paged export)".into(),
            ));
        }
        // One reply with the whole CSV; one cursor at least reads each member once.
        store.for_each_member(&seg, |m, _| views.push(member_view(m)))?;
        return Ok(ExportData {
            count: views.len(),
            csv: export_members_with(&views, &fields),
            next: None,
        });
    };
    let limit = limit.clamp(1, MAX_EXPORT_PAGE);
    let after = args.after.as_deref().map(parse_cursor).transpose()?;
    let mut last = None;
    store.for_each_member_page(&seg, after, limit, |m, _| {
        last = Some((m.joined_at, m.id));
        views.push(member_view(m));
    })?;
    let mut csv = export_members_with(&views, &fields);
    if after.is_some() {
        // The header is the first page's; the CSV writer never puts a newline inside it.
        csv = csv
            .split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default();
    }
    let full = views.len() == limit as usize;
    Ok(ExportData {
        count: views.len(),
        csv,
        next: last.filter(|_| full).map(|(j, i)| format!("{j}.{i}")),
    })
}

/// A page cursor `joined_at.id`, as `next` gives it.
fn parse_cursor(raw: &str) -> Result<(i64, i64)> {
    raw.split_once('.')
        .and_then(|(j, i)| Some((j.parse().ok()?, i.parse().ok()?)))
        .ok_or_else(|| CommandError::Invalid(format!("after: {raw:?} is not a page cursor")))
}

impl From<crate::community::csv::RowError> for RowError {
    fn from(e: crate::community::csv::RowError) -> Self {
        RowError {
            row: e.row,
            message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::Profile;

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
        let modem = |number: Option<&str>| ModemSettings {
            name: "m0".into(),
            profile: Profile::Generic,
            port: "/dev/null".into(),
            limits: crate::dispatch::Limits::DEFAULT,
            enabled: true,
            number: number.map(Into::into),
        };
        assert_eq!(default_region(&[modem(None), modem(None)]), "US");
        assert_eq!(
            default_region(&[modem(None), modem(Some("+4930901820"))]),
            "DE"
        );
        assert_eq!(default_region(&[modem(Some("not a number"))]), "US");
    }

    #[test]
    fn store_and_community_errors_map_to_command_errors() {
        let e: CommandError = StoreError::NotFound {
            what: "broadcast",
            key: "9".into(),
        }
        .into();
        assert!(matches!(e, CommandError::NotFound(_)));
        let e: CommandError = StoreError::DuplicateMember {
            number: "+1".into(),
        }
        .into();
        assert!(matches!(e, CommandError::Conflict(_)));
        let e: CommandError = CommunityError::InvalidNumber {
            input: "5".into(),
            reason: "r".into(),
        }
        .into();
        assert!(matches!(e, CommandError::InvalidNumber { .. }));
    }
}
