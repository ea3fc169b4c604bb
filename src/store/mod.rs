//! Durable state of the gateway: members and their consent, inbound and outbound messages, the
//! outbox (the single source of truth for what must be sent), broadcasts, rate accounting, modems,
//! calls and voicemails.
//!
//! This is the only module that speaks SQL. Everything above it calls methods on [`Store`]; no SQL
//! text, driver type or connection leaks out. Behind the methods sits one connection type,
//! [`db`]: SQLite (the default, one Pi) or PostgreSQL (several gateways sharing one database,
//! docs/scale-out.md), with the same SQL for both. It knows nothing of modems, PDUs or keywords:
//! callers hand it plain values (numbers as E.164 text, times as unix milliseconds).
//!
//! Choices worth knowing:
//! - SQLite (bundled) in WAL mode with `synchronous=FULL`: a method that returns `Ok` after a write
//!   has had its commit fsynced, which is what "in SQLite before the reply" needs after a power cut.
//!   The one exception is the send loop's claim, whose fsync the loop's next write (always a synced
//!   one, before `AT+CMGS`) does for it: `write_sync_later`, docs/store.md "When a commit is
//!   fsynced".
//! - The API is synchronous. [`Store`] is a cheap `Clone` around one connection behind a mutex; the
//!   daemon calls it through [`Store::call`] (tokio's blocking pool), from a dedicated thread, or
//!   (the send loops) through [`Store::call_inline_if_free`], which runs on the calling worker
//!   when no other worker is inside the store and the connection is free. One connection is
//!   plenty for a Pi-sized pool (every operation is a few index lookups) and serialises writers
//!   without `SQLITE_BUSY` churn. Several `Store`s may still open the same file (tests do, to show
//!   that claiming is atomic across connections): write transactions start with `BEGIN IMMEDIATE`
//!   and `busy_timeout` waits for the lock. On PostgreSQL they take one advisory lock instead
//!   (`db.rs`), so writers from every site are serialized the same way.
//! - Time is never read here: every method that stamps a row takes `now` (unix ms) from the
//!   caller, so the state machines are testable with injected time.
//! - Schema versions live in `PRAGMA user_version` (SQLite, [`schema`]) and `schema_migrations`
//!   (PostgreSQL, [`pg::schema`]), the same numbers on both.

mod activity;
mod apply;
pub mod backup;
mod calls;
mod conversations;
pub mod db;
mod fields;
mod health;
mod inbound;
pub mod integrity;
mod journal;
mod members;
mod metrics;
pub mod migrate;
mod modems;
mod outbox;
mod owners;
pub mod pg;
mod rates;
mod review;
pub mod schema;
mod sims;
mod sites;
#[cfg(test)]
pub(crate) mod testing;
mod tokens;
mod voicemail_audio;
mod web;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use db::Conn;
pub use db::{Backend, DbError};

/// The shared vocabulary (`crate::model`), re-exported because every caller of the outbox and
/// the member tables names it.
pub use crate::model::{MemberStatus, MessageKind};
pub use activity::DailyActivity;
pub use apply::{Applied, InboundEffect};
pub use calls::{CallOutcome, CallRow, VoicemailRow};
pub use conversations::{ConversationEntry, Direction, ThreadSummary};
pub use health::{WriteFault, WriteHealth};
pub use inbound::{InboundMessage, NewPart, NewSingle, PartOutcome, SingleOutcome, StoredPart};
pub use journal::{ConsumerRow, EVENT_TYPES, JournalEvent, ReplayRequest, consumer_key};
pub use members::{
    ConsentEntry, ConsentEvent, ConsentSource, ImportReport, Member, MemberUpdate, NewMember,
    Segment, StatusCounts,
};
pub use metrics::{CallCount, LiveCount, LiveState, MetricsFigures};
pub use modems::{ModemIdentity, ModemRow, ModemStatus};
pub use outbox::{BroadcastCount, QueuedGroup};
pub use outbox::{
    BroadcastGroup, BroadcastRow, BroadcastState, ClaimRoute, Claimed, NewOutbox, OutboxPart,
    OutboxPayload, OutboxRow, OutboxState, RecoveryPolicy, RecoveryReport, ReportIn, ReportMatch,
    SentMark, StateCounts, SubmitEvidence,
};
pub use owners::{ConfirmOutcome, PendingBroadcast};
pub use review::{FLAG_POSSIBLE_OPT_OUT, ReviewDecision, ReviewEntry, Reviewed};
pub use sims::{SimChange, SimRow, parked_key};
pub use sites::{SiteModemRow, SiteRow};
pub use tokens::{IdempotencyBegin, TokenMatch, TokenRow};
pub use web::{WebAuditRow, WebSessionRow, WebUserRow};

