//! `postgres-migrator demo`: a real migration between two local clusters, from one command.
//!
//! Starts a PostgreSQL 15 source and an 18 destination (the testkit's throw-away clusters),
//! loads the sample databases, keeps a write load running, and migrates them with the real
//! orchestrator until cutover ready. Then it cuts over as an operator would: stops the writes,
//! completes the mapping, and proves every table equal on both sides.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use migrator_core::config::{MappingSettings, Settings};
use migrator_core::orchestrator::{self, oneshot};
use migrator_core::phase::Phase;
use migrator_core::phases::{DbConn, MappingContext};
use migrator_core::testkit::{Cluster, sample};
use migrator_core::verify;
use tokio_util::sync::CancellationToken;

/// Rows in each sample database's main table.
const SAMPLE_ROWS: i64 = 50_000;
const MAPPING: &str = "demo";

pub async fn run(settings: Settings, shutdown: CancellationToken) -> ExitCode {
    match demo(settings, shutdown).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("postgres-migrator demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(mut settings: Settings, shutdown: CancellationToken) -> Result<ExitCode, String> {
    println!("Starting a PostgreSQL 15 source and a PostgreSQL 18 destination cluster...");
    let (source, destination) = tokio::task::spawn_blocking(Cluster::start_pair)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    println!("  source       127.0.0.1:{}", source.port());
    println!("  destination  127.0.0.1:{}", destination.port());

    println!("Loading sample data: databases {:?}...", sample::DATABASES);
    sample::load(&source, SAMPLE_ROWS)
        .await
        .map_err(|e| e.to_string())?;
    let load = sample::WriteLoad::start(&source)
        .await
        .map_err(|e| e.to_string())?;
    println!("A write load now runs against every sample database.");

    settings.mappings.clear();
    settings.mappings.insert(
        MAPPING.into(),
        MappingSettings {
            source: source.connection_settings(),
            destination: destination.connection_settings(),
            databases: Default::default(),
            rate_limit_mb_per_s: None,
            role_conflict_strategy: None,
            no_pk_remedy: None,
        },
    );
    settings.migration.poll_interval = Duration::from_secs(1);
    settings.migration.stable_for = Duration::from_secs(5);
    println!("Migrating (poll every 1 s; cutover ready once every condition holds for 5 s)...\n");

    let started = Instant::now();
    let run = CancellationToken::new();
    let handle = orchestrator::start(&settings, run.clone()).map_err(|p| format!("{p:?}"))?;
    let progress = tokio::spawn(crate::commands::log_progress(
        handle.status.clone(),
        run.clone(),
    ));
    let mut status = handle.status.clone();
    let ready = loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                run.cancel();
                let _ = handle.join.await;
                return Ok(ExitCode::SUCCESS);
            }
            changed = status.changed() => if changed.is_err() { return Err("the orchestrator stopped".into()) },
        }
        let snapshot = status.borrow_and_update().clone();
        if snapshot
            .mapping(MAPPING)
            .is_some_and(|m| m.phase == Phase::CutoverReady)
        {
            break snapshot;
        }
    };
    let to_ready = started.elapsed();
    let mapping = ready.mapping(MAPPING).expect("the demo mapping");
    let bytes: u64 = mapping.databases.iter().map(|d| d.bytes_total()).sum();
    println!(
        "\nCUTOVER READY after {:.1} s: {} databases, {:.1} MB of tables copied while the write load ran.\n",
        to_ready.as_secs_f64(),
        mapping.databases.len(),
        bytes as f64 / 1_048_576.0
    );
    println!(
        "{}",
        oneshot::instructions(&settings, MAPPING)
            .await
            .map_err(|e| e.to_string())?
    );

    println!("Cutting over as those steps say: stopping the write load...");
    let rounds = load.stop().await.map_err(|e| e.to_string())?;
    run.cancel();
    let _ = handle.join.await;
    let _ = progress.await;
    println!("  {rounds} write transactions ran during the migration.");
    println!("Completing the mapping (waits for zero lag, final sequence sync, drops slots)...");
    for line in oneshot::complete(&settings, MAPPING, false)
        .await
        .map_err(|e| e.to_string())?
    {
        println!("  {line}");
    }

    println!("Verifying every table on both sides (row count and content digest)...");
    let ctx = MappingContext::new(MAPPING, &settings.mappings[MAPPING], &settings.migration)
        .map_err(|p| format!("{p:?}"))?;
    let mut all_equal = true;
    let mut rows = 0;
    for db in &mapping.databases {
        let mut src = DbConn::new(&ctx.source, &db.name);
        let mut dst = DbConn::new(&ctx.destination, &db.name);
        let (st, dt) = (src.target(), dst.target());
        let src = src.get().await.map_err(|e| e.to_string())?;
        let dst = dst.get().await.map_err(|e| e.to_string())?;
        let tables = verify::compare_database(src, &st, dst, &dt)
            .await
            .map_err(|e| e.to_string())?;
        let equal = tables.iter().filter(|t| t.equal).count();
        rows += tables.iter().map(|t| t.source_rows).sum::<i64>();
        all_equal &= equal == tables.len();
        println!(
            "  {:<66} {equal}/{} tables equal",
            format!("{:?}", db.name),
            tables.len()
        );
        for t in tables.iter().filter(|t| !t.equal) {
            println!(
                "    DIFFERENT: {} ({} rows on the source, {:?} on the destination)",
                t.table, t.source_rows, t.destination_rows
            );
        }
    }
    println!(
        "\nDone: {rows} rows in {} databases migrated from PostgreSQL 15 to 18 under write load; cutover ready after {:.1} s; {}.",
        mapping.databases.len(),
        to_ready.as_secs_f64(),
        if all_equal {
            "every table is equal on both sides"
        } else {
            "SOME TABLES DIFFER"
        }
    );
    println!("The clusters are removed now.");
    Ok(if all_equal {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
