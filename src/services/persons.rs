//! Person identity: duplicate detection, the review queue, reversible
//! merges and the timeline every event is written to.

use serde::{Deserialize, Serialize};

use crate::audit::Event;
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::person::{likeness, match_keys, probe_keys, Comparable, Likeness};
use crate::domain::timeline::TimelineKind;
use crate::error::AppError;
use crate::models::persons::{self as model, Person, PersonMerge, TimelineEvent};
use crate::services::journal::Journal;

/// How many candidates a blocking lookup reads at most.
const CANDIDATE_LIMIT: i64 = 500;

fn comparable(p: &Person) -> Comparable<'_> {
    Comparable {
        name_key: &p.name_key,
        birth_date: p.birth_date,
        phone: p.phone.as_deref(),
        email: p.email.as_deref(),
    }
}

/// The blocking keys to store for a person.
pub fn keys_for(p: &Person) -> Vec<String> {
    match_keys(&comparable(p))
}

/// Likely duplicates of `person` among live persons, best first.
pub fn likely_duplicates(
    conn: &mut DbConn,
    person: &Person,
    exclude: Option<Id>,
) -> Result<Vec<(Person, Likeness)>, AppError> {
    let probe = probe_keys(&comparable(person));
    let mut candidates =
        model::candidates_by_keys(conn, &probe.keys, false, exclude, CANDIDATE_LIMIT)?;
    for c in model::candidates_by_keys(conn, &probe.undated_keys, true, exclude, CANDIDATE_LIMIT)? {
        if !candidates.iter().any(|k| k.id == c.id) {
            candidates.push(c);
        }
    }
    Ok(rank(person, candidates))
}

