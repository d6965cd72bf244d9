//! Legacy imports as jobs: the `imports` row that records one (queued,
//! running, succeeded or failed, with its counts and report), the runner
//! that takes an uploaded extract to its end, and the rows it refused.

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::read::{Format, Mapping};
use super::values::Rejection;
use super::{Options, Report};
use crate::audit::{Actor, Event};
use crate::db::schema::{import_rejections, imports};
use crate::db::{DbConn, DbPool, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::stored_json;
use crate::error::AppError;
use crate::models::reference::Window;
use crate::services::journal::Journal;

/// An import job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResponse {
    pub id: Id,
    pub source_name: String,
    pub format: String,
    pub dry_run: bool,
    pub atomic: bool,
    /// queued, running, succeeded or failed.
    pub status: String,
    pub rows_read: i64,
    pub rows_imported: i64,
    pub rows_skipped: i64,
    pub rows_rejected: i64,
    pub error: Option<String>,
    pub created_at: Ts,
    pub finished_at: Option<Ts>,
    /// The full report, once finished.
    pub report: Option<Report>,
}

type ImportRow = (
    Id,
    String,
    String,
    bool,
    bool,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Ts,
    Option<Ts>,
);

/// One job; `not_found` when there is none.
pub fn find(conn: &mut DbConn, id: Id) -> Result<ImportResponse, AppError> {
    let row: Option<ImportRow> = imports::table
        .find(id)
        .select((
            imports::id,
            imports::source_name,
            imports::format,
            imports::dry_run,
            imports::atomic,
            imports::status,
            imports::rows_read,
            imports::rows_imported,
            imports::rows_skipped,
            imports::rows_rejected,
            imports::report,
            imports::error,
            imports::created_at,
            imports::finished_at,
        ))
        .first(conn)
        .optional()?;
    let Some(r) = row else {
        return Err(AppError::not_found("import"));
    };
    Ok(ImportResponse {
        id: r.0,
        source_name: r.1,
        format: r.2,
        dry_run: r.3,
        atomic: r.4,
        status: r.5,
        rows_read: r.6,
        rows_imported: r.7,
        rows_skipped: r.8,
        rows_rejected: r.9,
        report: r.10.map(|t| stored_json("import report", &t)).transpose()?,
        error: r.11,
        created_at: r.12,
        finished_at: r.13,
    })
}

/// A job to record before it runs.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Id,
    pub name: String,
    pub format: Format,
    pub dry_run: bool,
    pub atomic: bool,
    /// The upload's size, for the audit.
    pub bytes: usize,
}

