//! The `gsmgate pdu` verbs through the real binary: encode → decode round trips and the exit codes
//! and one-line errors people rely on when they paste hex from a modem log.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use serde_json::Value;

fn gsmgate() -> Command {
    Command::cargo_bin("gsmgate").unwrap()
}

fn encode(args: &[&str]) -> Vec<Value> {
    let out = gsmgate()
        .arg("pdu")
        .arg("encode")
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn decode(hex: &str, extra: &[&str]) -> Value {
    let out = gsmgate()
        .args(["pdu", "decode"])
        .args(extra)
        .arg(hex)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn encode_then_decode_single_part() {
    let parts = encode(&[
        "--to",
        "+15551234567",
        "--status-report",
        "--validity",
        "16h",
        "Hi {there} €5",
    ]);
    assert_eq!(parts.len(), 1);
    let p = &parts[0];
    assert_eq!(
        (
            p["part"].as_u64(),
            p["parts"].as_u64(),
            p["encoding"].as_str()
        ),
        (Some(1), Some(1), Some("gsm7"))
    );
    let hex = p["pdu"].as_str().unwrap();
    assert!(hex.starts_with("00"));
    assert_eq!(
        p["tpdu_length"].as_u64().unwrap() as usize,
        hex.len() / 2 - 1
    );
    let d = decode(hex, &[]);
    assert_eq!(d["type"], "SMS-SUBMIT");
    assert_eq!(d["direction"], "from-mobile");
    assert_eq!(d["direction_source"], "detected");
    assert_eq!(d["destination"]["number"], "+15551234567");
    assert_eq!(d["destination"]["type_of_number"], "international");
    assert_eq!(d["flags"]["status_report_request"], true);
    assert_eq!(d["validity"]["raw"], 151);
    assert_eq!(d["text"], "Hi {there} €5");
}

#[test]
fn encode_then_decode_multi_part_ucs2() {
    let text = "Привет 😀 ".repeat(12);
    let parts = encode(&[
        "--to",
        "5551234",
        "--reference",
        "300",
        "--sixteen-bit-reference",
        &text,
    ]);
    assert!(parts.len() > 1);
    let mut joined = String::new();
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["encoding"], "ucs2");
        assert_eq!(p["part"].as_u64(), Some(i as u64 + 1));
        let d = decode(p["pdu"].as_str().unwrap(), &["--direction", "from-mobile"]);
        assert_eq!(d["direction_source"], "given");
        assert_eq!(d["udh"][0]["type"], "concat16");
        assert_eq!(d["udh"][0]["reference"], 300);
        joined.push_str(d["text"].as_str().unwrap());
    }
    assert_eq!(joined, text);
}

#[test]
fn decode_status_report_shows_meaning() {
    let d = decode(
        "07914356060013F1065A098136397339F7219011700463802190117004638030",
        &[],
    );
    assert_eq!(d["type"], "SMS-STATUS-REPORT");
    assert_eq!(d["status"]["code"], 0x30);
    assert!(
        d["status"]["meaning"]
            .as_str()
            .unwrap()
            .contains("temporary")
    );
    assert_eq!(d["timestamp"], "2012-09-11T07:40:36+02:00");
}

fn one_line_failure(args: &[&str]) -> String {
    let out = gsmgate().args(args).assert().code(1).get_output().clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(out.stdout.is_empty());
    err
}

#[test]
fn bad_hex_exits_1_with_one_line() {
    let err = one_line_failure(&["pdu", "decode", "0011zz"]);
    assert!(
        err.contains("character 4") && err.contains("octet 2"),
        "{err}"
    );
    let err = one_line_failure(&["pdu", "decode", "001"]);
    assert!(err.contains("odd number"), "{err}");
}

#[test]
fn truncated_pdu_exits_1_naming_field_and_octet() {
    let err = one_line_failure(&[
        "pdu",
        "decode",
        "--direction",
        "from-mobile",
        "0011000B91640728",
    ]);
    assert_eq!(
        err.trim_end(),
        "error: truncated destination address at octet 3"
    );
}

#[test]
fn usage_errors_exit_2() {
    gsmgate()
        .args(["pdu", "encode", "--to", "+1", "--validity", "64w", "x"])
        .assert()
        .code(2);
    gsmgate()
        .args(["pdu", "encode", "--to", "+1", "--validity", "10y", "x"])
        .assert()
        .code(2);
    gsmgate()
        .args(["pdu", "encode", "--to", "+12a", "x"])
        .assert()
        .code(2);
    gsmgate()
        .args(["pdu", "decode", "--direction", "sideways", "00"])
        .assert()
        .code(2);
}
