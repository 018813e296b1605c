//! The web layer: an axum router over the orchestrator's status snapshot.
//!
//! It never opens a database connection: it reads the latest [`Snapshot`] from a `watch`
//! channel and sends [`Command`]s to the orchestrator through a channel that migrator-core
//! defines. [`app`] builds the whole router, so tests drive it with `tower::ServiceExt::oneshot`.
//! Pages are leptos views rendered to HTML on the server (no wasm, no hydration); a few lines of
//! script re-fetch them, and they work with JavaScript off.

mod api;
mod csrf;
mod error;
mod history;
mod logs;
mod metrics;
mod origin;
mod pages;
mod router;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use migrator_core::config::Settings;
use migrator_core::orchestrator::Command;
use migrator_core::status::Snapshot;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use csrf::CsrfToken;
pub use error::AppError;
pub use history::{LagHistory, LagSample};
pub use logs::{LogBuffer, LogEntry, LogLayer};
pub use router::app;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The latest snapshot.
    pub status: watch::Receiver<Arc<Snapshot>>,
    /// Commands to the orchestrator.
    pub commands: mpsc::Sender<Command>,
    /// When set, commands need it (`Authorization: Bearer` on the API, a form field on pages).
    pub admin_token: Option<SecretString>,
    /// `/readyz` fails when the last snapshot is older than this (the orchestrator stalled).
    pub stale_after: Duration,
    /// How often pages re-fetch themselves.
    pub refresh: Duration,
    /// Per-client-IP limit on the API and command routes: burst, and time to earn one back.
    pub rate_limit: (u32, Duration),
    /// Where backups are and which pg_dump makes them (the Backups tab lists them).
    pub backup: migrator_core::config::BackupSettings,
    /// The effective configuration as TOML, every secret already `***`.
    pub config_toml: Arc<str>,
    /// Guards the command forms against cross-site requests.
    pub csrf: CsrfToken,
    /// Lag over the last hour, per mapping.
    pub history: LagHistory,
    /// Recent log events, per mapping.
    pub logs: LogBuffer,
    /// Shown on the dashboard's status bar: commands are open to anyone who can reach
    /// `server.listen` (not a loopback address, no admin token), and what to do about it.
    pub open_commands_warning: Option<Arc<str>>,
    /// `server.listen` is a loopback address: commands must name the dashboard as
    /// `localhost` or by IP address (see origin.rs, DNS rebinding).
    pub loopback_only: bool,
}

impl AppState {
    /// The state for `settings`; `logs` is the buffer whose layer the process's subscriber feeds.
    pub fn new(
        settings: &Settings,
        status: watch::Receiver<Arc<Snapshot>>,
        commands: mpsc::Sender<Command>,
        logs: LogBuffer,
    ) -> Self {
        AppState {
            status,
            commands,
            admin_token: settings.server.admin_token.clone(),
            stale_after: settings.migration.poll_interval * 5 + Duration::from_secs(30),
            refresh: settings.server.refresh_interval,
            rate_limit: (
                settings.server.rate_limit_burst,
                settings.server.rate_limit_refill,
            ),
            backup: settings.backup.clone(),
            config_toml: settings.to_redacted_toml().into(),
            csrf: CsrfToken::random(),
            history: LagHistory::default(),
            logs,
            open_commands_warning: settings.server.open_commands_warning().map(Into::into),
            loopback_only: migrator_core::config::is_loopback_listen(&settings.server.listen),
        }
    }
}

impl AppState {
    /// Checks `given` against the admin token, when one is configured (constant time).
    pub fn authorize(&self, given: Option<&str>) -> Result<(), AppError> {
        let Some(token) = &self.admin_token else {
            return Ok(());
        };
        match given {
            Some(given) if bool::from(given.as_bytes().ct_eq(token.expose_secret().as_bytes())) => {
                Ok(())
            }
            _ => Err(AppError::Unauthorized),
        }
    }
}

/// Serves [`app`] on `listen` until `shutdown`, finishing requests in flight; records the lag
/// history meanwhile.
pub async fn serve(
    listen: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "HTTP server listening");
    tokio::spawn(
        state
            .history
            .clone()
            .follow(state.status.clone(), shutdown.clone()),
    );
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
