//! Members, their tags, the consent audit log and the suppression list (`opt_outs`).
//!
//! Consent is recorded through one door, [`Store::record_consent`], which appends to the
//! append-only `consent_log`, keeps `opt_outs` and the member's status in step, and (for STOP)
//! cancels whatever is still queued to the number, all in one transaction. The suppression list is
//! separate from `members` on purpose: removing or re-importing a member never lifts an opt-out;
//! only an `opted_in` event (START) does.
//!
//! Segment filters are compiled to SQL with every value bound as a parameter; only fixed column
//! fragments are concatenated.

use std::collections::BTreeMap;

use crate::store::db::OwnedValue as Value;
use crate::store::db::{Conn, OptionalExtension, Row, params};

use super::{Result, SqlContext, Store, StoreError, text_enum};
use crate::model::MemberStatus;

text_enum!(
    /// What happened to a number's consent.
    ConsentEvent, "consent_log.event", {
        Joined => "joined",
        Confirmed => "confirmed",
        OptedOut => "opted_out",
        OptedIn => "opted_in",
        Imported => "imported",
        Removed => "removed",
    }
);

text_enum!(
    /// Who caused a consent event.
    ConsentSource, "consent_log.source", {
        Sms => "sms",
        Cli => "cli",
        Import => "import",
    }
);

/// A member to add.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct NewMember {
    pub number: String,
    pub name: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub time_zone: Option<String>,
    pub tags: Vec<String>,
    /// `None` means pending confirmation.
    pub status: Option<MemberStatus>,
    pub home_modem: Option<String>,
    pub onboarding_step: Option<String>,
    pub joined_at: i64,
    /// Why `home_modem` was chosen (`geomatch`, `country`, `balance`, `sticky`).
    #[serde(default)]
    pub home_reason: Option<String>,
    /// Custom fields (`member_fields`): configured onboarding fields beyond the columns above.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// A stored member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub id: i64,
    pub number: String,
    pub name: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub time_zone: Option<String>,
    pub tags: Vec<String>,
    pub status: MemberStatus,
    pub home_modem: Option<String>,
    pub onboarding_step: Option<String>,
    pub joined_at: i64,
    pub updated_at: i64,
    /// Why the home modem was chosen; `failover` when the home moved without a recorded reason
    /// (the runner's failover move), `None` when unknown or there is no home.
    pub home_reason: Option<String>,
    /// Custom fields, by name.
    pub fields: BTreeMap<String, String>,
}

/// Fields to change on a member; `None` leaves a field as it is, `Some(None)` clears it.
/// Status is not here: it changes only through [`Store::record_consent`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberUpdate {
    pub name: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub region: Option<Option<String>>,
    pub time_zone: Option<Option<String>>,
    pub home_modem: Option<Option<String>>,
    pub onboarding_step: Option<Option<String>>,
    /// Replaces the whole tag set when given.
    pub tags: Option<Vec<String>>,
    /// Recorded with `home_modem` (see [`Member::home_reason`]).
    pub home_reason: Option<Option<String>>,
    /// Custom fields to set (`Some`) or clear (`None`); fields not named are kept.
    pub fields: BTreeMap<String, Option<String>>,
}

/// A member filter. Every given condition must hold; `tags` means "has all of these tags".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    pub city: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub status: Option<MemberStatus>,
    /// joined_at >= this
    pub joined_since: Option<i64>,
    /// joined_at < this
    pub joined_before: Option<i64>,
    /// Custom fields that must equal these values (ASCII case-insensitive), by name.
    #[serde(default)]
    pub fields: Vec<(String, String)>,
}

/// Member counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    pub pending_confirmation: u64,
    pub active: u64,
    pub opted_out: u64,
}

/// Result of an all-or-nothing import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub inserted: usize,
    /// Rows whose number is on the suppression list: imported, but as `opted_out`.
    pub suppressed: usize,
}

/// One consent_log entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentEntry {
    pub id: i64,
    pub number: String,
    pub event: ConsentEvent,
    pub detail: Option<String>,
    pub source: ConsentSource,
    pub at: i64,
}

const MEMBER_COLUMNS: &str = "m.id, m.number, m.name, m.city, m.region, m.time_zone, m.status, \
     m.home_modem, m.onboarding_step, m.joined_at, m.updated_at, \
     (SELECT json_group_array(tag) FROM (SELECT tag FROM member_tags t \
                                         WHERE t.member_id = m.id ORDER BY tag) AS mt), \
     CASE WHEN m.home_modem IS NULL THEN NULL \
          WHEN m.home_reason_modem = m.home_modem THEN m.home_reason \
          ELSE 'failover' END, \
     (SELECT json_group_object(field, value) FROM member_fields f WHERE f.member_id = m.id)";

/// The column after [`MEMBER_COLUMNS`] in queries that add one.
const AFTER_MEMBER_COLUMNS: usize = 14;

