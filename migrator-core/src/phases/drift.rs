//! Schema drift: DDL run on the source after the schema phase. Logical replication carries no
//! DDL, so a column added on the source stops the apply worker ("logical replication target
//! relation is missing replicated columns") and a table created there never reaches the
//! destination. Every tick of a replicating database compares the source's tables and columns
//! with the destination's ([`compare`], pure); each difference is a blocking finding naming the
//! object, what changed and the statements that resolve it, so Cutover ready waits until the
//! operator has run them (the tool re-checks every tick and goes on by itself), or has let the
//! tool apply the safe part ([`resync`]: new tables and columns).

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::{MappingContext, q};
use crate::catalog::model::{Column, QualifiedName, SchemaCatalog, Table};
use crate::catalog::{roles, schema as catalog};
use crate::ddl;
use crate::ddl::column_definition;
use crate::ddl::quote::{ident, qualified};
use crate::findings::Finding;
use crate::pg::PgError;

/// One difference between the source and the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    TableAdded {
        table: QualifiedName,
    },
    TableDropped {
        table: QualifiedName,
    },
    ColumnAdded {
        table: QualifiedName,
        column: Box<Column>,
    },
    ColumnDropped {
        table: QualifiedName,
        column: String,
    },
    ColumnTypeChanged {
        table: QualifiedName,
        column: String,
        source: String,
        destination: String,
    },
}

fn by_name(catalog: &SchemaCatalog) -> BTreeMap<&QualifiedName, &Table> {
    catalog.tables.iter().map(|t| (&t.name, t)).collect()
}

/// Tables and columns that differ. Partitions compare by their parent's columns, so only
/// tables with local columns are compared column by column.
pub fn compare(source: &SchemaCatalog, destination: &SchemaCatalog) -> Vec<Drift> {
    let src = by_name(source);
    let dst = by_name(destination);
    let mut drift = Vec::new();
    for (name, table) in &src {
        let Some(theirs) = dst.get(name) else {
            drift.push(Drift::TableAdded {
                table: (*name).clone(),
            });
            continue;
        };
        let columns: BTreeMap<&str, &Column> = theirs
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        for c in &table.columns {
            match columns.get(c.name.as_str()) {
                None => drift.push(Drift::ColumnAdded {
                    table: (*name).clone(),
                    column: Box::new(c.clone()),
                }),
                Some(d) if d.data_type != c.data_type => drift.push(Drift::ColumnTypeChanged {
                    table: (*name).clone(),
                    column: c.name.clone(),
                    source: c.data_type.clone(),
                    destination: d.data_type.clone(),
                }),
                Some(_) => {}
            }
        }
        for d in &theirs.columns {
            if !table.columns.iter().any(|c| c.name == d.name) {
                drift.push(Drift::ColumnDropped {
                    table: (*name).clone(),
                    column: d.name.clone(),
                });
            }
        }
    }
    for name in dst.keys() {
        if !src.contains_key(name) {
            drift.push(Drift::TableDropped {
                table: (*name).clone(),
            });
        }
    }
    drift
}

impl Drift {
    /// What changed, for people.
    pub fn describe(&self) -> String {
        match self {
            Drift::TableAdded { table } => format!("table {table} was created on the source"),
            Drift::TableDropped { table } => format!(
                "table {table} is on the destination but no longer on the source (dropped there?)"
            ),
            Drift::ColumnAdded { table, column } => format!(
                "column {} ({}) was added to {table} on the source",
                column.name, column.data_type
            ),
            Drift::ColumnDropped { table, column } => {
                format!("column {column} was dropped from {table} on the source")
            }
            Drift::ColumnTypeChanged {
                table,
                column,
                source,
                destination,
            } => format!(
                "column {column} of {table} is {source} on the source but {destination} on the destination"
            ),
        }
    }