/// Inserts a job's row.
fn insert_row(
    conn: &mut DbConn,
    job: &NewJob,
    status: &str,
    created_by: Option<Id>,
) -> QueryResult<()> {
    diesel::insert_into(imports::table)
        .values((
            imports::id.eq(job.id),
            imports::source_name.eq(&job.name),
            imports::format.eq(job.format.as_str()),
            imports::dry_run.eq(job.dry_run),
            imports::atomic.eq(job.atomic),
            imports::status.eq(status),
            imports::rows_read.eq(0_i64),
            imports::rows_imported.eq(0_i64),
            imports::rows_skipped.eq(0_i64),
            imports::rows_rejected.eq(0_i64),
            imports::created_by.eq(created_by),
            imports::created_at.eq(Ts::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Records a queued job (through the write recipe: its audit row in the
/// journal).
pub fn queue(
    conn: &mut DbConn,
    journal: &mut Journal,
    actor: &Actor,
    job: &NewJob,
) -> Result<ImportResponse, AppError> {
    insert_row(conn, job, "queued", Some(actor.user_id))?;
    journal.audit(
        Event::new(AuditAction::ImportRequested, "import", Some(job.id.to_string())).details(
            serde_json::json!({ "name": job.name, "bytes": job.bytes, "dry_run": job.dry_run, "atomic": job.atomic }),
        ),
    );
    find(conn, job.id)
}

/// Runs a job to its end; every outcome lands in its `imports` row.
#[allow(clippy::too_many_arguments)]
pub fn run(
    pool: &DbPool,
    id: Id,
    path: &std::path::Path,
    name: &str,
    actor: Actor,
    dry_run: bool,
    atomic: bool,
    mapping: Mapping,
) {
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(import = %id, error = %e, "import job got no connection");
            return;
        }
    };
    if let Err(e) = diesel::update(imports::table.find(id))
        .set(imports::status.eq("running"))
        .execute(&mut *conn)
    {
        tracing::error!(import = %id, error = %e, "import job could not start");
        return;
    }
    let opts = Options {
        dry_run,
        atomic,
        mapping,
        ..Options::default()
    };
    // a second connection, when the pool has one soon, writes batches while
    // this one resolves the next; without it the import writes in turn
    let mut writer = pool.get_timeout(std::time::Duration::from_millis(500)).ok();
    let outcome = super::run(
        &mut conn,
        writer.as_deref_mut(),
        path,
        name,
        id,
        Some(actor),
        opts,
        &mut (),
    );
    let result = match outcome {
        Ok(report) if dry_run => serde_json::to_string(&report)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                diesel::update(imports::table.find(id))
                    .set((
                        imports::status.eq("succeeded"),
                        imports::rows_read.eq(report.rows),
                        imports::rows_imported.eq(report.rows_imported),
                        imports::rows_skipped.eq(report.rows_already_imported),
                        imports::rows_rejected.eq(report.rows_rejected),
                        imports::report.eq(text),
                        imports::finished_at.eq(Ts::now()),
                    ))
                    .execute(&mut *conn)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        Ok(_) => Ok(()),
        Err(e) => {
            let why = e.to_string();
            mark_failed(&mut conn, id, &why).map_err(|e| e.to_string())
        }
    };
    if let Err(e) = result {
        tracing::error!(import = %id, error = %e, "import job could not record its outcome");
    }
}

/// A page of the rows a job refused, in file order, and how many there are.
pub fn rejections(conn: &mut DbConn, id: Id, w: Window) -> Result<(Vec<Rejection>, i64), AppError> {
    let total: i64 = import_rejections::table
        .filter(import_rejections::import_id.eq(id))
        .count()
        .get_result(conn)?;
    let rows: Vec<(i64, String, String, String)> = import_rejections::table
        .filter(import_rejections::import_id.eq(id))
        .order((import_rejections::line, import_rejections::field))
        .limit(w.limit)
        .offset(w.offset)
        .select((
            import_rejections::line,
            import_rejections::field,
            import_rejections::value,
            import_rejections::reason,
        ))
        .load(conn)?;
    let items = rows
        .into_iter()
        .map(|(line, field, value, reason)| Rejection {
            line: line.max(0) as u64,
            field,
            value,
            reason,
        })
        .collect();
    Ok((items, total))
}

/// A writing run's job row, running: the one the API queued, or a new one
/// (the CLI's).
pub(super) fn ensure_running(
    conn: &mut DbConn,
    id: Id,
    name: &str,
    format: Format,
    atomic: bool,
    actor: Option<&Actor>,
) -> Result<(), AppError> {
    let exists = imports::table
        .find(id)
        .select(imports::id)
        .first::<Id>(conn)
        .optional()?
        .is_some();
    if exists {
        diesel::update(imports::table.find(id))
            .set((
                imports::status.eq("running"),
                imports::format.eq(format.as_str()),
            ))
            .execute(conn)?;
    } else {
        let job = NewJob {
            id,
            name: name.to_owned(),
            format,
            dry_run: false,
            atomic,
            bytes: 0,
        };
        insert_row(conn, &job, "running", actor.map(|a| a.user_id))?;
    }
    Ok(())
}

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

/// Marks an import failed (its committed batches stay; a re-run resumes).
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
