//! Who may see what of a person and of a case: the one scope function
//! ([`person_access`]) and the one masking decision ([`PersonAccess::view`],
//! [`PersonAccess::case_text`]) that every representation carrying a
//! person's identity or a case's free text goes through.
//! `docs/access-model.md` is the law; this module is its code.
//!
//! A consulate *holds* a person when the person was registered there, has a
//! case there, or the consulate was granted access (`person_access`). A
//! person is *protected* when any of their cases is; a consulate *protects*
//! them when it holds a `protected` grant, which the first consulate to
//! protect a person gets by itself and every other one only from a
//! protecting consulate's supervisor or headquarters. Opening a case needs
//! the person held already, so no write a caller can make alone widens what
//! the caller sees.

use std::collections::HashMap;

use diesel::QueryResult;

use crate::db::{DbConn, Id, Ts};
use crate::domain::access::{AccessLevel, View};
use crate::domain::role::Role;
use crate::models::access::{self as model, PersonAccessRow};
use crate::models::persons::Person;

/// The caller as the access rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub role: Role,
    pub consulate: Option<Id>,
    /// An hq_analyst gave an audited justification for this read.
    pub justified: bool,
}

impl Viewer {
    /// The caller as a viewer; `justified` when an hq_analyst's audited
    /// justification came with the request.
    pub fn of(user: &crate::auth::AuthUser, justified: bool) -> Viewer {
        Viewer {
            role: user.role,
            consulate: user.consulate_id,
            justified,
        }
    }
}

/// What one caller may see of one person and of each of the person's cases.
#[derive(Debug, Clone)]
pub struct PersonAccess {
    pub view: View,
    /// The caller's consulate holds the person (consulate roles only).
    pub holds: bool,
    /// Any of the person's cases is protected.
    pub protected: bool,
    /// The caller's consulate holds a `protected` grant.
    protecting: bool,
    viewer: Viewer,
    person: Id,
}

/// What the access rules need of a person's cases: lookups in one index
/// (`cases_person_idx`), whatever the number of cases.
#[derive(Debug, Clone, Copy)]
struct CaseFacts {
    /// Any of the person's cases is protected.
    protected: bool,
    /// The viewer's consulate has a case of the person.
    at_own: bool,
}

/// The scope function: what `viewer` may see of `person`.
pub fn person_access(
    conn: &mut DbConn,
    viewer: Viewer,
    person: &Person,
) -> QueryResult<PersonAccess> {
    let own = own_consulate(viewer);
    let facts = CaseFacts {
        protected: model::has_protected_case(conn, person.id)?,
        at_own: match own {
            Some(c) => model::has_case_at(conn, person.id, c)?,
            None => false,
        },
    };
    let grants = model::granted(conn, person.id)?;
    Ok(decide(
        viewer,
        person.id,
        person.registered_consulate_id,
        facts,
        &grants,
    ))
}

/// The consulate whose holdings count for `viewer`: a consulate role's own.
fn own_consulate(viewer: Viewer) -> Option<Id> {
    viewer
        .consulate
        .filter(|_| viewer.role.is_consulate_scoped())
}

fn decide(
    viewer: Viewer,
    person: Id,
    registered_at: Option<Id>,
    cases: CaseFacts,
    grants: &[(Id, String)],
) -> PersonAccess {
    let protected = cases.protected;
    let own = own_consulate(viewer);
    let holds = own.is_some_and(|c| {
        registered_at == Some(c) || cases.at_own || grants.iter().any(|(at, _)| *at == c)
    });
    let protecting = own.is_some_and(|c| {
        grants
            .iter()
            .any(|(at, level)| *at == c && level == AccessLevel::Protected.as_str())
    });
    let view = match viewer.role {
        Role::Officer | Role::Supervisor if !holds => View::NotHeld,
        Role::Officer | Role::Supervisor if protected && !protecting => View::Masked,
        Role::Officer | Role::Supervisor => View::Full,
        Role::HqAnalyst if protected && !viewer.justified => View::Masked,
        Role::HqAnalyst => View::Full,
        Role::Planner | Role::Admin => View::NotHeld,
    };
    PersonAccess {
        view,
        holds,
        protected,
        protecting,
        viewer,
        person,
    }
}

