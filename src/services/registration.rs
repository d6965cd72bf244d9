//! Registering and correcting persons: identity fields checked together
//! (every field error at once), documents unique by type, number and
//! issuing country, search before create (likely duplicates are a 409
//! unless the officer confirms a different person, and stay queued for
//! review), and every correction kept in the person's history.
//!
//! Writes run inside [`crate::services::journal::commit`]. Field names in
//! errors are those of the input; the API places them in the request.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::Event;
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::access::View;
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::person::{
    self as rules, clean_name, document_number_problem, mask_name, name_key,
    normalize_document_number, DocumentType, Sex,
};
use crate::domain::stored_json;
use crate::domain::timeline::TimelineKind;
use crate::error::{AppError, FieldError};
use crate::models::persons::{self as model, Document, Person};
use crate::models::reference as reference_model;
use crate::services::access::{self as access_service, Viewer};
use crate::services::input::field_changes;
use crate::services::journal::Journal;
use crate::services::persons::{keys_for, likely_duplicates};

/// A document as a request gives it.
pub struct DocumentInput {
    pub doc_type: DocumentType,
    pub number: String,
    pub issuing_country: Option<String>,
}

/// A likely duplicate, as a 409 `possible_duplicates` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Candidate {
    /// For a person known at another consulate, the id is all there is: ask
    /// for access with `POST /api/v1/persons/{id}/access-requests`.
    pub id: Id,
    /// Initial letters only; only for persons the caller sees in full.
    #[schema(example = "J*** P*** Q***")]
    pub masked_name: Option<String>,
    /// Only for persons the caller sees in full.
    pub birth_year: Option<i32>,
    pub score: f64,
    pub reasons: Vec<String>,
}

/// Validated identity fields, with every field error collected.
struct Checked {
    given_names: String,
    first_surname: String,
    second_surname: Option<String>,
    birth_date: Option<NaiveDate>,
    phone: Option<String>,
    email: Option<String>,
    address: Option<String>,
    nationalities: Vec<String>,
    documents: Vec<(DocumentType, String, String)>,
}

/// The identity fields to check (the new values, or the stored ones).
struct Identity<'a> {
    given_names: &'a str,
    first_surname: &'a str,
    second_surname: Option<&'a str>,
    birth_date: Option<NaiveDate>,
    phone: Option<&'a str>,
    email: Option<&'a str>,
    address: Option<&'a str>,
    nationalities: Option<&'a [String]>,
}

fn collect<T>(errors: &mut Vec<FieldError>, field: &str, r: Result<T, &str>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(reason) => {
            errors.push(FieldError::new(field, reason));
            None
        }
    }
}

fn fail(errors: Vec<FieldError>) -> AppError {
    let detail = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.reason))
        .collect::<Vec<_>>()
        .join("; ");
    AppError::Validation { detail, errors }
}

fn country_code(
    conn: &mut DbConn,
    errors: &mut Vec<FieldError>,
    field: &str,
    raw: &str,
) -> Result<Option<String>, AppError> {
    match reference_model::find_country_by_code(conn, raw)? {
        Some(c) => Ok(Some(c.alpha2)),
        None => {
            errors.push(FieldError::new(
                field,
                format!("unknown country code `{raw}`"),
            ));
            Ok(None)
        }
    }
}

fn check_documents(
    conn: &mut DbConn,
    errors: &mut Vec<FieldError>,
    docs: &[DocumentInput],
    base: &str,
) -> Result<Vec<(DocumentType, String, String)>, AppError> {
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let number = normalize_document_number(&d.number);
        if let Some(problem) = document_number_problem(d.doc_type, &number) {
            errors.push(FieldError::new(format!("{base}[{i}].number"), problem));
            continue;
        }
        let country = match &d.issuing_country {
            Some(c) => country_code(conn, errors, &format!("{base}[{i}].issuing_country"), c)?,
            None => Some("PE".to_owned()),
        };
        if d.doc_type == DocumentType::Dni && country.as_deref().is_some_and(|c| c != "PE") {
            errors.push(FieldError::new(
                format!("{base}[{i}].issuing_country"),
                "a DNI is issued by Peru",
            ));
            continue;
        }
        if let Some(country) = country {
            if out
                .iter()
                .any(|(t, n, c)| *t == d.doc_type && *n == number && *c == country)
            {
                errors.push(FieldError::new(format!("{base}[{i}]"), "listed twice"));
            } else {
                out.push((d.doc_type, number, country));
            }
        }
    }
    Ok(out)
}

