//! USSD end to end (docs/admin-protocol.md, `ussd`; docs/modems.md, "USSD"): the daemon with
//! three simulated modems whose profiles answer in the three forms real modems use — Huawei as
//! packed GSM 7-bit hex, SIMCom as UCS-2 hex (DCS 72), Quectel as plain text — reached over the
//! admin socket and through the real `gsmgate ussd` binary.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::path::Path;
use std::process::Command;

use daemon_util::*;
use gsmgate::admin::ClientError;
use gsmgate::admin::protocol::{ErrorCode, UssdArgs};
use gsmgate::config::Config;
use gsmgate::sim::{USSD_BALANCE, USSD_DATA, USSD_MENU};

const PROFILES: [&str; 3] = ["huawei", "simcom", "quectel"];

fn config_text(dir: &Path) -> String {
    let d = dir.display();
    let mut modems = String::new();
    for (i, p) in PROFILES.iter().enumerate() {
        modems.push_str(&format!(
            "[[modem]]\nname = \"{p}\"\nport = \"{d}/sim/modem{i}\"\nprofile = \"{p}\"\n\n"
        ));
    }
    format!(
        r#"
[daemon]
state_dir = "{d}/state"
admin_socket = "{d}/a.sock"
log = "debug"

[simulator]
enabled = true
modems = 3
dir = "{d}/sim"
profiles = ["huawei", "simcom", "quectel"]

{modems}
[dispatch]
jitter_ms = 0

[dispatch.quiet_hours]
enabled = false

[community]
org_name = "Testorg"

[community.contact_card]
name = "Test Leader"
numbers = ["+14155550199"]
mode = "text"
"#
    )
}

fn code(modem: &str, code: &str) -> UssdArgs {
    UssdArgs {
        modem: modem.into(),
        code: Some(code.into()),
        ..Default::default()
    }
}

fn server_error(e: ClientError) -> (ErrorCode, String) {
    match e {
        ClientError::Server(b) => (b.code, b.message),
        other => panic!("not a server error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ussd_over_the_admin_socket_in_every_form() {
    let dir = short_tempdir();
    let cfg = Config::from_str(&config_text(dir.path()), "test.toml").unwrap();
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let mut c = gw.client().await;

    for p in PROFILES {
        let r = c.ussd(code(p, "*100#")).await.unwrap();
        assert_eq!(
            (r.state.as_str(), r.text.as_str()),
            ("done", USSD_BALANCE),
            "{p}"
        );
        assert_eq!(r.dcs, Some(if p == "simcom" { 72 } else { 15 }), "{p}");
    }

    // A menu answered, a menu cancelled (a reply then has no session).
    let m = c.ussd(code("huawei", "*101#")).await.unwrap();
    assert_eq!((m.state.as_str(), m.text.as_str()), ("menu", USSD_MENU));
    let reply = UssdArgs {
        modem: "huawei".into(),
        reply: Some("2".into()),
        ..Default::default()
    };
    let d = c.ussd(reply.clone()).await.unwrap();
    assert_eq!((d.state.as_str(), d.text.as_str()), ("done", USSD_DATA));
    c.ussd(code("simcom", "*101#")).await.unwrap();
    let cancel = UssdArgs {
        modem: "simcom".into(),
        cancel: true,
        ..Default::default()
    };
    assert_eq!(c.ussd(cancel).await.unwrap().state, "cancelled");
    let (code_, msg) = server_error(
        c.ussd(UssdArgs {
            modem: "simcom".into(),
            ..reply.clone()
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(code_, ErrorCode::Unavailable, "{msg}");
    assert!(msg.contains("+CUSD: 4"), "{msg}");

    // Clear errors: ended by the network, no answer in time, unknown modem, two operations.
    let (code_, msg) = server_error(c.ussd(code("quectel", "*102#")).await.unwrap_err());
    assert_eq!(code_, ErrorCode::Unavailable);
    assert!(msg.contains("ended the USSD session (+CUSD: 2)"), "{msg}");
    let timeout = UssdArgs {
        timeout_s: Some(1),
        ..code("quectel", "*199#")
    };
    let (code_, msg) = server_error(c.ussd(timeout).await.unwrap_err());
    assert_eq!(code_, ErrorCode::Unavailable);
    assert!(msg.contains("no USSD answer within 1s"), "{msg}");
    let (code_, _) = server_error(c.ussd(code("nope", "*100#")).await.unwrap_err());
    assert_eq!(code_, ErrorCode::NotFound);
    let both = UssdArgs {
        cancel: true,
        ..code("quectel", "*100#")
    };
    let (code_, msg) = server_error(c.ussd(both).await.unwrap_err());
    assert_eq!(code_, ErrorCode::InvalidRequest, "{msg}");

    // The CLI verb prints the answer; a menu says how to answer it.
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gsmgate"))
            .arg("--socket")
            .arg(gw.socket())
            .arg("ussd")
            .args(args)
            .output()
            .unwrap()
    };
    let gw_socket_runs = tokio::task::block_in_place(|| {
        (
            run(&["huawei", "*100#"]),
            run(&["quectel", "*101#"]),
            run(&["quectel", "--reply", "1"]),
            run(&["quectel", "*102#"]),
        )
    });
    let (balance, menu, answered, ended) = gw_socket_runs;
    assert!(balance.status.success());
    assert_eq!(
        String::from_utf8_lossy(&balance.stdout).trim(),
        USSD_BALANCE
    );
    let menu_out = String::from_utf8_lossy(&menu.stdout);
    assert!(
        menu_out.contains(USSD_MENU) && menu_out.contains("--reply"),
        "{menu_out}"
    );
    assert_eq!(
        String::from_utf8_lossy(&answered.stdout).trim(),
        USSD_BALANCE
    );
    assert!(!ended.status.success());
    assert!(String::from_utf8_lossy(&ended.stderr).contains("+CUSD: 2"));
    gw.shutdown().await;
}
