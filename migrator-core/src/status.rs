//! The immutable status snapshot: what the dashboard, `status --json` and `/api/status` show.
//! Built by the orchestrator, published through a `tokio::sync::watch` of `Arc<Snapshot>`;
//! readers never lock anything and never see a half-updated state.

use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::catalog::model::SchemaCatalog;
use crate::findings::Finding;
use crate::naming::ReplicationNames;

/// Everything known about every mapping at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    #[serde(serialize_with = "rfc3339_opt")]
    pub generated_at: Option<SystemTime>,
    pub mappings: Vec<MappingStatus>,
}

impl Snapshot {
    pub fn mapping(&self, name: &str) -> Option<&MappingStatus> {
        self.mappings.iter().find(|m| m.name == name)
    }
}

/// One mapping: a source instance onto a destination instance.
#[derive(Debug, Clone, Serialize)]
pub struct MappingStatus {
    pub name: String,
    /// `user@host:port/db` of the source (never a password).
    pub source: String,
    pub destination: String,
    /// The least advanced phase of its databases (Problematic if any is, Completed if all are).
    pub phase: Phase,
    /// Instance-level findings (versions, settings, privileges, name conflicts).
    pub findings: Vec<Finding>,
    /// The last error, retried with exponential backoff (a server restarting, unreachable, ...).
    pub last_error: Option<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_tick: Option<SystemTime>,
    pub databases: Vec<DatabaseStatus>,
    /// The source's roles and what was done with each on the destination.
    pub roles: Vec<RoleStatus>,
    /// How fast the initial copy reads from the source now, against the limit.
    pub copy: CopyRate,
    /// WAL our slots hold on the source, how fast it grows, and when it would reach
    /// `max_slot_wal_keep_size`.
    pub wal: Option<WalForecast>,
    /// This instance holds the mapping's lease and acts for it.
    pub acting_here: bool,
    /// Another instance holds the mapping's lease: this one only watches.
    pub held_by: Option<LeaseHolder>,
    /// The last verification of its data started on this instance (running or finished).
    pub verify: Option<VerifyStatus>,
    /// The last backup started on this instance (running or finished).
    pub backup: Option<BackupRun>,
    /// The entries of the mapping's PgBouncer (`pooler`) as last read: alias, database, client
    /// connections, paused. Empty without a pooler.
    pub pooler: Vec<crate::catalog::pooler::PoolerDatabase>,
    /// The cutover instructions (also `postgres-migrator instructions NAME`); not in the JSON.
    #[serde(skip)]
    pub instructions: String,
}

impl MappingStatus {
    /// The mapping's lag: bytes summed over its databases, time of the slowest one; `None` when
    /// no database reports a lag (replication not set up yet, or completed).
    pub fn lag(&self) -> Option<Lag> {
        let lags: Vec<Lag> = self.databases.iter().filter_map(|d| d.lag).collect();
        (!lags.is_empty()).then(|| Lag {
            bytes: lags.iter().map(|l| l.bytes).sum(),
            seconds: lags.iter().map(|l| l.seconds).fold(0.0, f64::max),
        })
    }

    /// The phase of a mapping from its databases' phases.
    pub fn aggregate_phase(databases: &[DatabaseStatus], instance_blocked: bool) -> Phase {
        if instance_blocked || databases.iter().any(|d| d.phase == Phase::Problematic) {
            return Phase::Problematic;
        }
        databases
            .iter()
            .map(|d| d.phase)
            .min()
            .unwrap_or(Phase::Preflight)
    }
}

/// Who holds a mapping's lease, from the source's `pg_stat_activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseHolder {
    /// The holder's address as the source sees it (`local` for a Unix socket).
    pub client: String,
    /// The holder's `application_name`: the tool, its host and process id.
    pub application_name: String,
    /// When the holder's connection began (UTC, the source's clock).
    pub since: String,
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}), since {}",
            self.client, self.application_name, self.since
        )
    }
}

