//! Values as officers wrote them: dates, sexes, countries, consulates,
//! channels, documents, full names and attention labels, each resolved or
//! refused with the field and the reason.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::prelude::*;

use super::read::*;
use crate::db::schema::{consulate_jurisdictions, consulates, countries};
use crate::db::{DbConn, Id};
use crate::domain::catalogue::IntakeChannel;
use crate::domain::person::{document_number_problem, normalize_document_number, DocumentType};
use crate::domain::text::fold_key;
use crate::error::AppError;
use crate::services::catalogue as catalogue_rules;

/// Why one field of one row was not imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    pub line: u64,
    pub field: String,
    pub value: String,
    pub reason: String,
}

/// A row whose values all resolved.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub line: u64,
    pub attended_on: NaiveDate,
    pub consulate_id: Id,
    pub country: String,
    /// (type, normalised number, issuing country)
    pub document: Option<(DocumentType, String, String)>,
    pub given_names: String,
    pub first_surname: String,
    pub second_surname: Option<String>,
    pub sex: &'static str,
    pub birth: Option<NaiveDate>,
    pub type_id: Id,
    pub channel: &'static str,
    /// Set when the country is not one the consulate serves.
    pub outside_jurisdiction: bool,
}

/// What the reference tables and the catalogue say, loaded once.
pub struct Lookup {
    countries: HashMap<String, String>,
    consulate_by_code: HashMap<String, Id>,
    /// (country, folded name or city) → consulates
    consulate_by_name: HashMap<(String, String), Vec<Id>>,
    /// folded name or city → consulates, any country
    consulate_by_name_anywhere: HashMap<String, Vec<Id>>,
    consulate_country: HashMap<Id, String>,
    jurisdiction: HashMap<Id, Vec<String>>,
    /// raw label → type (None: unmapped), filled as labels are met
    types: HashMap<String, Option<Id>>,
}

impl Lookup {
    pub fn load(conn: &mut DbConn) -> Result<Lookup, AppError> {
        let mut l = Lookup {
            countries: HashMap::new(),
            consulate_by_code: HashMap::new(),
            consulate_by_name: HashMap::new(),
            consulate_by_name_anywhere: HashMap::new(),
            consulate_country: HashMap::new(),
            jurisdiction: HashMap::new(),
            types: HashMap::new(),
        };
        let rows: Vec<(String, String, String, String)> = countries::table
            .select((
                countries::alpha2,
                countries::alpha3,
                countries::name_es,
                countries::name_en,
            ))
            .load(conn)?;
        for (a2, a3, es, en) in rows {
            for k in [&a2, &a3, &es, &en] {
                l.countries.insert(fold_key(k), a2.clone());
            }
        }
        let rows: Vec<(Id, String, String, String, String, String)> = consulates::table
            .select((
                consulates::id,
                consulates::code,
                consulates::name_es,
                consulates::name_en,
                consulates::city,
                consulates::country_code,
            ))
            .load(conn)?;
        for (id, code, es, en, city, country) in rows {
            l.consulate_by_code.insert(fold_key(&code), id);
            for name in [&es, &en, &city] {
                let key = fold_key(name);
                let e = l
                    .consulate_by_name
                    .entry((country.clone(), key.clone()))
                    .or_default();
                if !e.contains(&id) {
                    e.push(id);
                }
                let e = l.consulate_by_name_anywhere.entry(key).or_default();
                if !e.contains(&id) {
                    e.push(id);
                }
            }
            l.consulate_country.insert(id, country);
        }
        let rows: Vec<(Id, String)> = consulate_jurisdictions::table
            .select((
                consulate_jurisdictions::consulate_id,
                consulate_jurisdictions::country_code,
            ))
            .load(conn)?;
        for (id, c) in rows {
            l.jurisdiction.entry(id).or_default().push(c);
        }
        Ok(l)
    }

    /// The attention type a label resolves to through the catalogue (codes,
    /// names, aliases; merged types to their survivor), cached per label.
    pub fn attention_type(
        &mut self,
        conn: &mut DbConn,
        label: &str,
    ) -> Result<Option<Id>, AppError> {
        if let Some(t) = self.types.get(label) {
            return Ok(*t);
        }
        let t = catalogue_rules::resolve(conn, label)?
            .filter(|t| t.status == "active")
            .map(|t| t.id);
        self.types.insert(label.to_owned(), t);
        Ok(t)
    }

