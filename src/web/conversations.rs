//! Conversations: `GET /conversations` (threads newest first with unread counts), `GET
//! /conversations/{number}` (both directions with delivery state, and the reply box), `POST
//! /conversations/{number}/reply` (one `send`). Owners and volunteers alike.
//!
//! The number in the path may come as `%2B…` or `+…` (axum decodes the segment; `+` stays a
//! plus in a path). Opening a thread marks it read, as `conversation` does on every transport.
//! The lists carry `data-live`, so `console.js` refreshes them when an event arrives.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, csrf, html, notice, page, path_segment};
use super::login::redirect;
use super::session::{Form, Page};
use super::{Web, WebError, expect_reply};
use crate::protocol::{ConversationArgs, ConversationsArgs, Direction, Reply, Request, SendArgs};

/// Threads shown on the list page.
const THREADS: u32 = 200;
/// Messages shown in one thread (the latest ones).
const MESSAGES: u32 = 200;

/// `GET /conversations`.
pub async fn list(State(web): State<Web>, Page(s): Page) -> Result<Response, WebError> {
    let threads = expect_reply!(
        web.run(
            &s,
            Request::Conversations(ConversationsArgs {
                limit: Some(THREADS)
            })
        )
        .await?,
        Reply::Conversations
    );
    let body = html! {
        @if threads.is_empty() {
            p { "No conversations yet. When someone texts the number, the thread shows here." }
        }
        ul id="threads" data-live {
            @for t in &threads {
                li.thread data-number=(t.number) {
                    a href={ "/conversations/" (path_segment(&t.number)) } {
                        span.name { (t.name.as_deref().unwrap_or(&t.number)) }
                        @if t.name.is_some() { " " span.number { (t.number) } }
                    }
                    " "
                    span.unread aria-label="unread" title="unread" { (t.unread) }
                    " "
                    time datetime=(t.last_at) { (t.last_at) }
                }
            }
        }
    };
    Ok(html(page(&s, Nav::Conversations, "Conversations", body)))
}

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /conversations/{number}`.
pub async fn thread(
    State(web): State<Web>,
    Page(s): Page,
    Path(number): Path<String>,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    let items = expect_reply!(
        web.run(
            &s,
            Request::Conversation(ConversationArgs {
                number: number.clone(),
                limit: Some(MESSAGES),
            })
        )
        .await?,
        Reply::Conversation
    );
    let sent = q.done.as_deref().map(|_| "Reply queued.");
    let body = html! {
        (notice(sent))
        ol id="messages" data-live {
            @for m in &items {
                @let dir = match m.direction { Direction::In => "in", Direction::Out => "out" };
                li class={ "message " (dir) } {
                    span.text { (m.text) }
                    " "
                    span.meta {
                        time datetime=(m.at) { (m.at) }
                        " · "
                        span.state {
                            (m.status.as_deref().unwrap_or(match m.direction {
                                Direction::In => "received",
                                Direction::Out => "queued",
                            }))
                        }
                    }
                }
            }
        }
        form id="reply" method="post" action={ "/conversations/" (path_segment(&number)) "/reply" } {
            (csrf(&s))
            p {
                label for="reply-text" { "Reply to " (number) }
                textarea id="reply-text" name="text" rows="3" required {}
            }
            p { button id="reply-send" type="submit" { "Send reply" } }
        }
    };
    Ok(html(page(&s, Nav::Conversations, &number, body)))
}

/// `POST /conversations/{number}/reply`: one `send` to the number.
pub async fn reply(
    State(web): State<Web>,
    Page(s): Page,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    s.check_csrf(&form)?;
    let text = form.get("text").unwrap_or("").to_string();
    let accepted = expect_reply!(
        web.run(
            &s,
            Request::Send(SendArgs {
                to: number.clone(),
                text,
                modem: None,
            })
        )
        .await?,
        Reply::SendAccepted
    );
    web.audit(&s, "send", format!("message {} to {number}", accepted.id))
        .await;
    Ok(redirect(&format!(
        "/conversations/{}?done=sent",
        path_segment(&number)
    )))
}
