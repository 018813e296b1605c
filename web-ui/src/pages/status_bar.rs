//! The bar on top of the live pages: how many mappings are where, how fresh the status is, and
//! a warning when anyone who can reach the server may send commands.

use leptos::prelude::*;
use migrator_core::status::Snapshot;

use super::format;

/// `open_commands`: the warning of [`crate::AppState::open_commands_warning`], if any.
#[component]
pub fn StatusBar(
    snapshot: std::sync::Arc<Snapshot>,
    stale_after: f64,
    open_commands: Option<std::sync::Arc<str>>,
) -> impl IntoView {
    // Counted by the colour of each mapping's light, so the bar agrees with the cards (a mapping
    // whose last step failed is red, whatever its phase).
    let count = |class: &str| {
        snapshot
            .mappings
            .iter()
            .filter(|m| format::light(m).0 == class)
            .count()
    };
    let ready = count("ready");
    let completed = count("completed");
    let problematic = count("problem");
    let syncing = count("progress");
    let freshness = match snapshot.generated_at {
        None => view! { <span class="stale">"Waiting for the first status..."</span> }.into_any(),
        Some(at) => {
            let age = format::age(at);
            let class = if age > stale_after { "stale" } else { "fresh" };
            view! {
                <span class=class>
                    "Status of " <time>{format::time(at)}</time>
                    {format!(" ({} ago)", format::duration(age))}
                    {(age > stale_after).then_some(": the orchestrator has stopped reporting, see its logs")}
                </span>
            }
            .into_any()
        }
    };
    view! {
        <div class="status-bar" role="status">
            <span class="count ready"><b>{ready}</b>" cutover ready"</span>
            <span class="count progress"><b>{syncing}</b>" in progress"</span>
            <span class="count problem"><b>{problematic}</b>" problematic"</span>
            <span class="count completed"><b>{completed}</b>" completed"</span>
            {freshness}
            {open_commands.map(|warning| view! {
                <p class="open-commands">
                    <b>"Unprotected: "</b>{warning.to_string()}
                </p>
            })}
        </div>
    }
}
