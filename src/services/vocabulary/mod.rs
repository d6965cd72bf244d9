//! One machinery for the coded values of an attention besides its type:
//! channels, consulates, countries, sexes and document types. A spelling
//! resolves, folded (case, accents and punctuation aside), through the
//! vocabulary's codes, its names in Spanish and English, and the aliases
//! administrators add (`vocabulary_aliases`). The legacy import, the
//! alias endpoints and the data-quality report all ask the same [`Resolver`].

mod aliases;

pub use aliases::*;

use std::collections::HashMap;

use diesel::prelude::*;

use crate::audit::Event;
use crate::db::schema::{consulate_jurisdictions, consulates, countries};
use crate::db::{DbConn, Id, Ts};
use crate::domain::catalogue::IntakeChannel;
use crate::domain::person::{DocumentType, Sex};
use crate::domain::text::fold_key;
use crate::domain::vocabulary::Vocabulary;
use crate::models::vocabulary::{self as model, AliasRow, Recoded};
use crate::services::journal::Journal;

/// The built-in spellings of a sex: F/M, Mujer/Hombre, Femenino/Masculino
/// and English; blank is `not_recorded`.
pub fn builtin_sex(raw: &str) -> Option<Sex> {
    match fold_key(raw).as_str() {
        "" => Some(Sex::NotRecorded),
        "f" | "mujer" | "femenino" | "female" | "fem" => Some(Sex::Female),
        "m" | "hombre" | "masculino" | "male" | "masc" | "varon" => Some(Sex::Male),
        "sin registro" | "no registrado" | "not recorded" | "not_recorded" | "nr" => {
            Some(Sex::NotRecorded)
        }
        _ => None,
    }
}

/// The built-in spellings of a document type.
pub fn builtin_document_type(raw: &str) -> Option<DocumentType> {
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

/// Words an office's name is wrapped in ("Consulado General del Perú en
/// Milán", "CG Milán"): taken off before the city is looked up.
const OFFICE_WRAPPERS: &[&str] = &[
    "consulado general del peru en",
    "consulado general de peru en",
    "consulado general en",
    "consulado general",
    "consulado del peru en",
    "consulado de peru en",
    "consulado en",
    "consulado",
    "seccion consular de la embajada del peru en",
    "seccion consular del peru en",
    "seccion consular en",
    "seccion consular",
    "embajada del peru en",
    "embajada",
    "consulate general of peru in",
    "consulate general",
    "consulate of peru in",
    "consulate",
    "cgp",
    "cg",
    "sc",
];

/// Why a consulate spelling did not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsulateMiss {
    Unknown,
    AmbiguousInCountry,
    Ambiguous,
}

impl ConsulateMiss {
    pub fn reason(self) -> &'static str {
        match self {
            ConsulateMiss::Unknown => "no consulate with this code, name, city or alias",
            ConsulateMiss::AmbiguousInCountry => {
                "more than one consulate has this name or city in the row's country; use the consulate's code"
            }
            ConsulateMiss::Ambiguous => {
                "more than one consulate has this name or city, none of them in the row's country; use the consulate's code"
            }
        }
    }
}

/// An office as the lookup sees it.
struct Office {
    id: Id,
    code: String,
    country: String,
    /// folded cities, split in words, for shortened spellings
    cities: Vec<Vec<String>>,
}

/// The vocabularies, loaded once (an import asks it per row).
pub struct Resolver {
    countries: HashMap<String, String>,
    country_entries: Vec<String>,
    offices: Vec<Office>,
    office_by_code: HashMap<String, usize>,
    office_by_id: HashMap<Id, usize>,
    /// (country, folded name or city) → offices
    by_name_in_country: HashMap<(String, String), Vec<usize>>,
    /// folded name or city → offices, any country
    by_name: HashMap<String, Vec<usize>>,
    jurisdiction: HashMap<Id, Vec<String>>,
    /// (vocabulary, folded) → target
    aliases: HashMap<(Vocabulary, String), String>,
    /// per-import value mappings (`--mapping`), before the aliases
    mappings: HashMap<(Vocabulary, String), String>,
}

