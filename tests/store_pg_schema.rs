//! The PostgreSQL schema against a real server (tests/pg_util: Debian's `postgresql`, a temp data
//! dir on loopback, a password over scram-sha-256): after all migrations it has every table,
//! column, index and trigger of the SQLite schema with compatible types and the same version;
//! the journal's triggers write the same events and an old database upgrades to the same rows;
//! migrating is idempotent and safe with two daemons starting at once; connection errors are clear
//! and never show the password; TLS works in the modes the URL offers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_util;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};

use gsmgate::store::Store;
use gsmgate::store::pg::{self, Password, PgConfig, PgError};
use pg_util::{PgOptions, PgServer};

fn config(server: &PgServer, sslmode: &str) -> PgConfig {
    PgConfig::from_url(&server.url(sslmode))
        .unwrap()
        .with_password(Password::new(server.password.clone()))
}

/// The error of a connection that must fail (`postgres::Client` has no `Debug` for `unwrap_err`).
fn connect_err(config: &PgConfig) -> PgError {
    match config.connect() {
        Ok(_) => panic!("connected to {} but should not have", config.target()),
        Err(err) => err,
    }
}

fn connect(server: &PgServer) -> postgres::Client {
    config(server, "disable").connect().unwrap()
}

/// One column as both backends describe it: (type, NOT NULL).
type Columns = BTreeMap<(String, String), (String, bool)>;

/// An index: table, key columns in order, unique, partial.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    table: String,
    columns: Vec<String>,
    unique: bool,
    partial: bool,
}

struct SqliteSchema {
    version: i64,
    columns: Columns,
    /// Named indexes by name; automatic ones (UNIQUE and PRIMARY KEY constraints) unnamed.
    named: BTreeMap<String, Index>,
    automatic: Vec<Index>,
    triggers: BTreeSet<(String, String)>,
}

/// The schema a fresh SQLite store has, read from its file with SQLite's own catalog.
fn sqlite_schema() -> SqliteSchema {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gsmgate.db");
    let version = Store::open(&path).unwrap().schema_version().unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut columns = Columns::new();
    let mut named = BTreeMap::new();
    let mut automatic = Vec::new();
    for table in &tables {
        let mut stmt = conn
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")
            .unwrap();
        let rows = stmt
            .query_map([table], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (name, ty, not_null, pk) = row.unwrap();
            // A primary key column holds no NULL in practice; PostgreSQL says so outright.
            columns.insert((table.clone(), name), (ty, not_null || pk > 0));
        }
        let mut stmt = conn
            .prepare("SELECT name, \"unique\", partial FROM pragma_index_list(?1)")
            .unwrap();
        let indexes: Vec<(String, bool, bool)> = stmt
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (name, unique, partial) in indexes {
            let cols: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .unwrap()
                .query_map([&name], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let index = Index {
                table: table.clone(),
                columns: cols,
                unique,
                partial,
            };
            if name.starts_with("sqlite_autoindex_") {
                automatic.push(index);
            } else {
                named.insert(name, index);
            }
        }
    }
    let triggers = conn
        .prepare("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    SqliteSchema {
        version,
        columns,
        named,
        automatic,
        triggers,
    }
}

fn pg_columns(client: &mut postgres::Client) -> Columns {
    client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO'
             FROM information_schema.columns WHERE table_schema = current_schema()",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3))))
        .collect()
}

fn pg_indexes(client: &mut postgres::Client) -> BTreeMap<String, Index> {
    let rows = client
        .query(
            "SELECT c.relname::text, t.relname::text, i.indisunique, i.indpred IS NOT NULL,
                    ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                          FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k)
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = current_schema()",
            &[],
        )
        .unwrap();
    rows.into_iter()
        .map(|r| {
            let columns: Vec<String> = r.get(4);
            // `value COLLATE nocase` names the column `value`, as SQLite's index_info does.
            let columns = columns
                .iter()
                .map(|c| c.split(' ').next().unwrap().trim_matches('"').to_owned())
                .collect();
            let index = Index {
                table: r.get(1),
                columns,
                unique: r.get(2),
                partial: r.get(3),
            };
            (r.get(0), index)
        })
        .collect()
}

