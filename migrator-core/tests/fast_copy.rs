//! Fast copy mode (the default), PostgreSQL 15 -> 18, under a write load: a table large enough to
//! be split into ranges and changed in every range while it is copied, a partitioned table,
//! user-defined types (copied as text), generated columns; the copy held to a rate limit.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use migrator_core::orchestrator;
use migrator_core::phase::Phase;
use migrator_core::status::TableState;
use migrator_core::testkit::{Cluster, sample};
use tokio_util::sync::CancellationToken;

/// Rows of `big_split`, about 150 bytes each: ~20 MB, split into 1 MB ranges.
const BIG_ROWS: i64 = 120_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fast_copy_under_write_load_splits_a_big_table_and_ends_equal() {
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 20_000).await.unwrap();
    let shop = connect(&source, sample::SHOP).await;
    shop.batch_execute(&format!(
        "CREATE TABLE big_split (id bigint PRIMARY KEY, bucket integer NOT NULL, body text NOT NULL, \
                                 labels order_status[] NOT NULL DEFAULT '{{new}}'); \
         INSERT INTO big_split (id, bucket, body) \
           SELECT g, g % 97, repeat(md5(g::text), 4) FROM generate_series(1, {BIG_ROWS}) g; \
         CREATE INDEX big_split_bucket ON big_split (bucket); \
         CREATE TABLE wide_binary (id bigint PRIMARY KEY, at timestamptz NOT NULL, amount numeric(14, 4), \
                                   tags text[], doc jsonb, flag boolean, raw bytea); \
         INSERT INTO wide_binary SELECT g, now() - g * interval '1 minute', g / 7.0, \
           ARRAY['a' || g, 'b'], jsonb_build_object('g', g), g % 2 = 0, decode(md5(g::text), 'hex') \
           FROM generate_series(1, 30000) g;"
    ))
    .await
    .unwrap();
    shop.batch_execute("VACUUM ANALYZE big_split")
        .await
        .unwrap();
    let size: i64 = shop
        .query_one("SELECT pg_relation_size('big_split')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        size > 8 * 1024 * 1024,
        "big_split must be large enough to be split into 1 MB ranges: {size} bytes"
    );

    // Changes in every range of big_split while it is copied: updates move rows to new pages,
    // deletes leave holes, inserts go to the end.
    let load = sample::WriteLoad::start(&source).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let client = connect(&source, sample::SHOP).await;
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut round: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let id = 1 + (round * 7919) % BIG_ROWS;
                client
                    .batch_execute(&format!(
                        "BEGIN; \
                         UPDATE big_split SET body = 'changed ' || body, labels = '{{paid,shipped}}' \
                           WHERE id IN ({id}, {}, {}); \
                         DELETE FROM big_split WHERE id = {}; \
                         INSERT INTO big_split (id, bucket, body) VALUES ({}, 1, 'late row'); \
                         COMMIT;",
                        (id + 40_000) % BIG_ROWS + 1,
                        (id + 80_000) % BIG_ROWS + 1,
                        (id + 20_000) % BIG_ROWS + 1,
                        BIG_ROWS + round
                    ))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            round
        })
    };

    let settings = settings(
        &[("fast", &source, &destination)],
        &[
            ("MIGRATOR__MIGRATION__COPY_WORKERS", "3"),
            ("MIGRATOR__MIGRATION__COPY_CHUNK_MB", "1"),
            ("MIGRATOR__MAPPINGS__FAST__RATE_LIMIT_MB_PER_S", "8"),
        ],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();

    // The copy is seen running: shop's tables copied by the tool, not by a subscription, at a
    // measured rate under the limit.
    let copying = wait_until("shop copying", Duration::from_secs(60), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("fast").ok_or("no mapping yet")?;
            let shop = m
                .databases
                .iter()
                .find(|d| d.name == sample::SHOP)
                .ok_or("no shop yet")?;
            let big = shop.tables.iter().find(|t| t.table == "big_split");
            match big {
                Some(t)
                    if shop.phase == Phase::InitialSync
                        && t.state == TableState::Copying
                        && m.copy.bytes_per_second > 0.0 =>
                {
                    Ok(m.clone())
                }
                _ => Err(serde_json::to_string_pretty(m).unwrap()),
            }
        }
    })
    .await;
    assert_eq!(copying.copy.limit_mb_per_s, 8);

    let ready = wait_until("cutover ready", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("fast").ok_or("no mapping yet")?;
            if m.phase == Phase::CutoverReady && m.databases.len() == 4 {
                Ok(m.clone())
            } else {
                Err(serde_json::to_string_pretty(m).unwrap())
            }
        }
    })
    .await;
    assert!(ready.databases.iter().all(|d| d.deferred_missing == 0));

    stop.store(true, Ordering::Relaxed);
    let churned = churn.await.unwrap();
    assert!(churned > 20, "big_split changed {churned} times");
    let rounds = load.stop().await.unwrap();
    assert!(rounds > 10, "the write load ran {rounds} rounds");
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    shutdown.cancel();
    handle.join.await.unwrap();

    // Contents, not counts: every row of every table (partitions included) on both sides.
    let mut rows = 0;
    for db in sample::DATABASES {
        rows += assert_same_contents(&source, &destination, db).await;
    }
    assert!(rows > BIG_ROWS + 100_000, "compared {rows} rows");

    // The tool copied: the subscription was created without copy_data, so no table of it went
    // through a table sync (their sync LSN stays unset), and the deferred index was built.
    let dst = connect(&destination, sample::SHOP).await;
    let synced: i64 = dst
        .query_one(
            "SELECT count(*) FILTER (WHERE srsublsn IS NOT NULL) FROM pg_subscription_rel",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(synced, 0, "a table was copied by the subscription");
    let index: i64 = dst
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'big_split_bucket'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(index, 1);
    // The triggers on the destination did not fire for copied rows (customers' trigger would
    // have rewritten NULL names; the digests above prove it), and only our slots exist.
    let src_admin = connect(&source, "postgres").await;
    let slots: i64 = src_admin
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgmig_fast_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 4);
}

/// The health guard, wired end to end: with a latency limit no query can meet, it holds the
/// copy back, says why on the status, and the copy still finishes with equal contents.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_health_guard_slows_the_copy_and_says_why() {
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 20_000).await.unwrap();
    let settings = settings(
        &[("guarded", &source, &destination)],
        &[("MIGRATOR__MIGRATION__HEALTH_MAX_LATENCY", "1us")],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let held = wait_until(
        "the guard to hold the copy back",
        Duration::from_secs(60),
        || {
            let snapshot = status.borrow_and_update().clone();
            async move {
                let m = snapshot.mapping("guarded").ok_or("no mapping yet")?;
                match (&m.copy.health_reason, m.copy.health_cap_mb_per_s) {
                    (Some(reason), Some(cap)) => Ok((reason.clone(), cap)),
                    _ => Err(serde_json::to_string_pretty(&m.copy).unwrap()),
                }
            }
        },
    )
    .await;
    assert!(
        held.0.contains("trivial query on the source took"),
        "{held:?}"
    );
    assert!(held.1 >= 1.0, "the cap never goes below 1 MB/s: {held:?}");
    wait_until("cutover ready", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("guarded").ok_or("no mapping yet")?;
            if m.phase == Phase::CutoverReady {
                Ok(())
            } else {
                Err(serde_json::to_string_pretty(m).unwrap())
            }
        }
    })
    .await;
    shutdown.cancel();
    handle.join.await.unwrap();
    for db in sample::DATABASES {
        assert_same_contents(&source, &destination, db).await;
    }
}
