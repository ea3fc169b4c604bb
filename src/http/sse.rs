//! `GET /api/v1/events`: the daemon's live events as Server-Sent Events, the HTTP twin of the
//! admin socket's `watch` (same event types and JSON, docs/admin-protocol.md "Events").
//!
//! Live only: an event published while no client listens is not kept for it. What must reach an
//! app even across its own downtime goes through webhooks, which are durable. A client that
//! falls more than the bus's capacity behind gets a `lagged` event with the number it missed,
//! never back-pressure on the gateway. The stream opens with the comment `: subscribed`. Each event's SSE `event:` field is its type, so a
//! browser's `EventSource.addEventListener("message_in", …)` works; a comment line every 15 s
//! keeps proxies from closing an idle stream. The scope check is the command layer's rule for
//! `watch`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::info;

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::routes::QueryArgs;
use crate::commands::access;
use crate::protocol::{ErrorCode, Event, EventKind, Request, WatchArgs};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    /// Comma-separated event types; absent = all.
    events: Option<String>,
}

fn kinds(list: Option<&str>) -> Result<Option<Vec<EventKind>>, ApiError> {
    let Some(list) = list else { return Ok(None) };
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            serde_json::from_value::<EventKind>(serde_json::Value::String(k.to_string())).map_err(
                |_| {
                    ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("events: {k:?} is not an event type"),
                    )
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn to_sse(event: &Event) -> SseEvent {
    let kind = serde_json::to_value(event.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "event".into());
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    SseEvent::default().event(kind).data(data)
}

pub(super) async fn events(
    State(s): State<AppState>,
    Auth(c): Auth,
    QueryArgs(q): QueryArgs<EventsQuery>,
) -> Result<Response, ApiError> {
    let wanted = kinds(q.events.as_deref())?;
    access::authorize(
        &c,
        &Request::Watch(WatchArgs {
            events: wanted.clone(),
        }),
    )?;
    let Some(bus) = s.events.clone() else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "this gateway publishes no events",
        ));
    };
    info!(token = %c.name, "API event stream opened");
    let rx = bus.subscribe();
    let shutdown = s.shutdown.clone();
    // A first comment line tells the client the subscription is live: events published from
    // now on reach it (a client can wait for it before triggering what it wants to see).
    let hello = stream::once(async { Ok(SseEvent::default().comment("subscribed")) });
    let stream = hello.chain(event_stream(rx, wanted, shutdown));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn event_stream(
    rx: tokio::sync::broadcast::Receiver<Event>,
    wanted: Option<Vec<EventKind>>,
    shutdown: tokio_util::sync::CancellationToken,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(
        (rx, wanted, shutdown),
        |(mut rx, wanted, shutdown)| async move {
            loop {
                let got = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    got = rx.recv() => got,
                };
                let event = match got {
                    Ok(e) => e,
                    Err(RecvError::Lagged(missed)) => Event::Lagged { missed },
                    Err(RecvError::Closed) => return None,
                };
                let pass = matches!(event, Event::Lagged { .. })
                    || wanted.as_ref().is_none_or(|w| w.contains(&event.kind()));
                if pass {
                    return Some((Ok(to_sse(&event)), (rx, wanted, shutdown)));
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_lists_are_checked() {
        assert_eq!(kinds(None).unwrap(), None);
        assert_eq!(
            kinds(Some("message_in, message_sent")).unwrap(),
            Some(vec![EventKind::MessageIn, EventKind::MessageSent])
        );
        assert!(kinds(Some("message_in,bogus")).is_err());
    }
}