fn check_identity(
    conn: &mut DbConn,
    id: Identity<'_>,
    documents: &[DocumentInput],
    documents_field: &str,
) -> Result<Checked, AppError> {
    let mut errors = Vec::new();
    let given_names = collect(&mut errors, "given_names", clean_name(id.given_names));
    let first_surname = collect(&mut errors, "first_surname", clean_name(id.first_surname));
    let second_surname = match id.second_surname.filter(|s| !s.trim().is_empty()) {
        Some(s) => collect(&mut errors, "second_surname", clean_name(s)),
        None => None,
    };
    if let Some(d) = id.birth_date {
        if let Some(problem) = rules::birth_date_problem(d, chrono::Utc::now().date_naive()) {
            errors.push(FieldError::new("birth_date", problem));
        }
    }
    let phone = match id.phone.filter(|s| !s.trim().is_empty()) {
        Some(p) => collect(&mut errors, "phone", rules::normalize_phone(p)),
        None => None,
    };
    let email = match id.email.filter(|s| !s.trim().is_empty()) {
        Some(e) => collect(&mut errors, "email", rules::normalize_email(e)),
        None => None,
    };
    let address = id
        .address
        .map(|a| a.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|a| !a.is_empty());
    if address.as_ref().is_some_and(|a| a.chars().count() > 300) {
        errors.push(FieldError::new(
            "address_abroad",
            "must be at most 300 characters",
        ));
    }
    let mut nats = Vec::new();
    for (i, n) in id
        .nationalities
        .unwrap_or(&["PE".to_owned()])
        .iter()
        .enumerate()
    {
        if let Some(code) = country_code(conn, &mut errors, &format!("nationalities[{i}]"), n)? {
            if !nats.contains(&code) {
                nats.push(code);
            }
        }
    }
    if nats.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("nationalities", "name at least one"));
    }
    let documents = check_documents(conn, &mut errors, documents, documents_field)?;
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    Ok(Checked {
        given_names: given_names.unwrap_or_default(),
        first_surname: first_surname.unwrap_or_default(),
        second_surname,
        birth_date: id.birth_date,
        phone,
        email,
        address,
        nationalities: nats,
        documents,
    })
}

/// A person to register.
pub struct NewPerson {
    pub given_names: String,
    pub first_surname: String,
    pub second_surname: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub sex: Sex,
    pub nationalities: Option<Vec<String>>,
    pub documents: Vec<DocumentInput>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address_abroad: Option<String>,
    /// Why this is a different person from the likely duplicates.
    pub confirm_new_person: Option<String>,
}

