//! "Retry": shown beside a finding the tool stopped retrying by itself (a copy that kept
//! failing). A `POST` form (anti-CSRF token, admin token when configured); the next tick tries
//! again.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use migrator_core::orchestrator::request_retry;

use super::PageError;
use super::complete::{CommandForm, Outcome};
use crate::AppState;

pub async fn submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<CommandForm>,
) -> Result<Html<String>, PageError> {
    let command = request_retry(&state.commands, &name);
    form.send(
        &state,
        &name,
        command,
        Outcome {
            logged: "retry from the dashboard",
            class: "",
            heading: format!("Retry {name}"),
            note: "If the cause is still there, the finding comes back after the next attempts.",
        },
    )
    .await
}
