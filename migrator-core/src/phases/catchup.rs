//! Catch-up: how far the destination trails, in bytes and in time, and a heartbeat that keeps
//! the figure honest for quiet databases.
//!
//! Lag in bytes is the source's current WAL position minus the slot's confirmed_flush_lsn. A
//! database nobody writes to would see that grow with the WAL of busy neighbours, since its slot
//! only confirms positions it has decoded: the heartbeat (a non-transactional logical message,
//! a few bytes of WAL in this database) gives its decoder something to confirm. Lag in time is
//! PostgreSQL's own replay_lag of the subscription's WAL sender; it is NULL once the subscriber
//! is idle and caught up, which counts as zero.

use tokio_postgres::Client;

use super::q;
use crate::naming::ReplicationNames;
use crate::pg::PgError;
use crate::phase::Lag;
use crate::status::SlotStatus;

/// The slot and lag as seen from the source.
#[derive(Debug, Clone)]
pub struct Replication {
    pub slot: Option<SlotStatus>,
    pub lag: Option<Lag>,
}

/// Reads the slot, lag in bytes and lag in time (`src` connected to the source database).
pub async fn observe(
    src: &Client,
    src_target: &str,
    names: &ReplicationNames,
) -> Result<Replication, PgError> {
    let row = src
        .query_opt(
            "SELECT s.active, s.restart_lsn::text, s.confirmed_flush_lsn::text, \
               coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint, \
               pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint, \
               (SELECT extract(epoch FROM r.replay_lag)::float8 FROM pg_stat_replication r \
                 WHERE r.application_name = $2 ORDER BY r.backend_start DESC LIMIT 1), \
               EXISTS (SELECT 1 FROM pg_stat_replication r WHERE r.application_name = $2) \
             FROM pg_replication_slots s WHERE s.slot_name = $1",
            &[&names.slot, &names.subscription],
        )
        .await
        .map_err(q(src_target, "reading the replication slot"))?;
    let Some(row) = row else {
        return Ok(Replication {
            slot: None,
            lag: None,
        });
    };
    let slot = SlotStatus {
        name: names.slot.clone(),
        active: row.get(0),
        restart_lsn: row.get(1),
        confirmed_flush_lsn: row.get(2),
        retained_bytes: row.get::<_, i64>(3).max(0) as u64,
    };
    let lag_bytes: Option<i64> = row.get(4);
    let replay_lag: Option<f64> = row.get(5);
    let connected: bool = row.get(6);
    let lag = match (lag_bytes, connected) {
        (Some(bytes), true) => Some(Lag {
            bytes: bytes.max(0) as u64,
            seconds: replay_lag.unwrap_or(0.0).max(0.0),
        }),
        // No WAL sender: the subscriber is not connected, lag cannot be trusted.
        _ => None,
    };
    Ok(Replication {
        slot: Some(slot),
        lag,
    })
}

/// Writes a heartbeat into the source database's WAL (non-transactional, a few bytes).
pub async fn heartbeat(src: &Client, src_target: &str) -> Result<(), PgError> {
    src.execute(
        "SELECT pg_logical_emit_message(false, 'postgres-migrator', 'heartbeat')",
        &[],
    )
    .await
    .map_err(q(src_target, "writing the heartbeat"))?;
    Ok(())
}

/// Waits until every slot in `slots` has confirmed the source's WAL position as of the call
/// (`src` on any database of the source): everything written before is on the destination.
/// Returns false after `timeout`.
pub async fn wait_for_zero_lag(
    src: &Client,
    src_target: &str,
    slots: &[String],
    timeout: std::time::Duration,
) -> Result<bool, PgError> {
    let target: String = src
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(q(src_target, "reading the current WAL position"))?
        .get(0);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let behind: i64 = src
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = ANY($1) \
                   AND (confirmed_flush_lsn IS NULL OR confirmed_flush_lsn < $2::text::pg_lsn)",
                &[&slots, &target],
            )
            .await
            .map_err(q(src_target, "comparing slot positions"))?
            .get(0);
        if behind == 0 {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
