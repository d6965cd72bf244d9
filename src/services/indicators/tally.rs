//! Counting in memory: each person once per group of each breakdown, per
//! period and per sub-period of a series.

use super::*;

/// A hasher for ids: UUIDs are already random (v4) or random after their
/// timestamp (v7), so folding their bytes is enough, and much cheaper than
/// SipHash for the hundred thousand persons of a year.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0_u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 =
                (self.0.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(super) type IdMap<V> = HashMap<Id, V, std::hash::BuildHasherDefault<IdHasher>>;

/// Interned keys of one breakdown.
#[derive(Debug, Default)]
pub(super) struct Dim {
    keys: Vec<String>,
    index: HashMap<String, u32>,
}

impl Dim {
    /// For breakdowns with a handful of keys (channel): a scan beats hashing.
    fn intern_small(&mut self, key: &str) -> u32 {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i as u32,
            None => self.intern(key),
        }
    }

    fn intern(&mut self, key: &str) -> u32 {
        if let Some(i) = self.index.get(key) {
            return *i;
        }
        let i = self.keys.len() as u32;
        self.keys.push(key.to_owned());
        self.index.insert(key.to_owned(), i);
        i
    }
}

/// A few key indices, inline up to three (most persons have one country,
/// one consulate, one or two types), so counting allocates almost nothing
/// and a person's eight lists fit in three cache lines.
#[derive(Debug, Clone, Default)]
pub(super) struct Few {
    n: u8,
    inline: [u32; 3],
    /// Past three (rare): rebuilt on each addition, which costs less than
    /// the room an always-present `Vec` takes in every person.
    more: Option<Box<[u32]>>,
}

impl Few {
    fn one(i: u32) -> Few {
        Few {
            n: 1,
            inline: [i, 0, 0],
            more: None,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &u32> {
        self.inline[..usize::from(self.n)]
            .iter()
            .chain(self.more.iter().flat_map(|m| m.iter()))
    }

    fn first(&self) -> Option<&u32> {
        self.iter().next()
    }

    fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn push_unique(&mut self, i: u32) {
        if self.iter().any(|x| *x == i) {
            return;
        }
        if usize::from(self.n) < self.inline.len() {
            self.inline[usize::from(self.n)] = i;
            self.n += 1;
        } else {
            let mut v = self.more.take().map(Vec::from).unwrap_or_default();
            v.push(i);
            self.more = Some(v.into_boxed_slice());
        }
    }
}

/// One person's groups while counting: interned key indices per breakdown.
#[derive(Debug, Clone)]
pub(super) struct PersonAcc {
    first_on: NaiveDate,
    birth: Option<NaiveDate>,
    attentions: i64,
    /// Per breakdown (in `BREAKDOWNS` order, age group filled at the end).
    groups: [Few; 8],
}

pub(super) const SEX: usize = 0;
pub(super) const REGION: usize = 1;
pub(super) const COUNTRY: usize = 2;
pub(super) const CONSULATE: usize = 3;
pub(super) const TYPE: usize = 4;
pub(super) const CATEGORY: usize = 5;
pub(super) const CHANNEL: usize = 6;
pub(super) const AGE: usize = 7;

/// What the period's attentions say, before any presentation. Keys are
/// interned and each person keeps small lists of key indices, so counting a
/// year of a national-scale database stays in the tens of milliseconds.
#[derive(Debug, Default)]
pub struct Tally {
    pub attentions: i64,
    pub(super) dims: [Dim; 8],
    attentions_by: [Vec<i64>; 8],
    person_ids: Vec<Id>,
    person_index: IdMap<u32>,
    pub(super) persons: Vec<PersonAcc>,
    /// sub-period label → (person indices, attentions)
    series: BTreeMap<String, (BTreeSet<u32>, i64)>,
}

impl Tally {
    pub fn persons(&self) -> i64 {
        self.persons.len() as i64
    }

    pub fn contains(&self, person: &Id) -> bool {
        self.person_index.contains_key(person)
    }

    pub fn person_ids(&self) -> impl Iterator<Item = &Id> {
        self.person_ids.iter()
    }

    /// Every counted person with the keys of every group they are in.
    pub fn person_groups(&self) -> BTreeMap<Id, PersonGroups> {
        let keys = |p: &PersonAcc, d: usize| -> BTreeSet<String> {
            p.groups[d]
                .iter()
                .map(|i| self.dims[d].keys[*i as usize].clone())
                .collect()
        };
        let one = |p: &PersonAcc, d: usize| -> String {
            p.groups[d]
                .first()
                .map(|i| self.dims[d].keys[*i as usize].clone())
                .unwrap_or_default()
        };
        self.person_ids
            .iter()
            .zip(&self.persons)
            .map(|(id, p)| {
                (
                    *id,
                    PersonGroups {
                        sex: one(p, SEX),
                        age_group: one(p, AGE),
                        region: keys(p, REGION),
                        country: keys(p, COUNTRY),
                        consulate: keys(p, CONSULATE),
                        attention_type: keys(p, TYPE),
                        category: keys(p, CATEGORY),
                        channel: keys(p, CHANNEL),
                    },
                )
            })
            .collect()
    }

    /// (key, persons, attentions) of every group of a breakdown.
    pub(super) fn groups_of(&self, d: usize) -> Vec<(&str, i64, i64)> {
        let mut persons = vec![0_i64; self.dims[d].keys.len()];
        for p in &self.persons {
            for i in p.groups[d].iter() {
                persons[*i as usize] += 1;
            }
        }
        self.dims[d]
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    k.as_str(),
                    persons[i],
                    self.attentions_by[d].get(i).copied().unwrap_or(0),
                )
            })
            .collect()
    }

    /// The series inside the period.
    pub fn series_points(&self) -> Vec<SeriesPoint> {
        self.series
            .iter()
            .map(|(p, (ids, n))| SeriesPoint {
                period: p.clone(),
                persons: ids.len() as i64,
                attentions: *n,
            })
            .collect()
    }

    /// A monthly series regrouped by quarter (persons once per quarter).
    pub fn quarters_from_months(&self) -> Vec<SeriesPoint> {
        let mut q: BTreeMap<String, (BTreeSet<u32>, i64)> = BTreeMap::new();
        for (label, (ids, n)) in &self.series {
            let (y, m) = label.split_once('-').unwrap_or((label, "01"));
            let quarter = (m.parse::<u32>().unwrap_or(1).max(1) - 1) / 3 + 1;
            let e = q.entry(format!("{y}-Q{quarter}")).or_default();
            e.0.extend(ids.iter().copied());
            e.1 += n;
        }
        q.into_iter()
            .map(|(period, (ids, n))| SeriesPoint {
                period,
                persons: ids.len() as i64,
                attentions: n,
            })
            .collect()
    }
}

