//! The financial assistance ledger: exchange rates, payment requests with
//! four-eyes approval, payment, reversal, and exact totals.

use crate::domain::Stored;
use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, put, web, HttpRequest, HttpResponse};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cases::load_scoped;
use super::support::{past_date, scoped_consulate};
use super::{
    access, changed_meanwhile, check_version, if_match_version, optional_text, text, window, Page,
};
use crate::api::RequestOrigin as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::money::{
    self, convert_to_cents, format_rate, format_scaled, Currency, DecimalInput, RATE_SCALE,
};
use crate::domain::role::Role;
use crate::domain::support::{PaymentKind, PaymentStatus};
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::idempotency::Idempotency;
use crate::models::cases::{self as cases_model, Case};
use crate::models::support::{self as model, ExchangeRate, Payment, PaymentFilter};
use crate::services::cases as case_service;
use crate::AppState;

/// How far back a payment may take the last published rate (weekends,
/// holidays): 7 days.
pub const RATE_LOOKBACK_DAYS: u64 = 7;

fn currency_of(field: &str, code: &str) -> Result<&'static Currency, AppError> {
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

// --- exchange rates -------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutExchangeRateRequest {
    /// PEN per one unit of the currency (1 for PEN itself), up to 9 decimals.
    #[schema(value_type = Option<String>, example = "4.0512")]
    pub pen_per_unit: Option<DecimalInput>,
    /// USD per one unit of the currency (1 for USD itself), up to 9 decimals.
    #[schema(value_type = Option<String>, example = "1.0800")]
    pub usd_per_unit: Option<DecimalInput>,
    /// Where the rate comes from, e.g. `SBS` or `BCRP`.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeRateResponse {
    pub currency: String,
    pub date: NaiveDate,
    #[schema(example = "4.0512")]
    pub pen_per_unit: String,
    #[schema(example = "1.08")]
    pub usd_per_unit: String,
    pub source: String,
    pub recorded_by: Option<Id>,
    pub recorded_at: Ts,
}

fn rate_response(r: ExchangeRate) -> ExchangeRateResponse {
    ExchangeRateResponse {
        pen_per_unit: format_rate(r.pen_per_unit_e9),
        usd_per_unit: format_rate(r.usd_per_unit_e9),
        currency: r.currency,
        date: r.rate_date,
        source: r.source,
        recorded_by: r.recorded_by,
        recorded_at: r.recorded_at,
    }
}

