//! The organisation directory (with the consulates each entry serves) and
//! the referrals of cases to its organisations.

use super::*;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = organisations)]
#[diesel(treat_none_as_null = true)]
pub struct Organisation {
    pub id: Id,
    pub name: String,
    pub kind: String,
    pub country_code: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub attention_categories: String,
    pub languages: String,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub notes: Option<String>,
    pub search_key: String,
    pub public: bool,
    pub active: bool,
    pub verified_at: Option<Ts>,
    pub verified_by: Option<Id>,
    pub version: i32,
    pub created_by: Option<Id>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

pub fn insert_organisation(
    conn: &mut DbConn,
    o: &Organisation,
    consulates: &[Id],
) -> QueryResult<()> {
    diesel::insert_into(organisations::table)
        .values(o)
        .execute(conn)?;
    set_organisation_consulates(conn, o.id, consulates)
}

pub fn set_organisation_consulates(
    conn: &mut DbConn,
    organisation: Id,
    consulates: &[Id],
) -> QueryResult<()> {
    diesel::delete(
        organisation_consulates::table
            .filter(organisation_consulates::organisation_id.eq(organisation)),
    )
    .execute(conn)?;
    for c in consulates {
        diesel::insert_into(organisation_consulates::table)
            .values((
                organisation_consulates::organisation_id.eq(organisation),
                organisation_consulates::consulate_id.eq(*c),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn find_organisation(conn: &mut DbConn, id: Id) -> QueryResult<Option<Organisation>> {
    organisations::table
        .find(id)
        .select(Organisation::as_select())
        .first(conn)
        .optional()
}

/// Writes the organisation if it is still at `expected_version`.
pub fn update_organisation(
    conn: &mut DbConn,
    o: &Organisation,
    expected_version: i32,
) -> QueryResult<bool> {
    let n = diesel::update(
        organisations::table
            .filter(organisations::id.eq(o.id))
            .filter(organisations::version.eq(expected_version)),
    )
    .set(o)
    .execute(conn)?;
    Ok(n == 1)
}

/// The consulates each of these organisations serves.
pub fn consulates_of(conn: &mut DbConn, orgs: &[Id]) -> QueryResult<Vec<(Id, Id)>> {
    organisation_consulates::table
        .filter(organisation_consulates::organisation_id.eq_any(orgs.to_vec()))
        .select((
            organisation_consulates::organisation_id,
            organisation_consulates::consulate_id,
        ))
        .order((
            organisation_consulates::organisation_id,
            organisation_consulates::consulate_id,
        ))
        .load(conn)
}

#[derive(Debug, Default, Clone)]
pub struct OrganisationFilter {
    /// Only public ones or those serving this consulate.
    pub visible_to: Option<Id>,
    /// Only those serving this consulate.
    pub serving: Option<Id>,
    pub country: Option<String>,
    pub kind: Option<String>,
    /// Folded with `fold_key`; matched against name and city.
    pub search: Option<String>,
    /// `Some(t)`: only the ones verified before `t` or never (stale);
    /// `stale_only = false` with `Some(t)`: only the fresh ones.
    pub stale_before: Option<(Ts, bool)>,
    pub include_inactive: bool,
    /// Only those helping with this attention category (JSON contains).
    pub category_like: Option<String>,
}

pub fn list_organisations(
    conn: &mut DbConn,
    f: &OrganisationFilter,
    window: Window,
) -> QueryResult<(Vec<Organisation>, i64)> {
    let build = || {
        let mut q = organisations::table.into_boxed::<MultiBackend>();
        if let Some(c) = f.visible_to {
            let serving = organisation_consulates::table
                .filter(organisation_consulates::consulate_id.eq(c))
                .select(organisation_consulates::organisation_id);
            q = q.filter(
                organisations::public
                    .eq(true)
                    .or(organisations::id.eq_any(serving)),
            );
        }
        if let Some(c) = f.serving {
            let serving = organisation_consulates::table
                .filter(organisation_consulates::consulate_id.eq(c))
                .select(organisation_consulates::organisation_id);
            q = q.filter(organisations::id.eq_any(serving));
        }
        if let Some(c) = &f.country {
            q = q.filter(organisations::country_code.eq(c.clone()));
        }
        if let Some(k) = &f.kind {
            q = q.filter(organisations::kind.eq(k.clone()));
        }
        if let Some(s) = &f.search {
            let pattern = format!("%{}%", crate::domain::text::escape_like(s));
            q = q.filter(organisations::search_key.like(pattern).escape('\\'));
        }
        if let Some(c) = &f.category_like {
            q = q.filter(organisations::attention_categories.like(format!("%\"{c}\"%")));
        }
        match f.stale_before {
            Some((t, true)) => {
                q = q.filter(
                    organisations::verified_at
                        .is_null()
                        .or(organisations::verified_at.lt(t)),
                )
            }
            Some((t, false)) => q = q.filter(organisations::verified_at.ge(t)),
            None => {}
        }
        if !f.include_inactive {
            q = q.filter(organisations::active.eq(true));
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((organisations::name, organisations::id))
        .limit(window.limit)
        .offset(window.offset)
        .select(Organisation::as_select())
        .load(conn)?;
    Ok((rows, total))
}

// --- referrals -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = referrals)]
#[diesel(treat_none_as_null = true)]
pub struct Referral {
    pub id: Id,
    pub case_id: Id,
    pub person_id: Id,
    pub consulate_id: Id,
    pub organisation_id: Id,
    pub reason: String,
    pub status: String,
    pub sent_on: NaiveDate,
    pub responded_on: Option<NaiveDate>,
    pub completed_on: Option<NaiveDate>,
    pub outcome: Option<String>,
    pub created_by: Option<Id>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

pub fn insert_referral(conn: &mut DbConn, r: &Referral) -> QueryResult<()> {
    diesel::insert_into(referrals::table)
        .values(r)
        .execute(conn)
        .map(|_| ())
}

pub fn find_referral(conn: &mut DbConn, id: Id) -> QueryResult<Option<Referral>> {
    referrals::table
        .find(id)
        .select(Referral::as_select())
        .first(conn)
        .optional()
}

pub fn update_referral(
    conn: &mut DbConn,
    r: &Referral,
    expected_version: i32,
) -> QueryResult<bool> {
    let n = diesel::update(
        referrals::table
            .filter(referrals::id.eq(r.id))
            .filter(referrals::version.eq(expected_version)),
    )
    .set(r)
    .execute(conn)?;
    Ok(n == 1)
}

#[derive(Debug, Default, Clone)]
pub struct ReferralFilter {
    pub consulate: Option<Id>,
    pub case: Option<Id>,
    pub organisation: Option<Id>,
    pub status: Option<String>,
    pub sent_from: Option<NaiveDate>,
    pub sent_to: Option<NaiveDate>,
}

pub fn list_referrals(
    conn: &mut DbConn,
    f: &ReferralFilter,
    window: Window,
) -> QueryResult<(Vec<Referral>, i64)> {
    let build = || {
        let mut q = referrals::table.into_boxed::<MultiBackend>();
        if let Some(c) = f.consulate {
            q = q.filter(referrals::consulate_id.eq(c));
        }
        if let Some(c) = f.case {
            q = q.filter(referrals::case_id.eq(c));
        }
        if let Some(o) = f.organisation {
            q = q.filter(referrals::organisation_id.eq(o));
        }
        if let Some(s) = &f.status {
            q = q.filter(referrals::status.eq(s.clone()));
        }
        if let Some(d) = f.sent_from {
            q = q.filter(referrals::sent_on.ge(d));
        }
        if let Some(d) = f.sent_to {
            q = q.filter(referrals::sent_on.le(d));
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((referrals::sent_on.desc(), referrals::created_at.desc()))
        .limit(window.limit)
        .offset(window.offset)
        .select(Referral::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn referrals_of_case(conn: &mut DbConn, case: Id) -> QueryResult<Vec<Referral>> {
    referrals::table
        .filter(referrals::case_id.eq(case))
        .order((referrals::sent_on, referrals::created_at))
        .select(Referral::as_select())
        .load(conn)
}
