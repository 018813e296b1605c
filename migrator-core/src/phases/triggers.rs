//! Triggers that would fire twice: those set to `ENABLE REPLICA` or `ENABLE ALWAYS` on the
//! source fire in the destination's apply worker too, so the schema phase creates them disabled
//! (see `ddl::objects`). Every tick reports them with the statements that give them back their
//! source state, to run at cutover.

use crate::pg::{PgError, Session};

use super::q;
use crate::catalog::model::QualifiedName;
use crate::catalog::objects::Trigger;
use crate::ddl::objects::trigger_state;
use crate::findings::{Code, Finding};

/// A warning naming the held-back triggers of database `db` and how to enable them, if any.
pub async fn held_back(src: &Session, db: &str) -> Result<Option<Finding>, PgError> {
    let triggers: Vec<Trigger> = src
        .query(
            "SELECT n.nspname::text, c.relname::text, t.tgname::text, t.tgenabled::text, \
               p.tgenabled::text FROM pg_trigger t \
             JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_trigger p ON p.oid = t.tgparentid \
             WHERE NOT t.tgisinternal \
               AND ((t.tgparentid = 0 AND t.tgenabled IN ('R', 'A')) \
                    OR (t.tgenabled <> p.tgenabled AND (t.tgenabled IN ('R', 'A') OR p.tgenabled IN ('R', 'A')))) \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
             ORDER BY t.tgparentid <> 0, 1, 2, 3",
            &[],
        )
        .await
        .map_err(q(src.target(), "listing triggers that fire during replication"))?
        .iter()
        .map(|r| Trigger {
            table: QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            name: r.get(2),
            sql: String::new(),
            enabled: r.get::<_, String>(3).chars().next().unwrap_or('O'),
            parent_enabled: r
                .get::<_, Option<String>>(4)
                .and_then(|e| e.chars().next()),
        })
        .collect();
    if triggers.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = triggers
        .iter()
        .map(|t| format!("{} on {}", t.name, t.table))
        .collect();
    let statements: Vec<String> = triggers.iter().filter_map(trigger_state).collect();
    Ok(Some(Finding::warning(
        Code::TriggersHeldBack,
        format!(
            "triggers {} in {db:?} fire during replication (ENABLE REPLICA/ALWAYS on the source), so they are disabled on the destination until cutover; otherwise they would act twice",
            names.join(", ")
        ),
        format!(
            "at cutover, after Mark complete, run on the destination database {db:?}: {}",
            statements.join("; ")
        ),
    )))
}
