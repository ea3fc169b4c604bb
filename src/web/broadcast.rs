//! Broadcasts, for owners only: `GET /broadcast` (compose, recent broadcasts), `POST /broadcast`
//! (`action=preview`: a dry run showing the count, exclusions and the text personalised for a
//! real member; `action=send`: queue it and go to its progress), `GET
//! /console/broadcast/count` (the same dry run as JSON, for `console.js` while typing a
//! segment), `GET /broadcasts/{id}` (live progress, ETA, what holds it) and `POST
//! /broadcasts/{id}/pause|resume|cancel`.
//!
//! A volunteer gets 403 on every one of these (the page says so; the command layer would refuse
//! the `broadcast` too, since it needs `admin`). The count is the `broadcast` dry run's
//! `recipients`, the number the CLI's `broadcast --dry-run` prints, so the two cannot disagree.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, csrf, html, page};
use super::login::redirect;
use super::session::{ApiSession, Form, Page, Session};
use super::{Web, WebError, expect_reply};
use crate::protocol::{
    BroadcastArgs, BroadcastIdArgs, BroadcastItem, BroadcastResult, BroadcastsArgs, Reply, Request,
};

/// What the compose form holds (kept across a preview).
#[derive(Debug, Default)]
struct Draft {
    segment: String,
    text: String,
    at: String,
    local: bool,
}

impl Draft {
    fn from_form(f: &Form) -> Draft {
        Draft {
            segment: f.get("segment").unwrap_or("").trim().to_string(),
            text: f.get("text").unwrap_or("").to_string(),
            at: f.get("at").unwrap_or("").trim().to_string(),
            local: f.get("local").is_some(),
        }
    }

    fn args(&self, dry_run: bool) -> BroadcastArgs {
        BroadcastArgs {
            text: self.text.clone(),
            segment: Some(self.segment.clone()).filter(|s| !s.is_empty()),
            at: Some(self.at.clone()).filter(|s| !s.is_empty()),
            dry_run,
            local: self.local,
            quiet_hours: None,
        }
    }
}

fn compose(
    s: &Session,
    d: &Draft,
    preview: Option<&BroadcastResult>,
    error: Option<&str>,
    recent: &[BroadcastItem],
) -> Markup {
    let count = preview
        .map(|p| p.recipients.to_string())
        .unwrap_or_default();
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form id="broadcast" method="post" action="/broadcast" {
            (csrf(s))
            p {
                label for="segment" { "Segment" }
                input id="segment" name="segment" type="text" value=(d.segment)
                    placeholder="city=Springfield, tag=volunteer" aria-describedby="segment-help";
                small id="segment-help" {
                    "Empty for everyone; conditions joined by commas: city=, region=, tag=, "
                    "status=, joined>=YYYY-MM-DD, or a custom field."
                }
            }
            p {
                "Recipients: "
                output id="count" for="segment" aria-live="polite" { (count) }
            }
            p {
                label for="text" { "Text" }
                textarea id="text" name="text" rows="4" required { (d.text) }
            }
            p {
                label for="at" { "Send at (optional)" }
                input id="at" name="at" type="text" value=(d.at)
                    placeholder="2026-12-24T18:00:00Z, or 18:00 with local time";
            }
            p {
                input id="local" name="local" type="checkbox" value="1" checked[d.local];
                label for="local" { "The time is each member's local time" }
            }
            p {
                button id="broadcast-preview" type="submit" name="action" value="preview" {
                    "Preview"
                }
                " "
                button id="broadcast-send" type="submit" name="action" value="send" { "Send" }
            }
        }
        section id="preview" aria-label="Preview" {
            @if let Some(p) = preview {
                p { "Personalised for a member: " q.example { (p.example) } }
                p {
                    (p.sms.encoding) " · " (p.sms.min_parts)
                    @if p.sms.max_parts != p.sms.min_parts { "–" (p.sms.max_parts) }
                    " part(s) per text · " (p.sms.total_sms) " SMS in total"
                }
                p {
                    (p.matched) " match the segment; excluded: " (p.excluded.opted_out)
                    " opted out, " (p.excluded.not_confirmed) " not confirmed"
                    @if p.quiet_now > 0 { "; " (p.quiet_now) " are in quiet hours now" }
                }
            }
        }
        @if !recent.is_empty() {
            h2 { "Recent broadcasts" }
            ul id="broadcasts" {
                @for b in recent {
                    li {
                        a href={ "/broadcasts/" (b.id) } { "#" (b.id) }
                        " " (b.state) " · " (b.segment) " · " (b.total) " recipients"
                    }
                }
            }
        }
    }
}

async fn recent(web: &Web, s: &Session) -> Result<Vec<BroadcastItem>, WebError> {
    Ok(expect_reply!(
        web.run(s, Request::Broadcasts(BroadcastsArgs { limit: Some(10) }))
            .await?,
        Reply::Broadcasts
    ))
}

/// `GET /broadcast`.
pub async fn form(State(web): State<Web>, Page(s): Page) -> Result<Response, WebError> {
    s.require_owner("Broadcasting")?;
    let recent = recent(&web, &s).await?;
    let body = compose(&s, &Draft::default(), None, None, &recent);
    Ok(html(page(&s, Nav::Broadcast, "Broadcast", body)))
}

