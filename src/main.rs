//! postgres-migrator: parse arguments, load configuration, hand over to the library.

mod backup;
mod cli;
mod commands;
mod demo;

use std::process::ExitCode;

use clap::Parser;
use migrator_core::config::{ConfigSource, LogFormat, Settings};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use web_ui::LogBuffer;

use cli::{Cli, Command, LogFormatArg};

/// Exit code for a configuration or usage problem.
pub const EXIT_CONFIG: u8 = 2;

/// How long the process waits at exit for its database connections to close cleanly.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Recent events kept per mapping for the dashboard's Logs tab.
const LOG_EVENTS_PER_MAPPING: usize = 500;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match migrator_core::config::load(&ConfigSource {
        file: cli.config.clone(),
        env: None,
    }) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("postgres-migrator: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let logs = match init_logging(&settings, cli.log_format) {
        Ok(logs) => logs,
        Err(e) => {
            eprintln!("postgres-migrator: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("postgres-migrator: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let code = dispatch(cli.command, settings, logs).await;
        // Every client is dropped by now: let each connection say Terminate to its server
        // before the runtime, and with it the connection tasks, goes away.
        let open = migrator_core::pg::wait_until_closed(CLOSE_TIMEOUT).await;
        if open > 0 {
            tracing::debug!(open, "database connections still open at exit");
        }
        code
    })
}

async fn dispatch(command: Command, settings: Settings, logs: LogBuffer) -> ExitCode {
    match command {
        Command::Config => {
            print!("{}", settings.to_redacted_toml());
            for note in settings.notes() {
                println!("# note: {note}");
            }
            ExitCode::SUCCESS
        }
        Command::Demo { complete } => demo::run(settings, logs, complete, shutdown_signal()).await,
        Command::Run => commands::run(settings, logs, shutdown_signal()).await,
        Command::Check { schema: false, .. } => commands::check(settings).await,
        Command::Check {
            schema: true,
            mapping,
        } => commands::check_schema(settings, mapping.as_deref()).await,
        Command::Status { json } => commands::status(settings, json).await,
        Command::Instructions { mapping } => commands::instructions(settings, &mapping).await,
        Command::Complete { mapping, force } => commands::complete(settings, &mapping, force).await,
        Command::Resync { mapping } => commands::resync(settings, &mapping).await,
        Command::Backup { action } => backup::run(settings, action, shutdown_signal()).await,
        Command::Purge {
            mapping,
            database,
            tables,
            drop,
        } => {
            let request = migrator_core::phases::purge::Request { tables, drop };
            commands::purge(settings, &mapping, &database, &request).await
        }
        Command::Verify {
            mapping,
            database,
            table,
            exact,
        } => commands::verify(settings, &mapping, database, table, exact).await,
    }
}

/// Crates whose debug output holds statement text or connection details: kept at info.
const QUIET_TARGETS: [&str; 3] = [
    "tokio_postgres=info",
    "postgres_protocol=info",
    "rustls=info",
];

/// Logging to stdout: level from RUST_LOG, else `log.level`; format from `--log-format`, else
/// `log.format`. Events about a mapping are also kept for the dashboard's Logs tab.
fn init_logging(settings: &Settings, format: Option<LogFormatArg>) -> Result<LogBuffer, String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| format!("RUST_LOG `{directives}` is not a valid filter: {e}"))?,
        _ => EnvFilter::try_new(&settings.log.level).map_err(|e| {
            format!(
                "log.level `{}` is not a valid filter ({e}); use e.g. \"info\" or \"info,migrator_core=debug\"",
                settings.log.level
            )
        })?,
    };
    // tokio-postgres logs every statement's text at debug level, and some statements carry a
    // secret (CREATE SUBSCRIPTION's connection string, ALTER ROLE ... PASSWORD): its debug output
    // stays off whatever level is asked for. The tool's own events never hold a statement.
    let filter = QUIET_TARGETS.iter().fold(filter, |filter, directive| {
        filter.add_directive(directive.parse().expect("a valid directive"))
    });
    let json = match format {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Pretty) => false,
        None => settings.log.format == LogFormat::Json,
    };
    let logs = LogBuffer::new(LOG_EVENTS_PER_MAPPING);
    let stdout = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(std::io::stdout);
    let stdout = if json {
        stdout.json().flatten_event(true).boxed()
    } else {
        stdout.boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stdout)
        .with(logs.layer())
        .init();
    Ok(logs)
}

/// A token cancelled on SIGINT or SIGTERM; every task watches it and finishes its current step.
fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
        cancel.cancel();
    });
    token
}
