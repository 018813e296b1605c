//! One source database, one pass: [`look`] at both servers, derive the phase (the pure
//! [`derive_phase`]), take that phase's step ([`act`]), and assemble the status once, from what
//! was seen and what was done ([`Look::into_status`]). [`pass`] is that sequence; the reconcile
//! loop runs it every tick with the [`Memory`] of its database, the one-look commands run it once
//! with none and without acting.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::catalog::model::{QualifiedName, SchemaCatalog};
use crate::catalog::{deferred, subscription};
use crate::ddl;
use crate::destination::{self, Built};
use crate::findings::{Code, Finding};
use crate::naming::ReplicationNames;
use crate::pg::{PgError, Session};
use crate::phase::{self, DatabaseFacts, DestinationState, Phase, SubscriptionFacts, derive_phase};
use crate::phases::apply::{self, ApplyWatch};
use crate::phases::{
    DbConn, MappingContext, catchup, complete, copy, drift, preflight, replication, schema, sync,
    triggers,
};
use crate::sequences;
use crate::status::{DatabaseStatus, PartitionedTable, SlotStatus, TableState, TableStatus};

use super::copy_retry::CopyRetry;
use super::schema_memo::SchemaMemo;
use super::schema_retry::{self, SchemaRetry};

/// Connections one database's task keeps open.
pub struct Connections {
    pub source: DbConn,
    pub destination: DbConn,
    pub destination_admin: DbConn,
}

impl Connections {
    pub fn new(ctx: &MappingContext, db: &str) -> Self {
        Connections {
            source: DbConn::new(&ctx.source, db),
            destination: DbConn::new(&ctx.destination, db),
            destination_admin: DbConn::new(&ctx.destination, ctx.destination.maintenance_db()),
        }
    }

    /// Drops every connection, so the next tick reconnects (after an error).
    pub fn reset(&mut self) {
        self.source.reset();
        self.destination.reset();
        self.destination_admin.reset();
    }
}

/// What the task of one database remembers between passes. A one-look command starts with the
/// default (nothing), which is also what a restart leaves: every clock starts again.
#[derive(Default)]
pub struct Memory {
    /// Since when the cutover conditions have held without a break.
    conditions_met_since: Option<Instant>,
    /// Bytes copied at an earlier pass, for the ETA.
    progress: Option<(Instant, u64)>,
    /// How fast each source sequence moves, for the lead the catch-up sync gives it.
    sequence_rates: sequences::Rates,
    /// Failures of the fast copy, and when it may start again.
    copy_retry: CopyRetry,
    /// The subscription's error counts between looks.
    apply: ApplyWatch,
    /// WAL and slot positions over the last `apply_behind_after`.
    lag_trend: catchup::LagTrend,
    /// The fast copy running in the background, if any.
    copy_job: Option<copy::Job>,
    /// The schema objects the destination refused, and when to try them again.
    schema_retry: SchemaRetry,
    /// The schemas of both sides as last read, while no DDL changes them.
    schemas: SchemaMemo,
}

impl Memory {
    /// Notified when the running copy job ends, if one runs.
    pub fn copy_ended(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        self.copy_job.as_ref().map(copy::Job::ended)
    }

    fn held_for(&mut self, met: bool) -> Duration {
        if met {
            self.conditions_met_since
                .get_or_insert_with(Instant::now)
                .elapsed()
        } else {
            self.conditions_met_since = None;
            Duration::ZERO
        }
    }

    /// Seconds until the copy is done at the rate seen since the first pass that copied.
    fn eta(&mut self, copied: u64, total: u64) -> Option<f64> {
        if total == 0 || copied >= total {
            self.progress = None;
            return None;
        }
        let now = Instant::now();
        let (since, copied_then) = *self.progress.get_or_insert((now, copied));
        let elapsed = now.duration_since(since).as_secs_f64();
        let rate = copied.saturating_sub(copied_then) as f64 / elapsed;
        (elapsed > 0.0 && rate > 0.0).then(|| (total - copied) as f64 / rate)
    }
}

/// Whether a pass takes the phase's step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Look and derive only (`status`, `check`): nothing is changed.
    Look,
    /// Look, derive and take the step (the reconcile loop, which holds the mapping's lease).
    Act,
}

