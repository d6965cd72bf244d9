//! Reference data loaded after every migration run: the report's five
//! regions, every ISO 3166-1 country and Peru's consular offices. Idempotent:
//! rows already present (and any administrator's edits to them) are kept.

use anyhow::{anyhow, bail, Context};
use diesel::prelude::*;

use crate::db::schema::{consulate_jurisdictions, consulates, countries, regions};
use crate::db::{DbConn, Id, Ts};
use crate::domain::reference::ConsulateKind;
use crate::domain::text::fold_key;
use crate::per_backend;

const COUNTRIES_TSV: &str = include_str!("../reference/countries.tsv");
const CONSULATES_TSV: &str = include_str!("../reference/consulates.tsv");

/// (code, Spanish name, English name): the regions of the evaluation report's
/// Table 13, in its order. The code is the folded Spanish name.
pub const REGIONS: [(&str, &str, &str); 5] = [
    ("africa", "África", "Africa"),
    ("america", "América", "Americas"),
    ("asia", "Asia", "Asia"),
    ("europa", "Europa", "Europe"),
    ("oceania", "Oceanía", "Oceania"),
];

#[derive(Insertable)]
#[diesel(table_name = regions)]
struct NewRegion<'a> {
    code: &'a str,
    name_es: &'a str,
    name_en: &'a str,
    sort_order: i32,
}

#[derive(Insertable)]
#[diesel(table_name = countries)]
struct NewCountry<'a> {
    alpha2: &'a str,
    alpha3: &'a str,
    name_es: &'a str,
    name_en: &'a str,
    region_code: &'a str,
    search_key: String,
}

#[derive(Insertable)]
#[diesel(table_name = consulates)]
struct NewConsulate<'a> {
    id: Id,
    code: &'a str,
    kind: &'a str,
    name_es: String,
    name_en: String,
    city: &'a str,
    city_en: &'a str,
    country_code: &'a str,
    active: bool,
    version: i32,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Insertable)]
#[diesel(table_name = consulate_jurisdictions)]
struct NewJurisdiction<'a> {
    consulate_id: Id,
    country_code: &'a str,
}

/// The accent- and case-folded text a country is searched by.
pub fn country_search_key(alpha2: &str, alpha3: &str, name_es: &str, name_en: &str) -> String {
    format!(
        "{} | {} | {} | {}",
        fold_key(name_es),
        fold_key(name_en),
        alpha2.to_ascii_lowercase(),
        alpha3.to_ascii_lowercase()
    )
}

fn data_lines(tsv: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    tsv.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l.split('\t').collect()))
}

fn parse_countries() -> anyhow::Result<Vec<NewCountry<'static>>> {
    let mut out = Vec::new();
    for (line, cols) in data_lines(COUNTRIES_TSV) {
        let [alpha2, alpha3, region, name_es, name_en] = cols[..] else {
            bail!(
                "countries.tsv line {line}: expected 5 columns, found {}",
                cols.len()
            );
        };
        if !REGIONS.iter().any(|r| r.0 == region) {
            bail!("countries.tsv line {line}: unknown region {region}");
        }
        out.push(NewCountry {
            alpha2,
            alpha3,
            name_es,
            name_en,
            region_code: region,
            search_key: country_search_key(alpha2, alpha3, name_es, name_en),
        });
    }
    Ok(out)
}

struct ConsulateRow {
    code: &'static str,
    kind: ConsulateKind,
    country: &'static str,
    city_es: &'static str,
    city_en: &'static str,
    jurisdiction: Vec<&'static str>,
}

fn parse_consulates() -> anyhow::Result<Vec<ConsulateRow>> {
    let mut out = Vec::new();
    for (line, cols) in data_lines(CONSULATES_TSV) {
        let [code, kind, country, city_es, city_en, extra] = cols[..] else {
            bail!(
                "consulates.tsv line {line}: expected 6 columns, found {}",
                cols.len()
            );
        };
        let kind = ConsulateKind::parse(kind)
            .ok_or_else(|| anyhow!("consulates.tsv line {line}: unknown kind {kind}"))?;
        let mut jurisdiction = vec![country];
        jurisdiction.extend(extra.split(',').map(str::trim).filter(|c| !c.is_empty()));
        out.push(ConsulateRow {
            code,
            kind,
            country,
            city_es,
            city_en,
            jurisdiction,
        });
    }
    Ok(out)
}

