//! "Retry": shown beside a finding the tool stopped retrying by itself (a copy that kept
//! failing). A `POST` form (anti-CSRF token, admin token when configured); the next tick tries
//! again.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use migrator_core::orchestrator::request_retry;

use super::PageError;
use super::complete::CommandForm;
use crate::{AppError, AppState};

pub async fn submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<CommandForm>,
) -> Result<Html<String>, PageError> {
    form.check(&state)?;
    let done = request_retry(&state.commands, &name)
        .await
        .map_err(AppError::from)?;
    tracing::info!(mapping = %name, "retry from the dashboard");
    Ok(super::complete::outcome(
        &name,
        "",
        format!("Retry {name}"),
        done,
        "If the cause is still there, the finding comes back after the next attempts.",
    ))
}
