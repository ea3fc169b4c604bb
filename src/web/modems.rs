//! The modems page (`GET /modems`: state, network, signal, operator, SIM and balance, today's counts against
//! the daily limit, the last error); the dashboard is `dashboard.rs`.
//!
//! It reads only (`modems`), so every role sees it; the modem table refreshes live from the
//! event stream (`data-live`).

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{Nav, html, page};
use super::session::Page;
use super::{Web, WebError, expect_reply};
use crate::protocol::{NoArgs, Reply, Request};

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
