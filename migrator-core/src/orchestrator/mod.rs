//! The reconcile loops: one task per mapping, and inside it one per source database.
//!
//! Every `poll_interval` a database task runs one [`database::pass`]: it reads facts from both
//! servers ([`database::look`]), derives the phase with the pure
//! [`crate::phase::derive_phase`], runs that phase's idempotent step ([`database::act`]) and
//! sends the status assembled from both to the publisher, which builds an immutable [`Snapshot`]
//! and publishes it on a `watch` channel. A mapping task looks at the instances
//! ([`instance::look`]: preflight, WAL, roles), finds the databases to migrate, and starts or
//! stops database tasks. The one-look commands ([`commands`]) run the same passes once, without
//! acting.
//!
//! Failure isolation: an error in one database or mapping is shown in its status and retried
//! with exponential backoff and jitter (`backon`); other tasks never wait for it. Nothing is kept
//! but the connections and each database's [`database::Memory`] (how long the cutover
//! conditions have held, copy progress for the ETA, sequence rates, apply error counts, copy
//! retries and, in fast copy mode, the running copy job), which a restart forgets safely (the
//! interrupted copy starts over).

mod backups;
pub mod commands;
mod copy_retry;
pub mod database;
pub mod instance;
pub mod lease;
mod mapping;
mod schema_memo;
mod schema_retry;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Problem, Settings};
use crate::findings::Finding;
use crate::phase::Phase;
use crate::phases::MappingContext;
use crate::phases::preflight::{Claim, name_conflicts};
use crate::status::{DatabaseStatus, MappingStatus, RoleStatus, Snapshot};

/// Commands to a running orchestrator (from the dashboard, for instance). They run one at a
/// time, so a double submit sees the first one's result.
#[derive(Debug)]
pub enum Command {
    /// Mark a mapping complete. Refused unless the mapping is cutover ready (or completed, which
    /// makes it a no-op); the reply says what was done or why not.
    Complete { mapping: String, reply: Reply },
    /// Apply the safe part of a mapping's schema drift (new tables and columns); the reply lists
    /// what was done and what is left to the operator.
    Resync { mapping: String, reply: Reply },
    /// Try again what the tool gave up retrying by itself (a copy that kept failing).
    Retry { mapping: String, reply: Reply },
    /// Start verifying a mapping's data in the background (one verification per mapping at a
    /// time); the reply says it started, the snapshot's `verify` shows how it goes.
    Verify {
        mapping: String,
        request: crate::verify::Request,
        reply: Reply,
    },
    /// Start one database of a mapping over (see [`crate::phases::purge`]): done by the
    /// database's task, which stops its copy first; the reply says what was done or why not.
    Purge {
        mapping: String,
        database: String,
        request: crate::phases::purge::Request,
        reply: Reply,
    },
    /// Back up one side of a mapping in the background (one at a time per mapping); the reply
    /// says it started, the snapshot's `backup` shows how it goes.
    Backup {
        mapping: String,
        side: crate::backup::Side,
        reply: Reply,
    },
    /// Delete one of a mapping's backups.
    DeleteBackup {
        mapping: String,
        key: String,
        reply: Reply,
    },
    /// Change a mapping's copy rate limit (MB/s, 0 = none) while it runs.
    SetRateLimit {
        mapping: String,
        mb_per_s: u64,
        reply: Reply,
    },
}

/// Where a command's answer goes: what was done, or why not.
pub type Reply = tokio::sync::oneshot::Sender<Result<Vec<String>, commands::CommandError>>;

/// Sends the command `make` builds and waits for its answer.
async fn request(
    commands: &mpsc::Sender<Command>,
    make: impl FnOnce(Reply) -> Command,
) -> Result<Vec<String>, commands::CommandError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    commands
        .send(make(reply))
        .await
        .map_err(|_| commands::CommandError::Stopped)?;
    answer.await.map_err(|_| commands::CommandError::Stopped)?
}

