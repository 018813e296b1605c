//! `postgres-migrator demo`: a real migration between two local clusters, from one command.
//!
//! Starts a PostgreSQL 15 source and an 18 destination (the testkit's throw-away clusters),
//! loads the sample databases, keeps a write load running, and migrates them with the real
//! orchestrator, serving the dashboard, until cutover ready. Then it does what an operator
//! does: stops the writes, and waits for "Mark complete" on the dashboard (or does it itself with
//! `--complete`). It verifies the data twice, as an operator would: online while the writes
//! still run (at cutover ready), and exactly once complete, both shown on the Verify tab.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use migrator_core::config::{MappingSettings, Settings};
use migrator_core::orchestrator;
use migrator_core::phase::Phase;
use migrator_core::status::{Snapshot, VerifyMode, VerifyOutcome, VerifyStatus};
use migrator_core::testkit::{Cluster, sample};
use migrator_core::verify;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use web_ui::LogBuffer;

/// Rows in each sample database's main table.
const SAMPLE_ROWS: i64 = 50_000;
const MAPPING: &str = "demo";

pub async fn run(
    settings: Settings,
    logs: LogBuffer,
    complete: bool,
    shutdown: CancellationToken,
) -> ExitCode {
    match demo(settings, logs, complete, shutdown).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("postgres-migrator demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(
    mut settings: Settings,
    logs: LogBuffer,
    auto_complete: bool,
    shutdown: CancellationToken,
) -> Result<ExitCode, String> {
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
            schema_exclude: Vec::new(),
            pooler: None,
        },
    );
    settings.migration.poll_interval = Duration::from_secs(1);
    settings.migration.stable_for = Duration::from_secs(5);
    settings.server.refresh_interval = Duration::from_secs(2);

    let started = Instant::now();
    let run = CancellationToken::new();
    let handle = orchestrator::start(&settings, run.clone()).map_err(|p| format!("{p:?}"))?;
    let server = crate::commands::serve_dashboard(&settings, &handle, logs, run.clone());
    println!("Dashboard: {}", dashboard_url(&settings));
    println!("Migrating (poll every 1 s; cutover ready once every condition holds for 5 s)...\n");
    let progress = tokio::spawn(crate::commands::log_progress(
        handle.status.clone(),
        run.clone(),
    ));
    let commands = handle.commands.clone();
    let mut status = handle.status.clone();
    let tasks = Tasks {
        run: run.clone(),
        joins: vec![handle.join, progress, server_done(server)],
    };
    let Some(ready) = wait_for(&mut status, &shutdown, &run, Phase::CutoverReady).await else {
        return interrupted(tasks, &shutdown, &settings).await;
    };
    let to_ready = started.elapsed();
    let mapping = ready.mapping(MAPPING).expect("the demo mapping").clone();
    let bytes: u64 = mapping.databases.iter().map(|d| d.bytes_total()).sum();
    println!(
        "\nCUTOVER READY after {:.1} s: {} databases, {:.1} MB of tables copied while the write load ran.\n",
        to_ready.as_secs_f64(),
        mapping.databases.len(),
        bytes as f64 / 1_048_576.0
    );
    println!("{}", mapping.instructions);

    println!("Verifying online while the writes still run (every table, in key ranges)...");
    let Some(online) =
        verify_with(&commands, &mut status, &shutdown, &run, VerifyMode::Online).await?
    else {
        return interrupted(tasks, &shutdown, &settings).await;
    };
    // The summary; the whole report when something was not proven (rows the load kept
    // changing are named, with the query to look at them).
    let shown = if online.outcome() == VerifyOutcome::Equal {
        1
    } else {
        usize::MAX
    };
    for line in verify::report::lines(MAPPING, &online).iter().take(shown) {
        println!("  {line}");
    }

    println!("Stopping the write load, as step 2 says...");
    let rounds = load.stop().await.map_err(|e| e.to_string())?;
    println!("  {rounds} write transactions ran during the migration.");
    if auto_complete {
        println!(
            "Marking {MAPPING} complete (waits for zero lag, final sequence sync, drops slots)..."
        );
        let done = orchestrator::request_complete(&commands, MAPPING)
            .await
            .map_err(|e| e.to_string())?;
        for line in done {
            println!("  {line}");
        }
    } else {
        println!(
            "\nNow press \"Mark complete\" on {}mappings/{MAPPING} (or Ctrl-C to stop here).",
            dashboard_url(&settings)
        );
    }
    if wait_for(&mut status, &shutdown, &run, Phase::Completed)
        .await
        .is_none()
    {
        return interrupted(tasks, &shutdown, &settings).await;
    }

    println!("Verifying every table exactly, now that writes stopped...");
    let Some(exact) =
        verify_with(&commands, &mut status, &shutdown, &run, VerifyMode::Exact).await?
    else {
        return interrupted(tasks, &shutdown, &settings).await;
    };
    for line in verify::report::lines(MAPPING, &exact) {
        println!("  {line}");
    }
    let all_equal = exact.outcome() == VerifyOutcome::Equal;
    println!(
        "\nDone: {} databases migrated from PostgreSQL 15 to 18 under write load; cutover ready after {:.1} s; {}.",
        mapping.databases.len(),
        to_ready.as_secs_f64(),
        if all_equal {
            "every table is equal on both sides"
        } else {
            "SOME TABLES DIFFER"
        }
    );
    let code = if all_equal {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if !auto_complete {
        println!("The dashboard stays up; press Ctrl-C to stop and remove the clusters.");
        shutdown.cancelled().await;
    }
    println!("The clusters are removed now.");
    Ok(tasks.stop(code).await)
}

