//! Cases: intake on five channels, attentions, the status workflow with
//! protocol steps, notes, and concurrency-safe, retry-safe writes.

use crate::domain::{stored_json, Stored};
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::disclosure::WITHHELD;
use super::{access, etag, if_match_version, text, window, Page};
use crate::api::RequestOrigin as _;
use crate::api::Viewing as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::access::View;
use crate::domain::case::{CaseOutcome, CaseStatus, Flag, RequesterKind};
use crate::domain::catalogue::IntakeChannel;
use crate::domain::person::mask_name;
use crate::domain::vocabulary::RecordedChannel;
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::idempotency::Idempotency;
use crate::models::cases::{self as model, Attention, Case, CaseFilter, CaseStep};
use crate::models::persons as persons_model;
use crate::models::reference as reference_model;
use crate::services::access::{self as access_service, PersonAccess};
use crate::services::cases::{self as service, NewAttention};
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
/// reading back what it just wrote).
fn build_case_response(
    seen: &PersonAccess,
    c: Case,
    person: &crate::models::persons::Person,
    attentions: Vec<Attention>,
    steps: Vec<CaseStep>,
    mut referrals: Vec<super::support::ReferralResponse>,
) -> Result<CaseResponse, AppError> {
    let full = format!(
        "{} {} {}",
        person.given_names,
        person.first_surname,
        person.second_surname.clone().unwrap_or_default()
    )
    .trim()
    .to_owned();
    // The person's name follows what the caller may see of the person; the
    // case's own text, what the caller may read of this case.
    let name = if seen.view == View::Full {
        full
    } else {
        mask_name(&full)
    };
    let masked = !seen.case_text(c.consulate_id, c.protected);
    let now = Ts::now();
    let mut steps: Vec<StepResponse> = steps.into_iter().map(|s| step_response(s, now)).collect();
    let deadline_breaches = steps.iter().filter(|s| s.overdue).count() as i64;
    let mut attentions = attentions;
    if masked {
        for r in &mut referrals {
            r.reason = WITHHELD.into();
            r.outcome = r.outcome.as_ref().map(|_| WITHHELD.into());
        }
        for a in &mut attentions {
            a.description = WITHHELD.into();
            a.void_reason = a.void_reason.as_ref().map(|_| WITHHELD.into());
        }
        for st in &mut steps {
            st.waiver_reason = st.waiver_reason.as_ref().map(|_| WITHHELD.into());
        }
    }
    Ok(CaseResponse {
        referrals,
        person: PersonRef {
            id: c.person_id,
            name,
        },
        requester: if masked {
            None
        } else {
            Some(RequesterBody {
                kind: RequesterKind::stored(&c.requester_kind)?,
                name: c.requester_name.clone(),
                relationship: c.requester_relationship.clone(),
                contact: c.requester_contact.clone(),
            })
        },
        channel: RecordedChannel::stored(&c.channel)?,
        flags: if masked {
            Vec::new()
        } else {
            stored_json("flags", &c.flags)?
        },
        status: CaseStatus::stored(&c.status)?,
        attentions: attentions
            .into_iter()
            .map(|a: Attention| AttentionResponse {
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
            })
            .collect(),
        steps,
        deadline_breaches,
        id: c.id,
        consulate_id: c.consulate_id,
        country: c.country_code,
        city: c.city,
        summary: if masked { WITHHELD.into() } else { c.summary },
        protected: c.protected,
        outcome: if masked {
            c.outcome.map(|_| WITHHELD.into())
        } else {
            c.outcome
        },
        closed_at: c.closed_at,
        assigned_officer_id: c.assigned_officer_id,
        opened_at: c.opened_at,
        version: c.version,
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

fn respond(c: &CaseResponse, status: StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag(c.version)))
        .insert_header((header::LOCATION, format!("/api/v1/cases/{}", c.id)))
        .json(c)
}

pub(super) use crate::services::cases::load_scoped;

fn channel(field: &str, raw: &str) -> Result<IntakeChannel, AppError> {
    IntakeChannel::parse(raw).ok_or_else(|| {
        AppError::invalid(field, "one of phone, e_appointment, consulate_window, institutional_email, in_person_ministry (or their Spanish names)")
    })
}

/// Resolves and validates the attentions of a request.
fn prepare_attentions(
    conn: &mut DbConn,
    bodies: &[AttentionBody],
    base: &str,
    default_channel: IntakeChannel,
    opened: Ts,
) -> Result<Vec<NewAttention>, AppError> {
    let mut out = Vec::new();
    for (i, a) in bodies.iter().enumerate() {
        let field = |f: &str| {
            if base.is_empty() {
                format!("body.{f}")
            } else {
                format!("{base}[{i}].{f}")
            }
        };
        let t = crate::services::catalogue::resolve(conn, &a.attention_type)?.ok_or_else(|| {
            AppError::invalid(
                field("attention_type"),
                format!("no attention type is spelled `{}`", a.attention_type),
            )
        })?;
        service::check_attention_date(&field("date"), a.date, a.late_registration, opened)?;
        let ch = match &a.channel {
            Some(c) => channel(&field("channel"), c)?,
            None => default_channel,
        };
        out.push(NewAttention {
            attention_type: t,
            attended_on: a.date,
            channel: ch.as_str().to_owned(),
            description: text(&field("description"), &a.description, 4000)?,
            late_registration: a.late_registration,
        });
    }
    Ok(out)
}

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
    if let Some(replay) = idem.begin(&state.pool, user.user_id).await? {
        return Ok(replay);
    }
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let idem2 = idem.clone();
    let result = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let consulate = user.consulate_id.ok_or_else(|| {
                AppError::forbidden("forbidden", "only consulate staff open cases")
            })?;
            // A person the caller's consulate does not hold reads exactly
            // like one that does not exist: opening a case is no way in.
            let no_such = || {
                AppError::invalid(
                    "body.person_id",
                    "no person your consulate holds has this id; a person known at another consulate is reached with POST /api/v1/persons/{id}/access-requests",
                )
            };
            let person = persons_model::find_person(conn, b.person_id)?.ok_or_else(no_such)?;
            if access_service::person_access(conn, user.viewer(false), &person)?.view == View::NotHeld {
                return Err(no_such());
            }
            if let Some(survivor) = person.merged_into_id {
                return Err(AppError::invalid(
                    "body.person_id",
                    format!("this person was merged into {survivor}; use that id"),
                ));
            }
            let ch = channel("body.channel", &b.channel)?;
            let summary = text("body.summary", &b.summary, 4000)?;
            let country = match &b.country {
                Some(code) => {
                    reference_model::find_country_by_code(conn, code)?
                        .ok_or_else(|| {
                            AppError::invalid(
                                "body.country",
                                format!("unknown country code `{code}`"),
                            )
                        })?
                        .alpha2
                }
                None => reference_model::consulate_country(conn, consulate)?,
            };
            if b.requester.kind == RequesterKind::Relative
                && b.requester
                    .relationship
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or("")
                    .is_empty()
            {
                return Err(AppError::invalid(
                    "body.requester.relationship",
                    "say how the relative is related",
                ));
            }
            if let Some(officer) = b.assigned_officer_id {
                let ok = match crate::models::users::find_user(conn, officer)? {
                    Some(u) => {
                        u.active
                            && u.consulate_id == Some(consulate)
                            && u.role()?.is_consulate_scoped()
                    }
                    None => false,
                };
                if !ok {
                    return Err(AppError::invalid(
                        "body.assigned_officer_id",
                        "not an active officer of this consulate",
                    ));
                }
            }
            let now = Ts::now();
            let mut flags = b.flags.clone();
            flags.sort();
            flags.dedup();
            let mut case = Case {
                id: Id::new(),
                person_id: person.id,
                consulate_id: consulate,
                country_code: country,
                city: b
                    .city
                    .as_deref()
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
                channel: ch.as_str().to_owned(),
                requester_kind: b.requester.kind.as_str().to_owned(),
                requester_name: b.requester.name.clone(),
                requester_relationship: b.requester.relationship.clone(),
                requester_contact: b.requester.contact.clone(),
                summary,
                flags: serde_json::to_string(&flags).map_err(AppError::internal)?,
                protected: flags.iter().any(|f| f.protects()),
                status: CaseStatus::Open.as_str().to_owned(),
                outcome: None,
                closed_at: None,
                assigned_officer_id: b.assigned_officer_id.or(Some(user.user_id)),
                opened_at: now,
                created_by: Some(user.user_id),
                version: 1,
                created_at: now,
                updated_at: now,
            };
            let attentions = prepare_attentions(conn, &b.attentions, "body.attentions", ch, now)?;
            // Final protection known before the insert: no second write.
            case.protected = case.protected
                || attentions
                    .iter()
                    .any(|a| a.attention_type.protected_by_default);
            model::insert_case(conn, &case)?;
            if case.protected {
                access_service::case_protected(conn, person.id, consulate, Some(user.user_id))?;
            }
            service::record_event(
                conn,
                &case,
                "case.opened",
                Some(user.user_id),
                None,
                serde_json::json!({ "channel": case.channel, "flags": flags }),
            )?;
            let mut steps = Vec::new();
            let mut recorded = Vec::new();
            for a in attentions {
                recorded.push(service::add_attention(
                    conn,
                    &mut case,
                    a,
                    user.user_id,
                    &mut steps,
                )?);
            }
            let id = case.id.to_string();
            let seen = access_service::person_access(conn, user.viewer(false), &person)?;
            let response =
                build_case_response(&seen, case, &person, recorded, steps, Vec::new())?;
            finish_create(
                conn,
                &user,
                &actor,
                &meta,
                &idem2,
                response,
                Event::new("case.create", "case", Some(id)),
            )
        })
    })
    .await;
    created_or_released(result, &idem, &state, &req).await
}

