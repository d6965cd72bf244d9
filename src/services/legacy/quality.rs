//! Data quality: what an import found, and the same checks on the live
//! database (`GET /api/v1/data-quality`, `mapce quality`).

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::schema::{
    attentions, consulate_jurisdictions, consulates, duplicate_pairs, import_rejections, persons,
};
use crate::db::{DbConn, Id};
use crate::error::AppError;

/// A consulate-month whose volume stands out from that consulate's months.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct VolumeOutlier {
    pub consulate_id: Id,
    /// `YYYY-MM`
    pub month: String,
    pub attentions: i64,
    /// The consulate's median month.
    pub median: f64,
    /// 0.6745 × (x − median) / MAD; an outlier above 3.5 in absolute value.
    pub modified_z: f64,
}

/// What an import saw in the rows it brought.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ImportQuality {
    /// Imported rows without a sex (`not_recorded`).
    pub missing_sex: i64,
    /// Imported rows whose country is neither the consulate's nor in its
    /// jurisdiction.
    pub outside_jurisdiction: i64,
    /// Persons whose document came with another sex or birth date than the
    /// one recorded first.
    pub conflicting_documents: i64,
    pub volume_outliers: Vec<VolumeOutlier>,
}

/// Consulate-months with a modified z-score above 3.5 (Iglewicz and
/// Hoaglin), per consulate with at least six months of data.
pub fn outliers(volumes: &HashMap<(Id, String), i64>) -> Vec<VolumeOutlier> {
    let mut by_consulate: HashMap<Id, Vec<(&str, i64)>> = HashMap::new();
    for ((c, month), n) in volumes {
        by_consulate
            .entry(*c)
            .or_default()
            .push((month.as_str(), *n));
    }
    let mut out = Vec::new();
    for (c, months) in by_consulate {
        if months.len() < 6 {
            continue;
        }
        let values: Vec<f64> = months.iter().map(|(_, n)| *n as f64).collect();
        let median = median_of(values.clone());
        let deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        let mad = median_of(deviations);
        if mad == 0.0 {
            continue;
        }
        for (month, n) in months {
            let z = 0.6745 * (n as f64 - median) / mad;
            if z.abs() > 3.5 {
                out.push(VolumeOutlier {
                    consulate_id: c,
                    month: month.to_owned(),
                    attentions: n,
                    median,
                    modified_z: (z * 100.0).round() / 100.0,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.modified_z
            .abs()
            .partial_cmp(&a.modified_z.abs())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.month.cmp(&b.month))
    });
    out
}

fn median_of(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A count with a few examples to look at.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub count: i64,
    /// Up to 20 ids (persons or attentions) to start the clean-up with.
    pub examples: Vec<Id>,
}

/// One unmapped legacy label across imports.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LabelCount {
    pub label: String,
    pub rows: i64,
}

/// A spelling of a coded field that still resolves to nothing today.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SpellingCount {
    /// `consulado`, `pais`, `canal`, `sexo` or `tipo_documento`.
    pub field: String,
    pub spelling: String,
    /// Refused import rows carrying it, over all imports; for `canal`, the
    /// live attentions imported as `not_recorded` with it.
    pub rows: i64,
    /// For `canal`: the distinct persons of those attentions.
    pub persons: Option<i64>,
}

/// The live database's data quality.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct LiveQuality {
    /// Live persons without a recorded sex.
    pub persons_missing_sex: Finding,
    /// Non-voided attentions dated in the future.
    pub attentions_in_future: Finding,
    /// Non-voided attentions before the person's birth.
    pub attentions_before_birth: Finding,
    /// Non-voided attentions at which the person was older than 110.
    pub attentions_older_than_110: Finding,
    /// Attentions whose case country is neither the consulate's nor in its
    /// jurisdiction.
    pub outside_jurisdiction: Finding,
    /// Live persons sharing a document number with another live person
    /// whose sex or birth date differs.
    pub conflicting_documents: Finding,
    /// Likely duplicates waiting in the review queue.
    pub suspected_duplicates: i64,
    /// Legacy labels that resolve to no attention type today, over all
    /// imports (a label taught since is not listed).
    pub unmapped_labels: Vec<LabelCount>,
    /// Spellings of consulates, countries, channels, sexes and document
    /// types that resolve to nothing today, most rows first.
    pub unresolved_values: Vec<SpellingCount>,
    pub volume_outliers: Vec<VolumeOutlier>,
}

