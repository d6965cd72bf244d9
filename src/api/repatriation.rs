//! Repatriation, return assistance (with the Returning Migrant Card) and
//! transfer of remains: each with its own steps, costs from the ledger, and
//! the return date.

use crate::domain::audit::AuditAction;
use crate::domain::Stored;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access;
use super::cases::load_scoped;
use super::{if_match_version, write::write};
use crate::api::RequestOrigin as _;
use crate::audit::RequestMeta;
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::money::format_scaled;
use crate::domain::support::{PaymentStatus, RepatriationKind, RepatriationStatus, StepStatus};
use crate::error::{AppError, Problem};
use crate::extract::JsonBody;
use crate::models::support::{
    self as model, Payment, PaymentFilter, Repatriation, RepatriationStep,
};
use crate::services::ledger::amount_text;
use crate::services::repatriation::{
    self as service, NewRepatriation, RepatriationChange, StepDecision,
};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRepatriationRequest {
    pub kind: RepatriationKind,
    /// Where in Peru the person (or the remains) goes.
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub destination: String,
    pub planned_on: Option<NaiveDate>,
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRepatriationRequest {
    /// `planned → in_progress | cancelled`, `in_progress → completed |
    /// cancelled`. Completing needs the last step done and a return date.
    pub status: Option<RepatriationStatus>,
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub destination: Option<String>,
    pub planned_on: Option<NaiveDate>,
    /// The day the person (or the remains) arrived in Peru.
    pub return_date: Option<NaiveDate>,
    /// Return assistance only: the Returning Migrant Card was issued.
    pub migrant_card_issued: Option<bool>,
    pub migrant_card_issued_on: Option<NaiveDate>,
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepatriationStepRequest {
    pub status: StepStatus,
    /// When it was done (today by default).
    pub done_on: Option<NaiveDate>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RepatriationStepResponse {
    pub step: String,
    pub position: i32,
    pub status: StepStatus,
    pub done_on: Option<NaiveDate>,
    pub notes: Option<String>,
    pub decided_by: Option<Id>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CostLine {
    pub payment_id: Id,
    pub kind: String,
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub amount_pen: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RepatriationResponse {
    pub id: Id,
    pub case_id: Id,
    pub consulate_id: Id,
    pub kind: RepatriationKind,
    pub status: RepatriationStatus,
    pub destination: String,
    pub planned_on: Option<NaiveDate>,
    pub return_date: Option<NaiveDate>,
    pub migrant_card_issued: bool,
    pub migrant_card_issued_on: Option<NaiveDate>,
    pub notes: Option<String>,
    pub steps: Vec<RepatriationStepResponse>,
    /// Ledger entries linked to it.
    pub costs: Vec<CostLine>,
    /// Paid, net of reversals, in PEN.
    pub paid_pen: String,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

fn responses(
    conn: &mut DbConn,
    rows: Vec<Repatriation>,
) -> Result<Vec<RepatriationResponse>, AppError> {
    let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
    let steps = model::steps_of_repatriations(conn, &ids)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let filter = PaymentFilter {
            repatriation: Some(r.id),
            ..PaymentFilter::default()
        };
        let window = crate::models::reference::Window {
            limit: 1000,
            offset: 0,
        };
        let (payments, _) = model::list_payments(conn, &filter, window)?;
        let mut paid = 0_i64;
        for p in &payments {
            // a reversal is paid back: its negative amount counts
            if let PaymentStatus::Paid | PaymentStatus::Reversed = PaymentStatus::stored(&p.status)?
            {
                paid += p.amount_pen_cents;
            }
        }
        out.push(RepatriationResponse {
            kind: RepatriationKind::stored(&r.kind)?,
            status: RepatriationStatus::stored(&r.status)?,
            steps: steps
                .iter()
                .filter(|s| s.repatriation_id == r.id)
                .map(step_response)
                .collect::<Result<_, AppError>>()?,
            costs: payments
                .into_iter()
                .map(cost_line)
                .collect::<Result<_, AppError>>()?,
            paid_pen: format_scaled(paid, 2),
            id: r.id,
            case_id: r.case_id,
            consulate_id: r.consulate_id,
            destination: r.destination,
            planned_on: r.planned_on,
            return_date: r.return_date,
            migrant_card_issued: r.migrant_card_issued,
            migrant_card_issued_on: r.migrant_card_issued_on,
            notes: r.notes,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        });
    }
    Ok(out)
}

fn step_response(s: &RepatriationStep) -> Result<RepatriationStepResponse, AppError> {
    Ok(RepatriationStepResponse {
        step: s.step.clone(),
        position: s.position,
        status: StepStatus::stored(&s.status)?,
        done_on: s.done_on,
        notes: s.notes.clone(),
        decided_by: s.decided_by,
    })
}

fn cost_line(p: Payment) -> Result<CostLine, AppError> {
    Ok(CostLine {
        payment_id: p.id,
        amount: amount_text(&p)?,
        amount_pen: format_scaled(p.amount_pen_cents, 2),
        kind: p.kind,
        status: p.status,
        currency: p.currency,
    })
}

fn one(conn: &mut DbConn, r: Repatriation) -> Result<RepatriationResponse, AppError> {
    responses(conn, vec![r])?
        .pop()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("repatriation vanished")))
}

fn respond(r: &RepatriationResponse, created: bool) -> HttpResponse {
    super::with_etag(
        created,
        r.version,
        format!("/api/v1/repatriations/{}", r.id),
        r,
    )
}

/// Start a repatriation, a return assistance or a transfer of remains on a
/// case, with the steps of its kind.
#[utoipa::path(
    tag = "repatriation",
    operation_id = "create_repatriation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    request_body = CreateRepatriationRequest,
    responses(
        (status = 201, body = RepatriationResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/repatriations")]
pub async fn create_repatriation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<CreateRepatriationRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_REPATRIATION)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let new = NewRepatriation {
        kind: b.kind,
        destination: b.destination,
        planned_on: b.planned_on,
        notes: b.notes,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let case = load_scoped(conn, &user, &raw)?;
            let r = service::create(conn, j, &user, &case, new).map_err(|e| e.under("body"))?;
            one(conn, r)
        },
    )
    .await?;
    Ok(respond(&response, true))
}

/// The repatriations of a case.
#[utoipa::path(
    tag = "repatriation",
    operation_id = "list_case_repatriations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, body = Vec<RepatriationResponse>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/repatriations")]
