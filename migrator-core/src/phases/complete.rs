//! Mark complete, after the operator has cut over: a final sequence sync, then the replication is
//! taken apart in an order that a crash at any point can resume, and whose end state (the
//! completion marker) is only reached once nothing of the tool's is left on the source.
//!
//! The steps ([`Step`]), each idempotent and tolerant of a concurrent run doing the same:
//!
//! 1. `Mark`: `COMMENT ON SUBSCRIPTION ... IS 'postgres-migrator: completing'`. From here on the
//!    reconcile loop knows this is the tool's own completion (phase Completing) and finishes it
//!    by itself on every tick; a disabled subscription without the comment is someone's hand.
//! 2. `Disable`: `ALTER SUBSCRIPTION ... DISABLE`, so the source's WAL sender lets the slot go.
//! 3. `DropSlot`: `pg_drop_replication_slot` on the source, once the slot is inactive. **Point of
//!    no return**: before it, enabling the subscription again resumes replication where it
//!    stopped; after it, changes on the source no longer reach the destination.
//! 4. `DropPublication`: `DROP PUBLICATION IF EXISTS` on the source.
//! 5. `Detach`: `ALTER SUBSCRIPTION ... SET (slot_name = NONE)`. A disabled subscription without
//!    a slot, while the source has neither our slot nor our publication, is the completed
//!    marker ([`crate::phase::is_completed`]); the subscription stays as that marker.
//!
//! Detaching last is what DROP SUBSCRIPTION does in spirit (the remote slot goes first, or
//! nothing does): a database never counts as completed while its slot still holds WAL on the
//! source.

use crate::pg::{PgError, Session};

use super::{MappingContext, q};
use crate::catalog::subscription;
use crate::ddl::quote::{ident, literal};
use crate::naming::ReplicationNames;
use crate::sequences;

pub use crate::naming::COMPLETING_MARKER;

/// One step of completing a database, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The final sequence sync (the destination ahead of every value the source handed out).
    Sequences,
    /// The completion marker on the subscription.
    Mark,
    /// The subscription disabled.
    Disable,
    /// The slot dropped on the source (point of no return).
    DropSlot,
    /// The publication dropped on the source.
    DropPublication,
    /// The subscription detached from its (dropped) slot: completed.
    Detach,
}

impl Step {
    /// Every step, in the order they run.
    pub const ALL: [Step; 6] = [
        Step::Sequences,
        Step::Mark,
        Step::Disable,
        Step::DropSlot,
        Step::DropPublication,
        Step::Detach,
    ];
}

/// Completes one database. `src` and `dst` are connected to the source and destination copies
/// of `db`.
pub async fn complete_database(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    src: &Session,
    dst: &Session,
) -> Result<(), PgError> {
    run_steps(ctx, db, names, src, dst, &Step::ALL).await
}

/// Runs `steps` of the completion of `db` in order (the whole of it is [`Step::ALL`]; a prefix
/// leaves the state a process killed after that step would leave).
pub async fn run_steps(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    src: &Session,
    dst: &Session,
    steps: &[Step],
) -> Result<(), PgError> {
    let sub = ident(&names.subscription);
    for step in steps {
        match step {
            Step::Sequences => {
                sequences::sync(src, dst, sequences::Lead::margin(ctx.sequence_margin)).await?;
            }
            Step::Mark => {
                if subscription::read(dst, &names.subscription)
                    .await?
                    .is_some()
                {
                    dst.execute(
                        &format!(
                            "COMMENT ON SUBSCRIPTION {sub} IS {}",
                            literal(COMPLETING_MARKER)
                        ),
                        &[],
                    )
                    .await
                    .map_err(q(dst.target(), "marking the subscription as completing"))?;
                }
            }
            Step::Disable => {
                if subscription::read(dst, &names.subscription)
                    .await?
                    .is_some_and(|s| s.enabled)
                {
                    dst.batch_execute(&format!("ALTER SUBSCRIPTION {sub} DISABLE"))
                        .await
                        .map_err(q(dst.target(), "disabling the subscription"))?;
                }
            }
            Step::DropSlot => drop_slot(ctx, db, names, src).await?,
            Step::DropPublication => {
                src.batch_execute(&format!(
                    "DROP PUBLICATION IF EXISTS {}",
                    ident(&names.publication)
                ))
                .await
                .map_err(q(src.target(), "dropping the publication"))?;
            }
            Step::Detach => {
                if subscription::read(dst, &names.subscription)
                    .await?
                    .is_some_and(|s| s.has_slot)
                {
                    dst.batch_execute(&format!("ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)"))
                        .await
                        .map_err(q(dst.target(), "detaching the subscription from its slot"))?;
                }
            }
        }
    }
    Ok(())
}

/// Drops the slot once the WAL sender has let go of it.
async fn drop_slot(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    src: &Session,
) -> Result<(), PgError> {
    if crate::source::drop_slot(src, &names.slot).await? {
        tracing::info!(mapping = %ctx.name, database = db, slot = %names.slot, "replication slot dropped");
    }
    Ok(())
}
