//! Persons: validation of identity data, the folded name key, blocking keys
//! for duplicate search, and the similarity score between two records.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::fold_key;

/// Sex as recorded; `not_recorded` is its own group in every figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    NotRecorded,
}

impl Sex {
    pub const ALL: [Sex; 3] = [Sex::Female, Sex::Male, Sex::NotRecorded];

    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::NotRecorded => "not_recorded",
        }
    }

    pub fn parse(value: &str) -> Option<Sex> {
        match value {
            "female" => Some(Sex::Female),
            "male" => Some(Sex::Male),
            "not_recorded" => Some(Sex::NotRecorded),
            _ => None,
        }
    }
}

stored!(Sex, "sex");

/// Kinds of identity document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    /// Peruvian national identity document: exactly 8 digits.
    Dni,
    /// Foreigner's card issued by the country of residence.
    CarneExtranjeria,
    Passport,
    Other,
}

impl DocumentType {
    pub const ALL: [DocumentType; 4] = [
        DocumentType::Dni,
        DocumentType::CarneExtranjeria,
        DocumentType::Passport,
        DocumentType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::Dni => "dni",
            DocumentType::CarneExtranjeria => "carne_extranjeria",
            DocumentType::Passport => "passport",
            DocumentType::Other => "other",
        }
    }

    pub fn parse(value: &str) -> Option<DocumentType> {
        Self::ALL.into_iter().find(|d| d.as_str() == value)
    }
}

stored!(DocumentType, "document type");

/// A document number as stored: uppercase, without spaces, dots or hyphens.
pub fn normalize_document_number(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Why a document number is invalid for its type, if it is.
pub fn document_number_problem(doc_type: DocumentType, number: &str) -> Option<&'static str> {
    let len = number.len();
    match doc_type {
        DocumentType::Dni if len != 8 || !number.bytes().all(|b| b.is_ascii_digit()) => {
            Some("a DNI is exactly 8 digits")
        }
        DocumentType::CarneExtranjeria | DocumentType::Passport if !(5..=20).contains(&len) => {
            Some("must be 5 to 20 letters or digits")
        }
        DocumentType::Other if !(1..=30).contains(&len) => {
            Some("must be 1 to 30 letters or digits")
        }
        _ => None,
    }
}

/// Trims and collapses spaces; `None` with the reason when invalid.
pub fn clean_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let count = name.chars().count();
    if count == 0 || count > 100 {
        return Err("must be 1 to 100 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '-' | '.' | '’'))
    {
        return Err("may contain letters, spaces, apostrophes, hyphens and dots only");
    }
    Ok(name)
}

/// Birth dates cannot be in the future nor more than 120 years ago.
pub fn birth_date_problem(date: NaiveDate, today: NaiveDate) -> Option<&'static str> {
    if date > today {
        return Some("is in the future");
    }
    let oldest = today.with_year(today.year() - 120).unwrap_or(today);
    if date < oldest {
        return Some("is more than 120 years ago");
    }
    None
}

/// Digits with an optional leading `+`, 7 to 15 digits (E.164).
pub fn normalize_phone(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    let plus = trimmed.starts_with('+');
    if !trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
    {
        return Err("may contain digits, spaces, hyphens, parentheses and a leading + only");
    }
    let digits: String = trimmed.chars().filter(|c| c.is_ascii_digit()).collect();
    if !(7..=15).contains(&digits.len()) {
        return Err("must have 7 to 15 digits");
    }
    Ok(if plus { format!("+{digits}") } else { digits })
}

/// A plausible e-mail address, lowercased.
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    let Some((local, domain)) = email.split_once('@') else {
        return Err("is not an e-mail address");
    };
    let ok = !local.is_empty()
        && email.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c == ',')
        && !domain.contains('@');
    if ok {
        Ok(email)
    } else {
        Err("is not an e-mail address")
    }
}

