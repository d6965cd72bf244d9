//! Support work around a case: the organisation directory and referrals,
//! detention records with visits and hearings, repatriations with their
//! steps, and the payment ledger with its exchange rates.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{
    detention_hearings, detention_visits, detentions, exchange_rates, organisation_consulates,
    organisations, payments, referrals, repatriation_steps, repatriations, tasks,
};
use crate::db::{DbConn, Id, MultiBackend, Ts};
use crate::models::reference::Window;

// --- organisations ------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = organisations)]
#[diesel(treat_none_as_null = true)]
pub struct Organisation {
    pub id: Id,
    pub name: String,
    pub kind: String,
    pub country_code: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub attention_categories: String,
    pub languages: String,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub notes: Option<String>,
    pub search_key: String,
    pub public: bool,
    pub active: bool,
    pub verified_at: Option<Ts>,
    pub verified_by: Option<Id>,
    pub version: i32,
    pub created_by: Option<Id>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

pub fn insert_organisation(
    conn: &mut DbConn,
    o: &Organisation,
    consulates: &[Id],
) -> QueryResult<()> {
    diesel::insert_into(organisations::table)
        .values(o)
        .execute(conn)?;
    set_organisation_consulates(conn, o.id, consulates)
}

pub fn set_organisation_consulates(
    conn: &mut DbConn,
    organisation: Id,
    consulates: &[Id],
) -> QueryResult<()> {
    diesel::delete(
        organisation_consulates::table
            .filter(organisation_consulates::organisation_id.eq(organisation)),
    )
    .execute(conn)?;
    for c in consulates {
        diesel::insert_into(organisation_consulates::table)
            .values((
                organisation_consulates::organisation_id.eq(organisation),
                organisation_consulates::consulate_id.eq(*c),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn find_organisation(conn: &mut DbConn, id: Id) -> QueryResult<Option<Organisation>> {
    organisations::table
        .find(id)
        .select(Organisation::as_select())
        .first(conn)
        .optional()
}

/// Writes the organisation if it is still at `expected_version`.
pub fn update_organisation(
    conn: &mut DbConn,
    o: &Organisation,
    expected_version: i32,
) -> QueryResult<bool> {
    let n = diesel::update(
        organisations::table
            .filter(organisations::id.eq(o.id))
            .filter(organisations::version.eq(expected_version)),
    )
    .set(o)
    .execute(conn)?;
    Ok(n == 1)
}

/// The consulates each of these organisations serves.
pub fn consulates_of(conn: &mut DbConn, orgs: &[Id]) -> QueryResult<Vec<(Id, Id)>> {
    organisation_consulates::table
        .filter(organisation_consulates::organisation_id.eq_any(orgs.to_vec()))
        .select((
            organisation_consulates::organisation_id,
            organisation_consulates::consulate_id,
        ))
        .order((
            organisation_consulates::organisation_id,
            organisation_consulates::consulate_id,
        ))
        .load(conn)
}

#[derive(Debug, Default, Clone)]
pub struct OrganisationFilter {
    /// Only public ones or those serving this consulate.
    pub visible_to: Option<Id>,
    /// Only those serving this consulate.
    pub serving: Option<Id>,
    pub country: Option<String>,
    pub kind: Option<String>,
    /// Folded with `fold_key`; matched against name and city.
    pub search: Option<String>,
    /// `Some(t)`: only the ones verified before `t` or never (stale);
    /// `stale_only = false` with `Some(t)`: only the fresh ones.
    pub stale_before: Option<(Ts, bool)>,
    pub include_inactive: bool,
    /// Only those helping with this attention category (JSON contains).
    pub category_like: Option<String>,
}

pub fn list_organisations(
    conn: &mut DbConn,
    f: &OrganisationFilter,
    window: Window,
) -> QueryResult<(Vec<Organisation>, i64)> {
    let build = || {
        let mut q = organisations::table.into_boxed::<MultiBackend>();
        if let Some(c) = f.visible_to {
            let serving = organisation_consulates::table
                .filter(organisation_consulates::consulate_id.eq(c))
                .select(organisation_consulates::organisation_id);
            q = q.filter(
                organisations::public
                    .eq(true)
                    .or(organisations::id.eq_any(serving)),
            );
        }
        if let Some(c) = f.serving {
            let serving = organisation_consulates::table
                .filter(organisation_consulates::consulate_id.eq(c))
                .select(organisation_consulates::organisation_id);
            q = q.filter(organisations::id.eq_any(serving));
        }
        if let Some(c) = &f.country {
            q = q.filter(organisations::country_code.eq(c.clone()));
        }
        if let Some(k) = &f.kind {
            q = q.filter(organisations::kind.eq(k.clone()));
        }
        if let Some(s) = &f.search {
            let pattern = format!("%{}%", crate::domain::text::escape_like(s));
            q = q.filter(organisations::search_key.like(pattern).escape('\\'));
        }
        if let Some(c) = &f.category_like {
            q = q.filter(organisations::attention_categories.like(format!("%\"{c}\"%")));
        }
        match f.stale_before {
            Some((t, true)) => {
                q = q.filter(
                    organisations::verified_at
                        .is_null()
                        .or(organisations::verified_at.lt(t)),
                )
            }
            Some((t, false)) => q = q.filter(organisations::verified_at.ge(t)),
            None => {}
        }
        if !f.include_inactive {
            q = q.filter(organisations::active.eq(true));
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((organisations::name, organisations::id))
        .limit(window.limit)
        .offset(window.offset)
        .select(Organisation::as_select())
        .load(conn)?;
    Ok((rows, total))
}

// --- referrals -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = referrals)]
#[diesel(treat_none_as_null = true)]
pub struct Referral {
    pub id: Id,
    pub case_id: Id,
    pub person_id: Id,
    pub consulate_id: Id,
    pub organisation_id: Id,
    pub reason: String,
    pub status: String,
    pub sent_on: NaiveDate,
    pub responded_on: Option<NaiveDate>,
    pub completed_on: Option<NaiveDate>,
    pub outcome: Option<String>,
    pub created_by: Option<Id>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

pub fn insert_referral(conn: &mut DbConn, r: &Referral) -> QueryResult<()> {
    diesel::insert_into(referrals::table)
        .values(r)
        .execute(conn)
        .map(|_| ())
}

pub fn find_referral(conn: &mut DbConn, id: Id) -> QueryResult<Option<Referral>> {
    referrals::table
        .find(id)
        .select(Referral::as_select())
        .first(conn)
        .optional()
}

pub fn update_referral(
    conn: &mut DbConn,
    r: &Referral,
    expected_version: i32,
) -> QueryResult<bool> {
    let n = diesel::update(
        referrals::table
            .filter(referrals::id.eq(r.id))
            .filter(referrals::version.eq(expected_version)),
    )
    .set(r)
    .execute(conn)?;
    Ok(n == 1)
}

#[derive(Debug, Default, Clone)]
pub struct ReferralFilter {
    pub consulate: Option<Id>,
    pub case: Option<Id>,
    pub organisation: Option<Id>,
    pub status: Option<String>,
    pub sent_from: Option<NaiveDate>,
    pub sent_to: Option<NaiveDate>,
}

pub fn list_referrals(
    conn: &mut DbConn,
    f: &ReferralFilter,
    window: Window,
) -> QueryResult<(Vec<Referral>, i64)> {
    let build = || {
        let mut q = referrals::table.into_boxed::<MultiBackend>();
        if let Some(c) = f.consulate {
            q = q.filter(referrals::consulate_id.eq(c));
        }
        if let Some(c) = f.case {
            q = q.filter(referrals::case_id.eq(c));
        }
        if let Some(o) = f.organisation {
            q = q.filter(referrals::organisation_id.eq(o));
        }
        if let Some(s) = &f.status {
            q = q.filter(referrals::status.eq(s.clone()));
        }
        if let Some(d) = f.sent_from {
            q = q.filter(referrals::sent_on.ge(d));
        }
        if let Some(d) = f.sent_to {
            q = q.filter(referrals::sent_on.le(d));
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((referrals::sent_on.desc(), referrals::created_at.desc()))
        .limit(window.limit)
        .offset(window.offset)
        .select(Referral::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn referrals_of_case(conn: &mut DbConn, case: Id) -> QueryResult<Vec<Referral>> {
    referrals::table
        .filter(referrals::case_id.eq(case))
        .order((referrals::sent_on, referrals::created_at))
        .select(Referral::as_select())
        .load(conn)
}

// --- detention -------------------------------------------------------------------

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

// --- repatriation ------------------------------------------------------------------

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

// --- exchange rates and the ledger ---------------------------------------------

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = exchange_rates)]
pub struct ExchangeRate {
    pub currency: String,
    pub rate_date: NaiveDate,
    pub pen_per_unit_e9: i64,
    pub usd_per_unit_e9: i64,
    pub source: String,
    pub recorded_by: Option<Id>,
    pub recorded_at: Ts,
}

/// Inserts or replaces the rate of a currency on a day; returns the previous one.
pub fn put_exchange_rate(conn: &mut DbConn, r: &ExchangeRate) -> QueryResult<Option<ExchangeRate>> {
    let previous = exchange_rates::table
        .find((r.currency.clone(), r.rate_date))
        .select(ExchangeRate::as_select())
        .first(conn)
        .optional()?;
    if previous.is_some() {
        diesel::update(exchange_rates::table.find((r.currency.clone(), r.rate_date)))
            .set(r)
            .execute(conn)?;
    } else {
        diesel::insert_into(exchange_rates::table)
            .values(r)
            .execute(conn)?;
    }
    Ok(previous)
}

/// The latest rate of `currency` on or before `date`, no older than `since`.
pub fn rate_on(
    conn: &mut DbConn,
    currency: &str,
    date: NaiveDate,
    since: NaiveDate,
) -> QueryResult<Option<ExchangeRate>> {
    exchange_rates::table
        .filter(exchange_rates::currency.eq(currency.to_owned()))
        .filter(exchange_rates::rate_date.le(date))
        .filter(exchange_rates::rate_date.ge(since))
        .order(exchange_rates::rate_date.desc())
        .select(ExchangeRate::as_select())
        .first(conn)
        .optional()
}

pub fn list_exchange_rates(
    conn: &mut DbConn,
    currency: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    window: Window,
) -> QueryResult<(Vec<ExchangeRate>, i64)> {
    let build = || {
        let mut q = exchange_rates::table.into_boxed::<MultiBackend>();
        if let Some(c) = currency {
            q = q.filter(exchange_rates::currency.eq(c.to_owned()));
        }
        if let Some(d) = from {
            q = q.filter(exchange_rates::rate_date.ge(d));
        }
        if let Some(d) = to {
            q = q.filter(exchange_rates::rate_date.le(d));
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((exchange_rates::rate_date.desc(), exchange_rates::currency))
        .limit(window.limit)
        .offset(window.offset)
        .select(ExchangeRate::as_select())
        .load(conn)?;
    Ok((rows, total))
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = payments)]
#[diesel(treat_none_as_null = true)]
pub struct Payment {
    pub id: Id,
    pub case_id: Id,
    pub person_id: Id,
    pub consulate_id: Id,
    pub repatriation_id: Option<Id>,
    pub kind: String,
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub currency_exponent: i32,
    pub value_date: NaiveDate,
    pub pen_per_unit_e9: i64,
    pub usd_per_unit_e9: i64,
    pub amount_pen_cents: i64,
    pub amount_usd_cents: i64,
    pub budget_line: String,
    pub description: String,
    pub requested_by: Id,
    pub requested_at: Ts,
    pub decided_by: Option<Id>,
    pub decided_at: Option<Ts>,
    pub decision_note: Option<String>,
    pub paid_by: Option<Id>,
    pub paid_at: Option<Ts>,
    pub payment_reference: Option<String>,
    pub reverses_id: Option<Id>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

pub fn insert_payment(conn: &mut DbConn, p: &Payment) -> QueryResult<()> {
    diesel::insert_into(payments::table)
        .values(p)
        .execute(conn)
        .map(|_| ())
}

pub fn find_payment(conn: &mut DbConn, id: Id) -> QueryResult<Option<Payment>> {
    payments::table
        .find(id)
        .select(Payment::as_select())
        .first(conn)
        .optional()
}

/// Writes an entry if it is still at `expected_version` and not yet paid:
/// the database, not only the handler, keeps paid entries immutable.
pub fn update_unpaid_payment(
    conn: &mut DbConn,
    p: &Payment,
    expected_version: i32,
) -> QueryResult<bool> {
    let n = diesel::update(
        payments::table
            .filter(payments::id.eq(p.id))
            .filter(payments::version.eq(expected_version))
            .filter(payments::status.ne_all(vec!["paid", "reversed"])),
    )
    .set(p)
    .execute(conn)?;
    Ok(n == 1)
}

/// The reversal entry of a paid entry, if any.
pub fn reversal_of(conn: &mut DbConn, id: Id) -> QueryResult<Option<Id>> {
    payments::table
        .filter(payments::reverses_id.eq(id))
        .select(payments::id)
        .first(conn)
        .optional()
}

pub fn reversals_of(conn: &mut DbConn, ids: &[Id]) -> QueryResult<Vec<(Id, Id)>> {
    payments::table
        .filter(payments::reverses_id.eq_any(ids.to_vec()))
        .select((payments::reverses_id.assume_not_null(), payments::id))
        .load(conn)
}

#[derive(Debug, Default, Clone)]
pub struct PaymentFilter {
    pub consulate: Option<Id>,
    pub case: Option<Id>,
    pub repatriation: Option<Id>,
    pub statuses: Option<Vec<String>>,
    pub kind: Option<String>,
    pub currency: Option<String>,
    pub from: Option<NaiveDate>,
    /// Exclusive.
    pub until: Option<NaiveDate>,
}

fn payment_query(f: &PaymentFilter) -> payments::BoxedQuery<'static, MultiBackend> {
    let mut q = payments::table.into_boxed::<MultiBackend>();
    if let Some(c) = f.consulate {
        q = q.filter(payments::consulate_id.eq(c));
    }
    if let Some(c) = f.case {
        q = q.filter(payments::case_id.eq(c));
    }
    if let Some(r) = f.repatriation {
        q = q.filter(payments::repatriation_id.eq(r));
    }
    if let Some(s) = &f.statuses {
        q = q.filter(payments::status.eq_any(s.clone()));
    }
    if let Some(k) = &f.kind {
        q = q.filter(payments::kind.eq(k.clone()));
    }
    if let Some(c) = &f.currency {
        q = q.filter(payments::currency.eq(c.clone()));
    }
    if let Some(d) = f.from {
        q = q.filter(payments::value_date.ge(d));
    }
    if let Some(d) = f.until {
        q = q.filter(payments::value_date.lt(d));
    }
    q
}

pub fn list_payments(
    conn: &mut DbConn,
    f: &PaymentFilter,
    window: Window,
) -> QueryResult<(Vec<Payment>, i64)> {
    let total = payment_query(f).count().get_result(conn)?;
    let rows = payment_query(f)
        .order((payments::value_date.desc(), payments::created_at.desc()))
        .limit(window.limit)
        .offset(window.offset)
        .select(Payment::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// One ledger line reduced to what totals need.
#[derive(Debug, Clone, Queryable)]
pub struct LedgerLine {
    pub consulate_id: Id,
    pub value_date: NaiveDate,
    pub kind: String,
    pub currency: String,
    pub currency_exponent: i32,
    pub amount_minor: i64,
    pub amount_pen_cents: i64,
    pub amount_usd_cents: i64,
}

/// The lines totals are summed from (in Rust, in i128: exact on both backends,
/// where SQL `SUM(BIGINT)` types differ).
pub fn ledger_lines(conn: &mut DbConn, f: &PaymentFilter) -> QueryResult<Vec<LedgerLine>> {
    payment_query(f)
        .select((
            payments::consulate_id,
            payments::value_date,
            payments::kind,
            payments::currency,
            payments::currency_exponent,
            payments::amount_minor,
            payments::amount_pen_cents,
            payments::amount_usd_cents,
        ))
        .load(conn)
}
