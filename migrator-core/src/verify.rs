//! Proof that nothing was lost: every table's row count and a digest of its rows, on both sides.
//!
//! The digest is md5 over the text of every row, sorted by that text, so it does not depend on
//! physical order. It reads whole tables: run it after writes have stopped (cutover) or accept
//! that a busy table differs by what arrived in between.

use crate::pg::{PgError, Session, q};

use crate::catalog::model::QualifiedName;
use crate::ddl::quote::qualified;

/// One table compared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableComparison {
    pub table: String,
    pub source_rows: i64,
    pub destination_rows: Option<i64>,
    pub equal: bool,
}

/// Every user table (partitions, not their parents) of the connected database.
async fn tables(client: &Session) -> Result<Vec<QualifiedName>, PgError> {
    Ok(client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND c.relpersistence = 'p' \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(q(client.target(), "listing tables"))?
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}

async fn digest(client: &Session, table: &QualifiedName) -> Result<(i64, String), PgError> {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {} t",
                qualified(table)
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "reading a table for comparison"))?;
    Ok((row.get(0), row.get(1)))
}

/// Compares every table of the source database with the destination's copy.
pub async fn compare_database(
    src: &Session,
    dst: &Session,
) -> Result<Vec<TableComparison>, PgError> {
    let destination_tables = tables(dst).await?;
    let mut result = Vec::new();
    for table in tables(src).await? {
        let (source_rows, source_digest) = digest(src, &table).await?;
        let (destination_rows, equal) = if destination_tables.contains(&table) {
            let (rows, d) = digest(dst, &table).await?;
            (Some(rows), rows == source_rows && d == source_digest)
        } else {
            (None, false)
        };
        result.push(TableComparison {
            table: table.to_string(),
            source_rows,
            destination_rows,
            equal,
        });
    }
    Ok(result)
}
