//! Cases, their attentions, protocol steps and tasks.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{attentions, case_steps, cases, tasks, timeline_events};
use crate::db::{DbConn, Id, MultiBackend, Ts};
use crate::models::reference::Window;

#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize,
)]
#[diesel(table_name = cases, treat_none_as_default_value = false)]
#[diesel(treat_none_as_null = true)]
pub struct Case {
    pub id: Id,
    pub person_id: Id,
    pub consulate_id: Id,
    pub country_code: String,
    pub city: Option<String>,
    pub channel: String,
    pub requester_kind: String,
    pub requester_name: Option<String>,
    pub requester_relationship: Option<String>,
    pub requester_contact: Option<String>,
    pub summary: String,
    pub flags: String,
    pub protected: bool,
    pub status: String,
    pub outcome: Option<String>,
    pub closed_at: Option<Ts>,
    pub assigned_officer_id: Option<Id>,
    pub opened_at: Ts,
    pub created_by: Option<Id>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = attentions, treat_none_as_default_value = false)]
pub struct Attention {
    pub id: Id,
    pub case_id: Id,
    pub person_id: Id,
    pub consulate_id: Id,
    pub attention_type_id: Id,
    pub attended_on: NaiveDate,
    pub channel: String,
    pub officer_id: Option<Id>,
    pub description: String,
    pub late_registration: bool,
    pub voided_at: Option<Ts>,
    pub voided_by: Option<Id>,
    pub void_reason: Option<String>,
    pub created_at: Ts,
    /// The case's country (copied, like person and consulate, for OEI.05).
    pub country_code: Option<String>,
    /// The person's sex and birth date, copied for OEI.05 and kept in step
    /// by `models::persons::sync_attention_copies`.
    pub person_sex: Option<String>,
    pub person_birth_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = case_steps)]
pub struct CaseStep {
    pub id: Id,
    pub case_id: Id,
    pub attention_type_id: Id,
    pub protocol_version_id: Id,
    pub position: i32,
    pub title_es: String,
    pub title_en: String,
    pub required_to_close: bool,
    pub due_at: Option<Ts>,
    pub status: String,
    pub done_at: Option<Ts>,
    pub waiver_reason: Option<String>,
    pub decided_by: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = tasks)]
pub struct Task {
    pub id: Id,
    pub case_id: Id,
    pub consulate_id: Id,
    pub title: String,
    pub assignee_id: Option<Id>,
    pub due_at: Option<Ts>,
    pub done_at: Option<Ts>,
    pub case_step_id: Option<Id>,
    pub created_by: Option<Id>,
    pub created_at: Ts,
}

pub fn find_case(conn: &mut DbConn, id: Id) -> QueryResult<Option<Case>> {
    cases::table
        .find(id)
        .select(Case::as_select())
        .first(conn)
        .optional()
}

pub fn insert_case(conn: &mut DbConn, c: &Case) -> QueryResult<()> {
    diesel::insert_into(cases::table)
        .values(c)
        .execute(conn)
        .map(|_| ())
}

/// Writes the case if it is still at `expected_version`.
pub fn update_case(conn: &mut DbConn, c: &Case, expected_version: i32) -> QueryResult<bool> {
    let n = diesel::update(
        cases::table
            .filter(cases::id.eq(c.id))
            .filter(cases::version.eq(expected_version)),
    )
    .set(c)
    .execute(conn)?;
    Ok(n == 1)
}

/// Keeps the attentions' copy of the case's country in step with the case.
pub fn set_attentions_country(conn: &mut DbConn, case: Id, country: &str) -> QueryResult<()> {
    diesel::update(attentions::table.filter(attentions::case_id.eq(case)))
        .set(attentions::country_code.eq(Some(country.to_owned())))
        .execute(conn)
        .map(|_| ())
}

pub fn attentions_of(conn: &mut DbConn, case_ids: &[Id]) -> QueryResult<Vec<Attention>> {
    if case_ids.is_empty() {
        return Ok(Vec::new());
    }
    attentions::table
        .filter(attentions::case_id.eq_any(case_ids.to_vec()))
        .order((attentions::attended_on, attentions::created_at))
        .select(Attention::as_select())
        .load(conn)
}

pub fn insert_attention(conn: &mut DbConn, a: &Attention) -> QueryResult<()> {
    diesel::insert_into(attentions::table)
        .values(a)
        .execute(conn)
        .map(|_| ())
}

pub fn find_attention(conn: &mut DbConn, id: Id) -> QueryResult<Option<Attention>> {
    attentions::table
        .find(id)
        .select(Attention::as_select())
        .first(conn)
        .optional()
}

