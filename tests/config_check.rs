//! End-to-end checks of `gsmgate check-config` and of loading files from disk: the exit codes and
//! output the systemd unit and users rely on, and relative paths resolved against the file's folder.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;
use gsmgate::config::{Config, EMBEDDED_DEFAULT_TOML};

fn gsmgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gsmgate"))
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gsmgate.toml")
}

#[test]
fn example_file_checks_ok() {
    let out = gsmgate()
        .arg("check-config")
        .arg(example())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.ends_with("config/gsmgate.toml: OK (1 modem: huawei0)\n"),
        "{stdout}"
    );
}

#[test]
fn bad_file_exits_1_with_every_issue_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gsmgate.toml");
    std::fs::write(
        &path,
        "[daemon]\nstate_dir = \"state\"\n\n[[modem]]\nname = \"Bad Name\"\nport = \"/dev/ttyUSB0\"\nper_minute = 0\n",
    )
    .unwrap();
    let out = gsmgate().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{p}:5: modem[0].name: must be 1 to 32")),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        format!("{p}:7: modem[0].per_minute: must be between 1 and 600, got 0")
    );
}

#[test]
fn unreadable_file_exits_1() {
    let out = gsmgate()
        .args(["check-config", "/nonexistent/gsmgate.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/gsmgate.toml: cannot read")
    );
}

#[test]
fn default_prints_the_embedded_default_which_checks_ok() {
    let out = gsmgate()
        .args(["check-config", "--default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, EMBEDDED_DEFAULT_TOML);
    assert_eq!(
        Config::from_str(&text, "stdout").unwrap(),
        Config::embedded_default()
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("default.toml");
    std::fs::write(&path, &text).unwrap();
    let out = gsmgate().arg("check-config").arg(&path).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK (2 modems: sim0, sim1)"),
        "{out:?}"
    );
}

#[test]
fn file_and_default_together_is_a_usage_error() {
    let out = gsmgate()
        .arg("check-config")
        .arg(example())
        .arg("--default")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = gsmgate().arg("check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn relative_paths_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gsmgate.toml");
    std::fs::write(
        &path,
        "[daemon]\nstate_dir = \"state\"\n[voice]\ngreeting = \"hello.wav\"\n[simulator]\nenabled = true\n",
    )
    .unwrap();
    let c = Config::from_file(&path).unwrap();
    assert_eq!(c.daemon.state_dir, dir.path().join("state"));
    assert_eq!(c.voice.greeting, Some(dir.path().join("hello.wav")));
    assert_eq!(c.modems[0].port, dir.path().join("state/sim/modem0"));
}

#[test]
fn from_file_error_names_the_path_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.toml");
    std::fs::write(&path, "[daemon]\nstate_dir = 5\n").unwrap();
    let err = Config::from_file(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: daemon.state_dir: invalid type: integer `5`, expected a string",
            path.display()
        )
    );
}
