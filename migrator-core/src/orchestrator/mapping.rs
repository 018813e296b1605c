//! The task of one mapping, and the tasks of its databases.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::copy_retry::CopyRetry;
use super::database::{self, Connections};
use super::lease::{self, Acquired, Lease};
use super::{Claims, Update, retry_delays};
use crate::findings::Finding;
use crate::pg::PgError;
use crate::phase::{Phase, derive_phase};
use crate::phases::apply::ApplyWatch;
use crate::phases::preflight::{self, Claim, InstanceReport};
use crate::phases::{DbConn, MappingContext};
use crate::phases::{copy, cutover, sequences};
use crate::phases::{retention, roles};
use crate::status::DatabaseStatus;

/// Runs mapping `ctx` until `shutdown`: takes the mapping's lease (see [`lease`]), acts while it
/// holds it, and while another instance holds it shows who and waits to take over.
pub(super) async fn run(
    ctx: Arc<MappingContext>,
    poll: Duration,
    claims: Claims,
    updates: mpsc::UnboundedSender<Update>,
    shutdown: CancellationToken,
) {
    let application_name = lease::application_name();
    let mut delays = retry_delays(poll);
    let mut first = true;
    while !shutdown.is_cancelled() {
        let delay = match Lease::acquire(&ctx.source, &ctx.name, &application_name).await {
            Ok(Acquired::Held(lease)) => {
                tracing::info!(mapping = %ctx.name, "took the mapping's lease: this instance acts for it");
                ctx.holds_lease.store(true, Ordering::Relaxed);
                let _ = updates.send(Update::Lease {
                    name: ctx.name.clone(),
                    held_here: true,
                    holder: None,
                });
                act_while_held(
                    &ctx,
                    poll,
                    &claims,
                    &updates,
                    &shutdown,
                    lease.lost(),
                    &mut first,
                )
                .await;
                ctx.holds_lease.store(false, Ordering::Relaxed);
                drop(lease);
                if !shutdown.is_cancelled() {
                    tracing::warn!(mapping = %ctx.name, "lost the mapping's lease: every task of it stopped; taking it again");
                    let _ = updates.send(Update::Lease {
                        name: ctx.name.clone(),
                        held_here: false,
                        holder: None,
                    });
                }
                delays = retry_delays(poll);
                Duration::ZERO
            }
            Ok(Acquired::Busy(holder)) => {
                let _ = updates.send(Update::Lease {
                    name: ctx.name.clone(),
                    held_here: false,
                    holder,
                });
                delays = retry_delays(poll);
                poll
            }
            Err(e) => {
                tracing::warn!(mapping = %ctx.name, error = %e, "cannot take the mapping's lease; retrying");
                report_error(
                    &ctx,
                    &updates,
                    &e,
                    "lease",
                    "the tool takes a session lock on a direct connection to the source's maintenance database before it acts; fix what the message says, then restart postgres-migrator",
                );
                delays.next().unwrap_or(poll)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Acts for mapping `ctx` until `shutdown` (graceful: each task finishes its step) or until
/// `lost` fires (the lease is gone: every task stops before its next statement).
async fn act_while_held(
    ctx: &Arc<MappingContext>,
    poll: Duration,
    claims: &Claims,
    updates: &mpsc::UnboundedSender<Update>,
    shutdown: &CancellationToken,
    lost: CancellationToken,
    first: &mut bool,
) {
    let ctx = ctx.clone();
    let (report_tx, report_rx) = watch::channel::<Option<Arc<InstanceReport>>>(None);
    let mut databases: BTreeMap<String, (CancellationToken, JoinHandle<()>)> = BTreeMap::new();
    let mut source = DbConn::new(&ctx.source, maintenance_db(&ctx.source));
    let mut destination = DbConn::new(&ctx.destination, maintenance_db(&ctx.destination));
    let mut delays = retry_delays(poll);
    let mut wal_watch = retention::WalWatch::default();
    loop {
        let checked = async {
            let src = source.get().await?;
            let dst = destination.get().await?;
            let mut report = preflight::check_instance(&ctx, src, dst).await?;
            let wal = retention::observe(&ctx, src, &report.databases).await?;
            let forecast = wal_watch.update(&wal, Instant::now());
            report
                .findings
                .extend(retention::orphans(&wal, &report.databases));
            report
                .findings
                .extend(wal_watch.copy_warning(&wal, ctx.limiter.limit_mb()));
            let plan = roles::observe(&ctx, src, dst).await?;
            Ok::<_, PgError>((report, plan, forecast))
        };
        let checked = tokio::select! {
            _ = lost.cancelled() => break,
            checked = checked => checked,
        };
        let checked = match checked {
            Ok((mut report, plan, forecast)) => {
                claims.register(Claim {
                    mapping: ctx.name.clone(),
                    destination: ctx.destination_key(),
                    databases: report.databases.clone(),
                    roles: plan.definitions.clone(),
                });
                if *first {
                    claims.wait_for_all(poll).await;
                    *first = false;
                }
                report.findings.extend(plan.findings.iter().cloned());
                report.findings.extend(claims.conflicts_for(&ctx.name));
                // Roles first: every database's schema names them as owners and grantees.
                let applied = if report.blocked() || lost.is_cancelled() {
                    Ok(())
                } else {
                    match destination.get().await {
                        Ok(dst) => roles::apply(&ctx, &plan, dst).await,
                        Err(e) => Err(e),
                    }
                };
                applied.map(|()| (report, plan.roles, forecast))
            }
            Err(e) => Err(e),
        };
        let delay = match checked {
            Ok((report, roles, forecast)) => {
                let _ = updates.send(Update::Mapping {
                    name: ctx.name.clone(),
                    findings: report.findings.clone(),
                    last_error: None,
                    instructions: Some(cutover::instructions(&ctx, &report.databases)),
                    roles: Some(roles),
                    wal: Some(forecast),
                });
                for db in &report.databases {
                    databases.entry(db.clone()).or_insert_with(|| {
                        let token = shutdown.child_token();
                        let task = tokio::spawn(run_database(
                            ctx.clone(),
                            db.clone(),
                            poll,
                            report_rx.clone(),
                            updates.clone(),
                            token.clone(),
                            lost.clone(),
                        ));
                        (token, task)
                    });
                }
                let gone: Vec<String> = databases
                    .keys()
                    .filter(|db| !report.databases.contains(db))
                    .cloned()
                    .collect();
                for db in gone {
                    if let Some((token, task)) = databases.remove(&db) {
                        token.cancel();
                        let _ = task.await;
                    }
                    let _ = updates.send(Update::DatabaseGone {
                        mapping: ctx.name.clone(),
                        database: db,
                    });
                }
                report_tx.send_replace(Some(Arc::new(report)));
                delays = retry_delays(poll);
                poll
            }
            Err(e) => {
                source.reset();
                destination.reset();
                tracing::warn!(mapping = %ctx.name, error = %e, "instance check failed; retrying");
                report_error(
                    &ctx,
                    updates,
                    &e,
                    "connection",
                    "fix the mapping's connection settings or the server's access rules, then restart postgres-migrator",
                );
                delays.next().unwrap_or(poll)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = lost.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    for (_, (token, task)) in databases {
        token.cancel();
        let _ = task.await;
    }
}

/// Shows a failed mapping-level step: as the last error, and as a blocking finding (`code`, with
/// `fix`) when retrying cannot help.
fn report_error(
    ctx: &MappingContext,
    updates: &mpsc::UnboundedSender<Update>,
    e: &PgError,
    code: &'static str,
    fix: &str,
) {
    let findings = if e.is_transient() {
        Vec::new()
    } else {
        vec![Finding::blocking(code, e.to_string(), fix)]
    };
    let _ = updates.send(Update::Mapping {
        name: ctx.name.clone(),
        findings,
        last_error: Some(e.to_string()),
        instructions: None,
        roles: None,
        wal: None,
    });
}

fn maintenance_db(conn: &crate::config::ResolvedConnection) -> &str {
    conn.pg.get_dbname().unwrap_or("postgres")
}

/// The clocks a database task keeps between ticks.
#[derive(Default)]
struct Clocks {
    /// Since when the cutover conditions have held without a break.
    conditions_met_since: Option<Instant>,
    /// Bytes copied at an earlier tick, for the ETA.
    progress: Option<(Instant, u64)>,
    /// How fast each source sequence moves, for the lead the catch-up sync gives it.
    sequence_rates: sequences::Rates,
    /// Failures of the fast copy, and when it may start again.
    copy_retry: CopyRetry,
    /// The subscription's error counts between looks.
    apply: ApplyWatch,
}

impl Clocks {
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

    /// Seconds until the copy is done at the rate seen since the first tick that copied.
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

/// Runs one database of a mapping until `shutdown` (after its current step) or `lost` (at once:
/// the lease is gone, and with it the right to send another statement; a running copy job is
/// aborted with the task).
async fn run_database(
    ctx: Arc<MappingContext>,
    db: String,
    poll: Duration,
    mut report: watch::Receiver<Option<Arc<InstanceReport>>>,
    updates: mpsc::UnboundedSender<Update>,
    shutdown: CancellationToken,
    lost: CancellationToken,
) {
    let mut conns = Connections::new(&ctx, &db);
    let mut copy_job = None;
    let mut clocks = Clocks::default();
    let mut delays = retry_delays(poll);
    let mut last: Option<DatabaseStatus> = None;
    // Nothing happens before the mapping's first instance check.
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = report.wait_for(Option::is_some) => {}
    }
    loop {
        let instance_blocked = report.borrow().as_ref().is_some_and(|r| r.blocked());
        let outcome = tokio::select! {
            _ = lost.cancelled() => break,
            outcome = tick(
                &ctx,
                &db,
                instance_blocked,
                &mut conns,
                &mut clocks,
                &mut copy_job,
            ) => outcome,
        };
        let delay = match outcome {
            Ok((status, stepped)) => {
                let _ = updates.send(Update::Database {
                    mapping: ctx.name.clone(),
                    status: Box::new(status.clone()),
                });
                last = Some(status);
                delays = retry_delays(poll);
                // A step that moves to the next phase is followed by the next look at once.
                if stepped { Duration::ZERO } else { poll }
            }
            Err((status, e)) => {
                conns.reset();
                tracing::warn!(mapping = %ctx.name, database = %db, error = %e, "step failed; retrying");
                let mut status = status
                    .or_else(|| last.clone())
                    .unwrap_or_else(|| placeholder(&ctx, &db));
                status.last_error = Some(e.to_string());
                let _ = updates.send(Update::Database {
                    mapping: ctx.name.clone(),
                    status: Box::new(status),
                });
                delays.next().unwrap_or(poll)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

type TickError = (Option<DatabaseStatus>, crate::pg::PgError);

/// One look and one step. Returns the status and whether a phase-changing step was taken.
async fn tick(
    ctx: &MappingContext,
    db: &str,
    instance_blocked: bool,
    conns: &mut Connections,
    clocks: &mut Clocks,
    copy_job: &mut Option<copy::Job>,
) -> Result<(DatabaseStatus, bool), TickError> {
    let now = Instant::now();
    clocks
        .copy_retry
        .operator_generation(ctx.retry_generation.load(Ordering::Relaxed));
    // A finished copy either created the subscription (seen below) or failed: then it starts
    // over once its backoff has passed (see `copy_retry`).
    if let Some(job) = copy_job.take_if(|job| job.is_finished()) {
        match job.outcome().await {
            Ok(()) => clocks.copy_retry.succeeded(),
            Err(e) => {
                clocks.copy_retry.failed(&e, now);
                tracing::warn!(mapping = %ctx.name, database = db, error = %e, failures = clocks.copy_retry.failures(), "the initial copy failed");
                // Its slot would hold WAL on the source through the backoff: drop it now.
                if let Err(e) = copy::drop_slot_of_failed_copy(ctx, db).await {
                    tracing::warn!(mapping = %ctx.name, database = db, error = %e, "could not drop the slot of the failed copy; the next attempt drops it");
                }
            }
        }
    }
    let mut observation = database::observe(
        ctx,
        db,
        instance_blocked,
        conns,
        copy_job.as_ref().map(|job| &*job.progress),
    )
    .await
    .map_err(|e| (None, e))?;
    clocks
        .sequence_rates
        .record(&observation.source_sequences, now);
    let enabled = observation.facts.subscription.is_some_and(|s| s.enabled);
    let apply_findings = clocks.apply.update(
        &ctx.names(db).subscription,
        db,
        observation.apply,
        enabled,
        now,
        ApplyWatch::window(ctx.poll),
    );
    database::add_findings(
        &mut observation,
        &ctx.thresholds,
        clocks
            .copy_retry
            .finding(db, &ctx.name, now)
            .into_iter()
            .chain(apply_findings),
    );
    let mut status = observation.status;
    let held = clocks.held_for(status.cutover_conditions_met);
    status.phase = derive_phase(&observation.facts, &ctx.thresholds, held);
    status.conditions_held_seconds = held.as_secs_f64();
    status.eta_seconds = clocks.eta(status.bytes_copied(), status.bytes_total());
    let copy_waits = status.phase == Phase::ReplicationSetup
        && ctx.copy.fast
        && copy_job.is_none()
        && !clocks.copy_retry.may_start(now);
    if copy_waits {
        return Ok((status, false));
    }
    database::act(
        ctx,
        db,
        status.phase,
        &status,
        observation.source_catalog.as_ref(),
        sequences::Lead::following(
            ctx.sequence_margin,
            &clocks.sequence_rates,
            ctx.poll * sequences::LEAD_POLLS,
        ),
        conns,
        copy_job,
    )
    .await
    .map_err(|e| (Some(status.clone()), e))?;
    let stepped = matches!(
        status.phase,
        Phase::Schema | Phase::Sequences | Phase::ReplicationSetup
    );
    Ok((status, stepped))
}

fn placeholder(ctx: &MappingContext, db: &str) -> DatabaseStatus {
    DatabaseStatus {
        name: db.to_owned(),
        phase: Phase::Preflight,
        names: (&ctx.names(db)).into(),
        findings: Vec::new(),
        last_error: None,
        tables: Vec::new(),
        lag: None,
        slot: None,
        sequences_total: 0,
        sequences_behind: 0,
        sequences: Vec::new(),
        partitions: Vec::new(),
        deferred_missing: 0,
        cutover_conditions_met: false,
        conditions_held_seconds: 0.0,
        eta_seconds: None,
    }
}