/// How long a connection waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `PRAGMA application_id` stamped on every gsmgate database ("gsmg" in ASCII), so that opening
/// some other program's SQLite file is refused instead of migrated.
const APPLICATION_ID: i32 = 0x6773_6d67;

/// Errors of the store. Each variant says which operation or file failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path} is not a gsmgate database or is corrupt: {detail}")]
    NotADatabase { path: PathBuf, detail: String },
    #[error(
        "database {path} has schema version {found}, newer than this gsmgate knows ({known}); \
         run a newer gsmgate or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("migration {version} ({name}) failed on {path}: {source}")]
    Migration {
        path: PathBuf,
        version: usize,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("database error while {op}: {source}")]
    Sql { op: &'static str, source: DbError },
    /// Opening, migrating or reaching the PostgreSQL database failed.
    #[error(transparent)]
    Postgres(#[from] pg::PgError),
    #[error("{what} {key} not found")]
    NotFound { what: &'static str, key: String },
    /// The row exists in a state that forbids this (a token name in use, ...); the text says why.
    #[error("{0}")]
    Conflict(String),
    #[error("member {number} already exists")]
    DuplicateMember { number: String },
    #[error("import row {index} ({number}) conflicts: {reason}; nothing was imported")]
    ImportConflict {
        index: usize,
        number: String,
        reason: String,
    },
    #[error("outbox row {id} is {from}, cannot {action}")]
    InvalidTransition {
        id: i64,
        from: String,
        action: &'static str,
    },
    #[error("inbound parts {ids:?} are missing or already assembled")]
    PartsUnavailable { ids: Vec<i64> },
    #[error("unexpected value {value:?} in column {column}")]
    BadValue { column: &'static str, value: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A call made through [`Store::call`] panicked or was cancelled on the blocking pool.
    #[error("database task failed: {0}")]
    Task(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches the operation name to a rusqlite error.
trait SqlContext<T> {
    fn ctx(self, op: &'static str) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, op: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Sql {
            op,
            source: source.into(),
        })
    }
}

/// A driver error met while stepping through rows ([`db::Stmt::for_each`]).
impl From<DbError> for StoreError {
    fn from(source: DbError) -> StoreError {
        StoreError::Sql {
            op: "reading rows",
            source,
        }
    }
}

impl<T> SqlContext<T> for db::DbResult<T> {
    fn ctx(self, op: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Sql { op, source })
    }
}

/// Defines a text-backed enum stored in a CHECKed TEXT column, with `as_str`/`parse` and serde.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident, $column:literal, { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database (and used in JSON).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored text.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            #[allow(dead_code)]
            pub(crate) fn from_column(s: String) -> $crate::store::Result<Self> {
                Self::parse(&s).ok_or($crate::store::StoreError::BadValue { column: $column, value: s })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        $crate::store::sql_text!($name, $column);
    };
}
pub(crate) use text_enum;

/// Stores a type with `as_str`/`parse` as its name in a TEXT column; a stored name this build
/// does not know is an error naming the column. Used by [`text_enum`] and for the shared
/// vocabulary of `crate::model`, which knows no SQL.
macro_rules! sql_text {
    ($name:ty, $column:literal) => {
        impl $crate::store::db::ToParam for $name {
            fn to_param(&self) -> $crate::store::db::Value<'_> {
                $crate::store::db::Value::Text(self.as_str())
            }
        }

        impl $crate::store::db::FromCol for $name {
            fn from_col(v: $crate::store::db::Value<'_>) -> std::result::Result<Self, String> {
                let s = <String as $crate::store::db::FromCol>::from_col(v)?;
                <$name>::parse(&s).ok_or_else(|| format!("unexpected {} value {:?}", $column, s))
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let s = v.as_str()?;
                <$name>::parse(s).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("unexpected {} value {:?}", $column, s).into(),
                    )
                })
            }
        }
    };
}
pub(crate) use sql_text;