/// Registers a person at the caller's consulate after searching: a known
/// document is `already_exists`, likely duplicates `possible_duplicates`
/// unless confirmed (they then stay queued for review).
pub fn register(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    new: NewPerson,
) -> Result<Person, AppError> {
    let c = check_identity(
        conn,
        Identity {
            given_names: &new.given_names,
            first_surname: &new.first_surname,
            second_surname: new.second_surname.as_deref(),
            birth_date: new.birth_date,
            phone: new.phone.as_deref(),
            email: new.email.as_deref(),
            address: new.address_abroad.as_deref(),
            nationalities: new.nationalities.as_deref(),
        },
        &new.documents,
        "documents",
    )?;
    for (i, (t, n, country)) in c.documents.iter().enumerate() {
        if let Some(existing) = model::find_document(conn, t.as_str(), n, country)? {
            return Err(AppError::Exists {
                detail: format!("this {} is already registered to person {}; a person known at another consulate is reached with POST /api/v1/persons/{}/access-requests", t.as_str(), existing.person_id, existing.person_id),
                field: format!("documents[{i}].number"),
                existing_id: existing.person_id.to_string(),
            });
        }
    }
    let now = Ts::now();
    let person = Person {
        id: Id::new(),
        name_key: name_key(
            &c.given_names,
            &c.first_surname,
            c.second_surname.as_deref(),
        ),
        given_names: c.given_names,
        first_surname: c.first_surname,
        second_surname: c.second_surname,
        birth_date: c.birth_date,
        sex: new.sex.as_str().to_owned(),
        nationalities: serde_json::to_string(&c.nationalities).map_err(AppError::internal)?,
        phone: c.phone,
        email: c.email,
        address_abroad: c.address,
        registered_consulate_id: user.consulate_id,
        merged_into_id: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let likely = likely_duplicates(conn, &person, None)?;
    let confirmation = new.confirm_new_person.as_ref().map(|r| r.trim().to_owned());
    if !likely.is_empty() {
        match &confirmation {
            None => return Err(possible_duplicates(conn, user, &likely)?),
            Some(reason) if reason.is_empty() => {
                return Err(AppError::invalid(
                    "confirm_new_person.reason",
                    "say why this is a different person",
                ));
            }
            Some(_) => {}
        }
    }
    model::insert_person(conn, &person)?;
    for (t, n, country) in &c.documents {
        model::insert_document(
            conn,
            &Document {
                id: Id::new(),
                person_id: person.id,
                doc_type: t.as_str().to_owned(),
                number: n.clone(),
                issuing_country: country.clone(),
                created_at: now,
            },
        )?;
    }
    model::set_match_keys(conn, person.id, &keys_for(&person))?;
    for (other, l) in &likely {
        let mut reasons = l.reasons.clone();
        reasons.push(format!(
            "confirmed_new_at_intake:{}",
            confirmation.clone().unwrap_or_default()
        ));
        model::queue_pair(conn, person.id, other.id, l.score, &reasons, "intake")?;
    }
    journal.person_event(
        person.id,
        TimelineKind::PersonRegistered,
        user.consulate_id,
        Some(user.user_id),
        serde_json::json!({}),
    );
    journal.audit(
        Event::new(
            AuditAction::PersonCreate,
            "person",
            Some(person.id.to_string()),
        )
        .subject(person.id)
        .details(serde_json::json!({ "possible_duplicates_confirmed": likely.len() })),
    );
    Ok(person)
}

/// The 409 listing likely duplicates, each shown only as far as the
/// caller may see the person.
fn possible_duplicates(
    conn: &mut DbConn,
    user: &AuthUser,
    likely: &[(Person, crate::domain::person::Likeness)],
) -> Result<AppError, AppError> {
    let viewer = Viewer::of(user, false);
    let mut candidates = Vec::with_capacity(likely.len());
    for (p, l) in likely {
        let full = access_service::person_access(conn, viewer, p)?.view == View::Full;
        candidates.push(Candidate {
            id: p.id,
            masked_name: full.then(|| mask_name(&p.full_name())),
            birth_year: p
                .birth_date
                .filter(|_| full)
                .map(|d| chrono::Datelike::year(&d)),
            score: l.score,
            reasons: l.reasons.clone(),
        });
    }
    Ok(AppError::PossibleDuplicates {
        detail: format!(
            "{} registered person(s) look like the same person; check them, or send confirm_new_person with a reason",
            candidates.len()
        ),
        candidates: serde_json::to_value(&candidates).unwrap_or_default(),
    })
}

/// A correction; `None` keeps a field, `Some(None)` clears it.
#[derive(Default)]
pub struct PersonChange {
    pub given_names: Option<String>,
    pub first_surname: Option<String>,
    pub second_surname: Option<Option<String>>,
    pub birth_date: Option<Option<NaiveDate>>,
    pub sex: Option<Sex>,
    pub nationalities: Option<Vec<String>>,
    pub phone: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub address_abroad: Option<Option<String>>,
    /// Documents are only ever added.
    pub add_documents: Vec<DocumentInput>,
}

/// The identity fields a correction compares, as the person's
/// representation shows them.
#[derive(Serialize)]
struct Shown {
    given_names: String,
    first_surname: String,
    second_surname: Option<String>,
    birth_date: Option<NaiveDate>,
    sex: String,
    nationalities: Vec<String>,
    phone: Option<String>,
    email: Option<String>,
    address_abroad: Option<String>,
}

impl Shown {
    fn of(p: &Person) -> Result<Shown, AppError> {
        Ok(Shown {
            given_names: p.given_names.clone(),
            first_surname: p.first_surname.clone(),
            second_surname: p.second_surname.clone(),
            birth_date: p.birth_date,
            sex: p.sex.clone(),
            nationalities: stored_json("nationalities", &p.nationalities)?,
            phone: p.phone.clone(),
            email: p.email.clone(),
            address_abroad: p.address_abroad.clone(),
        })
    }
}

/// A person the caller's consulate holds and may change (not protected by
/// another consulate, not merged away), at version `expected`.
fn changeable(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
) -> Result<(Person, i32), AppError> {
    let missing = || AppError::not_found(format!("no person `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let current = model::find_person(conn, id)?.ok_or_else(missing)?;
    let seen = access_service::person_access(conn, Viewer::of(user, false), &current)?;
    if seen.view == View::NotHeld {
        return Err(AppError::OutOfScope(format!("no person `{raw}`")));
    }
    if !seen.may_change() {
        return Err(AppError::forbidden(
            ErrorCode::ProtectedPerson,
            "this person is protected by another consulate; ask for access with POST /api/v1/persons/{id}/access-requests",
        ));
    }
    let expected = expected?;
    if current.merged_into_id.is_some() {
        return Err(AppError::conflict(
            ErrorCode::Merged,
            None,
            "this person was merged; correct the survivor",
        ));
    }
    crate::services::input::check_version(current.version, expected, "person")?;
    Ok((current, expected))
}

/// Corrects a person; every changed field goes to the history.
pub fn correct(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
    change: PersonChange,
) -> Result<Person, AppError> {
    let (current, expected) = changeable(conn, user, raw, expected)?;
    let pick = |new: &Option<Option<String>>, old: &Option<String>| match new {
        None => old.clone(),
        Some(v) => v.clone(),
    };
    let nationalities = match change.nationalities.clone() {
        Some(n) => n,
        None => stored_json("nationalities", &current.nationalities)?,
    };
    let (second, phone) = (
        pick(&change.second_surname, &current.second_surname),
        pick(&change.phone, &current.phone),
    );
    let (email, address) = (
        pick(&change.email, &current.email),
        pick(&change.address_abroad, &current.address_abroad),
    );
    let c = check_identity(
        conn,
        Identity {
            given_names: change
                .given_names
                .as_deref()
                .unwrap_or(&current.given_names),
            first_surname: change
                .first_surname
                .as_deref()
                .unwrap_or(&current.first_surname),
            second_surname: second.as_deref(),
            birth_date: change.birth_date.unwrap_or(current.birth_date),
            phone: phone.as_deref(),
            email: email.as_deref(),
            address: address.as_deref(),
            nationalities: Some(&nationalities),
        },
        &change.add_documents,
        "add_documents",
    )?;
    for (i, (t, n, country)) in c.documents.iter().enumerate() {
        if let Some(existing) = model::find_document(conn, t.as_str(), n, country)? {
            return Err(AppError::Exists {
                detail: format!(
                    "this {} is already registered to person {}",
                    t.as_str(),
                    existing.person_id
                ),
                field: format!("add_documents[{i}].number"),
                existing_id: existing.person_id.to_string(),
            });
        }
    }
    let mut next = current.clone();
    next.name_key = name_key(
        &c.given_names,
        &c.first_surname,
        c.second_surname.as_deref(),
    );
    next.given_names = c.given_names;
    next.first_surname = c.first_surname;
    next.second_surname = c.second_surname;
    next.birth_date = c.birth_date;
    next.sex = change
        .sex
        .map(|s| s.as_str().to_owned())
        .unwrap_or(current.sex.clone());
    next.nationalities = serde_json::to_string(&c.nationalities).map_err(AppError::internal)?;
    next.phone = c.phone;
    next.email = c.email;
    next.address_abroad = c.address;
    next.version = current.version + 1;
    next.updated_at = Ts::now();
    if !model::update_person(conn, &next, expected)? {
        return Err(AppError::PreconditionFailed(
            "the person changed meanwhile; read it again".into(),
        ));
    }
    for (t, n, country) in &c.documents {
        model::insert_document(
            conn,
            &Document {
                id: Id::new(),
                person_id: next.id,
                doc_type: t.as_str().to_owned(),
                number: n.clone(),
                issuing_country: country.clone(),
                created_at: Ts::now(),
            },
        )?;
    }
    model::set_match_keys(conn, next.id, &keys_for(&next))?;
    let mut changes = field_changes(&Shown::of(&current)?, &Shown::of(&next)?, &[]);
    if !c.documents.is_empty() {
        changes.insert(
            "documents_added".into(),
            serde_json::json!(c
                .documents
                .iter()
                .map(|(t, n, co)| format!("{}:{n}:{co}", t.as_str()))
                .collect::<Vec<_>>()),
        );
    }
    journal.person_event(
        next.id,
        TimelineKind::PersonUpdated,
        user.consulate_id,
        Some(user.user_id),
        serde_json::json!({ "changes": changes }),
    );
    journal.audit(
        Event::new(
            AuditAction::PersonUpdate,
            "person",
            Some(next.id.to_string()),
        )
        .subject(next.id)
        .details(serde_json::json!({ "fields": changes.keys().collect::<Vec<_>>() })),
    );
    Ok(next)
}
