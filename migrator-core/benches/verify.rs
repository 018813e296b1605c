//! `verify --exact` against one plain read of both sides, PostgreSQL 15 -> 18, on the copy
//! bench's data (pgbench scale N, a jsonb table, a partitioned table) migrated by the tool, on
//! servers with the durable settings users run (fsync, synchronous_commit, full_page_writes on).
//!
//! The plain read is `COPY table TO STDOUT` of every table from both servers at once, the bytes
//! discarded, as many sessions per server as verify uses: the least any comparison that looks
//! at every row must do. The two are interleaved over several rounds; the medians, their ratio
//! (goal: within 1.5x) and MB/s per scale (linear in size when MB/s holds), and this process's
//! resident memory while verify runs go to docs/BENCHMARKS.md. It stops with an error when that
//! memory passes 64 MB: it must not grow with the data.
//!
//!     BENCH_SCALE=20 BENCH_ROUNDS=3 cargo bench -p migrator-core --bench verify

#[allow(dead_code)] // each bench uses a part
mod common;
#[path = "../../benches/report.rs"]
mod report;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use futures_util::StreamExt;
use migrator_core::catalog::model::QualifiedName;
use migrator_core::ddl::quote::qualified;
use migrator_core::orchestrator;
use migrator_core::phases::MappingContext;
use migrator_core::status::{VerifyMode, VerifyOutcome};
use migrator_core::testkit::Cluster;
use tokio_util::sync::CancellationToken;

/// Every table of the bench database.
async fn tables(cluster: &Cluster) -> Vec<QualifiedName> {
    connect(cluster, DB)
        .await
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY pg_table_size(c.oid) DESC",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect()
}

/// `COPY t TO STDOUT` of every table from `cluster`, `sessions` at a time; returns the bytes.
async fn read_all(cluster: &Cluster, list: &[QualifiedName], sessions: usize) -> u64 {
    let queue = std::sync::Mutex::new(list.to_vec());
    let total = AtomicU64::new(0);
    let worker = async || {
        let client = connect(cluster, DB).await;
        loop {
            let Some(table) = queue.lock().unwrap().pop() else {
                return;
            };
            let stream = client
                .copy_out(&format!("COPY {} TO STDOUT", qualified(&table)))
                .await
                .unwrap();
            let mut stream = std::pin::pin!(stream);
            while let Some(chunk) = stream.next().await {
                total.fetch_add(chunk.unwrap().len() as u64, Ordering::Relaxed);
            }
        }
    };
    futures_util::future::join_all((0..sessions).map(|_| worker())).await;
    total.into_inner()
}

/// `verify --exact` of the bench database, with the most this process held resident meanwhile
/// (sampled every 50 ms).
async fn exact_with_peak_rss(ctx: &MappingContext) -> (migrator_core::status::VerifyStatus, u64) {
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(rss());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    let request = migrator_core::verify::Request {
        mode: VerifyMode::Exact,
        database: Some(DB.into()),
        table: None,
    };
    let verified = orchestrator::verify::run(ctx, &[DB.to_owned()], request, &|_| {}).await;
    sampling.store(false, Ordering::Relaxed);
    (verified, sampler.await.unwrap())
}

