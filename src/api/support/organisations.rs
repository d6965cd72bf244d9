//! The directory of organisations.

use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::Months;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::write::write;
use crate::api::{access, if_match_version, window, Page, RequestOrigin as _};
use crate::audit::RequestMeta;
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::catalogue::AttentionCategory;
use crate::domain::stored_json;
use crate::domain::support::OrganisationKind;
use crate::domain::text::fold_key;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::reference as reference_model;
use crate::models::support::{self as model, Organisation, OrganisationFilter};
use crate::services::support::{self as service, NewOrganisation, OrganisationChange};
use crate::AppState;

/// An entry not verified for this long is flagged stale.
pub const STALE_AFTER_MONTHS: u32 = 12;

fn stale_threshold(now: Ts) -> Ts {
    Ts(now
        .0
        .checked_sub_months(Months::new(STALE_AFTER_MONTHS))
        .unwrap_or(now.0))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganisationRequest {
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub name: String,
    pub kind: OrganisationKind,
    /// Alpha-2 or alpha-3.
    pub country: String,
    #[schema(max_length = 200)]
    pub city: Option<String>,
    #[schema(max_length = 500)]
    pub address: Option<String>,
    /// The areas it helps with.
    #[serde(default)]
    pub attention_categories: Vec<AttentionCategory>,
    /// ISO 639-1 codes, e.g. `es`, `en`, `it`.
    #[serde(default)]
    pub languages: Vec<String>,
    #[schema(max_length = 200)]
    pub contact_name: Option<String>,
    pub email: Option<String>,
    #[schema(max_length = 50)]
    pub phone: Option<String>,
    #[schema(max_length = 500)]
    pub website: Option<String>,
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
    /// Visible to every consulate, not only the ones it serves.
    #[serde(default)]
    pub public: bool,
    /// Consulate ids or codes it serves. A supervisor's entry serves their
    /// own consulate; only admins may name others.
    pub consulates: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganisationRequest {
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub name: Option<String>,
    pub kind: Option<OrganisationKind>,
    #[schema(max_length = 200)]
    pub city: Option<String>,
    #[schema(max_length = 500)]
    pub address: Option<String>,
    pub attention_categories: Option<Vec<AttentionCategory>>,
    pub languages: Option<Vec<String>>,
    #[schema(max_length = 200)]
    pub contact_name: Option<String>,
    pub email: Option<String>,
    #[schema(max_length = 50)]
    pub phone: Option<String>,
    #[schema(max_length = 500)]
    pub website: Option<String>,
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
    pub public: Option<bool>,
    /// Deactivated entries leave listings and take no new referrals.
    pub active: Option<bool>,
    /// Admins only: the consulates it serves.
    pub consulates: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationResponse {
    pub id: Id,
    pub name: String,
    pub kind: String,
    pub country: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub attention_categories: Vec<AttentionCategory>,
    pub languages: Vec<String>,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub notes: Option<String>,
    pub public: bool,
    pub active: bool,
    /// Consulates it serves.
    pub consulates: Vec<Id>,
    pub verified_at: Option<Ts>,
    /// Not verified for 12 months (or never).
    pub stale: bool,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

fn organisation_response(
    o: Organisation,
    consulates: Vec<Id>,
    now: Ts,
) -> Result<OrganisationResponse, AppError> {
    let threshold = stale_threshold(now);
    Ok(OrganisationResponse {
        stale: o.verified_at.is_none_or(|v| v < threshold),
        attention_categories: stored_json("attention categories", &o.attention_categories)?,
        languages: stored_json("languages", &o.languages)?,
        id: o.id,
        name: o.name,
        kind: o.kind,
        country: o.country_code,
        city: o.city,
        address: o.address,
        contact_name: o.contact_name,
        email: o.email,
        phone: o.phone,
        website: o.website,
        notes: o.notes,
        public: o.public,
        active: o.active,
        consulates,
        verified_at: o.verified_at,
        version: o.version,
        created_at: o.created_at,
        updated_at: o.updated_at,
    })
}

fn with_consulates(
    conn: &mut DbConn,
    orgs: Vec<Organisation>,
) -> Result<Vec<OrganisationResponse>, AppError> {
    let ids: Vec<Id> = orgs.iter().map(|o| o.id).collect();
    let pairs = model::consulates_of(conn, &ids)?;
    let now = Ts::now();
    orgs.into_iter()
        .map(|o| {
            let serving = pairs
                .iter()
                .filter(|(org, _)| *org == o.id)
                .map(|(_, c)| *c)
                .collect();
            organisation_response(o, serving, now)
        })
        .collect()
}

fn respond_organisation(o: &OrganisationResponse, created: bool) -> HttpResponse {
    crate::api::with_etag(
        created,
        o.version,
        format!("/api/v1/organisations/{}", o.id),
        o,
    )
}

/// Add an organisation to the support-network directory.
#[utoipa::path(
    tag = "support",
    operation_id = "create_organisation",
    security(("bearer" = [])),
    request_body = CreateOrganisationRequest,
    responses(
        (status = 201, body = OrganisationResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/organisations")]
pub async fn create_organisation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonBody<CreateOrganisationRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_ORGANISATION)?;
    let b = body.into_inner()?;
    let new = NewOrganisation {
        name: b.name,
        kind: b.kind,
        country: b.country,
        city: b.city,
        address: b.address,
        attention_categories: b.attention_categories,
        languages: b.languages,
        contact_name: b.contact_name,
        email: b.email,
        phone: b.phone,
        website: b.website,
        notes: b.notes,
        public: b.public,
        consulates: b.consulates,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let (o, serving) =
                service::create_organisation(conn, j, &user, new).map_err(|e| e.under("body"))?;
            organisation_response(o, serving, Ts::now())
        },
    )
    .await?;
    Ok(respond_organisation(&response, true))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrganisationQuery {
    /// Alpha-2 or alpha-3.
    #[param(pattern = "^\\s*[A-Za-z]{2,3}\\s*$")]
    pub country: Option<String>,
    pub kind: Option<OrganisationKind>,
    /// Helps with this attention category.
    pub category: Option<AttentionCategory>,
    /// Words of the name or city, accents and case ignored.
    pub q: Option<String>,
    /// `true`: only entries not verified for 12 months; `false`: only fresh ones.
    pub stale: Option<bool>,
    /// Only those serving this consulate (id).
    pub consulate: Option<uuid::Uuid>,
    /// Include deactivated entries.
    pub include_inactive: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// The directory: officers and supervisors see the public entries and their
/// consulate's; each entry says whether it is stale.
#[utoipa::path(
    tag = "support",
    operation_id = "list_organisations",
    security(("bearer" = [])),
    params(OrganisationQuery),
    responses(
        (status = 200, body = Page<OrganisationResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/organisations")]
pub async fn list_organisations(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<OrganisationQuery>,
) -> Result<web::Json<Page<OrganisationResponse>>, AppError> {
    user.require(&access::LIST_ORGANISATIONS)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let (items, total) = db::run(&state.pool, move |conn| {
        let country = match &q.country {
            Some(c) => Some(
                reference_model::find_country_by_code(conn, c)?
                    .ok_or_else(|| {
                        AppError::invalid("query.country", format!("unknown country code `{c}`"))
                    })?
                    .alpha2,
            ),
            None => None,
        };
        let filter = OrganisationFilter {
            visible_to: if user.role.is_consulate_scoped() {
                Some(user.consulate_id.unwrap_or_default())
            } else {
                None
            },
            serving: q.consulate.map(Id),
            country,
            kind: q.kind.map(|k| k.as_str().to_owned()),
            search: q.q.as_deref().map(fold_key).filter(|s| !s.is_empty()),
            stale_before: q.stale.map(|s| (stale_threshold(Ts::now()), s)),
            include_inactive: q.include_inactive.unwrap_or(false),
            category_like: q.category.map(|c| c.as_str().to_owned()),
        };
        let (rows, total) = model::list_organisations(conn, &filter, window)?;
        Ok::<_, AppError>((with_consulates(conn, rows)?, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

/// One directory entry.
#[utoipa::path(
    tag = "support",
    operation_id = "get_organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, body = OrganisationResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/organisations/{id}")]
pub async fn get_organisation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::GET_ORGANISATION)?;
    let raw = path.into_inner();
    let o = db::run(&state.pool, move |conn| {
        let (o, serving) = service::load_visible(conn, &user, &raw)?;
        organisation_response(o, serving, Ts::now())
    })
    .await?;
    Ok(respond_organisation(&o, false))
}

/// Correct a directory entry (needs `If-Match`). Changing its contact data
/// counts as verifying it.
#[utoipa::path(
    tag = "support",
    operation_id = "update_organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Organisation id"), ("If-Match" = String, Header, description = "ETag of the version being changed")),
    request_body = UpdateOrganisationRequest,
    responses(
        (status = 200, body = OrganisationResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/organisations/{id}")]
pub async fn update_organisation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<UpdateOrganisationRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_ORGANISATION)?;
    let raw = path.into_inner();
    let expected = if_match_version(&req);
    let b = body.into_inner()?;
    let change = OrganisationChange {
        name: b.name,
        kind: b.kind,
        city: b.city,
        address: b.address,
        attention_categories: b.attention_categories,
        languages: b.languages,
        contact_name: b.contact_name,
        email: b.email,
        phone: b.phone,
        website: b.website,
        notes: b.notes,
        public: b.public,
        active: b.active,
        consulates: b.consulates,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let (o, serving) = service::update_organisation(conn, j, &user, &raw, expected, change)
                .map_err(|e| e.under("body"))?;
            organisation_response(o, serving, Ts::now())
        },
    )
    .await?;
    Ok(respond_organisation(&response, false))
}

/// Confirm that a directory entry is still accurate (resets its staleness).
#[utoipa::path(
    tag = "support",
    operation_id = "verify_organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, body = OrganisationResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/organisations/{id}/verification")]
pub async fn verify_organisation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::VERIFY_ORGANISATION)?;
    let raw = path.into_inner();
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let (o, serving) = service::verify_organisation(conn, j, &user, &raw)?;
            organisation_response(o, serving, Ts::now())
        },
    )
    .await?;
    Ok(respond_organisation(&response, false))
}