/// One source database and its copy on the destination.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseStatus {
    pub name: String,
    pub phase: Phase,
    pub names: ReplicationNamesView,
    pub findings: Vec<Finding>,
    pub last_error: Option<String>,
    pub tables: Vec<TableStatus>,
    pub lag: Option<Lag>,
    pub slot: Option<SlotStatus>,
    pub sequences_total: usize,
    pub sequences_behind: usize,
    /// Every source sequence with its value on both sides (read once the schema exists).
    pub sequences: Vec<SequenceStatus>,
    /// Partitioned tables of the source and their partitions (replicated through the root).
    pub partitions: Vec<PartitionedTable>,
    pub deferred_missing: usize,
    /// Every cutover condition holds now; `cutover_ready` once they have held for `stable_for`.
    pub cutover_conditions_met: bool,
    pub conditions_held_seconds: f64,
    /// Estimated seconds until the initial copy is done.
    pub eta_seconds: Option<f64>,
    /// While the subscription streams: how fast the source writes WAL and the destination
    /// applies it, over the last `apply_behind_after` (or as much of it as was seen).
    pub rates: Option<ApplyRates>,
}

/// The source's WAL rate against the destination's apply rate (the slot's confirmed position).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ApplyRates {
    pub wal_mb_per_min: f64,
    pub apply_mb_per_min: f64,
    /// Seconds the rates were measured over.
    pub over_seconds: f64,
}

impl DatabaseStatus {
    pub fn bytes_copied(&self) -> u64 {
        TableStatus::bytes(&self.tables).0
    }

    pub fn bytes_total(&self) -> u64 {
        TableStatus::bytes(&self.tables).1
    }
}

/// Publication, slot and subscription names, for the status document.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicationNamesView {
    pub publication: String,
    pub slot: String,
    pub subscription: String,
}

impl From<&ReplicationNames> for ReplicationNamesView {
    fn from(n: &ReplicationNames) -> Self {
        ReplicationNamesView {
            publication: n.publication.clone(),
            slot: n.slot.clone(),
            subscription: n.subscription.clone(),
        }
    }
}

/// One table's initial-sync state (pg_subscription_rel.srsubstate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableState {
    /// `i`: waiting for a sync worker.
    Init,
    /// `d`: data being copied.
    Copying,
    /// `f`: copy done, applying what arrived meanwhile.
    FinishedCopy,
    /// `s`: synchronised, handing over to the main apply worker.
    Synchronized,
    /// `r`: ready; changes arrive through the main apply worker.
    Ready,
    /// Not (yet) in the subscription.
    Unknown,
}

impl TableState {
    pub fn from_code(code: i8) -> Self {
        match code as u8 {
            b'i' => TableState::Init,
            b'd' => TableState::Copying,
            b'f' => TableState::FinishedCopy,
            b's' => TableState::Synchronized,
            b'r' => TableState::Ready,
            _ => TableState::Unknown,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    pub schema: String,
    pub table: String,
    pub state: TableState,
    /// Bytes on the destination so far (COPY progress while copying, table size after).
    pub bytes_copied: u64,
    /// Size of the table on the source.
    pub bytes_total: u64,
}

impl TableStatus {
    /// Bytes copied so far and bytes to copy, over `tables`.
    pub fn bytes(tables: &[TableStatus]) -> (u64, u64) {
        tables
            .iter()
            .fold((0, 0), |(c, t), s| (c + s.bytes_copied, t + s.bytes_total))
    }

    /// `schema.table`, for people.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// One sequence on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SequenceStatus {
    pub schema: String,
    pub name: String,
    /// `None` until the sequence has handed out a value.
    pub source_value: Option<i64>,
    pub destination_value: Option<i64>,
    pub on_destination: bool,
    /// The destination's value trails the source's (or the sequence is missing there).
    pub behind: bool,
}

/// A partitioned table of the source: changes to its partitions are published as changes to it
/// (`publish_via_partition_root`), so it has one row in `tables`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionedTable {
    pub schema: String,
    pub table: String,
    /// `pg_get_partkeydef`, e.g. `RANGE (created_at)`.
    pub key: String,
    /// `schema.name` and bound of every direct partition.
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub schema: String,
    pub table: String,
    pub bound: String,
}

impl PartitionedTable {
    /// The partition tree of `catalog`: each partitioned table with its direct partitions.
    pub fn from_catalog(catalog: &SchemaCatalog) -> Vec<PartitionedTable> {
        catalog
            .tables
            .iter()
            .filter_map(|t| {
                let key = t.partition_key.clone()?;
                let partitions = catalog
                    .tables
                    .iter()
                    .filter_map(|p| match &p.partition_of {
                        Some((parent, bound)) if *parent == t.name => Some(Partition {
                            schema: p.name.schema.clone(),
                            table: p.name.name.clone(),
                            bound: bound.clone(),
                        }),
                        _ => None,
                    })
                    .collect();
                Some(PartitionedTable {
                    schema: t.name.schema.clone(),
                    table: t.name.name.clone(),
                    key,
                    partitions,
                })
            })
            .collect()
    }
}

/// The source's replication slot for one database.
#[derive(Debug, Clone, Serialize)]
pub struct SlotStatus {
    pub name: String,
    pub active: bool,
    pub restart_lsn: Option<String>,
    pub confirmed_flush_lsn: Option<String>,
    /// WAL the source keeps for this slot.
    pub retained_bytes: u64,
    /// `pg_replication_slots.wal_status`: reserved, extended, unreserved or lost.
    pub wal_status: Option<String>,
    /// `pg_replication_slots.safe_wal_size`: WAL that can still be written before the slot is
    /// at risk of being invalidated (`max_slot_wal_keep_size`); `None` when there is no limit.
    pub safe_wal_bytes: Option<i64>,
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
}

fn rfc3339_opt<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&humantime::format_rfc3339_seconds(*t).to_string()),
        None => s.serialize_none(),
    }
}

