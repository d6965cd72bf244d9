//! The API test binary: every test runs on a fresh database of the run's
//! backend (SQLite, or PostgreSQL when TEST_DATABASE_URL is set).

mod access;
mod architecture;
mod audit;
mod auth;
mod cases;
mod catalogue;
mod demo;
mod detention;
mod errors;
mod faults;
mod health;
mod helpers;
mod hostile;
mod indicators;
mod leaks;
mod ledger;
mod legacy;
mod openapi;
mod persons;
mod reference;
mod schema;
mod support;
mod users;
mod vocabulary;
