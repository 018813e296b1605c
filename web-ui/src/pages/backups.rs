//! The Backups tab's forms: create a backup of one side (it runs in the background; the tab
//! shows its progress) and delete one. `POST` forms with the anti-CSRF token and, when
//! configured, the admin token.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use migrator_core::backup::Side;
use migrator_core::orchestrator::{request_backup, request_backup_delete};
use serde::Deserialize;

use super::PageError;
use super::complete::{CommandForm, Outcome};
use crate::{AppError, AppState};

/// The create form: the command fields and the side.
#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(flatten)]
    command: CommandForm,
    #[serde(default)]
    side: String,
}

/// `source` or `destination`, as the form and the API send it.
pub fn side(text: &str) -> Result<Side, AppError> {
    match text {
        "" | "source" => Ok(Side::Source),
        "destination" => Ok(Side::Destination),
        other => Err(AppError::BadRequest(format!(
            "side {other:?} is neither source nor destination"
        ))),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<CreateForm>,
) -> Result<Html<String>, PageError> {
    let side = side(&form.side)?;
    let command = request_backup(&state.commands, &name, side);
    form.command
        .send(
            &state,
            &name,
            command,
            Outcome {
                logged: "backup started from the dashboard",
                class: "",
                heading: format!("Backup of {name}"),
                note: "Follow it on the mapping's Backups tab.",
            },
        )
        .await
}

pub async fn delete(
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
    Form(form): Form<CommandForm>,
) -> Result<Html<String>, PageError> {
    let command = request_backup_delete(&state.commands, &name, &key);
    form.send(
        &state,
        &name,
        command,
        Outcome {
            logged: "backup deleted from the dashboard",
            class: "",
            heading: format!("Backup {key} deleted"),
            note: "Its files are gone.",
        },
    )
    .await
}
