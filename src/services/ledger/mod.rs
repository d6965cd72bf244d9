//! The financial assistance ledger's rules: exchange rates, pricing an
//! entry at its value date's rates, payment requests with four-eyes
//! approval, payment, and reversal (a paid entry never changes; a new
//! entry with the opposite amounts corrects it).
//!
//! Every write here runs inside [`crate::services::journal::commit`] and
//! notes its timeline event and audit row in the [`Journal`]. Field names
//! in errors are those of the input (`amount`, `value_date`); the API
//! places them in the request.

mod totals;

pub use totals::*;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::Event;
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::money::{
    self, convert_to_cents, format_rate, format_scaled, Currency, DecimalInput, RATE_SCALE,
};
use crate::domain::role::Role;
use crate::domain::support::{PaymentKind, PaymentStatus};
use crate::domain::timeline::TimelineKind;
use crate::domain::{Stored, UnknownStored};
use crate::error::AppError;
use crate::models::cases::{self as cases_model, Case};
use crate::models::support::{self as model, ExchangeRate, Payment};
use crate::services::input::{check_version, past_date, text};
use crate::services::journal::Journal;

/// How far back a payment may take the last published rate (weekends,
/// holidays): 7 days.
pub const RATE_LOOKBACK_DAYS: u64 = 7;

pub fn currency_of(field: &str, code: &str) -> Result<&'static Currency, AppError> {
    money::currency(code).ok_or_else(|| {
        AppError::invalid(
            field,
            format!("`{code}` is not an ISO 4217 currency code this ledger accepts"),
        )
    })
}

fn amount_of(field: &str, input: &DecimalInput, c: &Currency) -> Result<i64, AppError> {
    money::parse_amount(input, c)
        .map_err(|e| AppError::invalid(field, format!("{} ({})", e.reason("the amount"), c.code)))
}

fn rate_of(field: &str, input: &DecimalInput) -> Result<i64, AppError> {
    money::parse_rate(input).map_err(|e| AppError::invalid(field, e.reason("the rate")))
}

/// The rate of one unit into PEN or USD: 1 for the currency itself,
/// otherwise required.
pub fn own_or_given(
    field: &str,
    currency: &str,
    target: &str,
    input: Option<&DecimalInput>,
) -> Result<i64, AppError> {
    match input {
        None if currency == target => Ok(RATE_SCALE),
        None => Err(AppError::invalid(field, "is required")),
        Some(v) => {
            let r = rate_of(field, v)?;
            if currency == target && r != RATE_SCALE {
                return Err(AppError::invalid(
                    field,
                    format!("one {target} is 1 {target}"),
                ));
            }
            Ok(r)
        }
    }
}

/// Records (or corrects) a currency's rates on a day; the audit keeps the
/// rates it replaced.
pub fn put_rate(
    conn: &mut DbConn,
    journal: &mut Journal,
    rate: ExchangeRate,
) -> Result<ExchangeRate, AppError> {
    let previous = model::put_exchange_rate(conn, &rate)?;
    journal.audit(
        Event::new(
            AuditAction::ExchangeRatePut,
            "exchange_rate",
            Some(format!("{}/{}", rate.currency, rate.rate_date)),
        )
        .details(serde_json::json!({
            "pen_per_unit": format_rate(rate.pen_per_unit_e9),
            "usd_per_unit": format_rate(rate.usd_per_unit_e9),
            "previous": previous.map(|p| serde_json::json!({
                "pen_per_unit": format_rate(p.pen_per_unit_e9),
                "usd_per_unit": format_rate(p.usd_per_unit_e9),
                "source": p.source,
            })),
        })),
    );
    Ok(rate)
}

