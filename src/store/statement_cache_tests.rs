//! The send path runs on prepared statements kept in the connection's cache (`db::Conn::exec_cached` and friends): after
//! one message has gone through claim, submit evidence, sent part, sent and status report, the
//! next ones prepare nothing new. Before, every `execute`/`query_row` parsed and planned its SQL
//! again; `perf` on the footprint bench showed that as the largest user-space cost per SMS
//! (docs/daemon.md, "Footprint").

use super::*;
use crate::store::{ClaimRoute, MessageKind, NewOutbox};

/// The SQL of every statement alive on the store's connection (cached ones are alive between
/// uses; a statement run by `execute` is finalized at once).
fn live_statements(s: &Store) -> Vec<String> {
    let conn = s.conn();
    let mut out = Vec::new();
    // SAFETY: the connection is locked for the whole walk, so no statement is finalized while
    // it runs; sqlite3_sql returns a string owned by the statement, copied before moving on.
    unsafe {
        let db = conn.lite().expect("a SQLite store").handle();
        let mut st = rusqlite::ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !st.is_null() {
            let sql = rusqlite::ffi::sqlite3_sql(st);
            if !sql.is_null() {
                out.push(std::ffi::CStr::from_ptr(sql).to_string_lossy().into_owned());
            }
            st = rusqlite::ffi::sqlite3_next_stmt(db, st);
        }
    }
    out.sort();
    out
}

/// One message the way the dispatch runner sends it, then its status report.
fn send_one(s: &Store, i: i64) {
    let now = 1_000 * i;
    let to = format!("+1415555{i:04}");
    s.enqueue(&NewOutbox::new(&to, "hello", MessageKind::Bulk, now))
        .unwrap();
    let route = ClaimRoute {
        pool: vec!["m0".into()],
        takeover: Vec::new(),
    };
    let row = s.claim_next_routed("m0", now, &route).unwrap().unwrap();
    s.begin_submit(row.id, 1, 1, now).unwrap();
    let mr = u8::try_from(i % 200).unwrap();
    s.record_part_sent(row.id, 1, 1, mr, now).unwrap();
    s.mark_sent(row.id, now).unwrap();
    s.status_report("m0", mr, &to, 0, now + 10).unwrap();
}

#[test]
fn the_send_path_prepares_its_statements_once() {
    let s = Store::open_in_memory().unwrap();
    send_one(&s, 1);
    let warm = live_statements(&s);
    for sql in [
        "INSERT INTO outbox_parts",
        "INSERT INTO send_log",
        "UPDATE outbox SET state = 'sent'",
        "SELECT claimed_by FROM outbox WHERE id = ?1 AND state = 'claimed'",
    ] {
        assert!(
            warm.iter().any(|q| q.contains(sql)),
            "{sql:?} is not kept prepared; live: {warm:#?}"
        );
    }
    for i in 2..6 {
        send_one(&s, i);
    }
    assert_eq!(
        live_statements(&s),
        warm,
        "later messages reuse the same statements"
    );
}