fn member_from_row(r: &Row<'_>) -> crate::store::db::DbResult<Member> {
    // PostgreSQL's `json_agg`/`json_object_agg` of no rows is NULL where SQLite's is `[]`/`{}`:
    // NULL reads as empty here rather than as a `coalesce` in SQL that SQLite would pay for.
    let tags_json: Option<String> = r.get(11)?;
    let tags: Vec<String> = match tags_json {
        None => Vec::new(),
        Some(j) => serde_json::from_str(&j).map_err(|e| crate::store::db::DbError::Column {
            index: 11,
            detail: e.to_string(),
        })?,
    };
    let fields_json: Option<String> = r.get(13)?;
    let fields: BTreeMap<String, String> = match fields_json {
        None => BTreeMap::new(),
        Some(j) => serde_json::from_str(&j).map_err(|e| crate::store::db::DbError::Column {
            index: 13,
            detail: e.to_string(),
        })?,
    };
    Ok(Member {
        id: r.get(0)?,
        number: r.get(1)?,
        name: r.get(2)?,
        city: r.get(3)?,
        region: r.get(4)?,
        time_zone: r.get(5)?,
        status: r.get(6)?,
        home_modem: r.get(7)?,
        onboarding_step: r.get(8)?,
        joined_at: r.get(9)?,
        updated_at: r.get(10)?,
        tags,
        home_reason: r.get(12)?,
        fields,
    })
}

/// Compiles a segment into a WHERE clause over `members m` plus its bound values.
fn segment_sql(seg: &Segment) -> (String, Vec<Value>) {
    let mut clauses: Vec<&'static str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(city) = &seg.city {
        clauses.push("m.city = ?");
        values.push(Value::Text(city.clone()));
    }
    if let Some(region) = &seg.region {
        clauses.push("m.region = ?");
        values.push(Value::Text(region.clone()));
    }
    if let Some(status) = seg.status {
        clauses.push("m.status = ?");
        values.push(Value::Text(status.as_str().into()));
    }
    if let Some(since) = seg.joined_since {
        clauses.push("m.joined_at >= ?");
        values.push(Value::Integer(since));
    }
    if let Some(before) = seg.joined_before {
        clauses.push("m.joined_at < ?");
        values.push(Value::Integer(before));
    }
    for tag in &seg.tags {
        clauses.push("EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = ?)");
        values.push(Value::Text(tag.clone()));
    }
    for (field, value) in &seg.fields {
        clauses.push(
            "EXISTS (SELECT 1 FROM member_fields f WHERE f.member_id = m.id AND f.field = ? \
             AND f.value = ? COLLATE NOCASE)",
        );
        values.push(Value::Text(field.clone()));
        values.push(Value::Text(value.clone()));
    }
    let sql = if clauses.is_empty() {
        // A bare `1` is no boolean to PostgreSQL.
        String::from("1 = 1")
    } else {
        clauses.join(" AND ")
    };
    (sql, values)
}

/// Reads the members matching `seg` with one cursor on `conn` (a plain connection or an open
/// transaction), calling `f` with each and whether its number is suppressed (`opt_outs`).
///
/// Order: `joined_at, id`, the order `list_members` pages in. For the whole community (and
/// `joined` bounds) SQLite walks the `members_joined` index, whose implicit rowid suffix makes it
/// exactly `(joined_at, id)`, so nothing is sorted; a city/region/status/tag filter may use its
/// own index and sort the matching rows (SQLite's sorter spills to a temporary file beyond its
/// cache budget, it never holds an unbounded set in memory). `f` may stop the scan with an error.
pub(super) fn scan_segment(
    conn: &Conn,
    seg: &Segment,
    mut f: impl FnMut(&Member, bool) -> Result<()>,
) -> Result<()> {
    let (filter, values) = segment_sql(seg);
    let sql = format!(
        "SELECT {MEMBER_COLUMNS}, EXISTS (SELECT 1 FROM opt_outs o WHERE o.number = m.number)
         FROM members m WHERE {filter} ORDER BY m.joined_at, m.id"
    );
    let mut st = conn.prepare(&sql).ctx("reading a segment")?;
    st.for_each(&crate::store::db::param_refs(&values), |r| {
        let member = member_from_row(r).ctx("reading a segment")?;
        let suppressed: bool = r.get(AFTER_MEMBER_COLUMNS).ctx("reading a segment")?;
        f(&member, suppressed)
    })
}

/// [`scan_segment`] from the member after `after` ((joined_at, id), the scan's order), at most
/// `limit` members: a keyset page, so every page of an export costs an index seek and its own
/// rows, not a rescan of the members before it.
pub(super) fn scan_segment_page(
    conn: &Conn,
    seg: &Segment,
    after: Option<(i64, i64)>,
    limit: u32,
    mut f: impl FnMut(&Member, bool) -> Result<()>,
) -> Result<()> {
    const OP: &str = "reading a page of a segment";
    let (filter, mut values) = segment_sql(seg);
    let (j, i) = after.unwrap_or((i64::MIN, i64::MIN));
    let n = values.len();
    values.extend([
        Value::Integer(j),
        Value::Integer(i),
        Value::Integer(limit.into()),
    ]);
    let sql = format!(
        "SELECT {MEMBER_COLUMNS}, EXISTS (SELECT 1 FROM opt_outs o WHERE o.number = m.number)
         FROM members m WHERE ({filter}) AND (m.joined_at, m.id) > (?{}, ?{})
         ORDER BY m.joined_at, m.id LIMIT ?{}",
        n + 1,
        n + 2,
        n + 3
    );
    let mut st = conn.prepare(&sql).ctx(OP)?;
    st.for_each(&crate::store::db::param_refs(&values), |r| {
        let member = member_from_row(r).ctx(OP)?;
        let suppressed: bool = r.get(AFTER_MEMBER_COLUMNS).ctx(OP)?;
        f(&member, suppressed)
    })?;
    Ok(())
}

