//! End to end, against the daemon in-process with simulated modems and phones: custom onboarding
//! fields (docs/community.md, "Custom fields") and geomatch (docs/dispatch.md, "Home modems").
//!
//! Fields: a new member answers a configured `shirt_size` question by SMS; the answer is stored,
//! shown by `members_get`/`members_list`, selects the member in a segment (`shirt_size=L`),
//! fills `{shirt_size}` in a broadcast, and survives an export, removal and re-import; the real
//! binary's `members get` and `members list` print it.
//!
//! Geomatch: two modems configured with numbers in area codes 312 and 212; members added by
//! command get the modem of their own area code (also where balancing alone would pick the other
//! one), the reason is shown, and a broadcast copy leaves from that modem.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use daemon_util::*;
use gsmgate::admin::protocol::{
    BroadcastArgs, MemberAddArgs, MemberGetArgs, MemberItem, MemberRemoveArgs, MembersExportArgs,
    MembersImportArgs, MembersListArgs,
};
use gsmgate::config::Config;

const WAIT: Duration = Duration::from_secs(60);

const NAME_Q: &str = "What's your name?";
const SIZE_Q: &str = "Your T-shirt size (S, M, L, XL)?";

/// Runs the real `gsmgate` binary (blocking, so off the runtime's threads).
async fn gsmgate(socket: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gsmgate"));
    cmd.arg("--socket").arg(socket).args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run gsmgate"))
        .await
        .expect("join")
}

