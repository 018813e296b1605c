use leptos::prelude::*;
use migrator_core::status::MappingStatus;

use super::super::format;
use super::DataTable;

/// The source's replication slot of every database, and the names the tool uses.
#[component]
pub fn Slot(mapping: MappingStatus) -> impl IntoView {
    if mapping.databases.is_empty() {
        return super::empty("No database discovered yet.");
    }
    let rows = mapping
        .databases
        .into_iter()
        .map(|d| {
            let slot = d.slot.clone();
            view! {
                <tr>
                    <td class="name">{d.name.clone()}</td>
                    <td><code>{d.names.slot.clone()}</code></td>
                    <td>{match &slot {
                        None => "not on the source",
                        Some(s) if s.active => "active",
                        Some(_) => "inactive",
                    }}</td>
                    <td><code>{slot.as_ref().and_then(|s| s.restart_lsn.clone()).unwrap_or_else(|| "–".into())}</code></td>
                    <td><code>{slot.as_ref().and_then(|s| s.confirmed_flush_lsn.clone()).unwrap_or_else(|| "–".into())}</code></td>
                    <td class="num">{slot.as_ref().map(|s| format::mb(s.retained_bytes)).unwrap_or_else(|| "–".into())}</td>
                    <td><code>{d.names.publication.clone()}</code></td>
                    <td><code>{d.names.subscription.clone()}</code></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <DataTable headers=&["Database", "Slot", "State", "Restart LSN", "Confirmed flush LSN", "Retained WAL", "Publication", "Subscription (destination)"]>{rows}</DataTable>
        <p class="hint">
            "Retained WAL is what the source keeps on disk for the slot; it shrinks as the \
             destination confirms. Mark complete drops the slots."
        </p>
    }
    .into_any()
}
