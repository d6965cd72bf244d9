//! Access requests: how a consulate legitimately takes on a person already
//! known at another one (a national who moved), and how a consulate comes to
//! see a protected person's identity. Decided by a supervisor of a consulate
//! that holds (or, for `protected`, protects) the person, or by
//! headquarters; every step audited. See docs/access-model.md.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::write::write;
use super::{access, window, Page};
use crate::api::RequestOrigin as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, Id, Ts};
use crate::domain::access::{AccessLevel, AccessStatus};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::role::Role;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::access::{self as model, AccessFilter, PersonAccessRow};
use crate::services::access_requests as requests;
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRequestBody {
    /// Why the consulate needs the person (at least 15 characters besides
    /// spaces); shown to whoever decides, and audited.
    #[schema(
        min_length = 15,
        max_length = 4000,
        pattern = "(\\S\\s*){15}",
        example = "she came to our window: moved from Milan, needs a passport"
    )]
    pub reason: String,
    /// `holder` (default) to work with the person; `protected` to also see
    /// a protected person's identity and protected cases.
    pub level: Option<AccessLevel>,
}

/// A request, and the grant it became. Carries no personal data.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessRequestResponse {
    pub id: Id,
    pub person_id: Id,
    /// The consulate that asked (and is granted).
    pub consulate_id: Id,
    pub level: AccessLevel,
    pub status: AccessStatus,
    /// `request`, `first_protection`, `transfer` or `migration`.
    pub source: String,
    pub reason: String,
    pub requested_by: Option<Id>,
    pub requested_at: Ts,
    pub decided_by: Option<Id>,
    pub decided_at: Option<Ts>,
    pub decision_reason: Option<String>,
}

fn response(r: PersonAccessRow) -> Result<AccessRequestResponse, AppError> {
    let stored = |what: &str, v: &str| AppError::internal(anyhow::anyhow!("stored {what} `{v}`"));
    Ok(AccessRequestResponse {
        level: AccessLevel::parse(&r.level).ok_or_else(|| stored("level", &r.level))?,
        status: AccessStatus::parse(&r.status).ok_or_else(|| stored("status", &r.status))?,
        id: r.id,
        person_id: r.person_id,
        consulate_id: r.consulate_id,
        source: r.source,
        reason: r.reason,
        requested_by: r.requested_by,
        requested_at: r.requested_at,
        decided_by: r.decided_by,
        decided_at: r.decided_at,
        decision_reason: r.decision_reason,
    })
}

fn reason_of(field: &str, raw: &str) -> Result<String, AppError> {
    let reason = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let letters = raw
        .chars()
        .filter(|c| !crate::domain::text::is_pattern_space(*c))
        .count();
    if letters < 15 {
        return Err(AppError::invalid(
            field,
            "say why, in at least 15 characters besides spaces",
        ));
    }
    if reason.chars().count() > 4000 {
        return Err(AppError::invalid(field, "must be at most 4000 characters"));
    }
    Ok(reason)
}

