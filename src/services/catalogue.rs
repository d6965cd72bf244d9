//! Rules of the attention-type catalogue: every spelling belongs to one type
//! (by folded key), resolution of messy labels, merges and the seed.

use serde::Deserialize;

use crate::audit::Event;
use crate::db::{DbConn, Id, Ts};
use crate::domain::catalogue::{AttentionCategory, AttentionKind, IntakeChannel};
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
                    code: "duplicate_label",
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
            "body.into",
            "a type cannot be merged into itself",
        ));
    }
    if duplicate.status == "merged" {
        return Err(AppError::conflict(
            "already_merged",
            None,
            format!("{} was already merged", duplicate.code),
        ));
    }
    if survivor.status == "merged" {
        return Err(AppError::invalid(
            "body.into",
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

const SEED: &str = include_str!("../reference/attention_types.json");

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

/// Adds a type (its texts already checked) with its names, code and aliases
/// as spellings; a spelling or code another type has is a 409 naming it.
pub fn create_type(
    conn: &mut DbConn,
    journal: &mut Journal,
    row: &AttentionType,
    aliases: &[String],
) -> Result<(), AppError> {
    if model::find_type(conn, &TypeKey::Code(row.code.clone()))?.is_some() {
        return Err(AppError::Conflict {
            code: "already_exists",
            detail: format!("the code `{}` is taken", row.code),
            errors: vec![FieldError::new("body.code", "already in use")],
        });
    }
    model::insert_type(conn, row)?;
    add_labels(
        conn,
        row.id,
        &[(SOURCE_NAME_ES, row.name_es.clone())],
        "body.name_es",
    )?;
    add_labels(
        conn,
        row.id,
        &[(SOURCE_NAME_EN, row.name_en.clone())],
        "body.name_en",
    )?;
    add_labels(
        conn,
        row.id,
        &[(SOURCE_CODE, row.code.clone())],
        "body.code",
    )?;
    for (i, alias) in aliases.iter().enumerate() {
        add_labels(
            conn,
            row.id,
            &[(SOURCE_ALIAS, alias.clone())],
            &format!("body.aliases[{i}]"),
        )?;
    }
    journal.audit(
        Event::new(
            "attention_type.create",
            "attention_type",
            Some(row.id.to_string()),
        )
        .details(serde_json::json!({ "code": row.code })),
    );
    Ok(())
}

/// A change of a type, its texts already checked; `None` keeps a field.
#[derive(Default)]
pub struct TypeChange {
    pub name_es: Option<String>,
    pub name_en: Option<String>,
    pub description_es: Option<String>,
    pub description_en: Option<String>,
    pub who_may_ask_es: Option<String>,
    pub who_may_ask_en: Option<String>,
    pub requirements_es: Option<String>,
    pub requirements_en: Option<String>,
    pub category: Option<AttentionCategory>,
    pub kind: Option<AttentionKind>,
    /// As stored (a JSON list of codes).
    pub channels: Option<String>,
    pub protected_by_default: Option<bool>,
    pub status: Option<String>,
}

/// The fields a change of a type compares, as the type's representation
/// shows them.
#[derive(serde::Serialize)]
struct Shown {
    code: String,
    name_es: String,
    name_en: String,
    category: String,
    kind: String,
    description_es: String,
    description_en: String,
    who_may_ask_es: String,
    who_may_ask_en: String,
    requirements_es: String,
    requirements_en: String,
    channels: Vec<IntakeChannel>,
    protected_by_default: bool,
    status: String,
}

impl Shown {
    fn of(t: &AttentionType) -> Result<Shown, AppError> {
        Ok(Shown {
            code: t.code.clone(),
            name_es: t.name_es.clone(),
            name_en: t.name_en.clone(),
            category: t.category.clone(),
            kind: t.kind.clone(),
            description_es: t.description_es.clone(),
            description_en: t.description_en.clone(),
            who_may_ask_es: t.who_may_ask_es.clone(),
            who_may_ask_en: t.who_may_ask_en.clone(),
            requirements_es: t.requirements_es.clone(),
            requirements_en: t.requirements_en.clone(),
            channels: stored_json("attention type channels", &t.channels)?,
            protected_by_default: t.protected_by_default,
            status: t.status.clone(),
        })
    }
}

/// Renames (the old name stays a spelling), describes, recategorises or
/// deprecates a type at version `expected`.
pub fn update_type(
    conn: &mut DbConn,
    journal: &mut Journal,
    key: &TypeKey,
    raw: &str,
    expected: i32,
    change: TypeChange,
) -> Result<AttentionType, AppError> {
    let current = model::find_type(conn, key)?
        .ok_or_else(|| AppError::not_found(format!("no attention type `{raw}`")))?;
    if current.version != expected {
        return Err(AppError::PreconditionFailed(format!(
            "the type is at version {}, not {expected}",
            current.version
        )));
    }
    if current.status == "merged" {
        return Err(AppError::conflict(
            "merged",
            None,
            format!("{} was merged; change its survivor instead", current.code),
        ));
    }
    let mut row = current.clone();
    if let Some(n) = &change.name_es {
        add_labels(conn, row.id, &[(SOURCE_NAME_ES, n.clone())], "body.name_es")?;
        row.name_es = n.clone();
    }
    if let Some(n) = &change.name_en {
        add_labels(conn, row.id, &[(SOURCE_NAME_EN, n.clone())], "body.name_en")?;
        row.name_en = n.clone();
    }
    apply_change(&mut row, change);
    row.version = current.version + 1;
    row.updated_at = Ts::now();
    if !model::update_type(conn, &row, expected)? {
        return Err(AppError::PreconditionFailed(
            "the type changed meanwhile; read it again".into(),
        ));
    }
    let changes = field_changes(&Shown::of(&current)?, &Shown::of(&row)?, &[]);
    journal.audit(
        Event::new(
            "attention_type.update",
            "attention_type",
            Some(row.id.to_string()),
        )
        .details(serde_json::json!({ "changes": changes })),
    );
    Ok(row)
}

fn apply_change(row: &mut AttentionType, change: TypeChange) {
    let keep = |new: Option<String>, old: &mut String| {
        if let Some(v) = new {
            *old = v;
        }
    };
    keep(change.description_es, &mut row.description_es);
    keep(change.description_en, &mut row.description_en);
    keep(change.who_may_ask_es, &mut row.who_may_ask_es);
    keep(change.who_may_ask_en, &mut row.who_may_ask_en);
    keep(change.requirements_es, &mut row.requirements_es);
    keep(change.requirements_en, &mut row.requirements_en);
    keep(
        change.category.map(|c| c.as_str().to_owned()),
        &mut row.category,
    );
    keep(change.kind.map(|k| k.as_str().to_owned()), &mut row.kind);
    keep(change.channels, &mut row.channels);
    keep(change.status, &mut row.status);
    if let Some(p) = change.protected_by_default {
        row.protected_by_default = p;
    }
}

/// A live type by key; a merged one is a 409 saying what to do instead.
fn live_type(
    conn: &mut DbConn,
    key: &TypeKey,
    raw: &str,
    instead: &str,
) -> Result<AttentionType, AppError> {
    let t = model::find_type(conn, key)?
        .ok_or_else(|| AppError::not_found(format!("no attention type `{raw}`")))?;
    if t.status == "merged" {
        return Err(AppError::conflict(
            "merged",
            None,
            format!("{} was merged{instead}", t.code),
        ));
    }
    Ok(t)
}

/// Adds a spelling to a type (nothing to write or audit when it has it).
pub fn add_alias(
    conn: &mut DbConn,
    journal: &mut Journal,
    key: &TypeKey,
    raw: &str,
    label: &str,
) -> Result<AttentionType, AppError> {
    let t = live_type(conn, key, raw, "; add the alias to its survivor")?;
    let added = add_labels(
        conn,
        t.id,
        &[(SOURCE_ALIAS, label.to_owned())],
        "body.label",
    )?;
    if added > 0 {
        journal.audit(
            Event::new(
                "attention_type.alias_add",
                "attention_type",
                Some(t.id.to_string()),
            )
            .details(serde_json::json!({ "label": label })),
        );
    } else {
        journal.unchanged();
    }
    Ok(t)
}

/// [`merge`] of two types named by key, through the write recipe.
pub fn merge_named(
    conn: &mut DbConn,
    journal: &mut Journal,
    raw: &str,
    into: &str,
    reason: &str,
    actor: Id,
) -> Result<Merge, AppError> {
    let duplicate = model::find_type(conn, &TypeKey::parse(raw))?
        .ok_or_else(|| AppError::not_found(format!("no attention type `{raw}`")))?;
    let survivor = model::find_type(conn, &TypeKey::parse(into))?
        .ok_or_else(|| AppError::invalid("body.into", format!("no attention type `{into}`")))?;
    let m = merge(conn, &duplicate, &survivor, reason, Some(actor))?;
    journal.audit(
        Event::new(
            "attention_type.merge",
            "attention_type",
            Some(duplicate.id.to_string()),
        )
        .details(serde_json::json!({
            "duplicate": duplicate.code, "survivor": survivor.code, "reason": reason,
            "attentions_moved": m.attentions_moved,
        })),
    );
    Ok(m)
}

/// A protocol step: titles, whether it must be done to close, deadline.
pub type StepSpec = (String, String, bool, Option<i32>);

/// Publishes a new protocol version for a live type.
pub fn put_protocol(
    conn: &mut DbConn,
    journal: &mut Journal,
    key: &TypeKey,
    raw: &str,
    steps: &[StepSpec],
    actor: Id,
) -> Result<(model::ProtocolVersion, Vec<model::ProtocolStep>), AppError> {
    let t = live_type(conn, key, raw, "")?;
    let pv = model::insert_protocol(conn, t.id, Some(actor), steps)?;
    journal.audit(
        Event::new(
            "attention_type.protocol",
            "attention_type",
            Some(t.id.to_string()),
        )
        .details(serde_json::json!({ "version": pv.version, "steps": steps.len() })),
    );
    model::protocol(conn, t.id, Some(pv.version))?.ok_or_else(|| AppError::not_found("protocol"))
}
