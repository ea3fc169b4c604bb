//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, generated from the types: the
//! schemas come from the protocol's own argument and reply types (`utoipa::ToSchema`, which
//! reads their serde attributes), and the operations from [`ROUTES`], the one table of the API's
//! paths. A test checks that every route of the table answers on the real router (so the
//! document cannot list a path the server lacks) and that every schema it names exists.

use utoipa::OpenApi as _;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, PathItem, PathsBuilder, Ref, Required, ResponseBuilder};

use crate::protocol::{self as p, Scope};

/// What a route answers.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// One JSON object of this schema.
    One(&'static str),
    /// A JSON array of this schema.
    Many(&'static str),
    /// Text of this media type (CSV, WAV, the event stream).
    Media(&'static str),
}

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// Below `/api/v1`, axum's `{param}` syntax (which OpenAPI shares).
    pub path: &'static str,
    pub summary: &'static str,
    pub scope: Scope,
    pub request: Option<&'static str>,
    /// Query parameters: name, JSON type, meaning.
    pub query: &'static [(&'static str, &'static str, &'static str)],
    pub status: u16,
    pub response: Body,
}

/// One row of [`ROUTES`], positional so the table reads as a table.
#[allow(clippy::too_many_arguments)]
const fn r(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    scope: Scope,
    request: Option<&'static str>,
    query: &'static [(&'static str, &'static str, &'static str)],
    status: u16,
    response: Body,
) -> Route {
    Route {
        method,
        path,
        summary,
        scope,
        request,
        query,
        status,
        response,
    }
}

const LIMIT: (&str, &str, &str) = ("limit", "integer", "page size");
use Body::{Many, Media, One};
use Scope::{Admin, Read, Send};

/// Every operation of `/api/v1`.
pub const ROUTES: &[Route] = &[
    r(
        "get",
        "/status",
        "One-screen summary of the gateway",
        Read,
        None,
        &[],
        200,
        One("StatusData"),
    ),
    r(
        "get",
        "/modems",
        "Every configured modem and its health",
        Read,
        None,
        &[],
        200,
        Many("ModemInfo"),
    ),
    r(
        "post",
        "/messages",
        "Queue one text to one number (Idempotency-Key honoured)",
        Send,
        Some("SendArgs"),
        &[],
        202,
        One("SendAccepted"),
    ),
    r(
        "get",
        "/messages/{id}",
        "Where one outgoing message stands",
        Read,
        None,
        &[],
        200,
        One("MessageStatus"),
    ),
    r(
        "get",
        "/inbox",
        "Received texts: newest first, or after `since` oldest first",
        Read,
        None,
        &[
            ("unread_only", "boolean", "only unread"),
            LIMIT,
            ("since", "integer", "only ids above this, oldest first"),
        ],
        200,
        Many("InboxItem"),
    ),
    r(
        "get",
        "/conversations",
        "Latest threads, newest first",
        Read,
        None,
        &[LIMIT],
        200,
        Many("ThreadItem"),
    ),
    r(
        "get",
        "/conversations/{number}",
        "One thread, both directions, oldest first (marks it read)",
        Read,
        None,
        &[LIMIT],
        200,
        Many("ConversationItem"),
    ),
    r(
        "get",
        "/members",
        "Members of a segment, a page at a time",
        Read,
        None,
        &[
            ("segment", "string", "e.g. city=Chicago,tag=volunteer"),
            LIMIT,
            ("offset", "integer", "skip this many"),
        ],
        200,
        One("MembersPage"),
    ),
    r(
        "post",
        "/members",
        "Add one member (Idempotency-Key honoured)",
        Admin,
        Some("MemberAddArgs"),
        &[],
        201,
        One("MemberItem"),
    ),
    r(
        "get",
        "/members/{number}",
        "One member",
        Read,
        None,
        &[],
        200,
        One("MemberItem"),
    ),
    r(
        "patch",
        "/members/{number}",
        "Change a member's name, city, region, time zone or tags",
        Admin,
        Some("MemberPatch"),
        &[],
        200,
        One("MemberItem"),
    ),
    r(
        "delete",
        "/members/{number}",
        "Remove a member (an opt-out stays suppressed)",
        Admin,
        None,
        &[],
        200,
        One("MemberRemoved"),
    ),
    r(
        "post",
        "/members/import",
        "Import members from CSV, all rows or none (Idempotency-Key honoured)",
        Admin,
        Some("MembersImportArgs"),
        &[],
        200,
        One("ImportResult"),
    ),
    r(
        "get",
        "/members/export",
        "Members of a segment as CSV",
        Read,
        None,
        &[("segment", "string", "segment filter")],
        200,
        Media("text/csv"),
    ),
    r(
        "get",
        "/broadcasts",
        "Latest broadcasts with progress",
        Read,
        None,
        &[LIMIT],
        200,
        Many("BroadcastItem"),
    ),
    r(
        "post",
        "/broadcasts",
        "Preview (dry_run, 200) or queue (201) a broadcast (Idempotency-Key honoured)",
        Admin,
        Some("BroadcastArgs"),
        &[],
        201,
        One("BroadcastResult"),
    ),
    r(
        "get",
        "/broadcasts/{id}",
        "One broadcast's progress and ETA",
        Read,
        None,
        &[],
        200,
        One("BroadcastItem"),
    ),
    r(
        "post",
        "/broadcasts/{id}/pause",
        "Hold a broadcast's queued texts",
        Admin,
        None,
        &[],
        200,
        One("BroadcastItem"),
    ),
    r(
        "post",
        "/broadcasts/{id}/resume",
        "Release a paused broadcast",
        Admin,
        None,
        &[],
        200,
        One("BroadcastItem"),
    ),
    r(
        "post",
        "/broadcasts/{id}/cancel",
        "Cancel a broadcast's queued texts",
        Admin,
        None,
        &[],
        200,
        One("BroadcastItem"),
    ),
    r(
        "get",
        "/calls",
        "The call log, newest first",
        Read,
        None,
        &[LIMIT],
        200,
        Many("CallItem"),
    ),
    r(
        "get",
        "/activity",
        "Members joined and opted out, messages received and sent per UTC day; the latest alerts",
        Read,
        None,
        &[
            ("days", "integer", "days, 1-92 (default 14)"),
            ("alerts", "integer", "alerts, 0-100 (default 10)"),
        ],
        200,
        One("ActivityData"),
    ),
    r(
        "get",
        "/voicemails",
        "Voicemails, newest first",
        Read,
        None,
        &[("unheard_only", "boolean", "only unheard")],
        200,
        Many("VoicemailItem"),
    ),
    r(
        "get",
        "/voicemails/{id}/audio",
        "One voicemail as a WAV file (marks it heard)",
        Read,
        None,
        &[],
        200,
        Media("audio/wav"),
    ),
    r(
        "delete",
        "/voicemails/{id}",
        "Delete a voicemail and its file",
        Admin,
        None,
        &[],
        200,
        One("VoicemailDeleted"),
    ),
    r(
        "get",
        "/events",
        "Live events as Server-Sent Events",
        Read,
        None,
        &[("events", "string", "comma-separated event types")],
        200,
        Media("text/event-stream"),
    ),
    r(
        "get",
        "/openapi.json",
        "This document",
        Read,
        None,
        &[],
        200,
        Media("application/json"),
    ),
];