/// What happens to one source role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleAction {
    /// Not on the destination yet: created.
    Create,
    /// Created by the tool earlier: kept in line with the source.
    Copied,
    /// Already on the destination, not the tool's, strategy `fail`: preflight refuses.
    Conflict,
    /// Already on the destination, strategy `skip`: left untouched.
    Skipped,
    /// Already on the destination, strategy `merge`: missing memberships (and, per database,
    /// grants) are added; nothing is removed or weakened.
    Merged,
    /// The role the tool connects to the destination as: never touched.
    Connection,
}

/// How a copied role's password was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordOutcome {
    /// The source's SCRAM hash: the same password works on the destination.
    Copied,
    /// The source's MD5 hash: works, but PostgreSQL 18 deprecates MD5.
    CopiedMd5,
    /// The source role has no password.
    None,
    /// Unreadable on the source: the configured fallback password was set.
    Fallback,
    /// Unreadable on the source and no fallback: the role has no password on the destination.
    NeedsPassword,
    /// Not applicable (the role is not copied, or cannot log in).
    NotApplicable,
}

/// One role as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleStatus {
    pub name: String,
    pub action: RoleAction,
    pub login: bool,
    pub password: PasswordOutcome,
    /// Groups it belongs to (on the source).
    pub member_of: Vec<String>,
}

/// One source database's phase. The order of the variants is the order of a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Checks run before anything is created; nothing is written anywhere yet. Next: Schema, or
    /// Problematic when a check fails.
    Preflight,
    /// The destination database and the schema objects data needs (types, tables, primary keys,
    /// replica identities) are created, in one transaction. Next: Sequences.
    Schema,
    /// Sequence values are copied from the source. Next: ReplicationSetup.
    Sequences,
    /// Publication, replication slot and subscription are created. Next: InitialSync.
    ReplicationSetup,
    /// The subscription copies the tables; per-table states come from pg_subscription_rel.
    /// Next: CatchUp.
    InitialSync,
    /// Every table is copied; secondary indexes and foreign keys are built, sequences re-synced
    /// every tick, changes stream until lag is under the thresholds. Next: CutoverReady.
    CatchUp,
    /// Every table ready, lag under both thresholds, sequences synced, deferred objects built,
    /// no findings, all of it held for `stable_for`. The operator may cut over. Next: Completed
    /// (mark complete), or back to CatchUp when a condition stops holding.
    CutoverReady,
    /// Mark complete has begun (the subscription carries the completion marker) or was left
    /// half-done (detached while the slot or publication is still on the source): the tool
    /// finishes it every tick (see `phases::complete`). Next: Completed.
    Completing,
    /// Marked complete: the subscription is disabled and detached from its slot, and the slot and
    /// publication are gone from the source. Final.
    Completed,
    /// A finding blocks progress; it is re-checked every tick and the phase moves on by itself
    /// once the operator has fixed it.
    Problematic,
}

