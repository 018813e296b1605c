//! JSON API, health and readiness.

use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use migrator_core::orchestrator::{
    request_complete, request_rate_limit, request_resync, request_retry,
};
use serde::Deserialize;

use crate::{AppError, AppState};

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the configuration is loaded and the orchestrator has published a snapshot
/// recently.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let generated = state.status.borrow().generated_at;
    let age = generated.and_then(|t| SystemTime::now().duration_since(t).ok());
    match age {
        Some(age) if age <= state.stale_after => (StatusCode::OK, "ready".to_owned()),
        Some(age) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the orchestrator's last status is {}s old", age.as_secs()),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the orchestrator has not published a status yet".to_owned(),
        ),
    }
}

/// `GET /api/status`: the latest snapshot (documented in docs/USER_GUIDE.md).
pub async fn status(State(state): State<AppState>) -> Response {
    let snapshot = state.status.borrow().clone();
    Json(&*snapshot).into_response()
}

/// The bearer token of an API command request.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// `POST /api/mappings/{name}/complete`: marks a cutover-ready mapping complete.
pub async fn complete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    state.authorize(bearer(&headers))?;
    let done = request_complete(&state.commands, &name).await?;
    Ok(Json(serde_json::json!({ "done": done })))
}

/// `POST /api/mappings/{name}/resync`: applies the safe part of the mapping's schema drift.
pub async fn resync(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    state.authorize(bearer(&headers))?;
    let done = request_resync(&state.commands, &name).await?;
    Ok(Json(serde_json::json!({ "done": done })))
}

/// `POST /api/mappings/{name}/retry`: tries again what the tool stopped retrying by itself (a
/// copy that kept failing).
pub async fn retry(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    state.authorize(bearer(&headers))?;
    let done = request_retry(&state.commands, &name).await?;
    Ok(Json(serde_json::json!({ "done": done })))
}

/// Body of `POST /api/mappings/{name}/rate-limit`.
#[derive(Deserialize)]
pub struct RateLimit {
    /// MB per second, 0 for none.
    mb_per_s: u64,
}

/// `POST /api/mappings/{name}/rate-limit` with `{"mb_per_s": N}`: changes the copy rate limit
/// until the next restart.
pub async fn rate_limit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<RateLimit>,
) -> Result<impl IntoResponse, AppError> {
    state.authorize(bearer(&headers))?;
    let done = request_rate_limit(&state.commands, &name, body.mb_per_s).await?;
    Ok(Json(serde_json::json!({ "done": done })))
}
