//! Mark complete from the dashboard: `GET` shows what will be dropped and asks for confirmation,
//! `POST` (anti-CSRF token, admin token when configured) sends the command to the orchestrator.
//! The orchestrator refuses unless the mapping is cutover ready, and treats a completed mapping
//! as done, so a double submit is harmless.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use leptos::prelude::*;
use migrator_core::orchestrator::commands::CommandError;
use migrator_core::orchestrator::request_complete;
use migrator_core::phase::Phase;
use serde::Deserialize;

use super::PageError;
use crate::{AppError, AppState};

pub async fn confirm(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Html<String>, PageError> {
    let (_snapshot, mapping) = super::find_mapping(&state, &name)?;
    let back = format!("/mappings/{name}");
    match mapping.phase {
        Phase::CutoverReady => {}
        Phase::Completed => {
            let body = view! {
                <section class="message completed">
                    <h1>{format!("{name} is already complete")}</h1>
                    <p>"Its subscriptions are detached and its slots and publications are gone from the source."</p>
                    <p><a href=back>"Back to the mapping"</a></p>
                </section>
            };
            return Ok(super::document(name, None, body));
        }
        phase => {
            return Err(PageError(AppError::Refused(format!(
                "mapping {name} is {phase}, not cutover ready: it can be marked complete once its light is green"
            ))));
        }
    }
    let steps = mapping
        .databases
        .iter()
        .map(|d| {
            view! {
                <li>
                    <b>{d.name.clone()}</b>": final sequence sync; subscription "
                    <code>{d.names.subscription.clone()}</code>" disabled and detached on the destination; slot "
                    <code>{d.names.slot.clone()}</code>" and publication "
                    <code>{d.names.publication.clone()}</code>" dropped on the source"
                </li>
            }
        })
        .collect_view();
    let fields = command_fields(&state);
    let action = format!("/mappings/{name}/complete");
    let body = view! {
        <section class="confirm">
            <h1>{format!("Mark {name} complete?")}</h1>
            <p>{format!("{} → {}", mapping.source, mapping.destination)}</p>
            <p>"Do this once writes to the source have stopped (see the Instructions tab). It waits for zero lag, then:"</p>
            <ul>{steps}</ul>
            <p class="warning-text">
                "From then on, changes on the source no longer reach the destination. This cannot be \
                 undone: migrating again means dropping the destination databases and starting over."
            </p>
            <form method="post" action=action>
                {fields}
                <button class="danger" type="submit">{format!("Yes, mark {name} complete")}</button>
                " "
                <a class="button" href=back>"Cancel"</a>
            </form>
        </section>
    };
    Ok(super::document(format!("Complete {name}?"), None, body))
}

/// The fields of every command form: the anti-CSRF token and, when configured, the admin token.
#[derive(Deserialize)]
pub struct CommandForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    admin_token: String,
}

impl CommandForm {
    /// Refuses a form that did not come from this dashboard, or lacks the admin token.
    pub fn check(&self, state: &AppState) -> Result<(), PageError> {
        if !state.csrf.matches(&self.csrf) {
            return Err(PageError(AppError::Forbidden(
                "this form is out of date or did not come from this dashboard (the server may have \
                 restarted): go back, reload the page and confirm again"
                    .into(),
            )));
        }
        state.authorize(Some(&self.admin_token))?;
        Ok(())
    }
}

/// The hidden CSRF field and, when an admin token is configured, its password field.
pub fn command_fields(state: &AppState) -> impl IntoView + use<> {
    let token_field = state.admin_token.is_some().then(|| {
        view! {
            <label>
                "Admin token "
                <input type="password" name="admin_token" autocomplete="off" required=true/>
            </label>
        }
    });
    view! {
        <input type="hidden" name="csrf" value=state.csrf.value().to_owned()/>
        {token_field}
    }
}

pub async fn submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<CommandForm>,
) -> Result<Html<String>, PageError> {
    let command = request_complete(&state.commands, &name);
    form.send(
        &state,
        &name,
        command,
        Outcome {
            logged: "marked complete from the dashboard",
            class: "completed",
            heading: format!("{name} is complete"),
            note: "Repoint the clients at the destination now (steps 6 and 7 of the instructions).",
        },
    )
    .await
}

/// What the page after a command says, and the log line it leaves.
pub struct Outcome {
    pub logged: &'static str,
    pub class: &'static str,
    pub heading: String,
    pub note: &'static str,
}

impl CommandForm {
    /// Checks the form, then sends `command` to the orchestrator and shows what it did.
    pub async fn send(
        &self,
        state: &AppState,
        mapping: &str,
        command: impl Future<Output = Result<Vec<String>, CommandError>>,
        page: Outcome,
    ) -> Result<Html<String>, PageError> {
        self.check(state)?;
        let done = command.await.map_err(AppError::from)?;
        tracing::info!(mapping = %mapping, "{}", page.logged);
        Ok(outcome(mapping, page.class, page.heading, done, page.note))
    }
}

/// The page after a command: what was done, one line each, a note, and the way back.
pub(super) fn outcome(
    mapping: &str,
    class: &'static str,
    heading: String,
    lines: Vec<String>,
    note: &'static str,
) -> Html<String> {
    let back = (format!("/mappings/{mapping}"), "Back to the mapping");
    outcome_with_link(back, class, heading, lines, note)
}

/// [`outcome`] with another way back: its address and words.
pub(super) fn outcome_with_link(
    (back, back_text): (String, &'static str),
    class: &'static str,
    heading: String,
    lines: Vec<String>,
    note: &'static str,
) -> Html<String> {
    let title = heading.clone();
    let body = view! {
        <section class=format!("message {class}")>
            <h1>{heading}</h1>
            <ul>{lines.into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}</ul>
            <p>{note}</p>
            <p><a href=back>{back_text}</a></p>
        </section>
    };
    super::document(title, None, body)
}
