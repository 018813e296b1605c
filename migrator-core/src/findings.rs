//! Findings: what stops a migration (blocking) or deserves an operator's eye (warning), each with
//! the fix.

use serde::Serialize;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; the migration goes on.
    Warning,
    /// The migration cannot go on until the operator fixes it. Checked again every tick.
    Blocking,
}

/// What a finding is about: a stable identifier for scripts, tests and the dashboard. Shown
/// and serialized as its snake_case name (`no_primary_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The source runs a PostgreSQL older than 15.
    SourceVersion,
    /// The destination runs a PostgreSQL older than 18.
    DestinationVersion,
    /// A server of the mapping cannot be reached or refuses the connecting role.
    Connection,
    /// One database of the source cannot be reached (a one-look command).
    DatabaseUnreachable,
    /// The mapping's lease (a session lock on the source) cannot be taken.
    Lease,
    /// The mapping's PgBouncer console (`pooler`) cannot be read.
    Pooler,
    /// The source's `wal_level` is not `logical`.
    WalLevel,
    /// `max_replication_slots` on the source leaves too little room.
    ReplicationSlots,
    /// `max_wal_senders` on the source leaves too little room.
    WalSenders,
    /// `max_logical_replication_workers` on the destination leaves too little room.
    ReplicationWorkers,
    /// `max_active_replication_origins` on the destination (PostgreSQL 18) leaves too little room.
    ReplicationOrigins,
    /// `max_worker_processes` on the destination leaves no room for the apply workers.
    WorkerProcesses,
    /// The source role is neither a superuser nor has REPLICATION.
    SourcePrivileges,
    /// The source role is not a superuser: what it cannot do, and how the tool works around it.
    SourceNotSuperuser,
    /// The source role cannot create the publication in a database.
    SourceCreatePrivilege,
    /// The source role does not own tables it must publish.
    SourceNotOwner,
    /// The destination role can neither create databases and subscriptions nor is a superuser.
    DestinationPrivileges,
    /// The destination role may not set `session_replication_role`.
    DestinationSessionReplicationRole,
    /// `replication_user` does not exist on the source or lacks REPLICATION.
    ReplicationRole,
    /// `replication_user` cannot read tables the initial copy needs.
    ReplicationRolePrivileges,
    /// Row-level security would hide rows from `replication_user`.
    ReplicationRoleRls,
    /// Tables without a primary key or replica identity (their UPDATE and DELETE cannot replicate).
    NoPrimaryKey,
    /// Tables replicate with REPLICA IDENTITY FULL (slow apply).
    ReplicaIdentityFull,
    /// Large objects, which logical replication does not carry.
    LargeObjects,
    /// Extensions the destination does not have.
    MissingExtension,
    /// Extensions whose version differs on the destination.
    ExtensionVersion,
    /// A destination database of that name holds tables the tool did not create.
    DestinationInUse,
    /// Two mappings claim one destination database or role with different definitions.
    NameConflict,
    /// Two mappings bring different roles of one name to one destination.
    RoleDefinitionConflict,
    /// Roles exist on the destination already (`role_conflict_strategy = fail`).
    RoleConflict,
    /// Roles existing on the destination were left as they are (`skip`).
    RoleSkipped,
    /// Roles existing on the destination got the source's memberships and grants (`merge`).
    RoleMerged,
    /// Login roles get no password: the source's hashes cannot be read.
    RoleNeedsPassword,
    /// Login roles get `fallback_password`: the source's hashes cannot be read.
    RoleFallbackPassword,
    /// Attributes or memberships the destination role cannot give.
    RoleAttributesWithheld,
    /// Login roles carry MD5 password hashes, which PostgreSQL 18 deprecates.
    RoleMd5Password,
    /// A slot of this mapping whose database it no longer migrates.
    OrphanSlot,
    /// `max_slot_wal_keep_size` is smaller than the WAL the initial copy would retain.
    WalKeepTooSmall,
    /// The slot lost WAL the subscription still needs (`wal_status = lost`).
    SlotLost,
    /// The slot holds more WAL than `max_slot_wal_keep_size` (`wal_status = unreserved`).
    SlotAtRisk,
    /// The slot nears `max_slot_wal_keep_size`.
    SlotNearLimit,
    /// The slot is gone from the source while the subscription still needs it.
    SlotMissing,
    /// Creating the slot waits for transactions open on the source.
    SlotWaiting,
    /// The subscription was disabled by hand.
    SubscriptionDisabled,
    /// The subscription is enabled without a slot (completion begun by hand).
    SubscriptionDetached,
    /// The initial copy failed and is retried after a delay.
    CopyFailing,
    /// The initial copy failed too often; the tool stopped retrying (Retry starts again).
    CopyFailed,
    /// The subscription's apply or table sync workers keep failing.
    ApplyFailing,
    /// The subscription's apply worker is not running.
    ApplyWorkerAbsent,
    /// The lag has grown for minutes: the source writes WAL faster than the destination applies.
    ApplyBehind,
    /// The source's schema changed after it was copied.
    SchemaDrift,
    /// A schema object could not be created on the destination; the rest of the schema is there
    /// and the object is tried again (blocking once the tool stops retrying by itself).
    SchemaObjectFailed,
    /// Schema objects left out by the mapping's `schema_exclude` setting.
    SchemaObjectsExcluded,
    /// Deferred objects (indexes, constraints) the tool built that still do not count as built
    /// on the destination (a partitioned index left not valid): cutover ready waits for them.
    DeferredNotBuilt,
    /// Unlogged tables: logical replication carries neither them nor their rows.
    UnloggedTables,
    /// Tables or indexes in tablespaces other than the default: created in the destination's
    /// default tablespace.
    Tablespaces,
    /// Security labels: they need the same label provider loaded on the destination.
    SecurityLabels,
    /// Triggers that fire during replication on the source, disabled on the destination until cutover.
    TriggersHeldBack,
}

