//! Initial sync: per-table progress from pg_subscription_rel and pg_stat_progress_copy, and the
//! objects deferred until a table's copy is done (secondary indexes, unique and foreign key
//! constraints).

use std::collections::{HashMap, HashSet};

use crate::pg::{PgError, Session};

use super::q;
use crate::catalog::deferred::Existing;
use crate::catalog::model::{QualifiedName, SchemaCatalog};
use crate::ddl::DeferredObject;
use crate::ddl::quote::qualified;
use crate::status::{TableState, TableStatus};

/// The subscription's tables with their state and copy progress (destination side), sized
/// against the source (`src_sizes`, whole partition trees).
pub async fn tables(
    dst: &Session,
    subscription: &str,
    src_sizes: &HashMap<QualifiedName, u64>,
) -> Result<Vec<TableStatus>, PgError> {
    let rows = dst
        .query(
            "SELECT n.nspname::text, c.relname::text, sr.srsubstate, \
               coalesce((SELECT sum(p.bytes_processed) FROM pg_stat_progress_copy p \
                         WHERE p.relid = c.oid \
                            OR p.relid IN (SELECT relid FROM pg_partition_tree(c.oid))), 0)::bigint \
             FROM pg_subscription s JOIN pg_subscription_rel sr ON sr.srsubid = s.oid \
             JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE s.subname = $1 ORDER BY 1, 2",
            &[&subscription],
        )
        .await
        .map_err(q(dst.target(), "reading the subscription's table states"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let name = QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1));
            let state = TableState::from_code(r.get(2));
            let total = src_sizes.get(&name).copied().unwrap_or(0);
            let copied = match state {
                TableState::Init => 0,
                TableState::Copying => (r.get::<_, i64>(3).max(0) as u64).min(total),
                _ => total,
            };
            TableStatus {
                schema: name.schema,
                table: name.name,
                state,
                bytes_copied: copied,
                bytes_total: total,
            }
        })
        .collect())
}

/// Size of every published table on the source; a partitioned table counts its partitions
/// (`pg_partition_tree` lists nothing for an ordinary table, hence the CASE).
pub async fn source_sizes(src: &Session) -> Result<HashMap<QualifiedName, u64>, PgError> {
    Ok(src
        .query(
            "SELECT n.nspname::text, c.relname::text, \
               CASE WHEN c.relkind = 'p' \
                    THEN (SELECT coalesce(sum(pg_table_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t) \
                    ELSE pg_table_size(c.oid) END::bigint \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
            &[],
        )
        .await
        .map_err(q(src.target(), "measuring tables"))?
        .iter()
        .map(|r| {
            (
                QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                r.get::<_, i64>(2).max(0) as u64,
            )
        })
        .collect())
}

/// Materialized views populated on the source but not yet on the destination (they are created
/// `WITH NO DATA`; refreshed once the tables are copied), in creation order.
pub async fn matviews_to_refresh(
    src: &Session,
    dst: &Session,
) -> Result<Vec<QualifiedName>, PgError> {
    const MATVIEWS: &str = "SELECT n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND c.relispopulated = $1 \
         ORDER BY c.oid";
    let unpopulated: Vec<(String, String)> = dst
        .query(MATVIEWS, &[&false])
        .await
        .map_err(q(dst.target(), "listing materialized views"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if unpopulated.is_empty() {
        return Ok(Vec::new());
    }
    Ok(src
        .query(MATVIEWS, &[&true])
        .await
        .map_err(q(src.target(), "listing materialized views"))?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .filter(|name| unpopulated.contains(name))
        .map(|(schema, name)| QualifiedName::new(schema, name))
        .collect())
}

/// `REFRESH MATERIALIZED VIEW` on the destination.
pub async fn refresh(dst: &Session, view: &QualifiedName) -> Result<(), PgError> {
    dst.batch_execute(&format!("REFRESH MATERIALIZED VIEW {}", qualified(view)))
        .await
        .map_err(|e| {
            PgError::query(
                dst.target(),
                format!("refreshing materialized view {view}"),
                e,
            )
        })
}

/// Deferred objects still missing whose tables are copied and ready: the ones to build now.
/// A foreign key also waits for the table it references.
pub fn buildable<'a>(
    catalog: &SchemaCatalog,
    objects: &'a [DeferredObject],
    existing: &Existing,
    ready: &HashSet<QualifiedName>,
) -> Vec<&'a DeferredObject> {
    objects
        .iter()
        .filter(|o| !o.exists_in(existing))
        .filter(|o| ready.contains(&catalog.root_of(&o.table)))
        .collect()
}
