//! Names of what the tool creates, derived from the mapping and source database names alone, so
//! that discovery finds them again after a restart.
//!
//! A name is `pgmig_<mapping>_<slug>_<hash>`: `slug` is the database name cut to the ASCII letters
//! and digits that fit, and `hash` is 8 hex digits of SHA-256 over the mapping and exact database
//! name. Two databases whose slugs collide ("Shop", "shop", "şhop", or long names sharing a
//! prefix) still get different names, every name is at most 63 bytes of `[a-z0-9_]` (valid for
//! replication slots, which allow nothing else), and the same inputs always give the same name.

use sha2::{Digest, Sha256};

use crate::config::MAX_MAPPING_NAME_LEN;

/// Every object name the tool creates starts with this.
pub const PREFIX: &str = "pgmig_";
/// PostgreSQL's identifier limit (NAMEDATALEN - 1).
pub const MAX_NAME_LEN: usize = 63;
const HASH_LEN: usize = 8;

/// Names of the objects that carry one source database's replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationNames {
    /// Publication on the source database.
    pub publication: String,
    /// Logical replication slot on the source instance.
    pub slot: String,
    /// Subscription on the destination database.
    pub subscription: String,
}

impl ReplicationNames {
    /// The names for database `database` of mapping `mapping`. Publication, slot and
    /// subscription share one name: they live in different catalogs, and one name is easiest to
    /// find by hand.
    pub fn new(mapping: &str, database: &str) -> Self {
        let name = object_name(mapping, database);
        ReplicationNames {
            publication: name.clone(),
            slot: name.clone(),
            subscription: name,
        }
    }
}

/// `pgmig_<mapping>_<slug>_<hash>`, at most 63 bytes of `[a-z0-9_]`.
pub fn object_name(mapping: &str, database: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(mapping.as_bytes());
    hasher.update([0]);
    hasher.update(database.as_bytes());
    let digest = hasher.finalize();
    let hash: String = digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mapping: String = sanitize(mapping)
        .chars()
        .take(MAX_MAPPING_NAME_LEN)
        .collect();
    let room = MAX_NAME_LEN - PREFIX.len() - mapping.len() - HASH_LEN - 2;
    let slug: String = sanitize(database).chars().take(room).collect();
    format!("{PREFIX}{mapping}_{slug}_{hash}")
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .collect()
}

/// The start of every destination database marker ([`database_marker`]).
pub const MARKER_PREFIX: &str = "postgres-migrator: mapping ";

/// The comment that marks destination database `db` as this tool's, for mapping `mapping`, in
/// state `created` or `schema applied`.
pub fn database_marker(mapping: &str, db: &str, schema_applied: bool) -> String {
    let state = if schema_applied {
        "schema applied"
    } else {
        "created"
    };
    format!("{MARKER_PREFIX}{mapping}, source database {db:?}, {state}")
}

/// The marker of a destination database whose schema transaction committed without the objects
/// `unapplied` (each failed and is retried; see `phases::schema`).
pub fn incomplete_marker(mapping: &str, db: &str, unapplied: &[String]) -> String {
    format!(
        "{}{}",
        incomplete_prefix(mapping, db),
        serde_json::to_string(unapplied).expect("a list of strings serialises")
    )
}

/// The objects an [`incomplete_marker`] of this mapping and database lists; `None` for any other
/// comment.
pub fn unapplied_in(marker: &str, mapping: &str, db: &str) -> Option<Vec<String>> {
    let list = marker.strip_prefix(&incomplete_prefix(mapping, db))?;
    serde_json::from_str(list).ok()
}

fn incomplete_prefix(mapping: &str, db: &str) -> String {
    format!("{MARKER_PREFIX}{mapping}, source database {db:?}, schema applied except ")
}

/// The comment the tool puts on a subscription it has begun to complete.
pub const COMPLETING_MARKER: &str = "postgres-migrator: completing";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incomplete_marker_lists_its_objects_and_belongs_to_one_database() {
        let objects = vec![
            "VIEW public.v".to_owned(),
            "ROUTINE public.\"f, g\"(integer, text)".to_owned(),
        ];
        let marker = incomplete_marker("m", "shop", &objects);
        assert!(marker.starts_with(MARKER_PREFIX));
        assert_eq!(unapplied_in(&marker, "m", "shop"), Some(objects));
        assert_eq!(unapplied_in(&marker, "m", "other"), None);
        assert_eq!(unapplied_in(&marker, "n", "shop"), None);
        assert_eq!(
            unapplied_in(&database_marker("m", "shop", true), "m", "shop"),
            None
        );
    }

    #[test]
    fn markers_differ_by_state_mapping_and_database() {
        let marker = database_marker;
        assert_ne!(marker("m", "db", true), marker("m", "db", false));
        assert_ne!(marker("m", "db", true), marker("n", "db", true));
        assert_ne!(marker("m", "a\"b", true), marker("m", "a", true));
    }

    fn valid(name: &str) -> bool {
        name.len() <= MAX_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn names_are_deterministic_and_readable() {
        let a = ReplicationNames::new("prod", "shop");
        assert_eq!(a, ReplicationNames::new("prod", "shop"));
        assert!(a.slot.starts_with("pgmig_prod_shop_"), "{}", a.slot);
        assert!(valid(&a.slot));
    }

    #[test]
    fn awkward_database_names_give_valid_distinct_names() {
        let long = "x".repeat(63);
        let long2 = format!("{}y", "x".repeat(62));
        let inputs = [
            "Shop",
            "shop",
            "SHOP",
            "şhop",
            "日本語",
            "",
            "with \"quotes\" and spaces",
            "a-b",
            "a_b",
            &long,
            &long2,
        ];
        let names: Vec<String> = inputs
            .iter()
            .map(|db| object_name(&"m".repeat(MAX_MAPPING_NAME_LEN), db))
            .collect();
        for (db, name) in inputs.iter().zip(&names) {
            assert!(valid(name), "{db:?} -> {name:?} ({} bytes)", name.len());
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:#?}");
    }

    #[test]
    fn the_mapping_name_is_part_of_the_identity() {
        assert_ne!(object_name("a", "shop"), object_name("b", "shop"));
        // The separator keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(object_name("ab", "c"), object_name("a", "bc"));
    }
}
