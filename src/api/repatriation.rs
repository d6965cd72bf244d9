//! Repatriation, return assistance (with the Returning Migrant Card) and
//! transfer of remains: each with its own steps, costs from the ledger, and
//! the return date.

use crate::domain::Stored;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cases::load_scoped;
use super::support::past_date;
use super::{access, changed_meanwhile, check_version, if_match_version, optional_text, text};
use crate::api::RequestOrigin as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::money::format_scaled;
use crate::domain::support::{RepatriationKind, RepatriationStatus, StepStatus};
use crate::error::{AppError, Problem};
use crate::extract::JsonBody;
use crate::models::cases::{self as cases_model, Case};
use crate::models::support::{self as model, PaymentFilter, Repatriation, RepatriationStep};
use crate::services::cases as case_service;
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
        let (payments, _) = model::list_payments(
            conn,
            &filter,
            crate::models::reference::Window {
                limit: 1000,
                offset: 0,
            },
        )?;
        let paid: i64 = payments
            .iter()
            .filter(|p| p.status == "paid" || p.status == "reversed")
            .map(|p| p.amount_pen_cents)
            .sum();
        out.push(RepatriationResponse {
            kind: RepatriationKind::stored(&r.kind)?,
            status: RepatriationStatus::stored(&r.status)?,
            steps: steps
                .iter()
                .filter(|s| s.repatriation_id == r.id)
                .map(|s| {
                    Ok(RepatriationStepResponse {
                        step: s.step.clone(),
                        position: s.position,
                        status: StepStatus::stored(&s.status)?,
                        done_on: s.done_on,
                        notes: s.notes.clone(),
                        decided_by: s.decided_by,
                    })
                })
                .collect::<Result<_, AppError>>()?,
            costs: payments
                .into_iter()
                .map(|p| CostLine {
                    payment_id: p.id,
                    amount: format_scaled(
                        p.amount_minor,
                        u32::try_from(p.currency_exponent).unwrap_or(2),
                    ),
                    amount_pen: format_scaled(p.amount_pen_cents, 2),
                    kind: p.kind,
                    status: p.status,
                    currency: p.currency,
                })
                .collect(),
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let case = load_scoped(conn, &user, &raw)?;
            if case.status == "closed" {
                return Err(AppError::conflict(
                    "case_closed",
                    None,
                    "the case is closed; reopen it first",
                ));
            }
            let now = Ts::now();
            let r = Repatriation {
                id: Id::new(),
                case_id: case.id,
                person_id: case.person_id,
                consulate_id: case.consulate_id,
                kind: b.kind.as_str().to_owned(),
                status: RepatriationStatus::Planned.as_str().to_owned(),
                destination: text("body.destination", &b.destination, 300)?,
                planned_on: b.planned_on,
                return_date: None,
                migrant_card_issued: false,
                migrant_card_issued_on: None,
                notes: optional_text("body.notes", b.notes.as_deref(), 4000)?,
                version: 1,
                created_by: Some(user.user_id),
                created_at: now,
                updated_at: now,
            };
            let steps: Vec<RepatriationStep> = b
                .kind
                .steps()
                .iter()
                .enumerate()
                .map(|(i, s)| RepatriationStep {
                    id: Id::new(),
                    repatriation_id: r.id,
                    step: (*s).to_owned(),
                    position: i as i32 + 1,
                    status: StepStatus::Pending.as_str().to_owned(),
                    done_on: None,
                    notes: None,
                    decided_by: None,
                    decided_at: None,
                })
                .collect();
            model::insert_repatriation(conn, &r, &steps)?;
            case_service::record_event(
                conn,
                &case,
                "repatriation.created",
                Some(user.user_id),
                None,
                serde_json::json!({ "repatriation_id": r.id, "kind": r.kind, "destination": r.destination }),
            )?;
            let response = one(conn, r)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("repatriation.create", "repatriation", Some(response.id.to_string()))
                    .subject(case.person_id),
            )?;
            Ok(response)
        })
    })
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
            "repatriation.list",
            &mut items,
            |r| r.case_id,
            withhold_repatriation,
        )?;
        Ok(items)
    })
    .await?;
    Ok(web::Json(items))
}

