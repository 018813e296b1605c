//! Catch-up: how far the destination trails, in bytes and in time, and a heartbeat that keeps
//! the figure honest for quiet databases.
//!
//! Lag in bytes is the source's current WAL position minus the slot's confirmed_flush_lsn. A
//! database nobody writes to would see that grow with the WAL of busy neighbours, since its slot
//! only confirms positions it has decoded: the heartbeat (a non-transactional logical message,
//! a few bytes of WAL in this database) gives its decoder something to confirm. Lag in time is
//! PostgreSQL's own replay_lag of the subscription's WAL sender; it is NULL once the subscriber
//! is idle and caught up, which counts as zero.

use crate::pg::{PgError, Session};

use super::q;
use crate::ddl::quote::ident;
use crate::findings::{Code, Finding};
use crate::naming::ReplicationNames;
use crate::phase::Lag;
use crate::status::SlotStatus;

pub mod trend;

pub use trend::{LagTrend, Positions};

/// The slot and lag as seen from the source.
#[derive(Debug, Clone)]
pub struct Replication {
    pub slot: Option<SlotStatus>,
    pub lag: Option<Lag>,
    /// The database's publication exists on the source.
    pub publication: bool,
    /// The source's WAL position and the slot's, while the subscriber is connected.
    pub positions: Option<Positions>,
}

/// Reads the slot, lag in bytes and lag in time (`src` connected to the source database).
pub async fn observe(src: &Session, names: &ReplicationNames) -> Result<Replication, PgError> {
    let row = src
        .query_opt(
            "SELECT s.active, s.restart_lsn::text, s.confirmed_flush_lsn::text, \
               coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint, \
               pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint, \
               (SELECT extract(epoch FROM r.replay_lag)::float8 FROM pg_stat_replication r \
                 WHERE r.application_name = $2 ORDER BY r.backend_start DESC LIMIT 1), \
               EXISTS (SELECT 1 FROM pg_stat_replication r WHERE r.application_name = $2), \
               s.wal_status, s.safe_wal_size::bigint, \
               pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, \
               pg_wal_lsn_diff(s.confirmed_flush_lsn, '0/0')::bigint \
             FROM pg_replication_slots s WHERE s.slot_name = $1",
            &[&names.slot, &names.subscription],
        )
        .await
        .map_err(q(src.target(), "reading the replication slot"))?;
    let publication: bool = src
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
            &[&names.publication],
        )
        .await
        .map_err(q(src.target(), "looking for the publication"))?
        .get(0);
    let Some(row) = row else {
        return Ok(Replication {
            slot: None,
            lag: None,
            publication,
            positions: None,
        });
    };
    let slot = SlotStatus {
        name: names.slot.clone(),
        active: row.get(0),
        restart_lsn: row.get(1),
        confirmed_flush_lsn: row.get(2),
        retained_bytes: row.get::<_, i64>(3).max(0) as u64,
        wal_status: row.get(7),
        safe_wal_bytes: row.get(8),
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
    let positions = match (row.get::<_, i64>(9), row.get::<_, Option<i64>>(10)) {
        (wal, Some(confirmed)) if lag.is_some() => Some(Positions {
            wal: wal.max(0) as u64,
            confirmed: confirmed.max(0) as u64,
        }),
        _ => None,
    };
    Ok(Replication {
        slot: Some(slot),
        lag,
        publication,
        positions,
    })
}

