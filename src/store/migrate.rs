//! `gsmgate migrate`: moves a single-Pi gateway's SQLite database into an empty PostgreSQL
//! database (docs/store.md, "Moving a gateway to PostgreSQL"), keeping every row and every id,
//! checked by counting every table on both sides.
//!
//! What it owns: the copy, table by table, from SQLite's own catalog to PostgreSQL. It must not
//! touch the store's query methods (the copy is plain SQL on two connections of its own, so it
//! does not depend on how each method is written for either backend), the daemon, or the
//! configuration: the CLI hands it a path and a [`PgConfig`].
//!
//! Why it is done this way:
//! - The tables come from `sqlite_master`, not from a list in this file: a table added by a later
//!   migration is copied without anyone remembering to add it here, and its foreign keys
//!   (`pragma_foreign_key_list`) decide the order, parents first.
//! - The source is held with `locking_mode=EXCLUSIVE` and `BEGIN EXCLUSIVE` for the whole copy.
//!   SQLite refuses that lock while any other connection has the file open (a running daemon
//!   keeps one open for its lifetime), so "the daemon is running" is detected by the file itself,
//!   whatever socket or configuration it uses; and a daemon started mid-copy cannot open the file
//!   and write rows that would be left behind. The connection is read-write only because SQLite
//!   cannot take that lock read-only in WAL mode; `query_only` keeps it from writing.
//! - Everything on PostgreSQL is one transaction that first takes the store's write lock
//!   ([`WRITE_LOCK`]): the emptiness check, the copy, the sequences and the count check commit
//!   together or not at all, and no site can write in between.
//! - Rows stream through `COPY … FROM STDIN (FORMAT binary)`: one row of SQLite at a time into
//!   the copy buffer, which the driver sends every 4 KiB. A 100,000-row outbox is never in memory
//!   at once, and COPY is the fastest way PostgreSQL takes rows.
//! - PostgreSQL's journal triggers (migration 0008's twin) add an `events` row for each inbound
//!   message, consent entry and voicemail copied. `events` is therefore copied last, after
//!   deleting what those triggers added in this transaction, so the journal ends up exactly as
//!   on the Pi (the same ids, which webhook receivers de-duplicate by). Disabling the triggers
//!   (`session_replication_role`) would need a superuser, which a managed database does not give.
//! - Each identity sequence is moved past the copied ids, and for a table with SQLite
//!   `AUTOINCREMENT` (the journal) past `sqlite_sequence` too: journal retention deletes old
//!   events, and an id handed out again would be skipped by a webhook consumer whose cursor is
//!   already past it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::db::WRITE_LOCK;
use super::pg::{PgConfig, PgError};
use super::{APPLICATION_ID, Store, StoreError};

/// The journal: filled by PostgreSQL's triggers while the other tables are copied, so it is
/// emptied and copied last (see the module doc).
const JOURNAL: &str = "events";

/// PostgreSQL's migration bookkeeping; the SQLite side keeps its version in `user_version`.
const PG_ONLY: &[&str] = &["schema_migrations"];

/// How long the source waits for another connection's lock before calling the file in use.
const SOURCE_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors of a migration. None carries the PostgreSQL password (the connection errors of
/// [`PgError`] never do, and nothing here formats the configuration).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{path}: no such database file")]
    SourceMissing { path: PathBuf },
    #[error("{path} is not a gsmgate database: {detail}")]
    NotGsmgate { path: PathBuf, detail: String },
    #[error(
        "{path} is in use (a gsmgate daemon has it open): stop the daemon first (`sudo systemctl \
         stop gsmgate`), then migrate"
    )]
    SourceInUse { path: PathBuf },
    #[error("reading the SQLite source {path}: {source}")]
    Source {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error(
        "the PostgreSQL database is not empty (table {table} has rows): migrate only into a new, \
         empty database; nothing was written"
    )]
    NotEmpty { table: String },
    #[error("table {table} of the SQLite source has no twin in PostgreSQL (schema mismatch)")]
    MissingTable { table: String },
    #[error("the foreign keys of tables {tables:?} form a cycle; cannot order the copy")]
    Cycle { tables: Vec<String> },
    #[error("{table}.{column}: {detail}")]
    Value {
        table: String,
        column: String,
        detail: String,
    },
    #[error("PostgreSQL, {context} ({table}): {detail}")]
    Write {
        context: &'static str,
        table: String,
        detail: String,
    },
    #[error(
        "row counts differ after the copy, so nothing was committed: {}",
        .differences.join(", ")
    )]
    CountMismatch { differences: Vec<String> },
}

