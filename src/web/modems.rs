//! The modems page (`GET /modems`: state, network, signal, operator, SIM, today's counts against
//! the daily limit, the last error) and the dashboard (`GET /`: the gateway's one-screen
//! summary, the latest console changes with who made them, and "log out everywhere").
//!
//! Both read only (`modems`, `status`), so every role sees them; the modem table refreshes
//! live from the event stream (`data-live`).

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::layout::{Nav, csrf, html, page};
use super::session::Page;
use super::{Web, WebError, expect_reply};
use crate::protocol::{NoArgs, Reply, Request};
use crate::time::rfc3339;

/// Console changes listed on the dashboard.
const AUDIT_ROWS: u32 = 10;

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
                th scope="col" { "Today" } th scope="col" { "Last error" }
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
                        td { (m.iccid.as_deref().unwrap_or("")) }
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
