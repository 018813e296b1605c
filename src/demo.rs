//! `postgres-migrator demo`: a real migration between two local clusters, from one command.

use std::process::ExitCode;

use migrator_core::pg;
use migrator_core::testkit::Cluster;
use tokio_util::sync::CancellationToken;

pub async fn run(shutdown: CancellationToken) -> ExitCode {
    println!("Starting a PostgreSQL 15 source and a PostgreSQL 18 destination cluster...");
    let clusters = tokio::task::spawn_blocking(Cluster::start_pair).await;
    let (source, destination) = match clusters {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            eprintln!("postgres-migrator demo: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("postgres-migrator demo: starting the clusters failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (role, cluster) in [("source", &source), ("destination", &destination)] {
        let version = match server_version(cluster).await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("postgres-migrator demo: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("  {role:<12} 127.0.0.1:{:<6} {version}", cluster.port());
    }
    if shutdown.is_cancelled() {
        return ExitCode::SUCCESS;
    }
    println!(
        "The migration pipeline is not built yet: the demo stops here, and the clusters are removed."
    );
    ExitCode::SUCCESS
}

async fn server_version(cluster: &Cluster) -> Result<String, pg::PgError> {
    let conn = cluster
        .connection_settings()
        .resolve("demo")
        .expect("testkit connection settings are valid");
    let client = pg::connect(&conn, "postgres").await?;
    let row = client
        .query_one("SELECT version()", &[])
        .await
        .map_err(|e| pg::PgError::query(&conn.describe(), "reading the version", e))?;
    Ok(row
        .get::<_, String>(0)
        .split(" on ")
        .next()
        .unwrap_or("")
        .to_owned())
}
