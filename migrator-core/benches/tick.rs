//! One reconcile tick at scale: 20 source databases of 500 tables each (a primary key and a
//! secondary index on each), migrated to catch-up, then the database tick (`observe` + derive +
//! `act`, what every database task runs every `poll_interval`) timed for one database at a time
//! and for all 20 at once, as the orchestrator runs them. Prints the figures and writes them to
//! docs/BENCHMARKS.md. Not a test: nothing here passes or fails.
//!
//!     cargo bench -p migrator-core --bench tick
//!
//! `BENCH_DATABASES` (20), `BENCH_TABLES` (500) and `BENCH_TICKS` (10) change the shape.

#[allow(dead_code)] // each bench uses a part
mod common;
#[path = "../../benches/report.rs"]
mod report;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use migrator_core::config::{ConfigSource, load};
use migrator_core::ddl::quote::ident;
use migrator_core::orchestrator::{self, contexts, database};
use migrator_core::phase::Phase;
use migrator_core::phases::MappingContext;
use migrator_core::testkit::Cluster;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;

/// One tick of database `db`: the reconcile loop's pass (look, derive, act, status). Returns
/// how long it took.
async fn tick(
    ctx: &MappingContext,
    db: &str,
    (conns, memory): &mut (database::Connections, database::Memory),
) -> Duration {
    let start = Instant::now();
    let passed = database::pass(ctx, db, false, conns, memory, database::Mode::Act).await;
    assert!(passed.is_ok(), "the tick of {db} failed");
    start.elapsed()
}

