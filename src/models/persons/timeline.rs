//! The timeline: every event of a person and of their cases, and the
//! history read from it.

use super::*;

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

pub(super) fn history_query(
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
