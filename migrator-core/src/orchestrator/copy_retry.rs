//! When a failed fast copy may start again.
//!
//! Every fast copy starts by dropping the slot of the one before, truncating the destination and
//! reading the whole database from the source again. A copy that fails for a reason that does not
//! go away by itself (a full disk, a table the destination refuses) must not do that in a loop on
//! a production source: consecutive failures back off exponentially with jitter (from
//! [`FIRST_DELAY`], doubling, up to [`MAX_DELAY`]), and after [`MAX_FAILURES`] failures that are
//! not transient the tool stops trying and reports a blocking finding with the error and the fix.
//! It tries again when the operator says so (the Retry button, `POST /api/mappings/{name}/retry`,
//! which bump the mapping's retry generation) or after a restart (which is also how a changed
//! configuration takes effect). Transient failures (the source restarting, a broken connection)
//! back off the same way but never make the tool give up.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::findings::{Code, Finding};
use crate::pg::PgError;

/// The wait after the first failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(600);
/// Consecutive failures (not transient) after which the tool stops trying by itself.
pub const MAX_FAILURES: u32 = 5;

/// Consecutive failures of a step that is not retried at every tick, since its last success or
/// the operator's last retry: when it may run again, and whether the tool has stopped trying by
/// itself. Shared by the fast copy ([`CopyRetry`]) and the schema
/// ([`super::schema_retry::SchemaRetry`]).
pub struct Backoff {
    delays: Box<dyn Iterator<Item = Duration> + Send + Sync>,
    failures: u32,
    definite_failures: u32,
    not_before: Option<Instant>,
    generation: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            delays: delays(),
            failures: 0,
            definite_failures: 0,
            not_before: None,
            generation: 0,
        }
    }
}

impl Backoff {
    /// Records a failure at `now`; `transient` ones never make the tool give up.
    pub fn failed(&mut self, transient: bool, now: Instant) {
        self.failures += 1;
        if !transient {
            self.definite_failures += 1;
        }
        let wait = self.delays.next().unwrap_or(MAX_DELAY);
        self.not_before = Some(now + wait);
    }

    /// The step succeeded: forget every failure.
    pub fn succeeded(&mut self) {
        let generation = self.generation;
        *self = Backoff::default();
        self.generation = generation;
    }

    /// The operator asked for a retry when `generation` differs from the last one seen; then
    /// every failure is forgotten and `true` returned.
    pub fn operator_generation(&mut self, generation: u64) -> bool {
        if generation == self.generation {
            return false;
        }
        self.succeeded();
        self.generation = generation;
        true
    }

    /// The tool has stopped trying by itself.
    pub fn gave_up(&self) -> bool {
        self.definite_failures >= MAX_FAILURES
    }

    /// Whether the step may run at `now`.
    pub fn may_start(&self, now: Instant) -> bool {
        !self.gave_up() && self.not_before.is_none_or(|t| now >= t)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// How long until the next attempt.
    pub fn wait(&self, now: Instant) -> Duration {
        self.not_before
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }
}

/// The failures of one database's copy, since its last success or the operator's last retry.
#[derive(Default)]
pub struct CopyRetry {
    backoff: Backoff,
    last_error: Option<String>,
}

fn delays() -> Box<dyn Iterator<Item = Duration> + Send + Sync> {
    Box::new(
        ExponentialBuilder::default()
            .with_min_delay(FIRST_DELAY)
            .with_factor(2.0)
            .with_max_delay(MAX_DELAY)
            .with_jitter()
            .without_max_times()
            .build(),
    )
}

impl CopyRetry {
    /// Records a failed copy at `now`.
    pub fn failed(&mut self, error: &PgError, now: Instant) {
        self.backoff.failed(error.is_transient(), now);
        self.last_error = Some(error.to_string());
    }

    /// The copy finished: forget every failure.
    pub fn succeeded(&mut self) {
        self.backoff.succeeded();
        self.last_error = None;
    }

    /// The operator asked for a retry when `generation` differs from the last one seen.
    pub fn operator_generation(&mut self, generation: u64) {
        if self.backoff.operator_generation(generation) {
            self.last_error = None;
        }
    }

    /// The tool has stopped trying by itself.
    pub fn gave_up(&self) -> bool {
        self.backoff.gave_up()
    }

