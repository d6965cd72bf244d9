//! Person access rows: requests to see a person known at another consulate,
//! and the grants they become (see `services::access`).

use diesel::prelude::*;

use crate::db::schema::{cases, person_access, persons};
use crate::db::{DbConn, Id, MultiBackend, Ts};
use crate::models::reference::Window;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = person_access, treat_none_as_default_value = false)]
pub struct PersonAccessRow {
    pub id: Id,
    pub person_id: Id,
    pub consulate_id: Id,
    pub level: String,
    pub status: String,
    pub source: String,
    pub reason: String,
    pub requested_by: Option<Id>,
    pub requested_at: Ts,
    pub decided_by: Option<Id>,
    pub decided_at: Option<Ts>,
    pub decision_reason: Option<String>,
}

pub fn insert(conn: &mut DbConn, row: &PersonAccessRow) -> QueryResult<()> {
    diesel::insert_into(person_access::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, id: Id) -> QueryResult<Option<PersonAccessRow>> {
    person_access::table
        .find(id)
        .select(PersonAccessRow::as_select())
        .first(conn)
        .optional()
}

/// The granted levels each consulate has for a person.
pub fn granted(conn: &mut DbConn, person: Id) -> QueryResult<Vec<(Id, String)>> {
    person_access::table
        .filter(person_access::person_id.eq(person))
        .filter(person_access::status.eq("granted"))
        .select((person_access::consulate_id, person_access::level))
        .load(conn)
}

/// Whether any case of `person` is protected (the prefix of
/// `cases_person_idx`).
pub fn has_protected_case(conn: &mut DbConn, person: Id) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        cases::table
            .filter(cases::person_id.eq(person))
            .filter(cases::protected.eq(true)),
    ))
    .get_result(conn)
}

/// Whether `person` has a case at `consulate`: `cases_person_idx` is
/// (person, protected, consulate), so it is looked up for each value of
/// `protected`, each an exact key prefix.
pub fn has_case_at(conn: &mut DbConn, person: Id, consulate: Id) -> QueryResult<bool> {
    let at = |protected: bool| {
        diesel::dsl::exists(
            cases::table
                .filter(cases::person_id.eq(person))
                .filter(cases::protected.eq(protected))
                .filter(cases::consulate_id.eq(consulate)),
        )
    };
    diesel::select(at(false).or(at(true))).get_result(conn)
}

/// A person's cases as (case, consulate, protected), one row per case.
pub fn case_places(conn: &mut DbConn, person: Id) -> QueryResult<Vec<(Id, Id, bool)>> {
    cases::table
        .filter(cases::person_id.eq(person))
        .select((cases::id, cases::consulate_id, cases::protected))
        .load(conn)
}

/// Records the decision on a pending row; false when it was no longer pending.
pub fn decide(conn: &mut DbConn, id: Id, status: &str, by: Id, reason: &str) -> QueryResult<bool> {
    let n = diesel::update(
        person_access::table
            .filter(person_access::id.eq(id))
            .filter(person_access::status.eq("pending")),
    )
    .set((
        person_access::status.eq(status),
        person_access::decided_by.eq(Some(by)),
        person_access::decided_at.eq(Some(Ts::now())),
        person_access::decision_reason.eq(Some(reason)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Ends a granted row, keeping who decided it and why in the audit log and
/// who ended it here; false when it was not granted.
pub fn revoke(conn: &mut DbConn, id: Id, by: Id, reason: &str) -> QueryResult<bool> {
    let n = diesel::update(
        person_access::table
            .filter(person_access::id.eq(id))
            .filter(person_access::status.eq("granted")),
    )
    .set((
        person_access::status.eq("revoked"),
        person_access::decided_by.eq(Some(by)),
        person_access::decided_at.eq(Some(Ts::now())),
        person_access::decision_reason.eq(Some(reason)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// What a list of requests is narrowed to.
#[derive(Debug, Default, Clone)]
pub struct AccessFilter {
    pub status: Option<String>,
    pub person: Option<Id>,
    /// Rows asked by this consulate…
    pub consulate: Option<Id>,
    /// …or about persons it holds (registered there, with a case there or
    /// granted to it): a supervisor's queue of requests to decide.
    pub or_held: bool,
}

pub fn list(
    conn: &mut DbConn,
    f: &AccessFilter,
    window: Window,
) -> QueryResult<(Vec<PersonAccessRow>, i64)> {
    let query = || {
        let mut q = person_access::table.into_boxed::<MultiBackend>();
        if let Some(s) = &f.status {
            q = q.filter(person_access::status.eq(s.clone()));
        }
        if let Some(p) = f.person {
            q = q.filter(person_access::person_id.eq(p));
        }
        if let Some(c) = f.consulate {
            let own = person_access::consulate_id.eq(c);
            if f.or_held {
                let registered = persons::table
                    .filter(persons::registered_consulate_id.eq(c))
                    .select(persons::id);
                let with_case = cases::table
                    .filter(cases::consulate_id.eq(c))
                    .select(cases::person_id);
                let granted = diesel::alias!(person_access as granted);
                let granted = granted
                    .filter(granted.field(person_access::consulate_id).eq(c))
                    .filter(granted.field(person_access::status).eq("granted"))
                    .select(granted.field(person_access::person_id));
                q = q.filter(
                    own.or(person_access::person_id.eq_any(registered))
                        .or(person_access::person_id.eq_any(with_case))
                        .or(person_access::person_id.eq_any(granted)),
                );
            } else {
                q = q.filter(own);
            }
        }
        q
    };
    let total = query().count().get_result(conn)?;
    let rows = query()
        .order((person_access::requested_at.desc(), person_access::id.desc()))
        .limit(window.limit)
        .offset(window.offset)
        .select(PersonAccessRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}