fn is_unique_violation(e: &crate::store::db::DbError) -> bool {
    e.is_constraint_violation()
}

/// Inserts a member with their tags and fields: `(id, suppressed)`, or `None` when the number is
/// already a member. The duplicate is skipped with `ON CONFLICT DO NOTHING` rather than caught as
/// a constraint error: on PostgreSQL a failed statement aborts the whole transaction, and
/// [`super::apply`] carries on after a member who already exists.
fn insert_member(
    tx: &Conn,
    m: &NewMember,
    now: i64,
) -> crate::store::db::DbResult<Option<(i64, bool)>> {
    let suppressed: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM opt_outs WHERE number = ?1)")?
        .query_row(params![&m.number], |r| r.get(0))?;
    let status = if suppressed {
        MemberStatus::OptedOut
    } else {
        m.status.unwrap_or(MemberStatus::PendingConfirmation)
    };
    let id: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO members (number, name, city, region, time_zone, joined_at, status, \
                              home_modem, onboarding_step, updated_at, home_reason, \
                              home_reason_modem)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?8)
         ON CONFLICT (number) DO NOTHING",
        )?
        .insert_id(params![
            m.number,
            m.name,
            m.city,
            m.region,
            m.time_zone,
            m.joined_at,
            status,
            m.home_modem,
            m.onboarding_step,
            now,
            m.home_reason
        ])?;
    let Some(id) = id else {
        return Ok(None);
    };
    let mut tag_st = tx.prepare_cached(
        "INSERT INTO member_tags (member_id, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for tag in &m.tags {
        tag_st.execute(params![id, tag])?;
    }
    super::fields::insert_fields(tx, id, &m.fields)?;
    Ok(Some((id, suppressed)))
}

