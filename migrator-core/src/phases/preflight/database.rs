//! The database checks run by [`super::check_database`], one function per check, each with its
//! SQL and its findings.

use std::collections::BTreeMap;

use crate::pg::{PgError, Session, q};

use crate::catalog::model::QualifiedName;
use crate::config::NoPkRemedy;
use crate::ddl::quote::{ident, qualified};
use crate::findings::{Code, Finding};
use crate::phase::DestinationState;
use crate::phases::MappingContext;

/// Tables without a primary key or a replica identity (refused, or given REPLICA IDENTITY FULL
/// on the source by `no_pk_remedy`), and tables replicating with REPLICA IDENTITY FULL.
pub(super) async fn replica_identity(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
) -> Result<Vec<Finding>, PgError> {
    let mut findings = Vec::new();
    let (missing, mut full) = tables_without_primary_key(src).await?;
    if !missing.is_empty() {
        match ctx.no_pk_remedy {
            NoPkRemedy::Refuse => findings.push(Finding::blocking(
                Code::NoPrimaryKey,
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
                        .map_err(q(src.target(), "setting REPLICA IDENTITY FULL (no_pk_remedy)"))?;
                    tracing::warn!(mapping = %ctx.name, database = db, table = %table, "set REPLICA IDENTITY FULL on the source (no_pk_remedy)");
                }
                full.extend(missing);
            }
        }
    }
    if !full.is_empty() {
        findings.push(Finding::warning(
            Code::ReplicaIdentityFull,
            format!(
                "{} table(s) in {db:?} replicate with REPLICA IDENTITY FULL (no primary key): every UPDATE and DELETE is logged with the whole row and applied by scanning: {}",
                full.len(),
                list(&full)
            ),
            "add primary keys when you can",
        ));
    }
    Ok(findings)
}

/// The tables without a primary key: those without any replica identity, and those with
/// REPLICA IDENTITY FULL.
async fn tables_without_primary_key(
    src: &Session,
) -> Result<(Vec<QualifiedName>, Vec<QualifiedName>), PgError> {
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
        .map_err(q(src.target(), "looking for tables without a primary key"))?;
    let mut missing = Vec::new();
    let mut full = Vec::new();
    for r in &rows {
        let name = QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        match r.get::<_, String>(2).as_str() {
            "f" => full.push(name),
            _ => missing.push(name),
        }
    }
    Ok((missing, full))
}

/// What the connecting role may do in the database (publish every table), and whether
/// row-level security would hide rows from the replication role; read in one query.
pub(super) async fn source_privileges(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
) -> Result<Vec<Finding>, PgError> {
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
        .map_err(q(src.target(), "checking the connecting roles' privileges"))?;
    let superuser: Option<bool> = row.get(0);
    let can_create: bool = row.get(1);
    let not_owned: Vec<String> = row.get(2);
    let rls_hidden: Vec<String> = row.get(3);
    let mut findings = Vec::new();
    if superuser == Some(false) {
        findings.extend(create_privilege(db, can_create));
        findings.extend(not_owner(db, &not_owned));
    }
    findings.extend(row_level_security(ctx, db, &rls_hidden));
    Ok(findings)
}

fn create_privilege(db: &str, can_create: bool) -> Option<Finding> {
    (!can_create).then(|| {
        Finding::blocking(
            Code::SourceCreatePrivilege,
            format!("the role connecting to the source cannot create the publication in {db:?}"),
            format!(
                "on the source: GRANT CREATE ON DATABASE {} TO <the connecting role>",
                ident(db)
            ),
        )
    })
}

fn not_owner(db: &str, not_owned: &[String]) -> Option<Finding> {
    (!not_owned.is_empty()).then(|| Finding::blocking(
        Code::SourceNotOwner,
        format!(
            "the role connecting to the source is not a superuser and does not own {} table(s) in {db:?}, so it cannot publish them: {}",
            not_owned.len(),
            shorten(not_owned)
        ),
        "grant it each owner's role on the source (GRANT <owner> TO <the connecting role>), or connect as a superuser",
    ))
}