pub fn void_attention(conn: &mut DbConn, id: Id, by: Id, reason: &str) -> QueryResult<bool> {
    let n = diesel::update(
        attentions::table
            .filter(attentions::id.eq(id))
            .filter(attentions::voided_at.is_null()),
    )
    .set((
        attentions::voided_at.eq(Ts::now()),
        attentions::voided_by.eq(by),
        attentions::void_reason.eq(reason),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn steps_of(conn: &mut DbConn, case_id: Id) -> QueryResult<Vec<CaseStep>> {
    case_steps::table
        .filter(case_steps::case_id.eq(case_id))
        .order((
            case_steps::due_at.is_null(),
            case_steps::due_at,
            case_steps::position,
        ))
        .select(CaseStep::as_select())
        .load(conn)
}

pub fn insert_step(conn: &mut DbConn, s: &CaseStep) -> QueryResult<()> {
    diesel::insert_into(case_steps::table)
        .values(s)
        .execute(conn)
        .map(|_| ())
}

pub fn decide_step(
    conn: &mut DbConn,
    id: Id,
    status: &str,
    reason: Option<&str>,
    by: Id,
) -> QueryResult<bool> {
    let n = diesel::update(
        case_steps::table
            .filter(case_steps::id.eq(id))
            .filter(case_steps::status.eq("pending")),
    )
    .set((
        case_steps::status.eq(status),
        case_steps::done_at.eq(Ts::now()),
        case_steps::waiver_reason.eq(reason),
        case_steps::decided_by.eq(by),
    ))
    .execute(conn)?;
    if n == 1 {
        diesel::update(
            tasks::table
                .filter(tasks::case_step_id.eq(id))
                .filter(tasks::done_at.is_null()),
        )
        .set(tasks::done_at.eq(Ts::now()))
        .execute(conn)?;
    }
    Ok(n == 1)
}

pub fn insert_task(conn: &mut DbConn, t: &Task) -> QueryResult<()> {
    diesel::insert_into(tasks::table)
        .values(t)
        .execute(conn)
        .map(|_| ())
}

/// Whether the person has or had a case at this consulate.
pub fn person_has_case_at(conn: &mut DbConn, person: Id, consulate: Id) -> QueryResult<bool> {
    let n: i64 = cases::table
        .filter(cases::person_id.eq(person))
        .filter(cases::consulate_id.eq(consulate))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The consulates of a person's protected cases (empty: not protected).
pub fn protecting_consulates(conn: &mut DbConn, person: Id) -> QueryResult<Vec<Id>> {
    cases::table
        .filter(cases::person_id.eq(person))
        .filter(cases::protected.eq(true))
        .select(cases::consulate_id)
        .distinct()
        .load(conn)
}

pub fn case_ids_of_person(conn: &mut DbConn, person: Id) -> QueryResult<Vec<Id>> {
    cases::table
        .filter(cases::person_id.eq(person))
        .select(cases::id)
        .load(conn)
}

/// Moves cases (and the person copies on their attentions, referrals,
/// payments, detentions and repatriations) to another person (person merges).
pub fn move_cases(conn: &mut DbConn, case_ids: &[Id], to: Id) -> QueryResult<()> {
    use crate::db::schema::{detentions, payments, referrals, repatriations};
    for chunk in case_ids.chunks(500) {
        let chunk = chunk.to_vec();
        diesel::update(cases::table.filter(cases::id.eq_any(chunk.clone())))
            .set(cases::person_id.eq(to))
            .execute(conn)?;
        diesel::update(attentions::table.filter(attentions::case_id.eq_any(chunk.clone())))
            .set(attentions::person_id.eq(to))
            .execute(conn)?;
        crate::models::persons::sync_attention_copies(conn, to)?;
        diesel::update(referrals::table.filter(referrals::case_id.eq_any(chunk.clone())))
            .set(referrals::person_id.eq(to))
            .execute(conn)?;
        diesel::update(payments::table.filter(payments::case_id.eq_any(chunk.clone())))
            .set(payments::person_id.eq(to))
            .execute(conn)?;
        diesel::update(detentions::table.filter(detentions::case_id.eq_any(chunk.clone())))
            .set(detentions::person_id.eq(to))
            .execute(conn)?;
        diesel::update(repatriations::table.filter(repatriations::case_id.eq_any(chunk)))
            .set(repatriations::person_id.eq(to))
            .execute(conn)?;
    }
    Ok(())
}

/// Recodes attentions (and their history events) from one type to another;
/// returns how many attentions moved.
pub fn recode_attentions(conn: &mut DbConn, from: Id, to: Id) -> QueryResult<i64> {
    let n = diesel::update(attentions::table.filter(attentions::attention_type_id.eq(from)))
        .set(attentions::attention_type_id.eq(to))
        .execute(conn)?;
    diesel::update(timeline_events::table.filter(timeline_events::attention_type_id.eq(from)))
        .set(timeline_events::attention_type_id.eq(to))
        .execute(conn)?;
    Ok(n as i64)
}

#[derive(Debug, Default, Clone)]
pub struct CaseFilter {
    pub consulate: Option<Id>,
    pub status: Option<String>,
    pub attention_type: Option<Id>,
    pub officer: Option<Id>,
    pub opened_from: Option<Ts>,
    pub opened_to: Option<Ts>,
    pub protected: Option<bool>,
    pub channel: Option<String>,
    pub person: Option<Id>,
    /// Only cases with a pending protocol step or an open task due before
    /// this time.
    pub overdue_at: Option<Ts>,
}

fn case_query(f: &CaseFilter) -> cases::BoxedQuery<'static, MultiBackend> {
    let mut q = cases::table.into_boxed::<MultiBackend>();
    if let Some(c) = f.consulate {
        q = q.filter(cases::consulate_id.eq(c));
    }
    if let Some(s) = &f.status {
        q = q.filter(cases::status.eq(s.clone()));
    }
    if let Some(t) = f.attention_type {
        q = q.filter(
            cases::id.eq_any(
                attentions::table
                    .filter(attentions::attention_type_id.eq(t))
                    .filter(attentions::voided_at.is_null())
                    .select(attentions::case_id),
            ),
        );
    }
    if let Some(o) = f.officer {
        q = q.filter(cases::assigned_officer_id.eq(o));
    }
    if let Some(from) = f.opened_from {
        q = q.filter(cases::opened_at.ge(from));
    }
    if let Some(to) = f.opened_to {
        q = q.filter(cases::opened_at.lt(to));
    }
    if let Some(p) = f.protected {
        q = q.filter(cases::protected.eq(p));
    }
    if let Some(c) = &f.channel {
        q = q.filter(cases::channel.eq(c.clone()));
    }
    if let Some(now) = f.overdue_at {
        let late_steps = case_steps::table
            .filter(case_steps::status.eq("pending"))
            .filter(case_steps::due_at.lt(now))
            .select(case_steps::case_id);
        let late_tasks = tasks::table
            .filter(tasks::done_at.is_null())
            .filter(tasks::due_at.lt(now))
            .select(tasks::case_id);
        q = q.filter(
            cases::id
                .eq_any(late_steps)
                .or(cases::id.eq_any(late_tasks)),
        );
    }
    if let Some(p) = f.person {
        q = q.filter(cases::person_id.eq(p));
    }
    q
}

pub fn list_cases(
    conn: &mut DbConn,
    f: &CaseFilter,
    window: Window,
) -> QueryResult<(Vec<Case>, i64)> {
    let total = case_query(f).count().get_result(conn)?;
    let rows = case_query(f)
        .order((cases::opened_at.desc(), cases::id))
        .limit(window.limit)
        .offset(window.offset)
        .select(Case::as_select())
        .load(conn)?;
    Ok((rows, total))
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::db::schema::case_transfers)]
pub struct Transfer {
    pub id: Id,
    pub case_id: Id,
    pub from_consulate_id: Id,
    pub to_consulate_id: Id,
    pub reason: String,
    pub status: String,
    pub requested_by: Option<Id>,
    pub requested_at: Ts,
    pub decided_by: Option<Id>,
    pub decided_at: Option<Ts>,
}

pub fn insert_transfer(conn: &mut DbConn, t: &Transfer) -> QueryResult<()> {
    diesel::insert_into(crate::db::schema::case_transfers::table)
        .values(t)
        .execute(conn)
        .map(|_| ())
}

pub fn find_transfer(conn: &mut DbConn, id: Id) -> QueryResult<Option<Transfer>> {
    use crate::db::schema::case_transfers;
    case_transfers::table
        .find(id)
        .select(Transfer::as_select())
        .first(conn)
        .optional()
}

pub fn pending_transfer_of(conn: &mut DbConn, case: Id) -> QueryResult<Option<Transfer>> {
    use crate::db::schema::case_transfers;
    case_transfers::table
        .filter(case_transfers::case_id.eq(case))
        .filter(case_transfers::status.eq("requested"))
        .select(Transfer::as_select())
        .first(conn)
        .optional()
}

/// Decides a pending transfer; false if it was decided meanwhile.
pub fn decide_transfer(conn: &mut DbConn, id: Id, status: &str, by: Id) -> QueryResult<bool> {
    use crate::db::schema::case_transfers;
    let n = diesel::update(
        case_transfers::table
            .filter(case_transfers::id.eq(id))
            .filter(case_transfers::status.eq("requested")),
    )
    .set((
        case_transfers::status.eq(status),
        case_transfers::decided_by.eq(by),
        case_transfers::decided_at.eq(Ts::now()),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn list_transfers(
    conn: &mut DbConn,
    to: Option<Id>,
    from: Option<Id>,
    status: Option<&str>,
    window: Window,
) -> QueryResult<(Vec<Transfer>, i64)> {
    use crate::db::schema::case_transfers;
    let build = || {
        let mut q = case_transfers::table.into_boxed::<MultiBackend>();
        if let Some(t) = to {
            q = q.filter(case_transfers::to_consulate_id.eq(t));
        }
        if let Some(f) = from {
            q = q.filter(case_transfers::from_consulate_id.eq(f));
        }
        if let Some(s) = status {
            q = q.filter(case_transfers::status.eq(s.to_owned()));
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order(case_transfers::requested_at.desc())
        .limit(window.limit)
        .offset(window.offset)
        .select(Transfer::as_select())
        .load(conn)?;
    Ok((rows, total))
}

#[derive(Debug, Default, Clone)]
pub struct TaskFilter {
    pub consulate: Option<Id>,
    pub assignee: Option<Id>,
    pub case: Option<Id>,
    /// Open tasks past their due time.
    pub overdue_at: Option<Ts>,
    pub open_only: bool,
}

pub fn list_tasks(
    conn: &mut DbConn,
    f: &TaskFilter,
    window: Window,
) -> QueryResult<(Vec<Task>, i64)> {
    let build = || {
        let mut q = tasks::table.into_boxed::<MultiBackend>();
        if let Some(c) = f.consulate {
            q = q.filter(tasks::consulate_id.eq(c));
        }
        if let Some(a) = f.assignee {
            q = q.filter(tasks::assignee_id.eq(a));
        }
        if let Some(c) = f.case {
            q = q.filter(tasks::case_id.eq(c));
        }
        if let Some(now) = f.overdue_at {
            q = q
                .filter(tasks::done_at.is_null())
                .filter(tasks::due_at.lt(now));
        }
        if f.open_only {
            q = q.filter(tasks::done_at.is_null());
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((tasks::due_at.is_null(), tasks::due_at, tasks::created_at))
        .limit(window.limit)
        .offset(window.offset)
        .select(Task::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn find_task(conn: &mut DbConn, id: Id) -> QueryResult<Option<Task>> {
    tasks::table
        .find(id)
        .select(Task::as_select())
        .first(conn)
        .optional()
}

pub fn complete_task(conn: &mut DbConn, id: Id) -> QueryResult<bool> {
    let n = diesel::update(
        tasks::table
            .filter(tasks::id.eq(id))
            .filter(tasks::done_at.is_null()),
    )
    .set(tasks::done_at.eq(Ts::now()))
    .execute(conn)?;
    Ok(n == 1)
}

/// Moves a case's ongoing follow-up (open tasks, the detention record,
/// unfinished repatriations) to its new consulate (accepted transfer).
/// Payments and referrals stay with the consulate that made them.
pub fn move_open_tasks(conn: &mut DbConn, case: Id, to: Id) -> QueryResult<()> {
    use crate::db::schema::{detentions, payments, repatriations};
    // Payments not yet settled follow the case: the receiving consulate
    // approves and pays them; settled ones stay with whoever settled them.
    diesel::update(
        payments::table
            .filter(payments::case_id.eq(case))
            .filter(payments::status.eq_any(["requested", "approved"])),
    )
    .set(payments::consulate_id.eq(to))
    .execute(conn)?;
    diesel::update(detentions::table.filter(detentions::case_id.eq(case)))
        .set(detentions::consulate_id.eq(to))
        .execute(conn)?;
    diesel::update(
        repatriations::table
            .filter(repatriations::case_id.eq(case))
            .filter(repatriations::status.eq_any(["planned", "in_progress"])),
    )
    .set(repatriations::consulate_id.eq(to))
    .execute(conn)?;
    diesel::update(
        tasks::table
            .filter(tasks::case_id.eq(case))
            .filter(tasks::done_at.is_null()),
    )
    .set((
        tasks::consulate_id.eq(to),
        tasks::assignee_id.eq(None::<Id>),
    ))
    .execute(conn)
    .map(|_| ())
}
