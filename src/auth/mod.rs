//! Who is calling and what they may do.
//!
//! [`AuthUser`] is the extractor every protected handler takes: it checks the
//! bearer token (signature, claims, type) and that its session is still live
//! and its user active. Handlers then call [`AuthUser::require`] with the
//! operation's [`Policy`] from `crate::api::access`, and check record scope
//! with [`AuthUser::can_touch_consulate`].

pub mod jwt;
pub mod password;
pub mod sealed;
pub mod session;
pub mod totp;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use crate::audit::Actor;
use crate::db::{self, Id, Ts};
use crate::domain::error_code::ErrorCode;
use crate::domain::role::Role;
use crate::error::AppError;
use crate::models::users as model;
use crate::AppState;

/// Which roles may call an operation.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The OpenAPI operationId.
    pub operation: &'static str,
    pub roles: &'static [Role],
    /// Open to sessions of admin/hq users who still have to enrol TOTP.
    pub before_second_factor: bool,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: Id,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub consulate_id: Option<Id>,
    pub session_id: Id,
    /// False while an admin or hq_analyst has not enrolled a second factor.
    pub second_factor_done: bool,
    pub totp_enabled: bool,
}

impl AuthUser {
    /// Refuses callers whose role the policy does not name (403), and users
    /// who must enrol a second factor before anything else (403).
    pub fn require(&self, policy: &Policy) -> Result<&Self, AppError> {
        if !policy.roles.contains(&self.role) {
            return Err(AppError::forbidden(
                ErrorCode::Forbidden,
                format!("the {} role may not {}", self.role, policy.operation),
            ));
        }
        if !self.second_factor_done && !policy.before_second_factor {
            return Err(AppError::forbidden(
                ErrorCode::SecondFactorEnrolmentRequired,
                "this role needs a second factor: enrol with POST /api/v1/auth/totp/enrol and confirm it",
            ));
        }
        Ok(self)
    }

    /// Whether this caller may act on a record of `consulate`: national roles
    /// may; officers and supervisors only on their own consulate's.
    pub fn can_touch_consulate(&self, consulate: Id) -> bool {
        !self.role.is_consulate_scoped() || self.consulate_id == Some(consulate)
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id,
            username: self.username.clone(),
            role: self.role,
            consulate_id: self.consulate_id,
        }
    }
}

/// What the cache keeps per session.
#[derive(Debug, Clone)]
struct CachedSession {
    user: Option<AuthUser>,
    expires_at: Ts,
    loaded: Instant,
}

/// Live-session lookups, cached for a short time so that authenticated calls
/// that need nothing else do not touch the database. Revocations made by this
/// process evict at once; other processes see them within the TTL.
pub struct AuthCache {
    ttl: Duration,
    entries: RwLock<HashMap<Id, CachedSession>>,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, session: Id) -> Option<CachedSession> {
        let entries = self.entries.read().ok()?;
        entries
            .get(&session)
            .filter(|e| e.loaded.elapsed() < self.ttl)
            .cloned()
    }

    fn put(&self, session: Id, entry: CachedSession) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() > 100_000 {
                let ttl = self.ttl;
                entries.retain(|_, e| e.loaded.elapsed() < ttl);
            }
            entries.insert(session, entry);
        }
    }

    /// Forgets sessions (logout, revocation).
    pub fn evict(&self, sessions: &[Id]) {
        if let Ok(mut entries) = self.entries.write() {
            for s in sessions {
                entries.remove(s);
            }
        }
    }

    /// Forgets every session of a user (role change, deactivation, password).
    pub fn evict_user(&self, user: Id) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, e| e.user.as_ref().is_none_or(|u| u.user_id != user));
        }
    }
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Loads the session's user if the session is live and the user active.
fn load_session(conn: &mut db::DbConn, session_id: Id) -> Result<CachedSession, AppError> {
    let found = model::find_session_with_user(conn, session_id)?;
    let loaded = Instant::now();
    Ok(match found {
        Some((session, user)) if session.revoked_at.is_none() && user.active => {
            let role = user.role()?;
            let second_factor_done = session.second_factor || !role.requires_second_factor();
            CachedSession {
                expires_at: session.expires_at,
                user: Some(AuthUser {
                    user_id: user.id,
                    role,
                    username: user.username,
                    display_name: user.display_name,
                    consulate_id: user.consulate_id,
                    session_id: session.id,
                    second_factor_done,
                    totp_enabled: user.totp_enabled,
                }),
                loaded,
            }
        }
        _ => CachedSession {
            user: None,
            expires_at: Ts::now(),
            loaded,
        },
    })
}

async fn authenticate(req: HttpRequest) -> Result<AuthUser, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("AppState missing")))?
        .clone();
    let token = bearer_token(&req).ok_or_else(|| {
        AppError::unauthorized(
            ErrorCode::Unauthenticated,
            "send a bearer access token (POST /api/v1/auth/login)",
        )
    })?;
    let claims = state
        .jwt
        .verify(&token, jwt::TokenType::Access)
        .map_err(|_| {
            AppError::unauthorized(
                ErrorCode::InvalidToken,
                "the access token is invalid or expired",
            )
        })?;
    let session_id = uuid::Uuid::parse_str(&claims.sid).map(Id).map_err(|_| {
        AppError::unauthorized(
            ErrorCode::InvalidToken,
            "the access token is invalid or expired",
        )
    })?;
    let entry = match state.auth_cache.get(session_id) {
        Some(entry) => entry,
        None => {
            let entry = db::run(&state.pool, move |conn| load_session(conn, session_id)).await?;
            state.auth_cache.put(session_id, entry.clone());
            entry
        }
    };
    let revoked = || {
        AppError::unauthorized(
            ErrorCode::SessionEnded,
            "the session has ended; log in again",
        )
    };
    let user = entry.user.ok_or_else(revoked)?;
    if entry.expires_at <= Ts::now() || user.user_id.to_string() != claims.sub {
        return Err(revoked());
    }
    // Let the middleware name the actor when it audits a refusal.
    req.extensions_mut().insert(user.clone());
    Ok(user)
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthUser, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}
