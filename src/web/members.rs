//! Members: `GET /members` (search and filter, opt-out status), `GET`/`POST /members/{number}`
//! (view; owners edit fields and tags), `GET`/`POST /members/import` (CSV with a dry run that
//! lists numbered row errors; owners), `GET /members/export` (CSV download; owners).
//!
//! Search (`q`): a segment when it holds `=`, `<` or `>` (`city=Springfield`, the CLI's syntax);
//! one member by number when it starts with `+` or a digit; otherwise a case-insensitive match
//! on name or city within the first [`NAME_SCAN`] members of the listing, because the command
//! layer has no text search (the page says when the scan was cut short).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, csrf, html, notice, page, path_segment};
use super::login::redirect;
use super::session::{Form, Page, Session};
use super::{Web, WebError, expect_reply};
use crate::protocol::{
    ImportResult, MemberGetArgs, MemberItem, MemberUpdateArgs, MembersExportArgs,
    MembersImportArgs, MembersListArgs, Reply, Request,
};

/// Members shown per page.
const PAGE: u32 = 100;
/// Members scanned for a name search.
const NAME_SCAN: u32 = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    offset: u32,
    done: Option<String>,
}

/// How a member's consent reads in the table: for an opt-out, when and how.
fn status_text(m: &MemberItem) -> String {
    match m.status.as_str() {
        "opted_out" => match &m.opt_out {
            Some(o) => {
                let how = match (o.source.as_str(), o.detail.as_deref()) {
                    ("sms", Some(d)) => format!("texted \u{201c}{d}\u{201d}"),
                    ("sms", None) => "by text".to_string(),
                    ("cli", _) => "by an operator".to_string(),
                    (other, _) => format!("by {other}"),
                };
                format!("opted out {} ({how})", o.at)
            }
            None => "opted out".to_string(),
        },
        "pending_confirmation" => "waiting for confirmation".to_string(),
        other => other.replace('_', " "),
    }
}

fn table(members: &[MemberItem]) -> Markup {
    html! {
        table id="members" {
            thead { tr {
                th scope="col" { "Number" } th scope="col" { "Name" } th scope="col" { "City" }
                th scope="col" { "Tags" } th scope="col" { "Status" } th scope="col" { "Joined" }
            } }
            tbody {
                @for m in members {
                    tr.member data-number=(m.number) {
                        td { a href={ "/members/" (path_segment(&m.number)) } { (m.number) } }
                        td { (m.name.as_deref().unwrap_or("")) }
                        td { (m.city.as_deref().unwrap_or("")) }
                        td { (m.tags.join(", ")) }
                        td.status { (status_text(m)) }
                        td { time datetime=(m.joined_at) { (m.joined_at) } }
                    }
                }
            }
        }
    }
}

/// The members a search stands for, and a note about how it was read.
async fn search(
    web: &Web,
    s: &Session,
    q: &str,
    offset: u32,
) -> Result<(Vec<MemberItem>, u64, Option<String>), WebError> {
    let list = |segment: Option<String>, limit: u32, offset: u32| {
        Request::MembersList(MembersListArgs {
            segment,
            limit: Some(limit),
            offset: Some(offset),
        })
    };
    if q.is_empty() || q.contains(['=', '<', '>']) {
        let segment = Some(q.to_string()).filter(|q| !q.is_empty());
        let p = expect_reply!(
            web.run(s, list(segment, PAGE, offset)).await?,
            Reply::MembersList
        );
        return Ok((p.members, p.total, None));
    }
    if q.starts_with('+') || q.starts_with(|c: char| c.is_ascii_digit()) {
        let got = web
            .run(
                s,
                Request::MembersGet(MemberGetArgs {
                    number: q.to_string(),
                }),
            )
            .await;
        return match got {
            Ok(Reply::MembersGet(m)) => Ok((vec![m], 1, None)),
            Ok(_) | Err(WebError::NotFound(_)) => Ok((Vec::new(), 0, None)),
            Err(WebError::Invalid(m)) => Ok((Vec::new(), 0, Some(m))),
            Err(e) => Err(e),
        };
    }
    let p = expect_reply!(
        web.run(s, list(None, NAME_SCAN, 0)).await?,
        Reply::MembersList
    );
    let needle = q.to_lowercase();
    let hit = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|v| v.to_lowercase().contains(&needle))
    };
    let found: Vec<MemberItem> = p
        .members
        .into_iter()
        .filter(|m| hit(&m.name) || hit(&m.city))
        .collect();
    let note = (p.total > u64::from(NAME_SCAN)).then(|| {
        format!(
            "Searched names and cities of the first {NAME_SCAN} of {} members; use a segment \
             such as city=… for the rest.",
            p.total
        )
    });
    let n = found.len() as u64;
    Ok((found, n, note))
}

/// `GET /members`.
pub async fn list(
    State(web): State<Web>,
    Page(s): Page,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let query = q.q.trim().to_string();
    let (members, total, note) = match search(&web, &s, &query, q.offset).await {
        Err(WebError::Invalid(m)) => (Vec::new(), 0, Some(m)),
        other => other?,
    };
    let done = q.done.as_deref().map(|_| "Saved.");
    let next = u64::from(q.offset) + u64::from(PAGE);
    let body = html! {
        (notice(done))
        form id="member-search" method="get" action="/members" role="search" {
            label for="q" { "Search" }
            " "
            input id="q" name="q" type="search" value=(query)
                placeholder="name, +number, or city=Springfield";
            " "
            button type="submit" { "Search" }
        }
        @if let Some(n) = &note { p.note { (n) } }
        p { (total) " member(s)" }
        (table(&members))
        @if next < total && !query.contains(['+']) {
            p { a href={ "/members?offset=" (next) "&q=" (url_query(&query)) } { "Next page" } }
        }
        @if s.is_owner() {
            p {
                a href="/members/import" { "Import CSV" }
                " · "
                a href={ "/members/export?q=" (url_query(&query)) } { "Export CSV" }
            }
        }
    };
    Ok(html(page(&s, Nav::Members, "Members", body)))
}

