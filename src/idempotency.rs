//! `Idempotency-Key` for creations: a retry with the same key and body gets
//! the first answer and creates nothing; the same key with another body is
//! 422; a retry while the first is still running is 409.
//!
//! The in-progress marker is committed on its own before the work starts;
//! the stored answer is written by [`Idempotency::complete`] *inside* the
//! work's own transaction, so a crash can never leave a committed record
//! without its stored answer (a retry would otherwise create it twice).
//! A marker left by a crashed request is taken over after a few seconds.
//! The marker is a lease: its `created_at` is the holder's token, and the
//! answer is only stored (so the work only commits) while the token is
//! still the marker's. A request that outlives its lease and was taken over
//! therefore rolls back instead of creating the record a second time.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::schema::idempotency_keys;
use crate::db::{self, DbConn, DbPool, Id, Ts};
use crate::domain::error_code::ErrorCode;
use crate::error::AppError;

pub const HEADER: &str = "Idempotency-Key";
/// Keys are kept at least this long.
pub const RETENTION_HOURS: i64 = 48;
/// An in-progress marker older than this belongs to a request that died
/// (or is so slow that a retry may take over: its own work then rolls back).
const ABANDONED_SECS: i64 = 5;

/// A request's key and the hash of what it asked.
#[derive(Debug, Clone)]
pub struct Idempotency {
    key: Option<String>,
    hash: String,
    /// The marker's `created_at` once this request holds it.
    lease: std::sync::Arc<std::sync::OnceLock<Ts>>,
}

