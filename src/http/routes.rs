//! The `/api/v1` routes: each one turns an HTTP request into one command-layer [`Request`] and
//! its reply into JSON (docs/http-api.md lists them with curl examples).
//!
//! Nothing here decides anything: validation, refusals and scopes are the command layer's, so a
//! route is a few lines of mapping — path and query parameters into the command's argument
//! struct, a status code for the reply. Query strings are parsed into the protocol's own
//! argument types, so an unknown parameter is refused by name exactly like an unknown field.
//! Creating POSTs go through [`idempotency::run_once`].

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::info;

use super::AppState;
use super::auth::Auth;
use super::error::{ApiError, JsonBody};
use super::idempotency;
use crate::commands::{self, Caller};
use crate::protocol::{
    BroadcastArgs, BroadcastIdArgs, BroadcastsArgs, CallsArgs, ConversationArgs, ConversationsArgs,
    ErrorCode, InboxArgs, MemberAddArgs, MemberGetArgs, MemberRemoveArgs, MemberUpdateArgs,
    MembersExportArgs, MembersImportArgs, MembersListArgs, MessageIdArgs, NoArgs, Reply, Request,
    SendArgs, VoicemailIdArgs, VoicemailListArgs, base64,
};

/// Query-string arguments parsed into a protocol argument type, refused with the protocol's
/// codes (axum's own rejection is plain text).
pub struct QueryArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| QueryArgs(q.0))
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
    }
}

/// Runs one command for `caller` and answers its reply as JSON with 200.
async fn run(state: &AppState, caller: &Caller, request: Request) -> Result<Response, ApiError> {
    let name = request.name();
    let r = commands::run_as(&state.ctx, caller, request).await;
    info!(token = %caller.name, command = name, ok = r.is_ok(), "API call");
    Ok(axum::Json(r?).into_response())
}

/// A creating POST: idempotent when the request has an `Idempotency-Key`.
async fn create(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    path: &str,
    request: Request,
    status: impl Fn(&Reply) -> StatusCode,
) -> Result<idempotency::Answer, ApiError> {
    let name = request.name();
    let r = idempotency::run_once(&state.ctx, caller, headers, path, request, status).await;
    info!(token = %caller.name, command = name, ok = r.is_ok(), "API call");
    r
}

/// The `/api/v1` router (authentication is the [`Auth`] extractor of every handler).
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/status", get(status))
        .route("/modems", get(modems))
        .route("/messages", post(send))
        .route("/messages/{id}", get(message))
        .route("/inbox", get(inbox))
        .route("/conversations", get(conversations))
        .route("/conversations/{number}", get(conversation))
        .route("/members", get(members).post(member_add))
        .route("/members/import", post(members_import))
        .route("/members/export", get(members_export))
        .route(
            "/members/{number}",
            get(member).patch(member_update).delete(member_remove),
        )
        .route("/broadcasts", get(broadcasts).post(broadcast))
        .route("/broadcasts/{id}", get(broadcast_progress))
        .route("/broadcasts/{id}/pause", post(broadcast_pause))
        .route("/broadcasts/{id}/resume", post(broadcast_resume))
        .route("/broadcasts/{id}/cancel", post(broadcast_cancel))
        .route("/calls", get(calls))
        .route("/activity", get(activity))
        .route("/voicemails", get(voicemails))
        .route("/voicemails/{id}", axum::routing::delete(voicemail_delete))
        .route("/voicemails/{id}/audio", get(voicemail_audio))
}

async fn status(State(s): State<AppState>, Auth(c): Auth) -> Result<Response, ApiError> {
    run(&s, &c, Request::Status(NoArgs {})).await
}

async fn modems(State(s): State<AppState>, Auth(c): Auth) -> Result<Response, ApiError> {
    run(&s, &c, Request::Modems(NoArgs {})).await
}

async fn send(
    State(s): State<AppState>,
    Auth(c): Auth,
    headers: HeaderMap,
    JsonBody(args): JsonBody<SendArgs>,
) -> Result<Response, ApiError> {
    let answer = create(&s, &c, &headers, "/messages", Request::Send(args), |_| {
        StatusCode::ACCEPTED
    })
    .await?;
    let location = answer.body.get("id").and_then(|v| v.as_i64());
    let mut r = answer.into_response();
    if let Some(id) = location
        && let Ok(v) = HeaderValue::from_str(&format!("/api/v1/messages/{id}"))
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

async fn message(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::MessageGet(MessageIdArgs { message: id })).await
}

async fn inbox(
    State(s): State<AppState>,
    Auth(c): Auth,
    QueryArgs(args): QueryArgs<InboxArgs>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::Inbox(args)).await
}

async fn conversations(
    State(s): State<AppState>,
    Auth(c): Auth,
    QueryArgs(args): QueryArgs<ConversationsArgs>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::Conversations(args)).await
}

/// Query of a route whose path names the thing: only a page size.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    limit: Option<u32>,
}

async fn conversation(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(number): Path<String>,
    QueryArgs(q): QueryArgs<LimitQuery>,
) -> Result<Response, ApiError> {
    let args = ConversationArgs {
        number,
        limit: q.limit,
    };
    run(&s, &c, Request::Conversation(args)).await
}

async fn members(
    State(s): State<AppState>,
    Auth(c): Auth,
    QueryArgs(args): QueryArgs<MembersListArgs>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::MembersList(args)).await
}

