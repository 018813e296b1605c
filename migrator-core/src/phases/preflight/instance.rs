//! The instance checks run by [`super::check_instance`]: one query lists the databases, one
//! reads each side's settings and roles (one round trip each), one the destination's sync
//! workers; then one function per check turns what was read into its finding.

use crate::pg::{PgError, Session, q};

use super::{MIN_DESTINATION_VERSION, MIN_SOURCE_VERSION};
use crate::ddl::quote::ident;
use crate::findings::{Code, Finding};
use crate::phases::MappingContext;

/// The source databases the mapping migrates (after include/exclude).
pub(super) async fn databases(ctx: &MappingContext, src: &Session) -> Result<Vec<String>, PgError> {
    Ok(src
        .query(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname",
            &[],
        )
        .await
        .map_err(q(src.target(), "listing databases"))?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|db| ctx.databases.admits(db))
        .collect())
}

/// The names of the slots, subscriptions and WAL senders of the tool for `databases`: they do not
/// count against the room left for it.
pub(super) fn our_names(ctx: &MappingContext, databases: &[String]) -> Vec<String> {
    databases.iter().map(|db| ctx.names(db).slot).collect()
}

/// What the source's instance checks need, read in one query.
pub(super) struct SourceSettings {
    version: i32,
    version_text: String,
    wal_level: String,
    max_slots: i32,
    max_senders: i32,
    other_slots: i64,
    other_senders: i64,
    /// Whether the connecting role is a superuser (`None`: it has no pg_roles row).
    superuser: Option<bool>,
    /// Whether the connecting role has REPLICATION.
    replication: Option<bool>,
    /// Whether replication_user exists with SUPERUSER or REPLICATION.
    replication_user_ok: Option<bool>,
}

impl SourceSettings {
    /// The room for one more replication slot per database, not counting other slots.
    pub(super) fn free_slots(&self) -> i64 {
        self.max_slots as i64 - self.other_slots
    }

    /// The room for one more WAL sender per database, not counting other senders.
    pub(super) fn free_senders(&self) -> i64 {
        self.max_senders as i64 - self.other_senders
    }
}

pub(super) async fn source_settings(
    ctx: &MappingContext,
    src: &Session,
    ours: &[String],
) -> Result<SourceSettings, PgError> {
    let row = src
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('wal_level'), \
               current_setting('max_replication_slots')::int, current_setting('max_wal_senders')::int, \
               (SELECT count(*) FROM pg_replication_slots WHERE slot_name <> ALL($1)), \
               (SELECT count(*) FROM pg_stat_replication WHERE application_name <> ALL($1) \
                  AND application_name !~ '^pg_[0-9]+_sync_'), \
               (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
               (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = $2), \
               current_setting('server_version'), \
               (SELECT rolreplication FROM pg_roles WHERE rolname = current_user)",
            &[&ours, &ctx.source.replication_user],
        )
        .await
        .map_err(q(src.target(), "reading the source's settings"))?;
    Ok(SourceSettings {
        version: row.get(0),
        wal_level: row.get(1),
        max_slots: row.get(2),
        max_senders: row.get(3),
        other_slots: row.get(4),
        other_senders: row.get(5),
        superuser: row.get(6),
        replication_user_ok: row.get(7),
        version_text: row.get(8),
        replication: row.get(9),
    })
}

/// max_sync_workers_per_subscription on the destination: how many more slots, senders and
/// workers each database's initial sync may use at once.
pub(super) async fn sync_workers(dst: &Session) -> Result<i64, PgError> {
    Ok(dst
        .query_one(
            "SELECT current_setting('max_sync_workers_per_subscription')::int",
            &[],
        )
        .await
        .map_err(q(dst.target(), "reading max_sync_workers_per_subscription"))?
        .get::<_, i32>(0) as i64)
}