/// The folded tokens of a full name, sorted: "Pérez Quispe, José" and
/// "JOSE PEREZ QUISPE" both give `jose perez quispe`.
pub fn name_key(given_names: &str, first_surname: &str, second_surname: Option<&str>) -> String {
    let mut tokens: Vec<String> = [given_names, first_surname, second_surname.unwrap_or("")]
        .iter()
        .flat_map(|part| {
            fold_key(part)
                .split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    tokens.sort();
    tokens.join(" ")
}

fn token_pairs(name_key: &str) -> Vec<(String, String)> {
    let tokens: Vec<&str> = name_key.split(' ').filter(|t| t.len() > 1).collect();
    let mut pairs = Vec::new();
    for i in 0..tokens.len() {
        for j in i + 1..tokens.len() {
            let pair = (tokens[i].to_owned(), tokens[j].to_owned());
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
    }
    if tokens.len() == 1 {
        pairs.push((tokens[0].to_owned(), String::new()));
    }
    pairs
}

fn contact_keys(p: &Comparable<'_>) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(phone) = p.phone {
        // The last nine digits: the same number with or without country code.
        keys.push(format!("p:{}", phone_tail(phone)));
    }
    if let Some(email) = p.email {
        keys.push(format!("e:{email}"));
    }
    keys
}

/// Blocking keys stored for a person: every pair of name tokens (`n:`), the
/// same pairs with the birth year (`y:`, when known), the phone and the
/// e-mail. Two records that share no key are never compared.
pub fn match_keys(p: &Comparable<'_>) -> Vec<String> {
    let pairs = token_pairs(p.name_key);
    let mut keys: Vec<String> = pairs.iter().map(|(a, b)| format!("n:{a}|{b}")).collect();
    if let Some(d) = p.birth_date {
        keys.extend(pairs.iter().map(|(a, b)| format!("y:{a}|{b}|{}", d.year())));
    }
    keys.extend(contact_keys(p));
    keys.sort();
    keys.dedup();
    keys
}

/// The keys to look a record's candidates up by. With a birth date, name
/// pairs are narrowed to the same year ± 1 (a common surname pair stays a
/// small block) and undated name pairs only reach persons without a date;
/// without one, every person sharing a name pair is a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub keys: Vec<String>,
    /// Keys that only reach persons whose birth date is unknown.
    pub undated_keys: Vec<String>,
}

pub fn probe_keys(p: &Comparable<'_>) -> Probe {
    let pairs = token_pairs(p.name_key);
    let names: Vec<String> = pairs.iter().map(|(a, b)| format!("n:{a}|{b}")).collect();
    match p.birth_date {
        Some(d) => {
            let mut keys: Vec<String> = (d.year() - 1..=d.year() + 1)
                .flat_map(|y| pairs.iter().map(move |(a, b)| format!("y:{a}|{b}|{y}")))
                .collect();
            keys.extend(contact_keys(p));
            Probe {
                keys,
                undated_keys: names,
            }
        }
        None => {
            let mut keys = names;
            keys.extend(contact_keys(p));
            Probe {
                keys,
                undated_keys: Vec::new(),
            }
        }
    }
}

/// What is compared.
#[derive(Debug, Clone)]
pub struct Comparable<'a> {
    pub name_key: &'a str,
    pub birth_date: Option<NaiveDate>,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
}

/// How alike two records are, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Likeness {
    pub score: f64,
    pub reasons: Vec<String>,
    pub likely_same: bool,
}

fn phone_tail(p: &str) -> String {
    let digits: String = p.chars().filter(|c| c.is_ascii_digit()).collect();
    digits[digits.len().saturating_sub(9)..].to_owned()
}

/// Similar names (Jaro-Winkler on the sorted tokens) plus an equal or close
/// birth date, or the same phone or e-mail, make a likely duplicate.
pub fn likeness(a: &Comparable<'_>, b: &Comparable<'_>) -> Likeness {
    let name = strsim::jaro_winkler(a.name_key, b.name_key);
    let mut reasons = vec![format!("similar_name:{:.2}", name)];
    let birth = match (a.birth_date, b.birth_date) {
        (Some(x), Some(y)) if x == y => {
            reasons.push("same_birth_date".into());
            1.0
        }
        (Some(x), Some(y)) => {
            let days = (x - y).num_days().abs();
            let swapped = x.year() == y.year() && x.day() == y.month() && x.month() == y.day();
            if days <= 31
                || swapped
                || (x.month() == y.month()
                    && x.day() == y.day()
                    && (x.year() - y.year()).abs() <= 1)
            {
                reasons.push("close_birth_date".into());
                0.7
            } else {
                0.0
            }
        }
        _ => 0.5,
    };
    let mut contact = 0.0;
    if let (Some(x), Some(y)) = (a.phone, b.phone) {
        if phone_tail(x) == phone_tail(y) {
            reasons.push("same_phone".into());
            contact = 1.0;
        }
    }
    if let (Some(x), Some(y)) = (a.email, b.email) {
        if x == y {
            reasons.push("same_email".into());
            contact = 1.0;
        }
    }
    let score = 0.6 * name + 0.3 * birth + 0.1 * contact;
    let likely_same = (name >= 0.88 && birth >= 0.7)
        || (contact > 0.0 && name >= 0.75)
        || (name >= 0.97 && birth == 0.5);
    Likeness {
        score: (score * 1000.0).round() / 1000.0,
        reasons,
        likely_same,
    }
}