/// Fixes amount, currency and the value date's rates on an entry.
fn price(
    conn: &mut DbConn,
    p: &mut Payment,
    amount: &DecimalInput,
    currency: &str,
    value_date: NaiveDate,
) -> Result<(), AppError> {
    let c = currency_of("currency", currency)?;
    let minor = amount_of("amount", amount, c)?;
    let value_date = past_date("value_date", value_date)?;
    let since = value_date
        .checked_sub_days(chrono::Days::new(RATE_LOOKBACK_DAYS))
        .unwrap_or(value_date);
    let rate = model::rate_on(conn, c.code, value_date, since)?.ok_or_else(|| {
        AppError::invalid(
            "value_date",
            format!(
                "no {} exchange rate is recorded for the {RATE_LOOKBACK_DAYS} days up to {value_date}; \
                 record it with PUT /api/v1/exchange-rates/{}/{value_date}",
                c.code, c.code
            ),
        )
    })?;
    p.amount_minor = minor;
    p.currency = c.code.to_owned();
    p.currency_exponent = c.exponent as i32;
    p.value_date = value_date;
    p.pen_per_unit_e9 = rate.pen_per_unit_e9;
    p.usd_per_unit_e9 = rate.usd_per_unit_e9;
    p.amount_pen_cents = convert_to_cents(minor, c.exponent, rate.pen_per_unit_e9);
    p.amount_usd_cents = convert_to_cents(minor, c.exponent, rate.usd_per_unit_e9);
    Ok(())
}

/// The entry's amount as an exact decimal in its currency; a stored
/// exponent below zero is an error.
pub fn amount_text(p: &Payment) -> Result<String, UnknownStored> {
    let exponent = u32::try_from(p.currency_exponent).map_err(|_| UnknownStored {
        what: "currency exponent",
        value: p.currency_exponent.to_string(),
    })?;
    Ok(format_scaled(p.amount_minor, exponent))
}

fn payment_event(
    journal: &mut Journal,
    case: &Case,
    kind: TimelineKind,
    user: Id,
    p: &Payment,
) -> Result<(), AppError> {
    journal.case_event(
        case,
        kind,
        Some(user),
        None,
        serde_json::json!({
            "payment_id": p.id,
            "kind": p.kind,
            "amount": amount_text(p)?,
            "currency": p.currency,
            "amount_pen": format_scaled(p.amount_pen_cents, 2),
            "status": p.status,
        }),
    );
    Ok(())
}

