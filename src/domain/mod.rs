//! Domain types and rules with no HTTP or database in them.

// First: its `vocabulary!`, `codes!` and `stored!` macros serve the
// modules after it.
#[macro_use]
pub mod stored;

pub mod access;
pub mod audit;
pub mod case;
pub mod catalogue;
pub mod error_code;
pub mod money;
pub mod person;
pub mod reference;
pub mod role;
pub mod support;
pub mod text;
pub mod timeline;
pub mod vocabulary;

pub use stored::{stored_json, Stored, UnknownStored};
