//! A verification of a mapping's data (see [`crate::verify`]): database after database, under
//! the copy's rate limit and health guard, its progress handed to `publish` as it goes. Used by
//! the `verify` command, the dashboard's Verify button and mark complete
//! (`verify_before_complete`). Only reads: it needs no lease.

use std::time::{Duration, Instant, SystemTime};

use crate::pg::PgError;
use crate::phases::copy::{LiftCap, health_guard};
use crate::phases::{DbConn, MappingContext, catchup};
use crate::status::{VerifyMode, VerifyStatus};
use crate::verify::{Job, Request, Sides};

/// How long exact mode waits for the destination to catch up before it starts.
const LAG_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Progress is published at most this often (and once at the end of each database).
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// Verifies `databases` of `ctx`'s mapping (only `request.database` when set) and returns the
/// finished report; `publish` sees it while it runs.
pub async fn run(
    ctx: &MappingContext,
    databases: &[String],
    request: Request,
    publish: &(dyn Fn(&VerifyStatus) + Sync),
) -> VerifyStatus {
    let mut status = VerifyStatus {
        mode: request.mode,
        database: request.database.clone(),
        table: request.table.clone(),
        started_at: SystemTime::now(),
        finished_at: None,
        error: None,
        databases: Vec::new(),
    };
    let chosen: Vec<&String> = databases
        .iter()
        .filter(|d| request.database.as_ref().is_none_or(|only| only == *d))
        .collect();
    if let Some(only) = &request.database
        && chosen.is_empty()
    {
        status.error = Some(format!(
            "mapping {} has no database named {only:?} (it has: {})",
            ctx.name,
            databases.join(", ")
        ));
        status.finished_at = Some(SystemTime::now());
        return status;
    }
    tracing::info!(mapping = %ctx.name, mode = %request.mode, "verification started");
    publish(&status);
    let replicating = match replicating(ctx, &chosen).await {
        Ok(r) => r,
        Err(e) => {
            status.error = Some(e.to_string());
            status.finished_at = Some(SystemTime::now());
            return status;
        }
    };
    if request.mode == VerifyMode::Exact
        && let Err(why) = drained(ctx, &replicating).await
    {
        status.error = Some(why);
        status.finished_at = Some(SystemTime::now());
        publish(&status);
        return status;
    }
    let _lift = LiftCap(&ctx.limiter);
    for db in chosen {
        let sides = Sides {
            source: &ctx.source,
            destination: &ctx.destination,
            database: db,
            limiter: &ctx.limiter,
            replication: replicating.contains(db).then(|| ctx.names(db)),
        };
        let job = Job::new(sides, request.clone(), ctx.verify);
        let index = status.databases.len();
        let shown = std::sync::Mutex::new((status.clone(), Instant::now() - PUBLISH_EVERY));
        let progress = |db_status: &crate::status::VerifyDatabase| {
            let mut shown = shown.lock().expect("verify progress");
            let (view, last) = &mut *shown;
            view.databases.truncate(index);
            view.databases.push(db_status.clone());
            if last.elapsed() >= PUBLISH_EVERY {
                *last = Instant::now();
                publish(view);
            }
        };
        let verified = {
            let running = job.run(&progress);
            let guard = health_guard(ctx, db);
            tokio::pin!(running, guard);
            tokio::select! {
                done = &mut running => done,
                error = &mut guard => {
                    tracing::warn!(mapping = %ctx.name, error = %error, "verification goes on without the health guard");
                    running.await
                }
            }
        };
        status.databases.push(verified);
        publish(&status);
    }
    status.finished_at = Some(SystemTime::now());
    let totals = status.totals();
    tracing::info!(
        mapping = %ctx.name,
        outcome = ?status.outcome(),
        ranges = totals.checked,
        differing = totals.differing,
        unsettled = totals.unsettled,
        rows = totals.rows,
        seconds = status.elapsed().as_secs_f64(),
        "verification finished"
    );
    publish(&status);
    status
}

/// The databases among `chosen` whose replication slot exists on the source.
async fn replicating(ctx: &MappingContext, chosen: &[&String]) -> Result<Vec<String>, PgError> {
    let slots: Vec<String> = chosen.iter().map(|db| ctx.names(db).slot).collect();
    let mut admin = DbConn::new(&ctx.source, ctx.source.maintenance_db());
    let src = admin.get().await?;
    let existing: Vec<String> = src
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE slot_name = ANY($1)",
            &[&slots],
        )
        .await
        .map_err(crate::pg::q(
            src.target(),
            "looking for the replication slots",
        ))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(chosen
        .iter()
        .filter(|db| existing.contains(&ctx.names(db).slot))
        .map(|db| (*db).clone())
        .collect())
}

/// Exact mode starts once the destination has everything the source wrote before now.
async fn drained(ctx: &MappingContext, replicating: &[String]) -> Result<(), String> {
    if replicating.is_empty() {
        return Ok(());
    }
    let slots: Vec<String> = replicating.iter().map(|db| ctx.names(db).slot).collect();
    let mut admin = DbConn::new(&ctx.source, ctx.source.maintenance_db());
    let caught_up =
        async { catchup::wait_for_zero_lag(admin.get().await?, &slots, LAG_DRAIN_TIMEOUT).await }
            .await
            .map_err(|e: PgError| e.to_string())?;
    if caught_up {
        Ok(())
    } else {
        Err(format!(
            "the destination has not caught up with the source within {}s: an exact \
             verification needs writes to the source stopped and the lag drained. Stop the \
             writes, or verify online (without --exact) while they run",
            LAG_DRAIN_TIMEOUT.as_secs()
        ))
    }
}
