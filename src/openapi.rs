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
    components(schemas(
        Problem,
        FieldError,
        crate::services::indicators::SeriesPeriod,
        crate::api::catalogue::Lang
    )),
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
    finish(api)
}

/// What the route table cannot say by itself: the common problem answers
/// of every operation, and the links between creations and their reads.
pub fn finish(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    describe_if_match(&mut api);
    add_common_responses(&mut api);
    add_links(&mut api);
    api
}

/// OpenAPI links from each creation (a POST answering 201 with an `id`) to
/// the operations on what it created: `/X` → `/X/{id}…`, and a nested
/// `/X/{id}/Y` → `/Y/{y}…` and `/X/{id}/Y/{y}…`. Clients and stateful
/// fuzzers follow them to read, update and act on what they just made.
fn add_links(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    use utoipa::openapi::{RefOr, Schema};
    let has_id = |api: &utoipa::openapi::OpenApi, r: &RefOr<utoipa::openapi::Response>| -> bool {
        let RefOr::T(resp) = r else { return false };
        let Some(content) = resp.content.get("application/json") else {
            return false;
        };
        let name = match &content.schema {
            Some(RefOr::Ref(r)) => r
                .ref_location
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            _ => return false,
        };
        matches!(
            api.components.as_ref().and_then(|c| c.schemas.get(&name)),
            Some(RefOr::T(Schema::Object(o))) if o.properties.contains_key("id")
        )
    };
    let params = |path: &str| -> Vec<String> {
        path.split('/')
            .filter(|s| s.starts_with('{') && s.ends_with('}'))
            .map(|s| s[1..s.len() - 1].to_owned())
            .collect()
    };
    // (creating path, target path, the target's new parameter)
    let mut plans: Vec<(String, String, String)> = Vec::new();
    for (path, item) in &api.paths.paths {
        let Some(post) = &item.post else { continue };
        let Some(created) = post.responses.responses.get("201") else {
            continue;
        };
        if !has_id(api, created) {
            continue;
        }
        let last = path.rsplit('/').next().unwrap_or_default();
        let top = format!("/api/v1/{last}/");
        for target in api.paths.paths.keys() {
            for prefix in [format!("{path}/"), top.clone()] {
                let Some(rest) = target.strip_prefix(&prefix) else {
                    continue;
                };
                let first = rest.split('/').next().unwrap_or_default();
                if !(first.starts_with('{') && first.ends_with('}')) {
                    continue;
                }
                let new = first[1..first.len() - 1].to_owned();
                let known = params(path);
                let resolvable = params(target)
                    .iter()
                    .all(|p| *p == new || (prefix != top && known.contains(p)));
                if resolvable && !plans.iter().any(|(p, t, _)| p == path && t == target) {
                    plans.push((path.clone(), target.clone(), new));
                }
            }
        }
    }
    for (path, target, new) in plans {
        let Some(item) = api.paths.paths.get(&target) else {
            continue;
        };
        let ops: Vec<String> = [&item.get, &item.put, &item.post, &item.delete, &item.patch]
            .into_iter()
            .flatten()
            .filter_map(|op| op.operation_id.clone())
            .collect();
        let Some(RefOr::T(created)) = api
            .paths
            .paths
            .get_mut(&path)
            .and_then(|i| i.post.as_mut())
            .and_then(|op| op.responses.responses.get_mut("201"))
        else {
            continue;
        };
        for op in ops {
            let mut link = LinkBuilder::new().operation_id(&op);
            for p in params(&target) {
                let value = if p == new {
                    "$response.body#/id".to_owned()
                } else {
                    format!("$request.path.{p}")
                };
                link = link.parameter(p, value);
            }
            created.links.insert(op, RefOr::T(link.build()));
        }
    }
}

/// The operations of a path item, for the passes that complete the spec.
fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Every `If-Match` header gets the pattern of the ETags the server reads
/// (`crate::api::IF_MATCH_PATTERN`), declared once here rather than on each
/// update operation.
fn describe_if_match(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    for item in api.paths.paths.values_mut() {
        for op in operations_mut(item) {
            for p in op.parameters.iter_mut().flatten() {
                if p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case("If-Match")
                {
                    p.schema = Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some(crate::api::IF_MATCH_PATTERN))
                            .into(),
                    );
                }
            }
        }
    }
}

