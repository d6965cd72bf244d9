//! Asking for access to a person another consulate holds, and deciding on
//! it: who may grant or refuse (headquarters; a supervisor of another
//! consulate that holds the person and, for `protected`, protects them),
//! and revoking a grant.
//!
//! Writes run inside [`crate::services::journal::commit`].

use crate::audit::Event;
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::access::{AccessLevel, AccessStatus, View};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::role::Role;
use crate::error::AppError;
use crate::models::access::{self as model, PersonAccessRow};
use crate::models::persons as persons_model;
use crate::services::access::{person_access, PersonAccess, Viewer};
use crate::services::journal::Journal;

/// Records a pending request of the caller's consulate for `level` access
/// to a person.
pub fn request(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    consulate: Id,
    raw: &str,
    level: AccessLevel,
    reason: String,
) -> Result<PersonAccessRow, AppError> {
    let missing = || AppError::not_found(format!("no person `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let person = persons_model::find_person(conn, id)?.ok_or_else(missing)?;
    let row = PersonAccessRow {
        id: Id::new(),
        person_id: person.id,
        consulate_id: consulate,
        level: level.as_str().to_owned(),
        status: AccessStatus::Pending.as_str().to_owned(),
        source: "request".to_owned(),
        reason: reason.clone(),
        requested_by: Some(user.user_id),
        requested_at: Ts::now(),
        decided_by: None,
        decided_at: None,
        decision_reason: None,
    };
    model::insert(conn, &row)?;
    journal.audit(
        Event::new(
            AuditAction::PersonAccessRequest,
            "person_access",
            Some(row.id.to_string()),
        )
        .subject(person.id)
        .details(serde_json::json!({ "level": level.as_str(), "reason": reason })),
    );
    Ok(row)
}

/// A request by id, and what the caller sees of its person.
fn load_request(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
) -> Result<(Id, PersonAccessRow, PersonAccess), AppError> {
    let missing = || AppError::not_found(format!("no access request `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let row = model::find(conn, id)?.ok_or_else(missing)?;
    let person = persons_model::find_person(conn, row.person_id)?.ok_or_else(missing)?;
    let seen = person_access(conn, Viewer::of(user, false), &person)?;
    Ok((id, row, seen))
}

/// Whether `user` may decide on a request about a person seen as `seen`:
/// headquarters always; a supervisor of another consulate that holds the
/// person (and, for `protected`, protects them).
fn may_decide(user: &AuthUser, seen: &PersonAccess, row: &PersonAccessRow) -> bool {
    match user.role {
        Role::HqAnalyst => true,
        Role::Supervisor => {
            user.consulate_id != Some(row.consulate_id)
                && seen.holds
                && (row.level != AccessLevel::Protected.as_str() || seen.view == View::Full)
        }
        _ => false,
    }
}

/// Grants or refuses a pending request, once.
pub fn decide(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    status: AccessStatus,
    reason: &str,
) -> Result<PersonAccessRow, AppError> {
    let (id, row, seen) = load_request(conn, user, raw)?;
    let missing = || AppError::not_found(format!("no access request `{raw}`"));
    if !may_decide(user, &seen, &row) {
        // Nothing about the person or the request leaks to a supervisor
        // who may not decide: it reads as absent.
        return Err(AppError::OutOfScope(format!("no access request `{raw}`")));
    }
    if !model::decide(conn, id, status.as_str(), user.user_id, reason)? {
        return Err(AppError::conflict(
            ErrorCode::AlreadyDecided,
            None,
            format!("this request is already `{}`", row.status),
        ));
    }
    journal.audit(
        Event::new(
            AuditAction::PersonAccessDecision,
            "person_access",
            Some(id.to_string()),
        )
        .subject(row.person_id)
        .details(serde_json::json!({
            "decision": status.as_str(), "level": row.level,
            "consulate": row.consulate_id, "reason": reason,
        })),
    );
    model::find(conn, id)?.ok_or_else(missing)
}

/// Ends a grant: headquarters, a supervisor who could have granted it, or
/// a supervisor of the consulate that holds it (giving it up).
pub fn revoke(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    reason: &str,
) -> Result<PersonAccessRow, AppError> {
    let (id, row, seen) = load_request(conn, user, raw)?;
    let missing = || AppError::not_found(format!("no access request `{raw}`"));
    let own = user.role == Role::Supervisor && user.consulate_id == Some(row.consulate_id);
    if !own && !may_decide(user, &seen, &row) {
        return Err(AppError::OutOfScope(format!("no access request `{raw}`")));
    }
    if !model::revoke(conn, id, user.user_id, reason)? {
        return Err(AppError::conflict(
            ErrorCode::NotGranted,
            None,
            format!(
                "only a granted access can be revoked; this one is `{}`",
                row.status
            ),
        ));
    }
    journal.audit(
        Event::new(AuditAction::PersonAccessRevoke, "person_access", Some(id.to_string()))
            .subject(row.person_id)
            .details(serde_json::json!({ "consulate": row.consulate_id, "level": row.level, "reason": reason })),
    );
    model::find(conn, id)?.ok_or_else(missing)
}
