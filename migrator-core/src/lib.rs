//! postgres-migrator's library: everything that talks to PostgreSQL or decides anything.
//!
//! See docs/ARCHITECTURE.md for the code map and the invariants.

pub mod backup;
pub mod catalog;
pub mod config;
pub mod ddl;
pub mod destination;
pub mod findings;
pub mod limiter;
pub mod naming;
pub mod orchestrator;
pub mod pg;
pub mod phase;
pub mod phases;
pub mod sequences;
pub mod source;
pub mod status;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod verify;
pub mod walsender;
