use super::*;
use proptest::prelude::*;
use serde_json::{Map, json};

fn decode(v: Value) -> Result<Decoded, DecodeError> {
    decode_request(v.to_string().as_bytes())
}

#[test]
fn every_example_round_trips_through_the_envelope() {
    for (i, req) in Request::examples().into_iter().enumerate() {
        let env = Envelope {
            id: RequestId::Num(i as u64),
            v: Some(PROTOCOL_VERSION),
            request: req.clone(),
        };
        let line = serde_json::to_string(&env).unwrap();
        let back = decode_request(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        assert_eq!(back.request, req, "{line}");
        assert_eq!(back.id, RequestId::Num(i as u64));
        assert!(
            COMMANDS.contains(&req.name()),
            "{} not in COMMANDS",
            req.name()
        );
    }
}

/// Regression: `voicemail_export {id}` collided with the envelope's `id`, so the request id
/// became the voicemail id and the argument went missing.
#[test]
fn no_argument_is_named_like_an_envelope_member() {
    for req in Request::examples() {
        let v = serde_json::to_value(&req).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        for reserved in ["id", "v"] {
            assert!(
                !keys.iter().any(|k| *k == reserved),
                "{} has an argument named `{reserved}`",
                req.name()
            );
        }
    }
}

#[test]
fn every_command_has_an_example() {
    let names: Vec<_> = Request::examples().iter().map(Request::name).collect();
    for cmd in COMMANDS {
        assert!(names.contains(cmd), "no example for {cmd}");
    }
}

#[test]
fn arguments_sit_beside_cmd_at_top_level() {
    let env = Envelope {
        id: RequestId::Num(7),
        v: None,
        request: Request::Send(SendArgs {
            to: "+15551234567".into(),
            text: "hi".into(),
            modem: None,
        }),
    };
    assert_eq!(
        serde_json::to_value(&env).unwrap(),
        json!({"id": 7, "cmd": "send", "to": "+15551234567", "text": "hi"})
    );
}

#[test]
fn string_ids_are_echoed() {
    let d = decode(json!({"id": "abc", "cmd": "ping"})).unwrap();
    assert_eq!(d.id, RequestId::Str("abc".into()));
}

#[test]
fn missing_or_null_id_is_invalid_request() {
    for req in [
        json!({"cmd": "status"}),
        json!({"id": null, "cmd": "status"}),
    ] {
        let e = decode(req).unwrap_err();
        assert_eq!(e.id, None);
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert!(e.error.message.contains("`id`"), "{}", e.error.message);
    }
}

#[test]
fn malformed_json_has_no_id() {
    let e = decode_request(br#"{"id": 3, "cmd": "#).unwrap_err();
    assert_eq!(e.id, None);
    assert_eq!(e.error.code, ErrorCode::MalformedJson);
    let e = decode_request(b"[1,2]").unwrap_err();
    assert_eq!(e.error.code, ErrorCode::MalformedJson);
}

#[test]
fn bad_id_is_invalid_request_naming_id() {
    for id in [
        json!(-1),
        json!(1.5),
        json!([1]),
        json!({"a": 1}),
        json!(true),
    ] {
        let e = decode(json!({"id": id, "cmd": "ping"})).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert!(e.error.message.contains("`id`"), "{}", e.error.message);
    }
}

#[test]
fn version_is_checked() {
    assert!(decode(json!({"id": 1, "v": 1, "cmd": "ping"})).is_ok());
    let e = decode(json!({"id": 1, "v": 2, "cmd": "ping"})).unwrap_err();
    assert_eq!(e.error.code, ErrorCode::UnsupportedVersion);
    assert_eq!(e.id, Some(RequestId::Num(1)));
    let e = decode(json!({"id": 1, "v": "1", "cmd": "ping"})).unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidRequest);
    assert!(e.error.message.contains("`v`"));
}

#[test]
fn unknown_and_missing_commands() {
    let e = decode(json!({"id": 4, "cmd": "launch"})).unwrap_err();
    assert_eq!(e.error.code, ErrorCode::UnknownCommand);
    assert_eq!(e.id, Some(RequestId::Num(4)));
    assert!(e.error.message.contains("launch"));
    assert!(e.error.message.contains("send"));
    let e = decode(json!({"id": 4})).unwrap_err();
    assert_eq!(e.error.code, ErrorCode::UnknownCommand);
    let e = decode(json!({"id": 4, "cmd": 12})).unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidRequest);
    assert!(e.error.message.contains("`cmd`"));
}

