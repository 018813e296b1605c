//! Cutover instructions for one mapping, generated from its databases and object names.

use std::fmt::Write as _;

use super::MappingContext;
use crate::ddl::quote::literal;

/// Step-by-step cutover instructions for `ctx`'s mapping and its source databases `databases`.
pub fn instructions(ctx: &MappingContext, databases: &[String]) -> String {
    let source = ctx.source.describe();
    let destination = ctx.destination.describe();
    let slots: Vec<String> = databases
        .iter()
        .map(|db| literal(&ctx.names(db).slot))
        .collect();
    let slot_list = if slots.is_empty() {
        "''".to_owned()
    } else {
        slots.join(", ")
    };
    let db_list: Vec<String> = databases.iter().map(|db| format!("{db:?}")).collect();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Cutover of mapping {} ({source} -> {destination})",
        ctx.name
    );
    let _ = writeln!(text, "Databases: {}", db_list.join(", "));
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "1. Check it is ready: the dashboard shows {name} with a green CUTOVER READY light\n   (`postgres-migrator run` also logs every database as `cutover ready`, and\n   `postgres-migrator status` shows each with `(cutover conditions met)`).",
        name = ctx.name
    );
    let _ = writeln!(
        text,
        "2. Stop writes to the source: stop the applications (or put them in maintenance mode).\n   To enforce it, on the source for each database:\n     ALTER DATABASE <db> SET default_transaction_read_only = on;\n   and end the sessions that remain (the replication connections are not affected):\n     SELECT pg_terminate_backend(pid) FROM pg_stat_activity\n      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()\n        AND datname IN (<the databases above>);"
    );
    let _ = writeln!(
        text,
        "3. Wait for zero lag. On the source, every row must show 0:\n     SELECT slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) AS lag_bytes\n       FROM pg_replication_slots WHERE slot_name IN ({slot_list});\n   (`postgres-migrator status` shows the same figure as lag.)\n   Then prove the data arrived: the mapping's Verify button (exact), or\n     postgres-migrator verify {name} --exact\n   compares every table on both sides range by range and must end with exit code 0\n   (\"every table equal\"). verify_before_complete = \"require\" makes step 4 do it.",
        name = ctx.name
    );
    let _ = writeln!(
        text,
        "4. Final sequence sync, then detach: press \"Mark complete\" on the dashboard, or run\n     postgres-migrator complete {name}\n   It copies every sequence value (plus sequence_margin = {margin}) to the destination, disables\n   the subscriptions, drops the slots and publications on the source, then detaches the\n   subscriptions. If it is interrupted the database shows \"completing\" and the tool finishes it.\n   From here on, changes on the source no longer reach the destination.",
        name = ctx.name,
        margin = ctx.sequence_margin
    );
    let _ = writeln!(
        text,
        "5. Check: `postgres-migrator status` shows every database of {name} `completed`.",
        name = ctx.name
    );
    let _ = writeln!(
        text,
        "6. Give the destination what replication does not carry: run the statements of any\n   `triggers_held_back` finding (triggers set to ENABLE ALWAYS/REPLICA on the source are\n   disabled on the destination so they do not fire twice during replication), refresh\n   materialized views whose data must be current (REFRESH MATERIALIZED VIEW ...; they were\n   filled once after the initial copy), and set the passwords a `role_needs_password` or\n   `role_fallback_password` finding names."
    );
    let _ = writeln!(
        text,
        "7. Repoint clients at the destination ({destination}): connection strings, DNS or the\n   pooler's configuration. Then allow writes there. Keep the source read-only until you\n   are sure; it is your way back."
    );
    text
}