impl Phase {
    /// A short label for people.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Schema => "schema",
            Phase::Sequences => "sequences",
            Phase::ReplicationSetup => "replication setup",
            Phase::InitialSync => "initial sync",
            Phase::CatchUp => "catching up",
            Phase::CutoverReady => "cutover ready",
            Phase::Completing => "completing",
            Phase::Completed => "completed",
            Phase::Problematic => "problematic",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Replication lag of one database.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lag {
    /// Source WAL position minus the slot's confirmed_flush_lsn.
    pub bytes: u64,
    /// How far apply trails, in time (zero when idle and caught up).
    pub seconds: f64,
}

/// What the status shows of the limiter.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CopyRate {
    /// Bytes per second read from the source over the last few seconds.
    pub bytes_per_second: f64,
    /// The configured limit in MB/s; 0 = none.
    pub limit_mb_per_s: u64,
    /// The health guard's lower cap in MB/s and why, while it holds the copy back.
    pub health_cap_mb_per_s: Option<f64>,
    pub health_reason: Option<String>,
}

impl CopyRate {
    /// The limit in force in MB/s (the configured one or the health guard's cap, the lower),
    /// `None` for none.
    pub fn in_force_mb_per_s(&self) -> Option<f64> {
        in_force(self.limit_mb_per_s as f64, self.health_cap_mb_per_s)
    }
}

/// The WAL forecast the mapping page shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WalForecast {
    /// How fast the source writes WAL (MB per minute): what a stalled slot would retain.
    pub generated_mb_per_min: Option<f64>,
    /// WAL our slots hold now (the largest one), MB.
    pub retained_mb: f64,
    /// How fast the largest slot's retained WAL grows (MB per minute; 0 when it shrinks).
    pub retained_mb_per_min: Option<f64>,
    /// `max_slot_wal_keep_size` in MB, when set.
    pub limit_mb: Option<f64>,
    /// Minutes until the largest slot reaches the limit at its growth rate.
    pub minutes_to_limit: Option<f64>,
    /// Minutes until a stalled slot would reach the limit at the source's WAL rate.
    pub minutes_to_limit_if_stalled: Option<f64>,
}

/// The lower of a configured limit (0 = none) and a health cap, in the same unit.
pub(crate) fn in_force(limit: f64, cap: Option<f64>) -> Option<f64> {
    match (limit > 0.0, cap) {
        (true, Some(cap)) => Some(limit.min(cap)),
        (true, None) => Some(limit),
        (false, cap) => cap,
    }
}

/// How a verification compares (see `verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    /// During catch-up, writes running: a range that differs is read again once the destination
    /// has applied past the source position it was read at.
    Online,
    /// After writes stopped and the lag drained: every range compared once.
    Exact,
}

impl std::fmt::Display for VerifyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerifyMode::Online => "online",
            VerifyMode::Exact => "exact",
        })
    }
}

/// How far a dump or restore is: table `done` of `total` of `database`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupProgress {
    pub database: String,
    pub done: u64,
    pub total: u64,
}

/// A backup started from the dashboard or the API: running or finished.
#[derive(Debug, Clone, Serialize)]
pub struct BackupRun {
    /// `source` or `destination`.
    pub side: String,
    #[serde(serialize_with = "rfc3339")]
    pub started_at: SystemTime,
    #[serde(serialize_with = "rfc3339_opt")]
    pub finished_at: Option<SystemTime>,
    /// Its key, once written.
    pub key: Option<String>,
    /// Table N of M of a database.
    pub progress: Option<BackupProgress>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One verification of a mapping's data: running or finished.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyStatus {
    pub mode: VerifyMode,
    /// Only this database / table, when asked.
    pub database: Option<String>,
    pub table: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub started_at: SystemTime,
    #[serde(serialize_with = "rfc3339_opt")]
    pub finished_at: Option<SystemTime>,
    /// Why it stopped before comparing everything.
    pub error: Option<String>,
    pub databases: Vec<VerifyDatabase>,
}

