//! Database access: one diesel codebase over PostgreSQL and SQLite.
//!
//! The backend is chosen from the URL scheme by [`DatabaseUrl::parse`], never
//! by trial and error: a PostgreSQL URL can never silently become a SQLite file.

pub mod bulk;
pub mod pool;
pub mod schema;
pub mod types;

use std::fmt;
use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use pool::{DbPool, PoolSettings};
pub use types::{Code, Day, DbUuid, Id, Ts, Tstz};

/// A connection to either backend. Most code uses it as a plain diesel
/// connection; the few statements the multi backend cannot express go through
/// [`per_backend!`].
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs the same diesel expression on whichever concrete connection is inside
/// a [`DbConn`]: for multi-row inserts, `ON CONFLICT` and `RETURNING` clauses
/// that do not compile on the multi backend.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Pg($c) => $body,
            $crate::db::DbConn::Sqlite($c) => $body,
        }
    };
}

/// Inserts many rows into one table: on PostgreSQL by `COPY … FROM STDIN`
/// in the binary format (one round trip, no statement to parse, no
/// bind-parameter limit); on SQLite by multi-row `INSERT`s of exactly
/// `$chunk` rows, a constant, so that diesel prepares the statement once
/// per connection and reuses it (parsing a fresh statement of a thousand
/// rows took a seventh of an import's time), and one `INSERT` of what is
/// left over. `$chunk` times the columns must stay under SQLite's 32 766
/// bind parameters. The rows must be `Insertable` with
/// `treat_none_as_default_value = false` (COPY has no `DEFAULT`). Evaluates
/// to a `QueryResult<()>`; the caller owns the transaction.
#[macro_export]
macro_rules! bulk_insert {
    ($conn:expr, $table:expr, $rows:expr, $chunk:literal) => {{
        let rows = $rows;
        match $conn {
            $crate::db::DbConn::Pg(c) if !rows.is_empty() => diesel::copy_from($table)
                .from_insertable(rows)
                .execute(c)
                .map(|_| ()),
            $crate::db::DbConn::Pg(_) => Ok(()),
            $crate::db::DbConn::Sqlite(c) => {
                let mut full = rows.chunks_exact($chunk);
                full.by_ref()
                    .try_for_each(|chunk| {
                        // a fixed-size array: the statement's text never changes
                        let chunk: &[_; $chunk] = chunk.try_into().expect("chunks_exact");
                        diesel::insert_into($table)
                            .values(chunk)
                            .execute(c)
                            .map(|_| ())
                    })
                    .and_then(|()| match full.remainder() {
                        [] => Ok(()),
                        rest => diesel::insert_into($table)
                            .values(rest)
                            .execute(c)
                            .map(|_| ()),
                    })
            }
        }
    }};
}

/// Which database engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl DbConn {
    pub fn backend(&self) -> Backend {
        match self {
            DbConn::Pg(_) => Backend::Postgres,
            DbConn::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// A validated database location.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A `postgres://` or `postgresql://` URL, passed to libpq as is (plus a
    /// connect timeout when it has none).
    Postgres(String),
    /// A SQLite database file.
    Sqlite(PathBuf),
}

// Never print a PostgreSQL password in logs or error messages.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Postgres(url) => f.write_str(&redact_password(url)),
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

impl DatabaseUrl {
    /// Chooses the backend from the scheme: `postgres://`/`postgresql://` for
    /// PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a bare file path for
    /// SQLite. Keyword-style PostgreSQL DSNs (`host=… dbname=…`) and other
    /// schemes are refused rather than mistaken for a file name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("is empty".into());
        }
        let lower = raw.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(raw.to_string()));
        }
        let path = if let Some(p) = lower.strip_prefix("sqlite://").map(|_| &raw[9..]) {
            p
        } else if let Some(p) = lower.strip_prefix("sqlite:").map(|_| &raw[7..]) {
            p
        } else if let Some(idx) = raw.find("://") {
            return Err(format!(
                "unsupported scheme `{}`: use postgres://… or sqlite://…",
                &raw[..idx]
            ));
        } else if raw.contains('=') || raw.contains(char::is_whitespace) {
            return Err(
                "looks like a keyword-style PostgreSQL DSN; write it as a postgres:// URL".into(),
            );
        } else {
            raw
        };
        if path.is_empty() || path.starts_with(':') {
            return Err(
                "SQLite needs a file path (in-memory databases are not supported behind the pool)"
                    .into(),
            );
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Opens one connection, with the SQLite pragmas set.
    pub fn connect(&self) -> ConnectionResult<DbConn> {
        match self {
            DatabaseUrl::Postgres(url) => {
                diesel::PgConnection::establish(&with_connect_timeout(url)).map(DbConn::Pg)
            }
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent() {
                    if !parent.as_os_str().is_empty() && !parent.exists() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            ConnectionError::BadConnection(format!(
                                "cannot create folder {}: {e}",
                                parent.display()
                            ))
                        })?;
                    }
                }
                let path_str = path.to_str().ok_or_else(|| {
                    ConnectionError::InvalidConnectionUrl("SQLite path is not valid UTF-8".into())
                })?;
                bulk::raw_insert::register();
                let mut conn = diesel::SqliteConnection::establish(path_str)?;
                // busy_timeout first: switching to WAL needs a lock that a
                // busy writer may hold. The page size only applies to a new
                // (empty) file: 32 KiB pages write bulk imports ~15 % faster
                // than the 4 KiB default (fewer WAL frames and B-tree splits).
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000;
                     PRAGMA page_size = 32768;
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

