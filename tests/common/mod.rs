//! Helpers shared by the tests that drive the binary as operators run it.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use migrator_core::config::{ConfigSource, load};
use migrator_core::phases::MappingContext;
use migrator_core::status::{VerifyMode, VerifyStatus};
use migrator_core::testkit::{Cluster, sample};
use tempfile::TempDir;
use tokio_postgres::{Client, NoTls};

/// The binary, with no configuration from the environment and info logs.
pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postgres-migrator"));
    cmd.env_remove("MIGRATOR_CONFIG").env("RUST_LOG", "info");
    cmd
}

/// The configuration both kill tests run: mapping `k` from `source` to `destination`, the
/// dashboard on a free port, quick clocks, the copy held to 10 MB/s so it can be caught running.
pub fn write_config(path: &Path, source: &Cluster, destination: &Cluster) {
    std::fs::write(
        path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[migration]\npoll_interval = \"500ms\"\nstable_for = \"2s\"\nrate_limit_mb_per_s = 10\n\
             [mappings.k.source]\nhost = \"127.0.0.1\"\nport = {}\npassword = \"{}\"\n\
             [mappings.k.destination]\nhost = \"127.0.0.1\"\nport = {}\npassword = \"{}\"\n",
            source.port(),
            source.password(),
            destination.port(),
            destination.password()
        ),
    )
    .unwrap();
}

/// What both kill tests migrate: two clusters, the source with the sample data (100,000 rows)
/// under a write load, and the configuration of mapping `k` between them ([`write_config`]) in
/// `migrator.toml` of a new temporary directory.
pub async fn migration_under_load() -> (Cluster, Cluster, sample::WriteLoad, TempDir, PathBuf) {
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 100_000).await.unwrap();
    let load = sample::WriteLoad::start(&source).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("migrator.toml");
    write_config(&config, &source, &destination);
    (source, destination, load, dir, config)
}

/// `run --config CONFIG`, its output appended to `log`.
pub fn start(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    binary()
        .args(["run", "--config"])
        .arg(config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start postgres-migrator run")
}

/// The HTTP address the last `run` writing to `log` listens on (its config says port 0).
pub fn address(log: &Path) -> Option<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rev()
        .find_map(|l| l.split("HTTP server listening address=").nth(1))
        .map(|a| a.trim().to_owned())
}

/// Polls `check` every 300 ms until it returns `Ok`, failing after `deadline` with `what` and
/// the last state it described.
pub async fn wait_until<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        match check() {
            Ok(value) => return value,
            Err(state) if Instant::now() > end => {
                panic!("timed out waiting for {what}; last state: {state}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// A plain HTTP/1.1 GET, whole response as text.
pub fn http_get(address: &str, path: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The body of a response [`http_get`] returned.
pub fn body(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map_or(response, |(_, body)| body)
}

/// SIGTERM to `child` (a graceful stop), by the `kill` command.
pub fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// What a finished command printed: its standard output, then its standard error.
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A session on database `db` of `cluster` as its superuser.
pub async fn connect(cluster: &Cluster, db: &str) -> Client {
    let (client, connection) = cluster.pg_config(db).connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Runs the statements `sql` on database `db` of `cluster`.
pub async fn execute(cluster: &Cluster, db: &str, sql: &str) {
    connect(cluster, db).await.batch_execute(sql).await.unwrap();
}

/// One number from `sql` on database `db` of `cluster`.
pub async fn query_i64(cluster: &Cluster, db: &str, sql: &str) -> i64 {
    connect(cluster, db)
        .await
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

/// Runs `sql` on database `db` of `cluster` every `every` until it counts more than 0; panics
/// with `timeout` once `deadline` has passed.
pub async fn wait_for_count(
    cluster: &Cluster,
    db: &str,
    sql: &str,
    (every, deadline): (Duration, Duration),
    timeout: &str,
) {
    let end = Instant::now() + deadline;
    while query_i64(cluster, db, sql).await == 0 {
        assert!(Instant::now() < end, "{timeout}");
        tokio::time::sleep(every).await;
    }
}

/// The replication slots on `cluster`.
pub async fn replication_slots(cluster: &Cluster) -> i64 {
    query_i64(
        cluster,
        "postgres",
        "SELECT count(*) FROM pg_replication_slots",
    )
    .await
}

/// The context of mapping `k` of the configuration file `config` (as [`write_config`] writes it).
pub fn mapping_k(config: &Path) -> MappingContext {
    let settings = load(&ConfigSource {
        file: Some(config.to_owned()),
        env: Some(Default::default()),
    })
    .unwrap();
    MappingContext::new("k", &settings.mappings["k"], &settings.migration).unwrap()
}

/// Database `db` verified exactly between the source and the destination of `ctx` (the tool's
/// own `verify`).
pub async fn verify_database(ctx: &MappingContext, db: &str) -> VerifyStatus {
    let request = migrator_core::verify::Request {
        mode: VerifyMode::Exact,
        database: Some(db.to_owned()),
        table: None,
    };
    migrator_core::orchestrator::verify::run(ctx, &[db.to_owned()], request, &|_| {}).await
}
