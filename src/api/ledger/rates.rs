//! Exchange rates: recorded per currency and day, read by the payments
//! priced on that day.

use actix_web::{get, put, web, HttpRequest};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::write::write;
use crate::api::{access, text, window, Page, RequestOrigin as _};
use crate::audit::RequestMeta;
use crate::auth::AuthUser;
use crate::db::{self, Id, Ts};
use crate::domain::money::{self, format_rate, DecimalInput};
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::support::{self as model, ExchangeRate};
use crate::services::input::past_date;
use crate::services::ledger::{self as service, currency_of, own_or_given};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutExchangeRateRequest {
    /// PEN per one unit of the currency (1 for PEN itself), up to 9 decimals.
    #[schema(value_type = Option<String>, example = "4.0512")]
    pub pen_per_unit: Option<DecimalInput>,
    /// USD per one unit of the currency (1 for USD itself), up to 9 decimals.
    #[schema(value_type = Option<String>, example = "1.0800")]
    pub usd_per_unit: Option<DecimalInput>,
    /// Where the rate comes from, e.g. `SBS` or `BCRP`.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeRateResponse {
    pub currency: String,
    pub date: NaiveDate,
    #[schema(example = "4.0512")]
    pub pen_per_unit: String,
    #[schema(example = "1.08")]
    pub usd_per_unit: String,
    pub source: String,
    pub recorded_by: Option<Id>,
    pub recorded_at: Ts,
}

fn rate_response(r: ExchangeRate) -> ExchangeRateResponse {
    ExchangeRateResponse {
        pen_per_unit: format_rate(r.pen_per_unit_e9),
        usd_per_unit: format_rate(r.usd_per_unit_e9),
        currency: r.currency,
        date: r.rate_date,
        source: r.source,
        recorded_by: r.recorded_by,
        recorded_at: r.recorded_at,
    }
}

/// Record (or correct) the rates of a currency on a day. Payments keep the
/// rates they were made with; a correction changes only later entries.
#[utoipa::path(
    tag = "ledger",
    operation_id = "put_exchange_rate",
    security(("bearer" = [])),
    params(
        ("currency" = String, Path, description = "ISO 4217 code"),
        ("date" = String, Path, description = "YYYY-MM-DD"),
    ),
    request_body = PutExchangeRateRequest,
    responses(
        (status = 200, body = ExchangeRateResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/exchange-rates/{currency}/{date}")]
pub async fn put_exchange_rate(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, String)>,
    body: JsonBody<PutExchangeRateRequest>,
) -> Result<web::Json<ExchangeRateResponse>, AppError> {
    user.require(&access::PUT_EXCHANGE_RATE)?;
    let (code, date) = path.into_inner();
    let b = body.into_inner()?;
    let c = currency_of("path.currency", &code)?;
    let date = NaiveDate::parse_from_str(&date, "%Y-%m-%d")
        .map_err(|_| AppError::invalid("path.date", "must be a date like 2026-11-27"))?;
    let date = past_date("path.date", date)?;
    let rate = ExchangeRate {
        currency: c.code.to_owned(),
        rate_date: date,
        pen_per_unit_e9: own_or_given("body.pen_per_unit", c.code, "PEN", b.pen_per_unit.as_ref())?,
        usd_per_unit_e9: own_or_given("body.usd_per_unit", c.code, "USD", b.usd_per_unit.as_ref())?,
        source: text("body.source", &b.source, 200)?,
        recorded_by: Some(user.user_id),
        recorded_at: Ts::now(),
    };
    let stored = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| service::put_rate(conn, j, rate),
    )
    .await?;
    Ok(web::Json(rate_response(stored)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExchangeRateQuery {
    /// ISO 4217 code (`USD`, `eur`).
    #[param(pattern = "^\\s*[A-Za-z]{3}\\s*$")]
    pub currency: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Recorded exchange rates, newest first.
#[utoipa::path(
    tag = "ledger",
    operation_id = "list_exchange_rates",
    security(("bearer" = [])),
    params(ExchangeRateQuery),
    responses(
        (status = 200, body = Page<ExchangeRateResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/exchange-rates")]
pub async fn list_exchange_rates(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<ExchangeRateQuery>,
) -> Result<web::Json<Page<ExchangeRateResponse>>, AppError> {
    user.require(&access::LIST_EXCHANGE_RATES)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let currency = match &q.currency {
        Some(c) => Some(
            money::currency(c)
                .ok_or_else(|| {
                    AppError::invalid("query.currency", format!("unknown currency `{c}`"))
                })?
                .code,
        ),
        None => None,
    };
    let (rows, total) = db::run(&state.pool, move |conn| {
        model::list_exchange_rates(conn, currency, q.from, q.to, window).map_err(AppError::from)
    })
    .await?;
    let items = rows.into_iter().map(rate_response).collect();
    Ok(web::Json(Page::new(&req, items, total, window)))
}
