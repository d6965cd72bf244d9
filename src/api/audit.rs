//! Reading the audit log (administrators). Nothing here or anywhere else
//! updates or deletes audit rows.

use crate::domain::audit::AuditAction;
use crate::domain::stored_json;
use actix_web::{get, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{access, window, Page};
use crate::api::RequestOrigin as _;
use crate::audit::{self as log, AuditFilter, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, Id, Ts};
use crate::error::{AppError, Problem};
use crate::extract::QueryParams;
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryResponse {
    pub seq: i64,
    pub id: Id,
    pub at: Ts,
    pub actor_id: Option<Id>,
    pub actor_username: Option<String>,
    pub actor_role: Option<String>,
    pub actor_consulate_id: Option<Id>,
    #[schema(example = "user.create")]
    pub action: String,
    #[schema(example = "user")]
    pub resource_type: String,
    pub resource_id: Option<String>,
    /// The person whose data was involved.
    pub subject_person_id: Option<Id>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub hash: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// User id of the actor.
    pub actor: Option<uuid::Uuid>,
    /// Person id of the data subject.
    pub subject: Option<uuid::Uuid>,
    /// e.g. `user`, `session`, `consulate`.
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// e.g. `auth.login`, `user.update`, `access.denied`.
    pub action: Option<String>,
    /// From this time (RFC 3339), inclusive.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Up to this time (RFC 3339), exclusive.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// The audit log, newest first.
#[utoipa::path(
    tag = "audit",
    operation_id = "list_audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, body = Page<AuditEntryResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/audit")]
pub async fn list_audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<AuditQuery>,
) -> Result<web::Json<Page<AuditEntryResponse>>, AppError> {
    user.require(&access::LIST_AUDIT)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let filter = AuditFilter {
        actor_id: q.actor.map(Id),
        subject_person_id: q.subject.map(Id),
        resource_type: q.resource_type,
        resource_id: q.resource_id,
        action: q.action,
        from: q.from.map(Ts::from),
        to: q.to.map(Ts::from),
    };
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let (rows, total) = db::run(&state.pool, move |conn| {
        // Reading the log is itself a read of personal data (subjects,
        // justifications): it is logged, with the filter asked for.
        let mut event = Event::new(AuditAction::AuditList, "audit_log", None).details(
            serde_json::json!({ "action": filter.action, "resource_type": filter.resource_type }),
        );
        if let Some(s) = filter.subject_person_id {
            event = event.subject(s);
        }
        log::record_alone(conn, Some(&actor), &meta, event)?;
        Ok(log::list(conn, &filter, window)?)
    })
    .await?;
    let items = rows
        .into_iter()
        .map(|r| -> Result<_, AppError> {
            Ok(AuditEntryResponse {
                seq: r.seq,
                id: r.id,
                at: r.at,
                actor_id: r.actor_id,
                actor_username: r.actor_username,
                actor_role: r.actor_role,
                actor_consulate_id: r.actor_consulate_id,
                action: r.action,
                resource_type: r.resource_type,
                resource_id: r.resource_id,
                subject_person_id: r.subject_person_id,
                request_id: r.request_id,
                client_addr: r.client_addr,
                outcome: r.outcome,
                details: stored_json("audit details", &r.details)?,
                hash: r.hash,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// The last this many hours (1 to 720, default 24).
    #[param(minimum = 1, maximum = 720)]
    pub hours: Option<u32>,
}

/// One user's exact document searches in the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupVolume {
    pub user_id: Option<Id>,
    pub username: Option<String>,
    pub consulate_id: Option<Id>,
    /// Searches answered.
    pub lookups: i64,
    /// Searches refused because the hourly budget was spent.
    pub throttled: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupReport {
    pub hours: u32,
    /// `MAPCE_LOOKUP_LIMIT` of this instance.
    pub limit_per_hour: u32,
    /// Most lookups first.
    pub users: Vec<LookupVolume>,
}

/// Exact document searches (the lookups that reach beyond a consulate) per
/// user, from the audit log: how close each one comes to the hourly budget.
#[utoipa::path(
    tag = "audit",
    operation_id = "list_lookups",
    security(("bearer" = [])),
    params(LookupQuery),
    responses(
        (status = 200, body = LookupReport),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/lookups")]
pub async fn list_lookups(
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<LookupQuery>,
) -> Result<web::Json<LookupReport>, AppError> {
    user.require(&access::LIST_LOOKUPS)?;
    let hours = query.into_inner().hours.unwrap_or(24);
    if !(1..=720).contains(&hours) {
        return Err(AppError::bad_query("query.hours", "1 to 720"));
    }
    let since = Ts::from(chrono::Utc::now() - chrono::Duration::hours(i64::from(hours)));
    let rows = db::run(&state.pool, move |conn| {
        Ok(log::lookups_since(conn, since)?)
    })
    .await?;
    let mut users: Vec<LookupVolume> = Vec::new();
    for (actor, username, consulate, outcome, n) in rows {
        let entry = match users.iter_mut().position(|u| u.user_id == actor) {
            Some(i) => &mut users[i],
            None => {
                users.push(LookupVolume {
                    user_id: actor,
                    username,
                    consulate_id: consulate,
                    lookups: 0,
                    throttled: 0,
                });
                users
                    .last_mut()
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("empty")))?
            }
        };
        if outcome == "denied" {
            entry.throttled += n;
        } else {
            entry.lookups += n;
        }
    }
    users.sort_by_key(|u| std::cmp::Reverse(u.lookups + u.throttled));
    Ok(web::Json(LookupReport {
        hours,
        limit_per_hour: state.lookups.limit(),
        users,
    }))
}