/// One table as copied: its name and its row count (equal on both sides when reported).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCount {
    pub table: String,
    pub rows: u64,
}

/// What a migration did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrateReport {
    pub source: PathBuf,
    /// `user@host:port/db` (never the password).
    pub destination: String,
    pub schema_version: i64,
    /// Every table in copy order, with the rows counted on both sides after the copy.
    pub tables: Vec<TableCount>,
    pub total_rows: u64,
    pub elapsed_ms: u64,
}

/// A table of the source: its name and its columns in declaration order.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    columns: Vec<String>,
}

/// Copies the gsmgate database at `source` into the empty PostgreSQL database of `to`.
/// `progress` is called after each table is copied, with its row count. On any error nothing
/// is committed on PostgreSQL and the source is left as it was (apart from a schema upgrade,
/// which the next daemon start would do as well).
pub fn migrate(
    source: &Path,
    to: &PgConfig,
    progress: &mut dyn FnMut(&TableCount),
) -> Result<MigrateReport, MigrateError> {
    let started = Instant::now();
    check_source(source)?;
    // Refused before the schema upgrade below, so a running (older) daemon never finds its
    // schema changed under it.
    drop(lock_source(source)?);
    let schema_version = Store::open(source)?.schema_version()?;
    let src = lock_source(source)?;
    let tables = tables_in_order(&src, source)?;
    // Creates the schema (and `?schema=`) on PostgreSQL, migrated to this build's version.
    drop(Store::open_postgres(to.clone())?);
    let mut client = to.connect()?;
    let mut tx = client
        .transaction()
        .map_err(|e| write_err("beginning the transaction", "-", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .map_err(|e| write_err("taking the write lock", "-", e))?;
    ensure_empty(&mut tx, &tables)?;
    for table in &tables {
        if table.name == JOURNAL {
            tx.execute(&format!("DELETE FROM {}", quote(JOURNAL)), &[])
                .map_err(|e| write_err("emptying the trigger-written journal", JOURNAL, e))?;
        }
        let rows = copy_table(&src, source, &mut tx, table)?;
        progress(&TableCount {
            table: table.name.clone(),
            rows,
        });
    }
    advance_sequences(&src, source, &mut tx, &tables)?;
    let counts = compare_counts(&src, source, &mut tx, &tables)?;
    tx.commit().map_err(|e| write_err("committing", "-", e))?;
    let total_rows = counts.iter().map(|c| c.rows).sum();
    Ok(MigrateReport {
        source: source.to_path_buf(),
        destination: to.target(),
        schema_version,
        tables: counts,
        total_rows,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn write_err(context: &'static str, table: &str, source: postgres::Error) -> MigrateError {
    MigrateError::Write {
        context,
        table: table.to_owned(),
        detail: describe(&source),
    }
}

/// The server's own words (and its detail line) when it refused something; the driver's text
/// alone is only "db error".
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => error.to_string(),
    }
}

/// A column of a row the queries here select; their types are fixed by the SQL.
fn col<'a, T: postgres::types::FromSql<'a>>(
    row: &'a postgres::Row,
    context: &'static str,
    table: &str,
) -> Result<T, MigrateError> {
    row.try_get(0).map_err(|e| write_err(context, table, e))
}

fn src_err(path: &Path) -> impl Fn(rusqlite::Error) -> MigrateError + '_ {
    move |source| MigrateError::Source {
        path: path.to_path_buf(),
        source,
    }
}

/// The source must exist and be gsmgate's: `Store::open` would otherwise create a fresh empty
/// database (and migrate nothing) or add gsmgate's tables to another program's file.
fn check_source(path: &Path) -> Result<(), MigrateError> {
    let meta = std::fs::metadata(path).map_err(|_| MigrateError::SourceMissing {
        path: path.to_path_buf(),
    })?;
    let not_ours = |detail: String| MigrateError::NotGsmgate {
        path: path.to_path_buf(),
        detail,
    };
    if !meta.is_file() || meta.len() == 0 {
        return Err(not_ours("not a file, or empty".into()));
    }
    // Read-write without create, as `store::backup` opens a live database: a read-only
    // connection cannot always open a WAL database whose `-shm` is missing.
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| not_ours(e.to_string()))?;
    let header = |pragma: &str| -> Result<i64, MigrateError> {
        conn.pragma_query_value(None, pragma, |r| r.get(0))
            .map_err(|e| not_ours(e.to_string()))
    };
    let (app_id, version) = (header("application_id")?, header("user_version")?);
    let has = |table: &str| -> Result<bool, MigrateError> {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )
        .map_err(|e| not_ours(e.to_string()))
    };
    // A database from before gsmgate stamped its application_id: recognised by its tables.
    let old_gsmgate = app_id == 0 && version >= 1 && has("members")? && has("outbox")?;
    if app_id != i64::from(APPLICATION_ID) && !old_gsmgate {
        return Err(not_ours(format!(
            "its application_id is {app_id:#x}, gsmgate's is {APPLICATION_ID:#x}"
        )));
    }
    if version < 1 {
        return Err(not_ours("it has no gsmgate schema".into()));
    }
    Ok(())
}

