//! Rules that span more than one table, shared by the API and the CLI.

pub mod access;
pub mod access_requests;
pub mod cases;
pub mod catalogue;
pub mod demo;
pub mod detention;
pub mod followup;
pub mod history;
pub mod indicators;
pub mod input;
pub mod journal;
pub mod ledger;
pub mod legacy;
pub mod oei05;
pub mod offices;
pub mod operations;
pub mod person_search;
pub mod persons;
pub mod registration;
pub mod repatriation;
pub mod setup;
pub mod signin;
pub mod support;
pub mod users;
pub mod vocabulary;
