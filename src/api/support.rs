//! The support-network directory (organisations a consulate refers people
//! to) and referrals from cases to them.

use crate::domain::{stored_json, Stored};
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cases::load_scoped;
use super::{
    access, changed_meanwhile, check_version, if_match_version, optional_text, text, window, Page,
};
use crate::api::RequestOrigin as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::catalogue::AttentionCategory;
use crate::domain::role::Role;
use crate::domain::support::{OrganisationKind, ReferralStatus};
use crate::domain::text::fold_key;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::reference::{self as reference_model, ConsulateKey};
use crate::models::support::{self as model, Organisation, OrganisationFilter, Referral};
use crate::services::cases as case_service;
use crate::AppState;

/// An entry not verified for this long is flagged stale.
pub const STALE_AFTER_MONTHS: u32 = 12;

fn stale_threshold(now: Ts) -> Ts {
    Ts(now
        .0
        .checked_sub_months(Months::new(STALE_AFTER_MONTHS))
        .unwrap_or(now.0))
}

pub(super) use crate::services::input::past_date;

// --- organisations ------------------------------------------------------------------

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

fn languages(field: &str, raw: &[String]) -> Result<String, AppError> {
    let mut out: Vec<String> = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        let l = l.trim().to_ascii_lowercase();
        if l.len() != 2 || !l.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(AppError::invalid(
                format!("{field}[{i}]"),
                "must be an ISO 639-1 code such as `es` or `en`",
            ));
        }
        if !out.contains(&l) {
            out.push(l);
        }
    }
    serde_json::to_string(&out).map_err(AppError::internal)
}

fn categories(raw: &[AttentionCategory]) -> Result<String, AppError> {
    let mut c: Vec<&str> = raw.iter().map(|c| c.as_str()).collect();
    c.sort_unstable();
    c.dedup();
    serde_json::to_string(&c).map_err(AppError::internal)
}

fn email(field: &str, v: Option<&str>) -> Result<Option<String>, AppError> {
    let v = optional_text(field, v, 254)?;
    if let Some(e) = &v {
        let ok = e
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !e.contains(' '));
        if !ok {
            return Err(AppError::invalid(field, "is not an e-mail address"));
        }
    }
    Ok(v)
}

fn organisation_search_key(name: &str, city: Option<&str>) -> String {
    fold_key(&format!("{name} {}", city.unwrap_or_default()))
}

/// Resolves consulate ids or codes; supervisors may only name their own.
fn serving_consulates(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: Option<&[String]>,
) -> Result<Vec<Id>, AppError> {
    let Some(raw) = raw else {
        return match (user.role, user.consulate_id) {
            (Role::Supervisor, Some(own)) => Ok(vec![own]),
            _ => Ok(Vec::new()),
        };
    };
    let mut out = Vec::new();
    for (i, key) in raw.iter().enumerate() {
        let field = format!("body.consulates[{i}]");
        let k = match uuid::Uuid::parse_str(key.trim()) {
            Ok(id) => ConsulateKey::Id(Id(id)),
            Err(_) => ConsulateKey::Code(key.trim().to_owned()),
        };
        let c = reference_model::find_consulate(conn, &k)?
            .ok_or_else(|| AppError::invalid(&field, format!("no consulate `{key}`")))?;
        if user.role.is_consulate_scoped() && Some(c.consulate.id) != user.consulate_id {
            return Err(AppError::forbidden(
                "forbidden",
                format!("{field}: a supervisor maintains only their own consulate's entries"),
            ));
        }
        if !out.contains(&c.consulate.id) {
            out.push(c.consulate.id);
        }
    }
    if user.role == Role::Supervisor && out.is_empty() {
        return Err(AppError::invalid(
            "body.consulates",
            "must include your consulate",
        ));
    }
    Ok(out)
}

