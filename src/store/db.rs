//! The one connection type every store method talks to, whichever database is behind it: SQLite
//! (the embedded default, `rusqlite`) or PostgreSQL (several gateways sharing one database,
//! docs/scale-out.md). It owns parameter binding, row decoding, statement caching, transactions
//! and the translation of the store's SQL into PostgreSQL's dialect. It must not know any table:
//! the queries live in the files of `store` that own their tables.
//!
//! Why it is shaped like this:
//! - One SQL text per query, written in the common subset of both dialects (`INSERT … ON
//!   CONFLICT`, `RETURNING`, `coalesce`, `CAST(… AS BIGINT)`). What cannot be common is rewritten
//!   here, mechanically, once per statement: `?N` → `$N`, `x IS ?N` → `x IS NOT DISTINCT FROM $N`,
//!   the scalar `max(a, b)`/`min(a, b)` → `greatest`/`least`, `INDEXED BY` (a SQLite planner
//!   hint) dropped, `json_each` → `json_array_elements_text`, `json_group_array`/`_object` →
//!   `json_agg`/`json_object_agg`. A second copy of every query would drift; a query builder
//!   would hide the SQL that the benchmarks and `EXPLAIN` tests read.
//! - The methods mirror `rusqlite`'s names (`execute`, `prepare_cached`, `query_row`,
//!   `query_map`, `optional`), so the SQLite path keeps its prepared-statement cache and costs
//!   one `match` more per call.
//! - Values cross as SQLite's five storage classes ([`Value`]). PostgreSQL is strictly typed, so
//!   binding converts a value to the type the server inferred for the parameter (an integer to
//!   `int4`, `bool` or `numeric` as needed) and decoding accepts every type a query can return
//!   (`sum(bigint)` is `numeric`, a comparison is `bool`). That keeps SQLite's "every integer is
//!   an `i64`" on both sides without a cast in every query.
//! - A write transaction on PostgreSQL first takes one transaction-level advisory lock, so
//!   writers from every site run one at a time, as SQLite's `BEGIN IMMEDIATE` makes them on one
//!   Pi. No write can then fail with a serialization error and need a retry loop, and the claim
//!   stays atomic across sites: a row claimed by one site is `claimed` before the next writer
//!   reads it. A Pi-sized write takes a few milliseconds, so one lock is far from the limit
//!   (docs/scale-out.md has the measured claim latency with 1, 2 and 4 sites).
//! - A PostgreSQL connection that broke (server restarted, network cut) is replaced on the next
//!   call; the call that saw it break fails and its caller retries, as after a full disk.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as _;