/// Opens the source and holds it exclusively until the connection is dropped (module doc).
fn lock_source(path: &Path) -> Result<Connection, MigrateError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(src_err(path))?;
    conn.busy_timeout(SOURCE_BUSY_TIMEOUT)
        .map_err(src_err(path))?;
    let busy = |e: &rusqlite::Error| {
        matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    };
    let locked = conn
        .pragma_update(None, "locking_mode", "EXCLUSIVE")
        .and_then(|()| conn.execute_batch("BEGIN EXCLUSIVE"));
    match locked {
        Ok(()) => {}
        Err(e) if busy(&e) => {
            return Err(MigrateError::SourceInUse {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(src_err(path)(e)),
    }
    conn.pragma_update(None, "query_only", true)
        .map_err(src_err(path))?;
    Ok(conn)
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Every table of the source (SQLite's internal ones aside), parents before the tables whose
/// foreign keys point at them, ties by name; the journal last.
fn tables_in_order(conn: &Connection, path: &Path) -> Result<Vec<Table>, MigrateError> {
    let err = src_err(path);
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(&err)?;
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in &names {
        let refs: BTreeSet<String> = conn
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
            .and_then(|mut s| s.query_map([name], |r| r.get(0))?.collect())
            .map_err(&err)?;
        parents.insert(
            name.clone(),
            refs.into_iter().filter(|p| p != name).collect(),
        );
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .and_then(|mut s| s.query_map([name], |r| r.get(0))?.collect())
            .map_err(&err)?;
        columns.insert(name.clone(), cols);
    }
    let mut ordered: Vec<String> = Vec::with_capacity(names.len());
    let mut left: BTreeSet<String> = names.iter().cloned().collect();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|t| {
                parents
                    .get(*t)
                    .is_none_or(|ps| ps.iter().all(|p| !left.contains(p)))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(MigrateError::Cycle {
                tables: left.into_iter().collect(),
            });
        }
        for t in ready {
            left.remove(&t);
            ordered.push(t);
        }
    }
    // Nothing references the journal, so moving it to the end keeps the order valid.
    if let Some(i) = ordered.iter().position(|t| t == JOURNAL) {
        let journal = ordered.remove(i);
        ordered.push(journal);
    }
    Ok(ordered
        .into_iter()
        .map(|name| Table {
            columns: columns.remove(&name).unwrap_or_default(),
            name,
        })
        .collect())
}

/// Refuses a destination with any row in any gateway table, naming the first one found; also
/// checks that every source table exists there.
fn ensure_empty(tx: &mut postgres::Transaction<'_>, tables: &[Table]) -> Result<(), MigrateError> {
    let present: BTreeSet<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .map_err(|e| write_err("listing the tables", "-", e))?
        .iter()
        .map(|r| col(r, "listing the tables", "-"))
        .collect::<Result<_, _>>()?;
    if let Some(missing) = tables.iter().find(|t| !present.contains(&t.name)) {
        return Err(MigrateError::MissingTable {
            table: missing.name.clone(),
        });
    }
    for table in present.iter().filter(|t| !PG_ONLY.contains(&t.as_str())) {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quote(table));
        const CONTEXT: &str = "checking that the database is empty";
        let row = tx
            .query_one(&sql, &[])
            .map_err(|e| write_err(CONTEXT, table, e))?;
        let any: bool = col(&row, CONTEXT, table)?;
        if any {
            return Err(MigrateError::NotEmpty {
                table: table.clone(),
            });
        }
    }
    Ok(())
}

/// One value on its way to PostgreSQL, typed by the destination column: the plain `ToSql`
/// types of the driver (a NULL, too, must be typed as the column is).
enum Cell {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Cell {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Int(v) => v,
            Cell::Real(v) => v,
            Cell::Text(v) => v,
            Cell::Blob(v) => v,
        }
    }

    /// SQLite's value for a column of PostgreSQL type `ty`. An integer in a REAL column is
    /// widened (SQLite stores whole reals as integers); any other mismatch is an error, never a
    /// silent conversion.
    fn convert(value: ValueRef<'_>, ty: &Type) -> Result<Cell, String> {
        let kind = |v: &ValueRef<'_>| match v {
            ValueRef::Null => "NULL",
            ValueRef::Integer(_) => "an integer",
            ValueRef::Real(_) => "a real",
            ValueRef::Text(_) => "text",
            ValueRef::Blob(_) => "a blob",
        };
        let cell = match (value, ty) {
            (ValueRef::Null, t) if *t == Type::INT8 => Cell::Int(None),
            (ValueRef::Null, t) if *t == Type::FLOAT8 => Cell::Real(None),
            (ValueRef::Null, t) if *t == Type::TEXT => Cell::Text(None),
            (ValueRef::Null, t) if *t == Type::BYTEA => Cell::Blob(None),
            (ValueRef::Integer(i), t) if *t == Type::INT8 => Cell::Int(Some(i)),
            #[allow(clippy::cast_precision_loss)]
            (ValueRef::Integer(i), t) if *t == Type::FLOAT8 => Cell::Real(Some(i as f64)),
            (ValueRef::Real(f), t) if *t == Type::FLOAT8 => Cell::Real(Some(f)),
            (ValueRef::Text(s), t) if *t == Type::TEXT => Cell::Text(Some(
                std::str::from_utf8(s)
                    .map_err(|_| "text that is not UTF-8".to_owned())?
                    .to_owned(),
            )),
            (ValueRef::Blob(b), t) if *t == Type::BYTEA => Cell::Blob(Some(b.to_vec())),
            (v, t) => return Err(format!("holds {}, PostgreSQL's column is {t}", kind(&v))),
        };
        Ok(cell)
    }
}

