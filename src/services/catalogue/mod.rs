//! Rules of the attention-type catalogue: every spelling belongs to one type
//! (by folded key), resolution of messy labels, merges and the seed.

mod admin;

pub use admin::*;

use serde::Deserialize;

use crate::audit::Event;
use crate::db::{DbConn, Id, Ts};
use crate::domain::catalogue::{AttentionCategory, AttentionKind, IntakeChannel};
use crate::domain::error_code::ErrorCode;
use crate::domain::stored_json;
use crate::domain::text::fold_key;
use crate::error::{AppError, FieldError};
use crate::models::catalogue::{self as model, Alias, AttentionType, Merge, TypeKey};
use crate::services::input::field_changes;
use crate::services::journal::Journal;

/// Where a spelling came from.
pub const SOURCE_NAME_ES: &str = "name_es";
pub const SOURCE_NAME_EN: &str = "name_en";
pub const SOURCE_CODE: &str = "code";
pub const SOURCE_ALIAS: &str = "alias";

/// Adds spellings to a type. A spelling whose key already belongs to this
/// type is skipped; one that belongs to another type is a 409 naming it.
pub fn add_labels(
    conn: &mut DbConn,
    type_id: Id,
    labels: &[(&str, String)],
    field: &str,
) -> Result<usize, AppError> {
    let mut added = 0;
    for (source, label) in labels {
        let folded = fold_key(label);
        if folded.is_empty() {
            return Err(AppError::invalid(
                field,
                format!("`{label}` has no letters or digits"),
            ));
        }
        match model::find_alias(conn, &folded)? {
            Some(existing) if existing.attention_type_id == type_id => continue,
            Some(existing) => {
                let owner = model::find_type(conn, &TypeKey::Id(existing.attention_type_id))?;
                let (code, name) = owner.map(|t| (t.code, t.name_es)).unwrap_or_default();
                return Err(AppError::Conflict {
                    code: ErrorCode::DuplicateLabel,
                    detail: format!(
                        "`{label}` is the same label as `{}` of the existing type {code} ({name})",
                        existing.label
                    ),
                    errors: vec![FieldError::new(
                        field,
                        format!("already a spelling of type {code} ({name})"),
                    )],
                });
            }
            None => {
                model::insert_alias(
                    conn,
                    &Alias {
                        id: Id::new(),
                        attention_type_id: type_id,
                        label: label.trim().to_owned(),
                        folded,
                        source: (*source).to_owned(),
                        created_at: Ts::now(),
                    },
                )?;
                added += 1;
            }
        }
    }
    Ok(added)
}

/// The type a label means: its id, or any spelling that folds to a known
/// name, code or alias. Merged types resolve to their survivor.
pub fn resolve(conn: &mut DbConn, label: &str) -> Result<Option<AttentionType>, AppError> {
    let mut found = match uuid::Uuid::parse_str(label.trim()) {
        // An id names the type directly.
        Ok(id) => model::find_type(conn, &TypeKey::Id(Id(id)))?,
        Err(_) => {
            let folded = fold_key(label);
            if folded.is_empty() {
                return Ok(None);
            }
            let Some(alias) = model::find_alias(conn, &folded)? else {
                return Ok(None);
            };
            model::find_type(conn, &TypeKey::Id(alias.attention_type_id))?
        }
    };
    // Aliases move at merge time, but follow the chain defensively.
    for _ in 0..8 {
        match &found {
            Some(t) if t.merged_into_id.is_some() => {
                found = model::find_type(conn, &TypeKey::Id(t.merged_into_id.unwrap_or(t.id)))?;
            }
            _ => break,
        }
    }
    Ok(found)
}

/// Up to `limit` types whose spellings are closest to `label`
/// (Jaro-Winkler on folded keys), best first, one entry per type.
pub fn suggest(
    conn: &mut DbConn,
    label: &str,
    limit: usize,
) -> Result<Vec<(AttentionType, f64, String)>, AppError> {
    let folded = fold_key(label);
    let mut best: Vec<(Id, f64, String)> = Vec::new();
    for (spelling, type_id) in model::all_spellings(conn)? {
        let score = strsim::jaro_winkler(&folded, &spelling);
        match best.iter_mut().find(|(id, _, _)| *id == type_id) {
            Some(entry) if entry.1 >= score => {}
            Some(entry) => *entry = (type_id, score, spelling),
            None => best.push((type_id, score, spelling)),
        }
    }
    best.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    let mut out = Vec::new();
    for (id, score, spelling) in best.into_iter().take(limit) {
        if let Some(t) = model::find_type(conn, &TypeKey::Id(id))? {
            out.push((t, score, spelling));
        }
    }
    Ok(out)
}

