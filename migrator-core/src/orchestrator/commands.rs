//! The one-look commands of the CLI (`status`, `check`, `instructions`) and the commands that
//! change a mapping (`complete`, `resync`), for the CLI and for the running orchestrator. A look
//! is the reconcile loop's own pass ([`database::pass`] in [`Mode::Look`], [`instance::look`])
//! without memory and without acting.

use std::time::SystemTime;

use super::database::{self, Connections, Memory, Mode};
use super::instance::{self, InstanceConnections, InstanceLook, Retried};
use super::lease::{self, Acquired, Lease};
use super::{contexts, header, verify};
use crate::config::{Problem, Settings, VerifyBeforeComplete};
use crate::findings::{Code, Finding};
use crate::pg::PgError;
use crate::phase::{DestinationState, Phase};
use crate::phases::preflight::{Claim, name_conflicts};
use crate::phases::retention::WalWatch;
use crate::phases::{DbConn, MappingContext, catchup, complete, cutover, drift, purge, schema};
use crate::status::{MappingStatus, Snapshot, VerifyMode, VerifyOutcome, VerifyStatus};

/// How long `complete` waits for the destination to catch up with what the source wrote.
const LAG_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

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

/// One look at the instances of `ctx`'s mapping (nothing is applied).
async fn look_at_instances(ctx: &MappingContext) -> Result<InstanceLook, PgError> {
    instance::look(
        ctx,
        &mut InstanceConnections::new(ctx),
        &mut WalWatch::default(),
    )
    .await
}

