//! Initial copy, PostgreSQL 15 -> 18: this tool's native mode (CREATE SUBSCRIPTION with
//! copy_data, deferred indexes) against a raw `COPY ... TO STDOUT | COPY ... FROM STDIN` pipe
//! (schema first, indexes after, built in parallel) and `pg_dump -Fd -j N` + `pg_restore -j N`, interleaved over
//! several rounds on the same data. Prints each method's median and its ratio to the raw pipe,
//! and writes them to docs/BENCHMARKS.md. Not a test: nothing here passes or fails.
//!
//!     BENCH_SCALE=20 BENCH_ROUNDS=3 cargo bench -p migrator-core --bench copy
//!
//! The data: `pgbench -i -s SCALE`, a wide jsonb table (20,000 x SCALE rows of ~1 KB) and a
//! partitioned table (100,000 x SCALE rows over four partitions), with secondary indexes.
//! Fast mode (issue 7) joins the table once it exists.

#[path = "../../benches/report.rs"]
mod report;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use migrator_core::config::{ConfigSource, Settings, load};
use migrator_core::orchestrator::{self, oneshot};
use migrator_core::status::TableState;
use migrator_core::testkit::{Cluster, PgBinaries, SOURCE_MAJOR};
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

const DB: &str = "bench";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn connect(cluster: &Cluster, db: &str) -> Client {
    let (client, connection) = cluster.pg_config(db).connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Runs a PostgreSQL 15 client tool (pgbench, pg_dump, pg_restore, psql) against `cluster`.
fn tool(name: &str, cluster: &Cluster, args: &[&str]) -> std::process::Output {
    let bin = PgBinaries::find(SOURCE_MAJOR).unwrap().bin_dir.join(name);
    let out = Command::new(&bin)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(args)
        .env("PGPASSWORD", cluster.password())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn build_data(source: &Cluster, scale: u64) -> i64 {
    connect(source, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {DB}"))
        .await
        .unwrap();
    tool(
        "pgbench",
        source,
        &["-i", "-q", "-s", &scale.to_string(), DB],
    );
    let client = connect(source, DB).await;
    client
        .batch_execute(&format!(
            "CREATE TABLE docs (id bigserial PRIMARY KEY, body jsonb NOT NULL);
             INSERT INTO docs (body) SELECT jsonb_build_object('kind', g % 10, 'n', g,
               'text', repeat(md5(g::text), 28)) FROM generate_series(1, {docs}) g;
             CREATE INDEX docs_kind ON docs ((body ->> 'kind'));
             CREATE TABLE measurements (id bigint NOT NULL, at date NOT NULL, value double precision,
               PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
             CREATE TABLE measurements_q1 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2026-04-01');
             CREATE TABLE measurements_q2 PARTITION OF measurements FOR VALUES FROM ('2026-04-01') TO ('2026-07-01');
             CREATE TABLE measurements_q3 PARTITION OF measurements FOR VALUES FROM ('2026-07-01') TO ('2026-10-01');
             CREATE TABLE measurements_q4 PARTITION OF measurements FOR VALUES FROM ('2026-10-01') TO ('2027-01-01');
             INSERT INTO measurements SELECT g, DATE '2026-01-01' + (g % 365), random() * 1000
               FROM generate_series(1, {measurements}) g;
             CREATE INDEX measurements_value ON measurements (value);
             ANALYZE;",
            docs = 20_000 * scale,
            measurements = 100_000 * scale
        ))
        .await
        .unwrap();
    client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .unwrap()
        .get(0)
}

/// Drops the destination database (and the subscription a native run left there).
async fn reset_destination(destination: &Cluster) {
    let admin = connect(destination, "postgres").await;
    let exists: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&DB],
        )
        .await
        .unwrap()
        .get(0);
    if exists {
        let db = connect(destination, DB).await;
        for row in db
            .query("SELECT subname FROM pg_subscription", &[])
            .await
            .unwrap()
        {
            let name: String = row.get(0);
            db.batch_execute(&format!(
                "ALTER SUBSCRIPTION \"{name}\" DISABLE; ALTER SUBSCRIPTION \"{name}\" SET (slot_name = NONE); DROP SUBSCRIPTION \"{name}\""
            ))
            .await
            .unwrap();
        }
        drop(db);
        admin
            .batch_execute(&format!("DROP DATABASE {DB} WITH (FORCE)"))
            .await
            .unwrap();
    }
}

/// The raw pipe: pre-data schema (pg_restore of a schema-only dump), every table streamed in
/// binary COPY by `workers` pairs of connections, then post-data (primary keys, indexes, foreign
/// keys) restored with `workers` jobs.
async fn raw_pipe(source: &Cluster, destination: &Cluster, workers: usize) {
    connect(destination, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {DB}"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema");
    let schema = schema.to_str().unwrap();
    let jobs = workers.to_string();
    tool(
        "pg_dump",
        source,
        &["-Fd", "--schema-only", "-f", schema, DB],
    );
    tool(
        "pg_restore",
        destination,
        &["--section", "pre-data", "-d", DB, schema],
    );
    let tables: Vec<String> = connect(source, DB)
        .await
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY c.relpages",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(tables));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let queue = queue.clone();
        let (src, dst) = (connect(source, DB).await, connect(destination, DB).await);
        tasks.push(tokio::spawn(async move {
            // Largest first (the queue pops from the end).
            while let Some(table) = queue.lock().await.pop() {
                let out = src
                    .copy_out(&format!("COPY {table} TO STDOUT (FORMAT binary)"))
                    .await
                    .unwrap();
                let sink = dst
                    .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
                    .await
                    .unwrap();
                futures_util::pin_mut!(out);
                futures_util::pin_mut!(sink);
                // `feed` buffers (one CopyData per row would otherwise mean one flush per row).
                while let Some(chunk) = out.next().await {
                    sink.feed(chunk.unwrap()).await.unwrap();
                }
                sink.finish().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    tool(
        "pg_restore",
        destination,
        &["--section", "post-data", "-j", &jobs, "-d", DB, schema],
    );
}

/// pg_dump in directory format with `jobs` jobs, then pg_restore with as many.
fn dump_restore(source: &Cluster, destination: &Cluster, jobs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    let jobs = jobs.to_string();
    tool(
        "pg_dump",
        source,
        &["-Fd", "-j", &jobs, "-f", out.to_str().unwrap(), DB],
    );
    tool(
        "pg_restore",
        destination,
        &["-C", "-j", &jobs, "-d", "postgres", out.to_str().unwrap()],
    );
}

fn settings(source: &Cluster, destination: &Cluster) -> Settings {
    let mut env: HashMap<String, String> = HashMap::new();
    for (side, cluster) in [("SOURCE", source), ("DESTINATION", destination)] {
        let prefix = format!("MIGRATOR__MAPPINGS__BENCH__{side}");
        env.insert(format!("{prefix}__HOST"), "127.0.0.1".into());
        env.insert(format!("{prefix}__PORT"), cluster.port().to_string());
        env.insert(format!("{prefix}__USER"), "postgres".into());
        env.insert(format!("{prefix}__PASSWORD"), cluster.password().into());
    }
    env.insert(
        "MIGRATOR__MAPPINGS__BENCH__DATABASES__INCLUDE".into(),
        DB.into(),
    );
    env.insert("MIGRATOR__MIGRATION__POLL_INTERVAL".into(), "200ms".into());
    env.insert(
        "MIGRATOR__MIGRATION__NO_PK_REMEDY".into(),
        "replica_identity_full".into(),
    );
    load(&ConfigSource {
        file: None,
        env: Some(env),
    })
    .unwrap()
}

/// The tool's native mode, from start until every table is copied and every deferred index and
/// constraint is built; then its replication objects are removed again.
async fn native(settings: &Settings) {
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    loop {
        status.changed().await.unwrap();
        let snapshot = status.borrow_and_update().clone();
        let done = snapshot.mapping("bench").is_some_and(|m| {
            !m.databases.is_empty()
                && m.databases.iter().all(|d| {
                    !d.tables.is_empty()
                        && d.tables.iter().all(|t| t.state == TableState::Ready)
                        && d.deferred_missing == 0
                })
        });
        if done {
            break;
        }
    }
    shutdown.cancel();
    handle.join.await.unwrap();
    oneshot::complete(settings, "bench", true).await.unwrap();
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let scale = env_number("BENCH_SCALE", 5);
    let rounds = env_number("BENCH_ROUNDS", 3) as usize;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (source, destination) = Cluster::start_pair().unwrap();
        let bytes = build_data(&source, scale).await;
        println!(
            "data: pgbench scale {scale} + docs + measurements = {:.0} MB; {rounds} rounds, {workers} workers",
            bytes as f64 / 1_048_576.0
        );
        let settings = settings(&source, &destination);
        let methods = ["raw COPY pipe", "postgres-migrator native", "pg_dump -Fd + pg_restore -j"];
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); methods.len()];
        for round in 1..=rounds {
            for (i, method) in methods.iter().enumerate() {
                reset_destination(&destination).await;
                let start = Instant::now();
                match i {
                    0 => raw_pipe(&source, &destination, workers).await,
                    1 => native(&settings).await,
                    _ => dump_restore(&source, &destination, workers),
                }
                let took = start.elapsed();
                println!("round {round}: {method}: {:.2} s", took.as_secs_f64());
                times[i].push(took);
            }
        }
        let medians: Vec<Duration> = times.into_iter().map(median).collect();
        let raw = medians[0].as_secs_f64();
        let mut section = format!(
            "## Initial copy at pgbench scale {scale} (issue 7 baseline)\n\n`BENCH_SCALE={scale} BENCH_ROUNDS={rounds} cargo bench -p migrator-core --bench copy` \
             on {} ({}): PostgreSQL 15 -> 18 test clusters on one machine (fsync off), {:.0} MB \
             (pgbench scale {scale}, a jsonb table, a partitioned table, secondary indexes), methods \
             interleaved, {workers} workers/jobs where a method has them. Time from an empty \
             destination to every table copied with its indexes.\n\n\
             | method | median | ratio to raw pipe |\n|---|---:|---:|\n",
            report::machine(),
            humantime::format_rfc3339_seconds(SystemTime::now()),
            bytes as f64 / 1_048_576.0
        );
        for (method, time) in methods.iter().zip(&medians) {
            let line = format!(
                "| {method} | {:.2} s | {:.2}x |\n",
                time.as_secs_f64(),
                time.as_secs_f64() / raw
            );
            print!("{line}");
            section.push_str(&line);
        }
        report::write_section(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
            &format!("copy-scale-{scale}"),
            &section,
        );
    });
}