fn pg_triggers(client: &mut postgres::Client) -> BTreeSet<(String, String)> {
    client
        .query(
            "SELECT tgname::text, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The PostgreSQL type a SQLite declared type must become (0001's header lists the mapping).
fn pg_type_for(sqlite: &str) -> &'static str {
    match sqlite.to_uppercase().as_str() {
        "INTEGER" => "bigint",
        "TEXT" => "text",
        "REAL" => "double precision",
        "BLOB" => "bytea",
        other => panic!("a SQLite column type the mapping does not cover: {other:?}"),
    }
}

#[test]
fn after_all_migrations_postgres_has_every_sqlite_table_column_index_and_trigger() {
    let server = PgServer::start();
    let mut client = connect(&server);
    assert_eq!(pg::schema_version(&mut client).unwrap(), 0);
    assert_eq!(pg::migrate(&mut client).unwrap(), pg::MIGRATIONS.len());

    let sqlite = sqlite_schema();
    assert_eq!(
        pg::schema_version(&mut client).unwrap(),
        sqlite.version,
        "the two backends are at one version"
    );
    assert_eq!(sqlite.version, pg::MIGRATIONS.len() as i64);

    let pg_cols = pg_columns(&mut client);
    let mut problems = Vec::new();
    for ((table, column), (ty, not_null)) in &sqlite.columns {
        match pg_cols.get(&(table.clone(), column.clone())) {
            None => problems.push(format!("{table}.{column}: missing")),
            Some((pg_ty, pg_not_null)) => {
                if pg_ty != pg_type_for(ty) {
                    problems.push(format!("{table}.{column}: {ty} became {pg_ty}"));
                }
                if pg_not_null != not_null {
                    problems.push(format!(
                        "{table}.{column}: NOT NULL {not_null} in SQLite, {pg_not_null} here"
                    ));
                }
            }
        }
    }
    let sqlite_tables: BTreeSet<&String> = sqlite.columns.keys().map(|(t, _)| t).collect();
    for (table, column) in pg_cols.keys() {
        if table != "schema_migrations"
            && !sqlite
                .columns
                .contains_key(&(table.clone(), column.clone()))
        {
            problems.push(format!("{table}.{column}: only in PostgreSQL"));
        }
    }
    assert!(sqlite_tables.len() >= 26, "{sqlite_tables:?}");

    let pg_idx = pg_indexes(&mut client);
    for (name, index) in &sqlite.named {
        match pg_idx.get(name) {
            None => problems.push(format!("index {name}: missing")),
            Some(pg_index) if pg_index != index => {
                problems.push(format!("index {name}: {index:?} became {pg_index:?}"))
            }
            Some(_) => {}
        }
    }
    // UNIQUE and PRIMARY KEY constraints: an equivalent unique index, whatever its name.
    for index in &sqlite.automatic {
        if !pg_idx.values().any(|i| i == index) {
            problems.push(format!("constraint index missing: {index:?}"));
        }
    }
    let pg_trig = pg_triggers(&mut client);
    for trigger in &sqlite.triggers {
        if !pg_trig.contains(trigger) {
            problems.push(format!("trigger {trigger:?}: missing"));
        }
    }
    assert!(sqlite.triggers.len() >= 8, "{:?}", sqlite.triggers);
    assert!(
        problems.is_empty(),
        "schema differences:\n{}",
        problems.join("\n")
    );
}

#[test]
fn migrating_twice_is_a_no_op_and_keeps_the_rows() {
    let server = PgServer::start();
    let mut client = connect(&server);
    pg::migrate(&mut client).unwrap();
    client
        .batch_execute(
            "INSERT INTO members (number, joined_at, status, updated_at, city)
             VALUES ('+14155550101', 1, 'active', 1, 'Oakland');",
        )
        .unwrap();
    // A second daemon (a new connection) finds nothing to do.
    let mut other = connect(&server);
    assert_eq!(pg::migrate(&mut other).unwrap(), 0);
    assert_eq!(pg::migrate(&mut client).unwrap(), 0);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, pg::MIGRATIONS.len() as i64);
    // The row survived, and `city` compares without case as SQLite's COLLATE NOCASE does.
    let found: i64 = client
        .query_one("SELECT count(*) FROM members WHERE city = 'OAKLAND'", &[])
        .unwrap()
        .get(0);
    assert_eq!(found, 1);
}

