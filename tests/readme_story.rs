//! README.md's story, run as written: the REAL binary, `gsmgate daemon` on its embedded default as a
//! child process in a temporary folder, and every command of the block between `<!-- story -->`
//! and `<!-- /story -->` executed in that folder, in order. The commands come from README.md
//! itself, so the README and this test cannot drift: a command that stops working, or output that
//! no longer says what the README shows, fails here.
//!
//! The README's convention, which this file parses: a line `gsmgate …` is a command (a trailing
//! `# …` after two or more spaces is a note, not output); the `# …` lines under it are lines it
//! prints (stdout or stderr), where `…` stands for anything that varies (times, counts of seconds,
//! a path's folder). A command whose expected output starts with `error:` must fail (exit ≠ 0);
//! every other command must succeed.
//!
//! Issue 18: at 07:07 UTC the story's broadcast sat silent (quiet hours) and the call was rejected
//! (generic modems, voice off). The second test pins the clock at every hour of the day and shows
//! the embedded default holds nothing back at any of them.
//!
//! Isolation: the daemon and every command run with the temporary folder as working directory and
//! as `HOME`, with `GSMGATE_SOCKET` removed, so nothing touches the user's files; the daemon is
//! killed by its own PID when the test ends (a `Drop` guard, also on a failed assertion).

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gsmgate::commands::{Clock, Context, broadcasts, members};
use gsmgate::config::Config;
use gsmgate::protocol::{BroadcastArgs, BroadcastIdArgs, MemberAddArgs};
use gsmgate::store::Store;

const README: &str = include_str!("../README.md");

/// One command of the story and the lines it must print.
#[derive(Debug)]
struct Step {
    line: String,
    args: Vec<String>,
    expect: Vec<String>,
}

/// The block between the markers, as steps.
fn story() -> Vec<Step> {
    let start = README
        .find("<!-- story -->")
        .expect("README.md has <!-- story -->");
    let end = README
        .find("<!-- /story -->")
        .expect("README.md has <!-- /story -->");
    let mut steps: Vec<Step> = Vec::new();
    for raw in README[start..end].lines().skip(1) {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(out) = line.strip_prefix("# ") {
            steps
                .last_mut()
                .unwrap_or_else(|| panic!("output line before any command: {line}"))
                .expect
                .push(out.to_string());
            continue;
        }
        assert!(
            line.starts_with("gsmgate "),
            "a story line is a command or its output: {line}"
        );
        let command = strip_note(line);
        let args = split(command);
        steps.push(Step {
            line: command.to_string(),
            args: args[1..].to_vec(),
            expect: Vec::new(),
        });
    }
    steps
}

/// The command without its trailing `  # note` (a `#` outside quotes after whitespace).
fn strip_note(line: &str) -> &str {
    let mut quote = None;
    let mut prev_space = false;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev_space => return line[..i].trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line.trim_end()
}