#[test]
fn wrong_types_name_the_field() {
    let cases = [
        (
            json!({"id": 1, "cmd": "send", "to": 15551234567u64, "text": "x"}),
            "`to`",
        ),
        (
            json!({"id": 1, "cmd": "send", "to": "+1", "text": ["x"]}),
            "`text`",
        ),
        (json!({"id": 1, "cmd": "inbox", "limit": "ten"}), "`limit`"),
        (json!({"id": 1, "cmd": "inbox", "limit": -3}), "`limit`"),
        (
            json!({"id": 1, "cmd": "inbox", "unread_only": "yes"}),
            "`unread_only`",
        ),
        (
            json!({"id": 1, "cmd": "conversation", "number": null}),
            "`number`",
        ),
        (
            json!({"id": 1, "cmd": "watch", "events": ["message_in", "bogus"]}),
            "`events`",
        ),
        (
            json!({"id": 1, "cmd": "watch", "events": "message_in"}),
            "`events`",
        ),
    ];
    for (req, field) in cases {
        let e = decode(req.clone()).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest, "{req}");
        assert_eq!(e.id, Some(RequestId::Num(1)));
        assert!(
            e.error.message.contains(field),
            "{req}: {}",
            e.error.message
        );
    }
}

#[test]
fn missing_and_unknown_fields_are_named() {
    let e = decode(json!({"id": 1, "cmd": "send", "text": "x"})).unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidRequest);
    assert!(e.error.message.contains("`to`"), "{}", e.error.message);
    let e = decode(json!({"id": 1, "cmd": "inbox", "unread-only": true})).unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidRequest);
    assert!(
        e.error.message.contains("unread-only"),
        "{}",
        e.error.message
    );
    let e = decode(json!({"id": 1, "cmd": "ping", "extra": 1})).unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidRequest);
    assert!(e.error.message.contains("extra"), "{}", e.error.message);
}

#[test]
fn optional_fields_default() {
    let d = decode(json!({"id": 1, "cmd": "inbox"})).unwrap();
    assert_eq!(d.request, Request::Inbox(InboxArgs::default()));
    let d = decode(json!({"id": 1, "cmd": "inbox", "unread_only": null, "limit": null})).unwrap();
    assert_eq!(d.request, Request::Inbox(InboxArgs::default()));
    let d =
        decode(json!({"id": 1, "cmd": "send", "to": "+1", "text": "t", "modem": null})).unwrap();
    assert!(matches!(
        d.request,
        Request::Send(SendArgs { modem: None, .. })
    ));
}

#[test]
fn unknown_error_codes_deserialize_as_other() {
    let b: ErrorBody =
        serde_json::from_value(json!({"code": "quota_exceeded", "message": "m"})).unwrap();
    assert_eq!(b.code, ErrorCode::Other);
    let b: ErrorBody =
        serde_json::from_value(json!({"code": "invalid_number", "message": "m"})).unwrap();
    assert_eq!(b.code, ErrorCode::InvalidNumber);
}

#[test]
fn error_code_wire_names_match_as_str() {
    for code in [
        ErrorCode::MalformedJson,
        ErrorCode::RequestTooLarge,
        ErrorCode::UnknownCommand,
        ErrorCode::InvalidRequest,
        ErrorCode::UnsupportedVersion,
        ErrorCode::PermissionDenied,
        ErrorCode::InvalidNumber,
        ErrorCode::OptedOut,
        ErrorCode::NotFound,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::Conflict,
    ] {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
    }
}

#[test]
fn response_shapes() {
    let ok = Response::success(Some(RequestId::Num(7)), json!({"pong": true}));
    assert_eq!(
        serde_json::to_value(&ok).unwrap(),
        json!({"v": 1, "id": 7, "ok": true, "data": {"pong": true}})
    );
    let err = Response::failure(None, ErrorBody::new(ErrorCode::MalformedJson, "bad"));
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({"v": 1, "id": null, "ok": false, "error": {"code": "malformed_json", "message": "bad"}})
    );
}

#[test]
fn events_are_tagged_by_type() {
    let line = EventLine {
        event: Event::Lagged { missed: 3 },
    };
    assert_eq!(
        serde_json::to_value(&line).unwrap(),
        json!({"event": {"type": "lagged", "missed": 3}})
    );
    let ev = Event::MessageIn {
        id: 1,
        from: "+1".into(),
        text: "t".into(),
        modem: "m".into(),
    };
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(v["type"], "message_in");
    assert_eq!(serde_json::to_value(ev.kind()).unwrap(), v["type"]);
    assert_eq!(serde_json::from_value::<Event>(v).unwrap(), ev);
}

proptest! {
    #[test]
    fn decode_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(&bytes);
    }

    #[test]
    fn decode_never_panics_on_objects(
        cmd in prop_oneof![Just("send".to_string()), Just("inbox".to_string()), Just("watch".to_string()), ".{0,12}"],
        key in "[a-z_]{0,12}",
        val in prop_oneof![
            Just(json!(null)), any::<i64>().prop_map(|n| json!(n)), ".{0,8}".prop_map(|s| json!(s)),
            Just(json!([1, "a"])), Just(json!({"x": 1})), any::<bool>().prop_map(|b| json!(b)),
        ],
    ) {
        let mut m = Map::new();
        m.insert("id".into(), json!(1));
        m.insert("cmd".into(), json!(cmd));
        m.insert(key, val);
        let r = decode_request(Value::Object(m).to_string().as_bytes());
        if let Err(e) = r {
            prop_assert!(!e.error.message.is_empty());
        }
    }
}
