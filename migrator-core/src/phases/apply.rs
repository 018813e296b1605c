//! The subscription's workers on the destination: running, or failing in a loop.
//!
//! An apply worker that hits an error (a unique violation from a row the destination has and the
//! source does not, a column missing on the destination) exits, and PostgreSQL starts it again
//! after `wal_retrieve_retry_interval`; nothing changes on the source side but a lag that grows.
//! The error text goes to the destination's server log only, which the tool cannot read; what it
//! can read is `pg_stat_subscription_stats` (`apply_error_count`, `sync_error_count`) and
//! whether `pg_stat_subscription` shows a running apply worker. [`ApplyWatch`] remembers the
//! counts between looks: a count that rose within [`ApplyWatch::window`] is a blocking
//! `apply_failing` finding, and an enabled subscription without an apply worker for that long
//! (with no errors counted) is `apply_worker_absent`. Both clear by themselves once the cause is
//! fixed and the worker runs again.

use std::time::{Duration, Instant};

use crate::pg::{PgError, Session};

use super::q;
use crate::findings::{Code, Finding};

/// What the destination shows of one subscription's workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyStats {
    /// An apply worker is running.
    pub worker_running: bool,
    /// Errors of the apply worker since the statistics were reset.
    pub apply_errors: i64,
    /// Errors of table synchronization workers (native copy) since then.
    pub sync_errors: i64,
}

/// Reads the workers and error counts of `subscription` (`dst` connected to its database).
pub async fn observe(dst: &Session, subscription: &str) -> Result<Option<ApplyStats>, PgError> {
    let row = dst
        .query_opt(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_subscription w WHERE w.subid = s.oid \
                 AND w.worker_type = 'apply' AND w.pid IS NOT NULL), \
               coalesce(st.apply_error_count, 0)::bigint, coalesce(st.sync_error_count, 0)::bigint \
             FROM pg_subscription s LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid \
             WHERE s.subname = $1 \
               AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&subscription],
        )
        .await
        .map_err(q(dst.target(), "reading the subscription's workers"))?;
    Ok(row.map(|r| ApplyStats {
        worker_running: r.get(0),
        apply_errors: r.get(1),
        sync_errors: r.get(2),
    }))
}

/// Error counts and worker presence remembered between looks at one subscription.
#[derive(Debug, Default)]
pub struct ApplyWatch {
    last: Option<(i64, i64)>,
    rose_at: Option<Instant>,
    absent_since: Option<Instant>,
}

impl ApplyWatch {
    /// How long a rise in the error counts, or a missing worker, stands as a finding: three
    /// polls, at least 30 s (PostgreSQL restarts a failed worker every 5 s by default).
    pub fn window(poll: Duration) -> Duration {
        (poll * 3).max(Duration::from_secs(30))
    }

    /// Records one look at `now` (`stats` is `None` without a subscription; `enabled` is the
    /// subscription's state) and says what stands.
    pub fn update(
        &mut self,
        subscription: &str,
        db: &str,
        stats: Option<ApplyStats>,
        enabled: bool,
        now: Instant,
        window: Duration,
    ) -> Vec<Finding> {
        let Some(stats) = stats.filter(|_| enabled) else {
            *self = ApplyWatch::default();
            return Vec::new();
        };
        let counts = (stats.apply_errors, stats.sync_errors);
        if self.last.is_some_and(|(a, s)| counts.0 > a || counts.1 > s) {
            self.rose_at = Some(now);
        }
        self.last = Some(counts);
        if stats.worker_running {
            self.absent_since = None;
        } else {
            self.absent_since.get_or_insert(now);
        }
        let recent = |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) <= window);
        if recent(self.rose_at) {
            return vec![Finding::blocking(
                Code::ApplyFailing,
                format!(
                    "the subscription {subscription} of {db:?} keeps failing on the destination \
                     ({} apply errors, {} table sync errors counted so far, rising): changes from \
                     the source are not being applied",
                    stats.apply_errors, stats.sync_errors
                ),
                "the error itself is in the destination server's log (lines from the \"logical \
                 replication apply worker\" or \"table synchronization worker\"). Usual causes: a \
                 row on the destination that the source does not have (duplicate key: delete it \
                 on the destination), or a column or table missing there (see the schema drift \
                 finding). The finding clears once the errors stop",
            )];
        }
        if self
            .absent_since
            .is_some_and(|t| now.duration_since(t) >= window)
        {
            return vec![Finding::blocking(
                Code::ApplyWorkerAbsent,
                format!(
                    "the subscription {subscription} of {db:?} is enabled but no apply worker has \
                     been running for it for {} s: nothing is being applied",
                    self.absent_since
                        .map_or(0, |t| now.duration_since(t).as_secs())
                ),
                "on the destination, check that max_logical_replication_workers and \
                 max_worker_processes leave room for every subscription, and read the server's \
                 log for why the worker does not start",
            )];
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(30);

    fn stats(running: bool, apply: i64, sync: i64) -> Option<ApplyStats> {
        Some(ApplyStats {
            worker_running: running,
            apply_errors: apply,
            sync_errors: sync,
        })
    }

    fn codes(found: &[Finding]) -> Vec<&'static str> {
        found.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn rising_errors_stand_for_the_window_then_clear() {
        let mut w = ApplyWatch::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Errors counted before the first look are history, not a rise.
        assert!(
            w.update("s", "db", stats(true, 3, 0), true, at(0), WINDOW)
                .is_empty()
        );
        let found = w.update("s", "db", stats(false, 4, 0), true, at(5), WINDOW);
        assert_eq!(codes(&found), ["apply_failing"]);
        assert!(found[0].is_blocking() && found[0].message.contains("4 apply errors"));
        assert_eq!(
            codes(&w.update("s", "db", stats(true, 4, 0), true, at(30), WINDOW)),
            ["apply_failing"]
        );
        assert!(
            w.update("s", "db", stats(true, 4, 0), true, at(36), WINDOW)
                .is_empty()
        );
        // Table sync errors count too.
        assert_eq!(
            codes(&w.update("s", "db", stats(true, 4, 1), true, at(40), WINDOW)),
            ["apply_failing"]
        );
    }

    #[test]
    fn a_missing_worker_is_reported_after_the_window() {
        let mut w = ApplyWatch::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(
            w.update("s", "db", stats(false, 0, 0), true, at(0), WINDOW)
                .is_empty()
        );
        assert!(
            w.update("s", "db", stats(false, 0, 0), true, at(20), WINDOW)
                .is_empty()
        );
        assert_eq!(
            codes(&w.update("s", "db", stats(false, 0, 0), true, at(30), WINDOW)),
            ["apply_worker_absent"]
        );
        assert!(
            w.update("s", "db", stats(true, 0, 0), true, at(35), WINDOW)
                .is_empty()
        );
    }

    #[test]
    fn a_disabled_or_missing_subscription_needs_no_worker() {
        let mut w = ApplyWatch::default();
        let t0 = Instant::now();
        for s in [0, 40, 80] {
            let now = t0 + Duration::from_secs(s);
            assert!(
                w.update("s", "db", stats(false, s as i64, 0), false, now, WINDOW)
                    .is_empty()
            );
            assert!(w.update("s", "db", None, true, now, WINDOW).is_empty());
        }
    }

    #[test]
    fn the_window_is_three_polls_and_at_least_thirty_seconds() {
        assert_eq!(ApplyWatch::window(Duration::from_secs(5)), WINDOW);
        assert_eq!(
            ApplyWatch::window(Duration::from_secs(20)),
            Duration::from_secs(60)
        );
    }
}
