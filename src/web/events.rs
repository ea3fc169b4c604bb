//! `GET /console/events`: the console's live stream (Server-Sent Events) over the daemon's event
//! bus, for `console.js`. A session is required (401 without one, no redirect: a script reads
//! it), and the stream ends within [`RECHECK`] once the session does (logout everywhere, a
//! removed account, idle expiry).
//!
//! Only the event's type is sent, never its data: the script's whole job is to refetch the page
//! parts marked `data-live`, so no member's text passes through JavaScript into the page.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;

use super::session::{ApiSession, lookup};
use super::{Web, WebError};

/// How often a live stream checks that its session still exists.
const RECHECK: Duration = Duration::from_secs(30);

fn kind_name(event: &crate::protocol::Event) -> String {
    serde_json::to_value(event.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "event".into())
}

pub async fn stream(
    State(web): State<Web>,
    ApiSession(_s): ApiSession,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some(bus) = web.events.clone() else {
        return Err(WebError::NotFound(
            "this gateway publishes no events".into(),
        ));
    };
    let rx = bus.subscribe();
    let hello =
        stream::once(async { Ok::<_, Infallible>(SseEvent::default().comment("subscribed")) });
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    let events = stream::unfold(
        (rx, web, headers, recheck),
        |(mut rx, web, headers, mut recheck)| async move {
            loop {
                let got = tokio::select! {
                    _ = web.shutdown.cancelled() => return None,
                    _ = recheck.tick() => {
                        match lookup(&web, &headers).await {
                            Ok(Some(_)) => continue,
                            _ => return None,
                        }
                    }
                    got = rx.recv() => got,
                };
                let name = match got {
                    Ok(e) => kind_name(&e),
                    Err(RecvError::Lagged(_)) => "lagged".into(),
                    Err(RecvError::Closed) => return None,
                };
                let ev = SseEvent::default().event(name).data("{}");
                return Some((Ok::<_, Infallible>(ev), (rx, web, headers, recheck)));
            }
        },
    );
    Ok(Sse::new(hello.chain(events))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
