//! "Apply safe schema changes": the dashboard's way to run `postgres-migrator resync` when a
//! database reports schema drift. A `POST` form (anti-CSRF token, admin token when configured),
//! shown beside the drift finding; the page that follows lists what was done and what is left.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use migrator_core::orchestrator::request_resync;

use super::PageError;
use super::complete::CommandForm;
use crate::{AppError, AppState};

pub async fn submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<CommandForm>,
) -> Result<Html<String>, PageError> {
    form.check(&state)?;
    let done = request_resync(&state.commands, &name)
        .await
        .map_err(AppError::from)?;
    tracing::info!(mapping = %name, "schema re-sync from the dashboard");
    Ok(super::complete::outcome(
        &name,
        "",
        format!("Schema changes of {name}"),
        done,
        "The drift finding clears at the next tick once nothing is left.",
    ))
}
