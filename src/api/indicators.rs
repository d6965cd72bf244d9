//! OEI.05 for the planning office: figures and breakdowns, targets and
//! Avance tipo 1, the yearly series, closing a year (and reopening it),
//! exports and charts. Only aggregates leave: no names, documents or
//! person ids.

use actix_web::http::header;
use actix_web::{get, post, put, web, HttpRequest, HttpResponse};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::reports;
use super::write::write;
use super::{access, optional_text, text};
use crate::api::RequestOrigin as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Ts};
use crate::domain::audit::AuditAction;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::indicators::Target;
use crate::services::indicators::{self as service, Sense, SeriesPeriod};
use crate::services::oei05::{self, target_response, SeriesYear, ViewRequest};
pub use crate::services::oei05::{CloseResponse, Oei05Response, TargetResponse};
use crate::AppState;

/// The oldest and newest years the indicator is asked about.
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Oei05Query {
    /// A calendar year, 2000 to 2100 (or give `from` and `to`).
    #[param(minimum = 2000, maximum = 2100)]
    pub year: Option<i32>,
    /// First day, inclusive.
    pub from: Option<NaiveDate>,
    /// Last day, inclusive.
    pub to: Option<NaiveDate>,
    /// A series inside the period: `quarter` or `month`.
    pub period: Option<SeriesPeriod>,
    /// Show only the N largest groups of country, consulate, attention
    /// type, category and channel; the rest are `others`.
    pub top: Option<u32>,
}

/// The period a query asks for, checked.
fn period_of(q: &Oei05Query) -> Result<(NaiveDate, NaiveDate, Option<i32>), AppError> {
    match (q.year, q.from, q.to) {
        (Some(y), None, None) => {
            if !YEARS.contains(&y) {
                return Err(AppError::bad_query(
                    "query.year",
                    "must be a year between 2000 and 2100",
                ));
            }
            let from = NaiveDate::from_ymd_opt(y, 1, 1);
            let to = NaiveDate::from_ymd_opt(y, 12, 31);
            match (from, to) {
                (Some(f), Some(t)) => Ok((f, t, Some(y))),
                _ => Err(AppError::bad_query("query.year", "is not a year")),
            }
        }
        (None, Some(f), Some(t)) => {
            if t < f {
                return Err(AppError::bad_query("query.to", "is before `from`"));
            }
            if (t - f).num_days() > 366 * 11 {
                return Err(AppError::bad_query(
                    "query.to",
                    "a period is at most ten years",
                ));
            }
            Ok((f, t, None))
        }
        (Some(_), _, _) => Err(AppError::bad_query(
            "query.year",
            "give either `year` or `from` and `to`, not both",
        )),
        (None, None, _) => Err(AppError::bad_query(
            "query.year",
            "give `year`, or `from` and `to`",
        )),
        (None, Some(_), None) => Err(AppError::bad_query("query.to", "is required with `from`")),
    }
}

/// What the view is asked for.
fn view_request(q: &Oei05Query) -> Result<ViewRequest, AppError> {
    let (from, to, year) = period_of(q)?;
    Ok(ViewRequest {
        from,
        to,
        year,
        period: q.period,
        top: q.top,
    })
}

/// Computes (or, for a closed year, reads) the OEI.05 response.
pub(crate) fn oei05_view(conn: &mut DbConn, q: &Oei05Query) -> Result<Oei05Response, AppError> {
    oei05::view(conn, &view_request(q)?)
}