/// A pass that ended with a status.
pub struct Passed {
    pub status: DatabaseStatus,
    /// A step that moves to the next phase was taken, or the step built, refreshed or analyzed
    /// something: look again at once.
    pub stepped: bool,
}

/// A pass that failed: the status of its look, when the look itself succeeded.
pub struct Failed {
    pub status: Option<DatabaseStatus>,
    pub error: PgError,
}

/// One pass over database `db`: look, derive, act (in [`Mode::Act`]), status.
pub async fn pass(
    ctx: &MappingContext,
    db: &str,
    instance_blocked: bool,
    conns: &mut Connections,
    memory: &mut Memory,
    mode: Mode,
) -> Result<Passed, Failed> {
    let now = Instant::now();
    let names = ctx.names(db);
    let copy_ended = finish_copy_job(ctx, db, &names, conns, memory, now).await;
    let progress = memory.copy_job.as_ref().map(|job| &*job.progress);
    let mut look = look(
        ctx,
        db,
        &names,
        instance_blocked,
        conns,
        progress,
        &mut memory.schemas,
    )
    .await
    .map_err(|error| Failed {
        status: None,
        error,
    })?;
    memory.sequence_rates.record(&look.source_sequences, now);
    memory
        .schema_retry
        .operator_generation(ctx.retry_generation.load(Ordering::Relaxed));
    let excluded: Vec<&str> = ctx.schema_excluded(db).into_iter().collect();
    let schema_findings = memory
        .schema_retry
        .findings(db, &ctx.name, &look.unapplied, now)
        .into_iter()
        .chain(schema_retry::excluded_finding(db, &ctx.name, &excluded));
    let enabled = look.facts.subscription.is_some_and(|s| s.enabled);
    let apply_findings = memory.apply.update(
        &names.subscription,
        db,
        look.apply,
        enabled,
        now,
        ApplyWatch::window(ctx.poll),
    );
    let behind = memory.lag_trend.update(
        &names.subscription,
        db,
        look.positions.filter(|_| enabled),
        now,
        ctx.apply_behind_after,
    );
    look.add_findings(
        memory
            .copy_retry
            .finding(db, &ctx.name, now)
            .into_iter()
            .chain(apply_findings)
            .chain(behind)
            .chain(schema_findings),
    );
    let met = phase::cutover_conditions_met(&look.facts, &ctx.thresholds);
    let held = memory.held_for(met);
    let phase = derive_phase(&look.facts, &ctx.thresholds, held);
    let (copied, total) = TableStatus::bytes(&look.tables);
    let eta = memory.eta(copied, total);
    let waits = match phase {
        Phase::ReplicationSetup => {
            ctx.copy.fast && memory.copy_job.is_none() && !memory.copy_retry.may_start(now)
        }
        Phase::Schema => !memory.schema_retry.may_start(now),
        _ => false,
    };
    let outcome = match mode {
        Mode::Act if !waits => act(ctx, db, phase, &look, conns, memory, now).await,
        _ => Ok(false),
    };
    let worked = matches!(outcome, Ok(true));
    let outcome = outcome.map(|_| ());
    let stepped = copy_ended
        || worked
        || (mode == Mode::Act
            && !waits
            && matches!(
                phase,
                Phase::Schema | Phase::Sequences | Phase::ReplicationSetup
            ));
    let mut status = look.into_status(db, phase, met, held, eta);
    status.rates = memory.lag_trend.rates().map(|r| crate::status::ApplyRates {
        wal_mb_per_min: r.wal * 60.0 / 1_048_576.0,
        apply_mb_per_min: r.apply * 60.0 / 1_048_576.0,
        over_seconds: r.seconds,
    });
    match outcome {
        Ok(()) => Ok(Passed { status, stepped }),
        Err(error) => Err(Failed {
            status: Some(status),
            error,
        }),
    }
}