/// Sends [`Command::Resync`] for `mapping` and waits for the answer.
pub async fn request_resync(
    commands: &mpsc::Sender<Command>,
    mapping: &str,
) -> Result<Vec<String>, commands::CommandError> {
    let mapping = mapping.to_owned();
    request(commands, |reply| Command::Resync { mapping, reply }).await
}

/// Sends [`Command::Retry`] for `mapping` and waits for the answer.
pub async fn request_retry(
    commands: &mpsc::Sender<Command>,
    mapping: &str,
) -> Result<Vec<String>, commands::CommandError> {
    let mapping = mapping.to_owned();
    request(commands, |reply| Command::Retry { mapping, reply }).await
}

/// Sends [`Command::SetRateLimit`] for `mapping` and waits for the answer.
pub async fn request_rate_limit(
    commands: &mpsc::Sender<Command>,
    mapping: &str,
    mb_per_s: u64,
) -> Result<Vec<String>, commands::CommandError> {
    let mapping = mapping.to_owned();
    request(commands, |reply| Command::SetRateLimit {
        mapping,
        mb_per_s,
        reply,
    })
    .await
}

/// Sends [`Command::Verify`] for `mapping` and waits for the answer (started, or why not).
pub async fn request_verify(
    commands: &mpsc::Sender<Command>,
    mapping: &str,
    what: crate::verify::Request,
) -> Result<Vec<String>, commands::CommandError> {
    let mapping = mapping.to_owned();
    request(commands, |reply| Command::Verify {
        mapping,
        request: what,
        reply,
    })
    .await
}

/// Sends [`Command::Purge`] for database `database` of `mapping` and waits for the answer.
pub async fn request_purge(
    commands: &mpsc::Sender<Command>,
    mapping: &str,
    database: &str,
    what: crate::phases::purge::Request,
) -> Result<Vec<String>, commands::CommandError> {
    let (mapping, database) = (mapping.to_owned(), database.to_owned());
    request(commands, |reply| Command::Purge {
        mapping,
        database,
        request: what,
        reply,
    })
    .await
}

/// Sends [`Command::Backup`] for `side` of `mapping` and waits for the answer (started, or why
/// not).
pub async fn request_backup(
    commands: &mpsc::Sender<Command>,
    mapping: &str,
    side: crate::backup::Side,
) -> Result<Vec<String>, commands::CommandError> {
    let mapping = mapping.to_owned();
    request(commands, |reply| Command::Backup {
        mapping,
        side,
        reply,
    })
    .await
}

/// Sends [`Command::DeleteBackup`] and waits for the answer.
pub async fn request_backup_delete(
    commands: &mpsc::Sender<Command>,
    mapping: &str,
    key: &str,
) -> Result<Vec<String>, commands::CommandError> {
    let (mapping, key) = (mapping.to_owned(), key.to_owned());
    request(commands, |reply| Command::DeleteBackup {
        mapping,
        key,
        reply,
    })
    .await
}

/// Sends [`Command::Complete`] for `mapping` and waits for the answer: what was done, or why not.
pub async fn request_complete(
    commands: &mpsc::Sender<Command>,
    mapping: &str,
) -> Result<Vec<String>, commands::CommandError> {
    let mapping = mapping.to_owned();
    request(commands, |reply| Command::Complete { mapping, reply }).await
}

/// A running orchestrator.
pub struct Handle {
    /// The latest snapshot; `changed()` fires on every new one.
    pub status: watch::Receiver<Arc<Snapshot>>,
    /// Where to send [`Command`]s.
    pub commands: mpsc::Sender<Command>,
    /// Finishes when every task has stopped after shutdown.
    pub join: JoinHandle<()>,
}

/// Resolves every mapping's settings.
pub fn contexts(settings: &Settings) -> Result<Vec<MappingContext>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut contexts = Vec::new();
    for (name, mapping) in &settings.mappings {
        match MappingContext::new(name, mapping, &settings.migration) {
            Ok(ctx) => contexts.push(ctx),
            Err(found) => problems.extend(found),
        }
    }
    if problems.is_empty() {
        Ok(contexts)
    } else {
        Err(problems)
    }
}

