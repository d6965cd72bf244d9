//! Regions, countries and consulates.

use diesel::prelude::*;

use crate::db::schema::{consulate_jurisdictions, consulates, countries, regions};
use crate::db::{DbConn, Id, MultiBackend, Ts};
use crate::domain::text::escape_like;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = regions)]
pub struct Region {
    pub code: String,
    pub name_es: String,
    pub name_en: String,
    pub sort_order: i32,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = countries)]
pub struct Country {
    pub alpha2: String,
    pub alpha3: String,
    pub name_es: String,
    pub name_en: String,
    pub region_code: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consulates)]
pub struct Consulate {
    pub id: Id,
    pub code: String,
    pub kind: String,
    pub name_es: String,
    pub name_en: String,
    pub city: String,
    pub country_code: String,
    pub active: bool,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
    /// The city's English name, when it differs or is known.
    pub city_en: Option<String>,
}

/// A consulate with what its API representation needs from other tables.
#[derive(Debug, Clone)]
pub struct ConsulateDetail {
    pub consulate: Consulate,
    pub country: Country,
    pub jurisdiction: Vec<String>,
}

/// A window into an ordered list.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub limit: i64,
    pub offset: i64,
}

pub fn list_regions(conn: &mut DbConn) -> QueryResult<Vec<Region>> {
    regions::table
        .order(regions::sort_order)
        .select(Region::as_select())
        .load(conn)
}

/// Filters for the country list.
#[derive(Debug, Default, Clone)]
pub struct CountryFilter {
    pub region: Option<String>,
    /// Already folded with `fold_key`.
    pub search: Option<String>,
}

fn countries_query(filter: &CountryFilter) -> countries::BoxedQuery<'static, MultiBackend> {
    let mut query = countries::table.into_boxed::<MultiBackend>();
    if let Some(region) = &filter.region {
        query = query.filter(countries::region_code.eq(region.clone()));
    }
    if let Some(search) = &filter.search {
        let pattern = format!("%{}%", escape_like(search));
        query = query.filter(countries::search_key.like(pattern).escape('\\'));
    }
    query
}

/// Countries in folded Spanish-name order (the same on both backends,
/// whatever their collations), and how many match in all.
pub fn list_countries(
    conn: &mut DbConn,
    filter: &CountryFilter,
    window: Window,
) -> QueryResult<(Vec<Country>, i64)> {
    let total = countries_query(filter).count().get_result(conn)?;
    let items = countries_query(filter)
        .order(countries::search_key)
        .limit(window.limit)
        .offset(window.offset)
        .select(Country::as_select())
        .load(conn)?;
    Ok((items, total))
}

/// Finds a country by alpha-2 or alpha-3 code, case-insensitively.
pub fn find_country_by_code(conn: &mut DbConn, code: &str) -> QueryResult<Option<Country>> {
    let code = code.trim().to_ascii_uppercase();
    let query = countries::table.select(Country::as_select());
    match code.len() {
        2 => query.find(code).first(conn).optional(),
        3 => query
            .filter(countries::alpha3.eq(code))
            .first(conn)
            .optional(),
        _ => Ok(None),
    }
}

/// Filters for the consulate list; codes already resolved to alpha-2.
#[derive(Debug, Default, Clone)]
pub struct ConsulateFilter {
    pub country: Option<String>,
    pub region: Option<String>,
    pub jurisdiction: Option<String>,
    pub active: Option<bool>,
}

fn consulates_query(
    filter: &ConsulateFilter,
) -> diesel::dsl::IntoBoxed<
    'static,
    diesel::dsl::InnerJoin<consulates::table, countries::table>,
    MultiBackend,
> {
    let mut query = consulates::table
        .inner_join(countries::table)
        .into_boxed::<MultiBackend>();
    if let Some(country) = &filter.country {
        query = query.filter(consulates::country_code.eq(country.clone()));
    }
    if let Some(region) = &filter.region {
        query = query.filter(countries::region_code.eq(region.clone()));
    }
    if let Some(jurisdiction) = &filter.jurisdiction {
        query = query.filter(
            consulates::id.eq_any(
                consulate_jurisdictions::table
                    .filter(consulate_jurisdictions::country_code.eq(jurisdiction.clone()))
                    .select(consulate_jurisdictions::consulate_id),
            ),
        );
    }
    if let Some(active) = filter.active {
        query = query.filter(consulates::active.eq(active));
    }
    query
}

fn jurisdictions_of(conn: &mut DbConn, ids: &[Id]) -> QueryResult<Vec<(Id, String)>> {
    consulate_jurisdictions::table
        .filter(consulate_jurisdictions::consulate_id.eq_any(ids.to_vec()))
        .order((
            consulate_jurisdictions::consulate_id,
            consulate_jurisdictions::country_code,
        ))
        .select((
            consulate_jurisdictions::consulate_id,
            consulate_jurisdictions::country_code,
        ))
        .load(conn)
}

