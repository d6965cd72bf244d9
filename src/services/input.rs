//! Checks on what a write is given, shared by the API and the services:
//! texts, versions (optimistic concurrency), dates, and the field-level
//! changes a correction records.

use chrono::NaiveDate;
use serde::Serialize;

use crate::error::AppError;

/// A required text field, trimmed: 1 to `max` characters.
pub fn text(field: &str, v: &str, max: usize) -> Result<String, AppError> {
    // blank as the spec's `\S` patterns mean it
    let v = v
        .trim_matches(crate::domain::text::is_pattern_space)
        .to_owned();
    if v.is_empty() || v.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(v)
}

/// An optional text field, trimmed; blank means absent.
pub fn optional_text(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>, AppError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > max => Err(AppError::invalid(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

/// Refuses a write against an old version (412).
pub fn check_version(current: i32, expected: i32, what: &str) -> Result<(), AppError> {
    if current != expected {
        return Err(AppError::PreconditionFailed(format!(
            "the {what} is at version {current}, not {expected}"
        )));
    }
    Ok(())
}

/// The compare-and-swap update found another version (412).
pub fn changed_meanwhile(what: &str) -> AppError {
    AppError::PreconditionFailed(format!("the {what} changed meanwhile; read it again"))
}

/// Field-level changes between two representations of one record:
/// `{field: {"from": old, "to": new}}` for every top-level field that
/// differs, except those in `skip`. Used for timeline events and audit rows.
pub fn field_changes<T: Serialize>(
    before: &T,
    after: &T,
    skip: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    let before = serde_json::to_value(before).unwrap_or_default();
    let after = serde_json::to_value(after).unwrap_or_default();
    let mut changes = serde_json::Map::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, v) in a {
            if !skip.contains(&k.as_str()) && b.get(k) != Some(v) {
                changes.insert(k.clone(), serde_json::json!({ "from": b.get(k), "to": v }));
            }
        }
    }
    changes
}

/// A date that must not lie in the future.
pub fn past_date(field: &str, d: NaiveDate) -> Result<NaiveDate, AppError> {
    if d > chrono::Utc::now().date_naive() {
        return Err(AppError::invalid(field, "is in the future"));
    }
    Ok(d)
}
