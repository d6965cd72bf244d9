//! Following a case up: corrections and reassignment (every changed field
//! to the timeline, protection never silently cleared), tasks, and
//! transfers of a case to another consulate (access moves with it).
//!
//! Writes run inside [`crate::services::journal::commit`]; field names in
//! errors are those of the input, placed in the request by the API.

use crate::audit::Event;
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::access::AccessLevel;
use crate::domain::audit::AuditAction;
use crate::domain::case::Flag;
use crate::domain::error_code::ErrorCode;
use crate::domain::role::Role;
use crate::domain::timeline::TimelineKind;
use crate::error::AppError;
use crate::models::cases::{self as model, Case, Task, Transfer};
use crate::models::reference::{self as reference_model, ConsulateKey};
use crate::services::access;
use crate::services::cases::load_scoped;
use crate::services::input::field_changes;
use crate::services::journal::Journal;

/// A correction of a case; `None` keeps a field.
#[derive(Default)]
pub struct CaseChange {
    pub summary: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub flags: Option<Vec<Flag>>,
    pub assigned_officer_id: Option<Id>,
}

/// Corrects or reassigns a case at version `expected`. A case that becomes
/// protected protects its person at the consulate.
pub fn correct(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
    change: CaseChange,
) -> Result<Case, AppError> {
    let current = load_scoped(conn, user, raw)?;
    let expected = expected?;
    crate::services::input::check_version(current.version, expected, "case")?;
    let mut next = current.clone();
    apply_change(conn, &current, &mut next, &change)?;
    next.version += 1;
    next.updated_at = Ts::now();
    if !model::update_case(conn, &next, expected)? {
        return Err(AppError::PreconditionFailed(
            "the case changed meanwhile; read it again".into(),
        ));
    }
    if next.country_code != current.country_code {
        model::set_attentions_country(conn, next.id, &next.country_code)?;
    }
    if next.protected && !current.protected {
        access::case_protected(conn, next.person_id, next.consulate_id, Some(user.user_id))?;
    }
    let changes = field_changes(&current, &next, &["version", "updated_at"]);
    let kind = if changes.keys().all(|k| k == "assigned_officer_id") && !changes.is_empty() {
        TimelineKind::CaseReassigned
    } else {
        TimelineKind::CaseUpdated
    };
    journal.case_event(
        &next,
        kind,
        Some(user.user_id),
        None,
        serde_json::json!({ "changes": changes }),
    );
    journal.audit(
        Event::new(AuditAction::CaseUpdate, "case", Some(next.id.to_string()))
            .subject(next.person_id)
            .details(serde_json::json!({ "fields": changes.keys().collect::<Vec<_>>() })),
    );
    Ok(next)
}

/// The checked fields of a correction, in the order they are checked.
fn apply_change(
    conn: &mut DbConn,
    current: &Case,
    next: &mut Case,
    change: &CaseChange,
) -> Result<(), AppError> {
    if let Some(s) = &change.summary {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > 4000 {
            return Err(AppError::invalid("summary", "must be 1 to 4000 characters"));
        }
        next.summary = s.to_owned();
    }
    if let Some(city) = &change.city {
        next.city = Some(city.trim().to_owned()).filter(|c| !c.is_empty());
    }
    if let Some(code) = &change.country {
        next.country_code = reference_model::find_country_by_code(conn, code)?
            .ok_or_else(|| AppError::invalid("country", format!("unknown country code `{code}`")))?
            .alpha2;
    }
    if let Some(flags) = &change.flags {
        let mut flags = flags.clone();
        flags.sort();
        flags.dedup();
        next.protected = current.protected || flags.iter().any(|f| f.protects());
        next.flags = serde_json::to_string(&flags).map_err(AppError::internal)?;
    }
    if let Some(officer) = change.assigned_officer_id {
        if !crate::services::cases::is_officer_of(conn, officer, current.consulate_id)? {
            return Err(AppError::invalid(
                "assigned_officer_id",
                "not an active officer of this case's consulate",
            ));
        }
        next.assigned_officer_id = Some(officer);
    }
    Ok(())
}

