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

mod bulk;
pub mod jobs;
pub mod quality;
pub mod read;
mod report;
mod resolve;
pub mod values;
mod write;
pub mod xlsx_guard;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::audit::{Actor, Event, RequestMeta};
use crate::db::bulk::checked_load::{self, ForeignKey, Values, Written};
use crate::db::bulk::raw_insert::RawInserts;
use crate::db::schema::{
    attentions, imports, legacy_cases, legacy_rows, person_documents, persons,
};
use crate::db::{Code, DbConn, Id, Ts};
use crate::domain::error_code::ErrorCode;
use crate::domain::person::name_key;
use crate::domain::text::fold_key;
use crate::domain::vocabulary::Vocabulary;
use crate::error::AppError;
use crate::models::cases::{Attention, Case};
use crate::models::persons::{Document, Person, TimelineEvent};
use crate::{bulk_insert, per_backend};
use read::{Format, Mapping, FIELDS};
use values::{Lookup, Parsed, Rejection};

use bulk::{bulk_session, checkpoint, refresh_statistics, set_indexes_aside, vacuum_after};
use report::finish;
pub use report::{ClosestEntry, ClosestType, Report, UnmappedLabel, UnresolvedValue};
use resolve::{fingerprint, fingerprint_bits, resolve_batch, row_person};
use write::{commit_groups, Pending, Sink, BATCH_TABLES};

pub use jobs::{fail_interrupted_jobs, mark_failed};

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
/// rows (see `db::bulk::indexes`); meanwhile the rest of the system reads
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
    /// writes, checked per batch instead of per row (`db::bulk::checked_load`).
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
    let mut reader = Reader::open(conn, path, format, &opts.mapping)?;
    let mut st = State::new(import_id, actor, opts, format);
    if !st.opts.dry_run {
        jobs::ensure_running(
            conn,
            import_id,
            source_name,
            format,
            st.opts.atomic,
            st.actor.as_ref(),
        )?;
        st.foreign_keys = checked_load::foreign_keys(conn, BATCH_TABLES)?.map(Into::into);
        let sample = reader.sample_fingerprints(path, format);
        if let Err(e) = set_indexes_aside(conn, &mut st, format, reader.total_bytes, &sample) {
            // whatever was set aside before the failure comes back now
            let _ = crate::db::bulk::indexes::restore(conn);
            return Err(e);
        }
    }
    let checked = st.foreign_keys.is_some();
    bulk_session(conn, true, checked)?;
    let outcome = if st.opts.atomic && !st.opts.dry_run {
        run_atomic(conn, &mut st, &mut reader, progress)
    } else if let (Some(writer), false) = (writer, st.opts.dry_run) {
        run_overlapped(conn, writer, &mut st, &mut reader, progress)
    } else {
        reader.read_all(conn, &mut st, &Sink::Inline, progress)
    };
    st.forget_matches();
    // failed or not, the indexes come back before returning
    let restored = restore_indexes(conn, &mut st);
    bulk_session(conn, false, false)?;
    restored?;
    outcome?;
    vacuum_after(conn, &st)?;
    finish(conn, st, reader.lookup, started)
}