/// The end of a change to a case, inside its transaction (after its
/// timeline event): the answer is built first and the audit row appended
/// last, because appending locks the audit chain's head until commit.
pub(super) fn answer_and_audit(
    conn: &mut DbConn,
    user: &AuthUser,
    actor: &audit::Actor,
    meta: &RequestMeta,
    case: Case,
    event: Event<'_>,
) -> Result<CaseResponse, AppError> {
    let event = event.subject(case.person_id);
    let response = case_response(conn, user, case)?;
    audit::record(conn, Some(actor), meta, event)?;
    Ok(response)
}

/// 200 with the case and its ETag.
pub(super) fn ok_with_etag(c: &CaseResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(c.version)))
        .json(c)
}

/// The end of an idempotent creation, inside its transaction: store the
/// answer under the key, and append the audit row last (the chain
/// head stays locked until commit, so it should be held briefly).
fn finish_create(
    conn: &mut DbConn,
    user: &AuthUser,
    actor: &audit::Actor,
    meta: &RequestMeta,
    idem: &Idempotency,
    response: CaseResponse,
    event: Event<'_>,
) -> Result<CaseResponse, AppError> {
    idem.complete(conn, user.user_id, StatusCode::CREATED, &response)?;
    audit::record(conn, Some(actor), meta, event.subject(response.person.id))?;
    Ok(response)
}