fn load_repatriation(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
) -> Result<(Repatriation, Case), AppError> {
    let missing = || AppError::not_found(format!("no repatriation `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let r = model::find_repatriation(conn, id)?.ok_or_else(missing)?;
    if !user.can_touch_consulate(r.consulate_id) {
        return Err(AppError::OutOfScope(format!("no repatriation `{raw}`")));
    }
    let case = cases_model::find_case(conn, r.case_id)?.ok_or_else(missing)?;
    Ok((r, case))
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
        let (r, _) = load_repatriation(conn, &user, &raw)?;
        let mut items = [one(conn, r)?];
        super::disclosure::screen(
            conn,
            &user,
            &meta,
            "repatriation.read",
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

fn terminal(r: &Repatriation) -> Result<(), AppError> {
    if r.status == "completed" || r.status == "cancelled" {
        return Err(AppError::conflict(
            "repatriation_finished",
            None,
            format!("the repatriation is {}", r.status),
        ));
    }
    Ok(())
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (current, case) = load_repatriation(conn, &user, &raw)?;
            let expected = expected?;
            check_version(current.version, expected, "repatriation")?;
            terminal(&current)?;
            let kind = RepatriationKind::stored(&current.kind)?;
            let mut next = current.clone();
            if let Some(d) = &b.destination {
                next.destination = text("body.destination", d, 300)?;
            }
            if b.planned_on.is_some() {
                next.planned_on = b.planned_on;
            }
            if let Some(d) = b.return_date {
                next.return_date = Some(past_date("body.return_date", d)?);
            }
            if b.notes.is_some() {
                next.notes = optional_text("body.notes", b.notes.as_deref(), 4000)?;
            }
            if b.migrant_card_issued.is_some() || b.migrant_card_issued_on.is_some() {
                if kind != RepatriationKind::ReturnAssistance {
                    return Err(AppError::invalid(
                        "body.migrant_card_issued",
                        "the Returning Migrant Card belongs to return assistance",
                    ));
                }
                let issued = b.migrant_card_issued.unwrap_or(true);
                next.migrant_card_issued = issued;
                next.migrant_card_issued_on = if issued {
                    Some(past_date(
                        "body.migrant_card_issued_on",
                        b.migrant_card_issued_on
                            .unwrap_or_else(|| chrono::Utc::now().date_naive()),
                    )?)
                } else {
                    None
                };
            }
            if let Some(s) = b.status {
                let from = RepatriationStatus::stored(&current.status)?;
                let allowed: &[RepatriationStatus] = match from {
                    RepatriationStatus::Planned => &[
                        RepatriationStatus::InProgress,
                        RepatriationStatus::Cancelled,
                    ],
                    RepatriationStatus::InProgress => {
                        &[RepatriationStatus::Completed, RepatriationStatus::Cancelled]
                    }
                    _ => &[],
                };
                if s != from && !allowed.contains(&s) {
                    return Err(AppError::conflict(
                        "invalid_transition",
                        Some("body.status"),
                        format!(
                            "a {} repatriation cannot become {}",
                            from.as_str(),
                            s.as_str()
                        ),
                    ));
                }
                if s == RepatriationStatus::Completed {
                    let steps = model::steps_of_repatriations(conn, &[current.id])?;
                    let last_done = steps.last().is_some_and(|l| l.status == "done");
                    if !last_done {
                        return Err(AppError::conflict(
                            "steps_pending",
                            Some("body.status"),
                            format!(
                                "the last step ({}) must be done to complete it",
                                kind.steps().last().copied().unwrap_or_default()
                            ),
                        ));
                    }
                    if next.return_date.is_none() {
                        return Err(AppError::invalid(
                            "body.return_date",
                            "is required to complete the repatriation",
                        ));
                    }
                }
                next.status = s.as_str().to_owned();
            }
            next.version += 1;
            next.updated_at = Ts::now();
            if !model::update_repatriation(conn, &next, expected)? {
                return Err(changed_meanwhile("repatriation"));
            }
            let changes = super::field_changes(&current, &next, &["version", "updated_at"]);
            case_service::record_event(
                conn,
                &case,
                "repatriation.updated",
                Some(user.user_id),
                None,
                serde_json::json!({ "repatriation_id": next.id, "changes": changes }),
            )?;
            let response = one(conn, next)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new(
                    "repatriation.update",
                    "repatriation",
                    Some(response.id.to_string()),
                )
                .subject(case.person_id)
                .details(serde_json::json!({ "fields": changes.keys().collect::<Vec<_>>() })),
            )?;
            Ok(response)
        })
    })
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (current, case) = load_repatriation(conn, &user, &raw)?;
            terminal(&current)?;
            let steps = model::steps_of_repatriations(conn, &[current.id])?;
            let last = steps.last().map(|s| s.id);
            let mut step = steps
                .into_iter()
                .find(|s| s.step == step_name)
                .ok_or_else(|| {
                    AppError::not_found(format!("this {} has no step `{step_name}`", current.kind))
                })?;
            if b.status == StepStatus::NotNeeded && Some(step.id) == last {
                return Err(AppError::invalid(
                    "body.status",
                    "the last step is what completes it; it cannot be skipped",
                ));
            }
            let from = step.status.clone();
            step.status = b.status.as_str().to_owned();
            step.done_on = match b.status {
                StepStatus::Done => Some(past_date(
                    "body.done_on",
                    b.done_on.unwrap_or_else(|| chrono::Utc::now().date_naive()),
                )?),
                _ => None,
            };
            if b.notes.is_some() {
                step.notes = optional_text("body.notes", b.notes.as_deref(), 2000)?;
            }
            step.decided_by = Some(user.user_id);
            step.decided_at = Some(Ts::now());
            model::update_repatriation_step(conn, &step)?;
            let mut next = current.clone();
            if next.status == "planned" && b.status != StepStatus::Pending {
                next.status = RepatriationStatus::InProgress.as_str().to_owned();
            }
            next.version += 1;
            next.updated_at = Ts::now();
            if !model::update_repatriation(conn, &next, current.version)? {
                return Err(AppError::PreconditionFailed(
                    "the repatriation changed meanwhile; retry".into(),
                ));
            }
            case_service::record_event(
                conn,
                &case,
                "repatriation.step",
                Some(user.user_id),
                None,
                serde_json::json!({
                    "repatriation_id": next.id,
                    "step": step.step,
                    "from": from,
                    "to": step.status,
                    "done_on": step.done_on,
                }),
            )?;
            let response = one(conn, next)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new(
                    "repatriation.step",
                    "repatriation",
                    Some(response.id.to_string()),
                )
                .subject(case.person_id)
                .details(serde_json::json!({ "step": step_name, "status": b.status.as_str() })),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond(&response, false))
}