    /// The three entries of a vocabulary closest to a spelling nothing
    /// resolved (Jaro-Winkler on folded keys): consulates by code, name or
    /// city; countries by code or name; channels by code or name.
    pub fn closest(&self, field: &str, spelling: &str) -> Vec<(String, f64)> {
        let key = fold_key(spelling);
        let entries: Vec<String> = match field {
            "consulado" => self
                .consulate_by_code
                .keys()
                .chain(self.consulate_by_name_anywhere.keys())
                .cloned()
                .collect(),
            "pais" => self.countries.keys().cloned().collect(),
            "canal" => IntakeChannel::ALL
                .iter()
                .flat_map(|c| [c.as_str(), c.name_es(), c.name_en()].map(fold_key))
                .collect(),
            _ => Vec::new(),
        };
        let mut scored: Vec<(String, f64)> = entries
            .into_iter()
            .map(|e| {
                let score = strsim::jaro_winkler(&key, &e);
                (e, (score * 1000.0).round() / 1000.0)
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        scored.dedup_by(|a, b| a.0 == b.0);
        scored.truncate(3);
        scored
    }

    fn country(&self, raw: &str) -> Option<String> {
        self.countries.get(&fold_key(raw)).cloned()
    }

    fn consulate(&self, raw: &str, country: Option<&str>) -> Result<Id, &'static str> {
        let key = fold_key(raw);
        if let Some(id) = self.consulate_by_code.get(&key) {
            return Ok(*id);
        }
        // Within the row's country first; when no office there has this
        // name but exactly one anywhere does, that one (an office in a
        // territory the extract files under another country): the row is
        // then flagged as outside the office's jurisdiction, never guessed
        // between two.
        let in_country = country
            .and_then(|c| self.consulate_by_name.get(&(c.to_owned(), key.clone())))
            .map(Vec::as_slice)
            .unwrap_or_default();
        match in_country {
            [one] => return Ok(*one),
            [_, _, ..] => {
                return Err(
                    "more than one consulate has this name or city in the row's country; use the consulate's code",
                )
            }
            [] => {}
        }
        match self.consulate_by_name_anywhere.get(&key).map(Vec::as_slice) {
            Some([one]) => Ok(*one),
            Some([]) | None => Err("no consulate with this code, name or city"),
            Some(_) => Err(
                "more than one consulate has this name or city, none of them in the row's country; use the consulate's code",
            ),
        }
    }
}

/// `YYYY-MM-DD` or `dd/mm/yyyy` (also `d/m/yyyy` and `dd-mm-yyyy`).
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let s = raw.trim();
    // a timestamp's date part
    let s = s.split(['T', ' ']).next().unwrap_or(s);
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    let parts: Vec<&str> = s.split(['/', '-', '.']).collect();
    if let [d, m, y] = parts.as_slice() {
        if y.len() == 4 {
            return NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        }
    }
    None
}

/// F/M, Mujer/Hombre, Femenino/Masculino (and English); blank is
/// `not_recorded`; anything else is not guessed.
pub fn parse_sex(raw: &str) -> Option<&'static str> {
    match fold_key(raw).as_str() {
        "" => Some("not_recorded"),
        "f" | "mujer" | "femenino" | "female" | "fem" => Some("female"),
        "m" | "hombre" | "masculino" | "male" | "masc" | "varon" => Some("male"),
        "sin registro" | "no registrado" | "not recorded" | "not_recorded" | "nr" => {
            Some("not_recorded")
        }
        _ => None,
    }
}

fn parse_doc_type(raw: &str) -> Option<DocumentType> {
    match fold_key(raw).as_str() {
        "dni" | "documento nacional de identidad" => Some(DocumentType::Dni),
        "ce"
        | "carne de extranjeria"
        | "carnet de extranjeria"
        | "carne extranjeria"
        | "carne_extranjeria" => Some(DocumentType::CarneExtranjeria),
        "pasaporte" | "passport" | "pas" => Some(DocumentType::Passport),
        "otro" | "other" | "otros" => Some(DocumentType::Other),
        _ => None,
    }
}

