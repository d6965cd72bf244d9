//! A person's individual history across consulates and years.

use super::*;
use crate::domain::audit::AuditAction;
use crate::services::history::{self, HistoryEvent, HistorySummary};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// From this time (RFC 3339), inclusive.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Up to this time, exclusive.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Consulate id.
    pub consulate: Option<uuid::Uuid>,
    /// Attention type id.
    pub attention_type: Option<uuid::Uuid>,
    /// Event kind, e.g. `attention.recorded`, `case.opened`, `person.merged`.
    pub kind: Option<String>,
    /// hq_analyst only: why the details of a protected person's history
    /// are needed (audited); without it the event details are withheld.
    pub justification: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    pub person_id: Id,
    pub summary: HistorySummary,
    pub events: Page<HistoryEvent>,
}

/// A person's whole history across cases, consulates and years, in time
/// order, with a summary. Audited with the person as data subject.
#[utoipa::path(
    tag = "persons",
    operation_id = "get_person_history",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Person id"), HistoryQuery),
    responses(
        (status = 200, body = HistoryResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/persons/{id}/history")]
pub async fn get_person_history(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    query: QueryParams<HistoryQuery>,
) -> Result<web::Json<HistoryResponse>, AppError> {
    user.require(&access::GET_PERSON_HISTORY)?;
    let raw = path.into_inner();
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let mut filter = HistoryFilter {
        from: q.from.map(Ts::from),
        to: q.to.map(Ts::from),
        consulate: q.consulate.map(Id),
        attention_type: q.attention_type.map(Id),
        kind: q.kind,
        hidden_cases: Vec::new(),
    };
    let justification = q.justification;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    // The access decision and the audit row go to the primary; the history
    // is read from the read pool (a replica when configured), without the
    // events of the cases whose text the caller may not read.
    let (person_id, view, hidden) = db::run(&state.pool, move |conn| {
        let (p, seen) = person_for_read(conn, &user, &meta, &raw, justification.as_deref())?;
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(AuditAction::PersonHistory, "person", Some(p.id.to_string())).subject(p.id),
        )?;
        Ok((p.id, seen.view, seen.hidden_cases(conn)?))
    })
    .await?;
    filter.hidden_cases = hidden;
    let history = db::run(&state.read_pool, move |conn| {
        history::read(conn, person_id, &filter, window, view)
    })
    .await?;
    Ok(web::Json(HistoryResponse {
        person_id,
        summary: history.summary,
        events: Page::new(&req, history.events, history.total, window),
    }))
}