    /// Whether a copy may start at `now`.
    pub fn may_start(&self, now: Instant) -> bool {
        self.backoff.may_start(now)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// What the status shows: a warning while it backs off, a blocking finding once it gave up.
    pub fn finding(&self, db: &str, mapping: &str, now: Instant) -> Option<Finding> {
        let error = self.last_error.as_deref()?;
        if self.gave_up() {
            return Some(Finding::blocking(
                Code::CopyFailing,
                format!(
                    "the initial copy of {db:?} failed {} times in a row, so the tool stopped \
                     retrying it (each attempt reads the whole database from the source again); \
                     last error: {error}",
                    self.failures()
                ),
                format!(
                    "fix the cause named in the error{}, then press Retry on the mapping's page \
                     (or POST /api/mappings/{mapping}/retry, or restart postgres-migrator)",
                    hint(error)
                ),
            ));
        }
        let wait = self.backoff.wait(now);
        Some(Finding::warning(
            Code::CopyFailed,
            format!(
                "the initial copy of {db:?} failed ({} time(s) in a row); next attempt in {} s; \
                 last error: {error}",
                self.failures(),
                wait.as_secs()
            ),
            format!(
                "fix the cause named in the error{}; after {MAX_FAILURES} failures that are not \
                 transient the tool stops retrying until you press Retry",
                hint(error)
            ),
        ))
    }
}

/// A word on the usual causes, keyed on words PostgreSQL uses in its messages.
fn hint(error: &str) -> &'static str {
    let error = error.to_ascii_lowercase();
    if error.contains("no space left") || error.contains("disk full") {
        " (free space on the server named in the error, or give it a larger disk)"
    } else if error.contains("permission denied") {
        " (grant the connecting role the privilege named in the error)"
    } else if error.contains("out of memory") {
        " (lower copy_workers, or give the server more memory)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definite() -> PgError {
        PgError::Query {
            target: "u@h:1/db".into(),
            context: "copying".into(),
            message: "could not extend file: No space left on device".into(),
            transient: false,
        }
    }

    fn transient() -> PgError {
        PgError::Query {
            target: "u@h:1/db".into(),
            context: "copying".into(),
            message: "connection closed".into(),
            transient: true,
        }
    }

    #[test]
    fn failures_back_off_exponentially_then_give_up() {
        let mut retry = CopyRetry::default();
        let t0 = Instant::now();
        assert!(retry.may_start(t0));
        assert!(retry.finding("shop", "prod", t0).is_none());
        let mut now = t0;
        let mut waits = Vec::new();
        for n in 1..MAX_FAILURES {
            retry.failed(&definite(), now);
            let next = retry.backoff.not_before.unwrap();
            waits.push(next - now);
            assert!(!retry.may_start(now), "attempt {n}");
            let finding = retry.finding("shop", "prod", now).unwrap();
            assert_eq!(
                (finding.code.as_str(), finding.is_blocking()),
                ("copy_failed", false)
            );
            now = next;
            assert!(retry.may_start(now));
        }
        // Each wait at least the doubled minimum (jitter only adds).
        for (i, wait) in waits.iter().enumerate() {
            assert!(*wait >= FIRST_DELAY * 2u32.pow(i as u32), "{waits:?}");
        }
        retry.failed(&definite(), now);
        assert!(retry.gave_up());
        assert!(!retry.may_start(now + MAX_DELAY * 10));
        let finding = retry.finding("shop", "prod", now).unwrap();
        assert_eq!(
            (finding.code.as_str(), finding.is_blocking()),
            ("copy_failing", true)
        );
        assert!(finding.message.contains("No space left"), "{finding:?}");
        assert!(finding.fix.contains("free space"), "{finding:?}");
        assert!(
            finding.fix.contains("/api/mappings/prod/retry"),
            "{finding:?}"
        );
    }

    #[test]
    fn transient_failures_never_give_up() {
        let mut retry = CopyRetry::default();
        let now = Instant::now();
        for _ in 0..(MAX_FAILURES * 3) {
            retry.failed(&transient(), now);
        }
        assert!(!retry.gave_up());
        assert!(retry.may_start(now + MAX_DELAY * 2 + Duration::from_secs(1)));
    }

    #[test]
    fn the_operators_retry_and_a_success_start_afresh() {
        let mut retry = CopyRetry::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            retry.failed(&definite(), now);
        }
        retry.operator_generation(0);
        assert!(retry.gave_up(), "the same generation changes nothing");
        retry.operator_generation(1);
        assert!(!retry.gave_up());
        assert!(retry.may_start(now));
        assert_eq!(retry.failures(), 0);
        retry.failed(&definite(), now);
        retry.succeeded();
        assert!(retry.may_start(now) && retry.finding("shop", "prod", now).is_none());
        retry.operator_generation(1);
        assert_eq!(retry.failures(), 0);
    }
}
