//! Replication setup: per source database a publication FOR ALL TABLES (a list of every table
//! when the tool connects to the source as a non-superuser, which cannot publish all tables), with
//! publish_via_partition_root, so partitioned tables replicate whatever the destination's
//! partition layout), a logical slot, and a subscription on the destination that copies the
//! data (copy_data) and then streams changes from that slot.
//!
//! Order matters: the publication must exist before the slot's starting point or pgoutput
//! cannot find it, and the slot before the subscription. Each step looks before it creates, so a
//! crash between two steps is repaired on the next tick. The slot is created by the tool (not by
//! CREATE SUBSCRIPTION) so that it exists under the deterministic name before the subscription
//! does; the table sync workers copy each table under their own snapshot and the apply worker
//! skips, per table, every change before that table's copy: no row is lost or applied twice.
//!
//! When the tool connects to the destination as a superuser, the subscription runs with
//! `run_as_owner = true`: changes are applied as the subscription's owner, not as each table's
//! owner, so tables owned by application roles, with row-level security forced on their owner,
//! still receive every row. A non-superuser (a managed service's admin) would be subject to
//! row-level security itself, so there the subscription applies as each table's owner
//! (`run_as_owner = false`), which the admin may switch to through the SET membership it takes
//! in the roles it created (see [`super::roles`]).

use crate::pg::{PgError, Session};

use super::{MappingContext, q};
use crate::catalog::schema as catalog;
use crate::catalog::{deferred, published};
use crate::ddl::quote::{conninfo_value, ident, literal, qualified};
use crate::ddl::{self, DeferredKind};
use crate::destination;
use crate::naming::ReplicationNames;
use secrecy::ExposeSecret;

/// What exists of a database's replication objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Present {
    pub publication: bool,
    pub slot: bool,
    pub subscription: bool,
}

/// Looks for the publication and slot on the source (`src` connected to the source database)
/// and the subscription on the destination (`dst` connected to the destination database).
pub async fn present(
    names: &ReplicationNames,
    src: &Session,
    dst: Option<&Session>,
) -> Result<Present, PgError> {
    let row = src
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1), \
                    EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $2)",
            &[&names.publication, &names.slot],
        )
        .await
        .map_err(q(src.target(), "looking for the publication and slot"))?;
    let subscription = match dst {
        Some(dst) => dst
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_subscription WHERE subname = $1 \
                   AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))",
                &[&names.subscription],
            )
            .await
            .map_err(q(dst.target(), "looking for the subscription"))?
            .get(0),
        None => false,
    };
    Ok(Present {
        publication: row.get(0),
        slot: row.get(1),
        subscription,
    })
}

/// The connection string the destination's subscription uses to reach source database `db`.
/// It is stored in the destination's catalog, which is why a dedicated replication role is
/// recommended.
pub fn subscription_conninfo(ctx: &MappingContext, db: &str, application_name: &str) -> String {
    let pg = &ctx.source.pg;
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let mut parts = vec![
        format!("host={}", conninfo_value(&host)),
        format!("port={port}"),
        format!("dbname={}", conninfo_value(db)),
        format!("user={}", conninfo_value(&ctx.source.replication_user)),
        format!("application_name={}", conninfo_value(application_name)),
    ];
    // sslmode and any configured sslrootcert/sslcert/sslkey: files on the destination server.
    for (name, value) in &ctx.source.subscription_ssl {
        parts.push(format!("{name}={}", conninfo_value(value)));
    }
    if let Some(password) = &ctx.source.replication_password {
        parts.push(format!(
            "password={}",
            conninfo_value(password.expose_secret())
        ));
    }
    parts.join(" ")
}

/// Creates whatever is missing of publication, slot and subscription (in fast copy mode only the
/// publication: the copy job creates the slot, the orchestrator the subscription once the copy
/// is done).
pub async fn set_up(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    src: &Session,
    dst: &Session,
) -> Result<(), PgError> {
    let present = present(names, src, Some(dst)).await?;
    if ctx.copy.fast && !present.subscription {
        // Fast copy: the copy job creates the slot (with its snapshot) and the subscription.
        if !present.publication {
            create_publication(ctx, db, names, src).await?;
        }
        return Ok(());
    }
    if !present.publication {
        create_publication(ctx, db, names, src).await?;
    }
    if !present.slot {
        src.execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&names.slot],
        )
        .await
        .map_err(q(src.target(), "creating the replication slot"))?;
        tracing::info!(mapping = %ctx.name, database = db, slot = %names.slot, "replication slot created");
    }
    if !present.subscription {
        // Whatever an interrupted fast copy left would collide with the subscription's copy.
        let tables = published::tables(src, &names.publication).await?;
        destination::truncate(dst, tables.iter().map(|t| &t.root).collect()).await?;
        // A schema applied for the fast copy (the mode changed since) has no primary keys yet;
        // the subscription's copy applies each table's changes as soon as it is synchronised,
        // and needs them then. Built on the empty tables, they cost nothing.
        let catalog = catalog::read(src).await?;
        let existing = deferred::existing(dst).await?;
        for key in ddl::deferred_objects(&catalog)
            .iter()
            .filter(|o| o.kind == DeferredKind::PrimaryKey && !o.exists_in(&existing))
        {
            destination::build(dst, key).await?;
        }
        create_subscription(ctx, db, names, dst, true).await?;
    }
    Ok(())
}