/// Starts a task per mapping and the snapshot publisher; they run until `shutdown`.
pub fn start(settings: &Settings, shutdown: CancellationToken) -> Result<Handle, Vec<Problem>> {
    let contexts = contexts(settings)?;
    let poll = settings.migration.poll_interval;
    let (status_tx, status_rx) = watch::channel(Arc::new(Snapshot::default()));
    let (updates_tx, updates_rx) = mpsc::unbounded_channel();
    let headers: Vec<MappingStatus> = contexts.iter().map(header).collect();
    let limiters: Limiters = contexts
        .iter()
        .map(|ctx| (ctx.name.clone(), ctx.limiter.clone()))
        .collect();
    let acting: Acting = contexts
        .iter()
        .map(|ctx| (ctx.name.clone(), ctx.clone()))
        .collect();
    let publisher = tokio::spawn(publish(headers, limiters, updates_rx, status_tx));
    let claims = Claims::new(contexts.len());
    let mut tasks = Vec::new();
    for ctx in contexts {
        tasks.push(tokio::spawn(mapping::run(
            Arc::new(ctx),
            poll,
            claims.clone(),
            updates_tx.clone(),
            shutdown.child_token(),
        )));
    }
    let (commands, command_rx) = mpsc::channel(16);
    tasks.push(tokio::spawn(run_commands(
        acting,
        settings.backup.clone(),
        status_rx.clone(),
        command_rx,
        updates_tx.clone(),
        shutdown,
    )));
    let join = tokio::spawn(async move {
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a mapping task failed");
            }
        }
        let _ = publisher.await;
    });
    Ok(Handle {
        status: status_rx,
        commands,
        join,
    })
}

/// Runs commands one at a time until `shutdown` or until every sender is gone. `acting` holds
/// the live context of every mapping (its limiter, retry generation and lease flag are the ones
/// its task uses), `status` the live snapshot.
async fn run_commands(
    acting: Acting,
    backup_settings: crate::config::BackupSettings,
    status: watch::Receiver<Arc<Snapshot>>,
    mut commands: mpsc::Receiver<Command>,
    updates: mpsc::UnboundedSender<Update>,
    shutdown: CancellationToken,
) {
    let mut verifying: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    let mut backing_up = backups::Running::new();
    loop {
        let command = tokio::select! {
            _ = shutdown.cancelled() => return,
            command = commands.recv() => match command {
                Some(command) => command,
                None => return,
            },
        };
        let (result, reply) = match command {
            Command::Complete { mapping, reply } => {
                (complete(&acting, &status, &mapping).await, reply)
            }
            Command::Resync { mapping, reply } => (resync(&acting, &status, &mapping).await, reply),
            Command::Retry { mapping, reply } => (retry(&acting, &mapping), reply),
            Command::Backup {
                mapping,
                side,
                reply,
            } => (
                backups::start(
                    &acting,
                    &backup_settings,
                    &mut backing_up,
                    &updates,
                    &shutdown,
                    &mapping,
                    side,
                ),
                reply,
            ),
            Command::DeleteBackup {
                mapping,
                key,
                reply,
            } => (
                backups::delete(&backup_settings, &backing_up, &mapping, &key),
                reply,
            ),
            Command::Purge {
                mapping,
                database,
                request,
                reply,
            } => {
                // The database's task answers; the command task does not wait for it.
                match ask_purge(&acting, &status, &mapping, &database, request) {
                    Ok(answer) => {
                        tokio::spawn(async move {
                            let _ = reply.send(answer.await);
                        });
                        continue;
                    }
                    Err(e) => (Err(e), reply),
                }
            }
            Command::Verify {
                mapping,
                request,
                reply,
            } => (
                start_verify(
                    &acting,
                    &status,
                    &mut verifying,
                    &updates,
                    &shutdown,
                    &mapping,
                    request,
                ),
                reply,
            ),
            Command::SetRateLimit {
                mapping,
                mb_per_s,
                reply,
            } => (set_rate_limit(&acting, &mapping, mb_per_s), reply),
        };
        let _ = reply.send(result);
    }
}

