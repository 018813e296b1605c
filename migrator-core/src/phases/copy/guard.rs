//! The health guard: while a copy (or a verification) runs, one probe a second on the source; the copy slows down
//! when another standby or slot falls behind or a trivial query gets slow.

use std::time::{Duration, Instant};

use futures_util::future;

use super::MappingContext;
use crate::pg::{self, PgError};

/// Watches the source while the copy runs and lowers the limiter's cap when another standby or
/// slot falls behind, or a trivial query gets slow; lifts it step by step once healthy. Only
/// returns on an error of its own connection.
pub async fn health_guard(ctx: &MappingContext, db: &str) -> PgError {
    let settings = ctx.copy;
    if settings.max_standby_lag_bytes == 0 && settings.max_latency.is_zero() {
        return future::pending().await;
    }
    let probe = match pg::connect(&ctx.source, db).await {
        Ok(client) => client,
        Err(e) => return e,
    };
    let st = ctx.source.target(db);
    let prefix = format!("{}{}_", crate::naming::PREFIX, ctx.name);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let asked = Instant::now();
        let lag: i64 = match probe
            .query_one(
                "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint \
                 FROM pg_stat_replication WHERE NOT starts_with(application_name, $1)",
                &[&prefix],
            )
            .await
        {
            Ok(row) => row.get(0),
            Err(e) => return PgError::query(&st, "watching the source's health", e),
        };
        let latency = asked.elapsed();
        let reason = if settings.max_standby_lag_bytes > 0
            && lag.max(0) as u64 > settings.max_standby_lag_bytes
        {
            Some(format!(
                "a standby or another subscriber of the source is {} MB behind (limit {} MB)",
                lag / (1024 * 1024),
                settings.max_standby_lag_bytes / (1024 * 1024)
            ))
        } else if !settings.max_latency.is_zero() && latency > settings.max_latency {
            Some(format!(
                "a trivial query on the source took {} ms (limit {} ms)",
                latency.as_millis(),
                settings.max_latency.as_millis()
            ))
        } else {
            None
        };
        ctx.limiter.health_verdict(reason);
    }
}

/// Lifts the health guard's cap when dropped.
pub struct LiftCap<'a>(pub &'a crate::limiter::RateLimiter);

impl Drop for LiftCap<'_> {
    fn drop(&mut self) {
        self.0.set_health_cap(None);
    }
}
