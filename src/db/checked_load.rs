//! Bulk loads on PostgreSQL with foreign keys checked per batch instead of
//! per row.
//!
//! A foreign key's trigger runs one `SELECT … FOR KEY SHARE` per inserted
//! row through SPI, each with its own executor start-up: in a 200 000-row
//! legacy import it was 75 % of the server's time (`perf`). Where the
//! session may set `session_replication_role` (a superuser, or since
//! PostgreSQL 15 a role granted `SET` on it), a loader writes its rows with
//! that role set to `replica` for the statement block, which skips those
//! triggers, then checks every foreign key of every table it wrote with one
//! set-based anti-join per key over the rows it wrote, in the same
//! transaction: a dangling reference fails the batch, which rolls back, as
//! the triggers would have. The keys come from `pg_constraint`, so a key
//! added by a later migration is checked without changing this code.
//!
//! (The schema has no triggers of its own; `replica` only silences the
//! foreign-key ones. Nothing deletes persons, cases or consulates, so the
//! row locks the triggers would take protect nothing here.)

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Text};
use diesel::PgConnection;

use super::types::DbUuid;
use super::{DbConn, Id};

/// One foreign key: `child(columns) REFERENCES parent(parent_columns)`.
#[derive(Debug, Clone, QueryableByName)]
pub struct ForeignKey {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub child: String,
    #[diesel(sql_type = Array<Text>)]
    pub columns: Vec<String>,
    #[diesel(sql_type = Text)]
    pub parent: String,
    #[diesel(sql_type = Array<Text>)]
    pub parent_columns: Vec<String>,
}

/// The rows a batch wrote to one table: those whose `column` is in `keys`
/// (an indexed column, or each check scans the table).
pub struct Written<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub keys: Keys<'a>,
}

/// Values of a `Written` column.
pub enum Keys<'a> {
    Ids(&'a [Id]),
    Texts(&'a [String]),
}

impl Keys<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Keys::Ids(v) => v.is_empty(),
            Keys::Texts(v) => v.is_empty(),
        }
    }
}

#[derive(QueryableByName)]
struct Allowed {
    #[diesel(sql_type = Bool)]
    allowed: bool,
}

/// The foreign keys of `tables` when this session may skip the triggers,
/// `None` when it may not (the loader then inserts with them, slower).
pub fn foreign_keys(
    conn: &mut PgConnection,
    tables: &[&str],
) -> QueryResult<Option<Vec<ForeignKey>>> {
    // has_parameter_privilege exists from PostgreSQL 15 on
    let allowed: Allowed =
        diesel::sql_query("SELECT current_setting('is_superuser') = 'on' AS allowed")
            .get_result(conn)?;
    let allowed = allowed.allowed || {
        let version: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
            "current_setting('server_version_num')::bigint",
        ))
        .get_result(conn)?;
        version >= 150_000
            && diesel::sql_query(
                "SELECT has_parameter_privilege('session_replication_role', 'SET') AS allowed",
            )
            .get_result::<Allowed>(conn)?
            .allowed
    };
    if !allowed {
        return Ok(None);
    }
    let tables: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
    diesel::sql_query(
        "SELECT c.conname::text AS name, c.conrelid::regclass::text AS child, \
                ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i) \
                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns, \
                c.confrelid::regclass::text AS parent, \
                ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i) \
                      JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) AS parent_columns \
         FROM pg_constraint c \
         WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY($1) \
         ORDER BY 2, 1",
    )
    .bind::<Array<Text>, _>(&tables)
    .load(conn)
    .map(Some)
}

/// Runs `write` with the foreign-key triggers off (for this transaction's
/// statements inside it only: call it inside a transaction), then checks
/// `keys` over `written`, which must name every table `keys` were loaded
/// for. On SQLite it just writes.
pub fn write<T>(
    conn: &mut DbConn,
    keys: &[ForeignKey],
    written: &[Written],
    write: impl FnOnce(&mut DbConn) -> QueryResult<T>,
) -> QueryResult<T> {
    if !matches!(conn, DbConn::Pg(_)) {
        return write(conn);
    }
    conn.batch_execute("SET LOCAL session_replication_role = replica")?;
    // a failed write has aborted the transaction, which takes the setting
    // with it: its own error is the one to report
    let value = write(conn)?;
    conn.batch_execute("SET LOCAL session_replication_role = origin")?;
    if let DbConn::Pg(c) = conn {
        check(c, keys, written)?;
    }
    Ok(value)
}

#[derive(QueryableByName)]
struct Dangling {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn quoted(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// How many rows of `w` break any of `keys` (all of `w`'s table).
fn dangling(conn: &mut PgConnection, w: &Written, keys: &[&ForeignKey]) -> QueryResult<i64> {
    let broken: Vec<String> = keys
        .iter()
        .map(|key| {
            let present: Vec<String> = key
                .columns
                .iter()
                .map(|c| format!("c.{} IS NOT NULL", quoted(c)))
                .collect();
            let joined: Vec<String> = key
                .columns
                .iter()
                .zip(&key.parent_columns)
                .map(|(c, p)| format!("p.{} = c.{}", quoted(p), quoted(c)))
                .collect();
            format!(
                "({present} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {joined}))",
                present = present.join(" AND "),
                parent = quoted(&key.parent),
                joined = joined.join(" AND "),
            )
        })
        .collect();
    let sql = format!(
        "SELECT count(*) AS n FROM {child} c WHERE c.{column} = ANY($1) AND ({broken})",
        child = quoted(w.table),
        column = quoted(w.column),
        broken = broken.join(" OR "),
    );
    let query = diesel::sql_query(sql);
    let found: Dangling = match w.keys {
        Keys::Ids(ids) => query.bind::<Array<DbUuid>, _>(ids).get_result(conn)?,
        Keys::Texts(texts) => query.bind::<Array<Text>, _>(texts).get_result(conn)?,
    };
    Ok(found.n)
}

/// Fails when a row of `written` references a row that does not exist.
pub fn check(conn: &mut PgConnection, keys: &[ForeignKey], written: &[Written]) -> QueryResult<()> {
    if let Some(k) = keys
        .iter()
        .find(|k| !written.iter().any(|w| w.table == k.child))
    {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("rows written to {} are not named for checking", k.child).into(),
        ));
    }
    for w in written.iter().filter(|w| !w.keys.is_empty()) {
        let table_keys: Vec<&ForeignKey> = keys.iter().filter(|k| k.child == w.table).collect();
        if table_keys.is_empty() {
            continue;
        }
        // one pass over the batch's rows for all the table's keys; only when
        // it finds something is each key counted alone, to name it
        if dangling(conn, w, &table_keys)? == 0 {
            continue;
        }
        for key in table_keys {
            let n = dangling(conn, w, &[key])?;
            if n > 0 {
                return Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                    Box::new(format!(
                        "{n} rows of {} break foreign key {}",
                        key.child, key.name
                    )),
                ));
            }
        }
    }
    Ok(())
}
