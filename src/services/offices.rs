//! Consular offices as administrators maintain them: a stable code that
//! starts with the office's country, the countries it serves (its own
//! always among them), names generated from kind and city unless given,
//! and every change audited field by field.
//!
//! Writes run inside [`crate::services::journal::commit`]. Field names in
//! errors are those of the input; the API places them in the request.

use crate::audit::Event;
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::reference::ConsulateKind;
use crate::error::{AppError, FieldError};
use crate::models::reference::{self as model, ConsulateDetail, ConsulateKey};
use crate::services::journal::Journal;

/// The office's own country first, then the other countries named.
fn resolve_jurisdiction(
    conn: &mut DbConn,
    own: &str,
    codes: &[String],
) -> Result<Vec<String>, AppError> {
    let mut out = vec![own.to_owned()];
    for (i, code) in codes.iter().enumerate() {
        let country = model::find_country_by_code(conn, code)?.ok_or_else(|| {
            AppError::invalid(
                format!("jurisdiction[{i}]"),
                format!("unknown country code `{code}`"),
            )
        })?;
        if !out.contains(&country.alpha2) {
            out.push(country.alpha2);
        }
    }
    Ok(out)
}

/// A new office, its texts already checked.
pub struct NewOffice {
    pub code: String,
    pub kind: ConsulateKind,
    pub country: String,
    pub city: String,
    pub city_en: Option<String>,
    pub name_es: Option<String>,
    pub name_en: Option<String>,
    pub jurisdiction: Vec<String>,
}

/// Adds an office; its code must start with its country's and be free.
pub fn create(
    conn: &mut DbConn,
    journal: &mut Journal,
    new: NewOffice,
) -> Result<ConsulateDetail, AppError> {
    let country = model::find_country_by_code(conn, &new.country)?.ok_or_else(|| {
        AppError::invalid("country", format!("unknown country code `{}`", new.country))
    })?;
    if !new.code.starts_with(&format!("{}-", country.alpha2)) {
        return Err(AppError::invalid(
            "code",
            format!("must start with the country code `{}-`", country.alpha2),
        ));
    }
    if model::find_consulate(conn, &ConsulateKey::Code(new.code.clone()))?.is_some() {
        return Err(AppError::Conflict {
            code: ErrorCode::AlreadyExists,
            detail: format!("the consulate code `{}` is taken", new.code),
            errors: vec![FieldError::new("code", "already in use")],
        });
    }
    let jurisdiction = resolve_jurisdiction(conn, &country.alpha2, &new.jurisdiction)?;
    let now = Ts::now();
    let city_en_or_es = new.city_en.clone().unwrap_or_else(|| new.city.clone());
    let row = model::NewConsulate {
        id: Id::new(),
        name_es: new.name_es.unwrap_or_else(|| new.kind.name_es(&new.city)),
        name_en: new
            .name_en
            .unwrap_or_else(|| new.kind.name_en(&city_en_or_es)),
        code: new.code,
        kind: new.kind.as_str().to_owned(),
        city: new.city,
        city_en: new.city_en,
        country_code: country.alpha2,
        active: true,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    model::insert_consulate(conn, &row, &jurisdiction)?;
    journal.audit(
        Event::new(
            AuditAction::ConsulateCreate,
            "consulate",
            Some(row.id.to_string()),
        )
        .details(serde_json::json!({ "code": row.code, "jurisdiction": jurisdiction })),
    );
    model::find_consulate(conn, &ConsulateKey::Id(row.id))?
        .ok_or_else(|| AppError::not_found("no such consulate"))
}

/// A correction of an office, its texts already checked; `None` keeps a
/// field (`city_en: Some(None)` clears it).
#[derive(Default)]
pub struct OfficeChange {
    pub kind: Option<ConsulateKind>,
    pub name_es: Option<String>,
    pub name_en: Option<String>,
    pub city: Option<String>,
    pub city_en: Option<Option<String>>,
    pub active: Option<bool>,
    pub jurisdiction: Option<Vec<String>>,
}

/// Corrects an office at version `expected`; code and country are stable.
pub fn update(
    conn: &mut DbConn,
    journal: &mut Journal,
    key: &ConsulateKey,
    raw: &str,
    expected: i32,
    change: OfficeChange,
) -> Result<ConsulateDetail, AppError> {
    let current = model::find_consulate(conn, key)?
        .ok_or_else(|| AppError::not_found(format!("no consulate `{raw}`")))?;
    let c = &current.consulate;
    if c.version != expected {
        return Err(AppError::PreconditionFailed(format!(
            "the consulate is at version {}, not {expected}; read it again",
            c.version
        )));
    }
    let changes = model::ConsulateChanges {
        kind: change
            .kind
            .map(|k| k.as_str().to_owned())
            .unwrap_or_else(|| c.kind.clone()),
        name_es: change.name_es.unwrap_or_else(|| c.name_es.clone()),
        name_en: change.name_en.unwrap_or_else(|| c.name_en.clone()),
        city: change.city.unwrap_or_else(|| c.city.clone()),
        city_en: change.city_en.unwrap_or_else(|| c.city_en.clone()),
        active: change.active.unwrap_or(c.active),
        version: c.version + 1,
        updated_at: Ts::now(),
    };
    let mut diff = serde_json::Map::new();
    for (field, from, to) in [
        ("kind", &c.kind, &changes.kind),
        ("name_es", &c.name_es, &changes.name_es),
        ("name_en", &c.name_en, &changes.name_en),
        ("city", &c.city, &changes.city),
    ] {
        if from != to {
            diff.insert(field.into(), serde_json::json!({ "from": from, "to": to }));
        }
    }
    if c.city_en != changes.city_en {
        diff.insert(
            "city_en".into(),
            serde_json::json!({ "from": c.city_en, "to": changes.city_en }),
        );
    }
    if c.active != changes.active {
        diff.insert(
            "active".into(),
            serde_json::json!({ "from": c.active, "to": changes.active }),
        );
    }
    if !model::update_consulate(conn, c.id, expected, &changes)? {
        return Err(AppError::PreconditionFailed(
            "the consulate changed meanwhile; read it again".into(),
        ));
    }
    if let Some(codes) = &change.jurisdiction {
        let mut jurisdiction = resolve_jurisdiction(conn, &c.country_code, codes)?;
        jurisdiction.sort();
        if jurisdiction != current.jurisdiction {
            diff.insert(
                "jurisdiction".into(),
                serde_json::json!({ "from": current.jurisdiction, "to": jurisdiction }),
            );
        }
        model::replace_jurisdiction(conn, c.id, &jurisdiction)?;
    }
    journal.audit(
        Event::new(
            AuditAction::ConsulateUpdate,
            "consulate",
            Some(c.id.to_string()),
        )
        .details(serde_json::json!({ "changes": diff })),
    );
    model::find_consulate(conn, &ConsulateKey::Id(c.id))?
        .ok_or_else(|| AppError::not_found("no such consulate"))
}
