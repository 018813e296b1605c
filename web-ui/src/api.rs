//! JSON API, health and readiness.

use std::time::SystemTime;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use migrator_core::orchestrator::{
    request_backup, request_backup_delete, request_complete, request_purge, request_rate_limit,
    request_resync, request_retry, request_verify,
};
use migrator_core::phases::purge::Request as PurgeRequest;
use migrator_core::status::VerifyMode;
use migrator_core::verify::Request as VerifyRequest;
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

/// Body of `POST /api/mappings/{name}/verify`; an empty body takes every default.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// Compare every range once, for when writes to the source have stopped and the lag is
    /// drained; default false (online: ranges that change while they are read are read again).
    #[serde(default)]
    exact: bool,
    /// Only this database; default every database of the mapping.
    #[serde(default)]
    database: Option<String>,
    /// Only this table (`schema.table` or `table`); default every table.
    #[serde(default)]
    table: Option<String>,
}

impl Verify {
    /// Reads the body: empty (every default) or the JSON object above.
    fn parse(body: &[u8]) -> Result<Verify, AppError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Verify::default());
        }
        // Through a `Value`: serde would take a struct from an array as well (`[true]`).
        let parsed = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(value @ serde_json::Value::Object(_)) => {
                Verify::deserialize(value).map_err(|e| e.to_string())
            }
            Ok(_) => Err("not a JSON object".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        parsed.map_err(|e| {
            AppError::BadRequest(format!(
                "the body is not a verify request ({e}): send nothing, or \
                 {{\"exact\": true|false, \"database\": \"NAME\"|null, \"table\": \"SCHEMA.TABLE\"|null}}"
            ))
        })
    }

    fn into_request(self) -> VerifyRequest {
        let named = |name: Option<String>| name.filter(|n| !n.trim().is_empty());
        VerifyRequest {
            mode: if self.exact {
                VerifyMode::Exact
            } else {
                VerifyMode::Online
            },
            database: named(self.database),
            table: named(self.table),
        }
    }
}

/// `POST /api/mappings/{name}/verify` with an optional `{"exact": bool, "database": ...,
/// "table": ...}`: starts comparing the mapping's data in the background. 202: it started; its
/// progress and result are the mapping's `verify` in `GET /api/status`.
pub async fn verify(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, AppError> {
    state.authorize(bearer(&headers))?;
    let request = Verify::parse(&body)?.into_request();
    let done = request_verify(&state.commands, &name, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "done": done })),
    ))
}

/// Body of `POST /api/mappings/{name}/databases/{db}/purge`; an empty body empties every table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Purge {
    /// Only empty these tables (`schema.table`); default every table.
    #[serde(default)]
    tables: Vec<String>,
    /// Drop the database instead of emptying it.
    #[serde(default)]
    drop: bool,
}

/// `POST /api/mappings/{name}/databases/{db}/purge` with an optional `{"tables": [...],
/// "drop": bool}`: starts database `db` over (see docs/USER_GUIDE.md); the answer lists what
/// was deleted, a refusal (409) says why nothing was.
pub async fn purge(
    State(state): State<AppState>,
    Path((name, db)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, AppError> {
    state.authorize(bearer(&headers))?;
    let body: Purge = optional_body(
        &body,
        "purge",
        r#"{"tables": ["SCHEMA.TABLE", ...], "drop": true|false}"#,
    )?;
    let request = PurgeRequest {
        tables: body.tables,
        drop: body.drop,
    };
    let done = request_purge(&state.commands, &name, &db, request).await?;
    Ok(Json(serde_json::json!({ "done": done })))
}

/// Body of `POST /api/mappings/{name}/backups`; empty: the source.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    #[serde(default)]
    side: Option<String>,
}

/// `POST /api/mappings/{name}/backups` with an optional `{"side": "source"|"destination"}`:
/// starts a backup in the background. 202: it started; its progress is the mapping's `backup`
/// in `GET /api/status`.
pub async fn backup(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, AppError> {
    state.authorize(bearer(&headers))?;
    let body: Backup = optional_body(&body, "backup", r#"{"side": "source"|"destination"}"#)?;
    let side = crate::pages::backups::side(body.side.as_deref().unwrap_or(""))?;
    let done = request_backup(&state.commands, &name, side).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "done": done })),
    ))
}

/// `POST /api/mappings/{name}/backups/{key}/delete`: deletes one of the mapping's backups.
pub async fn backup_delete(
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    state.authorize(bearer(&headers))?;
    let done = request_backup_delete(&state.commands, &name, &key).await?;
    Ok(Json(serde_json::json!({ "done": done })))
}

/// A command's body: empty (every default) or its JSON object; anything else is a 400 that
/// says what to send.
fn optional_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    command: &str,
    example: &str,
) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice::<T>(body).map_err(|e| {
        AppError::BadRequest(format!(
            "the body is not a {command} request ({e}): send nothing, or {example}"
        ))
    })
}
