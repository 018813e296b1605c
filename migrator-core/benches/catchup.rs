//! Catch-up under heavy writes, PostgreSQL 15 (and 18) -> 18. After the initial copy, the source
//! runs unthrottled `pgbench -n -c 8 -j 2 -T SECONDS`, then, three times, one transaction that
//! inserts a million rows. For each set of subscription options measured: the source's TPS against the
//! same load with no subscription at all, the lag over time (as the tool's status shows it), the
//! time from the end of the load until the slot has confirmed everything written, and the same
//! for the bulk insert. A source on 18 as well, since `streaming = parallel` needs a source on 16
//! or later. Writes the table to docs/BENCHMARKS.md. Not a test: nothing here passes or fails.
//!
//!     BENCH_SCALE=10 BENCH_SECONDS=60 cargo bench -p migrator-core --bench catchup
//!
//! `BENCH_BULK_ROWS` (default 1000000) sizes the bulk insert, `BENCH_BULK_ROUNDS` (default 3)
//! says how often it runs, `BENCH_CLIENTS` (default 8) sets the pgbench clients;
//! `BENCH_VARIANTS=0,2` measures those entries of `VARIANTS` only (printed, not written).

#[allow(dead_code)] // each bench uses a part
mod common;
#[path = "../../benches/report.rs"]
mod report;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use migrator_core::orchestrator::{self, commands};
use migrator_core::phase::Phase;
use migrator_core::testkit::{Cluster, ClusterOptions};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use common::*;

/// Subscription options measured, per source major version: a label, `subscription_binary`,
/// `subscription_streaming`. A source on 15 speaks protocol version 3, where `parallel` acts
/// as `on`; a source on 16 or later applies streamed transactions in parallel, so an 18 source
/// shows what `parallel` itself changes.
const VARIANTS: [(u32, &str, bool, &str); 6] = [
    (
        15,
        "binary = false, streaming = parallel (default; acts as on)",
        false,
        "parallel",
    ),
    (15, "binary = true, streaming = parallel", true, "parallel"),
    (15, "binary = false, streaming = off", false, "off"),
    (
        18,
        "binary = false, streaming = parallel (default)",
        false,
        "parallel",
    ),
    (18, "binary = false, streaming = on", false, "on"),
    (18, "binary = false, streaming = off", false, "off"),
];