/// Splits a full name written in one column: `APELLIDOS, NOMBRES` when there
/// is a comma; otherwise the last two words are the surnames (one when the
/// name has only two words).
pub fn split_name(raw: &str) -> Result<(String, String, Option<String>), &'static str> {
    let words = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_owned).collect() };
    let (given, surnames) = match raw.split_once(',') {
        Some((surnames, given)) => (words(given), words(surnames)),
        None => {
            let w = words(raw);
            match w.len() {
                0 | 1 => return Err("needs at least a given name and a surname"),
                2 => (w[..1].to_vec(), w[1..].to_vec()),
                n => (w[..n - 2].to_vec(), w[n - 2..].to_vec()),
            }
        }
    };
    if given.is_empty() || surnames.is_empty() {
        return Err("needs at least a given name and a surname");
    }
    let given = given.join(" ");
    let first = surnames[0].clone();
    let second = (surnames.len() > 1).then(|| surnames[1..].join(" "));
    for part in [Some(&given), Some(&first), second.as_ref()]
        .into_iter()
        .flatten()
    {
        crate::domain::person::clean_name(part)?;
    }
    Ok((given, first, second))
}

/// Resolves every value of a row, or says what is wrong with each field.
pub fn parse_row(
    conn: &mut DbConn,
    lookup: &mut Lookup,
    line: u64,
    values: &[String; FIELDS.len()],
    today: NaiveDate,
) -> Result<Result<Parsed, Vec<Rejection>>, AppError> {
    let mut errors = Vec::new();
    let mut reject = |field: usize, reason: &str| {
        errors.push(Rejection {
            line,
            field: FIELDS[field].to_owned(),
            value: values[field].clone(),
            reason: reason.to_owned(),
        });
    };
    let attended_on = match parse_date(&values[F_DATE]) {
        None if values[F_DATE].is_empty() => {
            reject(F_DATE, "is required");
            None
        }
        None => {
            reject(F_DATE, "is not a date (YYYY-MM-DD or dd/mm/yyyy)");
            None
        }
        Some(d) if d > today => {
            reject(F_DATE, "is in the future");
            None
        }
        Some(d) if d < NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or(d) => {
            reject(F_DATE, "is before 1990");
            None
        }
        Some(d) => Some(d),
    };
    let country = if values[F_COUNTRY].is_empty() {
        None
    } else {
        match lookup.country(&values[F_COUNTRY]) {
            Some(c) => Some(c),
            None => {
                reject(
                    F_COUNTRY,
                    "is not a country (ISO alpha-2, alpha-3, or Spanish or English name)",
                );
                None
            }
        }
    };
    let consulate = if values[F_CONSULATE].is_empty() {
        reject(F_CONSULATE, "is required");
        None
    } else {
        match lookup.consulate(&values[F_CONSULATE], country.as_deref()) {
            Ok(id) => Some(id),
            Err(why) => {
                reject(F_CONSULATE, why);
                None
            }
        }
    };
    let country =
        country.or_else(|| consulate.and_then(|c| lookup.consulate_country.get(&c).cloned()));
    let outside_jurisdiction = match (consulate, &country) {
        (Some(c), Some(country)) => {
            lookup.consulate_country.get(&c) != Some(country)
                && !lookup
                    .jurisdiction
                    .get(&c)
                    .is_some_and(|j| j.contains(country))
        }
        _ => false,
    };
    let number = normalize_document_number(&values[F_DOC_NUMBER]);
    let document = if number.is_empty() {
        if !values[F_DOC_TYPE].is_empty() && parse_doc_type(&values[F_DOC_TYPE]).is_none() {
            reject(
                F_DOC_TYPE,
                "is not a document type (DNI, CE, pasaporte, otro)",
            );
        }
        None
    } else {
        let doc_type = if values[F_DOC_TYPE].is_empty() {
            Some(DocumentType::Other)
        } else {
            parse_doc_type(&values[F_DOC_TYPE])
        };
        match doc_type {
            None => {
                reject(
                    F_DOC_TYPE,
                    "is not a document type (DNI, CE, pasaporte, otro)",
                );
                None
            }
            Some(t) => match document_number_problem(t, &number) {
                Some(why) => {
                    reject(F_DOC_NUMBER, why);
                    None
                }
                None => {
                    // DNI and passports are Peruvian; a foreigner's card and
                    // other papers are issued where the person lives.
                    let issuing = match t {
                        DocumentType::Dni | DocumentType::Passport => "PE".to_owned(),
                        _ => country.clone().unwrap_or_else(|| "PE".to_owned()),
                    };
                    Some((t, number, issuing))
                }
            },
        }
    };
    let name = match split_name(&values[F_NAME]) {
        Ok(n) => Some(n),
        Err(why) => {
            reject(
                F_NAME,
                if values[F_NAME].is_empty() {
                    "is required"
                } else {
                    why
                },
            );
            None
        }
    };
    let sex = match parse_sex(&values[F_SEX]) {
        Some(s) => Some(s),
        None => {
            reject(
                F_SEX,
                "is not a sex (F/M, Mujer/Hombre, Femenino/Masculino, or blank)",
            );
            None
        }
    };
    let birth = if values[F_BIRTH].is_empty() {
        Some(None)
    } else {
        match parse_date(&values[F_BIRTH]) {
            None => {
                reject(F_BIRTH, "is not a date (YYYY-MM-DD or dd/mm/yyyy)");
                None
            }
            Some(b) if b > today => {
                reject(F_BIRTH, "is in the future");
                None
            }
            Some(b) if attended_on.is_some_and(|a| b > a) => {
                reject(F_BIRTH, "is after the attention date");
                None
            }
            Some(b) if attended_on.is_some_and(|a| a.years_since(b).is_some_and(|y| y > 110)) => {
                reject(F_BIRTH, "makes the person older than 110 at the attention");
                None
            }
            Some(b) => Some(Some(b)),
        }
    };
    let type_id = if values[F_TYPE].is_empty() {
        reject(F_TYPE, "is required");
        None
    } else {
        match lookup.attention_type(conn, &values[F_TYPE])? {
            Some(t) => Some(t),
            None => {
                reject(F_TYPE, "no attention type has this code, name or alias");
                None
            }
        }
    };
    let channel = if values[F_CHANNEL].is_empty() {
        reject(F_CHANNEL, "is required");
        None
    } else {
        match IntakeChannel::parse(&values[F_CHANNEL]) {
            Some(c) => Some(c.as_str()),
            None => {
                reject(F_CHANNEL, "is not an intake channel (code or Spanish name)");
                None
            }
        }
    };
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    match (
        attended_on,
        consulate,
        country,
        name,
        sex,
        birth,
        type_id,
        channel,
    ) {
        (
            Some(attended_on),
            Some(consulate_id),
            Some(country),
            Some((given_names, first_surname, second_surname)),
            Some(sex),
            Some(birth),
            Some(type_id),
            Some(channel),
        ) => Ok(Ok(Parsed {
            line,
            attended_on,
            consulate_id,
            country,
            document,
            given_names,
            first_surname,
            second_surname,
            sex,
            birth,
            type_id,
            channel,
            outside_jurisdiction,
        })),
        _ => Ok(Err(vec![Rejection {
            line,
            field: FIELDS[F_COUNTRY].to_owned(),
            value: values[F_COUNTRY].clone(),
            reason: "the row's country could not be determined".into(),
        }])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_sexes_and_names_are_read_as_written() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 7);
        assert_eq!(parse_date("2024-03-07"), d);
        assert_eq!(parse_date("07/03/2024"), d);
        assert_eq!(parse_date("7/3/2024"), d);
        assert_eq!(parse_date("2024-03-07 10:15:00"), d);
        assert_eq!(parse_date("31/02/2024"), None);
        assert_eq!(parse_date("03/07/24"), None);
        assert_eq!(parse_sex("F"), Some("female"));
        assert_eq!(parse_sex("MASCULINO"), Some("male"));
        assert_eq!(parse_sex("Mujer"), Some("female"));
        assert_eq!(parse_sex(""), Some("not_recorded"));
        assert_eq!(parse_sex("X"), None);
        assert_eq!(
            split_name("QUISPE MAMANI, ROSA MARÍA"),
            Ok(("ROSA MARÍA".into(), "QUISPE".into(), Some("MAMANI".into())))
        );
        assert_eq!(
            split_name("Rosa María Quispe Mamani"),
            Ok(("Rosa María".into(), "Quispe".into(), Some("Mamani".into())))
        );
        assert_eq!(
            split_name("Juan Pérez"),
            Ok(("Juan".into(), "Pérez".into(), None))
        );
        assert!(split_name("Madonna").is_err());
        assert!(split_name("R2D2 Droid").is_err());
    }
}
