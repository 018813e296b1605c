//! Settings: types, defaults, layering and validation.
//!
//! The effective configuration is built from three layers, later ones winning:
//!
//! 1. `config/default.toml`, compiled into the binary, which holds every default (so the defaults
//!    live in exactly one place and `postgres-migrator config` can show them);
//! 2. the operator's TOML file (`--config`, `MIGRATOR_CONFIG`, else `config/default.toml` when it
//!    exists in the working directory);
//! 3. environment variables `MIGRATOR__SECTION__KEY` (double underscore between keys), so that a
//!    Kubernetes Deployment can set everything, mappings included:
//!    `MIGRATOR__MAPPINGS__PROD__SOURCE__URL=postgres://...`.
//!
//! Loading never stops at the first mistake: unknown keys (with the nearest valid key), values of
//! the wrong type and semantic problems are all collected and reported together, each with its key
//! and what to do ([`ConfigError::Invalid`]).
//!
//! Secrets (`password`, `url`, tokens) are [`secrecy::SecretString`]s: their `Debug` is redacted
//! and [`Settings`]' `Serialize` writes `***` in their place, so printing the effective
//! configuration is safe.

mod connection;
mod listen;
mod load;
pub mod pooler;
mod redact;
mod schema_check;
pub mod tcp;
pub mod tls;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub(crate) use connection::read_secret_file;
pub use connection::{
    ConnectionSettings, ResolvedConnection, SslMode, describe as connection_target,
};
pub use listen::is_loopback_listen;
pub use load::{ConfigSource, DEFAULT_CONFIG_PATH, DEFAULT_TOML, load};
pub use tls::{ChannelBinding, Tls};
pub use validate::MAX_MAPPING_NAME_LEN;

/// Everything the tool is told. See `config/default.toml` for every default.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The HTTP server (dashboard, API, health, metrics).
    pub server: ServerSettings,
    /// Logging.
    pub log: LogSettings,
    /// Defaults that every mapping uses unless it overrides them.
    pub migration: MigrationSettings,
    /// Backups: `backup create|list|restore|delete` and the mapping page's backups.
    pub backup: BackupSettings,
    /// The migrations to run: one source instance onto one destination instance each, keyed by a
    /// name of lowercase letters, digits and single underscores.
    #[serde(default)]
    pub mappings: BTreeMap<String, MappingSettings>,
}

/// The HTTP server.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port to listen on. Anything but a loopback address (127.0.0.0/8, `::1`) can
    /// be reached from the network: see `admin_token`. Default `0.0.0.0:8080`.
    pub listen: String,
    /// When set, commands (mark complete, resync, retry, rate limit) must present this token:
    /// `Authorization: Bearer` on the API, a form field on the dashboard. Without it, anyone who
    /// can reach `listen` can send them (a warning says so at start and on the dashboard).
    /// Must not be empty. Default: unset.
    #[serde(default, serialize_with = "redact::option")]
    #[schemars(with = "Option<String>")]
    pub admin_token: Option<SecretString>,
    /// Refuse to start when `listen` can be reached from the network (not a loopback address)
    /// and no `admin_token` is set, instead of only warning. Default `false`.
    pub require_admin_token: bool,
    /// How often the dashboard's pages re-fetch themselves. Default `5s`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub refresh_interval: Duration,
    /// Requests one client IP may send at once to `/api/...` and to the command forms before
    /// it gets 429. Default `20`.
    pub rate_limit_burst: u32,
    /// Time for a client to earn back one request of its burst (so 200ms = 5 a second
    /// sustained). Default `200ms`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub rate_limit_refill: Duration,
}

/// Logging.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `tracing` filter directive, e.g. `info` or `info,migrator_core=debug`. `RUST_LOG` wins.
    /// Default `info`.
    pub level: String,
    /// `pretty` for people, `json` for log collectors. Default `pretty`.
    pub format: LogFormat,
}

/// How log lines are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, one event a line.
    Pretty,
    /// One JSON object a line.
    Json,
}

