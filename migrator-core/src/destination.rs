//! Statements on a destination database that more than one phase runs: creating schema objects
//! (the schema step, and resync of objects added on the source later), emptying the tables a
//! copy fills (the fast copy before it starts, the subscription's own copy after an
//! interrupted fast one), building a deferred object (the fast copy builds them in parallel on
//! its sessions, the catch-up ticks one at a time), and analyzing the tables that lack
//! statistics (the fast copy's sessions, or the ticks after a native copy).

use std::collections::BTreeSet;

use crate::ddl::Statement;
use crate::pg::{PgError, Session, q};

use crate::catalog::model::QualifiedName;
use crate::ddl::DeferredObject;
use crate::ddl::quote::qualified;

/// Empties the destination's copies of the tables `roots` (whatever an interrupted copy left).
/// `CASCADE`: an unlogged table's foreign key may reference one of them (logical replication
/// never fills an unlogged table, so it holds nothing of the source's), and PostgreSQL refuses
/// to empty a referenced table alone.
pub async fn truncate(dst: &Session, mut roots: Vec<&QualifiedName>) -> Result<(), PgError> {
    roots.sort();
    roots.dedup();
    if roots.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = roots.into_iter().map(qualified).collect();
    dst.batch_execute(&format!("TRUNCATE {} CASCADE", list.join(", ")))
        .await
        .map_err(q(
            dst.target(),
            "emptying the destination tables before the copy",
        ))
}

/// Tables and populated materialized views of the destination that no ANALYZE has seen since
/// they were filled (by the tool or by autovacuum), partitioned tables first (their ANALYZE
/// covers their partitions too). Without statistics the destination's planner guesses, and the
/// application's first queries after the cutover can take the wrong plans; autovacuum never
/// analyzes a partitioned table, nor a table that changes little. Only tables the tool may
/// analyze (MAINTAIN: it owns them, is a superuser or a member of pg_maintain) count: ANALYZE
/// skips the others with a warning, and they would be waited for forever. So does a
/// partitioned table without partitions (ANALYZE of it records nothing).
pub async fn tables_to_analyze(dst: &Session) -> Result<Vec<QualifiedName>, PgError> {
    Ok(dst
        .query(
            "SELECT s.schemaname::text, s.relname::text FROM pg_stat_user_tables s \
             JOIN pg_class c ON c.oid = s.relid \
             WHERE s.last_analyze IS NULL AND s.last_autoanalyze IS NULL \
               AND has_table_privilege(c.oid, 'MAINTAIN') \
               AND (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated) \
                    OR (c.relkind = 'p' AND EXISTS (SELECT 1 FROM pg_partition_tree(c.oid) t \
                                                    WHERE t.isleaf AND t.relid <> c.oid))) \
             ORDER BY c.relkind <> 'p', c.relpages DESC, c.oid",
            &[],
        )
        .await
        .map_err(q(dst.target(), "listing tables without statistics"))?
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}

/// `ANALYZE` of one table on the destination.
pub async fn analyze(dst: &Session, table: &QualifiedName) -> Result<(), PgError> {
    dst.batch_execute(&format!("ANALYZE {}", qualified(table)))
        .await
        .map_err(|e| PgError::query(dst.target(), format!("analyzing {table}"), e))
}

/// Runs a deferred object's statements. A NOT VALID foreign key left by a crash is validated,
/// not added again.
pub async fn build(dst: &Session, object: &DeferredObject) -> Result<Built, PgError> {
    for (i, sql) in object.statements.iter().enumerate() {
        match dst.batch_execute(sql).await {
            Ok(()) => {}
            // 40P01 deadlock_detected: a foreign key locks both of its tables while the apply
            // worker writes to them in its own order; one of the two is cancelled. Nothing is
            // wrong, so try again next tick instead of reporting an error.
            Err(e) if e.code().is_some_and(|c| c.code() == "40P01") => {
                return Ok(Built::Postponed);
            }
            // 42710 duplicate_object / 42P07 duplicate_table: an earlier attempt got this far.
            Err(e)
                if i == 0
                    && object.statements.len() > 1
                    && e.code()
                        .is_some_and(|c| c.code() == "42710" || c.code() == "42P07") => {}
            Err(e) => {
                return Err(PgError::query(
                    dst.target(),
                    format!("building {} on {}", object.name, object.table),
                    e,
                ));
            }
        }
    }
    Ok(Built::Done)
}

/// What [`build`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    Done,
    /// Lost a deadlock against the apply worker; built on a later tick.
    Postponed,
}

/// A schema object the destination refused, and the server's error (its message, not the
/// statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFailure {
    /// Named as [`Statement::object`] names it.
    pub object: String,
    pub error: String,
}

