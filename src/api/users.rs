//! User administration. Admins manage everyone; supervisors read the users
//! of their own consulate.

use actix_web::http::header;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::write::write;
use super::{access, etag, if_match_version, window, Page};
use crate::api::RequestOrigin as _;
use crate::audit::RequestMeta;
use crate::auth::password::check_new_password;
use crate::auth::AuthUser;
use crate::db::{self, Id, Ts};
use crate::domain::error_code::ErrorCode;
use crate::domain::role::Role;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::reference::{self as reference_model, ConsulateKey};
use crate::models::users::{self as model, User, UserFilter};
use crate::services::users::{self as service, NewUser};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: Id,
    #[schema(example = "ana.quispe")]
    pub username: String,
    #[schema(example = "Ana Quispe")]
    pub display_name: String,
    pub role: Role,
    pub consulate_id: Option<Id>,
    #[schema(example = "AR-BUENOS-AIRES")]
    pub consulate_code: Option<String>,
    pub active: bool,
    pub totp_enabled: bool,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

impl UserResponse {
    fn new((u, consulate_code): (User, Option<String>)) -> Result<Self, AppError> {
        Ok(UserResponse {
            id: u.id,
            role: u.role()?,
            username: u.username,
            display_name: u.display_name,
            consulate_id: u.consulate_id,
            consulate_code,
            active: u.active,
            totp_enabled: u.totp_enabled,
            version: u.version,
            created_at: u.created_at,
            updated_at: u.updated_at,
        })
    }
}

fn user_response(user: UserResponse, status: actix_web::http::StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag(user.version)))
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)))
        .json(user)
}

fn check_username(raw: &str) -> Result<String, AppError> {
    let name = model::normalize_username(raw);
    let ok = (3..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !ok {
        return Err(AppError::invalid(
            "body.username",
            "3 to 64 characters: letters a-z, digits, dot, underscore or hyphen",
        ));
    }
    Ok(name)
}

fn check_display_name(field: &str, raw: &str) -> Result<String, AppError> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::invalid(field, "must be 1 to 100 characters"));
    }
    Ok(name)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(example = "ana.quispe")]
    pub username: String,
    #[schema(example = "Ana Quispe")]
    pub display_name: String,
    pub role: Role,
    /// Consulate id or code; required for officer and supervisor, forbidden otherwise.
    #[schema(example = "AR-BUENOS-AIRES")]
    pub consulate: Option<String>,
    /// Initial password: 12 to 128 characters, not a common one.
    pub password: String,
}

/// Create a user.
#[utoipa::path(
    tag = "users",
    operation_id = "create_user",
    security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, body = UserResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users")]
pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonBody<CreateUserRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_USER)?;
    let body = body.into_inner()?;
    let username = check_username(&body.username)?;
    let display_name = check_display_name("body.display_name", &body.display_name)?;
    check_new_password("body.password", &body.password, &username)?;
    let hash = state.passwords.hash(body.password).await?;
    let new = NewUser {
        username,
        display_name,
        role: body.role,
        consulate: body.consulate,
        password_hash: hash,
    };
    let created = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| service::create_account(conn, j, new).map_err(|e| e.under("body")),
    )
    .await?;
    Ok(user_response(
        UserResponse::new(created)?,
        actix_web::http::StatusCode::CREATED,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    pub role: Option<Role>,
    /// Consulate id or code.
    #[param(pattern = "[^\\W_]")]
    pub consulate: Option<String>,
    pub active: Option<bool>,
    /// Part of the username or display name.
    pub q: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// List users. Supervisors see only their own consulate's.
#[utoipa::path(
    tag = "users",
    operation_id = "list_users",
    security(("bearer" = [])),
    params(UserQuery),
    responses(
        (status = 200, body = Page<UserResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/users")]
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<UserQuery>,
) -> Result<web::Json<Page<UserResponse>>, AppError> {
    user.require(&access::LIST_USERS)?;
    let query = query.into_inner();
    let window = window(query.limit, query.offset)?;
    let scope = if user.role.is_consulate_scoped() {
        user.consulate_id
    } else {
        None
    };
    let (rows, total) = db::run(&state.pool, move |conn| {
        let asked = match query.consulate.as_deref() {
            Some(raw) => Some(match uuid::Uuid::parse_str(raw) {
                Ok(u) => Id(u),
                Err(_) => {
                    reference_model::find_consulate(conn, &ConsulateKey::Code(raw.to_owned()))?
                        .map(|c| c.consulate.id)
                        .ok_or_else(|| {
                            AppError::invalid("query.consulate", format!("no consulate `{raw}`"))
                        })?
                }
            }),
            None => None,
        };
        // A supervisor asking for another consulate gets an empty page.
        let consulate_id = match (scope, asked) {
            (Some(own), Some(other)) if own != other => return Ok((Vec::new(), 0)),
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        let filter = UserFilter {
            role: query.role,
            consulate_id,
            active: query.active,
            search: query
                .q
                .map(|q| q.trim().to_lowercase())
                .filter(|q| !q.is_empty()),
        };
        Ok(model::list_users(conn, &filter, window)?)
    })
    .await?;
    let items = rows
        .into_iter()
        .map(UserResponse::new)
        .collect::<Result<_, _>>()?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

fn parse_user_id(raw: &str) -> Result<Id, AppError> {
    uuid::Uuid::parse_str(raw)
        .map(Id)
        .map_err(|_| AppError::not_found(format!("no user `{raw}`")))
}

/// One user, with its ETag.
#[utoipa::path(
    tag = "users",
    operation_id = "get_user",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::GET_USER)?;
    let raw = path.into_inner();
    let id = parse_user_id(&raw)?;
    let found = db::run(&state.pool, move |conn| {
        let u = service::load_scoped(conn, &user, id, &raw)?;
        Ok(model::attach_consulate_codes(conn, vec![u])?.remove(0))
    })
    .await?;
    let response = UserResponse::new(found)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(response.version)))
        .json(response))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// Consulate id or code; `null` removes it (for national roles).
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub consulate: Option<Option<String>>,
    pub active: Option<bool>,
}

