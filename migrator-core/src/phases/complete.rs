//! Mark complete, after the operator has cut over: a final sequence sync, then the subscription
//! is disabled and detached from its slot (it stays, disabled, as the marker that this database
//! is completed), and the slot and publication are dropped on the source so it keeps no more WAL
//! for the tool.
//!
//! Point of no return: dropping the slot. Everything before it can be undone by enabling the
//! subscription again; after it, changes on the source no longer reach the destination. Every
//! step looks first and tolerates a concurrent run doing the same step, so `complete` is safe to
//! run twice or at the same time from two places.

use std::time::Duration;

use tokio_postgres::Client;

use super::{MappingContext, q, sequences};
use crate::ddl::quote::ident;
use crate::naming::ReplicationNames;
use crate::pg::PgError;

/// How long to wait for the source's WAL sender to let go of the slot after the subscription is
/// disabled.
const SLOT_RELEASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Completes one database. `src` and `dst` are connected to the source and destination copies
/// of `db`.
pub async fn complete_database(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    src: &Client,
    dst: &Client,
) -> Result<(), PgError> {
    let st = format!("{} database {db:?}", ctx.source.describe());
    let dt = format!("{} database {db:?}", ctx.destination.describe());

    sequences::sync(src, &st, dst, &dt, ctx.sequence_margin).await?;

    let subscription = dst
        .query_opt(
            "SELECT subenabled, subslotname IS NOT NULL FROM pg_subscription WHERE subname = $1",
            &[&names.subscription],
        )
        .await
        .map_err(q(&dt, "looking for the subscription"))?;
    if let Some(row) = subscription {
        let (enabled, has_slot): (bool, bool) = (row.get(0), row.get(1));
        if enabled {
            dst.batch_execute(&format!(
                "ALTER SUBSCRIPTION {} DISABLE",
                ident(&names.subscription)
            ))
            .await
            .map_err(q(&dt, "disabling the subscription"))?;
        }
        if has_slot {
            dst.batch_execute(&format!(
                "ALTER SUBSCRIPTION {} SET (slot_name = NONE)",
                ident(&names.subscription)
            ))
            .await
            .map_err(q(&dt, "detaching the subscription from its slot"))?;
        }
    }

    // Point of no return.
    let deadline = tokio::time::Instant::now() + SLOT_RELEASE_TIMEOUT;
    loop {
        let active: Option<bool> = src
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&names.slot],
            )
            .await
            .map_err(q(&st, "looking for the replication slot"))?
            .map(|r| r.get(0));
        match active {
            None => break,
            Some(false) => match src
                .execute("SELECT pg_drop_replication_slot($1)", &[&names.slot])
                .await
            {
                Ok(_) => {
                    tracing::info!(mapping = %ctx.name, database = db, slot = %names.slot, "replication slot dropped");
                    break;
                }
                // 42704: dropped meanwhile by a concurrent run; 55006: taken again, wait.
                Err(e) if e.code().is_some_and(|c| c.code() == "42704") => break,
                Err(e) if e.code().is_some_and(|c| c.code() == "55006") => {}
                Err(e) => return Err(PgError::query(&st, "dropping the replication slot", e)),
            },
            Some(true) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PgError::Query {
                target: st,
                context: format!("dropping the replication slot {}", names.slot),
                message: "the slot is still in use a minute after the subscription was disabled; is another subscriber using it?".into(),
                transient: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    src.batch_execute(&format!(
        "DROP PUBLICATION IF EXISTS {}",
        ident(&names.publication)
    ))
    .await
    .map_err(q(&st, "dropping the publication"))?;
    Ok(())
}