/// Takes the outcome of a copy job that has ended: a finished copy gets its subscription (on the
/// copy's slot, streaming from where its snapshot ends). A failed copy, or a subscription that
/// could not be created, starts over once its backoff has passed (see [`CopyRetry`]); its slot
/// is dropped at once so that it does not hold WAL on the source meanwhile. Returns whether a
/// job had ended.
async fn finish_copy_job(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    conns: &mut Connections,
    memory: &mut Memory,
    now: Instant,
) -> bool {
    memory
        .copy_retry
        .operator_generation(ctx.retry_generation.load(Ordering::Relaxed));
    let Some(job) = memory.copy_job.take_if(|job| job.is_finished()) else {
        return false;
    };
    let outcome = match job.outcome().await {
        Ok(copy::Copied::Done) => match conns.destination.get().await {
            Ok(dst) => replication::create_subscription(ctx, db, names, dst, false).await,
            Err(e) => Err(e),
        },
        Ok(copy::Copied::Skipped) => Ok(()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => memory.copy_retry.succeeded(),
        Err(e) => {
            memory.copy_retry.failed(&e, now);
            tracing::warn!(mapping = %ctx.name, database = db, error = %e, failures = memory.copy_retry.failures(), "the initial copy failed");
            if let Err(e) = copy::drop_slot_of_failed_copy(ctx, db).await {
                tracing::warn!(mapping = %ctx.name, database = db, error = %e, "could not drop the slot of the failed copy; the next attempt drops it");
            }
        }
    }
    true
}

/// What one look at a database found: the facts the phase is derived from, and what the status
/// shows of them. Nothing in it is decided yet.
#[derive(Debug, Clone)]
pub struct Look {
    /// Publication, slot and subscription of the database looked at.
    pub names: ReplicationNames,
    pub facts: DatabaseFacts,
    pub findings: Vec<Finding>,
    /// Per-table progress: the copy job's while it copies, the subscription's afterwards.
    pub tables: Vec<TableStatus>,
    pub slot: Option<SlotStatus>,
    /// Every sequence on both sides, once the schema exists.
    pub sequences: Option<sequences::Comparison>,
    pub partitions: Vec<PartitionedTable>,
    /// The source schema, when the subscription exists: `act` builds deferred objects from it.
    pub source_catalog: Option<Arc<SchemaCatalog>>,
    /// The source's sequence values (once the schema exists), for the rate of each.
    pub source_sequences: Vec<sequences::SequenceValue>,
    /// The subscription's workers and error counts, when it exists.
    pub apply: Option<apply::ApplyStats>,
    /// Schema objects the destination refused so far (its marker lists them).
    pub unapplied: Vec<String>,
    /// The source's WAL position and the slot's, while the subscriber is connected.
    pub positions: Option<catchup::Positions>,
    /// The subscription's options differ from the configured ones.
    pub options_differ: bool,
}

impl Look {
    /// A look that saw `facts` and nothing else yet.
    fn of(names: &ReplicationNames, facts: DatabaseFacts) -> Look {
        Look {
            names: names.clone(),
            facts,
            findings: Vec::new(),
            tables: Vec::new(),
            slot: None,
            sequences: None,
            partitions: Vec::new(),
            source_catalog: None,
            source_sequences: Vec::new(),
            apply: None,
            unapplied: Vec::new(),
            positions: None,
            options_differ: false,
        }
    }

    /// Adds findings the caller found (from what it remembers between passes): a blocking one
    /// blocks the database like any other.
    pub fn add_findings(&mut self, found: impl IntoIterator<Item = Finding>) {
        self.findings.extend(found);
        self.facts.blocked |= self.findings.iter().any(Finding::is_blocking);
    }

    /// Tables the subscription has copied and keeps in sync.
    fn ready_tables(&self) -> HashSet<QualifiedName> {
        self.tables
            .iter()
            .filter(|t| t.state == TableState::Ready)
            .map(|t| QualifiedName::new(&t.schema, &t.table))
            .collect()
    }

    /// The status of database `db` after this look, in `phase`.
    pub fn into_status(
        self,
        db: &str,
        phase: Phase,
        conditions_met: bool,
        held: Duration,
        eta_seconds: Option<f64>,
    ) -> DatabaseStatus {
        let finishing = phase::is_completed(&self.facts) || phase::is_completing(&self.facts);
        let sequences = self.sequences.unwrap_or_default();
        DatabaseStatus {
            name: db.to_owned(),
            phase,
            names: (&self.names).into(),
            findings: self.findings,
            last_error: None,
            tables: self.tables,
            lag: if finishing { None } else { self.facts.lag },
            slot: self.slot,
            sequences_total: sequences.total(),
            sequences_behind: self.facts.sequences_behind,
            sequences: sequences.rows,
            partitions: self.partitions,
            deferred_missing: self.facts.deferred_missing,
            cutover_conditions_met: conditions_met,
            conditions_held_seconds: held.as_secs_f64(),
            eta_seconds,
            rates: None,
        }
    }
}

/// Reads everything about `db` from both servers. Changes nothing, except applying the
/// configured `no_pk_remedy` (part of preflight's check). `copy` is the running copy job's
/// progress, if any; `schemas` the schemas an earlier look read, used again while neither
/// side's catalogs changed.
pub async fn look(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    instance_blocked: bool,
    conns: &mut Connections,
    copy: Option<&copy::Progress>,
    schemas: &mut SchemaMemo,
) -> Result<Look, PgError> {
    let src = conns.source.get().await?;
    let admin = conns.destination_admin.get().await?;
    let dest_state = schema::destination_state(ctx, db, admin).await?;
    let findings = preflight::check_database(ctx, db, src, admin, &dest_state).await?;
    let replication = catchup::observe(src, names).await?;
    let mut look = Look::of(
        names,
        DatabaseFacts {
            destination: dest_state.as_fact(),
            lag: replication.lag,
            source_slot: replication.slot.is_some(),
            publication: replication.publication,
            ..DatabaseFacts::default()
        },
    );
    look.findings = findings;
    if let DestinationState::Incomplete { unapplied } = &dest_state {
        look.unapplied.clone_from(unapplied);
    }
    if let Some(slot) = &replication.slot {
        look.findings
            .extend(catchup::slot_findings(db, names, slot));
    }
    look.slot = replication.slot;
    look.positions = replication.positions;
    if dest_state
        == (DestinationState::Ours {
            schema_applied: true,
        })
    {
        look_at_replication(ctx, db, names, conns, copy, schemas, &mut look).await?;
    }
    look.facts.blocked = instance_blocked || look.findings.iter().any(Finding::is_blocking);
    Ok(look)
}

/// The part of [`look`] once the schema is applied: subscription, copy progress, sequences,
/// tables, deferred objects, drift.
async fn look_at_replication(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    conns: &mut Connections,
    copy: Option<&copy::Progress>,
    schemas: &mut SchemaMemo,
    look: &mut Look,
) -> Result<(), PgError> {
    let src = conns.source.get().await?;
    let dst = conns.destination.get().await?;
    let found = subscription::read(dst, &names.subscription).await?;
    look.options_differ = found.as_ref().is_some_and(|s| !ctx.subscription.held_by(s));
    look.facts.subscription = found.map(|s| SubscriptionFacts {
        enabled: s.enabled,
        has_slot: s.has_slot,
        completing: s.comment.as_deref() == Some(complete::COMPLETING_MARKER),
    });
    if let Some(progress) = copy.filter(|_| look.facts.subscription.is_none()) {
        look.findings.extend(slot_waiting(db, progress));
        look.facts.copying = true;
        look.tables = progress.tables();
        look.facts.tables_total = look.tables.len();
    }
    let (seqs, values) =
        sequences::check(src, dst, sequences::Lead::margin(ctx.sequence_margin)).await?;
    look.source_sequences = values;
    look.facts.sequences_behind = seqs.behind();
    look.facts.sequences_missing = seqs.missing();
    look.sequences = Some(seqs);
    if look.facts.subscription.is_some() {
        look.apply = apply::observe(dst, &names.subscription).await?;
        let sizes = schemas.sizes(src).await?;
        look.tables = sync::tables(dst, &names.subscription, &sizes).await?;
        look.facts.tables_total = look.tables.len();
        look.facts.tables_ready = look
            .tables
            .iter()
            .filter(|t| t.state == TableState::Ready)
            .count();
        let schemas = schemas.read(src, dst).await?;
        look.facts.deferred_missing = schemas.missing.len();
        look.findings
            .extend(unbuilt_finding(db, &schemas.not_valid));
        if look.facts.tables_ready == look.facts.tables_total && !schemas.settled {
            let left = sync::matviews_to_refresh(src, dst).await?.len()
                + destination::tables_to_analyze(dst).await?.len();
            look.facts.deferred_missing += left;
            // Refreshing a view changes the catalogs (a new file); ANALYZE does not, so this
            // is remembered until the next change.
            schemas.settled = left == 0 && schemas.missing.is_empty();
        }
        if look.facts.subscription.is_some_and(|s| s.enabled) {
            let changes = schemas.drift(ctx, db, src, dst).await?;
            look.findings.extend(drift::finding(db, changes));
            look.findings.extend(triggers::held_back(src, db).await?);
        }
        look.partitions = PartitionedTable::from_catalog(&schemas.source);
        look.source_catalog = Some(schemas.source.clone());
    }
    look.findings.extend(subscription_findings(
        db,
        names,
        &look.facts,
        look.slot.is_some(),
    ));
    Ok(())
}

/// While the copy waits to create its slot: the transactions it waits for.
fn slot_waiting(db: &str, progress: &copy::Progress) -> Option<Finding> {
    let open = progress.waiting_for()?;
    Some(Finding::warning(
        Code::SlotWaiting,
        format!(
            "creating the replication slot of {db:?} waits for transactions that were \
             open on the source when it began: {open}"
        ),
        "let them finish, or end them on the source (SELECT pg_terminate_backend(pid)); \
         after slot_create_timeout the attempt fails and is tried again later",
    ))
}

/// A subscription someone changed by hand, or whose slot is gone.
fn subscription_findings(
    db: &str,
    names: &ReplicationNames,
    facts: &DatabaseFacts,
    source_slot: bool,
) -> Option<Finding> {
    match facts.subscription {
        _ if phase::is_completing(facts) || phase::is_completed(facts) => None,
        Some(SubscriptionFacts {
            enabled: false,
            has_slot: true,
            ..
        }) => Some(Finding::blocking(
            Code::SubscriptionDisabled,
            format!(
                "the subscription {} was disabled by hand",
                names.subscription
            ),
            format!(
                "enable it on the destination database {db:?}: ALTER SUBSCRIPTION {} ENABLE",
                ddl::quote::ident(&names.subscription)
            ),
        )),
        Some(SubscriptionFacts {
            enabled: true,
            has_slot: false,
            ..
        }) => Some(Finding::blocking(
            Code::SubscriptionDetached,
            format!(
                "the subscription {} has no slot but is enabled",
                names.subscription
            ),
            "run `postgres-migrator complete` for this mapping to finish what was started by hand",
        )),
        Some(_) if !source_slot => Some(Finding::blocking(
            Code::SlotMissing,
            format!(
                "the replication slot {} is gone from the source while the subscription still needs it",
                names.slot
            ),
            "drop the subscription and the destination database, then let the tool start this database again",
        )),
        _ => None,
    }
}

/// Runs the next step of `phase` for `db`, from what `look` saw. `lead` is how far ahead of the
/// source the catch-up sync keeps the sequences.
pub async fn act(
    ctx: &MappingContext,
    db: &str,
    phase: Phase,
    look: &Look,
    conns: &mut Connections,
    memory: &mut Memory,
    now: Instant,
) -> Result<bool, PgError> {
    let Connections {
        source,
        destination,
        destination_admin,
    } = conns;
    let names = &look.names;
    match phase {
        Phase::Preflight | Phase::Problematic | Phase::Completed => Ok(false),
        Phase::Completing => {
            let src = source.get().await?;
            let dst = destination.get().await?;
            tracing::info!(mapping = %ctx.name, database = db, "finishing mark complete");
            complete::complete_database(ctx, db, names, src, dst)
                .await
                .map(|()| false)
        }
        Phase::Schema => {
            let src = source.get().await?;
            let admin = destination_admin.get().await?;
            let refused = schema::apply(ctx, db, src, admin).await?;
            memory.schema_retry.attempted(refused, now);
            Ok(false)
        }
        Phase::Sequences => {
            let src = source.get().await?;
            let dst = destination.get().await?;
            sequences::sync(src, dst, sequences::Lead::margin(ctx.sequence_margin))
                .await
                .map(|_| false)
        }
        Phase::ReplicationSetup => {
            let src = source.get().await?;
            let dst = destination.get().await?;
            replication::set_up(ctx, db, names, src, dst).await?;
            if ctx.copy.fast && memory.copy_job.is_none() {
                tracing::info!(mapping = %ctx.name, database = db, workers = ctx.copy.workers, "starting the fast copy");
                memory.copy_job = Some(copy::Job::start(ctx, db));
            }
            Ok(false)
        }
        Phase::InitialSync | Phase::CatchUp | Phase::CutoverReady => {
            let src = source.get().await?;
            let dst = destination.get().await?;
            // Something built, refreshed or analyzed: what it makes possible is looked at soon.
            let mut worked = false;
            if look.facts.deferred_missing > 0
                && let Some(source_catalog) = &look.source_catalog
            {
                worked |=
                    build_deferred(ctx, db, dst, source_catalog, &look.ready_tables()).await? > 0;
            }
            // Once every table is copied: the last part of the initial sync.
            if look.facts.deferred_missing > 0
                && look.facts.subscription.is_some()
                && look.facts.tables_ready == look.facts.tables_total
            {
                for view in sync::matviews_to_refresh(src, dst).await? {
                    sync::refresh(dst, &view).await?;
                    tracing::info!(mapping = %ctx.name, database = db, view = %view, "refreshed materialized view");
                    worked = true;
                }
                worked |= analyze_some(ctx, db, dst).await? > 0;
            }
            if phase != Phase::InitialSync {
                if look.options_differ {
                    replication::set_options(ctx, db, names, dst).await?;
                }
                let lead = sequences::Lead::following(
                    ctx.sequence_margin,
                    &memory.sequence_rates,
                    ctx.poll * sequences::LEAD_POLLS,
                );
                sequences::sync(src, dst, lead).await?;
                catchup::heartbeat(src).await?;
            }
            Ok(worked)
        }
    }
}

/// ANALYZE of the destination's tables that have no statistics yet, once every table is copied
/// and built: as many as one poll interval allows (at least one), the rest at the next ticks.
/// Returns how many it analyzed.
async fn analyze_some(ctx: &MappingContext, db: &str, dst: &Session) -> Result<usize, PgError> {
    let started = Instant::now();
    let mut analyzed = 0;
    for table in destination::tables_to_analyze(dst).await? {
        destination::analyze(dst, &table).await?;
        tracing::info!(mapping = %ctx.name, database = db, table = %table, "analyzed");
        analyzed += 1;
        if started.elapsed() >= ctx.poll {
            break;
        }
    }
    Ok(analyzed)
}

/// Builds the deferred objects whose tables are ready; returns how many it built.
async fn build_deferred(
    ctx: &MappingContext,
    db: &str,
    dst: &Session,
    source_catalog: &SchemaCatalog,
    ready: &HashSet<QualifiedName>,
) -> Result<usize, PgError> {
    let objects = ddl::deferred_objects(source_catalog);
    let existing = deferred::existing(dst).await?;
    let mut built = 0;
    for object in sync::buildable(source_catalog, &objects, &existing, ready) {
        match destination::build(dst, object).await? {
            Built::Done => {
                built += 1;
                tracing::info!(mapping = %ctx.name, database = db, object = %object.name, table = %object.table, "built deferred object");
            }
            Built::Postponed => {
                tracing::info!(mapping = %ctx.name, database = db, object = %object.name, table = %object.table, "deadlocked with the apply worker; building it next tick");
            }
        }
    }
    Ok(built)
}

/// Indexes built on the destination that do not count as built, being not valid there: a
/// partitioned index stays so while a partition's index is missing or not attached (say, a
/// partition only the destination has). Without this finding cutover ready would wait with
/// nothing said.
fn unbuilt_finding(db: &str, unbuilt: &[String]) -> Option<Finding> {
    (!unbuilt.is_empty()).then(|| {
        Finding::warning(
            Code::DeferredNotBuilt,
            format!(
                "not valid on destination database {db:?} (an index of a partition is missing \
                 or not attached to it), so cutover ready waits for: {}",
                unbuilt.join(", ")
            ),
            "compare the partitions of its table and their indexes on both sides \
             (`postgres-migrator check --schema` lists what differs), create or attach the \
             missing partition index on the destination (ALTER INDEX ... ATTACH PARTITION); the \
             tool checks again every tick",
        )
    })
}

/// The status of a database no pass has seen yet.
pub fn unseen(ctx: &MappingContext, db: &str) -> DatabaseStatus {
    Look::of(&ctx.names(db), DatabaseFacts::default()).into_status(
        db,
        Phase::Preflight,
        false,
        Duration::ZERO,
        None,
    )
}
