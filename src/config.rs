//! Settings from `MAPCE_*` environment variables (a `.env` file is read if
//! present), validated at start-up with one clear message per bad value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::{DatabaseUrl, PoolSettings};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: DatabaseUrl,
    /// A PostgreSQL streaming replica for histories, indicators and exports.
    pub read_database_url: Option<DatabaseUrl>,
    pub bind: SocketAddr,
    pub auto_migrate: bool,
    pub log_format: LogFormat,
    pub shutdown_timeout: Duration,
    pub workers: usize,
    pub pool: PoolSettings,
    /// `MAPCE_JWT_SECRET`, at least 32 bytes; when absent a key file in
    /// `data_dir` is used (generated once, mode 0600).
    pub jwt_secret: Option<String>,
    /// `MAPCE_AUDIT_KEY`, at least 32 bytes; when absent a key file in
    /// `data_dir` is used (generated once, mode 0600).
    pub audit_key: Option<String>,
    /// Exact document searches per consulate user and hour.
    pub lookup_limit: u32,
    /// `MAPCE_TRUSTED_PROXIES`: reverse proxies whose `X-Forwarded-For`
    /// names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub data_dir: PathBuf,
    pub auth_cache_ttl: Duration,
}

/// Exact document searches a consulate user may make per hour.
pub const DEFAULT_LOOKUP_LIMIT: u32 = 120;

/// One documented variable: name, default, meaning. The README lists these.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "MAPCE_DATABASE_URL",
        "sqlite://data/mapce.sqlite3",
        "postgres://… or sqlite://PATH; the folder of a SQLite file is created if missing",
    ),
    (
        "MAPCE_DATABASE_READ_URL",
        "(none)",
        "postgres://… of a streaming replica: histories, OEI.05, charts, exports and operational figures read there; writes and everything else stay on MAPCE_DATABASE_URL",
    ),
    (
        "MAPCE_BIND",
        "127.0.0.1:8080",
        "address and port to listen on",
    ),
    (
        "MAPCE_AUTO_MIGRATE",
        "true",
        "apply pending migrations and reference data when `serve` starts",
    ),
    (
        "MAPCE_LOG_FORMAT",
        "pretty",
        "`pretty` or `json`; the level comes from RUST_LOG (default info)",
    ),
    (
        "MAPCE_SHUTDOWN_TIMEOUT",
        "30",
        "seconds in-flight requests get to finish after SIGINT/SIGTERM",
    ),
    ("MAPCE_WORKERS", "number of CPUs", "HTTP worker threads"),
    ("MAPCE_DB_POOL_SIZE", "10", "maximum database connections"),
    (
        "MAPCE_DATA_DIR",
        "data",
        "folder for the generated JWT key file (and the default SQLite database)",
    ),
    (
        "MAPCE_JWT_SECRET",
        "generated into MAPCE_DATA_DIR/jwt-secret",
        "HS256 signing key, at least 32 bytes; set it in production so every instance shares it",
    ),
    (
        "MAPCE_AUDIT_KEY",
        "generated into MAPCE_DATA_DIR/audit-key",
        "HMAC key that authenticates audit rows and checkpoints, at least 32 bytes; keep it outside the database and its backups, the same on every instance",
    ),
    (
        "MAPCE_TRUSTED_PROXIES",
        "(none)",
        "comma-separated addresses of reverse proxies; from them the client is the nearest untrusted address in X-Forwarded-For (audit, throttling)",
    ),
    (
        "MAPCE_LOOKUP_LIMIT",
        "120",
        "exact document searches (`GET /persons?document=`) each officer or supervisor may make per hour, per instance; then 429",
    ),
    (
        "MAPCE_AUTH_CACHE_MS",
        "2000",
        "how long a live session is cached; revocations by another instance take effect within this time",
    ),
    (
        "MAPCE_ADMIN_PASSWORD",
        "random, printed once",
        "password of the `admin` user created when `serve` starts on a database without users",
    ),
    (
        "MAPCE_DB_TIMEOUT_MS",
        "1500",
        "how long a request waits for a database connection before answering 503",
    ),
];

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("`{raw}` is not a boolean (use true or false)")),
    }
}

fn parse_number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    raw: &str,
    min: T,
    max: T,
) -> Result<T, String> {
    let value: T = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a whole number"))?;
    if value < min || value > max {
        return Err(format!("{value} is out of range ({min} to {max})"));
    }
    Ok(value)
}

impl Settings {
    /// Reads and validates every variable; all problems are reported at once.
    pub fn from_env() -> Result<Settings, Vec<String>> {
        Self::from_lookup(var)
    }

