//! The one decoder that turns a JSON request line into a [`Request`], with errors that name the
//! field they are about.
//!
//! Why hand-written instead of `#[derive(Deserialize)]` with `#[serde(tag = "cmd")]`: serde's
//! internally tagged enums buffer the arguments first and then report type errors without the
//! field name ("invalid type: string, expected u32"). The protocol promises errors that name the
//! field, so [`decode_request`] dispatches on `cmd` itself and deserializes each command's argument
//! struct through `FieldNamingMap`, which prefixes every error with the field it came from.

use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::*;

/// A request line that could not be turned into a [`Request`]: the error to answer with, and the
/// id to echo when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub id: Option<RequestId>,
    pub error: ErrorBody,
}

/// A decoded request line.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub id: RequestId,
    pub request: Request,
}

/// Decode one request line (without its newline). The order of checks fixes which error wins:
/// JSON syntax, then `id` (required, so later errors can echo it), then `v`, then `cmd`, then the
/// arguments.
pub fn decode_request(line: &[u8]) -> Result<Decoded, DecodeError> {
    let fail = |id: Option<RequestId>, code, message: String| DecodeError {
        id,
        error: ErrorBody::new(code, message),
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        fail(
            None,
            ErrorCode::MalformedJson,
            format!("request is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(mut map) = value else {
        return Err(fail(
            None,
            ErrorCode::MalformedJson,
            "request must be a JSON object like {\"id\": 1, \"cmd\": \"ping\"}".into(),
        ));
    };

    let id = match map.remove("id") {
        None | Some(Value::Null) => {
            return Err(fail(
                None,
                ErrorCode::InvalidRequest,
                "missing field `id`: every request needs an id (an integer or a string) that its \
                 response echoes"
                    .into(),
            ));
        }
        Some(raw) => match RequestId::deserialize(&raw) {
            Ok(id) => id,
            Err(_) => {
                return Err(fail(
                    None,
                    ErrorCode::InvalidRequest,
                    format!(
                        "field `id`: must be a non-negative integer or a string, got {}",
                        describe(&raw)
                    ),
                ));
            }
        },
    };

    match map.remove("v") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(PROTOCOL_VERSION) => {}
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {n} is not supported; this daemon speaks version {PROTOCOL_VERSION}"
                ),
            ));
        }
        Some(raw) => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::InvalidRequest,
                format!(
                    "field `v`: must be a protocol version number like {PROTOCOL_VERSION}, got {}",
                    describe(&raw)
                ),
            ));
        }
    }

    let cmd = match map.remove("cmd") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::UnknownCommand,
                format!(
                    "missing field `cmd`; known commands: {}",
                    COMMANDS.join(", ")
                ),
            ));
        }
        Some(raw) => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::InvalidRequest,
                format!("field `cmd`: must be a string, got {}", describe(&raw)),
            ));
        }
    };

    let request = match cmd.as_str() {
        "ping" => Request::Ping(args_from_map(map, &id, &cmd)?),
        "version" => Request::Version(args_from_map(map, &id, &cmd)?),
        "status" => Request::Status(args_from_map(map, &id, &cmd)?),
        "modems" => Request::Modems(args_from_map(map, &id, &cmd)?),
        "send" => Request::Send(args_from_map(map, &id, &cmd)?),
        "inbox" => Request::Inbox(args_from_map(map, &id, &cmd)?),
        "conversation" => Request::Conversation(args_from_map(map, &id, &cmd)?),
        "watch" => Request::Watch(args_from_map(map, &id, &cmd)?),
        "members_list" => Request::MembersList(args_from_map(map, &id, &cmd)?),
        "members_add" => Request::MembersAdd(args_from_map(map, &id, &cmd)?),
        "members_remove" => Request::MembersRemove(args_from_map(map, &id, &cmd)?),
        "members_tag" => Request::MembersTag(args_from_map(map, &id, &cmd)?),
        "members_import" => Request::MembersImport(args_from_map(map, &id, &cmd)?),
        "members_export" => Request::MembersExport(args_from_map(map, &id, &cmd)?),
        "members_review" => Request::MembersReview(args_from_map(map, &id, &cmd)?),
        "members_review_resolve" => Request::MembersReviewResolve(args_from_map(map, &id, &cmd)?),
        "broadcast" => Request::Broadcast(args_from_map(map, &id, &cmd)?),
        "broadcasts" => Request::Broadcasts(args_from_map(map, &id, &cmd)?),
        "broadcast_progress" => Request::BroadcastProgress(args_from_map(map, &id, &cmd)?),
        "broadcast_pause" => Request::BroadcastPause(args_from_map(map, &id, &cmd)?),
        "broadcast_resume" => Request::BroadcastResume(args_from_map(map, &id, &cmd)?),
        "broadcast_cancel" => Request::BroadcastCancel(args_from_map(map, &id, &cmd)?),
        "in_doubt" => Request::InDoubt(args_from_map(map, &id, &cmd)?),
        "in_doubt_resolve" => Request::InDoubtResolve(args_from_map(map, &id, &cmd)?),
        "webhooks" => Request::Webhooks(args_from_map(map, &id, &cmd)?),
        "webhook_replay" => Request::WebhookReplay(args_from_map(map, &id, &cmd)?),
        "calls" => Request::Calls(args_from_map(map, &id, &cmd)?),
        "voicemail_list" => Request::VoicemailList(args_from_map(map, &id, &cmd)?),
        "voicemail_export" => Request::VoicemailExport(args_from_map(map, &id, &cmd)?),
        "voicemail_delete" => Request::VoicemailDelete(args_from_map(map, &id, &cmd)?),
        "greeting_set" => Request::GreetingSet(args_from_map(map, &id, &cmd)?),
        "message_get" => Request::MessageGet(args_from_map(map, &id, &cmd)?),
        "conversations" => Request::Conversations(args_from_map(map, &id, &cmd)?),
        "members_get" => Request::MembersGet(args_from_map(map, &id, &cmd)?),
        "members_update" => Request::MembersUpdate(args_from_map(map, &id, &cmd)?),
        "tokens_create" => Request::TokensCreate(args_from_map(map, &id, &cmd)?),
        "tokens_list" => Request::TokensList(args_from_map(map, &id, &cmd)?),
        "tokens_revoke" => Request::TokensRevoke(args_from_map(map, &id, &cmd)?),
        "ussd" => Request::Ussd(args_from_map(map, &id, &cmd)?),
        "greeting_get" => Request::GreetingGet(args_from_map(map, &id, &cmd)?),
        "web_users_add" => Request::WebUsersAdd(args_from_map(map, &id, &cmd)?),
        "web_users_list" => Request::WebUsersList(args_from_map(map, &id, &cmd)?),
        "web_users_passwd" => Request::WebUsersPasswd(args_from_map(map, &id, &cmd)?),
        "web_users_remove" => Request::WebUsersRemove(args_from_map(map, &id, &cmd)?),
        "activity" => Request::Activity(args_from_map(map, &id, &cmd)?),
        _ => {
            return Err(fail(
                Some(id.clone()),
                ErrorCode::UnknownCommand,
                format!(
                    "unknown command {:?}; known commands: {}",
                    truncate(&cmd, 64),
                    COMMANDS.join(", ")
                ),
            ));
        }
    };
    Ok(Decoded { id, request })
}