    /// The statement to run on the destination database, where one is safe to suggest.
    pub fn remedy(&self) -> String {
        match self {
            Drift::TableAdded { table } => format!(
                "create {} on the destination as on the source (pg_dump --schema-only --table), add it to the publication if the source's is a table list (ALTER PUBLICATION ... ADD TABLE), then ALTER SUBSCRIPTION ... REFRESH PUBLICATION copies its rows",
                qualified(table)
            ),
            Drift::TableDropped { table } => format!("DROP TABLE {}", qualified(table)),
            Drift::ColumnAdded { table, column } => format!(
                "ALTER TABLE {} ADD COLUMN {}",
                qualified(table),
                column_definition(column)
            ),
            Drift::ColumnDropped { table, column } => format!(
                "ALTER TABLE {} DROP COLUMN {}",
                qualified(table),
                ident(column)
            ),
            Drift::ColumnTypeChanged {
                table,
                column,
                source,
                ..
            } => format!(
                "ALTER TABLE {} ALTER COLUMN {} TYPE {source}",
                qualified(table),
                ident(column)
            ),
        }
    }
}

impl Drift {
    /// Whether the tool may resolve it by itself (`resync`): a new table (created on the
    /// destination and copied by refreshing the subscription), or a new column whose value on
    /// existing rows the destination computes the same way (no default, a constant default, or a
    /// generated expression). Dropped objects and type changes are left to the operator.
    pub fn is_safe(&self) -> bool {
        match self {
            Drift::TableAdded { .. } => true,
            Drift::ColumnAdded { column, .. } => {
                column.identity.is_none()
                    && column.default.as_deref().is_none_or(|d| !d.contains('('))
            }
            _ => false,
        }
    }
}

/// Resolves the safe part of database `db`'s drift ([`Drift::is_safe`]) and returns, one line
/// each, what it did and what it left to the operator. New columns are added as on the source.
/// New tables are created with their sequences, primary keys and owner, added to the publication
/// when it is a table list, and the subscription is refreshed, which copies their rows (changes
/// the apply worker skipped while the table was unknown to it are in that copy: nothing is lost).
/// Their grants, indexes and foreign keys: indexes and foreign keys are built by the next ticks;
/// grants are not copied (reported).
pub async fn resync(
    ctx: &MappingContext,
    db: &str,
    src: &Client,
    dst: &Client,
) -> Result<Vec<String>, PgError> {
    let st = format!("{} database {db:?}", ctx.source.describe());
    let dt = format!("{} database {db:?}", ctx.destination.describe());
    let source = catalog::read(src, &st).await?;
    let destination = catalog::read(dst, &dt).await?;
    let drift = compare(&source, &destination);
    let mut report = Vec::new();
    for d in drift.iter().filter(|d| d.is_safe()) {
        if let Drift::ColumnAdded { .. } = d {
            dst.batch_execute(&d.remedy())
                .await
                .map_err(|e| PgError::query(&dt, format!("resolving drift ({})", d.remedy()), e))?;
            report.push(format!(
                "{db:?}: {} -> added on the destination",
                d.describe()
            ));
        }
    }
    let added: Vec<&QualifiedName> = drift
        .iter()
        .filter_map(|d| match d {
            Drift::TableAdded { table } => Some(table),
            _ => None,
        })
        .collect();
    if !added.is_empty() {
        let new = SchemaCatalog {
            sequences: source
                .sequences
                .iter()
                .filter(|s| s.owned_by.as_ref().is_some_and(|(t, _)| added.contains(&t)))
                .cloned()
                .collect(),
            tables: source
                .tables
                .iter()
                .filter(|t| added.contains(&&t.name))
                .cloned()
                .collect(),
            ..Default::default()
        };
        let mut statements = ddl::added_tables(&new);
        let present = roles::names(dst, &dt).await?;
        for table in &added {
            let owner: Option<String> = src
                .query_one(
                    "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass($1)",
                    &[&qualified(table)],
                )
                .await
                .map_err(q(&st, "reading the owner of a new table"))?
                .get(0);
            if let Some(owner) = owner.filter(|o| present.contains(o)) {
                statements.push(format!(
                    "ALTER TABLE {} OWNER TO {}",
                    qualified(table),
                    ident(&owner)
                ));
            }
        }
        // One simple query: one implicit transaction, all or nothing.
        dst.batch_execute(&statements.join(";\n"))
            .await
            .map_err(q(&dt, "creating the tables added on the source"))?;
        let names = ctx.names(db);
        if !super::roles::is_superuser(src, &st).await? {
            let roots: Vec<String> = new
                .tables
                .iter()
                .filter(|t| t.partition_of.is_none())
                .map(|t| qualified(&t.name))
                .collect();
            if !roots.is_empty() {
                src.batch_execute(&format!(
                    "ALTER PUBLICATION {} ADD TABLE {}",
                    ident(&names.publication),
                    roots.join(", ")
                ))
                .await
                .map_err(q(&st, "adding the new tables to the publication"))?;
            }
        }
        dst.batch_execute(&format!(
            "ALTER SUBSCRIPTION {} REFRESH PUBLICATION",
            ident(&names.subscription)
        ))
        .await
        .map_err(q(&dt, "refreshing the subscription"))?;
        for table in &added {
            report.push(format!(
                "{db:?}: table {table} created on the destination and copying (grants on it are not copied: GRANT them by hand)"
            ));
        }
    }
    for d in drift.iter().filter(|d| !d.is_safe()) {
        report.push(format!(
            "{db:?}: {} -> left for you: {}",
            d.describe(),
            d.remedy()
        ));
    }
    Ok(report)
}

