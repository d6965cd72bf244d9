//! MAPCE: the consular protection and assistance case-management backend.
//!
//! The library builds the application so that the binary, the tests and the
//! OpenAPI generator share one route table.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod extract;
pub mod files;
pub mod idempotency;
pub mod memory;
pub mod middleware;
pub mod models;
pub mod openapi;
pub mod refusals;
pub mod services;
pub mod telemetry;
pub mod throttle;

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
    /// Where histories, indicators and exports read: a replica's pool when
    /// `MAPCE_DATABASE_READ_URL` is set, else the same pool.
    pub read_pool: DbPool,
    pub backend: Backend,
    pub jwt: auth::jwt::JwtKeys,
    pub passwords: auth::password::PasswordService,
    pub auth_cache: std::sync::Arc<auth::AuthCache>,
    /// Unauthenticated refusals per address and minute.
    pub refusals: std::sync::Arc<refusals::Bursts>,
    /// Where uploaded extracts wait for their job (0700; `serve` uses
    /// `MAPCE_DATA_DIR/uploads`).
    pub upload_dir: std::path::PathBuf,
    /// Exact document searches per consulate user and hour.
    pub lookups: std::sync::Arc<throttle::Lookups>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: std::sync::Arc<Vec<std::net::IpAddr>>,
}

impl AppState {
    /// State over a pool, with a signing key and password cost.
    pub fn new(
        pool: DbPool,
        backend: Backend,
        jwt: auth::jwt::JwtKeys,
        cost: auth::password::HashCost,
        auth_cache_ttl: std::time::Duration,
    ) -> Self {
        AppState {
            read_pool: pool.clone(),
            pool,
            backend,
            jwt,
            // Each argon2id hash takes ~19 MiB: cap concurrent ones per core.
            passwords: auth::password::PasswordService::new(cost, num_cpus_or_two() * 2),
            auth_cache: std::sync::Arc::new(auth::AuthCache::new(auth_cache_ttl)),
            refusals: std::sync::Arc::new(refusals::Bursts::default()),
            upload_dir: std::env::temp_dir().join(format!("mapce-uploads-{}", std::process::id())),
            lookups: std::sync::Arc::new(throttle::Lookups::new(config::DEFAULT_LOOKUP_LIMIT)),
            trusted_proxies: std::sync::Arc::new(Vec::new()),
        }
    }
}

impl AppState {
    /// Sends the read-mostly endpoints to another pool (a replica).
    pub fn with_read_pool(mut self, read_pool: DbPool) -> Self {
        self.read_pool = read_pool;
        self
    }

    pub fn with_trusted_proxies(mut self, proxies: Vec<std::net::IpAddr>) -> Self {
        self.trusted_proxies = std::sync::Arc::new(proxies);
        self
    }

    pub fn with_lookup_limit(mut self, per_hour: u32) -> Self {
        self.lookups = std::sync::Arc::new(throttle::Lookups::new(per_hour));
        self
    }

    pub fn with_upload_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.upload_dir = dir;
        self
    }
}

fn num_cpus_or_two() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
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
    // Built once per process (each worker builds its own route table, but
    // the spec is the same for all); each answer shares the same bytes.
    static SPEC: std::sync::OnceLock<web::Bytes> = std::sync::OnceLock::new();
    let spec = SPEC
        .get_or_init(|| web::Bytes::from(openapi::to_json(&openapi::finish(api))))
        .clone();
    app.route(
        "/api/openapi.json",
        web::get().to(move || {
            let spec = spec.clone();
            async move {
                actix_web::HttpResponse::Ok()
                    .content_type("application/json")
                    .body(spec)
            }
        }),
    )
    .service(
        SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/api/openapi.json")),
    )
    .service(web::redirect("/docs", "/docs/"))
    .default_service(web::to(middleware::fallback))
    .wrap(actix_web::middleware::from_fn(middleware::request_context))
}