async fn get(gw: &Gateway, number: &str) -> MemberItem {
    gw.client()
        .await
        .members_get(MemberGetArgs {
            number: number.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("members_get {number}: {e}"))
}

/// Waits until `phone` has received `text`.
async fn receives(gw: &Gateway, phone: &str, text: &str) {
    poll(&format!("{phone} receives {text:?}"), WAIT, || async {
        gw.received_texts(phone)
            .iter()
            .any(|t| t == text)
            .then_some(())
    })
    .await;
}

/// `phone` joins on modem 0 and answers both onboarding questions.
async fn onboard(gw: &Gateway, phone: &str, name: &str, size: &str) {
    gw.text_in(phone, 0, "JOIN");
    receives(gw, phone, NAME_Q).await;
    gw.text_in(phone, 0, name);
    receives(gw, phone, SIZE_Q).await;
    gw.text_in(phone, 0, size);
    poll(&format!("{phone}'s shirt_size stored"), WAIT, || async {
        let m = get(gw, phone).await;
        (m.fields.get("shirt_size").map(String::as_str) == Some(size)).then_some(m)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onboarding_answer_is_stored_shown_segmented_rendered_and_exported() {
    let dir = short_tempdir();
    // Each join sends five texts from sim0; the default 6 a minute would make the test wait.
    let base = config_text(dir.path()).replace(
        "name = \"sim0\"\n",
        "name = \"sim0\"\nper_minute = 600\nper_hour = 6000\nper_day = 60000\n",
    );
    let text = format!(
        "{base}\n[[community.onboarding]]\nfield = \"name\"\nquestion = \"{NAME_Q}\"\n\n\
         [[community.onboarding]]\nfield = \"shirt_size\"\nquestion = \"{SIZE_Q}\"\n"
    );
    let cfg = Config::from_str(&text, "test.toml").expect("config validates");
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;

    onboard(&gw, ALICE, "Ana", "L").await;
    onboard(&gw, BOB, "Bo", "M").await;

    // Shown, with the home the join gave.
    let alice = get(&gw, ALICE).await;
    assert_eq!(alice.name.as_deref(), Some("Ana"));
    assert_eq!(alice.home_modem.as_deref(), Some("sim0"));
    assert_eq!(alice.home_reason.as_deref(), Some("sticky"));
    // The CLI shows the field and the home's reason.
    let out = gsmgate(&gw.socket(), &["members", "get", ALICE]).await;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(shown.contains("sim0 (sticky)"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("shirt_size") && l.trim_end().ends_with(" L")),
        "{shown}"
    );
    let out = gsmgate(
        &gw.socket(),
        &["members", "list", "--segment", "shirt_size=L"],
    )
    .await;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        shown.contains("shirt_size=L") && !shown.contains(BOB),
        "{shown}"
    );
    // Segmentable (case-insensitively, like city).
    let page = gw
        .client()
        .await
        .members_list(MembersListArgs {
            segment: Some("shirt_size=l".into()),
            ..MembersListArgs::default()
        })
        .await
        .expect("members_list");
    assert_eq!(page.total, 1);
    assert_eq!(page.members[0].number, ALICE);
    assert_eq!(page.members[0].fields.get("shirt_size").unwrap(), "L");

    // Usable in a broadcast template, to the segment only.
    let result = gw
        .client()
        .await
        .broadcast(BroadcastArgs {
            text: "Hi {name}, your size {shirt_size} shirt is ready".into(),
            segment: Some("shirt_size=L".into()),
            at: None,
            dry_run: false,
            ..Default::default()
        })
        .await
        .expect("broadcast");
    assert_eq!(result.recipients, 1);
    receives(&gw, ALICE, "Hi Ana, your size L shirt is ready").await;
    assert!(
        !gw.received_texts(BOB)
            .iter()
            .any(|t| t.contains("shirt is ready")),
        "Bob is not in the segment"
    );
    // A template naming an unconfigured field is refused up front.
    let err = gw
        .client()
        .await
        .broadcast(BroadcastArgs {
            text: "Hi {shoe_size}".into(),
            segment: None,
            at: None,
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect_err("unknown placeholder");
    assert!(err.to_string().contains("shoe_size"), "{err}");

    // Exported with a column named after the field, and imported back.
    let export = gw
        .client()
        .await
        .members_export(MembersExportArgs::default())
        .await
        .expect("members_export");
    let header = export.csv.lines().next().unwrap_or_default();
    assert!(header.ends_with(",shirt_size"), "{header}");
    for number in [ALICE, BOB] {
        gw.client()
            .await
            .members_remove(MemberRemoveArgs {
                number: number.into(),
            })
            .await
            .expect("members_remove");
    }
    let imported = gw
        .client()
        .await
        .members_import(MembersImportArgs {
            csv: export.csv.clone(),
            dry_run: false,
        })
        .await
        .expect("members_import");
    assert_eq!((imported.imported, imported.errors.len()), (2, 0));
    assert_eq!(get(&gw, ALICE).await.fields.get("shirt_size").unwrap(), "L");
    assert_eq!(get(&gw, BOB).await.fields.get("shirt_size").unwrap(), "M");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geomatch_gives_members_the_modem_of_their_area_code() {
    let dir = short_tempdir();
    let text = config_text(dir.path())
        .replace(
            "name = \"sim0\"\n",
            "name = \"sim0\"\nnumber = \"+13125550100\"\n",
        )
        .replace(
            "name = \"sim1\"\n",
            "name = \"sim1\"\nnumber = \"+12125550100\"\n",
        )
        .replace("jitter_ms = 0\n", "jitter_ms = 0\ngeomatch = true\n");
    let cfg = Config::from_str(&text, "test.toml").expect("config validates");
    assert!(cfg.dispatch.geomatch);
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;

    // Three Chicago numbers first: balancing alone would alternate sim0, sim1, sim0.
    let chicago = ["+13125550111", "+13125550112", "+13125550113"];
    let new_york = ["+12125550111", "+12125550112"];
    let elsewhere = "+14155550120";
    for n in chicago.iter().chain(&new_york).chain([&elsewhere]) {
        gw.client()
            .await
            .members_add(MemberAddArgs {
                number: (*n).into(),
                ..MemberAddArgs::default()
            })
            .await
            .unwrap_or_else(|e| panic!("members_add {n}: {e}"));
    }
    for n in chicago {
        let m = get(&gw, n).await;
        assert_eq!(
            (m.home_modem.as_deref(), m.home_reason.as_deref()),
            (Some("sim0"), Some("geomatch")),
            "{n}"
        );
    }
    for n in new_york {
        let m = get(&gw, n).await;
        assert_eq!(
            (m.home_modem.as_deref(), m.home_reason.as_deref()),
            (Some("sim1"), Some("geomatch")),
            "{n}"
        );
    }
    // No modem in 415: the country matches both, the emptier one (sim1: 2 < 3) wins.
    let m = get(&gw, elsewhere).await;
    assert_eq!(
        (m.home_modem.as_deref(), m.home_reason.as_deref()),
        (Some("sim1"), Some("country"))
    );

    // The copies leave from each member's matching modem.
    let all: Vec<&str> = chicago.iter().chain(&new_york).copied().collect();
    gw.broadcast_and_wait("Local news", &all).await;
    for (numbers, modem) in [(&chicago[..], 0usize), (&new_york[..], 1)] {
        for n in numbers {
            let got = gw.sim().received(Some(n));
            let copy = got.iter().find(|t| t.text == "Local news").expect("copy");
            assert_eq!(copy.modem, Some(modem), "{n} got it from modem {modem}");
        }
    }
    gw.shutdown().await;
}