/// Ask for access to a person. Any person id answers the same way, known at
/// another consulate or not, protected or not: the request waits for a
/// decision by whoever may give it.
#[utoipa::path(
    tag = "persons",
    operation_id = "request_person_access",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Person id")),
    request_body = AccessRequestBody,
    responses(
        (status = 201, body = AccessRequestResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/persons/{id}/access-requests")]
pub async fn request_person_access(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<AccessRequestBody>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::REQUEST_PERSON_ACCESS)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let reason = reason_of("body.reason", &b.reason)?;
    let level = b.level.unwrap_or(AccessLevel::Holder);
    let consulate = user.consulate_id.ok_or_else(|| {
        AppError::forbidden(ErrorCode::Forbidden, "only consulate staff ask for access")
    })?;
    let created = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            response(requests::request(
                conn, j, &user, consulate, &raw, level, reason,
            )?)
        },
    )
    .await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(created))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccessRequestQuery {
    /// `pending` (default), `granted`, `refused`, `revoked` or `all`.
    #[param(pattern = "^(pending|granted|refused|revoked|all)$")]
    pub status: Option<String>,
    pub person: Option<uuid::Uuid>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Access requests and grants: a consulate's staff see their own
/// consulate's requests, its supervisors also those on persons their
/// consulate holds; headquarters and admins see all.
#[utoipa::path(
    tag = "persons",
    operation_id = "list_person_access",
    security(("bearer" = [])),
    params(AccessRequestQuery),
    responses(
        (status = 200, body = Page<AccessRequestResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/access-requests")]
pub async fn list_person_access(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<AccessRequestQuery>,
) -> Result<web::Json<Page<AccessRequestResponse>>, AppError> {
    user.require(&access::LIST_PERSON_ACCESS)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let status = match q.status.as_deref() {
        None => Some(AccessStatus::Pending.as_str().to_owned()),
        Some("all") => None,
        Some(s) => Some(
            AccessStatus::parse(s)
                .ok_or_else(|| {
                    AppError::bad_query("query.status", "pending, granted, refused, revoked or all")
                })?
                .as_str()
                .to_owned(),
        ),
    };
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let (items, total) = db::run(&state.pool, move |conn| {
        let mut filter = AccessFilter {
            status,
            person: q.person.map(Id),
            ..AccessFilter::default()
        };
        if user.role.is_consulate_scoped() {
            let own = user.consulate_id.unwrap_or_default();
            filter.consulate = Some(own);
            filter.or_held = user.role == Role::Supervisor;
        }
        let (rows, total) = model::list(conn, &filter, window)?;
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(AuditAction::PersonAccessList, "person_access", None)
                .details(serde_json::json!({ "results": total }))
                .subjects(rows.iter().map(|r| r.person_id)),
        )?;
        let items = rows
            .into_iter()
            .map(response)
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, AppError>((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessDecisionBody {
    /// `grant` or `refuse`.
    #[schema(pattern = "^(grant|refuse)$")]
    pub decision: String,
    #[schema(min_length = 1, pattern = "\\S")]
    pub reason: String,
}

/// Grant or refuse an access request.
#[utoipa::path(
    tag = "persons",
    operation_id = "decide_person_access",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Access request id")),
    request_body = AccessDecisionBody,
    responses(
        (status = 200, body = AccessRequestResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/access-requests/{id}/decision")]
pub async fn decide_person_access(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<AccessDecisionBody>,
) -> Result<web::Json<AccessRequestResponse>, AppError> {
    user.require(&access::DECIDE_PERSON_ACCESS)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let status = match b.decision.as_str() {
        "grant" => AccessStatus::Granted,
        "refuse" => AccessStatus::Refused,
        _ => return Err(AppError::invalid("body.decision", "grant or refuse")),
    };
    let reason = b.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid("body.reason", "say why"));
    }
    let decided = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| response(requests::decide(conn, j, &user, &raw, status, &reason)?),
    )
    .await?;
    Ok(web::Json(decided))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationBody {
    #[schema(min_length = 1, pattern = "\\S")]
    pub reason: String,
}

/// End a grant. Headquarters, a supervisor who could have granted it, or a
/// supervisor of the consulate that holds it (giving it up). What the
/// consulate wrote meanwhile stays its own: cases it opened keep it a
/// holder of the person.
#[utoipa::path(
    tag = "persons",
    operation_id = "revoke_person_access",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Access request id")),
    request_body = RevocationBody,
    responses(
        (status = 200, body = AccessRequestResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/access-requests/{id}/revocation")]
pub async fn revoke_person_access(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<RevocationBody>,
) -> Result<web::Json<AccessRequestResponse>, AppError> {
    user.require(&access::REVOKE_PERSON_ACCESS)?;
    let raw = path.into_inner();
    let reason = body.into_inner()?.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid("body.reason", "say why"));
    }
    let revoked = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| response(requests::revoke(conn, j, &user, &raw, &reason)?),
    )
    .await?;
    Ok(web::Json(revoked))
}