    /// The same, from any lookup (tests use a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let mut check = |name: &str, result: Result<(), String>| {
            if let Err(reason) = result {
                errors.push(format!("{name}: {reason}"));
            }
        };

        let default_url = DatabaseUrl::Sqlite("data/mapce.sqlite3".into());
        let mut database_url = default_url.clone();
        if let Some(raw) = lookup("MAPCE_DATABASE_URL") {
            check(
                "MAPCE_DATABASE_URL",
                DatabaseUrl::parse(&raw).map(|u| database_url = u),
            );
        }

        let mut read_database_url = None;
        if let Some(raw) = lookup("MAPCE_DATABASE_READ_URL").filter(|r| !r.trim().is_empty()) {
            check(
                "MAPCE_DATABASE_READ_URL",
                DatabaseUrl::parse(&raw).and_then(|u| match (&u, &database_url) {
                    (DatabaseUrl::Postgres(_), DatabaseUrl::Postgres(_)) => {
                        read_database_url = Some(u);
                        Ok(())
                    }
                    _ => Err("a read replica needs PostgreSQL for both URLs".into()),
                }),
            );
        }

        let mut bind: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
        if let Some(raw) = lookup("MAPCE_BIND") {
            check(
                "MAPCE_BIND",
                raw.parse()
                    .map(|a| bind = a)
                    .map_err(|_| format!("`{raw}` is not an address:port such as 127.0.0.1:8080")),
            );
        }

        let mut auto_migrate = true;
        if let Some(raw) = lookup("MAPCE_AUTO_MIGRATE") {
            check(
                "MAPCE_AUTO_MIGRATE",
                parse_bool(&raw).map(|b| auto_migrate = b),
            );
        }

        let mut log_format = LogFormat::Pretty;
        if let Some(raw) = lookup("MAPCE_LOG_FORMAT") {
            check(
                "MAPCE_LOG_FORMAT",
                match raw.to_ascii_lowercase().as_str() {
                    "pretty" | "text" => Ok(()),
                    "json" => {
                        log_format = LogFormat::Json;
                        Ok(())
                    }
                    _ => Err(format!("`{raw}` is neither pretty nor json")),
                },
            );
        }

        let mut shutdown_secs = 30u64;
        if let Some(raw) = lookup("MAPCE_SHUTDOWN_TIMEOUT") {
            check(
                "MAPCE_SHUTDOWN_TIMEOUT",
                parse_number(&raw, 0u64, 3600).map(|v| shutdown_secs = v),
            );
        }

        let mut workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        if let Some(raw) = lookup("MAPCE_WORKERS") {
            check(
                "MAPCE_WORKERS",
                parse_number(&raw, 1usize, 256).map(|v| workers = v),
            );
        }

        let mut pool = PoolSettings::default();
        if let Some(raw) = lookup("MAPCE_DB_POOL_SIZE") {
            check(
                "MAPCE_DB_POOL_SIZE",
                parse_number(&raw, 1u32, 512).map(|v| pool.max_size = v),
            );
        }
        if let Some(raw) = lookup("MAPCE_DB_TIMEOUT_MS") {
            check(
                "MAPCE_DB_TIMEOUT_MS",
                parse_number(&raw, 50u64, 60_000)
                    .map(|v| pool.checkout_timeout = Duration::from_millis(v)),
            );
        }

        // A key given in the environment must be long enough.
        let mut key = |name: &str| -> Option<String> {
            let raw = lookup(name)?;
            if raw.len() >= crate::auth::jwt::MIN_SECRET_BYTES {
                return Some(raw);
            }
            check(
                name,
                Err(format!(
                    "is {} bytes; it must be at least {} (e.g. `openssl rand -hex 32`)",
                    raw.len(),
                    crate::auth::jwt::MIN_SECRET_BYTES
                )),
            );
            None
        };
        let jwt_secret = key("MAPCE_JWT_SECRET");
        let audit_key = key("MAPCE_AUDIT_KEY");
        let mut lookup_limit = DEFAULT_LOOKUP_LIMIT;
        if let Some(raw) = lookup("MAPCE_LOOKUP_LIMIT") {
            check(
                "MAPCE_LOOKUP_LIMIT",
                parse_number(&raw, 1u32, 100_000).map(|v| lookup_limit = v),
            );
        }
        let mut trusted_proxies = Vec::new();
        if let Some(raw) = lookup("MAPCE_TRUSTED_PROXIES") {
            let parsed: Result<Vec<std::net::IpAddr>, _> = raw
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.parse::<std::net::IpAddr>().map_err(|_| a.to_owned()))
                .collect();
            check(
                "MAPCE_TRUSTED_PROXIES",
                parsed
                    .map(|p| trusted_proxies = p)
                    .map_err(|a| format!("`{a}` is not an IP address")),
            );
        }
        let data_dir = PathBuf::from(lookup("MAPCE_DATA_DIR").unwrap_or_else(|| "data".to_owned()));

        let mut auth_cache_ttl = Duration::from_millis(2000);
        if let Some(raw) = lookup("MAPCE_AUTH_CACHE_MS") {
            check(
                "MAPCE_AUTH_CACHE_MS",
                parse_number(&raw, 0u64, 60_000).map(|v| auth_cache_ttl = Duration::from_millis(v)),
            );
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Settings {
            database_url,
            read_database_url,
            bind,
            auto_migrate,
            log_format,
            shutdown_timeout: Duration::from_secs(shutdown_secs),
            workers,
            pool,
            jwt_secret,
            audit_key,
            lookup_limit,
            trusted_proxies,
            data_dir,
            auth_cache_ttl,
        })
    }

    /// The JWT signing key: `MAPCE_JWT_SECRET`, or the key file in the data
    /// folder, generated on first use with mode 0600. A short key is refused.
    pub fn jwt_keys(&self) -> anyhow::Result<crate::auth::jwt::JwtKeys> {
        let secret: Vec<u8> = match &self.jwt_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => load_or_create_key_file(&self.data_dir.join("jwt-secret"))?,
        };
        crate::auth::jwt::JwtKeys::new(&secret).map_err(|e| anyhow::anyhow!(e))
    }

    /// The audit key: `MAPCE_AUDIT_KEY`, or the key file in the data folder,
    /// generated on first use with mode 0600.
    pub fn audit_key(&self) -> anyhow::Result<Vec<u8>> {
        match &self.audit_key {
            Some(s) => Ok(s.as_bytes().to_vec()),
            None => load_or_create_key_file(&self.data_dir.join("audit-key")),
        }
    }
}

