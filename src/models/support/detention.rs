//! Detention records with their visits and hearings, and the follow-up
//! tasks they schedule.

use super::*;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = detentions)]
#[diesel(treat_none_as_null = true)]
pub struct Detention {
    pub id: Id,
    pub case_id: Id,
    pub person_id: Id,
    pub consulate_id: Id,
    pub place: String,
    pub place_city: Option<String>,
    pub arrested_on: NaiveDate,
    pub notified_at: Ts,
    pub first_contact_at: Option<Ts>,
    pub legal_situation: String,
    pub charges: Option<String>,
    pub lawyer_kind: String,
    pub lawyer_name: Option<String>,
    pub lawyer_contact: Option<String>,
    pub next_visit_due: Option<NaiveDate>,
    pub next_visit_task_id: Option<Id>,
    pub last_visit_at: Option<Ts>,
    pub released_on: Option<NaiveDate>,
    pub version: i32,
    pub created_by: Option<Id>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = detention_visits)]
pub struct Visit {
    pub id: Id,
    pub detention_id: Id,
    pub visited_at: Ts,
    pub kind: String,
    pub visitor_id: Option<Id>,
    pub notes: Option<String>,
    pub created_at: Ts,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = detention_hearings)]
pub struct Hearing {
    pub id: Id,
    pub detention_id: Id,
    pub held_on: NaiveDate,
    pub court: String,
    pub outcome: String,
    pub next_hearing_on: Option<NaiveDate>,
    pub notes: Option<String>,
    pub recorded_by: Option<Id>,
    pub created_at: Ts,
}

pub fn insert_detention(conn: &mut DbConn, d: &Detention) -> QueryResult<()> {
    diesel::insert_into(detentions::table)
        .values(d)
        .execute(conn)
        .map(|_| ())
}

pub fn detention_of_case(conn: &mut DbConn, case: Id) -> QueryResult<Option<Detention>> {
    detentions::table
        .filter(detentions::case_id.eq(case))
        .select(Detention::as_select())
        .first(conn)
        .optional()
}

pub fn update_detention(
    conn: &mut DbConn,
    d: &Detention,
    expected_version: i32,
) -> QueryResult<bool> {
    let n = diesel::update(
        detentions::table
            .filter(detentions::id.eq(d.id))
            .filter(detentions::version.eq(expected_version)),
    )
    .set(d)
    .execute(conn)?;
    Ok(n == 1)
}

pub fn insert_visit(conn: &mut DbConn, v: &Visit) -> QueryResult<()> {
    diesel::insert_into(detention_visits::table)
        .values(v)
        .execute(conn)
        .map(|_| ())
}

pub fn insert_hearing(conn: &mut DbConn, h: &Hearing) -> QueryResult<()> {
    diesel::insert_into(detention_hearings::table)
        .values(h)
        .execute(conn)
        .map(|_| ())
}

pub fn visits_of(conn: &mut DbConn, detention: Id) -> QueryResult<Vec<Visit>> {
    detention_visits::table
        .filter(detention_visits::detention_id.eq(detention))
        .order(detention_visits::visited_at)
        .select(Visit::as_select())
        .load(conn)
}

pub fn hearings_of(conn: &mut DbConn, detention: Id) -> QueryResult<Vec<Hearing>> {
    detention_hearings::table
        .filter(detention_hearings::detention_id.eq(detention))
        .order(detention_hearings::held_on)
        .select(Hearing::as_select())
        .load(conn)
}

/// Detainees of a consulate (or all), oldest last visit first.
pub fn list_detentions(
    conn: &mut DbConn,
    consulate: Option<Id>,
    include_released: bool,
    window: Window,
) -> QueryResult<(Vec<Detention>, i64)> {
    let build = || {
        let mut q = detentions::table.into_boxed::<MultiBackend>();
        if let Some(c) = consulate {
            q = q.filter(detentions::consulate_id.eq(c));
        }
        if !include_released {
            q = q.filter(detentions::released_on.is_null());
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((
            detentions::last_visit_at.is_not_null(),
            detentions::last_visit_at,
            detentions::notified_at,
        ))
        .limit(window.limit)
        .offset(window.offset)
        .select(Detention::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Moves a task's deadline (the next visit moved).
pub fn reschedule_task(conn: &mut DbConn, task: Id, due: Ts) -> QueryResult<bool> {
    let n = diesel::update(
        tasks::table
            .filter(tasks::id.eq(task))
            .filter(tasks::done_at.is_null()),
    )
    .set(tasks::due_at.eq(due))
    .execute(conn)?;
    Ok(n == 1)
}