/// One look at every mapping (or only `only`): phases, lag and findings. The same passes as
/// the reconcile loop's, without acting and without memory: a single look cannot know how long
/// the cutover conditions have held, so it reports whether they hold now.
pub async fn status(settings: &Settings, only: Option<&str>) -> Result<Snapshot, CommandError> {
    let all = contexts(settings).map_err(CommandError::Config)?;
    if let Some(name) = only
        && !all.iter().any(|c| c.name == name)
    {
        return Err(CommandError::UnknownMapping(name.to_owned()));
    }
    let mut looks = Vec::new();
    for ctx in &all {
        looks.push(look_at_instances(ctx).await);
    }
    let claims: Vec<Claim> = all
        .iter()
        .zip(&looks)
        .filter_map(|(ctx, look)| {
            look.as_ref().ok().map(|look| Claim {
                mapping: ctx.name.clone(),
                destination: ctx.destination_key(),
                databases: look.report.databases.clone(),
                roles: look.plan.definitions.clone(),
            })
        })
        .collect();
    let mut conflicts = name_conflicts(&claims);
    let mut mappings = Vec::new();
    for (ctx, look) in all.iter().zip(looks) {
        if only.is_some_and(|name| name != ctx.name) {
            continue;
        }
        let mut status = header(ctx);
        status.last_tick = Some(SystemTime::now());
        match look {
            Err(e) => {
                status.findings = instance::failure(
                    &e,
                    Retried::Never,
                    Code::Connection,
                    instance::CONNECTION_FIX,
                );
            }
            Ok(look) => {
                status.roles = look.plan.roles;
                status.wal = Some(look.forecast);
                status.findings = look.report.findings;
                status
                    .findings
                    .extend(conflicts.remove(&ctx.name).unwrap_or_default());
                let blocked = status.findings.iter().any(Finding::is_blocking);
                for db in &look.report.databases {
                    let mut conns = Connections::new(ctx, db);
                    let mut memory = Memory::default();
                    match database::pass(ctx, db, blocked, &mut conns, &mut memory, Mode::Look)
                        .await
                    {
                        Ok(passed) => status.databases.push(passed.status),
                        Err(failed) => status.findings.push(Finding::blocking(
                            Code::DatabaseUnreachable,
                            failed.error.to_string(),
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
    let look = look_at_instances(&ctx).await?;
    let pooler = instance::pooler(&ctx).await.ok().flatten();
    Ok(cutover::instructions(
        &ctx,
        &look.report.databases,
        pooler.as_deref(),
    ))
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
    let look = look_at_instances(&ctx).await?;
    resync_databases(&ctx, &look.report.databases).await
}

/// [`resync`] of `databases`, for a caller that holds the mapping's lease.
pub(crate) async fn resync_databases(
    ctx: &MappingContext,
    databases: &[String],
) -> Result<Vec<String>, CommandError> {
    let mut done = Vec::new();
    for db in databases {
        let Connections {
            mut source,
            mut destination,
            mut destination_admin,
        } = Connections::new(ctx, db);
        let state = schema::destination_state(ctx, db, destination_admin.get().await?).await?;
        if state
            != (DestinationState::Ours {
                schema_applied: true,
            })
        {
            continue;
        }
        done.extend(drift::resync(ctx, db, source.get().await?, destination.get().await?).await?);
    }
    if done.is_empty() {
        done.push(format!("mapping {}: no schema drift to resolve", ctx.name));
    }
    Ok(done)
}

/// Purges database `db` of mapping `name` (see [`purge`]) under the mapping's lease: the
/// command line's way (a running instance does it in the database's task: `Command::Purge`).
pub async fn purge(
    settings: &Settings,
    name: &str,
    db: &str,
    request: &purge::Request,
) -> Result<Vec<String>, CommandError> {
    let ctx = find(settings, name)?;
    let _lease = take_lease(&ctx, "purge").await?;
    let look = look_at_instances(&ctx).await?;
    if !look.report.databases.iter().any(|d| d == db) {
        return Err(CommandError::Refused(format!(
            "mapping {name} does not migrate a database {db:?} (it migrates: {}); nothing was purged",
            look.report.databases.join(", ")
        )));
    }
    Ok(purge_database(&ctx, db, request).await?)
}

/// [`purge::run`] on fresh connections, for a caller that holds the mapping's lease and has
/// stopped the database's task (or runs none).
pub(crate) async fn purge_database(
    ctx: &MappingContext,
    db: &str,
    request: &purge::Request,
) -> Result<Vec<String>, purge::PurgeError> {
    let Connections {
        mut source,
        mut destination,
        mut destination_admin,
    } = Connections::new(ctx, db);
    let state = schema::destination_state(ctx, db, destination_admin.get().await?).await?;
    // Refused before connecting to a database that may not exist.
    purge::refuse_unless_ours(ctx, db, &state)?;
    let sessions = purge::Sessions {
        src: source.get().await?,
        dst: destination.get().await?,
        dst_admin: destination_admin.get().await?,
    };
    purge::run(ctx, db, request, &state, sessions).await
}

impl From<purge::PurgeError> for CommandError {
    fn from(e: purge::PurgeError) -> Self {
        match e {
            purge::PurgeError::Refused(why) => CommandError::Refused(why),
            purge::PurgeError::Pg(e) => CommandError::Pg(e),
        }
    }
}

/// One database's schema proof, or why it was not compared.
#[derive(Debug, Clone)]
pub struct SchemaProof {
    pub mapping: String,
    pub database: String,
    /// `None` when its schema is not on the destination yet (nothing to compare).
    pub proof: Option<drift::Proof>,
}

/// Compares every database's schema on both sides, object by object ([`drift::prove`]), for
/// `only` one mapping or all. Changes nothing.
pub async fn schema_proof(
    settings: &Settings,
    only: Option<&str>,
) -> Result<Vec<SchemaProof>, CommandError> {
    let contexts = match only {
        Some(name) => vec![find(settings, name)?],
        None => contexts(settings).map_err(CommandError::Config)?,
    };
    let mut proofs = Vec::new();
    for ctx in &contexts {
        let look = look_at_instances(ctx).await?;
        for db in &look.report.databases {
            let Connections {
                mut source,
                mut destination,
                mut destination_admin,
            } = Connections::new(ctx, db);
            let state = schema::destination_state(ctx, db, destination_admin.get().await?).await?;
            let applied = matches!(
                state,
                DestinationState::Ours {
                    schema_applied: true
                } | DestinationState::Incomplete { .. }
            );
            let proof = if applied {
                Some(drift::prove(ctx, db, source.get().await?, destination.get().await?).await?)
            } else {
                None
            };
            proofs.push(SchemaProof {
                mapping: ctx.name.clone(),
                database: db.clone(),
                proof,
            });
        }
    }
    Ok(proofs)
}

/// Verifies the data of mapping `name` (see [`crate::verify`]): every database of its source,
/// or `request.database`. Only reads, so it needs no lease and runs beside `run`.
pub async fn verify(
    settings: &Settings,
    name: &str,
    request: crate::verify::Request,
    publish: &(dyn Fn(&VerifyStatus) + Sync),
) -> Result<VerifyStatus, CommandError> {
    let ctx = find(settings, name)?;
    let look = look_at_instances(&ctx).await?;
    Ok(verify::run(&ctx, &look.report.databases, request, publish).await)
}

/// The source databases of `ctx`'s mapping, from one look at its instances.
pub(crate) async fn databases(ctx: &MappingContext) -> Result<Vec<String>, PgError> {
    Ok(look_at_instances(ctx).await?.report.databases)
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
    let snapshot = status(settings, Some(name)).await?;
    let mapping = snapshot
        .mapping(name)
        .ok_or_else(|| CommandError::UnknownMapping(name.to_owned()))?;
    complete_mapping(&ctx, mapping, force).await
}

/// [`complete`] of the mapping whose status is `mapping`, for a caller that holds its lease.
pub(crate) async fn complete_mapping(
    ctx: &MappingContext,
    mapping: &MappingStatus,
    force: bool,
) -> Result<Vec<String>, CommandError> {
    let name = &ctx.name;
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
    let mut admin = DbConn::new(&ctx.source, ctx.source.maintenance_db());
    let caught_up =
        catchup::wait_for_zero_lag(admin.get().await?, &pending, LAG_DRAIN_TIMEOUT).await?;
    if !caught_up && !force {
        return Err(CommandError::Refused(format!(
            "refusing to complete mapping {name}: the destination has not caught up with the source within {}s; stop writes to the source first, or pass --force",
            LAG_DRAIN_TIMEOUT.as_secs()
        )));
    }
    let mut done = Vec::new();
    if ctx.verify_before_complete != VerifyBeforeComplete::Off {
        let databases: Vec<String> = mapping
            .databases
            .iter()
            .filter(|d| !matches!(d.phase, Phase::Completing | Phase::Completed))
            .map(|d| d.name.clone())
            .collect();
        let request = crate::verify::Request {
            mode: VerifyMode::Exact,
            database: None,
            table: None,
        };
        let report = verify::run(ctx, &databases, request, &|_| {}).await;
        let lines = crate::verify::report::lines(name, &report);
        if ctx.verify_before_complete == VerifyBeforeComplete::Require
            && report.outcome() != VerifyOutcome::Equal
            && !force
        {
            return Err(CommandError::Refused(format!(
                "refusing to complete mapping {name}: verify_before_complete = \"require\" and the verification did not prove every table equal. Nothing was dropped; look at the report, fix the destination or copy the database again, then complete (or pass --force):\n{}",
                lines.join("\n")
            )));
        }
        done.extend(lines);
    }
    for db in &mapping.databases {
        if db.phase == Phase::Completed {
            done.push(format!("{:?}: already completed", db.name));
            continue;
        }
        let names = ctx.names(&db.name);
        let mut conns = Connections::new(ctx, &db.name);
        let Connections {
            source,
            destination,
            ..
        } = &mut conns;
        let src = source.get().await?;
        let dst = destination.get().await?;
        complete::complete_database(ctx, &db.name, &names, src, dst).await?;
        done.push(format!(
            "{:?}: sequences synced, subscription {} disabled and detached, slot and publication {} dropped",
            db.name, names.subscription, names.slot
        ));
    }
    Ok(done)
}

/// The resolved context of mapping `name`.
pub fn find(settings: &Settings, name: &str) -> Result<MappingContext, CommandError> {
    let mapping = settings
        .mappings
        .get(name)
        .ok_or_else(|| CommandError::UnknownMapping(name.to_owned()))?;
    MappingContext::new(name, mapping, &settings.migration).map_err(CommandError::Config)
}
