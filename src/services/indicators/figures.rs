//! The figures a reader gets: totals, breakdowns (with the smallest groups
//! folded into "others"), the sex share and the region-by-sex table.

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub key: String,
    pub label: String,
    pub persons: i64,
    /// Share of the total persons, one decimal.
    pub percent: f64,
    /// Attentions in the group (for age groups: all the persons' attentions).
    pub attentions: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Others {
    /// How many groups were folded in.
    pub groups: i64,
    /// Distinct persons in the folded groups.
    pub persons: i64,
    pub attentions: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Breakdown {
    pub name: String,
    /// Largest first (sex, region and age group in their fixed order).
    pub groups: Vec<Group>,
    /// The rest, beyond `top`.
    pub others: Option<Others>,
    /// Sum of the groups' persons (with `others`).
    pub sum_of_groups: i64,
    /// True when persons appear in more than one group, so the groups add
    /// up to more than the total.
    pub groups_exceed_total: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SexShare {
    pub persons: i64,
    pub percent: f64,
}

/// A row of the report's Table 13: persons by region and sex.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegionSexRow {
    pub region: String,
    pub label: String,
    pub total: i64,
    pub female: SexShare,
    pub male: SexShare,
    pub not_recorded: SexShare,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoint {
    pub period: String,
    pub persons: i64,
    pub attentions: i64,
}

/// The OEI.05 figures of a period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Figures {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Distinct persons protected and assisted.
    pub persons: i64,
    pub attentions: i64,
    pub breakdowns: Vec<Breakdown>,
    /// Table 13 of the report, with a last `total` row.
    pub region_by_sex: Vec<RegionSexRow>,
    /// Within the period, when asked for (`period=quarter|month`).
    pub series: Vec<SeriesPoint>,
    pub counting_rules: Vec<String>,
}

pub fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

pub(super) fn fixed_order(breakdown: &str) -> Option<&'static [&'static str]> {
    match breakdown {
        "sex" => Some(&["female", "male", "not_recorded"]),
        "age_group" => Some(&AGE_GROUPS),
        _ => None,
    }
}

/// Folds all but the `top` largest groups of each breakdown into `others`
/// (sex, region and age group are never folded), counting the folded
/// groups' distinct persons from the persons' groups.
pub fn fold_top(f: &mut Figures, persons: &BTreeMap<Id, PersonGroups>, top: usize) {
    for b in &mut f.breakdowns {
        if matches!(b.name.as_str(), "sex" | "region" | "age_group") || b.groups.len() <= top {
            continue;
        }
        let rest = b.groups.split_off(top);
        let folded: BTreeSet<&str> = rest.iter().map(|g| g.key.as_str()).collect();
        let distinct = persons
            .values()
            .filter(|g| g.keys(&b.name).iter().any(|k| folded.contains(k)))
            .count();
        b.others = Some(Others {
            groups: rest.len() as i64,
            persons: distinct as i64,
            attentions: rest.iter().map(|g| g.attentions).sum(),
        });
    }
}

/// Presents a tally, every group shown.
pub fn figures(t: &Tally, labels: &Labels, from: NaiveDate, to: NaiveDate) -> Figures {
    let total = t.persons();
    let mut breakdowns = Vec::new();
    for (d, b) in BREAKDOWNS.into_iter().enumerate() {
        let mut groups: Vec<Group> = t
            .groups_of(d)
            .into_iter()
            .map(|(k, persons, attentions)| Group {
                key: k.to_owned(),
                label: labels.label(b, k),
                persons,
                percent: percent(persons, total),
                attentions,
            })
            .collect();
        if let Some(order) = fixed_order(b) {
            for k in order {
                if !groups.iter().any(|g| g.key == *k) {
                    groups.push(Group {
                        key: (*k).to_owned(),
                        label: labels.label(b, k),
                        persons: 0,
                        percent: 0.0,
                        attentions: 0,
                    });
                }
            }
            groups.sort_by_key(|g| order.iter().position(|k| *k == g.key));
        } else if b == "region" {
            groups.sort_by_key(|g| labels.region_order(&g.key));
        } else {
            groups.sort_by(|a, b| b.persons.cmp(&a.persons).then_with(|| a.key.cmp(&b.key)));
        }
        let sum_of_groups = groups.iter().map(|g| g.persons).sum::<i64>();
        breakdowns.push(Breakdown {
            name: b.to_owned(),
            groups,
            others: None,
            sum_of_groups,
            groups_exceed_total: sum_of_groups > total,
        });
    }
    Figures {
        from,
        to,
        persons: total,
        attentions: t.attentions,
        region_by_sex: region_by_sex(t, labels),
        series: t.series_points(),
        breakdowns,
        counting_rules: COUNTING_RULES.iter().map(|s| (*s).to_owned()).collect(),
    }
}
