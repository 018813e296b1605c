use leptos::prelude::*;
use migrator_core::backup::Listed;
use migrator_core::status::MappingStatus;

use super::super::complete::command_fields;
use super::super::format;
use super::DataTable;
use crate::AppState;

/// The mapping's backups in `backup.dir` (finished, then unfinished), the one running or last
/// run from here with its progress, and the forms to create and delete them.
#[component]
pub fn Backups(mapping: MappingStatus, state: AppState) -> impl IntoView {
    let name = mapping.name.clone();
    let Some(_) = &state.backup.dir else {
        return super::empty(
            "Backups need backup.dir (MIGRATOR__BACKUP__DIR): a directory with room for the dumps, a mounted volume in Kubernetes.",
        );
    };
    let listed: Vec<Listed> = match migrator_core::backup::list(&state.backup) {
        Ok(all) => all
            .into_iter()
            .filter(|l| {
                l.key.ends_with(&format!("-{name}-source"))
                    || l.key.ends_with(&format!("-{name}-destination"))
            })
            .collect(),
        Err(e) => {
            let text = e.to_string();
            return view! { <p class="problem-text">{text}</p> }.into_any();
        }
    };
    let running = mapping.backup.clone().map(|run| {
        let state_text = match (&run.finished_at, &run.error, &run.key) {
            (None, _, _) => "running".to_owned(),
            (Some(_), Some(error), _) => format!("failed: {error}"),
            (Some(_), None, Some(key)) => format!("written: {key}"),
            (Some(_), None, None) => "finished".to_owned(),
        };
        let progress = run.progress.clone().map(|p| {
            view! {
                <span>{format!(" {}: table {} of {} ", p.database, p.done, p.total)}</span>
                <progress max=p.total.max(1).to_string() value=p.done.to_string()></progress>
            }
        });
        view! {
            <p class="backup-run">
                {format!("Backup of the {} started {}: {state_text}", run.side, format::time(run.started_at))}
                {progress}
            </p>
        }
    });
    let rows = listed
        .into_iter()
        .map(|l| {
            let action = format!("/mappings/{name}/backups/{}/delete", l.key);
            let fields = command_fields(&state);
            let (side, finished, databases) = match &l.manifest {
                Some(m) => (
                    m.side.clone(),
                    m.finished_at.clone(),
                    m.databases
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                None => (
                    "–".to_owned(),
                    "unfinished: not restorable".to_owned(),
                    "–".to_owned(),
                ),
            };
            view! {
                <tr>
                    <td><code>{l.key.clone()}</code></td>
                    <td>{side}</td>
                    <td>{finished}</td>
                    <td class="num">{format::mb(l.bytes)}</td>
                    <td>{databases}</td>
                    <td>
                        <form method="post" action=action class="inline">
                            {fields}
                            <button type="submit" class="small">"Delete"</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let create = format!("/mappings/{name}/backups");
    let fields = command_fields(&state);
    view! {
        {running}
        <form method="post" action=create class="inline">
            {fields}
            <label>
                "Side "
                <select name="side">
                    <option value="source" selected=true>"source"</option>
                    <option value="destination">"destination"</option>
                </select>
            </label>
            " "
            <button type="submit">"Create backup"</button>
        </form>
        <DataTable headers=&["Key", "Side", "Finished", "Size", "Databases", ""]>{rows}</DataTable>
        <p class="hint">
            "pg_dump --format=directory of every database of the side and its roles, with a \
             manifest holding a checksum of every file. Restore from the command line: \
             postgres-migrator backup restore KEY --to destination --as NEWNAME."
        </p>
    }
    .into_any()
}
