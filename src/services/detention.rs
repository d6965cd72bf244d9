//! Detention follow-up rules: one record per case, the 24-hour first
//! consular contact, dates that cannot precede the arrest, visits (the
//! earliest is the first contact), hearings, and the next visit or hearing
//! as a task on the case.
//!
//! Writes run inside [`crate::services::journal::commit`]; field names in
//! errors are those of the input, placed in the request by the API.

use chrono::{Duration, NaiveDate, NaiveTime};

use crate::audit::Event;
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::support::{LawyerKind, LegalSituation, VisitKind, FIRST_CONTACT_HOURS};
use crate::domain::timeline::TimelineKind;
use crate::error::AppError;
use crate::models::cases::{self as cases_model, Case, Task};
use crate::models::support::{self as model, Detention, Hearing, Visit};
use crate::services::input::{
    changed_meanwhile, check_version, field_changes, optional_text, past_date, text,
};
use crate::services::journal::Journal;

/// Whether the first consular contact came (or, still pending, is) later
/// than `FIRST_CONTACT_HOURS` after the notification.
pub fn first_contact_breached(d: &Detention, now: Ts) -> bool {
    let until = d.first_contact_at.unwrap_or(now);
    until.0 - d.notified_at.0 > Duration::hours(FIRST_CONTACT_HOURS)
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

/// Creates a follow-up task on the case, on its timeline too.
fn follow_up_task(
    conn: &mut DbConn,
    journal: &mut Journal,
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
    journal.case_event(
        case,
        TimelineKind::TaskCreated,
        Some(user),
        None,
        serde_json::json!({ "task_id": task.id, "title": task.title, "due_at": task.due_at }),
    );
    Ok(task.id)
}

/// Points the detention's visit task at `due`: moves the open one, or
/// creates one.
fn schedule_visit(
    conn: &mut DbConn,
    journal: &mut Journal,
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
    d.next_visit_task_id = Some(follow_up_task(conn, journal, case, user, title, due)?);
    d.next_visit_due = Some(due);
    Ok(())
}

/// Who defends the detainee.
pub struct Lawyer {
    pub kind: LawyerKind,
    pub name: Option<String>,
    pub contact: Option<String>,
}

fn set_lawyer(d: &mut Detention, lawyer: Option<&Lawyer>) -> Result<(), AppError> {
    if let Some(l) = lawyer {
        d.lawyer_kind = l.kind.as_str().to_owned();
        d.lawyer_name = optional_text("lawyer.name", l.name.as_deref(), 200)?;
        d.lawyer_contact = optional_text("lawyer.contact", l.contact.as_deref(), 200)?;
    }
    Ok(())
}

fn check_dates(d: &Detention) -> Result<(), AppError> {
    if d.notified_at.0.date_naive() < d.arrested_on {
        return Err(AppError::invalid("notified_at", "is before the arrest"));
    }
    if d.first_contact_at
        .is_some_and(|f| f.0.date_naive() < d.arrested_on)
    {
        return Err(AppError::invalid(
            "first_contact_at",
            "is before the arrest",
        ));
    }
    if d.released_on.is_some_and(|r| r < d.arrested_on) {
        return Err(AppError::invalid("released_on", "is before the arrest"));
    }
    Ok(())
}

/// The case and its detention record, for a write.
pub fn of_case(conn: &mut DbConn, case: Case) -> Result<(Case, Detention), AppError> {
    let d = model::detention_of_case(conn, case.id)?
        .ok_or_else(|| AppError::not_found("the case has no detention record"))?;
    Ok((case, d))
}

fn changed_meanwhile_retry() -> AppError {
    AppError::PreconditionFailed("the detention record changed meanwhile; retry".into())
}

/// A detention to open.
pub struct NewDetention {
    pub place: String,
    pub place_city: Option<String>,
    pub arrested_on: NaiveDate,
    pub notified_at: chrono::DateTime<chrono::Utc>,
    pub first_contact_at: Option<chrono::DateTime<chrono::Utc>>,
    pub legal_situation: Option<LegalSituation>,
    pub charges: Option<String>,
    pub lawyer: Option<Lawyer>,
    pub next_visit_due: Option<NaiveDate>,
}

/// Opens the detention record of a case (one per case).
pub fn open(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    case: &Case,
    new: NewDetention,
) -> Result<Detention, AppError> {
    if model::detention_of_case(conn, case.id)?.is_some() {
        return Err(AppError::conflict(
            ErrorCode::DetentionExists,
            None,
            "the case already has a detention record; change it with PATCH",
        ));
    }
    let situation = new.legal_situation.unwrap_or(LegalSituation::Arrested);
    if situation.ends_detention() {
        return Err(AppError::invalid(
            "legal_situation",
            "a detention is opened for someone still held",
        ));
    }
    let now = Ts::now();
    let mut d = Detention {
        id: Id::new(),
        case_id: case.id,
        person_id: case.person_id,
        consulate_id: case.consulate_id,
        place: text("place", &new.place, 300)?,
        place_city: optional_text("place_city", new.place_city.as_deref(), 200)?,
        arrested_on: past_date("arrested_on", new.arrested_on)?,
        notified_at: not_in_future("notified_at", new.notified_at)?,
        first_contact_at: new
            .first_contact_at
            .map(|t| not_in_future("first_contact_at", t))
            .transpose()?,
        legal_situation: situation.as_str().to_owned(),
        charges: optional_text("charges", new.charges.as_deref(), 2000)?,
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
    set_lawyer(&mut d, new.lawyer.as_ref())?;
    check_dates(&d)?;
    // the task points at the detention, so the detention comes first
    model::insert_detention(conn, &d)?;
    if let Some(due) = new.next_visit_due {
        schedule_visit(conn, journal, case, user.user_id, &mut d, due)?;
        model::update_detention(conn, &d, d.version)?;
    }
    journal.case_event(
        case,
        TimelineKind::DetentionOpened,
        Some(user.user_id),
        None,
        serde_json::json!({
            "detention_id": d.id,
            "place": d.place,
            "arrested_on": d.arrested_on,
            "notified_at": d.notified_at,
            "first_contact_at": d.first_contact_at,
            "first_contact_breach": first_contact_breached(&d, now),
        }),
    );
    journal.audit(
        Event::new(
            AuditAction::DetentionOpen,
            "detention",
            Some(d.id.to_string()),
        )
        .subject(case.person_id),
    );
    Ok(d)
}

/// A change of the record; `None` keeps a field.
#[derive(Default)]
pub struct DetentionChange {
    pub place: Option<String>,
    pub place_city: Option<String>,
    pub arrested_on: Option<NaiveDate>,
    pub notified_at: Option<chrono::DateTime<chrono::Utc>>,
    pub first_contact_at: Option<chrono::DateTime<chrono::Utc>>,
    pub legal_situation: Option<LegalSituation>,
    pub released_on: Option<NaiveDate>,
    pub charges: Option<String>,
    pub lawyer: Option<Lawyer>,
    pub next_visit_due: Option<NaiveDate>,
}

/// Changes the record at version `expected`; release or deportation ends
/// the follow-up (the open visit task is closed).
pub fn update(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    case: Case,
    expected: Result<i32, AppError>,
    change: DetentionChange,
) -> Result<Detention, AppError> {
    let (case, current) = of_case(conn, case)?;
    let expected = expected?;
    check_version(current.version, expected, "detention record")?;
    let mut next = current.clone();
    if let Some(p) = &change.place {
        next.place = text("place", p, 300)?;
    }
    if change.place_city.is_some() {
        next.place_city = optional_text("place_city", change.place_city.as_deref(), 200)?;
    }
    if let Some(a) = change.arrested_on {
        next.arrested_on = past_date("arrested_on", a)?;
    }
    if let Some(n) = change.notified_at {
        next.notified_at = not_in_future("notified_at", n)?;
    }
    if let Some(f) = change.first_contact_at {
        next.first_contact_at = Some(not_in_future("first_contact_at", f)?);
    }
    if change.charges.is_some() {
        next.charges = optional_text("charges", change.charges.as_deref(), 2000)?;
    }
    set_lawyer(&mut next, change.lawyer.as_ref())?;
    set_situation(&mut next, &change)?;
    check_dates(&next)?;
    if next.released_on.is_some() {
        if let Some(t) = next.next_visit_task_id.take() {
            cases_model::complete_task(conn, t)?;
        }
        next.next_visit_due = None;
    } else if let Some(due) = change.next_visit_due {
        schedule_visit(conn, journal, &case, user.user_id, &mut next, due)?;
    }
    next.version += 1;
    next.updated_at = Ts::now();
    if !model::update_detention(conn, &next, expected)? {
        return Err(changed_meanwhile("detention record"));
    }
    let changes = field_changes(&current, &next, &["version", "updated_at"]);
    journal.case_event(
        &case,
        TimelineKind::DetentionUpdated,
        Some(user.user_id),
        None,
        serde_json::json!({ "detention_id": next.id, "changes": changes }),
    );
    journal.audit(
        Event::new(
            AuditAction::DetentionUpdate,
            "detention",
            Some(next.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "fields": changes.keys().collect::<Vec<_>>() })),
    );
    Ok(next)
}

/// The legal situation, and the release date that goes with its end.
fn set_situation(next: &mut Detention, change: &DetentionChange) -> Result<(), AppError> {
    if let Some(s) = change.legal_situation {
        next.legal_situation = s.as_str().to_owned();
        next.released_on = if s.ends_detention() {
            Some(past_date(
                "released_on",
                change
                    .released_on
                    .unwrap_or_else(|| chrono::Utc::now().date_naive()),
            )?)
        } else {
            None
        };
    } else if change.released_on.is_some() {
        return Err(AppError::invalid(
            "released_on",
            "set legal_situation to released or deported with it",
        ));
    }
    Ok(())
}

/// A visit (or call) to the detainee.
pub struct NewVisit {
    pub visited_at: chrono::DateTime<chrono::Utc>,
    pub kind: VisitKind,
    pub notes: Option<String>,
    pub next_visit_due: Option<NaiveDate>,
}

/// Logs a visit: the earliest is the first consular contact; it closes the
/// open visit task, and a next date opens another.
pub fn add_visit(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    case: Case,
    new: NewVisit,
) -> Result<Detention, AppError> {
    let (case, current) = of_case(conn, case)?;
    let visited_at = not_in_future("visited_at", new.visited_at)?;
    if visited_at.0.date_naive() < current.arrested_on {
        return Err(AppError::invalid("visited_at", "is before the arrest"));
    }
    let visit = Visit {
        id: Id::new(),
        detention_id: current.id,
        visited_at,
        kind: new.kind.as_str().to_owned(),
        visitor_id: Some(user.user_id),
        notes: optional_text("notes", new.notes.as_deref(), 4000)?,
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
    if let Some(due) = new.next_visit_due {
        if next.released_on.is_some() {
            return Err(AppError::invalid(
                "next_visit_due",
                "the person is no longer detained",
            ));
        }
        schedule_visit(conn, journal, &case, user.user_id, &mut next, due)?;
    }
    next.version += 1;
    next.updated_at = Ts::now();
    if !model::update_detention(conn, &next, current.version)? {
        return Err(changed_meanwhile_retry());
    }
    journal.case_event(
        &case,
        TimelineKind::DetentionVisit,
        Some(user.user_id),
        None,
        serde_json::json!({
            "detention_id": next.id,
            "visit_id": visit.id,
            "visited_at": visit.visited_at,
            "kind": visit.kind,
            "first_contact": next.first_contact_at == Some(visited_at),
        }),
    );
    journal.audit(
        Event::new(
            AuditAction::DetentionVisit,
            "detention",
            Some(next.id.to_string()),
        )
        .subject(case.person_id),
    );
    Ok(next)
}

/// A hearing and its outcome.
pub struct NewHearing {
    pub held_on: NaiveDate,
    pub court: String,
    pub outcome: String,
    pub next_hearing_on: Option<NaiveDate>,
    pub notes: Option<String>,
}

/// Records a hearing; a next hearing date becomes a task.
pub fn add_hearing(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    case: Case,
    new: NewHearing,
) -> Result<Detention, AppError> {
    let (case, current) = of_case(conn, case)?;
    let held_on = past_date("held_on", new.held_on)?;
    if held_on < current.arrested_on {
        return Err(AppError::invalid("held_on", "is before the arrest"));
    }
    if new.next_hearing_on.is_some_and(|n| n <= held_on) {
        return Err(AppError::invalid(
            "next_hearing_on",
            "must be after this hearing",
        ));
    }
    let hearing = Hearing {
        id: Id::new(),
        detention_id: current.id,
        held_on,
        court: text("court", &new.court, 300)?,
        outcome: text("outcome", &new.outcome, 4000)?,
        next_hearing_on: new.next_hearing_on,
        notes: optional_text("notes", new.notes.as_deref(), 4000)?,
        recorded_by: Some(user.user_id),
        created_at: Ts::now(),
    };
    model::insert_hearing(conn, &hearing)?;
    if let Some(next_on) = hearing.next_hearing_on {
        let title = format!("Audiencia en {}", hearing.court);
        follow_up_task(conn, journal, &case, user.user_id, title, next_on)?;
    }
    let mut next = current.clone();
    next.version += 1;
    next.updated_at = Ts::now();
    if !model::update_detention(conn, &next, current.version)? {
        return Err(changed_meanwhile_retry());
    }
    journal.case_event(
        &case,
        TimelineKind::DetentionHearing,
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
    );
    journal.audit(
        Event::new(
            AuditAction::DetentionHearing,
            "detention",
            Some(next.id.to_string()),
        )
        .subject(case.person_id),
    );
    Ok(next)
}
