//! OEI.05 — persons protected and assisted: distinct persons with at least
//! one non-voided attention in a period, with their breakdowns, progress
//! against the year's target (Avance tipo 1), and the per-person groups a
//! closed year keeps so that drift can be explained.
//!
//! One query reads the period's attentions (with the case's country and the
//! person's sex and birth date); everything else is counted in memory, where
//! "once per person per group" is a set membership, the same on both backends.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::raw_sqlite;
use crate::db::schema::{attention_types, attentions, consulates, countries, regions};
use crate::db::types::parse_day_bytes;
use crate::db::{Code, Day, DbConn, Id};
use crate::domain::catalogue::IntakeChannel;

/// The rules every figure follows; served with the figures and in docs/oei05.md.
pub const COUNTING_RULES: &[&str] = &[
    "A person is counted when they have at least one attention in the period that is not voided.",
    "Each person counts once in the total, however many attentions, cases, types, countries or consulates they have.",
    "In a breakdown a person counts once in every group they appear in: someone attended in two countries counts in both, so groups may add up to more than the total (`groups_exceed_total`).",
    "Merged duplicates are one person: their attentions belong to the surviving record.",
    "Sex `not_recorded` is a group of its own, never guessed.",
    "Age group is the age at the person's first attention of the period; without a birth date it is `unknown`.",
    "Country is where the case happened; region is that country's; consulate is the office that gave the attention.",
    "Attentions count every non-voided attention in the period.",
];

pub const AGE_GROUPS: [&str; 6] = ["0-17", "18-29", "30-44", "45-59", "60+", "unknown"];

fn age_group(birth: Option<NaiveDate>, on: NaiveDate) -> &'static str {
    let Some(b) = birth else { return "unknown" };
    let Some(age) = on.years_since(b) else {
        return "unknown";
    };
    match age {
        0..=17 => "0-17",
        18..=29 => "18-29",
        30..=44 => "30-44",
        45..=59 => "45-59",
        _ => "60+",
    }
}

/// The breakdowns, in the order they are served and exported.
pub const BREAKDOWNS: [&str; 8] = [
    "sex",
    "region",
    "country",
    "consulate",
    "attention_type",
    "category",
    "channel",
    "age_group",
];

/// One attention as the indicator reads it: person, type, consulate,
/// country (the case's), channel, day, the person's sex and birth date.
type Row = (
    Id,
    Id,
    Id,
    Option<Code>,
    Code,
    Day,
    Option<Code>,
    Option<Day>,
);

/// Rows travel from the scan to the counter in chunks of this many.
const CHUNK: usize = 4096;

/// The scan, the same on both backends (the raw SQLite reader binds the
/// dates as `?1` and `?2`, as diesel does).
const SCAN_SQL: &str = "SELECT person_id, attention_type_id, consulate_id, country_code, \
     channel, attended_on, person_sex, person_birth_date FROM attentions \
     WHERE attended_on >= ?1 AND attended_on <= ?2 AND voided_at IS NULL";

/// Counts a period's non-voided attentions (`to` inclusive), read in one
/// index-only pass over `attentions_oei05_idx` (the attention carries the
/// case's country and the person's sex and birth date).
///
/// Reading rows and counting them take about the same time, so they run on
/// two threads: this one reads rows in chunks and a scoped worker counts
/// each chunk while the next is read. On SQLite the rows are read through a
/// raw read-only cursor on the same file ([`raw_sqlite`]): one statement, so
/// one consistent snapshot, with column bytes borrowed instead of decoded
/// field by field. The result does not depend on how the rows arrive.
pub fn count_period(
    conn: &mut DbConn,
    from: NaiveDate,
    to: NaiveDate,
    labels: &Labels,
    series: Option<SeriesPeriod>,
) -> QueryResult<Tally> {
    let file = raw_sqlite::database_file(conn)?;
    pipeline(labels, series, |sink| match &file {
        Some(path) => scan_raw(path, from, to, sink),
        None => scan_diesel(conn, from, to, sink),
    })
}

/// Where the scan puts rows: chunks sent to the counter thread.
struct Sink {
    chunk: Vec<Row>,
    send: std::sync::mpsc::SyncSender<Vec<Row>>,
}

