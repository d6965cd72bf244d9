//! Command-line entry: `serve` (the default), `migrate`, `openapi`.

use std::path::PathBuf;
use std::process::ExitCode;

use actix_web::HttpServer;
use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Settings};
use crate::db::{self, pool::build_pool};
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

/// Parses arguments, loads `.env`, runs the command, maps failures to exit
/// codes: 2 for bad configuration, 1 for anything else.
pub fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi { output, check } = &command {
        return write_openapi(output, *check);
    }
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
    let result = match command {
        Command::Serve => serve(settings),
        Command::Migrate => migrate(&settings),
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
    let applied = db::migrate(&mut conn)?;
    tracing::info!(database = %settings.database_url, applied = applied.len(), "migrations applied");
    for name in applied {
        tracing::info!(migration = %name, "applied");
    }
    Ok(())
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    {
        let mut conn = settings
            .database_url
            .connect()
            .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", settings.database_url))?;
        if settings.auto_migrate {
            let applied = db::migrate(&mut conn)?;
            if !applied.is_empty() {
                tracing::info!(applied = applied.len(), "migrations applied");
            }
        } else if db::has_pending_migrations(&mut conn)? {
            tracing::warn!(
                "migrations are pending and MAPCE_AUTO_MIGRATE=false: run `mapce migrate`"
            );
        }
    }
    let pool = build_pool(&settings.database_url, &settings.pool);
    let state = AppState {
        pool,
        backend: settings.database_url.backend(),
    };

    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || app(state.clone()))
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