fn url_query(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /members/{number}`.
pub async fn edit(
    State(web): State<Web>,
    Page(s): Page,
    Path(number): Path<String>,
) -> Result<Response, WebError> {
    let m = expect_reply!(
        web.run(&s, Request::MembersGet(MemberGetArgs { number }))
            .await?,
        Reply::MembersGet
    );
    let field = |id: &str, label: &str, value: &Option<String>| {
        html! {
            p {
                label for=(id) { (label) }
                input id=(id) name=(id) type="text" value=(value.as_deref().unwrap_or(""))
                    disabled[!s.is_owner()];
            }
        }
    };
    let body = html! {
        p { "Status: " span.status { (status_text(&m)) } " · joined "
            time datetime=(m.joined_at) { (m.joined_at) }
            @if let Some(h) = &m.home_modem { " · home modem " (h) } }
        p { a href={ "/conversations/" (path_segment(&m.number)) } { "Conversation" } }
        form id="member-edit" method="post" action={ "/members/" (path_segment(&m.number)) } {
            (csrf(&s))
            (field("name", "Name", &m.name))
            (field("city", "City", &m.city))
            (field("region", "Region", &m.region))
            (field("time_zone", "Time zone", &m.time_zone))
            (field("tags", "Tags (comma-separated)", &Some(m.tags.join(", "))))
            @if s.is_owner() {
                p { button id="member-save" type="submit" { "Save" } }
            }
        }
        @if !m.fields.is_empty() {
            h2 { "Answers" }
            dl { @for (k, v) in &m.fields { dt { (k) } dd { (v) } } }
        }
    };
    Ok(html(page(&s, Nav::Members, &m.number, body)))
}

/// `POST /members/{number}`: `members_update` (owners).
pub async fn update(
    State(web): State<Web>,
    Page(s): Page,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    s.require_owner("Editing members")?;
    let form = Form::parse(&body);
    s.check_csrf(&form)?;
    let tags = form.get("tags").map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let args = MemberUpdateArgs {
        number: number.clone(),
        name: form.text("name"),
        city: form.text("city"),
        region: form.text("region"),
        time_zone: form.text("time_zone"),
        tags,
    };
    web.run(&s, Request::MembersUpdate(args)).await?;
    web.audit(&s, "members_update", number.clone()).await;
    Ok(redirect("/members?done=saved"))
}

fn import_page(s: &Session, csv: &str, result: Option<&ImportResult>) -> Markup {
    html! {
        form id="import" method="post" action="/members/import" {
            (csrf(s))
            p {
                label for="csv" { "CSV (header row: number,name,city,region,tags,…)" }
                textarea id="csv" name="csv" rows="10" required { (csv) }
            }
            p {
                input id="dry_run" name="dry_run" type="checkbox" value="1" checked;
                label for="dry_run" { "Dry run: check every row, import nothing" }
            }
            p { button id="import-submit" type="submit" { "Import" } }
        }
        @if let Some(r) = result {
            section id="import-result" aria-label="Import result" {
                @if r.errors.is_empty() {
                    p.notice role="status" {
                        @if r.dry_run {
                            (r.valid) " row(s) valid; nothing imported yet (dry run)."
                        } @else {
                            (r.imported) " imported, " (r.suppressed) " on the opt-out list."
                        }
                    }
                } @else {
                    p.error role="alert" { (r.errors.len()) " row(s) have errors; nothing was imported." }
                    ol id="import-errors" {
                        @for e in &r.errors {
                            li data-row=(e.row) { "Row " (e.row) ": " (e.message) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /members/import`.
pub async fn import_form(Page(s): Page) -> Result<Response, WebError> {
    s.require_owner("Importing members")?;
    Ok(html(page(
        &s,
        Nav::Members,
        "Import members",
        import_page(&s, "", None),
    )))
}

/// `POST /members/import`: `members_import`, a dry run unless the box is cleared.
pub async fn import(
    State(web): State<Web>,
    Page(s): Page,
    body: Bytes,
) -> Result<Response, WebError> {
    s.require_owner("Importing members")?;
    let form = Form::parse(&body);
    s.check_csrf(&form)?;
    let csv = form.get("csv").unwrap_or("").to_string();
    let dry_run = form.get("dry_run").is_some();
    let r = expect_reply!(
        web.run(
            &s,
            Request::MembersImport(MembersImportArgs {
                csv: csv.clone(),
                dry_run
            })
        )
        .await?,
        Reply::MembersImport
    );
    if !dry_run && r.errors.is_empty() {
        web.audit(&s, "members_import", format!("{} imported", r.imported))
            .await;
    }
    Ok(html(page(
        &s,
        Nav::Members,
        "Import members",
        import_page(&s, &csv, Some(&r)),
    )))
}

/// `GET /members/export?q=SEGMENT`: the CSV as a download (owners).
pub async fn export(
    State(web): State<Web>,
    Page(s): Page,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    s.require_owner("Exporting members")?;
    let segment = Some(q.q.trim().to_string()).filter(|q| q.contains(['=', '<', '>']));
    let data = expect_reply!(
        web.run(
            &s,
            Request::MembersExport(MembersExportArgs {
                segment,
                limit: None,
                after: None
            })
        )
        .await?,
        Reply::MembersExport
    );
    web.audit(&s, "members_export", format!("{} members", data.count))
        .await;
    let mut r = data.csv.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"members.csv\""),
    );
    Ok(r)
}
