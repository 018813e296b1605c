//! "Verify data": starts comparing a mapping's data on both sides in the background (the
//! dashboard's `postgres-migrator verify`). A `POST` form (anti-CSRF token, admin token when
//! configured) in the mapping's header, with a checkbox for exact mode; the orchestrator refuses
//! a second one while one runs. Progress and result are on the Verify tab; also
//! `POST /api/mappings/{name}/verify`.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use leptos::prelude::*;
use migrator_core::orchestrator::request_verify;
use migrator_core::status::{MappingStatus, VerifyMode, VerifyOutcome};
use migrator_core::verify::Request;
use serde::Deserialize;

use super::PageError;
use super::complete::CommandForm;
use crate::{AppError, AppState};

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(flatten)]
    command: CommandForm,
    /// The checkbox: present (`on`) for exact mode.
    #[serde(default)]
    exact: String,
}

pub async fn submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<VerifyForm>,
) -> Result<Html<String>, PageError> {
    form.command.check(&state)?;
    let mode = if form.exact.is_empty() {
        VerifyMode::Online
    } else {
        VerifyMode::Exact
    };
    let request = Request {
        mode,
        database: None,
        table: None,
    };
    let done = request_verify(&state.commands, &name, request)
        .await
        .map_err(AppError::from)?;
    tracing::info!(mapping = %name, %mode, "verification started from the dashboard");
    Ok(super::complete::outcome_with_link(
        (
            format!("/mappings/{name}?tab=verify"),
            "Follow it on the Verify tab",
        ),
        "",
        format!("Verifying {name} ({mode})"),
        done,
        "It only reads, in the background; the Verify tab shows its progress and, at the end, \
         every range that differs with a query to look at it on both sides.",
    ))
}

/// The Verify button in the mapping's header: a form with the exact-mode checkbox, or why it
/// cannot be pressed now.
#[component]
pub fn VerifyButton(mapping: MappingStatus, state: AppState) -> impl IntoView {
    let tab = format!("/mappings/{}?tab=verify", mapping.name);
    let last = mapping.verify.as_ref().map(|v| v.outcome());
    if last == Some(VerifyOutcome::Running) {
        return view! {
            <div class="verify-command">
                <button type="button" disabled=true>"Verify data"</button>
                <p class="hint">"A verification is running: "<a href=tab>"follow it on the Verify tab"</a>"."</p>
            </div>
        }
        .into_any();
    }
    if mapping.databases.is_empty() {
        return view! {
            <div class="verify-command">
                <button type="button" disabled=true>"Verify data"</button>
                <p class="hint">"Available once the tool has found the source's databases."</p>
            </div>
        }
        .into_any();
    }
    let action = format!("/mappings/{}/verify", mapping.name);
    let fields = super::complete::command_fields(&state);
    let last = last.map(|outcome| {
        view! {
            <p class="hint">
                "Last: "<a href=tab.clone()>{migrator_core::verify::report::verdict(outcome)}</a>
            </p>
        }
    });
    view! {
        <form class="verify-command" method="post" action=action>
            {fields}
            <button type="submit">"Verify data"</button>
            <label class="check">
                <input type="checkbox" name="exact" value="on"/>
                " exact (writes stopped)"
            </label>
            <p class="hint">"Compares every table on both sides; only reads. Results on the Verify tab."</p>
            {last}
        </form>
    }
    .into_any()
}