const EXAMPLES: i64 = 20;

impl Finding {
    /// Counts one more, keeping it as an example while there is room.
    fn add(&mut self, id: Id) {
        self.count += 1;
        if (self.examples.len() as i64) < EXAMPLES {
            self.examples.push(id);
        }
    }
}

/// Runs every check on the live database.
pub fn live(conn: &mut DbConn, today: NaiveDate) -> Result<LiveQuality, AppError> {
    let mut q = LiveQuality::default();
    let live_persons = persons::merged_into_id.is_null();
    q.persons_missing_sex = Finding {
        count: persons::table
            .filter(live_persons)
            .filter(persons::sex.eq("not_recorded"))
            .count()
            .get_result(conn)?,
        examples: persons::table
            .filter(live_persons)
            .filter(persons::sex.eq("not_recorded"))
            .select(persons::id)
            .order(persons::id)
            .limit(EXAMPLES)
            .load(conn)?,
    };
    let future = attentions::table
        .filter(attentions::voided_at.is_null())
        .filter(attentions::attended_on.gt(today));
    q.attentions_in_future = Finding {
        count: future.count().get_result(conn)?,
        examples: future
            .select(attentions::id)
            .order(attentions::id)
            .limit(EXAMPLES)
            .load(conn)?,
    };
    let consulate_country: HashMap<Id, String> = consulates::table
        .select((consulates::id, consulates::country_code))
        .load::<(Id, String)>(conn)?
        .into_iter()
        .collect();
    let mut served: HashMap<Id, Vec<String>> = HashMap::new();
    for (c, country) in consulate_jurisdictions::table
        .select((
            consulate_jurisdictions::consulate_id,
            consulate_jurisdictions::country_code,
        ))
        .load::<(Id, String)>(conn)?
    {
        served.entry(c).or_default().push(country);
    }
    // One streamed pass over the non-voided attentions; dates are compared
    // in Rust, the same on both backends.
    let mut volumes: HashMap<(Id, String), i64> = HashMap::new();
    let rows = attentions::table
        .filter(attentions::voided_at.is_null())
        .select((
            attentions::id,
            attentions::consulate_id,
            attentions::country_code,
            attentions::attended_on,
            attentions::person_birth_date,
        ))
        .load_iter::<(Id, Id, Option<String>, NaiveDate, Option<NaiveDate>), diesel::connection::DefaultLoadingMode>(conn)?;
    for row in rows {
        let (id, consulate, country, on, birth) = row?;
        *volumes
            .entry((consulate, format!("{}-{:02}", on.year(), on.month())))
            .or_default() += 1;
        if let Some(birth) = birth {
            if on < birth {
                q.attentions_before_birth.add(id);
            } else if on.years_since(birth).is_some_and(|y| y > 110) {
                q.attentions_older_than_110.add(id);
            }
        }
        let Some(country) = country else { continue };
        let inside = consulate_country.get(&consulate) == Some(&country)
            || served.get(&consulate).is_some_and(|s| s.contains(&country));
        if !inside {
            q.outside_jurisdiction.add(id);
        }
    }
    q.volume_outliers = outliers(&volumes);
    q.conflicting_documents = conflicting_documents(conn)?;
    q.suspected_duplicates = duplicate_pairs::table
        .filter(duplicate_pairs::status.eq("open"))
        .count()
        .get_result(conn)?;
    let labels: Vec<(String, i64)> = import_rejections::table
        .filter(import_rejections::field.eq("tipo_atencion"))
        .filter(import_rejections::reason.like("no attention type%"))
        .group_by(import_rejections::value)
        .select((import_rejections::value, diesel::dsl::count_star()))
        .load(conn)?;
    let mut still = Vec::new();
    for (label, rows) in labels {
        let resolved = crate::services::catalogue::resolve(conn, &label)?
            .is_some_and(|t| t.status == "active");
        if !resolved {
            still.push(LabelCount { label, rows });
        }
    }
    still.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.label.cmp(&b.label)));
    q.unmapped_labels = still;
    q.unresolved_values = unresolved_values(conn)?;
    Ok(q)
}

