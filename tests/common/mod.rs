//! Helpers shared by the tests that drive the binary as operators run it.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use migrator_core::testkit::Cluster;
use tokio_postgres::NoTls;

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

/// One number from `sql` on database `db` of `cluster`.
pub async fn query_i64(cluster: &Cluster, db: &str, sql: &str) -> i64 {
    let (client, connection) = cluster.pg_config(db).connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client.query_one(sql, &[]).await.unwrap().get(0)
}
