//! Exact ledger totals.

use std::collections::BTreeMap;

use actix_web::{get, web};
use chrono::Datelike;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::payments::{currency_filter, year_range};
use crate::api::access;
use crate::api::support::scoped_consulate;
use crate::auth::AuthUser;
use crate::db::{self, Id};
use crate::domain::money::format_scaled;
use crate::domain::support::{PaymentKind, PaymentStatus};
use crate::domain::Stored;
use crate::error::{AppError, Problem};
use crate::extract::QueryParams;
use crate::models::support::{self as model, PaymentFilter};
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

#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsGroup {
    pub consulate_id: Id,
    pub year: i32,
    pub kind: PaymentKind,
    pub currency: String,
    pub entries: i64,
    /// Exact sum in the currency.
    pub amount: String,
    /// Sum of the entries' PEN amounts.
    pub amount_pen: String,
    pub amount_usd: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    pub entries: i64,
    pub amount: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsResponse {
    pub year: Option<i32>,
    /// The statuses added up.
    pub statuses: Vec<PaymentStatus>,
    /// Per consulate, year, kind and currency.
    pub groups: Vec<TotalsGroup>,
    pub by_currency: Vec<CurrencyTotal>,
    pub entries: i64,
    pub total_pen: String,
    pub total_usd: String,
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
    let lines = db::run(&state.pool, move |conn| {
        model::ledger_lines(conn, &filter).map_err(AppError::from)
    })
    .await?;
    type Key = (Id, i32, String, String);
    let mut groups: BTreeMap<Key, (i64, i32, i128, i128, i128)> = BTreeMap::new();
    let mut currencies: BTreeMap<String, (i64, i32, i128)> = BTreeMap::new();
    let (mut pen, mut usd, mut entries) = (0_i128, 0_i128, 0_i64);
    for l in lines {
        let g = groups
            .entry((
                l.consulate_id,
                l.value_date.year(),
                l.kind.clone(),
                l.currency.clone(),
            ))
            .or_insert((0, l.currency_exponent, 0, 0, 0));
        g.0 += 1;
        g.2 += i128::from(l.amount_minor);
        g.3 += i128::from(l.amount_pen_cents);
        g.4 += i128::from(l.amount_usd_cents);
        let c = currencies
            .entry(l.currency.clone())
            .or_insert((0, l.currency_exponent, 0));
        c.0 += 1;
        c.2 += i128::from(l.amount_minor);
        pen += i128::from(l.amount_pen_cents);
        usd += i128::from(l.amount_usd_cents);
        entries += 1;
    }
    let fmt = |v: i128, exp: i32| format_scaled(v, u32::try_from(exp).unwrap_or(2));
    Ok(web::Json(TotalsResponse {
        year: q.year,
        statuses,
        groups: groups
            .into_iter()
            .map(
                |((consulate_id, year, kind, currency), (n, exp, amount, p, u))| {
                    Ok(TotalsGroup {
                        consulate_id,
                        year,
                        kind: PaymentKind::stored(&kind)?,
                        currency,
                        entries: n,
                        amount: fmt(amount, exp),
                        amount_pen: fmt(p, 2),
                        amount_usd: fmt(u, 2),
                    })
                },
            )
            .collect::<Result<_, AppError>>()?,
        by_currency: currencies
            .into_iter()
            .map(|(currency, (n, exp, amount))| CurrencyTotal {
                currency,
                entries: n,
                amount: fmt(amount, exp),
            })
            .collect(),
        entries,
        total_pen: fmt(pen, 2),
        total_usd: fmt(usd, 2),
    }))
}
