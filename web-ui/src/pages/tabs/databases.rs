use leptos::prelude::*;
use migrator_core::phase::Phase;
use migrator_core::status::MappingStatus;

use super::super::format;
use super::DataTable;
use super::Progress;

/// One row per source database: phase, copy, lag, sequences, deferred objects, readiness.
#[component]
pub fn Databases(mapping: MappingStatus) -> impl IntoView {
    if mapping.databases.is_empty() {
        return super::empty("No database discovered yet: the instance checks run first.");
    }
    let name = mapping.name.clone();
    let rows = mapping
        .databases
        .into_iter()
        .map(|d| {
            // Purge is refused for a completed database: no link to it.
            let purge = (!matches!(d.phase, Phase::Completed | Phase::Completing)).then(|| {
                let href = format!(
                    "/mappings/{name}/databases/{}/purge",
                    format::path_segment(&d.name)
                );
                view! { <a class="button small" href=href>"Start over…"</a> }
            });
            let ready = d.tables.iter().filter(|t| t.state == migrator_core::status::TableState::Ready).count();
            let (copied, total) = (d.bytes_copied(), d.bytes_total());
            let lag = d
                .lag
                .map(|l| format!("{} / {}", format::mb(l.bytes), format::duration(l.seconds)))
                .unwrap_or_else(|| "–".into());
            let rates = d
                .rates
                .map(|r| format!("{:.1} / {:.1}", r.wal_mb_per_min, r.apply_mb_per_min))
                .unwrap_or_else(|| "–".into());
            let readiness = if d.cutover_conditions_met {
                format!("conditions held {}", format::duration(d.conditions_held_seconds))
            } else {
                "not yet".into()
            };
            let trouble = d
                .last_error
                .clone()
                .or_else(|| d.findings.iter().find(|f| f.is_blocking()).map(|f| f.message.clone()));
            view! {
                <tr>
                    <td class="name">{d.name.clone()}</td>
                    <td><span class=format::phase_class(d.phase)>{d.phase.label()}</span></td>
                    <td class="num">{format!("{ready} / {}", d.tables.len())}</td>
                    <td class="num">
                        {format!("{} / {}", format::mb(copied), format::mb(total))}
                        <Progress done=copied total/>
                    </td>
                    <td class="num">{d.eta_seconds.map(format::duration).unwrap_or_else(|| "–".into())}</td>
                    <td class="num">{lag}</td>
                    <td class="num">{rates}</td>
                    <td class="num">{format!("{} / {}", d.sequences_behind, d.sequences_total)}</td>
                    <td class="num">{d.deferred_missing}</td>
                    <td>{readiness}</td>
                    <td class="problem-text">{trouble}</td>
                    <td>{purge}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <DataTable headers=&["Database", "Phase", "Tables ready", "Copied", "ETA", "Lag", "WAL / applied (MB/min)", "Sequences behind", "To build, refresh or analyze", "Cutover conditions", "Problem", ""]>{rows}</DataTable>
    }
    .into_any()
}
