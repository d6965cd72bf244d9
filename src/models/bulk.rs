//! Multi-row inserts for generated or imported populations (demo data, the
//! legacy import): persons, their match keys, cases, attentions and timeline
//! events, in chunks under both backends' bind-parameter limits, parents
//! before children.

use diesel::prelude::*;

use crate::db::schema::{
    attentions as at, cases as ct, person_match_keys as mk, persons as pt, timeline_events as te,
};
use crate::db::{DbConn, Id};
use crate::models::cases::{Attention, Case};
use crate::models::persons::{Person, TimelineEvent};
use crate::per_backend;

/// Inserts the rows as given; the caller owns the transaction.
pub fn insert_population(
    conn: &mut DbConn,
    persons: &[Person],
    keys: &[(Id, String)],
    cases: &[Case],
    attentions: &[Attention],
    events: &[TimelineEvent],
) -> QueryResult<()> {
    for chunk in persons.chunks(1000) {
        per_backend!(conn, |c| diesel::insert_into(pt::table)
            .values(chunk)
            .execute(c))?;
    }
    let key_rows: Vec<_> = keys
        .iter()
        .map(|(p, k)| (mk::person_id.eq(*p), mk::match_key.eq(k.as_str())))
        .collect();
    for chunk in key_rows.chunks(5000) {
        per_backend!(conn, |c| diesel::insert_into(mk::table)
            .values(chunk)
            .execute(c))?;
    }
    for chunk in cases.chunks(1000) {
        per_backend!(conn, |c| diesel::insert_into(ct::table)
            .values(chunk)
            .execute(c))?;
    }
    for chunk in attentions.chunks(1000) {
        per_backend!(conn, |c| diesel::insert_into(at::table)
            .values(chunk)
            .execute(c))?;
    }
    for chunk in events.chunks(2000) {
        per_backend!(conn, |c| diesel::insert_into(te::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}
