//! Belt and braces inside one actor: a copy that waited for its turn checks again, before it
//! drops or empties anything, that the database is still in the state that started it.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::orchestrator;
use migrator_core::phase::Phase;
use migrator_core::status::TableState;
use migrator_core::testkit::Cluster;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_that_waited_for_its_turn_refuses_to_empty_a_database_completed_meanwhile() {
    let (source, destination) = Cluster::start_pair().unwrap();
    let admin = connect(&source, "postgres").await;
    for db in ["alpha", "beta"] {
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        connect(&source, db)
            .await
            .batch_execute(
                "CREATE TABLE items (id bigserial PRIMARY KEY, pad text NOT NULL); \
                 INSERT INTO items (pad) SELECT repeat('x', 200) FROM generate_series(1, 60000) g;",
            )
            .await
            .unwrap();
    }
    // 12 MB a database at 2 MB/s: one copies for seconds while the other waits for its turn.
    let settings = settings(
        &[("m", &source, &destination)],
        &[
            ("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", "alpha,beta"),
            ("MIGRATOR__MIGRATION__RATE_LIMIT_MB_PER_S", "2"),
        ],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    // One database copying, the other's job queued behind it.
    let waiting = wait_until(
        "one copy running, one waiting",
        Duration::from_secs(60),
        || {
            let snapshot = status.borrow_and_update().clone();
            async move {
                let m = snapshot.mapping("m").ok_or("no mapping")?;
                let copying = |d: &&migrator_core::status::DatabaseStatus| {
                    d.tables.iter().any(|t| t.state == TableState::Copying)
                };
                let queued = |d: &&migrator_core::status::DatabaseStatus| {
                    d.phase == Phase::InitialSync
                        && !d.tables.is_empty()
                        && d.tables.iter().all(|t| t.state == TableState::Init)
                };
                match (
                    m.databases.iter().find(copying),
                    m.databases.iter().find(queued),
                ) {
                    (Some(_), Some(w)) => Ok(w.name.clone()),
                    _ => Err(serde_json::to_string_pretty(&*snapshot).unwrap()),
                }
            }
        },
    )
    .await;

    // Another session completes the waiting database by hand: rows of its own on the
    // destination, and a disabled subscription detached from any slot.
    let names = migrator_core::naming::ReplicationNames::new("m", &waiting);
    let dst = connect(&destination, &waiting).await;
    dst.batch_execute(&format!(
        "INSERT INTO items (id, pad) VALUES (-1, 'written after cutover'), (-2, 'written after cutover'); \
         CREATE SUBSCRIPTION {sub} CONNECTION 'host=127.0.0.1 port={port} dbname={waiting}' \
           PUBLICATION {publication} WITH (connect = false, slot_name = NONE);",
        sub = names.subscription,
        port = source.port(),
        publication = names.publication,
    ))
    .await
    .unwrap();

    // Its job gets its turn once the other copy is done; it must leave the database alone.
    wait_until(
        "the waiting database completed",
        Duration::from_secs(120),
        || {
            let snapshot = status.borrow_and_update().clone();
            let waiting = waiting.clone();
            async move {
                let m = snapshot.mapping("m").ok_or("no mapping")?;
                let done = m
                    .databases
                    .iter()
                    .any(|d| d.name == waiting && d.phase == Phase::Completed);
                let other_streams = m.databases.iter().any(|d| {
                    d.name != waiting && d.phase >= Phase::CatchUp && d.phase != Phase::Problematic
                });
                if done && other_streams {
                    Ok(())
                } else {
                    Err(serde_json::to_string_pretty(&*snapshot).unwrap())
                }
            }
        },
    )
    .await;
    shutdown.cancel();
    handle.join.await.unwrap();
    let rows: i64 = dst
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2, "the completed database was emptied or refilled");
    let slots: i64 = connect(&source, "postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
            &[&names.slot],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0, "no slot was created for the completed database");
}