/// Loads an organisation the caller may see (public, or serving their
/// consulate; all for national roles); others read as absent.
fn load_visible(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
) -> Result<(Organisation, Vec<Id>), AppError> {
    let missing = || AppError::not_found(format!("no organisation `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let o = model::find_organisation(conn, id)?.ok_or_else(missing)?;
    let serving: Vec<Id> = model::consulates_of(conn, &[o.id])?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let visible = !user.role.is_consulate_scoped()
        || o.public
        || user.consulate_id.is_some_and(|c| serving.contains(&c));
    if !visible {
        return Err(AppError::OutOfScope(format!("no organisation `{raw}`")));
    }
    Ok((o, serving))
}

/// Supervisors write only entries serving their consulate.
fn require_maintainer(user: &AuthUser, serving: &[Id]) -> Result<(), AppError> {
    if user.role.is_consulate_scoped() && !user.consulate_id.is_some_and(|c| serving.contains(&c)) {
        return Err(AppError::forbidden(
            "forbidden",
            "only supervisors of a consulate this organisation serves (or admins) may change it",
        ));
    }
    Ok(())
}

fn respond_organisation(o: &OrganisationResponse, created: bool) -> HttpResponse {
    super::with_etag(
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let name = text("body.name", &b.name, 300)?;
            let country = reference_model::find_country_by_code(conn, &b.country)?
                .ok_or_else(|| {
                    AppError::invalid(
                        "body.country",
                        format!("unknown country code `{}`", b.country),
                    )
                })?
                .alpha2;
            let city = optional_text("body.city", b.city.as_deref(), 200)?;
            let serving = serving_consulates(conn, &user, b.consulates.as_deref())?;
            let now = Ts::now();
            let o = Organisation {
                id: Id::new(),
                search_key: organisation_search_key(&name, city.as_deref()),
                name,
                kind: b.kind.as_str().to_owned(),
                country_code: country,
                city,
                address: optional_text("body.address", b.address.as_deref(), 500)?,
                attention_categories: categories(&b.attention_categories)?,
                languages: languages("body.languages", &b.languages)?,
                contact_name: optional_text("body.contact_name", b.contact_name.as_deref(), 200)?,
                email: email("body.email", b.email.as_deref())?,
                phone: optional_text("body.phone", b.phone.as_deref(), 50)?,
                website: optional_text("body.website", b.website.as_deref(), 500)?,
                notes: optional_text("body.notes", b.notes.as_deref(), 4000)?,
                public: b.public,
                active: true,
                verified_at: Some(now),
                verified_by: Some(user.user_id),
                version: 1,
                created_by: Some(user.user_id),
                created_at: now,
                updated_at: now,
            };
            model::insert_organisation(conn, &o, &serving)?;
            let response = organisation_response(o, serving, now)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new(
                    "organisation.create",
                    "organisation",
                    Some(response.id.to_string()),
                )
                .details(
                    serde_json::json!({ "name": response.name, "consulates": response.consulates }),
                ),
            )?;
            Ok(response)
        })
    })
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
        let (o, serving) = load_visible(conn, &user, &raw)?;
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (current, serving) = load_visible(conn, &user, &raw)?;
            require_maintainer(&user, &serving)?;
            let expected = expected?;
            check_version(current.version, expected, "organisation")?;
            let mut next = current.clone();
            if let Some(n) = &b.name {
                next.name = text("body.name", n, 300)?;
            }
            if let Some(k) = b.kind {
                next.kind = k.as_str().to_owned();
            }
            if b.city.is_some() {
                next.city = optional_text("body.city", b.city.as_deref(), 200)?;
            }
            if b.address.is_some() {
                next.address = optional_text("body.address", b.address.as_deref(), 500)?;
            }
            if let Some(c) = &b.attention_categories {
                next.attention_categories = categories(c)?;
            }
            if let Some(l) = &b.languages {
                next.languages = languages("body.languages", l)?;
            }
            let contact_changed = b.contact_name.is_some()
                || b.email.is_some()
                || b.phone.is_some()
                || b.website.is_some()
                || b.address.is_some();
            if b.contact_name.is_some() {
                next.contact_name =
                    optional_text("body.contact_name", b.contact_name.as_deref(), 200)?;
            }
            if b.email.is_some() {
                next.email = email("body.email", b.email.as_deref())?;
            }
            if b.phone.is_some() {
                next.phone = optional_text("body.phone", b.phone.as_deref(), 50)?;
            }
            if b.website.is_some() {
                next.website = optional_text("body.website", b.website.as_deref(), 500)?;
            }
            if b.notes.is_some() {
                next.notes = optional_text("body.notes", b.notes.as_deref(), 4000)?;
            }
            if let Some(p) = b.public {
                next.public = p;
            }
            if let Some(a) = b.active {
                next.active = a;
            }
            let mut serving_next = serving.clone();
            if let Some(c) = &b.consulates {
                if user.role != Role::Admin {
                    return Err(AppError::forbidden(
                        "forbidden",
                        "body.consulates: only admins change which consulates an organisation serves",
                    ));
                }
                serving_next = serving_consulates(conn, &user, Some(c))?;
                model::set_organisation_consulates(conn, next.id, &serving_next)?;
            }
            let now = Ts::now();
            if contact_changed {
                next.verified_at = Some(now);
                next.verified_by = Some(user.user_id);
            }
            next.search_key = organisation_search_key(&next.name, next.city.as_deref());
            next.version += 1;
            next.updated_at = now;
            if !model::update_organisation(conn, &next, expected)? {
                return Err(changed_meanwhile("organisation"));
            }
            let mut changes =
                super::field_changes(&current, &next, &["version", "updated_at", "search_key"]);
            if serving_next != serving {
                changes.insert(
                    "consulates".into(),
                    serde_json::json!({ "from": serving, "to": serving_next }),
                );
            }
            let response = organisation_response(next, serving_next, now)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("organisation.update", "organisation", Some(response.id.to_string()))
                    .details(serde_json::json!({ "changes": changes })),
            )?;
            Ok(response)
        })
    })
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (current, serving) = load_visible(conn, &user, &raw)?;
            require_maintainer(&user, &serving)?;
            let now = Ts::now();
            let mut next = current.clone();
            next.verified_at = Some(now);
            next.verified_by = Some(user.user_id);
            next.version += 1;
            next.updated_at = now;
            if !model::update_organisation(conn, &next, current.version)? {
                return Err(changed_meanwhile("organisation"));
            }
            let response = organisation_response(next, serving, now)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new(
                    "organisation.verify",
                    "organisation",
                    Some(response.id.to_string()),
                )
                .details(serde_json::json!({ "previously_verified_at": current.verified_at })),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond_organisation(&response, false))
}

