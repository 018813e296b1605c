//! Queries that read catalogs into plain structs. No decisions here.

pub mod model;
pub mod objects;
pub mod roles;
pub mod schema;
