//! A person's individual history across consulates and years.

use super::*;

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
pub struct HistoryEvent {
    pub id: Id,
    pub at: Ts,
    #[schema(example = "person.updated")]
    pub kind: String,
    pub case_id: Option<Id>,
    pub consulate_id: Option<Id>,
    pub attention_type_id: Option<Id>,
    pub actor_id: Option<Id>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountByType {
    pub attention_type_id: Id,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistorySummary {
    pub first_contact: Option<Ts>,
    pub last_contact: Option<Ts>,
    pub events: i64,
    pub attentions_by_type: Vec<CountByType>,
    pub consulates: Vec<Id>,
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
    let filter = HistoryFilter {
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
            Event::new("person.history", "person", Some(p.id.to_string())).subject(p.id),
        )?;
        Ok((p.id, seen.view, seen.hidden_cases()))
    })
    .await?;
    let mut filter = filter;
    filter.hidden_cases = hidden.clone();
    let (mut events, total, summary) = db::run(&state.read_pool, move |conn| {
        let (events, total) = model::history(conn, person_id, &filter, window)?;
        let all: Vec<_> = model::all_events(conn, person_id)?
            .into_iter()
            .filter(|e| e.case_id.is_none_or(|c| !hidden.contains(&c)))
            .collect();
        let mut by_type: Vec<CountByType> = Vec::new();
        let mut consulates: Vec<Id> = Vec::new();
        for e in &all {
            if let (Some(t), "attention.recorded") = (e.attention_type_id, e.kind.as_str()) {
                match by_type.iter_mut().find(|c| c.attention_type_id == t) {
                    Some(c) => c.count += 1,
                    None => by_type.push(CountByType {
                        attention_type_id: t,
                        count: 1,
                    }),
                }
            }
            if let Some(c) = e.consulate_id {
                if !consulates.contains(&c) {
                    consulates.push(c);
                }
            }
        }
        let summary = HistorySummary {
            first_contact: all.first().map(|e| e.at),
            last_contact: all.last().map(|e| e.at),
            events: all.len() as i64,
            attentions_by_type: by_type,
            consulates,
        };
        Ok((events, total, summary))
    })
    .await?;
    if view != View::Full {
        // The person's own events (registration, corrections) carry
        // identifying fields.
        for e in events.iter_mut().filter(|e| e.case_id.is_none()) {
            e.payload = r#"{"masked":true}"#.to_owned();
        }
    }
    let items = events
        .into_iter()
        .map(|e| -> Result<_, AppError> {
            Ok(HistoryEvent {
                id: e.id,
                at: e.at,
                kind: e.kind,
                case_id: e.case_id,
                consulate_id: e.consulate_id,
                attention_type_id: e.attention_type_id,
                actor_id: e.actor_id,
                payload: stored_json("payload", &e.payload)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(web::Json(HistoryResponse {
        person_id,
        summary,
        events: Page::new(&req, items, total, window),
    }))
}
