//! Prepared INSERTs run straight on a diesel SQLite connection's handle, for
//! the one writer that inserts rows by the million: the legacy import's.
//!
//! Through diesel a multi-row INSERT walks its query tree twice per run
//! (cache key, then binds), allocates a string per id and timestamp, and
//! copies every bind into its own buffers: about 35 % of the import
//! writer's time in a `perf` profile of a 200 000-row import, next to the
//! B-tree work itself. Here each table's
//! statement is prepared once, ids and timestamps are formatted on the
//! stack, and each value is bound once. The statements run in whatever
//! transaction diesel has open on the connection, so the import's rows
//! still commit or roll back with its progress, audit row and checks.
//!
//! The handle comes from SQLite itself: every connection this process
//! opens (after [`register`]) gets a SQL function that records, for the
//! calling thread, the handle it was called on. [`RawInserts`] asks for it
//! again before each use, through the connection it is given, so it only
//! ever runs on a connection that is alive and is the one it prepared its
//! statements on. A connection cannot be closed under its prepared
//! statements (SQLite refuses, and leaves it open), so finalizing them is
//! safe whatever happened to it.
//!
//! All `unsafe` here is calls into the SQLite C API, each commented.

use std::cell::Cell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::ptr::{self, NonNull};

use chrono::{Datelike, NaiveDate, Timelike};
use diesel::connection::SimpleConnection;
use diesel::QueryResult;
use libsqlite3_sys as ffi;

use super::columns::Columns;
use crate::db::{DbConn, Id, Ts};

thread_local! {
    /// The handle `mapce_connection_handle()` was last called on, in this thread.
    static CALLED_ON: Cell<*mut ffi::sqlite3> = const { Cell::new(ptr::null_mut()) };
}

const HANDLE_FUNCTION: &CStr = c"mapce_connection_handle";

unsafe extern "C" fn record_handle(
    ctx: *mut ffi::sqlite3_context,
    _argc: c_int,
    _argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with a live context; the handle it returns
    // is only stored, and the result set is NULL.
    unsafe {
        CALLED_ON.with(|h| h.set(ffi::sqlite3_context_db_handle(ctx)));
        ffi::sqlite3_result_null(ctx);
    }
}

unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    _err: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: SQLite calls this with the connection it is opening. The
    // function takes no argument, is deterministic per connection, and
    // DIRECTONLY keeps it out of triggers, views and schema definitions.
    unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            HANDLE_FUNCTION.as_ptr(),
            0,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DIRECTONLY,
            ptr::null_mut(),
            Some(record_handle),
            None,
            None,
            None,
        )
    }
}

/// Makes every SQLite connection opened from now on able to name its
/// handle (idempotent; `DatabaseUrl::connect` calls it).
pub fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a function with the signature SQLite expects;
        // the registration itself is thread-safe.
        unsafe {
            ffi::sqlite3_auto_extension(Some(on_open));
        }
    });
}

/// The handle behind `conn`, or `None` on PostgreSQL and on a connection
/// opened before [`register`].
fn handle_of(conn: &mut DbConn) -> Option<NonNull<ffi::sqlite3>> {
    let DbConn::Sqlite(c) = conn else {
        return None;
    };
    CALLED_ON.with(|h| h.set(ptr::null_mut()));
    c.batch_execute("SELECT mapce_connection_handle()").ok()?;
    NonNull::new(CALLED_ON.with(|h| h.replace(ptr::null_mut())))
}

fn failure(what: impl Into<String>) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(what.into().into())
}

/// SQLite's message for the last failure on `db`, as a diesel error. A
/// constraint keeps its kind, so callers answer it as they would diesel's.
fn sqlite_error(db: NonNull<ffi::sqlite3>, rc: c_int, doing: &str) -> diesel::result::Error {
    // SAFETY: live handle; the message is copied before any other call.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) }
        .to_string_lossy()
        .into_owned();
    use diesel::result::DatabaseErrorKind as K;
    // the extended code names the constraint (the step returns the
    // primary one unless the connection asked for extended codes)
    let rc = match rc & 0xff {
        // SAFETY: live handle, read before any other call
        ffi::SQLITE_CONSTRAINT => unsafe { ffi::sqlite3_extended_errcode(db.as_ptr()) },
        _ => rc,
    };
    let kind = match rc & 0xff {
        ffi::SQLITE_CONSTRAINT => match rc {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => K::UniqueViolation,
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => K::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => K::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => K::CheckViolation,
            _ => K::Unknown,
        },
        _ => K::Unknown,
    };
    diesel::result::Error::DatabaseError(kind, Box::new(format!("{doing}: {msg}")))
}

