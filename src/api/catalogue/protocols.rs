//! Versioned protocols: the checklist a type's cases follow.

use super::*;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtocolStepBody {
    /// What the officer must do.
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub title_es: String,
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub title_en: String,
    /// Must be done (or waived with a reason) before the case can close.
    pub required_to_close: bool,
    /// Hours after the case opens by which it is due, if any: 1 to 8760.
    #[schema(minimum = 1, maximum = 8760)]
    #[serde(
        default,
        deserialize_with = "crate::api::whole_number::option::deserialize"
    )]
    pub deadline_hours: Option<i32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtocolRequest {
    pub steps: Vec<ProtocolStepBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProtocolResponse {
    pub attention_type_id: Id,
    /// Cases keep the version they started with.
    pub version: i32,
    pub created_at: Ts,
    pub created_by: Option<Id>,
    pub steps: Vec<ProtocolStepBody>,
}

pub(super) fn protocol_response(
    pv: model::ProtocolVersion,
    steps: Vec<model::ProtocolStep>,
) -> ProtocolResponse {
    ProtocolResponse {
        attention_type_id: pv.attention_type_id,
        version: pv.version,
        created_at: pv.created_at,
        created_by: pv.created_by,
        steps: steps
            .into_iter()
            .map(|s| ProtocolStepBody {
                title_es: s.title_es,
                title_en: s.title_en,
                required_to_close: s.required_to_close,
                deadline_hours: s.deadline_hours,
            })
            .collect(),
    }
}

/// Publish a new protocol version for a type: an ordered checklist.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "put_attention_type_protocol",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Type id or code")),
    request_body = ProtocolRequest,
    responses(
        (status = 201, body = ProtocolResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/attention-types/{id}/protocol")]
pub async fn put_attention_type_protocol(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<ProtocolRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::PUT_ATTENTION_TYPE_PROTOCOL)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    if b.steps.is_empty() || b.steps.len() > 50 {
        return Err(AppError::invalid("body.steps", "1 to 50 steps"));
    }
    let mut steps = Vec::new();
    for (i, s) in b.steps.iter().enumerate() {
        let title_es = text(&format!("body.steps[{i}].title_es"), &s.title_es, 300)?;
        let title_en = text(&format!("body.steps[{i}].title_en"), &s.title_en, 300)?;
        if let Some(h) = s.deadline_hours {
            if !(1..=24 * 365).contains(&h) {
                return Err(AppError::invalid(
                    format!("body.steps[{i}].deadline_hours"),
                    "1 to 8760 hours",
                ));
            }
        }
        steps.push((title_es, title_en, s.required_to_close, s.deadline_hours));
    }
    let key = TypeKey::parse(&raw);
    let actor = user.user_id;
    let created = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let (pv, steps) = service::put_protocol(conn, j, &key, &raw, &steps, actor)?;
            Ok(protocol_response(pv, steps))
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProtocolQuery {
    /// A past version; the current one by default.
    pub version: Option<i32>,
}

/// A type's protocol: the current version, or a given one.
#[utoipa::path(
    tag = "catalogue",
    operation_id = "get_attention_type_protocol",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Type id or code"), ProtocolQuery),
    responses(
        (status = 200, body = ProtocolResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such type, or it has no protocol (of that version)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/attention-types/{id}/protocol")]
pub async fn get_attention_type_protocol(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    query: QueryParams<ProtocolQuery>,
) -> Result<web::Json<ProtocolResponse>, AppError> {
    user.require(&access::GET_ATTENTION_TYPE_PROTOCOL)?;
    let raw = path.into_inner();
    let version = query.into_inner().version;
    let key = TypeKey::parse(&raw);
    let found = db::run(&state.pool, move |conn| {
        let t = model::find_type(conn, &key)?
            .ok_or_else(|| AppError::not_found(format!("no attention type `{raw}`")))?;
        model::protocol(conn, t.id, version)?
            .map(|(pv, steps)| protocol_response(pv, steps))
            .ok_or_else(|| {
                AppError::not_found(format!(
                    "{} has no protocol{}",
                    t.code,
                    version.map(|v| format!(" version {v}")).unwrap_or_default()
                ))
            })
    })
    .await?;
    Ok(web::Json(found))
}
