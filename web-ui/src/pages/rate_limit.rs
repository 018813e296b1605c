//! "Copy rate limit": the dashboard's way to change a mapping's `rate_limit_mb_per_s` while it
//! runs (it holds until a restart, when the configuration applies again). A `POST` form with the
//! anti-CSRF token and, when configured, the admin token; also `POST /api/mappings/{name}/rate-limit`.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use leptos::prelude::*;
use migrator_core::orchestrator::request_rate_limit;
use migrator_core::status::CopyRate;
use serde::Deserialize;

use super::PageError;
use super::complete::CommandForm;
use super::format;
use crate::{AppError, AppState};

#[derive(Deserialize)]
pub struct RateLimitForm {
    #[serde(flatten)]
    command: CommandForm,
    #[serde(default)]
    mb_per_s: String,
}

/// Reads a limit typed by a person: whole MB per second, 0 for none.
pub fn parse_limit(text: &str) -> Result<u64, AppError> {
    text.trim().parse::<u64>().map_err(|_| {
        AppError::BadRequest(format!(
            "{:?} is not a rate limit: give whole MB per second, 0 for no limit",
            text.trim()
        ))
    })
}

pub async fn submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<RateLimitForm>,
) -> Result<Html<String>, PageError> {
    form.command.check(&state)?;
    let mb_per_s = parse_limit(&form.mb_per_s)?;
    let done = request_rate_limit(&state.commands, &name, mb_per_s)
        .await
        .map_err(AppError::from)?;
    tracing::info!(mapping = %name, mb_per_s, "copy rate limit changed from the dashboard");
    Ok(super::complete::outcome(
        &name,
        "",
        format!("Copy rate limit of {name}"),
        done,
        "Every copy of the mapping follows from its next read.",
    ))
}

/// `12.5 MB/s`, the limit, and what the health guard holds it to.
pub fn describe(rate: &CopyRate) -> String {
    let now = if rate.bytes_per_second > 0.0 {
        format!("{}/s", format::mb(rate.bytes_per_second as u64))
    } else {
        "idle".to_owned()
    };
    let limit = match rate.limit_mb_per_s {
        0 => "no limit".to_owned(),
        mb => format!("limit {mb} MB/s"),
    };
    match (rate.health_cap_mb_per_s, &rate.health_reason) {
        (Some(cap), Some(why)) => format!("{now} ({limit}; held to {cap:.1} MB/s: {why})"),
        _ => format!("{now} ({limit})"),
    }
}

/// The small form beside the copy rate.
#[component]
pub fn LimitForm(mapping: String, rate: CopyRate, state: AppState) -> impl IntoView {
    let action = format!("/mappings/{mapping}/rate-limit");
    let fields = super::complete::command_fields(&state);
    view! {
        <form class="rate-limit" method="post" action=action>
            {fields}
            <label>
                "Copy rate limit (MB/s, 0 = none) "
                <input type="number" name="mb_per_s" min="0" step="1" required=true
                    value=rate.limit_mb_per_s.to_string()/>
            </label>
            <button type="submit">"Set"</button>
        </form>
    }
}
