//! The bulk fast paths, in one place: what a large load (the legacy import,
//! demo data) and the OEI.05 count use that ordinary requests do not.
//!
//! - [`raw_sqlite`]: a read-only cursor straight on a SQLite file, for the
//!   OEI.05 scan of hundreds of thousands of attentions;
//! - [`raw_insert`]: prepared multi-row inserts reused across batches on a
//!   SQLite connection's own handle;
//! - [`indexes`]: secondary indexes set aside during a large load and
//!   rebuilt once after;
//! - [`checked_load`]: foreign keys checked per batch by one anti-join per
//!   key instead of per row by the database;
//! - [`columns`]: the one column list of each table these paths write, in
//!   the order their values are bound.
//!
//! Each is a measured gain on a goal that was missed without it; the
//! figures are in `docs/performance.md`. On PostgreSQL, `COPY` is the
//! `bulk_insert!` macro of [`crate::db`].

pub mod checked_load;
pub mod columns;
pub mod indexes;
pub mod raw_insert;
pub mod raw_sqlite;
