//! One pass over the databases, for the CLI: `status`, `check`, `instructions`, `complete`.
//! The same observation code as the reconcile loop, without its clocks: a single look cannot
//! know how long the cutover conditions have held, so it reports whether they hold now.

use std::time::SystemTime;

use super::contexts;
use super::database::{self, Connections};
use super::lease::{self, Acquired, Lease};
use crate::config::{Problem, Settings};
use crate::findings::Finding;
use crate::pg::PgError;
use crate::phase::{Phase, derive_phase};
use crate::phases::preflight::{self, Claim, InstanceReport, name_conflicts};
use crate::phases::roles::{self, RolePlan};
use crate::phases::{DbConn, MappingContext, catchup, complete, cutover, drift, schema};

/// How long `complete` waits for the destination to catch up with what the source wrote.
const LAG_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
use crate::status::{MappingStatus, Snapshot};

/// Why a one-shot command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Config(Vec<Problem>),
    #[error("no mapping named {0:?} is configured (see `postgres-migrator config`)")]
    UnknownMapping(String),
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("{0}")]
    Refused(String),
    /// Another instance holds the mapping's lease: only it may act.
    #[error(
        "mapping {mapping} is held by another instance of postgres-migrator{}; only it may change anything. Send the command to it: its dashboard, or POST /api/mappings/{mapping}/{command} on its HTTP address",
        .holder.as_ref().map(|h| format!(": {h}")).unwrap_or_default()
    )]
    Held {
        mapping: String,
        command: &'static str,
        holder: Option<crate::status::LeaseHolder>,
    },
    /// A command sent to a running orchestrator that stopped before answering.
    #[error("the orchestrator is not running")]
    Stopped,
}

/// The instance checks with the role plan's findings (nothing is applied).
async fn instance_report(ctx: &MappingContext) -> Result<(InstanceReport, RolePlan), PgError> {
    let mut src = DbConn::new(
        &ctx.source,
        ctx.source.pg.get_dbname().unwrap_or("postgres"),
    );
    let mut dst = DbConn::new(
        &ctx.destination,
        ctx.destination.pg.get_dbname().unwrap_or("postgres"),
    );
    let src = src.get().await?;
    let dst = dst.get().await?;
    let mut report = preflight::check_instance(ctx, src, dst).await?;
    let plan = roles::observe(ctx, src, dst).await?;
    report.findings.extend(plan.findings.iter().cloned());
    Ok((report, plan))
}

/// One look at every mapping (or only `only`): phases, lag and findings.
pub async fn status(settings: &Settings, only: Option<&str>) -> Result<Snapshot, CommandError> {
    let all = contexts(settings).map_err(CommandError::Config)?;
    if let Some(name) = only
        && !all.iter().any(|c| c.name == name)
    {
        return Err(CommandError::UnknownMapping(name.to_owned()));
    }
    let mut reports = Vec::new();
    for ctx in &all {
        reports.push(instance_report(ctx).await);
    }
    let claims: Vec<Claim> = all
        .iter()
        .zip(&reports)
        .filter_map(|(ctx, r)| {
            r.as_ref().ok().map(|(r, plan)| Claim {
                mapping: ctx.name.clone(),
                destination: ctx.destination_key(),
                databases: r.databases.clone(),
                roles: plan.definitions.clone(),
            })
        })
        .collect();
    let mut conflicts = name_conflicts(&claims);
    let mut mappings = Vec::new();
    for (ctx, report) in all.iter().zip(reports) {
        if only.is_some_and(|name| name != ctx.name) {
            continue;
        }
        let mut status = MappingStatus {
            name: ctx.name.clone(),
            source: ctx.source.describe(),
            destination: ctx.destination.describe(),
            phase: Phase::Preflight,
            findings: Vec::new(),
            last_error: None,
            last_tick: Some(SystemTime::now()),
            databases: Vec::new(),
            roles: Vec::new(),
            copy: ctx.limiter.snapshot(),
            wal: None,
            acting_here: false,
            held_by: None,
            instructions: String::new(),
        };
        match report {
            Err(e) => {
                status.findings.push(Finding::blocking(
                    "connection",
                    e.to_string(),
                    "check that the servers are up and the mapping's connection settings are right",
                ));
            }
            Ok((report, plan)) => {
                status.roles = plan.roles;
                status.findings = report.findings.clone();
                status
                    .findings
                    .extend(conflicts.remove(&ctx.name).unwrap_or_default());
                let blocked = status.findings.iter().any(Finding::is_blocking);
                for db in &report.databases {
                    let mut conns = Connections::new(ctx, db);
                    match database::observe(ctx, db, blocked, &mut conns, None).await {
                        Ok(obs) => {
                            let mut db_status = obs.status;
                            db_status.phase = derive_phase(
                                &obs.facts,
                                &ctx.thresholds,
                                std::time::Duration::ZERO,
                            );
                            status.databases.push(db_status);
                        }
                        Err(e) => status.findings.push(Finding::blocking(
                            "database_unreachable",
                            e.to_string(),
                            "check that the database accepts connections",
                        )),
                    }
                }
            }
        }
        status.phase = MappingStatus::aggregate_phase(
            &status.databases,
            status.findings.iter().any(Finding::is_blocking),
        );
        mappings.push(status);
    }
    Ok(Snapshot {
        generated_at: Some(SystemTime::now()),
        mappings,
    })
}

/// The cutover instructions of mapping `name`.
pub async fn instructions(settings: &Settings, name: &str) -> Result<String, CommandError> {
    let ctx = find(settings, name)?;
    let (report, _) = instance_report(&ctx).await?;
    Ok(cutover::instructions(&ctx, &report.databases))
}

