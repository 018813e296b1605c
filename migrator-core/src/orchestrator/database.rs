//! One source database: observe both servers, derive the phase, take the next step.
//!
//! [`observe`] reads facts (and the details the status shows); `status` and `check` use it as
//! it is. [`act`] runs the one idempotent step of the derived phase.

use std::collections::HashSet;

use crate::catalog::model::{QualifiedName, SchemaCatalog};
use crate::catalog::schema as catalog;
use crate::ddl;
use crate::findings::Finding;
use crate::pg::PgError;
use crate::phase::{self, DatabaseFacts, Phase, SubscriptionFacts};
use crate::phases::{
    DbConn, MappingContext, apply, catchup, complete, copy, drift, preflight, replication, schema,
    sequences, sync, triggers,
};
use crate::status::{DatabaseStatus, PartitionedTable, TableState};

/// Connections one database's task keeps open.
pub struct Connections {
    pub source: DbConn,
    pub destination: DbConn,
    pub destination_admin: DbConn,
}

impl Connections {
    pub fn new(ctx: &MappingContext, db: &str) -> Self {
        let admin_db = ctx
            .destination
            .pg
            .get_dbname()
            .unwrap_or("postgres")
            .to_owned();
        Connections {
            source: DbConn::new(&ctx.source, db),
            destination: DbConn::new(&ctx.destination, db),
            destination_admin: DbConn::new(&ctx.destination, &admin_db),
        }
    }

    /// Drops every connection, so the next tick reconnects (after an error).
    pub fn reset(&mut self) {
        self.source.reset();
        self.destination.reset();
        self.destination_admin.reset();
    }
}

/// What one look at a database found.
#[derive(Debug, Clone)]
pub struct Observation {
    pub facts: DatabaseFacts,
    pub status: DatabaseStatus,
    /// The source schema, when this look needed it (replication running): `act` reuses it.
    pub source_catalog: Option<SchemaCatalog>,
    /// The source's sequence values (once the schema exists), for the rate of each.
    pub source_sequences: Vec<sequences::SequenceValue>,
    /// The subscription's workers and error counts, when it exists.
    pub apply: Option<apply::ApplyStats>,
}

