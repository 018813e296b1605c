//! One module per phase; each owns its SQL and its action. Every action is idempotent: it looks
//! before it creates, so running it twice, or after a crash halfway, is safe.

pub mod apply;
pub mod catchup;
pub mod complete;
pub mod copy;
pub mod cutover;
pub mod drift;
pub mod preflight;
pub mod purge;
pub mod replication;
pub mod retention;
pub mod roles;
pub mod schema;
pub mod sync;
pub mod triggers;

pub use crate::pg::q;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{
    CopyMode, DatabaseFilter, MappingSettings, MigrationSettings, NoPkRemedy, Problem,
    ResolvedConnection, RoleConflictStrategy,
};
use crate::limiter::RateLimiter;
use crate::naming::ReplicationNames;
use crate::pg::{self, PgError, Session};
use crate::phase::Thresholds;

/// Everything a mapping's phases need to know, resolved once from the configuration.
#[derive(Debug, Clone)]
pub struct MappingContext {
    pub name: String,
    pub source: ResolvedConnection,
    pub destination: ResolvedConnection,
    /// The PgBouncer admin console in front of the source (`pooler`), if named.
    pub pooler: Option<ResolvedConnection>,
    pub databases: DatabaseFilter,
    pub no_pk_remedy: NoPkRemedy,
    pub sequence_margin: i64,
    /// How often the reconcile loop looks (`poll_interval`).
    pub poll: std::time::Duration,
    /// The options of the subscriptions the tool creates.
    pub subscription: replication::SubscriptionOptions,
    /// How long the lag must grow before `apply_behind` is reported.
    pub apply_behind_after: std::time::Duration,
    pub thresholds: Thresholds,
    pub role_conflict_strategy: RoleConflictStrategy,
    /// SCRAM-SHA-256 hash of the password for copied login roles whose hash cannot be read
    /// (`fallback_password[_file]`).
    pub fallback_password: Option<SecretString>,
    /// How the initial copy is done.
    pub copy: copy::CopySettings,
    /// Caps the bytes read from the source during the copy; shared by every database's copy
    /// (and by clones of this context), adjustable while running.
    pub limiter: Arc<RateLimiter>,
    /// One database of the mapping copies at a time (fast mode).
    pub copy_turn: Arc<tokio::sync::Semaphore>,
    /// This process holds the mapping's lease (set by the mapping task; commands check it).
    pub holds_lease: Arc<std::sync::atomic::AtomicBool>,
    /// Bumped when the operator asks to retry what the tool gave up on (a failing copy).
    pub retry_generation: Arc<std::sync::atomic::AtomicU64>,
    /// Purges asked of the mapping's database tasks (`Command::Purge`).
    pub purges: purge::Queue,
    /// How `verify` compares.
    pub verify: crate::verify::Settings,
    /// Whether mark complete verifies the data first.
    pub verify_before_complete: crate::config::VerifyBeforeComplete,
    /// `schema_exclude`: (database, object) pairs left out of the destination's schema.
    pub schema_exclude: Vec<(String, String)>,
}

impl MappingContext {
    /// The objects of database `db` that `schema_exclude` leaves out.
    pub fn schema_excluded(&self, db: &str) -> std::collections::BTreeSet<&str> {
        self.schema_exclude
            .iter()
            .filter(|(d, _)| d == db)
            .map(|(_, object)| object.as_str())
            .collect()
    }