/// A payment the caller may act on, with its case.
pub fn load_payment(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
) -> Result<(Payment, Case), AppError> {
    let missing = || AppError::not_found(format!("no payment `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let p = model::find_payment(conn, id)?.ok_or_else(missing)?;
    if !user.can_touch_consulate(p.consulate_id) {
        return Err(AppError::OutOfScope(format!("no payment `{raw}`")));
    }
    let case = cases_model::find_case(conn, p.case_id)?.ok_or_else(missing)?;
    Ok((p, case))
}

fn immutable(p: &Payment) -> AppError {
    AppError::conflict(
        ErrorCode::PaymentImmutable,
        None,
        format!(
            "a {} entry cannot be changed; a paid entry is corrected by POST /api/v1/payments/{}/reversal",
            p.status, p.reverses_id.unwrap_or(p.id)
        ),
    )
}

fn changed_meanwhile() -> AppError {
    crate::services::input::changed_meanwhile("payment")
}

/// A payment request.
pub struct NewPayment {
    pub kind: PaymentKind,
    pub amount: DecimalInput,
    pub currency: String,
    pub value_date: Option<NaiveDate>,
    pub budget_line: String,
    pub description: String,
    pub repatriation_id: Option<Id>,
}

/// Requests a payment on an open case of the caller's consulate; it waits
/// for a supervisor's approval.
pub fn request(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    case: &Case,
    new: NewPayment,
) -> Result<Payment, AppError> {
    if case.status == "closed" {
        return Err(AppError::conflict(
            ErrorCode::CaseClosed,
            None,
            "the case is closed; reopen it to request a payment",
        ));
    }
    if let Some(r) = new.repatriation_id {
        let ok = model::find_repatriation(conn, r)?.is_some_and(|r| r.case_id == case.id);
        if !ok {
            return Err(AppError::invalid(
                "repatriation_id",
                "not a repatriation of this case",
            ));
        }
    }
    let now = Ts::now();
    let mut p = Payment {
        id: Id::new(),
        case_id: case.id,
        person_id: case.person_id,
        consulate_id: case.consulate_id,
        repatriation_id: new.repatriation_id,
        kind: new.kind.as_str().to_owned(),
        status: PaymentStatus::Requested.as_str().to_owned(),
        amount_minor: 0,
        currency: String::new(),
        currency_exponent: 2,
        value_date: now.0.date_naive(),
        pen_per_unit_e9: 0,
        usd_per_unit_e9: 0,
        amount_pen_cents: 0,
        amount_usd_cents: 0,
        budget_line: text("budget_line", &new.budget_line, 200)?,
        description: text("description", &new.description, 4000)?,
        requested_by: user.user_id,
        requested_at: now,
        decided_by: None,
        decided_at: None,
        decision_note: None,
        paid_by: None,
        paid_at: None,
        payment_reference: None,
        reverses_id: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let value_date = new.value_date.unwrap_or(now.0.date_naive());
    price(conn, &mut p, &new.amount, &new.currency, value_date)?;
    model::insert_payment(conn, &p)?;
    payment_event(
        journal,
        case,
        TimelineKind::PaymentRequested,
        user.user_id,
        &p,
    )?;
    journal.audit(
        Event::new(AuditAction::PaymentRequest, "payment", Some(p.id.to_string()))
            .subject(case.person_id)
            .details(serde_json::json!({ "amount": amount_text(&p)?, "currency": p.currency, "kind": new.kind })),
    );
    Ok(p)
}

/// A correction of a request before it is decided; `None` keeps a field.
#[derive(Default)]
pub struct PaymentChange {
    pub kind: Option<PaymentKind>,
    pub amount: Option<DecimalInput>,
    pub currency: Option<String>,
    pub value_date: Option<NaiveDate>,
    pub budget_line: Option<String>,
    pub description: Option<String>,
}

/// Corrects a requested entry at version `expected` (re-priced when its
/// amount, currency or value date changes).
pub fn update(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
    change: PaymentChange,
) -> Result<Payment, AppError> {
    let (current, case) = load_payment(conn, user, raw)?;
    if current.status != PaymentStatus::Requested.as_str() {
        return Err(immutable(&current));
    }
    let expected = expected?;
    check_version(current.version, expected, "payment")?;
    let mut next = current.clone();
    if let Some(k) = change.kind {
        next.kind = k.as_str().to_owned();
    }
    if let Some(l) = &change.budget_line {
        next.budget_line = text("budget_line", l, 200)?;
    }
    if let Some(d) = &change.description {
        next.description = text("description", d, 4000)?;
    }
    if change.amount.is_some() || change.currency.is_some() || change.value_date.is_some() {
        let amount = match change.amount {
            Some(amount) => amount,
            None => DecimalInput::Text(amount_text(&current)?),
        };
        let currency = change.currency.unwrap_or_else(|| current.currency.clone());
        let value_date = change.value_date.unwrap_or(current.value_date);
        price(conn, &mut next, &amount, &currency, value_date)?;
    }
    next.version += 1;
    next.updated_at = Ts::now();
    if !model::update_unpaid_payment(conn, &next, expected)? {
        return Err(changed_meanwhile());
    }
    let changes =
        crate::services::input::field_changes(&current, &next, &["version", "updated_at"]);
    journal.case_event(
        &case,
        TimelineKind::PaymentUpdated,
        Some(user.user_id),
        None,
        serde_json::json!({ "payment_id": next.id, "changes": changes }),
    );
    journal.audit(
        Event::new(
            AuditAction::PaymentUpdate,
            "payment",
            Some(next.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "changes": changes })),
    );
    Ok(next)
}

/// Approves or rejects a requested entry: a supervisor of its consulate
/// who did not request it (four eyes).
pub fn decide(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    approve: bool,
    note: Option<String>,
) -> Result<Payment, AppError> {
    let (current, case) = load_payment(conn, user, raw)?;
    if current.requested_by == user.user_id {
        return Err(AppError::forbidden(
            ErrorCode::FourEyes,
            "the approver must not be the requester: another supervisor of the consulate decides",
        ));
    }
    if user.role != Role::Supervisor || user.consulate_id != Some(current.consulate_id) {
        return Err(AppError::forbidden(
            ErrorCode::Forbidden,
            "only a supervisor of the payment's consulate decides it",
        ));
    }
    if current.status != PaymentStatus::Requested.as_str() {
        return Err(AppError::conflict(
            ErrorCode::PaymentDecided,
            None,
            format!("the payment is already {}", current.status),
        ));
    }
    let now = Ts::now();
    let mut next = current.clone();
    next.status = if approve {
        PaymentStatus::Approved
    } else {
        PaymentStatus::Rejected
    }
    .as_str()
    .to_owned();
    next.decided_by = Some(user.user_id);
    next.decided_at = Some(now);
    next.decision_note = note;
    next.version += 1;
    next.updated_at = now;
    if !model::update_unpaid_payment(conn, &next, current.version)? {
        return Err(changed_meanwhile());
    }
    let kind = if approve {
        TimelineKind::PaymentApproved
    } else {
        TimelineKind::PaymentRejected
    };
    payment_event(journal, &case, kind, user.user_id, &next)?;
    journal.audit(
        Event::new(
            AuditAction::PaymentDecide,
            "payment",
            Some(next.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "status": next.status })),
    );
    Ok(next)
}

/// Records that an approved entry was paid; from then on it never changes.
pub fn mark_paid(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    reference: String,
) -> Result<Payment, AppError> {
    let (current, case) = load_payment(conn, user, raw)?;
    if current.status != PaymentStatus::Approved.as_str() {
        return Err(AppError::conflict(
            ErrorCode::PaymentNotApproved,
            None,
            format!(
                "only an approved payment can be paid; this one is {}",
                current.status
            ),
        ));
    }
    let now = Ts::now();
    let mut next = current.clone();
    next.status = PaymentStatus::Paid.as_str().to_owned();
    next.paid_by = Some(user.user_id);
    next.paid_at = Some(now);
    next.payment_reference = Some(reference);
    next.version += 1;
    next.updated_at = now;
    if !model::update_unpaid_payment(conn, &next, current.version)? {
        return Err(changed_meanwhile());
    }
    payment_event(
        journal,
        &case,
        TimelineKind::PaymentPaid,
        user.user_id,
        &next,
    )?;
    journal.audit(
        Event::new(
            AuditAction::PaymentPaid,
            "payment",
            Some(next.id.to_string()),
        )
        .subject(case.person_id),
    );
    Ok(next)
}

/// Corrects a paid entry with a new `reversed` entry of the opposite
/// amounts (same rates) that names it.
pub fn reverse(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    reason: String,
) -> Result<Payment, AppError> {
    let (original, case) = load_payment(conn, user, raw)?;
    if original.status != PaymentStatus::Paid.as_str() {
        return Err(AppError::conflict(
            ErrorCode::PaymentNotPaid,
            None,
            format!(
                "only a paid entry is reversed; this one is {}",
                original.status
            ),
        ));
    }
    if let Some(existing) = model::reversal_of(conn, original.id)? {
        return Err(AppError::conflict(
            ErrorCode::AlreadyReversed,
            None,
            format!("the entry is already reversed by {existing}"),
        ));
    }
    let now = Ts::now();
    let reversal = Payment {
        id: Id::new(),
        status: PaymentStatus::Reversed.as_str().to_owned(),
        amount_minor: -original.amount_minor,
        amount_pen_cents: -original.amount_pen_cents,
        amount_usd_cents: -original.amount_usd_cents,
        description: reason,
        requested_by: user.user_id,
        requested_at: now,
        decided_by: Some(user.user_id),
        decided_at: Some(now),
        decision_note: None,
        paid_by: Some(user.user_id),
        paid_at: Some(now),
        payment_reference: None,
        reverses_id: Some(original.id),
        version: 1,
        created_at: now,
        updated_at: now,
        ..original.clone()
    };
    model::insert_payment(conn, &reversal)?;
    payment_event(
        journal,
        &case,
        TimelineKind::PaymentReversed,
        user.user_id,
        &reversal,
    )?;
    journal.audit(
        Event::new(
            AuditAction::PaymentReverse,
            "payment",
            Some(original.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "reversal_id": reversal.id })),
    );
    Ok(reversal)
}