/// Reads everything about `db` from both servers. Changes nothing, except applying the
/// configured `no_pk_remedy` (part of preflight's check). `held_for` is how long the cutover
/// conditions have held so far (the caller keeps that clock).
pub async fn observe(
    ctx: &MappingContext,
    db: &str,
    instance_blocked: bool,
    conns: &mut Connections,
    copy: Option<&copy::Progress>,
) -> Result<Observation, PgError> {
    let names = ctx.names(db);
    let st = conns.source.target();
    let dt = conns.destination.target();
    let Connections {
        source,
        destination,
        destination_admin,
    } = conns;
    let src = source.get().await?;
    let admin = destination_admin.get().await?;

    let dest_state = schema::destination_state(ctx, db, admin).await?;
    let mut findings = preflight::check_database(ctx, db, src, admin, &dest_state).await?;
    let replication = catchup::observe(src, &st, &names).await?;

    let mut facts = DatabaseFacts {
        blocked: false,
        destination: dest_state.as_fact(),
        subscription: None,
        tables_total: 0,
        tables_ready: 0,
        deferred_missing: 0,
        sequences_behind: 0,
        sequences_missing: 0,
        lag: replication.lag,
        source_slot: replication.slot.is_some(),
        publication: replication.publication,
        copying: false,
    };
    let mut tables = Vec::new();
    let mut sequences_total = 0;
    let mut sequence_rows = Vec::new();
    let mut partitions = Vec::new();
    let mut source_catalog = None;
    let mut source_sequences = Vec::new();
    let mut apply_stats = None;
    if let Some(slot) = &replication.slot {
        findings.extend(catchup::slot_findings(db, &names, slot));
    }
    if let schema::DestinationState::Ours {
        schema_applied: true,
    } = dest_state
    {
        let dst = destination.get().await?;
        let sub = dst
            .query_opt(
                "SELECT subenabled, subslotname IS NOT NULL, \
                   coalesce(obj_description(oid, 'pg_subscription') = $2, false) FROM pg_subscription \
                 WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&names.subscription, &complete::COMPLETING_MARKER],
            )
            .await
            .map_err(|e| PgError::query(&dt, "reading the subscription", e))?;
        facts.subscription = sub.map(|r| SubscriptionFacts {
            enabled: r.get(0),
            has_slot: r.get(1),
            completing: r.get(2),
        });
        if let Some(progress) = copy.filter(|_| facts.subscription.is_none()) {
            if let Some(open) = progress.waiting_for() {
                findings.push(Finding::warning(
                    "slot_waiting",
                    format!(
                        "creating the replication slot of {db:?} waits for transactions that were \
                         open on the source when it began: {open}"
                    ),
                    "let them finish, or end them on the source (SELECT pg_terminate_backend(pid)); \
                     after slot_create_timeout the attempt fails and is tried again later",
                ));
            }
            facts.copying = true;
            tables = progress.tables();
            facts.tables_total = tables.len();
        }
        let (seqs, values) = sequences::check(
            src,
            &st,
            dst,
            &dt,
            sequences::Lead::margin(ctx.sequence_margin),
        )
        .await?;
        source_sequences = values;
        facts.sequences_behind = seqs.behind();
        facts.sequences_missing = seqs.missing();
        sequences_total = seqs.total();
        sequence_rows = seqs.rows;
        if facts.subscription.is_some() {
            apply_stats = apply::observe(dst, &dt, &names.subscription).await?;
            let sizes = sync::source_sizes(src, &st).await?;
            tables = sync::tables(dst, &dt, &names.subscription, &sizes).await?;
            facts.tables_total = tables.len();
            facts.tables_ready = tables
                .iter()
                .filter(|t| t.state == TableState::Ready)
                .count();
            let read = catalog::read(src, &st).await?;
            let existing = sync::existing(dst, &dt).await?;
            facts.deferred_missing = ddl::deferred_objects(&read)
                .iter()
                .filter(|o| !existing.has(o))
                .count();
            if facts.tables_ready == facts.tables_total {
                facts.deferred_missing +=
                    sync::matviews_to_refresh(src, &st, dst, &dt).await?.len();
            }
            if facts.subscription.is_some_and(|s| s.enabled) {
                let on_destination = catalog::read(dst, &dt).await?;
                let mut changes = drift::compare(&read, &on_destination);
                changes.extend(drift::compare_objects(
                    &drift::signatures(src, &st).await?,
                    &drift::signatures(dst, &dt).await?,
                ));
                findings.extend(drift::finding(db, &changes));
                findings.extend(triggers::held_back(src, &st, db).await?);
            }
            partitions = PartitionedTable::from_catalog(&read);
            source_catalog = Some(read);
        }
        match facts.subscription {
            _ if phase::is_completing(&facts) || phase::is_completed(&facts) => {}
            Some(SubscriptionFacts {
                enabled: false,
                has_slot: true,
                ..
            }) => findings.push(Finding::blocking(
                "subscription_disabled",
                format!("the subscription {} was disabled by hand", names.subscription),
                format!(
                    "enable it on the destination database {db:?}: ALTER SUBSCRIPTION {} ENABLE",
                    ddl::quote::ident(&names.subscription)
                ),
            )),
            Some(SubscriptionFacts {
                enabled: true,
                has_slot: false,
                ..
            }) => findings.push(Finding::blocking(
                "subscription_detached",
                format!("the subscription {} has no slot but is enabled", names.subscription),
                "run `postgres-migrator complete` for this mapping to finish what was started by hand",
            )),
            Some(_) if replication.slot.is_none() => {
                findings.push(Finding::blocking(
                    "slot_missing",
                    format!("the replication slot {} is gone from the source while the subscription still needs it", names.slot),
                    "drop the subscription and the destination database, then let the tool start this database again",
                ))
            }
            _ => {}
        }
    }
    facts.blocked = instance_blocked || findings.iter().any(Finding::is_blocking);
    let conditions_met = phase::cutover_conditions_met(&facts, &ctx.thresholds);
    let status = DatabaseStatus {
        name: db.to_owned(),
        phase: Phase::Preflight,
        names: (&names).into(),
        findings,
        last_error: None,
        tables,
        lag: if phase::is_completed(&facts) || phase::is_completing(&facts) {
            None
        } else {
            facts.lag
        },
        slot: replication.slot,
        sequences_total,
        sequences_behind: facts.sequences_behind,
        sequences: sequence_rows,
        partitions,
        deferred_missing: facts.deferred_missing,
        cutover_conditions_met: conditions_met,
        conditions_held_seconds: 0.0,
        eta_seconds: None,
    };
    Ok(Observation {
        facts,
        status,
        source_catalog,
        source_sequences,
        apply: apply_stats,
    })
}