fn load_or_create_key_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let key = text.trim().as_bytes().to_vec();
        if key.len() < crate::auth::jwt::MIN_SECRET_BYTES {
            anyhow::bail!(
                "{} holds a key shorter than {} bytes",
                path.display(),
                crate::auth::jwt::MIN_SECRET_BYTES
            );
        }
        return Ok(key);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut bytes = [0u8; 48];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let key = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, key.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a key file");
    Ok(key.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, Vec<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn readme_documents_every_variable() {
        let readme = include_str!("../README.md");
        for (name, default, _) in VARIABLES {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{name}`")))
                .unwrap_or_else(|| panic!("README has no row for {name}"));
            assert!(
                row.contains(default),
                "README row for {name} lacks its default {default}"
            );
        }
    }

    #[test]
    fn a_read_replica_needs_postgresql_on_both_sides() {
        let ok = settings(&[
            ("MAPCE_DATABASE_URL", "postgres://u@primary/mapce"),
            ("MAPCE_DATABASE_READ_URL", "postgres://u@replica/mapce"),
        ])
        .expect("valid");
        assert_eq!(
            ok.read_database_url,
            Some(DatabaseUrl::Postgres("postgres://u@replica/mapce".into()))
        );
        let errors = settings(&[("MAPCE_DATABASE_READ_URL", "postgres://u@replica/mapce")])
            .expect_err("SQLite primary");
        assert!(
            errors[0].starts_with("MAPCE_DATABASE_READ_URL"),
            "{errors:?}"
        );
        assert_eq!(settings(&[]).expect("defaults").read_database_url, None);
    }

    #[test]
    fn defaults_make_a_fresh_checkout_work() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(
            s.database_url,
            DatabaseUrl::Sqlite("data/mapce.sqlite3".into())
        );
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert!(s.auto_migrate);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(s.log_format, LogFormat::Pretty);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_name() {
        let errors = settings(&[
            ("MAPCE_BIND", "nowhere"),
            ("MAPCE_AUTO_MIGRATE", "maybe"),
            ("MAPCE_SHUTDOWN_TIMEOUT", "-1"),
            ("MAPCE_DATABASE_URL", "host=db dbname=mapce"),
            ("MAPCE_LOG_FORMAT", "xml"),
        ])
        .expect_err("invalid");
        assert_eq!(errors.len(), 5, "{errors:?}");
        for name in [
            "MAPCE_BIND",
            "MAPCE_AUTO_MIGRATE",
            "MAPCE_SHUTDOWN_TIMEOUT",
            "MAPCE_DATABASE_URL",
            "MAPCE_LOG_FORMAT",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(name)),
                "{name} missing from {errors:?}"
            );
        }
    }
}