/// Inserts whatever reference rows are missing, in one transaction.
pub fn load_reference_data(conn: &mut DbConn) -> anyhow::Result<()> {
    let new_countries = parse_countries()?;
    let offices = parse_consulates()?;
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        // Insert only what is missing: SQLite cannot batch-insert with ON
        // CONFLICT through diesel, and the tables are small.
        let known_regions: Vec<String> = regions::table.select(regions::code).load(conn)?;
        let new_regions: Vec<NewRegion> = REGIONS
            .iter()
            .zip(1..)
            .filter(|((code, _, _), _)| !known_regions.iter().any(|k| k == code))
            .map(|((code, es, en), sort_order)| NewRegion {
                code,
                name_es: es,
                name_en: en,
                sort_order,
            })
            .collect();
        if !new_regions.is_empty() {
            per_backend!(conn, |c| diesel::insert_into(regions::table)
                .values(&new_regions)
                .execute(c))
            .context("loading regions")?;
        }
        let known_countries: Vec<String> = countries::table.select(countries::alpha2).load(conn)?;
        let new_countries: Vec<&NewCountry> = new_countries
            .iter()
            .filter(|c| !known_countries.iter().any(|k| k == c.alpha2))
            .collect();
        if !new_countries.is_empty() {
            per_backend!(conn, |c| diesel::insert_into(countries::table)
                .values(new_countries.clone())
                .execute(c))
            .context("loading countries")?;
        }

        let existing: Vec<String> = consulates::table.select(consulates::code).load(conn)?;
        let now = Ts::now();
        let mut new_offices = Vec::new();
        let mut new_jurisdictions = Vec::new();
        for office in offices
            .iter()
            .filter(|o| !existing.iter().any(|e| e == o.code))
        {
            let id = Id::new();
            new_offices.push(NewConsulate {
                id,
                code: office.code,
                kind: office.kind.as_str(),
                name_es: office.kind.name_es(office.city_es),
                name_en: office.kind.name_en(office.city_en),
                city: office.city_es,
                city_en: office.city_en,
                country_code: office.country,
                active: true,
                version: 1,
                created_at: now,
                updated_at: now,
            });
            new_jurisdictions.extend(office.jurisdiction.iter().map(|country_code| {
                NewJurisdiction {
                    consulate_id: id,
                    country_code,
                }
            }));
        }
        if !new_offices.is_empty() {
            per_backend!(conn, |c| diesel::insert_into(consulates::table)
                .values(&new_offices)
                .execute(c))
            .context("loading consulates")?;
            per_backend!(conn, |c| diesel::insert_into(
                consulate_jurisdictions::table
            )
            .values(&new_jurisdictions)
            .execute(c))
            .context("loading consulate jurisdictions")?;
        }
        Ok(())
    })
}

/// Gives the shipped offices their English city, for a database migrated
/// to the column (`migrate` calls it once, when that migration runs).
pub fn record_english_cities(conn: &mut DbConn) -> anyhow::Result<()> {
    for office in parse_consulates()? {
        diesel::update(
            consulates::table
                .filter(consulates::code.eq(office.code))
                .filter(consulates::city_en.is_null()),
        )
        .set(consulates::city_en.eq(office.city_en))
        .execute(conn)
        .context("recording the offices' English city names")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_reference_files_parse() {
        let countries = parse_countries().expect("countries.tsv parses");
        assert_eq!(countries.len(), 249, "ISO 3166-1 has 249 entries");
        let offices = parse_consulates().expect("consulates.tsv parses");
        for office in &offices {
            for c in &office.jurisdiction {
                assert!(
                    countries.iter().any(|k| k.alpha2 == *c),
                    "{}: unknown jurisdiction country {c}",
                    office.code
                );
            }
        }
        let mut codes: Vec<_> = offices.iter().map(|o| o.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), offices.len(), "consulate codes are unique");
    }
}
