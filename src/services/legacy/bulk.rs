//! The database session around a big import: bulk pragmas, secondary
//! indexes set aside and restored, statistics refreshed as tables grow,
//! checkpoints and the closing vacuum.

use super::*;

/// On PostgreSQL, after a large import: the OEI.05 figures count the
/// attentions with index-only scans, which need the visibility map that
/// only VACUUM writes; right after an import of ~670 000 attentions a
/// year's figures took 1.3–2.8 s, after `VACUUM ANALYZE` 0.94 s. Outside
/// any transaction (VACUUM refuses one).
pub(super) fn vacuum_after(conn: &mut DbConn, st: &State) -> Result<(), AppError> {
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
pub(super) fn bulk_session(conn: &mut DbConn, on: bool, checked: bool) -> Result<(), AppError> {
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
pub(super) fn checkpoint(conn: &mut DbConn) -> Result<(), AppError> {
    if let DbConn::Sqlite(c) = conn {
        diesel::connection::SimpleConnection::batch_execute(c, "PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    Ok(())
}

/// Decides (for `Auto`) and sets the indexes aside, and on SQLite the
/// import keys with them when the keys already stored are few next to the
/// file (at most a quarter of its rows: the import reads them into memory)
/// and no other import is running (`db::bulk::indexes::set_keys_aside`);
/// otherwise makes sure the keys are there, as another import may have
/// set them aside.
pub(super) fn set_indexes_aside(
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
        crate::db::bulk::indexes::set_aside(conn)?;
        st.report.indexes_set_aside = true;
    }
    let keys = defer && matches!(conn, DbConn::Sqlite(_)) && {
        let stored: i64 = legacy_rows::table.count().get_result(conn)?;
        stored <= rows / 4 && crate::db::bulk::indexes::set_keys_aside(conn, st.import_id)?
    };
    if !keys {
        crate::db::bulk::indexes::restore_keys(conn)?;
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
pub(super) fn rows_likely_new(
    conn: &mut DbConn,
    rows: i64,
    sample: &[String],
) -> Result<i64, AppError> {
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

/// On PostgreSQL, analyzes the tables the import looks rows up in each time
/// its imported rows double (from 10 000): those tables may have started
/// empty or small, and with the statistics of then the lookups of every
/// batch were planned as sequential scans — quadratic (a 100 000-row import
/// into a populated database spent most of its time in them). A few
/// ANALYZEs of sampled rows per import.
pub(super) fn refresh_statistics(conn: &mut DbConn, st: &mut State) -> Result<(), AppError> {
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
