//! The OpenAPI 3.1 document, generated from the handlers' annotations.
//! `mapce openapi` writes it to `openapi/openapi.json`; a test fails when the
//! committed file is stale; the server serves it at `/api/openapi.json`.

use actix_web::App;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::error::{FieldError, Problem};

/// Where the committed spec lives, relative to the crate root.
pub const SPEC_PATH: &str = "openapi/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MAPCE API",
        description = "Consular protection and assistance: cases, persons, attention types and the OEI.05 indicator for Peru's consulates. Errors are RFC 9457 problem documents (`application/problem+json`).",
        license(name = "MIT"),
    ),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "auth", description = "Login, sessions, second factor and one's own account"),
        (name = "users", description = "User administration"),
        (name = "reference", description = "Regions, countries and consular offices"),
        (name = "catalogue", description = "The attention-type catalogue: types, spellings, merges, protocols"),
        (name = "persons", description = "Persons, deduplication, merges and individual histories"),
        (name = "cases", description = "Cases, attentions, workflow, protocol steps and notes"),
        (name = "support", description = "The support-network directory and referrals to it"),
        (name = "ledger", description = "Financial assistance: exchange rates, payments with four-eyes approval, reversals, totals"),
        (name = "detention", description = "Detainees: first consular contact, visits, hearings, legal situation"),
        (name = "repatriation", description = "Repatriation, return assistance and transfer of remains"),
        (name = "indicators", description = "OEI.05 (persons protected and assisted), targets, closed years, exports, charts and operational figures"),
        (name = "public", description = "Information for consulate web portals; no authentication"),
        (name = "imports", description = "Legacy MAPCE imports as jobs, and the data-quality report"),
        (name = "audit", description = "The tamper-evident audit log"),
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerScheme),
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme that protected operations name.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token from POST /api/v1/auth/login (15 minutes)",
                    ))
                    .build(),
            ),
        );
    }
}

impl ApiDoc {
    /// The hand-written part of the spec; paths are added from the route table.
    pub fn openapi_base() -> utoipa::openapi::OpenApi {
        <ApiDoc as OpenApi>::openapi()
    }
}

/// The spec as the running app registers it: built from the same route table.
pub fn spec() -> utoipa::openapi::OpenApi {
    let (_app, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi_base())
        .configure(crate::api::configure)
        .split_for_parts();
    api
}

/// The spec as pretty JSON with a trailing newline (the committed form).
pub fn spec_json() -> String {
    let mut json = spec()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}
