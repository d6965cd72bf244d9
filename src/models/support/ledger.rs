//! The payment ledger: payments, their reversals, and the exchange rates
//! they are converted with.

use super::*;

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

pub(super) fn payment_query(f: &PaymentFilter) -> payments::BoxedQuery<'static, MultiBackend> {
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
