//! `gsmgate migrate` (store::migrate) against a real PostgreSQL (tests/pg_util): a SQLite store
//! holding some of everything arrives row for row, ids and journal included, with the sequences
//! past the copied ids; every table of the SQLite schema is covered (a table added later without
//! fixture rows fails the test); refusals write nothing: a non-empty destination, a wrong
//! password (never shown), a file that is not a gsmgate database, a database a daemon holds, and
//! a count that differs after the copy; the real binary prints one line per table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_util;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use gsmgate::store::migrate::{self, MigrateError, TableCount};
use gsmgate::store::pg::{self, Password, PgConfig};
use gsmgate::store::{
    CallOutcome, ClaimRoute, ConsentEvent, ConsentSource, MemberStatus, MessageKind, ModemIdentity,
    NewMember, NewOutbox, NewPart, NewSingle, Store,
};
use pg_util::PgServer;

const NOW: i64 = 1_760_000_000_000;

fn config(server: &PgServer) -> PgConfig {
    PgConfig::from_url(&server.url("disable"))
        .unwrap()
        .with_password(Password::new(server.password.clone()))
}

fn client(server: &PgServer) -> postgres::Client {
    config(server).connect().unwrap()
}

fn run(source: &Path, server: &PgServer) -> Result<Vec<TableCount>, MigrateError> {
    let mut seen = Vec::new();
    let report = migrate::migrate(source, &config(server), &mut |c| seen.push(c.clone()))?;
    assert_eq!(report.tables, seen, "progress reports every table once");
    Ok(report.tables)
}

