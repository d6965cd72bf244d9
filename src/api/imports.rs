//! Legacy imports as jobs (`POST /imports` uploads an extract, `GET
//! /imports/{id}` follows it) and the live data-quality report.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use std::io::Write;
use utoipa::IntoParams;

use super::write::write;
use super::{access, window, Page};
use crate::api::RequestOrigin as _;
use crate::audit::{self, Event, RequestMeta};
use crate::auth::AuthUser;
use crate::db::{self, Id};
use crate::domain::audit::AuditAction;
use crate::error::{AppError, Problem};
use crate::extract::QueryParams;
use crate::services::legacy::jobs::{self, ImportResponse};
use crate::services::legacy::quality::{self, LiveQuality};
use crate::services::legacy::values::Rejection;
use crate::services::legacy::{self, read::Mapping};
use crate::AppState;

/// Largest extract accepted by upload (a million legacy rows are ~150 MB).
pub const MAX_UPLOAD_BYTES: usize = 1 << 30;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Resolve and report, write nothing (the job keeps its report).
    pub dry_run: Option<bool>,
    /// All rows or none.
    pub atomic: Option<bool>,
    /// The file's name, for the record.
    pub name: Option<String>,
    /// Column mapping: `campo=Encabezado` pairs separated by `;`; and value
    /// mappings for this import, `campo: spelling = entry` (e.g. `canal:
    /// Presencial = consulate_window`), for consulado, pais,
    /// tipo_documento, sexo, tipo_atencion and canal.
    pub mapping: Option<String>,
}

/// An uploaded extract on disk, removed when dropped (after the job, or at
/// once when the request fails).
struct Upload(std::path::PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Extracts come as CSV (or plain text) or as an XLSX workbook.
fn check_content_type(req: &HttpRequest) -> Result<(), AppError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        content_type.as_str(),
        "text/csv"
            | "text/plain"
            | "application/octet-stream"
            | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ) {
        return Err(AppError::UnsupportedMediaType(
            "send the extract as text/csv or as an XLSX workbook".into(),
        ));
    }
    Ok(())
}

/// The `mapping` query: column headings and value mappings; a value line
/// that names nothing is refused before anything is read.
async fn checked_mapping(state: &AppState, raw: Option<&str>) -> Result<Mapping, AppError> {
    let mapping = match raw {
        Some(m) => Mapping::parse(m).map_err(|e| AppError::bad_query("query.mapping", e))?,
        None => Mapping::default(),
    };
    if !mapping.values.is_empty() {
        let values = mapping.values.clone();
        db::run(&state.pool, move |conn| {
            crate::services::legacy::check_value_mappings(conn, &values)
        })
        .await
        .map_err(|e| match e {
            AppError::Validation { detail, .. } => AppError::bad_query("query.mapping", detail),
            other => other,
        })?;
    }
    Ok(mapping)
}

/// Streams the body into a private file (at most `MAX_UPLOAD_BYTES`, not
/// empty); the file goes when the `Upload` is dropped.
async fn receive(
    state: &AppState,
    id: Id,
    mut body: web::Payload,
) -> Result<(Upload, usize), AppError> {
    crate::files::private_dir(&state.upload_dir).map_err(AppError::internal)?;
    let upload = Upload(state.upload_dir.join(format!("mapce-import-{id}")));
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&upload.0)
            .map_err(AppError::internal)?
    };
    let mut size = 0_usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| AppError::bad_query("body", format!("the upload was interrupted: {e}")))?;
        size += chunk.len();
        if size > MAX_UPLOAD_BYTES {
            return Err(AppError::PayloadTooLarge {
                limit: MAX_UPLOAD_BYTES,
            });
        }
        file.write_all(&chunk).map_err(AppError::internal)?;
    }
    drop(file);
    if size == 0 {
        return Err(AppError::invalid("body", "is empty: send the extract"));
    }
    Ok((upload, size))
}

/// Runs a queued job on its own thread; when no thread can start, the job
/// is marked failed.
async fn start(
    state: &AppState,
    job: jobs::NewJob,
    upload: Upload,
    actor: crate::audit::Actor,
    mapping: Mapping,
) -> Result<(), AppError> {
    let id = job.id;
    let job_pool = state.pool.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("import-{id}"))
        .spawn(move || {
            jobs::run(
                &job_pool,
                id,
                &upload.0,
                &job.name,
                actor,
                job.dry_run,
                job.atomic,
                mapping,
            );
            drop(upload);
        });
    if let Err(e) = spawned {
        // the closure, and with it the upload, is gone: the job cannot run
        db::run(&state.pool, move |conn| {
            legacy::mark_failed(conn, id, "the import could not start")?;
            Ok(())
        })
        .await?;
        return Err(AppError::internal(e));
    }
    Ok(())
}