/// How a period is cut into a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeriesPeriod {
    Quarter,
    Month,
}

pub(super) fn sub_period(on: NaiveDate, p: SeriesPeriod) -> String {
    match p {
        SeriesPeriod::Month => format!("{}-{:02}", on.year(), on.month()),
        SeriesPeriod::Quarter => format!("{}-Q{}", on.year(), (on.month() - 1) / 3 + 1),
    }
}

/// Counts rows one at a time: persons once each, with every group they
/// appear in.
pub(super) struct Counter<'a> {
    t: Tally,
    labels: &'a Labels,
    series: Option<SeriesPeriod>,
    // per-row lookups that repeat: consulate and type ids, country → region
    consulate_idx: IdMap<u32>,
    type_idx: IdMap<(u32, u32)>,
    country_idx: HashMap<Code, (u32, u32), std::hash::BuildHasherDefault<IdHasher>>,
}

impl<'a> Counter<'a> {
    pub(super) fn new(labels: &'a Labels, series: Option<SeriesPeriod>) -> Counter<'a> {
        Counter {
            t: Tally::default(),
            labels,
            series,
            consulate_idx: IdMap::default(),
            type_idx: IdMap::default(),
            country_idx: HashMap::default(),
        }
    }

    pub(super) fn add(&mut self, row: Row) {
        let (person, type_id, consulate, country, channel, Day(on), sex, birth) = row;
        let (t, labels) = (&mut self.t, self.labels);
        let birth = birth.map(|d| d.0);
        let sex = sex.as_ref().map(Code::as_str).unwrap_or("not_recorded");
        t.attentions += 1;
        let c = *self.consulate_idx.entry(consulate).or_insert_with(|| {
            t.dims[CONSULATE].intern(&labels.key("consulate", &consulate.to_string()))
        });
        let (ty, cat) = *self.type_idx.entry(type_id).or_insert_with(|| {
            let ty = t.dims[TYPE].intern(&labels.key("attention_type", &type_id.to_string()));
            let cat = t.dims[CATEGORY].intern(&labels.category_of(type_id));
            (ty, cat)
        });
        let country = country.unwrap_or_else(Code::new_unknown);
        let (co, re) = match self.country_idx.get(&country) {
            Some(v) => *v,
            None => {
                let v = (
                    t.dims[COUNTRY].intern(country.as_str()),
                    t.dims[REGION].intern(&labels.region_of(country.as_str())),
                );
                self.country_idx.insert(country, v);
                v
            }
        };
        let ch = t.dims[CHANNEL].intern_small(channel.as_str());
        let sx = t.dims[SEX].intern_small(sex);
        for (d, i) in [
            (SEX, sx),
            (REGION, re),
            (COUNTRY, co),
            (CONSULATE, c),
            (TYPE, ty),
            (CATEGORY, cat),
            (CHANNEL, ch),
        ] {
            let v = &mut t.attentions_by[d];
            if v.len() <= i as usize {
                v.resize(i as usize + 1, 0);
            }
            v[i as usize] += 1;
        }
        let pi = match t.person_index.get(&person) {
            Some(i) => *i,
            None => {
                let i = t.persons.len() as u32;
                t.person_index.insert(person, i);
                t.person_ids.push(person);
                t.persons.push(PersonAcc {
                    first_on: on,
                    birth,
                    attentions: 0,
                    groups: Default::default(),
                });
                i
            }
        };
        let p = &mut t.persons[pi as usize];
        p.attentions += 1;
        if on < p.first_on {
            p.first_on = on;
        }
        if p.groups[SEX].is_empty() {
            p.groups[SEX] = Few::one(sx);
        }
        p.groups[REGION].push_unique(re);
        p.groups[COUNTRY].push_unique(co);
        p.groups[CONSULATE].push_unique(c);
        p.groups[TYPE].push_unique(ty);
        p.groups[CATEGORY].push_unique(cat);
        p.groups[CHANNEL].push_unique(ch);
        if let Some(s) = self.series {
            let e = t.series.entry(sub_period(on, s)).or_default();
            e.0.insert(pi);
            e.1 += 1;
        }
    }

    /// Age groups are taken at each person's first attention of the period,
    /// known only once every row is in.
    pub(super) fn finish(self) -> Tally {
        let mut t = self.t;
        for i in 0..t.persons.len() {
            let (on, birth, n) = (
                t.persons[i].first_on,
                t.persons[i].birth,
                t.persons[i].attentions,
            );
            let a = t.dims[AGE].intern(age_group(birth, on));
            t.persons[i].groups[AGE] = Few::one(a);
            let v = &mut t.attentions_by[AGE];
            if v.len() <= a as usize {
                v.resize(a as usize + 1, 0);
            }
            v[a as usize] += n;
        }
        t
    }
}

pub(super) fn region_by_sex(t: &Tally, labels: &Labels) -> Vec<RegionSexRow> {
    let mut by_region: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    let mut overall = [0_i64; 3];
    for p in &t.persons {
        let sex = p.groups[SEX]
            .first()
            .map(|i| t.dims[SEX].keys[*i as usize].as_str());
        let i = match sex {
            Some("female") => 0,
            Some("male") => 1,
            _ => 2,
        };
        overall[i] += 1;
        for r in p.groups[REGION].iter() {
            by_region
                .entry(t.dims[REGION].keys[*r as usize].clone())
                .or_default()[i] += 1;
        }
    }
    let row = |region: String, label: String, c: [i64; 3]| {
        let total = c.iter().sum();
        RegionSexRow {
            region,
            label,
            total,
            female: SexShare {
                persons: c[0],
                percent: percent(c[0], total),
            },
            male: SexShare {
                persons: c[1],
                percent: percent(c[1], total),
            },
            not_recorded: SexShare {
                persons: c[2],
                percent: percent(c[2], total),
            },
        }
    };
    let mut rows: Vec<RegionSexRow> = by_region
        .into_iter()
        .map(|(r, c)| row(r.clone(), labels.label("region", &r), c))
        .collect();
    rows.sort_by_key(|r| labels.region_order(&r.region));
    rows.push(row("total".into(), "Total".into(), overall));
    rows
}