impl Resolver {
    pub fn load(conn: &mut DbConn) -> QueryResult<Resolver> {
        let mut r = Resolver {
            countries: HashMap::new(),
            country_entries: Vec::new(),
            offices: Vec::new(),
            office_by_code: HashMap::new(),
            office_by_id: HashMap::new(),
            by_name_in_country: HashMap::new(),
            by_name: HashMap::new(),
            jurisdiction: HashMap::new(),
            aliases: HashMap::new(),
            mappings: HashMap::new(),
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
                let key = fold_key(k);
                r.country_entries.push(key.clone());
                r.countries.insert(key, a2.clone());
            }
        }
        type OfficeRow = (Id, String, String, String, String, Option<String>, String);
        let rows: Vec<OfficeRow> = consulates::table
            .select((
                consulates::id,
                consulates::code,
                consulates::name_es,
                consulates::name_en,
                consulates::city,
                consulates::city_en,
                consulates::country_code,
            ))
            .order(consulates::code)
            .load(conn)?;
        for (id, code, es, en, city, city_en, country) in rows {
            let cities: Vec<String> = [Some(city), city_en]
                .into_iter()
                .flatten()
                .map(|c| fold_key(&c))
                .filter(|c| !c.is_empty())
                .collect();
            let mut names: Vec<String> = vec![fold_key(&es), fold_key(&en)];
            names.extend(cities.iter().cloned());
            names.sort();
            names.dedup();
            let ix = r.offices.len();
            r.office_by_code.insert(fold_key(&code), ix);
            r.office_by_id.insert(id, ix);
            for name in &names {
                let e = r
                    .by_name_in_country
                    .entry((country.clone(), name.clone()))
                    .or_default();
                e.push(ix);
                r.by_name.entry(name.clone()).or_default().push(ix);
            }
            r.offices.push(Office {
                id,
                code,
                country,
                cities: cities
                    .iter()
                    .map(|c| c.split(' ').map(str::to_owned).collect())
                    .collect(),
            });
        }
        let rows: Vec<(Id, String)> = consulate_jurisdictions::table
            .select((
                consulate_jurisdictions::consulate_id,
                consulate_jurisdictions::country_code,
            ))
            .load(conn)?;
        for (id, c) in rows {
            r.jurisdiction.entry(id).or_default().push(c);
        }
        for a in model::live_aliases(conn, None)? {
            if let Some(v) = Vocabulary::parse(&a.vocabulary) {
                r.aliases.insert((v, a.folded), a.target);
            }
        }
        Ok(r)
    }

    /// Adds a value mapping for this resolver's life (one import's
    /// `--mapping` file): `spelling` resolves as `target` does.
    pub fn map_value(
        &mut self,
        vocabulary: Vocabulary,
        spelling: &str,
        target: &str,
    ) -> Result<(), String> {
        let resolved = match vocabulary {
            Vocabulary::Consulate => self.consulate(target, None).ok().map(|id| id.to_string()),
            _ => self.resolve(vocabulary, target),
        }
        .ok_or_else(|| {
            format!(
                "`{target}` is no {} entry",
                vocabulary.as_str().replace('_', " ")
            )
        })?;
        let key = fold_key(spelling);
        if key.is_empty() {
            return Err("an empty spelling cannot be mapped".into());
        }
        self.mappings.insert((vocabulary, key), resolved);
        Ok(())
    }

    fn taught(&self, vocabulary: Vocabulary, key: &str) -> Option<&str> {
        // asked per row: no key to build when nothing was taught
        if self.mappings.is_empty() && self.aliases.is_empty() {
            return None;
        }
        let k = (vocabulary, key.to_owned());
        self.mappings
            .get(&k)
            .or_else(|| self.aliases.get(&k))
            .map(String::as_str)
    }

    /// A country's alpha-2 code by code, name or alias.
    pub fn country(&self, raw: &str) -> Option<String> {
        let key = fold_key(raw);
        self.countries
            .get(&key)
            .cloned()
            .or_else(|| self.taught(Vocabulary::Country, &key).map(str::to_owned))
    }

    pub fn channel(&self, raw: &str) -> Option<IntakeChannel> {
        IntakeChannel::parse(raw).or_else(|| {
            self.taught(Vocabulary::Channel, &fold_key(raw))
                .and_then(IntakeChannel::parse)
        })
    }

    pub fn sex(&self, raw: &str) -> Option<Sex> {
        builtin_sex(raw).or_else(|| {
            self.taught(Vocabulary::Sex, &fold_key(raw))
                .and_then(Sex::parse)
        })
    }

    pub fn document_type(&self, raw: &str) -> Option<DocumentType> {
        builtin_document_type(raw).or_else(|| {
            self.taught(Vocabulary::DocumentType, &fold_key(raw))
                .and_then(DocumentType::parse)
        })
    }

    /// The office's own country.
    pub fn consulate_country(&self, id: Id) -> Option<&str> {
        self.office_by_id
            .get(&id)
            .map(|&ix| self.offices[ix].country.as_str())
    }

    /// Whether `country` is neither the office's nor one it serves.
    pub fn outside_jurisdiction(&self, id: Id, country: &str) -> bool {
        self.consulate_country(id) != Some(country)
            && !self
                .jurisdiction
                .get(&id)
                .is_some_and(|j| j.iter().any(|c| c == country))
    }

    /// An office by code or alias; then by name or city (Spanish or
    /// English), in the row's country first: when no office there has it
    /// but exactly one anywhere does, that one (an office in a territory the
    /// extract files under another country; the caller flags the row).
    /// Then the same with the office's wrapper words taken off ("CG Milán"),
    /// then a shortened city ("Rio" for Rio de Janeiro, "S Paulo"), each
    /// word a prefix of the city's. Never a guess between two.
    pub fn consulate(&self, raw: &str, country: Option<&str>) -> Result<Id, ConsulateMiss> {
        let key = fold_key(raw);
        if let Some(&ix) = self.office_by_code.get(&key) {
            return Ok(self.offices[ix].id);
        }
        if let Some(target) = self.taught(Vocabulary::Consulate, &key) {
            if let Some(ix) = target
                .parse::<uuid::Uuid>()
                .ok()
                .and_then(|u| self.office_by_id.get(&Id(u)))
            {
                return Ok(self.offices[*ix].id);
            }
        }
        let bare = strip_wrapper(&key);
        let mut keys = vec![key.clone()];
        if bare != key && !bare.is_empty() {
            keys.push(bare.to_owned());
        }
        for k in &keys {
            match self.by_name_resolved(k, country)? {
                Some(ix) => return Ok(self.offices[ix].id),
                None => continue,
            }
        }
        // shortened city names: within the row's country, then anywhere
        let words: Vec<&str> = keys
            .last()
            .map(|k| k.split(' ').collect())
            .unwrap_or_default();
        if words.iter().map(|w| w.len()).sum::<usize>() >= 3 {
            let shortened = |ix: &usize| {
                self.offices[*ix]
                    .cities
                    .iter()
                    .any(|city| is_word_prefix(&words, city))
            };
            let all: Vec<usize> = (0..self.offices.len()).collect();
            if let Some(c) = country {
                let here: Vec<usize> = all
                    .iter()
                    .copied()
                    .filter(|ix| self.offices[*ix].country == c)
                    .filter(shortened)
                    .collect();
                match here.as_slice() {
                    [one] => return Ok(self.offices[*one].id),
                    [_, _, ..] => return Err(ConsulateMiss::AmbiguousInCountry),
                    [] => {}
                }
            }
            let anywhere: Vec<usize> = all.into_iter().filter(shortened).collect();
            match anywhere.as_slice() {
                [one] => return Ok(self.offices[*one].id),
                [_, _, ..] => return Err(ConsulateMiss::Ambiguous),
                [] => {}
            }
        }
        Err(ConsulateMiss::Unknown)
    }

    fn by_name_resolved(
        &self,
        key: &str,
        country: Option<&str>,
    ) -> Result<Option<usize>, ConsulateMiss> {
        let in_country = country
            .and_then(|c| self.by_name_in_country.get(&(c.to_owned(), key.to_owned())))
            .map(Vec::as_slice)
            .unwrap_or_default();
        match in_country {
            [one] => return Ok(Some(*one)),
            [_, _, ..] => return Err(ConsulateMiss::AmbiguousInCountry),
            [] => {}
        }
        match self.by_name.get(key).map(Vec::as_slice) {
            Some([one]) => Ok(Some(*one)),
            Some([]) | None => Ok(None),
            Some(_) => Err(ConsulateMiss::Ambiguous),
        }
    }

    /// What a spelling resolves to in a vocabulary (codes as stored; a
    /// consulate's id), wherever the row; None when nothing does or, for a
    /// consulate, when more than one office could be meant.
    pub fn resolve(&self, vocabulary: Vocabulary, raw: &str) -> Option<String> {
        match vocabulary {
            Vocabulary::Channel => self.channel(raw).map(|c| c.as_str().to_owned()),
            Vocabulary::Consulate => self.consulate(raw, None).ok().map(|id| id.to_string()),
            Vocabulary::Country => self.country(raw),
            Vocabulary::Sex => {
                // blank is `not_recorded`, not a spelling to teach
                (!fold_key(raw).is_empty())
                    .then(|| self.sex(raw))
                    .flatten()
                    .map(|s| s.as_str().to_owned())
            }
            Vocabulary::DocumentType => self.document_type(raw).map(|d| d.as_str().to_owned()),
        }
    }

    /// What an exact spelling (code, name, city or alias, no shortening)
    /// already names in a vocabulary: an alias may not shadow it.
    fn taken(&self, vocabulary: Vocabulary, key: &str) -> Option<String> {
        if let Some(t) = self.aliases.get(&(vocabulary, key.to_owned())) {
            return Some(t.clone());
        }
        match vocabulary {
            Vocabulary::Consulate => self
                .office_by_code
                .get(key)
                .map(|ix| vec![*ix])
                .or_else(|| self.by_name.get(key).cloned())
                .map(|ixs| {
                    ixs.iter()
                        .map(|ix| self.offices[*ix].code.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
            Vocabulary::Country => self.countries.get(key).cloned(),
            Vocabulary::Channel => IntakeChannel::parse(key).map(|c| c.as_str().to_owned()),
            Vocabulary::Sex => builtin_sex(key).map(|s| s.as_str().to_owned()),
            Vocabulary::DocumentType => builtin_document_type(key).map(|d| d.as_str().to_owned()),
        }
    }

    /// The three entries closest to a spelling nothing resolved
    /// (Jaro-Winkler on folded keys), aliases included.
    pub fn closest(&self, vocabulary: Vocabulary, spelling: &str) -> Vec<(String, f64)> {
        let key = fold_key(spelling);
        let mut entries: Vec<String> = match vocabulary {
            Vocabulary::Consulate => self
                .office_by_code
                .keys()
                .chain(self.by_name.keys())
                .cloned()
                .collect(),
            Vocabulary::Country => self.country_entries.clone(),
            Vocabulary::Channel => IntakeChannel::ALL
                .iter()
                .flat_map(|c| [c.as_str(), c.name_es(), c.name_en()].map(fold_key))
                .collect(),
            Vocabulary::Sex => ["female", "male", "mujer", "hombre", "femenino", "masculino"]
                .map(str::to_owned)
                .to_vec(),
            Vocabulary::DocumentType => [
                "dni",
                "carne de extranjeria",
                "pasaporte",
                "passport",
                "otro",
            ]
            .map(str::to_owned)
            .to_vec(),
        };
        entries.extend(
            self.aliases
                .keys()
                .filter(|(v, _)| *v == vocabulary)
                .map(|(_, k)| k.clone()),
        );
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
}

/// The key without an office's wrapper words, when it starts with them.
fn strip_wrapper(key: &str) -> &str {
    for w in OFFICE_WRAPPERS {
        if let Some(rest) = key.strip_prefix(w) {
            if let Some(rest) = rest.strip_prefix(' ') {
                return rest;
            }
        }
    }
    key
}

/// Whether each word is a prefix of the city's word at its place, the
/// spelling shorter than the city in letters or words.
fn is_word_prefix(words: &[&str], city: &[String]) -> bool {
    !words.is_empty()
        && words.len() <= city.len()
        && words.iter().zip(city).all(|(w, c)| c.starts_with(w))
        && (words.len() < city.len() || words.iter().zip(city).any(|(w, c)| w.len() < c.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn office_wrappers_and_shortened_cities() {
        assert_eq!(
            strip_wrapper("consulado general del peru en milan"),
            "milan"
        );
        assert_eq!(strip_wrapper("cg milan"), "milan");
        assert_eq!(strip_wrapper("cgmilan"), "cgmilan");
        let city: Vec<String> = ["rio", "de", "janeiro"].map(String::from).to_vec();
        assert!(is_word_prefix(&["rio"], &city));
        assert!(is_word_prefix(&["rio", "de", "jan"], &city));
        assert!(!is_word_prefix(&["rio", "de", "janeiro"], &city));
        assert!(!is_word_prefix(&["rios"], &city));
        let sp: Vec<String> = ["sao", "paulo"].map(String::from).to_vec();
        assert!(is_word_prefix(&["s", "paulo"], &sp));
        assert!(!is_word_prefix(&["paulo"], &sp));
    }

    #[test]
    fn builtin_sexes_and_documents() {
        assert_eq!(builtin_sex("F"), Some(Sex::Female));
        assert_eq!(builtin_sex("MASCULINO"), Some(Sex::Male));
        assert_eq!(builtin_sex(""), Some(Sex::NotRecorded));
        assert_eq!(builtin_sex("X"), None);
        assert_eq!(
            builtin_document_type("Carné de extranjería"),
            Some(DocumentType::CarneExtranjeria)
        );
        assert_eq!(builtin_document_type("LE"), None);
    }
}
