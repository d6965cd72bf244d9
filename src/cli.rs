//! Command-line entry: `serve` (the default), `migrate`, `openapi`.

use std::path::PathBuf;
use std::process::ExitCode;

use actix_web::HttpServer;
use clap::{Parser, Subcommand};

use crate::auth::password::HashCost;
use crate::config::{LogFormat, Settings};
use crate::db::{self, pool::build_pool};
use crate::domain::role::Role;
use crate::services::users as users_service;
use crate::{app, openapi, telemetry, AppState};

#[derive(Debug, Parser)]
#[command(
    name = "mapce",
    version,
    about = "Consular protection and assistance case management"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default). Applies pending migrations first unless
    /// MAPCE_AUTO_MIGRATE=false.
    Serve,
    /// Apply pending migrations and load reference data, then exit.
    Migrate,
    /// Manage users from the command line (bootstrap, recovery).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Duplicate persons.
    Dedup {
        #[command(subcommand)]
        command: DedupCommand,
    },
    /// Write a synthetic, deterministic population (for demos and benchmarks).
    DemoData {
        /// Years of the national volume (1 ≈ 17 268 persons and 29 500
        /// attentions over one year); replaces --persons and --attentions.
        #[arg(long, conflicts_with_all = ["persons", "attentions"])]
        scale: Option<f64>,
        #[arg(long, default_value_t = 10_000)]
        persons: usize,
        #[arg(long, default_value_t = 20_000)]
        attentions: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// How many persons get `heavy_events` attentions each.
        #[arg(long, default_value_t = 0)]
        heavy: usize,
        #[arg(long, default_value_t = 200)]
        heavy_events: usize,
    },
    /// Import a legacy MAPCE extract (CSV or XLSX); one row is one attention.
    Import {
        /// The extract.
        file: PathBuf,
        /// A file of `campo = Encabezado` lines naming the extract's columns.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Read and resolve everything, write nothing, print the report.
        #[arg(long)]
        dry_run: bool,
        /// All rows or none: one transaction for the whole file.
        #[arg(long)]
        atomic: bool,
        /// Rows resolved and written together when not atomic.
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        /// On SQLite, rows per transaction (whole batches): fewer, bigger
        /// commits rewrite the name and document indexes' pages less often.
        #[arg(long, default_value_t = 40_000)]
        commit_rows: usize,
        /// Secondary indexes while writing: `defer` builds them after the
        /// rows (faster for big loads; readers go without them meanwhile),
        /// `keep` maintains them row by row, `auto` defers for files at least
        /// as big as what is stored.
        #[arg(long, default_value = "auto", value_parser = ["auto", "defer", "keep"])]
        indexes: String,
        /// Write the full report (JSON) here as well.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// The data-quality report of the live database (JSON).
    Quality,
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Write the OpenAPI document generated from the code.
    Openapi {
        /// Where to write it.
        #[arg(long, default_value = openapi::SPEC_PATH)]
        output: PathBuf,
        /// Do not write; exit 1 if the file differs from the code.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. The password comes from MAPCE_PASSWORD or a prompt.
    Create {
        #[arg(long)]
        username: String,
        /// officer, supervisor, hq_analyst, planner or admin.
        #[arg(long)]
        role: String,
        /// Consulate code or id (officer and supervisor only).
        #[arg(long)]
        consulate: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DedupCommand {
    /// Compare every person with their blocking-key neighbours and queue
    /// likely pairs that are not known yet (decided pairs never return).
    Scan,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and the rows' MACs; exit 1 naming the first
    /// altered or missing row.
    Verify {
        /// A file written by `mapce audit checkpoint`: also catch a log cut
        /// back below it or re-chained under it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Print the log's head signed with the audit key (one JSON line), to
    /// keep outside the database for `verify --checkpoint`.
    Checkpoint,
}

/// Parses arguments, loads `.env`, runs the command, maps failures to exit
/// codes: 2 for bad configuration, 1 for anything else.
pub fn main() -> ExitCode {
    crate::memory::tune_allocator();
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi { output, check } = &command {
        return write_openapi(output, *check);
    }
    crate::files::private_by_default();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("mapce: invalid configuration:");
            for e in errors {
                eprintln!("  - {e}");
            }
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    match settings.audit_key() {
        Ok(key) => {
            crate::audit::install_key(&key);
        }
        Err(e) => {
            eprintln!("mapce: the audit key: {e:#}");
            return ExitCode::from(2);
        }
    }
    let result = match command {
        Command::Serve => serve(settings),
        Command::Migrate => migrate(&settings),
        Command::Users {
            command:
                UsersCommand::Create {
                    username,
                    role,
                    consulate,
                    display_name,
                },
        } => create_user_cli(
            &settings,
            &username,
            &role,
            consulate.as_deref(),
            display_name.as_deref(),
        ),
        Command::Audit {
            command: AuditCommand::Verify { checkpoint },
        } => verify_audit(&settings, checkpoint.as_deref()),
        Command::Audit {
            command: AuditCommand::Checkpoint,
        } => audit_checkpoint(&settings),
        Command::Dedup {
            command: DedupCommand::Scan,
        } => dedup_scan(&settings),
        Command::DemoData {
            scale,
            persons,
            attentions,
            seed,
            heavy,
            heavy_events,
        } => demo_data(
            &settings,
            match scale {
                Some(scale) => crate::services::demo::Spec {
                    heavy,
                    heavy_events,
                    ..crate::services::demo::Spec::scale(seed, scale)
                },
                None => crate::services::demo::Spec {
                    seed,
                    persons,
                    attentions,
                    years: 10,
                    heavy,
                    heavy_events,
                },
            },
        ),
        Command::Import {
            file,
            mapping,
            dry_run,
            atomic,
            batch,
            commit_rows,
            indexes,
            report,
        } => import(
            &settings,
            &file,
            mapping.as_deref(),
            crate::services::legacy::Options {
                dry_run,
                atomic,
                batch_rows: batch.max(1),
                commit_rows,
                indexes: crate::services::legacy::IndexMode::parse(&indexes).unwrap_or_default(),
                ..Default::default()
            },
            report.as_deref(),
        ),
        Command::Quality => quality(&settings),
        Command::Openapi { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if settings_log_is_json() {
                tracing::error!(error = format!("{err:#}"), "mapce failed");
            } else {
                eprintln!("mapce: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn settings_log_is_json() -> bool {
    matches!(
        Settings::from_env().map(|s| s.log_format),
        Ok(LogFormat::Json)
    )
}

fn write_openapi(output: &PathBuf, check: bool) -> ExitCode {
    let json = openapi::spec_json();
    if check {
        return match std::fs::read_to_string(output) {
            Ok(existing) if existing == json => ExitCode::SUCCESS,
            _ => {
                eprintln!("{} is stale: run `mapce openapi`", output.display());
                ExitCode::FAILURE
            }
        };
    }
    if let Some(parent) = output.parent() {
        if !parent.as_os_str().is_empty() {
            if let Err(e) = std::fs::create_dir_all(parent) {
                eprintln!("mapce: cannot create {}: {e}", parent.display());
                return ExitCode::FAILURE;
            }
        }
    }
    match std::fs::write(output, json) {
        Ok(()) => {
            println!("wrote {}", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mapce: cannot write {}: {e}", output.display());
            ExitCode::FAILURE
        }
    }
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = settings
        .database_url
        .connect()
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", settings.database_url))?;
    let applied = crate::services::setup::migrate(&mut conn)?;
    tracing::info!(database = %settings.database_url, applied = applied.len(), "migrations applied");
    for name in applied {
        tracing::info!(migration = %name, "applied");
    }
    Ok(())
}

fn connect(settings: &Settings) -> anyhow::Result<db::DbConn> {
    settings
        .database_url
        .connect()
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", settings.database_url))
}

fn create_user_cli(
    settings: &Settings,
    username: &str,
    role: &str,
    consulate: Option<&str>,
    display_name: Option<&str>,
) -> anyhow::Result<()> {
    let role = Role::parse(role).ok_or_else(|| anyhow::anyhow!("unknown role `{role}`"))?;
    let password = match std::env::var("MAPCE_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => rpassword::prompt_password(format!("password for {username}: "))?,
    };
    let mut conn = connect(settings)?;
    let id = users_service::create(
        &mut conn,
        HashCost::PRODUCTION,
        users_service::NewAccount {
            username: username.to_owned(),
            display_name: display_name.unwrap_or(username).to_owned(),
            role,
            consulate: consulate.map(str::to_owned),
            password,
        },
        "user.create_cli",
    )
    .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    println!("created user {username} ({role}) with id {id}");
    Ok(())
}

/// A problem's detail and field reasons, for the terminal.
fn describe(error: &crate::error::AppError) -> String {
    let problem = error.problem();
    let mut text = problem.detail;
    for e in problem.errors {
        text.push_str(&format!("\n  {}: {}", e.field, e.reason));
    }
    text
}

fn demo_data(settings: &Settings, spec: crate::services::demo::Spec) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    crate::services::setup::migrate(&mut conn)?;
    let started = std::time::Instant::now();
    let report = crate::services::demo::generate(&mut conn, &spec)?;
    println!(
        "generated {} persons, {} cases, {} attentions, {} tasks, {} payments, {} timeline events in {:.1} s",
        report.persons,
        report.cases,
        report.attentions,
        report.tasks,
        report.payments,
        report.events,
        started.elapsed().as_secs_f64()
    );
    for id in report.heavy_persons {
        println!("heavy person {id}");
    }
    Ok(())
}

/// A progress bar on standard error, when it is a terminal.
struct Bar {
    started: std::time::Instant,
    last: std::time::Instant,
    tty: bool,
}

impl crate::services::legacy::Progress for Bar {
    fn update(&mut self, rows: i64, read: u64, total: u64) {
        use std::io::Write;
        if !self.tty || (self.last.elapsed().as_millis() < 200 && read < total) {
            return;
        }
        self.last = std::time::Instant::now();
        let share = if total == 0 {
            1.0
        } else {
            read as f64 / total as f64
        };
        let width = 30;
        let filled = ((share * width as f64) as usize).min(width);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r[{}{}] {:>3.0}%  {rows} rows  {:.0} rows/s ",
            "#".repeat(filled),
            " ".repeat(width - filled),
            share * 100.0,
            rows as f64 / secs
        );
        if read >= total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

fn import(
    settings: &Settings,
    file: &std::path::Path,
    mapping: Option<&std::path::Path>,
    mut opts: crate::services::legacy::Options,
    report_path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let mapping = match mapping {
        Some(p) => crate::services::legacy::read::Mapping::parse(&std::fs::read_to_string(p)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => Default::default(),
    };
    let mut conn = connect(settings)?;
    crate::services::setup::migrate(&mut conn)?;
    // a second connection writes batches while this one resolves the next
    let mut writer = connect(settings)?;
    for c in [&mut conn, &mut writer] {
        if let db::DbConn::Sqlite(c) = c {
            // These connections only import: the WAL is folded back less
            // often (the page cache is set by the import itself).
            use diesel::connection::SimpleConnection;
            c.batch_execute("PRAGMA wal_autocheckpoint = 10000;")?;
        }
    }
    opts.mapping = mapping;
    let dry_run = opts.dry_run;
    let mut bar = Bar {
        started: std::time::Instant::now(),
        last: std::time::Instant::now(),
        tty: std::io::stderr().is_terminal(),
    };
    let import_id = db::Id::new();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = match crate::services::legacy::run(
        &mut conn,
        Some(&mut writer),
        file,
        &name,
        import_id,
        None,
        opts,
        &mut bar,
    ) {
        Ok(r) => r,
        Err(e) => {
            if !dry_run {
                let _ = crate::services::legacy::mark_failed(&mut conn, import_id, &describe(&e));
            }
            anyhow::bail!("{}", describe(&e));
        }
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(p) = report_path {
        std::fs::write(p, &json)?;
    }
    println!("{json}");
    if dry_run {
        eprintln!("dry run: nothing was written");
    } else {
        eprintln!(
            "import {import_id}: {} rows imported, {} already imported, {} rejected",
            report.rows_imported, report.rows_already_imported, report.rows_rejected
        );
    }
    Ok(())
}

fn quality(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let q = crate::services::legacy::quality::live(&mut conn, chrono::Utc::now().date_naive())
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    println!("{}", serde_json::to_string_pretty(&q)?);
    Ok(())
}

fn dedup_scan(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let report = crate::services::persons::scan(&mut conn)
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    crate::audit::record_alone(
        &mut conn,
        None,
        &crate::audit::RequestMeta::default(),
        crate::audit::Event::new("duplicate.scan", "duplicate_pair", None).details(serde_json::json!({
            "persons": report.persons, "likely_pairs": report.likely_pairs, "queued": report.queued,
        })),
    )?;
    println!(
        "scanned {} persons: {} likely pairs, {} newly queued for review",
        report.persons, report.likely_pairs, report.queued
    );
    Ok(())
}

fn verify_audit(settings: &Settings, checkpoint: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context;
    let checkpoint: Option<crate::audit::Checkpoint> = match checkpoint {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(serde_json::from_str(text.trim()).with_context(|| {
                format!(
                    "{} is not a checkpoint written by `mapce audit checkpoint`",
                    path.display()
                )
            })?)
        }
        None => None,
    };
    let mut conn = connect(settings)?;
    match crate::audit::verify_against(&mut conn, checkpoint.as_ref())? {
        crate::audit::Verdict::Intact { rows } => {
            match &checkpoint {
                Some(cp) => println!(
                    "audit log intact: {rows} rows, hash chain and MACs verified, row {} as checkpointed at {}",
                    cp.seq, cp.at
                ),
                None => println!("audit log intact: {rows} rows, hash chain and MACs verified"),
            }
            Ok(())
        }
        crate::audit::Verdict::Broken { seq, reason } => {
            anyhow::bail!("audit log broken at row {seq}: {reason}")
        }
    }
}

fn audit_checkpoint(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let checkpoint = crate::audit::checkpoint(&mut conn)?;
    println!("{}", serde_json::to_string(&checkpoint)?);
    Ok(())
}

/// On a database without users, creates `admin` with MAPCE_ADMIN_PASSWORD or
/// a random password printed once to stderr.
fn bootstrap_admin(conn: &mut db::DbConn) -> anyhow::Result<()> {
    if crate::models::users::count_users(conn)? > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("MAPCE_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (users_service::random_password(), true),
    };
    users_service::create(
        conn,
        HashCost::PRODUCTION,
        users_service::NewAccount {
            username: "admin".into(),
            display_name: "Administrator".into(),
            role: Role::Admin,
            consulate: None,
            password: password.clone(),
        },
        "user.bootstrap",
    )
    .map_err(|e| anyhow::anyhow!("MAPCE_ADMIN_PASSWORD: {}", describe(&e)))?;
    if generated {
        eprintln!(
            "\n  created user `admin` with password: {password}\n  (shown once; log in and change it, and enrol a second factor)\n"
        );
    } else {
        tracing::info!("created user `admin` with MAPCE_ADMIN_PASSWORD");
    }
    Ok(())
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    use anyhow::Context;
    let jwt = settings.jwt_keys()?;
    // Folders and files from earlier runs, made before they were private.
    crate::files::private_dir(&settings.data_dir)
        .with_context(|| format!("making {} private", settings.data_dir.display()))?;
    if let db::DatabaseUrl::Sqlite(path) = &settings.database_url {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            crate::files::private_file(std::path::Path::new(&file))?;
        }
    }
    let uploads = settings.data_dir.join("uploads");
    crate::files::private_dir(&uploads)?;
    let swept = crate::files::sweep(&uploads)?;
    if swept > 0 {
        tracing::warn!(files = swept, "removed uploads left by an earlier run");
    }
    {
        let mut conn = settings
            .database_url
            .connect()
            .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", settings.database_url))?;
        if settings.auto_migrate {
            let applied = crate::services::setup::migrate(&mut conn)?;
            if !applied.is_empty() {
                tracing::info!(applied = applied.len(), "migrations applied");
            }
        } else if db::has_pending_migrations(&mut conn)? {
            anyhow::bail!(
                "migrations are pending and MAPCE_AUTO_MIGRATE=false: run `mapce migrate` first"
            );
        } else if db::bulk_indexes::restore(&mut conn)? > 0 {
            tracing::warn!("rebuilt indexes an interrupted import had set aside");
        }
        bootstrap_admin(&mut conn)?;
        let sealed = crate::services::users::seal_clear_totp_secrets(&mut conn)?;
        if sealed > 0 {
            tracing::info!(
                users = sealed,
                "TOTP secrets stored in clear are now sealed"
            );
        }
        let failed = crate::services::legacy::fail_interrupted_jobs(&mut conn)?;
        if failed > 0 {
            tracing::warn!(
                jobs = failed,
                "import jobs an earlier run left unfinished are marked failed"
            );
        }
    }
    let pool = build_pool(&settings.database_url, &settings.pool);
    let state = AppState::new(
        pool,
        settings.database_url.backend(),
        jwt,
        HashCost::PRODUCTION,
        settings.auth_cache_ttl,
    );
    let state = state
        .with_upload_dir(uploads)
        .with_lookup_limit(settings.lookup_limit)
        .with_trusted_proxies(settings.trusted_proxies.clone());
    let state = match &settings.read_database_url {
        Some(url) => {
            tracing::info!(replica = %url, "histories, indicators and exports read from the replica");
            state.with_read_pool(build_pool(url, &settings.pool))
        }
        None => state,
    };
    // The dummy hash used for unknown usernames, computed before the first login.
    state.passwords.warm_up();

    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            let app = app(state.clone());
            // building the routes and the spec freed megabytes on this thread
            crate::memory::release_freed();
            app
        })
        .workers(settings.workers)
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .disable_signals()
        .bind(settings.bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            let signal = shutdown_signal().await;
            tracing::info!(signal, "shutting down: finishing in-flight requests");
            handle.stop(true).await;
        });
        tracing::info!(
            address = %format!("http://{}", settings.bind),
            database = %settings.database_url,
            docs = %format!("http://{}/docs/", settings.bind),
            "listening"
        );
        server.await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Waits for SIGINT or SIGTERM. Both stop gracefully (actix's own handler
/// treats SIGINT as a forced stop, so we handle signals ourselves).
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use actix_web::rt::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => first_signal(int.recv(), term.recv()).await,
            _ => {
                let _ = actix_web::rt::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = actix_web::rt::signal::ctrl_c().await;
        "SIGINT"
    }
}

#[cfg(unix)]
async fn first_signal<A, B>(a: A, b: B) -> &'static str
where
    A: std::future::Future<Output = Option<()>>,
    B: std::future::Future<Output = Option<()>>,
{
    use futures_util::future::{select, Either};
    match select(Box::pin(a), Box::pin(b)).await {
        Either::Left(_) => "SIGINT",
        Either::Right(_) => "SIGTERM",
    }
}
