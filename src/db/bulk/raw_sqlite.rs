//! A read-only SQLite cursor for the one read that decodes rows by the
//! hundred thousand: the OEI.05 year scan. Column bytes are borrowed straight
//! from SQLite, without diesel's per-field machinery and without SQLite's
//! per-call mutex (the connection lives on one thread). Everything else goes
//! through diesel.
//!
//! All `unsafe` in this module is calls into the SQLite C API on a handle
//! this type owns; each is commented with the rule it relies on.

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::ptr::{self, NonNull};

use diesel::prelude::*;
use libsqlite3_sys as ffi;

use crate::db::DbConn;

/// Why a raw read failed, as a diesel error so callers handle one kind.
fn failure(what: impl Into<String>) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(what.into().into())
}

#[derive(QueryableByName)]
struct MainFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

/// The file behind a SQLite connection, or `None` on PostgreSQL and for an
/// in-memory database (which another connection cannot open).
pub fn database_file(conn: &mut DbConn) -> QueryResult<Option<String>> {
    if !matches!(conn, DbConn::Sqlite(_)) {
        return Ok(None);
    }
    let rows: Vec<MainFile> =
        diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .load(conn)?;
    Ok(rows.into_iter().map(|r| r.file).find(|f| !f.is_empty()))
}

/// One SQLite connection that only reads.
pub struct RawReader {
    db: NonNull<ffi::sqlite3>,
}

// SAFETY: the handle is opened with SQLITE_OPEN_NOMUTEX (multi-thread mode):
// it may move between threads as long as one thread uses it at a time, which
// `&mut self` on every use guarantees.
unsafe impl Send for RawReader {}

impl RawReader {
    /// Opens `path` (which must exist) for reading only.
    pub fn open(path: &str) -> QueryResult<RawReader> {
        let c_path = CString::new(path).map_err(|_| failure("database path contains NUL"))?;
        let mut db: *mut ffi::sqlite3 = ptr::null_mut();
        // SAFETY: valid C string and out-pointer; flags per the C API.
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                c_path.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX,
                ptr::null(),
            )
        };
        let Some(handle) = NonNull::new(db) else {
            return Err(failure("SQLite could not allocate a connection"));
        };
        let reader = RawReader { db: handle };
        if rc != ffi::SQLITE_OK {
            return Err(reader.error("opening the database"));
        }
        // Read-write open (a WAL database's shared memory needs it), but
        // this connection refuses every write.
        reader.exec(c"PRAGMA query_only = 1; PRAGMA busy_timeout = 5000;")?;
        Ok(reader)
    }

    fn error(&self, doing: &str) -> diesel::result::Error {
        // SAFETY: the handle is open; the message is copied before any other
        // call on it.
        let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr())) };
        failure(format!("{doing}: {}", msg.to_string_lossy()))
    }

    fn exec(&self, sql: &CStr) -> QueryResult<()> {
        // SAFETY: open handle, NUL-terminated SQL, no callback.
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                sql.as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error("configuring the reader"));
        }
        Ok(())
    }

    /// Runs one statement with text parameters (`?1`, `?2`…) and hands every
    /// row to `each`; stops at the first error `each` returns.
    pub fn for_each_row(
        &mut self,
        sql: &str,
        params: &[&str],
        mut each: impl FnMut(&RawRow<'_>) -> QueryResult<()>,
    ) -> QueryResult<()> {
        let stmt = Statement::prepare(self, sql)?;
        for (i, p) in params.iter().enumerate() {
            let len = c_int::try_from(p.len()).map_err(|_| failure("parameter too long"))?;
            // SAFETY: live statement, 1-based index within its parameters
            // (checked by SQLite: out of range returns SQLITE_RANGE), and
            // SQLITE_TRANSIENT makes SQLite copy the text.
            let rc = unsafe {
                ffi::sqlite3_bind_text(
                    stmt.0.as_ptr(),
                    (i + 1) as c_int,
                    p.as_ptr().cast(),
                    len,
                    ffi::SQLITE_TRANSIENT(),
                )
            };
            if rc != ffi::SQLITE_OK {
                return Err(self.error("binding a parameter"));
            }
        }
        loop {
            // SAFETY: live statement, used by this thread only.
            match unsafe { ffi::sqlite3_step(stmt.0.as_ptr()) } {
                ffi::SQLITE_ROW => each(&RawRow {
                    stmt: stmt.0,
                    _row: std::marker::PhantomData,
                })?,
                ffi::SQLITE_DONE => return Ok(()),
                _ => return Err(self.error("reading rows")),
            }
        }
    }
}

