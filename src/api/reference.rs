//! Reference data: regions, countries and consulates (read side).
//! Consulate writes come with access control.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{window, Page};
use crate::db::seed::REGIONS;
use crate::db::{self, Id, Ts};
use crate::domain::reference::ConsulateKind;
use crate::domain::text::fold_key;
use crate::error::{AppError, Problem};
use crate::extract::QueryParams;
use crate::models::reference::{
    self as model, ConsulateDetail, ConsulateFilter, ConsulateKey, CountryFilter,
};
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
        format!("\"{}\"", self.version)
    }
}

impl From<ConsulateDetail> for ConsulateResponse {
    fn from(d: ConsulateDetail) -> Self {
        let c = d.consulate;
        ConsulateResponse {
            id: c.id,
            code: c.code,
            // The column is CHECK-constrained to the three kinds.
            kind: ConsulateKind::parse(&c.kind).unwrap_or(ConsulateKind::Consulate),
            name_es: c.name_es,
            name_en: c.name_en,
            city: c.city,
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
        }
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
            AppError::bad_query(
                field,
                format!("unknown region `{raw}`; one of {}", known.join(", ")),
            )
        })
}

/// Folds a search text; one with no letter or digit would match everything.
fn search_key(raw: &str) -> Result<String, AppError> {
    let key = fold_key(raw);
    if key.is_empty() {
        return Err(AppError::bad_query(
            "query.q",
            "needs at least one letter or digit",
        ));
    }
    Ok(key)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50).
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
    pub region: Option<String>,
    /// Part of the Spanish or English name or an ISO code, ignoring accents
    /// and case: `peru`, `PERÚ`, `cote`.
    pub q: Option<String>,
    /// Page size, 1 to 200 (default 50).
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
    let filter = CountryFilter {
        region: query
            .region
            .as_deref()
            .map(|r| resolve_region("query.region", r))
            .transpose()?,
        search: query.q.as_deref().map(search_key).transpose()?,
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
    pub country: Option<String>,
    /// Region code or name of the office's country.
    pub region: Option<String>,
    /// Offices whose jurisdiction includes this country (alpha-2 or alpha-3).
    pub jurisdiction: Option<String>,
    /// Only active (`true`) or inactive (`false`) offices.
    pub active: Option<bool>,
    /// Page size, 1 to 200 (default 50).
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
                    None => Err(AppError::bad_query(
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
        .map(ConsulateResponse::from)
        .collect();
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
    let consulate = ConsulateResponse::from(
        found.ok_or_else(|| AppError::not_found(format!("no consulate `{raw}`")))?,
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, consulate.etag()))
        .json(consulate))
}
