//! Detention follow-up on a case: where and since when, the 24-hour first
//! consular contact, legal situation and lawyer, visits, hearings, the next
//! visit as a task, and each consulate's list of detainees.

mod detainees;

pub use detainees::*;

use crate::domain::audit::AuditAction;
use crate::domain::Stored;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cases::load_scoped;
use super::support::scoped_consulate;
use super::write::write;
use super::{access, if_match_version, window, Page};
use crate::api::RequestOrigin as _;
use crate::api::Viewing as _;
use crate::audit::RequestMeta;
use crate::auth::AuthUser;
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::support::{LawyerKind, LegalSituation, VisitKind};
use crate::error::{AppError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::models::persons as persons_model;
use crate::models::support::{self as model, Detention, Hearing, Visit};
use crate::services::access as access_service;
use crate::services::detention::{
    self as service, DetentionChange, Lawyer, NewDetention, NewHearing, NewVisit,
};
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
        breach: service::first_contact_breached(d, now),
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

fn lawyer(l: LawyerBody) -> Lawyer {
    Lawyer {
        kind: l.kind,
        name: l.name,
        contact: l.contact,
    }
}

fn respond(d: &DetentionResponse, created: bool) -> HttpResponse {
    super::with_etag(
        created,
        d.version,
        format!("/api/v1/cases/{}/detention", d.case_id),
        d,
    )
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
    let new = NewDetention {
        place: b.place,
        place_city: b.place_city,
        arrested_on: b.arrested_on,
        notified_at: b.notified_at,
        first_contact_at: b.first_contact_at,
        legal_situation: b.legal_situation,
        charges: b.charges,
        lawyer: b.lawyer.map(lawyer),
        next_visit_due: b.next_visit_due,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let case = load_scoped(conn, &user, &raw)?;
            let d = service::open(conn, j, &user, &case, new).map_err(|e| e.under("body"))?;
            detention_response(d, Vec::new(), Vec::new())
        },
    )
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
            AuditAction::DetentionRead,
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
    let change = DetentionChange {
        place: b.place,
        place_city: b.place_city,
        arrested_on: b.arrested_on,
        notified_at: b.notified_at,
        first_contact_at: b.first_contact_at,
        legal_situation: b.legal_situation,
        released_on: b.released_on,
        charges: b.charges,
        lawyer: b.lawyer.map(lawyer),
        next_visit_due: b.next_visit_due,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let case = load_scoped(conn, &user, &raw)?;
            let d = service::update(conn, j, &user, case, expected, change)
                .map_err(|e| e.under("body"))?;
            full_response(conn, d)
        },
    )
    .await?;
    Ok(respond(&response, false))
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
    let new = NewVisit {
        visited_at: b.visited_at,
        kind: b.kind,
        notes: b.notes,
        next_visit_due: b.next_visit_due,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let case = load_scoped(conn, &user, &raw)?;
            let d = service::add_visit(conn, j, &user, case, new).map_err(|e| e.under("body"))?;
            full_response(conn, d)
        },
    )
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
    let new = NewHearing {
        held_on: b.held_on,
        court: b.court,
        outcome: b.outcome,
        next_hearing_on: b.next_hearing_on,
        notes: b.notes,
    };
    let response = write(
        &state,
        user.actor(),
        RequestMeta::of(&req),
        move |conn, j| {
            let case = load_scoped(conn, &user, &raw)?;
            let d = service::add_hearing(conn, j, &user, case, new).map_err(|e| e.under("body"))?;
            full_response(conn, d)
        },
    )
    .await?;
    Ok(respond(&response, true))
}
