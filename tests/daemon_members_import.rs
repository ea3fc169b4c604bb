//! `gsmgate members import FILE` end to end with files far bigger than one admin request (64 KiB,
//! about 1,500 rows): the real binary against the daemon running in-process on a temp dir.
//!
//! What must hold (docs/community.md, "Large files"): a 20,000-row file imports whole, in several
//! requests, homes balanced and quoted fields intact; a file of several requests with bad rows
//! anywhere imports nothing and every bad row is reported with its row number in the file (not
//! in its chunk), including a number repeated in another chunk; `--dry-run` stores nothing.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_util;

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use daemon_util::*;
use gsmgate::protocol::MembersListArgs;

const ROWS: usize = 20_000;
/// Rows of the files checked for errors: still several requests (~45 bytes a row).
const BAD_ROWS: usize = 4_000;

/// A valid Chicago number for row index `i` (312-200-0000 onwards).
fn number(i: usize) -> String {
    format!("+1312{:03}{:04}", 200 + i / 10_000, i % 10_000)
}

/// A CSV of `rows` members; names with commas and quotes so records need quoting.
fn csv(rows: usize) -> String {
    let mut s = String::from("number,name,city,tags\n");
    for i in 0..rows {
        s.push_str(&format!(
            "{},\"Member {i}, \"\"M{i}\"\"\",Chicago,volunteer;block-{}\n",
            number(i),
            i % 50
        ));
    }
    s
}

/// Runs the real `gsmgate` binary (blocking, so off the runtime's threads).
async fn gsmgate(socket: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gsmgate"));
    cmd.arg("--socket").arg(socket).args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run gsmgate"))
        .await
        .expect("join")
}

async fn member_count(gw: &Gateway) -> u64 {
    gw.client()
        .await
        .members_list(MembersListArgs {
            limit: Some(1),
            ..MembersListArgs::default()
        })
        .await
        .expect("members_list")
        .total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20000_row_file_imports_whole_and_bad_rows_keep_their_file_numbers() {
    let gw = Gateway::start().await;
    let socket = gw.socket();
    let dir = gw.dir.path().to_path_buf();

    // A file of several requests (the daemon's checks cost ~1 ms a row in a debug build, so not
    // 20,000 here) with three bad rows far apart, one repeating a number of another chunk
    // spelled differently: nothing is imported, every row is named as in the file.
    let mut lines: Vec<String> = csv(BAD_ROWS).lines().map(str::to_string).collect();
    lines[2] = "555,Too short,Chicago,".into(); // file row 3
    lines[2_999] = format!("{},Zone,Chicago,bad tag!", number(2_998)); // file row 3000
    let repeated = number(7).replace("+1", "1 (").replacen("200", "200) ", 1);
    lines.push(format!("{repeated},Again,Chicago,")); // file row 4002 repeats row 9
    let bad = lines.join("\n") + "\n";
    let bad_path = dir.join("bad.csv");
    std::fs::write(&bad_path, &bad).expect("write csv");
    assert!(bad.len() > 3 * 64 * 1024, "{} bytes", bad.len());
    let out = gsmgate(
        &socket,
        &["members", "import", bad_path.to_str().expect("utf-8")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let rows: Vec<&str> = stderr.lines().filter(|l| l.starts_with("row ")).collect();
    assert_eq!(rows.len(), 3, "{stderr}");
    assert!(rows[0].starts_with("row 3: number '555'"), "{stderr}");
    assert!(rows[1].starts_with("row 3000: tags"), "{stderr}");
    assert!(
        rows[2].starts_with(&format!("row 4002: number '{repeated}' repeats row 9")),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing was imported: 3 bad rows"),
        "{stderr}"
    );
    assert_eq!(member_count(&gw).await, 0, "nothing imported");

    // --dry-run of the good file: checked, nothing stored.
    let good_path = dir.join("good.csv");
    std::fs::write(&good_path, csv(ROWS)).expect("write csv");
    let good = good_path.to_str().expect("utf-8");
    let out = gsmgate(&socket, &["members", "import", "--dry-run", good]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("20000 rows valid, nothing imported (dry run) (sent in "),
        "{stdout}"
    );
    assert_eq!(member_count(&gw).await, 0);

    // The real import: every row, in several requests, homes balanced over both modems.
    let out = gsmgate(&socket, &["--json", "members", "import", good]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(result["imported"], 20_000, "{result}");
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
    assert_eq!(member_count(&gw).await, ROWS as u64);
    let mut client = gw.client().await;
    let m = client
        .members_list(MembersListArgs {
            segment: Some("tag=block-7".into()),
            limit: Some(10_000),
            offset: None,
        })
        .await
        .expect("list");
    assert_eq!(m.total, (ROWS / 50) as u64);
    let mut homes: HashMap<String, u64> = HashMap::new();
    let mut all = Vec::new();
    for offset in [0, 10_000] {
        let page = client
            .members_list(MembersListArgs {
                limit: Some(10_000),
                offset: Some(offset),
                ..MembersListArgs::default()
            })
            .await
            .expect("list");
        all.extend(page.members);
    }
    assert_eq!(all.len(), ROWS);
    for member in &all {
        *homes
            .entry(member.home_modem.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(homes.len(), 2, "{homes:?}");
    let (lo, hi) = (
        homes.values().min().copied().unwrap_or(0),
        homes.values().max().copied().unwrap_or(0),
    );
    assert!(hi - lo <= 1, "{homes:?}");
    let first = all.iter().find(|m| m.number == number(0));
    assert_eq!(
        first.and_then(|m| m.name.as_deref()),
        Some("Member 0, \"M0\""),
        "quoted fields survive the split"
    );

    // Importing the same file again: every row is already a member, nothing changes.
    let out = gsmgate(&socket, &["members", "import", good]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("row 20001: number '+13122019999' is already a member"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing was imported: 20000 bad rows"),
        "{stderr}"
    );
    assert_eq!(member_count(&gw).await, ROWS as u64);
    gw.shutdown().await;
}