fn append_consent(
    tx: &Conn,
    number: &str,
    event: ConsentEvent,
    detail: Option<&str>,
    source: ConsentSource,
    at: i64,
) -> crate::store::db::DbResult<()> {
    tx.prepare_cached(
        "INSERT INTO consent_log (number, event, detail, source, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![number, event, detail, source, at])?;
    Ok(())
}

impl Store {
    /// Adds a member and logs a `joined` consent event from `source`. A number on the suppression
    /// list is stored as `opted_out` whatever status was asked for.
    pub fn add_member(&self, m: &NewMember, source: ConsentSource, now: i64) -> Result<Member> {
        validate_number(&m.number)?;
        self.write("adding a member", |tx| add_member_in(tx, m, source, now))?;
        self.member(&m.number)?.ok_or_else(|| StoreError::NotFound {
            what: "member",
            key: m.number.clone(),
        })
    }

    /// Inserts every row or none (CSV import). Each row is logged as `imported`. On a conflict
    /// (duplicate number, within the file or with an existing member) nothing is stored and the
    /// error names the first offending row index (0-based, in `rows`).
    pub fn import_members(&self, rows: &[NewMember], now: i64) -> Result<ImportReport> {
        for (index, m) in rows.iter().enumerate() {
            validate_number(&m.number).map_err(|e| StoreError::ImportConflict {
                index,
                number: m.number.clone(),
                reason: e.to_string(),
            })?;
        }
        self.write("importing members", |tx| {
            let mut report = ImportReport::default();
            for (index, m) in rows.iter().enumerate() {
                let conflict = |reason: String| StoreError::ImportConflict {
                    index,
                    number: m.number.clone(),
                    reason,
                };
                let inserted = insert_member(tx, m, now).map_err(|e| {
                    conflict(if is_unique_violation(&e) {
                        "number already exists".to_string()
                    } else {
                        e.to_string()
                    })
                })?;
                let Some((_, suppressed)) = inserted else {
                    return Err(conflict("number already exists".to_string()));
                };
                append_consent(
                    tx,
                    &m.number,
                    ConsentEvent::Imported,
                    None,
                    ConsentSource::Import,
                    now,
                )
                .ctx("logging consent")?;
                report.inserted += 1;
                report.suppressed += usize::from(suppressed);
            }
            Ok(report)
        })
    }

    /// One member by number.
    pub fn member(&self, number: &str) -> Result<Option<Member>> {
        self.conn()
            .query_row_cached(
                &format!("SELECT {MEMBER_COLUMNS} FROM members m WHERE m.number = ?1"),
                params![number],
                member_from_row,
            )
            .optional()
            .ctx("reading a member")
    }

    /// Applies an update; fails with `NotFound` for an unknown number.
    pub fn update_member(&self, number: &str, u: &MemberUpdate, now: i64) -> Result<Member> {
        self.write("updating a member", |tx| {
            update_member_in(tx, number, u, now)
        })?;
        self.member(number)?.ok_or_else(|| StoreError::NotFound {
            what: "member",
            key: number.to_string(),
        })
    }

    /// Removes a member (tags go with it) and logs `removed`. The suppression list is untouched.
    /// Returns false when there was no such member.
    pub fn remove_member(&self, number: &str, source: ConsentSource, now: i64) -> Result<bool> {
        self.write("removing a member", |tx| {
            let n = tx
                .exec_cached("DELETE FROM members WHERE number = ?1", params![number])
                .ctx("removing a member")?;
            if n > 0 {
                append_consent(tx, number, ConsentEvent::Removed, None, source, now)
                    .ctx("logging consent")?;
            }
            Ok(n > 0)
        })
    }

    /// Members matching `seg`, by join time then id, paged.
    pub fn list_members(&self, seg: &Segment, limit: u32, offset: u32) -> Result<Vec<Member>> {
        let (filter, mut values) = segment_sql(seg);
        values.push(Value::Integer(i64::from(limit)));
        values.push(Value::Integer(i64::from(offset)));
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM members m WHERE {filter}
             ORDER BY m.joined_at, m.id LIMIT ? OFFSET ?"
        );
        let conn = self.conn();
        let mut st = conn.prepare(&sql).ctx("listing members")?;
        st.query_map(&crate::store::db::param_refs(&values), member_from_row)
            .ctx("listing members")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("listing members")
    }

    /// Calls `f` with every member matching `seg`, in join order, and whether the member's
    /// number is on the suppression list. One cursor, nothing collected: memory stays flat
    /// whatever the segment's size (this is how a whole-community export or broadcast preview
    /// reads 100,000 members). `f` runs while the store's connection is locked, so it must not
    /// call back into this `Store` (that would deadlock).
    /// One keyset page of [`Store::for_each_member`]: the members after `after` (the previous
    /// page's last `(joined_at, id)`), at most `limit`.
    pub fn for_each_member_page(
        &self,
        seg: &Segment,
        after: Option<(i64, i64)>,
        limit: u32,
        mut f: impl FnMut(&Member, bool),
    ) -> Result<()> {
        let conn = self.conn();
        scan_segment_page(&conn, seg, after, limit, |m, suppressed| {
            f(m, suppressed);
            Ok(())
        })
    }

    pub fn for_each_member(&self, seg: &Segment, mut f: impl FnMut(&Member, bool)) -> Result<()> {
        let conn = self.conn();
        scan_segment(&conn, seg, |m, suppressed| {
            f(m, suppressed);
            Ok(())
        })
    }

    /// How many members each home modem has (members without one are not counted), from one
    /// `GROUP BY`: what balanced home assignment needs, without reading any member.
    pub fn home_modem_counts(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT home_modem, count(*) FROM members WHERE home_modem IS NOT NULL
                 GROUP BY home_modem ORDER BY home_modem",
            )
            .ctx("counting members per home modem")?;
        st.query_map(params![], |r| {
            Ok((r.get::<String>(0)?, r.get::<i64>(1)?.max(0) as u64))
        })
        .ctx("counting members per home modem")?
        .collect::<crate::store::db::DbResult<_>>()
        .ctx("counting members per home modem")
    }

    /// The numbers of members matching `seg` (what a broadcast expands to).
    pub fn segment_numbers(&self, seg: &Segment) -> Result<Vec<String>> {
        let (filter, values) = segment_sql(seg);
        let sql = format!("SELECT m.number FROM members m WHERE {filter} ORDER BY m.id");
        let conn = self.conn();
        let mut st = conn.prepare(&sql).ctx("expanding a segment")?;
        st.query_map(&crate::store::db::param_refs(&values), |r| r.get(0))
            .ctx("expanding a segment")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("expanding a segment")
    }

    /// How many members match `seg`.
    pub fn count_members(&self, seg: &Segment) -> Result<u64> {
        let (filter, values) = segment_sql(seg);
        let sql = format!("SELECT count(*) FROM members m WHERE {filter}");
        self.conn()
            .query_row_cached(&sql, &crate::store::db::param_refs(&values), |r| {
                r.get::<i64>(0)
            })
            .ctx("counting members")
            .map(|n| n.max(0) as u64)
    }

    /// Member counts per status.
    pub fn member_counts(&self) -> Result<StatusCounts> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT status, count(*) FROM members GROUP BY status")
            .ctx("counting members")?;
        let rows = st
            .query_map(params![], |r| {
                Ok((r.get::<MemberStatus>(0)?, r.get::<i64>(1)?))
            })
            .ctx("counting members")?;
        let mut c = StatusCounts::default();
        for row in rows {
            let (status, n) = row.ctx("counting members")?;
            let n = n.max(0) as u64;
            match status {
                MemberStatus::PendingConfirmation => c.pending_confirmation = n,
                MemberStatus::Active => c.active = n,
                MemberStatus::OptedOut => c.opted_out = n,
            }
        }
        Ok(c)
    }

    /// Records a consent event in one transaction:
    /// - appends it to `consent_log`;
    /// - `opted_out`: puts the number on the suppression list, marks the member `opted_out` and
    ///   cancels every queued outbox row to the number (reason `opted_out`) except compliance
    ///   rows created at or after `at` (the STOP confirmation, enqueued after this call);
    /// - `opted_in`: lifts the suppression and makes the member `active`;
    /// - `confirmed`: makes a pending member `active` (never lifts a suppression);
    /// - `joined`, `imported`, `removed`: log only (use `add_member`/`remove_member` for rows).
    ///
    /// Returns the number of outbox rows cancelled.
    pub fn record_consent(
        &self,
        number: &str,
        event: ConsentEvent,
        detail: Option<&str>,
        source: ConsentSource,
        at: i64,
    ) -> Result<usize> {
        self.write("recording consent", |tx| {
            record_consent_in(tx, number, event, detail, source, at)
        })
    }

    /// True when the number texted STOP and has not texted START since. One primary-key lookup.
    pub fn opted_out(&self, number: &str) -> Result<bool> {
        self.conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM opt_outs WHERE number = ?1)")
            .and_then(|mut st| st.query_row(params![number], |r| r.get(0)))
            .ctx("checking the suppression list")
    }

    /// The consent history of a number, oldest first.
    pub fn consent_history(&self, number: &str) -> Result<Vec<ConsentEntry>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT id, number, event, detail, source, at FROM consent_log
                 WHERE number = ?1 ORDER BY at, id",
            )
            .ctx("reading consent history")?;
        st.query_map(params![number], |r| {
            Ok(ConsentEntry {
                id: r.get(0)?,
                number: r.get(1)?,
                event: r.get(2)?,
                detail: r.get(3)?,
                source: r.get(4)?,
                at: r.get(5)?,
            })
        })
        .ctx("reading consent history")?
        .collect::<crate::store::db::DbResult<_>>()
        .ctx("reading consent history")
    }
}