pub(super) fn source_version(st: &str, source: &SourceSettings) -> Option<Finding> {
    let SourceSettings {
        version,
        version_text,
        ..
    } = source;
    (*version < MIN_SOURCE_VERSION).then(|| Finding::blocking(
        Code::SourceVersion,
        format!("the source {st} runs PostgreSQL {version_text}; postgres-migrator needs 15 or newer"),
        "upgrade the source to PostgreSQL 15 first (pg_upgrade), or migrate it with another tool",
    ))
}

pub(super) fn wal_level(source: &SourceSettings) -> Option<Finding> {
    let wal_level = &source.wal_level;
    (wal_level != "logical").then(|| Finding::blocking(
        Code::WalLevel,
        format!("the source's wal_level is {wal_level}; logical replication needs logical"),
        "run ALTER SYSTEM SET wal_level = logical on the source and restart it (a managed service: set the logical replication flag)",
    ))
}

/// The role connecting to the source: a superuser, or at least REPLICATION (then a warning).
pub(super) fn source_privileges(st: &str, source: &SourceSettings) -> Option<Finding> {
    match source.superuser {
        Some(true) => None,
        Some(false) if source.replication == Some(true) => Some(Finding::warning(
            Code::SourceNotSuperuser,
            format!(
                "the role connecting to the source ({st}) is not a superuser: each database's publication lists its tables (a table created later is reported as drift), and password hashes are copied only if it may read pg_authid"
            ),
            "nothing to do if that suits you; connect as a superuser for FOR ALL TABLES publications and copied passwords",
        )),
        _ => Some(Finding::blocking(
            Code::SourcePrivileges,
            format!(
                "the role connecting to the source ({st}) is neither a superuser nor has the REPLICATION attribute, so it cannot create replication slots"
            ),
            "connect to the source as a superuser, or as a role with REPLICATION that owns (or is a member of the owners of) every table: ALTER ROLE ... REPLICATION",
        )),
    }
}

pub(super) fn replication_role(ctx: &MappingContext, source: &SourceSettings) -> Option<Finding> {
    (source.replication_user_ok != Some(true)).then(|| Finding::blocking(
        Code::ReplicationRole,
        format!(
            "replication_user {} does not exist on the source or lacks the REPLICATION attribute",
            ctx.source.replication_user
        ),
        format!(
            "run on the source: CREATE ROLE {} LOGIN REPLICATION PASSWORD '...' (or ALTER ROLE ... REPLICATION), and allow it in pg_hba.conf",
            ident(&ctx.source.replication_user)
        ),
    ))
}

/// What the destination's instance checks need, read in one query.
pub(super) struct DestinationSettings {
    version: i32,
    version_text: String,
    /// max_logical_replication_workers.
    workers: i32,
    /// max_worker_processes.
    processes: i32,
    /// max_active_replication_origins (PostgreSQL 18: before it, max_replication_slots also
    /// bounded the origins a subscriber tracks).
    origins: Option<i32>,
    /// Whether the connecting role may create databases and subscriptions.
    privileged: Option<bool>,
    other_subscriptions: i64,
    sets_replication_role: bool,
}

impl DestinationSettings {
    /// The room for one more apply worker per database, not counting other subscriptions.
    pub(super) fn free_workers(&self) -> i64 {
        self.workers as i64 - self.other_subscriptions
    }

    /// The room for one more replication origin per database (each running apply or table
    /// synchronization worker tracks one), not counting other subscriptions; `None` before 18.
    pub(super) fn free_origins(&self) -> Option<i64> {
        self.origins
            .map(|origins| origins as i64 - self.other_subscriptions)
    }
}

