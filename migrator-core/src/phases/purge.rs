//! Purge: start one database of a mapping over. For a destination database the tool created
//! (its marker) and that is not completed, with no sessions of anyone else on it: drop the
//! subscription and its slot on the source, then empty the tables (all, or the named ones) in one
//! transaction, sequences reset with them, or drop the database. The reconcile loop then copies
//! it again from a new slot's snapshot (every table: the copy empties each one before it fills
//! it, so naming tables only decides what is emptied at once).
//!
//! Refused, with the reason and the way out, for a database without this mapping's marker, a
//! completed one or one being completed (the cutover happened or is under way: that is
//! production data now), and while other sessions are connected to it (writes may be pointed
//! at it).
//!
//! A running `run` does it in the database's own task ([`Queue`]: the task stops its copy job
//! first, and forgets what it remembered afterwards); the command line does it under the
//! mapping's lease.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};

use super::MappingContext;
use crate::catalog::model::QualifiedName;
use crate::catalog::subscription;
use crate::ddl::quote::{ident, qualified};
use crate::naming::{COMPLETING_MARKER, ReplicationNames};
use crate::pg::{PgError, Session, q};
use crate::phase::DestinationState;

/// What to purge in one database.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Request {
    /// Only empty these tables (`schema.table`, or `table` in `public`); empty = every table.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Drop the database instead of emptying it (the schema step creates it again).
    #[serde(default)]
    pub drop: bool,
}

/// Why a purge did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    /// Refused: the reason and how to get past it.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// What a running database task receives: the request and where its answer goes.
#[derive(Debug)]
pub struct Asked {
    pub request: Request,
    pub reply: oneshot::Sender<Result<Vec<String>, PurgeError>>,
}

/// Purges asked of a mapping's database tasks, by database.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    asked: Arc<Mutex<BTreeMap<String, Asked>>>,
    /// Wakes the waiting database tasks, each of which looks for its own request.
    pub wake: Arc<Notify>,
}

impl Queue {
    /// Asks the task of database `db` to purge it; refused while another purge of it waits.
    pub fn ask(
        &self,
        db: &str,
        request: Request,
    ) -> Result<oneshot::Receiver<Result<Vec<String>, PurgeError>>, PurgeError> {
        let (reply, answer) = oneshot::channel();
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        if asked.get(db).is_some_and(|a| !a.reply.is_closed()) {
            return Err(PurgeError::Refused(format!(
                "a purge of database {db:?} is already waiting for its task"
            )));
        }
        asked.insert(db.to_owned(), Asked { request, reply });
        drop(asked);
        self.wake.notify_waiters();
        Ok(answer)
    }

    /// The purge asked of database `db`, if any (taken: asked once, done once).
    pub fn take(&self, db: &str) -> Option<Asked> {
        self.asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(db)
    }

    /// Whether a purge of database `db` waits for its task.
    pub fn pending(&self, db: &str) -> bool {
        self.asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(db)
    }

    /// Forgets a request nobody took.
    pub fn withdraw(&self, db: &str) {
        self.take(db);
    }
}

/// The sessions a purge runs on.
pub struct Sessions<'a> {
    /// The source database.
    pub src: &'a Session,
    /// The destination database.
    pub dst: &'a Session,
    /// The destination's maintenance database.
    pub dst_admin: &'a Session,
}

