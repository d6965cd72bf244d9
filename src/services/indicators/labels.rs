//! The names the figures show (consulates, countries, regions, attention
//! types), and the groups one person falls in, kept by a closed year.

use super::*;

/// Names for the keys of every breakdown.
#[derive(Debug, Default, Clone)]
pub struct Labels {
    country: HashMap<String, (String, String)>,
    region: BTreeMap<String, (String, i32)>,
    consulate: HashMap<Id, (String, String)>,
    attention_type: HashMap<Id, (String, String, String)>,
}

impl Labels {
    pub fn load(conn: &mut DbConn) -> QueryResult<Labels> {
        let mut l = Labels::default();
        for (a2, name, region) in countries::table
            .select((
                countries::alpha2,
                countries::name_es,
                countries::region_code,
            ))
            .load::<(String, String, String)>(conn)?
        {
            l.country.insert(a2, (name, region));
        }
        for (code, name, order) in regions::table
            .select((regions::code, regions::name_es, regions::sort_order))
            .load::<(String, String, i32)>(conn)?
        {
            l.region.insert(code, (name, order));
        }
        for (id, code, name) in consulates::table
            .select((consulates::id, consulates::code, consulates::name_es))
            .load::<(Id, String, String)>(conn)?
        {
            l.consulate.insert(id, (code, name));
        }
        for (id, code, name, category) in attention_types::table
            .select((
                attention_types::id,
                attention_types::code,
                attention_types::name_es,
                attention_types::category,
            ))
            .load::<(Id, String, String, String)>(conn)?
        {
            l.attention_type.insert(id, (code, name, category));
        }
        Ok(l)
    }

    pub(super) fn region_of(&self, country: &str) -> String {
        self.country
            .get(country)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| "unknown".into())
    }

    pub(super) fn category_of(&self, t: Id) -> String {
        self.attention_type
            .get(&t)
            .map(|(_, _, c)| c.clone())
            .unwrap_or_else(|| "unknown".into())
    }

    /// The key a breakdown shows: codes for types and consulates.
    pub(super) fn key(&self, breakdown: &str, raw: &str) -> String {
        match breakdown {
            "consulate" => uuid::Uuid::parse_str(raw)
                .ok()
                .and_then(|u| self.consulate.get(&Id(u)))
                .map(|(code, _)| code.clone())
                .unwrap_or_else(|| raw.to_owned()),
            "attention_type" => uuid::Uuid::parse_str(raw)
                .ok()
                .and_then(|u| self.attention_type.get(&Id(u)))
                .map(|(code, _, _)| code.clone())
                .unwrap_or_else(|| raw.to_owned()),
            _ => raw.to_owned(),
        }
    }

    /// The Spanish label of a group, as the report prints it.
    pub fn label(&self, breakdown: &str, key: &str) -> String {
        match breakdown {
            "sex" => match key {
                "female" => "Mujer".into(),
                "male" => "Hombre".into(),
                _ => "Sin registro".into(),
            },
            "region" => self
                .region
                .get(key)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| key.to_owned()),
            "country" => self
                .country
                .get(key)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| key.to_owned()),
            "consulate" => self
                .consulate
                .values()
                .find(|(code, _)| code == key)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| key.to_owned()),
            "attention_type" => self
                .attention_type
                .values()
                .find(|(code, _, _)| code == key)
                .map(|(_, n, _)| n.clone())
                .unwrap_or_else(|| key.to_owned()),
            "channel" if key == "not_recorded" => "Sin registro".into(),
            "channel" => IntakeChannel::parse(key)
                .map(|c| c.name_es().to_owned())
                .unwrap_or_else(|| key.to_owned()),
            "age_group" if key == "unknown" => "Sin registro".into(),
            "age_group" => format!("{key} años"),
            _ => key.to_owned(),
        }
    }

    pub(super) fn region_order(&self, key: &str) -> i32 {
        self.region.get(key).map(|(_, o)| *o).unwrap_or(i32::MAX)
    }
}

/// The groups one person was counted in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonGroups {
    pub sex: String,
    pub age_group: String,
    pub region: BTreeSet<String>,
    pub country: BTreeSet<String>,
    /// Consulate codes.
    pub consulate: BTreeSet<String>,
    /// Attention-type codes.
    pub attention_type: BTreeSet<String>,
    pub category: BTreeSet<String>,
    pub channel: BTreeSet<String>,
}

impl PersonGroups {
    /// The keys this person has in a breakdown.
    pub fn keys(&self, breakdown: &str) -> Vec<&str> {
        match breakdown {
            "sex" => vec![self.sex.as_str()],
            "age_group" => vec![self.age_group.as_str()],
            "region" => self.region.iter().map(String::as_str).collect(),
            "country" => self.country.iter().map(String::as_str).collect(),
            "consulate" => self.consulate.iter().map(String::as_str).collect(),
            "attention_type" => self.attention_type.iter().map(String::as_str).collect(),
            "category" => self.category.iter().map(String::as_str).collect(),
            "channel" => self.channel.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}
