//! Secrets stay out of the logs whatever the log level: a whole migration run at debug level
//! (RUST_LOG and log.level) prints neither server's password (which CREATE SUBSCRIPTION's
//! connection string carries) nor the password hashes of the roles it copies.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::testkit::{Cluster, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_level_migration_logs_no_password_and_no_password_hash() {
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 200).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let log = dir.path().join("run.log");
    write_config(&config, &source, &destination);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("[log]\nlevel = \"debug\"\n{text}")).unwrap();

    let mut child = binary()
        .env("RUST_LOG", "debug")
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::options().append(true).open(&log).unwrap())
        .spawn()
        .unwrap();
    let address = wait_until("the dashboard to listen", Duration::from_secs(30), || {
        address(&log).ok_or_else(|| "no address yet".to_owned())
    })
    .await;
    wait_until(
        "every database to be cutover ready",
        Duration::from_secs(180),
        || {
            let status: serde_json::Value =
                serde_json::from_str(body(&http_get(&address, "/api/status")))
                    .map_err(|e| e.to_string())?;
            let databases = status["mappings"][0]["databases"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            // The sample databases and `postgres`.
            let ready = databases.len() > sample::DATABASES.len()
                && databases.iter().all(|d| d["phase"] == "cutover_ready");
            ready.then_some(()).ok_or_else(|| status.to_string())
        },
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(
        printed.contains("DEBUG"),
        "the run logged at debug level:\n{printed}"
    );
    assert!(
        printed.contains("CREATE SUBSCRIPTION") || printed.contains("subscription"),
        "the run created subscriptions"
    );
    for (what, secret) in [
        ("the source's password", source.password()),
        ("the destination's password", destination.password()),
    ] {
        assert!(!printed.contains(secret), "{what} is in the log");
    }
    // The copied roles' SCRAM hashes (ALTER ROLE ... PASSWORD statements).
    let (client, connection) = source
        .pg_config("postgres")
        .connect(migrator_core::testkit::tls::prefer_connector())
        .await
        .unwrap();
    tokio::spawn(connection);
    let hashes = client
        .query(
            "SELECT rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL AND oid >= 16384",
            &[],
        )
        .await
        .unwrap();
    assert!(!hashes.is_empty(), "the sample has roles with passwords");
    for row in hashes {
        let hash: String = row.get(0);
        let salted_part = hash.split('$').nth(2).unwrap_or(&hash).to_owned();
        assert!(
            !printed.contains(&salted_part),
            "a role's password hash is in the log"
        );
    }
}