/// Purges database `db` of `ctx`'s mapping as `request` says; `state` is what its marker says.
/// Returns one line per thing done.
pub async fn run(
    ctx: &MappingContext,
    db: &str,
    request: &Request,
    state: &DestinationState,
    sessions: Sessions<'_>,
) -> Result<Vec<String>, PurgeError> {
    let Sessions {
        src,
        dst,
        dst_admin,
    } = sessions;
    let names = ctx.names(db);
    refuse_unless_ours(ctx, db, state)?;
    refuse_if_completed(db, &names, dst).await?;
    refuse_if_others_connected(ctx, db, dst_admin).await?;
    let tables = if request.drop {
        Vec::new()
    } else {
        tables_to_empty(db, request, dst).await?
    };

    let mut done = Vec::new();
    if drop_subscription(&names, src, dst).await? {
        done.push(format!(
            "dropped the subscription {} on the destination, and with it the replication slot {} on the source",
            names.subscription, names.slot
        ));
    }
    if crate::source::drop_slot(src, &names.slot).await? {
        done.push(format!(
            "dropped the replication slot {} on the source",
            names.slot
        ));
    }
    if request.drop {
        dst_admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                ident(db)
            ))
            .await
            .map_err(q(dst_admin.target(), "dropping the destination database"))?;
        done.push(format!(
            "dropped database {db:?} on the destination: the schema step creates it again"
        ));
    } else if !tables.is_empty() {
        let list: Vec<String> = tables.iter().map(qualified).collect();
        dst.batch_execute(&format!(
            "TRUNCATE {} RESTART IDENTITY CASCADE",
            list.join(", ")
        ))
        .await
        .map_err(q(dst.target(), "emptying the tables"))?;
        done.push(format!(
            "emptied {} table(s) of {db:?} on the destination (sequences they own reset): {}",
            tables.len(),
            list.join(", ")
        ));
    }
    tracing::warn!(mapping = %ctx.name, database = db, done = ?done, "database purged");
    done.push(format!(
        "database {db:?} of mapping {} starts over: the next pass copies every table again from a new slot",
        ctx.name
    ));
    Ok(done)
}

/// Refuses unless the destination database (`state`) carries this mapping's marker.
pub fn refuse_unless_ours(
    ctx: &MappingContext,
    db: &str,
    state: &DestinationState,
) -> Result<(), PurgeError> {
    let why = match state {
        DestinationState::Ours { .. } | DestinationState::Incomplete { .. } => return Ok(()),
        DestinationState::Missing { exists: false } => {
            format!("database {db:?} does not exist on the destination: there is nothing to purge")
        }
        DestinationState::Missing { exists: true } => format!(
            "database {db:?} on the destination has no marker of mapping {}: the tool did not create it, so it purges nothing in it",
            ctx.name
        ),
        DestinationState::InUse { tables } => format!(
            "database {db:?} on the destination holds {tables} table(s) and no marker of this tool: it is someone else's data, and purge never touches it"
        ),
        DestinationState::OtherMapping { marker } => format!(
            "database {db:?} on the destination belongs to another mapping ({marker}): purge it through that mapping"
        ),
    };
    Err(PurgeError::Refused(why))
}

/// A completed database (or one being completed) is production data: never purged.
async fn refuse_if_completed(
    db: &str,
    names: &ReplicationNames,
    dst: &Session,
) -> Result<(), PurgeError> {
    let Some(sub) = subscription::read(dst, &names.subscription).await? else {
        return Ok(());
    };
    if !sub.enabled && !sub.has_slot {
        return Err(PurgeError::Refused(format!(
            "database {db:?} is completed (its subscription {} is detached): the cutover happened and that is production data now; purge never empties it. To migrate it again, drop or rename it on the destination yourself",
            names.subscription
        )));
    }
    if sub.comment.as_deref() == Some(COMPLETING_MARKER) {
        return Err(PurgeError::Refused(format!(
            "database {db:?} is being completed (mark complete has begun): the cutover is under way, and its data is the application's now; purge refuses it"
        )));
    }
    Ok(())
}

