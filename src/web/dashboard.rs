//! The dashboard (`GET /`): the gateway's one-screen summary (`status`), two small charts over the
//! last 14 UTC days — members joined and opted out, messages received and sent (`activity`) —
//! the latest alerts (`activity`), the latest console changes with who made them (owners), and
//! "log out everywhere".
//!
//! It reads only (`status` and `activity` need the `read` scope), so every role sees it; it must
//! not count anything itself (the command layer and the store do). Why two bars per day and not
//! lines: a bar of 0 reads as "nothing that day" at a glance on a phone, and the SVG needs only
//! attributes (the CSP forbids inline style). Each chart's figures are also its image label and a
//! table under "Figures" (a `details` element), so screen readers and anyone wanting the exact
//! numbers get them without hovering. Alert messages come from the journal and are untrusted
//! text: maud escapes them like every other value.

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{Nav, csrf, html, page};
use super::session::Page;
use super::{Web, WebError, expect_reply};
use crate::protocol::{ActivityArgs, ActivityDay, AlertItem, NoArgs, Reply, Request};
use crate::time::rfc3339;

/// Console changes listed on the dashboard.
const AUDIT_ROWS: u32 = 10;
/// Days in the charts.
const CHART_DAYS: u32 = 14;
/// Alerts listed.
const ALERT_ROWS: u32 = 10;

/// One series of a chart: its name, its colour, and its figure of a day.
type Series<'a> = (&'a str, &'a str, fn(&ActivityDay) -> u64);

/// One chart: its element id, title, and two series.
struct Chart<'a> {
    id: &'a str,
    title: &'a str,
    series: [Series<'a>; 2],
}

const MEMBERS: Chart<'static> = Chart {
    id: "joined-chart",
    title: "Members per day",
    series: [
        ("joined", "#0b5cad", |d| d.joined),
        ("opted out", "#a4161a", |d| d.opted_out),
    ],
};

const MESSAGES: Chart<'static> = Chart {
    id: "messages-chart",
    title: "Messages per day",
    series: [
        ("received", "#1e6b30", |d| d.received),
        ("sent", "#0b5cad", |d| d.sent),
    ],
};

/// A grouped bar chart as inline SVG (attributes only), its totals in the caption, and the
/// figures as the image's label and as a table.
fn chart(c: &Chart<'_>, days: &[ActivityDay]) -> Markup {
    let max = days
        .iter()
        .flat_map(|d| c.series.iter().map(move |(_, _, f)| f(d)))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = 20u64;
    let (w, h, bar) = (days.len() as u64 * slot, 80u64, 8u64);
    let label = |d: &ActivityDay| {
        let parts: Vec<String> = c
            .series
            .iter()
            .map(|(name, _, f)| format!("{} {name}", f(d)))
            .collect();
        format!("{}: {}", d.day, parts.join(", "))
    };
    let summary = days.iter().map(label).collect::<Vec<_>>().join("; ");
    let totals: Vec<String> = c
        .series
        .iter()
        .map(|(name, _, f)| format!("{} {name}", days.iter().map(f).sum::<u64>()))
        .collect();
    html! {
        figure id=(c.id) {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (w) " " (h) }
                width=(w) height=(h) role="img"
                aria-label={ (c.title) ", last " (days.len()) " days (UTC): " (summary) } {
                @for (i, d) in days.iter().enumerate() {
                    @for (k, (name, colour, f)) in c.series.iter().enumerate() {
                        @let n = f(d);
                        @let bh = (n * (h - 4) / max).max(u64::from(n > 0));
                        @if bh > 0 {
                            rect class=(name.replace(' ', "-")) x=(i as u64 * slot + 2 + k as u64 * bar)
                                y=(h - bh) width=(bar) height=(bh) fill=(colour) {}
                        }
                    }
                }
            }
            figcaption {
                (c.title) ", last " (days.len()) " days (UTC): " (totals.join(", ")) " in all"
                " ("
                @for (k, (name, colour, _)) in c.series.iter().enumerate() {
                    @if k > 0 { ", " }
                    svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" aria-hidden="true" {
                        rect width="10" height="10" fill=(colour) {}
                    }
                    " " (name)
                }
                ")"
            }
            details {
                summary { "Figures" }
                table {
                    thead { tr {
                        th scope="col" { "Day" }
                        @for (name, _, _) in &c.series { th scope="col" { (name) } }
                    } }
                    tbody {
                        @for d in days {
                            tr {
                                th scope="row" { (d.day) }
                                @for (_, _, f) in &c.series { td { (f(d)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn alerts_list(alerts: &[AlertItem]) -> Markup {
    html! {
        @if alerts.is_empty() {
            p id="alerts" { "No alerts." }
        } @else {
            ul id="alerts" {
                @for a in alerts {
                    li.alert data-kind=(a.kind) {
                        time datetime=(a.at) { (a.at) }
                        " " strong { (a.kind.replace('_', " ")) } ": " (a.message)
                    }
                }
            }
        }
    }
}

/// `GET /`.
pub async fn dashboard(State(web): State<Web>, Page(s): Page) -> Result<Response, WebError> {
    let st = expect_reply!(
        web.run(&s, Request::Status(NoArgs {})).await?,
        Reply::Status
    );
    let activity = expect_reply!(
        web.run(
            &s,
            Request::Activity(ActivityArgs {
                days: Some(CHART_DAYS),
                alerts: Some(ALERT_ROWS),
            })
        )
        .await?,
        Reply::Activity
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
        h2 { "Alerts" }
        (alerts_list(&activity.alerts))
        h2 { "Members joined and opted out" }
        (chart(&MEMBERS, &activity.days))
        h2 { "Messages" }
        (chart(&MESSAGES, &activity.days))
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
