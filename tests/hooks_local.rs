//! Local hooks end to end (docs/http-api.md, "Local hooks"): the daemon runs in-process on
//! simulated modems with `[[hook]]` programs that this test writes as small shell scripts into
//! a temp dir (the scripts are programs; the daemon runs them without a shell).
//!
//! - a text in runs the hook once: the event JSON arrives on stdin, the main fields as
//!   `GSMGATE_*` variables, the configured arguments verbatim (a text full of shell syntax stays
//!   data);
//! - a hook that hangs is killed at its timeout together with its children, recorded as failed
//!   and not retried, and later events still run it;
//! - a hook that exits non-zero is logged and not retried.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use gsmgate::config::Config;
use gsmgate::store::ConsumerRow;
use serde_json::Value;

use daemon_util::{ALICE, BOB, Gateway, config_text, options, poll, short_tempdir};

const WAIT: Duration = Duration::from_secs(60);

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn start(dir: tempfile::TempDir, hooks: &str) -> Gateway {
    let text = config_text(dir.path()) + hooks;
    let cfg = Config::from_str(&text, "hooks-test.toml").expect("test config validates");
    let opts = options(&cfg);
    Gateway::start_in(dir, cfg, opts).await
}

fn cursor(gw: &Gateway, name: &str) -> ConsumerRow {
    gw.daemon
        .store()
        .consumer(&format!("hook:{name}"))
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_runs_the_hook_with_json_on_stdin_and_env_vars() {
    let dir = short_tempdir();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let hook = dir.path().join("on-sms");
    // Writes what it got, one file per event id; "$@" shows the arguments arrived verbatim.
    script(
        &hook,
        &format!(
            "cat > {o}/$GSMGATE_EVENT_ID.json\n\
             env | grep '^GSMGATE_' | sort > {o}/$GSMGATE_EVENT_ID.env\n\
             printf '%s\\n' \"$@\" > {o}/$GSMGATE_EVENT_ID.args",
            o = out.display()
        ),
    );
    let hooks = format!(
        "\n[[hook]]\ncommand = \"{}\"\nargs = [\"--from\", \"$HOME; ls\"]\nevents = [\"message_received\"]\ntimeout_secs = 20\n",
        hook.display()
    );
    let gw = start(dir, &hooks).await;
    let text = "Hi $(touch /tmp/pwned) `id`; rm -rf ~ \"quoted\"";
    gw.text_in(ALICE, 0, text);

    let id = poll("the hook ran", WAIT, || async {
        let entry = std::fs::read_dir(&out)
            .ok()?
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "args"))?;
        Some(entry.path().file_stem()?.to_string_lossy().into_owned())
    })
    .await;
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("{id}.json"))).unwrap())
            .unwrap();
    assert_eq!(json["type"], "message_received");
    assert_eq!(json["id"].to_string(), id);
    assert_eq!(json["data"]["from"], ALICE);
    assert_eq!(json["data"]["text"], text);
    let env = std::fs::read_to_string(out.join(format!("{id}.env"))).unwrap();
    assert!(env.contains("GSMGATE_EVENT=message_received\n"), "{env}");
    assert!(env.contains(&format!("GSMGATE_EVENT_ID={id}\n")), "{env}");
    assert!(env.contains(&format!("GSMGATE_FROM={ALICE}\n")), "{env}");
    assert!(env.contains(&format!("GSMGATE_TEXT={text}\n")), "{env}");
    assert!(env.contains("GSMGATE_MODEM=sim0\n"), "{env}");
    let args = std::fs::read_to_string(out.join(format!("{id}.args"))).unwrap();
    assert_eq!(args, "--from\n$HOME; ls\n");
    assert!(!Path::new("/tmp/pwned").exists(), "the text stayed data");

    let c = poll("the run recorded", WAIT, || async {
        let c = cursor(&gw, "on-sms");
        (c.delivered_total == 1).then_some(c)
    })
    .await;
    assert_eq!(c.failed_total, 0);
    // Only message_received runs it: the reply sent to Alice did not.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3);
    gw.shutdown().await;
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_hook_is_killed_at_its_timeout_with_its_children_and_not_retried() {
    let dir = short_tempdir();
    let d = dir.path().to_path_buf();
    let hang = d.join("hang");
    // The child `sleep` is what outlives a plain kill of the shell; its pid goes to a file.
    script(
        &hang,
        &format!(
            "sleep 600 &\necho $! > {d}/sleep.$GSMGATE_EVENT_ID\nwait",
            d = d.display()
        ),
    );
    let fail = d.join("fail");
    script(&fail, "cat > /dev/null\necho 'no such list' >&2\nexit 3");
    let hooks = format!(
        "\n[[hook]]\ncommand = \"{}\"\nevents = [\"message_received\"]\ntimeout_secs = 1\n\
         \n[[hook]]\ncommand = \"{}\"\nevents = [\"message_received\"]\n",
        hang.display(),
        fail.display()
    );
    let gw = start(dir, &hooks).await;
    gw.text_in(ALICE, 0, "first");

    let c = poll("the hanging hook timed out", WAIT, || async {
        let c = cursor(&gw, "hang");
        (c.failed_total == 1).then_some(c)
    })
    .await;
    assert_eq!(c.last_error.as_deref(), Some("timed out (killed)"));
    let pid_file = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("sleep."))
        .expect("the hook started its child")
        .path();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    poll("the hook's child killed with it", WAIT, || async {
        (!alive(pid)).then_some(())
    })
    .await;

    let f = poll("the failing hook recorded", WAIT, || async {
        let c = cursor(&gw, "fail");
        (c.failed_total == 1).then_some(c)
    })
    .await;
    assert_eq!(f.last_error.as_deref(), Some("exit status 3"));

    // Not retried: the next event runs both hooks once more, each moving on.
    gw.text_in(BOB, 1, "second");
    poll("both hooks ran for the second event", WAIT, || async {
        (cursor(&gw, "hang").failed_total == 2 && cursor(&gw, "fail").failed_total == 2)
            .then_some(())
    })
    .await;
    let sleeps = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("sleep."))
        .count();
    assert_eq!(sleeps, 2, "one run per event, no retry");
    gw.shutdown().await;
}
