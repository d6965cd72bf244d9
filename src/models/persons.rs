//! Persons, documents, match keys, the duplicate queue, merges and the
//! timeline.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{
    duplicate_pairs, person_documents, person_match_keys, person_merges, persons, timeline_events,
};
use crate::db::{DbConn, Id, MultiBackend, Ts};
use crate::models::reference::Window;

#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize,
)]
#[diesel(table_name = persons, treat_none_as_default_value = false)]
#[diesel(treat_none_as_null = true)]
pub struct Person {
    pub id: Id,
    pub given_names: String,
    pub first_surname: String,
    pub second_surname: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub sex: String,
    pub nationalities: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address_abroad: Option<String>,
    pub name_key: String,
    pub registered_consulate_id: Option<Id>,
    pub merged_into_id: Option<Id>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = person_documents, treat_none_as_default_value = false)]
pub struct Document {
    pub id: Id,
    pub person_id: Id,
    pub doc_type: String,
    pub number: String,
    pub issuing_country: String,
    pub created_at: Ts,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = duplicate_pairs)]
pub struct DuplicatePair {
    pub id: Id,
    pub person_a: Id,
    pub person_b: Id,
    pub score: f64,
    pub reasons: String,
    pub status: String,
    pub source: String,
    pub decided_by: Option<Id>,
    pub decided_at: Option<Ts>,
    pub decision_reason: Option<String>,
    pub created_at: Ts,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = person_merges)]
pub struct PersonMerge {
    pub id: Id,
    pub survivor_id: Id,
    pub merged_id: Id,
    pub reason: String,
    pub actor_id: Option<Id>,
    pub at: Ts,
    pub snapshot: String,
    pub undone_at: Option<Ts>,
    pub undone_by: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = timeline_events, treat_none_as_default_value = false)]
pub struct TimelineEvent {
    pub id: Id,
    pub person_id: Id,
    pub case_id: Option<Id>,
    pub consulate_id: Option<Id>,
    pub kind: String,
    pub at: Ts,
    pub actor_id: Option<Id>,
    pub attention_type_id: Option<Id>,
    pub payload: String,
}

pub fn find_person(conn: &mut DbConn, id: Id) -> QueryResult<Option<Person>> {
    persons::table
        .find(id)
        .select(Person::as_select())
        .first(conn)
        .optional()
}

pub fn insert_person(conn: &mut DbConn, p: &Person) -> QueryResult<()> {
    diesel::insert_into(persons::table)
        .values(p)
        .execute(conn)
        .map(|_| ())
}

/// Writes the row if it is still at `expected_version` and not merged away.
pub fn update_person(conn: &mut DbConn, p: &Person, expected_version: i32) -> QueryResult<bool> {
    let n = diesel::update(
        persons::table
            .filter(persons::id.eq(p.id))
            .filter(persons::version.eq(expected_version))
            .filter(persons::merged_into_id.is_null()),
    )
    .set(p)
    .execute(conn)?;
    if n == 1 {
        sync_attention_copies(conn, p.id)?;
    }
    Ok(n == 1)
}

