//! Referrals from cases to the directory's organisations.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::scoped_consulate;
use crate::api::cases::load_scoped;
use crate::api::write::write;
use crate::api::{access, window, Page, RequestOrigin as _};
use crate::audit::RequestMeta;
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::support::ReferralStatus;
use crate::domain::Stored;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::support::{self as model, Organisation, Referral};
use crate::services::support::{self as service, NewReferral, ReferralAnswer};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReferralRequest {
    pub organisation_id: Id,
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    pub reason: String,
    /// Today by default; not in the future.
    pub sent_on: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralStatusRequest {
    /// `accepted` or `declined` after `sent`; `completed` after `accepted`.
    pub status: ReferralStatus,
    /// When it happened: today by default; not before it was sent.
    pub date: Option<NaiveDate>,
    /// What came of it; required to complete.
    #[schema(max_length = 4000)]
    pub outcome: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationRef {
    pub id: Id,
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralResponse {
    pub id: Id,
    pub case_id: Id,
    pub consulate_id: Id,
    pub organisation: OrganisationRef,
    pub reason: String,
    pub status: ReferralStatus,
    pub sent_on: NaiveDate,
    pub responded_on: Option<NaiveDate>,
    pub completed_on: Option<NaiveDate>,
    pub outcome: Option<String>,
    pub created_by: Option<Id>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

/// Referrals with their organisations' names.
pub fn referral_responses(
    conn: &mut DbConn,
    rows: Vec<Referral>,
) -> Result<Vec<ReferralResponse>, AppError> {
    let mut orgs: Vec<Organisation> = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if !orgs.iter().any(|o| o.id == r.organisation_id) {
            if let Some(o) = model::find_organisation(conn, r.organisation_id)? {
                orgs.push(o);
            }
        }
        let org = orgs.iter().find(|o| o.id == r.organisation_id);
        out.push(ReferralResponse {
            organisation: OrganisationRef {
                id: r.organisation_id,
                name: org.map(|o| o.name.clone()).unwrap_or_default(),
                kind: org.map(|o| o.kind.clone()).unwrap_or_default(),
            },
            status: ReferralStatus::stored(&r.status)?,
            id: r.id,
            case_id: r.case_id,
            consulate_id: r.consulate_id,
            reason: r.reason,
            sent_on: r.sent_on,
            responded_on: r.responded_on,
            completed_on: r.completed_on,
            outcome: r.outcome,
            created_by: r.created_by,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        });
    }
    Ok(out)
}

fn respond_referral(r: &ReferralResponse, created: bool) -> HttpResponse {
    crate::api::with_etag(created, r.version, format!("/api/v1/referrals/{}", r.id), r)
}

/// Refer a case to an organisation of the directory that serves the case's
/// consulate (or a public one). Written to the person's history.
#[utoipa::path(
    tag = "support",
    operation_id = "create_referral",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    request_body = CreateReferralRequest,
    responses(
        (status = 201, body = ReferralResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/referrals")]
pub async fn create_referral(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<CreateReferralRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_REFERRAL)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let new = NewReferral {
        organisation_id: b.organisation_id,
        reason: b.reason,
        sent_on: b.sent_on,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let case = load_scoped(conn, &user, &raw)?;
            let r = service::refer(conn, j, &user, &case, new).map_err(|e| e.under("body"))?;
            one(conn, r)
        },
    )
    .await?;
    Ok(respond_referral(&response, true))
}

fn one(conn: &mut DbConn, r: Referral) -> Result<ReferralResponse, AppError> {
    referral_responses(conn, vec![r])?
        .pop()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("referral vanished")))
}

/// Record the organisation's answer or the referral's completion.
#[utoipa::path(
    tag = "support",
    operation_id = "update_referral_status",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    request_body = ReferralStatusRequest,
    responses(
        (status = 200, body = ReferralResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/referrals/{id}/status")]
pub async fn update_referral_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<ReferralStatusRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_REFERRAL_STATUS)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let answer = ReferralAnswer {
        status: b.status,
        date: b.date,
        outcome: b.outcome,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let r = service::answer(conn, j, &user, &raw, answer).map_err(|e| e.under("body"))?;
            one(conn, r)
        },
    )
    .await?;
    Ok(respond_referral(&response, false))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReferralQuery {
    pub case: Option<uuid::Uuid>,
    pub organisation: Option<uuid::Uuid>,
    pub status: Option<ReferralStatus>,
    /// Consulate id (national roles; staff see their own).
    pub consulate: Option<uuid::Uuid>,
    /// Sent on or after this day.
    pub from: Option<NaiveDate>,
    /// Sent on or before this day.
    pub to: Option<NaiveDate>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Referrals, newest first; officers and supervisors see their consulate's.
#[utoipa::path(
    tag = "support",
    operation_id = "list_referrals",
    security(("bearer" = [])),
    params(ReferralQuery),
    responses(
        (status = 200, body = Page<ReferralResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/referrals")]
pub async fn list_referrals(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<ReferralQuery>,
) -> Result<web::Json<Page<ReferralResponse>>, AppError> {
    user.require(&access::LIST_REFERRALS)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let filter = model::ReferralFilter {
        consulate: scoped_consulate(&user, q.consulate.map(Id)),
        case: q.case.map(Id),
        organisation: q.organisation.map(Id),
        status: q.status.map(|s| s.as_str().to_owned()),
        sent_from: q.from,
        sent_to: q.to,
    };
    let meta = RequestMeta::of(&req);
    let (items, total) = db::run(&state.pool, move |conn| {
        let (rows, total) = model::list_referrals(conn, &filter, window)?;
        let mut items = referral_responses(conn, rows)?;
        crate::api::disclosure::screen(
            conn,
            &user,
            &meta,
            AuditAction::ReferralList,
            &mut items,
            |r| r.case_id,
            |r| {
                r.reason = crate::api::disclosure::WITHHELD.into();
                r.outcome = crate::api::disclosure::withheld(&r.outcome);
            },
        )?;
        Ok::<_, AppError>((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}