/// Words as a POSIX shell splits them, for the quoting the README uses ("…" and '…').
fn split(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Whether one printed line holds the expected line's pieces (split at `…`), in order.
fn matches(printed: &str, expected: &str) -> bool {
    let mut rest = printed;
    for piece in expected.split('…').map(str::trim).filter(|p| !p.is_empty()) {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

/// `gsmgate` run in the story's folder, isolated from the user's environment.
fn gsmgate(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gsmgate"));
    c.current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("XDG_STATE_HOME", dir.join(".local/state"))
        .env_remove("GSMGATE_SOCKET")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null());
    c
}

/// The daemon, killed (by its PID) and reaped when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one command with a deadline; returns (success, stdout + stderr).
fn run(dir: &Path, args: &[String], timeout: Duration) -> (bool, String) {
    let out_path = dir.join("step.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let err = out.try_clone().unwrap();
    let mut child = gsmgate(dir)
        .args(args)
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("gsmgate runs");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`gsmgate {}` did not finish within {timeout:?}; it printed:\n{}",
                args.join(" "),
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.success(),
        std::fs::read_to_string(&out_path).unwrap_or_default(),
    )
}

#[test]
fn the_readme_story_runs_as_written_on_the_embedded_default() {
    let steps = story();
    assert!(
        steps.len() >= 15,
        "the story block lost its commands: {steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.line.starts_with("gsmgate phone call")),
        "the story includes the call"
    );
    // A short path: the admin and control sockets live under it (sun_path is 108 bytes).
    let tmp = tempfile::Builder::new()
        .prefix("rs")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = tmp.path();
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let daemon = Daemon(
        gsmgate(dir)
            .arg("daemon")
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("gsmgate daemon starts"),
    );
    // Wait until the pool is up, as a reader would before typing the first command.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (ok, out) = run(
            dir,
            &["status".into(), "--json".into()],
            Duration::from_secs(30),
        );
        let ready = serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v["modems_ready"].as_u64());
        if ok && ready == Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the embedded default did not get 2 modems ready: {out}\n{}",
            std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    for step in &steps {
        let (ok, out) = run(dir, &step.args, Duration::from_secs(180));
        let must_fail = step.expect.iter().any(|e| e.starts_with("error:"));
        assert_eq!(
            ok,
            !must_fail,
            "`{}` {} but the README says it {}; it printed:\n{out}",
            step.line,
            if ok { "succeeded" } else { "failed" },
            if must_fail { "fails" } else { "succeeds" }
        );
        for e in &step.expect {
            assert!(
                out.lines().any(|l| matches(l, e)),
                "`{}` should print a line like {e:?}; it printed:\n{out}",
                step.line
            );
        }
    }
    // The call was saved where the report said.
    assert!(dir.join("gsmgate-state/sim/call-1.wav").is_file());
    drop(daemon);
}

/// At every hour of the day, a broadcast on the embedded default is held by nothing (no quiet
/// hours; with the old default it waited from 21:00 to 08:00 UTC), with the clock pinned.
#[test]
fn the_embedded_default_holds_no_broadcast_at_any_hour() {
    let cfg = Config::embedded_default();
    assert_eq!(cfg.dispatch.quiet_hours, None);
    // 2026-12-06T00:00:00Z, then every hour.
    let midnight = 1_796_515_200_000_i64;
    for hour in 0..24 {
        let now = midnight + hour * 3_600_000;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("gsmgate.db")).unwrap();
        let ctx =
            Context::new(store, Arc::new(cfg.command_settings())).with_clock(Clock::Fixed(now));
        members::add(
            &ctx,
            &MemberAddArgs {
                number: "+15557654323".into(),
                name: Some("Ada".into()),
                ..MemberAddArgs::default()
            },
        )
        .unwrap();
        let r = broadcasts::broadcast(
            &ctx,
            &BroadcastArgs {
                text: "Hi {name}".into(),
                segment: None,
                at: None,
                dry_run: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.quiet_now, 0, "at {hour:02}:00 UTC");
        let p = broadcasts::progress(
            &ctx,
            &BroadcastIdArgs {
                broadcast: r.id.unwrap(),
            },
        )
        .unwrap();
        assert!(p.held.is_empty(), "at {hour:02}:00 UTC: {:?}", p.held);
    }
}

#[test]
fn the_story_parser_reads_commands_notes_quotes_and_wildcards() {
    assert_eq!(
        strip_note(r#"gsmgate phone text --from +1 "a # b"   # a note"#),
        r#"gsmgate phone text --from +1 "a # b""#
    );
    assert_eq!(
        split(r#"gsmgate broadcast --dry-run "Hi {name}, 7pm" 'x y'"#),
        ["gsmgate", "broadcast", "--dry-run", "Hi {name}, 7pm", "x y"]
    );
    assert!(matches(
        "heard the greeting: 3.6 s of sound (9.0 s on the line)",
        "heard the greeting: … s of sound (… s on the line)"
    ));
    assert!(!matches(
        "hung up by the caller after 3 s",
        "hung up by the gateway after … s"
    ));
}
