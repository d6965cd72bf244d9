//! Administrators' writes to the catalogue: new types, changes, spellings,
//! merges by name and protocols, each through the write recipe.

use super::*;
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;

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
            code: ErrorCode::AlreadyExists,
            detail: format!("the code `{}` is taken", row.code),
            errors: vec![FieldError::new("code", "already in use")],
        });
    }
    model::insert_type(conn, row)?;
    add_labels(
        conn,
        row.id,
        &[(SOURCE_NAME_ES, row.name_es.clone())],
        "name_es",
    )?;
    add_labels(
        conn,
        row.id,
        &[(SOURCE_NAME_EN, row.name_en.clone())],
        "name_en",
    )?;
    add_labels(conn, row.id, &[(SOURCE_CODE, row.code.clone())], "code")?;
    for (i, alias) in aliases.iter().enumerate() {
        add_labels(
            conn,
            row.id,
            &[(SOURCE_ALIAS, alias.clone())],
            &format!("aliases[{i}]"),
        )?;
    }
    journal.audit(
        Event::new(
            AuditAction::AttentionTypeCreate,
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
pub(super) struct Shown {
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
    crate::services::input::check_version(current.version, expected, "type")?;
    if current.status == "merged" {
        return Err(AppError::conflict(
            ErrorCode::Merged,
            None,
            format!("{} was merged; change its survivor instead", current.code),
        ));
    }
    let mut row = current.clone();
    if let Some(n) = &change.name_es {
        add_labels(conn, row.id, &[(SOURCE_NAME_ES, n.clone())], "name_es")?;
        row.name_es = n.clone();
    }
    if let Some(n) = &change.name_en {
        add_labels(conn, row.id, &[(SOURCE_NAME_EN, n.clone())], "name_en")?;
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
            AuditAction::AttentionTypeUpdate,
            "attention_type",
            Some(row.id.to_string()),
        )
        .details(serde_json::json!({ "changes": changes })),
    );
    Ok(row)
}

pub(super) fn apply_change(row: &mut AttentionType, change: TypeChange) {
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
pub(super) fn live_type(
    conn: &mut DbConn,
    key: &TypeKey,
    raw: &str,
    instead: &str,
) -> Result<AttentionType, AppError> {
    let t = model::find_type(conn, key)?
        .ok_or_else(|| AppError::not_found(format!("no attention type `{raw}`")))?;
    if t.status == "merged" {
        return Err(AppError::conflict(
            ErrorCode::Merged,
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
    let added = add_labels(conn, t.id, &[(SOURCE_ALIAS, label.to_owned())], "label")?;
    if added > 0 {
        journal.audit(
            Event::new(
                AuditAction::AttentionTypeAliasAdd,
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
        .ok_or_else(|| AppError::invalid("into", format!("no attention type `{into}`")))?;
    let m = merge(conn, &duplicate, &survivor, reason, Some(actor))?;
    journal.audit(
        Event::new(
            AuditAction::AttentionTypeMerge,
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
            AuditAction::AttentionTypeProtocol,
            "attention_type",
            Some(t.id.to_string()),
        )
        .details(serde_json::json!({ "version": pv.version, "steps": steps.len() })),
    );
    model::protocol(conn, t.id, Some(pv.version))?.ok_or_else(|| AppError::not_found("protocol"))
}
