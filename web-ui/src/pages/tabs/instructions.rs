use leptos::prelude::*;
use migrator_core::status::MappingStatus;

use super::DataTable;

/// The generated cutover instructions, after the entries of the mapping's PgBouncer (when it
/// names one): what `PAUSE` will hold and how many clients are connected now.
#[component]
pub fn Instructions(mapping: MappingStatus) -> impl IntoView {
    if mapping.instructions.is_empty() {
        return super::empty(
            "Instructions appear once the instance checks have listed the databases.",
        );
    }
    let pooler = (!mapping.pooler.is_empty()).then(|| {
        let rows = mapping
            .pooler
            .iter()
            .map(|e| {
                view! {
                    <tr>
                        <td class="name">{e.alias.clone()}</td>
                        <td>{e.database.clone()}</td>
                        <td><code>{e.server.clone()}</code></td>
                        <td class="num">{e.clients}</td>
                        <td>{if e.paused { "paused" } else { "running" }}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h2>"PgBouncer"</h2>
            <DataTable headers=&["Entry", "Database", "Server", "Client connections", "State"]>{rows}</DataTable>
        }
    });
    view! {
        {pooler}
        <pre class="instructions">{mapping.instructions}</pre>
    }
    .into_any()
}
