//! postgres-migrator: parse arguments, load configuration, hand over to the library.

mod cli;
mod demo;

use std::process::ExitCode;

use clap::Parser;
use migrator_core::config::{ConfigSource, LogFormat, Settings};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, LogFormatArg};

/// Exit code for a configuration or usage problem.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a command this version cannot do yet.
const EXIT_NOT_YET: u8 = 4;

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
    if let Err(e) = init_logging(&settings, cli.log_format) {
        eprintln!("postgres-migrator: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("postgres-migrator: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(dispatch(cli.command, settings))
}

async fn dispatch(command: Command, settings: Settings) -> ExitCode {
    match command {
        Command::Config => {
            print!("{}", settings.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Command::Demo => demo::run(shutdown_signal()).await,
        Command::Run
        | Command::Check
        | Command::Status { .. }
        | Command::Instructions { .. }
        | Command::Complete { .. } => not_yet(&command),
    }
}

fn not_yet(command: &Command) -> ExitCode {
    eprintln!(
        "postgres-migrator: `{}` is not built yet: it arrives with the migration pipeline.",
        format!("{command:?}")
            .split([' ', '{'])
            .next()
            .unwrap_or("")
            .to_lowercase()
    );
    ExitCode::from(EXIT_NOT_YET)
}

/// Logging to stdout: level from RUST_LOG, else `log.level`; format from `--log-format`, else
/// `log.format`.
fn init_logging(settings: &Settings, format: Option<LogFormatArg>) -> Result<(), String> {
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
    let json = match format {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Pretty) => false,
        None => settings.log.format == LogFormat::Json,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    Ok(())
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
