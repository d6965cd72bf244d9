//! Merging duplicate attention types, and the record of every merge.

use super::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The surviving type (id or code).
    pub into: String,
    /// Why the two are one type.
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MergeResponse {
    pub id: Id,
    pub duplicate: TypeRef,
    pub survivor: TypeRef,
    pub reason: String,
    pub actor_id: Option<Id>,
    pub at: Ts,
    /// Attentions recoded from the duplicate to the survivor.
    pub attentions_moved: i64,
    /// Spellings that became the survivor's.
    pub labels_moved: Vec<String>,
}

pub(super) fn merge_response(
    conn: &mut DbConn,
    m: model::Merge,
) -> Result<MergeResponse, AppError> {
    let code_of = |conn: &mut DbConn, id: Id| -> Result<String, AppError> {
        Ok(model::find_type(conn, &TypeKey::Id(id))?
            .map(|t| t.code)
            .unwrap_or_default())
    };
    Ok(MergeResponse {
        id: m.id,
        duplicate: TypeRef {
            id: m.duplicate_id,
            code: code_of(conn, m.duplicate_id)?,
        },
        survivor: TypeRef {
            id: m.survivor_id,
            code: code_of(conn, m.survivor_id)?,
        },
        reason: m.reason,
        actor_id: m.actor_id,
        at: m.at,
        attentions_moved: m.attentions_moved,
        labels_moved: stored_json("labels moved", &m.labels_moved)?,
    })
}

/// Fold a duplicate type into a survivor: its attentions are recoded, its
/// names and code become the survivor's aliases, and it stays as a `merged`
/// record. Nothing is deleted.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "merge_attention_type",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The duplicate type (id or code)")),
    request_body = MergeRequest,
    responses(
        (status = 200, body = MergeResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/attention-types/{id}/merge")]
pub async fn merge_attention_type(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<MergeRequest>,
) -> Result<web::Json<MergeResponse>, AppError> {
    user.require(&access::MERGE_ATTENTION_TYPE)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let reason = text("body.reason", &b.reason, 1000)?;
    let actor = user.user_id;
    let merged = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let m = service::merge_named(conn, j, &raw, &b.into, &reason, actor)
                .map_err(|e| e.under("body"))?;
            merge_response(conn, m)
        },
    )
    .await?;
    Ok(web::Json(merged))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageOnly {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// The recoding records of every merge, newest first.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "list_attention_type_merges",
    security(("bearer" = [])),
    params(PageOnly),
    responses(
        (status = 200, body = Page<MergeResponse>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/attention-types/merges")]
pub async fn list_attention_type_merges(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<PageOnly>,
) -> Result<web::Json<Page<MergeResponse>>, AppError> {
    user.require(&access::LIST_ATTENTION_TYPE_MERGES)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let (items, total) = db::run(&state.pool, move |conn| {
        let (rows, total) = model::list_merges(conn, window)?;
        let items = rows
            .into_iter()
            .map(|m| merge_response(conn, m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}