/// Adds findings the caller found (from what it remembers between ticks) to an observation: a
/// blocking one blocks the database like any other.
pub fn add_findings(
    observation: &mut Observation,
    limits: &phase::Thresholds,
    found: impl IntoIterator<Item = Finding>,
) {
    observation.status.findings.extend(found);
    if observation.status.findings.iter().any(Finding::is_blocking) {
        observation.facts.blocked = true;
    }
    observation.status.cutover_conditions_met =
        phase::cutover_conditions_met(&observation.facts, limits);
}

/// Runs the next step of `phase` for `db`. `source_catalog` is the one `observe` read, if any;
/// `lead` is how far ahead of the source the catch-up sync keeps the sequences.
#[allow(clippy::too_many_arguments)]
pub async fn act(
    ctx: &MappingContext,
    db: &str,
    phase: Phase,
    status: &DatabaseStatus,
    source_catalog: Option<&SchemaCatalog>,
    lead: sequences::Lead<'_>,
    conns: &mut Connections,
    copy_job: &mut Option<copy::Job>,
) -> Result<(), PgError> {
    let names = ctx.names(db);
    let st = conns.source.target();
    let dt = conns.destination.target();
    let Connections {
        source,
        destination,
        destination_admin,
    } = conns;
    match phase {
        Phase::Preflight | Phase::Problematic | Phase::Completed => Ok(()),
        Phase::Completing => {
            let src = source.get().await?;
            let dst = destination.get().await?;
            tracing::info!(mapping = %ctx.name, database = db, "finishing mark complete");
            complete::complete_database(ctx, db, &names, src, dst).await
        }
        Phase::Schema => {
            let src = source.get().await?;
            let admin = destination_admin.get().await?;
            schema::apply(ctx, db, src, admin).await
        }
        Phase::Sequences => {
            let src = source.get().await?;
            let dst = destination.get().await?;
            sequences::sync(
                src,
                &st,
                dst,
                &dt,
                sequences::Lead::margin(ctx.sequence_margin),
            )
            .await
            .map(|_| ())
        }
        Phase::ReplicationSetup => {
            let src = source.get().await?;
            let dst = destination.get().await?;
            replication::set_up(ctx, db, &names, src, dst).await?;
            if ctx.copy.fast && copy_job.is_none() {
                tracing::info!(mapping = %ctx.name, database = db, workers = ctx.copy.workers, "starting the fast copy");
                *copy_job = Some(copy::Job::start(ctx, db));
            }
            Ok(())
        }
        Phase::InitialSync | Phase::CatchUp | Phase::CutoverReady => {
            let src = source.get().await?;
            let dst = destination.get().await?;
            let ready: HashSet<QualifiedName> = status
                .tables
                .iter()
                .filter(|t| t.state == TableState::Ready)
                .map(|t| QualifiedName::new(&t.schema, &t.table))
                .collect();
            if status.deferred_missing > 0
                && let Some(source_catalog) = source_catalog
            {
                let objects = ddl::deferred_objects(source_catalog);
                let existing = sync::existing(dst, &dt).await?;
                for object in sync::buildable(source_catalog, &objects, &existing, &ready) {
                    match sync::build(dst, &dt, object).await? {
                        sync::Built::Done => {
                            tracing::info!(mapping = %ctx.name, database = db, object = %object.name, table = %object.table, "built deferred object");
                        }
                        sync::Built::Postponed => {
                            tracing::info!(mapping = %ctx.name, database = db, object = %object.name, table = %object.table, "deadlocked with the apply worker; building it next tick");
                        }
                    }
                }
            }
            if phase != Phase::InitialSync {
                if status.deferred_missing > 0 {
                    for view in sync::matviews_to_refresh(src, &st, dst, &dt).await? {
                        sync::refresh(dst, &dt, &view).await?;
                        tracing::info!(mapping = %ctx.name, database = db, view = %view, "refreshed materialized view");
                    }
                }
                sequences::sync(src, &st, dst, &dt, lead).await?;
                catchup::heartbeat(src, &st).await?;
            }
            Ok(())
        }
    }
}
