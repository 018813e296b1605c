use leptos::prelude::*;
use migrator_core::status::{DatabaseStatus, MappingStatus, TableState};

use super::super::format;
use super::DataTable;
use super::Progress;

/// Per database, every table's copy state and progress.
#[component]
pub fn Tables(mapping: MappingStatus) -> impl IntoView {
    if mapping.databases.iter().all(|d| d.tables.is_empty()) {
        return super::empty(
            "No table is in a subscription yet: tables appear here once replication is set up.",
        );
    }
    mapping
        .databases
        .into_iter()
        .filter(|d| !d.tables.is_empty())
        .map(|d| view! { <DatabaseTables database=d/> })
        .collect_view()
        .into_any()
}

#[component]
fn DatabaseTables(database: DatabaseStatus) -> impl IntoView {
    let (copied, total) = (database.bytes_copied(), database.bytes_total());
    let ready = database
        .tables
        .iter()
        .filter(|t| t.state == TableState::Ready)
        .count();
    // The copy rate the database's ETA implies, to estimate each table's remaining time.
    let rate = database
        .eta_seconds
        .filter(|eta| *eta > 0.0)
        .map(|eta| total.saturating_sub(copied) as f64 / eta);
    let heading = format!(
        "{} — {ready} of {} tables ready, {} of {}{}",
        database.name,
        database.tables.len(),
        format::mb(copied),
        format::mb(total),
        database
            .eta_seconds
            .map(|eta| format!(", about {} to go", format::duration(eta)))
            .unwrap_or_default()
    );
    let rows = database
        .tables
        .into_iter()
        .map(|t| {
            let remaining = t.bytes_total.saturating_sub(t.bytes_copied);
            let eta = match (t.state, rate) {
                (TableState::Ready | TableState::Synchronized, _) => "done".to_owned(),
                (_, Some(rate)) if rate > 0.0 => format!("≈ {}", format::duration(remaining as f64 / rate)),
                _ => "–".to_owned(),
            };
            let class = format!("state {}", format::table_state(t.state).replace(' ', "-"));
            view! {
                <tr>
                    <td class="name">{t.display_name()}</td>
                    <td><span class=class>{format::table_state(t.state)}</span></td>
                    <td class="num">
                        {format!("{} / {}", format::mb(t.bytes_copied), format::mb(t.bytes_total))}
                        <Progress done=t.bytes_copied total=t.bytes_total/>
                    </td>
                    <td class="num">{format!("{} %", format::percent(t.bytes_copied, t.bytes_total))}</td>
                    <td class="num">{eta}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>{heading}</h2>
        <DataTable headers=&["Table", "State", "Copied", "%", "ETA"]>{rows}</DataTable>
    }
}