/// Defaults for every mapping.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationSettings {
    /// How often each mapping re-reads the databases and takes its next step. Default `5s`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// Cutover ready needs replication lag at most this many MB. Default `16`.
    pub lag_threshold_mb: u64,
    /// Cutover ready needs replication lag at most this long. Default `10s`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub lag_threshold_time: Duration,
    /// Every cutover-ready condition must hold this long before the light turns green.
    /// Default `30s`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub stable_for: Duration,
    /// Most MB per second read from a source during the initial copy; 0 = no limit. Can be
    /// changed while running from the dashboard or API. Default `0`.
    pub rate_limit_mb_per_s: u64,
    /// Who copies the tables: `fast` (the tool, in parallel, from the replication slot's
    /// exported snapshot) or `native` (the subscription's `copy_data`). Default `fast`.
    pub copy_mode: CopyMode,
    /// Parallel copy sessions per database in fast mode; 0 = as many as this machine has
    /// cores, at least 2 and at most 8. Default `0`.
    pub copy_workers: usize,
    /// In fast mode, split large tables into ranges that several workers copy at once.
    /// Default `true`.
    pub copy_split_tables: bool,
    /// Size of those ranges in MB; 0 = automatic: a worker's fair share of the database's data,
    /// at least 64 MB, so only a table that would outlast the others is split. Default `0`.
    pub copy_chunk_mb: u64,
    /// Health guard: while a standby or another subscriber of the source is more than this many
    /// MB behind, the copy slows down; 0 = not watched. Default `512`.
    pub health_max_standby_lag_mb: u64,
    /// Health guard: while a trivial query on the source takes longer than this, the copy slows
    /// down; 0s = not watched. Default `500ms`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub health_max_latency: Duration,
    /// How long creating a database's replication slot may wait for transactions that were open
    /// on the source when it began (fast mode); then the attempt fails and is retried later.
    /// Default `10m`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub slot_create_timeout: Duration,
    /// The subscription's `binary` option: rows travel in the types' binary format instead
    /// of text. Default `false` (see docs/ARCHITECTURE.md for the measurements).
    pub subscription_binary: bool,
    /// The subscription's `streaming` option: how transactions still in progress on the source
    /// reach the destination. Default `parallel`.
    pub subscription_streaming: Streaming,
    /// The `apply_behind` warning stands once the lag has grown over this whole window (and
    /// each half of it): the source writes WAL faster than the destination applies. Default `3m`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub apply_behind_after: Duration,
    /// What to do with a role that already exists on the destination. Default `fail`.
    pub role_conflict_strategy: RoleConflictStrategy,
    /// Password given to copied login roles whose password hash cannot be read from the source.
    /// Default: unset (such roles are created without a password and reported).
    #[serde(default, serialize_with = "redact::option")]
    #[schemars(with = "Option<String>")]
    pub fallback_password: Option<SecretString>,
    /// File holding the fallback password (a mounted Secret). Default: unset.
    #[serde(default)]
    pub fallback_password_file: Option<PathBuf>,
    /// Tables with neither a primary key nor a replica identity make UPDATE and DELETE fail on
    /// the source once published: `refuse` (preflight stops) or `replica_identity_full` (set
    /// REPLICA IDENTITY FULL on them, and report it). Default `refuse`.
    pub no_pk_remedy: NoPkRemedy,
    /// Sequences on the destination are set this many increments ahead of the source, so values
    /// handed out between a sync and the cutover cannot collide. Default `1000`.
    pub sequence_margin: i64,
    /// `verify`: ranges compared at once per database (each holds one session on either side).
    /// Default `2`.
    pub verify_parallel: usize,
    /// `verify`: tables with a key are compared in ranges of about this many MB. Default `32`.
    pub verify_chunk_mb: u64,
    /// `verify` online: how often a range that differs while the source changes is read again
    /// before it is reported as not settled. Default `5`.
    pub verify_rechecks: u32,
    /// Mark complete first verifies every table exactly (after the lag drained): `off`, `warn`
    /// (report differences, complete anyway) or `require` (refuse to complete unless every
    /// table is proven equal). Default `off`.
    pub verify_before_complete: VerifyBeforeComplete,
}

