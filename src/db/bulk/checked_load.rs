//! Bulk loads with foreign keys checked per batch instead of per row.
//!
//! On PostgreSQL a foreign key's trigger runs one `SELECT … FOR KEY SHARE`
//! per inserted row through SPI, each with its own executor start-up: in a
//! 200 000-row legacy import it was 75 % of the server's time (`perf`).
//! Where the session may set `session_replication_role` (a superuser, or
//! since PostgreSQL 15 a role granted `SET` on it), a loader writes its rows
//! with that role set to `replica` for the statement block, which skips
//! those triggers, then checks every foreign key of every table it wrote, in
//! the same transaction: a dangling reference fails the batch, which rolls
//! back, as the triggers would have. The keys come from `pg_constraint`, so
//! a key added by a later migration is covered without changing this code:
//! the loader must give the values of every key column it wrote, or the
//! batch is refused.
//!
//! On SQLite each inserted row probes the parent's index once per key
//! (about twenty probes per legacy row, most into `persons` and `cases`,
//! which outgrow the page cache): the loading connection turns enforcement
//! off outside its transactions (`enforce`; SQLite ignores the pragma inside
//! one) and checks the same way, with the keys read from
//! `pragma_foreign_key_list`. Enforcement is turned back on, and verified,
//! before the connection does anything else.
//!
//! The loader gives those values from the rows it holds in memory; the
//! check looks each distinct value up once in its parent (one query per
//! parent column, all keys onto it together): a batch of 5 000 legacy rows
//! references about 15 000 distinct parents, where its ~40 000 written
//! rows carried some 150 000 references (reading the written rows back and
//! probing each reference was half of a million-row import's time).
//!
//! (The schema has no triggers of its own; `replica` only silences the
//! foreign-key ones. Nothing deletes persons, cases or consulates, so the
//! row locks the triggers would take protect nothing here.)

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel::{PgConnection, SqliteConnection};

use crate::db::types::DbUuid;
use crate::db::{DbConn, Id};

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

/// The distinct non-null values a batch wrote to one column of a table.
pub struct Written {
    pub table: &'static str,
    pub column: &'static str,
    pub values: Values,
}

/// The values of a `Written` column, sorted and without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    Ids(Vec<Id>),
    Texts(Vec<String>),
}

impl Values {
    /// The distinct ids among `values`.
    pub fn ids(values: impl IntoIterator<Item = Id>) -> Values {
        let mut v: Vec<Id> = values.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Values::Ids(v)
    }

    /// The distinct ids among `values`, NULLs left out (they reference
    /// nothing).
    pub fn some_ids(values: impl IntoIterator<Item = Option<Id>>) -> Values {
        Values::ids(values.into_iter().flatten())
    }

    /// The distinct texts among `values`.
    pub fn texts<'a>(values: impl IntoIterator<Item = &'a str>) -> Values {
        let mut v: Vec<String> = values.into_iter().map(str::to_owned).collect();
        v.sort_unstable();
        v.dedup();
        Values::Texts(v)
    }

    fn len(&self) -> usize {
        match self {
            Values::Ids(v) => v.len(),
            Values::Texts(v) => v.len(),
        }
    }

    /// `self` and `other` together (same kind), still distinct; `None`
    /// when the kinds differ.
    fn union(&self, other: &Values) -> Option<Values> {
        match (self, other) {
            (Values::Ids(a), Values::Ids(b)) => Some(Values::ids(a.iter().chain(b).copied())),
            (Values::Texts(a), Values::Texts(b)) => {
                Some(Values::texts(a.iter().chain(b).map(String::as_str)))
            }
            _ => None,
        }
    }
}

#[derive(QueryableByName)]
struct Allowed {
    #[diesel(sql_type = Bool)]
    allowed: bool,
}

/// The foreign keys of `tables` when they may be checked per batch: on
/// PostgreSQL when this session may skip the triggers (`None` when it may
/// not: the loader then inserts with them, slower), on SQLite always.
pub fn foreign_keys(conn: &mut DbConn, tables: &[&str]) -> QueryResult<Option<Vec<ForeignKey>>> {
    match conn {
        DbConn::Pg(c) => pg_foreign_keys(c, tables),
        DbConn::Sqlite(c) => sqlite_foreign_keys(c, tables).map(Some),
    }
}