/// The candidates likely to be `person`, best first, at most ten.
fn rank(person: &Person, candidates: Vec<Person>) -> Vec<(Person, Likeness)> {
    let mut found: Vec<(Person, Likeness)> = candidates
        .into_iter()
        .filter_map(|c| {
            let l = likeness(&comparable(person), &comparable(&c));
            l.likely_same.then_some((c, l))
        })
        .collect();
    found.sort_by(|a, b| {
        b.1.score
            .partial_cmp(&a.1.score)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    found.truncate(10);
    found
}

/// Likely duplicates of each of `persons` among live persons with the same
/// folded full name, one list per person, in order: the cheap check bulk
/// imports run for their new persons without a document
/// (`likely_duplicates` also catches misspellings). One indexed query per
/// 900 distinct names instead of one per person: a million-row import
/// checks some 37 000 new persons.
pub fn same_name_duplicates(
    conn: &mut DbConn,
    persons: &[Person],
) -> Result<Vec<Vec<(Person, Likeness)>>, AppError> {
    let mut names: Vec<&str> = persons.iter().map(|p| p.name_key.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut by_name: std::collections::HashMap<String, Vec<Person>> = Default::default();
    for chunk in names.chunks(900) {
        for c in model::candidates_by_name_keys(conn, chunk)? {
            by_name.entry(c.name_key.clone()).or_default().push(c);
        }
    }
    Ok(persons
        .iter()
        .map(|p| {
            let candidates: Vec<Person> = by_name
                .get(&p.name_key)
                .into_iter()
                .flatten()
                .filter(|c| c.id != p.id)
                .take(CANDIDATE_LIMIT as usize)
                .cloned()
                .collect();
            rank(p, candidates)
        })
        .collect())
}

/// Writes one timeline event.
pub fn record_event(
    conn: &mut DbConn,
    person: Id,
    kind: TimelineKind,
    consulate: Option<Id>,
    actor: Option<Id>,
    payload: serde_json::Value,
) -> Result<Id, AppError> {
    let event = TimelineEvent {
        id: Id::new(),
        person_id: person,
        case_id: None,
        consulate_id: consulate,
        kind: kind.as_str().to_owned(),
        at: Ts::now(),
        actor_id: actor,
        attention_type_id: None,
        payload: payload.to_string(),
    };
    model::insert_event(conn, &event)?;
    Ok(event.id)
}

/// A duplicate pair's decision before a merge changed it.
#[derive(Debug, Serialize, Deserialize)]
struct PairBefore {
    id: Id,
    status: String,
    decided_by: Option<Id>,
    decided_at: Option<Ts>,
    reason: Option<String>,
}

/// Everything needed to undo a merge exactly.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    survivor: Person,
    merged: Person,
    documents_moved: Vec<Id>,
    events_moved: Vec<Id>,
    #[serde(default)]
    cases_moved: Vec<Id>,
    survivor_keys: Vec<String>,
    merged_keys: Vec<String>,
    pair: Option<PairBefore>,
    merge_event: Id,
}

/// Folds `merged_id` into `survivor_id`: documents and history move, the
/// survivor takes contact data it lacked, the merged person stays as a
/// tombstone, and the prior state is kept for undo. Conditional updates on
/// both rows make a concurrent merge of either person fail instead of
/// losing or duplicating records.
pub fn merge(
    conn: &mut DbConn,
    merged_id: Id,
    survivor_id: Id,
    reason: &str,
    actor: Id,
) -> Result<PersonMerge, AppError> {
    if merged_id == survivor_id {
        return Err(AppError::invalid(
            "into",
            "a person cannot be merged into themselves",
        ));
    }
    let merged = model::find_person(conn, merged_id)?
        .ok_or_else(|| AppError::not_found(format!("no person `{merged_id}`")))?;
    let survivor = model::find_person(conn, survivor_id)?
        .ok_or_else(|| AppError::invalid("into", format!("no person `{survivor_id}`")))?;
    if merged.merged_into_id.is_some() {
        return Err(AppError::conflict(
            ErrorCode::AlreadyMerged,
            None,
            "this person was already merged",
        ));
    }
    if survivor.merged_into_id.is_some() {
        return Err(AppError::invalid(
            "into",
            "the survivor was merged into someone else; merge into that person",
        ));
    }
    let documents_moved: Vec<Id> = model::documents_of(conn, &[merged.id])?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let events_moved = model::event_ids_of(conn, merged.id)?;
    let cases_moved = crate::models::cases::case_ids_of_person(conn, merged.id)?;
    let pair = model::find_pair(conn, merged.id, survivor.id)?.map(|p| PairBefore {
        id: p.id,
        status: p.status,
        decided_by: p.decided_by,
        decided_at: p.decided_at,
        reason: p.decision_reason,
    });
    let survivor_keys = model::match_keys_of(conn, survivor.id)?;
    let merged_keys = model::match_keys_of(conn, merged.id)?;

    model::move_documents(conn, &documents_moved, survivor.id)?;
    model::move_events(conn, &events_moved, survivor.id)?;
    crate::models::cases::move_cases(conn, &cases_moved, survivor.id)?;

    let now = Ts::now();
    let mut s = survivor.clone();
    s.second_surname = s.second_surname.or(merged.second_surname.clone());
    s.birth_date = s.birth_date.or(merged.birth_date);
    s.phone = s.phone.or(merged.phone.clone());
    s.email = s.email.or(merged.email.clone());
    s.address_abroad = s.address_abroad.or(merged.address_abroad.clone());
    s.version = survivor.version + 1;
    s.updated_at = now;
    let mut m = merged.clone();
    m.merged_into_id = Some(survivor.id);
    m.version = merged.version + 1;
    m.updated_at = now;
    if !model::update_person(conn, &s, survivor.version)?
        || !model::update_person(conn, &m, merged.version)?
    {
        return Err(AppError::conflict(
            ErrorCode::ConcurrentChange,
            None,
            "one of the persons changed meanwhile; try again",
        ));
    }
    model::set_match_keys(conn, s.id, &keys_for(&s))?;
    model::set_match_keys(conn, m.id, &[])?;
    if let Some(before) = &pair {
        model::decide_pair(conn, before.id, "merged", Some(actor), Some(reason))?;
    }
    let merge_id = Id::new();
    let merge_event = record_event(
        conn,
        survivor.id,
        TimelineKind::PersonMerged,
        None,
        Some(actor),
        serde_json::json!({ "merged_person_id": merged.id, "merge_id": merge_id, "reason": reason }),
    )?;
    let snapshot = Snapshot {
        survivor,
        merged,
        documents_moved,
        events_moved,
        cases_moved,
        survivor_keys,
        merged_keys,
        pair,
        merge_event,
    };
    let record = PersonMerge {
        id: merge_id,
        survivor_id,
        merged_id,
        reason: reason.to_owned(),
        actor_id: Some(actor),
        at: now,
        snapshot: serde_json::to_string(&snapshot).map_err(AppError::internal)?,
        undone_at: None,
        undone_by: None,
    };
    model::insert_merge(conn, &record)?;
    Ok(record)
}

/// Restores exactly the state before a merge. Refused (409) when either
/// person changed after the merge, so no later edit is silently lost.
pub fn undo(conn: &mut DbConn, merge_id: Id, actor: Id) -> Result<PersonMerge, AppError> {
    let record = model::find_merge(conn, merge_id)?
        .ok_or_else(|| AppError::not_found(format!("no merge `{merge_id}`")))?;
    if record.undone_at.is_some() {
        return Err(AppError::conflict(
            ErrorCode::AlreadyUndone,
            None,
            "this merge was already undone",
        ));
    }
    let snap: Snapshot = serde_json::from_str(&record.snapshot).map_err(AppError::internal)?;
    let survivor = model::find_person(conn, record.survivor_id)?
        .ok_or_else(|| AppError::not_found("survivor"))?;
    let merged = model::find_person(conn, record.merged_id)?
        .ok_or_else(|| AppError::not_found("merged person"))?;
    if survivor.version != snap.survivor.version + 1 || merged.version != snap.merged.version + 1 {
        return Err(AppError::conflict(
            ErrorCode::ChangedSinceMerge,
            None,
            "a person involved changed after the merge; undoing it now would lose that change",
        ));
    }
    model::delete_event(conn, snap.merge_event)?;
    model::move_events(conn, &snap.events_moved, snap.merged.id)?;
    model::move_documents(conn, &snap.documents_moved, snap.merged.id)?;
    crate::models::cases::move_cases(conn, &snap.cases_moved, snap.merged.id)?;
    model::restore_person(conn, &snap.survivor)?;
    model::restore_person(conn, &snap.merged)?;
    model::set_match_keys(conn, snap.survivor.id, &snap.survivor_keys)?;
    model::set_match_keys(conn, snap.merged.id, &snap.merged_keys)?;
    if let Some(before) = &snap.pair {
        use crate::db::schema::duplicate_pairs;
        use diesel::prelude::*;
        diesel::update(duplicate_pairs::table.find(before.id))
            .set((
                duplicate_pairs::status.eq(&before.status),
                duplicate_pairs::decided_by.eq(before.decided_by),
                duplicate_pairs::decided_at.eq(before.decided_at),
                duplicate_pairs::decision_reason.eq(before.reason.clone()),
            ))
            .execute(conn)?;
    }
    if !model::mark_merge_undone(conn, merge_id, actor)? {
        return Err(AppError::conflict(
            ErrorCode::AlreadyUndone,
            None,
            "this merge was already undone",
        ));
    }
    model::find_merge(conn, merge_id)?.ok_or_else(|| AppError::not_found("merge"))
}

/// What a scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub persons: i64,
    pub likely_pairs: i64,
    pub queued: i64,
}

/// Compares every live person with its blocking-key neighbours and queues
/// likely pairs that are not already known (a pair decided `not_duplicate`
/// is known, so it never comes back).
pub fn scan(conn: &mut DbConn) -> Result<ScanReport, AppError> {
    use crate::db::schema::persons;
    use diesel::prelude::*;
    let mut report = ScanReport::default();
    let mut after: Option<Id> = None;
    loop {
        let mut q = persons::table
            .filter(persons::merged_into_id.is_null())
            .into_boxed::<crate::db::MultiBackend>();
        if let Some(a) = after {
            q = q.filter(persons::id.gt(a));
        }
        let page: Vec<Person> = q
            .order(persons::id)
            .limit(1000)
            .select(Person::as_select())
            .load(conn)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for p in &page {
            report.persons += 1;
            for (other, l) in likely_duplicates(conn, p, Some(p.id))? {
                // Each pair once: from its smaller id.
                if other.id < p.id {
                    continue;
                }
                report.likely_pairs += 1;
                if crate::db::write_tx::<_, AppError, _>(conn, |conn| {
                    Ok(model::queue_pair(
                        conn, p.id, other.id, l.score, &l.reasons, "scan",
                    )?)
                })? {
                    report.queued += 1;
                }
            }
        }
    }
    Ok(report)
}

/// Records that a queued pair are different people (once), through the
/// write recipe.
pub fn decide_not_duplicate(
    conn: &mut DbConn,
    journal: &mut Journal,
    actor: Id,
    raw: &str,
    reason: &str,
) -> Result<model::DuplicatePair, AppError> {
    let missing = || AppError::not_found(format!("no pair `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let pair = model::find_pair_by_id(conn, id)?.ok_or_else(missing)?;
    if pair.status != "open" {
        return Err(AppError::conflict(
            ErrorCode::AlreadyDecided,
            None,
            format!("this pair is already `{}`", pair.status),
        ));
    }
    model::decide_pair(conn, id, "not_duplicate", Some(actor), Some(reason))?;
    journal.audit(
        Event::new(
            AuditAction::DuplicateNotDuplicate,
            "duplicate_pair",
            Some(id.to_string()),
        )
        .subject(pair.person_a)
        .details(serde_json::json!({ "person_b": pair.person_b, "reason": reason })),
    );
    model::find_pair_by_id(conn, id)?.ok_or_else(|| AppError::not_found("pair"))
}

/// [`merge`] through the write recipe.
pub fn merge_recorded(
    conn: &mut DbConn,
    journal: &mut Journal,
    merged: Id,
    survivor: Id,
    reason: &str,
    actor: Id,
) -> Result<PersonMerge, AppError> {
    let m = merge(conn, merged, survivor, reason, actor)?;
    journal.audit(
        Event::new(AuditAction::PersonMerge, "person", Some(merged.to_string()))
            .subject(survivor)
            .details(serde_json::json!({ "merged": merged, "survivor": survivor, "merge_id": m.id, "reason": reason })),
    );
    Ok(m)
}

/// [`undo`] through the write recipe.
pub fn undo_recorded(
    conn: &mut DbConn,
    journal: &mut Journal,
    merge_id: Id,
    actor: Id,
) -> Result<PersonMerge, AppError> {
    let m = undo(conn, merge_id, actor)?;
    journal.audit(
        Event::new(
            AuditAction::PersonMergeUndo,
            "person_merge",
            Some(merge_id.to_string()),
        )
        .subject(m.survivor_id)
        .details(serde_json::json!({ "merged": m.merged_id, "survivor": m.survivor_id })),
    );
    Ok(m)
}
