//! The subcommands that work on the configured mappings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use migrator_core::config::Settings;
use migrator_core::findings::Finding;
use migrator_core::orchestrator::{self, commands};
use migrator_core::phase::Phase;
use migrator_core::status::Snapshot;
use tokio_util::sync::CancellationToken;
use web_ui::LogBuffer;

/// Exit code when preflight finds a blocking problem or a command is refused.
pub const EXIT_BLOCKED: u8 = 3;
/// `check --schema` found a difference.
pub const EXIT_DIFFERENT: u8 = 4;

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("postgres-migrator: {e}");
    ExitCode::FAILURE
}

/// `run`: the reconcile loops until SIGTERM/SIGINT; phase changes are logged.
pub async fn run(settings: Settings, logs: LogBuffer, shutdown: CancellationToken) -> ExitCode {
    if settings.mappings.is_empty() {
        eprintln!(
            "postgres-migrator: no mappings configured; add [mappings.NAME] with source and destination (see config/default.toml), or try `postgres-migrator demo`"
        );
        return ExitCode::from(crate::EXIT_CONFIG);
    }
    let handle = match orchestrator::start(&settings, shutdown.clone()) {
        Ok(h) => h,
        Err(problems) => {
            for p in problems {
                eprintln!("postgres-migrator: {p}");
            }
            return ExitCode::from(crate::EXIT_CONFIG);
        }
    };
    tracing::info!(mappings = settings.mappings.len(), "orchestrator started");
    let server = serve_dashboard(&settings, &handle, logs, shutdown.clone());
    log_progress(handle.status.clone(), shutdown.clone()).await;
    let _ = handle.join.await;
    let served = server.await.unwrap_or(false);
    tracing::info!("stopped");
    if served {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Serves the dashboard and API on `server.listen` until `shutdown`; if the server cannot run
/// (address in use), logs why and cancels `shutdown`. The task's result: whether it served.
/// Warns first when anyone who can reach that address may send commands (no admin token).
pub fn serve_dashboard(
    settings: &Settings,
    handle: &orchestrator::Handle,
    logs: LogBuffer,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<bool> {
    let listen: SocketAddr = settings
        .server
        .listen
        .parse()
        .expect("server.listen was validated");
    if let Some(warning) = settings.server.open_commands_warning() {
        tracing::warn!("{warning}");
    }
    for note in settings.notes() {
        tracing::info!("{note}");
    }
    let state = web_ui::AppState::new(
        settings,
        handle.status.clone(),
        handle.commands.clone(),
        logs,
    );
    tokio::spawn(async move {
        let served = web_ui::serve(listen, state, shutdown.clone()).await;
        if let Err(e) = &served {
            tracing::error!(address = %listen, error = %e, "the HTTP server failed; stopping (is server.listen free?)");
            shutdown.cancel();
        }
        served.is_ok()
    })
}

/// Logs every phase change, finding and error of every database until `shutdown`.
pub async fn log_progress(
    mut status: tokio::sync::watch::Receiver<std::sync::Arc<Snapshot>>,
    shutdown: CancellationToken,
) {
    let mut seen: BTreeMap<(String, String), (Phase, Option<String>, usize)> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = status.changed() => if changed.is_err() { return },
        }
        let snapshot = status.borrow_and_update().clone();
        for m in &snapshot.mappings {
            for db in &m.databases {
                let key = (m.name.clone(), db.name.clone());
                let now = (db.phase, db.last_error.clone(), db.findings.len());
                if seen.get(&key) != Some(&now) {
                    let lag = db
                        .lag
                        .map(|l| format!("{} B / {:.1} s", l.bytes, l.seconds));
                    let ready = db
                        .tables
                        .iter()
                        .filter(|t| t.state == migrator_core::status::TableState::Ready)
                        .count();
                    tracing::info!(
                        mapping = %m.name,
                        database = %db.name,
                        phase = %db.phase,
                        tables = format!("{ready}/{}", db.tables.len()),
                        lag = lag.as_deref().unwrap_or("-"),
                        error = db.last_error.as_deref().unwrap_or(""),
                        "database status"
                    );
                    for f in &db.findings {
                        tracing::warn!(mapping = %m.name, database = %db.name, "{f}");
                    }
                    seen.insert(key, now);
                }
            }
        }
    }
}

/// `status [--json]`.
pub async fn status(settings: Settings, json: bool) -> ExitCode {
    match commands::status(&settings, None).await {
        Ok(snapshot) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&snapshot).expect("snapshot serialises")
            );
            ExitCode::SUCCESS
        }
        Ok(snapshot) => {
            print!("{}", render_status(&snapshot));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `check`: preflight findings; exit 3 when one blocks.
pub async fn check(settings: Settings) -> ExitCode {
    let snapshot = match commands::status(&settings, None).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut blocking = 0;
    for m in &snapshot.mappings {
        let all: Vec<(String, &Finding)> = m
            .findings
            .iter()
            .map(|f| ("instance".to_owned(), f))
            .chain(m.databases.iter().flat_map(|d| {
                d.findings
                    .iter()
                    .map(move |f| (format!("database {:?}", d.name), f))
            }))
            .collect();
        if all.is_empty() {
            println!(
                "{}: no findings ({} database(s) to migrate)",
                m.name,
                m.databases.len()
            );
        }
        for (scope, f) in all {
            blocking += usize::from(f.is_blocking());
            println!("{} {scope}: {f}", m.name);
        }
    }
    if blocking > 0 {
        println!("{blocking} blocking finding(s): fix them and run check again.");
        ExitCode::from(EXIT_BLOCKED)
    } else {
        ExitCode::SUCCESS
    }
}

/// `check --schema [--mapping M]`: every database's schema compared on both sides.
pub async fn check_schema(settings: Settings, mapping: Option<&str>) -> ExitCode {
    let proofs = match commands::schema_proof(&settings, mapping).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let mut differences = 0;
    for p in &proofs {
        match &p.proof {
            None => println!(
                "{} {:?}: not compared: its schema is not on the destination yet",
                p.mapping, p.database
            ),
            Some(proof) if proof.differences.is_empty() => println!(
                "{} {:?}: schema equal ({} objects compared)",
                p.mapping, p.database, proof.compared
            ),
            Some(proof) => {
                differences += proof.differences.len();
                println!(
                    "{} {:?}: {} difference(s) among {} objects:",
                    p.mapping,
                    p.database,
                    proof.differences.len(),
                    proof.compared
                );
                for d in &proof.differences {
                    println!("  - {}\n    fix: {}", d.describe(), d.remedy());
                }
            }
        }
    }
    if differences > 0 {
        ExitCode::from(EXIT_DIFFERENT)
    } else {
        ExitCode::SUCCESS
    }
}

/// `instructions MAPPING`.
pub async fn instructions(settings: Settings, mapping: &str) -> ExitCode {
    match commands::instructions(&settings, mapping).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `complete MAPPING [--force]`.
pub async fn complete(settings: Settings, mapping: &str, force: bool) -> ExitCode {
    match commands::complete(&settings, mapping, force).await {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            println!("mapping {mapping} is complete.");
            ExitCode::SUCCESS
        }
        Err(e @ (commands::CommandError::Refused(_) | commands::CommandError::Held { .. })) => {
            eprintln!("postgres-migrator: {e}");
            ExitCode::from(EXIT_BLOCKED)
        }
        Err(e) => fail(e),
    }
}

/// `verify`: compares the data of every table on both sides and prints the report; the exit
/// code says the outcome (see `VerifyOutcome::exit_code`).
pub async fn verify(
    settings: Settings,
    mapping: &str,
    database: Option<String>,
    table: Option<String>,
    exact: bool,
) -> ExitCode {
    let request = migrator_core::verify::Request {
        mode: if exact {
            migrator_core::status::VerifyMode::Exact
        } else {
            migrator_core::status::VerifyMode::Online
        },
        database,
        table,
    };
    let last = std::sync::Mutex::new(std::time::Instant::now());
    let progress = |status: &migrator_core::status::VerifyStatus| {
        let mut last = last.lock().expect("progress clock");
        if last.elapsed() >= std::time::Duration::from_secs(10) {
            *last = std::time::Instant::now();
            let t = status.totals();
            eprintln!(
                "verifying {mapping}: {} of {} range(s) checked, {} row(s), {} differing",
                t.checked, t.ranges, t.rows, t.differing
            );
        }
    };
    match commands::verify(&settings, mapping, request, &progress).await {
        Ok(status) => {
            for line in migrator_core::verify::report::lines(mapping, &status) {
                println!("{line}");
            }
            ExitCode::from(status.outcome().exit_code())
        }
        Err(e) => fail(e),
    }
}

/// `resync`: applies the safe part of the schema drift, prints each change and what is left.
pub async fn resync(settings: Settings, mapping: &str) -> ExitCode {
    match commands::resync(&settings, mapping).await {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e @ commands::CommandError::Held { .. }) => {
            eprintln!("postgres-migrator: {e}");
            ExitCode::from(EXIT_BLOCKED)
        }
        Err(e) => fail(e),
    }
}

