//! The whole migration, PostgreSQL 15 -> 18, under a write load.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::orchestrator::{self, oneshot};
use migrator_core::phase::Phase;
use migrator_core::testkit::{Cluster, sample};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_databases_under_write_load_reach_cutover_ready_and_complete_with_equal_contents() {
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 2000).await.unwrap();
    let load = sample::WriteLoad::start(&source).await.unwrap();
    let settings = settings(&[("e2e", &source, &destination)], &[]);

    let early = oneshot::complete(&settings, "e2e", false).await;
    assert!(
        matches!(early, Err(oneshot::CommandError::Refused(_))),
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

    let done = oneshot::complete(&settings, "e2e", false).await.unwrap();
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
    let after = oneshot::status(&settings, None).await.unwrap();
    let m = after.mapping("e2e").unwrap();
    assert_eq!(m.phase, Phase::Completed, "{m:#?}");
    let again = oneshot::complete(&settings, "e2e", false).await.unwrap();
    assert!(
        again.iter().all(|l| l.contains("already completed")),
        "{again:?}"
    );
}