pub(super) async fn destination_settings(
    dst: &Session,
    ours: &[String],
) -> Result<DestinationSettings, PgError> {
    let row = dst
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version'), \
               current_setting('max_logical_replication_workers')::int, \
               current_setting('max_worker_processes')::int, \
               (SELECT rolsuper OR (rolcreatedb AND pg_has_role(current_user, 'pg_create_subscription', 'MEMBER')) \
                  FROM pg_roles WHERE rolname = current_user), \
               (SELECT count(*) FROM pg_subscription WHERE subname <> ALL($1) AND subenabled), \
               has_parameter_privilege('session_replication_role', 'SET'), \
               current_setting('max_active_replication_origins', true)::int",
            &[&ours],
        )
        .await
        .map_err(q(dst.target(), "reading the destination's settings"))?;
    Ok(DestinationSettings {
        version: row.get(0),
        version_text: row.get(1),
        workers: row.get(2),
        processes: row.get(3),
        privileged: row.get(4),
        other_subscriptions: row.get(5),
        sets_replication_role: row.get(6),
        origins: row.get(7),
    })
}

pub(super) fn destination_version(dt: &str, destination: &DestinationSettings) -> Option<Finding> {
    let DestinationSettings {
        version,
        version_text,
        ..
    } = destination;
    (*version < MIN_DESTINATION_VERSION).then(|| Finding::blocking(
        Code::DestinationVersion,
        format!("the destination {dt} runs PostgreSQL {version_text}; postgres-migrator migrates onto 18 or newer"),
        "point the mapping's destination at a PostgreSQL 18 instance",
    ))
}

pub(super) fn worker_processes(destination: &DestinationSettings) -> Option<Finding> {
    let DestinationSettings {
        workers, processes, ..
    } = *destination;
    ((processes as i64) < workers as i64 + 1).then(|| Finding::warning(
        Code::WorkerProcesses,
        format!("the destination's max_worker_processes ({processes}) leaves no room beside max_logical_replication_workers ({workers})"),
        format!("set max_worker_processes to at least {} on the destination and restart it", workers + 4),
    ))
}

pub(super) fn destination_privileges(
    dt: &str,
    destination: &DestinationSettings,
) -> Option<Finding> {
    (destination.privileged != Some(true)).then(|| Finding::blocking(
        Code::DestinationPrivileges,
        format!("the role connecting to the destination ({dt}) can neither create databases and subscriptions nor is it a superuser"),
        "connect as a superuser, or GRANT pg_create_subscription TO the role and ALTER ROLE it CREATEDB",
    ))
}

pub(super) fn session_replication_role(
    ctx: &MappingContext,
    dt: &str,
    destination: &DestinationSettings,
) -> Option<Finding> {
    (!destination.sets_replication_role).then(|| Finding::blocking(
        Code::DestinationSessionReplicationRole,
        format!("the role connecting to the destination ({dt}) may not set session_replication_role, which the initial copy needs so that the destination's triggers do not fire on copied rows"),
        format!(
            "run as a superuser of the destination: GRANT SET ON PARAMETER session_replication_role TO {} (managed services give it to their admin role: connect as that role)",
            ident(ctx.destination.pg.get_user().unwrap_or("postgres"))
        ),
    ))
}

/// A capacity check: blocking when not even one per database fits, a warning when the initial
/// sync's extra workers may have to wait.
pub(super) fn capacity(
    findings: &mut Vec<Finding>,
    code: Code,
    setting: &str,
    side: &str,
    free: i64,
    databases: i64,
    sync_workers: i64,
) {
    let comfortable = databases * (1 + sync_workers);
    if free < databases {
        findings.push(Finding::blocking(
            code,
            format!("the {side} has room for {free} more (by {setting}) but {databases} database(s) need one each"),
            format!("raise {setting} on the {side} by at least {} (better {}) and restart it, or migrate fewer databases (databases.include/exclude)", databases - free, comfortable - free),
        ));
    } else if free < comfortable {
        findings.push(Finding::warning(
            code,
            format!("the {side} has room for {free} more (by {setting}); the initial sync of {databases} database(s) can use up to {comfortable} at once and will go slower"),
            format!("raise {setting} on the {side} to {comfortable} or more for a faster initial sync"),
        ));
    }
}
