//! After the rows: the deferred indexes and keys, and `ANALYZE` of every table, on the copy's
//! destination sessions at once. Largest tables first, so that the sessions end together; a
//! table is analyzed once nothing is being built on it (ANALYZE gathers the statistics of
//! expression indexes), so the statistics are gathered while the last indexes still build
//! instead of after them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use futures_util::future;
use tokio::sync::Notify;

use crate::catalog::model::QualifiedName;
use crate::ddl::DeferredObject;
use crate::destination::{self, Built};
use crate::pg::{PgError, Session};

/// What a session does next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step<'a> {
    /// An object, and the root of its table.
    Build(&'a DeferredObject, QualifiedName),
    Analyze(QualifiedName),
    /// Only analyses are left, each of a table something is still being built on.
    Wait,
    Done,
}

/// The work left, and what is being built on which table (by its partition root: an index of a
/// partitioned table is built on its partitions too).
#[derive(Debug)]
pub(super) struct Queue<'a> {
    builds: VecDeque<(&'a DeferredObject, QualifiedName)>,
    analyses: VecDeque<(QualifiedName, QualifiedName)>,
    building: HashMap<QualifiedName, usize>,
}

impl<'a> Queue<'a> {
    /// `builds` and `analyses` in the order they are to be taken, each with its root table.
    pub(super) fn new(
        builds: Vec<(&'a DeferredObject, QualifiedName)>,
        analyses: Vec<(QualifiedName, QualifiedName)>,
    ) -> Self {
        Queue {
            builds: builds.into(),
            analyses: analyses.into(),
            building: HashMap::new(),
        }
    }

    pub(super) fn next(&mut self) -> Step<'a> {
        if let Some((object, root)) = self.builds.pop_front() {
            *self.building.entry(root.clone()).or_default() += 1;
            return Step::Build(object, root);
        }
        let free = self
            .analyses
            .iter()
            .position(|(_, root)| self.building.get(root).is_none_or(|n| *n == 0));
        match free {
            Some(i) => Step::Analyze(self.analyses.remove(i).expect("found above").0),
            None if self.analyses.is_empty() => Step::Done,
            None => Step::Wait,
        }
    }

    /// A build on `root` ended.
    pub(super) fn built(&mut self, root: &QualifiedName) {
        if let Some(n) = self.building.get_mut(root) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Runs `queue` on `sessions` until it is empty.
pub(super) async fn run(sessions: &[&Session], queue: Queue<'_>) -> Result<(), PgError> {
    let queue = Mutex::new(queue);
    let freed = Notify::new();
    let lock = || queue.lock().unwrap_or_else(|e| e.into_inner());
    future::try_join_all(sessions.iter().map(|dst| async {
        loop {
            let notified = freed.notified();
            futures_util::pin_mut!(notified);
            notified.as_mut().enable();
            let step = lock().next();
            match step {
                Step::Build(object, root) => {
                    let outcome = destination::build(dst, object).await;
                    lock().built(&root);
                    freed.notify_waiters();
                    // Nothing else writes yet, so a deadlock (Postponed) cannot happen; if it
                    // did, the catch-up ticks build what is missing.
                    let _: Built = outcome?;
                }
                Step::Analyze(table) => destination::analyze(dst, &table).await?,
                Step::Wait => notified.await,
                Step::Done => return Ok::<_, PgError>(()),
            }
        }
    }))
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddl::DeferredKind;

    fn index(table: &str, name: &str) -> DeferredObject {
        DeferredObject {
            table: QualifiedName::new("public", table),
            name: name.into(),
            kind: DeferredKind::Index,
            statements: vec![],
            not_valid: false,
            after_constraints: false,
        }
    }

    #[test]
    fn a_table_is_analyzed_once_nothing_is_built_on_it() {
        let t = |name: &str| QualifiedName::new("public", name);
        let (big_key, big_expr, part) = (
            index("big", "big_pkey"),
            index("big", "big_expr"),
            index("parted", "parted_value"),
        );
        let mut queue = Queue::new(
            vec![
                (&big_key, t("big")),
                (&big_expr, t("big")),
                (&part, t("parted")),
            ],
            vec![
                (t("big"), t("big")),
                (t("parted_q1"), t("parted")),
                (t("small"), t("small")),
            ],
        );
        // Two sessions take the big table's builds, then one the partitioned table's.
        assert_eq!(queue.next(), Step::Build(&big_key, t("big")));
        assert_eq!(queue.next(), Step::Build(&big_expr, t("big")));
        assert_eq!(queue.next(), Step::Build(&part, t("parted")));
        // Nothing is built on the small table: analyzed at once, the others wait.
        assert_eq!(queue.next(), Step::Analyze(t("small")));
        assert_eq!(queue.next(), Step::Wait);
        queue.built(&t("parted"));
        assert_eq!(queue.next(), Step::Analyze(t("parted_q1")));
        queue.built(&t("big"));
        assert_eq!(queue.next(), Step::Wait, "one of big's builds still runs");
        queue.built(&t("big"));
        assert_eq!(queue.next(), Step::Analyze(t("big")));
        assert_eq!(queue.next(), Step::Done);
    }
}