/// Declares on every operation the problem answers any of them can give,
/// where the operation does not already say more: 400 (a malformed path,
/// query or body), 401/403 (authentication, role, consulate scope) on
/// protected operations, 404 on paths with an id, 413/415/422 on operations
/// with a body, and 503 (database not answering).
fn add_common_responses(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    crate::error::PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in api.paths.paths.iter_mut() {
        let has_id = path.contains('{');
        let public = path.starts_with("/api/v1/public")
            || !path.starts_with("/api/")
            || path.starts_with("/api/v1/auth/login");
        for op in operations_mut(item) {
            let with_body = op.request_body.is_some();
            let mut wanted = vec![("400", "Malformed request: the problem names the field")];
            if !public {
                wanted.push(("401", "Missing, expired or revoked access token"));
                wanted.push(("403", "The caller's role or consulate may not do this"));
            }
            if has_id {
                wanted.push(("404", "No such resource (or not visible to the caller)"));
            }
            if with_body {
                wanted.push(("413", "Body too large"));
                wanted.push(("415", "Unsupported Content-Type"));
                wanted.push(("422", "Invalid values: the problem names each field"));
            } else if names_by_code(op) {
                wanted.push((
                    "422",
                    "A well-formed filter names no known country, region, currency, consulate or attention type",
                ));
            }
            wanted.push(("503", "Database not answering; see Retry-After"));
            for (code, description) in wanted {
                op.responses
                    .responses
                    .entry(code.to_owned())
                    .or_insert_with(|| problem(description));
            }
        }
    }
}

/// Whether an operation takes a query filter that names a country, region,
/// currency, consulate or attention type by code or name (resolved, so an
/// unknown one is refused with 422).
fn names_by_code(op: &utoipa::openapi::path::Operation) -> bool {
    use utoipa::openapi::path::ParameterIn;
    op.parameters.iter().flatten().any(|p| {
        p.parameter_in == ParameterIn::Query
            && !is_uuid_param(p)
            && matches!(
                p.name.as_str(),
                "country" | "jurisdiction" | "region" | "currency" | "attention_type" | "consulate"
            )
    })
}

fn is_uuid_param(p: &utoipa::openapi::path::Parameter) -> bool {
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
    use utoipa::openapi::{RefOr, Schema};
    matches!(&p.schema, Some(RefOr::T(Schema::Object(o)))
        if matches!(o.format, Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))))
}

/// The spec as pretty JSON with a trailing newline (the committed form).
pub fn spec_json() -> String {
    to_json(&spec())
}

/// A finished spec as pretty JSON with a trailing newline: what is
/// committed and what `/api/openapi.json` serves.
pub fn to_json(api: &utoipa::openapi::OpenApi) -> String {
    let mut value =
        serde_json::to_value(api).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
    camel_case_links(&mut value);
    spell_out_visible_text(&mut value, &crate::api::visible_text_pattern());
    let mut json =
        serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}

/// utoipa 5 writes a Link's fields in snake case (`operation_id`), which
/// OpenAPI does not know, so tools ignored or refused every link; renamed
/// here to `operationId`, `operationRef` and `requestBody`.
fn camel_case_links(value: &mut serde_json::Value) {
    use serde_json::Value;
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            items.iter_mut().for_each(camel_case_links);
        }
        return;
    };
    if let Some(Value::Object(links)) = map.get_mut("links") {
        for link in links.values_mut() {
            if let Value::Object(fields) = link {
                for (from, to) in [
                    ("operation_id", "operationId"),
                    ("operation_ref", "operationRef"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(v) = fields.remove(from) {
                        fields.insert(to.to_owned(), v);
                    }
                }
            }
        }
    }
    map.values_mut().for_each(camel_case_links);
}

/// `"pattern": "\\S"` (a text with something `trim` keeps) becomes the
/// exact character set of `api::visible_text_pattern`.
fn spell_out_visible_text(value: &mut serde_json::Value, visible: &str) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(p) = map.get_mut("pattern").filter(|p| p.as_str() == Some("\\S")) {
                *p = Value::String(visible.to_owned());
            }
            map.values_mut()
                .for_each(|v| spell_out_visible_text(v, visible));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| spell_out_visible_text(v, visible)),
        _ => {}
    }
}

/// The methods the spec declares for a concrete path (`/api/v1/cases/…`),
/// for the `Allow` header of a 405.
pub fn allowed_methods(path: &str) -> String {
    static TABLE: std::sync::OnceLock<Vec<(Vec<String>, Vec<&'static str>)>> =
        std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        spec()
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("OPTIONS", item.options.is_some()),
                    ("HEAD", item.head.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (segments, methods)
            })
            .collect()
    });
    let wanted: Vec<&str> = path.split('/').collect();
    // the templates the path matches; a literal segment beats a parameter
    // (`/attention-types/resolve` is not `/attention-types/{id}`)
    let mut best: Option<(usize, &Vec<&str>)> = None;
    for (segments, methods) in table {
        let matches = segments.len() == wanted.len()
            && segments
                .iter()
                .zip(&wanted)
                .all(|(t, w)| t == w || (t.starts_with('{') && t.ends_with('}') && !w.is_empty()));
        if matches {
            let literal = segments.iter().zip(&wanted).filter(|(t, w)| t == w).count();
            if best.is_none_or(|(n, _)| literal > n) {
                best = Some((literal, methods));
            }
        }
    }
    best.map(|(_, m)| m.join(", ")).unwrap_or_default()
}
