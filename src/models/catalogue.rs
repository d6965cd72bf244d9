//! Attention types, their spellings, merges and protocols.

use diesel::prelude::*;

use crate::db::schema::{
    attention_type_aliases, attention_type_merges, attention_types, protocol_steps,
    protocol_versions,
};
use crate::db::{DbConn, Id, MultiBackend, Ts};
use crate::domain::text::escape_like;
use crate::models::reference::Window;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = attention_types)]
#[diesel(treat_none_as_null = true)]
pub struct AttentionType {
    pub id: Id,
    pub code: String,
    pub name_es: String,
    pub name_en: String,
    pub category: String,
    pub kind: String,
    pub description_es: String,
    pub description_en: String,
    pub who_may_ask_es: String,
    pub who_may_ask_en: String,
    pub requirements_es: String,
    pub requirements_en: String,
    /// JSON array of channel codes.
    pub channels: String,
    pub protected_by_default: bool,
    pub status: String,
    pub merged_into_id: Option<Id>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = attention_type_aliases)]
pub struct Alias {
    pub id: Id,
    pub attention_type_id: Id,
    pub label: String,
    pub folded: String,
    pub source: String,
    pub created_at: Ts,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = attention_type_merges)]
pub struct Merge {
    pub id: Id,
    pub duplicate_id: Id,
    pub survivor_id: Id,
    pub reason: String,
    pub actor_id: Option<Id>,
    pub at: Ts,
    pub attentions_moved: i64,
    pub labels_moved: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = protocol_versions)]
pub struct ProtocolVersion {
    pub id: Id,
    pub attention_type_id: Id,
    pub version: i32,
    pub created_at: Ts,
    pub created_by: Option<Id>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = protocol_steps)]
pub struct ProtocolStep {
    pub id: Id,
    pub protocol_version_id: Id,
    pub position: i32,
    pub title_es: String,
    pub title_en: String,
    pub required_to_close: bool,
    pub deadline_hours: Option<i32>,
}

/// How a type is named in a path: its id or its code.
#[derive(Debug, Clone)]
pub enum TypeKey {
    Id(Id),
    Code(String),
}

impl TypeKey {
    pub fn parse(raw: &str) -> TypeKey {
        match uuid::Uuid::parse_str(raw) {
            Ok(u) => TypeKey::Id(Id(u)),
            Err(_) => TypeKey::Code(raw.trim().to_lowercase()),
        }
    }
}

pub fn find_type(conn: &mut DbConn, key: &TypeKey) -> QueryResult<Option<AttentionType>> {
    let q = attention_types::table.select(AttentionType::as_select());
    match key {
        TypeKey::Id(id) => q.filter(attention_types::id.eq(*id)).first(conn).optional(),
        TypeKey::Code(code) => q
            .filter(attention_types::code.eq(code.clone()))
            .first(conn)
            .optional(),
    }
}

