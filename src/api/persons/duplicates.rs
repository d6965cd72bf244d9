//! The duplicate queue, decisions on it, and reversible merges.

use super::*;
use crate::domain::audit::AuditAction;

#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicatePairResponse {
    pub id: Id,
    pub person_a: Id,
    pub person_b: Id,
    pub score: f64,
    pub reasons: Vec<String>,
    /// `open`, `not_duplicate` or `merged`.
    pub status: String,
    /// `intake` or `scan`.
    pub source: String,
    pub decided_by: Option<Id>,
    pub decided_at: Option<Ts>,
    pub decision_reason: Option<String>,
    pub created_at: Ts,
}

pub(super) fn pair_response(p: model::DuplicatePair) -> Result<DuplicatePairResponse, AppError> {
    Ok(DuplicatePairResponse {
        id: p.id,
        person_a: p.person_a,
        person_b: p.person_b,
        score: p.score,
        reasons: stored_json("reasons", &p.reasons)?,
        status: p.status,
        source: p.source,
        decided_by: p.decided_by,
        decided_at: p.decided_at,
        decision_reason: p.decision_reason,
        created_at: p.created_at,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DuplicateQuery {
    /// `open` (default), `not_duplicate`, `merged` or `all`.
    pub status: Option<String>,
    /// Pairs involving this person.
    pub person: Option<uuid::Uuid>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// The queue of likely duplicate pairs, highest score first.
#[utoipa::path(
    tag = "persons",
    operation_id = "list_duplicates",
    security(("bearer" = [])),
    params(DuplicateQuery),
    responses(
        (status = 200, body = Page<DuplicatePairResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/duplicates")]
pub async fn list_duplicates(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<DuplicateQuery>,
) -> Result<web::Json<Page<DuplicatePairResponse>>, AppError> {
    user.require(&access::LIST_DUPLICATES)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let status = match q.status.as_deref() {
        None | Some("open") => Some("open"),
        Some("all") => None,
        Some("not_duplicate") => Some("not_duplicate"),
        Some("merged") => Some("merged"),
        Some(_) => {
            return Err(AppError::bad_query(
                "query.status",
                "open, not_duplicate, merged or all",
            ))
        }
    };
    let person = q.person.map(Id);
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let (rows, total) = db::run(&state.pool, move |conn| {
        let (rows, total) = model::list_pairs(conn, status, person, window)?;
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(AuditAction::DuplicateList, "duplicate_pair", None)
                .details(serde_json::json!({ "results": total }))
                .subjects(rows.iter().flat_map(|p| [p.person_a, p.person_b])),
        )?;
        Ok((rows, total))
    })
    .await?;
    Ok(web::Json(Page::new(
        &req,
        rows.into_iter()
            .map(pair_response)
            .collect::<Result<_, _>>()?,
        total,
        window,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Only `not_duplicate` here; a merge decides `merged`.
    pub decision: String,
    pub reason: String,
}

/// Decide that a pair is two different people; it never comes back.
#[utoipa::path(
    tag = "persons",
    operation_id = "decide_duplicate",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Pair id")),
    request_body = DecisionRequest,
    responses(
        (status = 200, body = DuplicatePairResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/duplicates/{id}/decision")]
pub async fn decide_duplicate(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<DecisionRequest>,
) -> Result<web::Json<DuplicatePairResponse>, AppError> {
    user.require(&access::DECIDE_DUPLICATE)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    if b.decision != "not_duplicate" {
        return Err(AppError::invalid(
            "body.decision",
            "only not_duplicate; merge with POST /persons/{id}/merge",
        ));
    }
    let reason = b.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid(
            "body.reason",
            "say why they are different people",
        ));
    }
    let actor = user.user_id;
    let pair = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            pair_response(service::decide_not_duplicate(
                conn, j, actor, &raw, &reason,
            )?)
        },
    )
    .await?;
    Ok(web::Json(pair))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergePersonRequest {
    /// The surviving person's id.
    pub into: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonMergeResponse {
    pub id: Id,
    pub survivor_id: Id,
    pub merged_id: Id,
    pub reason: String,
    pub actor_id: Option<Id>,
    pub at: Ts,
    pub undone_at: Option<Ts>,
    pub undone_by: Option<Id>,
}

pub(super) fn merge_response(m: model::PersonMerge) -> PersonMergeResponse {
    PersonMergeResponse {
        id: m.id,
        survivor_id: m.survivor_id,
        merged_id: m.merged_id,
        reason: m.reason,
        actor_id: m.actor_id,
        at: m.at,
        undone_at: m.undone_at,
        undone_by: m.undone_by,
    }
}

/// Merge this person into a survivor: documents, contacts and history move;
/// this record stays as a tombstone; the merge can be undone exactly.
#[utoipa::path(
    tag = "persons",
    operation_id = "merge_person",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The duplicate person's id")),
    request_body = MergePersonRequest,
    responses(
        (status = 200, body = PersonMergeResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/persons/{id}/merge")]
pub async fn merge_person(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<MergePersonRequest>,
) -> Result<web::Json<PersonMergeResponse>, AppError> {
    user.require(&access::MERGE_PERSON)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let reason = b.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid(
            "body.reason",
            "say why they are the same person",
        ));
    }
    let merged_id = uuid::Uuid::parse_str(&raw)
        .map(Id)
        .map_err(|_| AppError::not_found(format!("no person `{raw}`")))?;
    let survivor_id = uuid::Uuid::parse_str(&b.into)
        .map(Id)
        .map_err(|_| AppError::invalid("body.into", "not a person id"))?;
    let actor = user.user_id;
    let merge = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let m = service::merge_recorded(conn, j, merged_id, survivor_id, &reason, actor)
                .map_err(|e| e.under("body"))?;
            Ok(merge_response(m))
        },
    )
    .await?;
    Ok(web::Json(merge))
}

/// Undo a merge, restoring both persons, their documents and histories
/// exactly as before (refused if either changed since).
#[utoipa::path(
    tag = "persons",
    operation_id = "undo_person_merge",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Merge id")),
    responses(
        (status = 200, body = PersonMergeResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/merges/{id}/undo")]
pub async fn undo_person_merge(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<web::Json<PersonMergeResponse>, AppError> {
    user.require(&access::UNDO_PERSON_MERGE)?;
    let raw = path.into_inner();
    let id = uuid::Uuid::parse_str(&raw)
        .map(Id)
        .map_err(|_| AppError::not_found(format!("no merge `{raw}`")))?;
    let actor = user.user_id;
    let merge = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| Ok(merge_response(service::undo_recorded(conn, j, id, actor)?)),
    )
    .await?;
    Ok(web::Json(merge))
}
