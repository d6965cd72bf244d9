//! The attention-type catalogue: one deduplicated vocabulary with aliases,
//! resolution of legacy spellings, merges, versioned protocols and a public
//! listing for consulate web portals.

mod merges;
mod protocols;
mod public;

pub use merges::*;
pub use protocols::*;
pub use public::*;

use crate::domain::{stored_json, Stored};
use actix_web::http::{header, StatusCode};
use actix_web::{get, patch, post, put, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::write::write;
use super::{access, etag, if_match_version, window, Page};
use crate::api::RequestOrigin as _;
use crate::audit::RequestMeta;
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::catalogue::{AttentionCategory, AttentionKind, IntakeChannel};
use crate::domain::text::fold_key;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::catalogue::{self as model, Alias, AttentionType, TypeFilter, TypeKey};
use crate::services::catalogue::{self as service, TypeChange};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AliasResponse {
    #[schema(example = "Asesoría legal")]
    pub label: String,
    /// `name_es`, `name_en`, `code` or `alias`.
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeRef {
    pub id: Id,
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttentionTypeResponse {
    pub id: Id,
    #[schema(example = "legal_orientation")]
    pub code: String,
    #[schema(example = "Orientación legal")]
    pub name_es: String,
    #[schema(example = "Legal orientation")]
    pub name_en: String,
    pub category: AttentionCategory,
    pub kind: AttentionKind,
    pub description_es: String,
    pub description_en: String,
    pub who_may_ask_es: String,
    pub who_may_ask_en: String,
    pub requirements_es: String,
    pub requirements_en: String,
    pub channels: Vec<IntakeChannel>,
    /// Cases of this type hide identifying data outside their consulate.
    pub protected_by_default: bool,
    /// `active`, `deprecated` (no new use) or `merged`.
    pub status: String,
    /// For merged types: where their attentions and spellings went.
    pub merged_into: Option<Id>,
    /// Every spelling that resolves to this type.
    pub aliases: Vec<AliasResponse>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

fn response(t: AttentionType, aliases: &[Alias]) -> Result<AttentionTypeResponse, AppError> {
    Ok(AttentionTypeResponse {
        aliases: aliases
            .iter()
            .filter(|a| a.attention_type_id == t.id)
            .map(|a| AliasResponse {
                label: a.label.clone(),
                source: a.source.clone(),
            })
            .collect(),
        channels: stored_json::<Vec<IntakeChannel>>("attention type channels", &t.channels)?,
        category: AttentionCategory::stored(&t.category)?,
        kind: AttentionKind::stored(&t.kind)?,
        id: t.id,
        code: t.code,
        name_es: t.name_es,
        name_en: t.name_en,
        description_es: t.description_es,
        description_en: t.description_en,
        who_may_ask_es: t.who_may_ask_es,
        who_may_ask_en: t.who_may_ask_en,
        requirements_es: t.requirements_es,
        requirements_en: t.requirements_en,
        protected_by_default: t.protected_by_default,
        status: t.status,
        merged_into: t.merged_into_id,
        version: t.version,
        created_at: t.created_at,
        updated_at: t.updated_at,
    })
}

fn load_response(
    conn: &mut DbConn,
    key: &TypeKey,
    raw: &str,
) -> Result<AttentionTypeResponse, AppError> {
    let t = model::find_type(conn, key)?
        .ok_or_else(|| AppError::not_found(format!("no attention type `{raw}`")))?;
    let aliases = model::aliases_of(conn, &[t.id])?;
    response(t, &aliases)
}

fn respond(t: AttentionTypeResponse, status: StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag(t.version)))
        .insert_header((
            header::LOCATION,
            format!("/api/v1/attention-types/{}", t.id),
        ))
        .json(t)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TypeQuery {
    pub category: Option<AttentionCategory>,
    pub kind: Option<AttentionKind>,
    /// `active`, `deprecated` or `merged`.
    #[param(pattern = "^(active|deprecated|merged)$")]
    pub status: Option<String>,
    /// Part of any spelling, ignoring accents and case.
    pub q: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// The catalogue, ordered by code.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "list_attention_types",
    security(("bearer" = [])),
    params(TypeQuery),
    responses(
        (status = 200, body = Page<AttentionTypeResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/attention-types")]
pub async fn list_attention_types(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<TypeQuery>,
) -> Result<web::Json<Page<AttentionTypeResponse>>, AppError> {
    user.require(&access::LIST_ATTENTION_TYPES)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    if let Some(s) = &q.status {
        if !["active", "deprecated", "merged"].contains(&s.as_str()) {
            return Err(AppError::bad_query(
                "query.status",
                "one of active, deprecated, merged",
            ));
        }
    }
    let filter = TypeFilter {
        category: q.category.map(|c| c.as_str().to_owned()),
        kind: q.kind.map(|k| k.as_str().to_owned()),
        status: q.status,
        search: q.q.as_deref().map(fold_key).filter(|s| !s.is_empty()),
    };
    let (rows, aliases, total) = db::run(&state.pool, move |conn| {
        let (rows, total) = model::list_types(conn, &filter, window)?;
        let ids: Vec<Id> = rows.iter().map(|t| t.id).collect();
        let aliases = model::aliases_of(conn, &ids)?;
        Ok((rows, aliases, total))
    })
    .await?;
    let items = rows
        .into_iter()
        .map(|t| response(t, &aliases))
        .collect::<Result<_, _>>()?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

/// One attention type by id or code, with every spelling.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "get_attention_type",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Type id or code")),
    responses(
        (status = 200, body = AttentionTypeResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/attention-types/{id}")]
pub async fn get_attention_type(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::GET_ATTENTION_TYPE)?;
    let raw = path.into_inner();
    let key = TypeKey::parse(&raw);
    let t = db::run(&state.pool, move |conn| load_response(conn, &key, &raw)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(t.version)))
        .json(t))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResolveQuery {
    /// A label as an officer or a legacy extract wrote it (at least one
    /// letter or digit).
    #[param(pattern = "[^\\W_]")]
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestion {
    pub id: Id,
    pub code: String,
    pub name_es: String,
    /// The closest spelling of this type.
    pub closest: String,
    /// Jaro-Winkler similarity, 0 to 1.
    pub score: f64,
}

/// The type any spelling means; 404 with up to five close suggestions when
/// none matches.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "resolve_attention_type",
    security(("bearer" = [])),
    params(ResolveQuery),
    responses(
        (status = 200, body = AttentionTypeResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown label; `suggestions` lists close types", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/attention-types/resolve")]
pub async fn resolve_attention_type(
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<ResolveQuery>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::RESOLVE_ATTENTION_TYPE)?;
    let label = query.into_inner().label;
    if fold_key(&label).is_empty() {
        return Err(AppError::bad_query(
            "query.label",
            "needs at least one letter or digit",
        ));
    }
    let outcome = db::run(&state.pool, move |conn| {
        match service::resolve(conn, &label)? {
            Some(t) => {
                let aliases = model::aliases_of(conn, &[t.id])?;
                Ok(Ok(response(t, &aliases)?))
            }
            None => Ok(Err((label.clone(), service::suggest(conn, &label, 5)?))),
        }
    })
    .await?;
    match outcome {
        Ok(t) => Ok(HttpResponse::Ok().json(t)),
        Err((label, suggestions)) => {
            let list: Vec<Suggestion> = suggestions
                .into_iter()
                .map(|(t, score, closest)| Suggestion {
                    id: t.id,
                    code: t.code,
                    name_es: t.name_es,
                    closest,
                    score: (score * 1000.0).round() / 1000.0,
                })
                .collect();
            let detail = format!(
                "no attention type is spelled `{label}`; closest: {}",
                list.iter()
                    .map(|s| s.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Err(AppError::UnknownLabel {
                detail,
                suggestions: serde_json::to_value(&list).unwrap_or_default(),
            })
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTypeRequest {
    /// Stable code: lowercase letters, digits and underscores.
    #[schema(example = "consular_protection_elderly")]
    pub code: String,
    #[schema(min_length = 1, max_length = 150, pattern = "\\S")]
    pub name_es: String,
    #[schema(min_length = 1, max_length = 150, pattern = "\\S")]
    pub name_en: String,
    pub category: AttentionCategory,
    pub kind: AttentionKind,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub description_es: String,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub description_en: String,
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    pub who_may_ask_es: String,
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    pub who_may_ask_en: String,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub requirements_es: String,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub requirements_en: String,
    /// Defaults to all five channels.
    pub channels: Option<Vec<IntakeChannel>>,
    #[serde(default)]
    pub protected_by_default: bool,
    /// Other spellings that should resolve to this type.
    #[serde(default)]
    pub aliases: Vec<String>,
}

fn text(field: &str, value: &str, max: usize) -> Result<String, AppError> {
    let v = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if v.is_empty() || v.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(v)
}

fn channels_json(channels: Option<Vec<IntakeChannel>>) -> Result<String, AppError> {
    let list = channels.unwrap_or_else(|| IntakeChannel::ALL.to_vec());
    if list.is_empty() {
        return Err(AppError::invalid(
            "body.channels",
            "name at least one channel",
        ));
    }
    let codes: Vec<&str> = list.iter().map(|c| c.as_str()).collect();
    serde_json::to_string(&codes).map_err(AppError::internal)
}

/// Add an attention type. A name, code or alias that folds to an existing
/// spelling of another type is refused with 409 naming that type.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "create_attention_type",
    security(("bearer" = [])),
    request_body = CreateTypeRequest,
    responses(
        (status = 201, body = AttentionTypeResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A spelling or the code is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/attention-types")]
pub async fn create_attention_type(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonBody<CreateTypeRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_ATTENTION_TYPE)?;
    let b = body.into_inner()?;
    let code = b.code.trim().to_owned();
    if !(3..=64).contains(&code.len())
        || !code
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        return Err(AppError::invalid(
            "body.code",
            "3 to 64 characters: lowercase letters, digits, underscores",
        ));
    }
    let now = Ts::now();
    let row = AttentionType {
        id: Id::new(),
        code: code.clone(),
        name_es: text("body.name_es", &b.name_es, 150)?,
        name_en: text("body.name_en", &b.name_en, 150)?,
        category: b.category.as_str().to_owned(),
        kind: b.kind.as_str().to_owned(),
        description_es: text("body.description_es", &b.description_es, 2000)?,
        description_en: text("body.description_en", &b.description_en, 2000)?,
        who_may_ask_es: text("body.who_may_ask_es", &b.who_may_ask_es, 1000)?,
        who_may_ask_en: text("body.who_may_ask_en", &b.who_may_ask_en, 1000)?,
        requirements_es: text("body.requirements_es", &b.requirements_es, 2000)?,
        requirements_en: text("body.requirements_en", &b.requirements_en, 2000)?,
        channels: channels_json(b.channels)?,
        protected_by_default: b.protected_by_default,
        status: "active".into(),
        merged_into_id: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let aliases = b.aliases;
    let created = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            service::create_type(conn, j, &row, &aliases).map_err(|e| e.under("body"))?;
            load_response(conn, &TypeKey::Id(row.id), &row.code)
        },
    )
    .await?;
    Ok(respond(created, StatusCode::CREATED))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTypeRequest {
    /// A new name; the old one stays as an alias so old records still resolve.
    #[schema(min_length = 1, max_length = 150, pattern = "\\S")]
    pub name_es: Option<String>,
    #[schema(min_length = 1, max_length = 150, pattern = "\\S")]
    pub name_en: Option<String>,
    pub category: Option<AttentionCategory>,
    pub kind: Option<AttentionKind>,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub description_es: Option<String>,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub description_en: Option<String>,
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    pub who_may_ask_es: Option<String>,
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    pub who_may_ask_en: Option<String>,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub requirements_es: Option<String>,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub requirements_en: Option<String>,
    pub channels: Option<Vec<IntakeChannel>>,
    pub protected_by_default: Option<bool>,
    /// `active` or `deprecated` (deprecated types take no new attentions).
    pub status: Option<String>,
}

/// Rename, describe, recategorise or deprecate a type. Needs `If-Match`.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "update_attention_type",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Type id or code"),
        ("If-Match" = String, Header, description = "ETag of the version being changed"),
    ),
    request_body = UpdateTypeRequest,
    responses(
        (status = 200, body = AttentionTypeResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/attention-types/{id}")]
pub async fn update_attention_type(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<UpdateTypeRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_ATTENTION_TYPE)?;
    let raw = path.into_inner();
    let expected = if_match_version(&req)?;
    let key = TypeKey::parse(&raw);
    let change = type_change(body.into_inner()?)?;
    let updated = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let row = service::update_type(conn, j, &key, &raw, expected, change)
                .map_err(|e| e.under("body"))?;
            load_response(conn, &TypeKey::Id(row.id), &raw)
        },
    )
    .await?;
    Ok(respond(updated, StatusCode::OK))
}

/// The change a request asks for, its texts checked.
fn type_change(b: UpdateTypeRequest) -> Result<TypeChange, AppError> {
    if let Some(s) = &b.status {
        if !["active", "deprecated"].contains(&s.as_str()) {
            return Err(AppError::invalid(
                "body.status",
                "active or deprecated (merging has its own operation)",
            ));
        }
    }
    let opt = |field: &str, v: &Option<String>, max: usize| {
        v.as_deref().map(|v| text(field, v, max)).transpose()
    };
    Ok(TypeChange {
        name_es: opt("body.name_es", &b.name_es, 150)?,
        name_en: opt("body.name_en", &b.name_en, 150)?,
        description_es: opt("body.description_es", &b.description_es, 2000)?,
        description_en: opt("body.description_en", &b.description_en, 2000)?,
        who_may_ask_es: opt("body.who_may_ask_es", &b.who_may_ask_es, 1000)?,
        who_may_ask_en: opt("body.who_may_ask_en", &b.who_may_ask_en, 1000)?,
        requirements_es: opt("body.requirements_es", &b.requirements_es, 2000)?,
        requirements_en: opt("body.requirements_en", &b.requirements_en, 2000)?,
        channels: b.channels.map(|c| channels_json(Some(c))).transpose()?,
        category: b.category,
        kind: b.kind,
        protected_by_default: b.protected_by_default,
        status: b.status,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddAliasRequest {
    /// A spelling officers use, e.g. a legacy MAPCE label.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub label: String,
}

/// Add a spelling to a type; 409 naming the type that already has it.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "add_attention_type_alias",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Type id or code")),
    request_body = AddAliasRequest,
    responses(
        (status = 201, body = AttentionTypeResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/attention-types/{id}/aliases")]
pub async fn add_attention_type_alias(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<AddAliasRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::ADD_ATTENTION_TYPE_ALIAS)?;
    let raw = path.into_inner();
    let label = text("body.label", &body.into_inner()?.label, 200)?;
    let key = TypeKey::parse(&raw);
    let updated = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let t = service::add_alias(conn, j, &key, &raw, &label).map_err(|e| e.under("body"))?;
            load_response(conn, &TypeKey::Id(t.id), &raw)
        },
    )
    .await?;
    Ok(respond(updated, StatusCode::CREATED))
}
