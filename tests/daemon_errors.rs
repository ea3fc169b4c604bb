//! The error lines of `gsmgate daemon` (the real binary) when it cannot start: what failed, then
//! each cause once on its own line, naming the file and whether its disk is read-only or full or
//! the file corrupt (docs/daemon.md, "When the daemon does not start").
//!
//! The read-only and full cases need a file system that is read-only or full for the daemon. As
//! root (where permissions do not stop a write) the daemon runs inside `unshare -m` over a
//! private tmpfs, mounted `ro` or a few KiB small, which vanishes with the process; as another
//! user a `chmod 555` directory stands in for the read-only one. Where neither is possible the
//! case says so on stderr and passes.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gsmgate");

/// A configuration with its state in `dir/st` and no modem to wait for before the database.
fn config(dir: &Path) -> std::path::PathBuf {
    let d = dir.display();
    let text = format!(
        r#"
[daemon]
state_dir = "{d}/st"
admin_socket = "{d}/a.sock"

[simulator]
enabled = true
modems = 1
dir = "{d}/sim"

[[modem]]
name = "sim0"
port = "{d}/sim/modem0"
"#
    );
    let path = dir.join("g.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `cmd`, which must fail; returns its stderr without the log lines.
fn fails(mut cmd: Command) -> String {
    let out = assert_cmd::Command::from_std(std::mem::replace(&mut cmd, Command::new("true")))
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("gsmgate daemon:") || l.starts_with("  "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn daemon(cfg: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("daemon").arg("--config").arg(cfg);
    c
}

/// The daemon inside a private mount namespace, with `options` tmpfs mounted on `dir`.
fn daemon_on_tmpfs(cfg: &Path, dir: &Path, options: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c"]).arg(format!(
        "mount -t tmpfs -o {options} tmpfs '{}' && exec '{BIN}' daemon --config '{}'",
        dir.display(),
        cfg.display()
    ));
    c
}

/// Whether this process may mount a tmpfs in a private namespace.
fn can_mount() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("unshare")
            .args(["-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"])
            .status()
            .is_ok_and(|s| s.success())
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_corrupt_database_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let st = dir.path().join("st");
    std::fs::create_dir(&st).unwrap();
    // A SQLite header and then garbage: what a torn copy leaves.
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    std::fs::write(st.join("gsmgate.db"), bytes).unwrap();
    let err = fails(daemon(&cfg));
    assert_eq!(count(&err, "file is not a database"), 1, "{err}");
    assert_eq!(count(&err, "corrupt"), 1, "{err}");
    assert_eq!(count(&err, "gsmgate.db"), 1, "{err}");
    // The start-up check names the file, the cause and the remedy in one line.
    assert!(err.contains("gsmgate restore FILE"), "{err}");
}

#[test]
fn a_read_only_state_dir_is_called_read_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let st = dir.path().join("st");
    std::fs::create_dir(&st).unwrap();
    let err = if can_mount() {
        let err = fails(daemon_on_tmpfs(&cfg, &st, "ro"));
        assert_eq!(count(&err, "read-only"), 1, "{err}");
        err
    } else if !nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o555)).unwrap();
        let err = fails(daemon(&cfg));
        assert_eq!(count(&err, "not writable"), 1, "{err}");
        err
    } else {
        eprintln!("skipped: root without a mount namespace cannot make a read-only directory");
        return;
    };
    assert_eq!(count(&err, "gsmgate.db:"), 1, "names the file: {err}");
    assert_eq!(
        count(&err, "unable to open database file"),
        0,
        "SQLite's wording is replaced by the cause: {err}"
    );
}

#[test]
fn a_full_state_disk_is_called_full_once() {
    if !can_mount() {
        eprintln!("skipped: needs root and a mount namespace for a tiny tmpfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let st = dir.path().join("st");
    std::fs::create_dir(&st).unwrap();
    let err = fails(daemon_on_tmpfs(&cfg, &st, "size=8k"));
    assert_eq!(count(&err, "disk full"), 1, "{err}");
    assert_eq!(count(&err, "gsmgate.db:"), 1, "names the file: {err}");
}

#[test]
fn a_config_that_is_not_utf8_says_where_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(&cfg, b"[daemon]\nstate_dir = \"/tmp/st\xff\"\n").unwrap();
    let err = fails(daemon(&cfg));
    assert_eq!(count(&err, "UTF-8"), 1, "{err}");
    assert!(
        err.contains("byte 0xFF at line 2, column 21"),
        "says where: {err}"
    );
    assert_eq!(count(&err, "g.toml"), 1, "{err}");
}