fn pg_foreign_keys(
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

#[derive(QueryableByName)]
struct SqliteKeyColumn {
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Text)]
    column: String,
    #[diesel(sql_type = Nullable<Text>)]
    parent_column: Option<String>,
}

#[derive(QueryableByName)]
struct ColumnName {
    #[diesel(sql_type = Text)]
    name: String,
}

fn json_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::Value::from(texts.into_iter().collect::<Vec<_>>()).to_string()
}

/// SQLite's foreign keys of `tables` (one row per column; a key that names
/// no parent column references the parent's primary key).
fn sqlite_foreign_keys(
    conn: &mut SqliteConnection,
    tables: &[&str],
) -> QueryResult<Vec<ForeignKey>> {
    let rows: Vec<SqliteKeyColumn> = diesel::sql_query(
        "SELECT m.name AS child, f.id AS id, f.\"table\" AS parent, \
                f.\"from\" AS \"column\", f.\"to\" AS parent_column \
         FROM sqlite_master m, pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND m.name IN (SELECT value FROM json_each(?)) \
         ORDER BY m.name, f.id, f.seq",
    )
    .bind::<Text, _>(json_texts(tables.iter().copied()))
    .load(conn)?;
    let mut keys: Vec<(i64, ForeignKey)> = Vec::new();
    for row in rows {
        let parent_column = match row.parent_column {
            Some(c) => c,
            None => {
                let pk: Vec<ColumnName> = diesel::sql_query(
                    "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk",
                )
                .bind::<Text, _>(&row.parent)
                .load(conn)?;
                match pk.as_slice() {
                    [one] => one.name.clone(),
                    _ => {
                        return Err(refused(format!(
                            "{}.{} references {} without naming a column, and its primary key \
                             is not one column",
                            row.child, row.column, row.parent
                        )))
                    }
                }
            }
        };
        match keys.last_mut() {
            Some((id, key)) if *id == row.id && key.child == row.child => {
                key.columns.push(row.column);
                key.parent_columns.push(parent_column);
            }
            _ => keys.push((
                row.id,
                ForeignKey {
                    name: format!("{}.{} -> {}", row.child, row.column, row.parent),
                    child: row.child,
                    columns: vec![row.column],
                    parent: row.parent,
                    parent_columns: vec![parent_column],
                },
            )),
        }
    }
    Ok(keys.into_iter().map(|(_, k)| k).collect())
}

/// SQLite: turns the connection's per-row foreign-key enforcement off (for
/// a loader that checks per batch with `write`) or back on, outside any
/// transaction. Turning it on is verified, as the connection may go back
/// to a pool. PostgreSQL: nothing (its loader switches per transaction).
pub fn enforce(conn: &mut DbConn, on: bool) -> QueryResult<()> {
    let DbConn::Sqlite(c) = conn else {
        return Ok(());
    };
    c.batch_execute(if on {
        "PRAGMA foreign_keys = ON"
    } else {
        "PRAGMA foreign_keys = OFF"
    })?;
    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = BigInt)]
        foreign_keys: i64,
    }
    let state: State = diesel::sql_query("PRAGMA foreign_keys").get_result(c)?;
    if on && state.foreign_keys != 1 {
        return Err(refused(
            "foreign-key enforcement could not be turned back on (inside a transaction?)".into(),
        ));
    }
    Ok(())
}