fn row_level_security(ctx: &MappingContext, db: &str, rls_hidden: &[String]) -> Option<Finding> {
    (!rls_hidden.is_empty()).then(|| {
        Finding::blocking(
            Code::ReplicationRoleRls,
            format!(
                "row-level security is enabled on {} table(s) in {db:?} and replication_user {} would be subject to it, so the initial copy would fail: {}",
                rls_hidden.len(),
                ctx.source.replication_user,
                shorten(rls_hidden)
            ),
            format!(
                "on the source: ALTER ROLE {} BYPASSRLS (as a superuser), or use a superuser as replication_user",
                ident(&ctx.source.replication_user)
            ),
        )
    })
}

/// Tables replication_user cannot read, so the initial copy would fail.
pub(super) async fn replication_role_privileges(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
) -> Result<Option<Finding>, PgError> {
    let unreadable = unreadable_by_replication_role(src, &ctx.source.replication_user).await?;
    if unreadable.is_empty() {
        return Ok(None);
    }
    let role = ident(&ctx.source.replication_user);
    Ok(Some(Finding::blocking(
        Code::ReplicationRolePrivileges,
        format!(
            "replication_user {} cannot read {} table(s) in {db:?}, so the initial copy would fail: {}",
            ctx.source.replication_user,
            unreadable.len(),
            list(&unreadable)
        ),
        format!(
            "in {db:?} on the source, for each schema: GRANT USAGE ON SCHEMA <schema> TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO {role}"
        ),
    )))
}