async fn member_add(
    State(s): State<AppState>,
    Auth(c): Auth,
    headers: HeaderMap,
    JsonBody(args): JsonBody<MemberAddArgs>,
) -> Result<Response, ApiError> {
    create(
        &s,
        &c,
        &headers,
        "/members",
        Request::MembersAdd(args),
        |_| StatusCode::CREATED,
    )
    .await
    .map(IntoResponse::into_response)
}

async fn member(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::MembersGet(MemberGetArgs { number })).await
}

/// `PATCH /members/{number}`: the fields of `members_update` without the number.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberPatch {
    name: Option<String>,
    city: Option<String>,
    region: Option<String>,
    time_zone: Option<String>,
    tags: Option<Vec<String>>,
}

async fn member_update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(number): Path<String>,
    JsonBody(p): JsonBody<MemberPatch>,
) -> Result<Response, ApiError> {
    let args = MemberUpdateArgs {
        number,
        name: p.name,
        city: p.city,
        region: p.region,
        time_zone: p.time_zone,
        tags: p.tags,
    };
    run(&s, &c, Request::MembersUpdate(args)).await
}

async fn member_remove(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::MembersRemove(MemberRemoveArgs { number })).await
}

async fn members_import(
    State(s): State<AppState>,
    Auth(c): Auth,
    headers: HeaderMap,
    JsonBody(args): JsonBody<MembersImportArgs>,
) -> Result<Response, ApiError> {
    create(
        &s,
        &c,
        &headers,
        "/members/import",
        Request::MembersImport(args),
        |_| StatusCode::OK,
    )
    .await
    .map(IntoResponse::into_response)
}

async fn members_export(
    State(s): State<AppState>,
    Auth(c): Auth,
    QueryArgs(args): QueryArgs<MembersExportArgs>,
) -> Result<Response, ApiError> {
    let r = commands::run_as(&s.ctx, &c, Request::MembersExport(args)).await;
    info!(token = %c.name, command = "members_export", ok = r.is_ok(), "API call");
    match r? {
        Reply::MembersExport(data) => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            data.csv,
        )
            .into_response()),
        other => Err(unexpected(&other)),
    }
}

async fn broadcasts(
    State(s): State<AppState>,
    Auth(c): Auth,
    QueryArgs(args): QueryArgs<BroadcastsArgs>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::Broadcasts(args)).await
}

async fn broadcast(
    State(s): State<AppState>,
    Auth(c): Auth,
    headers: HeaderMap,
    JsonBody(args): JsonBody<BroadcastArgs>,
) -> Result<Response, ApiError> {
    let dry = args.dry_run;
    create(
        &s,
        &c,
        &headers,
        "/broadcasts",
        Request::Broadcast(args),
        move |_| {
            if dry {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            }
        },
    )
    .await
    .map(IntoResponse::into_response)
}

async fn broadcast_progress(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    run(
        &s,
        &c,
        Request::BroadcastProgress(BroadcastIdArgs { broadcast: id }),
    )
    .await
}

async fn broadcast_pause(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    run(
        &s,
        &c,
        Request::BroadcastPause(BroadcastIdArgs { broadcast: id }),
    )
    .await
}

async fn broadcast_resume(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    run(
        &s,
        &c,
        Request::BroadcastResume(BroadcastIdArgs { broadcast: id }),
    )
    .await
}

async fn broadcast_cancel(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    run(
        &s,
        &c,
        Request::BroadcastCancel(BroadcastIdArgs { broadcast: id }),
    )
    .await
}

async fn calls(
    State(s): State<AppState>,
    Auth(c): Auth,
    QueryArgs(args): QueryArgs<CallsArgs>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::Calls(args)).await
}

async fn activity(
    State(s): State<AppState>,
    Auth(c): Auth,
    QueryArgs(args): QueryArgs<crate::protocol::ActivityArgs>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::Activity(args)).await
}

async fn voicemails(
    State(s): State<AppState>,
    Auth(c): Auth,
    QueryArgs(args): QueryArgs<VoicemailListArgs>,
) -> Result<Response, ApiError> {
    run(&s, &c, Request::VoicemailList(args)).await
}

async fn voicemail_delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    run(
        &s,
        &c,
        Request::VoicemailDelete(VoicemailIdArgs { voicemail: id }),
    )
    .await
}

/// The voicemail's WAV itself (`audio/wav`), not base64 in JSON as on the socket.
async fn voicemail_audio(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let r = commands::run_as(
        &s.ctx,
        &c,
        Request::VoicemailExport(VoicemailIdArgs { voicemail: id }),
    )
    .await;
    info!(token = %c.name, command = "voicemail_export", ok = r.is_ok(), "API call");
    match r? {
        Reply::VoicemailExport(file) => {
            let wav = base64::decode(&file.wav_base64)
                .map_err(|e| ApiError::new(ErrorCode::Internal, format!("voicemail {id}: {e}")))?;
            let mut resp = Response::new(Body::from(wav));
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
            if let Ok(v) =
                HeaderValue::from_str(&format!("attachment; filename=\"voicemail-{id}.wav\""))
            {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(resp)
        }
        other => Err(unexpected(&other)),
    }
}

fn unexpected(reply: &Reply) -> ApiError {
    ApiError::new(
        ErrorCode::Internal,
        format!("unexpected reply to {}", reply.command()),
    )
}
