//! Calls and voicemail: `GET /calls` (the call log, each voicemail playable in an `<audio>`
//! element, the greeting upload form and player), `GET /calls/voicemail/{id}` (the WAV; playing
//! it marks it heard, as `voicemail_export` does), `POST /calls/greeting` (multipart upload,
//! owners: `greeting_set`), `GET /calls/greeting.wav` (the greeting in use: `greeting_get`).
//!
//! Audio is served from session-protected routes of the same origin, which the CSP's
//! `media-src 'self'` allows; nothing is embedded as a data URL.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, html, notice, page};
use super::login::redirect;
use super::session::{Form, Page};
use super::{Web, WebError, expect_reply};
use crate::protocol::{
    CallsArgs, GreetingSetArgs, NoArgs, Reply, Request, VoicemailIdArgs, VoicemailListArgs, base64,
};

/// Calls shown on the page.
const CALLS: u32 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn seconds(ms: Option<i64>) -> String {
    ms.map(|ms| format!("{} s", (ms + 500) / 1000))
        .unwrap_or_default()
}

/// `GET /calls`.
pub async fn page_handler(
    web: &Web,
    s: &super::Session,
    done: Option<&str>,
) -> Result<Response, WebError> {
    let calls = expect_reply!(
        web.run(s, Request::Calls(CallsArgs { limit: Some(CALLS) }))
            .await?,
        Reply::Calls
    );
    let voicemails = expect_reply!(
        web.run(s, Request::VoicemailList(VoicemailListArgs::default()))
            .await?,
        Reply::VoicemailList
    );
    let by_call: HashMap<i64, &crate::protocol::VoicemailItem> =
        voicemails.iter().map(|v| (v.call_id, v)).collect();
    let greeting = match web.run(s, Request::GreetingGet(NoArgs {})).await {
        Ok(Reply::GreetingGet(g)) => g,
        _ => None,
    };
    let body = html! {
        (notice(done.map(|_| "Greeting installed.")))
        table id="calls" data-live {
            thead { tr {
                th scope="col" { "When" } th scope="col" { "From" } th scope="col" { "Modem" }
                th scope="col" { "Length" } th scope="col" { "Outcome" } th scope="col" { "Voicemail" }
            } }
            tbody {
                @for c in &calls {
                    tr.call data-id=(c.id) {
                        td { time datetime=(c.started_at) { (c.started_at) } }
                        td { (c.number.as_deref().unwrap_or("unknown")) }
                        td { (c.modem) }
                        td { (seconds(c.duration_ms)) }
                        td { (c.outcome.as_deref().unwrap_or("")) }
                        td {
                            @if let Some(v) = by_call.get(&c.id) {
                                audio.voicemail controls preload="none"
                                    src={ "/calls/voicemail/" (v.id) }
                                    aria-label={ "Voicemail " (v.id) } {
                                    a href={ "/calls/voicemail/" (v.id) } { "Download voicemail" }
                                }
                                @if !v.heard { " " span.badge { "new" } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Greeting" }
        @if let Some(g) = &greeting {
            p { "In use: " ((g.duration_ms + 500) / 1000) " s" }
            audio id="greeting-audio" controls preload="none" src="/calls/greeting.wav"
                aria-label="Greeting" {
                a href="/calls/greeting.wav" { "Download the greeting" }
            }
        } @else {
            p { "No greeting is installed; callers hear none." }
            audio id="greeting-audio" controls preload="none" aria-label="Greeting" {}
        }
        @if s.is_owner() {
            form id="greeting" method="post" action="/calls/greeting" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(s.csrf);
                p {
                    label for="greeting-file" { "New greeting (WAV)" }
                    input id="greeting-file" type="file" name="greeting" accept="audio/wav,.wav" required;
                }
                p { button id="greeting-upload" type="submit" { "Upload greeting" } }
            }
        }
    };
    Ok(html(page(s, Nav::Calls, "Calls", body)))
}

/// `GET /calls`.
pub async fn page_route(
    State(web): State<Web>,
    Page(s): Page,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    page_handler(&web, &s, q.done.as_deref()).await
}

fn wav(bytes: Vec<u8>, name: &str) -> Response {
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /calls/voicemail/{id}`.
pub async fn voicemail_audio(
    State(web): State<Web>,
    Page(s): Page,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let file = expect_reply!(
        web.run(
            &s,
            Request::VoicemailExport(VoicemailIdArgs { voicemail: id })
        )
        .await?,
        Reply::VoicemailExport
    );
    let bytes = base64::decode(&file.wav_base64)
        .map_err(|e| WebError::Internal(format!("voicemail {id}: {e}")))?;
    Ok(wav(bytes, &format!("voicemail-{id}.wav")))
}

/// `GET /calls/greeting.wav`.
pub async fn greeting_audio(State(web): State<Web>, Page(s): Page) -> Result<Response, WebError> {
    let g = expect_reply!(
        web.run(&s, Request::GreetingGet(NoArgs {})).await?,
        Reply::GreetingGet
    );
    let Some(g) = g else {
        return Err(WebError::NotFound("no greeting is installed".into()));
    };
    let bytes =
        base64::decode(&g.wav_base64).map_err(|e| WebError::Internal(format!("greeting: {e}")))?;
    Ok(wav(bytes, "greeting.wav"))
}

/// `POST /calls/greeting`: multipart with `csrf` and the `greeting` file (owners).
pub async fn greeting_upload(
    State(web): State<Web>,
    Page(s): Page,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    s.require_owner("Changing the greeting")?;
    let mut fields = Vec::new();
    let mut file: Option<Vec<u8>> = None;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| WebError::Invalid(format!("the upload is not a valid form: {e}")))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or("").to_string();
        let data = field
            .bytes()
            .await
            .map_err(|e| WebError::Invalid(format!("reading the upload: {e}")))?;
        if name == "greeting" {
            file = Some(data.to_vec());
        } else if name == "csrf" {
            fields.push((name, String::from_utf8_lossy(&data).into_owned()));
        }
    }
    s.check_csrf(&Form::from_pairs(fields))?;
    let Some(file) = file.filter(|f| !f.is_empty()) else {
        return Err(WebError::Invalid("choose a WAV file to upload".into()));
    };
    let size = file.len();
    web.run(
        &s,
        Request::GreetingSet(GreetingSetArgs {
            wav_base64: base64::encode(&file),
            offset: None,
            total_bytes: None,
        }),
    )
    .await?;
    web.audit(&s, "greeting_set", format!("{size} bytes")).await;
    Ok(redirect("/calls?done=greeting"))
}
