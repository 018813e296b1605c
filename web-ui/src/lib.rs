//! The web layer: an axum router over the orchestrator's status snapshot.
//!
//! It never opens a database connection: it reads the latest [`Snapshot`] from a `watch`
//! channel and sends [`Command`]s to the orchestrator through a channel that migrator-core
//! defines. [`app`] builds the whole router, so tests drive it with `tower::ServiceExt::oneshot`.

mod api;
mod error;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use migrator_core::orchestrator::Command;
use migrator_core::status::Snapshot;
use secrecy::SecretString;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use error::AppError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The latest snapshot.
    pub status: watch::Receiver<Arc<Snapshot>>,
    /// Commands to the orchestrator.
    pub commands: mpsc::Sender<Command>,
    /// When set, commands need `Authorization: Bearer <token>`.
    pub admin_token: Option<SecretString>,
    /// `/readyz` fails when the last snapshot is older than this (the orchestrator stalled).
    pub stale_after: Duration,
}

/// The whole router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/status", get(api::status))
        .route("/api/mappings/{name}/complete", post(api::complete))
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
}

/// Serves [`app`] on `listen` until `shutdown`, finishing requests in flight.
pub async fn serve(
    listen: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "HTTP server listening");
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