type CommandResult = Result<Vec<String>, commands::CommandError>;

/// [`Command::Complete`]: only for a mapping this instance acts for, once it is cutover ready.
async fn complete(
    acting: &Acting,
    status: &watch::Receiver<Arc<Snapshot>>,
    mapping: &str,
) -> CommandResult {
    let live = status.borrow().mapping(mapping).cloned();
    match (live, acting.get(mapping)) {
        (None, _) | (_, None) => Err(commands::CommandError::UnknownMapping(mapping.to_owned())),
        _ if !holds(acting, mapping) => Err(held_elsewhere(status, mapping, "complete")),
        (Some(live), Some(ctx))
            if matches!(
                live.phase,
                Phase::CutoverReady | Phase::Completing | Phase::Completed
            ) =>
        {
            tracing::info!(mapping = %mapping, "mark complete requested");
            commands::complete_mapping(ctx, &live, false).await
        }
        (Some(live), _) => Err(commands::CommandError::Refused(format!(
            "mapping {mapping} is {}, not cutover ready: it can be marked complete once the light is green",
            live.phase
        ))),
    }
}

/// How long a purge may wait for its database's task to take it (the task finishes the step it
/// is in first; a schema step on a large database takes minutes).
const PURGE_TAKEN_WITHIN: std::time::Duration = std::time::Duration::from_secs(600);

/// [`Command::Purge`]: hands the request to the database's task, for a mapping this instance
/// acts for and a database it migrates; the returned future is the task's answer.
fn ask_purge(
    acting: &Acting,
    status: &watch::Receiver<Arc<Snapshot>>,
    mapping: &str,
    database: &str,
    request: crate::phases::purge::Request,
) -> Result<impl std::future::Future<Output = CommandResult> + use<>, commands::CommandError> {
    let ctx = acting
        .get(mapping)
        .ok_or_else(|| commands::CommandError::UnknownMapping(mapping.to_owned()))?;
    if !holds(acting, mapping) {
        return Err(held_elsewhere(status, mapping, "purge"));
    }
    let known: Vec<String> = status
        .borrow()
        .mapping(mapping)
        .map(|m| m.databases.iter().map(|d| d.name.clone()).collect())
        .unwrap_or_default();
    if !known.iter().any(|d| d == database) {
        return Err(commands::CommandError::Refused(format!(
            "mapping {mapping} does not migrate a database {database:?} (it migrates: {}); nothing was purged",
            known.join(", ")
        )));
    }
    tracing::warn!(mapping = %mapping, database = %database, ?request, "purge requested");
    let answer = ctx.purges.ask(database, request)?;
    let (queue, database) = (ctx.purges.clone(), database.to_owned());
    Ok(async move {
        match tokio::time::timeout(PURGE_TAKEN_WITHIN, answer).await {
            Ok(Ok(done)) => Ok(done?),
            Ok(Err(_)) => Err(commands::CommandError::Stopped),
            Err(_) => {
                queue.withdraw(&database);
                Err(commands::CommandError::Refused(format!(
                    "the task of database {database:?} did not take the purge within {} minutes (a long step?); nothing was purged, try again",
                    PURGE_TAKEN_WITHIN.as_secs() / 60
                )))
            }
        }
    })
}

/// [`Command::Resync`] of the databases the live snapshot lists.
async fn resync(
    acting: &Acting,
    status: &watch::Receiver<Arc<Snapshot>>,
    mapping: &str,
) -> CommandResult {
    match acting.get(mapping) {
        None => Err(commands::CommandError::UnknownMapping(mapping.to_owned())),
        Some(_) if !holds(acting, mapping) => Err(held_elsewhere(status, mapping, "resync")),
        Some(ctx) => {
            tracing::info!(mapping = %mapping, "schema re-sync requested");
            let databases: Vec<String> = status
                .borrow()
                .mapping(mapping)
                .map(|m| m.databases.iter().map(|d| d.name.clone()).collect())
                .unwrap_or_default();
            commands::resync_databases(ctx, &databases).await
        }
    }
}