/// Sessions of anyone but the tool on the destination database mean writes may be pointed at
/// it.
async fn refuse_if_others_connected(
    ctx: &MappingContext,
    db: &str,
    dst_admin: &Session,
) -> Result<(), PurgeError> {
    let ours = ctx
        .destination
        .pg
        .get_application_name()
        .unwrap_or("postgres-migrator")
        .to_owned();
    let rows = dst_admin
        .query(
            "SELECT usename::text, coalesce(application_name, ''), \
                    coalesce(host(client_addr), 'local') \
             FROM pg_stat_activity \
             WHERE datname = $1 AND backend_type = 'client backend' \
               AND pid <> pg_backend_pid() AND application_name <> $2 \
             ORDER BY backend_start",
            &[&db, &ours],
        )
        .await
        .map_err(q(dst_admin.target(), "looking for other sessions"))?;
    if rows.is_empty() {
        return Ok(());
    }
    let who: Vec<String> = rows
        .iter()
        .take(5)
        .map(|r| {
            format!(
                "{} from {} ({:?})",
                r.get::<_, String>(0),
                r.get::<_, String>(2),
                r.get::<_, String>(1)
            )
        })
        .collect();
    Err(PurgeError::Refused(format!(
        "{} other session(s) are connected to database {db:?} on the destination ({}{}): writes may be pointed at it. Stop them (or end them with pg_terminate_backend) and purge again",
        rows.len(),
        who.join(", "),
        if rows.len() > 5 { ", ..." } else { "" }
    )))
}

/// The tables to empty: the named ones (each must exist), or every table of the database
/// (partitioned tables by their root, which empties their partitions).
async fn tables_to_empty(
    db: &str,
    request: &Request,
    dst: &Session,
) -> Result<Vec<QualifiedName>, PurgeError> {
    let rows = dst
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
               AND c.relpersistence IN ('p', 'u') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                               AND d.objid = c.oid AND d.deptype = 'e') \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(q(dst.target(), "listing the tables"))?;
    let all: Vec<QualifiedName> = rows
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    if request.tables.is_empty() {
        return Ok(all);
    }
    let mut chosen = Vec::new();
    let mut unknown = Vec::new();
    for name in &request.tables {
        let wanted = match name.split_once('.') {
            Some((schema, table)) => QualifiedName::new(schema.to_owned(), table.to_owned()),
            None => QualifiedName::new("public".to_owned(), name.clone()),
        };
        if all.contains(&wanted) {
            chosen.push(wanted);
        } else {
            unknown.push(name.as_str());
        }
    }
    if !unknown.is_empty() {
        return Err(PurgeError::Refused(format!(
            "no table {} in database {db:?} on the destination (name them as schema.table; a partition is emptied through its partitioned table); nothing was purged",
            unknown.join(", ")
        )));
    }
    Ok(chosen)
}

/// Drops the subscription (and with it, on the source, its slot and its table-sync slots) once
/// the source's WAL sender has let go of the slot; returns whether there was one.
async fn drop_subscription(
    names: &ReplicationNames,
    src: &Session,
    dst: &Session,
) -> Result<bool, PgError> {
    if subscription::read(dst, &names.subscription)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let sub = ident(&names.subscription);
    dst.batch_execute(&format!("ALTER SUBSCRIPTION {sub} DISABLE"))
        .await
        .map_err(q(dst.target(), "disabling the subscription"))?;
    // DROP SUBSCRIPTION connects to the source and drops the slot (and any table-sync slot),
    // which fails while the WAL sender of the disabled subscription still holds it.
    let deadline = tokio::time::Instant::now() + crate::source::SLOT_RELEASE_TIMEOUT;
    loop {
        let active: bool = src
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active)",
                &[&names.slot],
            )
            .await
            .map_err(q(src.target(), "looking at the replication slot"))?
            .get(0);
        if !active {
            match dst.batch_execute(&format!("DROP SUBSCRIPTION {sub}")).await {
                Ok(()) => return Ok(true),
                Err(e) if !e.to_string().contains("is active") => {
                    return Err(PgError::query(dst.target(), "dropping the subscription", e));
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(PgError::query(dst.target(), "dropping the subscription", e));
                }
                Err(_) => {}
            }
        } else if tokio::time::Instant::now() >= deadline {
            return Err(PgError::Query {
                target: src.target().to_owned(),
                context: format!("dropping the subscription {}", names.subscription),
                message: format!(
                    "its slot {} is still in use a minute after the subscription was disabled; find who reads it (SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{}'), then purge again",
                    names.slot, names.slot
                ),
                transient: true,
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
