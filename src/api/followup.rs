//! Follow-up: case corrections and reassignment, tasks with deadlines, and
//! transfers of a case to another consulate.

use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cases::{case_response, ok_with_etag, CaseResponse};
use super::write::write;
use super::{access, if_match_version, window, Page};
use crate::api::RequestOrigin as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::case::Flag;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::cases::{self as model, Task, TaskFilter, Transfer};
use crate::services::followup::{self as service, CaseChange, NewTask};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCaseRequest {
    pub summary: Option<String>,
    pub city: Option<String>,
    /// Alpha-2 or alpha-3.
    pub country: Option<String>,
    /// Replaces the flags. A protected case stays protected.
    pub flags: Option<Vec<Flag>>,
    /// Reassign to another active officer or supervisor of the consulate.
    pub assigned_officer_id: Option<Id>,
}

/// Correct a case or reassign it. Needs `If-Match`; every changed field goes
/// to the timeline as from → to. Protection is never silently cleared.
#[utoipa::path(
    tag = "cases",
    operation_id = "update_case",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id"), ("If-Match" = String, Header, description = "ETag of the version being changed")),
    request_body = UpdateCaseRequest,
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/cases/{id}")]
pub async fn update_case(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<UpdateCaseRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_CASE)?;
    let raw = path.into_inner();
    let expected = if_match_version(&req);
    let b = body.into_inner()?;
    let change = CaseChange {
        summary: b.summary,
        city: b.city,
        country: b.country,
        flags: b.flags,
        assigned_officer_id: b.assigned_officer_id,
    };
    let c = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let case = service::correct(conn, j, &user, &raw, expected, change)
                .map_err(|e| e.under("body"))?;
            case_response(conn, &user, case)
        },
    )
    .await?;
    Ok(ok_with_etag(&c))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskResponse {
    pub id: Id,
    pub case_id: Id,
    pub consulate_id: Id,
    pub title: String,
    pub assignee_id: Option<Id>,
    pub due_at: Option<Ts>,
    pub done_at: Option<Ts>,
    /// The protocol step it comes from, if any.
    pub case_step_id: Option<Id>,
    pub overdue: bool,
    pub created_at: Ts,
}