/// [`Command::Verify`]: starts the verification task unless one runs for the mapping. It only
/// reads, so an instance that does not hold the mapping's lease may run it too.
fn start_verify(
    acting: &Acting,
    status: &watch::Receiver<Arc<Snapshot>>,
    verifying: &mut BTreeMap<String, JoinHandle<()>>,
    updates: &mpsc::UnboundedSender<Update>,
    shutdown: &CancellationToken,
    mapping: &str,
    request: crate::verify::Request,
) -> CommandResult {
    let ctx = acting
        .get(mapping)
        .ok_or_else(|| commands::CommandError::UnknownMapping(mapping.to_owned()))?;
    if verifying
        .get(mapping)
        .is_some_and(|task| !task.is_finished())
    {
        return Err(commands::CommandError::Refused(format!(
            "a verification of mapping {mapping} is already running: follow it on its Verify tab, and start another once it has finished"
        )));
    }
    // The databases this instance knows of; one that only watches looks them up.
    let known: Vec<String> = status
        .borrow()
        .mapping(mapping)
        .map(|m| m.databases.iter().map(|d| d.name.clone()).collect())
        .unwrap_or_default();
    let mode = request.mode;
    let ctx = ctx.clone();
    let updates = updates.clone();
    let shutdown = shutdown.child_token();
    let name = mapping.to_owned();
    verifying.insert(
        name.clone(),
        tokio::spawn(async move {
            let publish = |s: &crate::status::VerifyStatus| {
                let _ = updates.send(Update::Verify {
                    name: name.clone(),
                    status: Box::new(s.clone()),
                });
            };
            let run = async {
                let databases = if known.is_empty() {
                    match commands::databases(&ctx).await {
                        Ok(found) => found,
                        Err(e) => {
                            publish(&crate::status::VerifyStatus {
                                mode: request.mode,
                                database: request.database.clone(),
                                table: request.table.clone(),
                                started_at: std::time::SystemTime::now(),
                                finished_at: Some(std::time::SystemTime::now()),
                                error: Some(e.to_string()),
                                databases: Vec::new(),
                            });
                            return;
                        }
                    }
                } else {
                    known
                };
                verify::run(&ctx, &databases, request, &publish).await;
            };
            tokio::select! {
                _ = run => {}
                _ = shutdown.cancelled() => {}
            }
        }),
    );
    Ok(vec![format!(
        "verification ({mode}) of mapping {mapping} started: follow it on its Verify tab or in GET /api/status"
    )])
}

/// [`Command::Retry`]: the mapping's tasks forget what they gave up on.
fn retry(acting: &Acting, mapping: &str) -> CommandResult {
    let ctx = acting
        .get(mapping)
        .ok_or_else(|| commands::CommandError::UnknownMapping(mapping.to_owned()))?;
    ctx.retry_generation
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(mapping = %mapping, "retry requested");
    Ok(vec![format!(
        "mapping {mapping}: failures forgotten; what the tool had given up on starts again at the next tick"
    )])
}

/// [`Command::SetRateLimit`]: until restart.
fn set_rate_limit(acting: &Acting, mapping: &str, mb_per_s: u64) -> CommandResult {
    let ctx = acting
        .get(mapping)
        .ok_or_else(|| commands::CommandError::UnknownMapping(mapping.to_owned()))?;
    let was = ctx.limiter.limit_mb();
    ctx.limiter.set_limit_mb(mb_per_s);
    tracing::info!(mapping = %mapping, was, now = mb_per_s, "copy rate limit changed");
    let show = |mb: u64| match mb {
        0 => "no limit".to_owned(),
        mb => format!("{mb} MB/s"),
    };
    Ok(vec![format!(
        "copy rate limit of {mapping}: {} (was {}); until restart, then rate_limit_mb_per_s applies again",
        show(mb_per_s),
        show(was)
    )])
}