/// Takes the lease of `ctx`'s mapping for a one-shot command, or refuses naming the holder.
async fn take_lease(ctx: &MappingContext, command: &'static str) -> Result<Lease, CommandError> {
    match Lease::acquire(&ctx.source, &ctx.name, &lease::application_name()).await? {
        Acquired::Held(lease) => Ok(lease),
        Acquired::Busy(holder) => Err(CommandError::Held {
            mapping: ctx.name.clone(),
            command,
            holder,
        }),
    }
}

/// Resolves the safe part of every database's schema drift (new tables and columns, see
/// [`drift::resync`]); returns one line per change made or left to the operator. Takes the
/// mapping's lease for its duration (refused while another instance holds it).
pub async fn resync(settings: &Settings, name: &str) -> Result<Vec<String>, CommandError> {
    let ctx = find(settings, name)?;
    let _lease = take_lease(&ctx, "resync").await?;
    resync_held(&ctx).await
}

/// [`resync`] for a caller that holds the mapping's lease.
pub(crate) async fn resync_held(ctx: &MappingContext) -> Result<Vec<String>, CommandError> {
    let name = &ctx.name;
    let (report, _) = instance_report(ctx).await?;
    let mut done = Vec::new();
    for db in &report.databases {
        let Connections {
            mut source,
            mut destination,
            mut destination_admin,
        } = Connections::new(ctx, db);
        let state = schema::destination_state(ctx, db, destination_admin.get().await?).await?;
        if state
            != (schema::DestinationState::Ours {
                schema_applied: true,
            })
        {
            continue;
        }
        done.extend(drift::resync(ctx, db, source.get().await?, destination.get().await?).await?);
    }
    if done.is_empty() {
        done.push(format!("mapping {name}: no schema drift to resolve"));
    }
    Ok(done)
}

/// Marks mapping `name` complete (see [`complete::complete_database`]). Refused unless every
/// database is cutover ready now (or completed already), unless `force`. Returns what was done,
/// one line per database. Takes the mapping's lease for its duration (refused while another
/// instance holds it).
pub async fn complete(
    settings: &Settings,
    name: &str,
    force: bool,
) -> Result<Vec<String>, CommandError> {
    let ctx = find(settings, name)?;
    let _lease = take_lease(&ctx, "complete").await?;
    complete_held(settings, name, force).await
}

/// [`complete`] for a caller that holds the mapping's lease.
pub(crate) async fn complete_held(
    settings: &Settings,
    name: &str,
    force: bool,
) -> Result<Vec<String>, CommandError> {
    let ctx = find(settings, name)?;
    let snapshot = status(settings, Some(name)).await?;
    let mapping = snapshot
        .mapping(name)
        .ok_or_else(|| CommandError::UnknownMapping(name.to_owned()))?;
    if !force {
        let mut reasons: Vec<String> = mapping
            .findings
            .iter()
            .filter(|f| f.is_blocking())
            .map(|f| f.message.clone())
            .collect();
        for db in &mapping.databases {
            let begun = matches!(db.phase, Phase::Completing | Phase::Completed);
            if !begun && !db.cutover_conditions_met {
                reasons.push(format!(
                    "database {:?} is {} (not cutover ready)",
                    db.name, db.phase
                ));
            }
        }
        if mapping.databases.is_empty() {
            reasons.push("it has no databases yet".into());
        }
        if !reasons.is_empty() {
            return Err(CommandError::Refused(format!(
                "refusing to complete mapping {name}: {}. Wait until it is cutover ready, or pass --force to drop the replication anyway (changes not yet replicated are lost to the destination)",
                reasons.join("; ")
            )));
        }
    }
    // Everything written to the source before this moment must reach the destination first.
    let pending: Vec<String> = mapping
        .databases
        .iter()
        .filter(|d| !matches!(d.phase, Phase::Completing | Phase::Completed))
        .map(|d| ctx.names(&d.name).slot)
        .collect();
    let mut admin = DbConn::new(
        &ctx.source,
        ctx.source.pg.get_dbname().unwrap_or("postgres"),
    );
    let target = admin.target();
    let caught_up =
        catchup::wait_for_zero_lag(admin.get().await?, &target, &pending, LAG_DRAIN_TIMEOUT)
            .await?;
    if !caught_up && !force {
        return Err(CommandError::Refused(format!(
            "refusing to complete mapping {name}: the destination has not caught up with the source within {}s; stop writes to the source first, or pass --force",
            LAG_DRAIN_TIMEOUT.as_secs()
        )));
    }
    let mut done = Vec::new();
    for db in &mapping.databases {
        if db.phase == Phase::Completed {
            done.push(format!("{:?}: already completed", db.name));
            continue;
        }
        let names = ctx.names(&db.name);
        let mut conns = Connections::new(&ctx, &db.name);
        let Connections {
            source,
            destination,
            ..
        } = &mut conns;
        let src = source.get().await?;
        let dst = destination.get().await?;
        complete::complete_database(&ctx, &db.name, &names, src, dst).await?;
        done.push(format!(
            "{:?}: sequences synced, subscription {} disabled and detached, slot and publication {} dropped",
            db.name, names.subscription, names.slot
        ));
    }
    Ok(done)
}

fn find(settings: &Settings, name: &str) -> Result<MappingContext, CommandError> {
    let mapping = settings
        .mappings
        .get(name)
        .ok_or_else(|| CommandError::UnknownMapping(name.to_owned()))?;
    MappingContext::new(name, mapping, &settings.migration).map_err(CommandError::Config)
}