/// The OEI.05 indicator for a year or a period: distinct persons with a
/// non-voided attention, attentions, and every breakdown. A closed year is
/// served from its snapshot, with the drift of today's data.
#[utoipa::path(
    tag = "indicators",
    operation_id = "get_oei05",
    security(("bearer" = [])),
    params(Oei05Query),
    responses(
        (status = 200, body = Oei05Response),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/indicators/oei05")]
pub async fn get_oei05(
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<Oei05Query>,
) -> Result<web::Json<Oei05Response>, AppError> {
    user.require(&access::GET_OEI05)?;
    let q = query.into_inner();
    period_of(&q)?;
    let response = db::run(&state.read_pool, move |conn| oei05_view(conn, &q)).await?;
    Ok(web::Json(response))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTargetRequest {
    /// The expected value (meta): a count of people, so not negative.
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "crate::api::whole_number::deserialize")]
    pub target: i64,
    pub sense: Sense,
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

fn year_in_path(raw: i32) -> Result<i32, AppError> {
    if !YEARS.contains(&raw) {
        return Err(AppError::invalid(
            "path.year",
            "must be a year between 2000 and 2100",
        ));
    }
    Ok(raw)
}

/// Set (or correct) the year's target and the indicator's sense.
#[utoipa::path(
    tag = "indicators",
    operation_id = "put_oei05_target",
    security(("bearer" = [])),
    params(("year" = i32, Path, description = "Calendar year, 2000 to 2100", minimum = 2000, maximum = 2100)),
    request_body = PutTargetRequest,
    responses(
        (status = 200, body = TargetResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/indicators/oei05/targets/{year}")]
pub async fn put_oei05_target(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i32>,
    body: JsonBody<PutTargetRequest>,
) -> Result<web::Json<TargetResponse>, AppError> {
    user.require(&access::PUT_OEI05_TARGET)?;
    let year = year_in_path(path.into_inner())?;
    let b = body.into_inner()?;
    if b.target < 0 {
        return Err(AppError::invalid("body.target", "must not be negative"));
    }
    let t = Target {
        year,
        target: b.target,
        sense: b.sense.as_str().to_owned(),
        note: optional_text("body.note", b.note.as_deref(), 2000)?,
        set_by: Some(user.user_id),
        set_at: Ts::now(),
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| target_response(oei05::put_target(conn, j, t)?),
    )
    .await?;
    Ok(web::Json(response))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// First year.
    #[param(minimum = 2000, maximum = 2100)]
    pub from: i32,
    /// Last year (at most 30 years after `from`).
    #[param(minimum = 2000, maximum = 2100)]
    pub to: i32,
    /// The year changes are also compared with (default: `from`).
    #[param(minimum = 2000, maximum = 2100)]
    pub base: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesResponse {
    pub base: i32,
    pub years: Vec<SeriesYear>,
}

/// OEI.05 year by year: value, target, Avance tipo 1, and the change over
/// the previous year and over a base year.
#[utoipa::path(
    tag = "indicators",
    operation_id = "get_oei05_series",
    security(("bearer" = [])),
    params(SeriesQuery),
    responses(
        (status = 200, body = SeriesResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/indicators/oei05/series")]
pub async fn get_oei05_series(
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<SeriesQuery>,
) -> Result<web::Json<SeriesResponse>, AppError> {
    user.require(&access::GET_OEI05_SERIES)?;
    let q = query.into_inner();
    if !YEARS.contains(&q.from) || !YEARS.contains(&q.to) {
        return Err(AppError::bad_query(
            "query.from",
            "years go from 2000 to 2100",
        ));
    }
    if q.to < q.from || q.to - q.from > 30 {
        return Err(AppError::bad_query(
            "query.to",
            "must be `from` to 30 years after it",
        ));
    }
    let base = q.base.unwrap_or(q.from);
    if base < q.from || base > q.to {
        return Err(AppError::bad_query(
            "query.base",
            "must lie between `from` and `to`",
        ));
    }
    let years = db::run(&state.read_pool, move |conn| {
        oei05::series(conn, q.from, q.to, base)
    })
    .await?;
    Ok(web::Json(SeriesResponse { base, years }))
}

/// Freeze a year's figures, keeping the persons behind every cell. A closed
/// year is served from its snapshot until an admin reopens it.
#[utoipa::path(
    tag = "indicators",
    operation_id = "close_oei05_year",
    security(("bearer" = [])),
    params(("year" = i32, Path, description = "Calendar year, 2000 to 2100", minimum = 2000, maximum = 2100)),
    responses(
        (status = 201, body = CloseResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/indicators/oei05/{year}/close")]
pub async fn close_oei05_year(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CLOSE_OEI05_YEAR)?;
    let year = year_in_path(path.into_inner())?;
    if year > chrono::Utc::now().year() {
        return Err(AppError::invalid(
            "path.year",
            "a future year cannot be closed",
        ));
    }
    let user_id = user.user_id;
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| oei05::close_year(conn, j, year, user_id),
    )
    .await?;
    Ok(HttpResponse::Created().json(response))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenRequest {
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub reason: String,
}

/// Reopen a closed year (admins; the reason is audited). The snapshot is
/// kept, stamped as reopened; closing again makes a new one.
#[utoipa::path(
    tag = "indicators",
    operation_id = "reopen_oei05_year",
    security(("bearer" = [])),
    params(("year" = i32, Path, description = "Calendar year, 2000 to 2100", minimum = 2000, maximum = 2100)),
    request_body = ReopenRequest,
    responses(
        (status = 204, description = "Reopened"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The year is not closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/indicators/oei05/{year}/reopen")]
pub async fn reopen_oei05_year(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i32>,
    body: JsonBody<ReopenRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::REOPEN_OEI05_YEAR)?;
    let year = year_in_path(path.into_inner())?;
    let reason = text("body.reason", &body.into_inner()?.reason, 2000)?;
    let user_id = user.user_id;
    write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| oei05::reopen_year(conn, j, year, user_id, &reason),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    #[param(minimum = 2000, maximum = 2100)]
    pub year: i32,
    /// Replace counts below k with "<k" for publication.
    pub suppress_below: Option<u32>,
    /// Fold all but the N largest groups into "Otros".
    pub top: Option<u32>,
}

/// Export the year's OEI.05 figures for the planning office: `json`, `csv`
/// (UTF-8 with a BOM, one row per group) or `xlsx` (one formatted sheet and
/// bar chart per breakdown, Spanish headings, a notes sheet). Audited.
#[utoipa::path(
    tag = "indicators",
    operation_id = "export_oei05",
    security(("bearer" = [])),
    params(("format" = String, Path, description = "`json`, `csv` or `xlsx`"), ExportQuery),
    responses(
        (status = 200, description = "The export", content_type = "application/octet-stream"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/exports/oei05.{format}")]
pub async fn export_oei05(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    query: QueryParams<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::EXPORT_OEI05)?;
    let format = path.into_inner();
    let format = reports::Format::parse(&format).ok_or_else(|| {
        AppError::not_found(format!(
            "no export format `{format}`; use json, csv or xlsx"
        ))
    })?;
    let q = query.into_inner();
    let view_query = Oei05Query {
        year: Some(q.year),
        from: None,
        to: None,
        period: Some(SeriesPeriod::Month),
        top: q.top,
    };
    period_of(&view_query)?;
    let suppress = q.suppress_below.filter(|k| *k > 1).map(i64::from);
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    // figures from the read pool (a replica when configured), the audit row
    // on the primary
    let view = db::run(&state.read_pool, move |conn| oei05_view(conn, &view_query)).await?;
    db::run(&state.pool, move |conn| {
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(AuditAction::Oei05Export, "oei05_year", Some(q.year.to_string())).details(
                serde_json::json!({ "format": format.extension(), "suppress_below": suppress, "top": q.top }),
            ),
        )?;
        Ok::<_, AppError>(())
    })
    .await?;
    let report = reports::Report::of(&view, suppress);
    let body = web::block(move || report.render(format))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"oei05-{}.{}\"",
                q.year,
                format.extension()
            ),
        ))
        .body(body))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChartQuery {
    #[param(minimum = 2000, maximum = 2100)]
    pub year: i32,
    /// Bars shown (default 15; the rest are "Otros").
    pub top: Option<u32>,
}

/// A bar chart of one breakdown as SVG, for embedding.
#[utoipa::path(
    tag = "indicators",
    operation_id = "get_oei05_chart",
    security(("bearer" = [])),
    params(("breakdown" = String, Path, description = "sex, region, country, consulate, attention_type, category, channel or age_group"), ChartQuery),
    responses(
        (status = 200, description = "SVG", content_type = "image/svg+xml"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/charts/oei05/{breakdown}.svg")]
pub async fn get_oei05_chart(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    query: QueryParams<ChartQuery>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::GET_OEI05_CHART)?;
    let breakdown = path.into_inner();
    if !service::BREAKDOWNS.contains(&breakdown.as_str()) {
        return Err(AppError::not_found(format!("no breakdown `{breakdown}`")));
    }
    let q = query.into_inner();
    let view_query = Oei05Query {
        year: Some(q.year),
        from: None,
        to: None,
        period: None,
        top: Some(q.top.unwrap_or(15)),
    };
    period_of(&view_query)?;
    let view = db::run(&state.read_pool, move |conn| oei05_view(conn, &view_query)).await?;
    let b = view
        .figures
        .breakdowns
        .iter()
        .find(|b| b.name == breakdown)
        .ok_or_else(|| AppError::not_found("breakdown"))?;
    let svg = reports::bar_chart_svg(&reports::title_of(&breakdown, q.year), b);
    Ok(HttpResponse::Ok().content_type("image/svg+xml").body(svg))
}
