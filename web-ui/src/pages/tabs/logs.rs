use leptos::prelude::*;

use super::super::format;
use super::DataTable;
use crate::LogEntry;

/// Recent log events of this mapping, newest first.
#[component]
pub fn Logs(entries: Vec<LogEntry>) -> impl IntoView {
    if entries.is_empty() {
        return super::empty("No event logged for this mapping since the process started.");
    }
    let rows = entries
        .into_iter()
        .map(|e| {
            let level = e.level.to_string();
            let class = format!("log {}", level.to_lowercase());
            view! {
                <tr class=class>
                    <td class="nowrap"><time>{format::time(e.at)}</time></td>
                    <td>{level}</td>
                    <td>{e.message}</td>
                    <td class="fields">{e.fields}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <DataTable headers=&["Time", "Level", "Event", "Details"] class="logs">{rows}</DataTable>
    }
    .into_any()
}
