//! Repatriations and their steps.

use super::*;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = repatriations)]
#[diesel(treat_none_as_null = true)]
pub struct Repatriation {
    pub id: Id,
    pub case_id: Id,
    pub person_id: Id,
    pub consulate_id: Id,
    pub kind: String,
    pub status: String,
    pub destination: String,
    pub planned_on: Option<NaiveDate>,
    pub return_date: Option<NaiveDate>,
    pub migrant_card_issued: bool,
    pub migrant_card_issued_on: Option<NaiveDate>,
    pub notes: Option<String>,
    pub version: i32,
    pub created_by: Option<Id>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = repatriation_steps)]
#[diesel(treat_none_as_null = true)]
pub struct RepatriationStep {
    pub id: Id,
    pub repatriation_id: Id,
    pub step: String,
    pub position: i32,
    pub status: String,
    pub done_on: Option<NaiveDate>,
    pub notes: Option<String>,
    pub decided_by: Option<Id>,
    pub decided_at: Option<Ts>,
}

pub fn insert_repatriation(
    conn: &mut DbConn,
    r: &Repatriation,
    steps: &[RepatriationStep],
) -> QueryResult<()> {
    diesel::insert_into(repatriations::table)
        .values(r)
        .execute(conn)?;
    for s in steps {
        diesel::insert_into(repatriation_steps::table)
            .values(s)
            .execute(conn)?;
    }
    Ok(())
}

pub fn find_repatriation(conn: &mut DbConn, id: Id) -> QueryResult<Option<Repatriation>> {
    repatriations::table
        .find(id)
        .select(Repatriation::as_select())
        .first(conn)
        .optional()
}

pub fn update_repatriation(
    conn: &mut DbConn,
    r: &Repatriation,
    expected_version: i32,
) -> QueryResult<bool> {
    let n = diesel::update(
        repatriations::table
            .filter(repatriations::id.eq(r.id))
            .filter(repatriations::version.eq(expected_version)),
    )
    .set(r)
    .execute(conn)?;
    Ok(n == 1)
}

pub fn repatriations_of_case(conn: &mut DbConn, case: Id) -> QueryResult<Vec<Repatriation>> {
    repatriations::table
        .filter(repatriations::case_id.eq(case))
        .order(repatriations::created_at)
        .select(Repatriation::as_select())
        .load(conn)
}

pub fn steps_of_repatriations(conn: &mut DbConn, ids: &[Id]) -> QueryResult<Vec<RepatriationStep>> {
    repatriation_steps::table
        .filter(repatriation_steps::repatriation_id.eq_any(ids.to_vec()))
        .order((
            repatriation_steps::repatriation_id,
            repatriation_steps::position,
        ))
        .select(RepatriationStep::as_select())
        .load(conn)
}

pub fn update_repatriation_step(conn: &mut DbConn, s: &RepatriationStep) -> QueryResult<()> {
    diesel::update(repatriation_steps::table.filter(repatriation_steps::id.eq(s.id)))
        .set(s)
        .execute(conn)
        .map(|_| ())
}
