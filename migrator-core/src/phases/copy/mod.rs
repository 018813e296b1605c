//! Fast initial copy: the tool copies the tables itself instead of the subscription.
//!
//! 1. A replication connection creates the slot with `(SNAPSHOT 'export')`: the slot streams
//!    every change after its consistent point, and the exported snapshot sees every change
//!    before it.
//! 2. `workers` pairs of connections import that snapshot on the source (REPEATABLE READ, READ
//!    ONLY) and stream `COPY ... TO STDOUT` straight into `COPY ... FROM STDIN` on the
//!    destination, binary when every column has a built-in type (binary arrays and composites
//!    carry type OIDs, which differ between servers for user-defined types), text otherwise,
//!    without decoding a row. Tables larger than `chunk` are split into ctid ranges (TID range
//!    scans), so one big table keeps every worker busy; work goes largest first. Destination
//!    sessions use `synchronous_commit = off` and `session_replication_role = replica` (no
//!    trigger fires, as with the subscription's own copy). Primary keys (unless something
//!    needs them sooner, see [`ddl::key_after_copy`]), secondary indexes and constraints are
//!    built afterwards, in parallel on the same sessions, each table analyzed once nothing is
//!    built on it any more ([`finish`]), foreign keys last.
//! 3. The job ends with [`Copied::Done`]; the orchestrator then creates the subscription on the
//!    existing slot with `copy_data = false`, enabled: it starts at the consistent point, so no
//!    row is lost and none applied twice.
//!
//! Stateless on purpose: a slot without a subscription means a copy was interrupted (the
//! snapshot died with its connection), so a new copy drops that slot, truncates the
//! destination's tables and starts over.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt, future};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{MappingContext, q};
use crate::catalog::deferred;
use crate::catalog::model::QualifiedName;
use crate::catalog::published;
use crate::catalog::schema as catalog;
use crate::ddl::quote::literal;
use crate::ddl::{self, DeferredObject};
use crate::destination;
use crate::naming;
use crate::pg::{self, PgError, Session};
use crate::walsender::{ExportedSlot, ReplicationConnection};

mod finish;
mod guard;
mod plan;
mod progress;

pub use guard::{LiftCap, health_guard};
use plan::{Chunk, chunk_size, plan};
pub use progress::Progress;

/// Bytes streamed between two calls to the limiter.
const LIMITER_STEP: u64 = 256 * 1024;

/// How the initial copy is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySettings {
    /// The tool copies (true) or the subscription does (`copy_data = true`).
    pub fast: bool,
    /// Parallel copy sessions per database.
    pub workers: usize,
    /// Whether large tables are split into ranges copied at once.
    pub split: bool,
    /// The range size in bytes; 0 = automatic (see `plan::chunk_size`).
    pub chunk_bytes: u64,
    /// Health guard: slow down when another replica's or slot's lag on the source exceeds
    /// this many bytes (0 = not watched) ...
    pub max_standby_lag_bytes: u64,
    /// ... or a trivial query on the source takes longer than this (zero = not watched).
    pub max_latency: Duration,
    /// How long creating the slot may wait for transactions open on the source.
    pub slot_create_timeout: Duration,
}

/// How a copy job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// Every table is copied from the slot's exported snapshot and its indexes and constraints
    /// are built: a subscription on the slot (without `copy_data`) starts where the snapshot
    /// ends.
    Done,
    /// The database changed while the job waited for its turn (copied or completed meanwhile):
    /// nothing was done.
    Skipped,
}

/// A copy running in the background for one database. Dropping it stops the copy.
pub struct Job {
    handle: JoinHandle<Result<Copied, PgError>>,
    pub progress: Arc<Progress>,
    /// Notified once when the job ends (done or failed), so that its database's task takes the
    /// outcome at once rather than at its next poll.
    ended: Arc<Notify>,
    /// The source database, for an error of the task itself.
    target: String,
}

