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

use crate::pg::{PgError, Session};

mod database;
mod instance;

use super::MappingContext;
use crate::ddl::quote::ident;
use crate::findings::{Code, Finding};
use crate::phase::DestinationState;
use instance::{capacity, our_names};

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
    src: &Session,
    dst: &Session,
) -> Result<InstanceReport, PgError> {
    let databases = instance::databases(ctx, src).await?;
    let wanted = databases.len() as i64;
    let ours = our_names(ctx, &databases);
    let source = instance::source_settings(ctx, src, &ours).await?;
    let sync_workers = instance::sync_workers(dst).await?;
    let destination = instance::destination_settings(dst, &ours).await?;

    let mut findings = Vec::new();
    findings.extend(instance::source_version(src.target(), &source));
    findings.extend(instance::wal_level(&source));
    capacity(
        &mut findings,
        Code::ReplicationSlots,
        "max_replication_slots",
        "source",
        source.free_slots(),
        wanted,
        sync_workers,
    );
    capacity(
        &mut findings,
        Code::WalSenders,
        "max_wal_senders",
        "source",
        source.free_senders(),
        wanted,
        sync_workers,
    );
    findings.extend(instance::source_privileges(src.target(), &source));
    findings.extend(instance::replication_role(ctx, &source));
    findings.extend(instance::destination_version(dst.target(), &destination));
    capacity(
        &mut findings,
        Code::ReplicationWorkers,
        "max_logical_replication_workers",
        "destination",
        destination.free_workers(),
        wanted,
        sync_workers,
    );
    if let Some(free) = destination.free_origins() {
        capacity(
            &mut findings,
            Code::ReplicationOrigins,
            "max_active_replication_origins",
            "destination",
            free,
            wanted,
            sync_workers,
        );
    }
    findings.extend(instance::worker_processes(&destination));
    findings.extend(instance::destination_privileges(dst.target(), &destination));
    findings.extend(instance::session_replication_role(
        ctx,
        dst.target(),
        &destination,
    ));
    Ok(InstanceReport {
        findings,
        databases,
    })
}

/// Database-level checks. `src` is connected to the source database; `dst_admin` to the
/// destination's maintenance database.
pub async fn check_database(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
    dst_admin: &Session,
    destination: &DestinationState,
) -> Result<Vec<Finding>, PgError> {
    let mut findings = database::replica_identity(ctx, db, src).await?;
    findings.extend(database::source_privileges(ctx, db, src).await?);
    findings.extend(database::replication_role_privileges(ctx, db, src).await?);
    findings.extend(database::extensions(db, src, dst_admin).await?);
    findings.extend(database::large_objects(db, src).await?);
    findings.extend(database::not_carried(db, src).await?);
    findings.extend(database::destination_in_use(db, destination));
    Ok(findings)
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
                Code::NameConflict,
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
                Code::RoleDefinitionConflict,
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
