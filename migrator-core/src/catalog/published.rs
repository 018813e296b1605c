//! The tables of a publication as a copy sees them: each leaf that holds rows, under the root the
//! subscription knows (`publish_via_partition_root`), with the columns a copy moves and whether
//! the binary format can carry them.

use crate::pg::{PgError, Session, q};

use super::model::QualifiedName;

/// PostgreSQL's first OID for user-defined objects: types below it are built in.
const FIRST_NORMAL_OBJECT_ID: u32 = 16384;

/// One leaf of a published table.
#[derive(Debug, Clone)]
pub struct PublishedTable {
    /// The published table (partition root): where rows go on the destination.
    pub root: QualifiedName,
    /// A leaf holding the rows on the source (the root itself when not partitioned).
    pub leaf: QualifiedName,
    /// Columns a copy moves (generated columns excluded), in order.
    pub columns: Vec<String>,
    /// Every column has a built-in type with binary input and output (arrays: their elements
    /// too): binary COPY is safe. Binary arrays and composites carry type OIDs, which differ
    /// between servers for user-defined types; some built-in types (`aclitem`) have no binary
    /// form.
    pub binary: bool,
    pub bytes: u64,
    pub blocks: u64,
}

/// Every table in `publication` with its leaves, copyable columns and size.
pub async fn tables(src: &Session, publication: &str) -> Result<Vec<PublishedTable>, PgError> {
    let rows = src
        .query(
            "SELECT rn.nspname::text, rc.relname::text, ln.nspname::text, lc.relname::text, \
                    pg_relation_size(lc.oid)::bigint, \
                    (pg_relation_size(lc.oid) / current_setting('block_size')::bigint)::bigint, \
                    ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = rc.oid \
                          AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
                          ORDER BY a.attnum), \
                    NOT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                          LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typlen = -1 \
                          WHERE a.attrelid = rc.oid \
                          AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
                          AND (a.atttypid >= $2 OR t.typsend = 0 OR t.typreceive = 0 \
                               OR e.typsend = 0 OR e.typreceive = 0)) \
             FROM pg_publication_tables pt \
             JOIN pg_namespace rn ON rn.nspname = pt.schemaname \
             JOIN pg_class rc ON rc.relnamespace = rn.oid AND rc.relname = pt.tablename \
             CROSS JOIN LATERAL ( \
                 SELECT t.relid FROM pg_partition_tree(rc.oid) t WHERE rc.relkind = 'p' AND t.isleaf \
                 UNION ALL SELECT rc.oid WHERE rc.relkind = 'r') leaf \
             JOIN pg_class lc ON lc.oid = leaf.relid AND lc.relkind = 'r' \
             JOIN pg_namespace ln ON ln.oid = lc.relnamespace \
             WHERE pt.pubname = $1",
            &[&publication, &FIRST_NORMAL_OBJECT_ID],
        )
        .await
        .map_err(q(src.target(), "listing the published tables"))?;
    Ok(rows
        .iter()
        .map(|r| PublishedTable {
            root: QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            leaf: QualifiedName::new(r.get::<_, String>(2), r.get::<_, String>(3)),
            bytes: r.get::<_, i64>(4).max(0) as u64,
            blocks: r.get::<_, i64>(5).max(0) as u64,
            columns: r.get(6),
            binary: r.get(7),
        })
        .collect())
}
