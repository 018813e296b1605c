//! "Apply safe schema changes": the dashboard's way to run `postgres-migrator resync` when a
//! database reports schema drift. A `POST` form (anti-CSRF token, admin token when configured),
//! shown beside the drift finding; the page that follows lists what was done and what is left.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use migrator_core::orchestrator::request_resync;

use super::PageError;
use super::complete::{CommandForm, Outcome};
use crate::AppState;

pub async fn submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<CommandForm>,
) -> Result<Html<String>, PageError> {
    let command = request_resync(&state.commands, &name);
    form.send(
        &state,
        &name,
        command,
        Outcome {
            logged: "schema re-sync from the dashboard",
            class: "",
            heading: format!("Schema changes of {name}"),
            note: "The drift finding clears at the next tick once nothing is left.",
        },
    )
    .await
}