/// A mapping's status before anything is known of it.
fn header(ctx: &MappingContext) -> MappingStatus {
    MappingStatus {
        name: ctx.name.clone(),
        source: ctx.source.describe(),
        destination: ctx.destination.describe(),
        phase: crate::phase::Phase::Preflight,
        findings: Vec::new(),
        last_error: None,
        last_tick: None,
        databases: Vec::new(),
        roles: Vec::new(),
        copy: ctx.limiter.snapshot(),
        wal: None,
        acting_here: false,
        held_by: None,
        verify: None,
        backup: None,
        pooler: Vec::new(),
        instructions: String::new(),
    }
}

/// Each mapping's copy rate limiter, by mapping name.
type Limiters = BTreeMap<String, Arc<crate::limiter::RateLimiter>>;

/// Each mapping's context, by name: whether this instance holds its lease, and what commands need.
type Acting = BTreeMap<String, MappingContext>;

fn holds(acting: &Acting, mapping: &str) -> bool {
    acting
        .get(mapping)
        .is_some_and(|ctx| ctx.holds_lease.load(std::sync::atomic::Ordering::Relaxed))
}

/// The refusal of a command for a mapping this instance does not act for.
fn held_elsewhere(
    status: &watch::Receiver<Arc<Snapshot>>,
    mapping: &str,
    command: &'static str,
) -> commands::CommandError {
    commands::CommandError::Held {
        mapping: mapping.to_owned(),
        command,
        holder: status
            .borrow()
            .mapping(mapping)
            .and_then(|m| m.held_by.clone()),
    }
}

/// What tasks tell the publisher.
#[derive(Debug)]
enum Update {
    Mapping {
        name: String,
        findings: Vec<Finding>,
        last_error: Option<String>,
        /// Renewed with the list of databases; `None` keeps the last.
        instructions: Option<String>,
        /// The roles as last planned; `None` keeps the last.
        roles: Option<Vec<RoleStatus>>,
        /// The WAL forecast; `None` keeps the last.
        wal: Option<crate::status::WalForecast>,
        /// The pooler's entries; `None` keeps the last.
        pooler: Option<Vec<crate::catalog::pooler::PoolerDatabase>>,
    },
    /// Who acts for the mapping: this instance (`held_here`), another one (`holder`), or
    /// nobody right now.
    Lease {
        name: String,
        held_here: bool,
        holder: Option<crate::status::LeaseHolder>,
    },
    Database {
        mapping: String,
        status: Box<DatabaseStatus>,
    },
    DatabaseGone {
        mapping: String,
        database: String,
    },
    /// The mapping's verification, as it stands.
    Backup {
        name: String,
        status: Box<crate::status::BackupRun>,
    },
    Verify {
        name: String,
        status: Box<crate::status::VerifyStatus>,
    },
}

/// Folds updates into snapshots; all pending updates are applied before one is published.
async fn publish(
    headers: Vec<MappingStatus>,
    limiters: Limiters,
    mut updates: mpsc::UnboundedReceiver<Update>,
    status: watch::Sender<Arc<Snapshot>>,
) {
    let mut mappings: BTreeMap<String, (MappingStatus, BTreeMap<String, DatabaseStatus>)> = headers
        .into_iter()
        .map(|h| (h.name.clone(), (h, BTreeMap::new())))
        .collect();
    while let Some(first) = updates.recv().await {
        let mut next = Some(first);
        while let Some(update) = next {
            apply(&mut mappings, update);
            next = updates.try_recv().ok();
        }
        let snapshot = Snapshot {
            generated_at: Some(SystemTime::now()),
            mappings: mappings
                .values()
                .map(|(header, dbs)| {
                    let mut m = header.clone();
                    m.databases = dbs.values().cloned().collect();
                    if let Some(limiter) = limiters.get(&m.name) {
                        m.copy = limiter.snapshot();
                    }
                    m.phase = MappingStatus::aggregate_phase(
                        &m.databases,
                        m.findings.iter().any(Finding::is_blocking),
                    );
                    m
                })
                .collect(),
        };
        status.send_replace(Arc::new(snapshot));
    }
}

