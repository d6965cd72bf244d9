//! OEI.05 targets and closed-year snapshots.

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::db::schema::{
    attentions, oei05_snapshot_persons, oei05_snapshots, oei05_targets, person_merges,
};
use crate::db::{DbConn, Id, Ts};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = oei05_targets)]
#[diesel(treat_none_as_null = true)]
pub struct Target {
    pub year: i32,
    pub target: i64,
    pub sense: String,
    pub note: Option<String>,
    pub set_by: Option<Id>,
    pub set_at: Ts,
}

pub fn find_target(conn: &mut DbConn, year: i32) -> QueryResult<Option<Target>> {
    oei05_targets::table
        .find(year)
        .select(Target::as_select())
        .first(conn)
        .optional()
}

pub fn targets_between(conn: &mut DbConn, from: i32, to: i32) -> QueryResult<Vec<Target>> {
    oei05_targets::table
        .filter(oei05_targets::year.between(from, to))
        .select(Target::as_select())
        .load(conn)
}

/// Inserts or replaces a year's target; returns the previous one.
pub fn put_target(conn: &mut DbConn, t: &Target) -> QueryResult<Option<Target>> {
    let previous = find_target(conn, t.year)?;
    if previous.is_some() {
        diesel::update(oei05_targets::table.find(t.year))
            .set(t)
            .execute(conn)?;
    } else {
        diesel::insert_into(oei05_targets::table)
            .values(t)
            .execute(conn)?;
    }
    Ok(previous)
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = oei05_snapshots)]
pub struct Snapshot {
    pub id: Id,
    pub year: i32,
    pub figures: String,
    pub persons: i64,
    pub attentions: i64,
    pub closed_at: Ts,
    pub closed_by: Option<Id>,
    pub reopened_at: Option<Ts>,
    pub reopened_by: Option<Id>,
    pub reopen_reason: Option<String>,
}

/// The live (not reopened) snapshot of a year.
pub fn live_snapshot(conn: &mut DbConn, year: i32) -> QueryResult<Option<Snapshot>> {
    oei05_snapshots::table
        .filter(oei05_snapshots::year.eq(year))
        .filter(oei05_snapshots::reopened_at.is_null())
        .select(Snapshot::as_select())
        .first(conn)
        .optional()
}

/// Years between `from` and `to` that are closed, with their person counts.
pub fn closed_years(conn: &mut DbConn, from: i32, to: i32) -> QueryResult<Vec<(i32, i64)>> {
    oei05_snapshots::table
        .filter(oei05_snapshots::year.between(from, to))
        .filter(oei05_snapshots::reopened_at.is_null())
        .select((oei05_snapshots::year, oei05_snapshots::persons))
        .load(conn)
}

pub fn insert_snapshot(
    conn: &mut DbConn,
    s: &Snapshot,
    persons: &[(Id, String)],
) -> QueryResult<()> {
    diesel::insert_into(oei05_snapshots::table)
        .values(s)
        .execute(conn)?;
    for chunk in persons.chunks(1000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(p, g)| {
                (
                    oei05_snapshot_persons::snapshot_id.eq(s.id),
                    oei05_snapshot_persons::person_id.eq(*p),
                    oei05_snapshot_persons::groups.eq(g.clone()),
                )
            })
            .collect();
        crate::per_backend!(conn, |c| diesel::insert_into(oei05_snapshot_persons::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

pub fn snapshot_persons(conn: &mut DbConn, snapshot: Id) -> QueryResult<Vec<(Id, String)>> {
    oei05_snapshot_persons::table
        .filter(oei05_snapshot_persons::snapshot_id.eq(snapshot))
        .select((
            oei05_snapshot_persons::person_id,
            oei05_snapshot_persons::groups,
        ))
        .load(conn)
}

pub fn reopen_snapshot(conn: &mut DbConn, id: Id, by: Id, reason: &str) -> QueryResult<bool> {
    let n = diesel::update(
        oei05_snapshots::table
            .filter(oei05_snapshots::id.eq(id))
            .filter(oei05_snapshots::reopened_at.is_null()),
    )
    .set((
        oei05_snapshots::reopened_at.eq(Some(Ts::now())),
        oei05_snapshots::reopened_by.eq(Some(by)),
        oei05_snapshots::reopen_reason.eq(Some(reason.to_owned())),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Distinct persons with a non-voided attention between two days (inclusive).
pub fn persons_between(conn: &mut DbConn, from: NaiveDate, to: NaiveDate) -> QueryResult<i64> {
    attentions::table
        .filter(attentions::attended_on.ge(from))
        .filter(attentions::attended_on.le(to))
        .filter(attentions::voided_at.is_null())
        .select(diesel::dsl::count(attentions::person_id).aggregate_distinct())
        .first(conn)
}

/// A merge that can explain drift.
#[derive(Debug, Clone, Queryable)]
pub struct MergeRow {
    pub id: Id,
    pub merged_id: Id,
    pub at: Ts,
    pub undone_at: Option<Ts>,
}

/// Merges that folded one of `persons` into another record, or were undone.
pub fn merges_touching(conn: &mut DbConn, persons: &[Id]) -> QueryResult<Vec<MergeRow>> {
    let mut out = Vec::new();
    for chunk in persons.chunks(500) {
        out.extend(
            person_merges::table
                .filter(person_merges::merged_id.eq_any(chunk.to_vec()))
                .select((
                    person_merges::id,
                    person_merges::merged_id,
                    person_merges::at,
                    person_merges::undone_at,
                ))
                .load::<MergeRow>(conn)?,
        );
    }
    Ok(out)
}
