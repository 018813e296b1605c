//! One look at a mapping's two instances: preflight, the WAL its slots hold, the role plan. The
//! mapping task looks every tick (and then applies the role plan); the one-look commands look
//! once.

use std::time::Instant;

use crate::catalog::pooler::PoolerDatabase;
use crate::findings::{Code, Finding};
use crate::pg::PgError;
use crate::phases::preflight::{self, InstanceReport};
use crate::phases::roles::{self, RolePlan};
use crate::phases::{DbConn, MappingContext, retention};
use crate::status::WalForecast;

/// What one look at the instances found.
pub struct InstanceLook {
    /// Preflight's findings, the WAL findings and the role plan's findings, and the databases
    /// to migrate.
    pub report: InstanceReport,
    pub plan: RolePlan,
    pub forecast: WalForecast,
}

/// The connections to both maintenance databases the mapping task keeps.
pub struct InstanceConnections {
    pub source: DbConn,
    pub destination: DbConn,
}

impl InstanceConnections {
    pub fn new(ctx: &MappingContext) -> Self {
        InstanceConnections {
            source: DbConn::new(&ctx.source, ctx.source.maintenance_db()),
            destination: DbConn::new(&ctx.destination, ctx.destination.maintenance_db()),
        }
    }

    /// Drops both connections, so the next look reconnects (after an error).
    pub fn reset(&mut self) {
        self.source.reset();
        self.destination.reset();
    }
}

/// Looks at both instances of `ctx`'s mapping. `wal` keeps the WAL rates between looks (a fresh
/// one for a single look). Changes nothing.
pub async fn look(
    ctx: &MappingContext,
    conns: &mut InstanceConnections,
    wal: &mut retention::WalWatch,
) -> Result<InstanceLook, PgError> {
    let src = conns.source.get().await?;
    let dst = conns.destination.get().await?;
    let mut report = preflight::check_instance(ctx, src, dst).await?;
    let facts = retention::observe(ctx, src, &report.databases).await?;
    let forecast = wal.update(&facts, Instant::now());
    report
        .findings
        .extend(retention::orphans(&facts, &report.databases));
    report
        .findings
        .extend(wal.copy_warning(&facts, ctx.limiter.limit_mb()));
    let plan = roles::observe(ctx, src, dst).await?;
    report.findings.extend(plan.findings.iter().cloned());
    Ok(InstanceLook {
        report,
        plan,
        forecast,
    })
}

/// What the mapping's PgBouncer console (`pooler`) says now: `Ok(None)` without one; a warning
/// finding when it cannot be read (the migration does not depend on it, the cutover
/// instructions and the dashboard's client counts do).
pub async fn pooler(ctx: &MappingContext) -> Result<Option<Vec<PoolerDatabase>>, Box<Finding>> {
    let Some(console) = &ctx.pooler else {
        return Ok(None);
    };
    let read = async {
        let session = crate::pg::session(console, console.maintenance_db()).await?;
        crate::catalog::pooler::read(&session).await
    };
    let failed = |why: String| {
        Box::new(Finding::warning(
            Code::Pooler,
            format!(
                "cannot read the PgBouncer console {}: {why}",
                console.describe()
            ),
            "check the mapping's pooler settings: the console's address, its database `pgbouncer`, and a user listed in the pooler's admin_users or stats_users",
        ))
    };
    match tokio::time::timeout(POOLER_TIMEOUT, read).await {
        Ok(Ok(entries)) => Ok(Some(entries)),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!(
            "no answer within {} s",
            POOLER_TIMEOUT.as_secs()
        ))),
    }
}

/// How long a look waits for the pooler's console.
const POOLER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who tries a failed look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// The mapping task, after a delay: a transient error (a server restarting) is only shown
    /// as the last error.
    ByTheLoop,
    /// Nobody (a one-look command): every failure is a blocking finding.
    Never,
}

/// The findings of a failed mapping-level step: a blocking `code` finding (with `fix`) unless
/// the loop retries an error that retrying can cure.
pub fn failure(e: &PgError, retried: Retried, code: Code, fix: &str) -> Vec<Finding> {
    if retried == Retried::ByTheLoop && e.is_transient() {
        Vec::new()
    } else {
        vec![Finding::blocking(code, e.to_string(), fix)]
    }
}

/// The fix a failed instance look names.
pub const CONNECTION_FIX: &str = "fix the mapping's connection settings or the server's access rules (check that both servers are up), then restart postgres-migrator";
