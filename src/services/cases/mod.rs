//! Case rules: attentions (with protocol steps and deadline tasks), status
//! transitions with their closing conditions, and the case's timeline.

mod intake;
mod workflow;

pub use intake::*;
pub use workflow::*;

use crate::domain::error_code::ErrorCode;
use crate::domain::timeline::TimelineKind;
use crate::domain::Stored;
use chrono::NaiveDate;

use crate::audit::Event;
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::access::View;
use crate::domain::case::{CaseOutcome, CaseStatus, Flag, RequesterKind};
use crate::domain::catalogue::IntakeChannel;
use crate::domain::vocabulary::RecordedChannel;
use crate::error::{AppError, FieldError};
use crate::models::cases::{self as model, Attention, Case, CaseStep, Task};
use crate::models::catalogue::{self as catalogue, AttentionType};
use crate::models::persons::{self as persons, Person};
use crate::models::reference as reference_model;
use crate::services::access::{self as access_service, Viewer};
use crate::services::input::text;
use crate::services::journal::Journal;

/// Loads a case the caller may act on: officers and supervisors only their
/// consulate's (others read as not found).
pub fn load_scoped(conn: &mut DbConn, user: &AuthUser, raw: &str) -> Result<Case, AppError> {
    let missing = || AppError::not_found(format!("no case `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let c = model::find_case(conn, id)?.ok_or_else(missing)?;
    if !user.can_touch_consulate(c.consulate_id) {
        return Err(AppError::OutOfScope(format!("no case `{raw}`")));
    }
    Ok(c)
}

/// What a new attention says, resolved.
pub struct NewAttention {
    pub attention_type: AttentionType,
    pub attended_on: NaiveDate,
    pub channel: String,
    pub description: String,
    pub late_registration: bool,
}

/// Validates an attention's date against today and the case.
pub fn check_attention_date(
    field: &str,
    date: NaiveDate,
    late: bool,
    case_opened: Ts,
) -> Result<(), AppError> {
    let today = chrono::Utc::now().date_naive();
    if date > today {
        return Err(AppError::invalid(field, "is in the future"));
    }
    if date < case_opened.0.date_naive() && !late {
        return Err(AppError::invalid(
            field,
            "is before the case was opened; set late_registration to record an earlier attention",
        ));
    }
    Ok(())
}

/// Records an attention on a case. The first attention of a type with a
/// protocol copies the protocol's current version into the case's steps and
/// creates a task for every step with a deadline; a protected type makes the
/// case protected.
/// `steps` holds the case's protocol steps (loaded by the caller, empty for a
/// new case); steps this attention adds are appended to it.
fn add_attention(
    conn: &mut DbConn,
    journal: &mut Journal,
    case: &mut Case,
    new: NewAttention,
    actor: Id,
    steps: &mut Vec<CaseStep>,
) -> Result<Attention, AppError> {
    if new.attention_type.status != "active" {
        let hint = match new.attention_type.merged_into_id {
            Some(_) => "it was merged; use the type it resolves to",
            None => "it is deprecated",
        };
        return Err(AppError::invalid(
            "attention_type",
            format!(
                "{} cannot take new attentions: {hint}",
                new.attention_type.code
            ),
        ));
    }
    let (sex, birth) = persons::sex_and_birth(conn, case.person_id)?;
    let attention = Attention {
        id: Id::new(),
        case_id: case.id,
        person_id: case.person_id,
        consulate_id: case.consulate_id,
        attention_type_id: new.attention_type.id,
        attended_on: new.attended_on,
        channel: new.channel,
        officer_id: Some(actor),
        description: new.description,
        late_registration: new.late_registration,
        voided_at: None,
        voided_by: None,
        void_reason: None,
        created_at: Ts::now(),
        country_code: Some(case.country_code.clone()),
        person_sex: Some(sex),
        person_birth_date: birth,
    };
    model::insert_attention(conn, &attention)?;
    if !steps
        .iter()
        .any(|s| s.attention_type_id == attention.attention_type_id)
    {
        if let Some((version, protocol_steps)) =
            catalogue::protocol(conn, attention.attention_type_id, None)?
        {
            for step in protocol_steps {
                let due = step
                    .deadline_hours
                    .map(|h| Ts(case.opened_at.0 + chrono::Duration::hours(i64::from(h))));
                let case_step = CaseStep {
                    id: Id::new(),
                    case_id: case.id,
                    attention_type_id: attention.attention_type_id,
                    protocol_version_id: version.id,
                    position: step.position,
                    title_es: step.title_es.clone(),
                    title_en: step.title_en.clone(),
                    required_to_close: step.required_to_close,
                    due_at: due,
                    status: "pending".into(),
                    done_at: None,
                    waiver_reason: None,
                    decided_by: None,
                };
                model::insert_step(conn, &case_step)?;
                steps.push(case_step.clone());
                if due.is_some() {
                    model::insert_task(
                        conn,
                        &Task {
                            id: Id::new(),
                            case_id: case.id,
                            consulate_id: case.consulate_id,
                            title: step.title_es,
                            assignee_id: case.assigned_officer_id,
                            due_at: due,
                            done_at: None,
                            case_step_id: Some(case_step.id),
                            created_by: Some(actor),
                            created_at: Ts::now(),
                        },
                    )?;
                }
            }
        }
    }
    if new.attention_type.protected_by_default && !case.protected {
        case.protected = true;
        crate::services::access::case_protected(
            conn,
            case.person_id,
            case.consulate_id,
            Some(actor),
        )?;
    }
    // The history is ordered by when things happened: an attention entered
    // late sits at its own date, not at the day it was typed in.
    let today = chrono::Utc::now().date_naive();
    let at = if attention.attended_on < today {
        attention
            .attended_on
            .and_hms_opt(12, 0, 0)
            .map(|t| Ts(t.and_utc()))
            .unwrap_or_else(Ts::now)
    } else {
        Ts::now()
    };
    journal.case_event_at(
        case,
        at,
        TimelineKind::AttentionRecorded,
        Some(actor),
        Some(attention.attention_type_id),
        serde_json::json!({
            "attention_id": attention.id,
            "attention_type": new.attention_type.code,
            "attended_on": attention.attended_on,
            "channel": attention.channel,
            "late_registration": attention.late_registration,
        }),
    );
    Ok(attention)
}

/// Moves a case to `to`, checking the workflow and the closing conditions:
/// at least one attention, an outcome, and every required protocol step
/// done or waived.
pub fn transition(
    conn: &mut DbConn,
    case: &mut Case,
    to: CaseStatus,
    outcome: Option<CaseOutcome>,
    reason: Option<&str>,
) -> Result<serde_json::Value, AppError> {
    let from = CaseStatus::stored(&case.status)?;
    if !from.allowed_next().contains(&to) {
        let allowed: Vec<&str> = from.allowed_next().iter().map(|s| s.as_str()).collect();
        return Err(AppError::Conflict {
            code: ErrorCode::InvalidTransition,
            detail: format!(
                "a case that is {} can go to: {}",
                from.as_str(),
                allowed.join(", ")
            ),
            errors: vec![FieldError::new(
                "to",
                format!("allowed: {}", allowed.join(", ")),
            )],
        });
    }
    match to {
        CaseStatus::Closed => {
            let outcome =
                outcome.ok_or_else(|| AppError::invalid("outcome", "closing needs an outcome"))?;
            let live = model::attentions_of(conn, &[case.id])?
                .into_iter()
                .filter(|a| a.voided_at.is_none())
                .count();
            if live == 0 {
                return Err(AppError::conflict(
                    ErrorCode::NoAttention,
                    None,
                    "a case closes only after at least one attention is recorded",
                ));
            }
            let pending: Vec<String> = model::steps_of(conn, case.id)?
                .into_iter()
                .filter(|s| s.required_to_close && s.status == "pending")
                .map(|s| s.title_es)
                .collect();
            if !pending.is_empty() {
                return Err(AppError::Conflict {
                    code: ErrorCode::ProtocolStepsPending,
                    detail: format!("required protocol steps are pending: {}; mark them done or waive them with a reason", pending.join("; ")),
                    errors: pending.iter().map(|p| FieldError::new("steps", p.clone())).collect(),
                });
            }
            case.outcome = Some(outcome.as_str().to_owned());
            case.closed_at = Some(Ts::now());
        }
        CaseStatus::Reopened => {
            let reason = reason
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| AppError::invalid("reason", "reopening needs a reason"))?;
            case.closed_at = None;
            case.outcome = None;
            let _ = reason;
        }
        _ => {}
    }
    case.status = to.as_str().to_owned();
    Ok(
        serde_json::json!({ "from": from.as_str(), "to": to.as_str(), "outcome": outcome.map(|o| o.as_str()), "reason": reason }),
    )
}
