//! Secondary indexes a large import sets aside while it writes and rebuilds
//! at the end.
//!
//! Each legacy row becomes about twenty index entries, most of them at
//! random places (by date, by name, by person); once the indexes outgrow the
//! page cache every entry costs a page read and a page write. Building an
//! index after the rows are in sorts once and writes each page once, which
//! more than halves an initial load. `DEFERRABLE` are the non-unique
//! indexes that the import itself never reads.
//!
//! `IMPORT_KEYS` are the import's own unique keys (a legacy row's
//! fingerprint, a legacy case's person, consulate, country and year), which
//! only imports write. On SQLite they were the biggest random-order indexes
//! of a million-row import (their inserts and the pages they dirtied were
//! about a third of its time), so there an import that is the only one
//! running sets them aside too (`set_keys_aside`, deciding in the same
//! write transaction as it drops them, so two imports cannot both do it)
//! and guarantees them itself meanwhile: it reads the existing keys into
//! memory first and never writes one twice. Any other import that starts
//! meanwhile rebuilds them before it writes (`restore`), so it is checked
//! by the index as before. Every other unique index (documents, primary
//! keys) always stays.
//!
//! The definitions below are the migrations' own (a test compares them with
//! what the migrations created, on both backends). `restore` is idempotent
//! and runs after every migration pass too, so an import killed while its
//! indexes were aside loses no index: the next start rebuilds them.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::db::DbConn;
use crate::per_backend;

/// (name, what it indexes) — identical on PostgreSQL and SQLite.
pub const DEFERRABLE: &[(&str, &str)] = &[
    (
        "attentions_oei05_idx",
        "attentions (attended_on, person_id, attention_type_id, consulate_id, country_code, channel, person_sex, person_birth_date, voided_at)",
    ),
    ("attentions_case_idx", "attentions (case_id)"),
    ("attentions_type_idx", "attentions (attention_type_id)"),
    ("attentions_person_idx", "attentions (person_id)"),
    ("timeline_events_person_idx", "timeline_events (person_id, at, id)"),
    ("timeline_events_case_idx", "timeline_events (case_id, at)"),
    ("cases_consulate_status_idx", "cases (consulate_id, status, opened_at)"),
    ("cases_person_idx", "cases (person_id, protected, consulate_id)"),
    ("person_match_keys_key_idx", "person_match_keys (match_key)"),
    ("legacy_rows_import_idx", "legacy_rows (import_id, line)"),
];

/// The import's own unique keys (name, what it indexes), identical on both
/// backends; set aside on SQLite only (`set_keys_aside`).
pub const IMPORT_KEYS: &[(&str, &str)] = &[
    ("legacy_rows_fingerprint_key", "legacy_rows (fingerprint)"),
    (
        "legacy_cases_key",
        "legacy_cases (person_id, consulate_id, country_code, year)",
    ),
];

/// On SQLite, drops `IMPORT_KEYS` for import `import_id` when no other
/// import is running or queued (decided in the dropping transaction, which
/// holds SQLite's write lock); true when it did. Elsewhere, or when another
/// import runs, false: the keys stay (and are rebuilt if another import had
/// set them aside, see `restore`). An import that never finished (killed)
/// and still says `running` keeps later imports from setting keys aside
/// until it is marked failed, which costs speed, never correctness.
pub fn set_keys_aside(conn: &mut DbConn, import_id: crate::db::Id) -> QueryResult<bool> {
    use crate::db::schema::imports;
    if !matches!(conn, DbConn::Sqlite(_)) {
        return Ok(false);
    }
    crate::db::write_tx(conn, |conn| {
        let others: i64 = imports::table
            .filter(imports::status.eq_any(["queued", "running"]))
            .filter(imports::id.ne(import_id))
            .count()
            .get_result(conn)?;
        if others > 0 {
            return Ok(false);
        }
        let sql: String = IMPORT_KEYS
            .iter()
            .map(|(name, _)| format!("DROP INDEX IF EXISTS {name};\n"))
            .collect();
        per_backend!(conn, |c| c.batch_execute(&sql))?;
        Ok(true)
    })
}

/// Drops the deferrable indexes (one transaction).
pub fn set_aside(conn: &mut DbConn) -> QueryResult<()> {
    let sql: String = DEFERRABLE
        .iter()
        .map(|(name, _)| format!("DROP INDEX IF EXISTS {name};\n"))
        .collect();
    crate::db::write_tx(conn, |conn| per_backend!(conn, |c| c.batch_execute(&sql)))
}

/// The deferrable indexes and import keys the database lacks.
pub fn missing(conn: &mut DbConn) -> QueryResult<Vec<&'static str>> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let present: Vec<Name> = match conn {
        DbConn::Pg(c) => diesel::sql_query(
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()",
        )
        .load(c)?,
        DbConn::Sqlite(c) => {
            diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'index'").load(c)?
        }
    };
    Ok(DEFERRABLE
        .iter()
        .chain(IMPORT_KEYS)
        .map(|(name, _)| *name)
        .filter(|name| !present.iter().any(|p| p.name == *name))
        .collect())
}

/// Creates whichever deferrable index or import key is missing; returns how
/// many.
pub fn restore(conn: &mut DbConn) -> QueryResult<usize> {
    create_missing(
        conn,
        &[("INDEX", DEFERRABLE), ("UNIQUE INDEX", IMPORT_KEYS)],
    )
}

/// Creates whichever import key is missing (another import set them aside,
/// or one was killed meanwhile); returns how many.
pub fn restore_keys(conn: &mut DbConn) -> QueryResult<usize> {
    create_missing(conn, &[("UNIQUE INDEX", IMPORT_KEYS)])
}

fn create_missing(conn: &mut DbConn, kinds: &[(&str, &[(&str, &str)])]) -> QueryResult<usize> {
    let missing = missing(conn)?;
    let sql: Vec<String> = kinds
        .iter()
        .flat_map(|(kind, list)| list.iter().map(move |d| (kind, d)))
        .filter(|(_, (name, _))| missing.contains(name))
        .map(|(kind, (name, on))| format!("CREATE {kind} IF NOT EXISTS {name} ON {on};\n"))
        .collect();
    // One transaction per index: each one's pages then reach the database
    // file before the next is built. All twelve of a million-row import in
    // one transaction took 17.3 s in the `sqlite3` shell, one by one 13.9 s
    // (the transaction's WAL grew to every index's pages and the cache
    // spilled into it). A failure between two leaves the rest missing,
    // which the next call (every migration pass, every import) creates.
    for statement in &sql {
        crate::db::write_tx(conn, |conn| {
            per_backend!(conn, |c| c.batch_execute(statement))
        })?;
    }
    Ok(sql.len())
}
