//! Persons: their records, documents and match keys, and searching them;
//! the duplicate queue and merges in `duplicates`, the timeline in
//! `timeline`.

mod duplicates;
mod timeline;

pub use duplicates::*;
pub use timeline::*;

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

impl Person {
    /// Given names and surnames, as one would write them.
    pub fn full_name(&self) -> String {
        format!(
            "{} {} {}",
            self.given_names,
            self.first_surname,
            self.second_surname.as_deref().unwrap_or_default()
        )
        .trim()
        .to_owned()
    }

    /// The name as a reader with `view` of the person sees it: whole, or
    /// masked to initials.
    pub fn name_as_seen(&self, view: crate::domain::access::View) -> String {
        match view {
            crate::domain::access::View::Full => self.full_name(),
            _ => crate::domain::person::mask_name(&self.full_name()),
        }
    }
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