fn with_jurisdictions(
    conn: &mut DbConn,
    rows: Vec<(Consulate, Country)>,
) -> QueryResult<Vec<ConsulateDetail>> {
    let ids: Vec<Id> = rows.iter().map(|(c, _)| c.id).collect();
    let pairs = if ids.is_empty() {
        Vec::new()
    } else {
        jurisdictions_of(conn, &ids)?
    };
    Ok(rows
        .into_iter()
        .map(|(consulate, country)| {
            let jurisdiction = pairs
                .iter()
                .filter(|(id, _)| *id == consulate.id)
                .map(|(_, code)| code.clone())
                .collect();
            ConsulateDetail {
                consulate,
                country,
                jurisdiction,
            }
        })
        .collect())
}

/// Consulates ordered by code (country, then city), with their countries and
/// jurisdictions, and how many match in all.
pub fn list_consulates(
    conn: &mut DbConn,
    filter: &ConsulateFilter,
    window: Window,
) -> QueryResult<(Vec<ConsulateDetail>, i64)> {
    let total = consulates_query(filter).count().get_result(conn)?;
    let rows: Vec<(Consulate, Country)> = consulates_query(filter)
        .order(consulates::code)
        .limit(window.limit)
        .offset(window.offset)
        .select((Consulate::as_select(), Country::as_select()))
        .load(conn)?;
    Ok((with_jurisdictions(conn, rows)?, total))
}

/// How a consulate is named in a path: its id or its stable code.
#[derive(Debug, Clone)]
pub enum ConsulateKey {
    Id(Id),
    Code(String),
}

pub fn find_consulate(
    conn: &mut DbConn,
    key: &ConsulateKey,
) -> QueryResult<Option<ConsulateDetail>> {
    let query = consulates::table
        .inner_join(countries::table)
        .select((Consulate::as_select(), Country::as_select()));
    let row: Option<(Consulate, Country)> = match key {
        ConsulateKey::Id(id) => query
            .filter(consulates::id.eq(*id))
            .first(conn)
            .optional()?,
        ConsulateKey::Code(code) => query
            .filter(consulates::code.eq(code.to_ascii_uppercase()))
            .first(conn)
            .optional()?,
    };
    match row {
        None => Ok(None),
        Some(row) => Ok(with_jurisdictions(conn, vec![row])?.pop()),
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = consulates)]
pub struct NewConsulate {
    pub id: Id,
    pub code: String,
    pub kind: String,
    pub name_es: String,
    pub name_en: String,
    pub city: String,
    pub city_en: Option<String>,
    pub country_code: String,
    pub active: bool,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

pub fn insert_consulate(
    conn: &mut DbConn,
    new: &NewConsulate,
    jurisdiction: &[String],
) -> QueryResult<()> {
    diesel::insert_into(consulates::table)
        .values(new)
        .execute(conn)?;
    replace_jurisdiction(conn, new.id, jurisdiction)
}

/// Sets a consulate's jurisdiction to exactly these countries.
pub fn replace_jurisdiction(
    conn: &mut DbConn,
    consulate: Id,
    countries: &[String],
) -> QueryResult<()> {
    diesel::delete(
        consulate_jurisdictions::table.filter(consulate_jurisdictions::consulate_id.eq(consulate)),
    )
    .execute(conn)?;
    for country in countries {
        diesel::insert_into(consulate_jurisdictions::table)
            .values((
                consulate_jurisdictions::consulate_id.eq(consulate),
                consulate_jurisdictions::country_code.eq(country),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The changeable fields of a consulate.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = consulates, treat_none_as_null = true)]
pub struct ConsulateChanges {
    pub kind: String,
    pub name_es: String,
    pub name_en: String,
    pub city: String,
    pub city_en: Option<String>,
    pub active: bool,
    pub version: i32,
    pub updated_at: Ts,
}

/// Applies changes if the row is still at `expected_version`; false if not.
pub fn update_consulate(
    conn: &mut DbConn,
    id: Id,
    expected_version: i32,
    changes: &ConsulateChanges,
) -> QueryResult<bool> {
    let changed = diesel::update(
        consulates::table
            .filter(consulates::id.eq(id))
            .filter(consulates::version.eq(expected_version)),
    )
    .set(changes)
    .execute(conn)?;
    Ok(changed == 1)
}

/// The country of a consulate.
pub fn consulate_country(conn: &mut DbConn, id: Id) -> QueryResult<String> {
    consulates::table
        .find(id)
        .select(consulates::country_code)
        .first(conn)
}
