//! Repatriation, return assistance (with the Returning Migrant Card) and
//! transfer of remains: each opened on a case with the steps of its kind,
//! moved through its statuses, and completed only with its last step done
//! and a return date.
//!
//! Writes run inside [`crate::services::journal::commit`]; field names in
//! errors are those of the input, placed in the request by the API.

use chrono::NaiveDate;

use crate::audit::Event;
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::support::{RepatriationKind, RepatriationStatus, StepStatus};
use crate::domain::timeline::TimelineKind;
use crate::domain::Stored;
use crate::error::AppError;
use crate::models::cases::{self as cases_model, Case};
use crate::models::support::{self as model, Repatriation, RepatriationStep};
use crate::services::input::{
    changed_meanwhile, check_version, field_changes, optional_text, past_date, text,
};
use crate::services::journal::Journal;

/// A repatriation the caller may act on, with its case.
pub fn load(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
) -> Result<(Repatriation, Case), AppError> {
    let missing = || AppError::not_found(format!("no repatriation `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let r = model::find_repatriation(conn, id)?.ok_or_else(missing)?;
    if !user.can_touch_consulate(r.consulate_id) {
        return Err(AppError::OutOfScope(format!("no repatriation `{raw}`")));
    }
    let case = cases_model::find_case(conn, r.case_id)?.ok_or_else(missing)?;
    Ok((r, case))
}

fn refuse_when_finished(r: &Repatriation) -> Result<(), AppError> {
    if r.status == "completed" || r.status == "cancelled" {
        return Err(AppError::conflict(
            ErrorCode::RepatriationFinished,
            None,
            format!("the repatriation is {}", r.status),
        ));
    }
    Ok(())
}

/// A new repatriation.
pub struct NewRepatriation {
    pub kind: RepatriationKind,
    pub destination: String,
    pub planned_on: Option<NaiveDate>,
    pub notes: Option<String>,
}

/// Opens a repatriation on an open case, with the steps of its kind.
pub fn create(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    case: &Case,
    new: NewRepatriation,
) -> Result<Repatriation, AppError> {
    if case.status == "closed" {
        return Err(AppError::conflict(
            ErrorCode::CaseClosed,
            None,
            "the case is closed; reopen it first",
        ));
    }
    let now = Ts::now();
    let r = Repatriation {
        id: Id::new(),
        case_id: case.id,
        person_id: case.person_id,
        consulate_id: case.consulate_id,
        kind: new.kind.as_str().to_owned(),
        status: RepatriationStatus::Planned.as_str().to_owned(),
        destination: text("destination", &new.destination, 300)?,
        planned_on: new.planned_on,
        return_date: None,
        migrant_card_issued: false,
        migrant_card_issued_on: None,
        notes: optional_text("notes", new.notes.as_deref(), 4000)?,
        version: 1,
        created_by: Some(user.user_id),
        created_at: now,
        updated_at: now,
    };
    let steps: Vec<RepatriationStep> = new
        .kind
        .steps()
        .iter()
        .enumerate()
        .map(|(i, s)| RepatriationStep {
            id: Id::new(),
            repatriation_id: r.id,
            step: (*s).to_owned(),
            position: i as i32 + 1,
            status: StepStatus::Pending.as_str().to_owned(),
            done_on: None,
            notes: None,
            decided_by: None,
            decided_at: None,
        })
        .collect();
    model::insert_repatriation(conn, &r, &steps)?;
    journal.case_event(
        case,
        TimelineKind::RepatriationCreated,
        Some(user.user_id),
        None,
        serde_json::json!({ "repatriation_id": r.id, "kind": r.kind, "destination": r.destination }),
    );
    journal.audit(
        Event::new(
            AuditAction::RepatriationCreate,
            "repatriation",
            Some(r.id.to_string()),
        )
        .subject(case.person_id),
    );
    Ok(r)
}

/// A change of a repatriation; `None` keeps a field.
#[derive(Default)]
pub struct RepatriationChange {
    pub status: Option<RepatriationStatus>,
    pub destination: Option<String>,
    pub planned_on: Option<NaiveDate>,
    pub return_date: Option<NaiveDate>,
    pub migrant_card_issued: Option<bool>,
    pub migrant_card_issued_on: Option<NaiveDate>,
    pub notes: Option<String>,
}

/// Changes a repatriation at version `expected`.
pub fn update(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
    change: RepatriationChange,
) -> Result<Repatriation, AppError> {
    let (current, case) = load(conn, user, raw)?;
    let expected = expected?;
    check_version(current.version, expected, "repatriation")?;
    refuse_when_finished(&current)?;
    let kind = RepatriationKind::stored(&current.kind)?;
    let mut next = current.clone();
    if let Some(d) = &change.destination {
        next.destination = text("destination", d, 300)?;
    }
    if change.planned_on.is_some() {
        next.planned_on = change.planned_on;
    }
    if let Some(d) = change.return_date {
        next.return_date = Some(past_date("return_date", d)?);
    }
    if change.notes.is_some() {
        next.notes = optional_text("notes", change.notes.as_deref(), 4000)?;
    }
    if change.migrant_card_issued.is_some() || change.migrant_card_issued_on.is_some() {
        set_migrant_card(&mut next, kind, &change)?;
    }
    if let Some(s) = change.status {
        move_status(conn, &current, &mut next, kind, s)?;
    }
    next.version += 1;
    next.updated_at = Ts::now();
    if !model::update_repatriation(conn, &next, expected)? {
        return Err(changed_meanwhile("repatriation"));
    }
    let changes = field_changes(&current, &next, &["version", "updated_at"]);
    journal.case_event(
        &case,
        TimelineKind::RepatriationUpdated,
        Some(user.user_id),
        None,
        serde_json::json!({ "repatriation_id": next.id, "changes": changes }),
    );
    journal.audit(
        Event::new(
            AuditAction::RepatriationUpdate,
            "repatriation",
            Some(next.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "fields": changes.keys().collect::<Vec<_>>() })),
    );
    Ok(next)
}

/// The Returning Migrant Card, which belongs to return assistance.
fn set_migrant_card(
    next: &mut Repatriation,
    kind: RepatriationKind,
    change: &RepatriationChange,
) -> Result<(), AppError> {
    if kind != RepatriationKind::ReturnAssistance {
        return Err(AppError::invalid(
            "migrant_card_issued",
            "the Returning Migrant Card belongs to return assistance",
        ));
    }
    let issued = change.migrant_card_issued.unwrap_or(true);
    next.migrant_card_issued = issued;
    next.migrant_card_issued_on = if issued {
        Some(past_date(
            "migrant_card_issued_on",
            change
                .migrant_card_issued_on
                .unwrap_or_else(|| chrono::Utc::now().date_naive()),
        )?)
    } else {
        None
    };
    Ok(())
}

/// A status change: along the allowed transitions, and to completed only
/// with the last step done and a return date.
fn move_status(
    conn: &mut DbConn,
    current: &Repatriation,
    next: &mut Repatriation,
    kind: RepatriationKind,
    to: RepatriationStatus,
) -> Result<(), AppError> {
    let from = RepatriationStatus::stored(&current.status)?;
    if to != from && !from.allowed_next().contains(&to) {
        return Err(AppError::conflict(
            ErrorCode::InvalidTransition,
            Some("status"),
            format!(
                "a {} repatriation cannot become {}",
                from.as_str(),
                to.as_str()
            ),
        ));
    }
    if to == RepatriationStatus::Completed {
        let steps = model::steps_of_repatriations(conn, &[current.id])?;
        let last_done = steps.last().is_some_and(|l| l.status == "done");
        if !last_done {
            return Err(AppError::conflict(
                ErrorCode::StepsPending,
                Some("status"),
                format!(
                    "the last step ({}) must be done to complete it",
                    kind.steps().last().copied().unwrap_or_default()
                ),
            ));
        }
        if next.return_date.is_none() {
            return Err(AppError::invalid(
                "return_date",
                "is required to complete the repatriation",
            ));
        }
    }
    next.status = to.as_str().to_owned();
    Ok(())
}

/// A decision on one step.
pub struct StepDecision {
    pub status: StepStatus,
    pub done_on: Option<NaiveDate>,
    pub notes: Option<String>,
}

/// Marks a step done, not needed, or pending again; the first decided step
/// puts a planned repatriation in progress.
pub fn decide_step(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    step_name: &str,
    decision: StepDecision,
) -> Result<Repatriation, AppError> {
    let (current, case) = load(conn, user, raw)?;
    refuse_when_finished(&current)?;
    let steps = model::steps_of_repatriations(conn, &[current.id])?;
    let last = steps.last().map(|s| s.id);
    let mut step = steps
        .into_iter()
        .find(|s| s.step == step_name)
        .ok_or_else(|| {
            AppError::not_found(format!("this {} has no step `{step_name}`", current.kind))
        })?;
    if decision.status == StepStatus::NotNeeded && Some(step.id) == last {
        return Err(AppError::invalid(
            "status",
            "the last step is what completes it; it cannot be skipped",
        ));
    }
    let from = step.status.clone();
    step.status = decision.status.as_str().to_owned();
    step.done_on = match decision.status {
        StepStatus::Done => Some(past_date(
            "done_on",
            decision
                .done_on
                .unwrap_or_else(|| chrono::Utc::now().date_naive()),
        )?),
        _ => None,
    };
    if decision.notes.is_some() {
        step.notes = optional_text("notes", decision.notes.as_deref(), 2000)?;
    }
    step.decided_by = Some(user.user_id);
    step.decided_at = Some(Ts::now());
    model::update_repatriation_step(conn, &step)?;
    let mut next = current.clone();
    if next.status == "planned" && decision.status != StepStatus::Pending {
        next.status = RepatriationStatus::InProgress.as_str().to_owned();
    }
    next.version += 1;
    next.updated_at = Ts::now();
    if !model::update_repatriation(conn, &next, current.version)? {
        return Err(AppError::PreconditionFailed(
            "the repatriation changed meanwhile; retry".into(),
        ));
    }
    journal.case_event(
        &case,
        TimelineKind::RepatriationStep,
        Some(user.user_id),
        None,
        serde_json::json!({
            "repatriation_id": next.id,
            "step": step.step,
            "from": from,
            "to": step.status,
            "done_on": step.done_on,
        }),
    );
    journal.audit(
        Event::new(
            AuditAction::RepatriationStep,
            "repatriation",
            Some(next.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "step": step_name, "status": decision.status.as_str() })),
    );
    Ok(next)
}
