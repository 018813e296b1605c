//! Cutover instructions for one mapping, generated from its databases and object names.

use std::fmt::Write as _;

use super::MappingContext;
use crate::catalog::pooler::{PoolerDatabase, aliases_of};
use crate::ddl::quote::{ident, literal};

/// Step-by-step cutover instructions for `ctx`'s mapping and its source databases `databases`.
/// `pooler`: what the mapping's PgBouncer console said (`None` when it has none, or it could not
/// be read: then its entries are taken to be named as the databases).
pub fn instructions(
    ctx: &MappingContext,
    databases: &[String],
    pooler: Option<&[PoolerDatabase]>,
) -> String {
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
    let console = ctx.pooler.as_ref().map(|p| p.describe());
    let entries: Vec<(String, String)> = match (&console, pooler) {
        (None, _) => Vec::new(),
        (Some(_), Some(read)) => databases
            .iter()
            .flat_map(|db| {
                aliases_of(read, db)
                    .into_iter()
                    .map(move |e| (e.alias.clone(), db.clone()))
            })
            .collect(),
        (Some(_), None) => databases
            .iter()
            .map(|db| (db.clone(), db.clone()))
            .collect(),
    };
    if let Some(console) = &console {
        let _ = writeln!(
            text,
            "The applications reach the source through PgBouncer; its console is {console}.{}",
            if pooler.is_none() {
                " It could not be read just now: its entries are taken to be named as the databases; check with SHOW DATABASES."
            } else {
                ""
            }
        );
        let clients: u64 = pooler
            .unwrap_or_default()
            .iter()
            .filter(|e| databases.contains(&e.database))
            .map(|e| e.clients)
            .sum();
        if pooler.is_some() {
            let _ = writeln!(
                text,
                "It holds {clients} client connection(s) to these databases now."
            );
        }
        let _ = writeln!(text);
    }
    if console.is_some() {
        let mut pause = String::new();
        for (alias, db) in &entries {
            let _ = write!(pause, "\n     PAUSE {};   -- database {db:?}", ident(alias));
        }
        if entries.is_empty() {
            pause.push_str("\n     (no entry of the pooler serves these databases: their clients do not go through it)");
        }
        let _ = writeln!(
            text,
            "2. Stop writes to the source. On the PgBouncer console:{pause}\n   PAUSE waits for each server connection's transaction to end, then holds the clients'\n   new queries in PgBouncer: they wait (up to its query_wait_timeout, 120 s by default:\n   finish steps 3 to 7 within it, or raise it first) instead of failing. Clients that do not\n   go through PgBouncer must be stopped as well; to enforce it, on the source for each database:\n     ALTER DATABASE <db> SET default_transaction_read_only = on;"
        );
    } else {
        let _ = writeln!(
            text,
            "2. Stop writes to the source: stop the applications (or put them in maintenance mode).\n   To enforce it, on the source for each database:\n     ALTER DATABASE <db> SET default_transaction_read_only = on;\n   and end the sessions that remain (the replication connections are not affected):\n     SELECT pg_terminate_backend(pid) FROM pg_stat_activity\n      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()\n        AND datname IN (<the databases above>);"
        );
    }
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
    if console.is_some() && !entries.is_empty() {
        let server = ctx
            .destination
            .endpoints()
            .into_iter()
            .next()
            .unwrap_or_default();
        let (host, port) = server.rsplit_once(':').unwrap_or((&server, "5432"));
        let mut resume = String::new();
        for (alias, _) in &entries {
            let _ = write!(resume, "\n     RESUME {};", ident(alias));
        }
        let _ = writeln!(
            text,
            "7. Repoint the pooler at the destination ({destination}): in pgbouncer.ini [databases],\n   give each entry above host={host} port={port} (its dbname stays), then on the console:\n     RELOAD;{resume}\n   The held queries then run on the destination. Repoint clients that bypass PgBouncer too.\n   Keep the source read-only until you are sure; it is your way back."
        );
    } else {
        let _ = writeln!(
            text,
            "7. Repoint clients at the destination ({destination}): connection strings, DNS or the\n   pooler's configuration. Then allow writes there. Keep the source read-only until you\n   are sure; it is your way back."
        );
    }
    text
}