/// All or nothing: a refused row rolls every written row back, and the
/// report says so.
fn run_atomic(
    conn: &mut DbConn,
    st: &mut State,
    reader: &mut Reader,
    progress: &mut dyn Progress,
) -> Result<(), AppError> {
    let outcome = crate::db::write_tx::<_, AppError, _>(conn, |conn| {
        reader.read_all(conn, st, &Sink::Inline, progress)?;
        if st.report.rows_rejected > 0 {
            return Err(AppError::conflict(
                ErrorCode::ImportRolledBack,
                None,
                "rows were refused",
            ));
        }
        Ok(())
    });
    match outcome {
        Err(AppError::Conflict {
            code: ErrorCode::ImportRolledBack,
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
}

/// Resolving the next batch overlaps with writing this one, on the
/// `writer` connection in a second thread. The big page cache goes to the
/// connection that writes (this one only looks up, and two would add 14 MB
/// to the peak).
fn run_overlapped(
    conn: &mut DbConn,
    writer: &mut DbConn,
    st: &mut State,
    reader: &mut Reader,
    progress: &mut dyn Progress,
) -> Result<(), AppError> {
    let checked = st.foreign_keys.is_some();
    bulk_session(conn, false, false)?;
    let per_commit = match writer {
        DbConn::Sqlite(_) => (st.opts.commit_rows / st.opts.batch_rows.max(1)).max(1),
        DbConn::Pg(_) => 1,
    };
    let outcome = bulk_session(writer, true, checked).and_then(|()| {
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Pending>(0);
            let w = &mut *writer;
            let writing =
                scope.spawn(move || -> Result<i64, AppError> { commit_groups(w, &rx, per_commit) });
            let reading = reader.read_all(conn, st, &Sink::Writer(tx), progress);
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
}

/// Rebuilds the indexes the import set aside, timing it for the report.
fn restore_indexes(conn: &mut DbConn, st: &mut State) -> Result<(), AppError> {
    if !st.report.indexes_set_aside {
        return Ok(());
    }
    let rebuild = std::time::Instant::now();
    // with SQLite's default page cache: the sorts that build the indexes
    // were faster with it than with the import's 16 MiB (a million rows:
    // 8.6–9.9 s against 9.6–11.9 s, five runs in turn)
    let restored = bulk_session(conn, false, false)
        .and_then(|()| checkpoint(conn))
        .and_then(|()| Ok(crate::db::bulk::indexes::restore(conn)?))
        .map(|_| ());
    st.report.index_rebuild_seconds = (rebuild.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    restored
}

/// The extract being read: its rows, where each field's column is, and
/// the vocabularies its values resolve through.
struct Reader {
    rows: read::Rows,
    columns: [Option<usize>; FIELDS.len()],
    lookup: Lookup,
    read_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    total_bytes: u64,
}

impl Reader {
    /// Opens the file, reads its header and maps its columns; value
    /// mappings that name nothing are refused here, before any row.
    fn open(
        conn: &mut DbConn,
        path: &Path,
        format: Format,
        mapping: &Mapping,
    ) -> Result<Reader, AppError> {
        let mut rows = read::open(path, format).map_err(|e| AppError::invalid("file", e))?;
        let header = match rows.next() {
            Some(Ok((_, h))) => h,
            Some(Err(e)) => return Err(AppError::invalid("file", e)),
            None => return Err(AppError::invalid("file", "is empty")),
        };
        let columns = mapping
            .columns(&header)
            .map_err(|e| AppError::invalid("file", e))?;
        let mut lookup = Lookup::load(conn)?;
        lookup.map_values(conn, &mapping.values)?;
        Ok(Reader {
            read_bytes: rows.read_bytes.clone(),
            total_bytes: rows.total_bytes,
            rows,
            columns,
            lookup,
        })
    }

    /// A row's values in field order.
    fn values(&self, cells: &[String]) -> [String; FIELDS.len()] {
        std::array::from_fn(|i| {
            self.columns[i]
                .and_then(|c| cells.get(c))
                .cloned()
                .unwrap_or_default()
        })
    }

    /// The fingerprints of the file's first rows: what share of the file is
    /// new decides how to load it (a file imported before, run again, is
    /// mostly known rows).
    fn sample_fingerprints(&self, path: &Path, format: Format) -> Vec<String> {
        read::sample(path, format, 2_000)
            .unwrap_or_default()
            .into_iter()
            .filter(|cells| !cells.iter().all(|c| c.is_empty()))
            .map(|cells| fingerprint(&mut HashMap::new(), &self.values(&cells)).0)
            .collect()
    }

    /// Reads every row, resolving and handing on a batch at a time.
    fn read_all(
        &mut self,
        conn: &mut DbConn,
        st: &mut State,
        sink: &Sink,
        progress: &mut dyn Progress,
    ) -> Result<(), AppError> {
        let mut pending: Vec<(Parsed, String)> = Vec::with_capacity(st.opts.batch_rows);
        let mut rejected: Vec<Rejection> = Vec::new();
        while let Some(record) = self.rows.next() {
            let (line, cells) = record.map_err(|e| AppError::invalid("file", e))?;
            if cells.iter().all(|c| c.is_empty()) {
                continue;
            }
            let values = self.values(&cells);
            match self.parse(conn, st, line, &values)? {
                Ok(parsed) => pending.push(parsed),
                Err(errors) => rejected.extend(errors),
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
                    self.read_bytes.load(std::sync::atomic::Ordering::Relaxed),
                    self.total_bytes,
                );
            }
        }
        let batch = resolve_batch(conn, st, pending, rejected)?;
        sink.take(conn, st, batch)?;
        progress.update(st.report.rows, self.total_bytes, self.total_bytes);
        Ok(())
    }

    /// One row, counted: parsed with its fingerprint, or its rejections;
    /// spellings nothing resolved are remembered with the person they name.
    #[allow(clippy::type_complexity)]
    fn parse(
        &mut self,
        conn: &mut DbConn,
        st: &mut State,
        line: u64,
        values: &[String; FIELDS.len()],
    ) -> Result<Result<(Parsed, String), Vec<Rejection>>, AppError> {
        st.report.rows += 1;
        let (fingerprint, identical) = fingerprint(&mut st.seen, values);
        if identical {
            st.report.identical_rows += 1;
        }
        match values::parse_row(conn, &mut self.lookup, line, values, st.today)? {
            Ok(p) => {
                if let Some(spelling) = &p.channel_spelling {
                    st.unresolved
                        .entry((FIELDS[read::F_CHANNEL].to_owned(), spelling.clone()))
                        .or_default()
                        .add(row_person(values));
                }
                Ok(Ok((p, fingerprint)))
            }
            Err(errors) => {
                st.report.rows_rejected += 1;
                let person = row_person(values);
                for e in &errors {
                    if e.field == FIELDS[read::F_TYPE] && e.reason.starts_with("no attention type")
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
                Ok(Err(errors))
            }
        }
    }
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
    fn new(import_id: Id, actor: Option<Actor>, opts: Options, format: Format) -> State {
        State {
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
        }
    }

    /// Once every row is read, the maps that matched rows are done with:
    /// their memory goes to the index rebuild's sort instead of adding to it.
    fn forget_matches(&mut self) {
        self.persons = HashMap::new();
        self.facts = HashMap::new();
        self.cases = HashMap::new();
        self.known_fingerprints = None;
        self.seen = HashMap::new();
        self.db_persons = HashSet::new();
    }

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
