use super::DataTable;
use leptos::prelude::*;
use migrator_core::status::MappingStatus;

/// Every sequence with its value on both sides.
#[component]
pub fn Sequences(mapping: MappingStatus) -> impl IntoView {
    if mapping.databases.iter().all(|d| d.sequences.is_empty()) {
        return super::empty(
            "No sequence compared yet: values are compared once the schema exists on the destination.",
        );
    }
    let value = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "unused".into());
    mapping
        .databases
        .into_iter()
        .filter(|d| !d.sequences.is_empty())
        .map(|d| {
            let rows = d
                .sequences
                .iter()
                .map(|s| {
                    let (class, verdict) = match (s.on_destination, s.behind) {
                        (false, _) => ("problem-text", "missing on the destination"),
                        (true, true) => ("problem-text", "behind: synced every tick"),
                        (true, false) => ("ok", "ahead"),
                    };
                    view! {
                        <tr>
                            <td class="name">{format!("{}.{}", s.schema, s.name)}</td>
                            <td class="num">{value(s.source_value)}</td>
                            <td class="num">{value(s.destination_value)}</td>
                            <td class=class>{verdict}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <h2>{format!("{} — {} of {} behind", d.name, d.sequences_behind, d.sequences_total)}</h2>
                <DataTable headers=&["Sequence", "Source", "Destination", ""]>{rows}</DataTable>
            }
        })
        .collect_view()
        .into_any()
}