/// The request body of `PATCH /members/{number}` (the number is in the path).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct MemberPatch {
    name: Option<String>,
    city: Option<String>,
    region: Option<String>,
    time_zone: Option<String>,
    tags: Option<Vec<String>>,
}

/// The error body of every failure.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Error {
    error: p::ErrorBody,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "gsmgate HTTP API",
        description = "A self-hosted community texting gateway. Every route needs `Authorization: Bearer <token>` (create one on the gateway with `gsmgate tokens create NAME --scope read|send|admin`). Errors are `{\"error\": {\"code\", \"message\"}}` with the codes of the admin protocol."
    ),
    components(schemas(
        p::StatusData,
        p::ModemInfo,
        p::SendArgs,
        p::SendAccepted,
        p::MessageStatus,
        p::InboxItem,
        p::ThreadItem,
        p::ConversationItem,
        p::MembersPage,
        p::MemberAddArgs,
        p::MemberItem,
        p::OptOutItem,
        p::MemberRemoved,
        p::MembersImportArgs,
        p::ImportResult,
        p::BroadcastItem,
        p::BroadcastArgs,
        p::BroadcastResult,
        p::CallItem,
        p::VoicemailItem,
        p::VoicemailDeleted,
        p::Event,
        p::ActivityData,
        p::ActivityDay,
        p::AlertItem,
        MemberPatch,
        Error
    ))
)]
struct Doc;

fn method(m: &str) -> HttpMethod {
    match m {
        "post" => HttpMethod::Post,
        "patch" => HttpMethod::Patch,
        "delete" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

fn json_type(t: &str) -> Type {
    match t {
        "integer" => Type::Integer,
        "boolean" => Type::Boolean,
        _ => Type::String,
    }
}

/// The path parameters of a route path (`{id}`, `{number}`).
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn content(body: Body) -> (String, Content) {
    match body {
        One(name) => (
            "application/json".into(),
            Content::new(Some(Ref::from_schema_name(name))),
        ),
        Many(name) => (
            "application/json".into(),
            Content::new(Some(
                ArrayBuilder::new()
                    .items(Ref::from_schema_name(name))
                    .build(),
            )),
        ),
        Media(media) => (
            media.into(),
            Content::new(Some(ObjectBuilder::new().schema_type(Type::String).build())),
        ),
    }
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Doc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut paths = PathsBuilder::new();
    for route in ROUTES {
        let (media, body) = content(route.response);
        let mut op = OperationBuilder::new()
            .summary(Some(route.summary))
            .description(Some(format!("Needs a token with scope `{}`.", route.scope)))
            .operation_id(Some(format!(
                "{}{}",
                route.method,
                route.path.replace(['/', '{', '}', '.'], "_")
            )))
            .response(
                route.status.to_string(),
                ResponseBuilder::new()
                    .description("success")
                    .content(media, body),
            )
            .response(
                "default",
                ResponseBuilder::new()
                    .description("an error; `code` says which (docs/http-api.md)")
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("Error"))),
                    ),
            )
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        for name in path_params(route.path) {
            let t = if name == "id" {
                Type::Integer
            } else {
                Type::String
            };
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(t))),
            );
        }
        for (name, t, what) in route.query {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(*what))
                    .schema(Some(ObjectBuilder::new().schema_type(json_type(t)))),
            );
        }
        if let Some(req) = route.request {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name(req))),
                    )
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        paths = paths.path(
            format!("/api/v1{}", route.path),
            PathItem::new(method(route.method), op),
        );
    }
    doc.paths = paths.build();
    if let Some(c) = doc.components.as_mut() {
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_schema_exists() {
        let doc = document();
        let schemas = &doc.components.as_ref().unwrap().schemas;
        for route in ROUTES {
            for name in route.request.into_iter().chain(match route.response {
                One(n) | Many(n) => Some(n),
                Media(_) => None,
            }) {
                assert!(
                    schemas.contains_key(name),
                    "{} {}: schema {name} missing",
                    route.method,
                    route.path
                );
            }
        }
        let text = serde_json::to_string(&doc).unwrap();
        assert!(text.contains("\"/api/v1/messages\""));
    }
}
