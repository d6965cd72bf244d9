//! Progress against the year's target (Avance tipo 1) and the drift of a
//! closed year's cells.

use super::*;

/// The indicator's sense, which decides the Avance tipo 1 formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sense {
    Ascending,
    Descending,
    MaximumPermissible,
    MinimumPermissible,
}

impl Sense {
    pub fn as_str(self) -> &'static str {
        match self {
            Sense::Ascending => "ascending",
            Sense::Descending => "descending",
            Sense::MaximumPermissible => "maximum_permissible",
            Sense::MinimumPermissible => "minimum_permissible",
        }
    }

    pub const ALL: [Sense; 4] = [
        Sense::Ascending,
        Sense::Descending,
        Sense::MaximumPermissible,
        Sense::MinimumPermissible,
    ];

    pub fn parse(v: &str) -> Option<Sense> {
        Self::ALL.into_iter().find(|s| s.as_str() == v)
    }
}

impl crate::domain::Stored for Sense {
    const WHAT: &'static str = "indicator sense";
    const VALUES: &'static [Self] = &Sense::ALL;
    fn code(self) -> &'static str {
        self.as_str()
    }
}

/// Progress of an observed value against its target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Avance {
    /// Capped at 100 ("full or more than expected"), one decimal.
    pub capped: f64,
    /// As the report's tables also print it (may exceed 100).
    pub uncapped: f64,
}

/// Avance tipo 1: `None` when the formula divides by zero.
pub fn avance(sense: Sense, observed: i64, target: i64) -> Option<Avance> {
    let round = |v: f64| (v * 10.0).round() / 10.0;
    let raw = match sense {
        Sense::Ascending if target == 0 => return None,
        Sense::Ascending => observed as f64 / target as f64 * 100.0,
        Sense::Descending if observed == 0 => return None,
        Sense::Descending => target as f64 / observed as f64 * 100.0,
        Sense::MaximumPermissible => {
            if observed <= target {
                100.0
            } else {
                0.0
            }
        }
        Sense::MinimumPermissible => {
            if observed >= target {
                100.0
            } else {
                0.0
            }
        }
    };
    Some(Avance {
        capped: round(raw.min(100.0)),
        uncapped: round(raw),
    })
}

/// Cells whose persons differ between a snapshot and today, and the
/// persons that came or went.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CellDrift {
    pub breakdown: String,
    pub key: String,
    pub closed: i64,
    pub now: i64,
}

/// Compares a snapshot's persons with today's.
pub fn cell_drift(
    closed: &BTreeMap<Id, PersonGroups>,
    now: &BTreeMap<Id, PersonGroups>,
) -> Vec<CellDrift> {
    let count = |m: &BTreeMap<Id, PersonGroups>| {
        let mut c: BTreeMap<(&'static str, String), i64> = BTreeMap::new();
        for g in m.values() {
            for b in BREAKDOWNS {
                for k in g.keys(b) {
                    *c.entry((b, k.to_owned())).or_default() += 1;
                }
            }
        }
        c
    };
    let (a, b) = (count(closed), count(now));
    let keys: BTreeSet<&(&'static str, String)> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (
                a.get(k).copied().unwrap_or(0),
                b.get(k).copied().unwrap_or(0),
            );
            (x != y).then(|| CellDrift {
                breakdown: k.0.to_owned(),
                key: k.1.clone(),
                closed: x,
                now: y,
            })
        })
        .collect()
}