impl Drop for RawReader {
    fn drop(&mut self) {
        // SAFETY: every statement is finalized by `Statement`'s drop before
        // this (they borrow the reader); the handle is closed once.
        unsafe {
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

struct Statement(NonNull<ffi::sqlite3_stmt>);

impl Statement {
    fn prepare(reader: &RawReader, sql: &str) -> QueryResult<Statement> {
        let len = c_int::try_from(sql.len()).map_err(|_| failure("statement too long"))?;
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        // SAFETY: open handle; the SQL's length is given, so it needs no NUL.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                reader.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(s) if rc == ffi::SQLITE_OK => Ok(Statement(s)),
            other => {
                if let Some(s) = other {
                    // SAFETY: a statement SQLite handed out, finalized once.
                    unsafe { ffi::sqlite3_finalize(s.as_ptr()) };
                }
                Err(reader.error("preparing a statement"))
            }
        }
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: finalized exactly once.
        unsafe {
            ffi::sqlite3_finalize(self.0.as_ptr());
        }
    }
}

/// The current row; its values are valid until the cursor moves, which the
/// borrow enforces (a `RawRow` only lives inside the callback).
pub struct RawRow<'r> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    _row: std::marker::PhantomData<&'r ()>,
}

impl RawRow<'_> {
    /// Column `i` (0-based) as text bytes, `None` when NULL.
    pub fn bytes(&self, i: usize) -> Option<&[u8]> {
        let i = i as c_int;
        // SAFETY: the statement is positioned on a row (we are inside the
        // step loop); an out-of-range column reads as NULL. The text pointer
        // is taken before its length, as the C API asks, and stays valid
        // until the next step, which cannot happen while `self` is borrowed.
        unsafe {
            if ffi::sqlite3_column_type(self.stmt.as_ptr(), i) == ffi::SQLITE_NULL {
                return None;
            }
            let p = ffi::sqlite3_column_text(self.stmt.as_ptr(), i);
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), i);
            if p.is_null() || n <= 0 {
                return Some(&[]);
            }
            Some(std::slice::from_raw_parts(p, n as usize))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;

    #[test]
    fn reads_what_diesel_wrote_and_refuses_to_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("raw.sqlite3");
        let url =
            crate::db::DatabaseUrl::parse(&format!("sqlite://{}", path.display())).expect("url");
        let mut conn = url.connect().expect("connect");
        conn.batch_execute(
            "CREATE TABLE t (a TEXT NOT NULL, b TEXT);
             INSERT INTO t VALUES ('uno', NULL), ('dos', 'ñandú'), ('tres', '');",
        )
        .expect("setup");
        let file = database_file(&mut conn).expect("pragma").expect("a file");
        let mut reader = RawReader::open(&file).expect("open");
        let mut seen = Vec::new();
        reader
            .for_each_row(
                "SELECT a, b FROM t WHERE a <> ?1 ORDER BY a",
                &["tres"],
                |r| {
                    let a = String::from_utf8(r.bytes(0).expect("a").to_vec()).expect("utf8");
                    let b = r
                        .bytes(1)
                        .map(|b| String::from_utf8(b.to_vec()).expect("utf8"));
                    seen.push((a, b));
                    Ok(())
                },
            )
            .expect("read");
        assert_eq!(
            seen,
            vec![
                ("dos".to_string(), Some("ñandú".to_string())),
                ("uno".to_string(), None)
            ]
        );
        let write = reader.for_each_row("INSERT INTO t VALUES ('cuatro', NULL)", &[], |_| Ok(()));
        assert!(write.is_err(), "a query-only reader must refuse writes");
        let bad = reader.for_each_row("SELECT nope FROM t", &[], |_| Ok(()));
        assert!(bad.is_err());
    }
}