/// Streams one table from SQLite into PostgreSQL by COPY; the number of rows copied.
fn copy_table(
    src: &Connection,
    path: &Path,
    tx: &mut postgres::Transaction<'_>,
    table: &Table,
) -> Result<u64, MigrateError> {
    let cols: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
    let list = cols.join(", ");
    let name = quote(&table.name);
    let types: Vec<Type> = tx
        .prepare(&format!("SELECT {list} FROM {name}"))
        .map_err(|e| write_err("reading the column types", &table.name, e))?
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let copy = tx
        .copy_in(&format!("COPY {name} ({list}) FROM STDIN (FORMAT binary)"))
        .map_err(|e| write_err("starting the copy", &table.name, e))?;
    let mut writer = BinaryCopyInWriter::new(copy, &types);
    let mut stmt = src
        .prepare(&format!("SELECT {list} FROM {name} ORDER BY rowid"))
        .or_else(|_| src.prepare(&format!("SELECT {list} FROM {name}")))
        .map_err(src_err(path))?;
    let mut rows = stmt.query([]).map_err(src_err(path))?;
    let mut cells: Vec<Cell> = Vec::with_capacity(types.len());
    while let Some(row) = rows.next().map_err(src_err(path))? {
        cells.clear();
        for (i, ty) in types.iter().enumerate() {
            let value = row.get_ref(i).map_err(src_err(path))?;
            let cell = Cell::convert(value, ty).map_err(|detail| MigrateError::Value {
                table: table.name.clone(),
                column: table.columns.get(i).cloned().unwrap_or_default(),
                detail,
            })?;
            cells.push(cell);
        }
        let values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(Cell::as_sql).collect();
        writer
            .write(&values)
            .map_err(|e| write_err("copying rows", &table.name, e))?;
    }
    writer
        .finish()
        .map_err(|e| write_err("finishing the copy", &table.name, e))
}