fn main() {
    let scale = report::env_number("BENCH_SCALE", 5);
    let rounds = report::env_number("BENCH_ROUNDS", 3) as usize;
    report::block_on(async {
        let (source, destination) = start_pair(true);
        let bytes = build_data(&source, scale).await;
        let settings = settings(&source, &destination, &[]);
        // The tool migrates the data; its subscription stays, as at cutover.
        let shutdown = CancellationToken::new();
        let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
        let mut status = handle.status.clone();
        while !synchronised(&status.borrow_and_update()) {
            status.changed().await.unwrap();
        }
        shutdown.cancel();
        handle.join.await.unwrap();
        let ctx =
            MappingContext::new("bench", &settings.mappings["bench"], &settings.migration).unwrap();
        let sessions = ctx.verify.parallel;
        let list = tables(&source).await;
        // What the rate limiter is charged: the tables' heap and TOAST, not their indexes.
        let table_bytes: i64 = connect(&source, DB)
            .await
            .query_one(
                "SELECT sum(pg_table_size(c.oid))::bigint FROM pg_class c \
                 WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        println!(
            "data: pgbench scale {scale} + docs + measurements = {:.0} MB in {} tables; {rounds} rounds, {sessions} sessions per server",
            bytes as f64 / 1_048_576.0,
            list.len()
        );

        let mut read_times = Vec::new();
        let mut verify_times = Vec::new();
        let mut peak_rss = 0;
        let mut text_bytes = 0;
        let mut ranges = 0;
        let before = rss();
        for round in 1..=rounds {
            let start = Instant::now();
            let (a, b) = tokio::join!(
                read_all(&source, &list, sessions),
                read_all(&destination, &list, sessions)
            );
            assert_eq!(a, b, "both sides hold the same text");
            text_bytes = a;
            let took = start.elapsed();
            println!(
                "round {round}: plain read of both sides: {:.2} s",
                took.as_secs_f64()
            );
            read_times.push(took);

            let start = Instant::now();
            let (verified, peak) = exact_with_peak_rss(&ctx).await;
            let took = start.elapsed();
            peak_rss = peak_rss.max(peak);
            assert_eq!(
                verified.outcome(),
                VerifyOutcome::Equal,
                "{}",
                migrator_core::verify::report::lines("bench", &verified).join("\n")
            );
            ranges = verified.totals().ranges;
            println!(
                "round {round}: verify --exact: {:.2} s ({ranges} ranges)",
                took.as_secs_f64()
            );
            verify_times.push(took);
        }
        // The same verification held to the copy's rate limit.
        let limit = report::env_number("BENCH_LIMIT_MB", 50);
        ctx.limiter.set_limit_mb(limit);
        let start = Instant::now();
        let (limited, peak) = exact_with_peak_rss(&ctx).await;
        peak_rss = peak_rss.max(peak);
        let limited_time = start.elapsed().as_secs_f64();
        assert_eq!(limited.outcome(), VerifyOutcome::Equal);
        ctx.limiter.set_limit_mb(0);
        println!("verify --exact at {limit} MB/s: {limited_time:.2} s");
        // Bounded memory whatever the size: checked here, on every run of the bench.
        assert!(
            peak_rss < 64 * 1024 * 1024,
            "verify held {} MB resident: memory must not grow with the data",
            peak_rss / 1_048_576
        );
        let read = median(read_times).as_secs_f64();
        let verify = median(verify_times).as_secs_f64();
        let mb = bytes as f64 / 1_048_576.0;
        let section = format!(
            "## Verify at pgbench scale {scale}\n\n`BENCH_SCALE={scale} BENCH_ROUNDS={rounds} cargo bench -p migrator-core --bench verify` \
             on {} ({}): PostgreSQL 15 -> 18 test clusters on one machine with fsync, \
             synchronous_commit and full_page_writes on; the copy bench's data ({mb:.0} MB on \
             disk, {:.0} MB as COPY text, {} tables) migrated by the tool. verify --exact with \
             the defaults (ranges of 32 MB, {sessions} sessions per server), against the plain \
             read: COPY of every table from both servers at once, {sessions} sessions each, \
             discarded. Medians of {rounds} interleaved rounds.\n\n\
             | method | median | MB/s (on disk) | ratio to plain read |\n|---|---:|---:|---:|\n\
             | plain read of both sides | {read:.2} s | {:.0} | 1.00x |\n\
             | verify --exact ({ranges} ranges) | {verify:.2} s | {:.0} | {:.2}x |\n\
             | verify --exact, rate_limit_mb_per_s = {limit} (one run) | {limited_time:.2} s | {:.0} | {:.2}x |\n\n\
             Held to {limit} MB/s, verify read the source's tables ({:.0} MB of heap and TOAST, \
             what the limiter is charged; the MB/s column counts indexes too) at {:.1} MB/s.\n\n\
             Goal: within 1.5x of the plain read. This process's resident memory: {:.0} MB before, \
             at most {:.0} MB while verify ran, unlimited and limited (sampled every 50 ms; the bench fails above 64 MB).\n",
            report::machine(),
            humantime::format_rfc3339_seconds(SystemTime::now()),
            text_bytes as f64 / 1_048_576.0,
            list.len(),
            mb / read,
            mb / verify,
            verify / read,
            mb / limited_time,
            limited_time / read,
            table_bytes as f64 / 1_048_576.0,
            table_bytes as f64 / 1_048_576.0 / limited_time,
            before as f64 / 1_048_576.0,
            peak_rss as f64 / 1_048_576.0,
        );
        print!("{section}");
        report::write_section(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
            &format!("verify-scale-{scale}"),
            &section,
        );
    });
}