impl Code {
    /// The snake_case name scripts match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::SourceVersion => "source_version",
            Code::DestinationVersion => "destination_version",
            Code::Connection => "connection",
            Code::DatabaseUnreachable => "database_unreachable",
            Code::Lease => "lease",
            Code::Pooler => "pooler",
            Code::WalLevel => "wal_level",
            Code::ReplicationSlots => "replication_slots",
            Code::WalSenders => "wal_senders",
            Code::ReplicationWorkers => "replication_workers",
            Code::ReplicationOrigins => "replication_origins",
            Code::WorkerProcesses => "worker_processes",
            Code::SourcePrivileges => "source_privileges",
            Code::SourceNotSuperuser => "source_not_superuser",
            Code::SourceCreatePrivilege => "source_create_privilege",
            Code::SourceNotOwner => "source_not_owner",
            Code::DestinationPrivileges => "destination_privileges",
            Code::DestinationSessionReplicationRole => "destination_session_replication_role",
            Code::ReplicationRole => "replication_role",
            Code::ReplicationRolePrivileges => "replication_role_privileges",
            Code::ReplicationRoleRls => "replication_role_rls",
            Code::NoPrimaryKey => "no_primary_key",
            Code::ReplicaIdentityFull => "replica_identity_full",
            Code::LargeObjects => "large_objects",
            Code::MissingExtension => "missing_extension",
            Code::ExtensionVersion => "extension_version",
            Code::DestinationInUse => "destination_in_use",
            Code::NameConflict => "name_conflict",
            Code::RoleDefinitionConflict => "role_definition_conflict",
            Code::RoleConflict => "role_conflict",
            Code::RoleSkipped => "role_skipped",
            Code::RoleMerged => "role_merged",
            Code::RoleNeedsPassword => "role_needs_password",
            Code::RoleFallbackPassword => "role_fallback_password",
            Code::RoleAttributesWithheld => "role_attributes_withheld",
            Code::RoleMd5Password => "role_md5_password",
            Code::OrphanSlot => "orphan_slot",
            Code::WalKeepTooSmall => "wal_keep_too_small",
            Code::SlotLost => "slot_lost",
            Code::SlotAtRisk => "slot_at_risk",
            Code::SlotNearLimit => "slot_near_limit",
            Code::SlotMissing => "slot_missing",
            Code::SlotWaiting => "slot_waiting",
            Code::SubscriptionDisabled => "subscription_disabled",
            Code::SubscriptionDetached => "subscription_detached",
            Code::CopyFailing => "copy_failing",
            Code::CopyFailed => "copy_failed",
            Code::ApplyFailing => "apply_failing",
            Code::ApplyWorkerAbsent => "apply_worker_absent",
            Code::ApplyBehind => "apply_behind",
            Code::SchemaDrift => "schema_drift",
            Code::SchemaObjectFailed => "schema_object_failed",
            Code::SchemaObjectsExcluded => "schema_objects_excluded",
            Code::DeferredNotBuilt => "deferred_not_built",
            Code::UnloggedTables => "unlogged_tables",
            Code::Tablespaces => "tablespaces",
            Code::SecurityLabels => "security_labels",
            Code::TriggersHeldBack => "triggers_held_back",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: Code,
    /// What is wrong.
    pub message: String,
    /// What the operator should do.
    pub fix: String,
    /// `resync` (the dashboard's "Apply safe schema changes") resolves at least part of it.
    pub resolvable_by_resync: bool,
}

impl Finding {
    pub fn blocking(code: Code, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Blocking,
            code,
            message: message.into(),
            fix: fix.into(),
            resolvable_by_resync: false,
        }
    }

    pub fn warning(code: Code, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            code,
            message: message.into(),
            fix: fix.into(),
            resolvable_by_resync: false,
        }
    }

    /// Marks it as (at least partly) resolved by `resync`.
    pub fn resolvable_by_resync(mut self, resolvable: bool) -> Self {
        self.resolvable_by_resync = resolvable;
        self
    }

    pub fn is_blocking(&self) -> bool {
        self.severity == Severity::Blocking
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Blocking => "BLOCKING",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{level} [{}] {} Fix: {}",
            self.code, self.message, self.fix
        )
    }
}
