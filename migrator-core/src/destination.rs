//! Statements on a destination database that more than one phase runs: emptying the tables a
//! copy fills (the fast copy before it starts, the subscription's own copy after an
//! interrupted fast one), and building a deferred object (the fast copy builds them in
//! parallel on its sessions, the catch-up ticks one at a time).

use crate::pg::{PgError, Session, q};

use crate::catalog::model::QualifiedName;
use crate::ddl::DeferredObject;
use crate::ddl::quote::qualified;

/// Empties the destination's copies of the tables `roots` (whatever an interrupted copy left).
pub async fn truncate(dst: &Session, mut roots: Vec<&QualifiedName>) -> Result<(), PgError> {
    roots.sort();
    roots.dedup();
    if roots.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = roots.into_iter().map(qualified).collect();
    dst.batch_execute(&format!("TRUNCATE {}", list.join(", ")))
        .await
        .map_err(q(
            dst.target(),
            "emptying the destination tables before the copy",
        ))
}

/// Runs a deferred object's statements. A NOT VALID foreign key left by a crash is validated,
/// not added again.
pub async fn build(dst: &Session, object: &DeferredObject) -> Result<Built, PgError> {
    for (i, sql) in object.statements.iter().enumerate() {
        match dst.batch_execute(sql).await {
            Ok(()) => {}
            // 40P01 deadlock_detected: a foreign key locks both of its tables while the apply
            // worker writes to them in its own order; one of the two is cancelled. Nothing is
            // wrong, so try again next tick instead of reporting an error.
            Err(e) if e.code().is_some_and(|c| c.code() == "40P01") => {
                return Ok(Built::Postponed);
            }
            // 42710 duplicate_object / 42P07 duplicate_table: an earlier attempt got this far.
            Err(e)
                if i == 0
                    && object.statements.len() > 1
                    && e.code()
                        .is_some_and(|c| c.code() == "42710" || c.code() == "42P07") => {}
            Err(e) => {
                return Err(PgError::query(
                    dst.target(),
                    format!("building {} on {}", object.name, object.table),
                    e,
                ));
            }
        }
    }
    Ok(Built::Done)
}

/// What [`build`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    Done,
    /// Lost a deadlock against the apply worker; built on a later tick.
    Postponed,
}