pub async fn list_case_repatriations(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<web::Json<Vec<RepatriationResponse>>, AppError> {
    user.require(&access::LIST_CASE_REPATRIATIONS)?;
    let raw = path.into_inner();
    let meta = RequestMeta::of(&req);
    let items = db::run(&state.pool, move |conn| {
        let case = load_scoped(conn, &user, &raw)?;
        let rows = model::repatriations_of_case(conn, case.id)?;
        let mut items = responses(conn, rows)?;
        super::disclosure::screen(
            conn,
            &user,
            &meta,
            AuditAction::RepatriationList,
            &mut items,
            |r| r.case_id,
            withhold_repatriation,
        )?;
        Ok(items)
    })
    .await?;
    Ok(web::Json(items))
}

/// One repatriation with its steps and costs.
#[utoipa::path(
    tag = "repatriation",
    operation_id = "get_repatriation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Repatriation id")),
    responses(
        (status = 200, body = RepatriationResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/repatriations/{id}")]
pub async fn get_repatriation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::GET_REPATRIATION)?;
    let raw = path.into_inner();
    let meta = RequestMeta::of(&req);
    let response = db::run(&state.pool, move |conn| {
        let (r, _) = service::load(conn, &user, &raw)?;
        let mut items = [one(conn, r)?];
        super::disclosure::screen(
            conn,
            &user,
            &meta,
            AuditAction::RepatriationRead,
            &mut items,
            |r| r.case_id,
            withhold_repatriation,
        )?;
        let [response] = items;
        Ok(response)
    })
    .await?;
    Ok(respond(&response, false))
}

/// A repatriation whose case's text the caller may not read: where to and
/// what was noted are withheld.
fn withhold_repatriation(r: &mut RepatriationResponse) {
    use super::disclosure::{withheld, WITHHELD};
    r.destination = WITHHELD.into();
    r.notes = withheld(&r.notes);
    for s in &mut r.steps {
        s.notes = withheld(&s.notes);
    }
}

/// Change a repatriation's status, dates or Returning Migrant Card (needs
/// `If-Match`).
#[utoipa::path(
    tag = "repatriation",
    operation_id = "update_repatriation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Repatriation id"), ("If-Match" = String, Header, description = "ETag of the version being changed")),
    request_body = UpdateRepatriationRequest,
    responses(
        (status = 200, body = RepatriationResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/repatriations/{id}")]
pub async fn update_repatriation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<UpdateRepatriationRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_REPATRIATION)?;
    let raw = path.into_inner();
    let expected = if_match_version(&req);
    let b = body.into_inner()?;
    let change = RepatriationChange {
        status: b.status,
        destination: b.destination,
        planned_on: b.planned_on,
        return_date: b.return_date,
        migrant_card_issued: b.migrant_card_issued,
        migrant_card_issued_on: b.migrant_card_issued_on,
        notes: b.notes,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let r = service::update(conn, j, &user, &raw, expected, change)
                .map_err(|e| e.under("body"))?;
            one(conn, r)
        },
    )
    .await?;
    Ok(respond(&response, false))
}

/// Mark a step done, not needed, or pending again. The first decided step
/// puts a planned repatriation in progress.
#[utoipa::path(
    tag = "repatriation",
    operation_id = "decide_repatriation_step",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Repatriation id"),
        ("step" = String, Path, description = "Step name, e.g. `ticket`"),
    ),
    request_body = RepatriationStepRequest,
    responses(
        (status = 200, body = RepatriationResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/repatriations/{id}/steps/{step}")]
pub async fn decide_repatriation_step(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, String)>,
    body: JsonBody<RepatriationStepRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::DECIDE_REPATRIATION_STEP)?;
    let (raw, step_name) = path.into_inner();
    let b = body.into_inner()?;
    let decision = StepDecision {
        status: b.status,
        done_on: b.done_on,
        notes: b.notes,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let r = service::decide_step(conn, j, &user, &raw, &step_name, decision)
                .map_err(|e| e.under("body"))?;
            one(conn, r)
        },
    )
    .await?;
    Ok(respond(&response, false))
}