use super::pg::{PgConfig, PgError};

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A value as the store binds or reads it: SQLite's storage classes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Errors of the connection layer. Each wraps the driver's own error, so the causes (SQLite's
/// "database or disk is full", the server's "connection refused") stay in the chain.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[source] rusqlite::Error),
    #[error("{}", describe_pg(.0))]
    Postgres(#[source] postgres::Error),
    #[error("{0}")]
    Connect(#[source] Box<PgError>),
    #[error("query returned no rows")]
    NoRows,
    /// The PostgreSQL connection broke inside a transaction (it is replaced once the
    /// transaction has ended).
    #[error("the PostgreSQL connection broke inside a transaction")]
    LostInTransaction,
    /// A column held a value its Rust type cannot take (a NULL for an `i64`, text for a number).
    #[error("column {index}: {detail}")]
    Column { index: usize, detail: String },
    /// A parameter could not be converted to the type the server expects.
    #[error("parameter: {0}")]
    Param(String),
}

fn describe_pg(error: &postgres::Error) -> String {
    match error.as_db_error() {
        // What the server said, without the driver's "db error" prefix.
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => super::pg::describe(error),
    }
}

impl DbError {
    /// A UNIQUE or PRIMARY KEY constraint refused the row (on either backend).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(e) => {
                matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::ConstraintViolation)
                ) && matches!(e, rusqlite::Error::SqliteFailure(f, _)
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
            }
            DbError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }

    /// Any constraint (UNIQUE, CHECK, FOREIGN KEY, NOT NULL) refused the row.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            DbError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation)
            ),
            DbError::Postgres(e) => e.code().is_some_and(|c| c.code().starts_with("23")),
            _ => false,
        }
    }

    /// The database could not be reached or went away mid-call (PostgreSQL: refused or broken
    /// connection, server shutting down or starting). The write did not happen; a caller keeps
    /// it and tries again, as after a full disk.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Connect(_) | DbError::LostInTransaction => true,
            DbError::Postgres(e) => {
                e.is_closed()
                    || e.code().is_some_and(|c| {
                        let c = c.code();
                        c.starts_with("08") || c.starts_with("57P")
                    })
                    || (e.as_db_error().is_none()
                        && e.source().is_some_and(|s| s.is::<std::io::Error>()))
            }
            _ => false,
        }
    }

    /// The SQLite error, for the disk-health classification (full, read-only, I/O).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Error> {
        match self {
            DbError::Sqlite(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        match e {
            rusqlite::Error::QueryReturnedNoRows => DbError::NoRows,
            e => DbError::Sqlite(e),
        }
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> DbError {
        DbError::Postgres(e)
    }
}

pub(crate) type DbResult<T> = std::result::Result<T, DbError>;

/// `rusqlite`'s `OptionalExtension`, for this layer: "no rows" becomes `None`.
pub(crate) trait OptionalExtension<T> {
    fn optional(self) -> DbResult<Option<T>>;
}

impl<T> OptionalExtension<T> for DbResult<T> {
    fn optional(self) -> DbResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

// ---- parameters ---------------------------------------------------------------------------

/// A Rust value that can be bound as a parameter.
pub(crate) trait ToParam {
    fn to_param(&self) -> Value<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_param!(i64, i32, i16, i8, u32, u16, u8, usize, u64);

impl ToParam for bool {
    fn to_param(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl ToParam for f64 {
    fn to_param(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl ToParam for str {
    fn to_param(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToParam for String {
    fn to_param(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToParam for [u8] {
    fn to_param(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl ToParam for Vec<u8> {
    fn to_param(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl ToParam for Value<'_> {
    fn to_param(&self) -> Value<'_> {
        *self
    }
}

impl ToParam for std::borrow::Cow<'_, str> {
    fn to_param(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Value<'_> {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_param(),
            None => Value::Null,
        }
    }
}

impl<T: ToParam + ?Sized> ToParam for Box<T> {
    fn to_param(&self) -> Value<'_> {
        (**self).to_param()
    }
}

/// An owned parameter, for queries whose parameter list is built at run time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OwnedValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl ToParam for OwnedValue {
    fn to_param(&self) -> Value<'_> {
        match self {
            OwnedValue::Null => Value::Null,
            OwnedValue::Integer(i) => Value::Int(*i),
            OwnedValue::Real(f) => Value::Real(*f),
            OwnedValue::Text(t) => Value::Text(t),
            OwnedValue::Blob(b) => Value::Blob(b),
        }
    }
}

impl From<i64> for OwnedValue {
    fn from(v: i64) -> Self {
        OwnedValue::Integer(v)
    }
}

impl From<String> for OwnedValue {
    fn from(v: String) -> Self {
        OwnedValue::Text(v)
    }
}

impl From<&str> for OwnedValue {
    fn from(v: &str) -> Self {
        OwnedValue::Text(v.to_owned())
    }
}

/// The parameters of one statement.
pub(crate) type Params<'p> = &'p [&'p dyn ToParam];

/// `rusqlite::params!` for this layer.
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::db::ToParam] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::ToParam),+] as &[&dyn $crate::store::db::ToParam] };
}
pub(crate) use params;

/// A run-time list of parameters as a [`Params`] slice (`params_from_iter` of rusqlite).
pub(crate) fn param_refs<T: ToParam>(values: &[T]) -> Vec<&dyn ToParam> {
    values.iter().map(|v| v as &dyn ToParam).collect()
}

/// Binds a parameter for SQLite without copying it.
struct LiteParam<'a>(Value<'a>);

impl rusqlite::ToSql for LiteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef as V;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self.0 {
            Value::Null => V::Null,
            Value::Int(i) => V::Integer(i),
            Value::Real(f) => V::Real(f),
            Value::Text(t) => V::Text(t.as_bytes()),
            Value::Blob(b) => V::Blob(b),
        }))
    }
}

fn lite_params<'a>(
    params: Params<'a>,
) -> rusqlite::ParamsFromIter<impl Iterator<Item = LiteParam<'a>>> {
    rusqlite::params_from_iter(params.iter().map(|p| LiteParam(p.to_param())))
}

/// Binds a parameter for PostgreSQL as the type the server inferred for it.
#[derive(Debug)]
struct PgParam<'a>(Value<'a>);

impl postgres::types::ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use bytes::BufMut;
        use postgres::types::{IsNull, Type};
        let bad = |what: &str| -> Box<dyn std::error::Error + Sync + Send> {
            format!("cannot bind {what} as PostgreSQL type {ty}").into()
        };
        match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => out.put_i64(i),
                Type::INT4 => out.put_i32(i32::try_from(i).map_err(|_| bad("a large integer"))?),
                Type::INT2 => out.put_i16(i16::try_from(i).map_err(|_| bad("a large integer"))?),
                Type::BOOL => out.put_u8(u8::from(i != 0)),
                Type::FLOAT8 => out.put_f64(i as f64),
                Type::FLOAT4 => out.put_f32(i as f32),
                Type::NUMERIC => encode_numeric(i, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    out.put_slice(i.to_string().as_bytes())
                }
                _ => return Err(bad("an integer")),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => out.put_f64(f),
                Type::FLOAT4 => out.put_f32(f as f32),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    out.put_slice(f.to_string().as_bytes())
                }
                _ => return Err(bad("a real number")),
            },
            Value::Text(t) => match *ty {
                Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::UNKNOWN
                | Type::JSON
                | Type::BYTEA => out.put_slice(t.as_bytes()),
                Type::JSONB => {
                    out.put_u8(1);
                    out.put_slice(t.as_bytes());
                }
                _ => return Err(bad("text")),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => out.put_slice(b),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    std::str::from_utf8(b).map_err(|_| bad("a non-UTF-8 blob"))?;
                    out.put_slice(b)
                }
                _ => return Err(bad("a blob")),
            },
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// An integer in PostgreSQL's binary NUMERIC form: base-10000 digits, most significant first.
fn encode_numeric(i: i64, out: &mut bytes::BytesMut) {
    use bytes::BufMut;
    let negative = i < 0;
    let mut n = i.unsigned_abs();
    let mut digits = Vec::new();
    while n > 0 {
        digits.push((n % 10_000) as i16);
        n /= 10_000;
    }
    digits.reverse();
    // Trailing zero groups are implied by the weight.
    let weight = digits.len() as i16 - 1;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    out.put_i16(digits.len() as i16);
    out.put_i16(weight.max(0));
    out.put_u16(if negative { 0x4000 } else { 0 });
    out.put_u16(0);
    for d in digits {
        out.put_i16(d);
    }
}

