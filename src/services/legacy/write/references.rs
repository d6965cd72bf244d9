//! What a batch's rows reference in other tables, for the foreign keys
//! checked once per batch (`db::bulk::checked_load`) instead of per row: only
//! parents the batch does not insert itself are looked up.

use super::*;

/// The tables `write_rows` and `queue_duplicates` write.
pub(in crate::services::legacy) const BATCH_TABLES: &[&str] = &[
    "duplicate_pairs",
    "persons",
    "person_match_keys",
    "person_documents",
    "cases",
    "attentions",
    "timeline_events",
    "legacy_cases",
    "legacy_rows",
    "import_rejections",
];

/// The values a batch writes to each key column of `BATCH_TABLES`, for
/// `checked_load` (which refuses the batch if a key column is missing here).
///
/// A reference to a row the batch itself inserts (a new person, case or
/// attention) is left out: the batch's inserts succeeded, in the same
/// transaction, before the check runs, so that row is there. Only the
/// references to rows from before the batch are looked up (a million-row
/// import: the lookups were ~7 % of the writer's time).
pub(in crate::services::legacy) fn referenced(b: &Batch) -> Vec<Written> {
    use Values as V;
    let (persons, cases, attentions, events) = (&b.persons, &b.cases, &b.attentions, &b.events);
    let new_persons: HashSet<Id> = persons.iter().map(|p| p.id).collect();
    let new_cases: HashSet<Id> = cases.iter().map(|c| c.id).collect();
    let new_attentions: HashSet<Id> = attentions.iter().map(|a| a.id).collect();
    let person = |id: &Id| !new_persons.contains(id);
    let case = |id: &Id| !new_cases.contains(id);
    let attention = |id: &Id| !new_attentions.contains(id);
    [
        (
            "persons",
            "merged_into_id",
            V::some_ids(persons.iter().map(|p| p.merged_into_id)),
        ),
        (
            "persons",
            "registered_consulate_id",
            V::some_ids(persons.iter().map(|p| p.registered_consulate_id)),
        ),
        (
            "person_match_keys",
            "person_id",
            V::ids(b.keys.iter().map(|k| k.0).filter(person)),
        ),
        (
            "person_documents",
            "person_id",
            V::ids(b.documents.iter().map(|d| d.person_id).filter(person)),
        ),
        (
            "person_documents",
            "issuing_country",
            V::texts(b.documents.iter().map(|d| d.issuing_country.as_str())),
        ),
        (
            "cases",
            "person_id",
            V::ids(cases.iter().map(|c| c.person_id).filter(person)),
        ),
        (
            "cases",
            "consulate_id",
            V::ids(cases.iter().map(|c| c.consulate_id)),
        ),
        (
            "cases",
            "country_code",
            V::texts(cases.iter().map(|c| c.country_code.as_str())),
        ),
        (
            "cases",
            "assigned_officer_id",
            V::some_ids(cases.iter().map(|c| c.assigned_officer_id)),
        ),
        (
            "cases",
            "created_by",
            V::some_ids(cases.iter().map(|c| c.created_by)),
        ),
        (
            "attentions",
            "case_id",
            V::ids(attentions.iter().map(|a| a.case_id).filter(case)),
        ),
        (
            "attentions",
            "person_id",
            V::ids(attentions.iter().map(|a| a.person_id).filter(person)),
        ),
        (
            "attentions",
            "consulate_id",
            V::ids(attentions.iter().map(|a| a.consulate_id)),
        ),
        (
            "attentions",
            "attention_type_id",
            V::ids(attentions.iter().map(|a| a.attention_type_id)),
        ),
        (
            "attentions",
            "country_code",
            V::texts(attentions.iter().filter_map(|a| a.country_code.as_deref())),
        ),
        (
            "attentions",
            "officer_id",
            V::some_ids(attentions.iter().map(|a| a.officer_id)),
        ),
        (
            "attentions",
            "voided_by",
            V::some_ids(attentions.iter().map(|a| a.voided_by)),
        ),
        (
            "timeline_events",
            "person_id",
            V::ids(events.iter().map(|e| e.person_id).filter(person)),
        ),
        (
            "timeline_events",
            "consulate_id",
            V::some_ids(events.iter().map(|e| e.consulate_id)),
        ),
        (
            "timeline_events",
            "actor_id",
            V::some_ids(events.iter().map(|e| e.actor_id)),
        ),
        (
            "timeline_events",
            "attention_type_id",
            V::some_ids(events.iter().map(|e| e.attention_type_id)),
        ),
        (
            "legacy_cases",
            "person_id",
            V::ids(b.legacy_cases.iter().map(|c| c.0).filter(person)),
        ),
        (
            "legacy_cases",
            "consulate_id",
            V::ids(b.legacy_cases.iter().map(|c| c.1)),
        ),
        (
            "legacy_cases",
            "country_code",
            V::texts(b.legacy_cases.iter().map(|c| c.2.as_str())),
        ),
        (
            "legacy_cases",
            "case_id",
            V::ids(b.legacy_cases.iter().map(|c| c.4).filter(case)),
        ),
        (
            "legacy_rows",
            "import_id",
            V::ids(b.legacy_rows.iter().map(|r| r.1)),
        ),
        (
            "legacy_rows",
            "attention_id",
            V::ids(b.legacy_rows.iter().map(|r| r.3).filter(attention)),
        ),
        (
            "import_rejections",
            "import_id",
            V::ids(b.rejections.iter().map(|_| b.import_id)),
        ),
    ]
    .map(|(table, column, values)| Written {
        table,
        column,
        values,
    })
    .into()
}
