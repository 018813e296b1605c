//! Preflight: checks run every tick before (and while) anything is created. A blocking finding
//! stops the affected mapping or database, with the fix; nothing is created before they pass.
//!
//! Instance checks ([`check_instance`]): versions, `wal_level`, replication slots, WAL senders
//! and worker capacity for the databases to migrate, and the privileges of the roles used.
//! Database checks ([`check_database`]): tables without a primary key or replica identity,
//! extensions the destination lacks, a destination database in use by someone else, large
//! objects. Across mappings ([`name_conflicts`]): two mappings sending databases of the same
//! name to one destination.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::{MappingContext, q, schema};
use crate::catalog::model::QualifiedName;
use crate::config::NoPkRemedy;
use crate::ddl::quote::{ident, qualified};
use crate::findings::Finding;
use crate::pg::PgError;

/// Oldest source and destination versions supported (server_version_num).
pub const MIN_SOURCE_VERSION: i32 = 150000;
pub const MIN_DESTINATION_VERSION: i32 = 180000;

/// What the instance checks found.
#[derive(Debug, Clone, Default)]
pub struct InstanceReport {
    pub findings: Vec<Finding>,
    /// The source databases this mapping migrates (after include/exclude).
    pub databases: Vec<String>,
}

impl InstanceReport {
    pub fn blocked(&self) -> bool {
        self.findings.iter().any(Finding::is_blocking)
    }
}

