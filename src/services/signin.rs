//! Signing in and the secrets of one's own account: login throttling, the
//! two login stages, password change and the second factor's life
//! (enrol, confirm, disable). Password hashing runs on its own thread pool
//! and stays with the caller; everything that reads or writes the database
//! is here, each write in one transaction with its audit row.

use chrono::Duration as ChronoDuration;

use crate::audit::{self, Actor, Event, Outcome, RequestMeta};
use crate::auth::jwt::JwtKeys;
use crate::auth::session::{self, RefreshRefusal, SessionTokens};
use crate::auth::{sealed, totp};
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::error::AppError;
use crate::models::users::{self as model, User};
use crate::services::journal;

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

pub fn client_addr(meta: &RequestMeta) -> String {
    meta.client_addr
        .clone()
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Refuses with 429 when the account or the address failed too often lately.
/// The answer is the same whether the account exists or not.
pub fn check_throttle(conn: &mut DbConn, username: &str, addr: &str) -> Result<(), AppError> {
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

/// Records a failed attempt and its audit row together.
pub fn record_failure(
    conn: &mut DbConn,
    username: &str,
    meta: &RequestMeta,
    action: AuditAction,
    reason: &str,
) -> Result<(), AppError> {
    journal::run(conn, None, meta, |conn, j| {
        model::record_login_failure(conn, username, &client_addr(meta))?;
        j.audit(
            Event::new(action, "session", None)
                .outcome(Outcome::Failure)
                .details(serde_json::json!({ "username": model::normalize_username(username), "reason": reason })),
        );
        Ok(())
    })
}

/// The account a login names, unless the account or the address is
/// throttled (then the refusal is audited and returned).
pub fn lookup_for_login(
    conn: &mut DbConn,
    username: &str,
    meta: &RequestMeta,
) -> Result<Option<User>, AppError> {
    if let Err(err) = check_throttle(conn, username, &client_addr(meta)) {
        audit::record_alone(
            conn,
            None,
            meta,
            Event::new(AuditAction::AuthLogin, "session", None)
                .outcome(Outcome::Denied)
                .details(serde_json::json!({ "username": model::normalize_username(username), "reason": "throttled" })),
        )?;
        return Err(err);
    }
    Ok(model::find_user_by_username(conn, username)?)
}

/// Keeps the stronger hash a successful verification produced.
pub fn store_rehash(conn: &mut DbConn, id: Id, hash: String) -> Result<(), AppError> {
    Ok(model::store_rehash(conn, id, hash)?)
}

fn challenge_used() -> AppError {
    AppError::unauthorized(
        ErrorCode::InvalidToken,
        "the challenge was already used; log in again",
    )
}

fn invalid_challenge() -> AppError {
    AppError::unauthorized(
        ErrorCode::InvalidToken,
        "the challenge is invalid or expired; log in again",
    )
}

fn user_actor(user: &User) -> Result<Actor, AppError> {
    Ok(Actor {
        user_id: user.id,
        username: user.username.clone(),
        role: user.role()?,
        consulate_id: user.consulate_id,
    })
}

/// Opens a session and audits the login, in one transaction. A session
/// opened by a second-factor challenge records it: a challenge opens one
/// session only.
pub fn open_session(
    conn: &mut DbConn,
    jwt: &JwtKeys,
    user: &User,
    second_factor: bool,
    meta: &RequestMeta,
    challenge: Option<&str>,
) -> Result<SessionTokens, AppError> {
    let actor = user_actor(user)?;
    journal::run(conn, Some(&actor), meta, |conn, j| {
        let (session, tokens) =
            session::open(conn, jwt, user, second_factor, meta.client_addr.clone())?;
        if let Some(jti) = challenge {
            if !model::bind_challenge(conn, session.id, jti)? {
                return Err(challenge_used());
            }
        }
        model::clear_login_failures(conn, &user.username)?;
        j.audit(
            Event::new(
                AuditAction::AuthLogin,
                "session",
                Some(session.id.to_string()),
            )
            .details(serde_json::json!({ "second_factor": second_factor })),
        );
        Ok(tokens)
    })
}

/// What completes a login's second stage.
pub enum SecondFactor<'a> {
    /// A six-digit code of the authenticator.
    Code(&'a str),
    /// One of the one-time recovery codes.
    Recovery(&'a str),
}

/// The second stage of a login: the challenge's user, throttled like the
/// first stage, spends a code (each TOTP step and each recovery code works
/// once, even under concurrent logins) and gets a session.
pub fn complete_second_factor(
    conn: &mut DbConn,
    jwt: &JwtKeys,
    user_id: Id,
    jti: &str,
    factor: SecondFactor<'_>,
    meta: &RequestMeta,
) -> Result<SessionTokens, AppError> {
    let user = model::find_user(conn, user_id)?
        .filter(|u| u.active && u.totp_enabled)
        .ok_or_else(invalid_challenge)?;
    check_throttle(conn, &user.username, &client_addr(meta))?;
    if model::challenge_spent(conn, jti)? {
        return Err(challenge_used());
    }
    // the code is spent here; the login it opens, or the failure, is audited
    let accepted = journal::run(conn, None, meta, |conn, j| {
        j.unaudited();
        spend_second_factor(conn, &user, factor)
    })?;
    if !accepted {
        record_failure(
            conn,
            &user.username,
            meta,
            AuditAction::AuthSecondFactor,
            "invalid_code",
        )?;
        return Err(AppError::unauthorized(
            ErrorCode::InvalidSecondFactor,
            "the code is wrong or was already used",
        ));
    }
    open_session(conn, jwt, &user, true, meta, Some(jti))
}

/// Spends a TOTP code or a recovery code of `user`; false when it is wrong
/// or already spent (conditional on the step read: two concurrent logins
/// cannot both spend the same code).
fn spend_second_factor(
    conn: &mut DbConn,
    user: &User,
    factor: SecondFactor<'_>,
) -> Result<bool, AppError> {
    match factor {
        SecondFactor::Code(code) => {
            let secret = sealed::open(&user.totp_secret.clone().unwrap_or_default(), user.id)
                .map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
            let now = chrono::Utc::now().timestamp();
            match totp::verify(&secret, code, now, user.totp_last_step) {
                Some(step) => Ok(model::spend_totp_step(conn, user.id, step)?),
                None => Ok(false),
            }
        }
        SecondFactor::Recovery(code) => Ok(model::use_recovery_code(
            conn,
            user.id,
            &totp::recovery_code_hash(code),
        )?),
    }
}

/// The stored password hash of a user, to verify a secret against.
pub fn password_hash(conn: &mut DbConn, id: Id) -> Result<String, AppError> {
    model::find_user(conn, id)?
        .map(|u| u.password_hash)
        .ok_or_else(|| AppError::not_found("no such user"))
}

/// Stores a new password and ends every session of the user.
pub fn change_password(
    conn: &mut DbConn,
    actor: &Actor,
    meta: &RequestMeta,
    hash: String,
) -> Result<(), AppError> {
    let id = actor.user_id;
    journal::run(conn, Some(actor), meta, |conn, j| {
        model::set_password(conn, id, hash)?;
        let ended = model::revoke_user_sessions(conn, id, "password_changed")?;
        j.audit(
            Event::new(
                AuditAction::UserPasswordChange,
                "user",
                Some(id.to_string()),
            )
            .details(serde_json::json!({ "sessions_ended": ended.len() })),
        );
        Ok(())
    })
}

fn already_enabled() -> AppError {
    AppError::conflict(
        ErrorCode::TotpAlreadyEnabled,
        None,
        "a second factor is already enabled",
    )
}

/// Keeps a new secret (sealed) pending confirmation.
pub fn enrol_totp(
    conn: &mut DbConn,
    actor: &Actor,
    meta: &RequestMeta,
    secret: &str,
) -> Result<(), AppError> {
    let id = actor.user_id;
    let stored = sealed::seal(secret, id).map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
    journal::run(conn, Some(actor), meta, |conn, j| {
        if !model::stage_totp_secret(conn, id, stored)? {
            return Err(already_enabled());
        }
        j.audit(Event::new(
            AuditAction::UserTotpEnrol,
            "user",
            Some(id.to_string()),
        ));
        Ok(())
    })
}

/// Confirming an enrolment: `WrongCode` when the code is not the current
/// one of the staged secret (nothing is written then).
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmation {
    Confirmed,
    WrongCode,
}

/// Turns the staged secret on with a current code, replaces the recovery
/// codes with `recovery_hashes`, and counts `session` as having passed the
/// second factor.
pub fn confirm_totp(
    conn: &mut DbConn,
    actor: &Actor,
    meta: &RequestMeta,
    session: Id,
    code: &str,
    recovery_hashes: &[String],
) -> Result<Confirmation, AppError> {
    let id = actor.user_id;
    journal::run(conn, Some(actor), meta, |conn, j| {
        let current =
            model::find_user(conn, id)?.ok_or_else(|| AppError::not_found("no such user"))?;
        let secret = match (&current.totp_secret, current.totp_enabled) {
            (_, true) => return Err(already_enabled()),
            (None, false) => {
                return Err(AppError::conflict(
                    ErrorCode::TotpNotEnrolled,
                    None,
                    "start with POST /api/v1/auth/totp/enrol",
                ))
            }
            (Some(stored), false) => {
                sealed::open(stored, id).map_err(|e| AppError::internal(anyhow::anyhow!(e)))?
            }
        };
        let now = chrono::Utc::now().timestamp();
        let Some(step) = totp::verify(&secret, code, now, current.totp_last_step) else {
            j.unchanged();
            return Ok(Confirmation::WrongCode);
        };
        model::enable_totp(conn, id, step)?;
        model::replace_recovery_codes(conn, id, recovery_hashes)?;
        model::mark_second_factor(conn, session)?;
        j.audit(Event::new(
            AuditAction::UserTotpConfirm,
            "user",
            Some(id.to_string()),
        ));
        Ok(Confirmation::Confirmed)
    })
}

/// Turns the second factor off and spends the recovery codes.
pub fn disable_totp(conn: &mut DbConn, actor: &Actor, meta: &RequestMeta) -> Result<(), AppError> {
    let id = actor.user_id;
    journal::run(conn, Some(actor), meta, |conn, j| {
        model::disable_totp(conn, id)?;
        model::replace_recovery_codes(conn, id, &[])?;
        j.audit(Event::new(
            AuditAction::UserTotpDisable,
            "user",
            Some(id.to_string()),
        ));
        Ok(())
    })
}

/// Exchanges a refresh token for a new pair; a reused token revokes its
/// session, and that is audited.
pub fn refresh(
    conn: &mut DbConn,
    jwt: &JwtKeys,
    presented: &str,
    meta: &RequestMeta,
) -> Result<Result<(User, SessionTokens), RefreshRefusal>, AppError> {
    journal::run(conn, None, meta, |conn, j| {
        let result = session::rotate(conn, jwt, presented)?;
        match &result {
            Err(RefreshRefusal::Reused { session, .. }) => j.audit(
                Event::new(
                    AuditAction::AuthRefreshReuse,
                    "session",
                    Some(session.to_string()),
                )
                .outcome(Outcome::Denied),
            ),
            _ => j.unaudited(),
        }
        Ok(result)
    })
}

/// Ends one session.
pub fn logout(
    conn: &mut DbConn,
    actor: &Actor,
    meta: &RequestMeta,
    session: Id,
) -> Result<(), AppError> {
    journal::run(conn, Some(actor), meta, |conn, j| {
        model::revoke_session(conn, session, "logout")?;
        j.audit(Event::new(
            AuditAction::AuthLogout,
            "session",
            Some(session.to_string()),
        ));
        Ok(())
    })
}