/// What a verification concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyOutcome {
    Running,
    /// Every range of every table compared equal.
    Equal,
    /// At least one range differs while the source held still: rows were lost or changed.
    Differences,
    /// No difference found, but some rows changed on the source during every re-check (online
    /// mode) or the source was written to during an exact check: they are not proven.
    Unsettled,
    /// It could not compare everything (a server went away, a table is missing, ...).
    Failed,
}

impl VerifyOutcome {
    /// The `verify` command's exit code: 0 equal, 4 differences, 5 unsettled, 1 failed.
    pub fn exit_code(self) -> u8 {
        match self {
            VerifyOutcome::Equal => 0,
            VerifyOutcome::Differences => 4,
            VerifyOutcome::Unsettled => 5,
            VerifyOutcome::Running | VerifyOutcome::Failed => 1,
        }
    }
}

impl VerifyStatus {
    pub fn tables(&self) -> impl Iterator<Item = &VerifyTable> {
        self.databases.iter().flat_map(|d| d.tables.iter())
    }

    /// Ranges planned, checked, differing and unsettled, over every table.
    pub fn totals(&self) -> VerifyTotals {
        let mut t = VerifyTotals::default();
        for table in self.tables() {
            t.ranges += table.ranges;
            t.checked += table.checked;
            t.differing += table.differing.len() as u64;
            t.unsettled += table.unsettled.len() as u64;
            t.rows += table.rows;
        }
        t
    }

    pub fn outcome(&self) -> VerifyOutcome {
        if self.finished_at.is_none() {
            return VerifyOutcome::Running;
        }
        let totals = self.totals();
        let failed = self.error.is_some()
            || self.databases.iter().any(|d| d.error.is_some())
            || self.tables().any(|t| t.error.is_some());
        if totals.differing > 0 {
            VerifyOutcome::Differences
        } else if failed {
            VerifyOutcome::Failed
        } else if totals.unsettled > 0 {
            VerifyOutcome::Unsettled
        } else {
            VerifyOutcome::Equal
        }
    }

    /// How long it ran (so far).
    pub fn elapsed(&self) -> std::time::Duration {
        self.finished_at
            .unwrap_or_else(SystemTime::now)
            .duration_since(self.started_at)
            .unwrap_or_default()
    }
}

/// Sums over a verification's tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VerifyTotals {
    pub ranges: u64,
    pub checked: u64,
    pub differing: u64,
    pub unsettled: u64,
    /// Rows counted on the source.
    pub rows: u64,
}

/// One database of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyDatabase {
    pub name: String,
    pub tables: Vec<VerifyTable>,
    pub error: Option<String>,
}

/// One table of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyTable {
    /// `schema.table`, quoted where needed.
    pub table: String,
    /// The key its ranges follow (primary key or replica identity index); empty: no key, the
    /// table was compared whole.
    pub key: Vec<String>,
    pub ranges: u64,
    pub checked: u64,
    /// Rows counted on the source, over the ranges checked.
    pub rows: u64,
    /// Source WAL positions the first and the last range were read at.
    pub first_lsn: Option<String>,
    pub last_lsn: Option<String>,
    pub differing: Vec<RangeReport>,
    pub unsettled: Vec<RangeReport>,
    /// Why it was not compared (a problem, e.g. missing on the destination).
    pub error: Option<String>,
    /// Said of it without being a problem (no key: compared whole; unlogged: not replicated).
    pub note: Option<String>,
}

/// A range (or a few rows) that did not compare equal.
#[derive(Debug, Clone, Serialize)]
pub struct RangeReport {
    /// The condition selecting the range, e.g. `("id") >= ('1000') AND ("id") < ('2000')`;
    /// `None`: the whole table.
    pub condition: Option<String>,
    pub source_rows: i64,
    pub destination_rows: i64,
    /// The first rows that differ, by key (`id=42: changed`), when they could be found.
    pub rows: Vec<String>,
    /// How many more rows differ than `rows` lists.
    pub more_rows: u64,
    /// A query to run on both sides to look at the range.
    pub inspect: String,
}
