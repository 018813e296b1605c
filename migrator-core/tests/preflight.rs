//! Preflight refuses what would break the source or the migration, says how to fix it, and
//! creates nothing while it refuses.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::config::{ConfigSource, Settings, load};
use migrator_core::findings::Finding;
use migrator_core::orchestrator::{self, commands};
use migrator_core::phase::Phase;
use migrator_core::testkit::{Cluster, ClusterOptions};
use tokio_util::sync::CancellationToken;

/// Every finding of every mapping and database, after one look.
async fn findings(settings: &Settings) -> Vec<(String, Finding)> {
    let snapshot = commands::status(settings, None).await.unwrap();
    snapshot
        .mappings
        .iter()
        .flat_map(|m| {
            m.findings
                .iter()
                .map(move |f| (m.name.clone(), f.clone()))
                .chain(m.databases.iter().flat_map(move |d| {
                    d.findings
                        .iter()
                        .map(move |f| (format!("{}/{}", m.name, d.name), f.clone()))
                }))
        })
        .collect()
}

fn blocking<'a>(found: &'a [(String, Finding)], code: &str) -> Vec<&'a (String, Finding)> {
    found
        .iter()
        .filter(|(_, f)| f.code == code && f.is_blocking())
        .collect()
}

/// Waits until the orchestrator has published `n` more snapshots (each a tick's outcome).
async fn more_ticks(
    status: &mut tokio::sync::watch::Receiver<std::sync::Arc<migrator_core::status::Snapshot>>,
    n: usize,
) {
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(30), status.changed())
            .await
            .expect("the orchestrator keeps ticking")
            .expect("the orchestrator is running");
    }
}

