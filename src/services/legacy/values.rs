//! Values as officers wrote them: dates, sexes, countries, consulates,
//! channels, documents, full names and attention labels, each resolved or
//! refused with the field and the reason.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::read::*;
use crate::db::{DbConn, Id};
use crate::domain::person::{document_number_problem, normalize_document_number, DocumentType};
use crate::domain::text::fold_key;
use crate::domain::vocabulary::{RecordedChannel, Vocabulary};
use crate::error::AppError;
use crate::services::catalogue as catalogue_rules;
use crate::services::vocabulary::{self, Resolver};

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
    /// The channel as written, when nothing resolved it (the channel is
    /// then `not_recorded`).
    pub channel_spelling: Option<String>,
    /// Set when the country is not one the consulate serves.
    pub outside_jurisdiction: bool,
}

/// What the vocabularies and the catalogue say, loaded once.
pub struct Lookup {
    /// channels, consulates, countries, sexes, document types
    pub vocab: Resolver,
    /// raw label → type (None: unmapped), filled as labels are met
    types: HashMap<String, Option<Id>>,
    /// folded label → type, from the import's mapping file
    type_mappings: HashMap<String, Id>,
}

impl Lookup {
    pub fn load(conn: &mut DbConn) -> Result<Lookup, AppError> {
        Ok(Lookup {
            vocab: Resolver::load(conn)?,
            types: HashMap::new(),
            type_mappings: HashMap::new(),
        })
    }

    /// Applies a mapping file's value lines (this import only); an entry
    /// that names nothing is an error naming the line's field and spelling.
    pub fn map_values(
        &mut self,
        conn: &mut DbConn,
        values: &[(usize, String, String)],
    ) -> Result<(), AppError> {
        for (field, spelling, entry) in values {
            let problem = |why: String| {
                AppError::invalid("mapping", format!("{}: {spelling}: {why}", FIELDS[*field]))
            };
            if *field == F_TYPE {
                let t = catalogue_rules::resolve(conn, entry)?
                    .filter(|t| t.status == "active")
                    .ok_or_else(|| problem(format!("`{entry}` is no active attention type")))?;
                self.type_mappings.insert(fold_key(spelling), t.id);
                continue;
            }
            let v = Vocabulary::from_legacy_field(FIELDS[*field])
                .ok_or_else(|| problem("cannot be mapped".into()))?;
            self.vocab.map_value(v, spelling, entry).map_err(problem)?;
        }
        Ok(())
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
        if let Some(t) = self.type_mappings.get(&fold_key(label)) {
            return Ok(Some(*t));
        }
        let t = catalogue_rules::resolve(conn, label)?
            .filter(|t| t.status == "active")
            .map(|t| t.id);
        self.types.insert(label.to_owned(), t);
        Ok(t)
    }

    /// The three entries of a field's vocabulary closest to a spelling
    /// nothing resolved.
    pub fn closest(&self, field: &str, spelling: &str) -> Vec<(String, f64)> {
        match Vocabulary::from_legacy_field(field) {
            Some(v) => self.vocab.closest(v, spelling),
            None => Vec::new(),
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
/// `not_recorded`; anything else is not guessed (aliases aside).
pub fn parse_sex(raw: &str) -> Option<&'static str> {
    vocabulary::builtin_sex(raw).map(|s| s.as_str())
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

const DOC_TYPE_REASON: &str = "is not a document type (DNI, CE, pasaporte, otro, or an alias)";

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
        match lookup.vocab.country(&values[F_COUNTRY]) {
            Some(c) => Some(c),
            None => {
                reject(
                    F_COUNTRY,
                    "is not a country (ISO alpha-2, alpha-3, Spanish or English name, or alias)",
                );
                None
            }
        }
    };
    let consulate = if values[F_CONSULATE].is_empty() {
        reject(F_CONSULATE, "is required");
        None
    } else {
        match lookup
            .vocab
            .consulate(&values[F_CONSULATE], country.as_deref())
        {
            Ok(id) => Some(id),
            Err(miss) => {
                reject(F_CONSULATE, miss.reason());
                None
            }
        }
    };
    let country = country
        .or_else(|| consulate.and_then(|c| lookup.vocab.consulate_country(c).map(str::to_owned)));
    let outside_jurisdiction = match (consulate, &country) {
        (Some(c), Some(country)) => lookup.vocab.outside_jurisdiction(c, country),
        _ => false,
    };
    let number = normalize_document_number(&values[F_DOC_NUMBER]);
    let document = if number.is_empty() {
        if !values[F_DOC_TYPE].is_empty()
            && lookup.vocab.document_type(&values[F_DOC_TYPE]).is_none()
        {
            reject(F_DOC_TYPE, DOC_TYPE_REASON);
        }
        None
    } else {
        let doc_type = if values[F_DOC_TYPE].is_empty() {
            Some(DocumentType::Other)
        } else {
            lookup.vocab.document_type(&values[F_DOC_TYPE])
        };
        match doc_type {
            None => {
                reject(F_DOC_TYPE, DOC_TYPE_REASON);
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
    let sex = match lookup.vocab.sex(&values[F_SEX]) {
        Some(s) => Some(s.as_str()),
        None => {
            reject(
                F_SEX,
                "is not a sex (F/M, Mujer/Hombre, Femenino/Masculino, blank, or an alias)",
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
    // The indicator does not need the channel: blank, missing or a spelling
    // nothing resolved is `not_recorded`, the spelling kept to recode later.
    let (channel, channel_spelling) = match lookup.vocab.channel(&values[F_CHANNEL]) {
        Some(c) => (RecordedChannel::from(c), None),
        None if values[F_CHANNEL].trim().is_empty() => (RecordedChannel::NotRecorded, None),
        None => (
            RecordedChannel::NotRecorded,
            Some(values[F_CHANNEL].trim().to_owned()),
        ),
    };
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    match (attended_on, consulate, country, name, sex, birth, type_id) {
        (
            Some(attended_on),
            Some(consulate_id),
            Some(country),
            Some((given_names, first_surname, second_surname)),
            Some(sex),
            Some(birth),
            Some(type_id),
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
            channel: channel.as_str(),
            channel_spelling,
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