impl Sink {
    fn push(&mut self, row: Row) {
        self.chunk.push(row);
        if self.chunk.len() == CHUNK {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
            // a closed channel means the counter panicked: reported by join
            let _ = self.send.send(full);
        }
    }
}

/// Runs `scan` on this thread and counts what it pushes on another.
fn pipeline(
    labels: &Labels,
    series: Option<SeriesPeriod>,
    scan: impl FnOnce(&mut Sink) -> QueryResult<()>,
) -> QueryResult<Tally> {
    let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Row>>(8);
    std::thread::scope(|scope| {
        let counter = std::thread::Builder::new()
            .name("oei05-count".into())
            .spawn_scoped(scope, move || {
                let mut c = Counter::new(labels, series);
                for chunk in receive {
                    for row in chunk {
                        c.add(row);
                    }
                }
                c.finish()
            })
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
        let mut sink = Sink {
            chunk: Vec::with_capacity(CHUNK),
            send,
        };
        let scanned = scan(&mut sink);
        let Sink { chunk, send } = sink;
        if !chunk.is_empty() {
            let _ = send.send(chunk);
        }
        drop(send);
        let tally = counter.join().map_err(|_| {
            diesel::result::Error::QueryBuilderError("the OEI.05 counter failed".into())
        })?;
        scanned.map(|()| tally)
    })
}

fn scan_diesel(
    conn: &mut DbConn,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut Sink,
) -> QueryResult<()> {
    let rows = attentions::table
        .filter(attentions::attended_on.ge(from))
        .filter(attentions::attended_on.le(to))
        .filter(attentions::voided_at.is_null())
        .select((
            attentions::person_id,
            attentions::attention_type_id,
            attentions::consulate_id,
            attentions::country_code,
            attentions::channel,
            attentions::attended_on,
            attentions::person_sex,
            attentions::person_birth_date,
        ))
        .load_iter::<Row, diesel::connection::DefaultLoadingMode>(conn)?;
    for row in rows {
        sink.push(row?);
    }
    Ok(())
}

fn scan_raw(path: &str, from: NaiveDate, to: NaiveDate, sink: &mut Sink) -> QueryResult<()> {
    let (from, to) = (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    );
    let mut reader = raw_sqlite::RawReader::open(path)?;
    reader.for_each_row(SCAN_SQL, &[&from, &to], |r| {
        sink.push(raw_row(r)?);
        Ok(())
    })
}