/// Decodes PostgreSQL's binary NUMERIC: an integer when it has no fraction, else a real.
fn decode_numeric(raw: &[u8]) -> Result<Value<'static>, String> {
    let word = |i: usize| -> Result<u16, String> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_string())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i32;
    let sign = word(2)?;
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut int: i128 = 0;
    let mut real = 0f64;
    let mut fraction = false;
    for k in 0..ndigits {
        let d = word(4 + k)? as i128;
        let power = weight - k as i32;
        real += d as f64 * 10_000f64.powi(power);
        if power >= 0 {
            let scale = 10_000i128
                .checked_pow(power as u32)
                .ok_or("numeric out of range")?;
            int = d
                .checked_mul(scale)
                .and_then(|v| int.checked_add(v))
                .ok_or("numeric out of range")?;
        } else if d != 0 {
            fraction = true;
        }
    }
    let negative = sign == 0x4000;
    if fraction {
        return Ok(Value::Real(if negative { -real } else { real }));
    }
    let int = if negative { -int } else { int };
    i64::try_from(int)
        .map(Value::Int)
        .map_err(|_| "numeric out of range for an integer".to_string())
}

/// Reads any column PostgreSQL returns as a [`Value`].
struct PgAny<'a>(Value<'a>);

impl<'a> postgres::types::FromSql<'a> for PgAny<'a> {
    fn from_sql(
        ty: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        let fixed = |n: usize| -> Result<&[u8], Box<dyn std::error::Error + Sync + Send>> {
            if raw.len() == n {
                Ok(raw)
            } else {
                Err(format!("{ty} of {} bytes", raw.len()).into())
            }
        };
        let text = || {
            std::str::from_utf8(raw)
                .map_err(|e| -> Box<dyn std::error::Error + Sync + Send> { e.into() })
        };
        Ok(PgAny(match *ty {
            Type::BOOL => Value::Int(i64::from(fixed(1)?[0] != 0)),
            Type::INT2 => Value::Int(i16::from_be_bytes(fixed(2)?.try_into()?) as i64),
            Type::INT4 => Value::Int(i32::from_be_bytes(fixed(4)?.try_into()?) as i64),
            Type::OID => Value::Int(u32::from_be_bytes(fixed(4)?.try_into()?) as i64),
            Type::INT8 => Value::Int(i64::from_be_bytes(fixed(8)?.try_into()?)),
            Type::FLOAT4 => Value::Real(f32::from_be_bytes(fixed(4)?.try_into()?) as f64),
            Type::FLOAT8 => Value::Real(f64::from_be_bytes(fixed(8)?.try_into()?)),
            Type::NUMERIC => decode_numeric(raw)?,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
                Value::Text(text()?)
            }
            Type::JSONB => match raw.split_first() {
                Some((1, rest)) => Value::Text(std::str::from_utf8(rest)?),
                _ => return Err("unknown jsonb version".into()),
            },
            Type::BYTEA => Value::Blob(raw),
            _ => return Err(format!("unsupported column type {ty}").into()),
        }))
    }

    fn from_sql_null(
        _: &postgres::types::Type,
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgAny(Value::Null))
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
}

// ---- rows ---------------------------------------------------------------------------------

/// A Rust type a column can be read into.
pub(crate) trait FromCol: Sized {
    fn from_col(v: Value<'_>) -> Result<Self, String>;
}

fn type_name(v: &Value<'_>) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

impl FromCol for i64 {
    fn from_col(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i),
            other => Err(format!("expected an integer, found {}", type_name(&other))),
        }
    }
}