/// Rows per statement (and one row per statement for the rest).
///
/// The statements are `INSERT OR FAIL`: a failing row leaves the rows
/// before it in place and fails the statement, and the caller then rolls
/// the whole transaction back. A plain `INSERT` (`OR ABORT`) of several
/// rows first copies every page it changes to SQLite's statement journal,
/// so that a failure can undo just that statement, which nothing here
/// needs: in the random-order name and document indexes that was a 32 KiB
/// page per row, so those tables went one row per statement, and the
/// appending tables still journaled the last page of each index per
/// statement. Without the journal every table takes 50 rows per
/// statement (a million-row import: the batches took 32–33 s against
/// 35–37 s, runs in turn).
const ROWS_PER_STATEMENT: usize = 50;

struct Statement {
    stmt: NonNull<ffi::sqlite3_stmt>,
    rows: usize,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: finalized exactly once; its connection cannot have been
        // closed while it existed (see the module's comment).
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// One table's statements: `rows` rows per run, and one row for the rest.
struct Table {
    name: &'static str,
    columns: usize,
    full: Statement,
    single: Statement,
}

/// Prepared inserts on one SQLite connection (see the module's comment).
pub struct RawInserts {
    db: NonNull<ffi::sqlite3>,
    tables: Vec<Table>,
    /// The text values of the statement being bound, and where each goes
    /// (kept between statements, so binding allocates nothing).
    texts: Texts,
}

/// Text values gathered for one run of a statement: their bytes one after
/// the other, and (parameter, start, length) for each.
#[derive(Default)]
struct Texts {
    bytes: Vec<u8>,
    params: Vec<(c_int, usize, usize)>,
}

impl RawInserts {
    /// For `conn`'s handle; `None` on PostgreSQL or when the handle cannot
    /// be named (the caller then inserts through diesel).
    pub fn new(conn: &mut DbConn) -> Option<RawInserts> {
        handle_of(conn).map(|db| RawInserts {
            db,
            tables: Vec::new(),
            texts: Texts::default(),
        })
    }

    /// Inserts `rows` into `table`, `ROWS_PER_STATEMENT` rows per run, each row's
    /// values bound by `bind` in the order of `columns`. Runs in the
    /// connection's current transaction; `conn` must be the connection this
    /// was made for.
    pub fn insert<T>(
        &mut self,
        conn: &mut DbConn,
        columns: &'static Columns,
        rows: &[T],
        mut bind: impl FnMut(&T, &mut Binder<'_>) -> QueryResult<()>,
    ) -> QueryResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if handle_of(conn) != Some(self.db) {
            return Err(failure("raw inserts used on another connection"));
        }
        let (table, columns) = (columns.table, columns.names);
        let db = self.db;
        let texts = &mut self.texts;
        let t = match self.tables.iter().position(|t| t.name == table) {
            Some(i) => &mut self.tables[i],
            None => {
                let full = prepare(db, table, columns, ROWS_PER_STATEMENT)?;
                let single = prepare(db, table, columns, 1)?;
                self.tables.push(Table {
                    name: table,
                    columns: columns.len(),
                    full,
                    single,
                });
                self.tables.last_mut().expect("just pushed")
            }
        };
        if t.columns != columns.len() {
            return Err(failure(format!("{table}: columns changed between calls")));
        }
        let mut chunks = rows.chunks_exact(t.full.rows);
        for chunk in chunks.by_ref() {
            run(db, &t.full, t.columns, chunk, &mut bind, texts, table)?;
        }
        for row in chunks.remainder() {
            run(
                db,
                &t.single,
                t.columns,
                std::slice::from_ref(row),
                &mut bind,
                texts,
                table,
            )?;
        }
        Ok(())
    }
}

fn prepare(
    db: NonNull<ffi::sqlite3>,
    table: &str,
    columns: &[&str],
    rows: usize,
) -> QueryResult<Statement> {
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    // OR FAIL: no statement journal (see `ROWS_PER_STATEMENT`)
    let sql = format!(
        "INSERT OR FAIL INTO {table} ({}) VALUES {}",
        columns.join(", "),
        vec![one; rows].join(", ")
    );
    let len = c_int::try_from(sql.len()).map_err(|_| failure("statement too long"))?;
    let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
    // SAFETY: live handle; the SQL's length is given, so it needs no NUL;
    // PERSISTENT tells SQLite the statement is kept and reused.
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            db.as_ptr(),
            sql.as_ptr().cast(),
            len,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &mut stmt,
            ptr::null_mut(),
        )
    };
    match NonNull::new(stmt) {
        Some(stmt) if rc == ffi::SQLITE_OK => Ok(Statement { stmt, rows }),
        other => {
            if let Some(s) = other {
                // SAFETY: a statement SQLite handed out, finalized once.
                unsafe { ffi::sqlite3_finalize(s.as_ptr()) };
            }
            Err(sqlite_error(
                db,
                rc,
                &format!("preparing the insert into {table}"),
            ))
        }
    }
}