/// Refused spellings that nothing resolves yet, and the channel spellings
/// imported attentions still carry as `not_recorded`.
fn unresolved_values(conn: &mut DbConn) -> Result<Vec<SpellingCount>, AppError> {
    use crate::domain::vocabulary::Vocabulary;
    let resolver = crate::services::vocabulary::Resolver::load(conn)?;
    let fields: Vec<&str> = Vocabulary::ALL.iter().map(|v| v.legacy_field()).collect();
    let refused: Vec<(String, String, i64)> = import_rejections::table
        .filter(import_rejections::field.eq_any(&fields))
        .filter(import_rejections::value.ne(""))
        .group_by((import_rejections::field, import_rejections::value))
        .select((
            import_rejections::field,
            import_rejections::value,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    let mut out: Vec<SpellingCount> = refused
        .into_iter()
        .filter(|(field, value, _)| {
            Vocabulary::from_legacy_field(field)
                .is_some_and(|v| resolver.resolve(v, value).is_none())
        })
        .map(|(field, spelling, rows)| SpellingCount {
            field,
            spelling,
            rows,
            persons: None,
        })
        .collect();
    out.extend(
        crate::models::vocabulary::open_channel_spellings(conn)?
            .into_iter()
            .map(|(spelling, rows, persons)| SpellingCount {
                field: Vocabulary::Channel.legacy_field().to_owned(),
                spelling,
                rows,
                persons: Some(persons),
            }),
    );
    out.sort_by(|a, b| {
        b.rows
            .cmp(&a.rows)
            .then_with(|| (&a.field, &a.spelling).cmp(&(&b.field, &b.spelling)))
    });
    Ok(out)
}

/// Live persons who share a document number (any type) with another live
/// person of a different sex or birth date.
fn conflicting_documents(conn: &mut DbConn) -> Result<Finding, AppError> {
    use crate::db::schema::person_documents as pd;
    let shared: Vec<String> = pd::table
        .group_by(pd::number)
        .having(diesel::dsl::count_star().gt(1))
        .select(pd::number)
        .load(conn)?;
    let mut f = Finding::default();
    for chunk in shared.chunks(500) {
        let rows: Vec<(String, Id, String, Option<NaiveDate>)> = pd::table
            .inner_join(persons::table)
            .filter(pd::number.eq_any(chunk))
            .filter(persons::merged_into_id.is_null())
            .select((pd::number, persons::id, persons::sex, persons::birth_date))
            .load(conn)?;
        let mut by_number: HashMap<String, Vec<(Id, String, Option<NaiveDate>)>> = HashMap::new();
        for (n, id, sex, birth) in rows {
            by_number.entry(n).or_default().push((id, sex, birth));
        }
        for people in by_number.values() {
            let differs = people.iter().any(|(id, s, b)| {
                people.iter().any(|(id2, s2, b2)| {
                    id != id2
                        && ((s != "not_recorded" && s2 != "not_recorded" && s != s2)
                            || matches!((b, b2), (Some(x), Some(y)) if x != y))
                })
            });
            if differs {
                for (id, _, _) in people {
                    f.add(*id);
                }
            }
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_far_from_its_consulates_median_is_an_outlier() {
        let c = Id::new();
        let mut v = HashMap::new();
        for (m, n) in [
            ("2024-01", 100),
            ("2024-02", 104),
            ("2024-03", 97),
            ("2024-04", 101),
            ("2024-05", 99),
            ("2024-06", 103),
            ("2024-07", 400),
        ] {
            v.insert((c, m.to_owned()), n);
        }
        let out = outliers(&v);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].month, "2024-07");
        assert!(out[0].modified_z > 3.5);
        v.insert((c, "2024-07".to_owned()), 106);
        assert!(outliers(&v).is_empty());
    }
}
