use leptos::prelude::*;
use migrator_core::status::MappingStatus;

use super::super::format;
use super::DataTable;

/// Partitioned tables and their partitions; each tree replicates through its root.
#[component]
pub fn Partitions(mapping: MappingStatus) -> impl IntoView {
    if mapping.databases.iter().all(|d| d.partitions.is_empty()) {
        return super::empty(
            "No partitioned table found (the source catalog is read once replication is set up).",
        );
    }
    mapping
        .databases
        .into_iter()
        .filter(|d| !d.partitions.is_empty())
        .map(|d| {
            let trees = d
                .partitions
                .iter()
                .map(|p| {
                    let root = d
                        .tables
                        .iter()
                        .find(|t| t.schema == p.schema && t.table == p.table);
                    let state = root.map(|t| format::table_state(t.state)).unwrap_or("–");
                    let size = root.map(|t| format::mb(t.bytes_total)).unwrap_or_default();
                    let parts = p
                        .partitions
                        .iter()
                        .map(|part| view! { <li><code>{format!("{}.{}", part.schema, part.table)}</code>" "{part.bound.clone()}</li> })
                        .collect_view();
                    view! {
                        <tr>
                            <td class="name">{format!("{}.{}", p.schema, p.table)}</td>
                            <td><code>{p.key.clone()}</code></td>
                            <td>{state}</td>
                            <td class="num">{size}</td>
                            <td><ul class="plain">{parts}</ul></td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <h2>{d.name.clone()}</h2>
                <DataTable headers=&["Partitioned table", "Key", "State", "Size (all partitions)", "Partitions"]>{trees}</DataTable>
            }
        })
        .collect_view()
        .into_any()
}