/// What the slot's WAL reservation says (pure): lost (the source removed WAL the destination still
/// needs: only a new copy helps), unreserved (the next checkpoint may lose it), or close to
/// `max_slot_wal_keep_size` (less than a quarter of it left, or less than 64 MB).
pub fn slot_findings(db: &str, names: &ReplicationNames, slot: &SlotStatus) -> Vec<Finding> {
    let mb = |bytes: i64| bytes.max(0) / (1024 * 1024);
    let name = &names.slot;
    match slot.wal_status.as_deref() {
        Some("lost") => vec![Finding::blocking(
            Code::SlotLost,
            format!(
                "the source invalidated the replication slot {name} of {db:?} \
                 (max_slot_wal_keep_size was exceeded): WAL the destination still needed is gone, \
                 so changes since then can no longer reach it"
            ),
            format!(
                "this database must be copied again. Raise max_slot_wal_keep_size on the source \
                 (or unset it: -1), then on the destination: ALTER SUBSCRIPTION {sub} DISABLE; \
                 ALTER SUBSCRIPTION {sub} SET (slot_name = NONE); DROP SUBSCRIPTION {sub}; and \
                 DROP DATABASE {dbq} (from another database); on the source: SELECT \
                 pg_drop_replication_slot('{name}'). The tool then creates the database and \
                 copies it again",
                sub = ident(&names.subscription),
                dbq = ident(db),
            ),
        )],
        Some("unreserved") => vec![Finding::warning(
            Code::SlotAtRisk,
            format!(
                "the replication slot {name} of {db:?} holds more WAL than max_slot_wal_keep_size \
                 allows: the source's next checkpoint may invalidate it (then the database must be \
                 copied again)"
            ),
            "raise max_slot_wal_keep_size on the source now (ALTER SYSTEM SET \
             max_slot_wal_keep_size = ...; SELECT pg_reload_conf()), and find why the destination \
             trails (the lag figures, apply findings)",
        )],
        _ => match slot.safe_wal_bytes {
            Some(safe) if safe < 64 * 1024 * 1024 || safe < slot.retained_bytes as i64 / 3 => {
                vec![Finding::warning(
                    Code::SlotNearLimit,
                    format!(
                        "the replication slot {name} of {db:?} holds {} MB of WAL and only {} MB \
                         more may be written before max_slot_wal_keep_size invalidates it",
                        slot.retained_bytes / (1024 * 1024),
                        mb(safe)
                    ),
                    "raise max_slot_wal_keep_size on the source, or slow the writes on the source \
                     until the destination catches up",
                )]
            }
            _ => Vec::new(),
        },
    }
}

/// Writes a heartbeat into the source database's WAL (non-transactional, a few bytes).
pub async fn heartbeat(src: &Session) -> Result<(), PgError> {
    src.execute(
        "SELECT pg_logical_emit_message(false, 'postgres-migrator', 'heartbeat')",
        &[],
    )
    .await
    .map_err(q(src.target(), "writing the heartbeat"))?;
    Ok(())
}

/// Waits until every slot in `slots` has confirmed the source's WAL position as of the call
/// (`src` on any database of the source): everything written before is on the destination.
/// Returns false after `timeout`.
pub async fn wait_for_zero_lag(
    src: &Session,
    slots: &[String],
    timeout: std::time::Duration,
) -> Result<bool, PgError> {
    let target: String = src
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(q(src.target(), "reading the current WAL position"))?
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
            .map_err(q(src.target(), "comparing slot positions"))?
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

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(wal_status: &str, retained_mb: u64, safe_mb: Option<i64>) -> SlotStatus {
        SlotStatus {
            name: "s".into(),
            active: true,
            restart_lsn: None,
            confirmed_flush_lsn: None,
            retained_bytes: retained_mb * 1024 * 1024,
            wal_status: Some(wal_status.into()),
            safe_wal_bytes: safe_mb.map(|mb| mb * 1024 * 1024),
        }
    }

    fn codes(s: &SlotStatus) -> Vec<(&'static str, bool)> {
        slot_findings("shop", &ReplicationNames::new("prod", "shop"), s)
            .iter()
            .map(|f| (f.code.as_str(), f.is_blocking()))
            .collect()
    }

    #[test]
    fn a_lost_slot_blocks_and_says_how_to_copy_again() {
        assert_eq!(codes(&slot("lost", 0, None)), [("slot_lost", true)]);
        let f = &slot_findings(
            "shop",
            &ReplicationNames::new("prod", "shop"),
            &slot("lost", 0, None),
        )[0];
        assert!(f.fix.contains("DROP SUBSCRIPTION") && f.fix.contains("pg_drop_replication_slot"));
    }

    #[test]
    fn a_slot_at_risk_or_near_the_limit_warns() {
        assert_eq!(
            codes(&slot("unreserved", 900, Some(-5))),
            [("slot_at_risk", false)]
        );
        assert_eq!(
            codes(&slot("reserved", 10, Some(40))),
            [("slot_near_limit", false)]
        );
        assert_eq!(
            codes(&slot("reserved", 900, Some(200))),
            [("slot_near_limit", false)]
        );
        assert!(codes(&slot("reserved", 100, Some(900))).is_empty());
        assert!(
            codes(&slot("reserved", 100_000, None)).is_empty(),
            "no limit set"
        );
    }
}