    pub fn new(
        name: &str,
        mapping: &MappingSettings,
        defaults: &MigrationSettings,
    ) -> Result<Self, Vec<Problem>> {
        let key = format!("mappings.{name}");
        let source = mapping.source.resolve(&format!("{key}.source"));
        let destination = mapping.destination.resolve(&format!("{key}.destination"));
        let pooler = mapping
            .pooler
            .as_ref()
            .map(|p| p.resolve_console(&format!("{key}.pooler")))
            .transpose();
        let (source, destination, pooler) = match (source, destination, pooler) {
            (Ok(s), Ok(d), Ok(p)) => (s, d, p),
            (s, d, p) => {
                let mut problems = s.err().unwrap_or_default();
                problems.extend(d.err().unwrap_or_default());
                problems.extend(p.err().unwrap_or_default());
                return Err(problems);
            }
        };
        let fallback_password = match (
            &defaults.fallback_password,
            &defaults.fallback_password_file,
        ) {
            (Some(password), _) => Some(password.clone()),
            (None, Some(path)) => {
                Some(crate::config::read_secret_file(path).map_err(|reason| {
                    vec![Problem::new("migration.fallback_password_file", reason)]
                })?)
            }
            (None, None) => None,
        };
        // Hashed here, as psql's \password does, so the plain password never travels to the
        // destination (where statement logging would write it down).
        let fallback_password = fallback_password.map(|password| {
            SecretString::from(postgres_protocol::password::scram_sha_256(
                password.expose_secret().as_bytes(),
            ))
        });
        Ok(MappingContext {
            name: name.to_owned(),
            role_conflict_strategy: mapping.role_conflict_strategy(defaults),
            fallback_password,
            source,
            destination,
            pooler,
            databases: mapping.databases.clone(),
            no_pk_remedy: mapping.no_pk_remedy(defaults),
            schema_exclude: mapping
                .schema_exclude
                .iter()
                .filter_map(|entry| crate::config::schema_exclusion(entry))
                .map(|(db, object)| (db.to_owned(), object.to_owned()))
                .collect(),
            sequence_margin: defaults.sequence_margin,
            poll: defaults.poll_interval,
            apply_behind_after: defaults.apply_behind_after,
            subscription: replication::SubscriptionOptions {
                binary: defaults.subscription_binary,
                streaming: defaults.subscription_streaming,
            },
            copy: copy::CopySettings {
                fast: defaults.copy_mode == CopyMode::Fast,
                workers: match defaults.copy_workers {
                    0 => std::thread::available_parallelism()
                        .map_or(2, |n| n.get())
                        .clamp(2, 8),
                    n => n,
                },
                split: defaults.copy_split_tables,
                chunk_bytes: defaults.copy_chunk_mb * 1024 * 1024,
                max_standby_lag_bytes: defaults.health_max_standby_lag_mb * 1024 * 1024,
                max_latency: defaults.health_max_latency,
                slot_create_timeout: defaults.slot_create_timeout,
            },
            verify: crate::verify::Settings {
                parallel: defaults.verify_parallel.max(1),
                chunk_bytes: defaults.verify_chunk_mb.max(1) * 1024 * 1024,
                rechecks: defaults.verify_rechecks,
            },
            verify_before_complete: defaults.verify_before_complete,
            limiter: Arc::new(RateLimiter::new(mapping.rate_limit_mb_per_s(defaults))),
            copy_turn: Arc::new(tokio::sync::Semaphore::new(1)),
            retry_generation: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            purges: purge::Queue::default(),
            holds_lease: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            thresholds: Thresholds {
                max_lag_bytes: defaults.lag_threshold_mb * 1024 * 1024,
                max_lag_seconds: defaults.lag_threshold_time.as_secs_f64(),
                stable_for: defaults.stable_for,
            },
        })
    }

    /// Publication, slot and subscription names of source database `db`.
    pub fn names(&self, db: &str) -> ReplicationNames {
        ReplicationNames::new(&self.name, db)
    }

    /// `host:port` of the destination: two mappings with the same one share a destination.
    pub fn destination_key(&self) -> String {
        let target = self.destination.describe();
        let host_port = target.split('@').nth(1).unwrap_or(&target);
        host_port.split('/').next().unwrap_or(host_port).to_owned()
    }
}

/// A session to one database that reconnects when it was lost.
pub struct DbConn {
    conn: ResolvedConnection,
    database: String,
    session: Option<Session>,
}

impl DbConn {
    pub fn new(conn: &ResolvedConnection, database: &str) -> Self {
        DbConn {
            conn: conn.clone(),
            database: database.to_owned(),
            session: None,
        }
    }

    /// The connected session, connecting first when there is none or it was closed.
    pub async fn get(&mut self) -> Result<&Session, PgError> {
        if self.session.as_ref().is_none_or(|s| s.is_closed()) {
            self.session = Some(pg::session(&self.conn, &self.database).await?);
        }
        Ok(self.session.as_ref().expect("just connected"))
    }

    /// Forgets the connection (after an error that may have broken it).
    pub fn reset(&mut self) {
        self.session = None;
    }
}
