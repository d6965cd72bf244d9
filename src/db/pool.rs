//! The connection pool: r2d2 over our own manager, so the backend follows the
//! URL scheme and a checkout never waits longer than the configured timeout.

use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;

use super::{DatabaseUrl, DbConn};

pub type DbPool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Opens connections for the pool from a [`DatabaseUrl`].
#[derive(Debug)]
pub struct Manager {
    url: DatabaseUrl,
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = ManagerError;

    fn connect(&self) -> Result<DbConn, ManagerError> {
        Ok(self.url.connect()?)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ManagerError> {
        Ok(conn.ping()?)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: u32,
    /// How long a request waits for a connection before it gets a 503.
    pub checkout_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: 10,
            checkout_timeout: Duration::from_millis(1500),
        }
    }
}

/// Logs pool connection failures once each through tracing, without the URL.
#[derive(Debug)]
struct TracingErrorHandler;

impl r2d2::HandleError<ManagerError> for TracingErrorHandler {
    fn handle_error(&self, error: ManagerError) {
        tracing::warn!(error = %error, "database connection failed");
    }
}

/// Builds the pool without connecting: the server can start and answer 503
/// while the database is down, and recovers when it returns. Connections
/// are checked on checkout, so ones broken by a database restart are
/// replaced instead of handed out.
pub fn build_pool(url: &DatabaseUrl, settings: &PoolSettings) -> DbPool {
    // SQLite allows one writer at a time; a large pool only adds lock waits.
    r2d2::Pool::builder()
        .max_size(settings.max_size.max(1))
        .min_idle(Some(1))
        .connection_timeout(settings.checkout_timeout)
        .test_on_check_out(true)
        .error_handler(Box::new(TracingErrorHandler))
        .build_unchecked(Manager { url: url.clone() })
}
