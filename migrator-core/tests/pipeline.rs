//! The whole migration, PostgreSQL 15 -> 18, under a write load.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::orchestrator::{self, commands};
use migrator_core::phase::Phase;
use migrator_core::testkit::{Cluster, sample};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_databases_under_write_load_reach_cutover_ready_and_complete_with_equal_contents() {
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 2000).await.unwrap();
    let load = sample::WriteLoad::start(&source).await.unwrap();
    let settings = settings(&[("e2e", &source, &destination)], &[]);

    let early = commands::complete(&settings, "e2e", false).await;
    assert!(
        matches!(early, Err(commands::CommandError::Refused(_))),
        "complete before cutover ready must be refused: {early:?}"
    );

    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let ready = wait_until("cutover ready", Duration::from_secs(60), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("e2e").ok_or("no mapping yet")?;
            if m.phase == Phase::CutoverReady && m.databases.len() == 4 {
                Ok(snapshot)
            } else {
                Err(serde_json::to_string_pretty(&*snapshot).unwrap())
            }
        }
    })
    .await;
    let mapping = ready.mapping("e2e").unwrap();
    for db in &mapping.databases {
        assert_eq!(db.phase, Phase::CutoverReady, "{}", db.name);
        assert!(
            db.findings.iter().all(|f| !f.is_blocking()),
            "{:?}",
            db.findings
        );
    }
    let shop = mapping
        .databases
        .iter()
        .find(|d| d.name == sample::SHOP)
        .unwrap();
    assert!(shop.tables.len() >= 4, "{:?}", shop.tables);
    shutdown.cancel();
    handle.join.await.unwrap();

    let rounds = load.stop().await.unwrap();
    assert!(rounds > 10, "the write load ran {rounds} rounds");
    wait_until_replicated(&source, Duration::from_secs(60)).await;

    let done = commands::complete(&settings, "e2e", false).await.unwrap();
    assert_eq!(done.len(), 4, "{done:?}");
    let mut rows = 0;
    for db in sample::DATABASES {
        rows += assert_same_contents(&source, &destination, db).await;
        assert_sequences_ahead(&source, &destination, db).await;
    }
    assert!(rows > 10_000, "compared {rows} rows");
    let dbs: Vec<&str> = sample::DATABASES
        .iter()
        .copied()
        .chain(["postgres"])
        .collect();
    assert_eq!(source_leftovers(&source, &dbs).await, (0, 0));

    // Completion is discoverable from the databases, and completing again is harmless.
    let after = commands::status(&settings, None).await.unwrap();
    let m = after.mapping("e2e").unwrap();
    assert_eq!(m.phase, Phase::Completed, "{m:#?}");
    let again = commands::complete(&settings, "e2e", false).await.unwrap();
    assert!(
        again.iter().all(|l| l.contains("already completed")),
        "{again:?}"
    );
}

/// The documented form `url = "postgres://user:secret@host/db"` and nothing else: the
/// destination's subscription must log in to the source with the password from inside the url
/// (the test clusters ask for SCRAM passwords over TCP), or no change would ever stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_given_only_as_a_url_with_its_password_streams_through_the_subscription() {
    let (source, destination) = Cluster::start_pair().unwrap();
    // A role of its own, with a password that needs escaping in the url and in the
    // subscription's connection string.
    let admin = connect(&source, "postgres").await;
    admin
        .batch_execute("CREATE ROLE url_admin LOGIN SUPERUSER PASSWORD 'p@ss w''rd\\%/?'")
        .await
        .unwrap();
    admin.batch_execute("CREATE DATABASE app").await.unwrap();
    let app = connect(&source, "app").await;
    app.batch_execute(
        "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g",
    )
    .await
    .unwrap();
    let mut env: std::collections::HashMap<String, String> = destination
        .mapping_env("url", "destination")
        .into_iter()
        .collect();
    env.insert(
        "MIGRATOR__MAPPINGS__URL__SOURCE__URL".into(),
        format!(
            "postgres://url_admin:p%40ss%20w'rd%5C%25%2F%3F@127.0.0.1:{}/postgres",
            source.port()
        ),
    );
    env.insert(
        "MIGRATOR__MAPPINGS__URL__DATABASES__INCLUDE".into(),
        "app".into(),
    );
    env.insert("MIGRATOR__MIGRATION__POLL_INTERVAL".into(), "500ms".into());
    let settings = migrator_core::config::load(&migrator_core::config::ConfigSource {
        file: None,
        env: Some(env),
    })
    .unwrap();

    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    wait_until("app to catch up", Duration::from_secs(90), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("url").ok_or("no mapping yet")?;
            match m.databases.iter().find(|d| d.name == "app") {
                Some(d) if matches!(d.phase, Phase::CatchUp | Phase::CutoverReady) => Ok(()),
                _ => Err(serde_json::to_string_pretty(&*snapshot).unwrap()),
            }
        }
    })
    .await;
    // A row written now reaches the destination only through the subscription's own login.
    app.batch_execute("INSERT INTO items VALUES (101, 'after the copy')")
        .await
        .unwrap();
    let dst = connect(&destination, "app").await;
    wait_for(
        "the new row on the destination",
        Duration::from_secs(60),
        || {
            let dst = &dst;
            async move {
                let found: i64 = dst
                    .query_one("SELECT count(*) FROM items WHERE id = 101", &[])
                    .await
                    .unwrap()
                    .get(0);
                (found == 1).then_some(())
            }
        },
    )
    .await;
    let streaming: i64 = connect(&source, "postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_replication WHERE usename = 'url_admin'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(streaming, 1, "the subscription streams as the url's user");
    shutdown.cancel();
    handle.join.await.unwrap();
}