/// `purge MAPPING --database D [--tables T,...] [--drop]`.
pub async fn purge(
    settings: Settings,
    mapping: &str,
    database: &str,
    request: &migrator_core::phases::purge::Request,
) -> ExitCode {
    match commands::purge(&settings, mapping, database, request).await {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e @ (commands::CommandError::Refused(_) | commands::CommandError::Held { .. })) => {
            eprintln!("postgres-migrator: {e}");
            ExitCode::from(EXIT_BLOCKED)
        }
        Err(e) => fail(e),
    }
}

/// A plain-text table of every mapping and database.
pub fn render_status(snapshot: &Snapshot) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for m in &snapshot.mappings {
        let _ = writeln!(
            out,
            "{}  {} -> {}  [{}]",
            m.name,
            m.source,
            m.destination,
            m.phase.label()
        );
        for f in &m.findings {
            let _ = writeln!(out, "  {f}");
        }
        for db in &m.databases {
            let ready = db
                .tables
                .iter()
                .filter(|t| t.state == migrator_core::status::TableState::Ready)
                .count();
            let lag = db
                .lag
                .map(|l| {
                    format!(
                        "lag {:.1} MB / {:.1} s",
                        l.bytes as f64 / 1_048_576.0,
                        l.seconds
                    )
                })
                .unwrap_or_else(|| "lag -".into());
            let _ = writeln!(
                out,
                "  {:<40} {:<18} tables {ready}/{}  {lag}  sequences behind {}{}",
                format!("{:?}", db.name),
                db.phase.label(),
                db.tables.len(),
                db.sequences_behind,
                if db.cutover_conditions_met && db.phase != Phase::CutoverReady {
                    "  (cutover conditions met)"
                } else {
                    ""
                }
            );
            for f in &db.findings {
                let _ = writeln!(out, "    {f}");
            }
            if let Some(e) = &db.last_error {
                let _ = writeln!(out, "    last error: {e}");
            }
        }
    }
    out
}
