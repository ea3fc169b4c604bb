//! The sysusers, tmpfiles and udev pieces parse and do what the unit relies on. sysusers and
//! tmpfiles are applied for real to a temporary root with systemd's own tools (as root; otherwise
//! sysusers runs with --dry-run only). systemd 252 has no `udevadm verify` (added in 254), so the
//! udev rules get a structural check of every rule line here, plus `udevadm verify` where it exists.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(name)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `name:x:id:...` from a passwd/group file.
fn id_of(db: &str, name: &str) -> Option<u32> {
    db.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.nth(1)?.parse().ok())?
    })
}

#[test]
fn sysusers_and_tmpfiles_apply_to_a_fresh_root() {
    if !have("systemd-sysusers") || !have("systemd-tmpfiles") {
        println!("SKIPPED: systemd-sysusers/systemd-tmpfiles not installed");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let dry = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg("--dry-run")
        .arg(file("gsmgate.sysusers"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&dry.stderr);
    assert!(dry.status.success(), "{log}");
    assert!(
        log.contains("Creating user 'gsmgate' (gsmgate SMS gateway)"),
        "{log}"
    );
    if !is_root() {
        println!("SKIPPED applying to a temp root: not root");
        return;
    }
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(file("gsmgate.sysusers"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let group = std::fs::read_to_string(root.path().join("etc/group")).unwrap();
    let uid = id_of(&passwd, "gsmgate").expect("user gsmgate");
    let gid = id_of(&group, "gsmgate").expect("group gsmgate");
    assert!(
        passwd.contains(":gsmgate SMS gateway:/var/lib/gsmgate:"),
        "{passwd}"
    );
    let dialout = group
        .lines()
        .find(|l| l.starts_with("dialout:"))
        .expect("group dialout");
    assert!(dialout.ends_with(":gsmgate"), "{dialout}");

    let out = Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.path().display()))
        .arg("--create")
        .arg(file("gsmgate.tmpfiles"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = std::fs::metadata(root.path().join("var/lib/gsmgate")).unwrap();
    assert_eq!(
        (state.mode() & 0o7777, state.uid(), state.gid()),
        (0o750, uid, gid)
    );
    let etc = std::fs::metadata(root.path().join("etc/gsmgate")).unwrap();
    assert_eq!((etc.mode() & 0o7777, etc.uid(), etc.gid()), (0o750, 0, gid));
}

/// Operators udev accepts between a key and its quoted value.
const OPS: [&str; 6] = ["==", "!=", "+=", "-=", ":=", "="];
/// Keys used in our rules (a subset of udev(7)); anything else is a typo.
const KEYS: &[&str] = &[
    "ACTION",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "ENV",
    "IMPORT",
    "GOTO",
    "LABEL",
    "GROUP",
    "MODE",
    "SYMLINK",
    "ATTRS",
    "KERNEL",
];

/// Split one rule line into `(key, op, value)` triples, or say what is wrong with it.
fn parse_rule(line: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest.find(['=', '!', '+', '-', ':']).ok_or("no operator")?;
        let key = rest[..key_end].trim();
        let name = key.split('{').next().unwrap_or(key);
        if !KEYS.contains(&name) {
            return Err(format!("unknown key {key:?}"));
        }
        if key.contains('{') && !key.ends_with('}') {
            return Err(format!("unclosed attribute in {key:?}"));
        }
        let after = &rest[key_end..];
        let op = OPS
            .iter()
            .find(|op| after.starts_with(**op))
            .ok_or(format!("bad operator after {key}"))?;
        let after = after[op.len()..]
            .strip_prefix('"')
            .ok_or(format!("{key}: value not quoted"))?;
        let close = after
            .find('"')
            .ok_or(format!("{key}: unterminated value"))?;
        out.push((key.to_string(), op.to_string(), after[..close].to_string()));
        rest = after[close + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            if rest.is_empty() {
                return Err("trailing comma".into());
            }
        } else if !rest.is_empty() {
            return Err(format!("missing comma before {rest:?}"));
        }
    }
    Ok(out)
}

#[test]
fn rule_parser_rejects_broken_rules() {
    assert!(parse_rule(r#"ENV{A}=="1", GOTO="x""#).is_ok());
    assert!(parse_rule(r#"ENV{A}=="1" GOTO="x""#).is_err());
    assert!(parse_rule(r#"ENV{A}==1"#).is_err());
    assert!(parse_rule(r#"SUBSYTEM=="tty""#).is_err());
    assert!(parse_rule(r#"GROUP="dialout","#).is_err());
}

#[test]
fn udev_rules_are_well_formed_and_tag_known_modems() {
    let text = std::fs::read_to_string(file("60-gsmgate.rules")).unwrap();
    let mut labels = Vec::new();
    let mut gotos = Vec::new();
    let mut vendors = Vec::new();
    let mut assignments = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let rule = parse_rule(line).unwrap_or_else(|e| panic!("60-gsmgate.rules:{}: {e}", n + 1));
        for (key, op, value) in rule {
            match (key.as_str(), op.as_str()) {
                ("LABEL", _) => labels.push(value),
                ("GOTO", _) => gotos.push(value),
                ("ENV{ID_VENDOR_ID}", "==") => vendors.push(value),
                (_, "=" | "+=") => assignments.push(format!("{key}{op}{value}")),
                _ => {}
            }
        }
    }
    for goto in &gotos {
        assert!(labels.contains(goto), "GOTO {goto} has no LABEL");
    }
    for vid in ["12d1", "1e0e", "2c7c"] {
        assert!(vendors.iter().any(|v| v == vid), "vendor {vid} not tagged");
    }
    for expected in [
        "ENV{ID_MM_DEVICE_IGNORE}=1",
        "GROUP=dialout",
        "MODE=0660",
        "SYMLINK+=gsmgate/by-path/$env{ID_PATH}-if$env{ID_USB_INTERFACE_NUM}",
    ] {
        assert!(
            assignments.iter().any(|a| a == expected),
            "missing {expected}: {assignments:?}"
        );
    }

    // `udevadm verify` exists from systemd 254; where it does, it must accept the file too.
    let has_verify = Command::new("udevadm")
        .args(["verify", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_verify {
        let out = Command::new("udevadm")
            .arg("verify")
            .arg(file("60-gsmgate.rules"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "udevadm verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        println!("udevadm verify not available (systemd < 254): structural check only");
    }
}
