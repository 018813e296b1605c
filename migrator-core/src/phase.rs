//! Where one source database's migration stands, derived from facts read off the live databases.
//!
//! [`derive_phase`] is a pure function: the orchestrator reads [`DatabaseFacts`] every tick,
//! derives the phase, and runs that phase's next idempotent action. Nothing else decides the
//! phase, and nothing about it is remembered except how long the cutover conditions have held
//! (which a restart conservatively forgets).

use std::time::Duration;

pub use crate::status::{Lag, Phase};

/// The state of the destination database, as discovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DestinationDatabase {
    /// It does not exist yet (or exists empty and unmarked: the tool will adopt it).
    #[default]
    Missing,
    /// It carries this tool's marker for this mapping and source database.
    Ours {
        /// The schema transaction has committed.
        schema_applied: bool,
    },
}

/// The destination database as discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationState {
    /// No database of that name, or one with no tables and no marker (it will be adopted).
    Missing { exists: bool },
    /// Carries this mapping's marker.
    Ours { schema_applied: bool },
    /// Carries this mapping's marker of a schema that committed without these objects (each
    /// failed, and is tried again until it is created or excluded by the configuration).
    Incomplete { unapplied: Vec<String> },
    /// Has tables and no marker of this tool.
    InUse { tables: i64 },
    /// Carries the marker of another mapping (two mappings sending one database name to one
    /// destination).
    OtherMapping { marker: String },
}

impl DestinationState {
    pub fn as_fact(&self) -> DestinationDatabase {
        match self {
            DestinationState::Ours { schema_applied } => DestinationDatabase::Ours {
                schema_applied: *schema_applied,
            },
            DestinationState::Incomplete { .. } => DestinationDatabase::Ours {
                schema_applied: false,
            },
            _ => DestinationDatabase::Missing,
        }
    }
}

/// The subscription on the destination database, as discovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionFacts {
    /// `pg_subscription.subenabled`.
    pub enabled: bool,
    /// `pg_subscription.subslotname IS NOT NULL`.
    pub has_slot: bool,
    /// It carries the tool's completion marker: mark complete has begun.
    pub completing: bool,
}

/// Everything the phase depends on, read from both servers in one tick. The default is a
/// database nothing has been seen of.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatabaseFacts {
    /// A blocking finding (preflight, or anything found later) is open.
    pub blocked: bool,
    /// The destination database.
    pub destination: DestinationDatabase,
    /// The subscription, if it exists.
    pub subscription: Option<SubscriptionFacts>,
    /// Tables the subscription knows of, and how many of them are ready (`r`).
    pub tables_total: usize,
    pub tables_ready: usize,
    /// Secondary indexes and constraints still to be built on the destination.
    pub deferred_missing: usize,
    /// Sequences whose destination value trails the source's (the next sync corrects them).
    pub sequences_behind: usize,
    /// Source sequences missing on the destination (schema drift: no sync can correct them).
    pub sequences_missing: usize,
    /// Replication lag, when it could be measured.
    pub lag: Option<Lag>,
    /// The source still has this database's replication slot.
    pub source_slot: bool,
    /// The source database still has this database's publication.
    pub publication: bool,
    /// This process is copying the tables itself (fast copy mode) and has not yet created the
    /// subscription. Not discoverable after a restart, by design: a copy without its process is
    /// lost, and the next copy starts over.
    pub copying: bool,
}

/// The limits a database must be within to be cutover ready.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub max_lag_bytes: u64,
    pub max_lag_seconds: f64,
    pub stable_for: Duration,
}

/// Whether a database is completed: its subscription exists, disabled and detached from its slot,
/// and neither the slot nor the publication is left on the source. This is what `complete` leaves
/// behind, so completion is discoverable after a restart.
pub fn is_completed(facts: &DatabaseFacts) -> bool {
    is_detached(facts) && !facts.source_slot && !facts.publication
}

/// The subscription exists, disabled and detached from its slot.
fn is_detached(facts: &DatabaseFacts) -> bool {
    matches!(
        facts.subscription,
        Some(SubscriptionFacts {
            enabled: false,
            has_slot: false,
            ..
        })
    )
}

/// Whether mark complete has begun and is not finished: the subscription carries the completion
/// marker, or it is detached while the slot or publication is still on the source.
pub fn is_completing(facts: &DatabaseFacts) -> bool {
    !is_completed(facts) && (facts.subscription.is_some_and(|s| s.completing) || is_detached(facts))
}

