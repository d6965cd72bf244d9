//! Domain types and rules with no HTTP or database in them.

// First: its `vocabulary!` macro serves the modules after it.
#[macro_use]
pub mod support;

pub mod access;
pub mod case;
pub mod catalogue;
pub mod money;
pub mod person;
pub mod reference;
pub mod role;
pub mod text;
pub mod vocabulary;
