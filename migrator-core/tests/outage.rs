//! A source server that goes away mid-migration: the error is shown, nothing is lost, and the
//! migration carries on by itself once the server is back.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::orchestrator;
use migrator_core::phase::Phase;
use migrator_core::testkit::{Cluster, sample};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_restart_is_shown_as_an_error_and_recovered_from() {
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 500).await.unwrap();
    let settings = settings(
        &[("m", &source, &destination)],
        &[("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", sample::SHOP)],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    wait_phase(&mut status, Phase::CutoverReady).await;

    source.stop().unwrap();
    let port = source.port().to_string();
    wait_until("the outage to show", Duration::from_secs(60), || {
        let s = status.borrow_and_update().clone();
        let port = port.clone();
        async move {
            let m = s.mapping("m").ok_or("no mapping")?;
            let shown = m.last_error.as_deref().is_some_and(|e| e.contains(&port))
                || m.databases.iter().any(|d| d.last_error.is_some());
            if shown {
                Ok(())
            } else {
                Err(serde_json::to_string_pretty(&*s).unwrap())
            }
        }
    })
    .await;
    let snapshot = status.borrow().clone();
    let text = serde_json::to_string(&*snapshot).unwrap();
    assert!(
        !text.contains(source.password()),
        "a password reached the status"
    );

    source.restart().unwrap();
    // New writes after the outage arrive too.
    connect(&source, sample::SHOP)
        .await
        .batch_execute("INSERT INTO customers (email) VALUES ('after-outage@example.com')")
        .await
        .unwrap();
    wait_phase(&mut status, Phase::CutoverReady).await;
    shutdown.cancel();
    handle.join.await.unwrap();
    wait_until_replicated(&source, Duration::from_secs(30)).await;
    assert_same_contents(&source, &destination, sample::SHOP).await;
}

async fn wait_phase(
    status: &mut tokio::sync::watch::Receiver<std::sync::Arc<migrator_core::status::Snapshot>>,
    wanted: Phase,
) {
    wait_until(&format!("phase {wanted}"), Duration::from_secs(90), || {
        let s = status.borrow_and_update().clone();
        async move {
            match s.mapping("m") {
                Some(m) if m.phase == wanted && !m.databases.is_empty() => Ok(()),
                _ => Err(serde_json::to_string_pretty(&*s).unwrap()),
            }
        }
    })
    .await
}
