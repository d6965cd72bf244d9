//! The one write recipe. A service's write does its work and notes in a
//! [`Journal`] what it leaves behind besides its rows: the timeline events
//! of the persons it concerns and its audit row. [`commit`] runs the work
//! in one write transaction and then writes, always in this order, the
//! timeline events, the caller's seal (the HTTP layer stores the
//! idempotency record there) and the audit row; an error anywhere rolls
//! everything back.

use crate::audit::{self, Actor, Event, RequestMeta};
use crate::db::{self, DbConn, Id, Ts};
use crate::domain::timeline::TimelineKind;
use crate::error::AppError;
use crate::models::cases::Case;
use crate::models::persons::{self as persons, TimelineEvent};

/// What a write leaves behind besides its rows.
#[derive(Default)]
pub struct Journal {
    timeline: Vec<TimelineEvent>,
    audit: Vec<Event<'static>>,
    /// The write found nothing to change: no audit row is owed.
    unchanged: bool,
}

impl Journal {
    /// An event on a case's (and so its person's) timeline, now.
    pub fn case_event(
        &mut self,
        case: &Case,
        kind: TimelineKind,
        actor: Option<Id>,
        attention_type: Option<Id>,
        payload: serde_json::Value,
    ) {
        self.case_event_at(case, Ts::now(), kind, actor, attention_type, payload);
    }

    /// An event on a case's timeline at `at` (an attention entered late
    /// sits at its own date).
    #[allow(clippy::too_many_arguments)]
    pub fn case_event_at(
        &mut self,
        case: &Case,
        at: Ts,
        kind: TimelineKind,
        actor: Option<Id>,
        attention_type: Option<Id>,
        payload: serde_json::Value,
    ) {
        self.timeline.push(TimelineEvent {
            id: Id::new(),
            person_id: case.person_id,
            case_id: Some(case.id),
            consulate_id: Some(case.consulate_id),
            kind: kind.as_str().to_owned(),
            at,
            actor_id: actor,
            attention_type_id: attention_type,
            payload: payload.to_string(),
        });
    }

    /// An event on a person's own timeline (no case).
    pub fn person_event(
        &mut self,
        person: Id,
        kind: TimelineKind,
        consulate: Option<Id>,
        actor: Option<Id>,
        payload: serde_json::Value,
    ) -> Id {
        let id = Id::new();
        self.timeline.push(TimelineEvent {
            id,
            person_id: person,
            case_id: None,
            consulate_id: consulate,
            kind: kind.as_str().to_owned(),
            at: Ts::now(),
            actor_id: actor,
            attention_type_id: None,
            payload: payload.to_string(),
        });
        id
    }

    /// The write changed nothing (an alias the type already had): it owes
    /// no audit row.
    pub fn unchanged(&mut self) {
        self.unchanged = true;
    }

    /// A routine write the audit policy leaves out (a session's refresh
    /// token rotated, a one-time code spent before the login it opens is
    /// audited): it owes no audit row.
    pub fn unaudited(&mut self) {
        self.unchanged = true;
    }

    /// An audit row of the write (usually one; a write with a consequence
    /// of its own, like recoded attentions, adds a second).
    pub fn audit(&mut self, event: Event<'static>) {
        self.audit.push(event);
    }
}

/// Runs `work` in one write transaction, then writes its timeline events,
/// `seal(conn, &value)` and its audit rows, in that order. A write that
/// notes no audit row (and did not say it changed nothing) is a
/// programming error and fails.
pub fn commit<T>(
    conn: &mut DbConn,
    actor: Option<&Actor>,
    meta: &RequestMeta,
    work: impl FnOnce(&mut DbConn, &mut Journal) -> Result<T, AppError>,
    seal: impl FnOnce(&mut DbConn, &T) -> Result<(), AppError>,
) -> Result<T, AppError> {
    db::write_tx::<_, AppError, _>(conn, |conn| {
        let mut journal = Journal::default();
        let value = work(conn, &mut journal)?;
        for event in &journal.timeline {
            persons::insert_event(conn, event)?;
        }
        seal(conn, &value)?;
        if journal.audit.is_empty() && !journal.unchanged {
            return Err(AppError::internal(anyhow::anyhow!(
                "a write noted no audit row"
            )));
        }
        for event in journal.audit {
            audit::record(conn, actor, meta, event)?;
        }
        Ok(value)
    })
}

/// [`commit`] for a write with nothing to seal (no idempotency record):
/// sign-in, one's own account, the import's batches, the command line.
pub fn run<T>(
    conn: &mut DbConn,
    actor: Option<&Actor>,
    meta: &RequestMeta,
    work: impl FnOnce(&mut DbConn, &mut Journal) -> Result<T, AppError>,
) -> Result<T, AppError> {
    commit(conn, actor, meta, work, |_, _| Ok(()))
}
