//! Detention follow-up on a case: where and since when, the 24-hour first
//! consular contact, legal situation and lawyer, visits, hearings, the next
//! visit as a task, and each consulate's list of detainees.

use crate::domain::Stored;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cases::load_scoped;
use super::support::{past_date, scoped_consulate};
use super::{
    access, changed_meanwhile, check_version, if_match_version, optional_text, text, window, Page,
};
use crate::api::RequestOrigin as _;
use crate::api::Viewing as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::access::View;
use crate::domain::person::mask_name;
use crate::domain::support::{LawyerKind, LegalSituation, VisitKind};
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::cases::{self as cases_model, Case, Task};
use crate::models::persons as persons_model;
use crate::models::support::{self as model, Detention, Hearing, Visit};
use crate::services::access as access_service;
use crate::services::cases as case_service;
use crate::AppState;

pub use crate::domain::support::FIRST_CONTACT_HOURS;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LawyerBody {
    pub kind: LawyerKind,
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// Phone or e-mail.
    #[schema(max_length = 200)]
    pub contact: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDetentionRequest {
    /// Prison, police station or immigration centre.
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub place: String,
    #[schema(max_length = 200)]
    pub place_city: Option<String>,
    pub arrested_on: NaiveDate,
    /// When the consulate learnt of the detention.
    pub notified_at: chrono::DateTime<chrono::Utc>,
    /// The first consular contact with the detainee, if it already happened.
    pub first_contact_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `arrested` by default.
    pub legal_situation: Option<LegalSituation>,
    #[schema(max_length = 2000)]
    pub charges: Option<String>,
    pub lawyer: Option<LawyerBody>,
    /// Creates a follow-up task due that day.
    pub next_visit_due: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDetentionRequest {
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub place: Option<String>,
    #[schema(max_length = 200)]
    pub place_city: Option<String>,
    pub arrested_on: Option<NaiveDate>,
    pub notified_at: Option<chrono::DateTime<chrono::Utc>>,
    pub first_contact_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `released` or `deported` ends the follow-up (`released_on` defaults to today).
    pub legal_situation: Option<LegalSituation>,
    pub released_on: Option<NaiveDate>,
    #[schema(max_length = 2000)]
    pub charges: Option<String>,
    pub lawyer: Option<LawyerBody>,
    pub next_visit_due: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitRequest {
    pub visited_at: chrono::DateTime<chrono::Utc>,
    pub kind: VisitKind,
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
    /// The next visit: closes the open visit task and creates a new one.
    pub next_visit_due: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HearingRequest {
    pub held_on: NaiveDate,
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub court: String,
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    pub outcome: String,
    /// Creates a task due that day.
    pub next_hearing_on: Option<NaiveDate>,
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VisitResponse {
    pub id: Id,
    pub visited_at: Ts,
    pub kind: VisitKind,
    pub visitor_id: Option<Id>,
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HearingResponse {
    pub id: Id,
    pub held_on: NaiveDate,
    pub court: String,
    pub outcome: String,
    pub next_hearing_on: Option<NaiveDate>,
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FirstContact {
    pub at: Option<Ts>,
    /// Hours from notification to first contact (so far, while pending).
    pub hours_after_notification: f64,
    /// No contact yet.
    pub pending: bool,
    /// More than 24 hours after notification (or pending past 24 hours).
    pub breach: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetentionResponse {
    pub id: Id,
    pub case_id: Id,
    pub consulate_id: Id,
    pub place: String,
    pub place_city: Option<String>,
    pub arrested_on: NaiveDate,
    pub notified_at: Ts,
    pub first_contact: FirstContact,
    pub legal_situation: LegalSituation,
    pub charges: Option<String>,
    pub lawyer: LawyerBody,
    pub next_visit_due: Option<NaiveDate>,
    pub next_visit_task_id: Option<Id>,
    pub last_visit_at: Option<Ts>,
    pub days_since_last_visit: Option<i64>,
    pub released_on: Option<NaiveDate>,
    pub visits: Vec<VisitResponse>,
    pub hearings: Vec<HearingResponse>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

fn first_contact(d: &Detention, now: Ts) -> FirstContact {
    let until = d.first_contact_at.unwrap_or(now);
    let minutes = (until.0 - d.notified_at.0).num_minutes();
    FirstContact {
        at: d.first_contact_at,
        hours_after_notification: (minutes as f64 / 6.0).round() / 10.0,
        pending: d.first_contact_at.is_none(),
        breach: until.0 - d.notified_at.0 > Duration::hours(FIRST_CONTACT_HOURS),
    }
}

fn days_since(t: Option<Ts>, now: Ts) -> Option<i64> {
    t.map(|t| (now.0.date_naive() - t.0.date_naive()).num_days())
}

/// A detention record whose case's text the caller may not read: where,
/// why, who defends and what was said are withheld.
fn withhold_detention(d: &mut DetentionResponse) {
    use super::disclosure::{withheld, WITHHELD};
    d.place = WITHHELD.into();
    d.place_city = withheld(&d.place_city);
    d.charges = withheld(&d.charges);
    d.lawyer.name = withheld(&d.lawyer.name);
    d.lawyer.contact = withheld(&d.lawyer.contact);
    for v in &mut d.visits {
        v.notes = withheld(&v.notes);
    }
    for h in &mut d.hearings {
        h.court = WITHHELD.into();
        h.outcome = WITHHELD.into();
        h.notes = withheld(&h.notes);
    }
}

fn detention_response(
    d: Detention,
    visits: Vec<Visit>,
    hearings: Vec<Hearing>,
) -> Result<DetentionResponse, AppError> {
    let now = Ts::now();
    Ok(DetentionResponse {
        first_contact: first_contact(&d, now),
        days_since_last_visit: days_since(d.last_visit_at, now),
        legal_situation: LegalSituation::stored(&d.legal_situation)?,
        lawyer: LawyerBody {
            kind: LawyerKind::stored(&d.lawyer_kind)?,
            name: d.lawyer_name.clone(),
            contact: d.lawyer_contact.clone(),
        },
        visits: visits
            .into_iter()
            .map(|v| {
                Ok(VisitResponse {
                    kind: VisitKind::stored(&v.kind)?,
                    id: v.id,
                    visited_at: v.visited_at,
                    visitor_id: v.visitor_id,
                    notes: v.notes,
                })
            })
            .collect::<Result<_, AppError>>()?,
        hearings: hearings
            .into_iter()
            .map(|h| HearingResponse {
                id: h.id,
                held_on: h.held_on,
                court: h.court,
                outcome: h.outcome,
                next_hearing_on: h.next_hearing_on,
                notes: h.notes,
            })
            .collect(),
        id: d.id,
        case_id: d.case_id,
        consulate_id: d.consulate_id,
        place: d.place,
        place_city: d.place_city,
        arrested_on: d.arrested_on,
        notified_at: d.notified_at,
        charges: d.charges,
        next_visit_due: d.next_visit_due,
        next_visit_task_id: d.next_visit_task_id,
        last_visit_at: d.last_visit_at,
        released_on: d.released_on,
        version: d.version,
        created_at: d.created_at,
        updated_at: d.updated_at,
    })
}

fn full_response(conn: &mut DbConn, d: Detention) -> Result<DetentionResponse, AppError> {
    let visits = model::visits_of(conn, d.id)?;
    let hearings = model::hearings_of(conn, d.id)?;
    detention_response(d, visits, hearings)
}

fn respond(d: &DetentionResponse, created: bool) -> HttpResponse {
    super::with_etag(
        created,
        d.version,
        format!("/api/v1/cases/{}/detention", d.case_id),
        d,
    )
}

fn not_in_future(field: &str, t: chrono::DateTime<chrono::Utc>) -> Result<Ts, AppError> {
    // a minute of grace for clocks
    if t > chrono::Utc::now() + Duration::minutes(1) {
        return Err(AppError::invalid(field, "is in the future"));
    }
    Ok(Ts(t))
}

fn end_of_day(d: NaiveDate) -> Ts {
    Ts(
        d.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default())
            .and_utc(),
    )
}

/// Creates a follow-up task on the case and writes it to the timeline.
fn follow_up_task(
    conn: &mut DbConn,
    case: &Case,
    user: Id,
    title: String,
    due: NaiveDate,
) -> Result<Id, AppError> {
    let task = Task {
        id: Id::new(),
        case_id: case.id,
        consulate_id: case.consulate_id,
        title,
        assignee_id: case.assigned_officer_id,
        due_at: Some(end_of_day(due)),
        done_at: None,
        case_step_id: None,
        created_by: Some(user),
        created_at: Ts::now(),
    };
    cases_model::insert_task(conn, &task)?;
    case_service::record_event(
        conn,
        case,
        "task.created",
        Some(user),
        None,
        serde_json::json!({ "task_id": task.id, "title": task.title, "due_at": task.due_at }),
    )?;
    Ok(task.id)
}

/// Points the detention's visit task at `due`: moves the open one, or
/// creates one.
fn schedule_visit(
    conn: &mut DbConn,
    case: &Case,
    user: Id,
    d: &mut Detention,
    due: NaiveDate,
) -> Result<(), AppError> {
    if let Some(task) = d.next_visit_task_id {
        if model::reschedule_task(conn, task, end_of_day(due))? {
            d.next_visit_due = Some(due);
            return Ok(());
        }
    }
    let title = format!("Visitar al detenido en {}", d.place);
    d.next_visit_task_id = Some(follow_up_task(conn, case, user, title, due)?);
    d.next_visit_due = Some(due);
    Ok(())
}

fn lawyer_fields(d: &mut Detention, lawyer: Option<&LawyerBody>) -> Result<(), AppError> {
    if let Some(l) = lawyer {
        d.lawyer_kind = l.kind.as_str().to_owned();
        d.lawyer_name = optional_text("body.lawyer.name", l.name.as_deref(), 200)?;
        d.lawyer_contact = optional_text("body.lawyer.contact", l.contact.as_deref(), 200)?;
    }
    Ok(())
}

fn check_dates(d: &Detention) -> Result<(), AppError> {
    if d.notified_at.0.date_naive() < d.arrested_on {
        return Err(AppError::invalid(
            "body.notified_at",
            "is before the arrest",
        ));
    }
    if d.first_contact_at
        .is_some_and(|f| f.0.date_naive() < d.arrested_on)
    {
        return Err(AppError::invalid(
            "body.first_contact_at",
            "is before the arrest",
        ));
    }
    if d.released_on.is_some_and(|r| r < d.arrested_on) {
        return Err(AppError::invalid(
            "body.released_on",
            "is before the arrest",
        ));
    }
    Ok(())
}

/// Open the detention record of a case (one per case).
#[utoipa::path(
    tag = "detention",
    operation_id = "open_detention",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    request_body = OpenDetentionRequest,
    responses(
        (status = 201, body = DetentionResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The case already has one", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/detention")]
pub async fn open_detention(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<OpenDetentionRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::OPEN_DETENTION)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let case = load_scoped(conn, &user, &raw)?;
            if model::detention_of_case(conn, case.id)?.is_some() {
                return Err(AppError::conflict(
                    "detention_exists",
                    None,
                    "the case already has a detention record; change it with PATCH",
                ));
            }
            let situation = b.legal_situation.unwrap_or(LegalSituation::Arrested);
            if situation.ends_detention() {
                return Err(AppError::invalid(
                    "body.legal_situation",
                    "a detention is opened for someone still held",
                ));
            }
            let now = Ts::now();
            let mut d = Detention {
                id: Id::new(),
                case_id: case.id,
                person_id: case.person_id,
                consulate_id: case.consulate_id,
                place: text("body.place", &b.place, 300)?,
                place_city: optional_text("body.place_city", b.place_city.as_deref(), 200)?,
                arrested_on: past_date("body.arrested_on", b.arrested_on)?,
                notified_at: not_in_future("body.notified_at", b.notified_at)?,
                first_contact_at: b
                    .first_contact_at
                    .map(|t| not_in_future("body.first_contact_at", t))
                    .transpose()?,
                legal_situation: situation.as_str().to_owned(),
                charges: optional_text("body.charges", b.charges.as_deref(), 2000)?,
                lawyer_kind: LawyerKind::None.as_str().to_owned(),
                lawyer_name: None,
                lawyer_contact: None,
                next_visit_due: None,
                next_visit_task_id: None,
                last_visit_at: None,
                released_on: None,
                version: 1,
                created_by: Some(user.user_id),
                created_at: now,
                updated_at: now,
            };
            lawyer_fields(&mut d, b.lawyer.as_ref())?;
            check_dates(&d)?;
            // the task points at the detention, so the detention comes first
            let next_visit = b.next_visit_due;
            model::insert_detention(conn, &d)?;
            if let Some(due) = next_visit {
                schedule_visit(conn, &case, user.user_id, &mut d, due)?;
                model::update_detention(conn, &d, d.version)?;
            }
            let fc = first_contact(&d, now);
            case_service::record_event(
                conn,
                &case,
                "detention.opened",
                Some(user.user_id),
                None,
                serde_json::json!({
                    "detention_id": d.id,
                    "place": d.place,
                    "arrested_on": d.arrested_on,
                    "notified_at": d.notified_at,
                    "first_contact_at": d.first_contact_at,
                    "first_contact_breach": fc.breach,
                }),
            )?;
            let response = detention_response(d, Vec::new(), Vec::new())?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new("detention.open", "detention", Some(response.id.to_string()))
                    .subject(case.person_id),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond(&response, true))
}

/// The detention record of a case, with its visits and hearings.
#[utoipa::path(
    tag = "detention",
    operation_id = "get_detention",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, body = DetentionResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/detention")]
pub async fn get_detention(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::GET_DETENTION)?;
    let raw = path.into_inner();
    let meta = RequestMeta::of(&req);
    let response = db::run(&state.pool, move |conn| {
        let case = load_scoped(conn, &user, &raw)?;
        let d = model::detention_of_case(conn, case.id)?
            .ok_or_else(|| AppError::not_found("the case has no detention record"))?;
        let mut one = [full_response(conn, d)?];
        super::disclosure::screen(
            conn,
            &user,
            &meta,
            "detention.read",
            &mut one,
            |d| d.case_id,
            withhold_detention,
        )?;
        let [response] = one;
        Ok(response)
    })
    .await?;
    Ok(respond(&response, false))
}

/// Correct or advance the detention record (needs `If-Match`).
#[utoipa::path(
    tag = "detention",
    operation_id = "update_detention",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id"), ("If-Match" = String, Header, description = "ETag of the version being changed")),
    request_body = UpdateDetentionRequest,
    responses(
        (status = 200, body = DetentionResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/cases/{id}/detention")]
pub async fn update_detention(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<UpdateDetentionRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::UPDATE_DETENTION)?;
    let raw = path.into_inner();
    let expected = if_match_version(&req);
    let b = body.into_inner()?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let case = load_scoped(conn, &user, &raw)?;
            let current = model::detention_of_case(conn, case.id)?
                .ok_or_else(|| AppError::not_found("the case has no detention record"))?;
            let expected = expected?;
            check_version(current.version, expected, "detention record")?;
            let mut next = current.clone();
            if let Some(p) = &b.place {
                next.place = text("body.place", p, 300)?;
            }
            if b.place_city.is_some() {
                next.place_city = optional_text("body.place_city", b.place_city.as_deref(), 200)?;
            }
            if let Some(a) = b.arrested_on {
                next.arrested_on = past_date("body.arrested_on", a)?;
            }
            if let Some(n) = b.notified_at {
                next.notified_at = not_in_future("body.notified_at", n)?;
            }
            if let Some(f) = b.first_contact_at {
                next.first_contact_at = Some(not_in_future("body.first_contact_at", f)?);
            }
            if b.charges.is_some() {
                next.charges = optional_text("body.charges", b.charges.as_deref(), 2000)?;
            }
            lawyer_fields(&mut next, b.lawyer.as_ref())?;
            if let Some(s) = b.legal_situation {
                next.legal_situation = s.as_str().to_owned();
                if s.ends_detention() {
                    next.released_on = Some(past_date(
                        "body.released_on",
                        b.released_on
                            .unwrap_or_else(|| chrono::Utc::now().date_naive()),
                    )?);
                } else {
                    next.released_on = None;
                }
            } else if b.released_on.is_some() {
                return Err(AppError::invalid(
                    "body.released_on",
                    "set legal_situation to released or deported with it",
                ));
            }
            check_dates(&next)?;
            if next.released_on.is_some() {
                if let Some(t) = next.next_visit_task_id.take() {
                    cases_model::complete_task(conn, t)?;
                }
                next.next_visit_due = None;
            } else if let Some(due) = b.next_visit_due {
                schedule_visit(conn, &case, user.user_id, &mut next, due)?;
            }
            next.version += 1;
            next.updated_at = Ts::now();
            if !model::update_detention(conn, &next, expected)? {
                return Err(changed_meanwhile("detention record"));
            }
            let changes = super::field_changes(&current, &next, &["version", "updated_at"]);
            case_service::record_event(
                conn,
                &case,
                "detention.updated",
                Some(user.user_id),
                None,
                serde_json::json!({ "detention_id": next.id, "changes": changes }),
            )?;
            let response = full_response(conn, next)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new(
                    "detention.update",
                    "detention",
                    Some(response.id.to_string()),
                )
                .subject(case.person_id)
                .details(serde_json::json!({ "fields": changes.keys().collect::<Vec<_>>() })),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond(&response, false))
}

/// Loads the case and its detention for a write.
fn scoped_detention(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
) -> Result<(Case, Detention), AppError> {
    let case = load_scoped(conn, user, raw)?;
    let d = model::detention_of_case(conn, case.id)?
        .ok_or_else(|| AppError::not_found("the case has no detention record"))?;
    Ok((case, d))
}

/// Log a visit (or call) to the detainee. The first one is the first
/// consular contact when none was recorded; it closes the open visit task.
#[utoipa::path(
    tag = "detention",
    operation_id = "add_detention_visit",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    request_body = VisitRequest,
    responses(
        (status = 201, body = DetentionResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/detention/visits")]
pub async fn add_detention_visit(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<VisitRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::ADD_DETENTION_VISIT)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (case, current) = scoped_detention(conn, &user, &raw)?;
            let visited_at = not_in_future("body.visited_at", b.visited_at)?;
            if visited_at.0.date_naive() < current.arrested_on {
                return Err(AppError::invalid("body.visited_at", "is before the arrest"));
            }
            let visit = Visit {
                id: Id::new(),
                detention_id: current.id,
                visited_at,
                kind: b.kind.as_str().to_owned(),
                visitor_id: Some(user.user_id),
                notes: optional_text("body.notes", b.notes.as_deref(), 4000)?,
                created_at: Ts::now(),
            };
            model::insert_visit(conn, &visit)?;
            let mut next = current.clone();
            if next.first_contact_at.is_none_or(|f| visited_at < f) {
                next.first_contact_at = Some(visited_at);
            }
            if next.last_visit_at.is_none_or(|l| visited_at > l) {
                next.last_visit_at = Some(visited_at);
            }
            if let Some(t) = next.next_visit_task_id.take() {
                cases_model::complete_task(conn, t)?;
                next.next_visit_due = None;
            }
            if let Some(due) = b.next_visit_due {
                if next.released_on.is_some() {
                    return Err(AppError::invalid(
                        "body.next_visit_due",
                        "the person is no longer detained",
                    ));
                }
                schedule_visit(conn, &case, user.user_id, &mut next, due)?;
            }
            next.version += 1;
            next.updated_at = Ts::now();
            if !model::update_detention(conn, &next, current.version)? {
                return Err(AppError::PreconditionFailed(
                    "the detention record changed meanwhile; retry".into(),
                ));
            }
            case_service::record_event(
                conn,
                &case,
                "detention.visit",
                Some(user.user_id),
                None,
                serde_json::json!({
                    "detention_id": next.id,
                    "visit_id": visit.id,
                    "visited_at": visit.visited_at,
                    "kind": visit.kind,
                    "first_contact": next.first_contact_at == Some(visited_at),
                }),
            )?;
            let response = full_response(conn, next)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new(
                    "detention.visit",
                    "detention",
                    Some(response.id.to_string()),
                )
                .subject(case.person_id),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond(&response, true))
}

/// Record a hearing and its outcome; a next hearing date becomes a task.
#[utoipa::path(
    tag = "detention",
    operation_id = "add_detention_hearing",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    request_body = HearingRequest,
    responses(
        (status = 201, body = DetentionResponse, headers(("ETag" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/detention/hearings")]
pub async fn add_detention_hearing(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: JsonBody<HearingRequest>,
) -> Result<HttpResponse, AppError> {
    user.require(&access::ADD_DETENTION_HEARING)?;
    let raw = path.into_inner();
    let b = body.into_inner()?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let response = db::run(&state.pool, move |conn| {
        db::write_tx::<_, AppError, _>(conn, |conn| {
            let (case, current) = scoped_detention(conn, &user, &raw)?;
            let held_on = past_date("body.held_on", b.held_on)?;
            if held_on < current.arrested_on {
                return Err(AppError::invalid("body.held_on", "is before the arrest"));
            }
            if b.next_hearing_on.is_some_and(|n| n <= held_on) {
                return Err(AppError::invalid(
                    "body.next_hearing_on",
                    "must be after this hearing",
                ));
            }
            let hearing = Hearing {
                id: Id::new(),
                detention_id: current.id,
                held_on,
                court: text("body.court", &b.court, 300)?,
                outcome: text("body.outcome", &b.outcome, 4000)?,
                next_hearing_on: b.next_hearing_on,
                notes: optional_text("body.notes", b.notes.as_deref(), 4000)?,
                recorded_by: Some(user.user_id),
                created_at: Ts::now(),
            };
            model::insert_hearing(conn, &hearing)?;
            if let Some(next_on) = hearing.next_hearing_on {
                let title = format!("Audiencia en {}", hearing.court);
                follow_up_task(conn, &case, user.user_id, title, next_on)?;
            }
            let mut next = current.clone();
            next.version += 1;
            next.updated_at = Ts::now();
            if !model::update_detention(conn, &next, current.version)? {
                return Err(AppError::PreconditionFailed(
                    "the detention record changed meanwhile; retry".into(),
                ));
            }
            case_service::record_event(
                conn,
                &case,
                "detention.hearing",
                Some(user.user_id),
                None,
                serde_json::json!({
                    "detention_id": next.id,
                    "hearing_id": hearing.id,
                    "held_on": hearing.held_on,
                    "court": hearing.court,
                    "outcome": hearing.outcome,
                    "next_hearing_on": hearing.next_hearing_on,
                }),
            )?;
            let response = full_response(conn, next)?;
            audit::record(
                conn,
                Some(&actor),
                &meta,
                Event::new(
                    "detention.hearing",
                    "detention",
                    Some(response.id.to_string()),
                )
                .subject(case.person_id),
            )?;
            Ok(response)
        })
    })
    .await?;
    Ok(respond(&response, true))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DetaineeQuery {
    /// Consulate id (national roles; staff see their own).
    pub consulate: Option<uuid::Uuid>,
    /// Include released and deported persons.
    pub include_released: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetaineeResponse {
    pub detention_id: Id,
    pub case_id: Id,
    pub consulate_id: Id,
    pub person_id: Id,
    /// Masked outside the owning consulate when the case is protected.
    pub name: String,
    pub place: String,
    pub place_city: Option<String>,
    pub legal_situation: LegalSituation,
    pub arrested_on: NaiveDate,
    pub days_detained: i64,
    pub last_visit_at: Option<Ts>,
    /// Days since the last visit; absent when never visited.
    pub days_since_last_visit: Option<i64>,
    pub next_visit_due: Option<NaiveDate>,
    /// The next visit's day has passed.
    pub visit_overdue: bool,
    pub first_contact_breach: bool,
    pub released_on: Option<NaiveDate>,
}

/// The detainees a consulate follows, those visited longest ago (or never)
/// first.
#[utoipa::path(
    tag = "detention",
    operation_id = "list_detainees",
    security(("bearer" = [])),
    params(DetaineeQuery),
    responses(
        (status = 200, body = Page<DetaineeResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/detentions")]
pub async fn list_detainees(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<DetaineeQuery>,
) -> Result<web::Json<Page<DetaineeResponse>>, AppError> {
    user.require(&access::LIST_DETAINEES)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let consulate = scoped_consulate(&user, q.consulate.map(Id));
    let meta = RequestMeta::of(&req);
    let (items, total) = db::run(&state.pool, move |conn| {
        let (rows, total) =
            model::list_detentions(conn, consulate, q.include_released.unwrap_or(false), window)?;
        let now = Ts::now();
        let today = now.0.date_naive();
        let mut items = Vec::with_capacity(rows.len());
        for d in rows {
            let name = match persons_model::find_person(conn, d.person_id)? {
                Some(p) => {
                    let view = access_service::person_access(conn, user.viewer(false), &p)?.view;
                    let full = format!(
                        "{} {} {}",
                        p.given_names,
                        p.first_surname,
                        p.second_surname.unwrap_or_default()
                    )
                    .trim()
                    .to_owned();
                    if view == View::Full {
                        full
                    } else {
                        mask_name(&full)
                    }
                }
                None => String::new(),
            };
            items.push(DetaineeResponse {
                name,
                first_contact_breach: first_contact(&d, now).breach,
                days_detained: (d.released_on.unwrap_or(today) - d.arrested_on).num_days(),
                days_since_last_visit: days_since(d.last_visit_at, now),
                visit_overdue: d.next_visit_due.is_some_and(|n| n < today),
                legal_situation: LegalSituation::stored(&d.legal_situation)?,
                detention_id: d.id,
                case_id: d.case_id,
                consulate_id: d.consulate_id,
                person_id: d.person_id,
                place: d.place,
                place_city: d.place_city,
                arrested_on: d.arrested_on,
                last_visit_at: d.last_visit_at,
                next_visit_due: d.next_visit_due,
                released_on: d.released_on,
            });
        }
        super::disclosure::screen(
            conn,
            &user,
            &meta,
            "detention.list",
            &mut items,
            |d| d.case_id,
            |d| {
                d.place = super::disclosure::WITHHELD.into();
                d.place_city = super::disclosure::withheld(&d.place_city);
            },
        )?;
        Ok::<_, AppError>((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}