/// Whether mark complete verifies the data first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerifyBeforeComplete {
    /// No verification.
    Off,
    /// Verify exactly, report what differs, complete anyway.
    Warn,
    /// Verify exactly; refuse to complete unless every table is proven equal.
    Require,
}

/// Who copies the tables' existing rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CopyMode {
    /// The tool: parallel binary COPY from the slot's exported snapshot, ranges of large
    /// tables at once, indexes built afterwards in parallel.
    Fast,
    /// The subscription (`copy_data = true`): one table sync worker per table.
    Native,
}

/// The subscription's `streaming` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Streaming {
    /// A transaction is sent when it commits (the source decodes a large one to disk first).
    Off,
    /// Sent while in progress; the destination writes it to files and applies it at commit.
    On,
    /// Sent while in progress and applied as it arrives by a parallel apply worker (a source on
    /// PostgreSQL 16 or later; with an older one, as `on`).
    Parallel,
}

impl Streaming {
    /// The option's value in `CREATE SUBSCRIPTION ... WITH (streaming = ...)`.
    pub fn as_str(self) -> &'static str {
        match self {
            Streaming::Off => "off",
            Streaming::On => "on",
            Streaming::Parallel => "parallel",
        }
    }

    /// `pg_subscription.substream` for this setting.
    pub fn catalog_char(self) -> &'static str {
        match self {
            Streaming::Off => "f",
            Streaming::On => "t",
            Streaming::Parallel => "p",
        }
    }
}

/// What to do with a table that has neither a primary key nor a replica identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoPkRemedy {
    /// Refuse in preflight, naming the tables and the fixes.
    Refuse,
    /// `ALTER TABLE ... REPLICA IDENTITY FULL` on the source, reported as a warning.
    ReplicaIdentityFull,
}

/// What to do with a role that already exists on the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleConflictStrategy {
    /// Refuse in preflight and list the conflicting roles.
    Fail,
    /// Leave the existing role untouched and report it.
    Skip,
    /// Add missing memberships and grants; never remove or weaken anything.
    Merge,
}

/// One source instance onto one destination instance.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    /// The PostgreSQL 15+ instance to migrate from.
    pub source: ConnectionSettings,
    /// The PostgreSQL 18+ instance to migrate onto.
    pub destination: ConnectionSettings,
    /// Which databases of the source to migrate. Default: all but templates.
    #[serde(default)]
    pub databases: DatabaseFilter,
    /// Overrides `migration.rate_limit_mb_per_s` for this mapping.
    #[serde(default)]
    pub rate_limit_mb_per_s: Option<u64>,
    /// Overrides `migration.role_conflict_strategy` for this mapping.
    #[serde(default)]
    pub role_conflict_strategy: Option<RoleConflictStrategy>,
    /// Overrides `migration.no_pk_remedy` for this mapping.
    #[serde(default)]
    pub no_pk_remedy: Option<NoPkRemedy>,
    /// Schema objects left out of the destination, each `"<database>: <object>"` with the object
    /// named as its `schema_object_failed` finding names it (`"shop: VIEW public.v"`,
    /// `"shop: ROUTINE public.f(integer)"`): for an object that cannot be created on the
    /// destination. Reported as a warning. Tables cannot be left out (their rows are
    /// replicated). From the environment: one string, entries separated by `;`.
    /// Default: empty.
    #[serde(default, deserialize_with = "load::semicolon_list")]
    #[schemars(with = "Vec<String>")]
    pub schema_exclude: Vec<String>,
    /// The admin console of the PgBouncer in front of the source (its `pgbouncer` database, as a
    /// user listed in `admin_users`; same fields as `source`): the cutover instructions then
    /// give the exact `PAUSE`/`RESUME` steps for the pooler's entries of each database, and the
    /// dashboard shows its client connections per database. Default: unset.
    #[serde(default)]
    pub pooler: Option<ConnectionSettings>,
}