fn quantile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let databases = report::env_number("BENCH_DATABASES", 20) as usize;
    let tables = report::env_number("BENCH_TABLES", 500);
    let ticks = report::env_number("BENCH_TICKS", 10) as usize;
    report::block_on(async {
        let (source, destination) = Cluster::start_pair().unwrap();
        let (admin, connection) = source.pg_config("postgres").connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        let names: Vec<String> = (1..=databases).map(|i| format!("tick_{i:02}")).collect();
        let built = Instant::now();
        for name in &names {
            admin
                .batch_execute(&format!("CREATE DATABASE {}", ident(name)))
                .await
                .unwrap();
            let (db, connection) = source.pg_config(name).connect(NoTls).await.unwrap();
            tokio::spawn(connection);
            db.batch_execute(&format!(
                "DO $$ BEGIN FOR i IN 1..{tables} LOOP \
                   EXECUTE format('CREATE TABLE t%s (id bigint PRIMARY KEY, v text, at timestamptz DEFAULT now())', i); \
                   EXECUTE format('CREATE INDEX t%s_v ON t%s (v)', i, i); \
                   EXECUTE format('INSERT INTO t%s (id, v) VALUES (1, ''x'')', i); \
                 END LOOP; END $$"
            ))
            .await
            .unwrap();
        }
        println!(
            "{databases} databases x {tables} tables built in {:.0} s",
            built.elapsed().as_secs_f64()
        );

        let mut env: HashMap<String, String> = HashMap::new();
        env.extend(source.mapping_env("tick", "source"));
        env.extend(destination.mapping_env("tick", "destination"));
        env.insert(
            "MIGRATOR__MAPPINGS__TICK__DATABASES__INCLUDE".into(),
            names.join(","),
        );
        env.insert("MIGRATOR__MIGRATION__POLL_INTERVAL".into(), "1s".into());
        let settings = load(&ConfigSource {
            file: None,
            env: Some(env),
        })
        .unwrap();

        // Migrate to catch-up with the real orchestrator.
        let migrated = Instant::now();
        let shutdown = CancellationToken::new();
        let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
        let mut status = handle.status.clone();
        loop {
            status.changed().await.unwrap();
            let snapshot = status.borrow_and_update().clone();
            let done = snapshot.mapping("tick").is_some_and(|m| {
                m.databases.len() == databases
                    && m.databases
                        .iter()
                        .all(|d| matches!(d.phase, Phase::CatchUp | Phase::CutoverReady))
            });
            if done {
                break;
            }
        }
        let migrate_seconds = migrated.elapsed().as_secs_f64();
        shutdown.cancel();
        handle.join.await.unwrap();
        println!("migrated to catch-up in {migrate_seconds:.0} s");

        // Ticks, one database at a time, then all at once.
        let ctx = Arc::new(contexts(&settings).unwrap().remove(0));
        let mut conns: Vec<(database::Connections, database::Memory)> = names
            .iter()
            .map(|db| {
                (
                    database::Connections::new(&ctx, db),
                    database::Memory::default(),
                )
            })
            .collect();
        for (db, c) in names.iter().zip(conns.iter_mut()) {
            tick(&ctx, db, c).await; // connect, warm the caches
        }
        let mut single = Vec::new();
        for _ in 0..ticks {
            for (db, c) in names.iter().zip(conns.iter_mut()) {
                single.push(tick(&ctx, db, c).await);
            }
        }
        // After DDL on the source: the catalogs' fingerprint changed, so the tick reads both
        // schemas whole again.
        let mut changed = Vec::new();
        for round in 0..ticks {
            for (db, c) in names.iter().zip(conns.iter_mut()) {
                let (client, connection) = source.pg_config(db).connect(NoTls).await.unwrap();
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("COMMENT ON TABLE t1 IS 'round {round}'"))
                    .await
                    .unwrap();
                changed.push(tick(&ctx, db, c).await);
            }
        }
        // Once more unchanged, so that the rounds below start from remembered schemas.
        for (db, c) in names.iter().zip(conns.iter_mut()) {
            tick(&ctx, db, c).await;
        }
        let mut all = Vec::new();
        let mut peak_rss = common::rss();
        for _ in 0..ticks {
            let start = Instant::now();
            let runs = names.iter().zip(conns.iter_mut()).map(|(db, c)| {
                let ctx = ctx.clone();
                async move { tick(&ctx, db, c).await }
            });
            futures_util::future::join_all(runs).await;
            all.push(start.elapsed());
            peak_rss = peak_rss.max(common::rss());
        }
        let mb = |bytes: u64| bytes as f64 / 1_048_576.0;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let section = format!(
            "## Reconcile tick, {databases} databases x {tables} tables\n\n\
             `cargo bench -p migrator-core --bench tick` on {} ({}): PostgreSQL 15 -> 18 test \
             clusters, {databases} databases of {tables} tables (primary key, one secondary index, \
             one row) each, migrated to catch-up by the orchestrator ({migrate_seconds:.0} s), then \
             the database pass (look: preflight checks, subscription and table states, \
             sequences, fingerprints of both sides' catalogs, and only when one changed the \
             deferred objects, both table catalogs and object signatures for drift; held-back \
             triggers, lag; act: sequence sync and heartbeat), {ticks} rounds.\n\n\
             | tick | median | p95 | max |\n|---|---:|---:|---:|\n\
             | one database, alone | {:.0} ms | {:.0} ms | {:.0} ms |\n\
             | one database, alone, after DDL on the source (schemas read again) | {:.0} ms | {:.0} ms | {:.0} ms |\n\
             | all {databases} at once (as the orchestrator runs them) | {:.0} ms | {:.0} ms | {:.0} ms |\n\n\
             Memory (VmRSS of this process, which runs the tool in-process): peak {:.0} MB \
             during the rounds of all {databases} at once; high-water mark of the whole bench \
             (VmHWM, the migration of every database included) {:.0} MB.\n",
            report::machine(),
            humantime::format_rfc3339_seconds(SystemTime::now()),
            ms(quantile(&single, 0.5)),
            ms(quantile(&single, 0.95)),
            ms(quantile(&single, 1.0)),
            ms(quantile(&changed, 0.5)),
            ms(quantile(&changed, 0.95)),
            ms(quantile(&changed, 1.0)),
            ms(quantile(&all, 0.5)),
            ms(quantile(&all, 0.95)),
            ms(quantile(&all, 1.0)),
            mb(peak_rss),
            mb(common::proc_status("VmHWM:")),
        );
        print!("{section}");
        report::write_section(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
            "tick",
            &section,
        );
    });
}