/// "José Pérez" → "J*** P***": initials with a fixed tail, so not even the
/// length of a name is given away.
pub fn mask_name(name: &str) -> String {
    name.split_whitespace()
        .map(|w| match w.chars().next() {
            Some(first) => format!("{first}***"),
            None => String::new(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_same_person_spelt_three_ways_shares_a_name_key() {
        let a = name_key("José", "Pérez", Some("Quispe"));
        let b = name_key("JOSE", "PEREZ", Some("QUISPE"));
        let c = name_key("Jose", "Perez Quispe,", None);
        assert_eq!(a, "jose perez quispe");
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn likeness_needs_name_and_birth_or_contact() {
        let k = name_key("José", "Pérez", Some("Quispe"));
        let same = Comparable {
            name_key: &k,
            birth_date: Some(d(1985, 3, 4)),
            phone: None,
            email: None,
        };
        assert!(likeness(&same, &same.clone()).likely_same);
        let k2 = name_key("Jose", "Peres", Some("Quispe"));
        let typo = Comparable {
            name_key: &k2,
            birth_date: Some(d(1985, 4, 3)),
            phone: None,
            email: None,
        };
        let l = likeness(&same, &typo);
        assert!(l.likely_same, "{l:?}");
        assert!(l.reasons.contains(&"close_birth_date".to_owned()));
        let other = Comparable {
            name_key: &k,
            birth_date: Some(d(1950, 1, 1)),
            phone: None,
            email: None,
        };
        assert!(
            !likeness(&same, &other).likely_same,
            "same name, different person"
        );
        let k3 = name_key("María", "Flores", None);
        let stranger = Comparable {
            name_key: &k3,
            birth_date: Some(d(1985, 3, 4)),
            phone: None,
            email: None,
        };
        assert!(!likeness(&same, &stranger).likely_same);
    }

    #[test]
    fn validation_rules() {
        assert_eq!(document_number_problem(DocumentType::Dni, "12345678"), None);
        assert!(document_number_problem(DocumentType::Dni, "1234567").is_some());
        assert!(document_number_problem(DocumentType::Dni, "1234567A").is_some());
        assert_eq!(normalize_document_number(" 12.345-678 "), "12345678");
        assert!(clean_name("  Ana   María ").is_ok_and(|n| n == "Ana María"));
        assert!(clean_name("R2D2").is_err());
        assert!(clean_name("").is_err());
        let today = d(2026, 11, 27);
        assert!(birth_date_problem(d(2026, 11, 28), today).is_some());
        assert!(birth_date_problem(d(1906, 11, 26), today).is_some());
        assert!(birth_date_problem(d(1990, 1, 1), today).is_none());
        assert_eq!(
            normalize_phone("+51 (1) 204-2400"),
            Ok("+5112042400".into())
        );
        assert!(normalize_phone("12").is_err());
        assert!(normalize_phone("call me").is_err());
        assert_eq!(
            normalize_email(" Ana@Example.PE "),
            Ok("ana@example.pe".into())
        );
        assert!(normalize_email("ana@pe").is_err());
        assert!(normalize_email("ana example.pe").is_err());
        assert_eq!(mask_name("José Pérez"), "J*** P***");
    }

    #[test]
    fn blocking_keys_pair_tokens_years_and_contacts() {
        let p = Comparable {
            name_key: "jose perez quispe",
            birth_date: Some(d(1985, 3, 4)),
            phone: Some("+51987654321"),
            email: Some("a@b.pe"),
        };
        let keys = match_keys(&p);
        for k in [
            "n:jose|perez",
            "n:perez|quispe",
            "y:jose|quispe|1985",
            "p:987654321",
            "e:a@b.pe",
        ] {
            assert!(keys.contains(&k.to_owned()), "{k} in {keys:?}");
        }
        let probe = probe_keys(&p);
        assert!(probe.keys.contains(&"y:perez|quispe|1984".to_owned()));
        assert!(probe.keys.contains(&"y:perez|quispe|1986".to_owned()));
        assert!(
            !probe.keys.iter().any(|k| k.starts_with("n:")),
            "dated probes skip undated blocks"
        );
        assert!(probe.undated_keys.contains(&"n:perez|quispe".to_owned()));
        // Every stored key of a close record is reachable by the probe.
        let other = Comparable {
            name_key: "jose perez quispe",
            birth_date: Some(d(1986, 1, 2)),
            phone: None,
            email: None,
        };
        assert!(match_keys(&other).iter().any(|k| probe.keys.contains(k)));
        let undated = Comparable {
            name_key: "jose perez quispe",
            birth_date: None,
            phone: None,
            email: None,
        };
        assert!(probe_keys(&undated)
            .keys
            .contains(&"n:jose|perez".to_owned()));
    }
}