/// The demo's background tasks: orchestrator, progress log, web server.
struct Tasks {
    run: CancellationToken,
    joins: Vec<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    /// Stops them all and waits for them; returns `code`.
    async fn stop(self, code: ExitCode) -> ExitCode {
        self.run.cancel();
        for join in self.joins {
            let _ = join.await;
        }
        code
    }
}

fn server_done(server: tokio::task::JoinHandle<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = server.await;
    })
}

/// Stops the tasks after a wait ended early: by Ctrl-C (success), or because the dashboard could
/// not listen, which cancels the run (an error that says what to do).
async fn interrupted(
    tasks: Tasks,
    shutdown: &CancellationToken,
    settings: &Settings,
) -> Result<ExitCode, String> {
    let by_operator = shutdown.is_cancelled();
    tasks.stop(ExitCode::SUCCESS).await;
    if by_operator {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!(
            "the dashboard could not listen on {} (is the port in use?); pick another with \
             MIGRATOR__SERVER__LISTEN=127.0.0.1:9090",
            settings.server.listen
        ))
    }
}

/// Waits until the demo mapping reaches `phase`; `None` when stopped first.
async fn wait_for(
    status: &mut watch::Receiver<Arc<Snapshot>>,
    shutdown: &CancellationToken,
    run: &CancellationToken,
    phase: Phase,
) -> Option<Arc<Snapshot>> {
    loop {
        let snapshot = status.borrow_and_update().clone();
        if snapshot.mapping(MAPPING).is_some_and(|m| m.phase == phase) {
            return Some(snapshot);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = run.cancelled() => return None,
            changed = status.changed() => if changed.is_err() { return None },
        }
    }
}

/// Starts a verification of the demo mapping through the orchestrator (so the dashboard's Verify
/// tab shows it) and waits for it to finish; `None` when stopped first.
async fn verify_with(
    commands: &tokio::sync::mpsc::Sender<orchestrator::Command>,
    status: &mut watch::Receiver<Arc<Snapshot>>,
    shutdown: &CancellationToken,
    run: &CancellationToken,
    mode: VerifyMode,
) -> Result<Option<VerifyStatus>, String> {
    let asked = std::time::SystemTime::now() - Duration::from_secs(1);
    let request = verify::Request {
        mode,
        database: None,
        table: None,
    };
    orchestrator::request_verify(commands, MAPPING, request)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let finished = status
            .borrow_and_update()
            .mapping(MAPPING)
            .and_then(|m| m.verify.clone())
            .filter(|v| v.mode == mode && v.started_at >= asked && v.finished_at.is_some());
        if let Some(v) = finished {
            return Ok(Some(v));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = run.cancelled() => return Ok(None),
            changed = status.changed() => if changed.is_err() { return Ok(None) },
        }
    }
}

/// Where to point a browser: `server.listen`, with a wildcard address shown as 127.0.0.1.
fn dashboard_url(settings: &Settings) -> String {
    let listen: SocketAddr = settings
        .server
        .listen
        .parse()
        .expect("server.listen was validated");
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        listen.ip().to_string()
    };
    format!("http://{host}:{}/", listen.port())
}
