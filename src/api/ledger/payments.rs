//! Payment requests, their decision, payment and reversal, and reading
//! the ledger's entries.

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::cases::load_scoped;
use crate::api::support::scoped_consulate;
use crate::api::write::{write, write_once, Written};
use crate::api::{access, if_match_version, optional_text, text, window, Page, RequestOrigin as _};
use crate::audit::RequestMeta;
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::money::{self, format_rate, format_scaled, DecimalInput};
use crate::domain::support::{PaymentKind, PaymentStatus};
use crate::domain::Stored;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::idempotency::Idempotency;
use crate::models::support::{self as model, Payment, PaymentFilter};
use crate::services::ledger::{
    self as service, amount_text, load_payment, NewPayment, PaymentChange,
};
use crate::AppState;

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
    action: AuditAction,
    items: &mut [PaymentResponse],
) -> Result<(), AppError> {
    crate::api::disclosure::screen(
        conn,
        user,
        meta,
        action,
        items,
        |p| p.case_id,
        |p| {
            p.description = crate::api::disclosure::WITHHELD.into();
            p.decision_note = crate::api::disclosure::withheld(&p.decision_note);
            p.payment_reference = crate::api::disclosure::withheld(&p.payment_reference);
        },
    )
}

fn payment_response(p: Payment, reversed_by: Option<Id>) -> Result<PaymentResponse, AppError> {
    Ok(PaymentResponse {
        kind: PaymentKind::stored(&p.kind)?,
        status: PaymentStatus::stored(&p.status)?,
        amount: amount_text(&p)?,
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
    crate::api::with_etag(created, p.version, format!("/api/v1/payments/{}", p.id), p)
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
    let (actor, meta) = (user.actor(), RequestMeta::of(&req));
    let new = NewPayment {
        kind: b.kind,
        amount: b.amount,
        currency: b.currency,
        value_date: b.value_date,
        budget_line: b.budget_line,
        description: b.description,
        repatriation_id: b.repatriation_id,
    };
    let written = write_once(
        &state,
        actor,
        meta,
        idem,
        StatusCode::CREATED,
        move |conn, j| {
            let case = load_scoped(conn, &user, &raw)?;
            let p = service::request(conn, j, &user, &case, new).map_err(|e| e.under("body"))?;
            payment_response(p, None)
        },
    )
    .await?;
    Ok(match written {
        Written::Done(response) => respond_payment(&response, true),
        Written::Replayed(replay) => replay,
    })
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
    let change = PaymentChange {
        kind: b.kind,
        amount: b.amount,
        currency: b.currency,
        value_date: b.value_date,
        budget_line: b.budget_line,
        description: b.description,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let p = service::update(conn, j, &user, &raw, expected, change)
                .map_err(|e| e.under("body"))?;
            payment_response(p, None)
        },
    )
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
    let approve = matches!(b.decision, PaymentDecision::Approve);
    if !approve && note.is_none() {
        return Err(AppError::invalid(
            "body.note",
            "say why the payment is rejected",
        ));
    }
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            payment_response(service::decide(conn, j, &user, &raw, approve, note)?, None)
        },
    )
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
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| payment_response(service::mark_paid(conn, j, &user, &raw, reference)?, None),
    )
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
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| payment_response(service::reverse(conn, j, &user, &raw, reason)?, None),
    )
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
        screen_payments(conn, &user, &meta, AuditAction::PaymentRead, &mut one)?;
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

pub(super) fn year_range(
    year: Option<i32>,
) -> Result<(Option<NaiveDate>, Option<NaiveDate>), AppError> {
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

pub(super) fn currency_filter(raw: Option<&str>) -> Result<Option<String>, AppError> {
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
        screen_payments(conn, &user, &meta, AuditAction::PaymentList, &mut items)?;
        Ok::<_, AppError>((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}
