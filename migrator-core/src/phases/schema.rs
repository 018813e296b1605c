//! Schema phase: create the destination database and its whole schema (types, tables with
//! primary keys, functions, views, triggers, rules, policies, comments, owners and grants; see
//! [`ddl::schema_statements`]) in one transaction. Secondary indexes and foreign keys come
//! after each table's copy (phases::sync); materialized views are refreshed after the copy.
//!
//! How the tool recognises its own databases: a comment on the destination database,
//! `postgres-migrator: mapping <m>, source database <db>, <state>`, where state is `created`
//! (set right after CREATE DATABASE, or when adopting an existing database with no tables) or
//! `schema applied` (set in the same transaction as the schema, so the schema is all there or not
//! at all). A database with tables and no such comment is someone else's: preflight refuses it.

use crate::pg::{self, PgError, Session};

use super::{MappingContext, q};
use crate::catalog::schema as catalog;
use crate::catalog::{objects, roles};
use crate::ddl;
use crate::naming::{MARKER_PREFIX, database_marker};
use crate::phase::DestinationState;

/// Reads the destination database's state through the maintenance database.
pub async fn destination_state(
    ctx: &MappingContext,
    db: &str,
    dst_admin: &Session,
) -> Result<DestinationState, PgError> {
    let row = dst_admin
        .query_opt(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&db],
        )
        .await
        .map_err(q(
            dst_admin.target(),
            "looking for the destination database",
        ))?;
    let Some(row) = row else {
        return Ok(DestinationState::Missing { exists: false });
    };
    let comment: Option<String> = row.get(0);
    if comment.as_deref() == Some(database_marker(&ctx.name, db, true).as_str()) {
        return Ok(DestinationState::Ours {
            schema_applied: true,
        });
    }
    if comment.as_deref() == Some(database_marker(&ctx.name, db, false).as_str()) {
        return Ok(DestinationState::Ours {
            schema_applied: false,
        });
    }
    if let Some(other) = comment.filter(|c| c.starts_with(MARKER_PREFIX)) {
        return Ok(DestinationState::OtherMapping { marker: other });
    }
    let client = pg::session(&ctx.destination, db).await?;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
            &[],
        )
        .await
        .map_err(q(client.target(), "counting tables in the destination database"))?
        .get(0);
    Ok(if tables == 0 {
        DestinationState::Missing { exists: true }
    } else {
        DestinationState::InUse { tables }
    })
}

/// Creates (or adopts) the destination database and applies the early schema in one
/// transaction that also sets the `schema applied` marker.
pub async fn apply(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
    dst_admin: &Session,
) -> Result<(), PgError> {
    let state = destination_state(ctx, db, dst_admin).await?;
    let source_catalog = catalog::read(src).await?;
    match state {
        DestinationState::InUse { .. }
        | DestinationState::OtherMapping { .. }
        | DestinationState::Ours {
            schema_applied: true,
        } => {
            return Ok(());
        }
        DestinationState::Missing { exists: false } => {
            dst_admin
                .batch_execute(&ddl::create_database(&source_catalog.database, db))
                .await
                .map_err(q(dst_admin.target(), "creating the destination database"))?;
            tracing::info!(mapping = %ctx.name, database = db, "created the destination database");
        }
        DestinationState::Missing { exists: true } | DestinationState::Ours { .. } => {}
    }
    // The marker only moves forward: "created" is written to an unmarked database only, never
    // over "schema applied" (which another actor may have written since the look above).
    if matches!(state, DestinationState::Missing { .. }) {
        dst_admin
            .batch_execute(&ddl::comment_on_database(
                db,
                &database_marker(&ctx.name, db, false),
            ))
            .await
            .map_err(q(dst_admin.target(), "marking the destination database"))?;
    }

    let target = ctx.destination.target(db);
    let mut client = pg::connect(&ctx.destination, db).await?;
    let tx = client
        .transaction()
        .await
        .map_err(q(&target, "starting the schema transaction"))?;
    let objects = objects::read(src).await?;
    let present = roles::names(dst_admin).await?;
    let (mut statements, missing) = ddl::schema_statements(&source_catalog, &objects, &present);
    // Settings of roles in this database, and of the database itself.
    let role_catalog = roles::read(src, false).await?;
    for setting in role_catalog
        .settings
        .iter()
        .filter(|s| s.database.as_deref() == Some(db))
        .filter(|s| s.role.as_ref().is_none_or(|r| present.contains(r)))
    {
        statements.extend(
            setting.config.iter().filter_map(|entry| {
                ddl::roles::set_config(setting.role.as_deref(), Some(db), entry)
            }),
        );
    }
    if !missing.is_empty() {
        tracing::warn!(mapping = %ctx.name, database = db, roles = ?missing, "owners and grants naming roles the destination lacks were left out");
    }
    for sql in &statements {
        tx.batch_execute(sql)
            .await
            .map_err(|e| PgError::query(&target, format!("creating the schema ({sql})"), e))?;
    }
    tx.batch_execute(&ddl::comment_on_database(
        db,
        &database_marker(&ctx.name, db, true),
    ))
    .await
    .map_err(q(&target, "marking the schema applied"))?;
    tx.commit()
        .await
        .map_err(q(&target, "committing the schema"))?;
    tracing::info!(mapping = %ctx.name, database = db, statements = statements.len(), "schema applied");
    Ok(())
}
