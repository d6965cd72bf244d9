//! Legacy MAPCE import: one row of the extract is one attention.
//!
//! Rules (also in docs/legacy-import.md):
//! - A row is imported whole or not at all; a refused row is reported with
//!   its line, field, value and reason.
//! - The same document (type, number, issuing country) is the same person
//!   whatever the spelling of the name; the person keeps the sex and birth
//!   date first recorded and a conflicting row is a quality finding.
//! - Without a document, rows of one import with the same folded full name
//!   and the same birth date are one person; a row without document nor
//!   birth date is a person of its own. New persons without a document are
//!   compared with the persons of the same folded full name (an indexed
//!   lookup, so the check stays cheap at a million rows; `mapce dedup scan`
//!   runs the full fuzzy comparison): likely duplicates go to the review
//!   queue, never merged silently.
//! - Attentions go to one legacy case per person, consulate, country and
//!   year (closed, outcome not recorded, as MAPCE had no follow-up).
//! - Every row has a fingerprint (its values and how many identical rows
//!   came before it in the file); a fingerprint already imported is skipped,
//!   so running the same file again adds nothing.
//! - Rows are written in batches, each in one transaction with its audit
//!   row (or everything in one with `atomic`); a dry run writes nothing.

pub mod jobs;
pub mod quality;
pub mod read;
pub mod values;
pub mod xlsx_guard;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::audit::{self, Actor, Event, RequestMeta};
use crate::db::checked_load::{self, ForeignKey, Values, Written};
use crate::db::raw_insert::RawInserts;
use crate::db::schema::{
    attentions, imports, legacy_cases, legacy_rows, person_documents, persons,
};
use crate::db::{Code, DbConn, Id, Ts};
use crate::domain::person::name_key;
use crate::domain::text::fold_key;
use crate::domain::vocabulary::Vocabulary;
use crate::error::AppError;
use crate::models::cases::{Attention, Case};
use crate::models::persons::{Document, Person, TimelineEvent};
use crate::{bulk_insert, per_backend};
use read::{Format, Mapping, FIELDS};
use values::{Lookup, Parsed, Rejection};

/// How an import runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    pub atomic: bool,
    pub mapping: Mapping,
    /// Rows resolved and written together (when not atomic).
    pub batch_rows: usize,
    /// On SQLite, when batches go to a writer connection: the rows one
    /// transaction gathers, as whole batches (see `commit_groups`). The
    /// default, one batch, keeps the write lock short for a server's
    /// other writers; the command line gathers more.
    pub commit_rows: usize,
    /// Refused rows kept in the report (all are counted).
    pub keep_rejections: usize,
    /// Whether to set secondary indexes aside while writing.
    pub indexes: IndexMode,
    /// On PostgreSQL, an import that wrote at least this many rows ends
    /// with `VACUUM (ANALYZE)` of the attentions (see `vacuum_after`).
    pub vacuum_after_rows: i64,
}

/// Large imports write faster with the secondary indexes built after the
/// rows (see `db::bulk_indexes`); meanwhile the rest of the system reads
/// those tables without them (slower, never wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexMode {
    /// Set aside when the rows of the file likely to be new (estimated from
    /// its size and a sample of its head and tail) are ~50 000 or more and
    /// at least as many as the attentions already stored.
    #[default]
    Auto,
    Defer,
    Keep,
}

impl IndexMode {
    pub fn parse(s: &str) -> Option<IndexMode> {
        match s {
            "auto" => Some(IndexMode::Auto),
            "defer" => Some(IndexMode::Defer),
            "keep" => Some(IndexMode::Keep),
            _ => None,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dry_run: false,
            atomic: false,
            mapping: Mapping::default(),
            batch_rows: 5000,
            commit_rows: 5000,
            keep_rejections: 10_000,
            indexes: IndexMode::Auto,
            vacuum_after_rows: 50_000,
        }
    }
}

/// A label no attention type has, with how often it came and the closest types.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnmappedLabel {
    pub label: String,
    pub rows: i64,
    /// Distinct persons those rows name (by document, else by name and
    /// birth date as written).
    #[serde(default)]
    pub persons: i64,
    pub closest: Vec<ClosestType>,
}

