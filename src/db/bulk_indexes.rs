//! Secondary indexes a large import sets aside while it writes and rebuilds
//! at the end.
//!
//! Each legacy row becomes about twenty index entries, most of them at
//! random places (by date, by name, by person); once the indexes outgrow the
//! page cache every entry costs a page read and a page write. Building an
//! index after the rows are in sorts once and writes each page once, which
//! more than halves an initial load. Only non-unique indexes that the import
//! itself never reads are set aside; the unique ones (documents,
//! fingerprints, legacy cases, primary keys) stay, so nothing the import
//! checks goes unchecked.
//!
//! The definitions below are the migrations' own (a test compares them with
//! what the migrations created, on both backends). `restore` is idempotent
//! and runs after every migration pass too, so an import killed while its
//! indexes were aside loses no index: the next start rebuilds them.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::DbConn;
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
    ("cases_person_idx", "cases (person_id)"),
    ("person_match_keys_key_idx", "person_match_keys (match_key)"),
    ("legacy_rows_import_idx", "legacy_rows (import_id, line)"),
];

/// Drops the deferrable indexes (one transaction).
pub fn set_aside(conn: &mut DbConn) -> QueryResult<()> {
    let sql: String = DEFERRABLE
        .iter()
        .map(|(name, _)| format!("DROP INDEX IF EXISTS {name};\n"))
        .collect();
    super::write_tx(conn, |conn| per_backend!(conn, |c| c.batch_execute(&sql)))
}

/// The deferrable indexes the database lacks.
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
        .map(|(name, _)| *name)
        .filter(|name| !present.iter().any(|p| p.name == *name))
        .collect())
}

/// Creates whichever deferrable index is missing; returns how many.
pub fn restore(conn: &mut DbConn) -> QueryResult<usize> {
    let missing = missing(conn)?;
    if missing.is_empty() {
        return Ok(0);
    }
    let sql: String = DEFERRABLE
        .iter()
        .filter(|(name, _)| missing.contains(name))
        .map(|(name, on)| format!("CREATE INDEX IF NOT EXISTS {name} ON {on};\n"))
        .collect();
    super::write_tx(conn, |conn| per_backend!(conn, |c| c.batch_execute(&sql)))?;
    Ok(missing.len())
}
