//! Schema phase: create the destination database and its whole schema (types, tables with
//! primary keys, functions, views, triggers, rules, policies, comments, owners and grants; see
//! [`ddl::schema_statements`]) in one transaction, each object under its own savepoint, so an
//! object the destination refuses (something PostgreSQL 18 no longer has) is left out alone and
//! named in the marker, and the rest commits (see [`apply`]). Secondary indexes and foreign keys
//! come after each table's copy (phases::sync); materialized views are refreshed after the copy.
//!
//! How the tool recognises its own databases: a comment on the destination database,
//! `postgres-migrator: mapping <m>, source database <db>, <state>`, where state is `created`
//! (set right after CREATE DATABASE, or when adopting an existing database with no tables),
//! `schema applied` (set in the same transaction as the schema), or `schema applied except [...]`
//! (the same, with the objects the destination refused). A database with tables and no such comment is someone else's: preflight refuses it.

use std::collections::BTreeSet;

use crate::destination;
use crate::pg::{self, PgError, Session};

use super::{MappingContext, q};
use crate::catalog::schema as catalog;
use crate::catalog::{objects, roles};
use crate::ddl;
use crate::naming::{MARKER_PREFIX, database_marker, incomplete_marker, unapplied_in};
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
    if let Some(unapplied) = comment
        .as_deref()
        .and_then(|c| unapplied_in(c, &ctx.name, db))
    {
        return Ok(DestinationState::Incomplete { unapplied });
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

pub use crate::destination::ObjectFailure;

/// Creates (or adopts) the destination database and applies the schema in one transaction that
/// also sets the marker. Each object's statements run under a savepoint: an object the
/// destination refuses is rolled back alone and returned, the rest commits, and the marker lists
/// what is missing (`schema applied except [...]`); the next call creates only those, and leaves
/// out what `schema_exclude` names. Objects that depend on a refused one fail with it.
pub async fn apply(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
    dst_admin: &Session,
) -> Result<Vec<ObjectFailure>, PgError> {
    let state = destination_state(ctx, db, dst_admin).await?;
    let source_catalog = catalog::read(src).await?;
    let pending: Option<BTreeSet<String>> = match &state {
        DestinationState::InUse { .. }
        | DestinationState::OtherMapping { .. }
        | DestinationState::Ours {
            schema_applied: true,
        } => {
            return Ok(Vec::new());
        }
        DestinationState::Missing { exists: false } => {
            dst_admin
                .batch_execute(&ddl::create_database(&source_catalog.database, db))
                .await
                .map_err(q(dst_admin.target(), "creating the destination database"))?;
            tracing::info!(mapping = %ctx.name, database = db, "created the destination database");
            None
        }
        DestinationState::Missing { exists: true } | DestinationState::Ours { .. } => None,
        DestinationState::Incomplete { unapplied } => Some(unapplied.iter().cloned().collect()),
    };
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

    let statements = ddl::dependency_order(
        statements(ctx, db, src, dst_admin, &source_catalog).await?,
        &objects::dependencies(src).await?,
    );
    let excluded = ctx.schema_excluded(db);
    let target = ctx.destination.target(db);
    let mut client = pg::connect(&ctx.destination, db).await?;
    let tx = client
        .transaction()
        .await
        .map_err(q(&target, "starting the schema transaction"))?;
    // Function bodies may name objects created after them (as pg_dump does).
    tx.batch_execute("SET LOCAL check_function_bodies = off")
        .await
        .map_err(q(&target, "starting the schema transaction"))?;
    let todo: Vec<&ddl::Statement> = statements
        .iter()
        .filter(|s| {
            !excluded.contains(s.object.as_str())
                && pending.as_ref().is_none_or(|p| p.contains(&s.object))
        })
        .collect();
    let destination::Created {
        applied,
        retried,
        failed,
    } = destination::create(&tx, &target, todo, pending.is_some()).await?;
    for f in &failed {
        tracing::warn!(mapping = %ctx.name, database = db, object = %f.object, error = %f.error, "the destination refused a schema object; the rest of the schema goes on");
    }
    let marker = if failed.is_empty() {
        database_marker(&ctx.name, db, true)
    } else {
        let unapplied: Vec<String> = failed.iter().map(|f| f.object.clone()).collect();
        incomplete_marker(&ctx.name, db, &unapplied)
    };
    tx.batch_execute(&ddl::comment_on_database(db, &marker))
        .await
        .map_err(q(&target, "marking the schema applied"))?;
    tx.commit()
        .await
        .map_err(q(&target, "committing the schema"))?;
    tracing::info!(mapping = %ctx.name, database = db, statements = applied, retried, refused = failed.len(), excluded = excluded.len(), "schema applied");
    Ok(failed)
}

/// Every statement of the schema, each with its object: the objects, then the settings of the
/// database and of its roles in it.
async fn statements(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
    dst_admin: &Session,
    source_catalog: &crate::catalog::model::SchemaCatalog,
) -> Result<Vec<ddl::Statement>, PgError> {
    let objects = objects::read(src).await?;
    let present = roles::names(dst_admin).await?;
    let (mut statements, missing) = ddl::schema_statements(
        source_catalog,
        &objects,
        &present,
        // The fast copy builds the keys after the data, before the subscription is enabled.
        if ctx.copy.fast {
            ddl::Keys::AfterCopy
        } else {
            ddl::Keys::WithTables
        },
    );
    let role_catalog = roles::read(src, false).await?;
    for setting in role_catalog
        .settings
        .iter()
        .filter(|s| s.database.as_deref() == Some(db))
        .filter(|s| s.role.as_ref().is_none_or(|r| present.contains(r)))
    {
        for entry in &setting.config {
            let Some(sql) = ddl::roles::set_config(setting.role.as_deref(), Some(db), entry) else {
                continue;
            };
            let name = entry.split_once('=').map_or(entry.as_str(), |(n, _)| n);
            let object = match &setting.role {
                Some(role) => format!("SETTING {name} FOR ROLE {role}"),
                None => format!("SETTING {name}"),
            };
            statements.push(ddl::Statement::new(object, sql));
        }
    }
    if !missing.is_empty() {
        tracing::warn!(mapping = %ctx.name, database = db, roles = ?missing, "owners and grants naming roles the destination lacks were left out");
    }
    Ok(statements)
}
