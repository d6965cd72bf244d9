//! One's own second factor: enrolling a TOTP secret, confirming it (which
//! gives the recovery codes) and turning it off.

use super::*;

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
    let (meta, actor, staged) = (RequestMeta::of(&req), user.actor(), secret.clone());
    db::run(&state.pool, move |conn| {
        signin::enrol_totp(conn, &actor, &meta, &staged)
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
    let (session, meta, actor) = (user.session_id, RequestMeta::of(&req), user.actor());
    before_secret_check(&state, &user, &meta).await?;
    let checking = meta.clone();
    let confirmation = db::run(&state.pool, move |conn| {
        signin::confirm_totp(conn, &actor, &meta, session, &code, &hashes)
    })
    .await?;
    if confirmation == Confirmation::WrongCode {
        secret_check_failed(&state, &user, &checking, AuditAction::UserTotpConfirm).await?;
        return Err(AppError::invalid(
            "body.code",
            "is not the current code of the enrolled secret",
        ));
    }
    state.auth_cache.evict(&[session]);
    Ok(web::Json(RecoveryCodes {
        recovery_codes: codes,
    }))
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
    let meta = RequestMeta::of(&req);
    before_secret_check(&state, &user, &meta).await?;
    let password = body.into_inner()?.password;
    if !own_password_is(&state, &user, &meta, password, AuditAction::UserTotpDisable).await? {
        return Err(AppError::invalid(
            "body.password",
            "is not your current password",
        ));
    }
    let actor = user.actor();
    db::run(&state.pool, move |conn| {
        signin::disable_totp(conn, &actor, &meta)
    })
    .await?;
    state.auth_cache.evict_user(user.user_id);
    Ok(HttpResponse::NoContent().finish())
}