/// `POST /broadcast`: preview or send.
pub async fn submit(
    State(web): State<Web>,
    Page(s): Page,
    body: Bytes,
) -> Result<Response, WebError> {
    s.require_owner("Broadcasting")?;
    let form = Form::parse(&body);
    s.check_csrf(&form)?;
    let draft = Draft::from_form(&form);
    let send = form.get("action") == Some("send");
    let result = web.run(&s, Request::Broadcast(draft.args(!send))).await;
    let result = match result {
        Ok(Reply::Broadcast(r)) => r,
        Ok(other) => {
            return Err(WebError::Internal(format!(
                "unexpected reply to {}",
                other.command()
            )));
        }
        Err(WebError::Invalid(message)) => {
            let recent = recent(&web, &s).await?;
            let body = compose(&s, &draft, None, Some(&message), &recent);
            let mut r = html(page(&s, Nav::Broadcast, "Broadcast", body));
            *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            return Ok(r);
        }
        Err(e) => return Err(e),
    };
    match (send, result.id) {
        (true, Some(id)) => {
            web.audit(
                &s,
                "broadcast",
                format!(
                    "broadcast {id} to {:?}: {} recipients",
                    result.segment, result.recipients
                ),
            )
            .await;
            Ok(redirect(&format!("/broadcasts/{id}")))
        }
        _ => {
            let recent = recent(&web, &s).await?;
            let body = compose(&s, &draft, Some(&result), None, &recent);
            Ok(html(page(&s, Nav::Broadcast, "Broadcast", body)))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct CountQuery {
    #[serde(default)]
    segment: String,
    #[serde(default)]
    text: String,
}

/// `GET /console/broadcast/count?segment=…&text=…`: the dry run as JSON.
pub async fn count(
    State(web): State<Web>,
    ApiSession(s): ApiSession,
    Query(q): Query<CountQuery>,
) -> Result<Response, WebError> {
    s.require_owner("Broadcasting")?;
    let draft = Draft {
        segment: q.segment.trim().to_string(),
        // The count does not depend on the text; a placeholder lets it be asked before typing.
        text: if q.text.trim().is_empty() {
            "-".into()
        } else {
            q.text
        },
        ..Draft::default()
    };
    match web.run(&s, Request::Broadcast(draft.args(true))).await {
        Ok(Reply::Broadcast(r)) => Ok(Json(serde_json::json!({
            "recipients": r.recipients,
            "matched": r.matched,
            "excluded": r.excluded,
            "example": r.example,
            "encoding": r.sms.encoding,
            "min_parts": r.sms.min_parts,
            "max_parts": r.sms.max_parts,
            "total_sms": r.sms.total_sms,
        }))
        .into_response()),
        Ok(other) => Err(WebError::Internal(format!(
            "unexpected reply to {}",
            other.command()
        ))),
        Err(WebError::Invalid(m)) => Ok((
            axum::http::StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": m })),
        )
            .into_response()),
        Err(e) => Err(e),
    }
}

/// The share of a broadcast no longer waiting (sent, delivered, failed, expired, cancelled), in
/// whole percent; 100 for an empty one.
pub fn percent(b: &BroadcastItem) -> u64 {
    if b.total == 0 {
        return 100;
    }
    let waiting = b.queued + b.sending + b.in_doubt;
    (b.total.saturating_sub(waiting) * 100 / b.total).min(100)
}

/// `GET /broadcasts/{id}`.
pub async fn progress(
    State(web): State<Web>,
    Page(s): Page,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    s.require_owner("Broadcasts")?;
    let b = expect_reply!(
        web.run(
            &s,
            Request::BroadcastProgress(BroadcastIdArgs { broadcast: id })
        )
        .await?,
        Reply::BroadcastProgress
    );
    let pct = percent(&b);
    let body = html! {
        p { "Segment: " (b.segment) " · state: " span id="state" data-live { (b.state) } }
        p { "Text: " q { (b.template) } }
        div id="progress" data-percent=(pct) data-live {
            progress max="100" value=(pct) aria-label="Progress" { (pct) "%" }
            " " (pct) "% · "
            (b.sent + b.delivered) " sent (" (b.delivered) " delivered), "
            (b.queued + b.sending) " waiting, " (b.failed) " failed, "
            (b.expired) " expired, " (b.cancelled) " cancelled of " (b.total)
        }
        p id="eta" data-live {
            "Estimated end: "
            @match &b.eta { Some(e) => time datetime=(e) { (e) }, None => "—" }
        }
        div id="held" data-live {
            @if b.held.is_empty() {
                p { "Nothing holds it." }
            } @else {
                ul {
                    @for h in &b.held { li { (h.count) " held: " (h.detail) } }
                }
            }
        }
        div.actions {
            @for (action, label) in [("pause", "Pause"), ("resume", "Resume"), ("cancel", "Cancel")] {
                form.inline method="post" action={ "/broadcasts/" (id) "/" (action) } {
                    (csrf(&s))
                    button id={ "broadcast-" (action) } type="submit" { (label) }
                }
            }
        }
    };
    Ok(html(page(
        &s,
        Nav::Broadcast,
        &format!("Broadcast #{id}"),
        body,
    )))
}

/// `POST /broadcasts/{id}/pause|resume|cancel`.
pub async fn control(
    State(web): State<Web>,
    Page(s): Page,
    Path((id, action)): Path<(i64, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    s.require_owner("Broadcasts")?;
    s.check_csrf(&Form::parse(&body))?;
    let args = BroadcastIdArgs { broadcast: id };
    let request = match action.as_str() {
        "pause" => Request::BroadcastPause(args),
        "resume" => Request::BroadcastResume(args),
        "cancel" => Request::BroadcastCancel(args),
        _ => {
            return Err(WebError::NotFound(format!(
                "no broadcast action {action:?}"
            )));
        }
    };
    web.run(&s, request).await?;
    web.audit(&s, "broadcast_control", format!("{action} broadcast {id}"))
        .await;
    Ok(redirect(&format!("/broadcasts/{id}")))
}
