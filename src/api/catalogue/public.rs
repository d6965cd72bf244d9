//! The public listing of attention types for consulate web portals,
//! in Spanish or English.

use super::*;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Es,
    En,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublicQuery {
    /// `es` or `en`; otherwise from `Accept-Language`, else Spanish.
    pub lang: Option<Lang>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicChannel {
    pub code: IntakeChannel,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicAttentionType {
    #[schema(example = "legal_orientation")]
    pub code: String,
    pub name: String,
    pub category: AttentionCategory,
    pub description: String,
    pub who_may_ask: String,
    pub requirements: String,
    pub channels: Vec<PublicChannel>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicListing {
    /// `es` or `en`.
    pub lang: String,
    pub items: Vec<PublicAttentionType>,
}

pub(super) fn language(req: &HttpRequest, asked: Option<Lang>) -> Lang {
    if let Some(l) = asked {
        return l;
    }
    let header = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // First language named, ignoring weights: good enough for es/en.
    for part in header.split(',') {
        let tag = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if tag.starts_with("en") {
            return Lang::En;
        }
        if tag.starts_with("es") {
            return Lang::Es;
        }
    }
    Lang::Es
}

/// The active attention types for consulate web portals: what each is, who
/// may ask, what to bring and how to ask. No authentication, no internal fields.
#[utoipa::path(
    tag = "public",
    operation_id = "list_public_attention_types",
    params(PublicQuery, ("Accept-Language" = Option<String>, Header, description = "es or en")),
    responses(
        (status = 200, body = PublicListing),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/public/attention-types")]
pub async fn list_public_attention_types(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: QueryParams<PublicQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = language(&req, query.into_inner().lang);
    let filter = TypeFilter {
        status: Some("active".into()),
        ..TypeFilter::default()
    };
    let window = crate::models::reference::Window {
        limit: 1000,
        offset: 0,
    };
    let (rows, _) = db::run(&state.pool, move |conn| {
        Ok(model::list_types(conn, &filter, window)?)
    })
    .await?;
    let items = rows
        .into_iter()
        .map(|t| public_type(t, lang))
        .collect::<Result<Vec<_>, _>>()?;
    let code = if lang == Lang::En { "en" } else { "es" };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_LANGUAGE, code))
        .insert_header((header::VARY, "Accept-Language"))
        .json(PublicListing {
            lang: code.to_owned(),
            items,
        }))
}

/// An attention type in one language.
fn public_type(t: model::AttentionType, lang: Lang) -> Result<PublicAttentionType, AppError> {
    let en = lang == Lang::En;
    let pick = |es: String, english: String| if en { english } else { es };
    let channels = stored_json::<Vec<IntakeChannel>>("attention type channels", &t.channels)?;
    Ok(PublicAttentionType {
        category: AttentionCategory::stored(&t.category)?,
        name: pick(t.name_es, t.name_en),
        description: pick(t.description_es, t.description_en),
        who_may_ask: pick(t.who_may_ask_es, t.who_may_ask_en),
        requirements: pick(t.requirements_es, t.requirements_en),
        channels: channels
            .into_iter()
            .map(|c| PublicChannel {
                code: c,
                name: if en { c.name_en() } else { c.name_es() }.to_owned(),
            })
            .collect(),
        code: t.code,
    })
}
