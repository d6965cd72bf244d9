//! Administration commands: migrations, the OpenAPI file, accounts
//! (created from the terminal, the first administrator) and the audit
//! chain's verification and checkpoints.

use super::*;
use crate::domain::audit::AuditAction;

pub(super) fn write_openapi(output: &PathBuf, check: bool) -> ExitCode {
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

pub(super) fn migrate(settings: &Settings) -> anyhow::Result<()> {
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

pub(super) fn create_user_cli(
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
        AuditAction::UserCreateCli,
    )
    .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    println!("created user {username} ({role}) with id {id}");
    Ok(())
}

pub(super) fn verify_audit(
    settings: &Settings,
    checkpoint: Option<&std::path::Path>,
) -> anyhow::Result<()> {
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

pub(super) fn audit_checkpoint(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let checkpoint = crate::audit::checkpoint(&mut conn)?;
    println!("{}", serde_json::to_string(&checkpoint)?);
    Ok(())
}

/// On a database without users, creates `admin` with MAPCE_ADMIN_PASSWORD or
/// a random password printed once to stderr.
pub(super) fn bootstrap_admin(conn: &mut db::DbConn) -> anyhow::Result<()> {
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
        AuditAction::UserBootstrap,
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
