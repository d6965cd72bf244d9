//! Multi-row inserts for generated or imported populations (demo data, the
//! legacy import): persons, their match keys, cases, attentions and timeline
//! events, parents before children (`COPY` on PostgreSQL, multi-row inserts
//! on SQLite; see [`crate::bulk_insert!`]).

use diesel::prelude::*;

use crate::bulk_insert;
use crate::db::bulk::columns;
use crate::db::bulk::raw_insert::RawInserts;
use crate::db::schema::{
    attentions as at, cases as ct, person_match_keys as mk, persons as pt, timeline_events as te,
};
use crate::db::{DbConn, Id};
use crate::models::cases::{Attention, Case};
use crate::models::persons::{Person, TimelineEvent};

/// Inserts the rows as given; the caller owns the transaction.
pub fn insert_population(
    conn: &mut DbConn,
    persons: &[Person],
    keys: &[(Id, String)],
    cases: &[Case],
    attentions: &[Attention],
    events: &[TimelineEvent],
) -> QueryResult<()> {
    bulk_insert!(conn, pt::table, persons, 100)?;
    let key_rows: Vec<_> = keys
        .iter()
        .map(|(p, k)| (mk::person_id.eq(*p), mk::match_key.eq(k.clone())))
        .collect();
    bulk_insert!(conn, mk::table, &key_rows, 500)?;
    bulk_insert!(conn, ct::table, cases, 100)?;
    bulk_insert!(conn, at::table, attentions, 100)?;
    bulk_insert!(conn, te::table, events, 200)?;
    Ok(())
}

/// [`insert_population`] through prepared statements on the connection's
/// SQLite handle ([`RawInserts`]); the caller owns the transaction.
pub fn insert_population_raw(
    conn: &mut DbConn,
    raw: &mut RawInserts,
    rows: Population<'_>,
) -> QueryResult<()> {
    raw.insert(conn, &columns::PERSONS, rows.persons, |p, b| {
        b.id(p.id)?;
        b.text(&p.given_names)?;
        b.text(&p.first_surname)?;
        b.opt_text(p.second_surname.as_deref())?;
        b.opt_date(p.birth_date)?;
        b.text(&p.sex)?;
        b.text(&p.nationalities)?;
        b.opt_text(p.phone.as_deref())?;
        b.opt_text(p.email.as_deref())?;
        b.opt_text(p.address_abroad.as_deref())?;
        b.text(&p.name_key)?;
        b.opt_id(p.registered_consulate_id)?;
        b.opt_id(p.merged_into_id)?;
        b.int(p.version.into())?;
        b.ts(p.created_at)?;
        b.ts(p.updated_at)
    })?;
    raw.insert(conn, &columns::PERSON_MATCH_KEYS, rows.keys, |(p, k), b| {
        b.id(*p)?;
        b.text(k)
    })?;
    raw.insert(conn, &columns::CASES, rows.cases, |c, b| {
        b.id(c.id)?;
        b.id(c.person_id)?;
        b.id(c.consulate_id)?;
        b.text(&c.country_code)?;
        b.opt_text(c.city.as_deref())?;
        b.text(&c.channel)?;
        b.text(&c.requester_kind)?;
        b.opt_text(c.requester_name.as_deref())?;
        b.opt_text(c.requester_relationship.as_deref())?;
        b.opt_text(c.requester_contact.as_deref())?;
        b.text(&c.summary)?;
        b.text(&c.flags)?;
        b.bool(c.protected)?;
        b.text(&c.status)?;
        b.opt_text(c.outcome.as_deref())?;
        b.opt_ts(c.closed_at)?;
        b.opt_id(c.assigned_officer_id)?;
        b.ts(c.opened_at)?;
        b.opt_id(c.created_by)?;
        b.int(c.version.into())?;
        b.ts(c.created_at)?;
        b.ts(c.updated_at)
    })?;
    raw.insert(conn, &columns::ATTENTIONS, rows.attentions, |a, b| {
        b.id(a.id)?;
        b.id(a.case_id)?;
        b.id(a.person_id)?;
        b.id(a.consulate_id)?;
        b.id(a.attention_type_id)?;
        b.date(a.attended_on)?;
        b.text(&a.channel)?;
        b.opt_id(a.officer_id)?;
        b.text(&a.description)?;
        b.bool(a.late_registration)?;
        b.opt_ts(a.voided_at)?;
        b.opt_id(a.voided_by)?;
        b.opt_text(a.void_reason.as_deref())?;
        b.ts(a.created_at)?;
        b.opt_text(a.country_code.as_deref())?;
        b.opt_text(a.person_sex.as_deref())?;
        b.opt_date(a.person_birth_date)
    })?;
    raw.insert(conn, &columns::TIMELINE_EVENTS, rows.events, |e, b| {
        b.id(e.id)?;
        b.id(e.person_id)?;
        b.opt_id(e.case_id)?;
        b.opt_id(e.consulate_id)?;
        b.text(&e.kind)?;
        b.ts(e.at)?;
        b.opt_id(e.actor_id)?;
        b.opt_id(e.attention_type_id)?;
        b.text(&e.payload)
    })
}

/// The rows [`insert_population_raw`] writes, parents before children.
#[derive(Clone, Copy)]
pub struct Population<'a> {
    pub persons: &'a [Person],
    pub keys: &'a [(Id, String)],
    pub cases: &'a [Case],
    pub attentions: &'a [Attention],
    pub events: &'a [TimelineEvent],
}