/// Whether every cutover-ready condition holds right now (before the `stable_for` wait).
///
/// Sequences that trail the source do not count: every catch-up tick moves them ahead again, and
/// the final sync at mark complete (after writes stop) is exact. Only a sequence that no sync
/// can correct (missing on the destination) does.
pub fn cutover_conditions_met(facts: &DatabaseFacts, limits: &Thresholds) -> bool {
    let replicating = matches!(
        facts.subscription,
        Some(SubscriptionFacts {
            enabled: true,
            has_slot: true,
            completing: false,
        })
    );
    let lag_ok = facts.lag.is_some_and(|lag| {
        lag.bytes <= limits.max_lag_bytes && lag.seconds <= limits.max_lag_seconds
    });
    !facts.blocked
        && replicating
        && facts.destination
            == (DestinationDatabase::Ours {
                schema_applied: true,
            })
        && facts.tables_ready == facts.tables_total
        && facts.deferred_missing == 0
        && facts.sequences_missing == 0
        && lag_ok
}

/// The phase of a database. `held_for` is how long [`cutover_conditions_met`] has been true
/// without a break (zero when it is false now).
pub fn derive_phase(facts: &DatabaseFacts, limits: &Thresholds, held_for: Duration) -> Phase {
    if is_completed(facts) {
        return Phase::Completed;
    }
    // The operator's decision to complete outranks any finding: finish it.
    if is_completing(facts) {
        return Phase::Completing;
    }
    if facts.blocked {
        return Phase::Problematic;
    }
    match facts.destination {
        DestinationDatabase::Missing
        | DestinationDatabase::Ours {
            schema_applied: false,
        } => {
            return Phase::Schema;
        }
        DestinationDatabase::Ours {
            schema_applied: true,
        } => {}
    }
    match facts.subscription {
        None if facts.copying => Phase::InitialSync,
        None if facts.sequences_behind > 0 => Phase::Sequences,
        None => Phase::ReplicationSetup,
        // Disabled but still attached to its slot: someone disabled it by hand. The
        // orchestrator reports this as a finding; derivation only sees `blocked`.
        Some(SubscriptionFacts { enabled: false, .. }) => Phase::Problematic,
        // Enabled without a slot cannot stream: a half-finished manual change.
        Some(SubscriptionFacts {
            has_slot: false, ..
        }) => Phase::Problematic,
        // Initial sync ends once the destination can serve: every table copied, its indexes
        // and constraints built, materialized views refreshed, tables analyzed.
        Some(_) if facts.tables_ready < facts.tables_total || facts.deferred_missing > 0 => {
            Phase::InitialSync
        }
        Some(_) if cutover_conditions_met(facts, limits) && held_for >= limits.stable_for => {
            Phase::CutoverReady
        }
        Some(_) => Phase::CatchUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Thresholds = Thresholds {
        max_lag_bytes: 1000,
        max_lag_seconds: 5.0,
        stable_for: Duration::from_secs(30),
    };

    fn ready() -> DatabaseFacts {
        DatabaseFacts {
            blocked: false,
            destination: DestinationDatabase::Ours {
                schema_applied: true,
            },
            subscription: Some(SubscriptionFacts {
                enabled: true,
                has_slot: true,
                completing: false,
            }),
            tables_total: 4,
            tables_ready: 4,
            deferred_missing: 0,
            sequences_behind: 0,
            sequences_missing: 0,
            lag: Some(Lag {
                bytes: 10,
                seconds: 0.0,
            }),
            source_slot: true,
            publication: true,
            copying: false,
        }
    }

    fn detached(mut f: DatabaseFacts) -> DatabaseFacts {
        f.subscription = Some(SubscriptionFacts {
            enabled: false,
            has_slot: false,
            completing: true,
        });
        f.source_slot = false;
        f.publication = false;
        f.lag = None;
        f
    }

    fn phase(f: &DatabaseFacts, held: u64) -> Phase {
        derive_phase(f, &LIMITS, Duration::from_secs(held))
    }

    #[test]
    fn a_fresh_database_goes_to_schema() {
        let mut f = ready();
        f.subscription = None;
        f.destination = DestinationDatabase::Missing;
        assert_eq!(phase(&f, 0), Phase::Schema);
        f.destination = DestinationDatabase::Ours {
            schema_applied: false,
        };
        assert_eq!(phase(&f, 0), Phase::Schema);
    }

    #[test]
    fn sequences_come_before_replication_setup() {
        let mut f = ready();
        f.subscription = None;
        f.sequences_behind = 3;
        assert_eq!(phase(&f, 0), Phase::Sequences);
        f.sequences_behind = 0;
        assert_eq!(phase(&f, 0), Phase::ReplicationSetup);
    }

    #[test]
    fn a_running_fast_copy_is_initial_sync_even_when_sequences_move() {
        let mut f = ready();
        f.subscription = None;
        f.copying = true;
        f.sequences_behind = 3;
        assert_eq!(phase(&f, 0), Phase::InitialSync);
        f.blocked = true;
        assert_eq!(phase(&f, 0), Phase::Problematic);
    }

    #[test]
    fn tables_not_ready_mean_initial_sync() {
        let mut f = ready();
        f.tables_ready = 3;
        assert_eq!(phase(&f, 1000), Phase::InitialSync);
    }

    #[test]
    fn cutover_ready_needs_every_condition_for_stable_for() {
        let f = ready();
        assert!(cutover_conditions_met(&f, &LIMITS));
        assert_eq!(phase(&f, 29), Phase::CatchUp);
        assert_eq!(phase(&f, 30), Phase::CutoverReady);
    }

    #[test]
    fn each_unmet_condition_keeps_catch_up() {
        type Change = Box<dyn Fn(&mut DatabaseFacts)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "lag bytes",
                Box::new(|f| {
                    f.lag = Some(Lag {
                        bytes: 1001,
                        seconds: 0.0,
                    })
                }),
            ),
            (
                "lag seconds",
                Box::new(|f| {
                    f.lag = Some(Lag {
                        bytes: 0,
                        seconds: 5.5,
                    })
                }),
            ),
            ("lag unknown", Box::new(|f| f.lag = None)),
            ("missing sequence", Box::new(|f| f.sequences_missing = 1)),
        ];
        for (what, change) in cases {
            let mut f = ready();
            change(&mut f);
            assert!(!cutover_conditions_met(&f, &LIMITS), "{what}");
            assert_eq!(phase(&f, 1000), Phase::CatchUp, "{what}");
        }
    }

    #[test]
    fn building_refreshing_and_analyzing_after_the_copy_are_part_of_initial_sync() {
        let mut f = ready();
        f.deferred_missing = 3;
        assert!(!cutover_conditions_met(&f, &LIMITS));
        assert_eq!(phase(&f, 1000), Phase::InitialSync);
        f.deferred_missing = 0;
        assert_eq!(phase(&f, 1000), Phase::CutoverReady);
    }

    #[test]
    fn a_sequence_the_next_sync_corrects_does_not_break_the_conditions() {
        let mut f = ready();
        f.sequences_behind = 2;
        assert!(cutover_conditions_met(&f, &LIMITS));
        assert_eq!(phase(&f, 30), Phase::CutoverReady);
    }

    #[test]
    fn findings_make_it_problematic_at_any_stage_but_completed() {
        for destination in [
            DestinationDatabase::Missing,
            DestinationDatabase::Ours {
                schema_applied: true,
            },
        ] {
            let mut f = ready();
            f.destination = destination;
            f.blocked = true;
            assert_eq!(phase(&f, 1000), Phase::Problematic);
            assert!(!cutover_conditions_met(&f, &LIMITS));
        }
        let mut f = detached(ready());
        f.blocked = true;
        assert_eq!(phase(&f, 0), Phase::Completed);
    }

    #[test]
    fn completion_is_a_detached_subscription_with_nothing_left_on_the_source() {
        let f = detached(ready());
        assert!(is_completed(&f));
        assert_eq!(phase(&f, 0), Phase::Completed);
        for (slot, publication) in [(true, false), (false, true), (true, true)] {
            let mut f = detached(ready());
            f.source_slot = slot;
            f.publication = publication;
            f.blocked = true;
            assert!(!is_completed(&f), "{slot} {publication}");
            assert_eq!(phase(&f, 0), Phase::Completing, "{slot} {publication}");
        }
    }

    #[test]
    fn every_state_a_killed_completion_leaves_is_completing() {
        // (enabled, has_slot, slot on the source, publication on the source), in step order.
        for (enabled, has_slot, slot, publication) in [
            (true, true, true, true),    // marked
            (false, true, true, true),   // disabled
            (false, true, false, true),  // slot dropped
            (false, true, false, false), // publication dropped
        ] {
            let mut f = ready();
            f.subscription = Some(SubscriptionFacts {
                enabled,
                has_slot,
                completing: true,
            });
            f.source_slot = slot;
            f.publication = publication;
            assert_eq!(
                phase(&f, 1000),
                Phase::Completing,
                "{enabled} {has_slot} {slot}"
            );
            assert!(!cutover_conditions_met(&f, &LIMITS));
        }
    }

    #[test]
    fn a_hand_altered_subscription_is_problematic() {
        for (enabled, has_slot) in [(false, true), (true, false)] {
            let mut f = ready();
            f.subscription = Some(SubscriptionFacts {
                enabled,
                has_slot,
                completing: false,
            });
            f.blocked = true; // the orchestrator's finding
            assert_eq!(phase(&f, 1000), Phase::Problematic, "{enabled} {has_slot}");
        }
    }

    #[test]
    fn a_database_without_tables_can_be_ready() {
        let mut f = ready();
        f.tables_total = 0;
        f.tables_ready = 0;
        assert_eq!(phase(&f, 30), Phase::CutoverReady);
    }
}
