//! The task of one mapping, and the tasks of its databases.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::commands;
use super::database::{self, Connections, Failed, Memory, Mode, Passed};
use super::instance::{self, InstanceConnections, InstanceLook, Retried};
use super::lease::{self, Acquired, Lease};
use super::{Claims, Update, retry_delays};
use crate::findings::Code;
use crate::pg::PgError;
use crate::phases::preflight::{Claim, InstanceReport};
use crate::phases::{MappingContext, cutover, retention, roles};
use crate::status::{DatabaseStatus, RoleStatus, WalForecast};

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
                    Code::Lease,
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
    let (report_tx, report_rx) = watch::channel::<Option<Arc<InstanceReport>>>(None);
    let mut tasks = DatabaseTasks {
        ctx: ctx.clone(),
        poll,
        report: report_rx,
        updates: updates.clone(),
        shutdown: shutdown.clone(),
        lost: lost.clone(),
        running: BTreeMap::new(),
    };
    let mut conns = InstanceConnections::new(ctx);
    let mut delays = retry_delays(poll);
    let mut wal_watch = retention::WalWatch::default();
    loop {
        let checked = async {
            let look = instance::look(ctx, &mut conns, &mut wal_watch).await?;
            claim_and_apply_roles(ctx, claims, look, &mut conns, first, poll, &lost).await
        };
        let checked = tokio::select! {
            _ = lost.cancelled() => break,
            checked = checked => checked,
        };
        let delay = match checked {
            Ok((report, roles, forecast)) => {
                let mut findings = report.findings.clone();
                let pooler = match instance::pooler(ctx).await {
                    Ok(entries) => entries,
                    Err(finding) => {
                        findings.push(*finding);
                        None
                    }
                };
                let _ = updates.send(Update::Mapping {
                    name: ctx.name.clone(),
                    findings,
                    last_error: None,
                    instructions: Some(cutover::instructions(
                        ctx,
                        &report.databases,
                        pooler.as_deref(),
                    )),
                    roles: Some(roles),
                    wal: Some(forecast),
                    pooler: Some(pooler.unwrap_or_default()),
                });
                tasks.reconcile(&report.databases).await;
                report_tx.send_replace(Some(Arc::new(report)));
                delays = retry_delays(poll);
                poll
            }
            Err(e) => {
                conns.reset();
                tracing::warn!(mapping = %ctx.name, error = %e, "instance check failed; retrying");
                report_error(ctx, updates, &e, Code::Connection, instance::CONNECTION_FIX);
                delays.next().unwrap_or(poll)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = lost.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    tasks.stop_all().await;
}

/// Registers what the look found in the claims registry (the first look waits, up to `poll`,
/// for every mapping's first claim), adds the name conflicts to the report, and applies the
/// role plan unless something blocks: roles first, since every database's schema names them as
/// owners and grantees.
async fn claim_and_apply_roles(
    ctx: &MappingContext,
    claims: &Claims,
    look: InstanceLook,
    conns: &mut InstanceConnections,
    first: &mut bool,
    poll: Duration,
    lost: &CancellationToken,
) -> Result<(InstanceReport, Vec<RoleStatus>, WalForecast), PgError> {
    let InstanceLook {
        mut report,
        plan,
        forecast,
    } = look;
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
    report.findings.extend(claims.conflicts_for(&ctx.name));
    if !report.blocked() && !lost.is_cancelled() {
        roles::apply(ctx, &plan, conns.destination.get().await?).await?;
    }
    Ok((report, plan.roles, forecast))
}

/// The database tasks of a mapping, by database name.
struct DatabaseTasks {
    ctx: Arc<MappingContext>,
    poll: Duration,
    report: watch::Receiver<Option<Arc<InstanceReport>>>,
    updates: mpsc::UnboundedSender<Update>,
    shutdown: CancellationToken,
    lost: CancellationToken,
    running: BTreeMap<String, (CancellationToken, JoinHandle<()>)>,
}

impl DatabaseTasks {
    /// Starts a task for each database of `wanted` that has none, and stops (after its current
    /// step) the task of each database no longer in it.
    async fn reconcile(&mut self, wanted: &[String]) {
        for db in wanted {
            if !self.running.contains_key(db) {
                let token = self.shutdown.child_token();
                let task = tokio::spawn(run_database(
                    self.ctx.clone(),
                    db.clone(),
                    self.poll,
                    self.report.clone(),
                    self.updates.clone(),
                    token.clone(),
                    self.lost.clone(),
                ));
                self.running.insert(db.clone(), (token, task));
            }
        }
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|db| !wanted.contains(db))
            .cloned()
            .collect();
        for db in gone {
            if let Some((token, task)) = self.running.remove(&db) {
                token.cancel();
                let _ = task.await;
            }
            let _ = self.updates.send(Update::DatabaseGone {
                mapping: self.ctx.name.clone(),
                database: db,
            });
        }
    }

    /// Stops every task, each after its current step.
    async fn stop_all(self) {
        for (_, (token, task)) in self.running {
            token.cancel();
            let _ = task.await;
        }
    }
}

/// Shows a failed mapping-level step: as the last error, and as a blocking finding (`code`, with
/// `fix`) when retrying cannot help.
fn report_error(
    ctx: &MappingContext,
    updates: &mpsc::UnboundedSender<Update>,
    e: &PgError,
    code: Code,
    fix: &str,
) {
    let _ = updates.send(Update::Mapping {
        name: ctx.name.clone(),
        findings: instance::failure(e, Retried::ByTheLoop, code, fix),
        last_error: Some(e.to_string()),
        instructions: None,
        roles: None,
        wal: None,
        pooler: None,
    });
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
    let mut memory = Memory::default();
    let mut delays = retry_delays(poll);
    let mut cadence = Cadence::new(poll);
    let mut last: Option<DatabaseStatus> = None;
    // Nothing happens before the mapping's first instance check.
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = report.wait_for(Option::is_some) => {}
    }
    loop {
        if let Some(asked) = ctx.purges.take(&db) {
            // Forget everything first: dropping the memory stops a running copy job.
            memory = Memory::default();
            cadence = Cadence::new(poll);
            last = None;
            let answer = tokio::select! {
                _ = lost.cancelled() => break,
                answer = commands::purge_database(&ctx, &db, &asked.request) => answer,
            };
            conns.reset();
            let _ = asked.reply.send(answer);
        }
        let instance_blocked = report.borrow().as_ref().is_some_and(|r| r.blocked());
        let outcome = tokio::select! {
            _ = lost.cancelled() => break,
            outcome = database::pass(
                &ctx,
                &db,
                instance_blocked,
                &mut conns,
                &mut memory,
                Mode::Act,
            ) => outcome,
        };
        let delay = match outcome {
            Ok(Passed { status, stepped }) => {
                let _ = updates.send(Update::Database {
                    mapping: ctx.name.clone(),
                    status: Box::new(status.clone()),
                });
                last = Some(status);
                delays = retry_delays(poll);
                cadence.after(stepped)
            }
            Err(Failed { status, error }) => {
                conns.reset();
                tracing::warn!(mapping = %ctx.name, database = %db, error = %error, "step failed; retrying");
                let mut status = status
                    .or_else(|| last.clone())
                    .unwrap_or_else(|| database::unseen(&ctx, &db));
                status.last_error = Some(error.to_string());
                let _ = updates.send(Update::Database {
                    mapping: ctx.name.clone(),
                    status: Box::new(status),
                });
                delays.next().unwrap_or(poll)
            }
        };
        // A purge asked during the pass is taken at once.
        if ctx.purges.pending(&db) {
            continue;
        }
        // A copy that ends gets its subscription at once, not at the next poll.
        let copy_ended = memory.copy_ended();
        let copy_ended = async {
            match copy_ended {
                Some(ended) => ended.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
            _ = copy_ended => {}
            _ = ctx.purges.wake.notified() => {}
        }
    }
}

/// When a database task looks again: at once after a step that moves to the next phase, then
/// after 0.25, 0.5, 1 and 2 s (what a step starts shows within moments: a subscription's
/// apply worker connecting, the lag of a copy's slot draining), then every `poll`.
struct Cadence {
    poll: Duration,
    /// Quick looks taken since the last step.
    quick: usize,
}

impl Cadence {
    const QUICK: [Duration; 4] = [
        Duration::from_millis(250),
        Duration::from_millis(500),
        Duration::from_secs(1),
        Duration::from_secs(2),
    ];

    fn new(poll: Duration) -> Self {
        Cadence {
            poll,
            quick: Self::QUICK.len(),
        }
    }

    /// The delay after a pass that `stepped` or not.
    fn after(&mut self, stepped: bool) -> Duration {
        if stepped {
            self.quick = 0;
            return Duration::ZERO;
        }
        let delay = Self::QUICK
            .get(self.quick)
            .map_or(self.poll, |quick| (*quick).min(self.poll));
        self.quick = (self.quick + 1).min(Self::QUICK.len());
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_followed_by_quick_looks_then_the_poll() {
        let poll = Duration::from_secs(5);
        let mut cadence = Cadence::new(poll);
        assert_eq!(cadence.after(false), poll, "no quick looks before a step");
        assert_eq!(cadence.after(true), Duration::ZERO);
        assert_eq!(cadence.after(true), Duration::ZERO);
        let after: Vec<Duration> = (0..6).map(|_| cadence.after(false)).collect();
        assert_eq!(
            after,
            [
                Duration::from_millis(250),
                Duration::from_millis(500),
                Duration::from_secs(1),
                Duration::from_secs(2),
                poll,
                poll
            ]
        );
        // Never slower than the poll itself.
        let mut fast = Cadence::new(Duration::from_millis(300));
        fast.after(true);
        let after: Vec<Duration> = (0..3).map(|_| fast.after(false)).collect();
        assert_eq!(
            after,
            [
                Duration::from_millis(250),
                Duration::from_millis(300),
                Duration::from_millis(300)
            ]
        );
    }
}