/// Folds `duplicate` into `survivor`: spellings (names, code, aliases) move,
/// attentions are recoded, the duplicate stays as a `merged` row pointing to
/// the survivor, and a recoding record is kept.
pub fn merge(
    conn: &mut DbConn,
    duplicate: &AttentionType,
    survivor: &AttentionType,
    reason: &str,
    actor: Option<Id>,
) -> Result<Merge, AppError> {
    if duplicate.id == survivor.id {
        return Err(AppError::invalid(
            "into",
            "a type cannot be merged into itself",
        ));
    }
    if duplicate.status == "merged" {
        return Err(AppError::conflict(
            ErrorCode::AlreadyMerged,
            None,
            format!("{} was already merged", duplicate.code),
        ));
    }
    if survivor.status == "merged" {
        return Err(AppError::invalid(
            "into",
            format!(
                "{} was merged into another type; merge into that one",
                survivor.code
            ),
        ));
    }
    let labels = model::move_aliases(conn, duplicate.id, survivor.id)?;
    let moved = crate::models::cases::recode_attentions(conn, duplicate.id, survivor.id)?;
    let mut row = duplicate.clone();
    row.status = "merged".into();
    row.merged_into_id = Some(survivor.id);
    row.version = duplicate.version + 1;
    row.updated_at = Ts::now();
    if !model::update_type(conn, &row, duplicate.version)? {
        return Err(AppError::PreconditionFailed(
            "the type changed meanwhile; try again".into(),
        ));
    }
    let merge = Merge {
        id: Id::new(),
        duplicate_id: duplicate.id,
        survivor_id: survivor.id,
        reason: reason.to_owned(),
        actor_id: actor,
        at: Ts::now(),
        attentions_moved: moved,
        labels_moved: serde_json::to_string(&labels).unwrap_or_else(|_| "[]".into()),
    };
    model::insert_merge(conn, &merge)?;
    Ok(merge)
}

// --- seed ------------------------------------------------------------------------

const SEED: &str = include_str!("../../reference/attention_types.json");

#[derive(Debug, Deserialize)]
struct SeedType {
    code: String,
    category: AttentionCategory,
    kind: AttentionKind,
    protected: bool,
    name_es: String,
    name_en: String,
    description_es: String,
    description_en: String,
    #[serde(default)]
    who_es: Option<String>,
    #[serde(default)]
    who_en: Option<String>,
    #[serde(default)]
    requirements_es: Option<String>,
    #[serde(default)]
    requirements_en: Option<String>,
    #[serde(default)]
    channels: Option<Vec<IntakeChannel>>,
    aliases: Vec<String>,
    #[serde(default)]
    protocol: Vec<(String, String, bool, Option<i32>)>,
}

/// Inserts seeded types that are missing (by code). Existing types, and
/// administrators' changes to them, are left alone; a seeded alias that an
/// administrator has meanwhile given to another type is skipped.
pub fn load_seed(conn: &mut DbConn) -> anyhow::Result<usize> {
    let seed: Vec<SeedType> = serde_json::from_str(SEED)?;
    let mut inserted = 0;
    for s in seed {
        if model::find_type(conn, &TypeKey::Code(s.code.clone()))?.is_some() {
            continue;
        }
        let now = Ts::now();
        let channels: Vec<&str> = s
            .channels
            .unwrap_or_else(|| IntakeChannel::ALL.to_vec())
            .iter()
            .map(|c| c.as_str())
            .collect();
        let row = AttentionType {
            id: Id::new(),
            code: s.code.clone(),
            name_es: s.name_es.clone(),
            name_en: s.name_en.clone(),
            category: s.category.as_str().to_owned(),
            kind: s.kind.as_str().to_owned(),
            description_es: s.description_es,
            description_en: s.description_en,
            who_may_ask_es: s.who_es.unwrap_or_else(|| {
                "La persona connacional afectada o un familiar en el Perú.".into()
            }),
            who_may_ask_en: s
                .who_en
                .unwrap_or_else(|| "The national concerned, or a relative in Peru.".into()),
            requirements_es: s
                .requirements_es
                .unwrap_or_else(|| "Documento de identidad (DNI o pasaporte), si lo tiene.".into()),
            requirements_en: s
                .requirements_en
                .unwrap_or_else(|| "Identity document (DNI or passport), if available.".into()),
            channels: serde_json::to_string(&channels)?,
            protected_by_default: s.protected,
            status: "active".into(),
            merged_into_id: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        model::insert_type(conn, &row)?;
        let mut labels: Vec<(&str, String)> = vec![
            (SOURCE_NAME_ES, s.name_es),
            (SOURCE_NAME_EN, s.name_en),
            (SOURCE_CODE, s.code),
        ];
        labels.extend(s.aliases.into_iter().map(|a| (SOURCE_ALIAS, a)));
        for label in labels {
            match add_labels(conn, row.id, std::slice::from_ref(&label), "seed") {
                Ok(_) => {}
                Err(AppError::Conflict { detail, .. }) => {
                    tracing::warn!(%detail, "seed alias skipped")
                }
                Err(other) => anyhow::bail!("seeding {}: {other}", row.code),
            }
        }
        if !s.protocol.is_empty() {
            model::insert_protocol(conn, row.id, None, &s.protocol)?;
        }
        inserted += 1;
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_parses_and_has_no_duplicate_spellings() {
        let seed: Vec<SeedType> = serde_json::from_str(SEED).expect("seed parses");
        assert!(seed.len() >= 30, "{}", seed.len());
        let mut seen = std::collections::HashMap::new();
        for s in &seed {
            for label in [&s.name_es, &s.name_en, &s.code]
                .into_iter()
                .chain(s.aliases.iter())
            {
                if let Some(other) = seen.insert(fold_key(label), s.code.clone()) {
                    assert_eq!(other, s.code, "`{label}` belongs to two types");
                }
            }
        }
    }
}
