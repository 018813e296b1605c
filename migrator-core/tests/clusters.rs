//! The test harness starts real PostgreSQL 15 and 18 clusters, and the product's own `connect`
//! reaches them.

use migrator_core::pg;
use migrator_core::testkit::{Cluster, ClusterOptions};

async fn server_version_num(cluster: &Cluster) -> i32 {
    let conn = cluster
        .connection_settings()
        .resolve("test")
        .expect("testkit settings are valid");
    let client = pg::connect(&conn, "postgres").await.expect("connect");
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .expect("query");
    row.get(0)
}

#[tokio::test]
async fn source_is_15_and_destination_is_18() {
    let (source, destination) = Cluster::start_pair().expect("start clusters");
    let source_version = server_version_num(&source).await;
    let destination_version = server_version_num(&destination).await;
    assert_eq!(source_version / 10000, 15, "source runs {source_version}");
    assert_eq!(
        destination_version / 10000,
        18,
        "destination runs {destination_version}"
    );

    let conn = source.connection_settings().resolve("test").unwrap();
    let client = pg::connect(&conn, "postgres").await.unwrap();
    let wal_level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(wal_level, "logical");
}

#[tokio::test]
async fn dropping_a_cluster_stops_it_and_removes_its_files() {
    let cluster = Cluster::start(&ClusterOptions::source()).expect("start cluster");
    let data_dir = cluster.data_dir();
    let conn = cluster.connection_settings().resolve("test").unwrap();
    assert!(data_dir.join("PG_VERSION").is_file());
    drop(cluster);
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    let err = pg::connect(&conn, "postgres")
        .await
        .expect_err("server is gone");
    assert!(
        err.is_transient(),
        "a refused connection is transient: {err}"
    );
    assert!(err.to_string().contains("is the server running"), "{err}");
}

#[tokio::test]
async fn a_wrong_password_is_a_definite_error_without_the_password() {
    let cluster = Cluster::start(&ClusterOptions::destination()).expect("start cluster");
    let mut settings = cluster.connection_settings();
    settings.password = Some("not-the-password".to_owned().into());
    let conn = settings.resolve("test").unwrap();
    let err = pg::connect(&conn, "postgres")
        .await
        .expect_err("wrong password");
    let text = err.to_string();
    assert!(!err.is_transient(), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    assert!(!text.contains(cluster.password()), "{text}");
}

#[tokio::test]
async fn pools_hand_out_working_connections() {
    let cluster = Cluster::start(&ClusterOptions::source()).expect("start cluster");
    let conn = cluster.connection_settings().resolve("test").unwrap();
    let pool = pg::pool(&conn, "postgres", 2).unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let pid_a: i32 = a
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let pid_b: i32 = b
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(pid_a, pid_b);
}

#[test]
fn missing_binaries_name_the_install_command() {
    let err = migrator_core::testkit::PgBinaries::find(7).expect_err("no PostgreSQL 7 here");
    let text = err.to_string();
    assert!(text.contains("scripts/install-postgres.sh"), "{text}");
    assert!(text.contains("MIGRATOR_PG7_BIN"), "{text}");
}