/// Copies a person's sex and birth date onto their attentions, where the
/// indicator reads them. Every write of a person row, and every move of
/// attentions to another person, goes through here.
pub fn sync_attention_copies(conn: &mut DbConn, person: Id) -> QueryResult<()> {
    use crate::db::schema::attentions;
    let Some((sex, birth)) = persons::table
        .find(person)
        .select((persons::sex, persons::birth_date))
        .first::<(String, Option<chrono::NaiveDate>)>(conn)
        .optional()?
    else {
        return Ok(());
    };
    diesel::update(attentions::table.filter(attentions::person_id.eq(person)))
        .set((
            attentions::person_sex.eq(Some(sex)),
            attentions::person_birth_date.eq(birth),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A person's sex and birth date (what attentions copy).
pub fn sex_and_birth(
    conn: &mut DbConn,
    person: Id,
) -> QueryResult<(String, Option<chrono::NaiveDate>)> {
    persons::table
        .find(person)
        .select((persons::sex, persons::birth_date))
        .first(conn)
}

/// Restores a row exactly as it was (merge undo).
pub fn restore_person(conn: &mut DbConn, p: &Person) -> QueryResult<()> {
    diesel::update(persons::table.filter(persons::id.eq(p.id)))
        .set(p)
        .execute(conn)?;
    sync_attention_copies(conn, p.id).map(|_| ())
}

pub fn documents_of(conn: &mut DbConn, ids: &[Id]) -> QueryResult<Vec<Document>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    person_documents::table
        .filter(person_documents::person_id.eq_any(ids.to_vec()))
        .order((
            person_documents::person_id,
            person_documents::created_at,
            person_documents::id,
        ))
        .select(Document::as_select())
        .load(conn)
}

pub fn find_document(
    conn: &mut DbConn,
    doc_type: &str,
    number: &str,
    country: &str,
) -> QueryResult<Option<Document>> {
    person_documents::table
        .filter(person_documents::doc_type.eq(doc_type))
        .filter(person_documents::number.eq(number))
        .filter(person_documents::issuing_country.eq(country))
        .select(Document::as_select())
        .first(conn)
        .optional()
}

pub fn insert_document(conn: &mut DbConn, d: &Document) -> QueryResult<()> {
    diesel::insert_into(person_documents::table)
        .values(d)
        .execute(conn)
        .map(|_| ())
}

/// Persons holding a document with exactly this number (any type/country).
pub fn persons_by_document_number(conn: &mut DbConn, number: &str) -> QueryResult<Vec<Id>> {
    person_documents::table
        .filter(person_documents::number.eq(number))
        .select(person_documents::person_id)
        .distinct()
        .load(conn)
}

pub fn set_match_keys(conn: &mut DbConn, person: Id, keys: &[String]) -> QueryResult<()> {
    diesel::delete(person_match_keys::table.filter(person_match_keys::person_id.eq(person)))
        .execute(conn)?;
    for key in keys {
        diesel::insert_into(person_match_keys::table)
            .values((
                person_match_keys::person_id.eq(person),
                person_match_keys::match_key.eq(key),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn match_keys_of(conn: &mut DbConn, person: Id) -> QueryResult<Vec<String>> {
    person_match_keys::table
        .filter(person_match_keys::person_id.eq(person))
        .order(person_match_keys::match_key)
        .select(person_match_keys::match_key)
        .load(conn)
}

/// Live persons sharing a blocking key, at most `limit`; with
/// `undated_only`, only those whose birth date is unknown.
pub fn candidates_by_keys(
    conn: &mut DbConn,
    keys: &[String],
    undated_only: bool,
    exclude: Option<Id>,
    limit: i64,
) -> QueryResult<Vec<Person>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = persons::table
        .filter(
            persons::id.eq_any(
                person_match_keys::table
                    .filter(person_match_keys::match_key.eq_any(keys.to_vec()))
                    .select(person_match_keys::person_id),
            ),
        )
        .filter(persons::merged_into_id.is_null())
        .into_boxed::<MultiBackend>();
    if let Some(id) = exclude {
        q = q.filter(persons::id.ne(id));
    }
    if undated_only {
        q = q.filter(persons::birth_date.is_null());
    }
    q.limit(limit).select(Person::as_select()).load(conn)
}

/// The unmerged persons whose folded name is one of `name_keys`.
pub fn candidates_by_name_keys(conn: &mut DbConn, name_keys: &[&str]) -> QueryResult<Vec<Person>> {
    persons::table
        .filter(persons::name_key.eq_any(name_keys))
        .filter(persons::merged_into_id.is_null())
        .order(persons::id)
        .select(Person::as_select())
        .load(conn)
}

/// Filters for the person search. Scope is applied by the caller.
#[derive(Debug, Default, Clone)]
pub struct PersonSearch {
    /// Sorted folded tokens; every token must appear.
    pub name_tokens: Vec<String>,
    /// Only these persons (document hits, or scope).
    pub ids: Option<Vec<Id>>,
    /// Only persons registered at this consulate or with a case there.
    pub consulate: Option<Id>,
}

fn search_query(s: &PersonSearch) -> persons::BoxedQuery<'static, MultiBackend> {
    let mut q = persons::table.into_boxed::<MultiBackend>();
    for token in &s.name_tokens {
        let pattern = format!("%{}%", crate::domain::text::escape_like(token));
        q = q.filter(persons::name_key.like(pattern).escape('\\'));
    }
    if let Some(ids) = &s.ids {
        q = q.filter(persons::id.eq_any(ids.clone()));
    }
    if let Some(c) = s.consulate {
        q = q.filter(
            persons::registered_consulate_id
                .eq(c)
                .or(persons::id.eq_any(
                    crate::db::schema::cases::table
                        .filter(crate::db::schema::cases::consulate_id.eq(c))
                        .select(crate::db::schema::cases::person_id),
                ))
                .or(persons::id.eq_any(
                    crate::db::schema::person_access::table
                        .filter(crate::db::schema::person_access::consulate_id.eq(c))
                        .filter(crate::db::schema::person_access::status.eq("granted"))
                        .select(crate::db::schema::person_access::person_id),
                )),
        );
    }
    q
}

pub fn search_persons(
    conn: &mut DbConn,
    s: &PersonSearch,
    window: Window,
) -> QueryResult<(Vec<Person>, i64)> {
    let total = search_query(s).count().get_result(conn)?;
    let rows = search_query(s)
        .order((persons::name_key, persons::id))
        .limit(window.limit)
        .offset(window.offset)
        .select(Person::as_select())
        .load(conn)?;
    Ok((rows, total))
}

// --- duplicate queue -----------------------------------------------------------

/// The ordered pair key: a pair is stored once whatever the order.
pub fn ordered(a: Id, b: Id) -> (Id, Id) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

pub fn find_pair(conn: &mut DbConn, a: Id, b: Id) -> QueryResult<Option<DuplicatePair>> {
    let (a, b) = ordered(a, b);
    duplicate_pairs::table
        .filter(duplicate_pairs::person_a.eq(a))
        .filter(duplicate_pairs::person_b.eq(b))
        .select(DuplicatePair::as_select())
        .first(conn)
        .optional()
}

/// Queues a pair unless it is already known (in any status). Returns true
/// when it was added.
pub fn queue_pair(
    conn: &mut DbConn,
    a: Id,
    b: Id,
    score: f64,
    reasons: &[String],
    source: &str,
) -> QueryResult<bool> {
    if find_pair(conn, a, b)?.is_some() {
        return Ok(false);
    }
    let (a, b) = ordered(a, b);
    diesel::insert_into(duplicate_pairs::table)
        .values(&DuplicatePair {
            id: Id::new(),
            person_a: a,
            person_b: b,
            score,
            reasons: serde_json::to_string(reasons).unwrap_or_else(|_| "[]".into()),
            status: "open".into(),
            source: source.into(),
            decided_by: None,
            decided_at: None,
            decision_reason: None,
            created_at: Ts::now(),
        })
        .execute(conn)?;
    Ok(true)
}

pub fn find_pair_by_id(conn: &mut DbConn, id: Id) -> QueryResult<Option<DuplicatePair>> {
    duplicate_pairs::table
        .find(id)
        .select(DuplicatePair::as_select())
        .first(conn)
        .optional()
}

pub fn decide_pair(
    conn: &mut DbConn,
    id: Id,
    status: &str,
    by: Option<Id>,
    reason: Option<&str>,
) -> QueryResult<()> {
    diesel::update(duplicate_pairs::table.find(id))
        .set((
            duplicate_pairs::status.eq(status),
            duplicate_pairs::decided_by.eq(by),
            duplicate_pairs::decided_at.eq(by.map(|_| Ts::now())),
            duplicate_pairs::decision_reason.eq(reason),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn pairs_involving(conn: &mut DbConn, a: Id, b: Id) -> QueryResult<Option<DuplicatePair>> {
    find_pair(conn, a, b)
}

pub fn list_pairs(
    conn: &mut DbConn,
    status: Option<&str>,
    person: Option<Id>,
    window: Window,
) -> QueryResult<(Vec<DuplicatePair>, i64)> {
    let build = || {
        let mut q = duplicate_pairs::table.into_boxed::<MultiBackend>();
        if let Some(s) = status {
            q = q.filter(duplicate_pairs::status.eq(s.to_owned()));
        }
        if let Some(p) = person {
            q = q.filter(
                duplicate_pairs::person_a
                    .eq(p)
                    .or(duplicate_pairs::person_b.eq(p)),
            );
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((duplicate_pairs::score.desc(), duplicate_pairs::created_at))
        .limit(window.limit)
        .offset(window.offset)
        .select(DuplicatePair::as_select())
        .load(conn)?;
    Ok((rows, total))
}

// --- merges ---------------------------------------------------------------------

pub fn insert_merge(conn: &mut DbConn, m: &PersonMerge) -> QueryResult<()> {
    diesel::insert_into(person_merges::table)
        .values(m)
        .execute(conn)
        .map(|_| ())
}

pub fn find_merge(conn: &mut DbConn, id: Id) -> QueryResult<Option<PersonMerge>> {
    person_merges::table
        .find(id)
        .select(PersonMerge::as_select())
        .first(conn)
        .optional()
}

pub fn mark_merge_undone(conn: &mut DbConn, id: Id, by: Id) -> QueryResult<bool> {
    let n = diesel::update(
        person_merges::table
            .filter(person_merges::id.eq(id))
            .filter(person_merges::undone_at.is_null()),
    )
    .set((
        person_merges::undone_at.eq(Ts::now()),
        person_merges::undone_by.eq(by),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn move_documents(conn: &mut DbConn, ids: &[Id], to: Id) -> QueryResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(person_documents::table.filter(person_documents::id.eq_any(ids.to_vec())))
        .set(person_documents::person_id.eq(to))
        .execute(conn)
        .map(|_| ())
}

// --- timeline -------------------------------------------------------------------

pub fn insert_event(conn: &mut DbConn, e: &TimelineEvent) -> QueryResult<()> {
    diesel::insert_into(timeline_events::table)
        .values(e)
        .execute(conn)
        .map(|_| ())
}

pub fn event_ids_of(conn: &mut DbConn, person: Id) -> QueryResult<Vec<Id>> {
    timeline_events::table
        .filter(timeline_events::person_id.eq(person))
        .select(timeline_events::id)
        .load(conn)
}

pub fn move_events(conn: &mut DbConn, ids: &[Id], to: Id) -> QueryResult<()> {
    for chunk in ids.chunks(500) {
        diesel::update(timeline_events::table.filter(timeline_events::id.eq_any(chunk.to_vec())))
            .set(timeline_events::person_id.eq(to))
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete_event(conn: &mut DbConn, id: Id) -> QueryResult<()> {
    diesel::delete(timeline_events::table.find(id))
        .execute(conn)
        .map(|_| ())
}

/// Filters of a history read.
#[derive(Debug, Default, Clone)]
pub struct HistoryFilter {
    pub from: Option<Ts>,
    pub to: Option<Ts>,
    pub consulate: Option<Id>,
    pub attention_type: Option<Id>,
    pub kind: Option<String>,
    /// Cases whose events the caller may not see (`services::access`).
    pub hidden_cases: Vec<Id>,
}

fn history_query(
    person: Id,
    f: &HistoryFilter,
) -> timeline_events::BoxedQuery<'static, MultiBackend> {
    let mut q = timeline_events::table
        .filter(timeline_events::person_id.eq(person))
        .into_boxed::<MultiBackend>();
    if let Some(from) = f.from {
        q = q.filter(timeline_events::at.ge(from));
    }
    if let Some(to) = f.to {
        q = q.filter(timeline_events::at.lt(to));
    }
    if let Some(c) = f.consulate {
        q = q.filter(timeline_events::consulate_id.eq(c));
    }
    if let Some(t) = f.attention_type {
        q = q.filter(timeline_events::attention_type_id.eq(t));
    }
    if let Some(k) = &f.kind {
        q = q.filter(timeline_events::kind.eq(k.clone()));
    }
    if !f.hidden_cases.is_empty() {
        q = q.filter(
            timeline_events::case_id
                .is_null()
                .or(timeline_events::case_id.ne_all(f.hidden_cases.clone())),
        );
    }
    q
}

/// A page of a person's history in time order, and the total.
pub fn history(
    conn: &mut DbConn,
    person: Id,
    f: &HistoryFilter,
    window: Window,
) -> QueryResult<(Vec<TimelineEvent>, i64)> {
    let total = history_query(person, f).count().get_result(conn)?;
    let rows = history_query(person, f)
        .order((timeline_events::at, timeline_events::id))
        .limit(window.limit)
        .offset(window.offset)
        .select(TimelineEvent::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Every event of a person (for the summary), oldest first.
pub fn all_events(conn: &mut DbConn, person: Id) -> QueryResult<Vec<TimelineEvent>> {
    timeline_events::table
        .filter(timeline_events::person_id.eq(person))
        .order((timeline_events::at, timeline_events::id))
        .select(TimelineEvent::as_select())
        .load(conn)
}