fn run<T>(
    db: NonNull<ffi::sqlite3>,
    s: &Statement,
    columns: usize,
    rows: &[T],
    bind: &mut impl FnMut(&T, &mut Binder<'_>) -> QueryResult<()>,
    texts: &mut Texts,
    table: &str,
) -> QueryResult<()> {
    texts.bytes.clear();
    texts.params.clear();
    let mut b = Binder {
        db,
        stmt: s.stmt,
        next: 1,
        texts,
        _statement: std::marker::PhantomData,
    };
    for (i, row) in rows.iter().enumerate() {
        bind(row, &mut b)?;
        let bound = b.next as usize - 1;
        if bound != (i + 1) * columns {
            return Err(failure(format!(
                "{table}: a row bound {} values for {columns} columns",
                bound - i * columns
            )));
        }
    }
    // The texts, bound where they now stay put: `texts.bytes` does not
    // change again until the bindings are cleared below.
    let bound = bind_texts(db, s.stmt, b.texts);
    // SAFETY: live statement, every parameter bound (the texts to bytes
    // that outlive the step); reset right after, so it never stays active
    // (an active write statement would keep the transaction from
    // committing), and the bindings cleared, so no parameter keeps
    // pointing at the texts' bytes once they change.
    let error = match bound.map(|()| unsafe { ffi::sqlite3_step(s.stmt.as_ptr()) }) {
        Ok(ffi::SQLITE_DONE) => None,
        Ok(rc) => Some(sqlite_error(db, rc, &format!("insert into {table}"))),
        Err(e) => Some(e),
    };
    // SAFETY: live statement; reset only fails with the step's own error,
    // already taken; clearing the bindings cannot fail.
    unsafe {
        ffi::sqlite3_reset(s.stmt.as_ptr());
        ffi::sqlite3_clear_bindings(s.stmt.as_ptr());
    }
    error.map_or(Ok(()), Err)
}

/// Binds the gathered texts without copying them (`SQLITE_STATIC`): SQLite
/// reads them during the step that follows, and `run` clears the bindings
/// before `texts` is touched again. With `SQLITE_TRANSIENT` every value was
/// copied into a buffer that SQLite frees at the next bind: a `malloc` and
/// a `free` per value, ~10 % of the import writer's time.
fn bind_texts(
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    texts: &Texts,
) -> QueryResult<()> {
    for &(param, start, len) in &texts.params {
        let bytes = &texts.bytes[start..start + len];
        let len = c_int::try_from(len).map_err(|_| failure("value too long"))?;
        // SAFETY: live statement; an out-of-range index is refused with
        // SQLITE_RANGE; the bytes stay valid and unchanged until `run`
        // clears the bindings (see above).
        let rc = unsafe {
            ffi::sqlite3_bind_text(
                stmt.as_ptr(),
                param,
                bytes.as_ptr().cast(),
                len,
                ffi::SQLITE_STATIC(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(sqlite_error(db, rc, "binding a value"));
        }
    }
    Ok(())
}

/// Binds one statement's parameters in order. Texts are copied into the
/// statement's own buffer (so a value may live on the caller's stack) and
/// bound from there just before the step (`bind_texts`).
pub struct Binder<'s> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    next: c_int,
    texts: &'s mut Texts,
    _statement: std::marker::PhantomData<&'s Statement>,
}

impl Binder<'_> {
    fn check(&mut self, rc: c_int) -> QueryResult<()> {
        self.next += 1;
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(sqlite_error(self.db, rc, "binding a value"))
        }
    }

    pub fn text(&mut self, v: &str) -> QueryResult<()> {
        let start = self.texts.bytes.len();
        self.texts.bytes.extend_from_slice(v.as_bytes());
        self.texts.params.push((self.next, start, v.len()));
        self.next += 1;
        Ok(())
    }

    pub fn null(&mut self) -> QueryResult<()> {
        // SAFETY: as in `text`.
        let rc = unsafe { ffi::sqlite3_bind_null(self.stmt.as_ptr(), self.next) };
        self.check(rc)
    }

    pub fn int(&mut self, v: i64) -> QueryResult<()> {
        // SAFETY: as in `text`.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), self.next, v) };
        self.check(rc)
    }

    /// As diesel stores a boolean on SQLite: 1 or 0.
    pub fn bool(&mut self, v: bool) -> QueryResult<()> {
        self.int(i64::from(v))
    }

    /// Hyphenated lowercase, as `Id`'s diesel `ToSql` writes it.
    pub fn id(&mut self, v: Id) -> QueryResult<()> {
        let mut buf = [0u8; 36];
        let s: &str = v.0.hyphenated().encode_lower(&mut buf);
        self.text(s)
    }

    /// `Ts::to_storage_string`, without allocating for years 0–9999.
    pub fn ts(&mut self, v: Ts) -> QueryResult<()> {
        let t = v.0;
        let micros = t.nanosecond() / 1000;
        if !(0..=9999).contains(&t.year()) || micros >= 1_000_000 {
            return self.text(&v.to_storage_string());
        }
        let mut buf = [0u8; 27];
        put_date(&mut buf[0..10], &t);
        buf[10] = b'T';
        put(&mut buf[11..13], t.hour());
        buf[13] = b':';
        put(&mut buf[14..16], t.minute());
        buf[16] = b':';
        put(&mut buf[17..19], t.second());
        buf[19] = b'.';
        put(&mut buf[20..26], micros);
        buf[26] = b'Z';
        self.text(std::str::from_utf8(&buf).map_err(|_| failure("timestamp text"))?)
    }

    /// `%F`, as diesel's `NaiveDate` `ToSql` writes it.
    pub fn date(&mut self, v: NaiveDate) -> QueryResult<()> {
        if !(0..=9999).contains(&v.year()) {
            return self.text(&v.format("%F").to_string());
        }
        let mut buf = [0u8; 10];
        put_date(&mut buf, &v);
        self.text(std::str::from_utf8(&buf).map_err(|_| failure("date text"))?)
    }

    pub fn opt_text(&mut self, v: Option<&str>) -> QueryResult<()> {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn opt_id(&mut self, v: Option<Id>) -> QueryResult<()> {
        match v {
            Some(v) => self.id(v),
            None => self.null(),
        }
    }

    pub fn opt_ts(&mut self, v: Option<Ts>) -> QueryResult<()> {
        match v {
            Some(v) => self.ts(v),
            None => self.null(),
        }
    }

    pub fn opt_date(&mut self, v: Option<NaiveDate>) -> QueryResult<()> {
        match v {
            Some(v) => self.date(v),
            None => self.null(),
        }
    }
}

/// Writes `YYYY-MM-DD` (a year of 0–9999, checked by the caller) into
/// `out`'s 10 bytes.
fn put_date(out: &mut [u8], d: &impl Datelike) {
    put(&mut out[0..4], d.year() as u32);
    out[4] = b'-';
    put(&mut out[5..7], d.month());
    out[7] = b'-';
    put(&mut out[8..10], d.day());
}

/// Writes `n` in decimal, zero-padded to fill `out`.
fn put(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}
