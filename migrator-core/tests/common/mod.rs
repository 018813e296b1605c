//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use migrator_core::config::{ConfigSource, Settings, load};
use migrator_core::ddl::quote::qualified;
use migrator_core::testkit::Cluster;
use tokio_postgres::Client;
use tokio_postgres::types::FromSql;

pub async fn connect(cluster: &Cluster, db: &str) -> Client {
    let (client, connection) = cluster
        .pg_config(db)
        .connect(migrator_core::testkit::tls::prefer_connector())
        .await
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"));
    tokio::spawn(connection);
    client
}

/// Settings with mappings `name -> (source, destination)` and quick clocks for tests.
pub fn settings(mappings: &[(&str, &Cluster, &Cluster)], extra: &[(&str, &str)]) -> Settings {
    load(&ConfigSource {
        file: None,
        env: Some(settings_env(mappings, extra)),
    })
    .expect("test settings are valid")
}

/// The environment [`settings`] loads.
pub fn settings_env(
    mappings: &[(&str, &Cluster, &Cluster)],
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = HashMap::new();
    for (name, source, destination) in mappings {
        env.extend(source.mapping_env(name, "source"));
        env.extend(destination.mapping_env(name, "destination"));
    }
    env.insert("MIGRATOR__MIGRATION__POLL_INTERVAL".into(), "500ms".into());
    env.insert("MIGRATOR__MIGRATION__STABLE_FOR".into(), "2s".into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    env
}

/// Polls `check` every 200 ms until it returns `Ok`, failing after `deadline` with `what` and
/// the last state `check` described.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(state) if tokio::time::Instant::now() > end => {
                panic!("timed out after {deadline:?} waiting for {what}; last state:\n{state}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// [`wait_until`] for checks with nothing to describe.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_until(what, deadline, || {
        let fut = check();
        async move { fut.await.ok_or_else(String::new) }
    })
    .await
}

/// The first two columns of every row `sql` returns on `client`.
async fn pairs<A, B, C>(client: &Client, sql: &str) -> C
where
    A: for<'a> FromSql<'a>,
    B: for<'a> FromSql<'a>,
    C: FromIterator<(A, B)>,
{
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The number `sql` returns on `client`.
async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Every user table (partitions included) of the connected database.
pub async fn tables(client: &Client) -> Vec<(String, String)> {
    pairs(
        client,
        "SELECT n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
         ORDER BY 1, 2",
    )
    .await
}

/// Row count and a digest of every row's text, in a stable order.
pub async fn table_digest(client: &Client, schema: &str, table: &str) -> (i64, String) {
    let name = qualified(&migrator_core::catalog::model::QualifiedName::new(
        schema, table,
    ));
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {name} t"
            ),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("digest of {name}: {e}"));
    (row.get(0), row.get(1))
}

/// Asserts every table of `db` has the same rows on both clusters; returns the rows compared.
pub async fn assert_same_contents(source: &Cluster, destination: &Cluster, db: &str) -> i64 {
    let src = connect(source, db).await;
    let dst = connect(destination, db).await;
    let src_tables = tables(&src).await;
    assert_eq!(src_tables, tables(&dst).await, "{db}: table lists differ");
    let mut rows = 0;
    for (schema, table) in &src_tables {
        let a = table_digest(&src, schema, table).await;
        let b = table_digest(&dst, schema, table).await;
        assert_eq!(a, b, "{db}: {schema}.{table} differs (rows, digest)");
        rows += a.0;
    }
    rows
}

/// `schema.sequence -> last_value` of every sequence of `db`.
async fn sequence_values(cluster: &Cluster, db: &str) -> HashMap<String, Option<i64>> {
    pairs(
        &connect(cluster, db).await,
        "SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences",
    )
    .await
}

/// Asserts every sequence on the destination is at or past the source's value.
pub async fn assert_sequences_ahead(source: &Cluster, destination: &Cluster, db: &str) {
    let src = sequence_values(source, db).await;
    let dst = sequence_values(destination, db).await;
    assert!(!src.is_empty() || db != migrator_core::testkit::sample::SHOP);
    for (name, value) in src {
        if let Some(v) = value {
            let d = dst.get(&name).copied().flatten();
            assert!(
                d.is_some_and(|d| d >= v),
                "{db}: sequence {name} is {d:?} on the destination, {v} on the source"
            );
        }
    }
}

/// Waits until every slot of the source has confirmed everything written so far.
pub async fn wait_until_replicated(source: &Cluster, deadline: Duration) {
    let admin = connect(source, "postgres").await;
    let target: String = admin
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    wait_for("every slot to confirm the last write", deadline, || {
        let admin = &admin;
        let target = target.clone();
        async move {
            let behind: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_replication_slots \
                     WHERE confirmed_flush_lsn < $1::text::pg_lsn",
                    &[&target],
                )
                .await
                .unwrap()
                .get(0);
            (behind == 0).then_some(())
        }
    })
    .await;
}