/// A spelling of a coded field that nothing resolved: teach it with an
/// alias (`POST /api/v1/{consulates|countries|channels|sexes|document-types}/{id}/aliases`)
/// or add the missing entry, then run the file again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnresolvedValue {
    /// `consulado`, `pais`, `canal`, `sexo` or `tipo_documento`.
    pub field: String,
    pub spelling: String,
    pub rows: i64,
    /// Distinct persons those rows name (by document, else by name and
    /// birth date as written).
    #[serde(default)]
    pub persons: i64,
    /// Set when the rows were imported anyway: a channel nothing resolved
    /// is `not_recorded`, and an alias added later recodes those rows.
    /// Rows with other unresolved fields were refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_as: Option<String>,
    pub closest: Vec<ClosestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClosestEntry {
    /// The entry's folded code, name or city.
    pub entry: String,
    /// Jaro-Winkler similarity of the folded spellings, 0 to 1.
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClosestType {
    pub code: String,
    pub name_es: String,
    /// Jaro-Winkler similarity of the folded spellings, 0 to 1.
    pub score: f64,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub dry_run: bool,
    pub atomic: bool,
    /// An atomic import with refused rows writes nothing: it is rolled back
    /// whole and its status is `failed`.
    pub rolled_back: bool,
    pub format: String,
    /// Data rows read (the header is not counted).
    pub rows: i64,
    pub rows_imported: i64,
    /// Rows an earlier import already brought (same fingerprint).
    pub rows_already_imported: i64,
    pub rows_rejected: i64,
    pub persons_new: i64,
    pub persons_matched: i64,
    pub cases_new: i64,
    /// Rows repeating another row of the file value for value (imported:
    /// MAPCE could record the same attention twice in a day).
    pub identical_rows: i64,
    /// Likely duplicates of new persons without a document, put in the
    /// review queue (`GET /api/v1/duplicates`).
    pub duplicates_queued: i64,
    pub unmapped_labels: Vec<UnmappedLabel>,
    /// Consulates, countries, channels, sexes and document types no entry
    /// resolved, most rows first, with the persons affected and the
    /// closest entries: what to teach (an alias) or add (an office) next.
    pub unresolved_values: Vec<UnresolvedValue>,
    /// Refused rows per field and reason.
    pub rejections_by_reason: BTreeMap<String, i64>,
    /// The first `keep_rejections` refused fields, in file order.
    pub rejections: Vec<Rejection>,
    pub quality: quality::ImportQuality,
    /// Whether secondary indexes were set aside while writing, and how long
    /// rebuilding them took (included in `seconds`).
    pub indexes_set_aside: bool,
    /// For `--indexes auto`: the rows of the file estimated to be new (from
    /// a sample of its head and tail), which decided whether to set the
    /// indexes aside; a file run again is mostly rows already imported.
    pub rows_estimated_new: Option<i64>,
    /// Whether the import's own unique keys (fingerprints, legacy cases)
    /// were set aside too (SQLite, the only import running; the import
    /// guaranteed them meanwhile) and rebuilt with the indexes.
    pub keys_set_aside: bool,
    pub index_rebuild_seconds: f64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

/// Progress, for the terminal bar and the job's status.
pub trait Progress {
    fn update(&mut self, rows: i64, bytes_read: u64, bytes_total: u64);
}

impl Progress for () {
    fn update(&mut self, _: i64, _: u64, _: u64) {}
}

/// Identity of a person within the import.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PersonKey {
    Document(&'static str, String, String),
    NameBirth(String, NaiveDate),
}

#[derive(Debug, Clone, Copy)]
struct PersonFacts {
    sex: &'static str,
    birth: Option<NaiveDate>,
}

/// Rows carrying a spelling, and the persons they name (hashed identities
/// as the file writes them: document, else name and birth date).
#[derive(Default)]
struct Affected {
    rows: i64,
    persons: HashSet<u64>,
}

impl Affected {
    fn add(&mut self, person: u64) {
        self.rows += 1;
        self.persons.insert(person);
    }
}

/// The identity a row names, hashed: its document when it has one, else
/// its full name and birth date (folded), for "persons affected".
fn row_person(values: &[String; FIELDS.len()]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let number = crate::domain::person::normalize_document_number(&values[read::F_DOC_NUMBER]);
    if number.is_empty() {
        (
            1u8,
            fold_key(&values[read::F_NAME]),
            values[read::F_BIRTH].trim(),
        )
            .hash(&mut h);
    } else {
        (2u8, fold_key(&values[read::F_DOC_TYPE]), number).hash(&mut h);
    }
    h.finish()
}

/// Everything remembered across batches.
struct State {
    import_id: Id,
    actor: Option<Actor>,
    opts: Options,
    report: Report,
    persons: HashMap<PersonKey, Id>,
    facts: HashMap<Id, PersonFacts>,
    /// (person, consulate, country, year) → legacy case
    cases: HashMap<CaseKey, Id>,
    /// consulates as small numbers, for `CaseKey`
    consulate_ix: HashMap<Id, u16>,
    /// content hash → rows seen with it
    /// the first 64 bits of a row's content hash → rows seen with it (a
    /// collision, ~1e-8 at a million rows, would only shift one occurrence
    /// count, deterministically for the same file)
    seen: HashMap<u64, u32>,
    unmapped: HashMap<String, Affected>,
    /// (field, spelling) → rows and persons, for the coded values no entry
    /// resolved.
    unresolved: HashMap<(String, String), Affected>,
    conflicts: HashSet<Id>,
    /// persons found in the database (their earlier legacy cases are looked up)
    db_persons: HashSet<Id>,
    volumes: HashMap<(Id, String), i64>,
    today: NaiveDate,
    /// On PostgreSQL when allowed: the foreign keys of the tables a batch
    /// writes, checked per batch instead of per row (`db::checked_load`).
    foreign_keys: Option<std::sync::Arc<[ForeignKey]>>,
    /// rows imported when the looked-up tables were last analyzed
    analyzed_at: i64,
    /// While the import keys are set aside: the fingerprints already in the
    /// database (read before the first batch; `cases` then holds every
    /// legacy case already there)
    known_fingerprints: Option<HashSet<u128>>,
}

/// The rows of one batch, ready to write.
#[derive(Default)]
struct Batch {
    import_id: Id,
    persons: Vec<Person>,
    documents: Vec<Document>,
    keys: Vec<(Id, String)>,
    cases: Vec<Case>,
    legacy_cases: Vec<(Id, Id, String, i32, Id)>,
    attentions: Vec<Attention>,
    events: Vec<TimelineEvent>,
    legacy_rows: Vec<(String, Id, i64, Id)>,
    rejections: Vec<Rejection>,
    /// channel spellings nothing resolved, kept to recode later
    spellings: Vec<crate::models::vocabulary::Spelling>,
    /// new persons without a document: checked for likely duplicates
    undocumented: Vec<Person>,
}

/// Checks a mapping file's value lines against today's vocabularies: an
/// entry that names nothing is refused before any row is read.
pub fn check_value_mappings(
    conn: &mut DbConn,
    values: &[(usize, String, String)],
) -> Result<(), AppError> {
    Lookup::load(conn)?.map_values(conn, values)
}

/// Imports `path`. The import is recorded in `imports` (unless dry) under
/// `import_id`, which the caller may have created as `queued`. With a
/// `writer` connection to the same database (and neither atomic nor dry),
/// batches are written there on a second thread while `conn` reads and
/// resolves the next one; without it, `conn` does both in turn.
#[allow(clippy::too_many_arguments)] // the import's identity, its two connections and its options
pub fn run(
    conn: &mut DbConn,
    writer: Option<&mut DbConn>,
    path: &Path,
    source_name: &str,
    import_id: Id,
    actor: Option<Actor>,
    opts: Options,
    progress: &mut dyn Progress,
) -> Result<Report, AppError> {
    let started = std::time::Instant::now();
    let format = Format::detect(path).map_err(|e| AppError::invalid("file", e.to_string()))?;
    let mut rows = read::open(path, format).map_err(|e| AppError::invalid("file", e))?;
    let header = match rows.next() {
        Some(Ok((_, h))) => h,
        Some(Err(e)) => return Err(AppError::invalid("file", e)),
        None => return Err(AppError::invalid("file", "is empty")),
    };
    let columns = opts
        .mapping
        .columns(&header)
        .map_err(|e| AppError::invalid("file", e))?;
    let mut lookup = Lookup::load(conn)?;
    lookup.map_values(conn, &opts.mapping.values)?;
    let mut st = State {
        import_id,
        actor,
        report: Report {
            dry_run: opts.dry_run,
            atomic: opts.atomic,
            format: format.as_str().into(),
            ..Report::default()
        },
        opts,
        persons: HashMap::new(),
        facts: HashMap::new(),
        cases: HashMap::new(),
        consulate_ix: HashMap::new(),
        seen: HashMap::new(),
        unmapped: HashMap::new(),
        unresolved: HashMap::new(),
        conflicts: HashSet::new(),
        db_persons: HashSet::new(),
        volumes: HashMap::new(),
        today: Utc::now().date_naive(),
        foreign_keys: None,
        analyzed_at: 0,
        known_fingerprints: None,
    };
    if !st.opts.dry_run {
        ensure_import_row(conn, &st, source_name, format)?;
        st.foreign_keys = checked_load::foreign_keys(conn, BATCH_TABLES)?.map(Into::into);
    }
    let (read_bytes, total_bytes) = (rows.read_bytes.clone(), rows.total_bytes);
    if !st.opts.dry_run {
        // What share of the file is new decides how to load it: a file
        // imported before, run again, is mostly known rows.
        let sample: Vec<String> = read::sample(path, format, 2_000)
            .unwrap_or_default()
            .into_iter()
            .filter(|cells| !cells.iter().all(|c| c.is_empty()))
            .map(|cells| {
                let values: [String; FIELDS.len()] = std::array::from_fn(|i| {
                    columns[i]
                        .and_then(|c| cells.get(c))
                        .cloned()
                        .unwrap_or_default()
                });
                fingerprint(&mut HashMap::new(), &values).0
            })
            .collect();
        if let Err(e) = set_indexes_aside(conn, &mut st, format, total_bytes, &sample) {
            // whatever was set aside before the failure comes back now
            let _ = crate::db::bulk_indexes::restore(conn);
            return Err(e);
        }
    }
    let mut work = |conn: &mut DbConn, st: &mut State, sink: &Sink| -> Result<(), AppError> {
        let mut pending: Vec<(Parsed, String)> = Vec::with_capacity(st.opts.batch_rows);
        let mut rejected: Vec<Rejection> = Vec::new();
        for record in &mut rows {
            let (line, cells) = record.map_err(|e| AppError::invalid("file", e))?;
            if cells.iter().all(|c| c.is_empty()) {
                continue;
            }
            st.report.rows += 1;
            let values: [String; FIELDS.len()] = std::array::from_fn(|i| {
                columns[i]
                    .and_then(|c| cells.get(c))
                    .cloned()
                    .unwrap_or_default()
            });
            let (fingerprint, identical) = fingerprint(&mut st.seen, &values);
            if identical {
                st.report.identical_rows += 1;
            }
            match values::parse_row(conn, &mut lookup, line, &values, st.today)? {
                Ok(p) => {
                    if let Some(spelling) = &p.channel_spelling {
                        st.unresolved
                            .entry((FIELDS[read::F_CHANNEL].to_owned(), spelling.clone()))
                            .or_default()
                            .add(row_person(&values));
                    }
                    pending.push((p, fingerprint))
                }
                Err(errors) => {
                    st.report.rows_rejected += 1;
                    let person = row_person(&values);
                    for e in &errors {
                        if e.field == FIELDS[read::F_TYPE]
                            && e.reason.starts_with("no attention type")
                        {
                            st.unmapped.entry(e.value.clone()).or_default().add(person);
                        } else if Vocabulary::from_legacy_field(&e.field).is_some()
                            && !e.value.trim().is_empty()
                        {
                            st.unresolved
                                .entry((e.field.clone(), e.value.clone()))
                                .or_default()
                                .add(person);
                        }
                    }
                    rejected.extend(errors);
                }
            }
            if pending.len() >= st.opts.batch_rows {
                let batch = resolve_batch(
                    conn,
                    st,
                    std::mem::take(&mut pending),
                    std::mem::take(&mut rejected),
                )?;
                sink.take(conn, st, batch)?;
                refresh_statistics(conn, st)?;
                progress.update(
                    st.report.rows,
                    read_bytes.load(std::sync::atomic::Ordering::Relaxed),
                    total_bytes,
                );
            }
        }
        let batch = resolve_batch(conn, st, pending, rejected)?;
        sink.take(conn, st, batch)?;
        progress.update(st.report.rows, total_bytes, total_bytes);
        Ok(())
    };
    let checked = st.foreign_keys.is_some();
    bulk_session(conn, true, checked)?;
    let outcome = if st.opts.atomic && !st.opts.dry_run {
        // all or nothing: a refused row rolls every written row back
        let outcome = crate::db::write_tx::<_, AppError, _>(conn, |conn| {
            work(conn, &mut st, &Sink::Inline)?;
            if st.report.rows_rejected > 0 {
                return Err(AppError::conflict(
                    "import_rolled_back",
                    None,
                    "rows were refused",
                ));
            }
            Ok(())
        });
        match outcome {
            Err(AppError::Conflict {
                code: "import_rolled_back",
                ..
            }) => {
                st.report.rolled_back = true;
                st.report.rows_imported = 0;
                st.report.persons_new = 0;
                st.report.persons_matched = 0;
                st.report.cases_new = 0;
                st.report.duplicates_queued = 0;
                Ok(())
            }
            other => other,
        }
    } else if let (Some(writer), false) = (writer, st.opts.dry_run) {
        // resolving the next batch overlaps with writing this one; the big
        // page cache goes to the connection that writes (this one only
        // looks up, and two would add 14 MB to the peak)
        bulk_session(conn, false, false)?;
        let per_commit = match writer {
            DbConn::Sqlite(_) => (st.opts.commit_rows / st.opts.batch_rows.max(1)).max(1),
            DbConn::Pg(_) => 1,
        };
        let outcome = bulk_session(writer, true, checked).and_then(|()| {
            std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Pending>(0);
                let w = &mut *writer;
                let writing = scope
                    .spawn(move || -> Result<i64, AppError> { commit_groups(w, &rx, per_commit) });
                let reading = work(conn, &mut st, &Sink::Writer(tx));
                let written = writing.join().unwrap_or_else(|_| {
                    Err(AppError::internal(anyhow::anyhow!(
                        "the import's writer thread panicked"
                    )))
                });
                match written {
                    Ok(queued) => {
                        st.report.duplicates_queued += queued;
                        reading
                    }
                    // the reader's own error, if any, only says the writer stopped
                    Err(e) => Err(e),
                }
            })
        });
        // failed or not (the connection may go back to a pool)
        let reset = bulk_session(writer, false, false);
        outcome.and(reset)
    } else {
        work(conn, &mut st, &Sink::Inline)
    };
    // the maps that matched rows are done with: their memory goes to the
    // index rebuild's sort instead of adding to it
    st.persons = HashMap::new();
    st.facts = HashMap::new();
    st.cases = HashMap::new();
    st.known_fingerprints = None;
    st.seen = HashMap::new();
    st.db_persons = HashSet::new();
    // failed or not, the indexes come back before returning
    let restored = if st.report.indexes_set_aside {
        let rebuild = std::time::Instant::now();
        // with SQLite's default page cache: the sorts that build the
        // indexes were faster with it than with the import's 16 MiB (a
        // million rows: 8.6–9.9 s against 9.6–11.9 s, five runs in turn)
        let restored = bulk_session(conn, false, false)
            .and_then(|()| checkpoint(conn))
            .and_then(|()| Ok(crate::db::bulk_indexes::restore(conn)?))
            .map(|_| ());
        st.report.index_rebuild_seconds =
            (rebuild.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        restored
    } else {
        Ok(())
    };
    bulk_session(conn, false, false)?;
    restored?;
    outcome?;
    vacuum_after(conn, &st)?;
    finish(conn, st, lookup, started)
}

/// On PostgreSQL, after a large import: the OEI.05 figures count the
/// attentions with index-only scans, which need the visibility map that
/// only VACUUM writes; right after an import of ~670 000 attentions a
/// year's figures took 1.3–2.8 s, after `VACUUM ANALYZE` 0.94 s. Outside
/// any transaction (VACUUM refuses one).
fn vacuum_after(conn: &mut DbConn, st: &State) -> Result<(), AppError> {
    if st.opts.dry_run || st.report.rows_imported < st.opts.vacuum_after_rows {
        return Ok(());
    }
    if let DbConn::Pg(c) = conn {
        diesel::connection::SimpleConnection::batch_execute(c, "VACUUM (ANALYZE) attentions")?;
    }
    Ok(())
}

/// On SQLite, a bigger page cache while the import writes (16 MiB instead
/// of 2: more of the unique indexes it inserts into stay in memory; 1 M
/// rows: 6 468 rows/s and a 243 MB peak, against 5 978 with the default;
/// 64 MiB gave 7 264 rows/s but 351 MB) and, when the batches check their
/// foreign keys themselves (`checked`), no per-row enforcement; both back
/// to the defaults after, as the connection may return to the server's
/// pool (enforcement verified on: `checked_load::enforce`).
fn bulk_session(conn: &mut DbConn, on: bool, checked: bool) -> Result<(), AppError> {
    checked_load::enforce(conn, !(on && checked))?;
    if let DbConn::Sqlite(c) = conn {
        diesel::connection::SimpleConnection::batch_execute(
            c,
            if on {
                "PRAGMA cache_size = -16384;"
            } else {
                "PRAGMA cache_size = -2000;"
            },
        )?;
    }
    Ok(())
}

/// On SQLite, folds the write-ahead log back into the database file before
/// the indexes are rebuilt: read through a WAL of up to 10 000 pages, the
/// rebuild of a million-row import took 23 s, after folding it 19 s.
/// Readers of other connections may keep part of it, which only costs time.
fn checkpoint(conn: &mut DbConn) -> Result<(), AppError> {
    if let DbConn::Sqlite(c) = conn {
        diesel::connection::SimpleConnection::batch_execute(c, "PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    Ok(())
}

/// Decides (for `Auto`) and sets the indexes aside, and on SQLite the
/// import keys with them when the keys already stored are few next to the
/// file (at most a quarter of its rows: the import reads them into memory)
/// and no other import is running (`bulk_indexes::set_keys_aside`);
/// otherwise makes sure the keys are there, as another import may have
/// set them aside.
fn set_indexes_aside(
    conn: &mut DbConn,
    st: &mut State,
    format: Format,
    file_bytes: u64,
    sample: &[String],
) -> Result<(), AppError> {
    // a legacy CSV row is ~100 bytes; XLSX compresses about 4×
    let per_row = match format {
        Format::Csv => 100,
        Format::Xlsx => 25,
    };
    let rows = (file_bytes / per_row) as i64;
    let defer = match st.opts.indexes {
        IndexMode::Keep => false,
        IndexMode::Defer => true,
        IndexMode::Auto => {
            let new_rows = rows_likely_new(conn, rows, sample)?;
            st.report.rows_estimated_new = Some(new_rows);
            new_rows >= 50_000 && {
                let stored: i64 = per_backend!(conn, |c| attentions::table.count().get_result(c))?;
                new_rows >= stored
            }
        }
    };
    if defer {
        crate::db::bulk_indexes::set_aside(conn)?;
        st.report.indexes_set_aside = true;
    }
    let keys = defer && matches!(conn, DbConn::Sqlite(_)) && {
        let stored: i64 = legacy_rows::table.count().get_result(conn)?;
        stored <= rows / 4 && crate::db::bulk_indexes::set_keys_aside(conn, st.import_id)?
    };
    if !keys {
        crate::db::bulk_indexes::restore_keys(conn)?;
        return Ok(());
    }
    st.report.keys_set_aside = true;
    // what the keys would have answered, for the rows already there
    let fingerprints: Vec<String> = legacy_rows::table
        .select(legacy_rows::fingerprint)
        .load(conn)?;
    st.known_fingerprints = Some(
        fingerprints
            .iter()
            .filter_map(|f| fingerprint_bits(f))
            .collect(),
    );
    let cases: Vec<(Id, Id, String, i32, Id)> = legacy_cases::table
        .select((
            legacy_cases::person_id,
            legacy_cases::consulate_id,
            legacy_cases::country_code,
            legacy_cases::year,
            legacy_cases::case_id,
        ))
        .load(conn)?;
    for (person, consulate, country, year, case) in cases {
        let key = st.case_key(person, consulate, &country, year);
        st.cases.insert(key, case);
    }
    Ok(())
}

/// The rows of a file likely to be new: its estimated rows times the share
/// of a sample of them whose fingerprints are not imported yet (all of
/// them without a sample).
fn rows_likely_new(conn: &mut DbConn, rows: i64, sample: &[String]) -> Result<i64, AppError> {
    if rows < 50_000 || sample.is_empty() {
        return Ok(rows);
    }
    // head and tail overlap in a small file: each row counts once
    let mut sample = sample.to_vec();
    sample.sort();
    sample.dedup();
    let mut known = 0_usize;
    for chunk in sample.chunks(500) {
        let n: i64 = legacy_rows::table
            .filter(legacy_rows::fingerprint.eq_any(chunk.to_vec()))
            .count()
            .get_result(conn)?;
        known += n as usize;
    }
    let new_share = 1.0 - known as f64 / sample.len() as f64;
    Ok((rows as f64 * new_share).round() as i64)
}

/// A fingerprint as written by `fingerprint` (32 lowercase hex digits) as a
/// number; `None` for any other text, which no new row's fingerprint equals.
fn fingerprint_bits(f: &str) -> Option<u128> {
    let canonical = f.len() == 32 && f.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical
        .then(|| u128::from_str_radix(f, 16).ok())
        .flatten()
}

/// The row's fingerprint: a hash of its values (in field order) and of how
/// many identical rows came before it, so a file's rows all differ but the
/// same file always gives the same fingerprints.
fn fingerprint(seen: &mut HashMap<u64, u32>, values: &[String; FIELDS.len()]) -> (String, bool) {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.as_bytes());
        h.update([0x1f]);
    }
    let content: [u8; 32] = h.finalize().into();
    let mut key = [0_u8; 8];
    key.copy_from_slice(&content[..8]);
    let n = seen.entry(u64::from_le_bytes(key)).or_insert(0);
    let occurrence = *n;
    *n += 1;
    let mut h = Sha256::new();
    h.update(content);
    h.update(occurrence.to_le_bytes());
    (hex::encode(&h.finalize()[..16]), occurrence > 0)
}

fn ensure_import_row(
    conn: &mut DbConn,
    st: &State,
    source_name: &str,
    format: Format,
) -> Result<(), AppError> {
    let exists = imports::table
        .find(st.import_id)
        .select(imports::id)
        .first::<Id>(conn)
        .optional()?
        .is_some();
    if exists {
        diesel::update(imports::table.find(st.import_id))
            .set((
                imports::status.eq("running"),
                imports::format.eq(format.as_str()),
            ))
            .execute(conn)?;
    } else {
        diesel::insert_into(imports::table)
            .values((
                imports::id.eq(st.import_id),
                imports::source_name.eq(source_name),
                imports::format.eq(format.as_str()),
                imports::dry_run.eq(false),
                imports::atomic.eq(st.opts.atomic),
                imports::status.eq("running"),
                imports::rows_read.eq(0_i64),
                imports::rows_imported.eq(0_i64),
                imports::rows_skipped.eq(0_i64),
                imports::rows_rejected.eq(0_i64),
                imports::created_by.eq(st.actor.as_ref().map(|a| a.user_id)),
                imports::created_at.eq(Ts::now()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A legacy case's key (person, consulate, country, year), compact: the
/// import holds one per case it met, close to a million for a big extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CaseKey {
    person: Id,
    consulate: u16,
    country: [u8; 2],
    year: i16,
}

impl State {
    fn case_key(&mut self, person: Id, consulate: Id, country: &str, year: i32) -> CaseKey {
        let next = self.consulate_ix.len() as u16;
        let consulate = *self.consulate_ix.entry(consulate).or_insert(next);
        let mut code = [0u8; 2];
        for (c, b) in code.iter_mut().zip(country.bytes()) {
            *c = b;
        }
        CaseKey {
            person,
            consulate,
            country: code,
            year: year as i16,
        }
    }
}

/// On PostgreSQL, analyzes the tables the import looks rows up in each time
/// its imported rows double (from 10 000): those tables may have started
/// empty or small, and with the statistics of then the lookups of every
/// batch were planned as sequential scans — quadratic (a 100 000-row import
/// into a populated database spent most of its time in them). A few
/// ANALYZEs of sampled rows per import.
fn refresh_statistics(conn: &mut DbConn, st: &mut State) -> Result<(), AppError> {
    if st.opts.dry_run || st.report.rows_imported < st.analyzed_at.max(5_000) * 2 {
        return Ok(());
    }
    if let DbConn::Pg(c) = conn {
        diesel::connection::SimpleConnection::batch_execute(
            c,
            "ANALYZE legacy_rows, person_documents, persons, legacy_cases",
        )?;
    }
    st.analyzed_at = st.report.rows_imported;
    Ok(())
}

/// Where resolved batches go: written at once on the reading connection, or
/// handed to the writer thread (which has its own connection).
enum Sink {
    Inline,
    Writer(std::sync::mpsc::SyncSender<Pending>),
}

impl Sink {
    fn take(
        &self,
        conn: &mut DbConn,
        st: &mut State,
        batch: Option<Pending>,
    ) -> Result<(), AppError> {
        let Some(batch) = batch else { return Ok(()) };
        match self {
            Sink::Inline => st.report.duplicates_queued += commit_batch(conn, &batch)?,
            // a closed channel means the writer failed: `run` reports its error
            Sink::Writer(tx) => tx
                .send(batch)
                .map_err(|_| AppError::internal(anyhow::anyhow!("the import's writer stopped")))?,
        }
        Ok(())
    }
}

/// A resolved batch and what its transaction records besides its rows.
struct Pending {
    batch: Batch,
    actor: Option<Actor>,
    foreign_keys: Option<std::sync::Arc<[ForeignKey]>>,
    /// rows read, imported, already imported and refused so far
    progress: (i64, i64, i64, i64),
}

/// Resolves persons and cases for a batch of parsed rows; `None` on a dry
/// run (which only counts the likely duplicates it would queue).
fn resolve_batch(
    conn: &mut DbConn,
    st: &mut State,
    rows: Vec<(Parsed, String)>,
    rejected: Vec<Rejection>,
) -> Result<Option<Pending>, AppError> {
    let mut b = Batch {
        import_id: st.import_id,
        ..Batch::default()
    };
    for r in &rejected {
        *st.report
            .rejections_by_reason
            .entry(format!("{}: {}", r.field, r.reason))
            .or_default() += 1;
        if st.report.rejections.len() < st.opts.keep_rejections {
            st.report.rejections.push(r.clone());
        }
    }
    b.rejections = rejected;

    // rows an earlier run brought
    let fps: Vec<&str> = rows.iter().map(|(_, f)| f.as_str()).collect();
    let mut done: HashSet<String> = HashSet::new();
    match &st.known_fingerprints {
        // the keys are aside: the stored fingerprints were read at the start
        Some(known) => done.extend(
            fps.iter()
                .filter(|f| fingerprint_bits(f).is_some_and(|bits| known.contains(&bits)))
                .map(|f| (*f).to_owned()),
        ),
        None => {
            for chunk in fps.chunks(900) {
                let found: Vec<String> = legacy_rows::table
                    .filter(legacy_rows::fingerprint.eq_any(chunk))
                    .select(legacy_rows::fingerprint)
                    .load(conn)?;
                done.extend(found);
            }
        }
    }
    let rows: Vec<(Parsed, String)> = rows
        .into_iter()
        .filter(|(_, f)| {
            let old = done.contains(f);
            if old {
                st.report.rows_already_imported += 1;
            }
            !old
        })
        .collect();

    // persons known by document in the database
    let wanted: Vec<String> = rows
        .iter()
        .filter_map(|(p, _)| p.document.as_ref())
        .filter(|(t, n, c)| {
            !st.persons
                .contains_key(&PersonKey::Document(t.as_str(), n.clone(), c.clone()))
        })
        .map(|(_, n, _)| n.clone())
        .collect();
    let mut by_doc: HashMap<PersonKey, Id> = HashMap::new();
    for chunk in wanted.chunks(900) {
        let found: Vec<(String, String, String, Id)> = person_documents::table
            .filter(person_documents::number.eq_any(chunk))
            .select((
                person_documents::doc_type,
                person_documents::number,
                person_documents::issuing_country,
                person_documents::person_id,
            ))
            .load(conn)?;
        for (t, n, c, id) in found {
            if let Some(t) = crate::domain::person::DocumentType::parse(&t) {
                by_doc.insert(PersonKey::Document(t.as_str(), n, c), id);
                st.db_persons.insert(id);
            }
        }
    }
    let unknown_facts: Vec<Id> = by_doc
        .values()
        .filter(|id| !st.facts.contains_key(id))
        .copied()
        .collect();
    for chunk in unknown_facts.chunks(900) {
        let found: Vec<(Id, String, Option<NaiveDate>)> = persons::table
            .filter(persons::id.eq_any(chunk))
            .select((persons::id, persons::sex, persons::birth_date))
            .load(conn)?;
        for (id, sex, birth) in found {
            let sex = crate::domain::person::Sex::parse(&sex)
                .map(|s| s.as_str())
                .unwrap_or("not_recorded");
            st.facts.insert(id, PersonFacts { sex, birth });
        }
    }

    // legacy cases of earlier runs for persons already in the database
    let mut case_keys: Vec<(CaseKey, Id, Id, Code, i32)> = Vec::new();

    let now = Ts::now();
    let mut resolved: Vec<(Parsed, String, Id)> = Vec::with_capacity(rows.len());
    for (p, fp) in rows {
        let key = match &p.document {
            Some((t, n, c)) => Some(PersonKey::Document(t.as_str(), n.clone(), c.clone())),
            None => p.birth.map(|b| {
                PersonKey::NameBirth(
                    name_key(
                        &p.given_names,
                        &p.first_surname,
                        p.second_surname.as_deref(),
                    ),
                    b,
                )
            }),
        };
        let known = key.as_ref().and_then(|k| {
            st.persons
                .get(k)
                .copied()
                .or_else(|| by_doc.get(k).copied())
        });
        let (person_id, in_db) = match known {
            Some(id) => {
                if let Some(k) = &key {
                    if !st.persons.contains_key(k) {
                        st.persons.insert(k.clone(), id);
                        if by_doc.contains_key(k) {
                            st.report.persons_matched += 1;
                        }
                    }
                }
                (id, st.db_persons.contains(&id))
            }
            None => {
                let person = new_person(&p, now);
                st.report.persons_new += 1;
                if let Some((t, n, c)) = &p.document {
                    b.documents.push(Document {
                        id: Id::new(),
                        person_id: person.id,
                        doc_type: t.as_str().to_owned(),
                        number: n.clone(),
                        issuing_country: c.clone(),
                        created_at: now,
                    });
                } else {
                    b.undocumented.push(person.clone());
                }
                for k in crate::services::persons::keys_for(&person) {
                    b.keys.push((person.id, k));
                }
                st.facts.insert(
                    person.id,
                    PersonFacts {
                        sex: p.sex,
                        birth: p.birth,
                    },
                );
                if let Some(k) = key {
                    st.persons.insert(k, person.id);
                }
                let id = person.id;
                b.persons.push(person);
                (id, false)
            }
        };
        if let Some(f) = st.facts.get(&person_id) {
            let sex_differs = p.sex != "not_recorded" && f.sex != "not_recorded" && f.sex != p.sex;
            let birth_differs = matches!((p.birth, f.birth), (Some(a), Some(b)) if a != b);
            if p.document.is_some() && (sex_differs || birth_differs) {
                st.conflicts.insert(person_id);
            }
        }
        let ck = st.case_key(person_id, p.consulate_id, &p.country, p.attended_on.year());
        // (with the keys aside, `cases` already holds every stored one)
        if in_db && !st.cases.contains_key(&ck) && !st.report.keys_set_aside {
            case_keys.push((
                ck,
                person_id,
                p.consulate_id,
                Code::new(&p.country),
                p.attended_on.year(),
            ));
        }
        resolved.push((p, fp, person_id));
    }
    for chunk in case_keys.chunks(200) {
        for (ck, person, consulate, country, year) in chunk {
            let found: Option<Id> = legacy_cases::table
                .filter(legacy_cases::person_id.eq(person))
                .filter(legacy_cases::consulate_id.eq(consulate))
                .filter(legacy_cases::country_code.eq(country.as_str()))
                .filter(legacy_cases::year.eq(year))
                .select(legacy_cases::case_id)
                .first(conn)
                .optional()?;
            if let Some(c) = found {
                st.cases.insert(*ck, c);
            }
        }
    }

    for (p, fp, person_id) in resolved {
        let year = p.attended_on.year();
        let ck = st.case_key(person_id, p.consulate_id, &p.country, year);
        let case_id = match st.cases.get(&ck) {
            Some(id) => *id,
            None => {
                let case = legacy_case(&p, person_id, year, st.today, now);
                st.report.cases_new += 1;
                b.events.push(TimelineEvent {
                    id: Id::new(),
                    person_id,
                    case_id: Some(case.id),
                    consulate_id: Some(p.consulate_id),
                    kind: "case.imported".into(),
                    at: case.opened_at,
                    actor_id: st.actor.as_ref().map(|a| a.user_id),
                    attention_type_id: None,
                    payload: serde_json::json!({ "source": "mapce", "import_id": st.import_id, "year": year }).to_string(),
                });
                b.legacy_cases
                    .push((person_id, p.consulate_id, p.country.clone(), year, case.id));
                st.cases.insert(ck, case.id);
                let id = case.id;
                b.cases.push(case);
                id
            }
        };
        let facts = st.facts.get(&person_id).copied().unwrap_or(PersonFacts {
            sex: p.sex,
            birth: p.birth,
        });
        let attention = legacy_attention(&p, case_id, person_id, facts, now);
        if let Some(spelling) = &p.channel_spelling {
            b.spellings.push((
                attention.id,
                case_id,
                Vocabulary::Channel.as_str(),
                spelling.clone(),
                fold_key(spelling),
            ));
        }
        let at = p
            .attended_on
            .and_hms_opt(12, 0, 0)
            .map(|t| Ts(t.and_utc()))
            .unwrap_or(now);
        b.events.push(TimelineEvent {
            id: Id::new(),
            person_id,
            case_id: Some(case_id),
            consulate_id: Some(p.consulate_id),
            kind: "attention.recorded".into(),
            at,
            actor_id: st.actor.as_ref().map(|a| a.user_id),
            attention_type_id: Some(p.type_id),
            payload: serde_json::json!({
                "attention_id": attention.id,
                "attended_on": p.attended_on,
                "channel": p.channel,
                "source": "mapce",
                "import_id": st.import_id,
                "line": p.line,
            })
            .to_string(),
        });
        if p.outside_jurisdiction {
            st.report.quality.outside_jurisdiction += 1;
        }
        if p.sex == "not_recorded" {
            st.report.quality.missing_sex += 1;
        }
        *st.volumes
            .entry((
                p.consulate_id,
                format!("{}-{:02}", year, p.attended_on.month()),
            ))
            .or_default() += 1;
        b.legacy_rows
            .push((fp, st.import_id, p.line as i64, attention.id));
        b.attentions.push(attention);
        st.report.rows_imported += 1;
    }

    // likely duplicates of new persons without a document (against
    // everyone already in the database; written only when not dry)
    if st.opts.dry_run {
        let found = crate::services::persons::same_name_duplicates(conn, &b.undocumented)?;
        st.report.duplicates_queued += found.iter().filter(|f| !f.is_empty()).count() as i64;
        return Ok(None);
    }
    Ok(Some(Pending {
        batch: b,
        actor: st.actor.clone(),
        foreign_keys: st.foreign_keys.clone(),
        progress: (
            st.report.rows,
            st.report.rows_imported,
            st.report.rows_already_imported,
            st.report.rows_rejected,
        ),
    }))
}

/// Writes a resolved batch in one transaction with the import's progress
/// and its audit row; returns how many likely-duplicate pairs it queued.
fn commit_batch(conn: &mut DbConn, pending: &Pending) -> Result<i64, AppError> {
    crate::db::write_tx::<_, AppError, _>(conn, |conn| write_batch(conn, None, pending))
}

/// How long a transaction that gathers batches waits for the next one
/// before it commits what it holds.
const NEXT_BATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The writer thread: commits the batches it receives, gathering up to
/// `per_commit` of them into one transaction (fewer when the next one takes
/// longer than `NEXT_BATCH_WAIT` to come); returns the likely duplicates
/// queued.
///
/// On SQLite a commit writes every page its transaction changed, whole
/// (32 KiB), to the write-ahead log. A batch's new persons and documents
/// land all over their name and document indexes, so each commit rewrote
/// most of those indexes' pages, however few rows it added to each:
/// gathering 8 batches of 5 000 rows per transaction, a million-row import
/// took 81–94 s instead of 99–102 s (runs in turn, same machine and hour),
/// where resolving 20 000-row batches instead took the peak memory over
/// 300 MB; gathering 40 batches (200 000 rows) was no faster. The reading
/// connection only reads while this transaction is open (SQLite's WAL
/// lets it read the last commit), so waiting for its next batch here
/// cannot deadlock; the wait is bounded anyway. A failure rolls back the batches
/// of its transaction, which a new run of the file then brings (the rows
/// already in are recognised by their fingerprints).
fn commit_groups(
    conn: &mut DbConn,
    rx: &std::sync::mpsc::Receiver<Pending>,
    per_commit: usize,
) -> Result<i64, AppError> {
    // on SQLite the rows go through prepared statements on this connection
    let mut raw = RawInserts::new(conn);
    // Written batches are freed on a thread of their own: their ~100 000
    // strings, allocated by the reading thread, took ~7 % of this one's
    // time to free (`free` into another thread's arena, under its lock).
    std::thread::scope(|scope| {
        let (done, written) = std::sync::mpsc::sync_channel::<Pending>(2);
        scope.spawn(move || written.into_iter().for_each(drop));
        let release = |p: Pending| {
            // (only if that thread is gone: free it here)
            let _ = done.send(p);
        };
        let mut queued = 0;
        while let Ok(first) = rx.recv() {
            queued += crate::db::write_tx::<_, AppError, _>(conn, |conn| {
                let mut queued = write_batch(conn, raw.as_mut(), &first)?;
                release(first);
                for _ in 1..per_commit {
                    let Ok(next) = rx.recv_timeout(NEXT_BATCH_WAIT) else {
                        break;
                    };
                    queued += write_batch(conn, raw.as_mut(), &next)?;
                    release(next);
                }
                Ok(queued)
            })?;
        }
        Ok(queued)
    })
}

/// One batch's rows, progress and audit record, in the caller's transaction
/// (the rows through `raw` when given).
fn write_batch(
    conn: &mut DbConn,
    raw: Option<&mut RawInserts>,
    pending: &Pending,
) -> Result<i64, AppError> {
    let b = &pending.batch;
    let (import_id, progress) = (b.import_id, pending.progress);
    let counts = serde_json::json!({
        "attentions": b.attentions.len(),
        "persons": b.persons.len(),
        "cases": b.cases.len(),
        "rejected_fields": b.rejections.len(),
    });
    let queued = insert_batch(conn, raw, b, pending.foreign_keys.as_deref())?;
    diesel::update(imports::table.find(import_id))
        .set((
            imports::rows_read.eq(progress.0),
            imports::rows_imported.eq(progress.1),
            imports::rows_skipped.eq(progress.2),
            imports::rows_rejected.eq(progress.3),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        pending.actor.as_ref(),
        &RequestMeta::default(),
        Event::new("import.batch", "import", Some(import_id.to_string())).details(counts),
    )?;
    Ok(queued)
}

fn new_person(p: &Parsed, now: Ts) -> Person {
    Person {
        id: Id::new(),
        given_names: p.given_names.clone(),
        first_surname: p.first_surname.clone(),
        second_surname: p.second_surname.clone(),
        birth_date: p.birth,
        sex: p.sex.to_owned(),
        nationalities: r#"["PE"]"#.to_owned(),
        phone: None,
        email: None,
        address_abroad: None,
        name_key: name_key(
            &p.given_names,
            &p.first_surname,
            p.second_surname.as_deref(),
        ),
        registered_consulate_id: Some(p.consulate_id),
        merged_into_id: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// The attention a legacy row becomes, with the person's facts as first
/// recorded (`facts`).
fn legacy_attention(
    p: &Parsed,
    case_id: Id,
    person_id: Id,
    facts: PersonFacts,
    now: Ts,
) -> Attention {
    Attention {
        id: Id::new(),
        case_id,
        person_id,
        consulate_id: p.consulate_id,
        attention_type_id: p.type_id,
        attended_on: p.attended_on,
        channel: p.channel.to_owned(),
        officer_id: None,
        description: format!("Importado de MAPCE (línea {})", p.line),
        late_registration: false,
        voided_at: None,
        voided_by: None,
        void_reason: None,
        created_at: now,
        country_code: Some(p.country.clone()),
        person_sex: Some(facts.sex.to_owned()),
        person_birth_date: facts.birth,
    }
}

fn legacy_case(p: &Parsed, person_id: Id, year: i32, today: NaiveDate, now: Ts) -> Case {
    let start = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .map(Ts)
        .unwrap_or(now);
    let end = Utc
        .with_ymd_and_hms(year, 12, 31, 23, 59, 59)
        .single()
        .map(Ts)
        .unwrap_or(now);
    let closed = if end.0.date_naive() > today { now } else { end };
    Case {
        id: Id::new(),
        person_id,
        consulate_id: p.consulate_id,
        country_code: p.country.clone(),
        city: None,
        channel: p.channel.to_owned(),
        requester_kind: "self".into(),
        requester_name: None,
        requester_relationship: None,
        requester_contact: None,
        summary: format!("Atenciones {year} importadas de MAPCE"),
        flags: "[]".into(),
        protected: false,
        status: "closed".into(),
        outcome: None,
        closed_at: Some(closed),
        assigned_officer_id: None,
        opened_at: start,
        created_by: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// The tables `write_rows` and `queue_duplicates` write.
const BATCH_TABLES: &[&str] = &[
    "duplicate_pairs",
    "persons",
    "person_match_keys",
    "person_documents",
    "cases",
    "attentions",
    "timeline_events",
    "legacy_cases",
    "legacy_rows",
    "import_rejections",
];

/// Writes a batch's rows and queues likely duplicates of its new persons
/// without a document (with the foreign keys of both checked per batch
/// when `foreign_keys` is given); returns how many pairs it queued.
fn insert_batch(
    conn: &mut DbConn,
    raw: Option<&mut RawInserts>,
    b: &Batch,
    foreign_keys: Option<&[ForeignKey]>,
) -> Result<i64, AppError> {
    let Some(keys) = foreign_keys else {
        write_rows(conn, raw, b)?;
        let found = crate::services::persons::same_name_duplicates(conn, &b.undocumented)?;
        return Ok(queue_duplicates(conn, b, &found)?);
    };
    let (pair_keys, row_keys): (Vec<ForeignKey>, Vec<ForeignKey>) = keys
        .iter()
        .cloned()
        .partition(|k| k.child == "duplicate_pairs");
    checked_load::write(conn, &row_keys, &referenced(b), |conn| {
        write_rows(conn, raw, b)
    })?;
    // after the rows: a new person's likely duplicate may be in its own batch
    let found = crate::services::persons::same_name_duplicates(conn, &b.undocumented)?;
    // every person a pair may name, on either side (a superset of the pairs
    // actually queued, which skip those already there)
    let named = Values::ids(
        b.undocumented
            .iter()
            .zip(&found)
            .filter(|(_, d)| !d.is_empty())
            .flat_map(|(p, d)| std::iter::once(p.id).chain(d.iter().map(|(o, _)| o.id))),
    );
    let pairs = [
        ("person_a", named.clone()),
        ("person_b", named),
        ("decided_by", Values::ids([])),
    ]
    .map(|(column, values)| Written {
        table: "duplicate_pairs",
        column,
        values,
    });
    Ok(checked_load::write(conn, &pair_keys, &pairs, |conn| {
        queue_duplicates(conn, b, &found)
    })?)
}

/// The values a batch writes to each key column of `BATCH_TABLES`, for
/// `checked_load` (which refuses the batch if a key column is missing here).
///
/// A reference to a row the batch itself inserts (a new person, case or
/// attention) is left out: the batch's inserts succeeded, in the same
/// transaction, before the check runs, so that row is there. Only the
/// references to rows from before the batch are looked up (a million-row
/// import: the lookups were ~7 % of the writer's time).
fn referenced(b: &Batch) -> Vec<Written> {
    use Values as V;
    let (persons, cases, attentions, events) = (&b.persons, &b.cases, &b.attentions, &b.events);
    let new_persons: HashSet<Id> = persons.iter().map(|p| p.id).collect();
    let new_cases: HashSet<Id> = cases.iter().map(|c| c.id).collect();
    let new_attentions: HashSet<Id> = attentions.iter().map(|a| a.id).collect();
    let person = |id: &Id| !new_persons.contains(id);
    let case = |id: &Id| !new_cases.contains(id);
    let attention = |id: &Id| !new_attentions.contains(id);
    [
        (
            "persons",
            "merged_into_id",
            V::some_ids(persons.iter().map(|p| p.merged_into_id)),
        ),
        (
            "persons",
            "registered_consulate_id",
            V::some_ids(persons.iter().map(|p| p.registered_consulate_id)),
        ),
        (
            "person_match_keys",
            "person_id",
            V::ids(b.keys.iter().map(|k| k.0).filter(person)),
        ),
        (
            "person_documents",
            "person_id",
            V::ids(b.documents.iter().map(|d| d.person_id).filter(person)),
        ),
        (
            "person_documents",
            "issuing_country",
            V::texts(b.documents.iter().map(|d| d.issuing_country.as_str())),
        ),
        (
            "cases",
            "person_id",
            V::ids(cases.iter().map(|c| c.person_id).filter(person)),
        ),
        (
            "cases",
            "consulate_id",
            V::ids(cases.iter().map(|c| c.consulate_id)),
        ),
        (
            "cases",
            "country_code",
            V::texts(cases.iter().map(|c| c.country_code.as_str())),
        ),
        (
            "cases",
            "assigned_officer_id",
            V::some_ids(cases.iter().map(|c| c.assigned_officer_id)),
        ),
        (
            "cases",
            "created_by",
            V::some_ids(cases.iter().map(|c| c.created_by)),
        ),
        (
            "attentions",
            "case_id",
            V::ids(attentions.iter().map(|a| a.case_id).filter(case)),
        ),
        (
            "attentions",
            "person_id",
            V::ids(attentions.iter().map(|a| a.person_id).filter(person)),
        ),
        (
            "attentions",
            "consulate_id",
            V::ids(attentions.iter().map(|a| a.consulate_id)),
        ),
        (
            "attentions",
            "attention_type_id",
            V::ids(attentions.iter().map(|a| a.attention_type_id)),
        ),
        (
            "attentions",
            "country_code",
            V::texts(attentions.iter().filter_map(|a| a.country_code.as_deref())),
        ),
        (
            "attentions",
            "officer_id",
            V::some_ids(attentions.iter().map(|a| a.officer_id)),
        ),
        (
            "attentions",
            "voided_by",
            V::some_ids(attentions.iter().map(|a| a.voided_by)),
        ),
        (
            "timeline_events",
            "person_id",
            V::ids(events.iter().map(|e| e.person_id).filter(person)),
        ),
        (
            "timeline_events",
            "consulate_id",
            V::some_ids(events.iter().map(|e| e.consulate_id)),
        ),
        (
            "timeline_events",
            "actor_id",
            V::some_ids(events.iter().map(|e| e.actor_id)),
        ),
        (
            "timeline_events",
            "attention_type_id",
            V::some_ids(events.iter().map(|e| e.attention_type_id)),
        ),
        (
            "legacy_cases",
            "person_id",
            V::ids(b.legacy_cases.iter().map(|c| c.0).filter(person)),
        ),
        (
            "legacy_cases",
            "consulate_id",
            V::ids(b.legacy_cases.iter().map(|c| c.1)),
        ),
        (
            "legacy_cases",
            "country_code",
            V::texts(b.legacy_cases.iter().map(|c| c.2.as_str())),
        ),
        (
            "legacy_cases",
            "case_id",
            V::ids(b.legacy_cases.iter().map(|c| c.4).filter(case)),
        ),
        (
            "legacy_rows",
            "import_id",
            V::ids(b.legacy_rows.iter().map(|r| r.1)),
        ),
        (
            "legacy_rows",
            "attention_id",
            V::ids(b.legacy_rows.iter().map(|r| r.3).filter(attention)),
        ),
        (
            "import_rejections",
            "import_id",
            V::ids(b.rejections.iter().map(|_| b.import_id)),
        ),
    ]
    .map(|(table, column, values)| Written {
        table,
        column,
        values,
    })
    .into()
}

/// Inserts a batch's rows into `BATCH_TABLES`, through `raw` when given.
fn write_rows(conn: &mut DbConn, raw: Option<&mut RawInserts>, b: &Batch) -> QueryResult<()> {
    use crate::db::schema::person_documents as pd;
    if let Some(raw) = raw {
        write_rows_raw(conn, raw, b)?;
        return write_rejections(conn, b);
    }
    crate::models::bulk::insert_population(
        conn,
        &b.persons,
        &b.keys,
        &b.cases,
        &b.attentions,
        &b.events,
    )?;
    bulk_insert!(conn, pd::table, &b.documents, 100)?;
    let lc: Vec<_> = b
        .legacy_cases
        .iter()
        .map(|(p, cons, country, y, case)| {
            (
                legacy_cases::person_id.eq(*p),
                legacy_cases::consulate_id.eq(*cons),
                legacy_cases::country_code.eq(country.clone()),
                legacy_cases::year.eq(*y),
                legacy_cases::case_id.eq(*case),
            )
        })
        .collect();
    bulk_insert!(conn, legacy_cases::table, &lc, 200)?;
    let lr: Vec<_> = b
        .legacy_rows
        .iter()
        .map(|(fp, import, line, attention)| {
            (
                legacy_rows::fingerprint.eq(fp.clone()),
                legacy_rows::import_id.eq(*import),
                legacy_rows::line.eq(*line),
                legacy_rows::attention_id.eq(*attention),
            )
        })
        .collect();
    bulk_insert!(conn, legacy_rows::table, &lr, 250)?;
    write_rejections(conn, b)
}

/// `write_rows` through prepared statements (SQLite).
fn write_rows_raw(conn: &mut DbConn, raw: &mut RawInserts, b: &Batch) -> QueryResult<()> {
    let population = crate::models::bulk::Population {
        persons: &b.persons,
        keys: &b.keys,
        cases: &b.cases,
        attentions: &b.attentions,
        events: &b.events,
    };
    crate::models::bulk::insert_population_raw(conn, raw, population)?;
    raw.insert(
        conn,
        "person_documents",
        &[
            "id",
            "person_id",
            "doc_type",
            "number",
            "issuing_country",
            "created_at",
        ],
        &b.documents,
        |d, w| {
            w.id(d.id)?;
            w.id(d.person_id)?;
            w.text(&d.doc_type)?;
            w.text(&d.number)?;
            w.text(&d.issuing_country)?;
            w.ts(d.created_at)
        },
    )?;
    raw.insert(
        conn,
        "legacy_cases",
        &[
            "person_id",
            "consulate_id",
            "country_code",
            "year",
            "case_id",
        ],
        &b.legacy_cases,
        |(person, consulate, country, year, case), w| {
            w.id(*person)?;
            w.id(*consulate)?;
            w.text(country)?;
            w.int((*year).into())?;
            w.id(*case)
        },
    )?;
    raw.insert(
        conn,
        "legacy_rows",
        &["fingerprint", "import_id", "line", "attention_id"],
        &b.legacy_rows,
        |(fingerprint, import, line, attention), w| {
            w.text(fingerprint)?;
            w.id(*import)?;
            w.int(*line)?;
            w.id(*attention)
        },
    )
}

/// The batch's refused fields and kept spellings (few: through diesel on
/// both backends).
fn write_rejections(conn: &mut DbConn, b: &Batch) -> QueryResult<()> {
    use crate::db::schema::import_rejections as ir;
    crate::models::vocabulary::insert_spellings(conn, &b.spellings)?;
    let rj: Vec<_> = b
        .rejections
        .iter()
        .map(|r| {
            (
                ir::id.eq(Id::new()),
                ir::import_id.eq(b.import_id),
                ir::line.eq(r.line as i64),
                ir::field.eq(r.field.clone()),
                ir::value.eq(r.value.clone()),
                ir::reason.eq(r.reason.clone()),
            )
        })
        .collect();
    bulk_insert!(conn, ir::table, &rj, 100)?;
    Ok(())
}

/// Puts `found`, the likely duplicates of the batch's new persons without
/// a document, in the review queue; returns how many pairs it queued.
fn queue_duplicates(
    conn: &mut DbConn,
    b: &Batch,
    found: &[Vec<(Person, crate::domain::person::Likeness)>],
) -> QueryResult<i64> {
    let mut queued = 0;
    for (p, duplicates) in b.undocumented.iter().zip(found) {
        for (other, likeness) in duplicates {
            if crate::models::persons::queue_pair(
                conn,
                p.id,
                other.id,
                likeness.score,
                &likeness.reasons,
                "import",
            )? {
                queued += 1;
            }
        }
    }
    Ok(queued)
}

fn finish(
    conn: &mut DbConn,
    mut st: State,
    lookup: Lookup,
    started: std::time::Instant,
) -> Result<Report, AppError> {
    let mut unresolved: Vec<((String, String), Affected)> = st.unresolved.drain().collect();
    unresolved.sort_by(|a, b| b.1.rows.cmp(&a.1.rows).then_with(|| a.0.cmp(&b.0)));
    for ((field, spelling), affected) in unresolved {
        let closest = lookup
            .closest(&field, &spelling)
            .into_iter()
            .map(|(entry, score)| ClosestEntry { entry, score })
            .collect();
        st.report.unresolved_values.push(UnresolvedValue {
            imported_as: (field == FIELDS[read::F_CHANNEL]).then(|| "not_recorded".to_owned()),
            field,
            spelling,
            rows: affected.rows,
            persons: affected.persons.len() as i64,
            closest,
        });
    }
    drop(lookup);
    let mut unmapped: Vec<(String, Affected)> = st.unmapped.drain().collect();
    unmapped.sort_by(|a, b| b.1.rows.cmp(&a.1.rows).then_with(|| a.0.cmp(&b.0)));
    for (label, affected) in unmapped {
        let closest = crate::services::catalogue::suggest(conn, &label, 3)?
            .into_iter()
            .map(|(t, score, _)| ClosestType {
                code: t.code,
                name_es: t.name_es,
                score: (score * 1000.0).round() / 1000.0,
            })
            .collect();
        st.report.unmapped_labels.push(UnmappedLabel {
            label,
            rows: affected.rows,
            persons: affected.persons.len() as i64,
            closest,
        });
    }
    st.report.quality.conflicting_documents = st.conflicts.len() as i64;
    st.report.quality.volume_outliers = quality::outliers(&st.volumes);
    st.report.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    st.report.rows_per_second = if st.report.seconds > 0.0 {
        (st.report.rows as f64 / st.report.seconds).round()
    } else {
        0.0
    };
    if !st.opts.dry_run {
        let report = serde_json::to_string(&st.report).map_err(AppError::internal)?;
        crate::db::write_tx::<_, AppError, _>(conn, |conn| {
            diesel::update(imports::table.find(st.import_id))
                .set((
                    imports::status.eq(if st.report.rolled_back {
                        "failed"
                    } else {
                        "succeeded"
                    }),
                    imports::rows_read.eq(st.report.rows),
                    imports::rows_imported.eq(st.report.rows_imported),
                    imports::rows_skipped.eq(st.report.rows_already_imported),
                    imports::rows_rejected.eq(st.report.rows_rejected),
                    imports::report.eq(&report),
                    imports::finished_at.eq(Ts::now()),
                ))
                .execute(conn)?;
            audit::record(
                conn,
                st.actor.as_ref(),
                &RequestMeta::default(),
                Event::new("import.finished", "import", Some(st.import_id.to_string())).details(
                    serde_json::json!({
                        "rows": st.report.rows,
                        "imported": st.report.rows_imported,
                        "already_imported": st.report.rows_already_imported,
                        "rejected": st.report.rows_rejected,
                        "persons_new": st.report.persons_new,
                    }),
                ),
            )?;
            Ok(())
        })?;
    }
    Ok(st.report)
}

/// Marks an import failed (its committed batches stay; a re-run resumes).
/// Upload jobs (those with a requesting user) that an earlier run of the
/// server left queued or running: their thread is gone, so they end as
/// failed instead of staying `running` forever. Imports run by the CLI
/// (no requesting user) are left alone.
pub fn fail_interrupted_jobs(conn: &mut DbConn) -> QueryResult<usize> {
    diesel::update(
        imports::table
            .filter(imports::status.eq_any(["queued", "running"]))
            .filter(imports::created_by.is_not_null()),
    )
    .set((
        imports::status.eq("failed"),
        imports::error
            .eq("interrupted: the server stopped while the job ran; upload the file again"),
        imports::finished_at.eq(Ts::now()),
    ))
    .execute(conn)
}

pub fn mark_failed(conn: &mut DbConn, import_id: Id, error: &str) -> QueryResult<()> {
    diesel::update(imports::table.find(import_id))
        .set((
            imports::status.eq("failed"),
            imports::error.eq(error),
            imports::finished_at.eq(Ts::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Parsed {
        Parsed {
            line: 2,
            attended_on: NaiveDate::from_ymd_opt(2024, 3, 1).expect("date"),
            consulate_id: Id::new(),
            country: "AR".into(),
            document: None,
            given_names: "Ana".into(),
            first_surname: "Quispe".into(),
            second_surname: None,
            sex: "female",
            birth: None,
            type_id: Id::new(),
            channel: "phone",
            channel_spelling: None,
            outside_jurisdiction: false,
        }
    }

    /// Only references to rows from before the batch are left for the
    /// database to check; those to the batch's own new rows are not.
    #[test]
    fn references_to_the_batch_own_rows_are_not_looked_up() {
        let (p, now) = (row(), Ts::now());
        let facts = PersonFacts {
            sex: "female",
            birth: None,
        };
        let new = new_person(&p, now);
        let new_case = legacy_case(&p, new.id, 2024, now.0.date_naive(), now);
        let (old_person, old_case, old_attention) = (Id::new(), Id::new(), Id::new());
        let fresh = legacy_attention(&p, new_case.id, new.id, facts, now);
        let onto_old = legacy_attention(&p, old_case, old_person, facts, now);
        let b = Batch {
            keys: vec![(new.id, "ana quispe".into())],
            legacy_cases: vec![(new.id, p.consulate_id, "AR".into(), 2024, new_case.id)],
            legacy_rows: vec![
                ("a".into(), Id::new(), 2, fresh.id),
                ("b".into(), Id::new(), 3, old_attention),
            ],
            persons: vec![new.clone()],
            cases: vec![new_case],
            attentions: vec![fresh, onto_old],
            ..Batch::default()
        };
        let written = referenced(&b);
        let values = |table: &str, column: &str| {
            written
                .iter()
                .find(|w| w.table == table && w.column == column)
                .map(|w| w.values.clone())
                .unwrap_or_else(|| panic!("{table}.{column} is not given"))
        };
        assert_eq!(values("attentions", "person_id"), Values::ids([old_person]));
        assert_eq!(values("attentions", "case_id"), Values::ids([old_case]));
        assert_eq!(
            values("attentions", "consulate_id"),
            Values::ids([p.consulate_id]),
            "parents the batch does not insert are all looked up"
        );
        assert_eq!(values("cases", "person_id"), Values::ids([]));
        assert_eq!(values("person_match_keys", "person_id"), Values::ids([]));
        assert_eq!(values("legacy_cases", "person_id"), Values::ids([]));
        assert_eq!(values("legacy_cases", "case_id"), Values::ids([]));
        assert_eq!(
            values("legacy_rows", "attention_id"),
            Values::ids([old_attention])
        );
    }
}