/// Short description of a JSON value's type for error messages (never echoes large input).
fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Deserialize a command's argument struct from the remaining top-level members, naming the field
/// in every error.
fn args_from_map<T: DeserializeOwned>(
    map: Map<String, Value>,
    id: &RequestId,
    cmd: &str,
) -> Result<T, DecodeError> {
    T::deserialize(FieldNamingMap(map)).map_err(|e| DecodeError {
        id: Some(id.clone()),
        error: ErrorBody::new(ErrorCode::InvalidRequest, format!("{cmd}: {e}")),
    })
}

/// A deserializer over a JSON object that prefixes each member's error with "field `name`: ".
/// Only one level deep on purpose: command arguments are flat.
struct FieldNamingMap(Map<String, Value>);

impl<'de> de::Deserializer<'de> for FieldNamingMap {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(FieldNamingAccess {
            iter: self.0.into_iter(),
            pending: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct FieldNamingAccess {
    iter: serde_json::map::IntoIter,
    pending: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for FieldNamingAccess {
    type Error = serde_json::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        let k = seed.deserialize(key.clone().into_deserializer())?;
        self.pending = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("value requested before its key"));
        };
        seed.deserialize(value)
            .map_err(|e| de::Error::custom(format!("field `{key}`: {e}")))
    }
}