/// Backups of a mapping's databases with `pg_dump --format=directory` (see docs/USER_GUIDE.md).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupSettings {
    /// Where backups go, one directory each (in Kubernetes, a mounted volume). Default: unset
    /// (backup commands refuse, saying to set it).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Parallel jobs of each `pg_dump` and `pg_restore`. Default `2`.
    pub jobs: u32,
    /// Directories searched first for `pg_dump`, `pg_dumpall` and `pg_restore`, before the
    /// standard install locations and `PATH`; from the environment one comma-separated string.
    /// Default: empty.
    #[serde(default, deserialize_with = "load::string_or_list")]
    #[schemars(with = "Vec<String>")]
    pub pg_bin_dir: Vec<String>,
}

/// Which databases of a source instance to migrate. Lists may be written as TOML arrays or, as
/// environment variables need, as one comma-separated string.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseFilter {
    /// Only these databases (empty = every database). Default: empty.
    #[serde(default, deserialize_with = "load::string_or_list")]
    #[schemars(with = "Vec<String>")]
    pub include: Vec<String>,
    /// Never these databases. Default: empty.
    #[serde(default, deserialize_with = "load::string_or_list")]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<String>,
}

impl DatabaseFilter {
    /// Whether the database `name` is to be migrated.
    pub fn admits(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|n| n == name))
            && !self.exclude.iter().any(|n| n == name)
    }
}

/// One `schema_exclude` entry split into database and object; `None` when it has no `": "`.
pub fn schema_exclusion(entry: &str) -> Option<(&str, &str)> {
    let (db, object) = entry.split_once(": ")?;
    let (db, object) = (db.trim(), object.trim());
    (!db.is_empty() && !object.is_empty()).then_some((db, object))
}

impl MappingSettings {
    /// The rate limit in force for this mapping (0 = none).
    pub fn rate_limit_mb_per_s(&self, defaults: &MigrationSettings) -> u64 {
        self.rate_limit_mb_per_s
            .unwrap_or(defaults.rate_limit_mb_per_s)
    }

    /// The remedy for tables without a primary key in force for this mapping.
    pub fn no_pk_remedy(&self, defaults: &MigrationSettings) -> NoPkRemedy {
        self.no_pk_remedy.unwrap_or(defaults.no_pk_remedy)
    }

    /// The role conflict strategy in force for this mapping.
    pub fn role_conflict_strategy(&self, defaults: &MigrationSettings) -> RoleConflictStrategy {
        self.role_conflict_strategy
            .unwrap_or(defaults.role_conflict_strategy)
    }
}

impl Settings {
    /// The effective configuration as TOML, every secret written as `***`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).expect("settings always serialise to TOML")
    }

    /// What reading the connections noticed and left alone (url parameters meant for other
    /// clients), one line each, for the log at start and `postgres-migrator config`. Never
    /// holds a secret.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for (name, mapping) in &self.mappings {
            let key = format!("mappings.{name}");
            for (side, connection) in [
                ("source", &mapping.source),
                ("destination", &mapping.destination),
            ] {
                if let Ok(resolved) = connection.resolve(&format!("{key}.{side}")) {
                    notes.extend(resolved.notes);
                }
            }
            if let Some(Ok(resolved)) = mapping
                .pooler
                .as_ref()
                .map(|p| p.resolve_console(&format!("{key}.pooler")))
            {
                notes.extend(resolved.notes);
            }
        }
        notes
    }
}

/// What went wrong while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` or `MIGRATOR_CONFIG` cannot be read.
    #[error(
        "cannot read the configuration file {path}: {reason}. Check the path given with --config or MIGRATOR_CONFIG"
    )]
    Unreadable { path: PathBuf, reason: String },
    /// A layer is not valid TOML.
    #[error("the configuration is not valid TOML: {0}")]
    Syntax(String),
    /// One or more settings are wrong; every problem found is listed.
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), problem_list(.0))]
    Invalid(Vec<Problem>),
}

/// One configuration mistake: the key it is about and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `mappings.prod.source`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn problem_list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
