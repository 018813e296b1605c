//! Initial copy, PostgreSQL 15 -> 18: this tool's fast mode (parallel COPY from the slot's
//! exported snapshot) and native mode (CREATE SUBSCRIPTION with copy_data, deferred indexes)
//! against a raw `COPY ... TO STDOUT | COPY ... FROM STDIN` pipe (schema first, indexes after,
//! built in parallel) and `pg_dump -Fd -j N` + `pg_restore -j N`, interleaved over several rounds
//! on the same data. Prints each method's median and its ratio to the raw pipe, and writes them
//! to docs/BENCHMARKS.md. Then, on the same data: the rate limiter holding a set MB/s, catch-up
//! lag under a pgbench write load, and this process's memory while the tool runs. Not a test:
//! nothing here passes or fails.
//!
//!     BENCH_SCALE=20 BENCH_ROUNDS=3 cargo bench -p migrator-core --bench copy
//!
//! `BENCH_LIMIT_MB` (default 20) is the rate limit measured; `BENCH_EXTRAS=0` skips the limiter,
//! lag and memory measurements.
//!
//! The data: `pgbench -i -s SCALE`, a wide jsonb table (20,000 x SCALE rows of ~1 KB) and a
//! partitioned table (100,000 x SCALE rows over four partitions), with secondary indexes.

#[allow(dead_code)] // each bench uses a part
mod common;
#[path = "../../benches/report.rs"]
mod report;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use migrator_core::config::Settings;
use migrator_core::ddl::quote::ident;
use migrator_core::orchestrator::{self, commands};
use migrator_core::phase::Phase;
use migrator_core::status::TableState;
use migrator_core::testkit::Cluster;
use tokio_util::sync::CancellationToken;

use common::*;