pub fn insert_type(conn: &mut DbConn, row: &AttentionType) -> QueryResult<()> {
    diesel::insert_into(attention_types::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Writes a changed row if it is still at `expected_version`.
pub fn update_type(
    conn: &mut DbConn,
    row: &AttentionType,
    expected_version: i32,
) -> QueryResult<bool> {
    let changed = diesel::update(
        attention_types::table
            .filter(attention_types::id.eq(row.id))
            .filter(attention_types::version.eq(expected_version)),
    )
    .set(row)
    .execute(conn)?;
    Ok(changed == 1)
}

#[derive(Debug, Default, Clone)]
pub struct TypeFilter {
    pub category: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    /// Folded text matched against every spelling.
    pub search: Option<String>,
}

fn types_query(filter: &TypeFilter) -> attention_types::BoxedQuery<'static, MultiBackend> {
    let mut q = attention_types::table.into_boxed::<MultiBackend>();
    if let Some(c) = &filter.category {
        q = q.filter(attention_types::category.eq(c.clone()));
    }
    if let Some(k) = &filter.kind {
        q = q.filter(attention_types::kind.eq(k.clone()));
    }
    if let Some(s) = &filter.status {
        q = q.filter(attention_types::status.eq(s.clone()));
    }
    if let Some(search) = &filter.search {
        let pattern = format!("%{}%", escape_like(search));
        q = q.filter(
            attention_types::id.eq_any(
                attention_type_aliases::table
                    .filter(attention_type_aliases::folded.like(pattern).escape('\\'))
                    .select(attention_type_aliases::attention_type_id),
            ),
        );
    }
    q
}

pub fn list_types(
    conn: &mut DbConn,
    filter: &TypeFilter,
    window: Window,
) -> QueryResult<(Vec<AttentionType>, i64)> {
    let total = types_query(filter).count().get_result(conn)?;
    let rows = types_query(filter)
        .order(attention_types::code)
        .limit(window.limit)
        .offset(window.offset)
        .select(AttentionType::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn aliases_of(conn: &mut DbConn, types: &[Id]) -> QueryResult<Vec<Alias>> {
    if types.is_empty() {
        return Ok(Vec::new());
    }
    attention_type_aliases::table
        .filter(attention_type_aliases::attention_type_id.eq_any(types.to_vec()))
        .order(attention_type_aliases::folded)
        .select(Alias::as_select())
        .load(conn)
}

pub fn find_alias(conn: &mut DbConn, folded: &str) -> QueryResult<Option<Alias>> {
    attention_type_aliases::table
        .filter(attention_type_aliases::folded.eq(folded))
        .select(Alias::as_select())
        .first(conn)
        .optional()
}

pub fn insert_alias(conn: &mut DbConn, alias: &Alias) -> QueryResult<()> {
    diesel::insert_into(attention_type_aliases::table)
        .values(alias)
        .execute(conn)
        .map(|_| ())
}

/// Every (folded spelling, type) pair, for suggestions.
pub fn all_spellings(conn: &mut DbConn) -> QueryResult<Vec<(String, Id)>> {
    attention_type_aliases::table
        .select((
            attention_type_aliases::folded,
            attention_type_aliases::attention_type_id,
        ))
        .load(conn)
}

/// Moves every spelling of `from` to `to`; returns the labels moved.
pub fn move_aliases(conn: &mut DbConn, from: Id, to: Id) -> QueryResult<Vec<String>> {
    let labels: Vec<String> = attention_type_aliases::table
        .filter(attention_type_aliases::attention_type_id.eq(from))
        .order(attention_type_aliases::label)
        .select(attention_type_aliases::label)
        .load(conn)?;
    diesel::update(
        attention_type_aliases::table.filter(attention_type_aliases::attention_type_id.eq(from)),
    )
    .set(attention_type_aliases::attention_type_id.eq(to))
    .execute(conn)?;
    Ok(labels)
}

pub fn insert_merge(conn: &mut DbConn, merge: &Merge) -> QueryResult<()> {
    diesel::insert_into(attention_type_merges::table)
        .values(merge)
        .execute(conn)
        .map(|_| ())
}

pub fn list_merges(conn: &mut DbConn, window: Window) -> QueryResult<(Vec<Merge>, i64)> {
    let total = attention_type_merges::table.count().get_result(conn)?;
    let rows = attention_type_merges::table
        .order(attention_type_merges::at.desc())
        .limit(window.limit)
        .offset(window.offset)
        .select(Merge::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// The highest protocol version of a type, or a given one, with its steps.
pub fn protocol(
    conn: &mut DbConn,
    type_id: Id,
    version: Option<i32>,
) -> QueryResult<Option<(ProtocolVersion, Vec<ProtocolStep>)>> {
    let mut q = protocol_versions::table
        .filter(protocol_versions::attention_type_id.eq(type_id))
        .into_boxed::<MultiBackend>();
    if let Some(v) = version {
        q = q.filter(protocol_versions::version.eq(v));
    }
    let found: Option<ProtocolVersion> = q
        .order(protocol_versions::version.desc())
        .select(ProtocolVersion::as_select())
        .first(conn)
        .optional()?;
    match found {
        None => Ok(None),
        Some(pv) => {
            let steps = protocol_steps::table
                .filter(protocol_steps::protocol_version_id.eq(pv.id))
                .order(protocol_steps::position)
                .select(ProtocolStep::as_select())
                .load(conn)?;
            Ok(Some((pv, steps)))
        }
    }
}

/// Stores a new protocol version (the next number) with its steps.
pub fn insert_protocol(
    conn: &mut DbConn,
    type_id: Id,
    created_by: Option<Id>,
    steps: &[(String, String, bool, Option<i32>)],
) -> QueryResult<ProtocolVersion> {
    let current: Option<i32> = protocol_versions::table
        .filter(protocol_versions::attention_type_id.eq(type_id))
        .select(diesel::dsl::max(protocol_versions::version))
        .first(conn)?;
    let pv = ProtocolVersion {
        id: Id::new(),
        attention_type_id: type_id,
        version: current.unwrap_or(0) + 1,
        created_at: Ts::now(),
        created_by,
    };
    diesel::insert_into(protocol_versions::table)
        .values(&pv)
        .execute(conn)?;
    for (i, (title_es, title_en, required, deadline)) in steps.iter().enumerate() {
        diesel::insert_into(protocol_steps::table)
            .values(&ProtocolStep {
                id: Id::new(),
                protocol_version_id: pv.id,
                position: i as i32 + 1,
                title_es: title_es.clone(),
                title_en: title_en.clone(),
                required_to_close: *required,
                deadline_hours: *deadline,
            })
            .execute(conn)?;
    }
    Ok(pv)
}