/// Instance-level checks. `src` and `dst` are connected to the maintenance databases.
pub async fn check_instance(
    ctx: &MappingContext,
    src: &Client,
    dst: &Client,
) -> Result<InstanceReport, PgError> {
    let st = ctx.source.describe();
    let dt = ctx.destination.describe();
    let mut findings = Vec::new();

    let databases: Vec<String> = src
        .query(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname",
            &[],
        )
        .await
        .map_err(q(&st, "listing databases"))?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|db| ctx.databases.admits(db))
        .collect();
    let wanted = databases.len() as i64;

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
            &[&our_names(ctx, &databases), &ctx.source.replication_user],
        )
        .await
        .map_err(q(&st, "reading the source's settings"))?;
    let version: i32 = row.get(0);
    let wal_level: String = row.get(1);
    let max_slots: i32 = row.get(2);
    let max_senders: i32 = row.get(3);
    let other_slots: i64 = row.get(4);
    let other_senders: i64 = row.get(5);
    let source_super: Option<bool> = row.get(6);
    let replication_ok: Option<bool> = row.get(7);
    let version_text: String = row.get(8);
    let source_replication: Option<bool> = row.get(9);

    let sync_workers = dst
        .query_one(
            "SELECT current_setting('max_sync_workers_per_subscription')::int",
            &[],
        )
        .await
        .map_err(q(&dt, "reading max_sync_workers_per_subscription"))?
        .get::<_, i32>(0) as i64;

    if version < MIN_SOURCE_VERSION {
        findings.push(Finding::blocking(
            "source_version",
            format!("the source {st} runs PostgreSQL {version_text}; postgres-migrator needs 15 or newer"),
            "upgrade the source to PostgreSQL 15 first (pg_upgrade), or migrate it with another tool",
        ));
    }
    if wal_level != "logical" {
        findings.push(Finding::blocking(
            "wal_level",
            format!("the source's wal_level is {wal_level}; logical replication needs logical"),
            "run ALTER SYSTEM SET wal_level = logical on the source and restart it (a managed service: set the logical replication flag)",
        ));
    }
    capacity(
        &mut findings,
        "replication_slots",
        "max_replication_slots",
        "source",
        max_slots as i64 - other_slots,
        wanted,
        sync_workers,
    );
    capacity(
        &mut findings,
        "wal_senders",
        "max_wal_senders",
        "source",
        max_senders as i64 - other_senders,
        wanted,
        sync_workers,
    );
    match source_super {
        Some(true) => {}
        Some(false) if source_replication == Some(true) => findings.push(Finding::warning(
            "source_not_superuser",
            format!("the role connecting to the source ({st}) is not a superuser: each database's publication lists its tables (a table created later is reported as drift), and password hashes are copied only if it may read pg_authid"),
            "nothing to do if that suits you; connect as a superuser for FOR ALL TABLES publications and copied passwords",
        )),
        _ => findings.push(Finding::blocking(
            "source_privileges",
            format!("the role connecting to the source ({st}) is neither a superuser nor has the REPLICATION attribute, so it cannot create replication slots"),
            "connect to the source as a superuser, or as a role with REPLICATION that owns (or is a member of the owners of) every table: ALTER ROLE ... REPLICATION",
        )),
    }
    if replication_ok != Some(true) {
        findings.push(Finding::blocking(
            "replication_role",
            format!(
                "replication_user {} does not exist on the source or lacks the REPLICATION attribute",
                ctx.source.replication_user
            ),
            format!(
                "run on the source: CREATE ROLE {} LOGIN REPLICATION PASSWORD '...' (or ALTER ROLE ... REPLICATION), and allow it in pg_hba.conf",
                ident(&ctx.source.replication_user)
            ),
        ));
    }

    let row = dst
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version'), \
               current_setting('max_logical_replication_workers')::int, \
               current_setting('max_worker_processes')::int, \
               (SELECT rolsuper OR (rolcreatedb AND pg_has_role(current_user, 'pg_create_subscription', 'MEMBER')) \
                  FROM pg_roles WHERE rolname = current_user), \
               (SELECT count(*) FROM pg_subscription WHERE subname <> ALL($1) AND subenabled), \
               has_parameter_privilege('session_replication_role', 'SET')",
            &[&our_names(ctx, &databases)],
        )
        .await
        .map_err(q(&dt, "reading the destination's settings"))?;
    let dest_version: i32 = row.get(0);
    let dest_version_text: String = row.get(1);
    let workers: i32 = row.get(2);
    let processes: i32 = row.get(3);
    let dest_privileged: Option<bool> = row.get(4);
    let other_subscriptions: i64 = row.get(5);
    let sets_replication_role: bool = row.get(6);
    if dest_version < MIN_DESTINATION_VERSION {
        findings.push(Finding::blocking(
            "destination_version",
            format!("the destination {dt} runs PostgreSQL {dest_version_text}; postgres-migrator migrates onto 18 or newer"),
            "point the mapping's destination at a PostgreSQL 18 instance",
        ));
    }
    capacity(
        &mut findings,
        "replication_workers",
        "max_logical_replication_workers",
        "destination",
        workers as i64 - other_subscriptions,
        wanted,
        sync_workers,
    );
    if (processes as i64) < workers as i64 + 1 {
        findings.push(Finding::warning(
            "worker_processes",
            format!("the destination's max_worker_processes ({processes}) leaves no room beside max_logical_replication_workers ({workers})"),
            format!("set max_worker_processes to at least {} on the destination and restart it", workers + 4),
        ));
    }
    if dest_privileged != Some(true) {
        findings.push(Finding::blocking(
            "destination_privileges",
            format!("the role connecting to the destination ({dt}) can neither create databases and subscriptions nor is it a superuser"),
            "connect as a superuser, or GRANT pg_create_subscription TO the role and ALTER ROLE it CREATEDB",
        ));
    }
    if !sets_replication_role {
        findings.push(Finding::blocking(
            "destination_session_replication_role",
            format!("the role connecting to the destination ({dt}) may not set session_replication_role, which the initial copy needs so that the destination's triggers do not fire on copied rows"),
            format!(
                "run as a superuser of the destination: GRANT SET ON PARAMETER session_replication_role TO {} (managed services give it to their admin role: connect as that role)",
                ident(ctx.destination.pg.get_user().unwrap_or("postgres"))
            ),
        ));
    }
    Ok(InstanceReport {
        findings,
        databases,
    })
}

fn our_names(ctx: &MappingContext, databases: &[String]) -> Vec<String> {
    databases.iter().map(|db| ctx.names(db).slot).collect()
}