/// libpq waits for the OS connect timeout (minutes) on an unreachable host;
/// cap it so a dead database turns into a 503 quickly.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&connect_timeout=2")
    } else {
        format!("{url}?connect_timeout=2")
    }
}

/// A transaction for work that writes. On SQLite it takes the write lock
/// with its first statement (waiting up to the busy timeout), so a
/// transaction that reads before it writes cannot fail with SQLITE_BUSY when
/// another writer committed meanwhile. PostgreSQL needs nothing extra: its
/// row locks queue writers, and audit appends serialise on `audit_head`.
pub fn write_tx<T, E, F>(conn: &mut DbConn, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    // SQLite has one writer at a time. Queue this process's writers on a
    // mutex instead of letting them sleep-and-retry in the busy handler,
    // whose back-off gives a long latency tail under load.
    let _writer = match conn {
        DbConn::Sqlite(_) => SqliteWriter::enter(),
        DbConn::Pg(_) => None,
    };
    conn.transaction(|conn| {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute("UPDATE audit_head SET seq = seq WHERE id = 1")?;
        }
        work(conn)
    })
}

static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// Nesting depth of write transactions on this thread (the mutex is not
    /// re-entrant; a nested write_tx is a savepoint of the outer one).
    static WRITE_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Holds the process-wide SQLite writer lock (outermost write only).
struct SqliteWriter {
    _guard: Option<std::sync::MutexGuard<'static, ()>>,
}

impl SqliteWriter {
    fn enter() -> Option<SqliteWriter> {
        let depth = WRITE_DEPTH.with(|d| {
            let v = d.get();
            d.set(v + 1);
            v
        });
        let guard = if depth == 0 {
            // A poisoned lock only means another writer panicked; the
            // database itself is consistent (its transaction rolled back).
            Some(SQLITE_WRITER.lock().unwrap_or_else(|e| e.into_inner()))
        } else {
            None
        };
        Some(SqliteWriter { _guard: guard })
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        WRITE_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Runs blocking database work on actix's blocking thread pool with a pooled
/// connection. A checkout timeout becomes a 503 with `Retry-After`.
pub async fn run<T, F>(pool: &DbPool, work: F) -> Result<T, crate::error::AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, crate::error::AppError> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await?
}

pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The cheapest round trip: whether the database answers at all.
pub fn ping(conn: &mut DbConn) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

/// Applies pending migrations (the schema only; `services::setup::migrate`
/// also loads the reference data). Returns the names of those applied.
pub fn apply_migrations(conn: &mut DbConn) -> anyhow::Result<Vec<String>> {
    Ok(match conn {
        DbConn::Pg(c) => c
            .run_pending_migrations(PG_MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("PostgreSQL migration failed: {e}"))?
            .iter()
            .map(|v| v.to_string())
            .collect(),
        DbConn::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("SQLite migration failed: {e}"))?
            .iter()
            .map(|v| v.to_string())
            .collect(),
    })
}

/// Whether migrations are pending (used by `serve` with auto-migration off).
pub fn has_pending_migrations(conn: &mut DbConn) -> anyhow::Result<bool> {
    let pending = match conn {
        DbConn::Pg(c) => c.has_pending_migration(PG_MIGRATIONS),
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    };
    pending.map_err(|e| anyhow::anyhow!("cannot read migration state: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_backend_by_scheme() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@127.0.0.1/db").map(|u| u.backend()),
            Ok(Backend::Postgres)
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://127.0.0.1/db").map(|u| u.backend()),
            Ok(Backend::Postgres)
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/mapce.sqlite3"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("data/mapce.sqlite3")))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("/tmp/x.db")))
        );
        assert_eq!(
            DatabaseUrl::parse("local.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("local.db")))
        );
    }

    #[test]
    fn keyword_dsn_and_unknown_schemes_are_refused() {
        assert!(DatabaseUrl::parse("host=localhost dbname=mapce").is_err());
        assert!(DatabaseUrl::parse("mysql://localhost/db").is_err());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
        assert!(DatabaseUrl::parse("  ").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl::parse("postgres://mapce:s3cret@db:5432/mapce").expect("valid");
        assert_eq!(url.to_string(), "postgres://mapce:***@db:5432/mapce");
        assert!(!format!("{url:?}").contains("s3cret"));
    }
}
