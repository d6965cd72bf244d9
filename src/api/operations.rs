//! Operational figures per consulate and month: demand (new cases,
//! attentions, referrals, payments), bottlenecks (open backlog and its age,
//! days to close per attention type, overdue tasks, first-contact breaches)
//! and the load per officer.

use actix_web::{get, web};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::access;
use super::support::scoped_consulate;
use crate::auth::AuthUser;
use crate::db::{self, Id};
use crate::error::{AppError, Problem};
use crate::extract::QueryParams;
use crate::services::operations::{compute, OperationsResponse};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OperationsQuery {
    /// First day, inclusive.
    pub from: NaiveDate,
    /// Last day, inclusive (at most two years after `from`).
    pub to: NaiveDate,
    /// One consulate (national roles; supervisors get their own).
    pub consulate: Option<uuid::Uuid>,
}

/// Demand and bottlenecks per consulate and month.
#[utoipa::path(
    tag = "indicators",
    operation_id = "get_operations",
    security(("bearer" = [])),
    params(OperationsQuery),
    responses(
        (status = 200, body = OperationsResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/indicators/operations")]
pub async fn get_operations(
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<OperationsQuery>,
) -> Result<web::Json<OperationsResponse>, AppError> {
    user.require(&access::GET_OPERATIONS)?;
    let q = query.into_inner();
    if q.to < q.from {
        return Err(AppError::bad_query("query.to", "is before `from`"));
    }
    if (q.to - q.from).num_days() > 366 * 2 {
        return Err(AppError::bad_query(
            "query.to",
            "a period is at most two years",
        ));
    }
    let consulate = scoped_consulate(&user, q.consulate.map(Id));
    let (from, to) = (q.from, q.to);
    let consulates = db::run(&state.read_pool, move |conn| {
        compute(conn, from, to, consulate)
    })
    .await?;
    Ok(web::Json(OperationsResponse {
        from,
        to,
        consulates,
        notes: vec![
            "Backlog: cases not closed at the end of the period (or now), age in days since opening.".into(),
            "Days to close: cases closed in the period, once per attention type they had; median (mean of the middle two) and nearest-rank 90th percentile.".into(),
            "Overdue tasks are counted now; first-contact breaches for detentions notified in the period.".into(),
            "Payments: paid entries net of reversals, by value date; PEN at each entry's own rate.".into(),
        ],
    }))
}
