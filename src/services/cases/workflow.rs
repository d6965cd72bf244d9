//! A case after intake: attentions recorded and voided, moves through the
//! workflow, protocol step decisions and notes, each through the write
//! recipe.

use super::*;
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::timeline::TimelineKind;

pub(super) fn changed_meanwhile_retry() -> AppError {
    AppError::PreconditionFailed("the case changed meanwhile; retry".into())
}

/// Records one attention on an open case of the caller's consulate.
pub fn record_attention(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    input: AttentionInput,
) -> Result<Case, AppError> {
    let mut case = load_scoped(conn, user, raw)?;
    if case.status == CaseStatus::Closed.as_str() {
        return Err(AppError::conflict(
            ErrorCode::CaseClosed,
            None,
            "reopen the case before recording attentions",
        ));
    }
    let default = RecordedChannel::stored(&case.channel)?.intake();
    if default.is_none() && input.channel.is_none() {
        return Err(AppError::invalid(
            "channel",
            "the case's channel is not recorded: say how this request came",
        ));
    }
    let default = default.unwrap_or(IntakeChannel::ConsulateWindow);
    let new = prepare_attentions(
        conn,
        std::slice::from_ref(&input),
        "",
        default,
        case.opened_at,
    )?
    .remove(0);
    let version = case.version;
    let mut steps = model::steps_of(conn, case.id)?;
    let a = add_attention(conn, journal, &mut case, new, user.user_id, &mut steps)?;
    case.version += 1;
    case.updated_at = Ts::now();
    if !model::update_case(conn, &case, version)? {
        return Err(changed_meanwhile_retry());
    }
    journal.audit(
        Event::new(
            AuditAction::AttentionCreate,
            "attention",
            Some(a.id.to_string()),
        )
        .subject(case.person_id),
    );
    Ok(case)
}

/// Voids an attention: it leaves every indicator but stays in the history.
pub fn void_attention(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    raw_attention: &str,
    reason: String,
) -> Result<Case, AppError> {
    let mut case = load_scoped(conn, user, raw)?;
    let missing = || AppError::not_found(format!("no attention `{raw_attention}` on this case"));
    let aid = uuid::Uuid::parse_str(raw_attention)
        .map(Id)
        .map_err(|_| missing())?;
    let a = model::find_attention(conn, aid)?
        .filter(|a| a.case_id == case.id)
        .ok_or_else(missing)?;
    if !model::void_attention(conn, a.id, user.user_id, &reason)? {
        return Err(AppError::conflict(
            ErrorCode::AlreadyVoided,
            None,
            "this attention is already voided",
        ));
    }
    let version = case.version;
    case.version += 1;
    case.updated_at = Ts::now();
    if !model::update_case(conn, &case, version)? {
        return Err(changed_meanwhile_retry());
    }
    journal.case_event(
        &case,
        TimelineKind::AttentionVoided,
        Some(user.user_id),
        Some(a.attention_type_id),
        serde_json::json!({ "attention_id": a.id, "reason": reason }),
    );
    journal.audit(
        Event::new(
            AuditAction::AttentionVoid,
            "attention",
            Some(a.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "reason": reason })),
    );
    Ok(case)
}

/// A case at the version the caller read.
pub(super) fn at_version(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
) -> Result<(Case, i32), AppError> {
    let case = load_scoped(conn, user, raw)?;
    let expected = expected?;
    crate::services::input::check_version(case.version, expected, "case")?;
    Ok((case, expected))
}

/// Stores a changed case over the version read.
pub(super) fn save(conn: &mut DbConn, case: &mut Case, expected: i32) -> Result<(), AppError> {
    case.version += 1;
    case.updated_at = Ts::now();
    if !model::update_case(conn, case, expected)? {
        return Err(AppError::PreconditionFailed(
            "the case changed meanwhile; read it again".into(),
        ));
    }
    Ok(())
}

/// A move through the workflow: the outcome closes, the reason reopens.
pub struct Move<'a> {
    pub to: CaseStatus,
    pub outcome: Option<CaseOutcome>,
    pub reason: Option<&'a str>,
}

/// Moves a case through its workflow (see [`transition`]).
pub fn move_case(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
    to: Move<'_>,
) -> Result<Case, AppError> {
    let (mut case, expected) = at_version(conn, user, raw, expected)?;
    let change = transition(conn, &mut case, to.to, to.outcome, to.reason)?;
    save(conn, &mut case, expected)?;
    journal.case_event(
        &case,
        TimelineKind::CaseStatusChanged,
        Some(user.user_id),
        None,
        change.clone(),
    );
    journal.audit(
        Event::new(
            AuditAction::CaseTransition,
            "case",
            Some(case.id.to_string()),
        )
        .subject(case.person_id)
        .details(change),
    );
    Ok(case)
}

/// A protocol step's decision: `done`, or `waived` with a reason (checked
/// by the caller).
pub struct StepDecision<'a> {
    pub step: &'a str,
    pub status: &'a str,
    pub reason: Option<String>,
}

/// Decides a protocol step of the case, once.
pub fn decide_step(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
    decision: StepDecision<'_>,
) -> Result<Case, AppError> {
    let StepDecision {
        step: raw_step,
        status,
        reason,
    } = decision;
    let (mut case, expected) = at_version(conn, user, raw, expected)?;
    let missing = || AppError::not_found(format!("no step `{raw_step}` on this case"));
    let sid = uuid::Uuid::parse_str(raw_step)
        .map(Id)
        .map_err(|_| missing())?;
    let step = model::steps_of(conn, case.id)?
        .into_iter()
        .find(|s| s.id == sid)
        .ok_or_else(missing)?;
    if !model::decide_step(conn, step.id, status, reason.as_deref(), user.user_id)? {
        return Err(AppError::conflict(
            ErrorCode::AlreadyDecided,
            None,
            format!("this step is already {}", step.status),
        ));
    }
    save(conn, &mut case, expected)?;
    let details = serde_json::json!({ "step": step.title_es, "status": status, "reason": reason });
    journal.case_event(
        &case,
        TimelineKind::CaseStepDecided,
        Some(user.user_id),
        Some(step.attention_type_id),
        details.clone(),
    );
    journal.audit(
        Event::new(AuditAction::CaseStep, "case", Some(case.id.to_string()))
            .subject(case.person_id)
            .details(details),
    );
    Ok(case)
}

/// Adds a follow-up note to a case's timeline.
pub fn add_note(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    note: String,
) -> Result<(), AppError> {
    let case = load_scoped(conn, user, raw)?;
    journal.case_event(
        &case,
        TimelineKind::CaseNote,
        Some(user.user_id),
        None,
        serde_json::json!({ "text": note }),
    );
    journal.audit(
        Event::new(AuditAction::CaseNote, "case", Some(case.id.to_string()))
            .subject(case.person_id),
    );
    Ok(())
}