/// One blocking finding for all drift of a database.
pub fn finding(db: &str, drift: &[Drift]) -> Option<Finding> {
    if drift.is_empty() {
        return None;
    }
    let what: Vec<String> = drift.iter().map(Drift::describe).collect();
    let fix: Vec<String> = drift.iter().map(Drift::remedy).collect();
    Some(Finding::blocking(
        "schema_drift",
        format!(
            "the schema of {db:?} changed on the source after it was copied: {}",
            what.join("; ")
        ),
        format!(
            "{}run on the destination database {db:?}: {}; the tool checks again every tick and goes on by itself",
            if drift.iter().any(Drift::is_safe) {
                "press \"Apply safe schema changes\" on the dashboard or run `postgres-migrator resync MAPPING` (new tables and columns), or "
            } else {
                ""
            },
            fix.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ddl::tests::col as column;

    fn table(name: &str, columns: Vec<Column>) -> Table {
        Table {
            columns,
            ..crate::ddl::tests::table("app", name)
        }
    }

    fn catalog(tables: Vec<Table>) -> SchemaCatalog {
        SchemaCatalog {
            tables,
            ..Default::default()
        }
    }

    #[test]
    fn equal_schemas_have_no_drift() {
        let a = catalog(vec![table("t", vec![column("id", "bigint")])]);
        assert!(compare(&a, &a.clone()).is_empty());
        assert!(finding("db", &[]).is_none());
    }

    #[test]
    fn every_kind_of_change_is_found_with_its_remedy() {
        let mut added = column("Note \"x\"", "text");
        added.default = Some("'n/a'::text".into());
        added.not_null = true;
        let source = catalog(vec![
            table(
                "t",
                vec![column("id", "bigint"), added, column("v", "numeric")],
            ),
            table("new", vec![column("id", "int")]),
        ]);
        let destination = catalog(vec![
            table(
                "t",
                vec![
                    column("id", "bigint"),
                    column("old", "int"),
                    column("v", "integer"),
                ],
            ),
            table("gone", vec![]),
        ]);
        let drift = compare(&source, &destination);
        assert_eq!(drift.len(), 5, "{drift:?}");
        let f = finding("shop", &drift).unwrap();
        assert!(f.is_blocking());
        assert!(
            f.message
                .contains("column Note \"x\" (text) was added to app.t"),
            "{}",
            f.message
        );
        assert!(f.message.contains("table app.new was created"));
        assert!(
            f.message
                .contains("table app.gone is on the destination but no longer on the source")
        );
        assert!(f.message.contains("column old was dropped from app.t"));
        assert!(
            f.message
                .contains("column v of app.t is numeric on the source but integer")
        );
        assert!(
            f.fix.contains("ALTER TABLE \"app\".\"t\" ADD COLUMN \"Note \"\"x\"\"\" text DEFAULT 'n/a'::text NOT NULL"),
            "{}",
            f.fix
        );
        assert!(
            f.fix
                .contains("ALTER TABLE \"app\".\"t\" ALTER COLUMN \"v\" TYPE numeric")
        );
    }
}