/// Runs `todo` (statements of schema objects, in creation order: see
/// [`crate::ddl::dependency_order`]) in transaction `tx`, each under a savepoint; returns how
/// many succeeded and the objects the destination refused (rolled back alone, each with its
/// first error). `again`: the objects were tried by an earlier run, so
/// "already exists" counts as done.
///
/// Creation goes in groups (types, functions, tables, views, ...); an object that needs one
/// of a later group fails, and is run again once a pass has created something, until a pass
/// creates nothing. Then views among the failures get a placeholder (their columns, no
/// dependencies), which breaks a cycle (a view calling a function whose body reads the view),
/// as pg_dump does, and the passes go on.
pub async fn create(
    tx: &tokio_postgres::Transaction<'_>,
    target: &str,
    mut todo: Vec<&Statement>,
    again: bool,
) -> Result<Created, PgError> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut applied = 0usize;
    let mut retried = 0usize;
    let mut pass = 0usize;
    // Views whose placeholder did not help (their own definition fails): never stood in for
    // again, or a placeholder would pass for the view, and views over it would be built on it.
    let mut no_placeholder: BTreeSet<&str> = BTreeSet::new();
    // The state before the placeholders were placed (inside savepoint `schema_cycle`).
    let mut checkpoint: Option<(Vec<&Statement>, usize, Vec<ObjectFailure>)> = None;
    let failed = loop {
        let mut failed: Vec<ObjectFailure> = Vec::new();
        let mut left = Vec::new();
        let before = applied;
        for statement in todo {
            let object = statement.object.as_str();
            if failed.iter().any(|f| f.object == object) {
                left.push(statement);
                continue;
            }
            let sql = if placed.contains(object) {
                statement.replacing()
            } else {
                statement.sql.clone()
            };
            match guarded(tx, target, object, &sql, again).await? {
                None if pass > 0 => {
                    applied += 1;
                    retried += 1;
                }
                None => applied += 1,
                Some(error) => {
                    failed.push(ObjectFailure {
                        object: object.to_owned(),
                        error,
                    });
                    left.push(statement);
                }
            }
        }
        todo = left;
        pass += 1;
        if failed.is_empty() {
            break failed;
        }
        if applied > before {
            continue;
        }
        // Stuck. If placeholders were placed and one of their views still fails, undo
        // everything since, and try again without those.
        if let Some((saved_todo, saved_applied, saved_failed)) = checkpoint.take() {
            let still: Vec<&str> = placed
                .iter()
                .copied()
                .filter(|o| failed.iter().any(|f| f.object == *o))
                .collect();
            if still.is_empty() {
                break failed;
            }
            tx.batch_execute("ROLLBACK TO SAVEPOINT schema_cycle; RELEASE SAVEPOINT schema_cycle")
                .await
                .map_err(q(target, "undoing placeholder views"))?;
            no_placeholder.extend(still);
            placed.clear();
            todo = saved_todo;
            applied = saved_applied;
            failed = saved_failed;
        }
        let candidates: Vec<&Statement> = todo
            .iter()
            .copied()
            .filter(|s| s.placeholder.is_some() && !no_placeholder.contains(s.object.as_str()))
            .collect();
        if candidates.is_empty() {
            break failed;
        }
        tx.batch_execute("SAVEPOINT schema_cycle")
            .await
            .map_err(q(target, "placing placeholder views"))?;
        checkpoint = Some((todo.clone(), applied, failed));
        for statement in candidates {
            let object = statement.object.as_str();
            let create = statement.placeholder.as_deref().unwrap_or_default();
            if guarded(tx, target, object, create, false).await?.is_none() {
                placed.insert(object);
            }
        }
    };
    Ok(Created {
        applied,
        retried,
        failed,
    })
}

/// What [`create`] did.
#[derive(Debug)]
pub struct Created {
    /// Statements that succeeded.
    pub applied: usize,
    /// Of those, the ones that failed first and succeeded in a later pass (what the dependency
    /// order did not put after what they need).
    pub retried: usize,
    /// The objects the destination refused.
    pub failed: Vec<ObjectFailure>,
}

/// SQLSTATEs of "already exists": duplicate_table, duplicate_object, duplicate_function,
/// duplicate_schema.
const ALREADY_EXISTS: [&str; 4] = ["42P07", "42710", "42723", "42P06"];

/// Runs `sql` (one statement of `object`) under a savepoint: `None` when it succeeded, the
/// server's message when the destination refused it (rolled back alone). A connection that broke
/// is an error: nothing was refused. When `again` (the objects an earlier run left out are run
/// once more), "already exists" counts as done: the earlier run created that part of the object
/// before another part failed.
async fn guarded(
    tx: &tokio_postgres::Transaction<'_>,
    target: &str,
    object: &str,
    sql: &str,
    again: bool,
) -> Result<Option<String>, PgError> {
    // The savepoint goes first, on its own: a statement the server cannot even parse fails as
    // a whole batch, and would leave nothing to roll back to.
    tx.batch_execute("SAVEPOINT schema_object")
        .await
        .map_err(q(target, "placing a savepoint"))?;
    let Err(e) = tx
        .batch_execute(&format!("{sql}; RELEASE SAVEPOINT schema_object"))
        .await
    else {
        return Ok(None);
    };
    let exists = e.code().is_some_and(|c| ALREADY_EXISTS.contains(&c.code()));
    let missing_library = e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_FILE)
        || e.as_db_error().is_some_and(|d| {
            d.message().starts_with("could not load library")
                || d.message().starts_with("incompatible library")
        });
    let error = PgError::query(target, format!("creating {object}"), e);
    if error.is_transient() {
        return Err(error);
    }
    // Rolled back and released: a savepoint left standing would be where the next refusal
    // rolls back to, undoing everything created since.
    tx.batch_execute("ROLLBACK TO SAVEPOINT schema_object; RELEASE SAVEPOINT schema_object")
        .await
        .map_err(q(target, "rolling back a refused schema object"))?;
    if again && exists {
        return Ok(None);
    }
    match error {
        // A C function whose shared library the destination server does not have (or has
        // built for another major version).
        PgError::Query { message, .. } if missing_library => Ok(Some(format!(
            "{message} (the destination server lacks this shared library: install the package \
             that provides it, built for the destination's major version, on the destination \
             server, or leave the object out)"
        ))),
        PgError::Query { message, .. } => Ok(Some(message)),
        other => Err(other),
    }
}
