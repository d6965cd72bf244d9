//! Login, second factor, refresh, logout, own account and TOTP enrolment.

mod second_factor;

pub use second_factor::*;

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access;
use crate::api::RequestOrigin as _;
use crate::audit::RequestMeta;
use crate::auth::jwt::{TokenType, CHALLENGE_TTL_SECS};
use crate::auth::password::{check_new_password, Verification};
use crate::auth::session::{RefreshRefusal, SessionTokens};
use crate::auth::{totp, AuthUser};
use crate::db::{self, Id};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::role::Role;
use crate::error::{AppError, Problem};
use crate::extract::JsonBody;
use crate::models::users::User;
use crate::services::signin::{self, Confirmation, SecondFactor};
use crate::AppState;

pub use crate::services::signin::{
    KNOWN_ADDRESS_DAYS, MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS,
    MAX_FAILURES_PER_ADDRESS, THROTTLE_WINDOW_MINUTES,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "ana.quispe")]
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginStatus {
    /// Tokens are in `session`.
    Authenticated,
    /// Send `challenge_token` and a TOTP or recovery code to
    /// POST /api/v1/auth/login/second-factor.
    SecondFactorRequired,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub status: LoginStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge_expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionTokens>,
}

const INVALID_CREDENTIALS: &str = "the username or the password is wrong";

/// Before a signed-in user's password or code is checked (password change,
/// turning the second factor off, confirming it): refused with 429 like a
/// login once the account has failed too often, so a stolen access token
/// cannot be used to guess them.
async fn before_secret_check(
    state: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    let (username, addr) = (user.username.clone(), signin::client_addr(meta));
    db::run(&state.pool, move |conn| {
        signin::check_throttle(conn, &username, &addr)
    })
    .await
}

/// A wrong password or code of a signed-in user: counted with the login
/// failures and audited.
async fn secret_check_failed(
    state: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
    action: AuditAction,
) -> Result<(), AppError> {
    let (username, meta) = (user.username.clone(), meta.clone());
    db::run(&state.pool, move |conn| {
        signin::record_failure(conn, &username, &meta, action, "invalid_secret")
    })
    .await
}

/// Whether `password` is the signed-in user's (after
/// [`before_secret_check`]); a wrong one is counted and audited as `action`.
async fn own_password_is(
    state: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
    password: String,
    action: AuditAction,
) -> Result<bool, AppError> {
    let id = user.user_id;
    let stored = db::run(&state.pool, move |conn| signin::password_hash(conn, id)).await?;
    match state.passwords.verify(Some(stored), password).await? {
        Verification::Valid { .. } => Ok(true),
        Verification::Invalid => {
            secret_check_failed(state, user, meta, action).await?;
            Ok(false)
        }
    }
}

fn authenticated(tokens: SessionTokens) -> web::Json<LoginResponse> {
    web::Json(LoginResponse {
        status: LoginStatus::Authenticated,
        challenge_token: None,
        challenge_expires_in: None,
        session: Some(tokens),
    })
}

/// Log in with username and password. Users with TOTP get a challenge to
/// complete with the second-factor call.
#[utoipa::path(
    tag = "auth",
    operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "Wrong username or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<LoginRequest>,
) -> Result<web::Json<LoginResponse>, AppError> {
    let LoginRequest { username, password } = body.into_inner()?;
    if username.trim().is_empty() || username.len() > 200 || password.len() > 1024 {
        return Err(AppError::unauthorized(
            ErrorCode::InvalidCredentials,
            INVALID_CREDENTIALS,
        ));
    }
    let meta = RequestMeta::of(&req);
    let user = check_password(&state, &meta, username, password).await?;
    if user.totp_enabled {
        return second_factor_challenge(&state, user.id);
    }
    let state2 = state.clone();
    let tokens = db::run(&state.pool, move |conn| {
        signin::open_session(conn, &state2.jwt, &user, false, &meta, None)
    })
    .await?;
    Ok(authenticated(tokens))
}

/// The active account these credentials open; a hash of an older cost is
/// replaced. Any failure is recorded and answers the same 401, whether the
/// account exists or not (the password is verified against a dummy hash).
async fn check_password(
    state: &web::Data<AppState>,
    meta: &RequestMeta,
    username: String,
    password: String,
) -> Result<User, AppError> {
    let lookup = {
        let (username, meta) = (username.clone(), meta.clone());
        db::run(&state.pool, move |conn| {
            signin::lookup_for_login(conn, &username, &meta)
        })
        .await?
    };
    let verification = state
        .passwords
        .verify(lookup.as_ref().map(|u| u.password_hash.clone()), password)
        .await?;
    match (lookup, verification) {
        (Some(user), Verification::Valid { rehash }) if user.active => {
            if let Some(new_hash) = rehash {
                let id = user.id;
                db::run(&state.pool, move |conn| {
                    signin::store_rehash(conn, id, new_hash)
                })
                .await?;
            }
            Ok(user)
        }
        _ => {
            let meta = meta.clone();
            db::run(&state.pool, move |conn| {
                signin::record_failure(
                    conn,
                    &username,
                    &meta,
                    AuditAction::AuthLogin,
                    "invalid_credentials",
                )
            })
            .await?;
            Err(AppError::unauthorized(
                ErrorCode::InvalidCredentials,
                INVALID_CREDENTIALS,
            ))
        }
    }
}