/// The rate of one unit into PEN or USD: 1 for the currency itself,
/// otherwise required.
fn own_or_given(
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

/// Record (or correct) the rates of a currency on a day. Payments keep the
/// rates they were made with; a correction changes only later entries.
#[utoipa::path(
    tag = "ledger",
    operation_id = "put_exchange_rate",
    security(("bearer" = [])),
    params(
        ("currency" = String, Path, description = "ISO 4217 code"),
        ("date" = String, Path, description = "YYYY-MM-DD"),
    ),
    request_body = PutExchangeRateRequest,
    responses(
        (status = 200, body = ExchangeRateResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/exchange-rates/{currency}/{date}")]
pub async fn put_exchange_rate(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, String)>,
    body: JsonBody<PutExchangeRateRequest>,
) -> Result<web::Json<ExchangeRateResponse>, AppError> {
    user.require(&access::PUT_EXCHANGE_RATE)?;
    let (code, date) = path.into_inner();
    let b = body.into_inner()?;
    let c = currency_of("path.currency", &code)?;
    let date = NaiveDate::parse_from_str(&date, "%Y-%m-%d")
        .map_err(|_| AppError::invalid("path.date", "must be a date like 2026-11-27"))?;
    let date = past_date("path.date", date)?;
    let rate = ExchangeRate {
        currency: c.code.to_owned(),
        rate_date: date,
        pen_per_unit_e9: own_or_given("body.pen_per_unit", c.code, "PEN", b.pen_per_unit.as_ref())?,
        usd_per_unit_e9: own_or_given("body.usd_per_unit", c.code, "USD", b.usd_per_unit.as_ref())?,
        source: text("body.source", &b.source, 200)?,
        recorded_by: Some(user.user_id),
        recorded_at: Ts::now(),
    };
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let previous = model::put_exchange_rate(conn, &rate)?;
            let response = rate_response(rate);
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new(
                    "exchange_rate.put",
                    "exchange_rate",
                    Some(format!("{}/{}", response.currency, response.date)),
                )
                .details(serde_json::json!({
                    "pen_per_unit": response.pen_per_unit,
                    "usd_per_unit": response.usd_per_unit,
                    "previous": previous.map(|p| serde_json::json!({
                        "pen_per_unit": format_rate(p.pen_per_unit_e9),
                        "usd_per_unit": format_rate(p.usd_per_unit_e9),
                        "source": p.source,
                    })),
                })),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(web::Json(response))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExchangeRateQuery {
    /// ISO 4217 code (`USD`, `eur`).
    #[param(pattern = "^\\s*[A-Za-z]{3}\\s*$")]
    pub currency: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Recorded exchange rates, newest first.
#[utoipa::path(
    tag = "ledger",
    operation_id = "list_exchange_rates",
    security(("bearer" = [])),
    params(ExchangeRateQuery),
    responses(
        (status = 200, body = Page<ExchangeRateResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/exchange-rates")]
pub async fn list_exchange_rates(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<ExchangeRateQuery>,
) -> Result<web::Json<Page<ExchangeRateResponse>>, AppError> {
    user.require(&access::LIST_EXCHANGE_RATES)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let currency = match &q.currency {
        Some(c) => Some(
            money::currency(c)
                .ok_or_else(|| {
                    AppError::invalid("query.currency", format!("unknown currency `{c}`"))
                })?
                .code,
        ),
        None => None,
    };
    let (rows, total) = db::run(&state.pool, move |conn| {
        model::list_exchange_rates(conn, currency, q.from, q.to, window).map_err(AppError::from)
    })
    .await?;
    let items = rows.into_iter().map(rate_response).collect();
    Ok(web::Json(Page::new(&req, items, total, window)))
}

// --- payments --------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub kind: PaymentKind,
    /// A positive decimal with no more decimals than the currency has
    /// (`"150.00"`; a JSON number is read by its exact spelling).
    #[schema(value_type = String, example = "150.00")]
    pub amount: DecimalInput,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// The day whose exchange rates apply (the last recorded within 7 days
    /// up to it); today by default, not in the future.
    pub value_date: Option<NaiveDate>,
    /// The budget line (meta presupuestal / partida) it is charged to.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub budget_line: String,
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    pub description: String,
    /// A repatriation of the same case this pays for.
    pub repatriation_id: Option<Id>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePaymentRequest {
    pub kind: Option<PaymentKind>,
    #[schema(value_type = Option<String>, example = "150.00")]
    pub amount: Option<DecimalInput>,
    pub currency: Option<String>,
    pub value_date: Option<NaiveDate>,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub budget_line: Option<String>,
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentDecision {
    Approve,
    Reject,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentDecisionRequest {
    pub decision: PaymentDecision,
    /// Required to reject.
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkPaidRequest {
    /// Transfer, cheque or receipt number.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub reference: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReversalRequest {
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    pub id: Id,
    pub case_id: Id,
    pub consulate_id: Id,
    pub repatriation_id: Option<Id>,
    pub kind: PaymentKind,
    pub status: PaymentStatus,
    /// Exact decimal in the currency (negative on a reversal entry).
    #[schema(example = "150.00")]
    pub amount: String,
    pub currency: String,
    pub value_date: NaiveDate,
    #[schema(example = "4.0512")]
    pub pen_per_unit: String,
    #[schema(example = "1.08")]
    pub usd_per_unit: String,
    /// The amount in PEN, rounded half away from zero to the cent.
    #[schema(example = "607.68")]
    pub amount_pen: String,
    #[schema(example = "162.00")]
    pub amount_usd: String,
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
    /// On a reversal entry: the paid entry it reverses.
    pub reverses_id: Option<Id>,
    /// On a paid entry: its reversal entry, if any.
    pub reversed_by_id: Option<Id>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

/// Payments as the caller may read them (see `super::disclosure`).
fn screen_payments(
    conn: &mut DbConn,
    user: &AuthUser,
    meta: &RequestMeta,
    action: &str,
    items: &mut [PaymentResponse],
) -> Result<(), AppError> {
    super::disclosure::screen(
        conn,
        user,
        meta,
        action,
        items,
        |p| p.case_id,
        |p| {
            p.description = super::disclosure::WITHHELD.into();
            p.decision_note = super::disclosure::withheld(&p.decision_note);
            p.payment_reference = super::disclosure::withheld(&p.payment_reference);
        },
    )
}

fn payment_response(p: Payment, reversed_by: Option<Id>) -> Result<PaymentResponse, AppError> {
    let exp = u32::try_from(p.currency_exponent).unwrap_or(2);
    Ok(PaymentResponse {
        kind: PaymentKind::stored(&p.kind)?,
        status: PaymentStatus::stored(&p.status)?,
        amount: format_scaled(p.amount_minor, exp),
        pen_per_unit: format_rate(p.pen_per_unit_e9),
        usd_per_unit: format_rate(p.usd_per_unit_e9),
        amount_pen: format_scaled(p.amount_pen_cents, 2),
        amount_usd: format_scaled(p.amount_usd_cents, 2),
        id: p.id,
        case_id: p.case_id,
        consulate_id: p.consulate_id,
        repatriation_id: p.repatriation_id,
        currency: p.currency,
        value_date: p.value_date,
        budget_line: p.budget_line,
        description: p.description,
        requested_by: p.requested_by,
        requested_at: p.requested_at,
        decided_by: p.decided_by,
        decided_at: p.decided_at,
        decision_note: p.decision_note,
        paid_by: p.paid_by,
        paid_at: p.paid_at,
        payment_reference: p.payment_reference,
        reverses_id: p.reverses_id,
        reversed_by_id: reversed_by,
        version: p.version,
        created_at: p.created_at,
        updated_at: p.updated_at,
    })
}

fn respond_payment(p: &PaymentResponse, created: bool) -> HttpResponse {
    super::with_etag(created, p.version, format!("/api/v1/payments/{}", p.id), p)
}

/// Fixes amount, currency and the day's rates on an entry.
#[allow(clippy::too_many_arguments)]
fn price(
    conn: &mut DbConn,
    p: &mut Payment,
    amount_field: &str,
    amount: &DecimalInput,
    currency_field: &str,
    currency: &str,
    date_field: &str,
    value_date: NaiveDate,
) -> Result<(), AppError> {
    let c = currency_of(currency_field, currency)?;
    let minor = amount_of(amount_field, amount, c)?;
    let value_date = past_date(date_field, value_date)?;
    let since = value_date
        .checked_sub_days(chrono::Days::new(RATE_LOOKBACK_DAYS))
        .unwrap_or(value_date);
    let rate = model::rate_on(conn, c.code, value_date, since)?.ok_or_else(|| {
        AppError::invalid(
            date_field,
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

fn payment_event(
    conn: &mut DbConn,
    case: &Case,
    kind: &str,
    user: Id,
    p: &Payment,
) -> Result<(), AppError> {
    let exp = u32::try_from(p.currency_exponent).unwrap_or(2);
    case_service::record_event(
        conn,
        case,
        kind,
        Some(user),
        None,
        serde_json::json!({
            "payment_id": p.id,
            "kind": p.kind,
            "amount": format_scaled(p.amount_minor, exp),
            "currency": p.currency,
            "amount_pen": format_scaled(p.amount_pen_cents, 2),
            "status": p.status,
        }),
    )
}

/// Request a payment on a case: it waits for a supervisor's approval.
/// Accepts `Idempotency-Key`, so a retried request never asks twice.
#[utoipa::path(
    tag = "ledger",
    operation_id = "request_payment",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Case id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation: 1 to 200 visible ASCII characters", pattern = "^[!-~]{1,200}$"),
    ),
    request_body = PaymentRequest,
    responses(
        (status = 201, body = PaymentResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/payments")]
pub async fn request_payment(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<PaymentRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::REQUEST_PAYMENT)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let idem = Idempotency::of(&req, &b)?;
    if let Some(replay) = idem.begin(&state.pool, user.user_id).await? {
        return Ok(replay);
    }
    let (meta, actor, user_id) = (RequestMeta::of(&req), user.actor(), user.user_id);
    let idem2 = idem.clone();
    let result = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let case = load_scoped(conn, &user, &raw)?;
            if case.status == "closed" {
                return Err(AppError::conflict(
                    "case_closed",
                    None,
                    "the case is closed; reopen it to request a payment",
                ));
            }
            if let Some(r) = b.repatriation_id {
                let ok = model::find_repatriation(conn, r)?.is_some_and(|r| r.case_id == case.id);
                if !ok {
                    return Err(AppError::invalid(
                        "body.repatriation_id",
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
                repatriation_id: b.repatriation_id,
                kind: b.kind.as_str().to_owned(),
                status: PaymentStatus::Requested.as_str().to_owned(),
                amount_minor: 0,
                currency: String::new(),
                currency_exponent: 2,
                value_date: now.0.date_naive(),
                pen_per_unit_e9: 0,
                usd_per_unit_e9: 0,
                amount_pen_cents: 0,
                amount_usd_cents: 0,
                budget_line: text("body.budget_line", &b.budget_line, 200)?,
                description: text("body.description", &b.description, 4000)?,
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
            price(
                conn,
                &mut p,
                "body.amount",
                &b.amount,
                "body.currency",
                &b.currency,
                "body.value_date",
                b.value_date.unwrap_or(now.0.date_naive()),
            )?;
            model::insert_payment(conn, &p)?;
            payment_event(conn, &case, "payment.requested", user.user_id, &p)?;
            let response = payment_response(p, None)?;
            idem2.complete(conn, user.user_id, StatusCode::CREATED, &response)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("payment.request", "payment", Some(response.id.to_string()))
                    .subject(case.person_id)
                    .details(serde_json::json!({ "amount": response.amount, "currency": response.currency, "kind": response.kind })),
            )?;
            Ok(response)
        })
    })
    .await;
    match result {
        Ok(response) => Ok(respond_payment(&response, true)),
        Err(e) => {
            idem.abandon(&state.pool, user_id).await;
            Err(e)
        }
    }
}

/// A payment the caller may act on, with its case.
fn load_payment(
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
        "payment_immutable",
        None,
        format!(
            "a {} entry cannot be changed; a paid entry is corrected by POST /api/v1/payments/{}/reversal",
            p.status, p.reverses_id.unwrap_or(p.id)
        ),
    )
}

/// Correct a payment request before it is decided (needs `If-Match`).
/// Approved, rejected, paid and reversal entries cannot be edited.
#[utoipa::path(
    tag = "ledger",
    operation_id = "update_payment",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Payment id"), ("If-Match" = String, Header, description = "ETag of the version being changed")),
    request_body = UpdatePaymentRequest,
    responses(
        (status = 200, body = PaymentResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/payments/{id}")]
pub async fn update_payment(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<UpdatePaymentRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_PAYMENT)?;
    let raw = path.into_inner();
    let expected = if_match_version(&req);
    let b = body.into_inner()?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (current, case) = load_payment(conn, &user, &raw)?;
            if current.status != PaymentStatus::Requested.as_str() {
                return Err(immutable(&current));
            }
            let expected = expected?;
            check_version(current.version, expected, "payment")?;
            let mut next = current.clone();
            if let Some(k) = b.kind {
                next.kind = k.as_str().to_owned();
            }
            if let Some(l) = &b.budget_line {
                next.budget_line = text("body.budget_line", l, 200)?;
            }
            if let Some(d) = &b.description {
                next.description = text("body.description", d, 4000)?;
            }
            if b.amount.is_some() || b.currency.is_some() || b.value_date.is_some() {
                let exp = u32::try_from(current.currency_exponent).unwrap_or(2);
                let amount = b.amount.clone().unwrap_or_else(|| {
                    DecimalInput::Text(format_scaled(current.amount_minor, exp))
                });
                let currency = b
                    .currency
                    .clone()
                    .unwrap_or_else(|| current.currency.clone());
                price(
                    conn,
                    &mut next,
                    "body.amount",
                    &amount,
                    "body.currency",
                    &currency,
                    "body.value_date",
                    b.value_date.unwrap_or(current.value_date),
                )?;
            }
            next.version += 1;
            next.updated_at = Ts::now();
            if !model::update_unpaid_payment(conn, &next, expected)? {
                return Err(changed_meanwhile("payment"));
            }
            let changes = super::field_changes(&current, &next, &["version", "updated_at"]);
            case_service::record_event(
                conn,
                &case,
                "payment.updated",
                Some(user.user_id),
                None,
                serde_json::json!({ "payment_id": next.id, "changes": changes }),
            )?;
            let response = payment_response(next, None)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("payment.update", "payment", Some(response.id.to_string()))
                    .subject(case.person_id)
                    .details(serde_json::json!({ "changes": changes })),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond_payment(&response, false))
}

/// Approve or reject a requested payment: a supervisor of the consulate who
/// did not request it (four eyes).
#[utoipa::path(
    tag = "ledger",
    operation_id = "decide_payment",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Payment id")),
    request_body = PaymentDecisionRequest,
    responses(
        (status = 200, body = PaymentResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a supervisor of the consulate, or the requester", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/payments/{id}/decision")]
pub async fn decide_payment(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<PaymentDecisionRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::DECIDE_PAYMENT)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let note = optional_text("body.note", b.note.as_deref(), 2000)?;
    if matches!(b.decision, PaymentDecision::Reject) && note.is_none() {
        return Err(AppError::invalid(
            "body.note",
            "say why the payment is rejected",
        ));
    }
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (current, case) = load_payment(conn, &user, &raw)?;
            if current.requested_by == user.user_id {
                return Err(AppError::forbidden(
                    "four_eyes",
                    "the approver must not be the requester: another supervisor of the consulate decides",
                ));
            }
            if user.role != Role::Supervisor || user.consulate_id != Some(current.consulate_id) {
                return Err(AppError::forbidden(
                    "forbidden",
                    "only a supervisor of the payment's consulate decides it",
                ));
            }
            if current.status != PaymentStatus::Requested.as_str() {
                return Err(AppError::conflict(
                    "payment_decided",
                    None,
                    format!("the payment is already {}", current.status),
                ));
            }
            let now = Ts::now();
            let mut next = current.clone();
            next.status = match b.decision {
                PaymentDecision::Approve => PaymentStatus::Approved,
                PaymentDecision::Reject => PaymentStatus::Rejected,
            }
            .as_str()
            .to_owned();
            next.decided_by = Some(user.user_id);
            next.decided_at = Some(now);
            next.decision_note = note;
            next.version += 1;
            next.updated_at = now;
            if !model::update_unpaid_payment(conn, &next, current.version)? {
                return Err(changed_meanwhile("payment"));
            }
            let kind = format!("payment.{}", next.status);
            payment_event(conn, &case, &kind, user.user_id, &next)?;
            let response = payment_response(next, None)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("payment.decide", "payment", Some(response.id.to_string()))
                    .subject(case.person_id)
                    .details(serde_json::json!({ "status": response.status })),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond_payment(&response, false))
}

/// Record that an approved payment was paid. From then on the entry is
/// immutable.
#[utoipa::path(
    tag = "ledger",
    operation_id = "mark_payment_paid",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Payment id")),
    request_body = MarkPaidRequest,
    responses(
        (status = 200, body = PaymentResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/payments/{id}/paid")]
pub async fn mark_payment_paid(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<MarkPaidRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::MARK_PAYMENT_PAID)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let reference = text("body.reference", &b.reference, 200)?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (current, case) = load_payment(conn, &user, &raw)?;
            if current.status != PaymentStatus::Approved.as_str() {
                return Err(AppError::conflict(
                    "payment_not_approved",
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
                return Err(changed_meanwhile("payment"));
            }
            payment_event(conn, &case, "payment.paid", user.user_id, &next)?;
            let response = payment_response(next, None)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("payment.paid", "payment", Some(response.id.to_string()))
                    .subject(case.person_id),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond_payment(&response, false))
}

/// Correct a paid entry: a new `reversed` entry with the opposite amounts
/// (same rates) that names it. The paid entry itself never changes.
#[utoipa::path(
    tag = "ledger",
    operation_id = "reverse_payment",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Payment id of the paid entry")),
    request_body = ReversalRequest,
    responses(
        (status = 201, description = "The reversal entry", body = PaymentResponse, headers(("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/payments/{id}/reversal")]
pub async fn reverse_payment(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<ReversalRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::REVERSE_PAYMENT)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let reason = text("body.reason", &b.reason, 2000)?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (original, case) = load_payment(conn, &user, &raw)?;
            if original.status != PaymentStatus::Paid.as_str() {
                return Err(AppError::conflict(
                    "payment_not_paid",
                    None,
                    format!(
                        "only a paid entry is reversed; this one is {}",
                        original.status
                    ),
                ));
            }
            if let Some(existing) = model::reversal_of(conn, original.id)? {
                return Err(AppError::conflict(
                    "already_reversed",
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
            payment_event(conn, &case, "payment.reversed", user.user_id, &reversal)?;
            let response = payment_response(reversal, None)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("payment.reverse", "payment", Some(original.id.to_string()))
                    .subject(case.person_id)
                    .details(serde_json::json!({ "reversal_id": response.id })),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond_payment(&response, true))
}

/// One ledger entry.
#[utoipa::path(
    tag = "ledger",
    operation_id = "get_payment",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Payment id")),
    responses(
        (status = 200, body = PaymentResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/payments/{id}")]
pub async fn get_payment(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::GET_PAYMENT)?;
    let raw = path.into_inner();
    let meta = RequestMeta::of(&req);
    let response = db::run(&state.pool, move |conn| {
        let (p, _) = load_payment(conn, &user, &raw)?;
        let reversed_by = model::reversal_of(conn, p.id)?;
        let mut one = [payment_response(p, reversed_by)?];
        screen_payments(conn, &user, &meta, "payment.read", &mut one)?;
        let [response] = one;
        Ok::<_, AppError>(response)
    })
    .await?;
    Ok(respond_payment(&response, false))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentQuery {
    pub case: Option<uuid::Uuid>,
    pub repatriation: Option<uuid::Uuid>,
    /// Consulate id (national roles; staff see their own).
    pub consulate: Option<uuid::Uuid>,
    pub status: Option<PaymentStatus>,
    pub kind: Option<PaymentKind>,
    /// ISO 4217 code (`USD`, `eur`).
    #[param(pattern = "^\\s*[A-Za-z]{3}\\s*$")]
    pub currency: Option<String>,
    /// Value dates in this calendar year.
    #[param(minimum = 1900, maximum = 9998)]
    pub year: Option<i32>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

fn year_range(year: Option<i32>) -> Result<(Option<NaiveDate>, Option<NaiveDate>), AppError> {
    match year {
        None => Ok((None, None)),
        Some(y) => {
            let from = NaiveDate::from_ymd_opt(y, 1, 1);
            let until = NaiveDate::from_ymd_opt(y + 1, 1, 1);
            match (from, until) {
                (Some(f), Some(u)) if (1900..=9998).contains(&y) => Ok((Some(f), Some(u))),
                _ => Err(AppError::bad_query(
                    "query.year",
                    "must be a year like 2026",
                )),
            }
        }
    }
}

fn currency_filter(raw: Option<&str>) -> Result<Option<String>, AppError> {
    raw.map(|c| {
        money::currency(c)
            .map(|c| c.code.to_owned())
            .ok_or_else(|| AppError::invalid("query.currency", format!("unknown currency `{c}`")))
    })
    .transpose()
}

/// Ledger entries, latest value date first.
#[utoipa::path(
    tag = "ledger",
    operation_id = "list_payments",
    security(("bearer" = [])),
    params(PaymentQuery),
    responses(
        (status = 200, body = Page<PaymentResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/payments")]
pub async fn list_payments(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<PaymentQuery>,
) -> Result<web::Json<Page<PaymentResponse>>, AppError> {
    user.require(&access::LIST_PAYMENTS)?;
    let q = query.into_inner();
    let meta = RequestMeta::of(&req);
    let window = window(q.limit, q.offset)?;
    let (from, until) = year_range(q.year)?;
    let filter = PaymentFilter {
        consulate: scoped_consulate(&user, q.consulate.map(Id)),
        case: q.case.map(Id),
        repatriation: q.repatriation.map(Id),
        statuses: q.status.map(|s| vec![s.as_str().to_owned()]),
        kind: q.kind.map(|k| k.as_str().to_owned()),
        currency: currency_filter(q.currency.as_deref())?,
        from,
        until,
    };
    let (items, total) = db::run(&state.pool, move |conn| {
        let (rows, total) = model::list_payments(conn, &filter, window)?;
        let ids: Vec<Id> = rows.iter().map(|p| p.id).collect();
        let reversals = model::reversals_of(conn, &ids)?;
        let items = rows
            .into_iter()
            .map(|p| {
                let by = reversals.iter().find(|(o, _)| *o == p.id).map(|(_, r)| *r);
                payment_response(p, by)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut items = items;
        screen_payments(conn, &user, &meta, "payment.list", &mut items)?;
        Ok::<_, AppError>((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TotalsQuery {
    /// Value dates in this calendar year (all years by default).
    #[param(minimum = 1900, maximum = 9998)]
    pub year: Option<i32>,
    /// Consulate id (national roles; staff get their own).
    pub consulate: Option<uuid::Uuid>,
    pub kind: Option<PaymentKind>,
    /// ISO 4217 code (`USD`, `eur`).
    #[param(pattern = "^\\s*[A-Za-z]{3}\\s*$")]
    pub currency: Option<String>,
    /// Which entries to add up: `paid` (default: paid entries net of their
    /// reversals), `approved` (committed, not yet paid) or `requested`.
    pub status: Option<PaymentStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsGroup {
    pub consulate_id: Id,
    pub year: i32,
    pub kind: PaymentKind,
    pub currency: String,
    pub entries: i64,
    /// Exact sum in the currency.
    pub amount: String,
    /// Sum of the entries' PEN amounts.
    pub amount_pen: String,
    pub amount_usd: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    pub entries: i64,
    pub amount: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsResponse {
    pub year: Option<i32>,
    /// The statuses added up.
    pub statuses: Vec<PaymentStatus>,
    /// Per consulate, year, kind and currency.
    pub groups: Vec<TotalsGroup>,
    pub by_currency: Vec<CurrencyTotal>,
    pub entries: i64,
    pub total_pen: String,
    pub total_usd: String,
}

/// Ledger totals per consulate, year, kind and currency, to the cent: each
/// is the exact sum of the entries it covers (PEN and USD sums add the
/// entries' own converted amounts, so they too add up line by line).
#[utoipa::path(
    tag = "ledger",
    operation_id = "payment_totals",
    security(("bearer" = [])),
    params(TotalsQuery),
    responses(
        (status = 200, body = TotalsResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/payments/totals")]
pub async fn payment_totals(
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<TotalsQuery>,
) -> Result<web::Json<TotalsResponse>, AppError> {
    user.require(&access::PAYMENT_TOTALS)?;
    let q = query.into_inner();
    let (from, until) = year_range(q.year)?;
    let statuses = match q.status {
        None | Some(PaymentStatus::Paid) | Some(PaymentStatus::Reversed) => {
            vec![PaymentStatus::Paid, PaymentStatus::Reversed]
        }
        Some(s) => vec![s],
    };
    let filter = PaymentFilter {
        consulate: scoped_consulate(&user, q.consulate.map(Id)),
        statuses: Some(statuses.iter().map(|s| s.as_str().to_owned()).collect()),
        kind: q.kind.map(|k| k.as_str().to_owned()),
        currency: currency_filter(q.currency.as_deref())?,
        from,
        until,
        ..PaymentFilter::default()
    };
    let lines = db::run(&state.pool, move |conn| {
        model::ledger_lines(conn, &filter).map_err(AppError::from)
    })
    .await?;
    type Key = (Id, i32, String, String);
    let mut groups: BTreeMap<Key, (i64, i32, i128, i128, i128)> = BTreeMap::new();
    let mut currencies: BTreeMap<String, (i64, i32, i128)> = BTreeMap::new();
    let (mut pen, mut usd, mut entries) = (0_i128, 0_i128, 0_i64);
    for l in lines {
        let g = groups
            .entry((
                l.consulate_id,
                l.value_date.year(),
                l.kind.clone(),
                l.currency.clone(),
            ))
            .or_insert((0, l.currency_exponent, 0, 0, 0));
        g.0 += 1;
        g.2 += i128::from(l.amount_minor);
        g.3 += i128::from(l.amount_pen_cents);
        g.4 += i128::from(l.amount_usd_cents);
        let c = currencies
            .entry(l.currency.clone())
            .or_insert((0, l.currency_exponent, 0));
        c.0 += 1;
        c.2 += i128::from(l.amount_minor);
        pen += i128::from(l.amount_pen_cents);
        usd += i128::from(l.amount_usd_cents);
        entries += 1;
    }
    let fmt = |v: i128, exp: i32| format_scaled(v, u32::try_from(exp).unwrap_or(2));
    Ok(web::Json(TotalsResponse {
        year: q.year,
        statuses,
        groups: groups
            .into_iter()
            .map(
                |((consulate_id, year, kind, currency), (n, exp, amount, p, u))| {
                    Ok(TotalsGroup {
                        consulate_id,
                        year,
                        kind: PaymentKind::stored(&kind)?,
                        currency,
                        entries: n,
                        amount: fmt(amount, exp),
                        amount_pen: fmt(p, 2),
                        amount_usd: fmt(u, 2),
                    })
                },
            )
            .collect::<Result<_, AppError>>()?,
        by_currency: currencies
            .into_iter()
            .map(|(currency, (n, exp, amount))| CurrencyTotal {
                currency,
                entries: n,
                amount: fmt(amount, exp),
            })
            .collect(),
        entries,
        total_pen: fmt(pen, 2),
        total_usd: fmt(usd, 2),
    }))
}
