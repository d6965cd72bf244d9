//! Database rows and the queries that read and write them, one module per
//! aggregate. Rows never go straight to JSON: the API maps them to DTOs.

pub mod access;
pub mod bulk;
pub mod cases;
pub mod catalogue;
pub mod indicators;
pub mod persons;
pub mod reference;
pub mod seed;
pub mod support;
pub mod users;
pub mod vocabulary;