/// Answers 201, or releases the idempotency key so a corrected retry can run.
async fn created_or_released(
    result: Result<CaseResponse, AppError>,
    idem: &Idempotency,
    state: &AppState,
    req: &HttpRequest,
) -> Result<HttpResponse, AppError> {
    match result {
        Ok(c) => Ok(respond(&c, StatusCode::CREATED)),
        Err(e) => {
            idem.abandon(&state.pool, actor_id(req)).await;
            Err(e)
        }
    }
}

fn actor_id(req: &HttpRequest) -> Id {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<AuthUser>()
        .map(|u| u.user_id)
        .unwrap_or_default()
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
    let ch = q
        .channel
        .as_deref()
        .map(|c| {
            RecordedChannel::parse(c)
                .or_else(|| IntakeChannel::parse(c).map(RecordedChannel::from))
                .ok_or_else(|| AppError::bad_query("query.channel", "unknown channel"))
        })
        .transpose()?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let (items, total) = db::run(&state.pool, move |conn| {
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
        let filter = CaseFilter {
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
            channel: ch.map(|c| c.as_str().to_owned()),
            person: q.person.map(Id),
            overdue_at: q.overdue.unwrap_or(false).then(Ts::now),
        };
        let (rows, total) = model::list_cases(conn, &filter, window)?;
        let items = rows
            .into_iter()
            .map(|c| case_response(conn, &user, c))
            .collect::<Result<Vec<_>, _>>()?;
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new("case.list", "case", None)
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
            Event::new("case.read", "case", Some(c.id.to_string())).subject(c.person_id),
        )?;
        case_response(conn, &user, c)
    })
    .await?;
    Ok(ok_with_etag(&c))
}

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
    if let Some(replay) = idem.begin(&state.pool, user.user_id).await? {
        return Ok(replay);
    }
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let idem2 = idem.clone();
    let result = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let mut case = load_scoped(conn, &user, &raw)?;
            if case.status == CaseStatus::Closed.as_str() {
                return Err(AppError::conflict(
                    "case_closed",
                    None,
                    "reopen the case before recording attentions",
                ));
            }
            let default = RecordedChannel::stored(&case.channel)?.intake();
            if default.is_none() && b.channel.is_none() {
                return Err(AppError::invalid(
                    "body.channel",
                    "the case's channel is not recorded: say how this request came",
                ));
            }
            let default = default.unwrap_or(IntakeChannel::ConsulateWindow);
            let new =
                prepare_attentions(conn, std::slice::from_ref(&b), "", default, case.opened_at)?
                    .remove(0);
            let version = case.version;
            let mut steps = model::steps_of(conn, case.id)?;
            let a = service::add_attention(conn, &mut case, new, user.user_id, &mut steps)?;
            case.version += 1;
            case.updated_at = Ts::now();
            if !model::update_case(conn, &case, version)? {
                return Err(AppError::PreconditionFailed(
                    "the case changed meanwhile; retry".into(),
                ));
            }
            let id = a.id.to_string();
            let response = case_response(conn, &user, case)?;
            finish_create(
                conn,
                &user,
                &actor,
                &meta,
                &idem2,
                response,
                Event::new("attention.create", "attention", Some(id)),
            )
        })
    })
    .await;
    created_or_released(result, &idem, &state, &req).await
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let c = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let mut case = load_scoped(conn, &user, &raw)?;
            let missing =
                || AppError::not_found(format!("no attention `{raw_attention}` on this case"));
            let aid = uuid::Uuid::parse_str(&raw_attention)
                .map(Id)
                .map_err(|_| missing())?;
            let a = model::find_attention(conn, aid)?
                .filter(|a| a.case_id == case.id)
                .ok_or_else(missing)?;
            if !model::void_attention(conn, a.id, user.user_id, &reason)? {
                return Err(AppError::conflict(
                    "already_voided",
                    None,
                    "this attention is already voided",
                ));
            }
            let version = case.version;
            case.version += 1;
            case.updated_at = Ts::now();
            if !model::update_case(conn, &case, version)? {
                return Err(AppError::PreconditionFailed(
                    "the case changed meanwhile; retry".into(),
                ));
            }
            service::record_event(
                conn,
                &case,
                "attention.voided",
                Some(user.user_id),
                Some(a.attention_type_id),
                serde_json::json!({ "attention_id": a.id, "reason": reason }),
            )?;
            let event = Event::new("attention.void", "attention", Some(a.id.to_string()))
                .details(serde_json::json!({ "reason": reason }));
            answer_and_audit(conn, &user, &actor, &meta, case, event)
        })
    })
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let c = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let mut case = load_scoped(conn, &user, &raw)?;
            let expected = expected?;
            if case.version != expected {
                return Err(AppError::PreconditionFailed(format!(
                    "the case is at version {}, not {expected}",
                    case.version
                )));
            }
            let change =
                service::transition(conn, &mut case, b.to, b.outcome, b.reason.as_deref())?;
            case.version += 1;
            case.updated_at = Ts::now();
            if !model::update_case(conn, &case, expected)? {
                return Err(AppError::PreconditionFailed(
                    "the case changed meanwhile; read it again".into(),
                ));
            }
            service::record_event(
                conn,
                &case,
                "case.status_changed",
                Some(user.user_id),
                None,
                change.clone(),
            )?;
            let event =
                Event::new("case.transition", "case", Some(case.id.to_string())).details(change);
            answer_and_audit(conn, &user, &actor, &meta, case, event)
        })
    })
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let c = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let mut case = load_scoped(conn, &user, &raw)?;
            let expected = expected?;
            if case.version != expected {
                return Err(AppError::PreconditionFailed(format!(
                    "the case is at version {}, not {expected}",
                    case.version
                )));
            }
            let missing = || AppError::not_found(format!("no step `{raw_step}` on this case"));
            let sid = uuid::Uuid::parse_str(&raw_step)
                .map(Id)
                .map_err(|_| missing())?;
            let step = model::steps_of(conn, case.id)?
                .into_iter()
                .find(|s| s.id == sid)
                .ok_or_else(missing)?;
            if !model::decide_step(conn, step.id, &b.status, reason.as_deref(), user.user_id)? {
                return Err(AppError::conflict(
                    "already_decided",
                    None,
                    format!("this step is already {}", step.status),
                ));
            }
            case.version += 1;
            case.updated_at = Ts::now();
            if !model::update_case(conn, &case, expected)? {
                return Err(AppError::PreconditionFailed(
                    "the case changed meanwhile; read it again".into(),
                ));
            }
            let details =
                serde_json::json!({ "step": step.title_es, "status": b.status, "reason": reason });
            service::record_event(
                conn,
                &case,
                "case.step_decided",
                Some(user.user_id),
                Some(step.attention_type_id),
                details.clone(),
            )?;
            let event = Event::new("case.step", "case", Some(case.id.to_string())).details(details);
            answer_and_audit(conn, &user, &actor, &meta, case, event)
        })
    })
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
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let case = load_scoped(conn, &user, &raw)?;
            service::record_event(
                conn,
                &case,
                "case.note",
                Some(user.user_id),
                None,
                serde_json::json!({ "text": note }),
            )?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("case.note", "case", Some(case.id.to_string())).subject(case.person_id),
            )?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::Created().finish())
}