/// One scanned row from its column bytes, checked like diesel checks them.
fn raw_row(r: &raw_sqlite::RawRow<'_>) -> QueryResult<Row> {
    use diesel::result::Error::DeserializationError;
    fn bad(column: &str) -> diesel::result::Error {
        DeserializationError(format!("attentions.{column}: unexpected value").into())
    }
    let id = |i: usize, column: &str| -> QueryResult<Id> {
        r.bytes(i)
            .and_then(|b| uuid::Uuid::try_parse_ascii(b).ok())
            .map(Id)
            .ok_or_else(|| bad(column))
    };
    let code = |i: usize, column: &str| -> QueryResult<Option<Code>> {
        r.bytes(i)
            .map(|b| {
                std::str::from_utf8(b)
                    .map(Code::new)
                    .map_err(|_| bad(column))
            })
            .transpose()
    };
    let day = |i: usize, column: &str| -> QueryResult<Option<Day>> {
        r.bytes(i)
            .map(|b| parse_day_bytes(b).map(Day).ok_or_else(|| bad(column)))
            .transpose()
    };
    Ok((
        id(0, "person_id")?,
        id(1, "attention_type_id")?,
        id(2, "consulate_id")?,
        code(3, "country_code")?,
        code(4, "channel")?.ok_or_else(|| bad("channel"))?,
        day(5, "attended_on")?.ok_or_else(|| bad("attended_on"))?,
        code(6, "person_sex")?,
        day(7, "person_birth_date")?,
    ))
}

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

    fn region_of(&self, country: &str) -> String {
        self.country
            .get(country)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| "unknown".into())
    }

    fn category_of(&self, t: Id) -> String {
        self.attention_type
            .get(&t)
            .map(|(_, _, c)| c.clone())
            .unwrap_or_else(|| "unknown".into())
    }

    /// The key a breakdown shows: codes for types and consulates.
    fn key(&self, breakdown: &str, raw: &str) -> String {
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

    fn region_order(&self, key: &str) -> i32 {
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

type IdMap<V> = HashMap<Id, V, std::hash::BuildHasherDefault<IdHasher>>;

/// Interned keys of one breakdown.
#[derive(Debug, Default)]
struct Dim {
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
struct Few {
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
struct PersonAcc {
    first_on: NaiveDate,
    birth: Option<NaiveDate>,
    attentions: i64,
    /// Per breakdown (in `BREAKDOWNS` order, age group filled at the end).
    groups: [Few; 8],
}

const SEX: usize = 0;
const REGION: usize = 1;
const COUNTRY: usize = 2;
const CONSULATE: usize = 3;
const TYPE: usize = 4;
const CATEGORY: usize = 5;
const CHANNEL: usize = 6;
const AGE: usize = 7;

/// What the period's attentions say, before any presentation. Keys are
/// interned and each person keeps small lists of key indices, so counting a
/// year of a national-scale database stays in the tens of milliseconds.
#[derive(Debug, Default)]
pub struct Tally {
    pub attentions: i64,
    dims: [Dim; 8],
    attentions_by: [Vec<i64>; 8],
    person_ids: Vec<Id>,
    person_index: IdMap<u32>,
    persons: Vec<PersonAcc>,
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
    fn groups_of(&self, d: usize) -> Vec<(&str, i64, i64)> {
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

fn sub_period(on: NaiveDate, p: SeriesPeriod) -> String {
    match p {
        SeriesPeriod::Month => format!("{}-{:02}", on.year(), on.month()),
        SeriesPeriod::Quarter => format!("{}-Q{}", on.year(), (on.month() - 1) / 3 + 1),
    }
}

/// Counts rows one at a time: persons once each, with every group they
/// appear in.
struct Counter<'a> {
    t: Tally,
    labels: &'a Labels,
    series: Option<SeriesPeriod>,
    // per-row lookups that repeat: consulate and type ids, country → region
    consulate_idx: IdMap<u32>,
    type_idx: IdMap<(u32, u32)>,
    country_idx: HashMap<Code, (u32, u32), std::hash::BuildHasherDefault<IdHasher>>,
}

impl<'a> Counter<'a> {
    fn new(labels: &'a Labels, series: Option<SeriesPeriod>) -> Counter<'a> {
        Counter {
            t: Tally::default(),
            labels,
            series,
            consulate_idx: IdMap::default(),
            type_idx: IdMap::default(),
            country_idx: HashMap::default(),
        }
    }

    fn add(&mut self, row: Row) {
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
    fn finish(self) -> Tally {
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

fn fixed_order(breakdown: &str) -> Option<&'static [&'static str]> {
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

fn region_by_sex(t: &Tally, labels: &Labels) -> Vec<RegionSexRow> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avance_follows_the_sense_and_is_served_capped_and_uncapped() {
        let a = avance(Sense::Ascending, 17_268, 19_030).expect("avance");
        assert_eq!(a.capped, 90.7);
        assert_eq!(a.uncapped, 90.7);
        let a = avance(Sense::Ascending, 40_700, 20_000).expect("avance");
        assert_eq!((a.capped, a.uncapped), (100.0, 203.5));
        assert_eq!(
            avance(Sense::Descending, 50, 40).map(|a| a.capped),
            Some(80.0)
        );
        assert_eq!(
            avance(Sense::MaximumPermissible, 10, 12).map(|a| a.capped),
            Some(100.0)
        );
        assert_eq!(
            avance(Sense::MaximumPermissible, 13, 12).map(|a| a.capped),
            Some(0.0)
        );
        assert_eq!(
            avance(Sense::MinimumPermissible, 11, 12).map(|a| a.capped),
            Some(0.0)
        );
        assert_eq!(avance(Sense::Ascending, 5, 0), None);
    }

    #[test]
    fn age_groups_are_taken_at_the_first_attention() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        assert_eq!(age_group(Some(d(2006, 6, 1)), d(2024, 5, 31)), "0-17");
        assert_eq!(age_group(Some(d(2006, 6, 1)), d(2024, 6, 1)), "18-29");
        assert_eq!(age_group(Some(d(1964, 1, 1)), d(2024, 1, 1)), "60+");
        assert_eq!(age_group(None, d(2024, 1, 1)), "unknown");
    }
}
