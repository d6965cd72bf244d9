//! Finding persons: by name (every folded token must appear), by exact
//! document number (which reaches beyond the caller's consulate, so a
//! consulate's staff may only do so a few times an hour), or a plain list.
//! Every search is audited with the persons it returned as data subjects.

use crate::audit::{self, Actor, Event, RequestMeta};
use crate::db::{DbConn, Id};
use crate::domain::access::View;
use crate::domain::audit::AuditAction;
use crate::error::AppError;
use crate::models::persons::{self as model, Document, Person, PersonSearch};
use crate::models::reference::Window;
use crate::services::access::{person_access, Viewer};

/// What a search looks for: persons whose name holds every token (sorted,
/// deduplicated, folded) and, when given, who hold a document of this
/// exact normalised number. Neither: a plain list.
#[derive(Debug, Default)]
pub struct Criteria {
    pub name_tokens: Vec<String>,
    pub document: Option<String>,
}

impl Criteria {
    /// The name tokens of a folded search text.
    pub fn tokens(folded: &str) -> Vec<String> {
        let mut tokens: Vec<String> = folded.split(' ').map(str::to_owned).collect();
        tokens.sort();
        tokens.dedup();
        tokens
    }

    fn label(&self) -> &'static str {
        match (&self.document, self.name_tokens.is_empty()) {
            (Some(_), _) => "document",
            (None, true) => "list",
            (None, false) => "name",
        }
    }
}

/// A page of persons found, each with how the caller may see it.
pub struct Found {
    pub persons: Vec<(Person, View)>,
    pub documents: Vec<Document>,
    pub total: i64,
}

/// The page `window` of the persons matching `by` for `viewer`: a consulate's
/// staff list and search by name only the persons their consulate holds
/// (registered there or with a case there); a document number reaches
/// every person.
pub fn search(
    conn: &mut DbConn,
    viewer: Viewer,
    by: Criteria,
    window: Window,
    actor: &Actor,
    meta: &RequestMeta,
) -> Result<Found, AppError> {
    let label = by.label();
    let mut search = PersonSearch {
        name_tokens: by.name_tokens,
        ids: None,
        consulate: None,
    };
    match &by.document {
        // An exact document reaches beyond the consulate.
        Some(number) => search.ids = Some(model::persons_by_document_number(conn, number)?),
        None if viewer.role.is_consulate_scoped() => {
            search.consulate = Some(viewer.consulate.unwrap_or_default())
        }
        None => {}
    }
    let (rows, total) = model::search_persons(conn, &search, window)?;
    let ids: Vec<Id> = rows.iter().map(|p| p.id).collect();
    let documents = model::documents_of(conn, &ids)?;
    // Every person on the page, including those seen only as an id.
    let event = Event::new(AuditAction::PersonSearch, "person", None)
        .details(serde_json::json!({ "by": label, "results": total }))
        .subjects(ids.iter().copied());
    audit::record_alone(conn, Some(actor), meta, event)?;
    let mut persons = Vec::with_capacity(rows.len());
    for p in rows {
        let view = person_access(conn, viewer, &p)?.view;
        persons.push((p, view));
    }
    Ok(Found {
        persons,
        documents,
        total,
    })
}

/// Audits a document search refused because the caller used up the
/// lookups of the hour (`limit`).
pub fn refuse_lookup(
    conn: &mut DbConn,
    actor: &Actor,
    meta: &RequestMeta,
    limit: u32,
) -> Result<(), AppError> {
    audit::record_alone(
        conn,
        Some(actor),
        meta,
        Event::new(AuditAction::PersonSearch, "person", None)
            .outcome(audit::Outcome::Denied)
            .details(
                serde_json::json!({ "by": "document", "throttled": true, "limit_per_hour": limit }),
            ),
    )?;
    Ok(())
}
