//! Login, second factor, refresh, logout, own account and TOTP enrolment.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::Duration as ChronoDuration;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access;
use crate::api::RequestOrigin as _;
use crate::audit::{self, Event, Outcome, RequestMeta};
use crate::auth::jwt::{TokenType, CHALLENGE_TTL_SECS};
use crate::auth::password::{check_new_password, Verification};
use crate::auth::session::{self, RefreshRefusal, SessionTokens};
use crate::auth::{totp, AuthUser};
use crate::db::schema::users;
use crate::db::{self, Id, Ts};
use crate::domain::role::Role;
use crate::error::{AppError, Problem};
use crate::extract::JsonBody;
use crate::models::users::{self as model, User};
use crate::AppState;

/// Failed logins in this window…
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;
/// …for one account from one address, beyond which that address is
/// refused for that account with 429;
pub const MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: i64 = 10;
/// …from one address for any accounts (credential stuffing);
pub const MAX_FAILURES_PER_ADDRESS: i64 = 100;
/// …for one account from all addresses, beyond which only addresses the
/// account logged in from lately (`KNOWN_ADDRESS_DAYS`) may still try: a
/// stranger cannot lock a user out from elsewhere.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 100;
pub const KNOWN_ADDRESS_DAYS: i64 = 30;

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

