//! Bringing a database up to date: the schema, the reference data, the
//! attention-type catalogue's seed, and any index an interrupted import set
//! aside. Idempotent; `serve`, `migrate` and the tests call it.

use crate::db::{self, DbConn};
use crate::models::seed;

/// Applies pending migrations, then loads what is missing of the reference
/// data and the catalogue. Returns the names of the migrations applied.
pub fn migrate(conn: &mut DbConn) -> anyhow::Result<Vec<String>> {
    let applied = db::apply_migrations(conn)?;
    seed::load_reference_data(conn)?;
    db::write_tx::<_, anyhow::Error, _>(conn, |conn| {
        super::catalogue::load_seed(conn)
            .map_err(|e| e.context("loading the attention-type catalogue"))
    })?;
    if applied.iter().any(|v| v.ends_with("000015")) {
        seed::record_english_cities(conn)?;
    }
    // an import killed while it had set indexes aside
    let rebuilt = db::bulk::indexes::restore(conn)?;
    if rebuilt > 0 {
        tracing::warn!(
            rebuilt,
            "rebuilt indexes an interrupted import had set aside"
        );
    }
    Ok(applied)
}