/// Upload a legacy extract (CSV or XLSX, the request body) and import it as
/// a job. Answers 202 at once with the job; follow it at
/// `GET /imports/{id}`.
#[utoipa::path(
    tag = "imports",
    operation_id = "create_import",
    security(("bearer" = [])),
    params(ImportParams),
    request_body(content = Vec<u8>, content_type = "text/csv", description = "The extract: CSV (text/csv) or XLSX (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)"),
    responses(
        (status = 202, body = ImportResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/imports")]
pub async fn create_import(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<ImportParams>,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    user.require(&access::CREATE_IMPORT)?;
    let q = query.into_inner();
    check_content_type(&req)?;
    let mapping = checked_mapping(&state, q.mapping.as_deref()).await?;
    let name = super::optional_text("query.name", q.name.as_deref(), 200)?
        .unwrap_or_else(|| "upload".to_owned());
    let id = Id::new();
    let (upload, size) = receive(&state, id, body).await?;
    let job = jobs::NewJob {
        id,
        name,
        format: legacy::read::Format::detect(&upload.0).map_err(AppError::internal)?,
        dry_run: q.dry_run.unwrap_or(false),
        atomic: q.atomic.unwrap_or(false),
        bytes: size,
    };
    let (actor, meta) = (user.actor(), RequestMeta::of(&req));
    let queued = job.clone();
    let created = write(&state, actor.clone(), meta, move |conn, j| {
        jobs::queue(conn, j, &actor, &queued)
    })
    .await?;
    start(&state, job, upload, user.actor(), mapping).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/imports/{id}"),
        ))
        .json(created))
}

/// An import job: status, progress and, once finished, its report.
#[utoipa::path(
    tag = "imports",
    operation_id = "get_import",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Import id")),
    responses(
        (status = 200, body = ImportResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/imports/{id}")]
pub async fn get_import(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<uuid::Uuid>,
) -> Result<web::Json<ImportResponse>, AppError> {
    user.require(&access::GET_IMPORT)?;
    let id = Id(path.into_inner());
    let r = db::run(&state.pool, move |conn| jobs::find(conn, id)).await?;
    Ok(web::Json(r))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RejectionsQuery {
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// The rows an import refused: line, field, value and reason, in file order.
#[utoipa::path(
    tag = "imports",
    operation_id = "list_import_rejections",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Import id"), RejectionsQuery),
    responses(
        (status = 200, body = Page<Rejection>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/imports/{id}/rejections")]
pub async fn list_import_rejections(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<uuid::Uuid>,
    query: QueryParams<RejectionsQuery>,
) -> Result<web::Json<Page<Rejection>>, AppError> {
    user.require(&access::LIST_IMPORT_REJECTIONS)?;
    let id = Id(path.into_inner());
    let q = query.into_inner();
    let w = window(q.limit, q.offset)?;
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let (items, total) = db::run(&state.pool, move |conn| {
        jobs::find(conn, id)?;
        // Refused legacy rows carry names and documents as typed.
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(
                AuditAction::ImportRejections,
                "import",
                Some(id.to_string()),
            ),
        )?;
        jobs::rejections(conn, id, w)
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, w)))
}

/// The live database's data quality: missing sex, implausible dates and
/// ages, countries outside the consulate's jurisdiction, documents with
/// conflicting sex or birth date, suspected duplicates, unmapped legacy
/// labels, and outlier consulate-months (modified z-score above 3.5).
#[utoipa::path(
    tag = "imports",
    operation_id = "get_data_quality",
    security(("bearer" = [])),
    responses(
        (status = 200, body = LiveQuality),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/data-quality")]
pub async fn get_data_quality(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<web::Json<LiveQuality>, AppError> {
    user.require(&access::GET_DATA_QUALITY)?;
    let today = chrono::Utc::now().date_naive();
    let (meta, actor) = (RequestMeta::of(&req), user.actor());
    let q = db::run(&state.pool, move |conn| {
        audit::record_alone(
            conn,
            Some(&actor),
            &meta,
            Event::new(AuditAction::DataQualityRead, "data_quality", None),
        )?;
        quality::live(conn, today)
    })
    .await?;
    Ok(web::Json(q))
}
