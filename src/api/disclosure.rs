//! The last step of every answer that carries rows bound to cases (tasks,
//! referrals, payments, detentions, repatriations): the free text the caller
//! may not read is withheld, by the one rule in `services::access`, and the
//! read is audited with the persons it concerned.

use crate::api::Viewing as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{DbConn, Id};
use crate::domain::audit::AuditAction;
use crate::error::AppError;
use crate::services::access::CaseTexts;

/// What replaces free text the caller may not read.
pub const WITHHELD: &str = "(protected case)";

/// Withholds what the caller may not read of `rows` (`withhold` is called
/// on each row whose case's text is closed to the caller) and appends one
/// audit row naming the persons concerned.
pub fn screen<T>(
    conn: &mut DbConn,
    user: &AuthUser,
    meta: &RequestMeta,
    action: AuditAction,
    rows: &mut [T],
    case_of: impl Fn(&T) -> Id,
    withhold: impl Fn(&mut T),
) -> Result<(), AppError> {
    let mut texts = CaseTexts::new(user.viewer(false));
    for row in rows.iter_mut() {
        if !texts.readable(conn, case_of(row))? {
            withhold(row);
        }
    }
    audit::record_alone(
        conn,
        Some(&user.actor()),
        meta,
        Event::new(action, "case", None)
            .details(serde_json::json!({ "results": rows.len() }))
            .subjects(texts.persons()),
    )?;
    Ok(())
}

/// `Some(WITHHELD)` for any text that was there.
pub fn withheld(text: &Option<String>) -> Option<String> {
    text.as_ref().map(|_| WITHHELD.to_owned())
}