/// The source's current WAL position, in bytes from 0/0.
async fn wal_position(source: &Client) -> i64 {
    source
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Waits until every logical slot on the source has confirmed the WAL written so far; returns
/// how long that took, and the largest lag (MB) seen meanwhile (sampled every 100 ms).
async fn drain(source: &Client) -> (Duration, f64) {
    let start = Instant::now();
    let target: String = source
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let mut peak: f64 = 0.0;
    loop {
        let row = source
            .query_one(
                "SELECT coalesce(bool_and(confirmed_flush_lsn >= $1::text::pg_lsn), false), \
                   coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), 0)::float8 \
                 FROM pg_replication_slots WHERE slot_type = 'logical'",
                &[&target],
            )
            .await
            .unwrap();
        peak = peak.max(row.get::<_, f64>(1) / 1_048_576.0);
        if row.get(0) {
            return (start.elapsed(), peak);
        }
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "not drained after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// VACUUM and CHECKPOINT on the source, and a CHECKPOINT on the destination: each run starts
/// from the same state of the tables and with nothing left to write.
async fn settle(source: &Cluster, destination: &Cluster) {
    let src = connect(source, DB).await;
    for sql in ["TRUNCATE bulk", "VACUUM ANALYZE", "CHECKPOINT"] {
        src.batch_execute(sql).await.unwrap();
    }
    connect(destination, "postgres")
        .await
        .batch_execute("CHECKPOINT")
        .await
        .unwrap();
}

/// One transaction inserting `rows` rows of about 100 bytes; returns how long it took.
async fn bulk_insert(source: &Client, rows: u64) -> Duration {
    let start = Instant::now();
    source
        .batch_execute(&format!(
            "INSERT INTO bulk (payload) SELECT repeat(md5(g::text), 3) \
             FROM generate_series(1, {rows}) g"
        ))
        .await
        .unwrap();
    start.elapsed()
}

/// What one run measured.
struct Run {
    tps: f64,
    wal_mb_per_s: f64,
    /// Lag in MB and seconds, sampled every second of the load.
    lag_mb: Vec<f64>,
    lag_seconds: Vec<f64>,
    drain: Duration,
    /// Per bulk insert: how long it took, the largest lag after its commit (MB), and how long
    /// the slot took to confirm it.
    bulk: Vec<(Duration, f64, Duration)>,
}

/// The load and the bulk insert on the source, with no subscription (`settings` is `None`) or
/// with the tool running a mapping that has copied the database and is cutover ready.
async fn run(
    source: &Cluster,
    destination: &Cluster,
    settings: Option<&migrator_core::config::Settings>,
    load: &Load,
) -> Run {
    reset_destination(destination).await;
    settle(source, destination).await;
    let tool = settings.map(|settings| {
        let shutdown = CancellationToken::new();
        (
            orchestrator::start(settings, shutdown.clone()).unwrap(),
            shutdown,
        )
    });
    if let Some((handle, _)) = &tool {
        let mut status = handle.status.clone();
        while status
            .borrow()
            .mapping("bench")
            .is_none_or(|m| m.phase != Phase::CutoverReady)
        {
            status.changed().await.unwrap();
        }
    }
    let src = connect(source, DB).await;
    let wal_before = wal_position(&src).await;
    let start = Instant::now();
    let pgbench = pgbench(source, load.clients, load.seconds);
    let (mut lag_mb, mut lag_seconds) = (Vec::new(), Vec::new());
    while !pgbench.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some((handle, _)) = &tool
            && let Some(lag) = handle
                .status
                .borrow()
                .mapping("bench")
                .and_then(|m| m.lag())
        {
            lag_mb.push(lag.bytes as f64 / 1_048_576.0);
            lag_seconds.push(lag.seconds);
        }
    }
    let tps = pgbench.await.unwrap();
    let wal_mb_per_s = (wal_position(&src).await - wal_before) as f64
        / 1_048_576.0
        / start.elapsed().as_secs_f64();
    let drained = if tool.is_some() {
        drain(&src).await.0
    } else {
        Duration::ZERO
    };
    let mut bulk = Vec::new();
    for _ in 0..load.bulk_rounds {
        let took = bulk_insert(&src, load.bulk_rows).await;
        let (drained, peak) = if tool.is_some() {
            drain(&src).await
        } else {
            (Duration::ZERO, 0.0)
        };
        bulk.push((took, peak, drained));
    }
    if let (Some((handle, shutdown)), Some(settings)) = (tool, settings) {
        shutdown.cancel();
        handle.join.await.unwrap();
        commands::complete(settings, "bench", true).await.unwrap();
    }
    Run {
        tps,
        wal_mb_per_s,
        lag_mb,
        lag_seconds,
        drain: drained,
        bulk,
    }
}

/// The load's settings.
struct Load {
    clients: u32,
    seconds: u64,
    bulk_rows: u64,
    /// Bulk inserts one after the other, each drained before the next.
    bulk_rounds: u64,
}

/// A table row for `run`, measured with options `label` on a source on `major`.
fn describe(major: u32, label: &str, run: &Run, base: f64) -> String {
    let lag = if run.lag_mb.is_empty() {
        String::new()
    } else {
        format!(
            "{:.2} / {:.2} / {:.2} s; {:.1} / {:.1} / {:.1} MB",
            quantile(&run.lag_seconds, 0.5),
            quantile(&run.lag_seconds, 0.95),
            quantile(&run.lag_seconds, 1.0),
            quantile(&run.lag_mb, 0.5),
            quantile(&run.lag_mb, 0.95),
            quantile(&run.lag_mb, 1.0),
        )
    };
    let seconds = |pick: fn(&(Duration, f64, Duration)) -> Duration| -> Vec<f64> {
        run.bulk.iter().map(|b| pick(b).as_secs_f64()).collect()
    };
    let (inserts, drains) = (seconds(|b| b.0), seconds(|b| b.2));
    let peak = run.bulk.iter().map(|b| b.1).fold(0.0, f64::max);
    let line = format!(
        "| {major} | {label} | {:.0} ({:+.0} %) | {:.2} | {lag} | {:.1} s | {:.1} s | {peak:.0} MB | {:.1} s ({:.1} - {:.1}) |\n",
        run.tps,
        (run.tps - base) / base * 100.0,
        run.wal_mb_per_s,
        run.drain.as_secs_f64(),
        quantile(&inserts, 0.5),
        quantile(&drains, 0.5),
        quantile(&drains, 0.0),
        quantile(&drains, 1.0),
    );
    print!("{line}");
    line
}

/// A source on `major` and an 18 destination, pgbench data at `scale`, and a run without a
/// subscription before and after the `chosen` variants of that source version. Returns the
/// table rows and the lag series.
async fn measure(major: u32, scale: u64, load: &Load, chosen: &[usize]) -> (String, String) {
    let mut options = durable(ClusterOptions::source());
    options.major = major;
    let source = std::thread::spawn(move || Cluster::start(&options));
    let destination = Cluster::start(&durable(ClusterOptions::destination())).unwrap();
    let source = source.join().unwrap().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {DB}"))
        .await
        .unwrap();
    tool(
        "pgbench",
        &source,
        &["-i", "-q", "-s", &scale.to_string(), DB],
    );
    connect(&source, DB)
        .await
        .batch_execute(
            "CREATE TABLE bulk (id bigserial PRIMARY KEY, payload text NOT NULL, \
               at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
    let before = run(&source, &destination, None, load).await;
    let mut rows = describe(major, "no subscription (before)", &before, before.tps);
    let mut series = String::new();
    for (i, (_, label, binary, streaming)) in VARIANTS.iter().enumerate() {
        if VARIANTS[i].0 != major || !chosen.contains(&i) {
            continue;
        }
        let settings = settings(
            &source,
            &destination,
            &[
                (
                    "MIGRATOR__MIGRATION__SUBSCRIPTION_BINARY",
                    binary.to_string(),
                ),
                (
                    "MIGRATOR__MIGRATION__SUBSCRIPTION_STREAMING",
                    (*streaming).to_owned(),
                ),
            ],
        );
        let measured = run(&source, &destination, Some(&settings), load).await;
        rows.push_str(&describe(major, label, &measured, before.tps));
        let every_5s: Vec<String> = measured
            .lag_mb
            .iter()
            .step_by(5)
            .map(|mb| format!("{mb:.0}"))
            .collect();
        let line = format!("- source {major}, {label}: {}\n", every_5s.join(" "));
        print!("lag MB every 5 s {line}");
        series.push_str(&line);
    }
    let after = run(&source, &destination, None, load).await;
    rows.push_str(&describe(
        major,
        "no subscription (after)",
        &after,
        before.tps,
    ));
    (rows, series)
}

fn main() {
    let scale = report::env_number("BENCH_SCALE", 10);
    let load = Load {
        clients: report::env_number("BENCH_CLIENTS", 8) as u32,
        seconds: report::env_number("BENCH_SECONDS", 60),
        bulk_rows: report::env_number("BENCH_BULK_ROWS", 1_000_000),
        bulk_rounds: report::env_number("BENCH_BULK_ROUNDS", 3).max(1),
    };
    let chosen = report::env_indexes("BENCH_VARIANTS", VARIANTS.len());
    report::block_on(async {
        println!(
            "pgbench scale {scale}, {} clients for {} s, bulk insert of {} rows",
            load.clients, load.seconds, load.bulk_rows
        );
        let (mut rows, mut series) = (String::new(), String::new());
        for major in [15, 18] {
            if VARIANTS
                .iter()
                .enumerate()
                .any(|(i, v)| v.0 == major && chosen.contains(&i))
            {
                let (r, s) = measure(major, scale, &load, &chosen).await;
                rows.push_str(&r);
                series.push_str(&s);
            }
        }
        if chosen.len() != VARIANTS.len() {
            return;
        }
        let section = format!(
            "## Catch-up under heavy writes\n\n`BENCH_SCALE={scale} BENCH_SECONDS={seconds} cargo bench -p \
             migrator-core --bench catchup` on {} ({}): PostgreSQL test clusters on one machine \
             with fsync, synchronous_commit and full_page_writes on, a source on 15 (what the tool \
             supports first) and one on 18 (to see `streaming = parallel` at work, which needs a \
             source on 16 or later), an 18 destination, pgbench scale {scale}. For each set of \
             subscription options the tool copies the database and is cutover ready; then the \
             source runs unthrottled `pgbench -n -c {clients} -j 2 -T {seconds}` (lag as the \
             tool's status shows it, sampled every second), then {bulk_rounds} times one \
             transaction inserting {bulk_rows} rows of about 100 bytes (medians; the drain's range \
             in brackets). Drain: from the end of the load (or the insert's commit) until every \
             slot has confirmed the WAL written so far. The runs without a \
             subscription (no slot on the source) before and after give the source's own TPS; \
             each run starts after VACUUM and CHECKPOINT.\n\n\
             | source | subscription | source TPS (vs before) | source WAL MB/s | lag during the load p50 / p95 / max | drain after the load | bulk: insert time | bulk: largest lag after commit | bulk: drain after commit |\n\
             |---:|---|---:|---:|---|---:|---:|---:|---:|\n{rows}\nLag in MB during the load, every 5 s:\n\n{series}",
            report::machine(),
            humantime::format_rfc3339_seconds(SystemTime::now()),
            seconds = load.seconds,
            clients = load.clients,
            bulk_rows = load.bulk_rows,
            bulk_rounds = load.bulk_rounds,
        );
        report::write_section(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
            "catchup",
            &section,
        );
    });
}
