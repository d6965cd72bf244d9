//! Reference data: regions, countries and consulates (read side).
//! Consulate writes come with access control.

use crate::domain::Stored;
use actix_web::http::{header, StatusCode};
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::write::write;
use super::{access, etag, if_match_version, window, Page};
use crate::api::RequestOrigin as _;
use crate::audit::RequestMeta;
use crate::auth::AuthUser;
use crate::db::{self, Id, Ts};
use crate::domain::reference::ConsulateKind;
use crate::domain::text::fold_key;
use crate::error::{AppError, Problem};
use crate::extract::JsonBody;
use crate::extract::QueryParams;
use crate::models::reference::{
    self as model, ConsulateDetail, ConsulateFilter, ConsulateKey, CountryFilter,
};
use crate::models::seed::REGIONS;
use crate::services::offices::{self, NewOffice, OfficeChange};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionResponse {
    /// Stable code: `africa`, `america`, `asia`, `europa`, `oceania`.
    #[schema(example = "america")]
    pub code: String,
    #[schema(example = "América")]
    pub name_es: String,
    #[schema(example = "Americas")]
    pub name_en: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountryResponse {
    /// ISO 3166-1 alpha-2.
    #[schema(example = "AR")]
    pub alpha2: String,
    /// ISO 3166-1 alpha-3.
    #[schema(example = "ARG")]
    pub alpha3: String,
    #[schema(example = "Argentina")]
    pub name_es: String,
    #[schema(example = "Argentina")]
    pub name_en: String,
    /// Region code.
    #[schema(example = "america")]
    pub region: String,
}

impl From<model::Country> for CountryResponse {
    fn from(c: model::Country) -> Self {
        CountryResponse {
            alpha2: c.alpha2,
            alpha3: c.alpha3,
            name_es: c.name_es,
            name_en: c.name_en,
            region: c.region_code,
        }
    }
}

/// A country as embedded in other resources.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountryRef {
    #[schema(example = "IT")]
    pub alpha2: String,
    #[schema(example = "Italia")]
    pub name_es: String,
    #[schema(example = "Italy")]
    pub name_en: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsulateResponse {
    pub id: Id,
    /// Stable code, `{country}-{city}`.
    #[schema(example = "IT-MILAN")]
    pub code: String,
    pub kind: ConsulateKind,
    #[schema(example = "Consulado General del Perú en Milán")]
    pub name_es: String,
    #[schema(example = "Consulate General of Peru in Milan")]
    pub name_en: String,
    #[schema(example = "Milán")]
    pub city: String,
    /// The city's English name (the office is looked up by it too).
    #[schema(example = "Milan")]
    pub city_en: Option<String>,
    pub country: CountryRef,
    /// Region code of the office's country.
    #[schema(example = "europa")]
    pub region: String,
    /// Alpha-2 codes of the countries this office serves.
    #[schema(example = json!(["IT"]))]
    pub jurisdiction: Vec<String>,
    pub active: bool,
    /// Increases with every change; the `ETag` is derived from it.
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

impl ConsulateResponse {
    fn etag(&self) -> String {
        etag(self.version)
    }

    fn respond(self, status: StatusCode) -> HttpResponse {
        HttpResponse::build(status)
            .insert_header((header::ETAG, self.etag()))
            .insert_header((header::LOCATION, format!("/api/v1/consulates/{}", self.id)))
            .json(self)
    }
}

impl TryFrom<ConsulateDetail> for ConsulateResponse {
    type Error = AppError;

    fn try_from(d: ConsulateDetail) -> Result<Self, AppError> {
        let c = d.consulate;
        Ok(ConsulateResponse {
            id: c.id,
            code: c.code,
            // The column is CHECK-constrained to the three kinds.
            kind: ConsulateKind::stored(&c.kind)?,
            name_es: c.name_es,
            name_en: c.name_en,
            city: c.city,
            city_en: c.city_en,
            region: d.country.region_code,
            country: CountryRef {
                alpha2: d.country.alpha2,
                name_es: d.country.name_es,
                name_en: d.country.name_en,
            },
            jurisdiction: d.jurisdiction,
            active: c.active,
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        })
    }
}

/// Resolves a region given by code or by Spanish or English name, ignoring
/// accents and case (`África`, `africa`, `Europe`).
fn resolve_region(field: &str, raw: &str) -> Result<String, AppError> {
    let key = fold_key(raw);
    REGIONS
        .iter()
        .find(|(code, es, en)| key == *code || key == fold_key(es) || key == fold_key(en))
        .map(|(code, _, _)| (*code).to_owned())
        .ok_or_else(|| {
            let known: Vec<&str> = REGIONS.iter().map(|r| r.0).collect();
            AppError::invalid(
                field,
                format!("unknown region `{raw}`; one of {}", known.join(", ")),
            )
        })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// The report's five regions, in its order.
#[utoipa::path(
    tag = "reference",
    operation_id = "list_regions",
    params(PageQuery),
    responses(
        (status = 200, body = Page<RegionResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/regions")]
pub async fn list_regions(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: QueryParams<PageQuery>,
) -> Result<web::Json<Page<RegionResponse>>, AppError> {
    let query = query.into_inner();
    let window = window(query.limit, query.offset)?;
    let regions = db::run(&state.pool, |conn| Ok(model::list_regions(conn)?)).await?;
    let total = regions.len() as i64;
    let items = regions
        .into_iter()
        .skip(window.offset as usize)
        .take(window.limit as usize)
        .map(|r| RegionResponse {
            code: r.code,
            name_es: r.name_es,
            name_en: r.name_en,
        })
        .collect();
    Ok(web::Json(Page::new(&req, items, total, window)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CountryQuery {
    /// Region code or name (`america`, `Europa`, `África`).
    #[param(pattern = "[^\\W_]")]
    pub region: Option<String>,
    /// Part of the Spanish or English name or an ISO code, ignoring accents
    /// and case: `peru`, `PERÚ`, `cote`; not blank (one without a letter or
    /// digit finds nothing).
    #[param(pattern = "\\S")]
    pub q: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Every ISO 3166-1 country, filtered by region and searched by name.
#[utoipa::path(
    tag = "reference",
    operation_id = "list_countries",
    params(CountryQuery),
    responses(
        (status = 200, body = Page<CountryResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/countries")]
pub async fn list_countries(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: QueryParams<CountryQuery>,
) -> Result<web::Json<Page<CountryResponse>>, AppError> {
    let query = query.into_inner();
    let window = window(query.limit, query.offset)?;
    let search = match query.q.as_deref() {
        None => None,
        Some(q) => match super::search_text("query.q", q)? {
            Some(key) => Some(key),
            None => return Ok(web::Json(Page::new(&req, Vec::new(), 0, window))),
        },
    };
    let filter = CountryFilter {
        region: query
            .region
            .as_deref()
            .map(|r| resolve_region("query.region", r))
            .transpose()?,
        search,
    };
    let (countries, total) = db::run(&state.pool, move |conn| {
        Ok(model::list_countries(conn, &filter, window)?)
    })
    .await?;
    let items = countries.into_iter().map(CountryResponse::from).collect();
    Ok(web::Json(Page::new(&req, items, total, window)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsulateQuery {
    /// Country of the office, alpha-2 or alpha-3.
    #[param(pattern = "^\\s*[A-Za-z]{2,3}\\s*$")]
    pub country: Option<String>,
    /// Region code or name of the office's country.
    #[param(pattern = "[^\\W_]")]
    pub region: Option<String>,
    /// Offices whose jurisdiction includes this country (alpha-2 or alpha-3).
    #[param(pattern = "^\\s*[A-Za-z]{2,3}\\s*$")]
    pub jurisdiction: Option<String>,
    /// Only active (`true`) or inactive (`false`) offices.
    pub active: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Peru's consular offices abroad, ordered by code.
#[utoipa::path(
    tag = "reference",
    operation_id = "list_consulates",
    params(ConsulateQuery),
    responses(
        (status = 200, body = Page<ConsulateResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/consulates")]
pub async fn list_consulates(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: QueryParams<ConsulateQuery>,
) -> Result<web::Json<Page<ConsulateResponse>>, AppError> {
    let query = query.into_inner();
    let window = window(query.limit, query.offset)?;
    let region = query
        .region
        .as_deref()
        .map(|r| resolve_region("query.region", r))
        .transpose()?;
    let (consulates, total) = db::run(&state.pool, move |conn| {
        let mut resolve = |field: &str, code: Option<String>| -> Result<Option<String>, AppError> {
            match code {
                None => Ok(None),
                Some(code) => match model::find_country_by_code(conn, &code)? {
                    Some(country) => Ok(Some(country.alpha2)),
                    None => Err(AppError::invalid(
                        field,
                        format!("unknown country code `{code}`"),
                    )),
                },
            }
        };
        let filter = ConsulateFilter {
            country: resolve("query.country", query.country)?,
            jurisdiction: resolve("query.jurisdiction", query.jurisdiction)?,
            region,
            active: query.active,
        };
        Ok(model::list_consulates(conn, &filter, window)?)
    })
    .await?;
    let items = consulates
        .into_iter()
        .map(ConsulateResponse::try_from)
        .collect::<Result<_, _>>()?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

/// One consular office, by id or by code (`IT-MILAN`).
#[utoipa::path(
    tag = "reference",
    operation_id = "get_consulate",
    params(("id" = String, Path, description = "Consulate id (UUID) or stable code")),
    responses(
        (status = 200, body = ConsulateResponse, headers(("ETag" = String, description = "Current version"))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/consulates/{id}")]
pub async fn get_consulate(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let raw = path.into_inner();
    let key = match uuid::Uuid::parse_str(&raw) {
        Ok(uuid) => ConsulateKey::Id(Id(uuid)),
        Err(_) => ConsulateKey::Code(raw.clone()),
    };
    let found = db::run(&state.pool, move |conn| {
        Ok(model::find_consulate(conn, &key)?)
    })
    .await?;
    let consulate = ConsulateResponse::try_from(
        found.ok_or_else(|| AppError::not_found(format!("no consulate `{raw}`")))?,
    )?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, consulate.etag()))
        .json(consulate))
}

/// Resolves jurisdiction codes (alpha-2 or alpha-3) to alpha-2, always
/// including the office's own country, without duplicates.
fn check_text(field: &str, value: &str, max: usize) -> Result<String, AppError> {
    let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if value.is_empty() || value.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(value)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConsulateRequest {
    /// Stable code `{country alpha-2}-{CITY}`: capitals, digits and hyphens.
    #[schema(example = "ES-VALENCIA")]
    pub code: String,
    pub kind: ConsulateKind,
    /// Country of the office, alpha-2 or alpha-3.
    #[schema(example = "ES")]
    pub country: String,
    /// City in Spanish.
    #[schema(example = "Valencia")]
    pub city: String,
    /// City in English, when it differs (for the English name).
    pub city_en: Option<String>,
    /// Official names; generated from kind and city when omitted.
    pub name_es: Option<String>,
    pub name_en: Option<String>,
    /// Other countries served (the office's own is always included).
    #[serde(default)]
    pub jurisdiction: Vec<String>,
}

/// Add a consular office.
#[utoipa::path(
    tag = "reference",
    operation_id = "create_consulate",
    security(("bearer" = [])),
    request_body = CreateConsulateRequest,
    responses(
        (status = 201, body = ConsulateResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Code taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/consulates")]
pub async fn create_consulate(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonBody<CreateConsulateRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_CONSULATE)?;
    let body = body.into_inner()?;
    let code = body.code.trim().to_ascii_uppercase();
    let code_ok = code.len() >= 4
        && code.len() <= 48
        && code.as_bytes().get(2) == Some(&b'-')
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if !code_ok {
        return Err(AppError::invalid(
            "body.code",
            "must look like `ES-VALENCIA`: country code, hyphen, capitals/digits/hyphens",
        ));
    }
    let city = check_text("body.city", &body.city, 100)?;
    let city_en = body
        .city_en
        .as_deref()
        .map(|c| check_text("body.city_en", c, 100))
        .transpose()?;
    let name_es = body
        .name_es
        .as_deref()
        .map(|n| check_text("body.name_es", n, 200))
        .transpose()?;
    let name_en = body
        .name_en
        .as_deref()
        .map(|n| check_text("body.name_en", n, 200))
        .transpose()?;
    let new = NewOffice {
        code,
        kind: body.kind,
        country: body.country,
        city,
        city_en,
        name_es,
        name_en,
        jurisdiction: body.jurisdiction,
    };
    let created = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| offices::create(conn, j, new).map_err(|e| e.under("body")),
    )
    .await?;
    Ok(ConsulateResponse::try_from(created)?.respond(StatusCode::CREATED))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConsulateRequest {
    pub kind: Option<ConsulateKind>,
    pub name_es: Option<String>,
    pub name_en: Option<String>,
    pub city: Option<String>,
    /// The city's English name; `""` clears it.
    pub city_en: Option<String>,
    /// Deactivated offices stay in history but take no new users or cases.
    pub active: Option<bool>,
    /// Replaces the served countries (the office's own is always included).
    pub jurisdiction: Option<Vec<String>>,
}

/// Correct a consular office. Code and country are stable. Needs `If-Match`.
#[utoipa::path(
    tag = "reference",
    operation_id = "update_consulate",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Consulate id or code"),
        ("If-Match" = String, Header, description = "ETag of the version being changed"),
    ),
    request_body = UpdateConsulateRequest,
    responses(
        (status = 200, body = ConsulateResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/consulates/{id}")]
pub async fn update_consulate(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<UpdateConsulateRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_CONSULATE)?;
    let raw = path.into_inner();
    let expected = if_match_version(&req)?;
    let body = body.into_inner()?;
    let name_es = body
        .name_es
        .as_deref()
        .map(|n| check_text("body.name_es", n, 200))
        .transpose()?;
    let name_en = body
        .name_en
        .as_deref()
        .map(|n| check_text("body.name_en", n, 200))
        .transpose()?;
    let city = body
        .city
        .as_deref()
        .map(|c| check_text("body.city", c, 100))
        .transpose()?;
    let city_en = body
        .city_en
        .as_deref()
        .map(|c| match c.trim() {
            "" => Ok(None),
            _ => check_text("body.city_en", c, 100).map(Some),
        })
        .transpose()?;
    let key = match uuid::Uuid::parse_str(&raw) {
        Ok(u) => ConsulateKey::Id(Id(u)),
        Err(_) => ConsulateKey::Code(raw.clone()),
    };
    let change = OfficeChange {
        kind: body.kind,
        name_es,
        name_en,
        city,
        city_en,
        active: body.active,
        jurisdiction: body.jurisdiction,
    };
    let updated = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            offices::update(conn, j, &key, &raw, expected, change).map_err(|e| e.under("body"))
        },
    )
    .await?;
    Ok(ConsulateResponse::try_from(updated)?.respond(StatusCode::OK))
}
