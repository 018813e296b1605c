//! Shared by the benches that migrate the copy bench's data: its database, the client tools,
//! the settings of mapping `bench`, and this process's memory.

use std::collections::HashMap;
use std::process::Command;

use migrator_core::config::{ConfigSource, Settings, load};
use migrator_core::ddl::quote::ident;
use migrator_core::status::{Snapshot, TableState};
use migrator_core::testkit::{Cluster, ClusterOptions, PgBinaries, SOURCE_MAJOR};
use tokio_postgres::{Client, NoTls};

pub const DB: &str = "bench";

pub async fn connect(cluster: &Cluster, db: &str) -> Client {
    let (client, connection) = cluster.pg_config(db).connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Runs a PostgreSQL 15 client tool (pgbench, pg_dump, pg_restore, psql) against `cluster`.
pub fn tool(name: &str, cluster: &Cluster, args: &[&str]) -> std::process::Output {
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

pub async fn build_data(source: &Cluster, scale: u64) -> i64 {
    connect(source, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {}", ident(DB)))
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
             CREATE INDEX measurements_value ON measurements (value);",
            docs = 20_000 * scale,
            measurements = 100_000 * scale
        ))
        .await
        .unwrap();
    // Hint bits and the visibility map set now, and written out: otherwise the first method to
    // read the tables pays for writing every page again. (VACUUM runs alone, outside a
    // multi-statement query.)
    for sql in ["VACUUM ANALYZE", "CHECKPOINT"] {
        client.batch_execute(sql).await.unwrap();
    }
    client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .unwrap()
        .get(0)
}

pub fn settings(source: &Cluster, destination: &Cluster, extra: &[(&str, String)]) -> Settings {
    let mut env: HashMap<String, String> = HashMap::new();
    env.extend(source.mapping_env("bench", "source"));
    env.extend(destination.mapping_env("bench", "destination"));
    env.insert(
        "MIGRATOR__MAPPINGS__BENCH__DATABASES__INCLUDE".into(),
        DB.into(),
    );
    env.insert("MIGRATOR__MIGRATION__POLL_INTERVAL".into(), "200ms".into());
    // Cutover ready as soon as every condition holds: the bench times the work, not the wait.
    env.insert("MIGRATOR__MIGRATION__STABLE_FOR".into(), "0s".into());
    env.insert(
        "MIGRATOR__MIGRATION__NO_PK_REMEDY".into(),
        "replica_identity_full".into(),
    );
    for (key, value) in extra {
        env.insert((*key).to_owned(), value.clone());
    }
    // Settings to try (MIGRATOR__MIGRATION__COPY_CHUNK_MB=0, ...) pass through from the shell.
    for (key, value) in std::env::vars().filter(|(k, _)| k.starts_with("MIGRATOR__MIGRATION__")) {
        env.entry(key).or_insert(value);
    }
    load(&ConfigSource {
        file: None,
        env: Some(env),
    })
    .unwrap()
}

/// Every table of the bench database ready (copied, subscription streaming) and every deferred
/// index and constraint built.
pub fn synchronised(snapshot: &Snapshot) -> bool {
    snapshot.mapping("bench").is_some_and(|m| {
        !m.databases.is_empty()
            && m.databases.iter().all(|d| {
                !d.tables.is_empty()
                    && d.tables.iter().all(|t| t.state == TableState::Ready)
                    && d.deferred_missing == 0
            })
    })
}

/// This process's resident memory in bytes (VmRSS).
pub fn rss() -> u64 {
    proc_status("VmRSS:")
}

/// A `kB` line of /proc/self/status, in bytes (`VmRSS:`, `VmHWM:`).
pub fn proc_status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The durable settings users run (fsync, synchronous_commit and full_page_writes on), laid over
/// the testkit's quick ones.
pub fn durable(mut options: ClusterOptions) -> ClusterOptions {
    for (k, v) in [
        ("fsync", "on"),
        ("synchronous_commit", "on"),
        ("full_page_writes", "on"),
        ("shared_buffers", "256MB"),
    ] {
        options.settings.push((k.into(), v.into()));
    }
    options
}

/// A source and a destination cluster, with [`durable`] settings unless `durable` is false.
pub fn start_pair(durable_settings: bool) -> (Cluster, Cluster) {
    let pick = move |options: ClusterOptions| {
        if durable_settings {
            durable(options)
        } else {
            options
        }
    };
    let source = std::thread::spawn(move || Cluster::start(&pick(ClusterOptions::source())));
    let destination = Cluster::start(&pick(ClusterOptions::destination())).unwrap();
    (source.join().unwrap().unwrap(), destination)
}

/// The median of `times`.
pub fn median(mut times: Vec<std::time::Duration>) -> std::time::Duration {
    times.sort();
    times[times.len() / 2]
}

/// CPU time (user + system) this process has used, in seconds (`/proc/self/stat`, clock ticks
/// of 1/100 s).
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // The fields after the command name, which is in parentheses.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
            Some((ticks(11)? + ticks(12)?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Drops the destination database (and the subscription a native run left there).
pub async fn reset_destination(destination: &Cluster) {
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
                "ALTER SUBSCRIPTION {name} DISABLE; ALTER SUBSCRIPTION {name} SET (slot_name = NONE); DROP SUBSCRIPTION {name}",
                name = ident(&name)
            ))
            .await
            .unwrap();
        }
        drop(db);
        admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", ident(DB)))
            .await
            .unwrap();
    }
}

/// The `p`-quantile (0..=1) of `values`.
pub fn quantile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `pgbench -n -c clients -j 2 -T seconds` (its TPC-B-like script, unthrottled) on the bench
/// database of `cluster`, in a blocking task: resolves to the TPS it reports.
pub fn pgbench(cluster: &Cluster, clients: u32, seconds: u64) -> tokio::task::JoinHandle<f64> {
    let (port, password) = (cluster.port(), cluster.password().to_owned());
    tokio::task::spawn_blocking(move || {
        let bin = PgBinaries::find(SOURCE_MAJOR)
            .unwrap()
            .bin_dir
            .join("pgbench");
        let out = Command::new(bin)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-n", "-c", &clients.to_string(), "-j", "2"])
            .args(["-T", &seconds.to_string(), DB])
            .env("PGPASSWORD", password)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.starts_with("tps"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    })
}
