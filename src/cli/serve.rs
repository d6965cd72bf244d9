//! `mapce serve`: the HTTP server, and its graceful stop on SIGTERM or
//! Ctrl-C (a second signal stops at once).

use super::*;

pub(super) fn serve(settings: Settings) -> anyhow::Result<()> {
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
        } else if db::bulk::indexes::restore(&mut conn)? > 0 {
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
pub(super) async fn shutdown_signal() -> &'static str {
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
pub(super) async fn first_signal<A, B>(a: A, b: B) -> &'static str
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