sql_text!(crate::model::MessageKind, "outbox.kind");
sql_text!(crate::model::MemberStatus, "members.status");

/// The message of a panic caught around a store call run inline.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("store call panicked: {msg}")
}

/// Handle on the gateway database. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Conn>>,
    path: Arc<PathBuf>,
    /// Whether writes succeed (`health.rs`), shared by the clones.
    health: Arc<health::Health>,
    /// Bumped after every committed write, so the event journal's consumers (webhooks, hooks)
    /// wake on a new event instead of polling the table (`journal.rs`).
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    /// The number of the last commit known to be on disk: every commit up to it survives a
    /// power cut. An fsynced commit carries every earlier one with it (SQLite's log, like
    /// PostgreSQL's, is written in order), so this follows `commits` at each synced commit and
    /// stays behind at an unsynced one (`commit_unsynced`: the claim's and the status reports').
    durable: Arc<tokio::sync::watch::Sender<u64>>,
    /// Set while a runtime worker runs a call inline ([`Store::call_inline_if_free`]), so that at
    /// most one worker is ever inside the store; `None` on PostgreSQL, which never runs inline.
    inline: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Runs `f` on tokio's blocking pool: the way async code calls this synchronous API, so an
    /// fsync never stalls a runtime worker that is also reading a modem's port (the send loops'
    /// exception: [`Store::call_inline_if_free`]). A panic inside `f` comes back as
    /// [`StoreError::Task`] instead of tearing down the caller.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or_else(|e| Err(StoreError::Task(e.to_string())))
    }

    /// [`Store::call`], but run on the calling runtime worker when that cannot stall the daemon:
    /// the store is SQLite (a local file; PostgreSQL would wait on a server), the runtime is
    /// multi-threaded with at least two workers, no other worker is running a call inline, and
    /// the connection is free this instant. So at most one worker is ever inside the store, and
    /// while it waits on an fsync the others read the modems' ports and run everything else.
    /// Otherwise, and on a current-thread runtime, it hands `f` to the blocking pool as `call`
    /// does. Why: each hand-off to the blocking pool and back costs thread switches, two or more
    /// per store call, which on the send path were a fifth of the daemon's CPU per SMS
    /// (docs/daemon.md, "Footprint"). A panic inside `f` comes back as [`StoreError::Task`].
    pub async fn call_inline_if_free<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        match self.inline_slot() {
            Some(slot) => {
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
                slot.store(false, Ordering::Release);
                res.unwrap_or_else(|p| Err(StoreError::Task(panic_text(&*p))))
            }
            None => self.call(f).await,
        }
    }

    /// The inline flag, taken, when [`Store::call_inline_if_free`] may run on this thread.
    fn inline_slot(&self) -> Option<&AtomicBool> {
        let slot = self.inline.as_deref()?;
        let handle = tokio::runtime::Handle::try_current().ok()?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread
            || handle.metrics().num_workers() < 2
        {
            return None;
        }
        if slot
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // Another thread's store call (the inbound pipeline, an admin request) holds the
        // connection: wait for it on the blocking pool, not here. Between this check and `f`'s
        // own lock another caller may still take it; then this worker waits for one call.
        let free = match self.conn.try_lock() {
            Ok(_) | Err(std::sync::TryLockError::Poisoned(_)) => true,
            Err(std::sync::TryLockError::WouldBlock) => false,
        };
        if !free {
            slot.store(false, Ordering::Release);
            return None;
        }
        Some(slot)
    }

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    ///
    /// Fails with [`StoreError::NotADatabase`] for a file that is not SQLite, is corrupt or
    /// belongs to another program, and with [`StoreError::TooNew`] for a schema newer than this
    /// build knows. Never panics on a bad file.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&path, flags).map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        Self::init(conn, path)
    }

    /// A private in-memory database (tests, `--dry-run` tools). Nothing survives the process.
    pub fn open_in_memory() -> Result<Store> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        Self::init(conn, path)
    }

    /// Connects to the PostgreSQL database of `config` (several gateways sharing one store,
    /// docs/scale-out.md) and migrates it to the current schema.
    pub fn open_postgres(config: pg::PgConfig) -> Result<Store> {
        let mut client = config.connect()?;
        if let Some(schema) = &config.schema {
            // A plain identifier (checked when the URL was parsed).
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .map_err(|source| pg::PgError::Sql {
                    context: "creating the schema",
                    source,
                })?;
        }
        pg::migrate(&mut client)?;
        let path = PathBuf::from(format!("postgres://{}", config.target()));
        Ok(Store::wrap(
            Conn::Pg(Box::new(db::PgConn::new(config, client))),
            path,
        ))
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<Store> {
        configure(&conn, &path)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Store::wrap(Conn::Lite(conn), path))
    }

    fn wrap(conn: Conn, path: PathBuf) -> Store {
        let inline = (conn.backend() == Backend::Sqlite).then(|| Arc::new(AtomicBool::new(false)));
        Store {
            inline,
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
            health: Arc::new(health::Health::new()),
            commits: Arc::new(tokio::sync::watch::Sender::new(0)),
            durable: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.conn().backend()
    }

    /// The file this store was opened from (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        match &*self.conn() {
            Conn::Lite(c) => c
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .ctx("reading user_version"),
            Conn::Pg(_) => self
                .conn()
                .query_row(
                    "SELECT coalesce(max(version), 0) FROM schema_migrations",
                    db::params![],
                    |r| r.get(0),
                )
                .ctx("reading the schema version"),
        }
    }

    /// Reads a pragma as text, for diagnostics (`status`) and tests.
    pub fn pragma(&self, name: &str) -> Result<String> {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::InvalidArgument(format!("pragma name {name:?}")));
        }
        let conn = self.conn();
        let Some(conn) = conn.lite() else {
            return Err(StoreError::InvalidArgument(format!(
                "pragma {name}: PostgreSQL has no pragmas"
            )));
        };
        conn.pragma_query_value(None, name, |r| {
            let v: rusqlite::types::Value = r.get(0)?;
            Ok(match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                rusqlite::types::Value::Real(f) => f.to_string(),
                rusqlite::types::Value::Null => String::new(),
                rusqlite::types::Value::Blob(b) => format!("{b:?}"),
            })
        })
        .ctx("reading a pragma")
    }

    /// Locks the connection. A poisoned mutex is recovered: a panic elsewhere cannot leave the
    /// connection inside a half-done transaction, because rusqlite rolls back on drop.
    fn conn(&self) -> MutexGuard<'_, Conn> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A receiver whose value changes after every committed write (the event journal's
    /// consumers wait on it).
    pub fn watch_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// [`Store::write`] whose commit may skip its own fsync (`commit_unsynced`): when
    /// `later` says, for the value `f` returned, that the caller's next write is a synced one
    /// made before anything outside the store acts on this commit (that fsync carries this
    /// commit to disk too: the log is written in order). The one caller is the send loop's
    /// claim: a claimed row is always settled next by a synced write (the record of its submit,
    /// written before `AT+CMGS`, or a release, failure or expiry). The previous row's `sent`
    /// mark, committed with the claim, goes to disk with it; a power cut between the two leaves
    /// that row as a power cut during its own submit would (claimed, its submit recorded: the
    /// in-doubt policy and its status report settle it). docs/store.md, "When a commit is
    /// fsynced", has the rule and the figures.
    fn write_sync_later<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Conn) -> Result<T>,
        later: impl Fn(&T) -> bool,
    ) -> Result<T> {
        let conn = self.conn();
        if conn.lite().is_none() {
            // PostgreSQL takes the setting inside the transaction, for it alone.
            return self.guarded(op, &conn, |conn| {
                let mut synced = true;
                let out = conn.transaction(true, op, |tx| {
                    let v = f(tx)?;
                    if later(&v) {
                        tx.set_commit_sync(false).ctx(op)?;
                        synced = false;
                    }
                    Ok(v)
                })?;
                self.committed(synced);
                Ok(out)
            });
        }
        // SQLite refuses to change `synchronous` inside a transaction, so the commit is made
        // unsynced up front, then synced by a one-page write if `later` says no synced write
        // follows and a row changed (nothing to sync otherwise: an idle loop's empty claim).
        // If the sync fails (the disk refuses writes), the call fails although the transaction
        // committed: the send loop then treats its claim as unsure and releases it
        // (`claim_unsure`), and its mark, written again, is refused as already written. Never
        // a lost or doubled send; at worst one error in the log.
        let (out, commit) = self.commit_unsynced(&conn, op, f)?;
        if !later(&out)
            && let Some(n) = commit
        {
            self.sync_locked(&conn, op, n)?;
        }
        Ok(out)
    }

    /// Runs `f` in a write transaction whose commit does not wait for the disk, and returns
    /// its value and the commit's number (`None` when no row changed). SQLite only. Every
    /// other write relies on fsynced commits, so `synchronous` is restored whatever became of
    /// this one; if it cannot be, the call fails although the transaction committed.
    fn commit_unsynced<T>(
        &self,
        conn: &Conn,
        op: &'static str,
        f: impl FnOnce(&Conn) -> Result<T>,
    ) -> Result<(T, Option<u64>)> {
        let changes = conn.lite().map(|c| c.total_changes());
        conn.set_commit_sync(false).ctx(op)?;
        let out = self.guarded(op, conn, |conn| conn.transaction(true, op, f));
        conn.set_commit_sync(true)
            .ctx("restoring synchronous commits")?;
        let out = out?;
        let changed = conn.lite().map(|c| c.total_changes()) != changes;
        Ok((out, changed.then(|| self.committed(false))))
    }

    /// [`Store::write`] whose commit need not wait for the disk before this returns: the value
    /// and the number of the commit, which is on disk once [`Store::watch_durable`] reaches
    /// it. The next synced commit of any caller gets it there (group commit: a status report
    /// applied during a broadcast shares the fsync of the next submit record), or
    /// [`Store::sync_through`] at once. Until then a crash of this process loses nothing (the
    /// commit is in the log, in the system's cache), and a power cut can undo it, so the
    /// caller acts outside on it (an ack that deletes a SIM's copy) only once it is durable.
    /// On PostgreSQL the commit is synced at once (the number is already durable).
    /// docs/store.md, "When a commit is fsynced".
    fn write_deferred<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Conn) -> Result<T>,
    ) -> Result<(T, u64)> {
        let conn = self.conn();
        if conn.lite().is_none() {
            return self.write_locked(&conn, op, f);
        }
        let (out, commit) = self.commit_unsynced(&conn, op, f)?;
        // Nothing written, nothing to wait for.
        Ok((out, commit.unwrap_or(0)))
    }

    /// Makes every commit up to number `n` durable: nothing to do when a synced commit has
    /// already carried it to disk, else one synced one-page write (the database header,
    /// rewritten with its own value), whose fsync carries the log up to it.
    pub fn sync_through(&self, n: u64) -> Result<()> {
        let conn = self.conn();
        self.sync_locked(&conn, "syncing deferred commits", n)
    }

    fn sync_locked(&self, conn: &Conn, op: &'static str, n: u64) -> Result<()> {
        if *self.durable.borrow() >= n {
            return Ok(());
        }
        self.guarded(op, conn, |conn| {
            conn.transaction(true, op, health::rewrite_header)?;
            // Not counted as a commit: it carries no row for the journal's consumers.
            self.durable.send_replace(*self.commits.borrow());
            Ok(())
        })
    }

    /// The number of the last commit known to be on disk.
    pub fn durable(&self) -> u64 {
        *self.durable.borrow()
    }

    /// A receiver of the number of the last commit known to be on disk (see
    /// [`Store::write_deferred`]).
    pub fn watch_durable(&self) -> tokio::sync::watch::Receiver<u64> {
        self.durable.subscribe()
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`), committing if it returns `Ok`.
    fn write<T>(&self, op: &'static str, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        let conn = self.conn();
        self.write_locked(&conn, op, f).map(|(out, _)| out)
    }

    /// [`Store::write`] on the connection the caller holds: the value and the commit's number.
    fn write_locked<T>(
        &self,
        conn: &Conn,
        op: &'static str,
        f: impl FnOnce(&Conn) -> Result<T>,
    ) -> Result<(T, u64)> {
        self.guarded(op, conn, |conn| {
            let out = conn.transaction(true, op, f)?;
            Ok((out, self.committed(true)))
        })
    }

    /// Counts a commit the caller made while holding the connection, and returns its number.
    /// `synced`: the commit waited for the disk, so it and every commit before it are durable.
    fn committed(&self, synced: bool) -> u64 {
        let mut n = 0;
        self.commits.send_modify(|c| {
            *c = c.wrapping_add(1);
            n = *c;
        });
        if synced {
            self.durable.send_replace(n);
        }
        n
    }
}

/// Statements kept prepared per connection (rusqlite's default is 16, fewer than the send
/// path's own; each kept statement is a few KiB).
const STATEMENT_CACHE: usize = 64;

/// Connection settings. Also the first statements that touch the file, so this is where a file
/// that is not SQLite shows itself.
fn configure(conn: &Connection, path: &Path) -> Result<()> {
    let not_db = |e: rusqlite::Error| classify_open_error(path, e);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(not_db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner's stability guarantee: a statement keeps the plan it was prepared with
    // whatever values are bound. Without it SQLite 3.54 re-prepares a cached statement whenever
    // a new value is bound to a `LIMIT ?`, a `LIKE ?` or a parameter compared with a partial
    // index's condition: parsing and planning again on every claim and status report, 6 % of
    // the daemon's CPU during a broadcast (docs/daemon.md, "Footprint"). Every hot query names
    // its values as literals where an index depends on them (`state = 'queued'`), so no plan
    // changes.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(not_db)?;
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(not_db)?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::NotADatabase {
            path: path.to_path_buf(),
            detail: format!("application_id {app_id:#x} belongs to another program"),
        });
    }
    // journal_mode answers with the mode in force ("memory" for an in-memory database).
    let _mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(not_db)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(not_db)?;
    // Keeps the WAL small on a small state disk (health.rs has the figures).
    health::configure_wal(conn).map_err(not_db)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(not_db)?;
    // 8 MiB of page cache (default 2 MiB) for the hot indexes of a long queue. The cache is
    // most of the daemon's memory during a big write: a 100,000-row broadcast writes ~22 MiB of
    // pages, so any cache below that fills up and spills to the WAL mid-transaction. Measured
    // (docs/benchmarks.md, scale): 2, 8 and 16 MiB enqueue in the same time within noise, while
    // the peak RSS is ~9 MiB + the cache; 16 MiB only cost memory. No mmap (`mmap_size` stays
    // 0): mapped file pages would count in RSS too, and reads go through the OS cache anyway.
    conn.pragma_update(None, "cache_size", -8_192)
        .map_err(not_db)?;
    if app_id == 0 {
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(not_db)?;
    }
    Ok(())
}

fn classify_open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::NotADatabase {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        _ => StoreError::Open {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// Converts a stored INTEGER 0/1.
fn flag(v: i64) -> bool {
    v != 0
}

#[cfg(test)]
mod statement_cache_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_file_gets_wal_full_sync_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("g.db")).unwrap();
        assert_eq!(store.pragma("journal_mode").unwrap(), "wal");
        assert_eq!(store.pragma("synchronous").unwrap(), "2"); // 2 = FULL
        assert_eq!(store.pragma("foreign_keys").unwrap(), "1");
        assert_eq!(store.pragma("busy_timeout").unwrap(), "5000");
        // The page cache bounds the memory of a big broadcast (docs/benchmarks.md); no mmap.
        assert_eq!(store.pragma("cache_size").unwrap(), "-8192");
        assert_eq!(store.pragma("mmap_size").unwrap(), "0");
        assert_eq!(
            store.schema_version().unwrap(),
            schema::MIGRATIONS.len() as i64
        );
    }

    #[test]
    fn pragma_name_is_checked() {
        let store = Store::open_in_memory().unwrap();
        assert!(matches!(
            store.pragma("user_version; DROP TABLE members"),
            Err(StoreError::InvalidArgument(_))
        ));
    }

    #[test]
    fn reopen_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        {
            let store = Store::open(&path).unwrap();
            store
                .enqueue(&NewOutbox::new(
                    "+15550001",
                    "hello",
                    MessageKind::Direct,
                    1_000,
                ))
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.state_counts().unwrap().queued, 1);
        assert_eq!(store.pragma("synchronous").unwrap(), "2");
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
        assert!(err.to_string().contains("junk.db"));
    }

    #[test]
    fn truncated_header_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("half.db");
        let mut bytes = b"SQLite format 3\0".to_vec();
        bytes.extend(std::iter::repeat_n(0xFFu8, 200));
        std::fs::write(&path, bytes).unwrap();
        assert!(Store::open(&path).is_err());
    }

    #[test]
    fn other_programs_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA application_id = 1234; CREATE TABLE t(x);")
                .unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        drop(Store::open(&path).unwrap());
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", 999).unwrap();
        }
        match Store::open(&path).unwrap_err() {
            StoreError::TooNew { found, known, .. } => {
                assert_eq!(found, 999);
                assert_eq!(known, schema::MIGRATIONS.len() as i64);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn clones_share_one_connection() {
        let a = Store::open_in_memory().unwrap();
        let b = a.clone();
        a.enqueue(&NewOutbox::new("+15550001", "x", MessageKind::Reply, 5))
            .unwrap();
        assert_eq!(b.state_counts().unwrap().queued, 1);
    }

    /// Which thread a call ran on, and its result.
    async fn where_it_ran(store: &Store) -> (std::thread::ThreadId, Result<i64>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let res = store
            .call_inline_if_free(move |s| {
                tx.send(std::thread::current().id()).unwrap();
                s.schema_version()
            })
            .await;
        (rx.recv().unwrap(), res)
    }

    #[test]
    fn a_call_runs_inline_only_with_two_workers_a_free_connection_and_sqlite() {
        let store = Store::open_in_memory().unwrap();
        let rt = |workers| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .build()
                .unwrap()
        };
        let two = rt(2);
        let s = store.clone();
        two.block_on(async move {
            // Spawned, so that it runs on a worker, as the send loops do.
            tokio::spawn(async move {
                let (ran, res) = where_it_ran(&s).await;
                assert_eq!(ran, std::thread::current().id(), "inline on the worker");
                assert_eq!(res.unwrap(), schema::MIGRATIONS.len() as i64);

                // A panic comes back as an error and leaves the next call inline.
                let err = s
                    .call_inline_if_free(|_| -> Result<()> { panic!("boom") })
                    .await
                    .unwrap_err();
                assert!(err.to_string().contains("boom"), "{err}");
                assert_eq!(where_it_ran(&s).await.0, std::thread::current().id());

                // Another thread holds the connection: the call waits on the blocking pool. The
                // holder lets go once the call has started (inline or not), so neither waits
                // forever.
                let (held_tx, held_rx) = std::sync::mpsc::channel();
                let (ran_tx, ran_rx) = std::sync::mpsc::channel();
                let holder = s.clone();
                let t = std::thread::spawn(move || {
                    let _guard = holder.conn();
                    held_tx.send(()).unwrap();
                    ran_rx.recv().unwrap()
                });
                held_rx.recv().unwrap();
                let res = s
                    .call_inline_if_free(move |s| {
                        ran_tx.send(std::thread::current().id()).unwrap();
                        s.schema_version()
                    })
                    .await;
                assert!(res.is_ok());
                let ran = t.join().unwrap();
                assert_ne!(ran, std::thread::current().id(), "not inline while held");

                // While one worker is inside, another caller goes to the blocking pool.
                s.inline.as_deref().unwrap().store(true, Ordering::SeqCst);
                let (ran, _) = where_it_ran(&s).await;
                assert_ne!(ran, std::thread::current().id());
                s.inline.as_deref().unwrap().store(false, Ordering::SeqCst);
            })
            .await
            .unwrap();
        });

        // One worker: an fsync inline would stall everything, so never.
        let one = rt(1);
        let s = store.clone();
        one.block_on(async move {
            tokio::spawn(async move {
                let (ran, res) = where_it_ran(&s).await;
                assert_ne!(ran, std::thread::current().id());
                assert!(res.is_ok());
            })
            .await
            .unwrap();
        });
        let cur = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        cur.block_on(async {
            let (ran, _) = where_it_ran(&store).await;
            assert_ne!(ran, std::thread::current().id());
        });
    }
}
