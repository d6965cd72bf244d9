//! Teaching the coded vocabularies new spellings: aliases of consulates,
//! countries, channels, sexes and document types, as officers write them
//! in legacy extracts (attention types have theirs in the catalogue). The
//! rules live in `services::vocabulary`.

use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::write::write;
use super::{access, text};
use crate::api::RequestOrigin as _;
use crate::audit::RequestMeta;
use crate::auth::{AuthUser, Policy};
use crate::db::{self, Id, Ts};
use crate::domain::error_code::ErrorCode;
use crate::domain::vocabulary::Vocabulary;
use crate::error::{AppError, FieldError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::vocabulary::{self as model, AliasRow};
use crate::services::vocabulary::{self as service, AliasError};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddVocabularyAliasRequest {
    /// A spelling officers use, e.g. `Presencial` or `NY`; compared folded
    /// (case, accents and punctuation aside).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub spelling: String,
}

/// What adding a channel alias recoded among imported attentions.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecodedResponse {
    /// Attentions imported as `not_recorded` with this spelling, now given
    /// the alias's channel.
    pub attentions: i64,
    /// Their legacy cases whose first attention now has that channel.
    pub cases: i64,
    /// Recoded attentions per year (`{"2024": 12}`): a closed year's
    /// channel figures drift by these.
    #[schema(value_type = Object)]
    pub attentions_by_year: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VocabularyAliasResponse {
    pub id: Id,
    pub vocabulary: Vocabulary,
    /// As the administrator wrote it.
    pub spelling: String,
    /// The folded key it is looked up by.
    pub folded: String,
    /// A channel, sex or document-type code, a consulate's id, or a
    /// country's alpha-2 code.
    pub target: String,
    pub created_by: Option<Id>,
    pub created_at: Ts,
    /// Set once removed: the spelling resolves no more.
    pub removed_at: Option<Ts>,
    pub removed_by: Option<Id>,
    /// Only on the answer to adding a channel alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recoded: Option<RecodedResponse>,
}

fn response(a: AliasRow) -> Result<VocabularyAliasResponse, AppError> {
    Ok(VocabularyAliasResponse {
        id: a.id,
        vocabulary: Vocabulary::parse(&a.vocabulary).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "an alias of the unknown vocabulary `{}`",
                a.vocabulary
            ))
        })?,
        spelling: a.spelling,
        folded: a.folded,
        target: a.target,
        created_by: a.created_by,
        created_at: a.created_at,
        removed_at: a.removed_at,
        removed_by: a.removed_by,
        recoded: None,
    })
}

/// The one body of the five `…/aliases` operations.
async fn add(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    policy: &Policy,
    vocabulary: Vocabulary,
    entry: String,
    body: JsonBody<AddVocabularyAliasRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(policy)?;
    let spelling = text("body.spelling", &body.into_inner()?.spelling, 200)?;
    let actor = user.user_id;
    let added = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            {
                service::add_alias(conn, j, actor, vocabulary, &entry, &spelling).map_err(|e| {
                    match e {
                        AliasError::Empty => {
                            AppError::invalid("body.spelling", "has no letters or digits")
                        }
                        AliasError::Taken { spelling, names } => AppError::Conflict {
                            code: ErrorCode::AliasTaken,
                            detail: format!("`{spelling}` already names {names}"),
                            errors: vec![FieldError::new(
                                "body.spelling",
                                "already names an entry",
                            )],
                        },
                        AliasError::NoTarget(entry) => AppError::not_found(format!(
                            "no {} `{entry}`",
                            vocabulary.as_str().replace('_', " ")
                        )),
                        AliasError::Db(e) => e.into(),
                    }
                })
            }
        },
    )
    .await?;
    let mut out = response(added.alias)?;
    if vocabulary == Vocabulary::Channel {
        out.recoded = Some(RecodedResponse {
            attentions: added.recoded.attentions,
            cases: added.recoded.cases,
            attentions_by_year: added
                .recoded
                .years
                .iter()
                .map(|(y, n)| (y.to_string(), serde_json::json!(n)))
                .collect(),
        });
    }
    Ok(HttpResponse::build(StatusCode::CREATED).json(out))
}

