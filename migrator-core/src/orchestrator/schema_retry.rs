//! When the schema objects the destination refused are tried again, and what the status says
//! of them.
//!
//! The schema step commits every object the destination accepts and names the refused ones in
//! the database's marker (`phases::schema`), so which objects are missing is read from the
//! destination at every look, also after a restart. What only the process knows is each
//! object's last error and the backoff: attempts wait as a failing copy does ([`Backoff`]: from
//! ten seconds, doubling, up to ten minutes) and after [`super::copy_retry::MAX_FAILURES`] the
//! tool stops trying by itself and the findings turn blocking. Retry (the button, the API)
//! starts afresh; so does a restart, which is how a new `schema_exclude` takes effect.

use std::time::Instant;

use crate::findings::{Code, Finding};
use crate::phases::schema::ObjectFailure;

use super::copy_retry::Backoff;

/// The attempts at the refused objects of one database.
#[derive(Default)]
pub struct SchemaRetry {
    backoff: Backoff,
    /// The errors of the last attempt, per object.
    last: Vec<ObjectFailure>,
}

impl SchemaRetry {
    /// Records the outcome of a schema step at `now`: the objects refused (none: success).
    pub fn attempted(&mut self, refused: Vec<ObjectFailure>, now: Instant) {
        if refused.is_empty() {
            self.backoff.succeeded();
        } else {
            self.backoff.failed(false, now);
        }
        self.last = refused;
    }

    /// The operator asked for a retry when `generation` differs from the last one seen.
    pub fn operator_generation(&mut self, generation: u64) {
        self.backoff.operator_generation(generation);
    }

    /// Whether the schema step may run at `now`.
    pub fn may_start(&self, now: Instant) -> bool {
        self.backoff.may_start(now)
    }

    /// One finding per object still missing (`unapplied`, from the destination's marker), with
    /// its error when this process has seen it: a warning while the tool retries, blocking once
    /// it stopped.
    pub fn findings(
        &self,
        db: &str,
        mapping: &str,
        unapplied: &[String],
        now: Instant,
    ) -> Vec<Finding> {
        let gave_up = self.backoff.gave_up();
        unapplied
            .iter()
            .map(|object| {
                let error = self.last.iter().find(|f| &f.object == object).map_or(
                    "refused in an earlier run (its error shows after the next attempt)",
                    |f| f.error.as_str(),
                );
                let when = if gave_up {
                    format!(
                        "the tool stopped retrying it after {} attempts",
                        self.backoff.failures()
                    )
                } else if self.backoff.failures() == 0 {
                    "trying again now".to_owned()
                } else {
                    format!(
                        "attempt {}; next in {} s",
                        self.backoff.failures(),
                        self.backoff.wait(now).as_secs()
                    )
                };
                let message = format!(
                    "{object} could not be created in destination database {db:?}: {error}. The \
                     rest of the schema is in place; this database waits for it ({when})"
                );
                let fix = format!(
                    "fix what the error names (on the destination, or change the object on the \
                     source), then press Retry (or POST /api/mappings/{mapping}/retry); or leave \
                     the object out: add \"{db}: {object}\" to mappings.{mapping}.schema_exclude \
                     and restart postgres-migrator"
                );
                if gave_up {
                    Finding::blocking(Code::SchemaObjectFailed, message, fix)
                } else {
                    Finding::warning(Code::SchemaObjectFailed, message, fix)
                }
            })
            .collect()
    }
}

/// The warning that names what `schema_exclude` leaves out of database `db`.
pub fn excluded_finding(db: &str, mapping: &str, excluded: &[&str]) -> Option<Finding> {
    (!excluded.is_empty()).then(|| {
        Finding::warning(
            Code::SchemaObjectsExcluded,
            format!(
                "left out of destination database {db:?} by the configuration: {}",
                excluded.join("; ")
            ),
            format!(
                "create them on the destination by hand if the application needs them, or \
                 remove them from mappings.{mapping}.schema_exclude once the destination \
                 accepts them"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(object: &str) -> ObjectFailure {
        ObjectFailure {
            object: object.into(),
            error: "column \"buffers_backend\" does not exist".into(),
        }
    }

    #[test]
    fn refusals_warn_with_their_error_back_off_then_block() {
        let mut retry = SchemaRetry::default();
        let now = Instant::now();
        let unapplied = ["VIEW public.v".to_owned()];
        let first = retry.findings("shop", "prod", &unapplied, now);
        assert_eq!(first.len(), 1);
        assert!(!first[0].is_blocking());
        assert!(first[0].message.contains("earlier run"), "{first:?}");
        assert!(retry.may_start(now));

        retry.attempted(vec![refused("VIEW public.v")], now);
        assert!(!retry.may_start(now));
        let finding = &retry.findings("shop", "prod", &unapplied, now)[0];
        assert_eq!(finding.code, Code::SchemaObjectFailed);
        assert!(finding.message.contains("buffers_backend"), "{finding:?}");
        assert!(finding.message.contains("next in"), "{finding:?}");
        assert!(
            finding
                .fix
                .contains("\"shop: VIEW public.v\" to mappings.prod.schema_exclude"),
            "{finding:?}"
        );

        for _ in 1..super::super::copy_retry::MAX_FAILURES {
            retry.attempted(vec![refused("VIEW public.v")], now);
        }
        let finding = &retry.findings("shop", "prod", &unapplied, now)[0];
        assert!(finding.is_blocking(), "{finding:?}");
        assert!(!retry.may_start(now + super::super::copy_retry::MAX_DELAY * 10));

        retry.operator_generation(1);
        assert!(retry.may_start(now));
        retry.attempted(Vec::new(), now);
        assert!(retry.findings("shop", "prod", &[], now).is_empty());
    }

    #[test]
    fn exclusions_are_reported() {
        assert!(excluded_finding("shop", "prod", &[]).is_none());
        let f = excluded_finding("shop", "prod", &["VIEW public.v", "SETTING x"]).unwrap();
        assert!(!f.is_blocking());
        assert!(f.message.contains("VIEW public.v; SETTING x"), "{f:?}");
    }
}