fn client_addr(meta: &RequestMeta) -> String {
    meta.client_addr
        .clone()
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Refuses with 429 when the account or the address failed too often lately.
/// The answer is the same whether the account exists or not.
fn check_throttle(conn: &mut db::DbConn, username: &str, addr: &str) -> Result<(), AppError> {
    let window = ChronoDuration::minutes(THROTTLE_WINDOW_MINUTES);
    let since = Ts(chrono::Utc::now() - window);
    let retry = |oldest: Option<Ts>| {
        let until = oldest
            .map(|o| o.0 + window)
            .unwrap_or_else(|| chrono::Utc::now() + window);
        AppError::TooManyRequests {
            retry_after_secs: (until - chrono::Utc::now()).num_seconds().max(1) as u64,
        }
    };
    let (count, oldest) = model::failures_for_username(conn, username, Some(addr), since)?;
    if count >= MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS {
        return Err(retry(oldest));
    }
    let (count, oldest) = model::failures_for_addr(conn, addr, since)?;
    if count >= MAX_FAILURES_PER_ADDRESS {
        return Err(retry(oldest));
    }
    let (count, oldest) = model::failures_for_username(conn, username, None, since)?;
    if count >= MAX_FAILURES_PER_ACCOUNT {
        let known_since = Ts(chrono::Utc::now() - ChronoDuration::days(KNOWN_ADDRESS_DAYS));
        if !model::known_address(conn, username, addr, known_since)? {
            return Err(retry(oldest));
        }
    }
    Ok(())
}

fn challenge_used() -> AppError {
    AppError::unauthorized(
        "invalid_token",
        "the challenge was already used; log in again",
    )
}

/// Before a signed-in user's password or code is checked (password change,
/// turning the second factor off, confirming it): refused with 429 like a
/// login once the account has failed too often, so a stolen access token
/// cannot be used to guess them.
async fn before_secret_check(
    state: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    let (username, addr) = (user.username.clone(), client_addr(meta));
    db::run(&state.pool, move |conn| {
        check_throttle(conn, &username, &addr)
    })
    .await
}

/// A wrong password or code of a signed-in user: counted with the login
/// failures and audited.
async fn secret_check_failed(
    state: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
    action: &'static str,
) -> Result<(), AppError> {
    let (username, meta) = (user.username.clone(), meta.clone());
    db::run(&state.pool, move |conn| {
        record_failure(conn, &username, &meta, action, "invalid_secret")
    })
    .await
}

/// Records a failed attempt and its audit row together.
fn record_failure(
    conn: &mut db::DbConn,
    username: &str,
    meta: &RequestMeta,
    action: &str,
    reason: &str,
) -> Result<(), AppError> {
    crate::db::write_tx::<_, AppError, _>(conn, |conn| {
        model::record_login_failure(conn, username, &client_addr(meta))?;
        audit::record(
            conn,
            None,
            meta,
            Event::new(action, "session", None)
                .outcome(Outcome::Failure)
                .details(serde_json::json!({ "username": model::normalize_username(username), "reason": reason })),
        )?;
        Ok(())
    })
}

fn user_actor(user: &User) -> Result<audit::Actor, AppError> {
    Ok(audit::Actor {
        user_id: user.id,
        username: user.username.clone(),
        role: user.role()?,
        consulate_id: user.consulate_id,
    })
}

/// Opens a session and audits the login, in one transaction.
fn complete_login(
    conn: &mut db::DbConn,
    state: &AppState,
    user: &User,
    second_factor: bool,
    meta: &RequestMeta,
    challenge: Option<&str>,
) -> Result<SessionTokens, AppError> {
    crate::db::write_tx::<_, AppError, _>(conn, |conn| {
        let (session, tokens) = session::open(
            conn,
            &state.jwt,
            user,
            second_factor,
            meta.client_addr.clone(),
        )?;
        if let Some(jti) = challenge {
            // Unique: of two concurrent uses of one challenge, one fails.
            diesel::update(crate::db::schema::sessions::table.find(session.id))
                .set(crate::db::schema::sessions::challenge_jti.eq(jti))
                .execute(conn)
                .map_err(|e| match e {
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    ) => challenge_used(),
                    other => other.into(),
                })?;
        }
        model::clear_login_failures(conn, &user.username)?;
        audit::record(
            conn,
            Some(&user_actor(user)?),
            meta,
            Event::new("auth.login", "session", Some(session.id.to_string()))
                .details(serde_json::json!({ "second_factor": second_factor })),
        )?;
        Ok(tokens)
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
            "invalid_credentials",
            INVALID_CREDENTIALS,
        ));
    }
    let meta = RequestMeta::of(&req);
    let lookup = {
        let (username, addr, meta) = (username.clone(), client_addr(&meta), meta.clone());
        db::run(&state.pool, move |conn| {
            if let Err(err) = check_throttle(conn, &username, &addr) {
                audit::record_alone(
                    conn,
                    None,
                    &meta,
                    Event::new("auth.login", "session", None)
                        .outcome(Outcome::Denied)
                        .details(serde_json::json!({ "username": model::normalize_username(&username), "reason": "throttled" })),
                )?;
                return Err(err);
            }
            Ok(model::find_user_by_username(conn, &username)?)
        })
        .await?
    };
    let verification = state
        .passwords
        .verify(lookup.as_ref().map(|u| u.password_hash.clone()), password)
        .await?;
    let user = match (lookup, verification) {
        (Some(user), Verification::Valid { rehash }) if user.active => {
            if let Some(new_hash) = rehash {
                let id = user.id;
                db::run(&state.pool, move |conn| {
                    diesel::update(users::table.find(id))
                        .set(users::password_hash.eq(new_hash))
                        .execute(conn)?;
                    Ok(())
                })
                .await?;
            }
            user
        }
        _ => {
            let meta = meta.clone();
            db::run(&state.pool, move |conn| {
                record_failure(conn, &username, &meta, "auth.login", "invalid_credentials")
            })
            .await?;
            return Err(AppError::unauthorized(
                "invalid_credentials",
                INVALID_CREDENTIALS,
            ));
        }
    };

    if user.totp_enabled {
        let challenge = state
            .jwt
            .sign(
                TokenType::SecondFactor,
                user.id,
                None,
                chrono::Utc::now().timestamp(),
                CHALLENGE_TTL_SECS,
            )
            .map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
        return Ok(web::Json(LoginResponse {
            status: LoginStatus::SecondFactorRequired,
            challenge_token: Some(challenge),
            challenge_expires_in: Some(CHALLENGE_TTL_SECS),
            session: None,
        }));
    }
    let state2 = state.clone();
    let tokens = db::run(&state.pool, move |conn| {
        complete_login(conn, &state2, &user, false, &meta, None)
    })
    .await?;
    Ok(web::Json(LoginResponse {
        status: LoginStatus::Authenticated,
        challenge_token: None,
        challenge_expires_in: None,
        session: Some(tokens),
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
    let claims = state
        .jwt
        .verify(&body.challenge_token, TokenType::SecondFactor)
        .map_err(|_| {
            AppError::unauthorized(
                "invalid_token",
                "the challenge is invalid or expired; log in again",
            )
        })?;
    let user_id = uuid::Uuid::parse_str(&claims.sub).map(Id).map_err(|_| {
        AppError::unauthorized(
            "invalid_token",
            "the challenge is invalid or expired; log in again",
        )
    })?;
    let meta = RequestMeta::of(&req);
    let state2 = state.clone();
    let tokens = db::run(&state.pool, move |conn| {
        let user = model::find_user(conn, user_id)?
            .filter(|u| u.active && u.totp_enabled)
            .ok_or_else(|| {
                AppError::unauthorized(
                    "invalid_token",
                    "the challenge is invalid or expired; log in again",
                )
            })?;
        check_throttle(conn, &user.username, &client_addr(&meta))?;
        let used: i64 = crate::db::schema::sessions::table
            .filter(crate::db::schema::sessions::challenge_jti.eq(&claims.jti))
            .count()
            .get_result(conn)?;
        if used > 0 {
            return Err(challenge_used());
        }
        let accepted = crate::db::write_tx::<_, AppError, _>(conn, |conn| {
            if let Some(code) = &body.code {
                let secret = crate::auth::sealed::open(
                    &user.totp_secret.clone().unwrap_or_default(),
                    user.id,
                )
                .map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
                let now = chrono::Utc::now().timestamp();
                match totp::verify(&secret, code, now, user.totp_last_step) {
                    Some(step) => {
                        // Conditional on the step we read: two concurrent
                        // logins cannot both spend the same code.
                        let changed = diesel::update(
                            users::table.find(user.id).filter(
                                users::totp_last_step
                                    .is_null()
                                    .or(users::totp_last_step.lt(step)),
                            ),
                        )
                        .set(users::totp_last_step.eq(step))
                        .execute(conn)?;
                        Ok(changed == 1)
                    }
                    None => Ok(false),
                }
            } else {
                let code = body.recovery_code.as_deref().unwrap_or_default();
                Ok(model::use_recovery_code(
                    conn,
                    user.id,
                    &totp::recovery_code_hash(code),
                )?)
            }
        })?;
        if !accepted {
            record_failure(
                conn,
                &user.username,
                &meta,
                "auth.second_factor",
                "invalid_code",
            )?;
            return Err(AppError::unauthorized(
                "invalid_second_factor",
                "the code is wrong or was already used",
            ));
        }
        complete_login(conn, &state2, &user, true, &meta, Some(&claims.jti))
    })
    .await?;
    Ok(web::Json(LoginResponse {
        status: LoginStatus::Authenticated,
        challenge_token: None,
        challenge_expires_in: None,
        session: Some(tokens),
    }))
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
        crate::db::write_tx::<_, AppError, _>(conn, |conn| {
            let result = session::rotate(conn, &state2.jwt, &presented)?;
            if let Err(RefreshRefusal::Reused { session, .. }) = &result {
                audit::record(
                    conn,
                    None,
                    &meta,
                    Event::new("auth.refresh_reuse", "session", Some(session.to_string()))
                        .outcome(Outcome::Denied),
                )?;
            }
            Ok(result)
        })
    })
    .await?;
    match outcome {
        Ok((_, tokens)) => Ok(web::Json(tokens)),
        Err(RefreshRefusal::Reused { session, .. }) => {
            state.auth_cache.evict(&[session]);
            Err(AppError::unauthorized(
                "refresh_token_reused",
                "this refresh token was already used; the session is revoked",
            ))
        }
        Err(RefreshRefusal::Ended) => Err(AppError::unauthorized(
            "session_ended",
            "the session has ended; log in again",
        )),
        Err(RefreshRefusal::Unknown) => Err(AppError::unauthorized(
            "invalid_token",
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
        crate::db::write_tx::<_, AppError, _>(conn, |conn| {
            model::revoke_session(conn, session, "logout")?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("auth.logout", "session", Some(session.to_string())),
            )?;
            Ok(())
        })
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
    let id = user.user_id;
    let checking = RequestMeta::of(&req);
    before_secret_check(&state, &user, &checking).await?;
    let stored = db::run(&state.pool, move |conn| {
        model::find_user(conn, id)?
            .map(|u| u.password_hash)
            .ok_or_else(|| AppError::not_found("no such user"))
    })
    .await?;
    match state
        .passwords
        .verify(Some(stored), body.current_password)
        .await?
    {
        Verification::Valid { .. } => {}
        Verification::Invalid => {
            secret_check_failed(&state, &user, &checking, "user.password_change").await?;
            return Err(AppError::invalid(
                "body.current_password",
                "is not your current password",
            ));
        }
    }
    let hash = state.passwords.hash(body.new_password).await?;
    let meta = RequestMeta::of(&req);
    let actor = user.actor();
    db::run(&state.pool, move |conn| {
        crate::db::write_tx::<_, AppError, _>(conn, |conn| {
            model::set_password(conn, id, hash)?;
            let ended = model::revoke_user_sessions(conn, id, "password_changed")?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("user.password_change", "user", Some(id.to_string()))
                    .details(serde_json::json!({ "sessions_ended": ended.len() })),
            )?;
            Ok(())
        })
    })
    .await?;
    state.auth_cache.evict_user(id);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret, for manual entry.
    pub secret: String,
    /// `otpauth://` URI for a QR code.
    pub otpauth_uri: String,
}

/// Start TOTP enrolment: a new secret, pending until confirmed with a code.
#[utoipa::path(
    tag = "auth",
    operation_id = "enrol_totp",
    security(("bearer" = [])),
    responses(
        (status = 200, body = TotpEnrolment),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already enrolled", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/totp/enrol")]