/// The publication: FOR ALL TABLES, or a list of the tables when the tool is not a superuser on
/// the source.
async fn create_publication(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    src: &Session,
) -> Result<(), PgError> {
    let tables = if crate::catalog::roles::is_superuser(src).await? {
        "FOR ALL TABLES".to_owned()
    } else {
        // FOR ALL TABLES needs a superuser: list the tables (partitioned tables by their
        // root, which publishes their partitions).
        let catalog = catalog::read(src).await?;
        let roots: Vec<String> = catalog
            .tables
            .iter()
            .filter(|t| t.partition_of.is_none() && !t.unlogged)
            .map(|t| qualified(&t.name))
            .collect();
        if roots.is_empty() {
            String::new()
        } else {
            format!("FOR TABLE {}", roots.join(", "))
        }
    };
    src.batch_execute(&format!(
        "CREATE PUBLICATION {} {tables} WITH (publish_via_partition_root = true)",
        ident(&names.publication)
    ))
    .await
    .map_err(q(src.target(), "creating the publication"))?;
    tracing::info!(mapping = %ctx.name, database = db, publication = %names.publication, "publication created");
    Ok(())
}

/// The options the tool gives its subscriptions (`subscription_binary`,
/// `subscription_streaming`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionOptions {
    pub binary: bool,
    pub streaming: crate::config::Streaming,
}

impl SubscriptionOptions {
    /// Whether `subscription`, as the destination has it, has these options.
    pub fn held_by(self, subscription: &crate::catalog::subscription::Subscription) -> bool {
        subscription.binary == self.binary
            && subscription.streaming == self.streaming.catalog_char()
    }
}

/// Gives the subscription the configured options (after `subscription_binary` or
/// `subscription_streaming` changed): its workers restart with them, from where they were.
pub async fn set_options(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    dst: &Session,
) -> Result<(), PgError> {
    dst.batch_execute(&format!(
        "ALTER SUBSCRIPTION {} SET (binary = {}, streaming = {})",
        ident(&names.subscription),
        ctx.subscription.binary,
        ctx.subscription.streaming.as_str()
    ))
    .await
    .map_err(q(dst.target(), "setting the subscription's options"))?;
    tracing::info!(mapping = %ctx.name, database = db, subscription = %names.subscription, binary = ctx.subscription.binary, streaming = ctx.subscription.streaming.as_str(), "subscription options set as configured");
    Ok(())
}

/// The subscription on the existing slot: `copy_data` when the subscription copies the
/// tables, without when the tool has copied them from the slot's snapshot.
pub async fn create_subscription(
    ctx: &MappingContext,
    db: &str,
    names: &ReplicationNames,
    dst: &Session,
    copy_data: bool,
) -> Result<(), PgError> {
    let conninfo = subscription_conninfo(ctx, db, &names.subscription);
    let run_as_owner = crate::catalog::roles::is_superuser(dst).await?;
    let sql = format!(
        "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (slot_name = {}, \
         create_slot = false, copy_data = {copy_data}, enabled = true, \
         run_as_owner = {run_as_owner}, binary = {}, streaming = {})",
        ident(&names.subscription),
        literal(&conninfo),
        ident(&names.publication),
        literal(&names.slot),
        ctx.subscription.binary,
        ctx.subscription.streaming.as_str(),
    );
    // The statement holds a password: errors name the step, never the statement.
    dst.batch_execute(&sql)
        .await
        .map_err(q(dst.target(), "creating the subscription"))?;
    tracing::info!(mapping = %ctx.name, database = db, subscription = %names.subscription, copy_data, binary = ctx.subscription.binary, streaming = ctx.subscription.streaming.as_str(), "subscription created");
    Ok(())
}
