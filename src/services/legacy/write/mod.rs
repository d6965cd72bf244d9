//! Writing resolved batches: in turn or on a second connection, row by
//! row through diesel or through the bulk paths (raw inserts, foreign keys
//! checked per batch), with the review queue for likely duplicates.

mod references;

pub(super) use references::*;

use super::*;
use crate::db::bulk::columns;
use crate::domain::audit::AuditAction;
use crate::services::journal::{self, Journal};

/// Where resolved batches go: written at once on the reading connection, or
/// handed to the writer thread (which has its own connection).
pub(super) enum Sink {
    Inline,
    Writer(std::sync::mpsc::SyncSender<Pending>),
}

impl Sink {
    pub(super) fn take(
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
pub(super) struct Pending {
    pub(super) batch: Batch,
    pub(super) actor: Option<Actor>,
    pub(super) foreign_keys: Option<std::sync::Arc<[ForeignKey]>>,
    /// rows read, imported, already imported and refused so far
    pub(super) progress: (i64, i64, i64, i64),
}

/// Writes a resolved batch in one transaction with the import's progress
/// and its audit row; returns how many likely-duplicate pairs it queued.
pub(super) fn commit_batch(conn: &mut DbConn, pending: &Pending) -> Result<i64, AppError> {
    let meta = RequestMeta::default();
    journal::run(conn, pending.actor.as_ref(), &meta, |conn, j| {
        write_batch(conn, j, None, pending)
    })
}

/// How long a transaction that gathers batches waits for the next one
/// before it commits what it holds.
pub(super) const NEXT_BATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

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
pub(super) fn commit_groups(
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
        let meta = RequestMeta::default();
        while let Ok(first) = rx.recv() {
            // the batches of one import share its actor
            let actor = first.actor.clone();
            queued += journal::run(conn, actor.as_ref(), &meta, |conn, j| {
                let mut queued = write_batch(conn, j, raw.as_mut(), &first)?;
                release(first);
                for _ in 1..per_commit {
                    let Ok(next) = rx.recv_timeout(NEXT_BATCH_WAIT) else {
                        break;
                    };
                    queued += write_batch(conn, j, raw.as_mut(), &next)?;
                    release(next);
                }
                Ok(queued)
            })?;
        }
        Ok(queued)
    })
}

/// One batch's rows and progress, in the caller's transaction (the rows
/// through `raw` when given), its audit row noted in `journal`.
pub(super) fn write_batch(
    conn: &mut DbConn,
    journal: &mut Journal,
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
    journal.audit(
        Event::new(
            AuditAction::ImportBatch,
            "import",
            Some(import_id.to_string()),
        )
        .details(counts),
    );
    Ok(queued)
}

/// Writes a batch's rows and queues likely duplicates of its new persons
/// without a document (with the foreign keys of both checked per batch
/// when `foreign_keys` is given); returns how many pairs it queued.
pub(super) fn insert_batch(
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

/// Inserts a batch's rows into `BATCH_TABLES`, through `raw` when given.
pub(super) fn write_rows(
    conn: &mut DbConn,
    raw: Option<&mut RawInserts>,
    b: &Batch,
) -> QueryResult<()> {
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
pub(super) fn write_rows_raw(
    conn: &mut DbConn,
    raw: &mut RawInserts,
    b: &Batch,
) -> QueryResult<()> {
    let population = crate::models::bulk::Population {
        persons: &b.persons,
        keys: &b.keys,
        cases: &b.cases,
        attentions: &b.attentions,
        events: &b.events,
    };
    crate::models::bulk::insert_population_raw(conn, raw, population)?;
    raw.insert(conn, &columns::PERSON_DOCUMENTS, &b.documents, |d, w| {
        w.id(d.id)?;
        w.id(d.person_id)?;
        w.text(&d.doc_type)?;
        w.text(&d.number)?;
        w.text(&d.issuing_country)?;
        w.ts(d.created_at)
    })?;
    raw.insert(
        conn,
        &columns::LEGACY_CASES,
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
        &columns::LEGACY_ROWS,
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
pub(super) fn write_rejections(conn: &mut DbConn, b: &Batch) -> QueryResult<()> {
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
pub(super) fn queue_duplicates(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::legacy::resolve::{legacy_attention, legacy_case, new_person};

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
