//! Which indexes and constraints exist on a destination database: what is left of the deferred
//! objects (built after the copy) is what this does not list.

use std::collections::HashSet;

use crate::pg::{PgError, Session, q};

use super::model::QualifiedName;

/// Indexes and constraints present on the destination.
#[derive(Debug, Default)]
pub struct Existing {
    indexes: HashSet<(String, String)>,
    invalid_indexes: HashSet<(String, String)>,
    constraints: HashSet<(String, String, String)>,
    validated: HashSet<(String, String, String)>,
}

impl Existing {
    /// Index `name` exists in `schema`.
    pub fn has_index(&self, schema: &str, name: &str) -> bool {
        self.indexes.contains(&(schema.to_owned(), name.to_owned()))
    }

    /// Index `name` exists in `schema` and is valid (a partitioned index some partition's index
    /// is not attached to yet is not).
    pub fn has_valid_index(&self, schema: &str, name: &str) -> bool {
        let key = (schema.to_owned(), name.to_owned());
        self.indexes.contains(&key) && !self.invalid_indexes.contains(&key)
    }

    /// Constraint `name` exists on `table`, validated or not.
    pub fn has_constraint(&self, table: &QualifiedName, name: &str) -> bool {
        self.constraints
            .contains(&(table.schema.clone(), table.name.clone(), name.to_owned()))
    }

    /// Constraint `name` exists on `table` and is validated (so an interrupted NOT VALID +
    /// VALIDATE of a foreign key is finished on the next tick).
    pub fn has_validated_constraint(&self, table: &QualifiedName, name: &str) -> bool {
        self.validated
            .contains(&(table.schema.clone(), table.name.clone(), name.to_owned()))
    }
}

/// Reads which indexes and constraints exist on the destination, and which are validated.
pub async fn existing(dst: &Session) -> Result<Existing, PgError> {
    let index_rows = dst
        .query(
            "SELECT n.nspname::text, c.relname::text, i.indisvalid FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relkind IN ('i', 'I')",
            &[],
        )
        .await
        .map_err(q(dst.target(), "listing indexes"))?;
    let key = |r: &tokio_postgres::Row| (r.get(0), r.get(1));
    let indexes = index_rows.iter().map(key).collect();
    let invalid_indexes = index_rows
        .iter()
        .filter(|r| !r.get::<_, bool>(2))
        .map(key)
        .collect();
    let constraints = dst
        .query(
            "SELECT n.nspname::text, t.relname::text, c.conname::text, c.convalidated \
             FROM pg_constraint c \
             JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace",
            &[],
        )
        .await
        .map_err(q(dst.target(), "listing constraints"))?;
    let key = |r: &tokio_postgres::Row| (r.get(0), r.get(1), r.get(2));
    Ok(Existing {
        indexes,
        invalid_indexes,
        validated: constraints
            .iter()
            .filter(|r| r.get::<_, bool>(3))
            .map(key)
            .collect(),
        constraints: constraints.iter().map(key).collect(),
    })
}