impl PersonAccess {
    /// Whether the caller may read the free text (summary, requester,
    /// descriptions, notes, titles, reasons) of a case of this person:
    /// always its own consulate's; another consulate's when the caller sees
    /// the person in full and the case is not protected or the caller's
    /// consulate protects the person; headquarters every unprotected case,
    /// and protected ones with a justification.
    pub fn case_text(&self, case_consulate: Id, case_protected: bool) -> bool {
        match self.viewer.role {
            Role::Officer | Role::Supervisor => {
                self.viewer.consulate == Some(case_consulate)
                    || (self.view == View::Full && (!case_protected || self.protecting))
            }
            Role::HqAnalyst => !case_protected || self.viewer.justified,
            Role::Planner | Role::Admin => false,
        }
    }

    /// The person's cases whose free text the caller may not read: their
    /// timeline events are left out of the history altogether. Reads every
    /// case of the person (the history reads all their events anyway).
    pub fn hidden_cases(&self, conn: &mut DbConn) -> QueryResult<Vec<Id>> {
        Ok(self.hidden_among(&model::case_places(conn, self.person)?))
    }

    /// Of (case, consulate, protected), the cases whose text is hidden.
    fn hidden_among(&self, cases: &[(Id, Id, bool)]) -> Vec<Id> {
        cases
            .iter()
            .filter(|&&(_, at, protected)| !self.case_text(at, protected))
            .map(|&(id, _, _)| id)
            .collect()
    }

    /// Whether the caller may correct the person (consulate roles seeing
    /// the person in full).
    pub fn may_change(&self) -> bool {
        self.viewer.role.is_consulate_scoped() && self.view == View::Full
    }
}

/// Whether the caller may read each case's free text, for the rows of one
/// answer (tasks, referrals, payments, detentions, repatriations): each case
/// is looked up once, and the persons met are kept for the audit row.
#[derive(Debug)]
pub struct CaseTexts {
    viewer: Viewer,
    seen: HashMap<Id, bool>,
    persons: Vec<Id>,
}

impl CaseTexts {
    pub fn new(viewer: Viewer) -> CaseTexts {
        CaseTexts {
            viewer,
            seen: HashMap::new(),
            persons: Vec::new(),
        }
    }

    /// [`PersonAccess::case_text`] for a case by id; a case that does not
    /// exist is not readable.
    pub fn readable(&mut self, conn: &mut DbConn, case: Id) -> QueryResult<bool> {
        if let Some(&known) = self.seen.get(&case) {
            return Ok(known);
        }
        let Some(c) = crate::models::cases::find_case(conn, case)? else {
            self.seen.insert(case, false);
            return Ok(false);
        };
        if !self.persons.contains(&c.person_id) {
            self.persons.push(c.person_id);
        }
        let readable = if self.viewer.role.is_consulate_scoped()
            && self.viewer.consulate == Some(c.consulate_id)
        {
            true
        } else {
            match crate::models::persons::find_person(conn, c.person_id)? {
                Some(p) => {
                    person_access(conn, self.viewer, &p)?.case_text(c.consulate_id, c.protected)
                }
                None => false,
            }
        };
        self.seen.insert(case, readable);
        Ok(readable)
    }

    /// The persons whose cases were looked up: the data subjects of the
    /// answer.
    pub fn persons(&self) -> Vec<Id> {
        self.persons.clone()
    }
}

/// Whether `consulate` holds a `protected` grant for `person`.
pub fn protects(conn: &mut DbConn, person: Id, consulate: Id) -> QueryResult<bool> {
    Ok(model::granted(conn, person)?
        .iter()
        .any(|(at, level)| *at == consulate && level == AccessLevel::Protected.as_str()))
}

