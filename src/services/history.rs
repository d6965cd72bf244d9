//! A person's individual history across cases, consulates and years: a page
//! of their timeline and a summary of all of it, both without the events of
//! the cases the reader may not see.

use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{DbConn, Id, Ts};
use crate::domain::access::View;
use crate::domain::timeline::TimelineKind;
use crate::domain::{stored_json, Stored};
use crate::error::AppError;
use crate::models::persons::{self as model, HistoryFilter, TimelineEvent};
use crate::models::reference::Window;

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEvent {
    pub id: Id,
    pub at: Ts,
    #[schema(example = "person.updated")]
    pub kind: String,
    pub case_id: Option<Id>,
    pub consulate_id: Option<Id>,
    pub attention_type_id: Option<Id>,
    pub actor_id: Option<Id>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountByType {
    pub attention_type_id: Id,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistorySummary {
    pub first_contact: Option<Ts>,
    pub last_contact: Option<Ts>,
    pub events: i64,
    pub attentions_by_type: Vec<CountByType>,
    pub consulates: Vec<Id>,
}

/// One page of a person's history, with the summary of all of it.
pub struct History {
    pub events: Vec<HistoryEvent>,
    pub total: i64,
    pub summary: HistorySummary,
}

/// The page of `person`'s history `filter` and `window` select, as `view`
/// shows it: unless the view is full, the person's own events
/// (registration, corrections), which carry identifying fields, are
/// masked. `filter.hidden_cases` are left out of the page and the summary.
pub fn read(
    conn: &mut DbConn,
    person: Id,
    filter: &HistoryFilter,
    window: Window,
    view: View,
) -> Result<History, AppError> {
    let (events, total) = model::history(conn, person, filter, window)?;
    let all: Vec<_> = model::all_events(conn, person)?
        .into_iter()
        .filter(|e| e.case_id.is_none_or(|c| !filter.hidden_cases.contains(&c)))
        .collect();
    let events = events
        .into_iter()
        .map(|e| shown(e, view))
        .collect::<Result<_, _>>()?;
    Ok(History {
        events,
        total,
        summary: summary(&all),
    })
}

fn shown(e: TimelineEvent, view: View) -> Result<HistoryEvent, AppError> {
    let payload = if view != View::Full && e.case_id.is_none() {
        serde_json::json!({ "masked": true })
    } else {
        stored_json("payload", &e.payload)?
    };
    Ok(HistoryEvent {
        id: e.id,
        at: e.at,
        kind: TimelineKind::stored(&e.kind)?.as_str().to_owned(),
        case_id: e.case_id,
        consulate_id: e.consulate_id,
        attention_type_id: e.attention_type_id,
        actor_id: e.actor_id,
        payload,
    })
}

/// First and last contact, the events, the attentions by type and the
/// consulates, in the order they first appear.
fn summary(all: &[TimelineEvent]) -> HistorySummary {
    let mut by_type: Vec<CountByType> = Vec::new();
    let mut consulates: Vec<Id> = Vec::new();
    for e in all {
        let recorded = e.kind == TimelineKind::AttentionRecorded.as_str();
        if let (Some(t), true) = (e.attention_type_id, recorded) {
            match by_type.iter_mut().find(|c| c.attention_type_id == t) {
                Some(c) => c.count += 1,
                None => by_type.push(CountByType {
                    attention_type_id: t,
                    count: 1,
                }),
            }
        }
        if let Some(c) = e.consulate_id.filter(|c| !consulates.contains(c)) {
            consulates.push(c);
        }
    }
    HistorySummary {
        first_contact: all.first().map(|e| e.at),
        last_contact: all.last().map(|e| e.at),
        events: all.len() as i64,
        attentions_by_type: by_type,
        consulates,
    }
}
