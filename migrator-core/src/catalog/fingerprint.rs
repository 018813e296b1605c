//! A cheap fingerprint of a database's catalogs, so that a tick reads the whole schema (tables,
//! indexes, constraints, object signatures: most of a tick's time with hundreds of tables) only
//! when DDL has changed something since the last read.
//!
//! Every row version PostgreSQL writes carries the `xmin` of its transaction, so per catalog
//! the row count and the sum of the rows' `xmin` change with every insert, update or delete:
//! every `CREATE`, `ALTER`, `DROP`, `GRANT` and `COMMENT`. The statistics VACUUM and ANALYZE
//! keep in `pg_class` are updated in place (same `xmin`) and leave it alone. A false alarm (a
//! temporary table an application creates) costs one full read, never a missed change.

use crate::pg::{PgError, Session, q};

/// Catalogs of a database that DDL writes and that the schema readers and object signatures
/// read (`pg_depend` is left out: whatever adds a dependency writes one of these too). All
/// readable without superuser rights.
const CATALOGS: [&str; 46] = [
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_attrdef",
    "pg_constraint",
    "pg_index",
    "pg_inherits",
    "pg_partitioned_table",
    "pg_type",
    "pg_enum",
    "pg_range",
    "pg_proc",
    "pg_aggregate",
    "pg_language",
    "pg_rewrite",
    "pg_trigger",
    "pg_event_trigger",
    "pg_policy",
    "pg_sequence",
    "pg_description",
    "pg_seclabel",
    "pg_collation",
    "pg_conversion",
    "pg_operator",
    "pg_opclass",
    "pg_opfamily",
    "pg_amop",
    "pg_amproc",
    "pg_am",
    "pg_cast",
    "pg_transform",
    "pg_ts_config",
    "pg_ts_config_map",
    "pg_ts_dict",
    "pg_ts_parser",
    "pg_ts_template",
    "pg_extension",
    "pg_foreign_data_wrapper",
    "pg_foreign_server",
    "pg_foreign_table",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_default_acl",
    "pg_init_privs",
];

/// The statement: one `count:sum(xmin)` per catalog, plus index validity (set by
/// `CREATE INDEX CONCURRENTLY` and partition attachment) and the role names objects print with
/// (a role renamed changes every owner and grant it appears in), hashed into one text.
fn statement() -> String {
    let mut parts: Vec<String> = CATALOGS
        .iter()
        .map(|catalog| {
            format!(
                "SELECT count(*)::text || ':' || coalesce(sum(xmin::text::bigint), 0)::text \
                 FROM pg_catalog.\"{catalog}\""
            )
        })
        .collect();
    parts.push(
        "SELECT count(*) FILTER (WHERE indisvalid)::text || ':' \
         || count(*) FILTER (WHERE indisready)::text FROM pg_catalog.pg_index"
            .to_owned(),
    );
    parts.push(
        "SELECT count(*)::text || ':' || coalesce(sum(hashtext(rolname)::bigint), 0)::text \
         FROM pg_catalog.pg_roles"
            .to_owned(),
    );
    let numbered: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| part.replacen("SELECT ", &format!("SELECT {i}, "), 1))
        .collect();
    format!(
        "SELECT md5(string_agg(f, ',' ORDER BY n)) FROM ({}) AS catalogs(n, f)",
        numbered.join(" UNION ALL ")
    )
}

/// The fingerprint of the catalogs of the database `client` is connected to: equal between two
/// reads when no DDL committed in between.
pub async fn read(client: &Session) -> Result<String, PgError> {
    let row = client
        .query_one(statement().as_str(), &[])
        .await
        .map_err(q(client.target(), "reading the catalogs' fingerprint"))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_is_summed_once_and_quoted() {
        // Constants written into the statement: plain lower-case names, quoted there.
        assert!(
            CATALOGS
                .iter()
                .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        let sql = statement();
        for catalog in CATALOGS {
            assert_eq!(
                sql.matches(&format!("FROM pg_catalog.\"{catalog}\""))
                    .count(),
                1,
                "{catalog}"
            );
        }
        let unique: std::collections::BTreeSet<&str> = CATALOGS.into_iter().collect();
        assert_eq!(unique.len(), CATALOGS.len());
    }
}