/// Runs the orchestrator until `mapping` is Problematic, then asserts nothing was created.
async fn assert_refused_without_side_effects(
    settings: &Settings,
    source: &Cluster,
    destination: &Cluster,
    db: &str,
) {
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    wait_until("the mapping to be refused", Duration::from_secs(30), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mappings.first().ok_or("no mapping")?;
            let settled = m.phase == Phase::Problematic && !m.databases.is_empty();
            if settled {
                Ok(())
            } else {
                Err(serde_json::to_string_pretty(&*snapshot).unwrap())
            }
        }
    })
    .await;
    // Three more published ticks, to be sure no step is taken.
    more_ticks(&mut status, 3).await;
    shutdown.cancel();
    handle.join.await.unwrap();
    let slots: i64 = connect(source, "postgres")
        .await
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0, "a slot was created although preflight refused");
    let publications: i64 = connect(source, db)
        .await
        .query_one("SELECT count(*) FROM pg_publication", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(publications, 0);
    let created: i64 = connect(destination, "postgres").await
        .query_one("SELECT count(*) FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE 'postgres-migrator%'", &[])
        .await.unwrap().get(0);
    assert_eq!(
        created, 0,
        "a destination database was created although preflight refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_primary_key_is_refused_then_remedied_when_configured() {
    let (source, destination) = Cluster::start_pair().unwrap();
    let admin = connect(&source, "postgres").await;
    admin.batch_execute("CREATE DATABASE app").await.unwrap();
    let app = connect(&source, "app").await;
    app.batch_execute("CREATE TABLE audit_log (at timestamptz, what text); INSERT INTO audit_log VALUES (now(), 'x')").await.unwrap();

    // Only `app`: other databases have no finding and would rightly go ahead.
    let refuse = settings(
        &[("m", &source, &destination)],
        &[("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", "app")],
    );
    let found = findings(&refuse).await;
    let hits = blocking(&found, "no_primary_key");
    assert_eq!(hits.len(), 1, "{found:#?}");
    assert!(
        hits[0].1.message.contains("public.audit_log"),
        "{}",
        hits[0].1.message
    );
    assert!(hits[0].1.fix.contains("no_pk_remedy"), "{}", hits[0].1.fix);
    assert_refused_without_side_effects(&refuse, &source, &destination, "app").await;

    let remedy = settings(
        &[("m", &source, &destination)],
        &[(
            "MIGRATOR__MAPPINGS__M__NO_PK_REMEDY",
            "replica_identity_full",
        )],
    );
    let found = findings(&remedy).await;
    assert!(blocking(&found, "no_primary_key").is_empty(), "{found:#?}");
    assert!(
        found
            .iter()
            .any(|(_, f)| f.code == "replica_identity_full"
                && f.message.contains("public.audit_log")),
        "{found:#?}"
    );
    let identity: String = app
        .query_one(
            "SELECT relreplident::text FROM pg_class WHERE relname = 'audit_log'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(identity, "f");
}

#[tokio::test]
async fn an_extension_missing_on_the_destination_is_refused() {
    let (source, destination) = Cluster::start_pair().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute("CREATE DATABASE tools")
        .await
        .unwrap();
    connect(&source, "tools")
        .await
        .batch_execute("CREATE EXTENSION adminpack")
        .await
        .unwrap();
    let found = findings(&settings(&[("m", &source, &destination)], &[])).await;
    let hits = blocking(&found, "missing_extension");
    assert_eq!(hits.len(), 1, "{found:#?}");
    assert_eq!(hits[0].0, "m/tools");
    assert!(hits[0].1.message.contains("adminpack"));
}

#[tokio::test]
async fn wal_level_replica_is_refused_with_the_fix() {
    let source = Cluster::start(&ClusterOptions::source().with("wal_level", "replica")).unwrap();
    let destination = Cluster::start(&ClusterOptions::destination()).unwrap();
    let found = findings(&settings(&[("m", &source, &destination)], &[])).await;
    let hits = blocking(&found, "wal_level");
    assert_eq!(hits.len(), 1, "{found:#?}");
    assert!(hits[0].1.fix.contains("wal_level = logical"));
    // An instance-level refusal blocks every database.
    let snapshot = commands::status(&settings(&[("m", &source, &destination)], &[]), None)
        .await
        .unwrap();
    assert_eq!(snapshot.mappings[0].phase, Phase::Problematic);
    assert!(
        snapshot.mappings[0]
            .databases
            .iter()
            .all(|d| d.phase == Phase::Problematic)
    );
}

/// Two mappings onto one destination instance are refused by the configuration itself. Settings
/// built in code skip that check (as a library caller may): the orchestrator's own guard, the
/// claims registry, still refuses both mappings when they send one database name there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mappings_onto_one_destination_are_refused_by_the_configuration_and_by_preflight() {
    let (source, destination) = Cluster::start_pair().unwrap();
    let other = Cluster::start(&ClusterOptions::source()).unwrap();
    for cluster in [&source, &other] {
        connect(cluster, "postgres")
            .await
            .batch_execute("CREATE DATABASE shop")
            .await
            .unwrap();
    }
    let refused = load(&ConfigSource {
        file: None,
        env: Some(settings_env(
            &[
                ("first", &source, &destination),
                ("second", &other, &destination),
            ],
            &[],
        )),
    })
    .expect_err("two mappings onto one destination instance");
    let text = refused.to_string();
    assert!(
        text.contains("mappings.second.destination: mappings first and second migrate onto the same destination instance"),
        "{text}"
    );

    let mut both = settings(
        &[("first", &source, &destination)],
        &[("MIGRATOR__MAPPINGS__FIRST__DATABASES__INCLUDE", "shop")],
    );
    both.mappings.extend(
        settings(
            &[("second", &other, &destination)],
            &[("MIGRATOR__MAPPINGS__SECOND__DATABASES__INCLUDE", "shop")],
        )
        .mappings,
    );
    let found = findings(&both).await;
    let hits = blocking(&found, "name_conflict");
    let who: Vec<&str> = hits.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(who, ["first", "second"], "{found:#?}");
    assert!(hits[0].1.message.contains("first, second"));

    // The running orchestrator refuses both as well, and creates nothing.
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&both, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    wait_for("both mappings refused", Duration::from_secs(30), || {
        let s = status.borrow_and_update().clone();
        async move {
            (s.mappings.len() == 2
                && s.mappings
                    .iter()
                    .all(|m| m.phase == Phase::Problematic && !m.databases.is_empty()))
            .then_some(())
        }
    })
    .await;
    more_ticks(&mut status, 3).await;
    shutdown.cancel();
    handle.join.await.unwrap();
    let exists: i64 = connect(&destination, "postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = 'shop'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn a_destination_database_in_use_is_refused() {
    let (source, destination) = Cluster::start_pair().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute("CREATE DATABASE shop")
        .await
        .unwrap();
    connect(&destination, "postgres")
        .await
        .batch_execute("CREATE DATABASE shop")
        .await
        .unwrap();
    connect(&destination, "shop")
        .await
        .batch_execute("CREATE TABLE precious (id int PRIMARY KEY)")
        .await
        .unwrap();
    let found = findings(&settings(&[("m", &source, &destination)], &[])).await;
    let hits = blocking(&found, "destination_in_use");
    assert_eq!(hits.len(), 1, "{found:#?}");
    assert_eq!(hits[0].0, "m/shop");
    assert!(hits[0].1.message.contains("1 table(s)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_replication_role_must_read_every_table_and_then_carries_the_migration() {
    let (source, destination) = Cluster::start_pair().unwrap();
    let admin = connect(&source, "postgres").await;
    admin.batch_execute("CREATE DATABASE app").await.unwrap();
    admin
        .batch_execute("CREATE ROLE replicator LOGIN REPLICATION PASSWORD 'r3pl1c8'")
        .await
        .unwrap();
    let app = connect(&source, "app").await;
    app.batch_execute("CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int PRIMARY KEY, total numeric); INSERT INTO billing.invoices SELECT g, g FROM generate_series(1, 100) g")
        .await
        .unwrap();
    let settings = settings(
        &[("m", &source, &destination)],
        &[
            ("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", "app"),
            (
                "MIGRATOR__MAPPINGS__M__SOURCE__REPLICATION_USER",
                "replicator",
            ),
            (
                "MIGRATOR__MAPPINGS__M__SOURCE__REPLICATION_PASSWORD",
                "r3pl1c8",
            ),
        ],
    );
    let found = findings(&settings).await;
    let hits = blocking(&found, "replication_role_privileges");
    assert_eq!(hits.len(), 1, "{found:#?}");
    assert!(
        hits[0].1.message.contains("billing.invoices"),
        "{}",
        hits[0].1.message
    );
    assert!(
        !format!("{found:?}").contains("r3pl1c8"),
        "a password reached a finding"
    );

    app.batch_execute("GRANT USAGE ON SCHEMA billing TO replicator; GRANT SELECT ON ALL TABLES IN SCHEMA billing TO replicator")
        .await
        .unwrap();
    assert!(blocking(&findings(&settings).await, "replication_role_privileges").is_empty());

    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    wait_until("cutover ready", Duration::from_secs(90), || {
        let s = status.borrow_and_update().clone();
        async move {
            match s.mapping("m") {
                Some(m) if m.phase == Phase::CutoverReady => Ok(()),
                _ => Err(serde_json::to_string_pretty(&*s).unwrap()),
            }
        }
    })
    .await;
    shutdown.cancel();
    handle.join.await.unwrap();
    // The subscription really logs in as the replication role.
    let user: String = connect(&destination, "app")
        .await
        .query_one("SELECT subconninfo FROM pg_subscription", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        user.contains("user='replicator'"),
        "subscription connects as {user}"
    );
    assert_eq!(
        assert_same_contents(&source, &destination, "app").await,
        100
    );
}
