//! Cases: intake on five channels, attentions, the status workflow with
//! protocol steps, notes, and concurrency-safe, retry-safe writes.

mod workflow;

pub use workflow::*;

use crate::domain::audit::AuditAction;
use crate::domain::{stored_json, Stored};
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::disclosure::WITHHELD;
use super::write::{write, write_once, Written};
use super::{access, etag, if_match_version, text, window, Page};
use crate::api::RequestOrigin as _;
use crate::api::Viewing as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::case::{CaseOutcome, CaseStatus, Flag, RequesterKind};
use crate::domain::catalogue::IntakeChannel;
use crate::domain::vocabulary::RecordedChannel;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::idempotency::Idempotency;
use crate::models::cases::{self as model, Attention, Case, CaseFilter, CaseStep};
use crate::models::persons as persons_model;
use crate::services::access::{self as access_service, PersonAccess};
use crate::services::cases::{self as service, AttentionInput, Move, NewCase, Requester};
use crate::AppState;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequesterBody {
    pub kind: RequesterKind,
    /// For a relative: their name.
    pub name: Option<String>,
    /// For a relative: e.g. `madre`, `hermano`.
    pub relationship: Option<String>,
    /// Phone or e-mail of the requester.
    pub contact: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttentionBody {
    /// Type id, code, or any spelling the catalogue resolves.
    #[schema(example = "orientación legal")]
    pub attention_type: String,
    /// The day the attention was given (not in the future).
    pub date: NaiveDate,
    /// Channel code or Spanish name; the case's channel by default.
    pub channel: Option<String>,
    pub description: String,
    /// Allows a date before the case was opened (records entered late).
    #[serde(default)]
    pub late_registration: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCaseRequest {
    pub person_id: Id,
    /// Where it happened: alpha-2 or alpha-3; the consulate's country by default.
    pub country: Option<String>,
    pub city: Option<String>,
    /// `phone`, `e_appointment`, `consulate_window`, `institutional_email`,
    /// `in_person_ministry`, or their Spanish names.
    #[schema(example = "ventanilla del consulado")]
    pub channel: String,
    pub requester: RequesterBody,
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    pub summary: String,
    #[serde(default)]
    pub flags: Vec<Flag>,
    pub assigned_officer_id: Option<Id>,
    /// Attentions given at intake.
    #[serde(default)]
    pub attentions: Vec<AttentionBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonRef {
    pub id: Id,
    /// Masked outside the owning consulate when the case is protected.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttentionResponse {
    pub id: Id,
    pub attention_type_id: Id,
    pub date: NaiveDate,
    pub channel: String,
    pub officer_id: Option<Id>,
    pub description: String,
    pub late_registration: bool,
    pub voided: bool,
    pub void_reason: Option<String>,
    pub created_at: Ts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepResponse {
    pub id: Id,
    pub attention_type_id: Id,
    pub protocol_version_id: Id,
    pub position: i32,
    pub title_es: String,
    pub title_en: String,
    pub required_to_close: bool,
    pub due_at: Option<Ts>,
    /// `pending`, `done` or `waived`.
    pub status: String,
    pub done_at: Option<Ts>,
    pub waiver_reason: Option<String>,
    /// Pending past its deadline.
    pub overdue: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseResponse {
    pub id: Id,
    pub person: PersonRef,
    pub consulate_id: Id,
    pub country: String,
    pub city: Option<String>,
    /// `not_recorded` on legacy cases whose extract named no channel, or
    /// one nothing resolved.
    pub channel: RecordedChannel,
    /// Omitted outside the owning consulate when the case is protected.
    pub requester: Option<RequesterBody>,
    pub summary: String,
    pub flags: Vec<Flag>,
    pub protected: bool,
    pub status: CaseStatus,
    pub outcome: Option<String>,
    pub closed_at: Option<Ts>,
    pub assigned_officer_id: Option<Id>,
    pub opened_at: Ts,
    pub attentions: Vec<AttentionResponse>,
    pub steps: Vec<StepResponse>,
    /// Required steps past their deadline (e.g. first consular contact of a detainee).
    pub deadline_breaches: i64,
    /// Referrals to support organisations, oldest first.
    pub referrals: Vec<super::support::ReferralResponse>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

fn step_response(s: CaseStep, now: Ts) -> StepResponse {
    StepResponse {
        overdue: s.status == "pending" && s.due_at.is_some_and(|d| d < now),
        id: s.id,
        attention_type_id: s.attention_type_id,
        protocol_version_id: s.protocol_version_id,
        position: s.position,
        title_es: s.title_es,
        title_en: s.title_en,
        required_to_close: s.required_to_close,
        due_at: s.due_at,
        status: s.status,
        done_at: s.done_at,
        waiver_reason: s.waiver_reason,
    }
}

/// Builds the representation; identifying data of a protected case is
/// masked for callers outside its consulate.
pub(crate) fn case_response(
    conn: &mut DbConn,
    user: &AuthUser,
    c: Case,
) -> Result<CaseResponse, AppError> {
    let person = persons_model::find_person(conn, c.person_id)?
        .ok_or_else(|| AppError::not_found("person"))?;
    let seen = access_service::person_access(conn, user.viewer(false), &person)?;
    let attentions = model::attentions_of(conn, &[c.id])?;
    let steps = model::steps_of(conn, c.id)?;
    let referrals = crate::models::support::referrals_of_case(conn, c.id)?;
    let referrals = super::support::referral_responses(conn, referrals)?;
    build_case_response(&seen, c, &person, attentions, steps, referrals)
}

/// The representation from rows already in hand (creation builds it without
/// reading back what it just wrote). The person's name follows what the
/// caller may see of the person; the case's own text, what the caller may
/// read of this case.
fn build_case_response(
    seen: &PersonAccess,
    c: Case,
    person: &crate::models::persons::Person,
    attentions: Vec<Attention>,
    steps: Vec<CaseStep>,
    mut referrals: Vec<super::support::ReferralResponse>,
) -> Result<CaseResponse, AppError> {
    let masked = !seen.case_text(c.consulate_id, c.protected);
    let now = Ts::now();
    let mut steps: Vec<StepResponse> = steps.into_iter().map(|s| step_response(s, now)).collect();
    let deadline_breaches = steps.iter().filter(|s| s.overdue).count() as i64;
    let mut attentions: Vec<AttentionResponse> = attentions
        .into_iter()
        .map(AttentionResponse::from)
        .collect();
    if masked {
        withhold(&mut attentions, &mut steps, &mut referrals);
    }
    let withheld = |text: String| if masked { WITHHELD.into() } else { text };
    Ok(CaseResponse {
        referrals,
        person: PersonRef {
            id: c.person_id,
            name: person.name_as_seen(seen.view),
        },
        requester: if masked { None } else { Some(requester(&c)?) },
        channel: RecordedChannel::stored(&c.channel)?,
        flags: if masked {
            Vec::new()
        } else {
            stored_json("flags", &c.flags)?
        },
        status: CaseStatus::stored(&c.status)?,
        attentions,
        steps,
        deadline_breaches,
        id: c.id,
        consulate_id: c.consulate_id,
        country: c.country_code,
        city: c.city,
        summary: withheld(c.summary),
        protected: c.protected,
        outcome: c.outcome.map(withheld),
        closed_at: c.closed_at,
        assigned_officer_id: c.assigned_officer_id,
        opened_at: c.opened_at,
        version: c.version,
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

fn requester(c: &Case) -> Result<RequesterBody, AppError> {
    Ok(RequesterBody {
        kind: RequesterKind::stored(&c.requester_kind)?,
        name: c.requester_name.clone(),
        relationship: c.requester_relationship.clone(),
        contact: c.requester_contact.clone(),
    })
}

/// The texts of a case the caller may not read: what was said, never that
/// something was.
fn withhold(
    attentions: &mut [AttentionResponse],
    steps: &mut [StepResponse],
    referrals: &mut [super::support::ReferralResponse],
) {
    for r in referrals {
        r.reason = WITHHELD.into();
        r.outcome = r.outcome.as_ref().map(|_| WITHHELD.into());
    }
    for a in attentions {
        a.description = WITHHELD.into();
        a.void_reason = a.void_reason.as_ref().map(|_| WITHHELD.into());
    }
    for st in steps {
        st.waiver_reason = st.waiver_reason.as_ref().map(|_| WITHHELD.into());
    }
}

impl From<Attention> for AttentionResponse {
    fn from(a: Attention) -> AttentionResponse {
        AttentionResponse {
            id: a.id,
            attention_type_id: a.attention_type_id,
            date: a.attended_on,
            channel: a.channel,
            officer_id: a.officer_id,
            description: a.description,
            late_registration: a.late_registration,
            voided: a.voided_at.is_some(),
            void_reason: a.void_reason,
            created_at: a.created_at,
        }
    }
}

fn respond(c: &CaseResponse, status: StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag(c.version)))
        .insert_header((header::LOCATION, format!("/api/v1/cases/{}", c.id)))
        .json(c)
}

pub(super) use crate::services::cases::load_scoped;

/// Open a case for a person at the caller's consulate, optionally with the
/// attentions given at intake. Accepts `Idempotency-Key`.
#[utoipa::path(
    tag = "cases",
    operation_id = "create_case",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation: 1 to 200 visible ASCII characters", pattern = "^[!-~]{1,200}$")),
    request_body = CreateCaseRequest,
    responses(
        (status = 201, body = CaseResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases")]
pub async fn create_case(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonBody<CreateCaseRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_CASE)?;
    let b = body.into_inner()?;
    let idem = Idempotency::of(&req, &b)?;
    let new = NewCase {
        person_id: b.person_id,
        country: b.country,
        city: b.city,
        channel: b.channel,
        requester: Requester {
            kind: b.requester.kind,
            name: b.requester.name,
            relationship: b.requester.relationship,
            contact: b.requester.contact,
        },
        summary: b.summary,
        flags: b.flags,
        assigned_officer_id: b.assigned_officer_id,
        attentions: b.attentions.into_iter().map(attention_input).collect(),
    };
    let (actor, meta) = (user.actor(), RequestMeta::of(&req));
    let written = write_once(
        &state,
        actor,
        meta,
        idem,
        StatusCode::CREATED,
        move |conn, j| {
            let o = service::open(conn, j, &user, new).map_err(|e| e.under("body"))?;
            let seen = access_service::person_access(conn, user.viewer(false), &o.person)?;
            build_case_response(&seen, o.case, &o.person, o.attentions, o.steps, Vec::new())
        },
    )
    .await?;
    Ok(created(written))
}

fn attention_input(b: AttentionBody) -> AttentionInput {
    AttentionInput {
        attention_type: b.attention_type,
        date: b.date,
        channel: b.channel,
        description: b.description,
        late_registration: b.late_registration,
    }
}

/// 201 with the new case (or the answer stored for this retry).
fn created(written: Written<CaseResponse>) -> HttpResponse {
    match written {
        Written::Done(c) => respond(&c, StatusCode::CREATED),
        Written::Replayed(replay) => replay,
    }
}

/// 200 with the case and its ETag.
pub(super) fn ok_with_etag(c: &CaseResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(c.version)))
        .json(c)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// Consulate id (national roles; officers always see their own).
    pub consulate: Option<uuid::Uuid>,
    pub status: Option<CaseStatus>,
    /// Attention type id, code or spelling.
    #[param(pattern = "[^\\W_]")]
    pub attention_type: Option<String>,
    /// Assigned officer's user id.
    pub officer: Option<uuid::Uuid>,
    pub opened_from: Option<chrono::DateTime<chrono::Utc>>,
    pub opened_to: Option<chrono::DateTime<chrono::Utc>>,
    pub protected: Option<bool>,
    #[param(
        pattern = "^(phone|e_appointment|consulate_window|institutional_email|in_person_ministry)$"
    )]
    pub channel: Option<String>,
    pub person: Option<uuid::Uuid>,
    /// Only cases with a protocol step or a task past its deadline (e.g. a
    /// detainee's first consular contact).
    pub overdue: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Cases, newest first, with filters.
#[utoipa::path(
    tag = "cases",
    operation_id = "list_cases",
    security(("bearer" = [])),
    params(CaseQuery),
    responses(
        (status = 200, body = Page<CaseResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases")]
pub async fn list_cases(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<CaseQuery>,
) -> Result<web::Json<Page<CaseResponse>>, AppError> {
    user.require(&access::LIST_CASES)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let (items, total) = db::run(&state.pool, move |conn| {
        let filter = case_filter(conn, &q, &user)?;
        let (rows, total) = model::list_cases(conn, &filter, window)?;
        let items = rows
            .into_iter()
            .map(|c| case_response(conn, &user, c))
            .collect::<Result<Vec<_>, _>>()?;
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(AuditAction::CaseList, "case", None)
                .details(serde_json::json!({ "results": total, "person": q.person }))
                .subjects(
                    items
                        .iter()
                        .map(|c: &CaseResponse| c.person.id)
                        .chain(q.person.map(Id)),
                ),
        )?;
        Ok((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}

/// The filter a case list's query asks for; a consulate's staff list only
/// their consulate's cases, whatever consulate they name.
fn case_filter(conn: &mut DbConn, q: &CaseQuery, user: &AuthUser) -> Result<CaseFilter, AppError> {
    let channel = q
        .channel
        .as_deref()
        .map(|c| {
            RecordedChannel::parse(c)
                .or_else(|| IntakeChannel::parse(c).map(RecordedChannel::from))
                .ok_or_else(|| AppError::bad_query("query.channel", "unknown channel"))
        })
        .transpose()?;
    let attention_type = match &q.attention_type {
        Some(label) => Some(
            crate::services::catalogue::resolve(conn, label)?
                .ok_or_else(|| {
                    AppError::invalid(
                        "query.attention_type",
                        format!("no attention type is spelled `{label}`"),
                    )
                })?
                .id,
        ),
        None => None,
    };
    Ok(CaseFilter {
        consulate: if user.role.is_consulate_scoped() {
            user.consulate_id
        } else {
            q.consulate.map(Id)
        },
        status: q.status.map(|s| s.as_str().to_owned()),
        attention_type,
        officer: q.officer.map(Id),
        opened_from: q.opened_from.map(Ts::from),
        opened_to: q.opened_to.map(Ts::from),
        protected: q.protected,
        channel: channel.map(|c| c.as_str().to_owned()),
        person: q.person.map(Id),
        overdue_at: q.overdue.unwrap_or(false).then(Ts::now),
    })
}

/// One case with its attentions and protocol steps.
#[utoipa::path(
    tag = "cases",
    operation_id = "get_case",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}")]
pub async fn get_case(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::GET_CASE)?;
    let raw = path.into_inner();
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let c = db::run(&state.pool, move |conn| {
        let c = load_scoped(conn, &user, &raw)?;
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(AuditAction::CaseRead, "case", Some(c.id.to_string())).subject(c.person_id),
        )?;
        case_response(conn, &user, c)
    })
    .await?;
    Ok(ok_with_etag(&c))
}