fn member(number: &str, home: &str, tags: &[&str], fields: &[(&str, &str)]) -> NewMember {
    NewMember {
        number: number.into(),
        name: Some(format!("Name {number}")),
        city: Some("Oakland".into()),
        region: Some("CA".into()),
        time_zone: Some("America/Los_Angeles".into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        status: Some(MemberStatus::Active),
        home_modem: Some(home.into()),
        onboarding_step: None,
        joined_at: NOW,
        home_reason: Some("balance".into()),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A gateway with some of everything, written through the Store API; the few tables the API
/// fills only mid-operation get a row by SQL. Returns the database's path.
fn fill(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("gsmgate.db");
    let s = Store::open(&path).unwrap();
    fill_modems_and_members(&s);
    fill_outbox(&s);
    fill_inbound_and_calls(&s);
    fill_access_and_journal(&s);
    // Sites (migration 0015): one site with its modems and a heartbeat.
    let modems = ["sim0".to_string(), "sim1".to_string()];
    s.register_site("pi", &modems, 5_000, 0, "test").unwrap();
    s.site_heartbeat("pi", &modems[..1], 6_000).unwrap();
    drop(s);
    top_up(&path);
    path
}

const NUMBERS: [&str; 4] = [
    "+14155550101",
    "+14155550102",
    "+14155550103",
    "+14155550104",
];

fn fill_modems_and_members(s: &Store) {
    for (name, iccid) in [
        ("sim0", "8901000000000000001"),
        ("sim1", "8901000000000000002"),
    ] {
        let id = ModemIdentity {
            name: name.into(),
            iccid: Some(iccid.into()),
            imsi: Some(format!("31026{}", &iccid[9..])),
            imei: Some("350000000000001".into()),
            own_number: Some("+14155550100".into()),
            profile: Some("generic".into()),
        };
        s.upsert_modem(&id, NOW).unwrap();
        s.record_sim(&id, NOW).unwrap();
    }
    let numbers = NUMBERS;
    for (i, n) in numbers.iter().enumerate() {
        let home = if i % 2 == 0 { "sim0" } else { "sim1" };
        s.add_member(
            &member(n, home, &["volunteer", "Ünïcode"], &[("shift", "Früh ☀")]),
            ConsentSource::Cli,
            NOW + i as i64,
        )
        .unwrap();
    }
    s.record_consent(
        numbers[3],
        ConsentEvent::OptedOut,
        Some("STOP"),
        ConsentSource::Sms,
        NOW + 10,
    )
    .unwrap();
}

/// A broadcast with rows in several states, and a reply.
fn fill_outbox(s: &Store) {
    let numbers = NUMBERS;
    let rows: Vec<NewOutbox> = numbers[..3]
        .iter()
        .map(|n| NewOutbox {
            modem_pref: Some("sim0".into()),
            parts: Some(1),
            zone: Some("America/Los_Angeles".into()),
            ..NewOutbox::new(*n, "Hi there", MessageKind::Bulk, NOW + 20)
        })
        .collect();
    s.create_broadcast("Hi {name}", "all", None, &rows, NOW + 20)
        .unwrap();
    s.enqueue(&NewOutbox::new(
        numbers[0],
        "Thanks for your message",
        MessageKind::Reply,
        NOW + 21,
    ))
    .unwrap();
    let route = ClaimRoute {
        pool: vec!["sim0".into(), "sim1".into()],
        takeover: vec![],
    };
    let first = s
        .claim_next_routed("sim0", NOW + 30, &route)
        .unwrap()
        .unwrap();
    s.begin_submit(first.id, 1, 1, NOW + 30).unwrap();
    s.record_part_sent(first.id, 1, 1, 7, NOW + 31).unwrap();
    s.mark_sent(first.id, NOW + 31).unwrap();
    s.status_report("sim0", 7, &first.to_number, 0, NOW + 32)
        .unwrap();
    let second = s
        .claim_next_routed("sim0", NOW + 40, &route)
        .unwrap()
        .unwrap();
    s.mark_failed(second.id, "CMS ERROR 500", NOW + 41).unwrap();
}

/// Inbound: a single text and a two-part message; a call with a voicemail, and a missed one.
fn fill_inbound_and_calls(s: &Store) {
    let numbers = NUMBERS;
    s.store_single(&NewSingle {
        modem: "sim0".into(),
        sender: numbers[1].into(),
        text: "JOIN".into(),
        scts: "2025-10-09T10:00:00+00:00".into(),
        pdu_hex: Some("0791".into()),
        received_at: NOW + 50,
    })
    .unwrap();
    for seq in 1..=2u8 {
        s.store_part(&NewPart {
            modem: "sim1".into(),
            sender: numbers[2].into(),
            reference: 42,
            total: 2,
            sequence: seq,
            text: format!("part {seq} "),
            scts: "2025-10-09T10:01:00+00:00".into(),
            pdu_hex: Some(format!("07{seq}")),
            stored_at: NOW + 60 + seq as i64,
        })
        .unwrap();
    }
    let parts: Vec<i64> = s.pending_parts_ids();
    s.complete_message(&parts, "part 1 part 2 ", true, NOW + 63)
        .unwrap();

    // A call with a voicemail (audio path), and a missed one.
    let call = s.call_started("sim0", Some(numbers[2]), NOW + 70).unwrap();
    s.call_answered(call, NOW + 71).unwrap();
    s.call_ended(call, CallOutcome::Voicemail, NOW + 90)
        .unwrap();
    s.add_voicemail(call, "voicemail/1.wav", 15_000, NOW + 90)
        .unwrap();
    let missed = s.call_started("sim1", None, NOW + 95).unwrap();
    s.call_ended(missed, CallOutcome::Missed, NOW + 96).unwrap();
}

fn fill_access_and_journal(s: &Store) {
    let numbers = NUMBERS;
    // API tokens, idempotency keys, web console users, sessions and audit.
    let token = s
        .create_token("ci", "send", "sha256:abcdef", NOW + 100)
        .unwrap();
    s.idempotency_begin(&token.name, "key-1", "hash-1", NOW + 101, 0)
        .unwrap();
    let user = s
        .web_user_add("owner", "owner", "$argon2id$v=19$fake", NOW + 110)
        .unwrap();
    s.web_session_create("session-hash", user, "csrf", NOW + 111, NOW + 9_999_999)
        .unwrap();
    s.web_audit(NOW + 112, "owner", "members.add", numbers[0])
        .unwrap();

    // Owner commands by SMS.
    s.owner_ref_for(numbers[0], "AB12", NOW + 120, NOW + 600_000)
        .unwrap();
    s.open_owner_confirmation(
        numbers[0],
        "123456",
        Some("all"),
        "Hi all",
        NOW + 121,
        NOW + 600_000,
    )
    .unwrap();

    // The journal: consumers, a replay, and an event pruned from the end, so the id sequence
    // (AUTOINCREMENT) is ahead of the newest row.
    s.ensure_consumer("webhook:ci", NOW + 130).unwrap();
    let event = s
        .append_event("message_received", r#"{"id":1}"#, NOW + 131)
        .unwrap();
    s.request_replay("webhook:ci", event, NOW + 132).unwrap();
    s.append_event("message_received", r#"{"id":2}"#, NOW + 133)
        .unwrap();
}

/// Rows by SQL: the journal's newest event pruned, and the tables the Store API writes only
/// inside a larger operation.
fn top_up(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "DELETE FROM events WHERE id = (SELECT max(id) FROM events);
         INSERT INTO broadcast_counts_bulk (broadcast_id) VALUES (1);",
    )
    .unwrap();
    // The Store API writes a few tables only inside a larger operation; give any still empty
    // a row here so every table is compared. A NEW table must get rows above instead.
    for (table, sql) in [
        (
            "send_log",
            "INSERT INTO send_log (modem, to_number, sent_at, parts) VALUES ('sim0', '+14155550101', 1, 1)",
        ),
        (
            "opt_outs",
            "INSERT INTO opt_outs (number, since) VALUES ('+14155550104', 1)",
        ),
    ] {
        let empty: bool = conn
            .query_row(
                &format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        if empty {
            conn.execute_batch(sql).unwrap();
        }
    }
}

/// Helpers the fixture needs that the Store API names differently.
trait Fixture {
    fn pending_parts_ids(&self) -> Vec<i64>;
}

impl Fixture for Store {
    fn pending_parts_ids(&self) -> Vec<i64> {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.prepare("SELECT id FROM inbound_parts WHERE message_id IS NULL ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }
}

fn sqlite_tables(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .unwrap()
    .query_map([], |r| r.get(0))
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

fn columns(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Column names quoted: `user` (web_audit) is a keyword in PostgreSQL.
fn quoted(cols: &[String]) -> String {
    cols.iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every row of `table` in SQLite, each value as text, sorted.
fn sqlite_rows(conn: &rusqlite::Connection, table: &str, cols: &[String]) -> Vec<Vec<String>> {
    let sql = format!("SELECT {} FROM {table}", quoted(cols));
    let mut stmt = conn.prepare(&sql).unwrap();
    let mut rows: Vec<Vec<String>> = stmt
        .query_map([], |r| {
            Ok((0..cols.len())
                .map(|i| match r.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    rusqlite::types::ValueRef::Real(v) => format!("{v:?}"),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
                    rusqlite::types::ValueRef::Blob(b) => hex(b),
                })
                .collect())
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    rows.sort();
    rows
}

/// The same from PostgreSQL, rendered the same way.
fn pg_rows(client: &mut postgres::Client, table: &str, cols: &[String]) -> Vec<Vec<String>> {
    let sql = format!("SELECT {} FROM {table}", quoted(cols));
    let mut rows: Vec<Vec<String>> = client
        .query(&sql, &[])
        .unwrap()
        .iter()
        .map(|r| {
            (0..cols.len())
                .map(|i| {
                    let ty = r.columns()[i].type_().clone();
                    let text = if ty == postgres::types::Type::INT8 {
                        r.get::<_, Option<i64>>(i).map(|v| v.to_string())
                    } else if ty == postgres::types::Type::FLOAT8 {
                        r.get::<_, Option<f64>>(i).map(|v| format!("{v:?}"))
                    } else if ty == postgres::types::Type::BYTEA {
                        r.get::<_, Option<Vec<u8>>>(i).map(|v| hex(&v))
                    } else {
                        r.get::<_, Option<String>>(i)
                    };
                    text.unwrap_or_else(|| "NULL".to_owned())
                })
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

fn pg_count(client: &mut postgres::Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

/// Rows in all gateway tables of the PostgreSQL database.
fn pg_total(client: &mut postgres::Client) -> i64 {
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
               AND table_name <> 'schema_migrations'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() >= 26, "{tables:?}");
    tables.iter().map(|t| pg_count(client, t)).sum()
}

#[test]
fn every_table_arrives_row_for_row_with_ids_and_sequences_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = fill(dir.path());
    let server = PgServer::start();
    let counts = run(&path, &server).unwrap();

    let lite = rusqlite::Connection::open(&path).unwrap();
    let tables = sqlite_tables(&lite);
    let mut pg = client(&server);
    let reported: BTreeMap<&str, u64> = counts.iter().map(|c| (c.table.as_str(), c.rows)).collect();
    let mut empty = Vec::new();
    for table in &tables {
        let cols = columns(&lite, table);
        let from = sqlite_rows(&lite, table, &cols);
        if from.is_empty() {
            empty.push(table.clone());
        }
        let to = pg_rows(&mut pg, table, &cols);
        assert_eq!(from, to, "table {table} differs");
        assert_eq!(
            reported.get(table.as_str()),
            Some(&(from.len() as u64)),
            "{table}"
        );
    }
    assert!(
        empty.is_empty(),
        "tables without rows in the fixture (add some to fill(), so the migration of every \
         table is proven): {empty:?}"
    );
    assert_eq!(counts.len(), tables.len(), "every table copied: {counts:?}");
    assert_eq!(
        counts.last().map(|c| c.table.as_str()),
        Some("events"),
        "the journal goes last"
    );

    // New rows get ids past the copied ones; the journal's past SQLite's high-water mark too
    // (its newest event was pruned, and an id handed out twice would be skipped by a webhook).
    let max_member: i64 = lite
        .query_row("SELECT max(id) FROM members", [], |r| r.get(0))
        .unwrap();
    let id: i64 = pg
        .query_one(
            "INSERT INTO members (number, joined_at, status, updated_at)
             VALUES ('+14155550199', 1, 'active', 1) RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(id, max_member + 1);
    let high_water: i64 = lite
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let newest: i64 = lite
        .query_row("SELECT max(id) FROM events", [], |r| r.get(0))
        .unwrap();
    assert!(high_water > newest, "the fixture pruned the newest event");
    let event: i64 = pg
        .query_one(
            "INSERT INTO events (type, at, data) VALUES ('message_received', 1, '{}') RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(event, high_water + 1);
    for table in [
        "outbox",
        "messages_in",
        "calls",
        "voicemails",
        "web_users",
        "consent_log",
    ] {
        let max: i64 = lite
            .query_row(&format!("SELECT max(id) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        let next: i64 = pg
            .query_one(
                &format!("SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(next, max + 1, "{table}");
    }
}

#[test]
fn a_destination_with_rows_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = fill(dir.path());
    let server = PgServer::start();
    let mut pg = client(&server);
    pg::migrate(&mut pg).unwrap();
    pg.batch_execute(
        "INSERT INTO web_audit (at, \"user\", action, detail) VALUES (1, 'x', 'y', 'z')",
    )
    .unwrap();
    let err = run(&path, &server).unwrap_err();
    assert!(
        matches!(&err, MigrateError::NotEmpty { table } if table == "web_audit"),
        "{err}"
    );
    assert!(err.to_string().contains("web_audit"), "{err}");
    assert_eq!(pg_total(&mut pg), 1, "only the row that was there");
}

#[test]
fn a_wrong_password_is_a_clear_error_that_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = fill(dir.path());
    let server = PgServer::start();
    let wrong = "wr0ng-Pa55-zyzzyva";
    let to = PgConfig::from_url(&server.url("disable"))
        .unwrap()
        .with_password(Password::new(wrong));
    let err = migrate::migrate(&path, &to, &mut |_| {}).unwrap_err();
    let (shown, debug) = (err.to_string(), format!("{err:?}"));
    assert!(shown.contains("password authentication failed"), "{shown}");
    assert!(
        shown.contains(&format!("127.0.0.1:{}", server.port())),
        "{shown}"
    );
    for text in [&shown, &debug] {
        assert!(
            !text.contains(wrong) && !text.contains(&server.password),
            "{text}"
        );
    }
}

#[test]
fn a_source_that_is_not_a_gsmgate_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start();
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("PRAGMA user_version = 3; CREATE TABLE photos (id INTEGER PRIMARY KEY);")
        .unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database at all, just some text here\n".repeat(50),
    )
    .unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    for file in [&other, &text, &empty] {
        let err = run(file, &server).unwrap_err();
        assert!(
            matches!(err, MigrateError::NotGsmgate { .. }),
            "{}: {err}",
            file.display()
        );
    }
    let tables: i64 = rusqlite::Connection::open(&other)
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        tables, 1,
        "no gsmgate table was added to another program's file"
    );
    let missing = dir.path().join("missing.db");
    let err = run(&missing, &server).unwrap_err();
    assert!(matches!(err, MigrateError::SourceMissing { .. }), "{err}");
    assert!(!missing.exists(), "a missing source is not created");
}

#[test]
fn a_database_a_daemon_holds_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = fill(dir.path());
    let server = PgServer::start();
    // What the daemon holds for its whole life: an open store on the file.
    let daemon = Store::open(&path).unwrap();
    daemon.schema_version().unwrap();
    let err = run(&path, &server).unwrap_err();
    assert!(matches!(err, MigrateError::SourceInUse { .. }), "{err}");
    assert!(err.to_string().contains("stop the daemon"), "{err}");
    drop(daemon);
    assert!(run(&path, &server).is_ok(), "works once the daemon is gone");
}

#[test]
fn a_count_that_differs_after_the_copy_rolls_everything_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = fill(dir.path());
    let server = PgServer::start();
    let mut pg = client(&server);
    pg::migrate(&mut pg).unwrap();
    // A stray trigger (as a DBA might have left) that adds a row to a table already copied.
    pg.batch_execute(
        "CREATE FUNCTION stray() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO opt_outs (number, since) VALUES ('+1415555' || NEW.id, 1);
             RETURN NULL;
         END $$;
         CREATE TRIGGER stray AFTER INSERT ON web_users FOR EACH ROW EXECUTE FUNCTION stray();",
    )
    .unwrap();
    let err = run(&path, &server).unwrap_err();
    assert!(
        matches!(&err, MigrateError::CountMismatch { differences } if differences.iter().any(|d| d.starts_with("opt_outs"))),
        "{err}"
    );
    assert_eq!(pg_total(&mut pg), 0, "nothing committed");
}

#[test]
fn the_binary_migrates_prints_each_table_and_refuses_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = fill(dir.path());
    let server = PgServer::start();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{}\n", server.password)).unwrap();
    let migrate = || {
        Command::new(env!("CARGO_BIN_EXE_gsmgate"))
            .arg("migrate")
            .arg("--from")
            .arg(format!("sqlite:{}", path.display()))
            .arg("--to")
            .arg(server.url("disable"))
            .arg("--password-file")
            .arg(&pw)
            .output()
            .unwrap()
    };
    let out = migrate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lite = rusqlite::Connection::open(&path).unwrap();
    for table in sqlite_tables(&lite) {
        let n: i64 = lite
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == [table.as_str(), &n.to_string()]),
            "no line for {table} {n}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("counts of every table are equal"),
        "{stdout}"
    );
    // An open connection is what a running daemon looks like: close it before the second run.
    drop(lite);

    let again = migrate();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    for text in [&stderr, &String::from_utf8_lossy(&again.stdout)] {
        assert!(!text.contains(&server.password), "{text}");
    }
}
