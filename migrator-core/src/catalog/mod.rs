//! Queries that read catalogs into plain structs. No decisions here.

pub mod deferred;
pub mod fingerprint;
pub mod model;
pub mod objects;
pub mod pooler;
pub mod published;
pub mod roles;
pub mod schema;
pub mod subscription;
