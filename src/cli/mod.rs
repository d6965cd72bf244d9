//! Command-line entry: the commands and their arguments; `serve` (the
//! default) is in `serve`, administration in `admin`, data in `data`.

mod admin;
mod data;
mod serve;

use admin::*;
use data::*;
use serve::*;

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

fn connect(settings: &Settings) -> anyhow::Result<db::DbConn> {
    settings
        .database_url
        .connect()
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", settings.database_url))
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