/// Change a user's name, role, consulate or active flag. Needs `If-Match`.
/// A change of role, consulate or active flag ends the user's sessions.
/// Nobody changes their own role or deactivates themselves.
#[utoipa::path(
    tag = "users",
    operation_id = "update_user",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "User id"),
        ("If-Match" = String, Header, description = "ETag of the version being changed"),
    ),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, body = UserResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/users/{id}")]
pub async fn update_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<UpdateUserRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_USER)?;
    let raw = path.into_inner();
    let id = parse_user_id(&raw)?;
    let expected = if_match_version(&req)?;
    let body = body.into_inner()?;
    if id == user.user_id && body.role.is_some_and(|r| r != user.role) {
        return Err(AppError::forbidden(
            ErrorCode::OwnRole,
            "you cannot change your own role",
        ));
    }
    if id == user.user_id && body.active == Some(false) {
        return Err(AppError::forbidden(
            ErrorCode::OwnAccount,
            "you cannot deactivate your own account",
        ));
    }
    let display_name = body
        .display_name
        .as_deref()
        .map(|n| check_display_name("body.display_name", n))
        .transpose()?;
    let meta = RequestMeta::of(&req);
    let change = service::Change {
        display_name,
        role: body.role,
        consulate: body.consulate,
        active: body.active,
    };
    let actor = user.actor();
    let (updated, sessions_ended) = write(&state, actor, meta, move |conn, j| {
        service::update(conn, j, &user, id, &raw, expected, change).map_err(|e| e.under("body"))
    })
    .await?;
    if sessions_ended > 0 {
        state.auth_cache.evict_user(id);
    }
    Ok(user_response(
        UserResponse::new(updated)?,
        actix_web::http::StatusCode::OK,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub new_password: String,
    /// Also remove the user's second factor (lost device); they enrol again.
    #[serde(default)]
    pub reset_second_factor: bool,
}

/// Set a new password for a user (and optionally clear their TOTP); ends
/// their sessions.
#[utoipa::path(
    tag = "users",
    operation_id = "reset_user_password",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Reset"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users/{id}/password")]
pub async fn reset_user_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<ResetPasswordRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::RESET_USER_PASSWORD)?;
    let raw = path.into_inner();
    let id = parse_user_id(&raw)?;
    let body = body.into_inner()?;
    let target = {
        let raw = raw.clone();
        db::run(&state.pool, move |conn| {
            model::find_user(conn, id)?
                .ok_or_else(|| AppError::not_found(format!("no user `{raw}`")))
        })
        .await?
    };
    check_new_password("body.new_password", &body.new_password, &target.username)?;
    let hash = state.passwords.hash(body.new_password).await?;
    let (meta, actor, reset_totp) = (
        RequestMeta::of(&req),
        user.actor(),
        body.reset_second_factor,
    );
    write(&state, actor, meta, move |conn, j| {
        service::reset_password(conn, j, id, hash, reset_totp)
    })
    .await?;
    state.auth_cache.evict_user(id);
    Ok(HttpResponse::NoContent().finish())
}