/// A capacity check: blocking when not even one per database fits, a warning when the initial
/// sync's extra workers may have to wait.
fn capacity(
    findings: &mut Vec<Finding>,
    code: &'static str,
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

/// Database-level checks. `src` is connected to the source database; `dst_admin` to the
/// destination's maintenance database.
pub async fn check_database(
    ctx: &MappingContext,
    db: &str,
    src: &Client,
    dst_admin: &Client,
    destination: &schema::DestinationState,
) -> Result<Vec<Finding>, PgError> {
    let st = format!("{} database {db:?}", ctx.source.describe());
    let mut findings = Vec::new();

    let rows = src
        .query(
            "SELECT n.nspname, c.relname, c.relreplident::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND c.relpersistence = 'p' \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
               AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass \
                               AND x.objid = c.oid AND x.deptype = 'e') \
               AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) \
               AND NOT (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i \
                        WHERE i.indrelid = c.oid AND i.indisreplident)) \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(q(&st, "looking for tables without a primary key"))?;
    let mut missing = Vec::new();
    let mut full = Vec::new();
    for r in &rows {
        let name = QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        match r.get::<_, String>(2).as_str() {
            "f" => full.push(name),
            _ => missing.push(name),
        }
    }
    if !missing.is_empty() {
        match ctx.no_pk_remedy {
            NoPkRemedy::Refuse => findings.push(Finding::blocking(
                "no_primary_key",
                format!(
                    "{} table(s) in {db:?} have neither a primary key nor a replica identity; once published, UPDATE and DELETE on them would fail on the source: {}",
                    missing.len(),
                    list(&missing)
                ),
                "add a primary key (ALTER TABLE ... ADD PRIMARY KEY), or set REPLICA IDENTITY USING INDEX on a unique index, or set no_pk_remedy = \"replica_identity_full\" for this mapping",
            )),
            NoPkRemedy::ReplicaIdentityFull => {
                for table in &missing {
                    src.batch_execute(&format!("ALTER TABLE {} REPLICA IDENTITY FULL", qualified(table)))
                        .await
                        .map_err(q(&st, "setting REPLICA IDENTITY FULL (no_pk_remedy)"))?;
                    tracing::warn!(mapping = %ctx.name, database = db, table = %table, "set REPLICA IDENTITY FULL on the source (no_pk_remedy)");
                }
                full.extend(missing);
            }
        }
    }
    if !full.is_empty() {
        findings.push(Finding::warning(
            "replica_identity_full",
            format!(
                "{} table(s) in {db:?} replicate with REPLICA IDENTITY FULL (no primary key): every UPDATE and DELETE is logged with the whole row and applied by scanning: {}",
                full.len(),
                list(&full)
            ),
            "add primary keys when you can",
        ));
    }

    let row = src
        .query_one(
            "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
               has_database_privilege(current_database(), 'CREATE'), \
               coalesce((SELECT array_agg(format('%I.%I', n.nspname, c.relname) ORDER BY 1) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND NOT c.relispartition \
                   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
                   AND NOT pg_has_role(current_user, c.relowner, 'USAGE')), '{}'), \
               coalesce((SELECT array_agg(format('%I.%I', n.nspname, c.relname) ORDER BY 1) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_roles r ON r.rolname = $1 \
                 WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity \
                   AND NOT (r.rolsuper OR r.rolbypassrls OR pg_has_role(r.oid, c.relowner, 'USAGE'))), '{}')",
            &[&ctx.source.replication_user],
        )
        .await
        .map_err(q(&st, "checking the connecting roles' privileges"))?;
    let superuser: Option<bool> = row.get(0);
    let can_create: bool = row.get(1);
    let not_owned: Vec<String> = row.get(2);
    let rls_hidden: Vec<String> = row.get(3);
    if superuser == Some(false) {
        if !can_create {
            findings.push(Finding::blocking(
                "source_create_privilege",
                format!(
                    "the role connecting to the source cannot create the publication in {db:?}"
                ),
                format!(
                    "on the source: GRANT CREATE ON DATABASE {} TO <the connecting role>",
                    ident(db)
                ),
            ));
        }
        if !not_owned.is_empty() {
            findings.push(Finding::blocking(
                "source_not_owner",
                format!(
                    "the role connecting to the source is not a superuser and does not own {} table(s) in {db:?}, so it cannot publish them: {}",
                    not_owned.len(),
                    shorten(&not_owned)
                ),
                "grant it each owner's role on the source (GRANT <owner> TO <the connecting role>), or connect as a superuser",
            ));
        }
    }
    if !rls_hidden.is_empty() {
        findings.push(Finding::blocking(
            "replication_role_rls",
            format!(
                "row-level security is enabled on {} table(s) in {db:?} and replication_user {} would be subject to it, so the initial copy would fail: {}",
                rls_hidden.len(),
                ctx.source.replication_user,
                shorten(&rls_hidden)
            ),
            format!(
                "on the source: ALTER ROLE {} BYPASSRLS (as a superuser), or use a superuser as replication_user",
                ident(&ctx.source.replication_user)
            ),
        ));
    }

    let unreadable = unreadable_by_replication_role(src, &st, &ctx.source.replication_user).await?;
    if !unreadable.is_empty() {
        let role = ident(&ctx.source.replication_user);
        findings.push(Finding::blocking(
            "replication_role_privileges",
            format!(
                "replication_user {} cannot read {} table(s) in {db:?}, so the initial copy would fail: {}",
                ctx.source.replication_user,
                unreadable.len(),
                list(&unreadable)
            ),
            format!(
                "in {db:?} on the source, for each schema: GRANT USAGE ON SCHEMA <schema> TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO {role}"
            ),
        ));
    }

    // Extension name -> version on the source, and -> default version on the destination (what
    // CREATE EXTENSION without VERSION installs there).
    let extensions: BTreeMap<String, String> = src
        .query(
            "SELECT extname::text, extversion FROM pg_extension ORDER BY 1",
            &[],
        )
        .await
        .map_err(q(&st, "listing extensions"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let available: BTreeMap<String, Option<String>> = dst_admin
        .query(
            "SELECT name::text, default_version FROM pg_available_extensions",
            &[],
        )
        .await
        .map_err(q(
            &ctx.destination.describe(),
            "listing available extensions",
        ))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let other_versions: Vec<String> = extensions
        .iter()
        .filter_map(|(name, version)| match available.get(name) {
            Some(Some(default)) if default != version => Some(format!(
                "{name} {version} on the source, {default} on the destination"
            )),
            _ => None,
        })
        .collect();
    if !other_versions.is_empty() {
        findings.push(Finding::warning(
            "extension_version",
            format!(
                "{db:?} uses extensions whose version differs on the destination, which creates its default version: {}",
                other_versions.join("; ")
            ),
            "test the applications against the destination's versions before cutover (release notes of each extension); nothing to do if they work",
        ));
    }
    let missing_ext: Vec<&String> = extensions
        .keys()
        .filter(|e| !available.contains_key(*e))
        .collect();
    if !missing_ext.is_empty() {
        findings.push(Finding::blocking(
            "missing_extension",
            format!(
                "{db:?} uses extension(s) the destination does not have: {}",
                missing_ext.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "install the extensions' packages on the destination server (they must appear in pg_available_extensions)",
        ));
    }

    let large_objects: i64 = src
        .query_one("SELECT count(*) FROM pg_largeobject_metadata", &[])
        .await
        .map_err(q(&st, "counting large objects"))?
        .get(0);
    if large_objects > 0 {
        findings.push(Finding::warning(
            "large_objects",
            format!("{db:?} holds {large_objects} large object(s); logical replication does not carry them"),
            "copy them after cutover (e.g. pg_dump --large-objects-only / lo_export + lo_import), or move them into bytea columns",
        ));
    }

    match destination {
        schema::DestinationState::InUse { tables } => findings.push(Finding::blocking(
            "destination_in_use",
            format!(
                "the destination already has a database {db:?} with {tables} table(s) that postgres-migrator did not create"
            ),
            "drop or rename that database on the destination if it is a leftover, or exclude the database from this mapping (databases.exclude)",
        )),
        schema::DestinationState::OtherMapping { marker } => findings.push(Finding::blocking(
            "name_conflict",
            format!("the destination database {db:?} belongs to another migration ({marker})"),
            "exclude the database from all but one mapping (databases.exclude), or give the mappings different destinations",
        )),
        _ => {}
    }
    Ok(findings)
}

/// Tables the replication role cannot SELECT (or whose schema it cannot use); none when the role
/// is a superuser or does not exist (the instance check reports a missing role).
async fn unreadable_by_replication_role(
    src: &Client,
    target: &str,
    role: &str,
) -> Result<Vec<QualifiedName>, PgError> {
    let row = src
        .query_opt("SELECT rolsuper FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .map_err(q(target, "looking up the replication role"))?;
    if row.is_none_or(|r| r.get::<_, bool>(0)) {
        return Ok(Vec::new());
    }
    Ok(src
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
               AND (NOT has_schema_privilege($1, n.oid, 'USAGE') \
                    OR NOT has_table_privilege($1, c.oid, 'SELECT')) \
             ORDER BY 1, 2",
            &[&role],
        )
        .await
        .map_err(q(target, "checking the replication role's privileges"))?
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}

/// The first few of `names`, and how many more.
fn shorten(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text: Vec<String> = names.iter().take(SHOWN).cloned().collect();
    if names.len() > SHOWN {
        text.push(format!("and {} more", names.len() - SHOWN));
    }
    text.join(", ")
}

fn list(tables: &[QualifiedName]) -> String {
    shorten(&tables.iter().map(ToString::to_string).collect::<Vec<_>>())
}

/// One mapping's claim on a destination: the databases it will create there, and the roles it
/// will copy there with their definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub mapping: String,
    pub destination: String,
    pub databases: Vec<String>,
    /// Role name -> one-line definition ([`crate::ddl::roles::definition`]).
    pub roles: BTreeMap<String, String>,
}

/// Blocking findings for every mapping that sends a database to a destination that another
/// mapping sends a database of the same name to: both are refused, each naming the other. Also
/// for mappings that bring roles of one name but different definitions to one destination: both
/// definitions are shown.
pub fn name_conflicts(claims: &[Claim]) -> BTreeMap<String, Vec<Finding>> {
    let mut owners: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for claim in claims {
        for db in &claim.databases {
            owners
                .entry((claim.destination.as_str(), db.as_str()))
                .or_default()
                .push(claim.mapping.as_str());
        }
    }
    let mut findings: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    for ((destination, db), mappings) in owners {
        if mappings.len() < 2 {
            continue;
        }
        for mapping in &mappings {
            findings.entry((*mapping).to_owned()).or_default().push(Finding::blocking(
                "name_conflict",
                format!(
                    "mappings {} all send a database named {db:?} to {destination}",
                    mappings.join(", ")
                ),
                "exclude the database from all but one of these mappings (databases.exclude), or give them different destinations",
            ));
        }
    }
    let mut definitions: BTreeMap<(&str, &str), Vec<(&str, &str)>> = BTreeMap::new();
    for claim in claims {
        for (role, definition) in &claim.roles {
            definitions
                .entry((claim.destination.as_str(), role.as_str()))
                .or_default()
                .push((claim.mapping.as_str(), definition.as_str()));
        }
    }
    for ((destination, role), defined) in definitions {
        if defined.iter().all(|(_, d)| *d == defined[0].1) {
            continue;
        }
        let shown: Vec<String> = defined
            .iter()
            .map(|(mapping, definition)| format!("mapping {mapping}: {definition}"))
            .collect();
        for (mapping, _) in &defined {
            findings.entry((*mapping).to_owned()).or_default().push(Finding::blocking(
                "role_definition_conflict",
                format!(
                    "role {} is defined differently by the sources of mappings sending it to {destination} ({})",
                    ident(role),
                    shown.join("; ")
                ),
                "make the role's attributes, memberships and settings the same on every source (or rename it on one), then the tool goes on by itself",
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests;