fn task_response(t: Task, now: Ts) -> TaskResponse {
    TaskResponse {
        overdue: t.done_at.is_none() && t.due_at.is_some_and(|d| d < now),
        id: t.id,
        case_id: t.case_id,
        consulate_id: t.consulate_id,
        title: t.title,
        assignee_id: t.assignee_id,
        due_at: t.due_at,
        done_at: t.done_at,
        case_step_id: t.case_step_id,
        created_at: t.created_at,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// Only open tasks past their due time.
    pub overdue: Option<bool>,
    /// Only open tasks.
    pub open: Option<bool>,
    /// Consulate id (national roles; staff see their own).
    pub consulate: Option<uuid::Uuid>,
    /// Assignee's user id.
    pub officer: Option<uuid::Uuid>,
    pub case: Option<uuid::Uuid>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Follow-up tasks, soonest due first; `overdue=true` per consulate and officer.
#[utoipa::path(
    tag = "cases",
    operation_id = "list_tasks",
    security(("bearer" = [])),
    params(TaskQuery),
    responses(
        (status = 200, body = Page<TaskResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/tasks")]
pub async fn list_tasks(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<TaskQuery>,
) -> Result<web::Json<Page<TaskResponse>>, AppError> {
    user.require(&access::LIST_TASKS)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let now = Ts::now();
    let filter = TaskFilter {
        consulate: if user.role.is_consulate_scoped() {
            user.consulate_id
        } else {
            q.consulate.map(Id)
        },
        assignee: q.officer.map(Id),
        case: q.case.map(Id),
        overdue_at: q.overdue.unwrap_or(false).then_some(now),
        open_only: q.open.unwrap_or(false),
    };
    let meta = RequestMeta::of(&req);
    let (items, total) = db::run(&state.pool, move |conn| {
        let (rows, total) = model::list_tasks(conn, &filter, window)?;
        let mut items: Vec<TaskResponse> =
            rows.into_iter().map(|t| task_response(t, now)).collect();
        super::disclosure::screen(
            conn,
            &user,
            &meta,
            AuditAction::TaskList,
            &mut items,
            |t| t.case_id,
            |t| {
                t.title = super::disclosure::WITHHELD.into();
            },
        )?;
        Ok::<_, AppError>((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub title: String,
    pub assignee_id: Option<Id>,
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Add a follow-up task to a case.
#[utoipa::path(
    tag = "cases",
    operation_id = "create_task",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    request_body = CreateTaskRequest,
    responses(
        (status = 201, body = TaskResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/tasks")]
pub async fn create_task(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<CreateTaskRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_TASK)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let title = b.title.trim().to_owned();
    if title.is_empty() || title.chars().count() > 500 {
        return Err(AppError::invalid(
            "body.title",
            "must be 1 to 500 characters",
        ));
    }
    let new = NewTask {
        title,
        assignee_id: b.assignee_id,
        due_at: b.due_at,
    };
    let task = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let task = service::add_task(conn, j, &user, &raw, new).map_err(|e| e.under("body"))?;
            Ok(task_response(task, Ts::now()))
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(task))
}

/// Mark a task done.
#[utoipa::path(
    tag = "cases",
    operation_id = "complete_task",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, body = TaskResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/tasks/{id}/done")]
pub async fn complete_task(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<web::Json<TaskResponse>, AppError> {
    user.require(&access::COMPLETE_TASK)?;
    let raw = path.into_inner();
    let task = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            Ok(task_response(
                service::complete_task(conn, j, &user, &raw)?,
                Ts::now(),
            ))
        },
    )
    .await?;
    Ok(web::Json(task))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferResponse {
    pub id: Id,
    pub case_id: Id,
    pub from_consulate_id: Id,
    pub to_consulate_id: Id,
    pub reason: String,
    /// `requested`, `accepted` or `rejected`.
    pub status: String,
    pub requested_by: Option<Id>,
    pub requested_at: Ts,
    pub decided_by: Option<Id>,
    pub decided_at: Option<Ts>,
}

fn transfer_response(t: Transfer) -> TransferResponse {
    TransferResponse {
        id: t.id,
        case_id: t.case_id,
        from_consulate_id: t.from_consulate_id,
        to_consulate_id: t.to_consulate_id,
        reason: t.reason,
        status: t.status,
        requested_by: t.requested_by,
        requested_at: t.requested_at,
        decided_by: t.decided_by,
        decided_at: t.decided_at,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The receiving consulate (id or code).
    pub to: String,
    #[schema(min_length = 1, pattern = "\\S")]
    pub reason: String,
}

/// Ask another consulate to take a case over; its supervisor accepts or rejects.
#[utoipa::path(
    tag = "cases",
    operation_id = "request_transfer",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    request_body = TransferRequest,
    responses(
        (status = 201, body = TransferResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/transfers")]
pub async fn request_transfer(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<TransferRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::REQUEST_TRANSFER)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let reason = b.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid("body.reason", "say why the case moves"));
    }
    let t = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let t = service::request_transfer(conn, j, &user, &raw, &b.to, reason)
                .map_err(|e| e.under("body"))?;
            Ok(transfer_response(t))
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(t))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferDecision {
    /// `accept` or `reject`.
    #[schema(pattern = "^(accept|reject)$")]
    pub decision: String,
}

/// The receiving consulate's supervisor accepts (access moves with the case)
/// or rejects a transfer.
#[utoipa::path(
    tag = "cases",
    operation_id = "decide_transfer",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Transfer id")),
    request_body = TransferDecision,
    responses(
        (status = 200, body = TransferResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/transfers/{id}/decision")]
pub async fn decide_transfer(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<TransferDecision>,
) -> Result<web::Json<TransferResponse>, AppError> {
    user.require(&access::DECIDE_TRANSFER)?;
    let raw = path.into_inner();
    let decision = body.into_inner()?.decision;
    let accept = match decision.as_str() {
        "accept" => true,
        "reject" => false,
        _ => return Err(AppError::invalid("body.decision", "accept or reject")),
    };
    let t = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            Ok(transfer_response(service::decide_transfer(
                conn, j, &user, &raw, accept,
            )?))
        },
    )
    .await?;
    Ok(web::Json(t))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransferQuery {
    /// `incoming` (to the caller's consulate, default) or `outgoing`.
    #[param(pattern = "^(incoming|outgoing)$")]
    pub direction: Option<String>,
    /// `requested`, `accepted` or `rejected`.
    #[param(pattern = "^(requested|accepted|rejected)$")]
    pub status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Transfers to or from the caller's consulate.
#[utoipa::path(
    tag = "cases",
    operation_id = "list_transfers",
    security(("bearer" = [])),
    params(TransferQuery),
    responses(
        (status = 200, body = Page<TransferResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/transfers")]
pub async fn list_transfers(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<TransferQuery>,
) -> Result<web::Json<Page<TransferResponse>>, AppError> {
    user.require(&access::LIST_TRANSFERS)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let own = user.consulate_id;
    let (to, from) = match q.direction.as_deref() {
        None | Some("incoming") => (own, None),
        Some("outgoing") => (None, own),
        Some(_) => {
            return Err(AppError::bad_query(
                "query.direction",
                "incoming or outgoing",
            ))
        }
    };
    if let Some(s) = &q.status {
        if !["requested", "accepted", "rejected"].contains(&s.as_str()) {
            return Err(AppError::bad_query(
                "query.status",
                "requested, accepted or rejected",
            ));
        }
    }
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let (rows, total) = db::run(&state.pool, move |conn| {
        let (rows, total) = model::list_transfers(conn, to, from, q.status.as_deref(), window)?;
        let mut persons = Vec::new();
        for t in &rows {
            if let Some(c) = model::find_case(conn, t.case_id)? {
                persons.push(c.person_id);
            }
        }
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(AuditAction::TransferList, "case_transfer", None)
                .details(serde_json::json!({ "results": total }))
                .subjects(persons),
        )?;
        Ok((rows, total))
    })
    .await?;
    Ok(web::Json(Page::new(
        &req,
        rows.into_iter().map(transfer_response).collect(),
        total,
        window,
    )))
}