/// Runs `write`, then checks `keys` against `written`, which must give
/// every key column of every table `keys` were loaded for; call it inside
/// a transaction. On PostgreSQL the foreign-key triggers are off for the
/// statements of `write` only; on SQLite the caller has turned enforcement
/// off for the connection (`enforce`).
pub fn write<T>(
    conn: &mut DbConn,
    keys: &[ForeignKey],
    written: &[Written],
    write: impl FnOnce(&mut DbConn) -> QueryResult<T>,
) -> QueryResult<T> {
    let pg = matches!(conn, DbConn::Pg(_));
    if pg {
        conn.batch_execute("SET LOCAL session_replication_role = replica")?;
    }
    // a failed write has aborted the transaction, which takes the setting
    // with it: its own error is the one to report
    let value = write(conn)?;
    if pg {
        conn.batch_execute("SET LOCAL session_replication_role = origin")?;
    }
    check(conn, keys, written)?;
    Ok(value)
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn quoted(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn refused(message: String) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(message.into())
}

/// How many of `values` are present in `parent.column` (a key's parent
/// column is unique, so each is counted at most once).
fn present(conn: &mut DbConn, parent: &str, column: &str, values: &Values) -> QueryResult<usize> {
    let found: Found = match conn {
        DbConn::Pg(c) => {
            let query = diesel::sql_query(format!(
                "SELECT count(*) AS n FROM {} WHERE {} = ANY($1)",
                quoted(parent),
                quoted(column)
            ));
            match values {
                Values::Ids(v) => query.bind::<Array<DbUuid>, _>(v).get_result(c)?,
                Values::Texts(v) => query.bind::<Array<Text>, _>(v).get_result(c)?,
            }
        }
        DbConn::Sqlite(c) => {
            // ids are stored as their hyphenated text (`db::types`)
            let json = match values {
                Values::Ids(v) => {
                    let texts: Vec<String> = v.iter().map(Id::to_string).collect();
                    json_texts(texts.iter().map(String::as_str))
                }
                Values::Texts(v) => json_texts(v.iter().map(String::as_str)),
            };
            diesel::sql_query(format!(
                "SELECT count(*) AS n FROM {} WHERE {} IN (SELECT value FROM json_each(?))",
                quoted(parent),
                quoted(column)
            ))
            .bind::<Text, _>(json)
            .get_result(c)?
        }
    };
    Ok(usize::try_from(found.n).unwrap_or(0))
}

/// Fails when a value of `written` has no row in the parent its key names.
/// Every column of `keys` must be in `written`, or the batch is refused
/// (a key this loader does not know about could otherwise go unchecked).
pub fn check(conn: &mut DbConn, keys: &[ForeignKey], written: &[Written]) -> QueryResult<()> {
    // each key with the values written to its column
    let mut checked: Vec<(&ForeignKey, &Values)> = Vec::with_capacity(keys.len());
    for key in keys {
        let [column] = key.columns.as_slice() else {
            return Err(refused(format!(
                "foreign key {} has several columns, which per-value checks do not cover",
                key.name
            )));
        };
        let Some(w) = written
            .iter()
            .find(|w| w.table == key.child && w.column == column)
        else {
            return Err(refused(format!(
                "the values written to {}.{column} are not given for checking",
                key.child
            )));
        };
        checked.push((key, &w.values));
    }
    // one lookup per parent column, for all the keys onto it
    let mut parents: Vec<(&str, &str, Values)> = Vec::new();
    for (key, values) in &checked {
        let (parent, column) = (key.parent.as_str(), key.parent_columns[0].as_str());
        match parents
            .iter_mut()
            .find(|(p, c, _)| *p == parent && *c == column)
        {
            Some((_, _, all)) => {
                *all = all
                    .union(values)
                    .ok_or_else(|| refused(format!("{}: ids and texts in one column", key.name)))?;
            }
            None => parents.push((parent, column, (*values).clone())),
        }
    }
    for (parent, column, values) in &parents {
        if values.len() == 0 || present(conn, parent, column, values)? == values.len() {
            continue;
        }
        // something is missing: find which key, to name it
        for (key, values) in checked.iter().filter(|(k, _)| k.parent == *parent) {
            let found = present(conn, parent, column, values)?;
            if found < values.len() {
                return Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                    Box::new(format!(
                        "{} values written to {}.{} have no row in {parent} (foreign key {})",
                        values.len() - found,
                        key.child,
                        key.columns[0],
                        key.name
                    )),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_distinct_and_merge_by_kind() {
        let (a, b) = (Id::new(), Id::new());
        assert_eq!(Values::ids([a, b, a]).len(), 2);
        assert_eq!(Values::some_ids([None, Some(a), None]), Values::ids([a]));
        let t = Values::texts(["PE", "AR", "PE"]);
        assert_eq!(t, Values::Texts(vec!["AR".into(), "PE".into()]));
        assert_eq!(
            Values::ids([a]).union(&Values::ids([b, a])),
            Some(Values::ids([a, b]))
        );
        assert_eq!(Values::ids([a]).union(&t), None);
    }
}