fn apply(
    mappings: &mut BTreeMap<String, (MappingStatus, BTreeMap<String, DatabaseStatus>)>,
    update: Update,
) {
    match update {
        Update::Mapping {
            name,
            findings,
            last_error,
            instructions,
            roles,
            wal,
            pooler,
        } => {
            if let Some((header, _)) = mappings.get_mut(&name) {
                if let Some(pooler) = pooler {
                    header.pooler = pooler;
                }
                if let Some(roles) = roles {
                    header.roles = roles;
                }
                if wal.is_some() {
                    header.wal = wal;
                }
                header.findings = findings;
                header.last_error = last_error;
                if let Some(instructions) = instructions {
                    header.instructions = instructions;
                }
                header.last_tick = Some(SystemTime::now());
            }
        }
        Update::Database { mapping, status } => {
            if let Some((_, dbs)) = mappings.get_mut(&mapping) {
                dbs.insert(status.name.clone(), *status);
            }
        }
        Update::Lease {
            name,
            held_here,
            holder,
        } => {
            if let Some((header, dbs)) = mappings.get_mut(&name) {
                if !held_here {
                    // What this instance saw while it acted is stale now.
                    dbs.clear();
                    header.findings.clear();
                    header.last_error = None;
                    header.wal = None;
                }
                header.acting_here = held_here;
                header.held_by = holder;
                header.last_tick = Some(SystemTime::now());
            }
        }
        Update::Backup { name, status } => {
            if let Some((header, _)) = mappings.get_mut(&name) {
                header.backup = Some(*status);
            }
        }
        Update::Verify { name, status } => {
            if let Some((header, _)) = mappings.get_mut(&name) {
                header.verify = Some(*status);
            }
        }
        Update::DatabaseGone { mapping, database } => {
            if let Some((_, dbs)) = mappings.get_mut(&mapping) {
                dbs.remove(&database);
            }
        }
    }
}

/// Which databases each mapping sends to which destination, shared by the mapping tasks so that
/// two mappings sending a database of the same name to one destination are both refused.
#[derive(Clone)]
pub(crate) struct Claims {
    claims: Arc<watch::Sender<BTreeMap<String, Claim>>>,
    expected: usize,
}

impl Claims {
    pub(crate) fn new(expected: usize) -> Self {
        Claims {
            claims: Arc::new(watch::Sender::new(BTreeMap::new())),
            expected,
        }
    }

    pub(crate) fn register(&self, claim: Claim) {
        self.claims.send_modify(|all| {
            all.insert(claim.mapping.clone(), claim);
        });
    }

    /// Waits (at most `timeout`) until every mapping has registered, so the first check sees
    /// them all; a mapping whose source is down does not hold the others up for longer.
    pub(crate) async fn wait_for_all(&self, timeout: Duration) {
        let mut rx = self.claims.subscribe();
        let expected = self.expected;
        let _ = tokio::time::timeout(timeout, rx.wait_for(|all| all.len() >= expected)).await;
    }

    pub(crate) fn conflicts_for(&self, mapping: &str) -> Vec<Finding> {
        let all: Vec<Claim> = self.claims.borrow().values().cloned().collect();
        name_conflicts(&all).remove(mapping).unwrap_or_default()
    }
}

/// Delays between retries after errors: exponential from one second to the poll interval
/// (at least 30 s), with jitter so that many failing tasks do not retry in step.
pub(crate) fn retry_delays(poll: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(poll.max(Duration::from_secs(30)))
        .with_jitter()
        .without_max_times()
        .build()
}