// --- referrals ------------------------------------------------------------------------

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
pub(super) fn referral_responses(
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
    super::with_etag(created, r.version, format!("/api/v1/referrals/{}", r.id), r)
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let case = load_scoped(conn, &user, &raw)?;
            if case.status == "closed" {
                return Err(AppError::conflict(
                    "case_closed",
                    None,
                    "the case is closed; reopen it to refer the person",
                ));
            }
            let reason = text("body.reason", &b.reason, 4000)?;
            let sent_on = past_date(
                "body.sent_on",
                b.sent_on.unwrap_or_else(|| chrono::Utc::now().date_naive()),
            )?;
            let org = model::find_organisation(conn, b.organisation_id)?
                .ok_or_else(|| AppError::invalid("body.organisation_id", "no such organisation"))?;
            let serving: Vec<Id> = model::consulates_of(conn, &[org.id])?
                .into_iter()
                .map(|(_, c)| c)
                .collect();
            if !org.public && !serving.contains(&case.consulate_id) {
                return Err(AppError::invalid(
                    "body.organisation_id",
                    "the organisation neither serves this case's consulate nor is public",
                ));
            }
            if !org.active {
                return Err(AppError::invalid(
                    "body.organisation_id",
                    "the organisation is deactivated",
                ));
            }
            let now = Ts::now();
            let r = Referral {
                id: Id::new(),
                case_id: case.id,
                person_id: case.person_id,
                consulate_id: case.consulate_id,
                organisation_id: org.id,
                reason,
                status: ReferralStatus::Sent.as_str().to_owned(),
                sent_on,
                responded_on: None,
                completed_on: None,
                outcome: None,
                created_by: Some(user.user_id),
                version: 1,
                created_at: now,
                updated_at: now,
            };
            model::insert_referral(conn, &r)?;
            case_service::record_event(
                conn,
                &case,
                "referral.sent",
                Some(user.user_id),
                None,
                serde_json::json!({
                    "referral_id": r.id,
                    "organisation_id": org.id,
                    "organisation": org.name,
                    "reason": r.reason,
                    "sent_on": r.sent_on,
                }),
            )?;
            let response = referral_responses(conn, vec![r])?
                .pop()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("referral vanished")))?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("referral.create", "referral", Some(response.id.to_string()))
                    .subject(case.person_id)
                    .details(serde_json::json!({ "case_id": case.id, "organisation_id": org.id })),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond_referral(&response, true))
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let missing = || AppError::not_found(format!("no referral `{raw}`"));
            let id = uuid::Uuid::parse_str(&raw).map(Id).map_err(|_| missing())?;
            let current = model::find_referral(conn, id)?.ok_or_else(missing)?;
            let case = load_scoped(conn, &user, &current.case_id.to_string())
                .map_err(|_| AppError::OutOfScope(format!("no referral `{raw}`")))?;
            let from = ReferralStatus::stored(&current.status)?;
            if !from.allowed_next().contains(&b.status) {
                return Err(AppError::conflict(
                    "invalid_transition",
                    Some("body.status"),
                    format!(
                        "a referral that is {} cannot become {}",
                        from.as_str(),
                        b.status.as_str()
                    ),
                ));
            }
            let date = past_date(
                "body.date",
                b.date.unwrap_or_else(|| chrono::Utc::now().date_naive()),
            )?;
            if date < current.sent_on {
                return Err(AppError::invalid(
                    "body.date",
                    "is before the referral was sent",
                ));
            }
            let outcome = optional_text("body.outcome", b.outcome.as_deref(), 4000)?;
            let mut next = current.clone();
            match b.status {
                ReferralStatus::Completed => {
                    if outcome.is_none() {
                        return Err(AppError::invalid(
                            "body.outcome",
                            "say what came of the referral to complete it",
                        ));
                    }
                    if current.responded_on.is_some_and(|r| date < r) {
                        return Err(AppError::invalid("body.date", "is before it was accepted"));
                    }
                    next.completed_on = Some(date);
                }
                _ => next.responded_on = Some(date),
            }
            if outcome.is_some() {
                next.outcome = outcome;
            }
            next.status = b.status.as_str().to_owned();
            next.version += 1;
            next.updated_at = Ts::now();
            if !model::update_referral(conn, &next, current.version)? {
                return Err(changed_meanwhile("referral"));
            }
            case_service::record_event(
                conn,
                &case,
                "referral.status_changed",
                Some(user.user_id),
                None,
                serde_json::json!({
                    "referral_id": next.id,
                    "organisation_id": next.organisation_id,
                    "from": from.as_str(),
                    "to": next.status,
                    "date": date,
                    "outcome": next.outcome,
                }),
            )?;
            let response = referral_responses(conn, vec![next])?
                .pop()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("referral vanished")))?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("referral.status", "referral", Some(response.id.to_string()))
                    .subject(case.person_id)
                    .details(serde_json::json!({ "from": from.as_str(), "to": b.status.as_str() })),
            )?;
            Ok(response)
        })
    })
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
        super::disclosure::screen(
            conn,
            &user,
            &meta,
            "referral.list",
            &mut items,
            |r| r.case_id,
            |r| {
                r.reason = super::disclosure::WITHHELD.into();
                r.outcome = super::disclosure::withheld(&r.outcome);
            },
        )?;
        Ok::<_, AppError>((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

/// The consulate a list is limited to: staff always their own, national
/// roles the one they ask for (or all).
pub(super) fn scoped_consulate(user: &AuthUser, asked: Option<Id>) -> Option<Id> {
    if user.role.is_consulate_scoped() {
        Some(user.consulate_id.unwrap_or_default())
    } else {
        asked
    }
}
