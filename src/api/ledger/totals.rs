//! Exact ledger totals.

use actix_web::{get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::payments::{currency_filter, year_range};
use crate::api::access;
use crate::api::support::scoped_consulate;
use crate::auth::AuthUser;
use crate::db::{self, Id};
use crate::domain::support::{PaymentKind, PaymentStatus};
use crate::error::{AppError, Problem};
use crate::extract::QueryParams;
use crate::models::support::PaymentFilter;
use crate::services::ledger::{self as service, TotalsResponse};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TotalsQuery {
    /// Value dates in this calendar year (all years by default).
    #[param(minimum = 1900, maximum = 9998)]
    pub year: Option<i32>,
    /// Consulate id (national roles; staff get their own).
    pub consulate: Option<uuid::Uuid>,
    pub kind: Option<PaymentKind>,
    /// ISO 4217 code (`USD`, `eur`).
    #[param(pattern = "^\\s*[A-Za-z]{3}\\s*$")]
    pub currency: Option<String>,
    /// Which entries to add up: `paid` (default: paid entries net of their
    /// reversals), `approved` (committed, not yet paid) or `requested`.
    pub status: Option<PaymentStatus>,
}

/// Ledger totals per consulate, year, kind and currency, to the cent: each
/// is the exact sum of the entries it covers (PEN and USD sums add the
/// entries' own converted amounts, so they too add up line by line).
#[utoipa::path(
    tag = "ledger",
    operation_id = "payment_totals",
    security(("bearer" = [])),
    params(TotalsQuery),
    responses(
        (status = 200, body = TotalsResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/payments/totals")]
pub async fn payment_totals(
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<TotalsQuery>,
) -> Result<web::Json<TotalsResponse>, AppError> {
    user.require(&access::PAYMENT_TOTALS)?;
    let q = query.into_inner();
    let (from, until) = year_range(q.year)?;
    let statuses = match q.status {
        None | Some(PaymentStatus::Paid) | Some(PaymentStatus::Reversed) => {
            vec![PaymentStatus::Paid, PaymentStatus::Reversed]
        }
        Some(s) => vec![s],
    };
    let filter = PaymentFilter {
        consulate: scoped_consulate(&user, q.consulate.map(Id)),
        statuses: Some(statuses.iter().map(|s| s.as_str().to_owned()).collect()),
        kind: q.kind.map(|k| k.as_str().to_owned()),
        currency: currency_filter(q.currency.as_deref())?,
        from,
        until,
        ..PaymentFilter::default()
    };
    let year = q.year;
    let totals = db::run(&state.pool, move |conn| {
        service::totals(conn, &filter, statuses, year)
    })
    .await?;
    Ok(web::Json(totals))
}
