//! Sessions: an opaque refresh token (rotated on every use, stored hashed)
//! plus short access tokens.

use chrono::Duration as ChronoDuration;
use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::jwt::{JwtKeys, TokenType, ACCESS_TTL_SECS};
use crate::db::{DbConn, Id, Ts};
use crate::error::AppError;
use crate::models::users::{self as model, RefreshToken, Session, User};

/// A session ends 30 minutes after its last refresh…
pub const IDLE_LIMIT_MINUTES: i64 = 30;
/// …and 12 hours after login whatever happens.
pub const ABSOLUTE_LIMIT_HOURS: i64 = 12;

/// What a successful login or refresh returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionTokens {
    /// Bearer token for the API; valid `expires_in` seconds.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    pub expires_in: i64,
    /// Opaque; exchange it once at POST /auth/refresh for a new pair.
    pub refresh_token: String,
    /// True when this role must enrol TOTP before using anything else.
    pub second_factor_enrolment_required: bool,
}

/// 256 random bits, URL-safe.
fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    BASE64URL_NOPAD.encode(&bytes)
}

pub fn refresh_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn access_token(keys: &JwtKeys, user: Id, session: Id) -> Result<String, AppError> {
    keys.sign(
        TokenType::Access,
        user,
        Some(session),
        chrono::Utc::now().timestamp(),
        ACCESS_TTL_SECS,
    )
    .map_err(|e| AppError::internal(anyhow::anyhow!("signing access token: {e}")))
}

/// Stores a fresh refresh token for the session (only its hash) and signs
/// an access token; the pair a login or a refresh returns.
fn issue(
    conn: &mut DbConn,
    keys: &JwtKeys,
    user: &User,
    session: &Session,
) -> Result<SessionTokens, AppError> {
    let refresh = new_refresh_token();
    model::insert_refresh_token(
        conn,
        &RefreshToken {
            id: Id::new(),
            session_id: session.id,
            token_hash: refresh_token_hash(&refresh),
            created_at: Ts::now(),
            used_at: None,
        },
    )?;
    Ok(SessionTokens {
        access_token: access_token(keys, user.id, session.id)?,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
        refresh_token: refresh,
        second_factor_enrolment_required: user.role()?.requires_second_factor()
            && !session.second_factor,
    })
}

/// Opens a session for `user` (inside the caller's transaction).
pub fn open(
    conn: &mut DbConn,
    keys: &JwtKeys,
    user: &User,
    second_factor: bool,
    client_addr: Option<String>,
) -> Result<(Session, SessionTokens), AppError> {
    let now = Ts::now();
    let session = Session {
        id: Id::new(),
        user_id: user.id,
        created_at: now,
        last_refresh_at: now,
        expires_at: Ts(now.0 + ChronoDuration::hours(ABSOLUTE_LIMIT_HOURS)),
        revoked_at: None,
        revoked_reason: None,
        second_factor,
        client_addr,
    };
    model::insert_session(conn, &session)?;
    let tokens = issue(conn, keys, user, &session)?;
    Ok((session, tokens))
}

/// Why a refresh was refused.
#[derive(Debug)]
pub enum RefreshRefusal {
    Unknown,
    /// A rotated token came back: the session is revoked.
    Reused {
        session: Id,
        user: Id,
    },
    Ended,
}

/// Rotates a refresh token (inside the caller's transaction).
pub fn rotate(
    conn: &mut DbConn,
    keys: &JwtKeys,
    presented: &str,
) -> Result<Result<(User, SessionTokens), RefreshRefusal>, AppError> {
    let Some(token) = model::find_refresh_token(conn, &refresh_token_hash(presented))? else {
        return Ok(Err(RefreshRefusal::Unknown));
    };
    let Some((session, user)) = model::find_session_with_user(conn, token.session_id)? else {
        return Ok(Err(RefreshRefusal::Unknown));
    };
    let reused = token.used_at.is_some() || !model::use_refresh_token(conn, token.id)?;
    if reused {
        model::revoke_session(conn, session.id, "refresh_token_reuse")?;
        return Ok(Err(RefreshRefusal::Reused {
            session: session.id,
            user: user.id,
        }));
    }
    let now = Ts::now();
    let idle_deadline = Ts(session.last_refresh_at.0 + ChronoDuration::minutes(IDLE_LIMIT_MINUTES));
    if session.revoked_at.is_some()
        || !user.active
        || session.expires_at <= now
        || idle_deadline <= now
    {
        if session.revoked_at.is_none() {
            model::revoke_session(conn, session.id, "expired")?;
        }
        return Ok(Err(RefreshRefusal::Ended));
    }
    model::touch_session(conn, session.id, now)?;
    let tokens = issue(conn, keys, &user, &session)?;
    Ok(Ok((user, tokens)))
}
