//! The modems page (`GET /modems`: state, network, signal, operator, SIM and balance, today's counts against
//! the daily limit, the last error) and the dashboard (`GET /`: the gateway's one-screen
//! summary, a small chart of members joined per day, the latest console changes with who made
//! them, and "log out everywhere").
//!
//! Both read only (`modems`, `status`), so every role sees them; the modem table refreshes
//! live from the event stream (`data-live`).

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{Nav, csrf, html, page};
use super::session::Page;
use super::{Web, WebError, expect_reply};
use crate::protocol::{MembersListArgs, NoArgs, Reply, Request};
use crate::time::rfc3339;

/// Console changes listed on the dashboard.
const AUDIT_ROWS: u32 = 10;
/// Days in the "joined" chart.
const CHART_DAYS: i64 = 14;
const DAY_MS: i64 = 86_400_000;

/// Members who joined on each of the last [`CHART_DAYS`] days (UTC), oldest first: one
/// `members_list` count per day with the segment `joined>=D,joined<=D`, so the chart uses the
/// same filter as a broadcast to "who joined that day".
async fn joined_per_day(web: &Web, s: &super::Session) -> Result<Vec<(String, u64)>, WebError> {
    let now = web.ctx.now();
    let mut days = Vec::new();
    for back in (0..CHART_DAYS).rev() {
        let day: String = rfc3339(now - back * DAY_MS).chars().take(10).collect();
        let page = expect_reply!(
            web.run(
                s,
                Request::MembersList(MembersListArgs {
                    segment: Some(format!("joined>={day},joined<={day}")),
                    limit: Some(0),
                    offset: None,
                })
            )
            .await?,
            Reply::MembersList
        );
        days.push((day, page.total));
    }
    Ok(days)
}

/// A bar chart as inline SVG (attributes only: no style, which the CSP forbids inline), with
/// the figures also as a table for screen readers and for reading exact numbers.
fn chart(days: &[(String, u64)]) -> Markup {
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (w, h, bar) = (14 * 20, 80u64, 14);
    let summary = days
        .iter()
        .map(|(d, n)| format!("{d}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        figure id="joined-chart" {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (w) " " (h) }
                width=(w) height=(h) role="img"
                aria-label={ "Members joined per day: " (summary) } {
                @for (i, (_, n)) in days.iter().enumerate() {
                    @let bh = (n * (h - 4) / max).max(u64::from(*n > 0));
                    rect x=(i * 20 + 3) y=(h - bh) width=(bar) height=(bh) fill="#0b5cad" {}
                }
            }
            figcaption {
                "Members joined per day, last " (CHART_DAYS) " days (UTC): "
                (days.iter().map(|(_, n)| *n).sum::<u64>()) " in all"
            }
        }
    }
}

/// The SIM's cells: its shortened ICCID and number (with a notice when a different SIM than
/// before is in this modem) and its last balance, marked when below the threshold.
fn sim_cells(m: &crate::protocol::ModemInfo) -> Markup {
    let sim = m.sim.as_ref();
    let iccid = sim
        .and_then(|s| s.iccid_short.clone())
        .or_else(|| m.iccid.clone())
        .unwrap_or_default();
    html! {
        td.sim {
            (iccid)
            @if let Some(n) = sim.and_then(|s| s.number.as_deref()) { " " (n) }
            @if let Some(prev) = sim.and_then(|s| s.previous_iccid.as_deref()) {
                br; strong { "new SIM (was " (prev) ")" }
            }
        }
        td.balance {
            @if let Some(s) = sim {
                @if let Some(b) = s.balance {
                    (format!("{b:.2}"))
                    @if s.low_balance { " " strong { "low" } }
                    @if let Some(at) = &s.balance_at { br; small { "read " (at) } }
                }
            }
        }
    }
}

/// `GET /modems`.
pub async fn page_route(State(web): State<Web>, Page(s): Page) -> Result<Response, WebError> {
    let modems = expect_reply!(
        web.run(&s, Request::Modems(NoArgs {})).await?,
        Reply::Modems
    );
    let body = html! {
        table id="modems" data-live {
            thead { tr {
                th scope="col" { "Modem" } th scope="col" { "State" } th scope="col" { "Network" }
                th scope="col" { "Signal" } th scope="col" { "Operator" } th scope="col" { "SIM" }
                th scope="col" { "Balance" } th scope="col" { "Today" } th scope="col" { "Last error" }
            } }
            tbody {
                @for m in &modems {
                    tr.modem data-name=(m.name) {
                        th scope="row" { (m.name) }
                        td.state {
                            (m.state)
                            @if let Some(p) = &m.paused { " (" (p) ")" }
                            @if let Some(w) = &m.waiting { " · " (w) }
                        }
                        td { (m.registration) }
                        td { @if let Some(d) = m.signal_dbm { (d) " dBm" } }
                        td { (m.operator.as_deref().unwrap_or("")) }
                        (sim_cells(m))
                        td {
                            (m.sent_today) " sent"
                            @if let Some(l) = m.per_day { " of " (l) }
                            ", " (m.received_today) " received"
                        }
                        td { (m.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    };
    Ok(html(page(&s, Nav::Modems, "Modems", body)))
}

/// `GET /`.
pub async fn dashboard(State(web): State<Web>, Page(s): Page) -> Result<Response, WebError> {
    let st = expect_reply!(
        web.run(&s, Request::Status(NoArgs {})).await?,
        Reply::Status
    );
    let days = joined_per_day(&web, &s).await?;
    let store = web.ctx.store.clone();
    let changes = tokio::task::spawn_blocking(move || store.web_audit_recent(AUDIT_ROWS))
        .await
        .map_err(|e| WebError::Internal(format!("dashboard: {e}")))?
        .unwrap_or_default();
    let body = html! {
        dl id="summary" data-live {
            dt { "Modems ready" } dd { (st.modems_ready) " of " (st.modems_total) }
            dt { "Members" } dd { (st.members) }
            dt { "Sent today" } dd { (st.sent_today) }
            dt { "Received today" } dd { (st.received_today) }
            dt { "Queued" } dd { (st.outbox_queued) }
            dt { "In doubt" } dd { (st.outbox_in_doubt) }
            dt { "Broadcasts going out" } dd { (st.broadcasts_active) }
        }
        h2 { "Joined" }
        (chart(&days))
        @if s.is_owner() && !changes.is_empty() {
            h2 { "Latest changes in the console" }
            ul id="audit" {
                @for c in &changes {
                    li {
                        time datetime=(rfc3339(c.at)) { (rfc3339(c.at)) }
                        " " (c.user) ": " (c.action) " — " (c.detail)
                    }
                }
            }
        }
        h2 { "Sessions" }
        form id="logout-everywhere" method="post" action="/logout-everywhere" {
            (csrf(&s))
            p {
                "Lost a phone or left a session open somewhere? "
                button type="submit" { "Log out everywhere" }
            }
        }
    };
    Ok(html(page(&s, Nav::Dashboard, "Dashboard", body)))
}
