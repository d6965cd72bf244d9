//! The write recipe as handlers use it ([`crate::services::journal`] holds
//! the transaction's order): the service's work and the representation it
//! answers with, in one transaction with its timeline events and audit row;
//! for creations that accept `Idempotency-Key`, a retry gets the stored
//! answer, the answer is stored inside the same transaction, and the key is
//! released when the work fails.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::audit::{Actor, RequestMeta};
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::idempotency::Idempotency;
use crate::services::journal::{self, Journal};
use crate::AppState;

/// A write's answer: done now, or the stored answer of an earlier attempt.
pub enum Written<T> {
    Done(T),
    Replayed(HttpResponse),
}

/// Runs a write (no idempotency key): `work` does the service's write and
/// shapes the answer.
pub async fn write<T, W>(
    state: &AppState,
    actor: Actor,
    meta: RequestMeta,
    work: W,
) -> Result<T, AppError>
where
    T: Send + 'static,
    W: FnOnce(&mut DbConn, &mut Journal) -> Result<T, AppError> + Send + 'static,
{
    db::run(&state.pool, move |conn| {
        journal::commit(conn, Some(&actor), &meta, work, |_, _| Ok(()))
    })
    .await
}

/// Runs a creation that accepts `Idempotency-Key`; `status` is the answer's
/// status, stored with it for retries.
pub async fn write_once<T, W>(
    state: &AppState,
    actor: Actor,
    meta: RequestMeta,
    idem: Idempotency,
    status: StatusCode,
    work: W,
) -> Result<Written<T>, AppError>
where
    T: Serialize + Send + 'static,
    W: FnOnce(&mut DbConn, &mut Journal) -> Result<T, AppError> + Send + 'static,
{
    let user = actor.user_id;
    if let Some(replay) = idem.begin(&state.pool, user).await? {
        return Ok(Written::Replayed(replay));
    }
    let sealing = idem.clone();
    let result = db::run(&state.pool, move |conn| {
        journal::commit(conn, Some(&actor), &meta, work, |conn, answer| {
            sealing.complete(conn, user, status, answer)
        })
    })
    .await;
    match result {
        Ok(answer) => Ok(Written::Done(answer)),
        Err(e) => {
            idem.abandon(&state.pool, user).await;
            Err(e)
        }
    }
}