/// Replication leftovers on the source: (slots, publications in `dbs`).
pub async fn source_leftovers(source: &Cluster, dbs: &[&str]) -> (i64, i64) {
    let admin = connect(source, "postgres").await;
    let slots = count(&admin, "SELECT count(*) FROM pg_replication_slots").await;
    let mut publications = 0;
    for db in dbs {
        let c = connect(source, db).await;
        publications += count(&c, "SELECT count(*) FROM pg_publication").await;
    }
    (slots, publications)
}

/// `pg_dump --schema-only` (18) of `db` as a list of entries, without what differs by design:
/// the tool's own publication, the server versions in the header, the random `\restrict` keys.
/// pg_dump names a table's access method only where it changes from the entry before
/// (`SET default_table_access_method`), so each table's entry is given its own: entries then
/// compare whatever order the two dumps list them in.
pub fn dump_entries(cluster: &Cluster, db: &str) -> Vec<String> {
    let dump = cluster
        .dump_schema(db)
        .unwrap_or_else(|e| panic!("pg_dump of {db:?}: {e}"));
    let text: String = dump
        .lines()
        .filter(|l| {
            !l.starts_with("-- Dumped from")
                && !l.starts_with("-- Dumped by")
                && !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut method = String::from("heap");
    let mut entries = Vec::new();
    for entry in text.split("\n--\n-- Name: ") {
        // pg_dump writes the SET just before the header of the entry it is for: at the end of
        // the text that the split gives the entry before.
        let (lines, sets): (Vec<&str>, Vec<&str>) = entry
            .lines()
            .partition(|l| !l.starts_with("SET default_table_access_method = "));
        let entry = lines.join("\n");
        let entry = match entry.split_once('\n') {
            // A partitioned table has no access method of its own on PostgreSQL 15 and 16
            // (pg_dump writes no SET for it).
            Some((header, body))
                if (header.contains("; Type: TABLE;") && !body.contains("\nPARTITION BY "))
                    || header.contains("; Type: MATERIALIZED VIEW;") =>
            {
                format!("{header}\nSET default_table_access_method = {method};\n{body}")
            }
            _ => entry,
        };
        if let Some(set) = sets.last() {
            method = set["SET default_table_access_method = ".len()..]
                .trim_end_matches(';')
                .to_owned();
        }
        if !entry.contains(migrator_core::naming::PREFIX) {
            entries.push(entry.trim().to_owned());
        }
    }
    entries
}

/// How two schema dumps (lists of [`dump_entries`]) differ: the source's entries the
/// destination's lacks, and the other way round.
pub struct DumpDiff<'a> {
    pub missing: Vec<&'a String>,
    pub extra: Vec<&'a String>,
}

impl<'a> DumpDiff<'a> {
    pub fn new(theirs: &'a [String], ours: &'a [String]) -> Self {
        DumpDiff {
            missing: theirs.iter().filter(|e| !ours.contains(e)).collect(),
            extra: ours.iter().filter(|e| !theirs.contains(e)).collect(),
        }
    }

    /// The header line (name, type, schema, owner) of every differing entry, once each.
    pub fn headers(&self) -> Vec<&'a str> {
        let mut headers: Vec<&str> = self
            .missing
            .iter()
            .chain(self.extra.iter())
            .map(|e| e.lines().next().unwrap_or_default())
            .collect();
        headers.sort();
        headers.dedup();
        headers
    }

    /// Both sides' differing entries for which `shown` holds, for a reader.
    pub fn render(&self, shown: impl Fn(&str) -> bool) -> String {
        let side = |entries: &[&String]| {
            entries
                .iter()
                .filter(|e| shown(e))
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        format!(
            "=== only in the source's dump\n\n{}\n\n=== only in the destination's dump\n\n{}\n",
            side(&self.missing),
            side(&self.extra)
        )
    }
}

/// An application that runs `sql` (an insert) on its own connection every `every` until
/// stopped, counting the statements that returned.
pub struct Writer {
    stop: tokio_util::sync::CancellationToken,
    done: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    pub fn start(client: Client, sql: &'static str, every: Duration) -> Writer {
        let stop = tokio_util::sync::CancellationToken::new();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, done) = (stop.clone(), done.clone());
            async move {
                let mut tick = tokio::time::interval(every);
                while !stop.is_cancelled() {
                    tick.tick().await;
                    client
                        .batch_execute(sql)
                        .await
                        .unwrap_or_else(|e| panic!("the writer's {sql}: {e}"));
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        Writer { stop, done, task }
    }

    /// Statements that returned so far.
    pub fn count(&self) -> u64 {
        self.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops after the statement in flight; returns how many returned.
    pub async fn stop(self) -> u64 {
        self.stop.cancel();
        let done = self.done.clone();
        self.task.await.unwrap();
        done.load(std::sync::atomic::Ordering::Relaxed)
    }
}