/// Called in the transaction that makes a case of `person` at `consulate`
/// protected: the first consulate to protect a person gets the `protected`
/// grant; any later one sees the person masked until granted.
pub fn case_protected(
    conn: &mut DbConn,
    person: Id,
    consulate: Id,
    actor: Option<Id>,
) -> QueryResult<()> {
    let grants = model::granted(conn, person)?;
    if grants
        .iter()
        .any(|(_, level)| level == AccessLevel::Protected.as_str())
    {
        return Ok(());
    }
    grant(
        conn,
        person,
        consulate,
        AccessLevel::Protected,
        "first_protection",
        "the first consulate to protect this person",
        actor,
    )
}

/// Records a grant decided by the system itself (first protection, a case
/// accepted on transfer).
pub fn grant(
    conn: &mut DbConn,
    person: Id,
    consulate: Id,
    level: AccessLevel,
    source: &str,
    reason: &str,
    actor: Option<Id>,
) -> QueryResult<()> {
    let now = Ts::now();
    model::insert(
        conn,
        &PersonAccessRow {
            id: Id::new(),
            person_id: person,
            consulate_id: consulate,
            level: level.as_str().to_owned(),
            status: "granted".to_owned(),
            source: source.to_owned(),
            reason: reason.to_owned(),
            requested_by: actor,
            requested_at: now,
            decided_by: actor,
            decided_at: Some(now),
            decision_reason: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Id {
        Id(uuid::Uuid::from_u128(n))
    }
    const A: u128 = 1;
    const B: u128 = 2;

    /// `decide` with the facts the database would give for these cases.
    fn decide_on(
        viewer: Viewer,
        registered_at: Option<Id>,
        cases: &[(Id, Id, bool)],
        grants: &[(Id, String)],
    ) -> PersonAccess {
        let own = own_consulate(viewer);
        let facts = CaseFacts {
            protected: cases.iter().any(|&(_, _, p)| p),
            at_own: cases.iter().any(|&(_, at, _)| Some(at) == own),
        };
        decide(viewer, id(99), registered_at, facts, grants)
    }

    fn officer(at: u128) -> Viewer {
        Viewer {
            role: Role::Officer,
            consulate: Some(id(at)),
            justified: false,
        }
    }

    #[test]
    fn a_case_the_caller_could_open_alone_is_the_only_way_in_and_it_is_closed() {
        // Registered at A, protected at A; B has nothing: not held at all.
        let cases = vec![(id(10), id(A), true)];
        let grants = vec![(id(A), "protected".to_owned())];
        let b = decide_on(officer(B), Some(id(A)), &cases, &grants);
        assert_eq!(b.view, View::NotHeld);
        // Had B a case of its own (protected or not) it would hold the
        // person, but see it masked without a protected grant, and never
        // A's protected case text.
        let mut with_b = cases.clone();
        with_b.push((id(11), id(B), true));
        let b = decide_on(officer(B), Some(id(A)), &with_b, &grants);
        assert_eq!(b.view, View::Masked);
        assert!(!b.case_text(id(A), true));
        assert!(b.case_text(id(B), true), "its own case");
        assert_eq!(b.hidden_among(&with_b), vec![id(10)]);
        let a = decide_on(officer(A), Some(id(A)), &cases, &grants);
        assert_eq!(a.view, View::Full);
        assert!(a.may_change());
    }

    #[test]
    fn headquarters_needs_a_justification_for_protected_identity_and_text() {
        let cases = vec![(id(10), id(A), true), (id(11), id(A), false)];
        let hq = |justified| Viewer {
            role: Role::HqAnalyst,
            consulate: None,
            justified,
        };
        let plain = decide_on(hq(false), None, &cases, &[]);
        assert_eq!(plain.view, View::Masked);
        assert_eq!(plain.hidden_among(&cases), vec![id(10)]);
        assert!(!plain.may_change());
        let justified = decide_on(hq(true), None, &cases, &[]);
        assert_eq!(justified.view, View::Full);
        assert!(justified.hidden_among(&cases).is_empty());
    }
}