#[test]
fn two_migrators_starting_together_both_succeed_and_apply_each_file_once() {
    let server = PgServer::start();
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let config = config(&server, "disable");
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut client = config.connect().unwrap();
                barrier.wait();
                pg::migrate(&mut client)
            })
        })
        .collect();
    let applied: Vec<usize> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert_eq!(
        applied.iter().sum::<usize>(),
        pg::MIGRATIONS.len(),
        "each file applied by exactly one of them: {applied:?}"
    );
    let mut client = connect(&server);
    let versions: Vec<i64> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=pg::MIGRATIONS.len() as i64).collect::<Vec<_>>()
    );
}

#[test]
fn a_database_newer_than_this_build_is_refused() {
    let server = PgServer::start();
    let mut client = connect(&server);
    pg::migrate(&mut client).unwrap();
    client
        .batch_execute("INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future')")
        .unwrap();
    let err = pg::migrate(&mut client).unwrap_err();
    assert!(matches!(err, PgError::TooNew { found: 999, .. }), "{err}");
}

#[test]
fn a_wrong_password_gives_a_clear_error_without_the_password() {
    let server = PgServer::start();
    let wrong = "not-the-Pa55word-xyzzy";
    let err = connect_err(
        &PgConfig::from_url(&server.url("disable"))
            .unwrap()
            .with_password(Password::new(wrong)),
    );
    let shown = format!("{err}");
    eprintln!("the error an operator sees: {shown}");
    let debug = format!("{err:?}");
    let target = format!("gsmgate@127.0.0.1:{}/gsmgate", server.port());
    assert!(shown.contains(&target), "{shown}");
    assert!(shown.contains("password authentication failed"), "{shown}");
    for text in [&shown, &debug] {
        assert!(!text.contains(wrong), "{text}");
        assert!(!text.contains(&server.password), "{text}");
    }
    // No password at all: the server asks for one and the error says so, again naming the target.
    let err = connect_err(&PgConfig::from_url(&server.url("disable")).unwrap()).to_string();
    assert!(err.contains(&target) && err.contains("password"), "{err}");
}

