//! Follow-up: case corrections and reassignment, tasks with deadlines, and
//! transfers of a case to another consulate.

use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cases::{answer_and_audit, load_scoped, ok_with_etag, CaseResponse};
use super::{access, if_match_version, window, Page};
use crate::api::RequestOrigin as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, Id, Ts};
use crate::domain::access::AccessLevel;
use crate::domain::case::Flag;
use crate::domain::role::Role;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::cases::{self as model, Task, TaskFilter, Transfer};
use crate::models::reference::{self as reference_model, ConsulateKey};
use crate::services::cases as service;
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let c = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let current = load_scoped(conn, &user, &raw)?;
            let expected = expected?;
            if current.version != expected {
                return Err(AppError::PreconditionFailed(format!(
                    "the case is at version {}, not {expected}",
                    current.version
                )));
            }
            let mut next = current.clone();
            if let Some(s) = &b.summary {
                let s = s.trim();
                if s.is_empty() || s.chars().count() > 4000 {
                    return Err(AppError::invalid(
                        "body.summary",
                        "must be 1 to 4000 characters",
                    ));
                }
                next.summary = s.to_owned();
            }
            if let Some(city) = &b.city {
                next.city = Some(city.trim().to_owned()).filter(|c| !c.is_empty());
            }
            if let Some(code) = &b.country {
                next.country_code = reference_model::find_country_by_code(conn, code)?
                    .ok_or_else(|| {
                        AppError::invalid("body.country", format!("unknown country code `{code}`"))
                    })?
                    .alpha2;
            }
            if let Some(flags) = &b.flags {
                let mut flags = flags.clone();
                flags.sort();
                flags.dedup();
                next.protected = current.protected || flags.iter().any(|f| f.protects());
                next.flags = serde_json::to_string(&flags).map_err(AppError::internal)?;
            }
            if let Some(officer) = b.assigned_officer_id {
                let ok = match crate::models::users::find_user(conn, officer)? {
                    Some(u) => {
                        u.active
                            && u.consulate_id == Some(current.consulate_id)
                            && u.role()?.is_consulate_scoped()
                    }
                    None => false,
                };
                if !ok {
                    return Err(AppError::invalid(
                        "body.assigned_officer_id",
                        "not an active officer of this case's consulate",
                    ));
                }
                next.assigned_officer_id = Some(officer);
            }
            next.version += 1;
            next.updated_at = Ts::now();
            if !model::update_case(conn, &next, expected)? {
                return Err(AppError::PreconditionFailed(
                    "the case changed meanwhile; read it again".into(),
                ));
            }
            if next.country_code != current.country_code {
                model::set_attentions_country(conn, next.id, &next.country_code)?;
            }
            if next.protected && !current.protected {
                crate::services::access::case_protected(
                    conn,
                    next.person_id,
                    next.consulate_id,
                    Some(user.user_id),
                )?;
            }
            let changes = super::field_changes(&current, &next, &["version", "updated_at"]);
            let kind = if changes.keys().all(|k| k == "assigned_officer_id") && !changes.is_empty()
            {
                "case.reassigned"
            } else {
                "case.updated"
            };
            service::record_event(
                conn,
                &next,
                kind,
                Some(user.user_id),
                None,
                serde_json::json!({ "changes": changes }),
            )?;
            let event = Event::new("case.update", "case", Some(next.id.to_string()))
                .details(serde_json::json!({ "fields": changes.keys().collect::<Vec<_>>() }));
            answer_and_audit(conn, &user, &actor, &meta, next, event)
        })
    })
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
            "task.list",
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let task = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let case = load_scoped(conn, &user, &raw)?;
            if let Some(a) = b.assignee_id {
                let ok = crate::models::users::find_user(conn, a)?.is_some_and(|u| u.active && u.consulate_id == Some(case.consulate_id));
                if !ok {
                    return Err(AppError::invalid("body.assignee_id", "not an active user of this case's consulate"));
                }
            }
            let task = Task {
                id: Id::new(),
                case_id: case.id,
                consulate_id: case.consulate_id,
                title,
                assignee_id: b.assignee_id.or(case.assigned_officer_id),
                due_at: b.due_at.map(Ts::from),
                done_at: None,
                case_step_id: None,
                created_by: Some(user.user_id),
                created_at: Ts::now(),
            };
            model::insert_task(conn, &task)?;
            service::record_event(conn, &case, "task.created", Some(user.user_id), None, serde_json::json!({ "task_id": task.id, "title": task.title, "due_at": task.due_at }))?;
            audit::record(conn, Some(&actor), &meta, Event::new("task.create", "task", Some(task.id.to_string())).subject(case.person_id))?;
            Ok(task_response(task, Ts::now()))
        })
    })
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let task = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let missing = || AppError::not_found(format!("no task `{raw}`"));
            let id = uuid::Uuid::parse_str(&raw).map(Id).map_err(|_| missing())?;
            let task = model::find_task(conn, id)?.ok_or_else(missing)?;
            if !user.can_touch_consulate(task.consulate_id) {
                return Err(AppError::OutOfScope(format!("no task `{raw}`")));
            }
            if !model::complete_task(conn, id)? {
                return Err(AppError::conflict(
                    "already_done",
                    None,
                    "this task is already done",
                ));
            }
            let case =
                model::find_case(conn, task.case_id)?.ok_or_else(|| AppError::not_found("case"))?;
            service::record_event(
                conn,
                &case,
                "task.done",
                Some(user.user_id),
                None,
                serde_json::json!({ "task_id": id, "title": task.title }),
            )?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("task.done", "task", Some(id.to_string())).subject(case.person_id),
            )?;
            Ok(task_response(
                model::find_task(conn, id)?.ok_or_else(missing)?,
                Ts::now(),
            ))
        })
    })
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let t = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let case = load_scoped(conn, &user, &raw)?;
            let key = match uuid::Uuid::parse_str(&b.to) {
                Ok(u) => ConsulateKey::Id(Id(u)),
                Err(_) => ConsulateKey::Code(b.to.clone()),
            };
            let to = reference_model::find_consulate(conn, &key)?
                .filter(|c| c.consulate.active)
                .ok_or_else(|| AppError::invalid("body.to", format!("no active consulate `{}`", b.to)))?;
            if to.consulate.id == case.consulate_id {
                return Err(AppError::invalid("body.to", "the case is already at this consulate"));
            }
            if model::pending_transfer_of(conn, case.id)?.is_some() {
                return Err(AppError::conflict("transfer_pending", None, "a transfer of this case is already waiting for an answer"));
            }
            let t = Transfer {
                id: Id::new(),
                case_id: case.id,
                from_consulate_id: case.consulate_id,
                to_consulate_id: to.consulate.id,
                reason: reason.clone(),
                status: "requested".into(),
                requested_by: Some(user.user_id),
                requested_at: Ts::now(),
                decided_by: None,
                decided_at: None,
            };
            model::insert_transfer(conn, &t)?;
            service::record_event(conn, &case, "case.transfer_requested", Some(user.user_id), None, serde_json::json!({ "transfer_id": t.id, "to": to.consulate.code, "reason": reason }))?;
            audit::record(conn, Some(&actor), &meta, Event::new("case.transfer_request", "case", Some(case.id.to_string())).subject(case.person_id).details(serde_json::json!({ "to": to.consulate.code })))?;
            Ok(transfer_response(t))
        })
    })
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
    let status = match decision.as_str() {
        "accept" => "accepted",
        "reject" => "rejected",
        _ => return Err(AppError::invalid("body.decision", "accept or reject")),
    };
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let t = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let missing = || AppError::not_found(format!("no transfer `{raw}`"));
            let id = uuid::Uuid::parse_str(&raw).map(Id).map_err(|_| missing())?;
            let t = model::find_transfer(conn, id)?.ok_or_else(missing)?;
            if user.role != Role::Supervisor || user.consulate_id != Some(t.to_consulate_id) {
                return Err(AppError::OutOfScope(format!("no transfer `{raw}`")));
            }
            if !model::decide_transfer(conn, id, status, user.user_id)? {
                return Err(AppError::conflict("already_decided", None, "this transfer was already decided"));
            }
            let mut case = model::find_case(conn, t.case_id)?.ok_or_else(|| AppError::not_found("case"))?;
            if status == "accepted" {
                let version = case.version;
                case.consulate_id = t.to_consulate_id;
                case.assigned_officer_id = None;
                case.version += 1;
                case.updated_at = Ts::now();
                if !model::update_case(conn, &case, version)? {
                    return Err(AppError::PreconditionFailed("the case changed meanwhile; try again".into()));
                }
                model::move_open_tasks(conn, case.id, t.to_consulate_id)?;
                // The protection moves with the case only from a consulate
                // that protects the person: a case opened as protected by a
                // consulate that does not (the person is protected
                // elsewhere) passes on no more than it had.
                if case.protected && crate::services::access::protects(conn, case.person_id, t.from_consulate_id)? {
                    crate::services::access::grant(conn, case.person_id, t.to_consulate_id, AccessLevel::Protected, "transfer", "a protected case accepted on transfer", Some(user.user_id))?;
                }
            }
            service::record_event(conn, &case, if status == "accepted" { "case.transferred" } else { "case.transfer_rejected" }, Some(user.user_id), None, serde_json::json!({ "transfer_id": t.id, "from": t.from_consulate_id, "to": t.to_consulate_id }))?;
            audit::record(conn, Some(&actor), &meta, Event::new("case.transfer_decision", "case", Some(case.id.to_string())).subject(case.person_id).details(serde_json::json!({ "decision": status })))?;
            Ok(transfer_response(model::find_transfer(conn, id)?.ok_or_else(missing)?))
        })
    })
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
            Event::new("transfer.list", "case_transfer", None)
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