/// Moves every identity sequence past the ids copied into its table (and past SQLite's
/// `AUTOINCREMENT` high-water mark), so rows written after the move get new ids.
fn advance_sequences(
    src: &Connection,
    path: &Path,
    tx: &mut postgres::Transaction<'_>,
    tables: &[Table],
) -> Result<(), MigrateError> {
    let has_sequences: bool = src
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
            [],
            |r| r.get(0),
        )
        .map_err(src_err(path))?;
    for table in tables {
        let identity: Vec<String> = tx
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                   AND is_identity = 'YES'",
                &[&table.name],
            )
            .map_err(|e| write_err("finding identity columns", &table.name, e))?
            .iter()
            .map(|r| col(r, "finding identity columns", &table.name))
            .collect::<Result<_, _>>()?;
        let handed_out: i64 = if has_sequences {
            src.query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                [&table.name],
                |r| r.get(0),
            )
            .optional()
            .map_err(src_err(path))?
            .unwrap_or(0)
        } else {
            0
        };
        for column in identity {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), greatest(max({}), $3::bigint)) \
                 FROM {} HAVING greatest(max({}), $3::bigint) >= 1",
                quote(&column),
                quote(&table.name),
                quote(&column)
            );
            tx.query(&sql, &[&quote(&table.name), &column, &handed_out])
                .map_err(|e| write_err("moving the id sequence", &table.name, e))?;
        }
    }
    Ok(())
}

/// Counts every table on both sides; any difference is an error (and the caller's transaction
/// is then rolled back by being dropped).
fn compare_counts(
    src: &Connection,
    path: &Path,
    tx: &mut postgres::Transaction<'_>,
    tables: &[Table],
) -> Result<Vec<TableCount>, MigrateError> {
    let mut counts = Vec::with_capacity(tables.len());
    let mut differences = Vec::new();
    for table in tables {
        let sql = format!("SELECT count(*) FROM {}", quote(&table.name));
        let lite: i64 = src
            .query_row(&sql, [], |r| r.get(0))
            .map_err(src_err(path))?;
        let row = tx
            .query_one(&sql, &[])
            .map_err(|e| write_err("counting rows", &table.name, e))?;
        let pg: i64 = col(&row, "counting rows", &table.name)?;
        if lite != pg {
            differences.push(format!(
                "{}: {lite} in SQLite, {pg} in PostgreSQL",
                table.name
            ));
        }
        counts.push(TableCount {
            table: table.name.clone(),
            rows: u64::try_from(lite).unwrap_or(0),
        });
    }
    if differences.is_empty() {
        Ok(counts)
    } else {
        Err(MigrateError::CountMismatch { differences })
    }
}