#[test]
fn the_server_restarts_on_its_port_and_a_new_connection_finds_the_schema() {
    let mut server = PgServer::start();
    let mut before = connect(&server);
    pg::migrate(&mut before).unwrap();
    server.restart();
    // The old connection was cut by the fast shutdown; a new one works on the same URL.
    assert!(before.simple_query("SELECT 1").is_err());
    let mut after = connect(&server);
    assert_eq!(
        pg::schema_version(&mut after).unwrap(),
        pg::MIGRATIONS.len() as i64
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM: (ca, cert, key).
fn test_pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

fn uses_tls(client: &mut postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn tls_modes_encrypt_verify_or_refuse_as_the_url_says() {
    let (ca, cert, key) = test_pki();
    let server = PgServer::start_with(PgOptions {
        tls: Some((cert, key)),
    });
    let ca_path = server.dir().join("ca.pem");
    std::fs::write(&ca_path, &ca).unwrap();
    let verify = format!("verify-full&sslrootcert={}", ca_path.display());

    let mut verified = config(&server, &verify).connect().unwrap();
    assert!(uses_tls(&mut verified));
    pg::migrate(&mut verified).unwrap();
    assert!(uses_tls(&mut config(&server, "require").connect().unwrap()));
    assert!(uses_tls(&mut config(&server, "prefer").connect().unwrap()));
    assert!(!uses_tls(
        &mut config(&server, "disable").connect().unwrap()
    ));

    // verify-full against a CA that did not sign the server's certificate: refused.
    let (other_ca, _, _) = test_pki();
    let other_path = server.dir().join("other-ca.pem");
    std::fs::write(&other_path, other_ca).unwrap();
    let err = connect_err(&config(
        &server,
        &format!("verify-full&sslrootcert={}", other_path.display()),
    ));
    assert!(matches!(err, PgError::Connect { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains(&server.password));
}

/// The same facts, written by the same SQL on both backends.
const FACTS: &str = "
INSERT INTO members (number, joined_at, status, updated_at) VALUES ('+14155550101', 1, 'active', 1);
INSERT INTO consent_log (number, event, source, detail, at) VALUES ('+14155550101', 'joined', 'sms', 'JOIN', 2);
INSERT INTO consent_log (number, event, source, at) VALUES ('+14155550101', 'opted_out', 'sms', 3);
INSERT INTO consent_log (number, event, source, at) VALUES ('+14155550101', 'confirmed', 'sms', 3);
INSERT INTO messages_in (id, modem, sender, text, received_at, thread, complete, parts_total)
    VALUES (1, 'sim0', '+14155550101', 'héllo \"quoted\"', 4, '+14155550101', 0, 2);
INSERT INTO broadcasts (id, template, segment, created_at, state, total, updated_at)
    VALUES (1, 'Hi', 'all', 5, 'running', 2, 5);
INSERT INTO outbox (id, to_number, text, kind, priority, broadcast_id, created_at, not_before, state, claimed_by)
    VALUES (1, '+14155550101', 'Hi', 'bulk', 10, 1, 5, 5, 'claimed', 'sim0'),
           (2, '+14155550102', 'Hi', 'bulk', 10, 1, 5, 5, 'claimed', 'sim1');
UPDATE outbox SET state = 'sent', sent_at = 6, submit_modem = 'sim0' WHERE id = 1;
UPDATE outbox SET state = 'failed', finished_at = 7, last_error = 'CMS ERROR: 500' WHERE id = 2;
UPDATE outbox SET state = 'delivered', delivered_at = 8, finished_at = 8 WHERE id = 1;
UPDATE outbox SET attempts = 2 WHERE id = 1;
UPDATE broadcasts SET state = 'done', updated_at = 9 WHERE id = 1;
INSERT INTO calls (id, modem, number, started_at) VALUES (1, 'sim0', NULL, 10);
UPDATE calls SET answered_at = 11, ended_at = 12, duration_ms = 1000, outcome = 'voicemail' WHERE id = 1;
INSERT INTO calls (id, modem, number, started_at) VALUES (2, 'sim1', '+14155550102', 14);
UPDATE calls SET ended_at = 15, outcome = 'missed' WHERE id = 2;
INSERT INTO voicemails (id, call_id, path, duration_ms, created_at) VALUES (1, 1, 'vm/1.wav', 900, 13);
";

/// A connection to a fresh, fully migrated SQLite store (the directory lives as long as the
/// returned guard).
fn fresh_sqlite() -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gsmgate.db");
    drop(Store::open(&path).unwrap());
    let sqlite = rusqlite::Connection::open(&path).unwrap();
    (dir, sqlite)
}

type Event = (String, i64, serde_json::Value);

fn parse_event((ty, at, data): (String, i64, String)) -> Event {
    (ty, at, serde_json::from_str(&data).unwrap())
}

/// Webhook receivers see the same events whichever backend wrote them: the journal's triggers
/// are translated, not re-invented (type, time and the parsed JSON of every event).
#[test]
fn the_journal_triggers_write_the_same_events_on_both_backends() {
    let (_dir, sqlite) = fresh_sqlite();
    sqlite.execute_batch(FACTS).unwrap();
    let from_sqlite: Vec<Event> = sqlite
        .prepare("SELECT type, at, data FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|e| parse_event(e.unwrap()))
        .collect();

    let server = PgServer::start();
    let mut client = connect(&server);
    pg::migrate(&mut client).unwrap();
    client.batch_execute(FACTS).unwrap();
    let from_pg: Vec<Event> = client
        .query("SELECT type, at, data FROM events ORDER BY id", &[])
        .unwrap()
        .into_iter()
        .map(|r| parse_event((r.get(0), r.get(1), r.get(2))))
        .collect();

    let types: Vec<&str> = from_sqlite.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "member_joined",
            "member_opted_out",
            "message_received",
            "message_sent",
            "message_failed",
            "message_delivered",
            "broadcast_finished",
            "call_ended",
            "call_ended",
            "voicemail_left"
        ],
        "the facts above raise every kind of journal event"
    );
    assert_eq!(from_pg, from_sqlite);

    // The consent log stays append-only on PostgreSQL, TRUNCATE included.
    for sql in [
        "UPDATE consent_log SET at = 0",
        "DELETE FROM consent_log",
        "TRUNCATE consent_log",
    ] {
        let err = client.batch_execute(sql).unwrap_err();
        assert!(
            format!("{:?}", err).contains("consent_log is append-only"),
            "{sql}: {err:?}"
        );
    }
}

/// Rows of a version-8 database (before 0009's home reasons, 0010's part estimate and 0012's
/// SIM table), written by the same SQL on both backends.
fn version_8_rows() -> String {
    let long_gsm = "a".repeat(161);
    let huge_gsm = "a".repeat(40_000);
    let long_ucs2 = "é".repeat(100);
    format!(
        "
INSERT INTO modems (name, iccid, imsi, own_number, last_seen_at, updated_at) VALUES
    ('sim0', '8901', '2620', '+4915', 100, 100), ('sim1', '8901', '2620', NULL, 200, 150),
    ('sim2', '8902', NULL, NULL, NULL, 50), ('sim3', '', NULL, NULL, 1, 1),
    ('sim4', NULL, NULL, NULL, 1, 1);
INSERT INTO members (id, number, joined_at, status, updated_at, time_zone, home_modem) VALUES
    (1, '+14155550101', 1, 'active', 1, 'America/Los_Angeles', 'sim0'),
    (2, '+14155550102', 1, 'active', 1, NULL, NULL);
INSERT INTO broadcasts (id, template, segment, created_at, state, total, updated_at)
    VALUES (1, 't', 'all', 1, 'running', 7, 1);
INSERT INTO outbox (id, to_number, text, kind, priority, broadcast_id, created_at, not_before, state)
VALUES
    (1, '+14155550101', 'plain, with ~ and
a line break', 'bulk', 10, 1, 1, 1, 'queued'),
    (2, '+14155550102', '{long_gsm}', 'bulk', 10, 1, 1, 1, 'queued'),
    (3, '+14155550103', '{huge_gsm}', 'bulk', 10, 1, 1, 1, 'queued'),
    (4, '+14155550104', 'héllo', 'bulk', 10, 1, 1, 1, 'queued'),
    (5, '+14155550105', '{long_ucs2}', 'bulk', 10, 1, 1, 1, 'queued'),
    (6, '+14155550106', 'a	tab', 'bulk', 10, 1, 1, 1, 'queued'),
    (7, '+14155550101', 'not a broadcast', 'direct', 10, NULL, 1, 1, 'queued');
"
    )
}

const OUTBOX_AFTER: &str = "SELECT id, parts, zone, quiet_off, payload FROM outbox ORDER BY id";
const SIMS_AFTER: &str = "SELECT iccid, key, imsi, own_number, modem, first_seen_at, \
                          last_seen_at FROM sims ORDER BY iccid";
const MEMBERS_AFTER: &str = "SELECT id, home_reason_modem FROM members ORDER BY id";

type OutboxAfter = (i64, Option<i64>, Option<String>, i64, String);
type SimAfter = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

/// A database with rows from before 0009 upgrades to the same rows on both backends: the part
/// estimate (SQLite's GLOB, PostgreSQL's regular expression), zones, home reasons, SIM keys.
#[test]
fn a_version_8_database_upgrades_to_the_same_rows_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gsmgate.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for (_, sql) in &gsmgate::store::schema::MIGRATIONS[..8] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 8).unwrap();
        tx.execute_batch(&version_8_rows()).unwrap();
        tx.commit().unwrap();
    }
    drop(Store::open(&path).unwrap());
    let sqlite = rusqlite::Connection::open(&path).unwrap();
    let outbox_sqlite: Vec<OutboxAfter> = sqlite
        .prepare(OUTBOX_AFTER)
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let sims_sqlite: Vec<SimAfter> = sqlite
        .prepare(SIMS_AFTER)
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let members_sqlite: Vec<(i64, Option<String>)> = sqlite
        .prepare(MEMBERS_AFTER)
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();

    let server = PgServer::start();
    let mut client = connect(&server);
    assert_eq!(pg::migrate_to(&mut client, 8).unwrap(), 8);
    client.batch_execute(&version_8_rows()).unwrap();
    assert_eq!(pg::migrate(&mut client).unwrap(), pg::MIGRATIONS.len() - 8);
    let outbox_pg: Vec<OutboxAfter> = client
        .query(OUTBOX_AFTER, &[])
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let sims_pg: Vec<SimAfter> = client
        .query(SIMS_AFTER, &[])
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect();
    let members_pg: Vec<(i64, Option<String>)> = client
        .query(MEMBERS_AFTER, &[])
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    let parts: Vec<Option<i64>> = outbox_sqlite.iter().map(|r| r.1).collect();
    assert_eq!(
        parts,
        [Some(1), Some(2), Some(255), Some(1), Some(2), Some(1), None],
        "the estimate itself, so the comparison below is not between two wrong answers"
    );
    assert_eq!(outbox_pg, outbox_sqlite);
    assert_eq!(sims_sqlite.len(), 2, "{sims_sqlite:?}");
    assert_eq!(sims_pg, sims_sqlite);
    assert_eq!(members_sqlite, [(1, Some("sim0".to_owned())), (2, None)]);
    assert_eq!(members_pg, members_sqlite);
}

/// A broadcast's rows going through claims, outcomes, a pause (listed as bulk, as the store's
/// pause does), a home move and a delete: the per-broadcast counts of migration 0014 that the
/// progress poll reads come out the same on both backends (its triggers are translated).
const COUNTED: &str = "
INSERT INTO broadcasts (id, template, segment, created_at, state, total, updated_at)
    VALUES (1, 'Hi', 'all', 5, 'running', 4, 5);
INSERT INTO outbox (id, to_number, text, kind, priority, broadcast_id, modem_pref, created_at, not_before, state, parts)
    VALUES (1, '+14155550101', 'Hi', 'bulk', 10, 1, 'sim0', 5, 5, 'queued', 1),
           (2, '+14155550102', 'Hi', 'bulk', 10, 1, 'sim0', 5, 5, 'queued', 1),
           (3, '+14155550103', 'Hi', 'bulk', 10, 1, NULL, 5, 5, 'queued', 2),
           (4, '+14155550104', 'Hi', 'bulk', 10, 1, 'sim1', 5, 5, 'queued', NULL);
INSERT INTO broadcast_counts (broadcast_id, state, held, modem_pref, zone, parts, n)
    VALUES (1, 'queued', 0, 'sim0', NULL, 1, 2), (1, 'queued', 0, NULL, NULL, 2, 1),
           (1, 'queued', 0, 'sim1', NULL, NULL, 1);
UPDATE outbox SET state = 'claimed', claimed_by = 'sim0' WHERE id = 1;
UPDATE outbox SET state = 'sent', sent_at = 6 WHERE id = 1;
UPDATE outbox SET attempts = 1 WHERE id = 2;
UPDATE outbox SET modem_pref = 'sim1' WHERE id = 3;
UPDATE outbox SET zone = 'America/Chicago' WHERE id = 4;
INSERT INTO broadcast_counts_bulk (broadcast_id) VALUES (1);
UPDATE outbox SET held = 1 WHERE broadcast_id = 1 AND state = 'queued';
UPDATE broadcast_counts SET held = 1 WHERE broadcast_id = 1 AND state = 'queued';
DELETE FROM broadcast_counts_bulk;
UPDATE outbox SET state = 'failed', finished_at = 7 WHERE id = 2;
DELETE FROM outbox WHERE id = 4;
";

#[test]
fn the_broadcast_counts_triggers_count_the_same_on_both_backends() {
    let (_dir, sqlite) = fresh_sqlite();
    sqlite.execute_batch(COUNTED).unwrap();
    let order = "SELECT state, held, coalesce(modem_pref, '-'), coalesce(zone, '-'), \
                 coalesce(parts, -1), n FROM broadcast_counts WHERE n <> 0 \
                 ORDER BY 1, 2, 3, 4, 5";
    type Count = (String, i64, String, String, i64, i64);
    let from_sqlite: Vec<Count> = sqlite
        .prepare(order)
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(|c| c.unwrap())
        .collect();

    let server = PgServer::start();
    let mut client = connect(&server);
    pg::migrate(&mut client).unwrap();
    client.batch_execute(COUNTED).unwrap();
    let from_pg: Vec<Count> = client
        .query(order, &[])
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    // What the statements above did, counted by hand: the triggers moved the sent row, the home
    // move and the zone; the bulk pause skipped them and rewrote the counts itself (as the
    // store's pause does); the failure and the delete after it were counted again.
    let c = |s: &str, h: i64, m: &str, z: &str, p: i64, n: i64| {
        (s.to_string(), h, m.to_string(), z.to_string(), p, n)
    };
    assert_eq!(
        from_sqlite,
        [
            c("failed", 1, "sim0", "-", 1, 1),
            c("queued", 1, "sim1", "-", 2, 1),
            c("sent", 0, "sim0", "-", 1, 1),
        ]
    );
    assert_eq!(from_pg, from_sqlite);
}