pub async fn enrol_totp(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<web::Json<TotpEnrolment>, AppError> {
    user.require(&access::ENROL_TOTP)?;
    let secret = totp::generate_secret();
    let uri = totp::otpauth_uri("MAPCE", &user.username, &secret);
    let (id, meta, actor) = (user.user_id, RequestMeta::of(&req), user.actor());
    let stored = crate::auth::sealed::seal(&secret, id)
        .map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
    db::run(&state.pool, move |conn| {
        crate::db::write_tx::<_, AppError, _>(conn, |conn| {
            let changed =
                diesel::update(users::table.find(id).filter(users::totp_enabled.eq(false)))
                    .set(users::totp_secret.eq(Some(stored)))
                    .execute(conn)?;
            if changed == 0 {
                return Err(AppError::conflict(
                    "totp_already_enabled",
                    None,
                    "a second factor is already enabled",
                ));
            }
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("user.totp_enrol", "user", Some(id.to_string())),
            )?;
            Ok(())
        })
    })
    .await?;
    Ok(web::Json(TotpEnrolment {
        secret,
        otpauth_uri: uri,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotpRequest {
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown once; each works once in place of a TOTP code.
    pub recovery_codes: Vec<String>,
}

/// Confirm enrolment with a current code; returns one-time recovery codes.
/// The current session counts as having passed the second factor.
#[utoipa::path(
    tag = "auth",
    operation_id = "confirm_totp",
    security(("bearer" = [])),
    request_body = ConfirmTotpRequest,
    responses(
        (status = 200, body = RecoveryCodes),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords or codes for this account lately; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/totp/confirm")]
pub async fn confirm_totp(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonBody<ConfirmTotpRequest>,
) -> Result<web::Json<RecoveryCodes>, AppError> {
    user.require(&access::CONFIRM_TOTP)?;
    let code = body.into_inner()?.code;
    let codes = totp::generate_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
    let (id, session, meta, actor) = (
        user.user_id,
        user.session_id,
        RequestMeta::of(&req),
        user.actor(),
    );
    before_secret_check(&state, &user, &meta).await?;
    let checking = meta.clone();
    let confirmed = db::run(&state.pool, move |conn| {
        crate::db::write_tx::<_, AppError, _>(conn, |conn| {
            let current =
                model::find_user(conn, id)?.ok_or_else(|| AppError::not_found("no such user"))?;
            let secret = match (&current.totp_secret, current.totp_enabled) {
                (_, true) => {
                    return Err(AppError::conflict(
                        "totp_already_enabled",
                        None,
                        "a second factor is already enabled",
                    ))
                }
                (None, false) => {
                    return Err(AppError::conflict(
                        "totp_not_enrolled",
                        None,
                        "start with POST /api/v1/auth/totp/enrol",
                    ))
                }
                (Some(stored), false) => crate::auth::sealed::open(stored, id)
                    .map_err(|e| AppError::internal(anyhow::anyhow!(e)))?,
            };
            let step = totp::verify(
                &secret,
                &code,
                chrono::Utc::now().timestamp(),
                current.totp_last_step,
            )
            .ok_or_else(wrong_code)?;
            diesel::update(users::table.find(id))
                .set((
                    users::totp_enabled.eq(true),
                    users::totp_last_step.eq(step),
                    users::version.eq(users::version + 1),
                ))
                .execute(conn)?;
            model::replace_recovery_codes(conn, id, &hashes)?;
            model::mark_second_factor(conn, session)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("user.totp_confirm", "user", Some(id.to_string())),
            )?;
            Ok(())
        })
    })
    .await;
    if let Err(AppError::Validation { errors, .. }) = &confirmed {
        if errors.iter().any(|e| e.field == "body.code") {
            secret_check_failed(&state, &user, &checking, "user.totp_confirm").await?;
        }
    }
    confirmed?;
    state.auth_cache.evict(&[session]);
    Ok(web::Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

fn wrong_code() -> AppError {
    AppError::invalid(
        "body.code",
        "is not the current code of the enrolled secret",
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableTotpRequest {
    pub password: String,
}

/// Turn the second factor off (only for roles where it is optional).
#[utoipa::path(
    tag = "auth",
    operation_id = "disable_totp",
    security(("bearer" = [])),
    request_body = DisableTotpRequest,
    responses(
        (status = 204, description = "Disabled"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords or codes for this account lately; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/totp/disable")]
pub async fn disable_totp(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonBody<DisableTotpRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::DISABLE_TOTP)?;
    let id = user.user_id;
    let checking = RequestMeta::of(&req);
    before_secret_check(&state, &user, &checking).await?;
    let stored = db::run(&state.pool, move |conn| {
        model::find_user(conn, id)?
            .map(|u| u.password_hash)
            .ok_or_else(|| AppError::not_found("no such user"))
    })
    .await?;
    if let Verification::Invalid = state
        .passwords
        .verify(Some(stored), body.into_inner()?.password)
        .await?
    {
        secret_check_failed(&state, &user, &checking, "user.totp_disable").await?;
        return Err(AppError::invalid(
            "body.password",
            "is not your current password",
        ));
    }
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    db::run(&state.pool, move |conn| {
        crate::db::write_tx::<_, AppError, _>(conn, |conn| {
            diesel::update(users::table.find(id))
                .set((
                    users::totp_enabled.eq(false),
                    users::totp_secret.eq(None::<String>),
                    users::version.eq(users::version + 1),
                ))
                .execute(conn)?;
            model::replace_recovery_codes(conn, id, &[])?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("user.totp_disable", "user", Some(id.to_string())),
            )?;
            Ok(())
        })
    })
    .await?;
    state.auth_cache.evict_user(id);
    Ok(HttpResponse::NoContent().finish())
}
