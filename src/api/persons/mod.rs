//! Persons (connacionales): registration with search-before-create, search,
//! correction with history, the duplicate queue, reversible merges and the
//! individual history across consulates and years.

mod duplicates;
mod history;

pub use duplicates::*;
pub use history::*;

use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::{stored_json, Stored};
use actix_web::http::{header, StatusCode};
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::write::write;
use super::{access, etag, if_match_version, window, Page};
use crate::api::RequestOrigin as _;
use crate::api::Viewing as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::access::View;
use crate::domain::person::{mask_name, normalize_document_number, DocumentType, Sex};
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::persons::{self as model, Document, HistoryFilter, Person};
use crate::services::access::{self as access_service, PersonAccess};
use crate::services::person_search::{self, Criteria};
use crate::services::persons as service;
use crate::services::registration::{self, DocumentInput, NewPerson, PersonChange};
use crate::AppState;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentBody {
    #[serde(rename = "type")]
    pub doc_type: DocumentType,
    #[schema(example = "45678912")]
    pub number: String,
    /// Alpha-2 or alpha-3; Peru by default.
    #[schema(example = "PE")]
    pub issuing_country: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentResponse {
    #[serde(rename = "type")]
    pub doc_type: DocumentType,
    pub number: String,
    pub issuing_country: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonResponse {
    pub id: Id,
    pub given_names: String,
    pub first_surname: String,
    pub second_surname: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub sex: Sex,
    /// Alpha-2 codes.
    pub nationalities: Vec<String>,
    pub documents: Vec<DocumentResponse>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address_abroad: Option<String>,
    pub registered_consulate_id: Option<Id>,
    /// Set when this record was merged: the person it now lives on as.
    pub merged_into: Option<Id>,
    /// True when identifying fields are withheld (`view` is not `full`).
    pub masked: bool,
    /// How much of the person the caller sees (docs/access-model.md).
    pub view: View,
    pub version: i32,
    /// Absent when `view` is `not_held`.
    pub created_at: Option<Ts>,
    pub updated_at: Option<Ts>,
}

fn person_response(p: Person, docs: &[Document]) -> Result<PersonResponse, AppError> {
    Ok(PersonResponse {
        documents: docs
            .iter()
            .filter(|d| d.person_id == p.id)
            .map(|d| {
                Ok(DocumentResponse {
                    doc_type: DocumentType::stored(&d.doc_type)?,
                    number: d.number.clone(),
                    issuing_country: d.issuing_country.clone(),
                })
            })
            .collect::<Result<_, AppError>>()?,
        nationalities: stored_json("nationalities", &p.nationalities)?,
        sex: Sex::stored(&p.sex)?,
        id: p.id,
        given_names: p.given_names,
        first_surname: p.first_surname,
        second_surname: p.second_surname,
        birth_date: p.birth_date,
        phone: p.phone,
        email: p.email,
        address_abroad: p.address_abroad,
        registered_consulate_id: p.registered_consulate_id,
        merged_into: p.merged_into_id,
        masked: false,
        view: View::Full,
        version: p.version,
        created_at: Some(p.created_at),
        updated_at: Some(p.updated_at),
    })
}

/// The one masking function for a person's representation: every field
/// for `full`; names as initials, no birth date, contact or document numbers
/// for `masked`; only the id for `not_held` (that a record exists and how to
/// ask for it, never whether it is protected nor where).
pub(super) fn shape_person(
    p: Person,
    docs: &[Document],
    view: View,
) -> Result<PersonResponse, AppError> {
    let mut r = person_response(p, docs)?;
    match view {
        View::Full => {}
        View::Masked => {
            r.given_names = mask_name(&r.given_names);
            r.first_surname = mask_name(&r.first_surname);
            r.second_surname = r.second_surname.map(|s| mask_name(&s));
            r.birth_date = None;
            r.phone = None;
            r.email = None;
            r.address_abroad = None;
            for d in &mut r.documents {
                d.number = "********".into();
            }
        }
        View::NotHeld => {
            r = PersonResponse {
                id: r.id,
                given_names: String::new(),
                first_surname: String::new(),
                second_surname: None,
                birth_date: None,
                sex: Sex::NotRecorded,
                nationalities: Vec::new(),
                documents: Vec::new(),
                phone: None,
                email: None,
                address_abroad: None,
                registered_consulate_id: None,
                merged_into: None,
                masked: true,
                view,
                version: 0,
                created_at: None,
                updated_at: None,
            }
        }
    }
    r.masked = view != View::Full;
    r.view = view;
    Ok(r)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnmaskQuery {
    /// hq_analyst only: why identifying data of a protected person is
    /// needed (at least 15 characters); the reason is audited.
    pub justification: Option<String>,
}

fn find_person(conn: &mut DbConn, raw: &str) -> Result<Person, AppError> {
    let missing = || AppError::not_found(format!("no person `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    model::find_person(conn, id)?.ok_or_else(missing)
}

/// A person as a request may see it: 404 when the caller's consulate does
/// not hold the person; an hq_analyst's justification, when it unmasks,
/// checked and audited first.
fn person_for_read(
    conn: &mut DbConn,
    user: &AuthUser,
    meta: &RequestMeta,
    raw: &str,
    justification: Option<&str>,
) -> Result<(Person, PersonAccess), AppError> {
    let p = find_person(conn, raw)?;
    let seen = access_service::person_access(conn, user.viewer(false), &p)?;
    if seen.view == View::NotHeld {
        return Err(AppError::OutOfScope(format!("no person `{raw}`")));
    }
    let reason = justification.map(str::trim).filter(|j| !j.is_empty());
    let (View::Masked, Some(reason)) = (seen.view, reason) else {
        return Ok((p, seen));
    };
    if user.role != crate::domain::role::Role::HqAnalyst {
        return Err(AppError::forbidden(
            ErrorCode::Forbidden,
            "only hq_analyst may unmask a protected person",
        ));
    }
    if reason.chars().count() < 15 {
        return Err(AppError::bad_query(
            "query.justification",
            "say why, in at least 15 characters",
        ));
    }
    audit::record_alone(
        conn,
        Some(&user.actor()),
        meta,
        Event::new(AuditAction::PersonUnmask, "person", Some(p.id.to_string()))
            .subject(p.id)
            .details(serde_json::json!({ "justification": reason })),
    )?;
    let seen = access_service::person_access(conn, user.viewer(true), &p)?;
    Ok((p, seen))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmNewPerson {
    /// Why this is a different person from the proposed candidates.
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePersonRequest {
    #[schema(example = "José")]
    pub given_names: String,
    #[schema(example = "Pérez")]
    pub first_surname: String,
    #[schema(example = "Quispe")]
    pub second_surname: Option<String>,
    /// May be unknown.
    pub birth_date: Option<NaiveDate>,
    pub sex: Sex,
    /// Alpha-2 or alpha-3 codes; `["PE"]` by default.
    #[schema(min_items = 1)]
    pub nationalities: Option<Vec<String>>,
    #[serde(default)]
    pub documents: Vec<DocumentBody>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address_abroad: Option<String>,
    /// Send after a `possible_duplicates` answer to register anyway; the
    /// pairs stay queued for review.
    pub confirm_new_person: Option<ConfirmNewPerson>,
}

pub use crate::services::registration::Candidate;

fn document_input(d: DocumentBody) -> DocumentInput {
    DocumentInput {
        doc_type: d.doc_type,
        number: d.number,
        issuing_country: d.issuing_country,
    }
}

/// Register a person. Searches before creating: a known document is a 409
/// with the existing person's id; likely duplicates (similar name with an
/// equal or close birth date, or the same phone or e-mail) are a 409
/// `possible_duplicates` unless `confirm_new_person` is sent.
#[utoipa::path(
    tag = "persons",
    operation_id = "create_person",
    security(("bearer" = [])),
    request_body = CreatePersonRequest,
    responses(
        (status = 201, body = PersonResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_exists` (document known; `existing_id`) or `possible_duplicates` (`candidates`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/persons")]
pub async fn create_person(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonBody<CreatePersonRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_PERSON)?;
    let b = body.into_inner()?;
    let new = NewPerson {
        given_names: b.given_names,
        first_surname: b.first_surname,
        second_surname: b.second_surname,
        birth_date: b.birth_date,
        sex: b.sex,
        nationalities: b.nationalities,
        documents: b.documents.into_iter().map(document_input).collect(),
        phone: b.phone,
        email: b.email,
        address_abroad: b.address_abroad,
        confirm_new_person: b.confirm_new_person.map(|c| c.reason),
    };
    let created = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let person =
                registration::register(conn, j, &user, new).map_err(|e| e.under("body"))?;
            let docs = model::documents_of(conn, &[person.id])?;
            person_response(person, &docs)
        },
    )
    .await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::ETAG, etag(created.version)))
        .insert_header((header::LOCATION, format!("/api/v1/persons/{}", created.id)))
        .json(created))
}

/// A name search: each word is one condition, so a thousand words were a
/// thousand (SQLite refuses expressions that deep, and the answer was 500);
/// 200 characters make at most 100 words.
const MAX_SEARCH_CHARS: usize = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PersonQuery {
    /// Names, in any order, ignoring accents and case; not blank (one
    /// without a letter or digit finds nobody); at most 200 characters.
    #[param(pattern = "\\S", max_length = 200)]
    pub q: Option<String>,
    /// An exact document number (any type): officers find people known at
    /// other consulates this way. Only its letters and digits count.
    #[param(pattern = "[A-Za-z0-9]")]
    pub document: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Search persons by exact document number or by names.
#[utoipa::path(
    tag = "persons",
    operation_id = "list_persons",
    security(("bearer" = [])),
    params(PersonQuery),
    responses(
        (status = 200, body = Page<PersonResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The hourly budget of document searches is spent; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/persons")]
pub async fn list_persons(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<PersonQuery>,
) -> Result<web::Json<Page<PersonResponse>>, AppError> {
    user.require(&access::LIST_PERSONS)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let name_tokens = match q.q.as_deref() {
        None => Vec::new(),
        Some(raw) if raw.chars().count() > MAX_SEARCH_CHARS => {
            return Err(AppError::bad_query(
                "query.q",
                format!("at most {MAX_SEARCH_CHARS} characters"),
            ))
        }
        Some(raw) => match super::search_text("query.q", raw)? {
            Some(folded) => Criteria::tokens(&folded),
            None => return Ok(web::Json(Page::new(&req, Vec::new(), 0, window))),
        },
    };
    let document = q.document.as_deref().map(normalize_document_number);
    if document.as_deref() == Some("") {
        return Err(AppError::bad_query(
            "query.document",
            "needs at least one letter or digit",
        ));
    }
    let by = Criteria {
        name_tokens,
        document,
    };
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    if user.role.is_consulate_scoped() && by.document.is_some() {
        if let Err(retry_after_secs) = state
            .lookups
            .take(user.user_id, chrono::Utc::now().timestamp())
        {
            let limit = state.lookups.limit();
            db::run(&state.pool, move |conn| {
                person_search::refuse_lookup(conn, &actor, &meta, limit)
            })
            .await?;
            return Err(AppError::TooManyRequests { retry_after_secs });
        }
    }
    let viewer = user.viewer(false);
    let found = db::run(&state.pool, move |conn| {
        person_search::search(conn, viewer, by, window, &actor, &meta)
    })
    .await?;
    let items = found
        .persons
        .into_iter()
        .map(|(p, view)| shape_person(p, &found.documents, view))
        .collect::<Result<_, _>>()?;
    Ok(web::Json(Page::new(&req, items, found.total, window)))
}

/// One person. A merged record answers with `merged_into` set. The read is
/// audited with the person as data subject before the answer leaves.
#[utoipa::path(
    tag = "persons",
    operation_id = "get_person",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Person id"), UnmaskQuery),
    responses(
        (status = 200, body = PersonResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/persons/{id}")]
pub async fn get_person(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    query: QueryParams<UnmaskQuery>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::GET_PERSON)?;
    let raw = path.into_inner();
    let justification = query.into_inner().justification;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let person = db::run(&state.pool, move |conn| {
        let (p, seen) = person_for_read(conn, &user, &meta, &raw, justification.as_deref())?;
        let docs = model::documents_of(conn, &[p.id])?;
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(AuditAction::PersonRead, "person", Some(p.id.to_string())).subject(p.id),
        )?;
        shape_person(p, &docs, seen.view)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(person.version)))
        .json(person))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePersonRequest {
    pub given_names: Option<String>,
    pub first_surname: Option<String>,
    /// `null` clears it.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub second_surname: Option<Option<String>>,
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub birth_date: Option<Option<NaiveDate>>,
    pub sex: Option<Sex>,
    pub nationalities: Option<Vec<String>>,
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub address_abroad: Option<Option<String>>,
    /// Documents to add (documents are never removed).
    #[serde(default)]
    pub add_documents: Vec<DocumentBody>,
}

/// Correct a person's data. Needs `If-Match`. Every changed field is kept in
/// the person's history (from → to).
#[utoipa::path(
    tag = "persons",
    operation_id = "update_person",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Person id"), ("If-Match" = String, Header, description = "ETag of the version being changed")),
    request_body = UpdatePersonRequest,
    responses(
        (status = 200, body = PersonResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/persons/{id}")]
pub async fn update_person(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<UpdatePersonRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_PERSON)?;
    let raw = path.into_inner();
    // Checked after the scope check, so another consulate's record is a 404
    // whatever the headers.
    let expected = if_match_version(&req);
    let b = body.into_inner()?;
    let change = PersonChange {
        given_names: b.given_names,
        first_surname: b.first_surname,
        second_surname: b.second_surname,
        birth_date: b.birth_date,
        sex: b.sex,
        nationalities: b.nationalities,
        phone: b.phone,
        email: b.email,
        address_abroad: b.address_abroad,
        add_documents: b.add_documents.into_iter().map(document_input).collect(),
    };
    let updated = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let next = registration::correct(conn, j, &user, &raw, expected, change)
                .map_err(|e| e.under("body"))?;
            let docs = model::documents_of(conn, &[next.id])?;
            person_response(next, &docs)
        },
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(updated.version)))
        .json(updated))
}