/// The answer to a password accepted for an account with a second factor:
/// a short-lived challenge token to present with the code.
fn second_factor_challenge(
    state: &web::Data<AppState>,
    user: Id,
) -> Result<web::Json<LoginResponse>, AppError> {
    let challenge = state
        .jwt
        .sign(
            TokenType::SecondFactor,
            user,
            None,
            chrono::Utc::now().timestamp(),
            CHALLENGE_TTL_SECS,
        )
        .map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
    Ok(web::Json(LoginResponse {
        status: LoginStatus::SecondFactorRequired,
        challenge_token: Some(challenge),
        challenge_expires_in: Some(CHALLENGE_TTL_SECS),
        session: None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRequest {
    pub challenge_token: String,
    /// The six-digit code from the authenticator app…
    pub code: Option<String>,
    /// …or one of the one-time recovery codes.
    pub recovery_code: Option<String>,
}

/// Complete a login with a TOTP code or a recovery code.
#[utoipa::path(
    tag = "auth",
    operation_id = "login_second_factor",
    request_body = SecondFactorRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/login/second-factor")]
pub async fn login_second_factor(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<SecondFactorRequest>,
) -> Result<web::Json<LoginResponse>, AppError> {
    let body = body.into_inner()?;
    if body.code.is_some() == body.recovery_code.is_some() {
        return Err(AppError::invalid(
            "body.code",
            "send either code or recovery_code",
        ));
    }
    let invalid = || {
        AppError::unauthorized(
            ErrorCode::InvalidToken,
            "the challenge is invalid or expired; log in again",
        )
    };
    let claims = state
        .jwt
        .verify(&body.challenge_token, TokenType::SecondFactor)
        .map_err(|_| invalid())?;
    let user_id = uuid::Uuid::parse_str(&claims.sub)
        .map(Id)
        .map_err(|_| invalid())?;
    let meta = RequestMeta::of(&req);
    let state2 = state.clone();
    let tokens = db::run(&state.pool, move |conn| {
        let factor = match (&body.code, &body.recovery_code) {
            (Some(code), _) => SecondFactor::Code(code),
            (None, code) => SecondFactor::Recovery(code.as_deref().unwrap_or_default()),
        };
        signin::complete_second_factor(conn, &state2.jwt, user_id, &claims.jti, factor, &meta)
    })
    .await?;
    Ok(authenticated(tokens))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchange a refresh token for a new pair. Each refresh token works once;
/// presenting a used one again revokes the whole session.
#[utoipa::path(
    tag = "auth",
    operation_id = "refresh_session",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = SessionTokens),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/refresh")]
pub async fn refresh_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<RefreshRequest>,
) -> Result<web::Json<SessionTokens>, AppError> {
    let presented = body.into_inner()?.refresh_token;
    let meta = RequestMeta::of(&req);
    let state2 = state.clone();
    let outcome = db::run(&state.pool, move |conn| {
        signin::refresh(conn, &state2.jwt, &presented, &meta)
    })
    .await?;
    match outcome {
        Ok((_, tokens)) => Ok(web::Json(tokens)),
        Err(RefreshRefusal::Reused { session, .. }) => {
            state.auth_cache.evict(&[session]);
            Err(AppError::unauthorized(
                ErrorCode::RefreshTokenReused,
                "this refresh token was already used; the session is revoked",
            ))
        }
        Err(RefreshRefusal::Ended) => Err(AppError::unauthorized(
            ErrorCode::SessionEnded,
            "the session has ended; log in again",
        )),
        Err(RefreshRefusal::Unknown) => Err(AppError::unauthorized(
            ErrorCode::InvalidToken,
            "unknown refresh token",
        )),
    }
}

/// End this session: its access and refresh tokens stop working at once.
#[utoipa::path(
    tag = "auth",
    operation_id = "logout",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, AppError> {
    user.require(&access::LOGOUT)?;
    let meta = RequestMeta::of(&req);
    let (actor, session) = (user.actor(), user.session_id);
    db::run(&state.pool, move |conn| {
        signin::logout(conn, &actor, &meta, session)
    })
    .await?;
    state.auth_cache.evict(&[session]);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub consulate_id: Option<Id>,
    pub totp_enabled: bool,
    /// False until an admin or hq_analyst session has passed a second factor.
    pub second_factor_done: bool,
}

/// Who the token belongs to. Served from the session cache, usually
/// without touching the database.
#[utoipa::path(
    tag = "auth",
    operation_id = "get_me",
    security(("bearer" = [])),
    responses(
        (status = 200, body = MeResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/auth/me")]
pub async fn get_me(user: AuthUser) -> Result<web::Json<MeResponse>, AppError> {
    user.require(&access::GET_ME)?;
    Ok(web::Json(MeResponse {
        id: user.user_id,
        username: user.username,
        display_name: user.display_name,
        role: user.role,
        consulate_id: user.consulate_id,
        totp_enabled: user.totp_enabled,
        second_factor_done: user.second_factor_done,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 12 to 128 characters, not a common password, not the username.
    #[schema(min_length = 12, max_length = 128)]
    pub new_password: String,
}

/// Change one's own password. Every session of the user ends, this one too.
#[utoipa::path(
    tag = "auth",
    operation_id = "change_password",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; log in again"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords or codes for this account lately; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/password")]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonBody<ChangePasswordRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CHANGE_PASSWORD)?;
    let body = body.into_inner()?;
    check_new_password("body.new_password", &body.new_password, &user.username)?;
    let meta = RequestMeta::of(&req);
    before_secret_check(&state, &user, &meta).await?;
    let action = AuditAction::UserPasswordChange;
    if !own_password_is(&state, &user, &meta, body.current_password, action).await? {
        return Err(AppError::invalid(
            "body.current_password",
            "is not your current password",
        ));
    }
    let hash = state.passwords.hash(body.new_password).await?;
    let actor = user.actor();
    db::run(&state.pool, move |conn| {
        signin::change_password(conn, &actor, &meta, hash)
    })
    .await?;
    state.auth_cache.evict_user(user.user_id);
    Ok(HttpResponse::NoContent().finish())
}