macro_rules! int_col {
    ($($t:ty),*) => {$(
        impl FromCol for $t {
            fn from_col(v: Value<'_>) -> Result<Self, String> {
                let i = i64::from_col(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_col!(i32, i16, u32, u16, u8, u64, usize);

impl FromCol for bool {
    fn from_col(v: Value<'_>) -> Result<Self, String> {
        Ok(i64::from_col(v)? != 0)
    }
}

impl FromCol for f64 {
    fn from_col(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {}", type_name(&other))),
        }
    }
}

impl FromCol for String {
    fn from_col(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Text(t) => Ok(t.to_owned()),
            other => Err(format!("expected text, found {}", type_name(&other))),
        }
    }
}

impl FromCol for Vec<u8> {
    fn from_col(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.to_vec()),
            Value::Text(t) => Ok(t.as_bytes().to_vec()),
            other => Err(format!("expected a blob, found {}", type_name(&other))),
        }
    }
}

impl FromCol for OwnedValue {
    fn from_col(v: Value<'_>) -> Result<Self, String> {
        Ok(match v {
            Value::Null => OwnedValue::Null,
            Value::Int(i) => OwnedValue::Integer(i),
            Value::Real(f) => OwnedValue::Real(f),
            Value::Text(t) => OwnedValue::Text(t.to_owned()),
            Value::Blob(b) => OwnedValue::Blob(b.to_vec()),
        })
    }
}

impl<T: FromCol> FromCol for Option<T> {
    fn from_col(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_col(v).map(Some),
        }
    }
}

/// One result row.
pub(crate) enum Row<'r> {
    Lite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `index` (from 0) as `T`.
    pub fn get<T: FromCol>(&self, index: usize) -> DbResult<T> {
        let column = |detail: String| DbError::Column { index, detail };
        match self {
            Row::Lite(r) => {
                use rusqlite::types::ValueRef as V;
                let v = match r.get_ref(index)? {
                    V::Null => Value::Null,
                    V::Integer(i) => Value::Int(i),
                    V::Real(f) => Value::Real(f),
                    V::Text(t) => {
                        Value::Text(std::str::from_utf8(t).map_err(|e| column(e.to_string()))?)
                    }
                    V::Blob(b) => Value::Blob(b),
                };
                T::from_col(v).map_err(column)
            }
            Row::Pg(r) => {
                let v: PgAny<'_> = r.try_get(index)?;
                T::from_col(v.0).map_err(column)
            }
        }
    }
}

// ---- the connection -----------------------------------------------------------------------

/// A PostgreSQL connection with its statement cache, reconnected after it broke.
pub(crate) struct PgConn {
    config: PgConfig,
    client: RefCell<Option<postgres::Client>>,
    /// Prepared statements by their store-side SQL text (`prepare` is a round trip).
    statements: RefCell<HashMap<String, postgres::Statement>>,
    /// A transaction is open: a connection that breaks inside it is not replaced until the
    /// transaction ends, or its remaining statements would run outside it, one by one.
    in_tx: std::cell::Cell<bool>,
}

/// The marker of an empty [`Conn::transaction_opt`] on its way out of [`Conn::transaction`].
const EMPTY_MARK: &str = "transaction with nothing to keep";

/// The driver ends a connection by blocking on its own small runtime, which panics on a tokio
/// worker thread; the last clone of a store is often dropped on one (the daemon's shutdown).
/// There the client is closed on a plain thread instead.
impl Drop for PgConn {
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let _ = std::thread::Builder::new()
                .name("pg-close".into())
                .spawn(move || drop(client));
        }
    }
}

/// Statements kept prepared per PostgreSQL connection before the cache is emptied.
const PG_STATEMENT_CACHE: usize = 512;

/// The advisory lock every PostgreSQL write transaction holds (the module doc says why). The
/// number is "gsmg" in ASCII, like SQLite's `application_id`.
pub(crate) const WRITE_LOCK: i64 = 0x6773_6d67;

impl PgConn {
    pub fn new(config: PgConfig, client: postgres::Client) -> PgConn {
        PgConn {
            config,
            client: RefCell::new(Some(client)),
            statements: RefCell::new(HashMap::new()),
            in_tx: std::cell::Cell::new(false),
        }
    }

    /// Runs `f` on the client, connecting first if there is none; a broken connection is
    /// dropped so that the next call opens a new one. On a tokio worker thread (a store call
    /// made from async code, e.g. at start-up) the driver's blocking calls would panic, so they
    /// run on a scoped plain thread there; on the blocking pool, where store calls belong, they
    /// run in place.
    fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Client, &mut HashMap<String, postgres::Statement>) -> DbResult<T>
        + Send,
    ) -> DbResult<T> {
        let mut slot = self.client.borrow_mut();
        let mut statements = self.statements.borrow_mut();
        let config = &self.config;
        let in_tx = self.in_tx.get();
        let slot: &mut Option<postgres::Client> = &mut slot;
        let statements: &mut HashMap<String, postgres::Statement> = &mut statements;
        off_runtime(move || {
            if slot.as_ref().is_none_or(|c| c.is_closed()) {
                if in_tx {
                    return Err(DbError::LostInTransaction);
                }
                statements.clear();
                *slot = None;
                let client = config
                    .connect()
                    .map_err(|e| DbError::Connect(Box::new(e)))?;
                tracing::info!(target = %config.target(), "connected to PostgreSQL");
                *slot = Some(client);
            }
            let Some(client) = slot.as_mut() else {
                return Err(DbError::Param("no PostgreSQL connection".into()));
            };
            let out = f(client, statements);
            if out.is_err() && client.is_closed() {
                tracing::warn!(target = %config.target(), "the PostgreSQL connection broke");
                statements.clear();
                *slot = None;
            }
            out
        })
    }

    fn execute(&self, sql: &str, params: Params<'_>) -> DbResult<usize> {
        let values: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.to_param())).collect();
        self.with_client(|client, cache| {
            let st = statement(client, cache, sql)?;
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = values
                .iter()
                .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                .collect();
            Ok(client.execute(&st, &refs)? as usize)
        })
    }

    fn query(&self, sql: &str, params: Params<'_>) -> DbResult<Vec<postgres::Row>> {
        let values: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.to_param())).collect();
        self.with_client(|client, cache| {
            let st = statement(client, cache, sql)?;
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = values
                .iter()
                .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                .collect();
            Ok(client.query(&st, &refs)?)
        })
    }

    fn batch(&self, sql: &str) -> DbResult<()> {
        self.with_client(|client, _| Ok(client.batch_execute(sql)?))
    }
}