impl Idempotency {
    /// Reads the header and hashes method, path and the parsed body.
    pub fn of<T: Serialize>(req: &HttpRequest, body: &T) -> Result<Self, AppError> {
        let key = match req.headers().get(HEADER) {
            None => None,
            Some(v) => {
                let k = v.to_str().unwrap_or("").trim().to_owned();
                if k.is_empty() || k.len() > 200 || !k.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(AppError::BadRequest {
                        code: ErrorCode::InvalidHeader,
                        detail: "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
                        errors: vec![crate::error::FieldError::new(
                            "header.Idempotency-Key",
                            "1 to 200 visible ASCII characters",
                        )],
                    });
                }
                Some(k)
            }
        };
        let mut h = Sha256::new();
        h.update(req.method().as_str().as_bytes());
        h.update(b" ");
        h.update(req.path().as_bytes());
        h.update(b"\n");
        h.update(serde_json::to_vec(body).unwrap_or_default());
        Ok(Idempotency {
            key,
            hash: hex::encode(h.finalize()),
            lease: Default::default(),
        })
    }

    /// Claims the key. `Some(response)` is the stored first answer to send
    /// back instead of doing the work again.
    pub async fn begin(&self, pool: &DbPool, user: Id) -> Result<Option<HttpResponse>, AppError> {
        let Some(key) = self.key.clone() else {
            return Ok(None);
        };
        let hash = self.hash.clone();
        let lease = Ts::now();
        let stored: Option<(i32, String)> = db::run(pool, move |conn| {
            db::write_tx::<_, AppError, _>(conn, |conn| {
                let found: Option<(String, i32, Option<String>, Ts)> = idempotency_keys::table
                    .find((user, key.clone()))
                    .select((
                        idempotency_keys::request_hash,
                        idempotency_keys::response_status,
                        idempotency_keys::response_body,
                        idempotency_keys::created_at,
                    ))
                    .first(conn)
                    .optional()?;
                match found {
                    Some((stored_hash, _, _, _)) if stored_hash != hash => Err(AppError::Validation {
                        detail: "this Idempotency-Key was used with a different request".into(),
                        errors: vec![crate::error::FieldError::new("header.Idempotency-Key", "already used for a different request")],
                    }),
                    Some((_, 0, _, created)) if (chrono::Utc::now() - created.0).num_seconds() < ABANDONED_SECS => {
                        Err(AppError::conflict(ErrorCode::RequestInProgress, None, "the first request with this Idempotency-Key is still running; retry shortly"))
                    }
                    Some((_, 0, _, created)) => {
                        // Taken over from a request that died (or is late:
                        // its answer can no longer be stored, see `complete`).
                        let taken = diesel::update(
                            idempotency_keys::table
                                .find((user, key.clone()))
                                .filter(idempotency_keys::response_status.eq(0))
                                .filter(idempotency_keys::created_at.eq(created)),
                        )
                        .set(idempotency_keys::created_at.eq(lease))
                        .execute(conn)?;
                        if taken == 0 {
                            return Err(AppError::conflict(ErrorCode::RequestInProgress, None, "the first request with this Idempotency-Key is still running; retry shortly"));
                        }
                        Ok(None)
                    }
                    Some((_, status, body, _)) => Ok(Some((status, body.unwrap_or_default()))),
                    None => {
                        diesel::delete(
                            idempotency_keys::table.filter(idempotency_keys::created_at.lt(Ts(chrono::Utc::now() - chrono::Duration::hours(RETENTION_HOURS)))),
                        )
                        .execute(conn)?;
                        diesel::insert_into(idempotency_keys::table)
                            .values((
                                idempotency_keys::user_id.eq(user),
                                idempotency_keys::idem_key.eq(&key),
                                idempotency_keys::request_hash.eq(&hash),
                                idempotency_keys::response_status.eq(0),
                                idempotency_keys::created_at.eq(lease),
                            ))
                            .execute(conn)?;
                        Ok(None)
                    }
                }
            })
        })
        .await
        .map_err(|e| match e {
            // Two first attempts raced to insert the marker.
            AppError::Conflict { code: ErrorCode::AlreadyExists, .. } => {
                AppError::conflict(ErrorCode::RequestInProgress, None, "the first request with this Idempotency-Key is still running; retry shortly")
            }
            other => other,
        })?;
        if stored.is_none() {
            let _ = self.lease.set(lease);
        }
        Ok(stored.map(|(status, body)| {
            HttpResponse::build(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK))
                .content_type("application/json")
                .insert_header(("Idempotent-Replayed", "true"))
                .body(body)
        }))
    }

    /// Stores the answer, inside the transaction that did the work.
    pub fn complete<T: Serialize>(
        &self,
        conn: &mut DbConn,
        user: Id,
        status: StatusCode,
        body: &T,
    ) -> Result<(), AppError> {
        let Some(key) = &self.key else { return Ok(()) };
        let Some(lease) = self.lease.get() else {
            return Err(AppError::internal(anyhow::anyhow!(
                "Idempotency::complete without a successful begin"
            )));
        };
        let stored = diesel::update(
            idempotency_keys::table
                .find((user, key.clone()))
                .filter(idempotency_keys::response_status.eq(0))
                .filter(idempotency_keys::created_at.eq(*lease)),
        )
        .set((
            idempotency_keys::response_status.eq(i32::from(status.as_u16())),
            idempotency_keys::response_body
                .eq(serde_json::to_string(body).map_err(AppError::internal)?),
        ))
        .execute(conn)?;
        if stored == 0 {
            // a retry took the key over while this request ran: its work
            // counts, this one's rolls back with the transaction
            return Err(AppError::conflict(
                ErrorCode::RequestInProgress,
                None,
                "a retry with this Idempotency-Key took over; this attempt was rolled back",
            ));
        }
        Ok(())
    }

    /// Releases the key after the work failed, so a corrected retry can run.
    pub async fn abandon(&self, pool: &DbPool, user: Id) {
        let Some(key) = self.key.clone() else { return };
        let Some(lease) = self.lease.get().copied() else {
            return;
        };
        let _ = db::run(pool, move |conn| {
            diesel::delete(
                idempotency_keys::table
                    .find((user, key))
                    .filter(idempotency_keys::response_status.eq(0))
                    .filter(idempotency_keys::created_at.eq(lease)),
            )
            .execute(conn)?;
            Ok(())
        })
        .await;
    }
}
