//! Start one database over from the dashboard: `GET` names everything that will be deleted and
//! asks for confirmation, `POST` (anti-CSRF token, admin token when configured) sends the purge
//! to the orchestrator, which refuses a database the tool did not create, a completed one, and
//! one that other sessions are connected to.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use leptos::prelude::*;
use migrator_core::orchestrator::request_purge;
use migrator_core::phase::Phase;
use migrator_core::phases::purge::Request;
use serde::Deserialize;

use super::PageError;
use super::complete::{CommandForm, Outcome, command_fields};
use super::format;
use crate::{AppError, AppState};

pub async fn confirm(
    State(state): State<AppState>,
    Path((name, db)): Path<(String, String)>,
) -> Result<Html<String>, PageError> {
    let (_snapshot, mapping) = super::find_mapping(&state, &name)?;
    let database = mapping
        .databases
        .iter()
        .find(|d| d.name == db)
        .cloned()
        .ok_or_else(|| {
            PageError(AppError::NotFound(format!(
                "mapping {name} has no database {db:?}"
            )))
        })?;
    if matches!(database.phase, Phase::Completed | Phase::Completing) {
        return Err(PageError(AppError::Refused(format!(
            "database {db:?} of {name} is {}: the cutover happened, its data is the application's now, and purge never deletes it",
            database.phase
        ))));
    }
    let back = format!("/mappings/{name}");
    let action = format!(
        "/mappings/{name}/databases/{}/purge",
        format::path_segment(&db)
    );
    let tables = database.tables.len();
    let copied = format::mb(database.bytes_copied());
    let fields = command_fields(&state);
    let body = view! {
        <section class="confirm">
            <h1>{format!("Start database {db} of {name} over?")}</h1>
            <p>{format!("{} → {}", mapping.source, mapping.destination)}</p>
            <p>"This deletes, in this order:"</p>
            <ul>
                <li>"the subscription "<code>{database.names.subscription.clone()}</code>" on the destination"</li>
                <li>"the replication slot "<code>{database.names.slot.clone()}</code>" on the source (the WAL it holds is released)"</li>
                <li>{format!("the rows of every table of database {db} on the destination ({tables} table(s), {copied} copied so far), sequences reset; or, if you tick the box below, the whole database")}</li>
            </ul>
            <p>"The tool then copies every table again from a new snapshot. It refuses if the \
                destination database was not created by it, is completed, or has sessions of \
                anyone else (writes may be pointed at it)."</p>
            <form method="post" action=action>
                {fields}
                <label>
                    "Only empty these tables (schema.table, comma-separated; empty = all) "
                    <input type="text" name="tables" autocomplete="off"/>
                </label>
                <label>
                    <input type="checkbox" name="drop" value="on"/>
                    " Drop the database instead (the schema step creates it again)"
                </label>
                <button class="danger" type="submit">{format!("Yes, delete and copy {db} again")}</button>
                " "
                <a class="button" href=back>"Cancel"</a>
            </form>
        </section>
    };
    Ok(super::document(format!("Purge {db}?"), None, body))
}

/// The purge form: the command fields and what to purge.
#[derive(Deserialize)]
pub struct PurgeForm {
    #[serde(flatten)]
    command: CommandForm,
    #[serde(default)]
    tables: String,
    #[serde(default)]
    drop: Option<String>,
}

impl PurgeForm {
    fn request(&self) -> Request {
        Request {
            tables: split_tables(&self.tables),
            // A ticked box sends `drop=on`; an unticked one sends nothing.
            drop: self.drop.as_deref().is_some_and(|v| v == "on"),
        }
    }
}

/// `a, b.c` -> `["a", "b.c"]`.
pub fn split_tables(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn submit(
    State(state): State<AppState>,
    Path((name, db)): Path<(String, String)>,
    Form(form): Form<PurgeForm>,
) -> Result<Html<String>, PageError> {
    let command = request_purge(&state.commands, &name, &db, form.request());
    form.command
        .send(
            &state,
            &name,
            command,
            Outcome {
                logged: "database purged from the dashboard",
                class: "",
                heading: format!("Database {db} of {name} starts over"),
                note: "Its copy starts again at the next tick; follow it on the mapping's page.",
            },
        )
        .await
}