/// Tables the replication role cannot SELECT (or whose schema it cannot use); none when the role
/// is a superuser or does not exist (the instance check reports a missing role).
async fn unreadable_by_replication_role(
    src: &Session,
    role: &str,
) -> Result<Vec<QualifiedName>, PgError> {
    let row = src
        .query_opt("SELECT rolsuper FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .map_err(q(src.target(), "looking up the replication role"))?;
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
        .map_err(q(
            src.target(),
            "checking the replication role's privileges",
        ))?
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}

/// Extensions the destination lacks (blocking) or has in another default version (a warning).
pub(super) async fn extensions(
    db: &str,
    src: &Session,
    dst_admin: &Session,
) -> Result<Vec<Finding>, PgError> {
    // Extension name -> version on the source, and -> default version on the destination (what
    // CREATE EXTENSION without VERSION installs there).
    let extensions: BTreeMap<String, String> = src
        .query(
            "SELECT extname::text, extversion FROM pg_extension ORDER BY 1",
            &[],
        )
        .await
        .map_err(q(src.target(), "listing extensions"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let available: BTreeMap<String, Option<String>> = dst_admin
        .query(
            "SELECT name::text, default_version FROM pg_available_extensions",
            &[],
        )
        .await
        .map_err(q(dst_admin.target(), "listing available extensions"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok([
        extension_versions(db, &extensions, &available),
        missing_extensions(db, &extensions, &available),
    ]
    .into_iter()
    .flatten()
    .collect())
}

fn extension_versions(
    db: &str,
    extensions: &BTreeMap<String, String>,
    available: &BTreeMap<String, Option<String>>,
) -> Option<Finding> {
    let other_versions: Vec<String> = extensions
        .iter()
        .filter_map(|(name, version)| match available.get(name) {
            Some(Some(default)) if default != version => Some(format!(
                "{name} {version} on the source, {default} on the destination"
            )),
            _ => None,
        })
        .collect();
    (!other_versions.is_empty()).then(|| Finding::warning(
        Code::ExtensionVersion,
        format!(
            "{db:?} uses extensions whose version differs on the destination, which creates its default version: {}",
            other_versions.join("; ")
        ),
        "test the applications against the destination's versions before cutover (release notes of each extension); nothing to do if they work",
    ))
}

fn missing_extensions(
    db: &str,
    extensions: &BTreeMap<String, String>,
    available: &BTreeMap<String, Option<String>>,
) -> Option<Finding> {
    let missing_ext: Vec<&String> = extensions
        .keys()
        .filter(|e| !available.contains_key(*e))
        .collect();
    (!missing_ext.is_empty()).then(|| Finding::blocking(
        Code::MissingExtension,
        format!(
            "{db:?} uses extension(s) the destination does not have: {}",
            missing_ext.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
        ),
        "install the extensions' packages on the destination server (they must appear in pg_available_extensions)",
    ))
}

/// Large objects, which logical replication does not carry.
pub(super) async fn large_objects(db: &str, src: &Session) -> Result<Option<Finding>, PgError> {
    let large_objects: i64 = src
        .query_one("SELECT count(*) FROM pg_largeobject_metadata", &[])
        .await
        .map_err(q(src.target(), "counting large objects"))?
        .get(0);
    Ok((large_objects > 0).then(|| Finding::warning(
        Code::LargeObjects,
        format!("{db:?} holds {large_objects} large object(s); logical replication does not carry them"),
        "copy them after cutover (e.g. pg_dump --large-objects-only / lo_export + lo_import), or move them into bytea columns",
    )))
}

/// Unlogged tables (logical replication carries neither them nor their rows), tablespaces
/// (the destination's tables go to its default tablespace) and security labels (they need
/// their provider on the destination).
pub(super) async fn not_carried(db: &str, src: &Session) -> Result<Vec<Finding>, PgError> {
    let row = src
        .query_one(
            "SELECT ARRAY(SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
                   JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE c.relpersistence = 'u' AND c.relkind IN ('r', 'p') \
                     AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' ORDER BY 1), \
                 ARRAY(SELECT DISTINCT t.spcname::text FROM pg_class c \
                   JOIN pg_tablespace t ON t.oid = c.reltablespace \
                   JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
                 UNION SELECT t.spcname::text FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace \
                   WHERE d.datname = current_database() AND t.spcname <> 'pg_default' ORDER BY 1), \
                 ARRAY(SELECT format('%s (%s)', provider, count(*)) FROM pg_seclabel GROUP BY provider ORDER BY 1)",
            &[],
        )
        .await
        .map_err(q(src.target(), "listing unlogged tables, tablespaces and security labels"))?;
    let (unlogged, tablespaces, labels): (Vec<String>, Vec<String>, Vec<String>) =
        (row.get(0), row.get(1), row.get(2));
    let mut findings = Vec::new();
    if !unlogged.is_empty() {
        findings.push(Finding::warning(
            Code::UnloggedTables,
            format!(
                "{db:?} has {} unlogged table(s); their schema is created on the destination, \
                 but logical replication carries none of their rows: {}",
                unlogged.len(),
                shorten(&unlogged)
            ),
            "nothing, if their rows can be lost (caches, staging); otherwise make them logged on \
             the source (ALTER TABLE ... SET LOGGED) before the migration, or fill them on the \
             destination after the cutover",
        ));
    }
    if !tablespaces.is_empty() {
        findings.push(Finding::warning(
            Code::Tablespaces,
            format!(
                "{db:?} keeps tables or indexes in tablespace(s) {}; on the destination they go \
                 to its default tablespace",
                tablespaces.join(", ")
            ),
            "nothing, if the destination's default tablespace has the room; otherwise move them \
             after the cutover (ALTER TABLE ... SET TABLESPACE)",
        ));
    }
    if !labels.is_empty() {
        findings.push(Finding::warning(
            Code::SecurityLabels,
            format!(
                "{db:?} has security labels, which are not carried (the destination needs the \
                 same label provider loaded); by provider: {}",
                labels.join(", ")
            ),
            "load the label provider on the destination (shared_preload_libraries) and apply \
             the labels after the schema step (SECURITY LABEL FOR provider ON ...; \
             pg_seclabels on the source lists them), or go on without them",
        ));
    }
    Ok(findings)
}

/// A destination database of that name the tool did not create, or another mapping did.
pub(super) fn destination_in_use(db: &str, destination: &DestinationState) -> Option<Finding> {
    match destination {
        DestinationState::InUse { tables } => Some(Finding::blocking(
            Code::DestinationInUse,
            format!(
                "the destination already has a database {db:?} with {tables} table(s) that postgres-migrator did not create"
            ),
            "drop or rename that database on the destination if it is a leftover, or exclude the database from this mapping (databases.exclude)",
        )),
        DestinationState::OtherMapping { marker } => Some(Finding::blocking(
            Code::NameConflict,
            format!("the destination database {db:?} belongs to another migration ({marker})"),
            "exclude the database from all but one mapping (databases.exclude), or give the mappings different destinations",
        )),
        _ => None,
    }
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
