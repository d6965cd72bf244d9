//! Multi-row inserts for generated or imported populations (demo data, the
//! legacy import): persons, their match keys, cases, attentions and timeline
//! events, parents before children (`COPY` on PostgreSQL, multi-row inserts
//! on SQLite; see [`crate::bulk_insert!`]).

use diesel::prelude::*;

use crate::bulk_insert;
use crate::db::schema::{
    attentions as at, cases as ct, person_match_keys as mk, persons as pt, timeline_events as te,
};
use crate::db::{DbConn, Id};
use crate::models::cases::{Attention, Case};
use crate::models::persons::{Person, TimelineEvent};

/// Inserts the rows as given; the caller owns the transaction.
pub fn insert_population(
    conn: &mut DbConn,
    persons: &[Person],
    keys: &[(Id, String)],
    cases: &[Case],
    attentions: &[Attention],
    events: &[TimelineEvent],
) -> QueryResult<()> {
    bulk_insert!(conn, pt::table, persons, 100)?;
    let key_rows: Vec<_> = keys
        .iter()
        .map(|(p, k)| (mk::person_id.eq(*p), mk::match_key.eq(k.clone())))
        .collect();
    bulk_insert!(conn, mk::table, &key_rows, 500)?;
    bulk_insert!(conn, ct::table, cases, 100)?;
    bulk_insert!(conn, at::table, attentions, 100)?;
    bulk_insert!(conn, te::table, events, 200)?;
    Ok(())
}