/// The store only refuses what would corrupt its keys; E.164 validation is the caller's job.
fn validate_number(number: &str) -> Result<()> {
    if number.trim().is_empty() || number.len() > 32 {
        return Err(StoreError::InvalidArgument(format!(
            "member number {number:?}"
        )));
    }
    Ok(())
}

/// The body of [`Store::add_member`], for callers that combine it with other writes in one
/// transaction ([`Store::apply_inbound`]).
pub(super) fn add_member_in(
    tx: &Conn,
    m: &NewMember,
    source: ConsentSource,
    now: i64,
) -> Result<()> {
    validate_number(&m.number)?;
    let duplicate = || StoreError::DuplicateMember {
        number: m.number.clone(),
    };
    let inserted = insert_member(tx, m, now).map_err(|e| {
        if is_unique_violation(&e) {
            duplicate()
        } else {
            StoreError::Sql {
                op: "adding a member",
                source: e,
            }
        }
    })?;
    if inserted.is_none() {
        return Err(duplicate());
    }
    append_consent(tx, &m.number, ConsentEvent::Joined, None, source, now)
        .ctx("logging consent")?;
    Ok(())
}

/// The body of [`Store::update_member`] (see [`add_member_in`]).
pub(super) fn update_member_in(tx: &Conn, number: &str, u: &MemberUpdate, now: i64) -> Result<()> {
    let id: i64 = tx
        .query_row_cached(
            "SELECT id FROM members WHERE number = ?1",
            params![number],
            |r| r.get(0),
        )
        .optional()
        .ctx("updating a member")?
        .ok_or_else(|| StoreError::NotFound {
            what: "member",
            key: number.to_string(),
        })?;
    // Column names come from this fixed list, values are bound.
    let fields: [(&str, &Option<Option<String>>); 6] = [
        ("name", &u.name),
        ("city", &u.city),
        ("region", &u.region),
        ("time_zone", &u.time_zone),
        ("home_modem", &u.home_modem),
        ("onboarding_step", &u.onboarding_step),
    ];
    for (column, value) in fields {
        if let Some(v) = value {
            tx.exec_cached(
                &format!("UPDATE members SET {column} = ?2, updated_at = ?3 WHERE id = ?1"),
                params![id, v, now],
            )
            .ctx("updating a member")?;
        }
    }
    if let Some(reason) = &u.home_reason {
        // Recorded for the home it explains, so a later move without a reason shows as such.
        tx.exec_cached(
            "UPDATE members SET home_reason = ?2, home_reason_modem = home_modem WHERE id = ?1",
            params![id, reason],
        )
        .ctx("updating a member")?;
    }
    if !u.fields.is_empty() {
        super::fields::update_fields(tx, id, &u.fields, now).ctx("updating member fields")?;
    }
    if let Some(tags) = &u.tags {
        tx.exec_cached("DELETE FROM member_tags WHERE member_id = ?1", params![id])
            .ctx("replacing tags")?;
        for tag in tags {
            tx.exec_cached(
                "INSERT INTO member_tags (member_id, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![id, tag],
            )
            .ctx("replacing tags")?;
        }
        tx.exec_cached(
            "UPDATE members SET updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )
        .ctx("replacing tags")?;
    }
    Ok(())
}

/// The body of [`Store::record_consent`] (see [`add_member_in`]).
pub(super) fn record_consent_in(
    tx: &Conn,
    number: &str,
    event: ConsentEvent,
    detail: Option<&str>,
    source: ConsentSource,
    at: i64,
) -> Result<usize> {
    append_consent(tx, number, event, detail, source, at).ctx("logging consent")?;
    let mut cancelled = 0;
    match event {
        ConsentEvent::OptedOut => {
            tx.exec_cached(
                "INSERT INTO opt_outs (number, since, detail) VALUES (?1, ?2, ?3)
                 ON CONFLICT (number) DO NOTHING",
                params![number, at, detail],
            )
            .ctx("suppressing a number")?;
            tx.exec_cached(
                "UPDATE members SET status = 'opted_out', updated_at = ?2 WHERE number = ?1",
                params![number, at],
            )
            .ctx("opting a member out")?;
            cancelled = tx
                .exec_cached(
                    "UPDATE outbox SET state = 'cancelled', last_error = 'opted_out',
                                       finished_at = ?2
                     WHERE to_number = ?1 AND state = 'queued'
                       AND (kind <> 'compliance' OR created_at < ?2)",
                    params![number, at],
                )
                .ctx("cancelling queued messages")?;
        }
        ConsentEvent::OptedIn => {
            tx.exec_cached("DELETE FROM opt_outs WHERE number = ?1", params![number])
                .ctx("lifting a suppression")?;
            tx.exec_cached(
                "UPDATE members SET status = 'active', updated_at = ?2 WHERE number = ?1",
                params![number, at],
            )
            .ctx("opting a member in")?;
        }
        ConsentEvent::Confirmed => {
            tx.exec_cached(
                "UPDATE members SET status = 'active', updated_at = ?2
                 WHERE number = ?1 AND status = 'pending_confirmation'",
                params![number, at],
            )
            .ctx("confirming a member")?;
        }
        ConsentEvent::Joined | ConsentEvent::Imported | ConsentEvent::Removed => {}
    }
    Ok(cancelled)
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Repeated inside: clippy allows `unwrap` in test helpers only under a visible `cfg(test)`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MessageKind, NewOutbox, OutboxState};

    fn nm(number: &str, city: &str, tags: &[&str], joined_at: i64) -> NewMember {
        NewMember {
            number: number.into(),
            name: Some(format!("name {number}")),
            city: Some(city.into()),
            region: Some("10001".into()),
            time_zone: Some("America/New_York".into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            status: Some(MemberStatus::Active),
            joined_at,
            ..NewMember::default()
        }
    }

    #[test]
    fn add_get_update_remove() {
        let s = fresh();
        let m = s
            .add_member(
                &nm("+15550001", "Paris", &["vip", "a"], 100),
                ConsentSource::Sms,
                100,
            )
            .unwrap();
        assert_eq!(m.tags, vec!["a", "vip"]);
        assert_eq!(m.status, MemberStatus::Active);
        assert!(matches!(
            s.add_member(&nm("+15550001", "X", &[], 1), ConsentSource::Cli, 1),
            Err(StoreError::DuplicateMember { .. })
        ));
        let u = MemberUpdate {
            city: Some(Some("Lyon".into())),
            name: Some(None),
            tags: Some(vec!["b".into()]),
            onboarding_step: Some(Some("ask_city".into())),
            ..MemberUpdate::default()
        };
        let m = s.update_member("+15550001", &u, 200).unwrap();
        assert_eq!(m.city.as_deref(), Some("Lyon"));
        assert_eq!(m.name, None);
        assert_eq!(m.tags, vec!["b"]);
        assert_eq!(m.onboarding_step.as_deref(), Some("ask_city"));
        assert_eq!(m.updated_at, 200);
        assert!(matches!(
            s.update_member("+1999", &u, 1),
            Err(StoreError::NotFound { .. })
        ));
        assert!(
            s.remove_member("+15550001", ConsentSource::Cli, 300)
                .unwrap()
        );
        assert!(
            !s.remove_member("+15550001", ConsentSource::Cli, 300)
                .unwrap()
        );
        assert!(s.member("+15550001").unwrap().is_none());
        let events: Vec<_> = s
            .consent_history("+15550001")
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(events, vec![ConsentEvent::Joined, ConsentEvent::Removed]);
    }

    #[test]
    fn segments_filter_with_bound_values() {
        let s = fresh();
        s.add_member(&nm("+1001", "Paris", &["vip"], 100), ConsentSource::Cli, 1)
            .unwrap();
        s.add_member(
            &nm("+1002", "paris", &["vip", "press"], 200),
            ConsentSource::Cli,
            1,
        )
        .unwrap();
        s.add_member(&nm("+1003", "Lyon", &["press"], 300), ConsentSource::Cli, 1)
            .unwrap();
        let mut pending = nm("+1004", "Lyon", &[], 400);
        pending.status = None;
        s.add_member(&pending, ConsentSource::Sms, 1).unwrap();

        let count = |seg: Segment| s.count_members(&seg).unwrap();
        assert_eq!(count(Segment::default()), 4);
        assert_eq!(
            count(Segment {
                city: Some("PARIS".into()),
                ..Segment::default()
            }),
            2
        );
        assert_eq!(
            count(Segment {
                tags: vec!["vip".into(), "press".into()],
                ..Segment::default()
            }),
            1
        );
        assert_eq!(
            count(Segment {
                status: Some(MemberStatus::PendingConfirmation),
                ..Segment::default()
            }),
            1
        );
        assert_eq!(
            count(Segment {
                joined_since: Some(200),
                joined_before: Some(400),
                ..Segment::default()
            }),
            2
        );
        assert_eq!(
            count(Segment {
                region: Some("10001".into()),
                city: Some("Lyon".into()),
                ..Segment::default()
            }),
            2
        );
        // An injection attempt is just a value that matches nothing.
        assert_eq!(
            count(Segment {
                city: Some("x' OR '1'='1".into()),
                ..Segment::default()
            }),
            0
        );
        let listed = s
            .list_members(
                &Segment {
                    tags: vec!["press".into()],
                    ..Segment::default()
                },
                10,
                0,
            )
            .unwrap();
        assert_eq!(
            listed.iter().map(|m| m.number.as_str()).collect::<Vec<_>>(),
            ["+1002", "+1003"]
        );
        let page = s.list_members(&Segment::default(), 2, 2).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].number, "+1003");
        assert_eq!(
            s.segment_numbers(&Segment {
                city: Some("lyon".into()),
                ..Segment::default()
            })
            .unwrap(),
            ["+1003", "+1004"]
        );
        let c = s.member_counts().unwrap();
        assert_eq!((c.active, c.pending_confirmation, c.opted_out), (3, 1, 0));
    }

    #[test]
    fn import_is_all_or_nothing_and_names_the_row() {
        let s = fresh();
        s.add_member(&nm("+2003", "A", &[], 1), ConsentSource::Cli, 1)
            .unwrap();
        let rows = vec![
            nm("+2001", "A", &["t"], 1),
            nm("+2002", "A", &[], 1),
            nm("+2003", "A", &[], 1),
        ];
        match s.import_members(&rows, 5).unwrap_err() {
            StoreError::ImportConflict { index, number, .. } => {
                assert_eq!(index, 2);
                assert_eq!(number, "+2003");
            }
            e => panic!("unexpected {e}"),
        }
        assert!(s.member("+2001").unwrap().is_none());
        assert!(s.consent_history("+2001").unwrap().is_empty());
        // Duplicate inside the file.
        let rows = vec![nm("+2001", "A", &[], 1), nm("+2001", "B", &[], 1)];
        assert!(matches!(
            s.import_members(&rows, 5),
            Err(StoreError::ImportConflict { index: 1, .. })
        ));
        // Invalid number is reported before touching the database.
        let rows = vec![nm("+2001", "A", &[], 1), nm("", "B", &[], 1)];
        assert!(matches!(
            s.import_members(&rows, 5),
            Err(StoreError::ImportConflict { index: 1, .. })
        ));
        // A clean file imports fully; a suppressed number comes in opted out.
        s.record_consent(
            "+2002",
            ConsentEvent::OptedOut,
            Some("STOP"),
            ConsentSource::Sms,
            3,
        )
        .unwrap();
        let rows = vec![nm("+2001", "A", &["t"], 1), nm("+2002", "A", &[], 1)];
        let r = s.import_members(&rows, 5).unwrap();
        assert_eq!(
            r,
            ImportReport {
                inserted: 2,
                suppressed: 1
            }
        );
        assert_eq!(
            s.member("+2002").unwrap().unwrap().status,
            MemberStatus::OptedOut
        );
        assert_eq!(s.member("+2001").unwrap().unwrap().tags, ["t"]);
    }

    #[test]
    fn import_of_many_rows_is_one_transaction() {
        let s = fresh();
        let rows: Vec<_> = (0..5000)
            .map(|i| nm(&format!("+3{i:08}"), "C", &["bulk"], i))
            .collect();
        let started = std::time::Instant::now();
        assert_eq!(s.import_members(&rows, 1).unwrap().inserted, 5000);
        eprintln!("imported 5000 members in {:?}", started.elapsed());
        assert_eq!(
            s.count_members(&Segment {
                tags: vec!["bulk".into()],
                ..Segment::default()
            })
            .unwrap(),
            5000
        );
    }

    #[test]
    fn stop_suppresses_cancels_and_survives_removal_until_start() {
        let s = fresh();
        let n = "+4001";
        s.add_member(&nm(n, "A", &[], 1), ConsentSource::Sms, 1)
            .unwrap();
        let bulk = s
            .enqueue(&NewOutbox::new(n, "news", MessageKind::Bulk, 2))
            .unwrap();
        assert!(!s.opted_out(n).unwrap());
        let cancelled = s
            .record_consent(
                n,
                ConsentEvent::OptedOut,
                Some("stop"),
                ConsentSource::Sms,
                10,
            )
            .unwrap();
        assert_eq!(cancelled, 1);
        assert!(s.opted_out(n).unwrap());
        let row = s.outbox_row(bulk).unwrap();
        assert_eq!(row.state, OutboxState::Cancelled);
        assert_eq!(row.last_error.as_deref(), Some("opted_out"));
        assert_eq!(s.member(n).unwrap().unwrap().status, MemberStatus::OptedOut);
        // Removing and re-adding does not lift the opt-out; neither does `confirmed`.
        s.remove_member(n, ConsentSource::Cli, 11).unwrap();
        let m = s
            .add_member(&nm(n, "A", &[], 12), ConsentSource::Cli, 12)
            .unwrap();
        assert_eq!(m.status, MemberStatus::OptedOut);
        s.record_consent(n, ConsentEvent::Confirmed, None, ConsentSource::Sms, 13)
            .unwrap();
        assert!(s.opted_out(n).unwrap());
        assert_eq!(s.member(n).unwrap().unwrap().status, MemberStatus::OptedOut);
        // START lifts it.
        s.record_consent(
            n,
            ConsentEvent::OptedIn,
            Some("START"),
            ConsentSource::Sms,
            14,
        )
        .unwrap();
        assert!(!s.opted_out(n).unwrap());
        assert_eq!(s.member(n).unwrap().unwrap().status, MemberStatus::Active);
        assert_eq!(s.consent_history(n).unwrap().len(), 6);
    }

    #[test]
    fn segment_scans_and_keyset_pages_agree_in_join_order_with_suppression() {
        let s = fresh();
        // Two members share a join time: the id breaks the tie.
        for (number, city, joined) in [
            ("+6003", "Paris", 300),
            ("+6001", "Lyon", 100),
            ("+6002", "Paris", 200),
            ("+6004", "Paris", 200),
            ("+6005", "Lyon", 500),
        ] {
            s.add_member(&nm(number, city, &[], joined), ConsentSource::Cli, 1)
                .unwrap();
        }
        s.record_consent("+6002", ConsentEvent::OptedOut, None, ConsentSource::Sms, 2)
            .unwrap();
        let scan = |seg: &Segment| {
            let mut out = Vec::new();
            s.for_each_member(seg, |m, suppressed| out.push((m.number.clone(), suppressed)))
                .unwrap();
            out
        };
        let pages = |seg: &Segment, limit| {
            let mut out = Vec::new();
            let mut after = None;
            loop {
                let mut page = Vec::new();
                s.for_each_member_page(seg, after, limit, |m, suppressed| {
                    page.push((m.joined_at, m.id, m.number.clone(), suppressed))
                })
                .unwrap();
                let Some(last) = page.last() else { break };
                after = Some((last.0, last.1));
                out.extend(page.into_iter().map(|(_, _, n, sup)| (n, sup)));
            }
            out
        };
        let everyone = Segment::default();
        let want: Vec<(String, bool)> = [
            ("+6001", false),
            ("+6002", true),
            ("+6004", false),
            ("+6003", false),
            ("+6005", false),
        ]
        .iter()
        .map(|(n, sup)| (n.to_string(), *sup))
        .collect();
        assert_eq!(scan(&everyone), want);
        assert_eq!(pages(&everyone, 2), want);
        let paris = Segment {
            city: Some("paris".into()),
            ..Segment::default()
        };
        let want_paris: Vec<(String, bool)> = want
            .iter()
            .filter(|(n, _)| ["+6002", "+6003", "+6004"].contains(&n.as_str()))
            .cloned()
            .collect();
        assert_eq!(scan(&paris), want_paris);
        assert_eq!(pages(&paris, 1), want_paris);
        assert_eq!(s.count_members(&everyone).unwrap(), 5);
        assert_eq!(s.segment_numbers(&paris).unwrap().len(), 3);
    }

    #[test]
    fn confirmed_activates_pending_member() {
        let s = fresh();
        let mut m = nm("+5001", "A", &[], 1);
        m.status = None;
        assert_eq!(
            s.add_member(&m, ConsentSource::Sms, 1).unwrap().status,
            MemberStatus::PendingConfirmation
        );
        s.record_consent(
            "+5001",
            ConsentEvent::Confirmed,
            Some("YES"),
            ConsentSource::Sms,
            2,
        )
        .unwrap();
        assert_eq!(
            s.member("+5001").unwrap().unwrap().status,
            MemberStatus::Active
        );
    }
}
}

// EXPLAIN QUERY PLAN is SQLite's; PostgreSQL chooses its own plans.
#[cfg(test)]
mod sqlite_only_tests {
    use super::*;

    #[test]
    fn opted_out_uses_the_primary_key() {
        let s = Store::open_in_memory().unwrap();
        let conn = s.conn();
        let plan: String = conn
            .query_row_cached(
                "EXPLAIN QUERY PLAN SELECT EXISTS (SELECT 1 FROM opt_outs WHERE number = ?1)",
                params!["+1"],
                |r| r.get(3),
            )
            .unwrap();
        let all: Vec<String> = conn
            .prepare("EXPLAIN QUERY PLAN SELECT 1 FROM opt_outs WHERE number = ?1")
            .unwrap()
            .query_map(params!["+1"], |r| r.get(3))
            .unwrap()
            .collect::<crate::store::db::DbResult<_>>()
            .unwrap();
        assert!(
            all.iter().any(|d| d.contains("PRIMARY KEY")),
            "{plan} / {all:?}"
        );
    }
}