/// A task to add.
pub struct NewTask {
    pub title: String,
    pub assignee_id: Option<Id>,
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Adds a follow-up task to a case, assigned to the case's officer unless
/// another active user of the consulate is named.
pub fn add_task(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    new: NewTask,
) -> Result<Task, AppError> {
    let case = load_scoped(conn, user, raw)?;
    if let Some(a) = new.assignee_id {
        let ok = crate::models::users::find_user(conn, a)?
            .is_some_and(|u| u.active && u.consulate_id == Some(case.consulate_id));
        if !ok {
            return Err(AppError::invalid(
                "assignee_id",
                "not an active user of this case's consulate",
            ));
        }
    }
    let task = Task {
        id: Id::new(),
        case_id: case.id,
        consulate_id: case.consulate_id,
        title: new.title,
        assignee_id: new.assignee_id.or(case.assigned_officer_id),
        due_at: new.due_at.map(Ts::from),
        done_at: None,
        case_step_id: None,
        created_by: Some(user.user_id),
        created_at: Ts::now(),
    };
    model::insert_task(conn, &task)?;
    journal.case_event(
        &case,
        TimelineKind::TaskCreated,
        Some(user.user_id),
        None,
        serde_json::json!({ "task_id": task.id, "title": task.title, "due_at": task.due_at }),
    );
    journal.audit(
        Event::new(AuditAction::TaskCreate, "task", Some(task.id.to_string()))
            .subject(case.person_id),
    );
    Ok(task)
}

/// Marks a task of the caller's consulate done (once).
pub fn complete_task(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
) -> Result<Task, AppError> {
    let missing = || AppError::not_found(format!("no task `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let task = model::find_task(conn, id)?.ok_or_else(missing)?;
    if !user.can_touch_consulate(task.consulate_id) {
        return Err(AppError::OutOfScope(format!("no task `{raw}`")));
    }
    if !model::complete_task(conn, id)? {
        return Err(AppError::conflict(
            ErrorCode::AlreadyDone,
            None,
            "this task is already done",
        ));
    }
    let case = model::find_case(conn, task.case_id)?.ok_or_else(|| AppError::not_found("case"))?;
    journal.case_event(
        &case,
        TimelineKind::TaskDone,
        Some(user.user_id),
        None,
        serde_json::json!({ "task_id": id, "title": task.title }),
    );
    journal.audit(
        Event::new(AuditAction::TaskDone, "task", Some(id.to_string())).subject(case.person_id),
    );
    model::find_task(conn, id)?.ok_or_else(missing)
}

/// Asks another active consulate to take the case on (one pending request
/// at a time).
pub fn request_transfer(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    to: &str,
    reason: String,
) -> Result<Transfer, AppError> {
    let case = load_scoped(conn, user, raw)?;
    let key = match uuid::Uuid::parse_str(to) {
        Ok(u) => ConsulateKey::Id(Id(u)),
        Err(_) => ConsulateKey::Code(to.to_owned()),
    };
    let target = reference_model::find_consulate(conn, &key)?
        .filter(|c| c.consulate.active)
        .ok_or_else(|| AppError::invalid("to", format!("no active consulate `{to}`")))?;
    if target.consulate.id == case.consulate_id {
        return Err(AppError::invalid(
            "to",
            "the case is already at this consulate",
        ));
    }
    if model::pending_transfer_of(conn, case.id)?.is_some() {
        return Err(AppError::conflict(
            ErrorCode::TransferPending,
            None,
            "a transfer of this case is already waiting for an answer",
        ));
    }
    let t = Transfer {
        id: Id::new(),
        case_id: case.id,
        from_consulate_id: case.consulate_id,
        to_consulate_id: target.consulate.id,
        reason: reason.clone(),
        status: "requested".into(),
        requested_by: Some(user.user_id),
        requested_at: Ts::now(),
        decided_by: None,
        decided_at: None,
    };
    model::insert_transfer(conn, &t)?;
    journal.case_event(
        &case,
        TimelineKind::CaseTransferRequested,
        Some(user.user_id),
        None,
        serde_json::json!({ "transfer_id": t.id, "to": target.consulate.code, "reason": reason }),
    );
    journal.audit(
        Event::new(
            AuditAction::CaseTransferRequest,
            "case",
            Some(case.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "to": target.consulate.code })),
    );
    Ok(t)
}

/// The receiving consulate's supervisor accepts (the case, its open tasks
/// and, from a protecting consulate, the protection move) or rejects.
pub fn decide_transfer(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    accept: bool,
) -> Result<Transfer, AppError> {
    let status = if accept { "accepted" } else { "rejected" };
    let missing = || AppError::not_found(format!("no transfer `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let t = model::find_transfer(conn, id)?.ok_or_else(missing)?;
    if user.role != Role::Supervisor || user.consulate_id != Some(t.to_consulate_id) {
        return Err(AppError::OutOfScope(format!("no transfer `{raw}`")));
    }
    if !model::decide_transfer(conn, id, status, user.user_id)? {
        return Err(AppError::conflict(
            ErrorCode::AlreadyDecided,
            None,
            "this transfer was already decided",
        ));
    }
    let mut case = model::find_case(conn, t.case_id)?.ok_or_else(|| AppError::not_found("case"))?;
    if accept {
        move_case(conn, user, &t, &mut case)?;
    }
    let kind = if accept {
        TimelineKind::CaseTransferred
    } else {
        TimelineKind::CaseTransferRejected
    };
    journal.case_event(
        &case,
        kind,
        Some(user.user_id),
        None,
        serde_json::json!({ "transfer_id": t.id, "from": t.from_consulate_id, "to": t.to_consulate_id }),
    );
    journal.audit(
        Event::new(
            AuditAction::CaseTransferDecision,
            "case",
            Some(case.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "decision": status })),
    );
    model::find_transfer(conn, id)?.ok_or_else(missing)
}

/// An accepted transfer: the case and its open tasks move; the protection
/// moves with it only from a consulate that protects the person (a case
/// opened as protected by a consulate that does not passes on no more than
/// it had).
fn move_case(
    conn: &mut DbConn,
    user: &AuthUser,
    t: &Transfer,
    case: &mut Case,
) -> Result<(), AppError> {
    let version = case.version;
    case.consulate_id = t.to_consulate_id;
    case.assigned_officer_id = None;
    case.version += 1;
    case.updated_at = Ts::now();
    if !model::update_case(conn, case, version)? {
        return Err(AppError::PreconditionFailed(
            "the case changed meanwhile; try again".into(),
        ));
    }
    model::move_open_tasks(conn, case.id, t.to_consulate_id)?;
    if case.protected && access::protects(conn, case.person_id, t.from_consulate_id)? {
        access::grant(
            conn,
            case.person_id,
            t.to_consulate_id,
            AccessLevel::Protected,
            "transfer",
            "a protected case accepted on transfer",
            Some(user.user_id),
        )?;
    }
    Ok(())
}
