//! Liveness and readiness probes, outside `/api/v1` and without auth.

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, Problem};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `alive` or `ready`.
    pub status: &'static str,
    /// The database backend, on readiness: `postgres` or `sqlite`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}

/// The process is up and serving HTTP. Touches nothing else.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Alive", body = HealthResponse))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse {
        status: "alive",
        database: None,
    })
}

/// How long readiness waits for the database before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// The database answers a trivial query within one second.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = HealthResponse),
        (status = 503, description = "Database not answering", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = state.pool.clone();
    let check = web::block(move || -> Result<(), AppError> {
        let mut conn = pool
            .get_timeout(READY_TIMEOUT)
            .map_err(|_| AppError::Unavailable {
                retry_after_secs: 2,
            })?;
        crate::db::ping(&mut conn).map_err(|_| AppError::Unavailable {
            retry_after_secs: 2,
        })
    });
    match actix_web::rt::time::timeout(READY_TIMEOUT + Duration::from_millis(200), check).await {
        Ok(Ok(Ok(()))) => Ok(HttpResponse::Ok().json(HealthResponse {
            status: "ready",
            database: Some(state.backend.name()),
        })),
        _ => Err(AppError::Unavailable {
            retry_after_secs: 2,
        }),
    }
}