/// The first column of every row `sql` returns in the bench database of `cluster`.
async fn texts(cluster: &Cluster, sql: &str) -> Vec<String> {
    connect(cluster, DB)
        .await
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The raw pipe: pre-data schema (pg_restore of a schema-only dump), every table streamed in
/// binary COPY by `workers` pairs of connections, then post-data (primary keys, indexes, foreign
/// keys) restored with `workers` jobs.
///
/// With `keys_first` the primary keys are created before the copy (as this tool does, so that
/// the subscription has its replica identity), the rest of post-data after it.
async fn raw_pipe(source: &Cluster, destination: &Cluster, workers: usize, keys_first: bool) {
    let start = Instant::now();
    connect(destination, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {}", ident(DB)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema");
    let schema = schema.to_str().unwrap();
    let jobs = workers.to_string();
    tool(
        "pg_dump",
        source,
        &["-Fd", "--schema-only", "-f", schema, DB],
    );
    tool(
        "pg_restore",
        destination,
        &["--section", "pre-data", "-d", DB, schema],
    );
    let mut post_data = vec!["--section", "post-data", "-j", &jobs, "-d", DB];
    let list = dir.path().join("list");
    let list = list.to_str().unwrap();
    if keys_first {
        let keys = texts(
            source,
            "SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, \
                    pg_get_constraintdef(oid)) \
             FROM pg_constraint WHERE contype = 'p' AND conparentid = 0 \
               AND connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)",
        )
        .await;
        connect(destination, DB)
            .await
            .batch_execute(&keys.join(";\n"))
            .await
            .unwrap();
        // Every primary key of the bench data (and its partitions' attachments) is named *_pkey.
        let entries =
            String::from_utf8(tool("pg_restore", source, &["-l", schema]).stdout).unwrap();
        let rest: Vec<&str> = entries.lines().filter(|l| !l.contains("_pkey")).collect();
        std::fs::write(list, rest.join("\n")).unwrap();
        post_data.extend(["-L", list]);
    }
    post_data.push(schema);
    let tables = texts(
        source,
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' \
         AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY c.relpages",
    )
    .await;
    let schema_done = start.elapsed();
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(tables));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let queue = queue.clone();
        let (src, dst) = (connect(source, DB).await, connect(destination, DB).await);
        tasks.push(tokio::spawn(async move {
            // Largest first (the queue pops from the end).
            while let Some(table) = queue.lock().await.pop() {
                let out = src
                    .copy_out(&format!("COPY {table} TO STDOUT (FORMAT binary)"))
                    .await
                    .unwrap();
                let sink = dst
                    .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
                    .await
                    .unwrap();
                futures_util::pin_mut!(out);
                futures_util::pin_mut!(sink);
                // `feed` buffers (one CopyData per row would otherwise mean one flush per row).
                while let Some(chunk) = out.next().await {
                    sink.feed(chunk.unwrap()).await.unwrap();
                }
                sink.finish().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let copied = start.elapsed();
    tool("pg_restore", destination, &post_data);
    println!(
        "    schema {:.2} s, copy {:.2} s, indexes and keys {:.2} s",
        schema_done.as_secs_f64(),
        (copied - schema_done).as_secs_f64(),
        (start.elapsed() - copied).as_secs_f64()
    );
}

/// pg_dump in directory format with `jobs` jobs, then pg_restore with as many.
fn dump_restore(source: &Cluster, destination: &Cluster, jobs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    let jobs = jobs.to_string();
    tool(
        "pg_dump",
        source,
        &["-Fd", "-j", &jobs, "-f", out.to_str().unwrap(), DB],
    );
    tool(
        "pg_restore",
        destination,
        &["-C", "-j", &jobs, "-d", "postgres", out.to_str().unwrap()],
    );
}

/// The tool (in the mode `settings` say), from start until the mapping is cutover ready (the
/// bench sets `stable_for` to zero); then its replication objects are removed again. Returns
/// the copy phase: from the first byte copied to every table copied, indexed and streaming.
async fn run_tool(settings: &Settings) -> Duration {
    let start = Instant::now();
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let mut copy_started = None;
    let mut copied = None;
    loop {
        status.changed().await.unwrap();
        let snapshot = status.borrow_and_update().clone();
        if copied.is_none() && synchronised(&snapshot) {
            copied = Some(start.elapsed());
        }
        if copied.is_some()
            && snapshot
                .mapping("bench")
                .is_some_and(|m| m.phase == Phase::CutoverReady)
        {
            break;
        }
        let copying = snapshot.mapping("bench").is_some_and(|m| {
            m.databases
                .iter()
                .any(|d| d.tables.iter().any(|t| t.bytes_copied > 0))
        });
        if copying && copy_started.is_none() {
            copy_started = Some(start.elapsed());
        }
    }
    let copied = copied.expect("synchronised before cutover ready");
    let first = copy_started.unwrap_or_default();
    println!(
        "    first bytes copied after {:.2} s (preflight, roles, schema, sequences, setup); \
         copied, indexed and streaming after {:.2} s; cutover ready after {:.2} s",
        first.as_secs_f64(),
        copied.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    shutdown.cancel();
    handle.join.await.unwrap();
    commands::complete(settings, "bench", true).await.unwrap();
    copied - first
}

/// Fast mode with `rate_limit_mb_per_s = limit`: the measured copy rate, sampled every 250 ms
/// while the copy runs (after the limiter's 3 s window has filled).
async fn limiter(source: &Cluster, destination: &Cluster, limit: u64) -> String {
    reset_destination(destination).await;
    let settings = settings(
        source,
        destination,
        &[(
            "MIGRATOR__MAPPINGS__BENCH__RATE_LIMIT_MB_PER_S",
            limit.to_string(),
        )],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let status = handle.status.clone();
    let mut samples = Vec::new();
    let mut copying_since = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let snapshot = status.borrow().clone();
        let Some(m) = snapshot.mapping("bench") else {
            continue;
        };
        let copying = m.databases.iter().any(|d| {
            d.tables
                .iter()
                .any(|t| matches!(t.state, TableState::Copying | TableState::Init))
        });
        if copying {
            let since = *copying_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(3) {
                samples.push(m.copy.bytes_per_second / 1_048_576.0);
            }
        } else if copying_since.is_some() {
            break;
        }
    }
    let copy_seconds = copying_since.map_or(0.0, |s| s.elapsed().as_secs_f64());
    shutdown.cancel();
    handle.join.await.unwrap();
    commands::complete(&settings, "bench", true).await.unwrap();
    let (p10, p50, p90) = (
        quantile(&samples, 0.1),
        quantile(&samples, 0.5),
        quantile(&samples, 0.9),
    );
    let line = format!(
        "| rate_limit_mb_per_s = {limit} | {p50:.1} MB/s | {p10:.1} - {p90:.1} MB/s | {:+.1} % | {} samples over {copy_seconds:.0} s |\n",
        (p50 - limit as f64) / limit as f64 * 100.0,
        samples.len()
    );
    print!("{line}");
    line
}

/// Fast mode without a limit, then a pgbench write load during catch-up: replication lag
/// sampled every 250 ms, and this process's memory throughout.
async fn lag_and_memory(source: &Cluster, destination: &Cluster, seconds: u64) -> String {
    reset_destination(destination).await;
    let settings = settings(source, destination, &[]);
    let baseline = rss();
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let status = handle.status.clone();
    let mut peak = baseline;
    while !synchronised(&status.borrow()) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(rss());
    }
    let copy_peak = peak;
    let pgbench = pgbench(source, 4, seconds);
    let (mut lag_seconds, mut lag_mb) = (Vec::new(), Vec::new());
    while !pgbench.is_finished() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(rss());
        if let Some(lag) = status.borrow().mapping("bench").and_then(|m| m.lag()) {
            lag_seconds.push(lag.seconds);
            lag_mb.push(lag.bytes as f64 / 1_048_576.0);
        }
    }
    let tps = pgbench.await.unwrap();
    shutdown.cancel();
    handle.join.await.unwrap();
    commands::complete(&settings, "bench", true).await.unwrap();
    let mb = |b: u64| b as f64 / 1_048_576.0;
    let text = format!(
        "Catch-up under `pgbench -n -c 4 -j 2 -T {seconds}` on the source ({tps:.0} TPS), lag \
         sampled every 250 ms ({} samples): p50 {:.2} s / {:.1} MB, **p95 {:.2} s / {:.1} MB**, \
         max {:.2} s / {:.1} MB.\n\nMemory (VmRSS of this bench process, which runs the tool \
         in-process): {:.0} MB before, peak {:.0} MB during the fast copy, peak {:.0} MB during \
         catch-up (sampled every 250 ms); high-water mark of the whole bench process (VmHWM, \
         the raw pipe's buffers included) {:.0} MB.\n",
        lag_seconds.len(),
        quantile(&lag_seconds, 0.5),
        quantile(&lag_mb, 0.5),
        quantile(&lag_seconds, 0.95),
        quantile(&lag_mb, 0.95),
        quantile(&lag_seconds, 1.0),
        quantile(&lag_mb, 1.0),
        mb(baseline),
        mb(copy_peak),
        mb(peak),
        mb(proc_status("VmHWM:")),
    );
    print!("{text}");
    text
}

fn main() {
    let scale = report::env_number("BENCH_SCALE", 5);
    let rounds = report::env_number("BENCH_ROUNDS", 3) as usize;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    // RUST_LOG=migrator_core=info shows the tool's own log (its copy and build times).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    report::block_on(async {
        // The settings users run; BENCH_DURABLE=0 for the testkit's quick ones (fsync off).
        let durable_servers = report::env_number("BENCH_DURABLE", 1) == 1;
        let (source, destination) = start_pair(durable_servers);
        let bytes = build_data(&source, scale).await;
        println!(
            "data: pgbench scale {scale} + docs + measurements = {:.0} MB; {rounds} rounds, {workers} workers",
            bytes as f64 / 1_048_576.0
        );
        // The tool runs with the default poll interval, as users run it: a wait for the next
        // look after the copy is part of what they wait for.
        let poll = ("MIGRATOR__MIGRATION__POLL_INTERVAL", "5s".to_owned());
        let fast = settings(&source, &destination, std::slice::from_ref(&poll));
        let native = settings(
            &source,
            &destination,
            &[
                poll.clone(),
                ("MIGRATOR__MIGRATION__COPY_MODE", "native".to_owned()),
            ],
        );
        let methods = [
            "raw COPY pipe",
            "raw COPY pipe, primary keys before the copy",
            "postgres-migrator fast (default)",
            "postgres-migrator native",
            "pg_dump -Fd + pg_restore -j",
        ];
        // BENCH_METHODS=0,2 runs those methods only (printed, not written to the docs).
        let chosen = report::env_indexes("BENCH_METHODS", methods.len());
        let all = chosen.len() == methods.len();
        // A fresh cluster creates its WAL segments as it first writes them (zero-filled and
        // synced); later runs recycle them. One untimed run first, so that no method pays that.
        raw_pipe(&source, &destination, workers, false).await;
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); methods.len()];
        let mut copy_phases: Vec<Vec<Duration>> = vec![Vec::new(); methods.len()];
        for round in 1..=rounds {
            for (i, method) in methods.iter().enumerate() {
                if !chosen.contains(&i) {
                    continue;
                }
                reset_destination(&destination).await;
                // Each method starts with nothing left to write from the one before.
                for cluster in [&source, &destination] {
                    connect(cluster, "postgres")
                        .await
                        .batch_execute("CHECKPOINT")
                        .await
                        .unwrap();
                }
                let start = Instant::now();
                let cpu = cpu_seconds();
                match i {
                    0 => raw_pipe(&source, &destination, workers, false).await,
                    1 => raw_pipe(&source, &destination, workers, true).await,
                    2 => copy_phases[i].push(run_tool(&fast).await),
                    3 => copy_phases[i].push(run_tool(&native).await),
                    _ => dump_restore(&source, &destination, workers),
                }
                let took = start.elapsed();
                println!(
                    "round {round}: {method}: {:.2} s ({:.2} s of CPU in this process)",
                    took.as_secs_f64(),
                    cpu_seconds() - cpu
                );
                times[i].push(took);
            }
        }
        if !all {
            for (method, times) in methods.iter().zip(times).filter(|(_, t)| !t.is_empty()) {
                println!("{method}: median {:.2} s", median(times).as_secs_f64());
            }
            return;
        }
        let medians: Vec<Duration> = times.into_iter().map(median).collect();
        let copy_medians: Vec<Option<Duration>> = copy_phases
            .into_iter()
            .map(|t| (!t.is_empty()).then(|| median(t)))
            .collect();
        let raw = medians[0].as_secs_f64();
        let servers = if durable_servers {
            "with fsync, synchronous_commit and full_page_writes on (what users run)"
        } else {
            "with fsync, synchronous_commit and full_page_writes OFF (the testkit's quick settings)"
        };
        let mut section = format!(
            "## Initial copy at pgbench scale {scale}{}\n\n`BENCH_SCALE={scale} BENCH_ROUNDS={rounds} BENCH_DURABLE={} cargo bench -p migrator-core --bench copy` \
             on {} ({}): PostgreSQL 15 -> 18 test clusters on one machine {servers}, {:.0} MB \
             (pgbench scale {scale}, a jsonb table, a partitioned table, secondary indexes), methods \
             interleaved after one untimed warm-up run, a CHECKPOINT on both servers before \
             each, {workers} workers/jobs where a method has them. Time from an empty \
             destination to every table copied with its indexes; for the tool, the whole run \
             from process start to cutover ready at the default `poll_interval` (5 s) with \
             `stable_for` = 0, and beside it its copy phase (from the first status that shows \
             bytes copied to every table copied, indexed, analyzed and streaming).\n\n\
             | method | median | ratio to raw pipe | copy phase |\n|---|---:|---:|---:|\n",
            if durable_servers { "" } else { ", fsync off" },
            u8::from(durable_servers),
            report::machine(),
            humantime::format_rfc3339_seconds(SystemTime::now()),
            bytes as f64 / 1_048_576.0
        );
        for ((method, time), copy) in methods.iter().zip(&medians).zip(&copy_medians) {
            let line = format!(
                "| {method} | {:.2} s | {:.2}x | {} |\n",
                time.as_secs_f64(),
                time.as_secs_f64() / raw,
                copy.map_or("".to_owned(), |c| format!("{:.2} s", c.as_secs_f64()))
            );
            print!("{line}");
            section.push_str(&line);
        }
        if report::env_number("BENCH_EXTRAS", 1) == 1 {
            let limit = report::env_number("BENCH_LIMIT_MB", 20);
            section.push_str(
                "\nThe limiter: fast mode with a rate limit, the copy rate the status reports \
                 (bytes read from the source over the last 3 s) sampled every 250 ms while the \
                 copy runs.\n\n| setting | median | p10 - p90 | median vs limit | samples |\n\
                 |---|---:|---:|---:|---|\n",
            );
            section.push_str(&limiter(&source, &destination, limit).await);
            section.push('\n');
            section.push_str(&lag_and_memory(&source, &destination, 30).await);
        }
        report::write_section(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
            &if durable_servers {
                format!("copy-scale-{scale}")
            } else {
                format!("copy-scale-{scale}-fsync-off")
            },
            &section,
        );
    });
}