impl Drop for Job {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl Job {
    /// Starts copying database `db` of `ctx`'s mapping.
    pub fn start(ctx: &MappingContext, db: &str) -> Job {
        let progress = Arc::new(Progress::default());
        let ended = Arc::new(Notify::new());
        let handle = tokio::spawn({
            let (ctx, db, progress, ended) =
                (ctx.clone(), db.to_owned(), progress.clone(), ended.clone());
            async move {
                let outcome = run(ctx, db, progress).await;
                ended.notify_one();
                outcome
            }
        });
        Job {
            handle,
            progress,
            ended,
            target: ctx.source.target(db),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Notified when the job ends (a permit is kept if nobody waits yet).
    pub fn ended(&self) -> Arc<Notify> {
        self.ended.clone()
    }

    /// The outcome of a finished job.
    pub async fn outcome(mut self) -> Result<Copied, PgError> {
        match (&mut self.handle).await {
            Ok(result) => result,
            Err(e) => Err(PgError::Query {
                target: self.target.clone(),
                context: "copying the tables".into(),
                message: format!("the copy task ended abnormally: {e}"),
                transient: true,
            }),
        }
    }
}

async fn run(ctx: MappingContext, db: String, progress: Arc<Progress>) -> Result<Copied, PgError> {
    let names = ctx.names(&db);
    let chunks = {
        let src = pg::session(&ctx.source, &db).await?;
        let tables = published::tables(&src, &names.publication).await?;
        let chunk = chunk_size(&ctx.copy, &tables);
        plan(tables, chunk)
    };
    progress.plan(&chunks);
    let sizes = plan::table_sizes(&chunks);
    // One database of a mapping copies at a time: each copy has `workers` sessions already, and
    // more copies at once would multiply the connections to the source and share its disks.
    let _turn = ctx
        .copy_turn
        .acquire()
        .await
        .expect("the copy semaphore is never closed");
    let started = Instant::now();
    let src = pg::session(&ctx.source, &db).await?;
    let dst = pg::session(&ctx.destination, &db).await?;
    // The turn can come hours later: the database must still be in the state that started this
    // job (schema applied, no subscription: not copied, not completed by anyone meanwhile)
    // before anything is dropped or emptied.
    if let Some(changed) = changed_since_start(&ctx, &db, &dst, &names.subscription).await? {
        tracing::warn!(mapping = %ctx.name, database = %db, reason = %changed, "the database changed while its copy waited for its turn; not copying");
        return Ok(Copied::Skipped);
    }
    drop_leftover_slot(&src, &names.slot).await?;
    destination::truncate(&dst, chunks.iter().map(|c| &c.table.root).collect()).await?;
    let total: u64 = chunks.iter().map(|c| c.bytes).sum();

    // The slot and its snapshot; every worker imports the snapshot before the walsender goes.
    let mut walsender = ReplicationConnection::connect(&ctx.source, &db).await?;
    let exported = create_slot(&ctx, &names.slot, &mut walsender, &src, &progress).await?;
    tracing::info!(mapping = %ctx.name, database = %db, slot = %names.slot, consistent_point = %exported.consistent_point, "replication slot created with an exported snapshot");
    let workers = ctx.copy.workers.clamp(1, chunks.len().max(1));
    let sessions =
        future::try_join_all((0..workers).map(|_| open_session(&ctx, &db, &exported.snapshot)))
            .await?;
    walsender.close().await;

    let queue = Mutex::new(VecDeque::from(chunks));
    let guard = health_guard(&ctx, &db);
    // Whatever the guard held the rate to ends with this copy (or its failure).
    let lift = LiftCap(&ctx.limiter);
    let copied = future::try_join_all(
        sessions
            .iter()
            .map(|(s, d)| worker(&ctx, s, d, &queue, &progress)),
    );
    tokio::select! {
        result = copied => { result?; }
        error = guard => return Err(error),
    }
    drop(lift);
    let copy_seconds = started.elapsed().as_secs_f64();
    tracing::info!(mapping = %ctx.name, database = %db, mb = total / (1024 * 1024), seconds = copy_seconds, "tables copied");
    for (s, _) in &sessions {
        s.batch_execute("COMMIT")
            .await
            .map_err(q(s.target(), "ending the snapshot transaction"))?;
    }

    let source_catalog = catalog::read(&src).await?;
    let objects = ddl::deferred_objects(&source_catalog);
    let existing = deferred::existing(&dst).await?;
    let missing: Vec<&DeferredObject> =
        objects.iter().filter(|o| !o.exists_in(&existing)).collect();
    let (late, others): (Vec<_>, Vec<_>) = missing.into_iter().partition(|o| o.after_constraints);
    let size = |t: &QualifiedName| std::cmp::Reverse(sizes.get(t).copied().unwrap_or(0));
    let root = |t: &QualifiedName| source_catalog.root_of(t);
    let mut builds: Vec<_> = others.into_iter().map(|o| (o, root(&o.table))).collect();
    builds.sort_by_key(|(o, _)| size(&o.table));
    let mut analyses: Vec<_> = destination::tables_to_analyze(&dst)
        .await?
        .into_iter()
        .map(|t| {
            let r = root(&t);
            (t, r)
        })
        .collect();
    analyses.sort_by_key(|(t, _)| size(t));
    let destinations: Vec<&Session> = sessions.iter().map(|(_, d)| d).collect();
    finish::run(&destinations, finish::Queue::new(builds, analyses)).await?;
    // Foreign keys once every key they may reference exists.
    build_in_parallel(&destinations, late).await?;
    drop(sessions);
    tracing::info!(mapping = %ctx.name, database = %db, objects = objects.len(), seconds = started.elapsed().as_secs_f64() - copy_seconds, "indexes and constraints built, tables analyzed");

    tracing::info!(mapping = %ctx.name, database = %db, seconds = started.elapsed().as_secs_f64(), "fast copy done");
    Ok(Copied::Done)
}

/// Creates `slot` with an exported snapshot on the replication connection, naming meanwhile the
/// source's transactions it waits for; gives up (and stops the walsender) after
/// `slot_create_timeout`.
async fn create_slot(
    ctx: &MappingContext,
    slot: &str,
    walsender: &mut ReplicationConnection,
    src: &Session,
    progress: &Progress,
) -> Result<ExportedSlot, PgError> {
    let create = tokio::time::timeout(
        ctx.copy.slot_create_timeout,
        walsender.create_slot_exporting_snapshot(slot),
    );
    let watch = watch_slot_wait(src, progress);
    let outcome = tokio::select! {
        created = create => created,
        error = watch => return Err(error),
    };
    match outcome {
        Ok(created) => {
            progress.set_waiting_for(None);
            created
        }
        Err(_) => {
            let blockers = progress.waiting_for().unwrap_or_default();
            // The walsender would create the slot once they end; stop it.
            let _ = src
                .execute(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                     WHERE slot_name = $1 AND active_pid IS NOT NULL",
                    &[&slot],
                )
                .await;
            Err(PgError::Query {
                target: src.target().to_owned(),
                context: format!("creating the replication slot {slot}"),
                message: format!(
                    "it waited {} (slot_create_timeout) for transactions open on the source \
                     to end: {blockers}; let them finish or end them, or raise \
                     slot_create_timeout",
                    humantime::format_duration(ctx.copy.slot_create_timeout)
                ),
                transient: true,
            })
        }
    }
}

/// Why the destination database is no longer in the state a copy starts from, if it is not.
async fn changed_since_start(
    ctx: &MappingContext,
    db: &str,
    dst: &Session,
    subscription: &str,
) -> Result<Option<String>, PgError> {
    let row = dst
        .query_one(
            "SELECT shobj_description(d.oid, 'pg_database'), \
               EXISTS (SELECT 1 FROM pg_subscription s WHERE s.subdbid = d.oid AND s.subname = $1) \
             FROM pg_database d WHERE d.datname = current_database()",
            &[&subscription],
        )
        .await
        .map_err(q(dst.target(), "checking the database before the copy"))?;
    let marker: Option<String> = row.get(0);
    let subscribed: bool = row.get(1);
    Ok(if subscribed {
        Some(format!(
            "the subscription {subscription} exists: the database was copied or completed"
        ))
    } else if marker.as_deref() != Some(naming::database_marker(&ctx.name, db, true).as_str()) {
        Some("the destination database no longer carries the schema-applied marker".into())
    } else {
        None
    })
}

/// While the slot is being created, names the transactions it waits for: logical decoding
/// starts from a point where no transaction with an xid is running, so each one open on the
/// source when the slot began must end first. Returns only on error.
async fn watch_slot_wait(src: &Session, progress: &Progress) -> PgError {
    let began: String = match src.query_one("SELECT now()::text", &[]).await {
        Ok(row) => row.get(0),
        Err(e) => return PgError::query(src.target(), "reading the source's clock", e),
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    loop {
        let rows = src
            .query(
                "SELECT format('pid %s (%s on %s, %s) open for %s: %s', pid, usename, datname, \
                   coalesce(nullif(application_name, ''), 'no application_name'), \
                   date_trunc('second', now() - xact_start), left(query, 120)) \
                 FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() \
                   AND xact_start < $1::text::timestamptz ORDER BY xact_start LIMIT 5",
                &[&began],
            )
            .await;
        match rows {
            Ok(rows) => {
                let open: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                progress.set_waiting_for((!open.is_empty()).then(|| open.join("; ")));
            }
            Err(e) => {
                return PgError::query(
                    src.target(),
                    "looking for the transactions the slot waits for",
                    e,
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Drops the slot a failed copy of `db` left (the job has ended, so nothing reads it).
pub async fn drop_slot_of_failed_copy(ctx: &MappingContext, db: &str) -> Result<(), PgError> {
    let src = pg::session(&ctx.source, db).await?;
    drop_leftover_slot(&src, &ctx.names(db).slot).await
}

/// A slot left by an interrupted copy is useless (its snapshot is gone): drop it.
async fn drop_leftover_slot(src: &Session, slot: &str) -> Result<(), PgError> {
    let active: Option<bool> = src
        .query_opt(
            "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(q(src.target(), "looking for the replication slot"))?
        .map(|r| r.get(0));
    match active {
        None => Ok(()),
        Some(true) => Err(PgError::Query {
            target: src.target().to_owned(),
            context: "starting the copy".into(),
            message: format!(
                "the replication slot {slot} is in use by another connection; stop whatever \
                 reads it (SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{slot}')"
            ),
            transient: true,
        }),
        Some(false) => {
            src.execute("SELECT pg_drop_replication_slot($1)", &[&slot])
                .await
                .map_err(q(src.target(), "dropping the slot of an interrupted copy"))?;
            tracing::info!(
                slot,
                "dropped the slot of an interrupted copy; copying again"
            );
            Ok(())
        }
    }
}

/// A source session in the exported snapshot and a destination session tuned for loading.
async fn open_session(
    ctx: &MappingContext,
    db: &str,
    snapshot: &str,
) -> Result<(Session, Session), PgError> {
    let src = pg::session(&ctx.source, db).await?;
    src.batch_execute(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
        literal(snapshot)
    ))
    .await
    .map_err(q(src.target(), "importing the slot's snapshot"))?;
    let dst = pg::session(&ctx.destination, db).await?;
    dst.batch_execute(
        "SET synchronous_commit = off; SET session_replication_role = replica; \
         SET maintenance_work_mem = '256MB'",
    )
    .await
    .map_err(q(dst.target(), "preparing a copy session"))?;
    Ok((src, dst))
}

/// Takes chunks off the queue until it is empty, streaming each from source to destination.
async fn worker(
    ctx: &MappingContext,
    src: &Session,
    dst: &Session,
    queue: &Mutex<VecDeque<Chunk>>,
    progress: &Progress,
) -> Result<(), PgError> {
    loop {
        let Some(chunk) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
            return Ok(());
        };
        let root = &chunk.table.root;
        progress.started(root);
        let context = |what: &str| format!("{what} {}", chunk.table.leaf);
        let out = src
            .copy_out(chunk.copy_out().as_str())
            .await
            .map_err(|e| PgError::query(src.target(), context("copying out"), e))?;
        let sink = dst
            .copy_in::<_, Bytes>(chunk.copy_in().as_str())
            .await
            .map_err(|e| {
                PgError::query(
                    dst.target(),
                    context("copying into the destination from"),
                    e,
                )
            })?;
        futures_util::pin_mut!(out, sink);
        let mut unpaid = 0u64;
        while let Some(data) = out
            .try_next()
            .await
            .map_err(|e| PgError::query(src.target(), context("copying out"), e))?
        {
            unpaid += data.len() as u64;
            if unpaid >= LIMITER_STEP {
                ctx.limiter.take(unpaid).await;
                progress.copied(root, unpaid);
                unpaid = 0;
            }
            sink.feed(data).await.map_err(|e| {
                PgError::query(
                    dst.target(),
                    context("copying into the destination from"),
                    e,
                )
            })?;
        }
        ctx.limiter.take(unpaid).await;
        progress.copied(root, unpaid);
        sink.as_mut().finish().await.map_err(|e| {
            PgError::query(
                dst.target(),
                context("copying into the destination from"),
                e,
            )
        })?;
        progress.finished(root);
    }
}

/// Runs each object's statements, one object per session at a time.
async fn build_in_parallel(
    sessions: &[&Session],
    objects: Vec<&DeferredObject>,
) -> Result<(), PgError> {
    let queue = Mutex::new(VecDeque::from(objects));
    future::try_join_all(sessions.iter().map(|dst| async {
        loop {
            let Some(object) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                return Ok::<_, PgError>(());
            };
            // Nothing else writes yet, so a deadlock (Postponed) cannot happen; if it did, the
            // catch-up ticks build what is missing.
            destination::build(dst, object).await?;
        }
    }))
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests;