/// The prepared statement for the store-side `sql`, from the connection's cache.
fn statement(
    client: &mut postgres::Client,
    cache: &mut HashMap<String, postgres::Statement>,
    sql: &str,
) -> DbResult<postgres::Statement> {
    if let Some(st) = cache.get(sql) {
        return Ok(st.clone());
    }
    let st = client.prepare(&translate(sql))?;
    if cache.len() >= PG_STATEMENT_CACHE {
        cache.clear();
    }
    cache.insert(sql.to_owned(), st.clone());
    Ok(st)
}

/// Runs `f` off the tokio worker threads (see [`PgConn::with_client`]).
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The connection of a [`super::Store`]: SQLite or PostgreSQL.
pub(crate) enum Conn {
    Lite(rusqlite::Connection),
    /// Boxed: a PostgreSQL connection is much larger than a SQLite handle.
    Pg(Box<PgConn>),
}

/// A prepared statement.
pub(crate) enum Stmt<'c> {
    Lite(rusqlite::CachedStatement<'c>, &'c rusqlite::Connection),
    LiteOnce(rusqlite::Statement<'c>, &'c rusqlite::Connection),
    Pg { conn: &'c PgConn, sql: String },
}

impl Conn {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Lite(_) => Backend::Sqlite,
            Conn::Pg(_) => Backend::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, the online backup, the WAL).
    pub fn lite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Lite(c) => Some(c),
            Conn::Pg(_) => None,
        }
    }

    pub fn execute(&self, sql: &str, params: Params<'_>) -> DbResult<usize> {
        match self {
            Conn::Lite(c) => Ok(c.execute(sql, lite_params(params))?),
            Conn::Pg(p) => p.execute(sql, params),
        }
    }

    /// `execute` with the statement kept prepared.
    pub fn exec_cached(&self, sql: &str, params: Params<'_>) -> DbResult<usize> {
        match self {
            Conn::Lite(c) => Ok(c.prepare_cached(sql)?.execute(lite_params(params))?),
            Conn::Pg(p) => p.execute(sql, params),
        }
    }

    #[cfg(test)]
    pub fn execute_batch(&self, sql: &str) -> DbResult<()> {
        match self {
            Conn::Lite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(p) => p.batch(&translate(sql)),
        }
    }

    pub fn query_row<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        f: impl FnOnce(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<T> {
        self.prepare(sql)?.query_row(params, f)
    }

    /// `query_row` with the statement kept prepared.
    pub fn query_row_cached<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        f: impl FnOnce(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Every row of a query, mapped.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        f: impl FnMut(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        self.prepare_cached(sql)?.query_map(params, f)?.collect()
    }

    pub fn prepare(&self, sql: &str) -> DbResult<Stmt<'_>> {
        match self {
            Conn::Lite(c) => Ok(Stmt::LiteOnce(c.prepare(sql)?, c)),
            Conn::Pg(p) => Ok(Stmt::Pg {
                conn: p,
                sql: sql.to_owned(),
            }),
        }
    }

    pub fn prepare_cached(&self, sql: &str) -> DbResult<Stmt<'_>> {
        match self {
            Conn::Lite(c) => Ok(Stmt::Lite(c.prepare_cached(sql)?, c)),
            Conn::Pg(p) => Ok(Stmt::Pg {
                conn: p,
                sql: sql.to_owned(),
            }),
        }
    }

    /// Whether commits wait for the disk. With `false` a commit skips its fsync: SQLite's
    /// `synchronous = NORMAL`, set before the transaction (SQLite refuses it inside one) and
    /// kept until `true` sets `FULL` again; the commit is in the write-ahead log, which the next
    /// fsynced commit or checkpoint carries to disk, since the log is written in order.
    /// PostgreSQL's `SET LOCAL synchronous_commit = off`, inside the transaction and for it
    /// alone (`true` does nothing there); the server flushes it within a few hundred ms, and
    /// before any later synchronous commit returns. Either way the commit survives a crash of
    /// this process; only a power cut before the next flush can undo it
    /// (its users: `Store::commit_unsynced` on SQLite, `Store::write_sync_later` on PostgreSQL).
    pub fn set_commit_sync(&self, sync: bool) -> DbResult<()> {
        match self {
            Conn::Lite(c) => {
                let sql = if sync {
                    "PRAGMA synchronous = FULL"
                } else {
                    "PRAGMA synchronous = NORMAL"
                };
                c.prepare_cached(sql)?.execute([])?;
                Ok(())
            }
            Conn::Pg(p) if !sync => p.batch("SET LOCAL synchronous_commit = off"),
            Conn::Pg(_) => Ok(()),
        }
    }

    /// Runs `f` inside a transaction, committing when it returns `Ok` and rolling back when it
    /// returns an error or panics. `write` takes the write lock up front (SQLite's `BEGIN
    /// IMMEDIATE`, PostgreSQL's advisory lock), so a write never fails half-way on a lock.
    pub fn transaction<T>(
        &self,
        write: bool,
        op: &'static str,
        f: impl FnOnce(&Conn) -> super::Result<T>,
    ) -> super::Result<T> {
        use super::SqlContext;
        match self {
            Conn::Lite(c) => c
                .prepare_cached(if write { "BEGIN IMMEDIATE" } else { "BEGIN" })
                .and_then(|mut s| s.execute([]))
                .map(drop)
                .ctx(op)?,
            Conn::Pg(p) => {
                let begin = if write {
                    format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
                } else {
                    "BEGIN".to_string()
                };
                p.batch(&begin).ctx(op)?;
                p.in_tx.set(true);
            }
        }
        struct Rollback<'a>(&'a Conn, bool);
        impl Drop for Rollback<'_> {
            fn drop(&mut self) {
                if self.1 {
                    let _ = self.0.end("ROLLBACK");
                }
            }
        }
        let mut guard = Rollback(self, true);
        let out = f(self)?;
        guard.1 = false;
        if let Err(e) = self.end("COMMIT") {
            let _ = self.end("ROLLBACK");
            return Err(e).ctx(op);
        }
        Ok(out)
    }

    /// [`Conn::transaction`] that also rolls back, and returns `None`, when `f` returns
    /// `Ok(None)` (nothing worth keeping was written).
    pub fn transaction_opt<T>(
        &self,
        write: bool,
        op: &'static str,
        f: impl FnOnce(&Conn) -> super::Result<Option<T>>,
    ) -> super::Result<Option<T>> {
        let out = self.transaction(write, op, |tx| match f(tx)? {
            Some(v) => Ok(v),
            None => Err(super::StoreError::Task(EMPTY_MARK.into())),
        });
        match out {
            Ok(v) => Ok(Some(v)),
            Err(super::StoreError::Task(m)) if m == EMPTY_MARK => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn end(&self, verb: &str) -> DbResult<()> {
        match self {
            Conn::Lite(c) => {
                if c.is_autocommit() {
                    return Ok(());
                }
                c.prepare_cached(verb)?.execute([])?;
                Ok(())
            }
            Conn::Pg(p) => {
                p.in_tx.set(false);
                // A broken connection has no transaction left to end.
                if p.client.borrow().as_ref().is_none_or(|c| c.is_closed()) {
                    return Ok(());
                }
                p.batch(verb)
            }
        }
    }
}

impl Stmt<'_> {
    /// Runs an `INSERT` prepared without `RETURNING` and returns the new row's `id`, or `None`
    /// when it inserted nothing (`ON CONFLICT DO NOTHING`). SQLite answers with
    /// `last_insert_rowid()`: its `RETURNING` collects the returned rows in a temporary b-tree,
    /// which made the 100,000-row enqueue of a broadcast 2.7x slower (docs/benchmarks.md,
    /// "Sites"). PostgreSQL has no such function and runs the statement with `RETURNING id`.
    pub fn insert_id(&mut self, params: Params<'_>) -> DbResult<Option<i64>> {
        match self {
            Stmt::Lite(s, c) => {
                let n = s.execute(lite_params(params))?;
                Ok((n > 0).then(|| c.last_insert_rowid()))
            }
            Stmt::LiteOnce(s, c) => {
                let n = s.execute(lite_params(params))?;
                Ok((n > 0).then(|| c.last_insert_rowid()))
            }
            Stmt::Pg { conn, sql } => {
                let rows = conn.query(&format!("{sql} RETURNING id"), params)?;
                match rows.first() {
                    Some(r) => Row::Pg(r).get(0).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    pub fn execute(&mut self, params: Params<'_>) -> DbResult<usize> {
        match self {
            Stmt::Lite(s, _) => Ok(s.execute(lite_params(params))?),
            Stmt::LiteOnce(s, _) => Ok(s.execute(lite_params(params))?),
            Stmt::Pg { conn, sql } => conn.execute(sql, params),
        }
    }

    pub fn query_row<T>(
        &mut self,
        params: Params<'_>,
        f: impl FnOnce(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<T> {
        fn first<T>(
            rows: &mut rusqlite::Rows<'_>,
            f: impl FnOnce(&Row<'_>) -> DbResult<T>,
        ) -> DbResult<T> {
            match rows.next()? {
                Some(r) => f(&Row::Lite(r)),
                None => Err(DbError::NoRows),
            }
        }
        match self {
            Stmt::Lite(s, _) => first(&mut s.query(lite_params(params))?, f),
            Stmt::LiteOnce(s, _) => first(&mut s.query(lite_params(params))?, f),
            Stmt::Pg { conn, sql } => {
                let rows = conn.query(sql, params)?;
                match rows.first() {
                    Some(r) => f(&Row::Pg(r)),
                    None => Err(DbError::NoRows),
                }
            }
        }
    }

    /// Every row, mapped; the rows are read before the first is returned (a Pi-sized query
    /// result is small, and it keeps the PostgreSQL and SQLite paths alike).
    pub fn query_map<T>(
        &mut self,
        params: Params<'_>,
        mut f: impl FnMut(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<std::vec::IntoIter<DbResult<T>>> {
        fn all<T>(
            rows: &mut rusqlite::Rows<'_>,
            f: &mut impl FnMut(&Row<'_>) -> DbResult<T>,
        ) -> DbResult<Vec<DbResult<T>>> {
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let v = f(&Row::Lite(r));
                let stop = v.is_err();
                out.push(v);
                if stop {
                    break;
                }
            }
            Ok(out)
        }
        let out = match self {
            Stmt::Lite(s, _) => all(&mut s.query(lite_params(params))?, &mut f)?,
            Stmt::LiteOnce(s, _) => all(&mut s.query(lite_params(params))?, &mut f)?,
            Stmt::Pg { conn, sql } => {
                let rows = conn.query(sql, params)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let v = f(&Row::Pg(r));
                    let stop = v.is_err();
                    out.push(v);
                    if stop {
                        break;
                    }
                }
                out
            }
        };
        Ok(out.into_iter())
    }

    /// Calls `f` for every row in order. On SQLite the rows stream from the cursor (a
    /// 100,000-member segment is never held in memory); `f` may use the same connection.
    pub fn for_each<E: From<DbError>>(
        &mut self,
        params: Params<'_>,
        mut f: impl FnMut(&Row<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        fn each<E: From<DbError>>(
            rows: &mut rusqlite::Rows<'_>,
            f: &mut impl FnMut(&Row<'_>) -> Result<(), E>,
        ) -> Result<(), E> {
            while let Some(r) = rows.next().map_err(DbError::from)? {
                f(&Row::Lite(r))?;
            }
            Ok(())
        }
        match self {
            Stmt::Lite(s, _) => each(
                &mut s.query(lite_params(params)).map_err(DbError::from)?,
                &mut f,
            ),
            Stmt::LiteOnce(s, _) => each(
                &mut s.query(lite_params(params)).map_err(DbError::from)?,
                &mut f,
            ),
            Stmt::Pg { conn, sql } => {
                for r in &conn.query(sql, params)? {
                    f(&Row::Pg(r))?;
                }
                Ok(())
            }
        }
    }
}

// ---- the dialect --------------------------------------------------------------------------

/// The store's SQL in PostgreSQL's words (the module doc lists the rewrites). Text inside
/// quotes is copied as it is.
pub(crate) fn translate(sql: &str) -> String {
    let tokens = tokenize(sql);
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next_param = 1u32;
    let mut depth = 0usize;
    // Text to append after the `)` that brings the depth back to the recorded level.
    let mut suffixes: Vec<(usize, &str)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match t {
            Tok::Punct('(') => {
                depth += 1;
                out.push('(');
            }
            Tok::Punct(')') => {
                out.push(')');
                if let Some(&(d, suffix)) = suffixes.last()
                    && d == depth
                {
                    out.push_str(suffix);
                    suffixes.pop();
                }
                depth = depth.saturating_sub(1);
            }
            // SQLite's `json(x)` checks and minifies JSON text: a cast through `json`.
            Tok::Word(w)
                if w.eq_ignore_ascii_case("json")
                    && matches!(tokens.get(i + 1), Some(Tok::Punct('('))) =>
            {
                suffixes.push((depth + 1, "::json::text"));
            }
            Tok::Param(n) => {
                let n = n.unwrap_or(next_param);
                next_param = next_param.max(n + 1);
                out.push('$');
                out.push_str(&n.to_string());
            }
            Tok::Word(w) => {
                let upper = w.to_ascii_uppercase();
                let next_word = next_significant(&tokens, i + 1);
                match upper.as_str() {
                    "INDEXED" => {
                        // `INDEXED BY name`: skip three significant tokens.
                        if let Some((j, Tok::Word(by))) = next_word
                            && by.eq_ignore_ascii_case("BY")
                            && let Some((k, Tok::Word(_))) = next_significant(&tokens, j + 1)
                        {
                            i = k + 1;
                            continue;
                        }
                        out.push_str(w);
                    }
                    "NOT" => match next_word {
                        Some((j, Tok::Word(x))) if x.eq_ignore_ascii_case("INDEXED") => {
                            i = j + 1;
                            continue;
                        }
                        _ => out.push_str(w),
                    },
                    "IS" => {
                        // `IS ?N` / `IS NOT ?N` compare values that may be NULL.
                        match next_word {
                            Some((_, Tok::Param(_))) => out.push_str("IS NOT DISTINCT FROM"),
                            Some((j, Tok::Word(x)))
                                if x.eq_ignore_ascii_case("NOT")
                                    && matches!(
                                        next_significant(&tokens, j + 1),
                                        Some((_, Tok::Param(_)))
                                    ) =>
                            {
                                out.push_str("IS DISTINCT FROM");
                                i = j + 1;
                                continue;
                            }
                            _ => out.push_str(w),
                        }
                    }
                    "MAX" | "MIN" if matches!(next_word, Some((j, Tok::Punct('('))) if j == i + 1) => {
                        if top_level_commas(&tokens, i + 1) > 0 {
                            out.push_str(if upper == "MAX" { "greatest" } else { "least" });
                        } else {
                            out.push_str(w);
                        }
                    }
                    "JSON_EACH" => out.push_str("json_array_elements_text"),
                    "JSON_GROUP_ARRAY" => out.push_str("json_agg"),
                    "JSON_GROUP_OBJECT" => out.push_str("json_object_agg"),
                    _ => out.push_str(w),
                }
            }
            Tok::Other(s) => out.push_str(s),
            Tok::Punct(c) => out.push(*c),
        }
        i += 1;
    }
    out
}

#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Word(&'a str),
    /// `?N` (Some) or a bare `?` (None).
    Param(Option<u32>),
    Punct(char),
    /// Whitespace, quoted text, numbers and other symbols, copied as they are.
    Other(&'a str),
}

fn tokenize(sql: &str) -> Vec<Tok<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c == b'\'' || c == b'"' {
            i += 1;
            while i < bytes.len() {
                if bytes[i] == c {
                    if bytes.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            out.push(Tok::Other(&sql[start..i]));
        } else if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            out.push(Tok::Other(&sql[start..i]));
        } else if c == b'?' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Tok::Param(sql[start + 1..i].parse().ok()));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Word(&sql[start..i]));
        } else if c == b'(' || c == b')' || c == b',' {
            i += 1;
            out.push(Tok::Punct(c as char));
        } else {
            // One character (or a UTF-8 sequence) at a time.
            i += 1;
            while i < bytes.len() && !sql.is_char_boundary(i) {
                i += 1;
            }
            out.push(Tok::Other(&sql[start..i]));
        }
    }
    out
}

/// The next token that is not whitespace or a comment, with its index.
fn next_significant<'t, 'a>(tokens: &'t [Tok<'a>], from: usize) -> Option<(usize, &'t Tok<'a>)> {
    tokens
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, t)| !matches!(t, Tok::Other(s) if s.trim().is_empty() || s.starts_with("--")))
}

/// Commas at the top level of the parenthesised list opening at `open`.
fn top_level_commas(tokens: &[Tok<'_>], open: usize) -> usize {
    let mut depth = 0;
    let mut commas = 0;
    for t in &tokens[open..] {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Punct(',') if depth == 1 => commas += 1,
            _ => {}
        }
    }
    commas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_for_postgres() {
        assert_eq!(
            translate("SELECT a FROM t WHERE b = ?2 AND c = ?1 AND d = ?"),
            "SELECT a FROM t WHERE b = $2 AND c = $1 AND d = $3"
        );
        assert_eq!(translate("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
        // A question mark in a string is text, not a parameter.
        assert_eq!(
            translate("SELECT 'a?b' WHERE x = ?1"),
            "SELECT 'a?b' WHERE x = $1"
        );
    }

    #[test]
    fn sqlite_only_forms_are_rewritten() {
        assert_eq!(
            translate("SELECT id FROM outbox INDEXED BY outbox_queue WHERE x IS ?3"),
            "SELECT id FROM outbox  WHERE x IS NOT DISTINCT FROM $3"
        );
        assert_eq!(
            translate("SET last_id = max(last_id, ?2), n = MAX(n), m = min(a, (b + 1))"),
            "SET last_id = greatest(last_id, $2), n = MAX(n), m = least(a, (b + 1))"
        );
        assert_eq!(
            translate("WHERE a IS NOT ?1 AND b IS NULL AND c IS NOT NULL"),
            "WHERE a IS DISTINCT FROM $1 AND b IS NULL AND c IS NOT NULL"
        );
        assert_eq!(
            translate("VALUES (?1, json(?3)), (json(coalesce(?2, '{}')))"),
            "VALUES ($1, ($3)::json::text), ((coalesce($2, '{}'))::json::text)"
        );
        assert_eq!(
            translate("x IN (SELECT value FROM json_each(?4))"),
            "x IN (SELECT value FROM json_array_elements_text($4))"
        );
    }

    #[test]
    fn numeric_round_trips() {
        for i in [
            0i64,
            1,
            -1,
            9_999,
            10_000,
            123_456_789,
            -98_765_432_100,
            i64::MAX,
            i64::MIN + 1,
        ] {
            let mut buf = bytes::BytesMut::new();
            encode_numeric(i, &mut buf);
            assert_eq!(decode_numeric(&buf).unwrap(), Value::Int(i), "{i}");
        }
    }

    proptest::proptest! {
        #[test]
        fn translate_never_panics(sql in ".{0,200}") {
            let _ = translate(&sql);
        }

        #[test]
        fn numeric_decode_never_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = decode_numeric(&raw);
        }
    }
}
