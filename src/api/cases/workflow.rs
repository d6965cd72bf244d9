//! A case's life after intake: attentions recorded and voided, moves
//! through the workflow, protocol step decisions and notes.

use super::*;

/// Record an attention on a case. Accepts `Idempotency-Key`.
#[utoipa::path(
    tag = "cases",
    operation_id = "add_attention",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation: 1 to 200 visible ASCII characters", pattern = "^[!-~]{1,200}$")),
    request_body = AttentionBody,
    responses(
        (status = 201, body = CaseResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/attentions")]
pub async fn add_attention(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<AttentionBody>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::ADD_ATTENTION)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let idem = Idempotency::of(&req, &b)?;
    let input = attention_input(b);
    let (actor, meta) = (user.actor(), RequestMeta::of(&req));
    let written = write_once(
        &state,
        actor,
        meta,
        idem,
        StatusCode::CREATED,
        move |conn, j| {
            let case = service::record_attention(conn, j, &user, &raw, input)
                .map_err(|e| e.under("body"))?;
            case_response(conn, &user, case)
        },
    )
    .await?;
    Ok(created(written))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    pub reason: String,
}

/// Void an attention: it leaves every indicator but stays in the history.
#[utoipa::path(
    tag = "cases",
    operation_id = "void_attention",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id"), ("attention_id" = String, Path, description = "Attention id")),
    request_body = VoidRequest,
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/attentions/{attention_id}/void")]
pub async fn void_attention(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, String)>,
    body: JsonBody<VoidRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::VOID_ATTENTION)?;
    let (raw, raw_attention) = path.into_inner();
    let reason = text("body.reason", &body.into_inner()?.reason, 1000)?;
    let c = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let case = service::void_attention(conn, j, &user, &raw, &raw_attention, reason)?;
            case_response(conn, &user, case)
        },
    )
    .await?;
    Ok(ok_with_etag(&c))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    pub to: CaseStatus,
    /// Required to close.
    pub outcome: Option<CaseOutcome>,
    /// Required to reopen.
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    pub reason: Option<String>,
}

/// Move a case through its workflow. Needs `If-Match`; closing needs an
/// attention, an outcome and every required protocol step done or waived.
#[utoipa::path(
    tag = "cases",
    operation_id = "transition_case",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id"), ("If-Match" = String, Header, description = "ETag of the version being changed")),
    request_body = TransitionRequest,
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Transition not allowed, or closing conditions unmet", body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/transitions")]
pub async fn transition_case(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<TransitionRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::TRANSITION_CASE)?;
    let raw = path.into_inner();
    let expected = if_match_version(&req);
    let b = body.into_inner()?;
    let c = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let to = Move {
                to: b.to,
                outcome: b.outcome,
                reason: b.reason.as_deref(),
            };
            let case = service::move_case(conn, j, &user, &raw, expected, to)
                .map_err(|e| e.under("body"))?;
            case_response(conn, &user, case)
        },
    )
    .await?;
    Ok(ok_with_etag(&c))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDecision {
    /// `done` or `waived`.
    #[schema(pattern = "^(done|waived)$")]
    pub status: String,
    /// Required to waive.
    pub reason: Option<String>,
}

/// Mark a protocol step done, or waive it with a reason. Needs `If-Match`.
#[utoipa::path(
    tag = "cases",
    operation_id = "decide_case_step",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id"), ("step_id" = String, Path, description = "Step id"), ("If-Match" = String, Header, description = "ETag of the case")),
    request_body = StepDecision,
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/steps/{step_id}")]
pub async fn decide_case_step(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, String)>,
    body: JsonBody<StepDecision>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::DECIDE_CASE_STEP)?;
    let (raw, raw_step) = path.into_inner();
    let expected = if_match_version(&req);
    let b = body.into_inner()?;
    let reason = b
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    match (b.status.as_str(), &reason) {
        ("done", _) => {}
        ("waived", Some(_)) => {}
        ("waived", None) => {
            return Err(AppError::invalid(
                "body.reason",
                "waiving a step needs a reason",
            ))
        }
        _ => return Err(AppError::invalid("body.status", "done or waived")),
    }
    let c = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let decision = service::StepDecision {
                step: &raw_step,
                status: &b.status,
                reason,
            };
            let case = service::decide_step(conn, j, &user, &raw, expected, decision)?;
            case_response(conn, &user, case)
        },
    )
    .await?;
    Ok(ok_with_etag(&c))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    #[schema(min_length = 1, max_length = 8000, pattern = "\\S")]
    pub text: String,
}

/// Add a follow-up note to a case (it goes to the timeline).
#[utoipa::path(
    tag = "cases",
    operation_id = "add_case_note",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    request_body = NoteRequest,
    responses(
        (status = 201, description = "Noted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/notes")]
pub async fn add_case_note(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<NoteRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::ADD_CASE_NOTE)?;
    let raw = path.into_inner();
    let note = text("body.text", &body.into_inner()?.text, 8000)?;
    write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| service::add_note(conn, j, &user, &raw, note),
    )
    .await?;
    Ok(HttpResponse::Created().finish())
}
