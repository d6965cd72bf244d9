//! MAPCE: the consular protection and assistance case-management backend.
//!
//! The library builds the application so that the binary, the tests and the
//! OpenAPI generator share one route table.

pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod models;
pub mod openapi;
pub mod telemetry;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::db::{Backend, DbPool};

/// Shared state of every worker.
#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub backend: Backend,
}

/// The whole application: middleware, routes, the spec and Swagger UI.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, api) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi_base())
        .app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(extract::JSON_LIMIT))
        .configure(api::configure)
        .split_for_parts();
    app.service(SwaggerUi::new("/docs/{_:.*}").url("/api/openapi.json", api))
        .service(web::redirect("/docs", "/docs/"))
        .default_service(web::to(middleware::fallback))
        .wrap(actix_web::middleware::from_fn(middleware::request_context))
}