macro_rules! add_alias_operation {
    ($fn:ident, $op:literal, $path:literal, $policy:ident, $vocabulary:expr, $param:literal, $what:literal) => {
        #[doc = concat!("Teach a ", $what, " a spelling (admins). 409 when the spelling already names an entry; the legacy import, and the data-quality report, resolve it from now on.")]
        #[utoipa::path(
            tag = "reference",
            operation_id = $op,
            security(("bearer" = [])),
            params(("id" = String, Path, description = $param)),
            request_body = AddVocabularyAliasRequest,
            responses(
                (status = 201, body = VocabularyAliasResponse),
                (status = 401, body = Problem, content_type = "application/problem+json"),
                (status = 403, body = Problem, content_type = "application/problem+json"),
                (status = 404, body = Problem, content_type = "application/problem+json"),
                (status = 409, body = Problem, content_type = "application/problem+json"),
                (status = 422, body = Problem, content_type = "application/problem+json"),
            )
        )]
        #[post($path)]
        pub async fn $fn(
            req: HttpRequest,
            state: web::Data<AppState>,
            user: AuthUser,
            path: web::Path<String>,
            body: JsonBody<AddVocabularyAliasRequest>,
        ) -> Result<HttpResponse, AppError> {
            add(
                req,
                state,
                user,
                &access::$policy,
                $vocabulary,
                path.into_inner(),
                body,
            )
            .await
        }
    };
}

add_alias_operation!(
    add_consulate_alias,
    "add_consulate_alias",
    "/consulates/{id}/aliases",
    ADD_CONSULATE_ALIAS,
    Vocabulary::Consulate,
    "Consulate id or code",
    "consulate"
);
add_alias_operation!(
    add_country_alias,
    "add_country_alias",
    "/countries/{id}/aliases",
    ADD_COUNTRY_ALIAS,
    Vocabulary::Country,
    "ISO alpha-2 or alpha-3 code",
    "country"
);
add_alias_operation!(
    add_channel_alias,
    "add_channel_alias",
    "/channels/{id}/aliases",
    ADD_CHANNEL_ALIAS,
    Vocabulary::Channel,
    "Channel code: phone, e_appointment, consulate_window, institutional_email or in_person_ministry. Imported attentions that kept this spelling as `not_recorded` are recoded.",
    "channel"
);
add_alias_operation!(
    add_sex_alias,
    "add_sex_alias",
    "/sexes/{id}/aliases",
    ADD_SEX_ALIAS,
    Vocabulary::Sex,
    "female, male or not_recorded",
    "sex"
);
add_alias_operation!(
    add_document_type_alias,
    "add_document_type_alias",
    "/document-types/{id}/aliases",
    ADD_DOCUMENT_TYPE_ALIAS,
    Vocabulary::DocumentType,
    "dni, carne_extranjeria, passport or other",
    "document type"
);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AliasQuery {
    /// One vocabulary; all by default.
    pub vocabulary: Option<Vocabulary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AliasList {
    pub items: Vec<VocabularyAliasResponse>,
}

/// The live aliases of the vocabularies, oldest first.
#[utoipa::path(
    tag = "reference",
    operation_id = "list_vocabulary_aliases",
    security(("bearer" = [])),
    params(AliasQuery),
    responses(
        (status = 200, body = AliasList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/aliases")]
pub async fn list_vocabulary_aliases(
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<AliasQuery>,
) -> Result<web::Json<AliasList>, AppError> {
    user.require(&access::LIST_VOCABULARY_ALIASES)?;
    let vocabulary = query.into_inner().vocabulary;
    let rows = db::run(&state.pool, move |conn| {
        Ok(model::live_aliases(
            conn,
            vocabulary.map(Vocabulary::as_str),
        )?)
    })
    .await?;
    Ok(web::Json(AliasList {
        items: rows.into_iter().map(response).collect::<Result<_, _>>()?,
    }))
}

/// Take an alias out of the lookup (admins). The row stays, marked
/// removed, and rows it recoded keep their channel.
#[utoipa::path(
    tag = "reference",
    operation_id = "remove_vocabulary_alias",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Alias id")),
    responses(
        (status = 200, body = VocabularyAliasResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/aliases/{id}")]
pub async fn remove_vocabulary_alias(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::REMOVE_VOCABULARY_ALIAS)?;
    let raw = path.into_inner();
    let id = raw
        .parse::<uuid::Uuid>()
        .map(Id)
        .map_err(|_| AppError::not_found(format!("no alias `{raw}`")))?;
    let actor = user.user_id;
    let removed = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            service::remove_alias(conn, j, actor, id)?
                .ok_or_else(|| AppError::not_found(format!("no live alias `{raw}`")))
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(response(removed)?))
}
