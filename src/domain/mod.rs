//! Domain types and rules with no HTTP or database in them.

pub mod case;
pub mod catalogue;
pub mod money;
pub mod person;
pub mod reference;
pub mod role;
pub mod support;
pub mod text;
